"""MCRT for scikit-learn and matminer: molecular-crystal property prediction.

The public names below are imported on first use, so ``import mcrt_sklearn`` stays
light (no torch) until a model is needed.
"""

from __future__ import annotations

import importlib

from mcrt_sklearn._version import __version__
from mcrt_sklearn.errors import (
    CheckpointError,
    DisorderedStructureError,
    EmptyStructureError,
    FeaturizationError,
    InvalidIdError,
    MCRTError,
    MissingImageError,
    MultipleStructuresError,
    NoBondsError,
    NotPeriodicError,
    OverlappingAtomsError,
    StructureError,
    TooManyAtomsError,
    UnreadableStructureError,
)
from mcrt_sklearn.structures import read_structure, read_structures

_LAZY = {
    "MCRTInput": "mcrt_sklearn.featurizers.record",
    "MCRTFeaturizer": "mcrt_sklearn.featurizers.graph",
    "PersistenceImageFeaturizer": "mcrt_sklearn.featurizers.persistence",
    "SOAPFeaturizer": "mcrt_sklearn.featurizers.soap",
    "MCRTEncoder": "mcrt_sklearn.estimators.encoder",
    "MCRTRegressor": "mcrt_sklearn.estimators.regressor",
    "MCRTClassifier": "mcrt_sklearn.estimators.classifier",
    "MCRTPretrainer": "mcrt_sklearn.estimators.pretrain",
    "load_checkpoint": "mcrt_sklearn.model.checkpoint",
    "save_checkpoint": "mcrt_sklearn.model.checkpoint",
    "load_dataset": "mcrt_sklearn.datasets",
}

__all__ = [
    "__version__",
    "read_structure",
    "read_structures",
    *_LAZY,
    "MCRTError",
    "StructureError",
    "CheckpointError",
    "DisorderedStructureError",
    "EmptyStructureError",
    "FeaturizationError",
    "InvalidIdError",
    "MissingImageError",
    "MultipleStructuresError",
    "NoBondsError",
    "NotPeriodicError",
    "OverlappingAtomsError",
    "TooManyAtomsError",
    "UnreadableStructureError",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mcrt_sklearn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
