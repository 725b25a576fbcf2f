"""Deep ensembles: :class:`MCRTEnsembleRegressor`, ``predict(X, return_std=True)``.

``n_ensemble`` clones of one regressor (an :class:`~mcrt_sklearn.MCRTRegressor` by
default) that differ only by their seed: member ``i`` gets ``random_state + i`` in every
``random_state`` parameter it has (a Pipeline's steps included). For MCRTRegressor that
seed drives the weight initialisation (of the head, and of the whole network when it is
not started from a checkpoint), the validation split, the batch order, dropout and the
per-epoch atom shuffling (``shuffle_atoms=True``, its default, shuffles the atom order of
every crystal in training, seeded by ``random_state``), so the members see differently
ordered atoms as well as different initial weights and batches. The prediction is the
members' mean, the standard deviation their spread (``ddof=1``), the usual deep-ensemble
estimate of model (epistemic) uncertainty; it is not calibrated by itself — wrap the
ensemble in :class:`~mcrt_sklearn.screening.ConformalRegressor` for intervals with a
coverage guarantee.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["MCRTEnsembleRegressor", "seeded_clone"]


def seeded_clone(estimator, seed):
    """A clone of ``estimator`` with every ``*random_state`` parameter set to ``seed``."""
    member = clone(estimator)
    keys = [k for k in member.get_params(deep=True) if k == "random_state"
            or k.endswith("__random_state")]
    if keys:
        member.set_params(**{k: seed for k in keys})
    return member


class MCRTEnsembleRegressor(RegressorMixin, BaseEstimator):
    """A deep ensemble of MCRT regressors (or of any regressor).

    Parameters
    ----------
    estimator : regressor, optional
        The member template; default ``MCRTRegressor()`` (the paper's 12 × 768 network:
        give a smaller one, or a ``checkpoint=``, on a CPU). Cloned, never fitted itself.
    n_ensemble : int
        Number of members.
    random_state : int, optional
        Member ``i`` is seeded with ``random_state + i``; None leaves every member
        unseeded (they still differ, but runs are not reproducible).

    Attributes
    ----------
    estimators_ : list of fitted members
    elements_seen_ : the first member's, when it has them
    """

    def __init__(self, estimator=None, n_ensemble: int = 5, random_state: int | None = None):
        self.estimator = estimator
        self.n_ensemble = n_ensemble
        self.random_state = random_state

    def _template(self):
        if self.estimator is not None:
            return self.estimator
        from mcrt_sklearn.estimators.regressor import MCRTRegressor

        return MCRTRegressor()

    def fit(self, X, y):
        """Fit ``n_ensemble`` seeded clones on the same data."""
        n = int(self.n_ensemble)
        if n < 1:
            raise ValueError(f"n_ensemble must be >= 1, got {self.n_ensemble!r}")
        template = self._template()
        members = []
        for i in range(n):
            seed = None if self.random_state is None else int(self.random_state) + i
            members.append(seeded_clone(template, seed).fit(X, y))
        self.estimators_ = members
        seen = getattr(members[0], "elements_seen_", None)
        if seen is not None:
            self.elements_seen_ = seen
        return self

    def predict_members(self, X) -> np.ndarray:
        """Every member's predictions, shape (n_ensemble, n)."""
        check_is_fitted(self, "estimators_")
        return np.stack([np.asarray(m.predict(X), dtype=float).ravel() for m in self.estimators_])

    def predict(self, X, return_std: bool = False):
        """Mean of the members; with ``return_std`` also their standard deviation
        (``ddof=1``; zeros for a single member)."""
        preds = self.predict_members(X)
        mean = preds.mean(axis=0)
        if not return_std:
            return mean
        std = preds.std(axis=0, ddof=1) if len(preds) > 1 else np.zeros_like(mean)
        return mean, std
