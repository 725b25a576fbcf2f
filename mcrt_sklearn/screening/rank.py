"""Ranking a landscape: the table of ``ranking.csv`` and P(among the k best).

The probability that a candidate is among the k best is computed under the model's
predictive distribution: independent normals N(prediction, std²), sampled ``n_samples``
times (seeded), counting how often each candidate is among the k lowest (energies) or
highest (properties) draws. With conformal intervals and no model std, the std is the
normal one whose central interval is the conformal interval
(:func:`~mcrt_sklearn.screening.intervals.interval_std`). Independence is an
approximation: model errors of similar packings are correlated, which makes the
probabilities of near-duplicates too high together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["prob_top_k", "rank_table"]


def prob_top_k(
    mean,
    std,
    k: int = 10,
    lower_is_better: bool = True,
    n_samples: int = 4000,
    random_state: int | None = 0,
    chunk: int = 256,
) -> np.ndarray:
    """P(candidate i is among the k best), by Monte Carlo over independent normals.

    Parameters
    ----------
    mean, std : (n,) predictive means and standard deviations (std 0 is allowed)
    k : int
        Size of the top set (all candidates when k ≥ n: probability 1).
    lower_is_better : bool
        Energies (True): the k lowest; properties (False): the k highest.
    n_samples : int
        Draws (the probabilities have a standard error ≤ 0.5 / sqrt(n_samples)).
    random_state : int, optional
    chunk : int
        Draws per block (memory: chunk × n floats).

    Returns
    -------
    ndarray (n,) summing to k (up to ties).
    """
    mean = np.asarray(mean, dtype=float).ravel()
    std = np.broadcast_to(np.asarray(std, dtype=float), mean.shape)
    n = len(mean)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n == 0:
        return np.zeros(0)
    if k >= n:
        return np.ones(n)
    rng = np.random.default_rng(random_state)
    counts = np.zeros(n)
    sign = 1.0 if lower_is_better else -1.0
    done = 0
    while done < n_samples:
        m = min(chunk, n_samples - done)
        draws = mean[None, :] + std[None, :] * rng.standard_normal((m, n))
        top = np.argpartition(sign * draws, k - 1, axis=1)[:, :k]
        np.add.at(counts, top.ravel(), 1.0)
        done += m
    return counts / n_samples


def rank_table(
    ids: Sequence[str],
    prediction,
    lower=None,
    upper=None,
    std=None,
    top_k: int = 10,
    lower_is_better: bool = True,
    n_samples: int = 4000,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """The ranking table: id, prediction, lower, upper, std, rank, p_top_k.

    ``rank`` 1 is the best predicted (lowest energy, or highest property); ``p_top_k``
    the probability of being among the ``top_k`` best (:func:`prob_top_k`), with
    ``std`` or, when None, the std implied by the intervals (they must then be central
    normal intervals of the level the caller used; :func:`screen` passes it). Rows are
    sorted by rank.
    """
    pred = np.asarray(prediction, dtype=float).ravel()
    n = len(pred)
    lower = np.full(n, np.nan) if lower is None else np.asarray(lower, dtype=float).ravel()
    upper = np.full(n, np.nan) if upper is None else np.asarray(upper, dtype=float).ravel()
    if std is None:
        std = np.zeros(n)
    std = np.asarray(std, dtype=float).ravel()
    order = np.argsort(pred if lower_is_better else -pred, kind="stable")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(1, n + 1)
    p = prob_top_k(pred, std, k=top_k, lower_is_better=lower_is_better,
                   n_samples=n_samples, random_state=random_state)
    table = pd.DataFrame({
        "id": list(ids), "prediction": pred, "lower": lower, "upper": upper, "std": std,
        "rank": rank, "p_top_k": p,
    })
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)
    table.attrs["top_k"] = int(top_k)
    return table
