"""Pre-training labels taken from the structures themselves (§4 of the design).

MCRT's self-supervised tasks need, per crystal,

- the molecule each atom belongs to (MAP/APC: connected components of the bond graph),
- a 7-dim multi-hot of symmetry elements (SEP), in the order of :data:`SEP_COLUMNS`,
- the density (CDP, g/cm³) and the space-group number.

:func:`compute_pretrain_labels` returns all of them for one structure.

What the symmetry-element label means
-------------------------------------
The reference labels come from a table keyed by space group
(``shared/data/symmetry/space_group_symmetry_elements.csv``). That table records the
elements written in the group's **short Hermann–Mauguin symbol**, not every element
the group contains: ``P2_1/c`` is labelled screw + glide but *not* inversion centre
although it is centrosymmetric, ``Pmmm`` is labelled mirror only although it holds
2-fold axes, ``P6_3`` is labelled screw only although it holds 3-fold axes. Column by
column:

``p1``
    space group 1 only (the symbol ``P1``).
``inversion_center``
    ``-1`` written in the symbol, which happens for ``P-1`` only; the inversion centres
    of other centrosymmetric groups are not written.
``mirror_plane`` / ``glide_plane``
    an ``m`` / an ``a, b, c, d, e, n`` in the symbol.
``rotation_axis`` / ``screw_axis``
    a proper axis ``2, 3, 4, 6`` / a screw axis ``n_k`` in the symbol; axes implied by
    ``-3, -4, -6`` are not written, and the short symbol drops the 2-fold (and in cubic
    groups the 4-fold) axes of ``n/m`` pairs (``P 2/m 2/m 2/m`` → ``Pmmm``).
``anti_axes``
    ``-3``, ``-4`` or ``-6`` in the symbol.

The CSD frequencies shipped with the table agree with this reading: ``inversion_center``
occurs in 24 % of the CSD (the share of ``P-1``, not the ~75 % of centrosymmetric
crystals) and ``p1`` in 1 % (the share of ``P1``).

:func:`symmetry_elements_from_operations` rebuilds those symbol components from the
operations (W, t) of a space group — it never looks the group up — with the rules by
which the Hermann–Mauguin symbol is made:

1. Operations are grouped by symmetry direction (the axis of a rotation, the axis of a
   rotoinversion, the normal of a reflection). Per direction the symbol shows the
   rotoinversion ``-3``, ``-4`` or ``-6`` when there is one and no proper 4- or 6-fold
   axis; else the highest proper axis ``n`` (with ``/m`` when a reflection is
   perpendicular); else the reflection.
2. Priority rule over *all* elements of a coset (W, t + L), L including centring
   vectors: a pure rotation beats a screw axis, a mirror beats a glide. A coset holds a
   pure element iff ``S (t + l) = 0`` for some ``l`` in L, with ``S = sum_k W^k`` (n times
   the intrinsic translation, which does not depend on the origin).
3. Short symbol: in centrosymmetric groups of orthorhombic or higher symmetry, 2-fold
   axes of ``2/m`` pairs are not written, nor the 4-fold axes of cubic groups.
4. The two exceptions of the priority rule in International Tables: ``I2_12_12_1`` and
   ``I2_13`` contain pure 2-fold axes too but are written with ``2_1`` so as not to look
   like the symmorphic ``I222`` and ``I23``. In general: a non-symmorphic group whose
   symbol would show no screw or glide has its 2-fold axes written as ``2_1``.

This reproduces the reference table for all 230 space groups and all 530 settings of
spglib's database (tested), so the same classifier labels real structures from their
own symmetry operations (:func:`symmetry_elements`).
"""

from __future__ import annotations

import logging
from functools import cache, lru_cache
from math import gcd
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

__all__ = [
    "SEP_COLUMNS",
    "molecule_ids",
    "density",
    "spacegroup_number",
    "symmetry_elements",
    "symmetry_elements_from_operations",
    "symmetry_elements_from_spacegroup",
    "compute_pretrain_labels",
    "default_symmetry_data_dir",
    "load_symmetry_frequencies",
    "sep_weights",
]

#: Order of the 7 symmetry-element labels (the reference SEP head's output order).
SEP_COLUMNS: tuple[str, ...] = (
    "p1",
    "inversion_center",
    "mirror_plane",
    "rotation_axis",
    "screw_axis",
    "anti_axes",
    "glide_plane",
)
_COL = {name: i for i, name in enumerate(SEP_COLUMNS)}

