"""Space groups of structures (spglib, via pymatgen) and their symmetry-element labels
(:func:`symmetry_elements`, :func:`symmetry_elements_from_spacegroup`,
:func:`spacegroup_number`).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from mcrt_sklearn.featurizers.labels.symmetry import symmetry_elements_from_operations

if TYPE_CHECKING:
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)


def _dataset(structure: Structure, symprec: float, angle_tolerance: float = 5.0):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
    data = sga.get_symmetry_dataset()
    if data is None:
        raise ValueError(f"spglib found no symmetry (symprec={symprec})")
    return data


def _transformed_input_operations(data) -> tuple[np.ndarray, np.ndarray]:
    """The input cell's operations expressed in spglib's standard setting.

    spglib: ``x_s = P x + p``, so ``W_s = P W P^-1`` and ``t_s = P t + p - W_s p``; the
    input cell's lattice vectors (columns of P) join the pure translations. Incomplete
    when the input cell is a supercell whose metric cannot carry every rotation (spglib
    then omits the operations without an integer matrix in the input basis).
    """
    p_mat = np.asarray(data.transformation_matrix, dtype=float)
    shift = np.asarray(data.origin_shift, dtype=float)
    p_inv = np.linalg.inv(p_mat)
    rot_in = np.asarray(data.rotations, dtype=float)
    rot = np.rint(np.einsum("ij,mjk,kl->mil", p_mat, rot_in, p_inv)).astype(np.int64)
    trans = (
        np.asarray(data.translations, dtype=float) @ p_mat.T
        + shift
        - np.einsum("mij,j->mi", rot, shift)
    )
    cell_vectors = p_mat.T  # rows: input lattice vectors in standard coordinates
    eye = np.broadcast_to(np.eye(3, dtype=np.int64), (3, 3, 3))
    return np.concatenate([rot, eye]), np.concatenate([trans, cell_vectors])


def _standard_operations(data) -> tuple[np.ndarray, np.ndarray]:
    """A structure's operations in spglib's conventional standard setting.

    They are the operations of spglib's standardised (symmetrised, conventional) cell of
    the structure, found again by spglib: in the conventional cell every operation has
    an integer rotation matrix, whatever cell the structure came in.
    """
    import spglib

    cell = (
        np.asarray(data.std_lattice),
        np.asarray(data.std_positions),
        np.asarray(data.std_types),
    )
    # positions are idealised, so a tight tolerance recovers the group exactly
    ops = spglib.get_symmetry(cell, symprec=1e-3)
    if ops is None or len(ops["rotations"]) == 0:  # pragma: no cover - spglib failure
        logger.warning("spglib failed on the standardised cell; using the input cell")
        return _transformed_input_operations(data)
    return np.asarray(ops["rotations"]), np.asarray(ops["translations"])


def spacegroup_number(structure: Structure, symprec: float = 0.1) -> int:
    """International space-group number found by spglib (via pymatgen)."""
    return int(_dataset(structure, symprec).number)


def symmetry_elements(structure, symprec: float = 0.1, angle_tolerance: float = 5.0) -> np.ndarray:
    """7-dim symmetry-element multi-hot of a structure, from its own operations.

    The operations found by spglib (``SpacegroupAnalyzer``, ``symprec`` in Å) are
    expressed in spglib's conventional standard setting and classified by
    :func:`symmetry_elements_from_operations`; no space-group table is consulted.

    Returns
    -------
    ndarray of float32, shape (7,)
        In the order of :data:`SEP_COLUMNS`.
    """
    return symmetry_elements_from_operations(
        *_standard_operations(_dataset(structure, symprec, angle_tolerance))
    )


@cache
def _default_hall_numbers() -> dict[int, int]:
    import spglib

    first: dict[int, int] = {}
    for hall in range(1, 531):
        first.setdefault(int(spglib.get_spacegroup_type(hall).number), hall)
    return first


def symmetry_elements_from_spacegroup(number: int, hall_number: int | None = None) -> np.ndarray:
    """7-dim symmetry-element multi-hot of a space group, from its operations.

    Parameters
    ----------
    number : int
        International space-group number (1-230).
    hall_number : int, optional
        A particular setting (spglib Hall number, 1-530) of that group; default: the
        first (standard) setting in spglib's database.

    Returns
    -------
    ndarray of float32, shape (7,)
        Same classifier as :func:`symmetry_elements`.
    """
    import spglib

    number = int(number)
    if not 1 <= number <= 230:
        raise ValueError(f"space-group number must be in 1..230, got {number}")
    if hall_number is None:
        hall_number = _default_hall_numbers()[number]
    elif int(spglib.get_spacegroup_type(hall_number).number) != number:
        raise ValueError(f"Hall number {hall_number} is not a setting of space group {number}")
    ops = spglib.get_symmetry_from_database(int(hall_number))
    return symmetry_elements_from_operations(ops["rotations"], ops["translations"])
