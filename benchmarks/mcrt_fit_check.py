"""Does the benchmark's MCRT fit its own training set? Train vs test MAE of one fold.

A model whose *training* MAE is close to that of predicting the training mean is
underfitting: its test error says nothing about the representation, only that training
was too short or too small. This script fine-tunes ``MCRTRegressor`` (no pre-training,
as MCRTp, or from ``--checkpoint``, as MCRT) with the settings of ``mcrt-sklearn
benchmark`` (the ``--fast`` CPU profile unless ``--full``; change any of them with
``--set``) on one fold of a dataset and prints, for each number of epochs asked for, the
MAE on the training and test parts next to the MAE of the training mean, and the spread
of the predictions next to that of the targets. Results depend slightly on the number of torch threads (``--threads``).

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

import numpy as np


def main(argv=None) -> None:
    from _one_fold import add_fold_arguments, load_fold

    from mcrt_sklearn.benchmark import finetune_settings
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fold_arguments(p, cache_default="mcrt_fit_check_cache")
    p.add_argument("--epochs", type=int, nargs="+", default=[8, 30])
    p.add_argument("--n-train", type=int, default=None,
                   help="fine-tune on the first N training structures only")
    p.add_argument("--checkpoint", default=None,
                   help="fine-tune from this (pre-trained) checkpoint, as MCRT; default: "
                        "a fresh network, as MCRTp")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    fold = load_fold(args, n_train=args.n_train)
    s = fold.settings
    print(f"{args.dataset}: fold {args.fold} of {args.cv}, {len(fold.train)} train / "
          f"{len(fold.test)} test, features {time.perf_counter() - t:.0f} s")
    x_tr = [fold.records[i] for i in fold.train]
    x_te = [fold.records[i] for i in fold.test]
    y_tr, y_te = fold.y[fold.train], fold.y[fold.test]

    def mae(a, b) -> float:
        return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))

    # a checkpoint start is trained like the benchmark's pre-trained MCRT
    finetune = finetune_settings("MCRT" if args.checkpoint else "MCRTp", s)
    print(f"MCRT {s['mcrt']}, fine-tuning {finetune}")
    print("| epochs | train MAE | train MAE of the mean | test MAE | test MAE of the train mean "
          "| std(pred train) | std(y train) | fit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for epochs in args.epochs:
        est = MCRTRegressor(checkpoint=args.checkpoint, **s["mcrt"],
                            **{**finetune, "max_epochs": epochs},
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
