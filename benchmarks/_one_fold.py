"""One fold of a benchmark dataset, as ``mcrt-sklearn benchmark`` splits it.

Shared by the diagnostic scripts (``mcrt_fit_check.py``, ``input_probe.py``): the same
command-line options, settings, targets, folds and feature cache as the benchmark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

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
        default_settings,
        featurize_task,
        load_task,
        merge_settings,
        parse_overrides,
        task_folds,
    )

    s = merge_settings(default_settings(fast=not args.full), parse_overrides(args.set))
    task = load_task(args.dataset, args.target, group=args.group,
                     transform="log10" if args.log10 else None, data_home=args.data_home)
    tr, te = task_folds(task, args.cv, s["seed"])[args.fold]
    if n_train:
        tr = tr[:n_train]
    both = np.concatenate([tr, te])
    records = featurize_task(task, s, args.cache, both)
    return Fold(s, records, task.y[both], np.arange(len(tr)), np.arange(len(tr), len(both)))