#: Translations are handled as integers in units of 1/_DEN of a lattice vector of the
#: conventional standard cell (covers 1/2, 1/3, 1/4, 1/6, 1/8).
_DEN = 24

FREQUENCY_FILE = "symmetry_element_frequencies_csd.csv"


# ----------------------------------------------------------------------------------
# molecules
# ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _jmol_radii() -> dict[str, float]:
    from pymatgen.analysis.local_env import JmolNN

    return dict(JmolNN().el_radius)


def _molecule_ids_jmol(structure: Structure, tol: float, min_bond_distance: float) -> np.ndarray:
    """Components of pymatgen's ``StructureGraph`` built with ``JmolNN`` (reference)."""
    import networkx as nx
    from pymatgen.analysis.graphs import StructureGraph
    from pymatgen.analysis.local_env import JmolNN

    strategy = JmolNN(tol=tol, min_bond_distance=min_bond_distance)
    if hasattr(StructureGraph, "from_local_env_strategy"):
        sgraph = StructureGraph.from_local_env_strategy(structure, strategy)
    else:  # older pymatgen
        sgraph = StructureGraph.with_local_env_strategy(structure, strategy)
    graph = sgraph.graph.to_undirected()
    graph.add_nodes_from(range(len(structure)))
    labels = np.empty(len(structure), dtype=np.int64)
    for k, comp in enumerate(nx.connected_components(graph)):
        labels[list(comp)] = k
    return labels


