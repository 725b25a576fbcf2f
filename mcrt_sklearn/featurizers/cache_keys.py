"""Keys of the featurisers' on-disk cache: a structure's content fingerprint, and the
key of one entry (content + featuriser + parameters + algorithm versions)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from mcrt_sklearn.versions import versioned_key

__all__ = ["structure_fingerprint", "cache_key", "LATTICE_QUANTUM", "FRAC_QUANTUM"]

#: Quantisation of the cache key: lattice vectors (Å) and fractional coordinates.
LATTICE_QUANTUM = 1e-5
FRAC_QUANTUM = 1e-7
#: Offset of the quantisation grid, in quanta: numbers with at most 8 decimals (what
#: CifWriter writes) then lie at least 0.03 quanta from a cell edge, so round-off of a
#: CIF round trip never changes the key.
_GRID_OFFSET = 0.37


def _quantise(x: np.ndarray, quantum: float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) / quantum + _GRID_OFFSET).astype(np.int64)


def structure_fingerprint(structure: Structure) -> str:
    """SHA-256 of a structure's content (lattice, atomic numbers, coordinates, order).

    Lattice vectors are quantised to 1e-5 Å and fractional coordinates to 1e-7
    (≈1e-6 Å) on a grid offset so that CIF-precision numbers are never near a cell
    edge; sub-quantum round-off therefore keeps the key. Coordinates are not wrapped
    into the cell: the reference angle convention depends on the in-cell position.
    """
    lat = _quantise(structure.lattice.matrix, LATTICE_QUANTUM)
    frac = _quantise(structure.frac_coords, FRAC_QUANTUM)
    z = np.asarray([site.specie.Z for site in structure], dtype=np.int64)
    h = hashlib.sha256()
    h.update(b"mcrt-structure-v1")
    h.update(np.ascontiguousarray(lat).tobytes())
    h.update(np.ascontiguousarray(z).tobytes())
    h.update(np.ascontiguousarray(frac).tobytes())
    return h.hexdigest()


def cache_key(structure: Structure, namespace: str, params: dict[str, Any],
              components: Sequence[str] = ()) -> str:
    """Key of a cache entry: structure content + featuriser name + parameters + the
    versions of the algorithms that make the entry.

    Parameters
    ----------
    structure : Structure
    namespace : str
        Featuriser name.
    params : dict
        The parameters that change the output (JSON-serialisable, or str-able).
    components : sequence of str
        Names in :data:`mcrt_sklearn.versions.VERSIONS` of the algorithms behind the
        result (the structure fingerprint's version is always included).
    """
    return versioned_key(namespace, {"structure": structure_fingerprint(structure),
                                     "params": params},
                         ("structure-fingerprint", *components))
