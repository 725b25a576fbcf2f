"""Fine-tuning throughput: batch-max padding vs the reference's padding to 1023 atoms.

For each model size, one fine-tuning epoch of ``MCRTRegressor`` on the same real
crystals (azaphenacenes, persistence images off so that only the network is timed)
is run twice — with atom tokens padded to the largest crystal of each batch (ours)
and to 1023 (``pad_to=1023``, the reference layout) — each in a fresh process, and
crystals/s and the peak RSS of that process are printed with their ratios.

    python benchmarks/train_speed.py                 # small and full size, 32 crystals
    python benchmarks/train_speed.py --sizes small --n 64
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

from mcrt_sklearn._paths import shared_data_dir

SHARED = shared_data_dir()

SIZES = {
    "small": dict(hid_dim=256, num_blocks=4, num_heads=8, alignn_hidden_dim=64, alignn_num_conv=2),
    "full": dict(hid_dim=768, num_blocks=12, num_heads=12, alignn_hidden_dim=256,
                 alignn_num_conv=4),
}


def _records(n: int):
    import pandas as pd

    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    table = pd.read_csv(SHARED / "azaphenacenes" / "properties.csv").iloc[:: max(1, 523 // n)][:n]
    paths = [str(SHARED / "azaphenacenes" / "cifs" / f"{i}.cif") for i in table["id"]]
    return MCRTFeaturizer(images=False).transform(paths), table["lattice_energy_kJ_per_mol"].values


def _one_epoch(size: str, pad_to, n: int, batch_size: int, threads: int, queue) -> None:
    import torch

    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    torch.set_num_threads(threads)
    records, y = _records(n)
    # one batch per step and no validation split: the time of one epoch over all n
    reg = MCRTRegressor(**SIZES[size], use_images=False, max_epochs=1, batch_size=batch_size,
                        accumulate=1, validation_fraction=None, pad_to=pad_to, random_state=0,
                        recalibrate_batchnorm=False)
    start = time.perf_counter()
    reg.fit(records, y)
    elapsed = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atoms = sum(r.n_atoms for r in records) / len(records)
    queue.put((len(records) / elapsed, rss_mb, elapsed, atoms))


def measure(size: str, pad_to, n: int, batch_size: int, threads: int):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_one_epoch, args=(size, pad_to, n, batch_size, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "full"], choices=sorted(SIZES))
    parser.add_argument("--n", type=int, default=32, help="crystals in the epoch")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.n} azaphenacene crystals, batch {args.batch_size}, {args.threads} threads, "
          "images off, one fine-tuning epoch per run")
    print(f"{'size':6s} {'padding':10s} {'crystals/s':>11s} {'epoch s':>8s} {'peak RSS MB':>12s}")
    for size in args.sizes:
        ours = measure(size, None, args.n, args.batch_size, args.threads)
        ref = measure(size, 1023, args.n, args.batch_size, args.threads)
        for name, (rate, rss, secs, _) in (("batch-max", ours), ("pad 1023", ref)):
            print(f"{size:6s} {name:10s} {rate:11.2f} {secs:8.1f} {rss:12.0f}")
        print(f"{size:6s} ratio: {ours[0] / ref[0]:.1f}x crystals/s, "
              f"{ref[1] / ours[1]:.1f}x less peak RSS (mean {ours[3]:.0f} atoms per crystal)")


if __name__ == "__main__":
    main()
