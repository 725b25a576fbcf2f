"""Reducing a supercell to a cell verified to tile it (the rule of the shared cells)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition, Structure

__all__ = ["PRIMITIVE_TOLERANCES", "TILING_TOLERANCE", "CellReduction", "tiling_deviation",
           "find_tiling_cell", "reduce_supercell"]

logger = logging.getLogger(__name__)


#: ``get_primitive_structure`` tolerances (Å) tried, in this order, when reducing a
#: supercell (as for the shared ``azaphenacenes`` cells; see that folder's README).
PRIMITIVE_TOLERANCES = (0.01, 0.1, 0.5)
#: The farthest (Å) any supercell atom may lie from its image in a reduced cell.
TILING_TOLERANCE = 0.01


@dataclass(frozen=True)
class CellReduction:
    """A cell verified to tile a supercell (see :func:`find_tiling_cell`).

    Attributes
    ----------
    structure : Structure
        The reduced cell (the supercell itself when no reduction passed).
    multiplicity : int
        Atoms of the supercell ÷ atoms of the cell (1: not reduced).
    tolerance : float or None
        The ``get_primitive_structure`` tolerance (Å) that gave the cell; None when
        the supercell was kept.
    max_deviation : float
        The farthest any supercell atom lies from its image in the cell (Å).
    transformation : ndarray of int, shape (3, 3)
        ``supercell.lattice.matrix == transformation @ structure.lattice.matrix``
        (lattice vectors as rows), up to the tiling tolerance.
    n_molecules : int
        Molecules in the cell (components of the bond graph).
    """

    structure: Structure
    multiplicity: int
    tolerance: float | None
    max_deviation: float
    transformation: np.ndarray
    n_molecules: int


def _tiling(
    supercell: Structure, cell: Structure, lattice_tolerance: float
) -> tuple[float, np.ndarray | None]:
    """(max deviation in Å, integer transformation); (inf, None) when ``cell`` cannot tile."""
    n_super, n_cell = len(supercell), len(cell)
    if n_cell == 0 or n_super % n_cell:
        return float("inf"), None
    multiplicity = n_super // n_cell
    a_super, a_cell = supercell.lattice.matrix, cell.lattice.matrix
    inverse = np.linalg.inv(a_cell)
    transformation = np.rint(a_super @ inverse)
    lattice_error = np.linalg.norm(transformation @ a_cell - a_super, axis=1).max()
    if lattice_error > lattice_tolerance:
        return float("inf"), None
    det = int(round(abs(np.linalg.det(transformation))))
    if det != multiplicity or abs(supercell.volume / det - cell.volume) > 1e-4 * cell.volume:
        return float("inf"), None
    cell_species = np.array([site.specie.symbol for site in cell])
    super_species = np.array([site.specie.symbol for site in supercell])
    if set(cell_species) != set(super_species):
        return float("inf"), None
    worst = 0.0
    for element in sorted(set(cell_species)):
        own = cell.frac_coords[cell_species == element]
        # the supercell's atoms in fractional coordinates of the cell
        images = supercell.cart_coords[super_species == element] @ inverse
        if len(images) != multiplicity * len(own):
            return float("inf"), None
        hits = np.zeros(len(own), dtype=np.int64)
        for start in range(0, len(images), 1024):
            diff = images[start : start + 1024, None, :] - own[None, :, :]
            diff -= np.rint(diff)
            dist = np.linalg.norm(diff @ a_cell, axis=-1)
            nearest = dist.argmin(axis=1)
            hits += np.bincount(nearest, minlength=len(own))
            worst = max(worst, float(dist[np.arange(len(nearest)), nearest].max()))
        if not np.all(hits == multiplicity):
            return float("inf"), None
    return worst, transformation.astype(np.int64)


def tiling_deviation(
    supercell: Structure, cell: Structure, lattice_tolerance: float = TILING_TOLERANCE
) -> float:
    """How well ``cell`` tiles ``supercell``: the farthest supercell atom from its image.

    The cell tiles the supercell when the supercell lattice is an integer matrix of
    the cell's lattice (to ``lattice_tolerance`` Å per vector) whose determinant is
    ``len(supercell) / len(cell)``, the volumes agree, and every supercell atom has a
    same-species atom of the cell nearest to it (periodically) such that each atom of
    the cell is the nearest one of exactly ``len(supercell) / len(cell)`` supercell atoms.

    Parameters
    ----------
    supercell : Structure
        The multiplied cell.
    cell : Structure
        A candidate reduced cell (same Cartesian frame).
    lattice_tolerance : float
        Largest mismatch (Å) allowed between a supercell lattice vector and its
        integer combination of the cell's vectors.

    Returns
    -------
    float
        The largest distance (Å) between a supercell atom and its image in ``cell``;
        ``inf`` when ``cell`` cannot tile ``supercell`` at all.
    """
    return _tiling(supercell, cell, lattice_tolerance)[0]


def _molecule_formulas(structure: Structure) -> Counter:
    """How many molecules of each formula the cell holds (bond-graph components)."""
    from mcrt_sklearn.featurizers.labels import molecule_ids

    labels = molecule_ids(structure)
    symbols = [site.specie.symbol for site in structure]
    formulas: Counter = Counter()
    for k in np.unique(labels):
        members = Counter(symbols[i] for i in np.flatnonzero(labels == k))
        formulas[Composition(members).formula] += 1
    return formulas


def find_tiling_cell(
    supercell: Structure,
    tolerances: Sequence[float] = PRIMITIVE_TOLERANCES,
    max_deviation: float = TILING_TOLERANCE,
    molecule_formula: str | None = None,
) -> CellReduction:
    """The smallest primitive reduction of ``supercell`` that provably tiles it.

    Each tolerance is tried with pymatgen's ``get_primitive_structure``; a candidate is
    kept only when (1) it tiles the supercell within ``max_deviation`` Å (see
    :func:`tiling_deviation`: integer lattice matrix with determinant
    ``N_super / N_cell``, same volume per cell, every supercell atom within
    ``max_deviation`` of a same-species atom of the cell, each cell atom hit exactly
    ``N_super / N_cell`` times) and (2) its molecules (bond-graph components) are
    whole: the supercell's molecule formulas ÷ ``N_super / N_cell``, and all equal to
    ``molecule_formula`` when it is given. Of the passing candidates the smallest is
    kept, the first tolerance winning ties. A reduction that only *nearly* repeats
    (pseudo-translational symmetry, as in azaphenacenes 063, 066 and 122, whose half
    cells deviate by 0.03–0.04 Å) is therefore refused.

    Parameters
    ----------
    supercell : Structure
        A (possibly) multiplied cell.
    tolerances : sequence of float
        Site tolerances (Å) tried with ``get_primitive_structure``, in order.
    max_deviation : float
        Tiling tolerance (Å) for atoms and lattice vectors.
    molecule_formula : str, optional
        Formula every molecule of the cell must have (e.g. ``"C16H10N4"``).

    Returns
    -------
    CellReduction
        The verified cell; the supercell itself (``multiplicity`` 1, ``tolerance``
        None) when no reduction passes.
    """
    super_molecules = _molecule_formulas(supercell)
    wanted = None if molecule_formula is None else Composition(molecule_formula).formula
    best = None
    for tol in tolerances:
        try:
            prim = supercell.get_primitive_structure(tolerance=tol)
        except Exception:  # pymatgen can fail on noisy cells; try the next tolerance
            continue
        if len(prim) >= (len(supercell) if best is None else len(best.structure)):
            continue
        deviation, transformation = _tiling(supercell, prim, max_deviation)
        if not deviation <= max_deviation:
            logger.debug("tolerance %s: %d-atom cell does not tile (%.4f Å)", tol, len(prim),
                         deviation)
            continue
        multiplicity = len(supercell) // len(prim)
        molecules = _molecule_formulas(prim)
        scaled = Counter({f: c * multiplicity for f, c in molecules.items()})
        if scaled != super_molecules or (wanted is not None and set(molecules) != {wanted}):
            logger.debug("tolerance %s: %d-atom cell cuts molecules", tol, len(prim))
            continue
        best = CellReduction(prim, multiplicity, float(tol), deviation, transformation,
                             sum(molecules.values()))
    if best is None:
        best = CellReduction(supercell.copy(), 1, None, 0.0, np.eye(3, dtype=np.int64),
                             sum(super_molecules.values()))
    return best


def reduce_supercell(
    supercell: Structure, tolerances: Sequence[float] = PRIMITIVE_TOLERANCES
) -> Structure:
    """The smallest primitive cell that tiles ``supercell`` (:func:`find_tiling_cell`).

    Parameters
    ----------
    supercell : Structure
        A (possibly) multiplied cell.
    tolerances : sequence of float
        Site tolerances (Å) tried with pymatgen's ``get_primitive_structure``.

    Returns
    -------
    Structure
        The reduced cell, or a copy of ``supercell`` when no reduction tiles it.
    """
    return find_tiling_cell(supercell, tolerances).structure
