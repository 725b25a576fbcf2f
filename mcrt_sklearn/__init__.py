"""MCRT for scikit-learn and matminer: molecular-crystal property prediction."""

from mcrt_sklearn._version import __version__
from mcrt_sklearn.errors import (
    DisorderedStructureError,
    EmptyStructureError,
    MCRTError,
    StructureError,
    TooManyAtomsError,
    UnreadableStructureError,
)
from mcrt_sklearn.structures import read_structures

__all__ = [
    "__version__",
    "read_structures",
    "MCRTError",
    "StructureError",
    "DisorderedStructureError",
    "EmptyStructureError",
    "TooManyAtomsError",
    "UnreadableStructureError",
]
