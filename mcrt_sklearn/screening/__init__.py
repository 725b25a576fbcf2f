"""Screening a CSP landscape: calibrated intervals, a ranking, the landscape map, and
what to compute next (DESIGN §12).

- :mod:`~mcrt_sklearn.screening.intervals`: :class:`ConformalRegressor` (MAPIE split /
  CV+ around any of our estimators), coverage, width, calibration curve;
- :mod:`~mcrt_sklearn.screening.ensemble`: :class:`MCRTEnsembleRegressor` (deep
  ensembles, ``predict(X, return_std=True)``);
- :mod:`~mcrt_sklearn.screening.gp`: :func:`make_gp_soap` (GP-SOAP);
- :mod:`~mcrt_sklearn.screening.rank`: the ranking table and P(top-k);
- :mod:`~mcrt_sklearn.screening.landscape`: the energy–density figure;
- :mod:`~mcrt_sklearn.screening.suggest`: LCB / UCB acquisition with diversity;
- :mod:`~mcrt_sklearn.screening.screen`: :func:`screen`, the Python face of
  ``mcrt-sklearn screen``; :func:`suggest_next` that of ``mcrt-sklearn suggest``.

MAPIE (``pip install 'mcrt_sklearn[screen]'``) is needed only for the conformal parts.
"""

from mcrt_sklearn.screening.ensemble import MCRTEnsembleRegressor
from mcrt_sklearn.screening.gp import gp_soap_kernel, make_gp_soap
from mcrt_sklearn.screening.intervals import (
    DEFAULT_LEVELS,
    ConformalRegressor,
    as_samples,
    calibration_curve,
    coverage,
    interval_std,
    mean_width,
    normal_intervals,
    plot_calibration_curve,
)
from mcrt_sklearn.screening.landscape import plot_landscape
from mcrt_sklearn.screening.loading import LandscapeData, load_landscape
from mcrt_sklearn.screening.models import SCREEN_MODELS, build_model, supports_std
from mcrt_sklearn.screening.rank import prob_top_k, rank_table
from mcrt_sklearn.screening.screen import ScreenResult, screen
from mcrt_sklearn.screening.suggest import acquisition, select_diverse, suggest, suggest_next

__all__ = [
    "MCRTEnsembleRegressor", "make_gp_soap", "gp_soap_kernel", "ConformalRegressor",
    "as_samples", "coverage", "mean_width", "calibration_curve", "normal_intervals",
    "interval_std", "plot_calibration_curve", "DEFAULT_LEVELS", "plot_landscape",
    "LandscapeData", "load_landscape", "SCREEN_MODELS", "build_model", "supports_std",
    "prob_top_k", "rank_table", "screen", "ScreenResult", "acquisition", "select_diverse",
    "suggest", "suggest_next",
]
