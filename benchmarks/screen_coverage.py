"""Coverage of ``screen``'s intervals on landscapes the model has not seen.

Azaphenacenes: the isomers of ``--holdout`` (default the three largest landscapes,
groups 9, 16 and 5: 210 structures) are the candidates — with their lattice energies in
``properties.csv``, so the screen measures the coverage — and the other 25 isomers (313
structures) the training set. Each model is screened twice: with random CV+ folds, and
with folds that leave whole isomers out (``group_column="group"``). Writes
``<out>/coverage.json`` and each screen's outputs (ranking.csv, landscape.png, summary.md,
calibration.png) under ``<out>/<model>-<calibration>/``.

    python benchmarks/screen_coverage.py --models GP-SOAP KRR-SOAP \\
        --out benchmarks/results/screening/azaphenacenes-holdout-9-16-5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = "lattice_energy_kJ_per_mol"


def _layout(folder: Path, rows: pd.DataFrame, src: Path) -> None:
    (folder / "cifs").mkdir(parents=True, exist_ok=True)
    for sid in rows["id"]:
        dest = folder / "cifs" / f"{sid}.cif"
        if not dest.exists():
            os.symlink(src / "cifs" / f"{sid}.cif", dest)
    rows.to_csv(folder / "properties.csv", index=False)


def main(argv=None) -> int:
    from mcrt_sklearn.datasets import dataset_folder
    from mcrt_sklearn.screening.workflow import screen

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--holdout", nargs="+", type=int, default=[9, 16, 5])
    p.add_argument("--models", nargs="+", default=["GP-SOAP", "KRR-SOAP"])
    p.add_argument("--interval", type=float, default=0.9)
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/mcrt_sklearn/screening"))
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    src = dataset_folder("azaphenacenes")
    table = pd.read_csv(src / "properties.csv")
    held = table["group"].isin(args.holdout)
    work = Path(tempfile.mkdtemp(prefix="screen_coverage_"))
    _layout(work / "train", table[~held], src)
    _layout(work / "cand", table[held], src)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"settings": {**vars(args), "target": TARGET, "n_train": int((~held).sum()),
                            "n_candidates": int(held.sum())}, "runs": {}}
    for model in args.models:
        for calibration, group_column in (("random-folds", None), ("isomer-folds", "group")):
            t0 = time.time()
            res = screen(work / "train", TARGET, work / "cand", model=model,
                         interval=args.interval, top_k=10, out=out / f"{model}-{calibration}",
                         cv=args.cv, cache_dir=args.cache_dir, group_column=group_column)
            run = {"coverage": res.coverage, "mean_width": res.mean_width,
                   "calibration": res.calibration, "seconds": round(time.time() - t0, 1)}
            results["runs"][f"{model} {calibration}"] = run
            print(f"{model} {calibration}: coverage {res.coverage:.3f}, mean width "
                  f"{res.mean_width:.3g} ({run['seconds']} s)", flush=True)
    (out / "coverage.json").write_text(json.dumps(results, indent=1, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
