"""Conformal prediction intervals for any estimator of the package, through MAPIE.

:class:`ConformalRegressor` wraps MAPIE's ``SplitConformalRegressor`` (``method="split"``:
fit on one part of the data, calibrate the residuals on the rest) and
``CrossConformalRegressor`` (``method="cross"``: CV+, every structure is used for both,
at ``cv`` times the fitting cost) behind the usual ``fit`` / ``predict`` so that MCRT,
its ensembles and every baseline get intervals the same way.

What breaks in MAPIE and is fixed here: MAPIE counts the "features" of X with
``len(X[0])``. That is wrong but harmless for a list of pymatgen Structures (it returns
the number of sites of the first one), and a ``TypeError`` for a list of
:class:`~mcrt_sklearn.featurizers.record.MCRTInput` records, which have no length. Every
X given to MAPIE here goes through :func:`as_samples`: a list of Python objects becomes a
1-D numpy object array (one entry per structure), which MAPIE counts as one feature and
indexes like any array, and which our featurisers and estimators read as the list it
holds. Numeric arrays are passed as they are. Use ``as_samples`` yourself when you call
MAPIE directly on records.

Metrics: :func:`coverage` (fraction of targets inside their interval), :func:`mean_width`,
:func:`calibration_curve` (empirical against nominal coverage at several levels) and
:func:`normal_intervals` (intervals of a predictive normal distribution, for models that
give a standard deviation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "as_samples",
    "ConformalRegressor",
    "coverage",
    "mean_width",
    "calibration_curve",
    "normal_intervals",
    "interval_std",
    "plot_calibration_curve",
    "DEFAULT_LEVELS",
    "min_calibration_size",
]

#: Nominal coverages of the calibration curve.
DEFAULT_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _mapie():
    try:
        from mapie import regression
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "conformal intervals need MAPIE >= 1.0: pip install 'mcrt_sklearn[screen]' "
            "(or pip install 'mapie>=1.0')"
        ) from exc
    return regression


def min_calibration_size(confidence_level: float) -> int:
    """The fewest conformity scores MAPIE accepts for this level: more than
    ``max(1 / (1 - level), 1 / level)``."""
    c = float(confidence_level)
    return int(np.floor(round(max(1.0 / (1.0 - c), 1.0 / c), 9))) + 1


def as_samples(X):
    """X in a form MAPIE can count and index, that our estimators still read.

    Numeric arrays (and anything with a 2-D ``shape``) are returned unchanged; a
    sequence of objects (Structures, CIF paths, MCRT records) becomes a 1-D numpy
    object array holding them, built element by element (``np.array`` would unpack
    each Structure into its sites).
    """
    if hasattr(X, "shape"):
        return X
    items = list(X)
    if items and all(isinstance(x, (int, float, np.number)) for x in items):
        return np.asarray(items, dtype=float).reshape(-1, 1)
    if items and all(
        isinstance(x, (list, tuple, np.ndarray)) and np.size(x) and np.isscalar(np.ravel(x)[0])
        for x in items
    ):
        return np.asarray(items, dtype=float)
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


class ConformalRegressor(RegressorMixin, BaseEstimator):
    """Conformal prediction intervals around any regressor (MAPIE split or CV+).

    Parameters
    ----------
    estimator : regressor
        Any sklearn regressor: a Pipeline of one of our featurisers and a model, an
        :class:`~mcrt_sklearn.MCRTRegressor` on records, an
        :class:`~mcrt_sklearn.screening.MCRTEnsembleRegressor`, a baseline. Cloned.
    method : {"cross", "split"}
        ``"cross"``: MAPIE's ``CrossConformalRegressor`` (CV+ with ``cv`` folds; the
        point prediction is the mean of the fold models). ``"split"``:
        ``SplitConformalRegressor``, fitted on ``1 - calibration_size`` of the data
        and calibrated on the rest.
    confidence_level : float or sequence of float
        Nominal coverage(s); ``predict_interval`` returns one interval per level.
    cv : int
        Folds of ``method="cross"``.
    calibration_size : float
        Fraction held out for calibration with ``method="split"``.
    conformity_score : str
        MAPIE's conformity score (``"absolute"``, ``"gamma"``, ``"residual_normalized"``).
    random_state : int, optional
        Seeds the folds / the calibration split.

    Attributes
    ----------
    mapie_ : the fitted MAPIE regressor
    levels_ : tuple of float
    """

    def __init__(
        self,
        estimator=None,
        method: str = "cross",
        confidence_level: float | Sequence[float] = 0.9,
        cv: int = 5,
        calibration_size: float = 0.3,
        conformity_score: str = "absolute",
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.method = method
        self.confidence_level = confidence_level
        self.cv = cv
        self.calibration_size = calibration_size
        self.conformity_score = conformity_score
        self.random_state = random_state

    def _levels(self) -> tuple[float, ...]:
        levels = self.confidence_level
        levels = (levels,) if np.isscalar(levels) else tuple(levels)
        levels = tuple(float(c) for c in levels)
        if not levels or not all(0.0 < c < 1.0 for c in levels):
            raise ValueError(f"confidence_level must lie in (0, 1), got {self.confidence_level!r}")
        return levels

    def fit(self, X, y, groups=None):
        """Fit the model(s) and calibrate the conformity scores.

        Parameters
        ----------
        X : structures, paths, records or a numeric array
        y : array-like (n,)
        groups : array-like, optional
            Group labels, e.g. the molecule of each structure. ``method="cross"`` then
            uses ``GroupKFold(cv)`` (unless ``cv`` is a splitter already), so every
            calibration residual comes from a model that did not see that group: the
            intervals are calibrated for new groups (new molecules), not new packings
            of known ones. ``method="split"`` holds out whole groups for calibration.
        """
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import train_test_split

        regression = _mapie()
        levels = self._levels()
        est = clone(self.estimator) if self.estimator is not None else LinearRegression()
        X = as_samples(X)
        y = np.asarray(y, dtype=float)
        n_min = max(min_calibration_size(c) for c in levels)
        level = levels[0] if len(levels) == 1 else list(levels)
        if self.method == "split":
            n_cal = int(round(self.calibration_size * len(y)))
            if n_cal < n_min:
                raise ValueError(
                    f"method='split' calibrates on {n_cal} structures; confidence level(s) "
                    f"{levels} need at least {n_min} (raise calibration_size, "
                    "give more data, or use method='cross')"
                )
            idx = np.arange(len(y))
            if groups is None:
                tr, cal = train_test_split(idx, test_size=n_cal, random_state=self.random_state)
            else:
                from sklearn.model_selection import GroupShuffleSplit

                splitter = GroupShuffleSplit(1, test_size=self.calibration_size,
                                             random_state=self.random_state)
                tr, cal = next(splitter.split(idx, groups=np.asarray(groups)))
                if len(cal) < n_min:
                    raise ValueError(f"the calibration groups hold {len(cal)} structures; "
                                     f"confidence level(s) {levels} need at least {n_min}")
            mapie = regression.SplitConformalRegressor(
                est, confidence_level=level, conformity_score=self.conformity_score,
                prefit=False,
            )
            mapie.fit(X[tr], y[tr])
            mapie.conformalize(X[cal], y[cal])
        elif self.method == "cross":
            if len(y) < n_min:
                raise ValueError(
                    f"{len(y)} structures are too few for confidence level(s) {levels} "
                    f"(need at least {n_min})"
                )
            cv = self.cv
            if groups is not None and isinstance(cv, (int, np.integer)):
                from sklearn.model_selection import GroupKFold

                n_groups = len(np.unique(np.asarray(groups)))
                if n_groups < 2:
                    raise ValueError("groups= needs at least two groups")
                cv = GroupKFold(n_splits=min(int(cv), n_groups))
            mapie = regression.CrossConformalRegressor(
                est, confidence_level=level, conformity_score=self.conformity_score,
                method="plus", cv=cv,
                random_state=None if not isinstance(cv, (int, np.integer)) else self.random_state,
            )
            mapie.fit_conformalize(X, y, groups=groups)
        else:
            raise ValueError(f"method must be 'cross' or 'split', got {self.method!r}")
        self.mapie_ = mapie
        self.levels_ = levels
        return self

    def predict(self, X) -> np.ndarray:
        """Point predictions, shape (n,)."""
        check_is_fitted(self, "mapie_")
        return np.asarray(self.mapie_.predict(as_samples(X)), dtype=float).ravel()

    def predict_interval(self, X, confidence_level: float | None = None):
        """Point predictions and intervals.

        Parameters
        ----------
        X : as in :meth:`fit`
        confidence_level : float, optional
            One of the fitted levels; None: all of them.

        Returns
        -------
        prediction : ndarray (n,)
        lower, upper : ndarray (n,) for one level, (n, L) for all L levels
        """
        check_is_fitted(self, "mapie_")
        pred, iv = self.mapie_.predict_interval(as_samples(X))
        pred = np.asarray(pred, dtype=float).ravel()
        iv = np.asarray(iv, dtype=float).reshape(len(pred), 2, -1)
        lower, upper = iv[:, 0, :], iv[:, 1, :]
        if confidence_level is None:
            if len(self.levels_) == 1:
                return pred, lower[:, 0], upper[:, 0]
            return pred, lower, upper
        matches = [i for i, c in enumerate(self.levels_) if np.isclose(c, confidence_level)]
        if not matches:
            raise ValueError(
                f"confidence level {confidence_level} was not fitted (fitted: {self.levels_})"
            )
        return pred, lower[:, matches[0]], upper[:, matches[0]]


def coverage(y, lower, upper) -> float | np.ndarray:
    """Fraction of ``y`` inside ``[lower, upper]`` (per column for (n, L) bounds)."""
    y = np.asarray(y, dtype=float)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if lower.ndim == 2:
        y = y[:, None]
    inside = (y >= lower) & (y <= upper)
    out = inside.mean(axis=0)
    return float(out) if np.ndim(out) == 0 else out


def mean_width(lower, upper) -> float | np.ndarray:
    """Mean of ``upper - lower`` (per column for (n, L) bounds)."""
    out = (np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)).mean(axis=0)
    return float(out) if np.ndim(out) == 0 else out


def normal_intervals(mean, std, confidence_level: float | Sequence[float] = 0.9):
    """Central intervals of independent normals N(mean, std²).

    Returns ``(lower, upper)``, (n,) for one level or (n, L) for a sequence.
    """
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    scalar = np.isscalar(confidence_level)
    levels = np.atleast_1d(np.asarray(confidence_level, dtype=float))
    z = norm.ppf(0.5 + levels / 2.0)
    lower = mean[:, None] - std[:, None] * z[None, :]
    upper = mean[:, None] + std[:, None] * z[None, :]
    if scalar:
        return lower[:, 0], upper[:, 0]
    return lower, upper


def interval_std(lower, upper, confidence_level: float) -> np.ndarray:
    """The standard deviation of a normal whose central ``confidence_level`` interval
    is ``[lower, upper]``: half-width / z. Used to turn conformal intervals into a
    predictive distribution (ranking probabilities, acquisition)."""
    z = norm.ppf(0.5 + float(confidence_level) / 2.0)
    return (np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)) / (2.0 * z)


def calibration_curve(y, lower, upper, levels: Sequence[float] = DEFAULT_LEVELS) -> dict:
    """Empirical coverage and mean width at each nominal level.

    Parameters
    ----------
    y : (n,) targets
    lower, upper : (n, L) bounds, column j for ``levels[j]``
    levels : the L nominal levels

    Returns
    -------
    dict with ``levels``, ``coverage`` and ``width`` (lists of floats), and ``n``.
    """
    lower = np.asarray(lower, dtype=float).reshape(len(y), -1)
    upper = np.asarray(upper, dtype=float).reshape(len(y), -1)
    if lower.shape[1] != len(levels):
        raise ValueError(f"{lower.shape[1]} interval columns for {len(levels)} levels")
    return {
        "levels": [float(c) for c in levels],
        "coverage": [float(c) for c in np.atleast_1d(coverage(y, lower, upper))],
        "width": [float(w) for w in np.atleast_1d(mean_width(lower, upper))],
        "n": int(len(y)),
    }


def plot_calibration_curve(curve: dict, path=None, ax=None, label: str | None = None):
    """Empirical against nominal coverage, with the binomial 95 % band of n samples.

    Returns the matplotlib Figure (saved to ``path`` when given).
    """
    from mcrt_sklearn.screening._plotting import pyplot

    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
    else:
        fig = ax.figure
    levels = np.asarray(curve["levels"])
    n = max(int(curve.get("n", 1)), 1)
    band = 1.96 * np.sqrt(levels * (1 - levels) / n)
    ax.fill_between(levels, levels - band, levels + band, color="0.85", label=f"±1.96σ (n={n})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.plot(levels, curve["coverage"], "o-", label=label or "empirical")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage")
    ax.set_xlim(min(0.4, levels.min() - 0.05), 1.0)
    ax.set_ylim(min(0.4, levels.min() - 0.05), 1.0)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
