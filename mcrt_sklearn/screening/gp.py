"""GP-SOAP: a Gaussian process on standardised averaged SOAP, with its own variance.

The KRR-SOAP baseline (:func:`~mcrt_sklearn.baselines.make_krr_soap`) with an RBF kernel
is the posterior mean of a Gaussian process with the same kernel; the GP adds the
predictive variance, and learns the kernel width and the noise level by maximising the
marginal likelihood instead of a grid search. Kernel:
``ConstantKernel * RBF(length_scale) + WhiteKernel(noise_level)`` on the standardised
SOAP vector divided by the median pairwise distance of the training structures
(:class:`MedianDistanceScaler`), so that the optimiser starts from a length scale of 1 at
the data's own scale (a start far below it — every pair uncorrelated — is a local optimum
that predicts the mean everywhere; we saw it on ROY with the raw standardised vector),
targets normalised (``normalize_y=True``). Cost: one Cholesky factorisation
(O(n³)) per likelihood evaluation, a few dozen evaluations with the default optimiser —
for a few hundred training structures the same order as KRR-SOAP's grid search, and
far below the SOAP featurisation itself.

``pipe.predict(X, return_std=True)`` returns (mean, std); std includes the fitted
white-noise level (the spread of a new measurement, not only of the mean).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mcrt_sklearn.baselines.soap_models import _split_soap_kw
from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

__all__ = ["make_gp_soap", "gp_soap_kernel", "MedianDistanceScaler"]


class MedianDistanceScaler(TransformerMixin, BaseEstimator):
    """Divide by the median pairwise Euclidean distance of the training rows.

    Parameters
    ----------
    max_rows : int
        Rows used to estimate the median (a seeded subsample beyond that).
    """

    def __init__(self, max_rows: int = 400):
        self.max_rows = max_rows

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        rows = X
        if len(X) > self.max_rows:
            rows = X[np.random.default_rng(0).choice(len(X), self.max_rows, replace=False)]
        sq = (rows ** 2).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * rows @ rows.T, 0.0)
        iu = np.triu_indices(len(rows), k=1)
        med = float(np.sqrt(np.median(d2[iu]))) if len(iu[0]) else 1.0
        self.scale_ = med if med > 0 else 1.0
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) / self.scale_


def gp_soap_kernel(
    length_scale: float = 1.0,
    noise_level: float = 0.1,
    length_scale_bounds=(1e-2, 1e2),
    noise_level_bounds=(1e-8, 1e1),
):
    """``ConstantKernel(1) * RBF(length_scale) + WhiteKernel(noise_level)``.

    The length scale is in units of the median pairwise distance of the training
    structures (:class:`MedianDistanceScaler`); 1 is the start of the
    marginal-likelihood optimiser, which the bounds leave free.
    """
    return (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(length_scale, length_scale_bounds)
            + WhiteKernel(noise_level, noise_level_bounds))


def make_gp_soap(
    length_scale: float = 1.0,
    noise_level: float = 0.1,
    n_restarts_optimizer: int = 0,
    normalize_y: bool = True,
    random_state=None,
    memory=None,
    kernel=None,
    **kw,
) -> Pipeline:
    """Gaussian-process regression on standardised atom-averaged SOAP (``GP-SOAP``).

    Parameters
    ----------
    length_scale, noise_level : float
        Starting values of the RBF width and the white-noise level (in units of the
        normalised target), both optimised in ``fit``; see :func:`gp_soap_kernel`.
    n_restarts_optimizer : int
        Extra optimiser starts (each costs one more optimisation).
    normalize_y : bool
        Standardise the targets inside the GP.
    random_state : int, optional
        Seeds the optimiser restarts.
    memory : joblib.Memory or str, optional
        sklearn Pipeline memory (prefer ``soap_cache``).
    kernel : sklearn kernel, optional
        Replaces the default kernel.
    **kw
        SOAP settings as in :func:`~mcrt_sklearn.baselines.make_krr_soap`
        (``species``, ``soap_cache``, …); anything else goes to
        :class:`~sklearn.gaussian_process.GaussianProcessRegressor`.

    Returns
    -------
    Pipeline
        Steps ``soap`` → ``scale`` → ``distance`` → ``gp``; ``predict(X, return_std=True)`` works.
    """
    soap_kw, gp_kw = _split_soap_kw(dict(kw))
    if kernel is None:
        kernel = gp_soap_kernel(length_scale, noise_level)
    return Pipeline(
        [
            ("soap", SOAPFeaturizer(**soap_kw)),
            ("scale", StandardScaler()),
            ("distance", MedianDistanceScaler()),
            ("gp", GaussianProcessRegressor(kernel=kernel, normalize_y=normalize_y,
                                            n_restarts_optimizer=n_restarts_optimizer,
                                            random_state=random_state, **gp_kw)),
        ],
        memory=memory,
    )
