"""RF and KRR on averaged SOAP vectors — the kernel/tree baselines of the MCRT paper.

Both factories return plain scikit-learn :class:`~sklearn.pipeline.Pipeline` objects
whose first step is :class:`~mcrt_sklearn.featurizers.soap.SOAPFeaturizer`, so they
take the same X as MCRT (Structures or CIF paths) and work inside ``GridSearchCV``.
In a grid search the SOAP step is refitted on every fold; pass ``soap_cache=`` (a
``joblib.Memory`` or a directory) so that each crystal's vector is computed once and
reused across folds and grid points. (sklearn's ``Pipeline(memory=...)`` also works but
hashes whole pymatgen Structures, which costs more than SOAP itself.)

Cross-validation over any organic dataset works out of the box: the SOAP step uses a
fixed species list (:data:`~mcrt_sklearn.featurizers.soap.ORGANIC_SPECIES` unless
``species=`` is given), not the elements of the training fold, so a test fold holding
an element its training fold lacks (S in one molecule of several) gets the same
columns as the training fold; the forest never splits on a column that is constant
in training and the scaled kernel adds that element's environments to the distance.
Elements outside the list raise
:class:`~mcrt_sklearn.featurizers.soap.UnseenSpeciesError` (a NaN score in
``cross_val_score``, or the error itself with ``error_score="raise"``).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

__all__ = ["make_rf_soap", "make_krr_soap", "rf_soap_param_grid", "krr_soap_param_grid"]

_SOAP_KEYS = ("r_cut", "n_max", "l_max", "sigma", "species", "average", "rbf")


def _split_soap_kw(kw: dict) -> tuple[dict, dict]:
    soap_kw = {k: kw.pop(k) for k in list(kw) if k in _SOAP_KEYS}
    if "soap_n_jobs" in kw:
        soap_kw["n_jobs"] = kw.pop("soap_n_jobs")
    if "soap_cache" in kw:
        soap_kw["cache_dir"] = kw.pop("soap_cache")
    return soap_kw, kw


def make_rf_soap(
    n_estimators: int = 500,
    random_state=None,
    n_jobs: int | None = None,
    memory=None,
    **kw,
) -> Pipeline:
    """Random forest on atom-averaged SOAP (r_cut 4 Å, n_max 6, l_max 6).

    Parameters
    ----------
    n_estimators : int
        Trees (the paper searched 10–1000, see :func:`rf_soap_param_grid`).
    random_state : int, optional
        Seed of the forest.
    n_jobs : int, optional
        Parallel trees.
    memory : joblib.Memory or str, optional
        sklearn Pipeline memory (prefer ``soap_cache``).
    **kw
        SOAP settings (``r_cut``, ``n_max``, ``l_max``, ``sigma``, ``species``,
        ``average``, ``rbf``, ``soap_n_jobs``, ``soap_cache``); anything else goes to
        :class:`~sklearn.ensemble.RandomForestRegressor`. ``species`` defaults to
        the fixed organic list (see the module docstring); give the dataset's
        elements to shorten the vector when no other element will be featurised.

    Returns
    -------
    Pipeline
        Steps ``soap`` → ``rf`` (no scaling: trees are scale invariant).
    """
    soap_kw, rf_kw = _split_soap_kw(dict(kw))
    return Pipeline(
        [
            ("soap", SOAPFeaturizer(**soap_kw)),
            (
                "rf",
                RandomForestRegressor(
                    n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs, **rf_kw
                ),
            ),
        ],
        memory=memory,
    )


def make_krr_soap(
    alpha: float = 1e-2,
    kernel: str = "rbf",
    gamma: float | None = None,
    memory=None,
    **kw,
) -> Pipeline:
    """Kernel ridge regression on standardised atom-averaged SOAP.

    Parameters
    ----------
    alpha : float
        Ridge regularisation (the paper searched 1e-3–100, see
        :func:`krr_soap_param_grid`).
    kernel : str
        Kernel of :class:`~sklearn.kernel_ridge.KernelRidge` ("rbf", "laplacian",
        "linear", …).
    gamma : float, optional
        Kernel width; None → 1 / n_features (sklearn's default). n_features is that
        of the whole species list, so with the default list it does not depend on
        the elements of the training fold, but it is larger than the number of
        columns that vary on a C/H/N/O dataset (the others are zero): prefer an
        explicit gamma or :func:`krr_soap_param_grid`.
    memory : joblib.Memory or str, optional
        sklearn Pipeline memory (prefer ``soap_cache``).
    **kw
        SOAP settings as in :func:`make_rf_soap`; anything else goes to KernelRidge.

    Returns
    -------
    Pipeline
        Steps ``soap`` → ``scale`` (StandardScaler) → ``krr``.
    """
    soap_kw, krr_kw = _split_soap_kw(dict(kw))
    return Pipeline(
        [
            ("soap", SOAPFeaturizer(**soap_kw)),
            ("scale", StandardScaler()),
            ("krr", KernelRidge(alpha=alpha, kernel=kernel, gamma=gamma, **krr_kw)),
        ],
        memory=memory,
    )


def rf_soap_param_grid() -> dict:
    """The paper's RF search: n_estimators from 10 to 1000."""
    return {"rf__n_estimators": [10, 50, 100, 200, 500, 1000]}


def krr_soap_param_grid() -> list[dict]:
    """The paper's KRR search: alpha 1e-3–100, kernel and its width.

    gamma is on the scale of 1 / (number of columns that vary) of the standardised
    SOAP vector (~1200 for C/H/N; the columns of absent species are zero after
    scaling and add nothing to distances): 1e-5 … 1e-2.
    """
    alphas = [float(a) for a in np.logspace(-3, 2, 6)]
    gammas = [float(g) for g in np.logspace(-5, -2, 4)]
    return [
        {"krr__kernel": ["rbf", "laplacian"], "krr__alpha": alphas, "krr__gamma": gammas},
        {"krr__kernel": ["linear"], "krr__alpha": alphas},
    ]
