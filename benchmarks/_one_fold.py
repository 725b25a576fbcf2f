"""One fold of a benchmark dataset, as ``mcrt-sklearn benchmark`` splits it.

Shared by the diagnostic scripts (``mcrt_fit_check.py``, ``input_probe.py``): the same
command-line options, settings, targets, folds and feature cache as the benchmark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def add_fold_arguments(p: argparse.ArgumentParser, cache_default: str) -> None:
    """Options naming the dataset, target, fold, settings and cache."""
    p.add_argument("--dataset", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--log10", action="store_true", help="use log10 of the target")
    p.add_argument("--group", default=None, help="column for GroupKFold (as the benchmark)")
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--full", action="store_true", help="paper-size settings, not --fast")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a benchmark setting, e.g. finetune.lr=3e-4")
    p.add_argument("--data-home", default=None)
    p.add_argument("--cache", default=cache_default,
                   help="the benchmark's cache folder (its features are reused)")


@dataclass
class Fold:
    """Settings, records, targets and the train/test positions of one fold."""

    settings: dict
    records: list
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray


def load_fold(args: argparse.Namespace, n_train: int | None = None) -> Fold:
    """Featurise (cached) the fold's structures; ``train``/``test`` index ``records``.

    ``n_train`` keeps only the first that many training structures.
    """
    from mcrt_sklearn.benchmark import (
        _Inputs,
        _parse_sets,
        _target_values,
        default_settings,
        make_folds,
        merge_settings,
    )
    from mcrt_sklearn.datasets import load_dataset

    s = merge_settings(default_settings(fast=not args.full), _parse_sets(args.set))
    ids, structures, table = load_dataset(args.dataset, data_home=args.data_home)
    y = _target_values(table, args.target, "log10" if args.log10 else None)
    keep = np.flatnonzero(np.isfinite(y))
    groups = table[args.group].to_numpy()[keep] if args.group else None
    tr, te = make_folds(len(keep), args.cv, groups, s["seed"])[args.fold]
    tr, te = keep[tr], keep[te]
    if n_train:
        tr = tr[:n_train]
    both = np.concatenate([tr, te])
    records = _Inputs([ids[i] for i in both], [structures[i] for i in both], s,
                      Path(args.cache)).records()
    return Fold(s, records, y[both], np.arange(len(tr)), np.arange(len(tr), len(both)))
