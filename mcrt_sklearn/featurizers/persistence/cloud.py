"""Point cloud: the atoms of a box of about ``box`` Å built from lattice copies of the
cell (:func:`supercell_points`), the first step of the recipe (see
:mod:`mcrt_sklearn.featurizers.persistence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Ranges of the lattice-copy loop of the reference supercell (x, y, z), plus the original
#: cell (0, 0, 0). ``x`` starts at 3 in the reference code (``range(-min_range, max_range)``
#: with ``min_range = -3``).
REFERENCE_SHIFT_RANGES = (range(3, 20), range(0, 20), range(0, 20))
#: Lower bound (Å) of the reference box: points with any coordinate <= this are dropped.
REFERENCE_MIN_COORD = -5.0


def _reference_shifts() -> np.ndarray:
    xs, ys, zs = (np.asarray(r) for r in REFERENCE_SHIFT_RANGES)
    grid = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.vstack([np.zeros((1, 3), dtype=grid.dtype), grid])


def _cube_points(coords: np.ndarray, lattice: np.ndarray, box: float) -> np.ndarray:
    """Every lattice image of every atom with all Cartesian coordinates in ``[0, box)``."""
    inv = np.linalg.inv(lattice)
    corners = np.array([[i, j, k] for i in (0, box) for j in (0, box) for k in (0, box)], float)
    frac_corners = corners @ inv
    frac_atoms = coords @ inv
    lo = np.floor(frac_corners.min(0) - frac_atoms.max(0)).astype(int) - 1
    hi = np.ceil(frac_corners.max(0) - frac_atoms.min(0)).astype(int) + 1
    out = []
    # loop over the first axis only: memory stays O(n_atoms * n_b * n_c)
    jj, kk = np.meshgrid(np.arange(lo[1], hi[1] + 1), np.arange(lo[2], hi[2] + 1), indexing="ij")
    jk = np.stack([jj.ravel(), kk.ravel()], 1).astype(float)
    for i in range(lo[0], hi[0] + 1):
        shifts = np.column_stack([np.full(len(jk), float(i)), jk]) @ lattice
        pts = (coords[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        keep = np.all((pts >= 0.0) & (pts < box), axis=1)
        if keep.any():
            out.append(pts[keep])
    return np.vstack(out) if out else np.zeros((0, 3))


def supercell_points(
    structure: Any, box: float = 100.0, supercell: str = "reference"
) -> np.ndarray:
    """Cartesian coordinates of the atoms of a ~``box`` Å block built from copies of the cell.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal (its ``cart_coords`` are used as given, not wrapped into the cell, as
        in the reference).
    box : float
        Edge of the box in Å.
    supercell : {"reference", "cube"}
        ``"reference"``: the reference's copy loop (x in 3…19, y and z in 0…19, plus the
        original cell; see the package docstring), points with all coordinates in
        ``(-5, box)``. ``"cube"``: all periodic images of the atoms inside ``[0, box)³``.

    Returns
    -------
    ndarray of float64, shape (m, 3)
        In the reference's order for ``"reference"`` (original cell first, then the copies
        with x slowest, z fastest).
    """
    coords = np.asarray(structure.cart_coords, dtype=float)
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    if supercell == "cube":
        return _cube_points(coords, lattice, float(box))
    if supercell != "reference":
        raise ValueError(f"supercell must be 'reference' or 'cube', got {supercell!r}")
    shifts = _reference_shifts().astype(float) @ lattice
    pts = (shifts[:, None, :] + coords[None, :, :]).reshape(-1, 3)
    keep = (pts.max(axis=1) < box) & (pts.min(axis=1) > REFERENCE_MIN_COORD)
    return pts[keep]
