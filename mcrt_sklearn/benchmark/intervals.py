"""Conformal intervals in a benchmark run (``--interval 0.9``): each fold's model is wrapped
in :class:`~mcrt_sklearn.screening.ConformalRegressor` (MAPIE CV+, or split conformal with
``--interval-method split``) inside the fold's training part, grouped by the run's group
column when there is one, so the intervals are calibrated for new groups; the fold records
the empirical coverage and the mean width of its test intervals."""

from __future__ import annotations

__all__ = ["interval_settings", "conformal", "interval_metrics"]


def interval_settings(confidence_level: float, cv: int = 5, method: str = "cross",
                      calibration_size: float = 0.2) -> dict:
    """The ``settings["interval"]`` of a run with intervals at ``confidence_level``.

    ``method="cross"`` (CV+, ``cv`` fits per fold) or ``"split"`` (one fit per fold on
    ``1 - calibration_size`` of its training part, calibrated on the rest: what makes
    intervals affordable for the networks on a CPU, at the price of a model trained on
    less data and intervals from fewer residuals)."""
    if not 0.0 < float(confidence_level) < 1.0:
        raise ValueError(f"the interval's confidence level must lie in (0, 1), "
                         f"got {confidence_level!r}")
    if method == "cross":  # the settings (and fold keys) of CV+ runs as they always were
        return {"confidence_level": float(confidence_level), "method": "cross", "cv": int(cv)}
    if method == "split":
        if not 0.0 < float(calibration_size) < 1.0:
            raise ValueError(f"calibration_size must lie in (0, 1), got {calibration_size!r}")
        return {"confidence_level": float(confidence_level), "method": "split",
                "calibration_size": float(calibration_size)}
    raise ValueError(f"interval method must be 'cross' or 'split', got {method!r}")


def conformal(est, interval: dict, seed: int):
    """``est`` inside a conformal regressor with the run's interval settings (CV+ costs
    ``cv`` fits of ``est`` per fold, split conformal one)."""
    from mcrt_sklearn.screening.intervals import ConformalRegressor

    return ConformalRegressor(est, method=interval.get("method", "cross"),
                              confidence_level=interval["confidence_level"],
                              cv=interval.get("cv", 5),
                              calibration_size=interval.get("calibration_size", 0.2),
                              random_state=seed)


def interval_metrics(y, lower, upper) -> dict:
    """Empirical coverage and mean width of the intervals on the test targets ``y``."""
    from mcrt_sklearn.screening.intervals import coverage, mean_width

    return {"coverage": float(coverage(y, lower, upper)),
            "width": float(mean_width(lower, upper))}
