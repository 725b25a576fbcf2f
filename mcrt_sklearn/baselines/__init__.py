"""Baselines the MCRT paper compares against, as scikit-learn estimators (§8).

>>> from mcrt_sklearn.baselines import (make_rf_soap, make_krr_soap, CGCNNRegressor,
...                                     ALIGNNRegressor, CrystalTwinsRegressor)

All take the same X as MCRT: a list of pymatgen Structures or CIF paths. RF/KRR need
``dscribe``; ALIGNN needs the ``alignn`` package (its pure-PyTorch model, no DGL) —
both in the ``[baselines]`` extra.
"""

from mcrt_sklearn.baselines.soap_models import (
    krr_soap_param_grid,
    make_krr_soap,
    make_rf_soap,
    rf_soap_param_grid,
)

__all__ = [
    "make_rf_soap",
    "make_krr_soap",
    "rf_soap_param_grid",
    "krr_soap_param_grid",
    "CGCNNRegressor",
    "ALIGNNRegressor",
    "CrystalTwinsRegressor",
]

_LAZY = {
    "CGCNNRegressor": "mcrt_sklearn.baselines.cgcnn",
    "CrystalTwinsRegressor": "mcrt_sklearn.baselines.crystal_twins",
    "ALIGNNRegressor": "mcrt_sklearn.baselines.alignn_wrapper",
}


def __getattr__(name):
    # torch / alignn are imported only when a network baseline is asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
