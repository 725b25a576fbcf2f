"""Conversion of a published model, once, into our safetensors + JSON format."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcrt_sklearn.pretrained.registry import REGISTRY, ModelInfo, _info_for, is_url

__all__ = ["convert"]


def _estimator_block(info: ModelInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved-``MCRTRegressor`` block for a published fine-tuned regression model whose
    target normalisation is known, so the converted file predicts in ``info.unit``."""
    if (info.target_mean is None or info.target_std is None
            or "regression" not in tuple(config.get("tasks", ()))):
        return {}
    from mcrt_sklearn.estimators._net import ARCH_PARAMS

    params = {p: config[p] for p in ARCH_PARAMS if p in config}
    params["checkpoint"] = None
    return {"estimator": {
        "class": "MCRTRegressor", "params": params,
        "fitted": {"y_mean": float(info.target_mean), "y_std": float(info.target_std)},
        "elements_seen": None,
        "target_scaling_source": (f"the reference's fine-tuning script ({info.notes})"),
    }}


def convert(src, dst, trusted: bool = False) -> Path:
    """Convert a checkpoint (a published model's name, a URL or a file) once into our
    safetensors + JSON format (:func:`~mcrt_sklearn.model.checkpoint.convert_checkpoint`).

    The converted file records where the original came from (name, URL, sha256,
    licence, citation, the reference's config). A published fine-tuned regression model
    whose target normalisation is known becomes a saved ``MCRTRegressor``:
    ``MCRTRegressor.load(dst).predict(records)`` is in the model's unit.
    """
    from mcrt_sklearn.model.checkpoint import convert_checkpoint

    info = None
    if isinstance(src, str) and not os.path.exists(src) and (is_url(src) or src in REGISTRY):
        info = _info_for(src)
    if info is None:
        return convert_checkpoint(src, dst, trusted=trusted)
    prov = {"published_model": {
        "name": info.name, "source": info.source, "page": info.page, "licence": info.licence,
        "citation": info.citation, "trained_on": info.trained_on, "predicts": info.predicts,
        "unit": info.unit, "notes": info.notes}}
    return convert_checkpoint(src, dst, trusted=trusted, provenance=prov,
                              extra=lambda config: _estimator_block(info, config))
