"""Inference speed of the full-size MCRT: batch-max padding vs reference padding (1023).

Run from the repository root (``nice`` it on a shared machine)::

    python benchmarks/inference_speed.py [--n-crystals 32] [--batch-size 8] [--threads 2]

In one run, on the same real crystals (the ``mcrt_examples`` CIFs, then the first
entries of the pre-training corpus), with the paper-size network (L=12, H=768, 12 heads,
ALIGNN 256×4; random initialisation, seed 0, eval mode):

- ``batch-max``: atom tokens padded to the largest crystal of each batch, distance rows
  only as wide as that (this project's default);
- ``pad-1023``: every crystal padded to 1023 atom tokens with 1023-wide distance rows,
  as the reference implementation does.

Each mode runs in its own child process so that its peak resident memory (``ru_maxrss``)
is its own. Crystals are sorted by size before batching (length bucketing, what the
estimators do), identically in both modes. Persistence images come from
``mcrt_examples/imgs/<id>.npy`` where they exist; other crystals get all-zero images
(flagged in the output — timing does not depend on image values). Reported: wall time
and process CPU time, crystals/s, the batch-max/pad-1023 speed ratio, peak memory, the
largest difference between the two modes' [CLS] embeddings, and the time of one
62-atom crystal (5A_CSP_1) alone (fastest of 3). On a shared machine use
``--repeats 2`` or more: each batch's fastest run is kept, which filters out time
stolen by other processes.

``--flops`` adds one untimed pass per mode under ``torch.utils.flop_counter.FlopCounterMode``
and prints the floating-point operations of each mode and their ratio. On a compute-bound
device that ratio is the most a padding change can buy at identical outputs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mcrt_sklearn._paths import shared_data_dir

DATA = shared_data_dir()


def load_records(n_crystals: int, data: Path = DATA):
    """Featurise the benchmark crystals (graph features only) and attach images."""
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    examples, corpus = data / "mcrt_examples", data / "pretrain_corpus"
    paths = sorted((examples / "cifs").glob("*.cif"))
    with open(corpus / "properties.csv") as fh:
        for row in csv.DictReader(fh):
            paths.append(corpus / "cifs" / f"{row['id']}.cif")
    paths = paths[:n_crystals]
    feat = MCRTFeaturizer(images=False)
    records, zero_images = [], []
    for path in paths:
        (rec,) = feat.featurize(str(path))
        npy = examples / "imgs" / f"{path.stem}.npy"
        if npy.exists():
            arr = np.load(npy, allow_pickle=True)
            image = np.asarray(arr[0], dtype=np.float32)
            scalars = np.array([float(v) for v in arr[1:5]], dtype=np.float32)
        else:
            image = np.zeros((2, 50, 50), dtype=np.float32)
            scalars = np.zeros(4, dtype=np.float32)
            zero_images.append(rec.structure_id)
        records.append(dataclasses.replace(rec, image=image, image_scalars=scalars))
    return records, zero_images


def run_mode(args) -> None:
    """Child process: time one padding mode, write results (JSON) and [CLS] (npy)."""
    import torch

    from mcrt_sklearn.collate import batch_to, collate
    from mcrt_sklearn.model import MCRT, MCRTConfig

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward(recs):
        return model(batch_to(collate(recs, pad_to=pad_to), device))

    with open(args.records, "rb") as fh:
        records = pickle.load(fh)
    order = sorted(range(len(records)), key=lambda i: records[i].n_atoms)
    pad_to = None if args.mode == "batch-max" else 1023
    torch.manual_seed(0)
    cfg = MCRTConfig() if not args.tiny else MCRTConfig(num_blocks=2, hid_dim=64, num_heads=4)
    model = MCRT(cfg).eval().to(device)
    # Warm-up (kernel selection, allocator) on the smallest crystal.
    with torch.inference_mode():
        forward([records[order[0]]])
        sync()
    cls = np.zeros((len(records), cfg.hid_dim), dtype=np.float32)
    wall = cpu = 0.0
    batches = [order[start : start + args.batch_size]
               for start in range(0, len(order), args.batch_size)]
    with torch.inference_mode():
        for idx in batches:
            batch_wall, batch_cpu = [], []
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                out = forward([records[i] for i in idx])
                sync()
                batch_wall.append(time.perf_counter() - t0)
                batch_cpu.append(time.process_time() - c0)
            wall += min(batch_wall)
            cpu += min(batch_cpu)
            cls[idx] = out["cls_feats"].float().cpu().numpy()

    def count_flops(index_batches) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            for idx in index_batches:
                forward([records[i] for i in idx])
        return counter.get_total_flops()

    flops = count_flops(batches) if args.flops else None
    single = None
    ids = [r.structure_id for r in records]
    if "5A_CSP_1" in ids:
        single_idx = ids.index("5A_CSP_1")
        rec = records[single_idx]
        walls, cpus = [], []
        with torch.inference_mode():
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                forward([rec])
                sync()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
        single = {"wall_s": min(walls), "cpu_s": min(cpus)}
        if args.flops:
            single["flops"] = count_flops([[single_idx]])
    np.save(args.out + ".npy", cls)
    result = {
        "mode": args.mode,
        "n_crystals": len(records),
        "wall_s": wall,
        "cpu_s": cpu,
        "crystals_per_s": len(records) / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": (torch.cuda.max_memory_allocated(device) / 2**20
                        if device.type == "cuda" else None),
        "single_62_atoms": single,
        "flops": flops,
    }
    Path(args.out + ".json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-crystals", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time every batch this many times and keep the fastest (robust to a busy machine)",
    )
    parser.add_argument("--tiny", action="store_true", help="small network (smoke test)")
    parser.add_argument("--flops", action="store_true",
                        help="also count each mode's floating-point operations (one more pass)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="folder holding mcrt_examples/ and pretrain_corpus/ "
                             "(default ../shared/data)")
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--records", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        run_mode(args)
        return

    t0 = time.perf_counter()
    records, zero_images = load_records(args.n_crystals, args.data)
    sizes = [r.n_atoms for r in records]
    print(
        f"{len(records)} crystals, {min(sizes)}–{max(sizes)} atoms (mean {np.mean(sizes):.0f}); "
        f"featurised in {time.perf_counter() - t0:.1f} s"
    )
    if zero_images:
        print(
            f"zero (placeholder) persistence images for {len(zero_images)} crystals: benchmark only"
        )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        rec_path = Path(tmp) / "records.pkl"
        with open(rec_path, "wb") as fh:
            pickle.dump(records, fh)
        for mode in ("batch-max", "pad-1023"):
            out = str(Path(tmp) / mode)
            cmd = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--records",
                str(rec_path),
                "--out",
                out,
            ]
            cmd += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
            cmd += ["--repeats", str(args.repeats), "--device", args.device]
            if args.tiny:
                cmd.append("--tiny")
            if args.flops:
                cmd.append("--flops")
            subprocess.run(cmd, check=True)
            results[mode] = json.loads(Path(out + ".json").read_text())
            results[mode]["cls"] = np.load(out + ".npy")
    fast, slow = results["batch-max"], results["pad-1023"]
    diff = float(np.abs(fast.pop("cls") - slow.pop("cls")).max())
    summary = {
        "model": "tiny (L=2, H=64)" if args.tiny else "full (L=12, H=768, A=12, ALIGNN 256x4)",
        "threads": args.threads,
        "device": args.device,
        "batch_size": args.batch_size,
        "repeats_min_taken": args.repeats,
        "n_crystals": len(records),
        "atoms_min_mean_max": [min(sizes), float(np.mean(sizes)), max(sizes)],
        "zero_image_crystals": zero_images,
        "batch_max": fast,
        "pad_1023": slow,
        "speedup_wall": slow["wall_s"] / fast["wall_s"],
        "speedup_cpu": slow["cpu_s"] / fast["cpu_s"],
        "max_abs_cls_difference": diff,
        "flops_ratio": (slow["flops"] / fast["flops"]) if args.flops else None,
        "flops_ratio_62_atoms": (slow["single_62_atoms"]["flops"]
                                 / fast["single_62_atoms"]["flops"])
        if args.flops and fast["single_62_atoms"] else None,
    }
    for name, res in (("batch-max", fast), ("pad-1023", slow)):
        single = res["single_62_atoms"]
        extra = (
            f", 62-atom crystal alone {single['wall_s']:.2f} s wall / {single['cpu_s']:.2f} s CPU"
            if single
            else ""
        )
        gpu = f", peak GPU {res['peak_gpu_mb']:.0f} MB" if res["peak_gpu_mb"] else ""
        print(
            f"{name:>9}: {res['crystals_per_s']:.3f} crystals/s ({res['wall_s']:.1f} s wall, "
            f"{res['cpu_s']:.1f} s CPU), peak RSS {res['peak_rss_mb']:.0f} MB{gpu}{extra}"
        )
    print(
        f"speed-up batch-max vs pad-1023: {summary['speedup_wall']:.1f}x wall, "
        f"{summary['speedup_cpu']:.1f}x CPU time; max |Δ cls| = {diff:.2e}"
    )
    if args.flops:
        print(
            f"floating-point operations: batch-max {fast['flops'] / 1e9:.1f} GFLOP, "
            f"pad-1023 {slow['flops'] / 1e9:.1f} GFLOP, ratio {summary['flops_ratio']:.1f}x "
            "(the most padding can buy on a compute-bound device)"
        )
        if summary["flops_ratio_62_atoms"]:
            print(f"62-atom crystal alone: FLOP ratio {summary['flops_ratio_62_atoms']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
