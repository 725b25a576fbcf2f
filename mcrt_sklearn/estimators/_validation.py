"""The validation split of the MCRT estimators: a seeded hold-out of random records or of
whole groups, as views when the records are on disk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skorch.dataset import Dataset
from skorch.helper import predefined_split

__all__ = ["RecordView", "group_validation_indices", "split_validation",
           "validation_indices"]


class RecordView(Sequence):
    """The records of ``base`` at ``indices``, read from ``base`` when asked for: a
    validation split of a :class:`~mcrt_sklearn.store.RecordStore` stays on disk."""

    _lazy_records = True

    def __init__(self, base: Sequence, indices):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return RecordView(self.base, self.indices[i])
        return self.base[int(self.indices[i])]

    @property
    def ids(self) -> list:
        """The structure ids at ``indices``, from the base's index where it has one (a
        record store: no record is read), else from the records."""
        base_ids = getattr(self.base, "ids", None)
        if base_ids is not None:
            return [base_ids[i] for i in self.indices]
        return [self.base[int(i)].structure_id for i in self.indices]


def validation_indices(n: int, fraction: float, random_state: int | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) positions of the estimators' seeded hold-out of ``n`` records."""
    n_valid = max(1, int(round(fraction * n)))
    if n - n_valid < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training data for {n} records")
    order = np.random.default_rng(random_state).permutation(n)
    return order[:n_valid], order[n_valid:]


def group_validation_indices(groups, fraction: float, random_state: int | None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) positions holding out whole groups: groups drawn in a
    seeded random order until about ``fraction`` of the records are held out (at least
    one group; at least one group is left to train on)."""
    groups = np.asarray(groups)
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(names) < 2:
        raise ValueError(f"validation_split='groups' needs at least 2 groups, got {len(names)}")
    order = np.random.default_rng(random_state).permutation(len(names))
    target = fraction * len(groups)
    chosen, held = [], 0
    for g in order[:-1]:
        if chosen and held + counts[g] / 2 > target:
            break
        chosen.append(g)
        held += counts[g]
    mask = np.isin(inverse, chosen)
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def split_validation(est, X: list, y: np.ndarray, stratify=None, groups=None):
    """(X_train, y_train, train_split) with a seeded hold-out of ``validation_fraction``
    (whole groups with ``validation_split="groups"``)."""
    frac = est.validation_fraction
    if not frac:
        return X, y, None
    how = getattr(est, "validation_split", "random")
    if how not in ("random", "groups"):
        raise ValueError(f"validation_split must be 'random' or 'groups', got {how!r}")
    if how == "groups":
        if groups is None:
            raise ValueError("validation_split='groups' needs fit(X, y, groups=...)")
        if len(groups) != len(X):
            raise ValueError(f"got {len(X)} records and {len(groups)} groups")
        valid, train = group_validation_indices(groups, frac, est.random_state)
    else:
        valid, train = validation_indices(len(X), frac, est.random_state)
    if getattr(X, "_lazy_records", False):  # a store: views, not copies
        return RecordView(X, train), y[train], predefined_split(
            Dataset(RecordView(X, valid), y[valid]))
    ds = Dataset([X[i] for i in valid], y[valid])
    return [X[i] for i in train], y[train], predefined_split(ds)
