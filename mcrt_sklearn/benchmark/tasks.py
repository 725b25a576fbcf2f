"""One benchmark task (a dataset and a target) as the benchmark sees it: the public way for
scripts to load the same structures, targets, folds and cached features as
``mcrt-sklearn benchmark`` (``benchmarks/_one_fold.py``, ``benchmarks/pooler_diagnosis.py``).

    task = load_task("roy", "relative_energy_kJ_per_mol")
    train, test = task_folds(task, cv=5, seed=0)[0]
    records = featurize_task(task, default_settings(fast=True), "benchmark_results/cache")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mcrt_sklearn.benchmark.folds import make_folds
from mcrt_sklearn.benchmark.inputs import _dataset_name, _Inputs, _load_subset, _target_values

__all__ = ["Task", "load_task", "task_folds", "featurize_task"]


@dataclass
class Task:
    """The structures and targets of one dataset and target, as the benchmark uses them.

    Attributes
    ----------
    name : str
        Dataset name (a folder dataset's folder name); part of the run folder's name.
    source : str
        The dataset as given: a name or a folder.
    target : str
        Column of ``properties.csv`` predicted.
    transform : str or None
        ``"log10"`` when ``y`` is the log10 of the column, else None.
    ids : list of str
    structures : list of pymatgen Structure
        Aligned with ``ids``.
    y : ndarray of shape (n,)
        The (transformed) target of each structure; all finite.
    groups : ndarray of shape (n,) or None
        The ``group`` column's value of each structure, when a group column was named.
    table : pandas.DataFrame
        The rows of ``properties.csv``, aligned with ``ids``.
    n_dropped : int
        Structures left out because their (transformed) target is NaN or infinite.
    """

    name: str
    source: str
    target: str
    transform: str | None
    ids: list
    structures: list
    y: np.ndarray
    groups: np.ndarray | None
    table: pd.DataFrame
    n_dropped: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def load_task(dataset, target: str, *, group: str | None = None, transform: str | None = None,
              data_home=None, max_structures: int | None = None, seed: int = 0,
              ids: Sequence[str] | None = None) -> Task:
    """Load a dataset's structures and target the way :func:`run_benchmark` does.

    Parameters
    ----------
    dataset : str or path
        A dataset name (``"azaphenacenes"``, ``"roy"`` …) or a folder with
        ``cifs/<id>.cif`` + ``properties.csv``.
    target : str
        Column of ``properties.csv`` to predict.
    group : str, optional
        Column whose values become :attr:`Task.groups` (group folds, few-shot groups).
    transform : {None, "log10"}
        Predict the log10 of the target (the benchmark's ``target_transform``).
    data_home : path, optional
        Where datasets live (else ``$MCRT_SKLEARN_DATA``, else downloaded).
    max_structures : int, optional
        A seeded random subset of that many structures with a finite target (the
        benchmark's ``max_structures``); None = all.
    seed : int
        Seeds the subset (the benchmark's ``seed`` / ``random_state``).
    ids : sequence of str, optional
        Load only these structures, in this order (e.g. those of a stored fold); not
        together with ``max_structures``.

    Returns
    -------
    Task
        Structures whose target is NaN or infinite (after the transform) are left out, as
        in the benchmark, before any fold is made; :attr:`Task.n_dropped` counts them.

    Raises
    ------
    KeyError
        ``target`` is not a column of the dataset.
    ValueError
        An unknown ``transform``, or ``"log10"`` of a non-positive value.
    """
    if ids is not None:
        if max_structures is not None:
            raise ValueError("give ids or max_structures, not both")
        from mcrt_sklearn.datasets import load_dataset

        loaded_ids, structures, table = load_dataset(dataset, data_home=data_home, ids=ids)
    else:
        loaded_ids, structures, table = _load_subset(dataset, data_home, max_structures, seed,
                                                     target)
    y = _target_values(table, target, transform)
    ok = np.isfinite(y)
    n_dropped = int((~ok).sum())
    if n_dropped:
        loaded_ids = [i for i, keep in zip(loaded_ids, ok, strict=True) if keep]
        structures = [st for st, keep in zip(structures, ok, strict=True) if keep]
        table, y = table[ok].reset_index(drop=True), y[ok]
    groups = table[group].to_numpy() if group is not None else None
    return Task(name=_dataset_name(dataset), source=str(dataset), target=target,
                transform=transform, ids=list(loaded_ids), structures=list(structures), y=y,
                groups=groups, table=table, n_dropped=n_dropped)


def task_folds(task: Task, cv: int | str = 5, seed: int = 0
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The benchmark's (train, test) folds of ``task``: positions into ``task.ids``.

    Parameters
    ----------
    task : Task
    cv : int, "split" or "paper"
        As :func:`make_folds`; group folds when ``task.groups`` is set.
    seed : int
        The benchmark's ``seed`` (``random_state``).

    Returns
    -------
    list of (train, test) index arrays
        The very folds ``run_benchmark`` scores with the same arguments.
    """
    return make_folds(len(task.ids), cv, task.groups, seed)


def featurize_task(task: Task, settings: dict, cache, indices=None) -> list:
    """The MCRT records of ``task``'s structures, from (and into) the benchmark's cache.

    Parameters
    ----------
    task : Task
    settings : dict
        Benchmark settings (:func:`default_settings`, possibly merged with overrides);
        their ``featurizer`` entry makes the records.
    cache : path
        The benchmark's cache folder (``<out_dir>/cache``); records are stored under its
        ``features/`` and reused by every run that uses that folder.
    indices : sequence of int, optional
        Featurise only these positions of ``task``, in this order (e.g. one fold's
        train + test); default all.

    Returns
    -------
    list of MCRTInput
        One record per structure, in the order of ``indices``.
    """
    if indices is None:
        indices = range(len(task.ids))
    indices = [int(i) for i in indices]
    return _Inputs([task.ids[i] for i in indices], [task.structures[i] for i in indices],
                   settings, Path(cache)).records()
