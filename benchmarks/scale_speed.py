"""Scale-out measurements (issue 17), as ratios within one run:

1. **Peak memory of ``fit`` from a record store** against the number of records N: each
   measurement is a fresh process that fits a small MCRTRegressor for one epoch on N
   records, read from an on-disk store (records of real crystals repeated under new ids:
   the store keeps one copy of each crystal's bytes), and, for comparison, on the same
   records as an in-memory list. Goal: the store's peak RSS flat within 20 % from the
   smallest to the largest N.
2. **Featurisation throughput on dask**: the same crystals featurised into a store by a
   LocalCluster of 1 and of 2 worker processes. Goal: ≥ 1.7× with 2 workers (on a
   machine with 2 free cores).
3. **DDP**: pre-training of a 2 × 64 MCRT from a store, in one process and in two
   (``accelerate launch``, CPU processes with gloo), one thread per process, the same
   global batch; and one process with two threads (the other way to use two cores).
   Reported, no goal.

Writes ``benchmarks/results/scale/scale_speed.json`` (and prints it), measurement by
measurement, so a stopped run keeps what it measured; a run with ``--only`` updates its
own sections of an existing file and keeps the others.

    python benchmarks/scale_speed.py --sizes 1000 4000 16000
    python benchmarks/scale_speed.py --sizes 256 1024 --crystals 16   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "scale" / "scale_speed.json"

_FIT = """
import json, resource, sys, time
import numpy as np
from mcrt_sklearn import MCRTRegressor
from mcrt_sklearn.store import RecordStore
store = RecordStore(sys.argv[1])
n = int(sys.argv[2])
from mcrt_sklearn.estimators._net import RecordView
X = RecordView(store, range(n))
if sys.argv[3] == "list":
    X = list(X)
