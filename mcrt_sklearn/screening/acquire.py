"""What to compute next: confidence-bound acquisition with diversity in an embedding.

Acquisition (higher = compute sooner): for energies (lower is better) the lower
confidence bound, ``-(mean - kappa * std)``; for properties (higher is better) the upper
one, ``mean + kappa * std``. ``kappa = 0`` is greedy exploitation; larger values explore
where the model is unsure. The predictive std is the model's own (GP-SOAP,
MCRT-ensemble: ``predict(X, return_std=True)``), or, for models without one, the std
implied by cross-conformal (CV+) intervals, which differ from structure to structure.

A batch of ``n`` is chosen greedily: the best acquisition first, then each next one
maximises ``z(acquisition) - diversity * max_s exp(-d(j, s)² / ℓ²)`` over the chosen
``s``, where ``z`` standardises the acquisition over the pool, ``d`` is the Euclidean
distance in the embedding (standardised SOAP for the SOAP models, the fitted network's
[CLS] for MCRT) and ``ℓ`` the median nearest-neighbour distance of the pool, so near
duplicates of a chosen structure are pushed down by up to ``diversity`` standard
deviations of the acquisition, and distinct packings hardly at all.

A labelled id is never suggested: pool entries whose id is labelled are dropped first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from mcrt_sklearn.screening.intervals import ConformalRegressor, as_samples, interval_std
from mcrt_sklearn.screening.models import supports_std

__all__ = ["acquisition", "select_diverse", "predictive_std", "embedding_of", "suggest",
           "suggest_next"]


def acquisition(mean, std, lower_is_better: bool = True, kappa: float = 1.0) -> np.ndarray:
    """LCB (energies) or UCB (properties) acquisition; higher means compute sooner."""
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    return -(mean - kappa * std) if lower_is_better else mean + kappa * std


def _median_nn_distance(E: np.ndarray) -> float:
    n = len(E)
    if n < 2:
        return 1.0
    rng = np.random.default_rng(0)
    rows = rng.choice(n, size=min(n, 500), replace=False)
    sq = (E ** 2).sum(axis=1)
    d2 = np.maximum(sq[rows, None] + sq[None, :] - 2.0 * E[rows] @ E.T, 0.0)
    d2[np.arange(len(rows)), rows] = np.inf
    nn = np.sqrt(d2.min(axis=1))
    med = float(np.median(nn[np.isfinite(nn)])) if np.isfinite(nn).any() else 1.0
    return med if med > 0 else 1.0


def select_diverse(score, embedding=None, n: int = 10, diversity: float = 1.0) -> np.ndarray:
    """Greedy batch selection: positions of ``n`` entries (see the module docstring)."""
    score = np.asarray(score, dtype=float)
    n = min(int(n), len(score))
    if n <= 0:
        return np.zeros(0, dtype=int)
    sd = score.std()
    z = (score - score.mean()) / (sd if sd > 0 else 1.0)
    if embedding is None or diversity == 0:
        return np.argsort(-z, kind="stable")[:n]
    E = np.asarray(embedding, dtype=float).reshape(len(score), -1)
    scale2 = _median_nn_distance(E) ** 2
    penalty = np.zeros(len(score))
    chosen: list[int] = []
    available = np.ones(len(score), dtype=bool)
    for _ in range(n):
        value = np.where(available, z - diversity * penalty, -np.inf)
        j = int(np.argmax(value))
        chosen.append(j)
        available[j] = False
        sim = np.exp(-((E - E[j]) ** 2).sum(axis=1) / scale2)
        penalty = np.maximum(penalty, sim)
    return np.asarray(chosen, dtype=int)


def predictive_std(estimator, X_labelled, y_labelled, X_pool, cv: int = 5,
                   random_state: int | None = 0, fitted=None):
    """``(mean, std, fitted)`` on the pool: the model's own std when it has one
    (``fitted`` is then the estimator fitted on all labels: the ``fitted`` given, else a
    clone of ``estimator`` fitted here), else the std implied by 50 % CV+ intervals
    (``fitted`` is the :class:`ConformalRegressor`; a ``fitted`` given is not used)."""
    y = np.asarray(y_labelled, dtype=float)
    if supports_std(estimator):
        if fitted is None:
            fitted = clone(estimator).fit(X_labelled, y)
        mean, std = fitted.predict(X_pool, return_std=True)
        return np.asarray(mean, float), np.asarray(std, float), fitted
    conf = ConformalRegressor(estimator, method="cross", confidence_level=0.5,
                              cv=max(2, min(cv, len(y) // 2)), random_state=random_state)
    conf.fit(X_labelled, y)
    mean, lower, upper = conf.predict_interval(X_pool)
    return mean, interval_std(lower, upper, 0.5), conf


def _find_mcrt(fitted):
    from mcrt_sklearn.estimators.regressor import MCRTRegressor
    from mcrt_sklearn.screening.ensemble import MCRTEnsembleRegressor

    if isinstance(fitted, MCRTRegressor):
        return fitted
    if isinstance(fitted, MCRTEnsembleRegressor):
        return fitted.estimators_[0]
    return None


def embedding_of(features, fitted=None) -> np.ndarray:
    """The diversity embedding of a pool: standardised numeric features (SOAP), or the
    [CLS] embedding of MCRT records by the fitted network of ``fitted`` (an
    MCRTRegressor or MCRTEnsembleRegressor; its first member)."""
    if hasattr(features, "shape") and features.dtype != object:
        F = np.asarray(features, dtype=float)
        sd = F.std(axis=0)
        keep = sd > 0
        return (F[:, keep] - F[:, keep].mean(axis=0)) / sd[keep] if keep.any() else F
    reg = _find_mcrt(fitted)
    if reg is None:
        raise ValueError("no embedding for these features: give embedding= explicitly")
    from mcrt_sklearn.estimators.encoder import MCRTEncoder

    enc = MCRTEncoder(batch_size=reg.batch_size, pad_to=reg.pad_to, device=reg.device)
    enc.network_ = reg.network_.eval()
    enc.n_features_out_ = int(reg.network_.config.hid_dim)
    return enc.transform(list(features))


def suggest(
    estimator,
    X_labelled,
    y_labelled,
    X_pool,
    pool_ids: Sequence[str],
    labelled_ids: Sequence[str] = (),
    n: int = 10,
    lower_is_better: bool = True,
    kappa: float = 1.0,
    diversity: float = 1.0,
    embedding=None,
    cv: int = 5,
    random_state: int | None = 0,
    fitted=None,
) -> pd.DataFrame:
    """The next ``n`` structures of the pool to compute.

    Parameters
    ----------
    estimator : regressor on the features (see :func:`~mcrt_sklearn.screening.build_model`)
    X_labelled, y_labelled : features and targets of the computed structures
    X_pool, pool_ids : features and ids of the uncomputed ones
    labelled_ids : ids already computed: never suggested, even if in the pool
    n : batch size
    lower_is_better : energies (LCB) or properties (UCB)
    kappa : weight of the std in the confidence bound
    diversity : weight of the similarity penalty (0: plain top-n acquisition)
    embedding : (n_pool, d) array, optional; default :func:`embedding_of`
    cv, random_state : folds and seed of the conformal std (models without their own)
    fitted : ``estimator`` already fitted on ``(X_labelled, y_labelled)``, optional; it
        saves a fit: its own std is used (GP-SOAP, MCRT-ensemble) and, for MCRT, its
        network gives the [CLS] embedding. Models without a std still make their
        conformal fits.

    Returns
    -------
    DataFrame with ``order`` (1 = first to compute), ``id``, ``prediction``, ``std``,
    ``acquisition``; ``attrs["excluded_labelled"]`` counts pool entries dropped as labelled,
    and ``attrs["pool_prediction"]`` (a Series indexed by id) holds the predicted mean of
    every pool entry that could be suggested: the fitted model's own prediction for models
    with their own std, the conformal ensemble's otherwise.
    """
    pool_ids = [str(i) for i in pool_ids]
    labelled = {str(i) for i in labelled_ids}
    keep = []
    seen: set[str] = set()
    for i, sid in enumerate(pool_ids):
        if sid not in labelled and sid not in seen:
            keep.append(i)
            seen.add(sid)
    excluded = len(pool_ids) - len(keep)
    Xp = as_samples(X_pool)
    Xp = Xp[keep]
    if embedding is not None:
        embedding = np.asarray(embedding, dtype=float)[keep]
    ids = [pool_ids[i] for i in keep]
    if not ids:
        out = pd.DataFrame(columns=["order", "id", "prediction", "std", "acquisition"])
        out.attrs["excluded_labelled"] = excluded
        out.attrs["pool_prediction"] = pd.Series(dtype=float)
        return out
    mean, std, used = predictive_std(estimator, as_samples(X_labelled), y_labelled, Xp,
                                     cv=cv, random_state=random_state, fitted=fitted)
    score = acquisition(mean, std, lower_is_better, kappa)
    if embedding is None and diversity:
        inner = used
        numeric = hasattr(Xp, "shape") and Xp.dtype != object
        if isinstance(used, ConformalRegressor) and not numeric:
            # the conformal models live inside MAPIE: the [CLS] network is a plain fit's
            inner = fitted if fitted is not None else clone(estimator).fit(
                as_samples(X_labelled), np.asarray(y_labelled, float))
        embedding = embedding_of(Xp, inner)
    chosen = select_diverse(score, embedding, n=n, diversity=diversity)
    out = pd.DataFrame({
        "order": np.arange(1, len(chosen) + 1),
        "id": [ids[j] for j in chosen],
        "prediction": mean[chosen],
        "std": std[chosen],
        "acquisition": score[chosen],
    })
    out.attrs["excluded_labelled"] = excluded
    out.attrs["pool_prediction"] = pd.Series(mean, index=ids, dtype=float)
    return out


def suggest_next(
    train_dir: str | os.PathLike,
    target: str,
    candidates_dir: str | os.PathLike,
    model: str = "GP-SOAP",
    n: int = 10,
    lower_is_better: bool | None = None,
    kappa: float = 1.0,
    diversity: float = 1.0,
    out: str | os.PathLike | None = None,
    model_params: dict | None = None,
    featurizer_params: dict | None = None,
    cache_dir=None,
    n_jobs: int = 1,
    random_state: int | None = 0,
):
    """:func:`suggest` on folders: labelled = the training folder's structures with a
    finite ``target``; pool = the candidates plus the training structures without one.

    Writes ``suggestions.csv`` (and ``suggestions.md``, with the skipped files) into
    ``out`` when given. Returns ``(table, skipped)``.
    """
    from pathlib import Path

    from mcrt_sklearn.screening.loading import skipped_lines
    from mcrt_sklearn.screening.workflow import _prepare

    prep = _prepare(train_dir, target, candidates_dir, model, model_params, featurizer_params,
                    cache_dir, n_jobs, random_state, lower_is_better, keep_unlabelled=True)
    table = suggest(prep.estimator, prep.F_train, prep.y_train, prep.F_cand, prep.cand.ids,
                    labelled_ids=prep.train.ids, n=n, lower_is_better=prep.lower_is_better,
                    kappa=kappa, diversity=diversity, random_state=random_state)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "suggestions.csv", index=False)
        lines = [f"# Next {len(table)} structures to compute ({model}, {target})", "",
                 f"Acquisition: {'lower' if prep.lower_is_better else 'upper'} confidence "
                 f"bound, kappa = {kappa}, diversity = {diversity}; "
                 f"{len(prep.train.ids)} labelled, {len(prep.cand.ids)} in the pool.", "",
                 table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False),
                 ""]
        lines += skipped_lines(prep.skipped)
        (out / "suggestions.md").write_text("\n".join(lines) + "\n")
    return table, prep.skipped


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
