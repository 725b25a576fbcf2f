"""Screening a CSP landscape: calibrated intervals, a ranking, the landscape map, and
what to compute next (DESIGN §12).

- :mod:`~mcrt_sklearn.screening.intervals`: :class:`ConformalRegressor` (MAPIE split /
  CV+ around any of our estimators), coverage, width, calibration curve;
- :mod:`~mcrt_sklearn.screening.ensemble`: :class:`MCRTEnsembleRegressor` (deep
  ensembles, ``predict(X, return_std=True)``);
- :mod:`~mcrt_sklearn.screening.gp`: :func:`make_gp_soap` (GP-SOAP);
- :mod:`~mcrt_sklearn.screening.rank`: the ranking table and P(top-k);
- :mod:`~mcrt_sklearn.screening.landscape`: the energy–density figure;
- :mod:`~mcrt_sklearn.screening.acquire`: LCB / UCB acquisition with diversity,
  :func:`suggest` and :func:`suggest_next` (the Python face of ``mcrt-sklearn suggest``);
- :mod:`~mcrt_sklearn.screening.workflow`: :func:`screen`, the Python face of
  ``mcrt-sklearn screen``.

(No module is named like a function it exports: with lazy exports, ``from
mcrt_sklearn.screening import screen`` would otherwise return the module.)

MAPIE (``pip install 'mcrt_sklearn[screen]'``) is needed only for the conformal parts.
"""

import importlib

#: public name -> submodule; imported on first use, so that ``mcrt-sklearn --help`` (which
#: imports :mod:`mcrt_sklearn.screening.cli`) does not load sklearn, scipy and MAPIE.
_EXPORTS = {
    "MCRTEnsembleRegressor": "ensemble",
    "make_gp_soap": "gp", "gp_soap_kernel": "gp", "MedianDistanceScaler": "gp",
    "ConformalRegressor": "intervals", "as_samples": "intervals", "coverage": "intervals",
    "mean_width": "intervals", "calibration_curve": "intervals",
    "normal_intervals": "intervals", "interval_std": "intervals",
    "plot_calibration_curve": "intervals", "DEFAULT_LEVELS": "intervals",
    "min_calibration_size": "intervals",
    "plot_landscape": "landscape",
    "LandscapeData": "loading", "load_landscape": "loading",
    "SCREEN_MODELS": "models", "build_model": "models", "supports_std": "models",
    "prob_top_k": "rank", "rank_table": "rank",
    "screen": "workflow", "ScreenResult": "workflow",
    "acquisition": "acquire", "select_diverse": "acquire", "suggest": "acquire",
    "suggest_next": "acquire", "predictive_std": "acquire", "embedding_of": "acquire",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"mcrt_sklearn.screening.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'mcrt_sklearn.screening' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