def _molecule_ids_fast(structure: Structure, tol: float, min_bond_distance: float) -> np.ndarray:
    """Same bond criterion as ``JmolNN``, vectorised with a neighbour list."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(structure)
    radii_table = _jmol_radii()
    try:
        radii = np.array([radii_table[site.specie.symbol] for site in structure], float)
    except KeyError as err:
        raise ValueError(f"no Jmol bonding radius for element {err.args[0]!r}") from None
    cutoff = float(2 * radii.max() + tol)
    centres, neighbours, _images, dists = structure.get_neighbor_list(cutoff)
    # JmolNN: min_bond_distance < d <= r_i + r_j + tol (same float expression)
    max_bond = np.sqrt((radii[centres] + radii[neighbours] + tol) ** 2)
    bonded = (dists <= max_bond) & (dists > min_bond_distance)
    adjacency = coo_matrix(
        (np.ones(int(bonded.sum()), dtype=np.int8), (centres[bonded], neighbours[bonded])),
        shape=(n, n),
    )
    _, labels = connected_components(adjacency, directed=False)
    return labels.astype(np.int64)


def _renumber_by_first_atom(labels: np.ndarray) -> np.ndarray:
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)  # old label values sorted by their first atom
    remap = np.empty(len(order), dtype=np.int64)
    remap[np.unique(labels)[order]] = np.arange(len(order))
    return remap[labels]


def molecule_ids(
    structure: Structure,
    method: str = "fast",
    tol: float = 0.45,
    min_bond_distance: float = 0.4,
) -> np.ndarray:
    """Molecule index of every atom: connected components of the bond graph.

    Two atoms are bonded when ``min_bond_distance < d <= r_i + r_j + tol`` with Jmol
    radii (pymatgen ``JmolNN``, as the reference). Bonds to periodic images count, so
    a molecule cut by the cell boundary is one molecule.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal (P1 cell, any site order).
    method : {"fast", "jmol"}
        ``"jmol"`` builds pymatgen's ``StructureGraph`` with ``JmolNN`` (the reference
        route, slow); ``"fast"`` applies the identical bond criterion to a vectorised
        neighbour list (same components, several times faster).
    tol, min_bond_distance : float
        ``JmolNN`` parameters (pymatgen defaults).

    Returns
    -------
    ndarray of int64, shape (n,)
        Molecule ids ``0 .. M-1``, numbered in order of each molecule's first atom.
    """
    if len(structure) == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "fast":
        labels = _molecule_ids_fast(structure, tol, min_bond_distance)
    elif method == "jmol":
        labels = _molecule_ids_jmol(structure, tol, min_bond_distance)
    else:
        raise ValueError(f"method must be 'fast' or 'jmol', got {method!r}")
    return _renumber_by_first_atom(labels)


def density(structure: Structure) -> float:
    """Crystal density in g/cm³ (mass of the cell's atoms over the cell volume)."""
    return float(structure.density)


# ----------------------------------------------------------------------------------
# exact integer helpers
# ----------------------------------------------------------------------------------


def _echelon(rows: list[list[int]]) -> list[list[int]]:
    """Integer row-echelon basis of the lattice spanned by integer vectors ``rows``."""
    rows = [list(r) for r in rows if any(r)]
    basis: list[list[int]] = []
    ncol = len(rows[0]) if rows else 0
    for col in range(ncol):
        active = [r for r in rows if r[col] != 0]
        rest = [r for r in rows if r[col] == 0]
        while len(active) > 1:
            active.sort(key=lambda r: abs(r[col]))
            pivot = active[0]
            reduced = [pivot]
            for r in active[1:]:
                q = r[col] // pivot[col]
                r = [a - q * b for a, b in zip(r, pivot, strict=True)]
                if any(r):
                    reduced.append(r)
            active = [r for r in reduced if r[col] != 0]
            rest += [r for r in reduced if r[col] == 0]
        if active:
            basis.append(active[0])
        rows = rest
    return basis


def _in_lattice(vec: np.ndarray, basis: list[list[int]]) -> bool:
    """Whether integer ``vec`` is an integer combination of the echelon ``basis``."""
    v = [int(x) for x in vec]
    for b in basis:
        col = next(i for i, x in enumerate(b) if x != 0)
        if v[col] % b[col]:
            return False
        q = v[col] // b[col]
        v = [a - q * c for a, c in zip(v, b, strict=True)]
    return not any(v)


def _axis_key(matrix: np.ndarray) -> tuple[int, int, int]:
    """Primitive integer vector spanning the kernel of a rank-2 integer 3x3 matrix."""
    rows = [matrix[i] for i in range(3)]
    for i in range(3):
        for j in range(i + 1, 3):
            v = np.cross(rows[i], rows[j])
            if np.any(v):
                g = gcd(*(abs(int(x)) for x in v))
                v = v // g
                if v[np.flatnonzero(v)[0]] < 0:
                    v = -v
                return tuple(int(x) for x in v)
    raise ValueError("matrix has rank < 2")


def _order(w: np.ndarray) -> int:
    m = np.eye(3, dtype=np.int64)
    for k in range(1, 7):
        m = m @ w
        if np.array_equal(m, np.eye(3, dtype=np.int64)):
            return k
    raise ValueError(f"not a crystallographic rotation matrix: {w.tolist()}")


# ----------------------------------------------------------------------------------
# symmetry elements from operations
# ----------------------------------------------------------------------------------


def _snap_translations(translations: np.ndarray, what: str) -> np.ndarray:
    t = np.asarray(translations, dtype=float) * _DEN
    ti = np.rint(t)
    err = float(np.max(np.abs(t - ti))) / _DEN if t.size else 0.0
    if err > 2e-3:
        raise ValueError(
            f"{what}: translations are not multiples of 1/{_DEN} (max deviation {err:.2g}); "
            "pass the operations of a conventional standard setting"
        )
    return np.mod(ti.astype(np.int64), _DEN)


def _centring_group(vectors: np.ndarray) -> np.ndarray:
    """Close a set of translations (integers mod _DEN) under addition."""
    group = {(0, 0, 0)}
    frontier = [tuple(int(x) % _DEN for x in v) for v in vectors]
    while frontier:
        v = frontier.pop()
        if v in group:
            continue
        new = {tuple((a + b) % _DEN for a, b in zip(v, g, strict=True)) for g in group}
        group.add(v)
        frontier.extend(new - group)
    return np.array(sorted(group), dtype=np.int64)


def _is_symmorphic(ops: list[tuple[np.ndarray, np.ndarray]], centrings: np.ndarray) -> bool:
    """Whether some point is fixed (mod L) by a representative of every coset.

    Searches origins on the 1/_DEN grid of the conventional standard cell, where the
    special positions of all space groups lie.
    """
    g = np.arange(_DEN)
    grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    ok = np.ones(len(grid), dtype=bool)
    for w, t in ops:
        moved = grid @ (np.eye(3, dtype=np.int64) - w).T - t  # (I - W) x - t
        diff = (moved[:, None, :] - centrings[None, :, :]) % _DEN
        ok &= np.any(np.all(diff == 0, axis=2), axis=1)
        if not ok.any():
            return False
    return True


def symmetry_elements_from_operations(
    rotations: np.ndarray, translations: np.ndarray
) -> np.ndarray:
    """7-dim symmetry-element multi-hot of a space group given by its operations.

    Parameters
    ----------
    rotations : array of int, shape (m, 3, 3)
        Rotation parts W of the operations, in fractional coordinates.
    translations : array of float, shape (m, 3)
        Translation parts t, in the same basis; must be multiples of 1/24 (any
        conventional standard setting, e.g. spglib's database or a structure's
        operations in spglib's standard setting). The centring is read from the pure
        translations among them (W = identity, t != 0), so list those (spglib does);
        the other centring copies of an operation may be left out.

    Returns
    -------
    ndarray of float32, shape (7,)
        Multi-hot in the order of :data:`SEP_COLUMNS`, with the meaning of the
        reference table (the elements written in the short Hermann–Mauguin symbol, see
        the module docstring).
    """
    rot = np.rint(np.asarray(rotations, dtype=float)).astype(np.int64).reshape(-1, 3, 3)
    trans = _snap_translations(np.asarray(translations).reshape(-1, 3), "operations")
    eye = np.eye(3, dtype=np.int64)

    is_identity = np.all(rot == eye, axis=(1, 2))
    centrings = _centring_group(trans[is_identity])
    # lattice L (units 1/_DEN): integer cell vectors plus centring vectors
    lattice_gens = [list(_DEN * eye[i]) for i in range(3)] + [list(c) for c in centrings]

    cosets: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for w, t in zip(rot, trans, strict=True):
        cosets.setdefault(w.tobytes(), (w, t))
    ops = list(cosets.values())

    def has_pure_element(s: np.ndarray, t: np.ndarray) -> bool:
        # pure iff S t in S L (S t is origin independent)
        basis = _echelon([list(s @ np.array(v)) for v in lattice_gens])
        return _in_lattice(-(s @ t), basis)

    # ---- group operations by direction ------------------------------------------
    directions: dict[tuple, dict[str, Any]] = {}
    centro = False
    for w, t in ops:
        det = int(round(np.linalg.det(w)))
        if det == 1 and np.array_equal(w, eye):
            continue
        if det == -1 and np.array_equal(w, -eye):
            centro = True
            continue
        proper = w if det == 1 else -w
        n = _order(proper)
        key = _axis_key(proper - eye)
        d = directions.setdefault(key, {"proper": {}, "improper": {}})
        if det == 1:
            d["proper"][n] = (w, t)
        else:
            d["improper"][n] = (w, t)

    # ---- point-group / crystal-system facts --------------------------------------
    def has(d, kind, n):
        return n in d[kind]

    n_threefold = sum(
        1 for d in directions.values() if has(d, "proper", 3) or has(d, "improper", 3)
    )
    n_twofold = sum(1 for d in directions.values() if has(d, "proper", 2) or has(d, "improper", 2))
    if n_threefold > 1:
        system = "cubic"
    elif n_threefold == 1:
        system = "hexagonal"  # trigonal or hexagonal
    elif any(has(d, "proper", 4) or has(d, "improper", 4) for d in directions.values()):
        system = "tetragonal"
    elif n_twofold > 1:
        system = "orthorhombic"
    elif n_twofold == 1:
        system = "monoclinic"
    else:
        system = "triclinic"

    label = np.zeros(len(SEP_COLUMNS), dtype=np.float32)
    if system == "triclinic":
        label[_COL["inversion_center" if centro else "p1"]] = 1.0
        return label

    # ---- symbol component of every direction --------------------------------------
    shown_axes: list[tuple[int, bool, np.ndarray, np.ndarray]] = []  # (n, pure, S, t)
    shown_planes: list[bool] = []  # pure mirror?
    n_anti = 0
    for d in directions.values():
        proper, improper = d["proper"], d["improper"]
        axis_order = None
        if 6 in proper:
            axis_order = 6
        elif 6 in improper or 4 not in proper and (4 in improper or 3 in improper):
            n_anti += 1  # -6, -4 or -3: written as such, implied 3 / 2 / m not written
        elif 4 in proper:
            axis_order = 4
        elif 3 in proper:
            axis_order = 3
        elif 2 in proper:
            axis_order = 2
        if axis_order is not None:
            drop = (
                centro
                and system != "monoclinic"
                and (axis_order == 2 or (axis_order == 4 and system == "cubic"))
            )
            if not drop:
                w, t = proper[axis_order]
                s = sum(np.linalg.matrix_power(w, k) for k in range(axis_order))
                shown_axes.append((axis_order, has_pure_element(s, t), s, t))
        if 2 in improper and (axis_order is not None or 3 not in proper):
            # a reflection written as m or glide (not the m implied by -6)
            w, t = improper[2]
            shown_planes.append(has_pure_element(eye + w, t))

    pure_axes = [pure for _, pure, _, _ in shown_axes]
    if all(pure_axes) and all(shown_planes) and not _is_symmorphic(ops, centrings):
        # ITA exceptions to the priority rule (I2_12_12_1, I2_13): write 2-fold axes
        # as 2_1 rather than give a non-symmorphic group a symmorphic-looking symbol.
        pure_axes = [pure and n != 2 for n, pure, _, _ in shown_axes]

    label[_COL["rotation_axis"]] = float(any(pure_axes))
    label[_COL["screw_axis"]] = float(not all(pure_axes))
    label[_COL["mirror_plane"]] = float(any(shown_planes))
    label[_COL["glide_plane"]] = float(not all(shown_planes))
    label[_COL["anti_axes"]] = float(n_anti > 0)
    return label


# ----------------------------------------------------------------------------------
# structures and space groups
# ----------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------
# SEP loss weights
# ----------------------------------------------------------------------------------


def default_symmetry_data_dir() -> Path:
    """``<checkout>/../shared/data/symmetry`` (only used when no path is given)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "symmetry"


def load_symmetry_frequencies(path: str | Path | None = None) -> np.ndarray:
    """Frequency of each symmetry element in the reference CSD pre-training set.

    Parameters
    ----------
    path : str or Path, optional
        The ``symmetry_element_frequencies_csd.csv`` file (columns ``Column``,
        ``Count of Ones``, ``Frequency of Ones``) or the folder holding it. Default:
        :func:`default_symmetry_data_dir`.

    Returns
    -------
    ndarray of float64, shape (7,)
        Frequencies in the order of :data:`SEP_COLUMNS`.
    """
    import pandas as pd

    path = default_symmetry_data_dir() if path is None else Path(path)
    if path.is_dir():
        path = path / FREQUENCY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"symmetry-element frequency table not found at {path}; pass "
            f"path=<folder or {FREQUENCY_FILE}> or frequencies=<7 numbers in the order "
            f"{', '.join(SEP_COLUMNS)}>"
        )
    table = pd.read_csv(path)
    freq = table.set_index("Column")["Frequency of Ones"]
    missing = [c for c in SEP_COLUMNS if c not in freq.index]
    if missing:
        raise ValueError(f"{path}: no row for {missing}")
    return freq.loc[list(SEP_COLUMNS)].to_numpy(dtype=np.float64)


def sep_weights(
    source: str = "csd",
    frequencies: np.ndarray | list[float] | None = None,
    path: str | Path | None = None,
) -> np.ndarray:
    """Per-element weights of the SEP loss, ``w = 1 / ln(1.1 + frequency)``.

    Parameters
    ----------
    source : {"csd"}
        Which frequency table to read when ``frequencies`` is not given: the reference
        CSD pre-training set (see :func:`load_symmetry_frequencies`).
    frequencies : array-like of 7 floats, optional
        Frequencies in the order of :data:`SEP_COLUMNS` (e.g. measured on your own
        corpus as the mean of its labels); overrides ``source``/``path``.
    path : str or Path, optional
        Location of the frequency table (file or folder).

    Returns
    -------
    ndarray of float32, shape (7,)
    """
    if frequencies is None:
        if source != "csd":
            raise ValueError(f"unknown source {source!r}; use 'csd' or pass frequencies=")
        frequencies = load_symmetry_frequencies(path)
    freq = np.asarray(frequencies, dtype=np.float64)
    if freq.shape != (len(SEP_COLUMNS),):
        raise ValueError(f"expected {len(SEP_COLUMNS)} frequencies, got shape {freq.shape}")
    if np.any(freq < 0) or np.any(freq > 1):
        raise ValueError("frequencies must lie in [0, 1]")
    return (1.0 / np.log(1.1 + freq)).astype(np.float32)
