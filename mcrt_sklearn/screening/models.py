"""Named models for screening: a featuriser and an estimator on its output.

The screening code featurises each structure once and fits the estimator (and its
conformal or ensemble copies) on the features, so the split below — featuriser apart —
is what makes cross-conformal intervals cost ``cv`` model fits and not ``cv``
featurisations. ``Pipeline([("feat", featuriser), ("model", estimator)])`` is the same
model on structures.

=================  ===========================================  =======================
name               featuriser                                   estimator
=================  ===========================================  =======================
``KRR-SOAP``       SOAPFeaturizer (r_cut 4, n_max 6, l_max 6)   scale → KRR (RBF), alpha
                                                                and gamma by 3-fold grid
                                                                search unless given
``GP-SOAP``        the same                                     scale → median-distance
                                                                scale → GP, RBF + white
                                                                noise (own std)
``RF-SOAP``        the same                                     random forest (200 trees)
``MCRT``           MCRTFeaturizer                               MCRTRegressor
``MCRT-ensemble``  MCRTFeaturizer                               MCRTEnsembleRegressor of
                                                                MCRTRegressors (own std)
=================  ===========================================  =======================

MCRT's architecture defaults to the ``small`` preset of the CLI (4 × 256); pass
``hid_dim=...`` etc. (or ``checkpoint=``) in ``params``.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mcrt_sklearn.screening.ensemble import MCRTEnsembleRegressor
from mcrt_sklearn.screening.gp import MedianDistanceScaler, gp_soap_kernel

__all__ = ["SCREEN_MODELS", "build_model", "supports_std"]

#: Model names of :func:`build_model`.
SCREEN_MODELS = ("KRR-SOAP", "GP-SOAP", "RF-SOAP", "MCRT", "MCRT-ensemble")

_SMALL = dict(hid_dim=256, num_blocks=4, num_heads=8, alignn_hidden_dim=64, alignn_num_conv=2)
_SOAP_KEYS = ("r_cut", "n_max", "l_max", "sigma", "average", "rbf")


def _soap(species, cache_dir, n_jobs, params):
    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    kw = {k: params.pop(k) for k in list(params) if k in _SOAP_KEYS}
    return SOAPFeaturizer(species=species, cache_dir=cache_dir, n_jobs=n_jobs, **kw)


def build_model(
    name: str,
    params: dict | None = None,
    featurizer_params: dict | None = None,
    species=None,
    cache_dir=None,
    n_jobs: int = 1,
    random_state: int | None = 0,
):
    """``(featuriser, estimator)`` of a named screening model.

    Parameters
    ----------
    name : one of :data:`SCREEN_MODELS`
    params : dict, optional
        Estimator parameters: KRR ``alpha``, ``gamma`` (given: no grid search); GP
        ``length_scale``, ``noise_level``, ``n_restarts_optimizer``; RF any
        RandomForestRegressor parameter; MCRT any MCRTRegressor parameter, plus
        ``n_ensemble`` for ``MCRT-ensemble``. SOAP settings (``r_cut``, ``n_max``,
        ``l_max``, ``sigma``) go to the featuriser.
    featurizer_params : dict, optional
        MCRTFeaturizer parameters (e.g. ``images=False``, ``image_mode="fast"``).
    species : sequence of str, optional
        SOAP species (default: the fixed organic list).
    cache_dir : path, optional
        Featurisation cache.
    n_jobs : int
        Featurisation workers.
    random_state : int, optional
        Seeds every model.
    """
    params = dict(params or {})
    fparams = dict(featurizer_params or {})
    if name in ("KRR-SOAP", "GP-SOAP", "RF-SOAP"):
        feat = _soap(species, cache_dir, n_jobs, params)
        if name == "RF-SOAP":
            params.setdefault("n_estimators", 200)
            return feat, RandomForestRegressor(random_state=random_state, **params)
        if name == "GP-SOAP":
            kernel = gp_soap_kernel(params.pop("length_scale", 1.0),
                                    params.pop("noise_level", 0.1))
            gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                          random_state=random_state, **params)
            return feat, Pipeline([("scale", StandardScaler()),
                                   ("distance", MedianDistanceScaler()), ("gp", gp)])
        search = "alpha" not in params and "gamma" not in params
        krr = Pipeline([("scale", StandardScaler()),
                        ("krr", KernelRidge(kernel=params.pop("kernel", "rbf"),
                                            alpha=params.pop("alpha", 1e-2),
                                            gamma=params.pop("gamma", None), **params))])
        if not search:
            return feat, krr
        grid = {"krr__alpha": [float(a) for a in np.logspace(-3, 1, 5)],
                "krr__gamma": [float(g) for g in np.logspace(-5, -2, 4)]}
        return feat, GridSearchCV(krr, grid, cv=3, scoring="neg_mean_absolute_error")
    if name in ("MCRT", "MCRT-ensemble"):
        from mcrt_sklearn.estimators.regressor import MCRTRegressor
        from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

        feat = MCRTFeaturizer(cache_dir=cache_dir, n_jobs=n_jobs, **fparams)
        n_ensemble = int(params.pop("n_ensemble", 5))
        arch = {} if params.get("checkpoint") else dict(_SMALL)
        arch.update(params)
        arch.setdefault("use_images", bool(getattr(feat, "images", True)))
        if name == "MCRT":
            return feat, MCRTRegressor(random_state=random_state, **arch)
        return feat, MCRTEnsembleRegressor(MCRTRegressor(**arch), n_ensemble=n_ensemble,
                                           random_state=random_state)
    raise ValueError(f"unknown screening model {name!r}; choose from {', '.join(SCREEN_MODELS)}")


def supports_std(estimator) -> bool:
    """Whether ``estimator.predict(X, return_std=True)`` gives a predictive std."""
    last = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(last, (GaussianProcessRegressor, MCRTEnsembleRegressor))