y = np.sin(np.arange(n, dtype=float))
t = time.perf_counter()
MCRTRegressor(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
              use_images=False, max_epochs=1, batch_size=32, accumulate=1,
              validation_fraction=0.1, random_state=0).fit(X, y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_rss_bytes": peak, "fit_seconds": time.perf_counter() - t}))
"""


_PRETRAIN = """
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from accelerate import Accelerator
from mcrt_sklearn import MCRTPretrainer
from mcrt_sklearn.store import RecordStore
acc = Accelerator(cpu=True)
store = RecordStore(sys.argv[1])
pre = MCRTPretrainer(hid_dim=64, num_blocks=2, num_heads=4, alignn_hidden_dim=32,
                     alignn_num_conv=2, use_images=False, drop_rate=0.0,
                     max_epochs=int(sys.argv[2]), batch_size=16, accumulate=2, lr=1e-3,
                     validation_fraction=None, random_state=0, accelerator=acc)
t = time.perf_counter()
pre.fit(store)
seconds = time.perf_counter() - t
if acc.is_main_process:
    print(json.dumps({"fit_seconds": seconds, "processes": acc.num_processes,
                      "final_train_loss": float(pre.history_[-1, "train_loss"])}))
"""


def _save(results: dict) -> None:
    out = Path(results["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, out)


def _crystal_paths(n: int) -> list[str]:
    from mcrt_sklearn._paths import shared_data_dir

    cifs = sorted((shared_data_dir() / "azaphenacenes" / "cifs").glob("*.cif"))
    if len(cifs) < n:
        raise SystemExit(f"needs {n} azaphenacene CIFs under ../shared/data (found {len(cifs)})")
    return [str(p) for p in cifs[:n]]


def repeated_store(path: Path, paths: list[str], n: int):
    """A store of ``n`` records: the crystals of ``paths`` featurised once, then appended
    again under new ids until there are ``n``."""
    import dataclasses

    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
    from mcrt_sklearn.store import featurize_to_store

    store = featurize_to_store(paths, path, MCRTFeaturizer(images=False))
    base = [(store[i], store.keys()[i]) for i in range(len(store))]
    i = len(store)
    while i < n:
        record, key = base[i % len(base)]
        store.append(dataclasses.replace(record, structure_id=f"copy{i}"), key)
        i += 1
    return store


def memory(sizes: list[int], crystals: int, results: dict) -> None:
    paths = _crystal_paths(crystals)
    with tempfile.TemporaryDirectory() as tmp:
        store = repeated_store(Path(tmp) / "s", paths, max(sizes))
        rows = results.setdefault("memory", [])
        for n in sizes:
            for kind in ("store", "list"):
                out = subprocess.run([sys.executable, "-c", _FIT, str(store.path), str(n), kind],
                                     capture_output=True, text=True, check=True)
                row = {"n": n, "X": kind, **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(row, flush=True)
                _save(results)
    by = {(r["n"], r["X"]): r["peak_rss_bytes"] for r in results["memory"]}
    lo, hi = min(sizes), max(sizes)
    results["memory_summary"] = {
        "store_peak_ratio_largest_to_smallest": by[(hi, "store")] / by[(lo, "store")],
        "list_peak_ratio_largest_to_smallest": by[(hi, "list")] / by[(lo, "list")],
        "goal": "store ratio ≤ 1.2",
    }
    _save(results)


def dask_throughput(crystals: int, results: dict) -> None:
    from distributed import Client, LocalCluster

    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
    from mcrt_sklearn.store import featurize_to_store

    paths = _crystal_paths(crystals)
    rows = results.setdefault("dask", [])
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp, \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("mcrt_sklearn.featurizers.graph"))  # warm imports
            t = time.perf_counter()
            featurize_to_store(paths, Path(tmp) / "s", MCRTFeaturizer(image_mode="fast"),
                               client=client, chunk_size=2)
            seconds = time.perf_counter() - t
        row = {"workers": workers, "crystals": crystals, "seconds": seconds,
               "crystals_per_second": crystals / seconds}
        rows.append(row)
        print(row, flush=True)
        _save(results)
    results["dask_summary"] = {"speedup_2_vs_1": rows[-1]["crystals_per_second"]
                               / rows[-2]["crystals_per_second"], "goal": "≥ 1.7"}
    _save(results)


def ddp_speed(crystals: int, epochs: int, results: dict) -> None:
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
    from mcrt_sklearn.store import featurize_to_store

    paths = _crystal_paths(crystals)
    rows = results.setdefault("ddp", [])
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        store = featurize_to_store(paths, Path(tmp) / "s",
                                   MCRTFeaturizer(images=False, pretrain_labels=True))
        script = Path(tmp) / "pretrain.py"
        script.write_text(_PRETRAIN)
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                  "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                  "--dynamo_backend", "no"]
        for label, cmd in (("1 process, 1 thread", [sys.executable, str(script)]),
                           ("2 processes (DDP), 1 thread each", [*launch, str(script)]),
                           ("1 process, 2 threads", [sys.executable, str(script)])):
            threads = "2" if "2 threads" in label else "1"
            t = time.perf_counter()
            out = subprocess.run([*cmd, str(store.path), str(epochs), threads], env=env,
                                 capture_output=True, text=True, check=True)
            row = {"run": label, "crystals": len(store), "epochs": epochs,
                   "wall_seconds": time.perf_counter() - t,
                   **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(row, flush=True)
            _save(results)
    by = {r["run"]: r["fit_seconds"] for r in rows[-3:]}
    results["ddp_summary"] = {
        "speedup_2_processes_vs_1": by["1 process, 1 thread"]
        / by["2 processes (DDP), 1 thread each"],
        "speedup_2_threads_vs_1": by["1 process, 1 thread"] / by["1 process, 2 threads"],
        "goal": "reported"}
    _save(results)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    p.add_argument("--crystals", type=int, default=32,
                   help="distinct crystals (memory: repeated to each size; dask: featurised)")
    p.add_argument("--only", choices=("memory", "dask", "ddp"), default=None)
    p.add_argument("--epochs", type=int, default=3, help="ddp: pre-training epochs")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    results = json.loads(args.out.read_text()) if args.only and args.out.exists() else {}
    section = args.only or "all"
    results.update({"out": str(args.out), "cpu_count": os.cpu_count()})
    results.setdefault("runs", {})[section] = {
        "sizes": args.sizes, "crystals": args.crystals,
        "load_average_at_start": os.getloadavg()}
    for key in ([args.only, f"{args.only}_summary"] if args.only else []):
        results.pop(key, None)  # this run measures its section afresh
    if args.only in (None, "memory"):
        memory(sorted(args.sizes), args.crystals, results)
    if args.only in (None, "dask"):
        dask_throughput(args.crystals, results)
    if args.only in (None, "ddp"):
        ddp_speed(args.crystals, args.epochs, results)
    print(json.dumps({k: v for k, v in results.items() if k.endswith("summary")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
