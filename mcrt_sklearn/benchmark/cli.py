"""The ``mcrt-sklearn benchmark`` and ``mcrt-sklearn demo`` command lines."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from mcrt_sklearn.benchmark.fewshot import run_few_shot
from mcrt_sklearn.benchmark.report import markdown_table
from mcrt_sklearn.benchmark.run import run_benchmark
from mcrt_sklearn.benchmark.settings import MODELS, _parse_value, merge_settings, parse_overrides

__all__ = ["build_benchmark_parser", "benchmark_main", "demo_main", "DEMO_SETTINGS",
           "DEMO_MODELS"]


def _cv_arg(text: str):
    return text if text in ("split", "paper") else int(text)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def build_benchmark_parser(prog: str = "mcrt-sklearn benchmark") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Cross-validated, resumable benchmark of MCRT against the "
        "baselines (results.json, results.md, parity.png, radar.png).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset name (azaphenacenes, roy, …)")
    src.add_argument("--data", help="folder with cifs/<id>.cif + properties.csv")
    p.add_argument("--target", required=True, help="column of properties.csv to predict")
    p.add_argument("--group", default=None, help="column for grouped CV (e.g. group)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                   help=f"models to run (default: all of {' '.join(MODELS)})")
    p.add_argument("--cv", type=_cv_arg, default=5, help="number of folds, or 'split' (default 5)")
    p.add_argument("--protocol", choices=("cv", "paper"), default="cv",
                   help="'paper': the paper's random 80/10/10 train/validation/test split, "
                        "repeated over 5 seeds (overrides --cv; no --group)")
    p.add_argument("--pretrain-on", default="pretrain_corpus",
                   help="unlabelled corpus for MCRT pre-training (name or folder)")
    p.add_argument("--fast", action="store_true",
                   help="reduced CPU profile: fast persistence images, 2x64 MCRT, short training")
    p.add_argument("--log10", action="store_true", help="predict log10 of the target")
    p.add_argument("--interval", type=float, default=None, metavar="LEVEL",
                   help="conformal intervals at this confidence level (e.g. 0.9): each "
                        "fold's model is wrapped in MAPIE CV+ (5 fits per fold, grouped by "
                        "--group when given); adds coverage and width columns")
    p.add_argument("--interval-method", choices=("cross", "split"), default="cross",
                   help="'cross': CV+ (5 fits per fold); 'split': one fit per fold on 80%% "
                        "of its training part, calibrated on the other 20%% (affordable for "
                        "the networks)")
    p.add_argument("--higher-is-better", action="store_true",
                   help="top-k = highest values (default: lowest for energies, else highest)")
    p.add_argument("--lower-is-better", action="store_true", help="top-k = lowest values")
    p.add_argument("--max-structures", type=int, default=None, help="random subset size")
    p.add_argument("--train-fraction", type=float, default=None, metavar="F",
                   help="learning-curve point: keep a seeded fraction F in (0, 1] of each "
                        "fold's training part, the test parts unchanged (run folder "
                        "<dataset>-<target>-trainF)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default auto)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. finetune.max_epochs=20 (repeatable)")
    p.add_argument("--out", default="benchmark_results", help="output folder")
    p.add_argument("--data-home", default=None, help="folder holding the datasets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--folds", type=int, nargs="+", default=None, metavar="K",
                   help="fit only these folds, numbered as the fold files (0 = "
                        "folds/<model>/fold0.json), e.g. to share one run folder between "
                        "machines; the table then holds the folds done so far")
    p.add_argument("--few-shot", type=int, nargs="+", default=None, metavar="N",
                   help="few-shot protocol instead of CV (needs --group): train on the other "
                   "groups, then adapt with N structures of each target group, e.g. 0 5 10 20")
    p.add_argument("--target-groups", nargs="+", default=None,
                   help="few-shot target groups (default: every group large enough)")
    p.add_argument("--min-test", type=int, default=10,
                   help="few-shot: test structures kept per target group (default 10)")
    return p


def benchmark_main(argv: Sequence[str] | None = None) -> int:
    """``mcrt-sklearn benchmark``: parse ``argv`` and run :func:`run_benchmark`."""
    args = build_benchmark_parser().parse_args(argv)
    _set_threads(args.threads)
    overrides = parse_overrides(args.set)
    if args.log10:
        overrides["target_transform"] = "log10"
    if args.interval is not None:
        from mcrt_sklearn.benchmark.intervals import interval_settings

        overrides["interval"] = interval_settings(args.interval, method=args.interval_method)
    if args.higher_is_better:
        overrides["lower_is_better"] = False
    if args.lower_is_better:
        overrides["lower_is_better"] = True
    if args.max_structures is not None:
        overrides["max_structures"] = args.max_structures
    if args.train_fraction is not None:
        overrides["train_fraction"] = args.train_fraction
    if args.device is not None:
        overrides["device"] = args.device
    if args.few_shot is not None:
        if args.group is None:
            raise SystemExit("--few-shot needs --group COL")
        groups = args.target_groups
        if groups is not None:  # match the column's type (ints for the azaphenacenes)
            groups = [_parse_value(g) for g in groups]
        res = run_few_shot(
            args.dataset or args.data, args.target, args.group, models=args.models,
            shots=args.few_shot, target_groups=groups, min_test=args.min_test,
            pretrain_on=args.pretrain_on, fast=args.fast, out_dir=args.out,
            data_home=args.data_home, random_state=args.seed, settings=overrides,
            plots=not args.no_plots)
        print()
        print(Path(res["run_dir"], "few_shot.md").read_text())
        return 0
    if args.protocol == "paper" and args.group:
        raise SystemExit("--protocol paper is a random split; drop --group")
    results = run_benchmark(
        args.dataset or args.data, args.target, models=args.models,
        cv="paper" if args.protocol == "paper" else args.cv,
        group=args.group, pretrain_on=args.pretrain_on, fast=args.fast, out_dir=args.out,
        data_home=args.data_home, random_state=args.seed, settings=overrides,
        plots=not args.no_plots,
        only_folds=args.folds)
    print()
    print(markdown_table(results))
    print(f"\nresults: {results['run_dir']}/results.json (+ results.md, parity.png, radar.png)")
    return 0


#: The demo's reduced protocol (measured to finish in ≤ 15 min on 2 CPU cores; see README).
DEMO_SETTINGS = {
    "max_structures": 150,
    "featurizer": {"image_mode": "fast"},
    "pretrain": {"max_structures": 96, "max_epochs": 5, "lr": 1e-3, "batch_size": 8},
    "finetune": {"max_epochs": 25, "lr": 1e-3, "batch_size": 8, "accumulate": 1},
    "RF-SOAP": {"n_estimators": 200, "search": False},
    "KRR-SOAP": {"search": True},
    "CGCNN": {"max_epochs": 15, "batch_size": 16},
    "CrystalTwins": {"max_epochs": 15, "batch_size": 16},
}
DEMO_MODELS = ("MCRT", "MCRTp", "MCRTi", "RF-SOAP", "KRR-SOAP", "CGCNN", "CrystalTwins",
               "TrainMean")


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``mcrt-sklearn demo``: a small, complete, honest comparison on azaphenacene lattice energies.

    A seeded random subset of the azaphenacene CSP landscape, one 80/20 split, fast
    persistence images, a 2×64 MCRT pre-trained briefly on part of the pre-training
    corpus, reduced epochs for every network. Prints the table from this very run and
    writes results.json, results.md, parity.png and radar.png.
    """
    p = argparse.ArgumentParser(prog="mcrt-sklearn demo", description=demo_main.__doc__.split("\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding the datasets "
                   "(default $MCRT_SKLEARN_DATA, else ~/.cache/mcrt_sklearn; downloaded if missing)")
    p.add_argument("--out", default="mcrt_demo", help="output folder (default ./mcrt_demo)")
    p.add_argument("--n", type=int, default=DEMO_SETTINGS["max_structures"],
                   help="number of azaphenacene structures (default %(default)s)")
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=MODELS,
                   metavar="MODEL", help=f"default: {' '.join(DEMO_MODELS)}")
    p.add_argument("--cv", type=_cv_arg, default="split", help="'split' (default) or folds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting")
    args = p.parse_args(argv)
    _set_threads(args.threads)
    overrides = merge_settings(DEMO_SETTINGS, {"max_structures": args.n})
    overrides = merge_settings(overrides, parse_overrides(args.set))
    t = time.perf_counter()
    print("MCRT demo: azaphenacene lattice energies (reduced CPU protocol; see results.json)\n")
    results = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", models=args.models,
                            cv=args.cv, fast=True, out_dir=args.out, data_home=args.data_home,
                            random_state=args.seed, settings=overrides)
    wall = time.perf_counter() - t
    print()
    print(markdown_table(results))
    print(f"\nMAE/RMSE in kJ/mol. Wall time {wall / 60:.1f} min. Figures and settings: "
          f"{results['run_dir']}/ (results.json, results.md, parity.png, radar.png)")
    return 0
