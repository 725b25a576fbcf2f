"""All pre-training labels of one structure (:func:`compute_pretrain_labels`) and the
density (the CDP label).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcrt_sklearn.featurizers.labels.molecules import molecule_ids
from mcrt_sklearn.featurizers.labels.spacegroups import _dataset, _standard_operations
from mcrt_sklearn.featurizers.labels.symmetry import symmetry_elements_from_operations

if TYPE_CHECKING:
    from pymatgen.core import Structure


def density(structure: Structure) -> float:
    """Crystal density in g/cm³ (mass of the cell's atoms over the cell volume)."""
    return float(structure.density)


def compute_pretrain_labels(structure: Structure, symprec: float = 0.1) -> dict[str, Any]:
    """All pre-training labels of one structure.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        P1 cell of the crystal (the site order is kept).
    symprec : float
        spglib tolerance in Å.

    Returns
    -------
    dict
        ``molecule_ids`` (int64, (n,)), ``symmetry_elements`` (float32, (7,), order
        :data:`SEP_COLUMNS`), ``density`` (float, g/cm³), ``spacegroup_number`` (int).
    """
    data = _dataset(structure, symprec)
    return {
        "molecule_ids": molecule_ids(structure),
        "symmetry_elements": symmetry_elements_from_operations(*_standard_operations(data)),
        "density": density(structure),
        "spacegroup_number": int(data.number),
    }
