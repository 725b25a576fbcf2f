"""The (train, test) splits shared by every model: k-fold, group k-fold, one split, the
paper's repeated random split and the few-shot splits of unseen groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from mcrt_sklearn.benchmark.settings import PAPER_PROTOCOL

__all__ = ["make_folds", "learning_curve_fraction", "subsample_training", "few_shot_splits"]


def make_folds(n: int, cv: int | str = 5, groups=None, random_state: int = 0,
               test_size: float = 0.2) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays shared by every model.

    ``cv`` an int: ``KFold(cv, shuffle=True)`` or, with ``groups``, ``GroupKFold(cv)``
    (whole groups held out). ``cv="split"``: one shuffled train/test split with
    ``test_size`` (``GroupShuffleSplit`` with groups). ``cv="paper"``: the paper's
    protocol, a random 90 / 10 train+validation / test split repeated with 5 seeds (the
    networks hold a ninth of the 90 % out for validation, so 80 / 10 / 10; see
    :data:`PAPER_PROTOCOL`).
    """
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit

    idx = np.arange(n)
    if cv == "paper":
        if groups is not None:
            raise ValueError("the paper protocol is a random split; it takes no groups")
        folds = [next(ShuffleSplit(1, test_size=PAPER_PROTOCOL["test_fraction"],
                                   random_state=random_state + rep).split(idx))
                 for rep in range(PAPER_PROTOCOL["repeats"])]
    elif cv == "split":
        if groups is not None:
            splitter = GroupShuffleSplit(1, test_size=test_size, random_state=random_state)
            folds = splitter.split(idx, groups=groups)
        else:
            folds = ShuffleSplit(1, test_size=test_size, random_state=random_state).split(idx)
    else:
        cv = int(cv)
        if cv < 2:
            raise ValueError(f"cv must be >= 2 or 'split', got {cv}")
        if groups is not None:
            if len(set(groups)) < cv:
                raise ValueError(f"{len(set(groups))} groups cannot make {cv} group folds")
            folds = GroupKFold(cv).split(idx, groups=groups)
        else:
            folds = KFold(cv, shuffle=True, random_state=random_state).split(idx)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]


def learning_curve_fraction(fraction: float | None) -> float | None:
    """``fraction`` as a float when it cuts the training parts; None for None or 1.

    Raises ``ValueError`` outside (0, 1].
    """
    if fraction is None:
        return None
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    return None if fraction == 1.0 else fraction


def subsample_training(folds: Sequence[tuple[np.ndarray, np.ndarray]],
                       fraction: float | None, random_state: int = 0
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Keep a seeded ``fraction`` of each fold's training part; the test parts stay.

    For a learning curve: the test structures of every fold are those of the full run,
    so a model's error at each training size is measured on the same structures. The
    kept structures are the first ``round(fraction * n_train)`` (at least 1) of a
    permutation seeded by ``random_state`` and the fold number, so the training parts of
    a smaller fraction are subsets of those of a larger one. Structures are drawn one by
    one, whole groups are not kept together (grouped folds still test unseen groups).

    Parameters
    ----------
    folds : sequence of (train, test) index arrays
    fraction : float or None
        In (0, 1]; None or 1 returns ``folds`` as they are.
    random_state : int

    Returns
    -------
    list of (train, test)
        ``train`` sorted.
    """
    fraction = learning_curve_fraction(fraction)
    if fraction is None:
        return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
    out = []
    for f, (tr, te) in enumerate(folds):
        tr = np.asarray(tr)
        n_keep = max(1, int(round(fraction * len(tr))))
        perm = np.random.default_rng([int(random_state), f]).permutation(tr)
        out.append((np.sort(perm[:n_keep]), np.asarray(te)))
    return out


def few_shot_splits(ids, groups, shots: Sequence[int], min_test: int = 10,
                    target_groups=None, random_state: int = 0) -> dict:
    """Per target group: base (other groups), nested shot pools and a fixed test set.

    Only groups with at least ``max(shots) + min_test`` structures are used (unless
    ``target_groups`` names them). The first ``n`` structures of a seeded permutation of
    the group are the ``n`` shots; the structures after the first ``max(shots)`` are the
    test set, the same for every ``n``.
    """
    groups = np.asarray(groups)
    need = max(shots) + min_test
    values, counts = np.unique(groups, return_counts=True)
    if target_groups is None:
        chosen = [v for v, c in zip(values, counts, strict=True) if c >= need]
    else:
        chosen = list(target_groups)
    out = {}
    for g in chosen:
        members = np.flatnonzero(groups == g)
        if len(members) < need:
            raise ValueError(f"group {g!r} has {len(members)} structures; shots up to "
                             f"{max(shots)} plus {min_test} test structures need {need}")
        seed = int(random_state) + int(hashlib.sha256(str(g).encode()).hexdigest()[:6], 16)
        perm = np.random.default_rng(seed).permutation(members)
        out[g] = {"base": np.flatnonzero(groups != g), "pool": perm[: max(shots)],
                  "test": perm[max(shots):]}
    if not out:
        raise ValueError(f"no group has {need} structures (max(shots) + min_test)")
    return out
