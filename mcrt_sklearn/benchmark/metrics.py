"""Scores of one set of predictions: MAE, RMSE, R², Spearman ρ, top-k recovery and the
ρ inside each group of a grouped run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_k_recovery", "regression_metrics", "within_group_spearman",
           "guess_lower_is_better", "METRICS", "OPTIONAL_METRICS", "METRIC_LABELS"]


#: Metric keys, in table order.
METRICS = ("mae", "rmse", "r2", "spearman", "topk")
#: Metrics reported only where they apply (grouped runs: ρ inside each test group).
OPTIONAL_METRICS = ("spearman_within_group", "coverage", "width")
METRIC_LABELS = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "spearman": "Spearman ρ",
                 "topk": "top-{k}", "spearman_within_group": "ρ within group",
                 "coverage": "coverage", "width": "interval width"}


def top_k_recovery(y_true, y_pred, k: int = 10, lower_is_better: bool = True) -> int:
    """How many of the ``k`` best structures (by ``y_true``) are among the ``k`` best predicted.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    k : int
        Size of the top set; ``min(k, n)`` when fewer structures are given.
    lower_is_better : bool
        True: best = lowest value (energies); False: best = highest (mobility, uptake).

    Returns
    -------
    int
        Between 0 and ``min(k, n)``. Ties are broken by position (stable sort).
    """
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape}, y_pred {y_pred.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), y_true.size)
    sign = 1.0 if lower_is_better else -1.0
    best_true = np.argsort(sign * y_true, kind="stable")[:k]
    best_pred = np.argsort(sign * y_pred, kind="stable")[:k]
    return int(np.intersect1d(best_true, best_pred).size)


def regression_metrics(y_true, y_pred, k: int = 10, lower_is_better: bool = True) -> dict:
    """MAE, RMSE, R², Spearman ρ and top-k recovery of one set of predictions.

    Spearman ρ (and R² for a constant ``y_true``) is NaN when undefined, e.g. for a
    constant prediction; so is top-k recovery for a constant prediction, where which k
    structures count as "best predicted" would be arbitrary.
    """
    from scipy.stats import spearmanr

    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal, non-empty shapes; got {y_true.shape} and {y_pred.shape}")
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(y_true, y_pred).statistic)
    topk = (float("nan") if np.ptp(y_pred) == 0
            else top_k_recovery(y_true, y_pred, k, lower_is_better))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": r2,
        "spearman": rho,
        "topk": topk,
        "k": int(min(k, y_true.size)),
        "n": int(y_true.size),
    }


def within_group_spearman(y_true, y_pred, groups, min_size: int = 5) -> tuple[float, int]:
    """Mean Spearman ρ inside each group: how well the packings of one molecule are ranked.

    In a grouped benchmark (e.g. one group per molecule's CSP landscape) the overall ρ is
    dominated by the offsets between groups; this metric asks what a CSP user asks —
    are the structures of one landscape put in the right order?

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    groups : array-like of shape (n,)
        Group label of each structure.
    min_size : int
        Groups with fewer structures, or with constant ``y_true``, are left out.

    Returns
    -------
    (mean ρ, number of groups used)
        A group whose predictions are constant counts as ρ = 0 (it ranks nothing). NaN
        and 0 when no group qualifies.
    """
    from scipy.stats import spearmanr

    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not y_true.shape == y_pred.shape == groups.shape:
        raise ValueError(f"need equal shapes; got {y_true.shape}, {y_pred.shape} and "
                         f"{groups.shape}")
    rhos = []
    for g in np.unique(groups):
        member = groups == g
        t, p = y_true[member], y_pred[member]
        if t.size < min_size or np.ptp(t) == 0:
            continue
        rhos.append(0.0 if np.ptp(p) == 0 else float(spearmanr(t, p).statistic))
    return (float(np.mean(rhos)) if rhos else float("nan")), len(rhos)


def guess_lower_is_better(target: str) -> bool:
    """True for energies (lower = more stable), False otherwise (mobility, uptake …)."""
    return "energy" in target.lower()


def _finite_mean(values) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
