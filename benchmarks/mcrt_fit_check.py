"""Does the benchmark's MCRT fit its own training set? Train vs test MAE of one fold.

A model whose *training* MAE is close to that of predicting the training mean is
underfitting: its test error says nothing about the representation, only that training
was too short or too small. This script fine-tunes ``MCRTRegressor`` (no pre-training,
as MCRTp) with the settings of ``mcrt-sklearn benchmark`` (the ``--fast`` CPU profile
unless ``--full``; change any of them with ``--set``) on one fold of a dataset and
prints, for each number of epochs asked for, the MAE on the training and test parts next
to the MAE of the training mean, and the spread of the predictions next to that of the
targets. Results depend slightly on the number of torch threads (``--threads``).

    python benchmarks/mcrt_fit_check.py --dataset roy --target relative_energy_kJ_per_mol \
        --epochs 8 30
    python benchmarks/mcrt_fit_check.py --dataset roy --target relative_energy_kJ_per_mol \
        --epochs 60 --n-train 32          # can it memorise a small set?
    python benchmarks/mcrt_fit_check.py ... --set mcrt.use_images=false

Features are cached under ``--cache`` (the benchmark's cache layout, so a benchmark
run's cache is reused).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    from mcrt_sklearn.benchmark import (
        _Inputs,
        _parse_sets,
        _target_values,
        default_settings,
        make_folds,
        merge_settings,
    )
    from mcrt_sklearn.datasets import load_dataset
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--log10", action="store_true", help="fit log10 of the target")
    p.add_argument("--group", default=None, help="column for GroupKFold (as the benchmark)")
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--epochs", type=int, nargs="+", default=[8, 30])
    p.add_argument("--n-train", type=int, default=None,
                   help="fine-tune on the first N training structures only")
    p.add_argument("--full", action="store_true", help="paper-size settings, not --fast")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a benchmark setting, e.g. finetune.lr=3e-4")
    p.add_argument("--data-home", default=None)
    p.add_argument("--cache", default="mcrt_fit_check_cache")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    s = merge_settings(default_settings(fast=not args.full), _parse_sets(args.set))
    ids, structures, table = load_dataset(args.dataset, data_home=args.data_home)
    y = _target_values(table, args.target, "log10" if args.log10 else None)
    keep = np.flatnonzero(np.isfinite(y))
    groups = table[args.group].to_numpy()[keep] if args.group else None
    tr, te = make_folds(len(keep), args.cv, groups, s["seed"])[args.fold]
    tr, te = keep[tr], keep[te]
    if args.n_train:
        tr = tr[: args.n_train]

    both = np.concatenate([tr, te])
    t = time.perf_counter()
    records = _Inputs([ids[i] for i in both], [structures[i] for i in both], s,
                      Path(args.cache)).records()
    print(f"{args.dataset}: fold {args.fold} of {args.cv}, {len(tr)} train / {len(te)} test, "
          f"features {time.perf_counter() - t:.0f} s")
    x_tr, x_te = records[: len(tr)], records[len(tr):]
    y_tr, y_te = y[tr], y[te]

    def mae(a, b) -> float:
        return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))

    print(f"MCRT {s['mcrt']}, fine-tuning {s['finetune']}")
    print("| epochs | train MAE | train MAE of the mean | test MAE | test MAE of the train mean "
          "| std(pred train) | std(y train) | fit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for epochs in args.epochs:
        est = MCRTRegressor(**s["mcrt"], **{**s["finetune"], "max_epochs": epochs},
                            random_state=s["seed"], device="cpu")
        t = time.perf_counter()
        est.fit(x_tr, y_tr)
        fit_s = time.perf_counter() - t
        p_tr, p_te = est.predict(x_tr), est.predict(x_te)
        print(f"| {epochs} | {mae(p_tr, y_tr):.3g} | {mae(y_tr.mean(), y_tr):.3g} "
              f"| {mae(p_te, y_te):.3g} | {mae(y_tr.mean(), y_te):.3g} "
              f"| {np.std(p_tr):.3g} | {np.std(y_tr):.3g} | {fit_s:.0f} |", flush=True)


if __name__ == "__main__":
    main()
