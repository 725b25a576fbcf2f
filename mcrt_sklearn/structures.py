"""Reading and validating crystal structures.

Everything downstream (featurisers, baselines) takes its structures from here, so
bad input fails early with a typed error that names the file and the reason.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Lattice, Structure

from mcrt_sklearn.errors import (
    DisorderedStructureError,
    EmptyStructureError,
    MultipleStructuresError,
    NotPeriodicError,
    OverlappingAtomsError,
    TooManyAtomsError,
    UnreadableStructureError,
)

__all__ = ["read_structure", "read_structures", "validate_structure", "structure_id"]

#: Two atoms closer than this (Å) mean duplicated or disordered positions.
MIN_DISTANCE = 0.5
#: The reference reads CIFs with this occupancy tolerance (occupancies up to 100x
#: over 1 are scaled back; partial occupancies are kept and reported here).
OCCUPANCY_TOLERANCE = 100.0

PathLike = str | os.PathLike


def structure_id(obj: Structure | PathLike, index: int | None = None) -> str:
    """A readable id for a structure: the file stem of a path, else a label or index."""
    if isinstance(obj, (str, os.PathLike)):
        return Path(obj).stem
    label = getattr(obj, "properties", {}).get("id") if hasattr(obj, "properties") else None
    if label:
        return str(label)
    return f"structure_{index}" if index is not None else "structure"


def _read_text(path: Path, sid: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableStructureError(sid, f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise UnreadableStructureError(sid, f"{path} is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableStructureError(
            sid, f"{path} is not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})"
        ) from exc


_FORMULA_RE = re.compile(r"^_chemical_formula_sum\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))", re.M)


#: A data block header: ``data_<name>`` at the start of a line.
_DATA_BLOCK_RE = re.compile(r"^[ \t]*data_(\S*)", re.I)
#: An atom-site coordinate tag: the block holds a structure.
_ATOM_SITE_RE = re.compile(r"^[ \t]*_atom_site[_.](?:fract_x|cartn_x)\b", re.I | re.M)


def _cif_blocks(text: str) -> list[tuple[str, str]]:
    """(name, text) of each data block of a CIF, in file order.

    A ``data_`` line inside a semicolon-delimited text field is not a header; text
    before the first header (comments) belongs to no block.
    """
    blocks: list[tuple[str, str]] = []
    name, start, pos, in_text_field = None, 0, 0, False
    for line in text.splitlines(keepends=True):
        if line.startswith(";"):
            in_text_field = not in_text_field
        elif not in_text_field:
            header = _DATA_BLOCK_RE.match(line)
            if header:
                if name is not None:
                    blocks.append((name, text[start:pos]))
                name, start = header.group(1), pos
        pos += len(line)
    if name is not None:
        blocks.append((name, text[start:]))
    return blocks


def _structure_blocks(text: str) -> list[tuple[str, str]]:
    """The data blocks of a CIF that list atom sites, with unique names.

    A block without a name, or whose name repeats, is named by its 1-based position
    among the structure blocks.
    """
    blocks = [(name, body) for name, body in _cif_blocks(text) if _ATOM_SITE_RE.search(body)]
    names = [name for name, _ in blocks]
    if any(not name for name in names) or len({n.lower() for n in names}) < len(names):
        return [(str(k + 1), body) for k, (_, body) in enumerate(blocks)]
    return blocks


def _read_cif(text: str, path: Path, sid: str) -> Structure:
    from pymatgen.io.cif import CifParser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = CifParser.from_str(text, occupancy_tolerance=OCCUPANCY_TOLERANCE)
            structures = parser.parse_structures(primitive=False)
    except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError…
        raise UnreadableStructureError(
            sid, f"pymatgen cannot parse the CIF {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not structures:
        raise UnreadableStructureError(sid, f"{path} holds no crystal structure")
    structure = structures[0]
    # A CIF cut short at a line boundary still parses; the declared formula catches it.
    match = _FORMULA_RE.search(text)
    if match and structure.is_ordered:
        declared = next(g for g in match.groups() if g is not None)
        try:
            declared_comp = Composition(declared)
        except Exception:
            declared_comp = None
        # Compare reduced formulas: CSD CIFs declare one formula unit, CifWriter the cell.
        if declared_comp is not None and not declared_comp.reduced_composition.almost_equals(
            structure.composition.reduced_composition, rtol=1e-3
        ):
            raise UnreadableStructureError(
                sid,
                f"{path} declares formula {declared_comp.formula} but its atom list gives "
                f"{structure.composition.formula}; the file is probably truncated",
            )
    return structure


def _parse_extxyz_lattice(comment: str) -> np.ndarray | None:
    match = re.search(r'Lattice\s*=\s*"([^"]*)"', comment, re.I)
    if not match:
        return None
    values = [float(v) for v in match.group(1).split()]
    if len(values) != 9:
        return None
    return np.array(values).reshape(3, 3)


def _read_xyz(text: str, path: Path, sid: str) -> Structure:
    lines = text.splitlines()
    try:
        n = int(lines[0].split()[0])
        comment = lines[1]
        rows = [line.split() for line in lines[2 : 2 + n]]
        if len(rows) != n or any(len(r) < 4 for r in rows):
            raise ValueError(f"expected {n} atom lines with a symbol and 3 coordinates")
        species = [r[0] for r in rows]
        coords = np.array([[float(v) for v in r[1:4]] for r in rows])
    except (ValueError, IndexError) as exc:
        raise UnreadableStructureError(sid, f"{path} is not a valid XYZ file: {exc}") from exc
    lattice = _parse_extxyz_lattice(comment)
    if lattice is None:
        raise NotPeriodicError(
            sid, f"{path} is an XYZ file without a Lattice=\"...\" entry (a molecule, not a crystal)"
        )
    try:
        return Structure(Lattice(lattice), species, coords, coords_are_cartesian=True)
    except Exception as exc:
        raise UnreadableStructureError(sid, f"{path}: {type(exc).__name__}: {exc}") from exc


def _is_cif(path: Path) -> bool:
    return path.name.lower().endswith((".cif", ".mcif"))


def _read_file(path: Path, sid: str) -> Structure:
    """The one structure of a file; a CIF with several structure blocks is refused."""
    if not path.exists():
        raise UnreadableStructureError(sid, f"file {path} does not exist")
    text = _read_text(path, sid)
    name = path.name.lower()
    if _is_cif(path):
        blocks = _structure_blocks(text)
        if len(blocks) > 1:
            listed = ", ".join(repr(block) for block, _ in blocks[:5])
            more = f" and {len(blocks) - 5} more" if len(blocks) > 5 else ""
            raise MultipleStructuresError(
                sid,
                f"{path} holds {len(blocks)} data blocks with a crystal structure "
                f"({listed}{more}) where one structure is expected",
            )
        return _read_cif(text, path, sid)
    if name.endswith(".xyz") or name.endswith(".extxyz"):
        return _read_xyz(text, path, sid)
    if "poscar" in name or "contcar" in name or name.endswith(".vasp"):
        from pymatgen.io.vasp import Poscar

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Poscar.from_str(text).structure
        except Exception as exc:
            raise UnreadableStructureError(
                sid, f"pymatgen cannot parse the POSCAR {path}: {type(exc).__name__}: {exc}"
            ) from exc
    raise UnreadableStructureError(
        sid, f"unknown file type {path.suffix or path.name!r} (expected .cif, POSCAR, .vasp or .xyz)"
    )


def _read_file_blocks(path: Path, sid: str) -> list[tuple[str, Structure]]:
    """Every structure of a file: one per structure block of a CIF (``<sid>#<block>``)."""
    if not (path.exists() and _is_cif(path)):
        return [(sid, _read_file(path, sid))]
    text = _read_text(path, sid)
    blocks = _structure_blocks(text)
    if len(blocks) <= 1:
        return [(sid, _read_cif(text, path, sid))]
    return [(f"{sid}#{block}", _read_cif(body, path, f"{sid}#{block}")) for block, body in blocks]


def validate_structure(
    structure: Structure,
    sid: str = "structure",
    max_atoms: int | None = None,
    min_distance: float = MIN_DISTANCE,
) -> Structure:
    """Check that a structure is an ordered, periodic 3-D crystal fit for featurisation.

    Parameters
    ----------
    structure : Structure
        The crystal.
    sid : str
        Id used in error messages.
    max_atoms : int, optional
        Refuse cells with more atoms (MCRT: 1023).
    min_distance : float
        Refuse two atoms closer than this (Å).

    Returns
    -------
    Structure
        The same structure.

    Raises
    ------
    EmptyStructureError, NotPeriodicError, DisorderedStructureError,
    TooManyAtomsError, OverlappingAtomsError
    """
    if not isinstance(structure, Structure):
        raise NotPeriodicError(
            sid, f"expected a pymatgen Structure or a file path, got {type(structure).__name__}"
        )
    if len(structure) == 0:
        raise EmptyStructureError(sid, "the cell contains no atoms")
    pbc = getattr(structure.lattice, "pbc", (True, True, True))
    if not all(pbc) or not structure.lattice.volume > 1e-3:
        raise NotPeriodicError(sid, f"the cell is not periodic in 3-D (pbc={pbc}, "
                                    f"volume={structure.lattice.volume:.3g} Å³)")
    if not structure.is_ordered:
        bad = [i for i, site in enumerate(structure) if not site.is_ordered]
        examples = ", ".join(
            f"site {i} ({structure[i].species.formula}, occupancy "
            f"{sum(structure[i].species.values()):.3g})" for i in bad[:3]
        )
        raise DisorderedStructureError(
            sid, f"{len(bad)} site(s) have partial occupancy or mixed species: {examples}"
        )
    if max_atoms is not None and len(structure) > max_atoms:
        raise TooManyAtomsError(sid, f"{len(structure)} atoms in the cell, more than {max_atoms}")
    if min_distance > 0:
        centre, neigh, _, dist = structure.get_neighbor_list(min_distance)
        if len(dist):
            k = int(np.argmin(dist))
            i, j = int(centre[k]), int(neigh[k])
            raise OverlappingAtomsError(
                sid,
                f"atoms {i} ({structure[i].specie}) and {j} ({structure[j].specie}) are "
                f"{dist[k]:.3f} Å apart (minimum {min_distance} Å)",
            )
    return structure


def read_structure(
    obj: Structure | PathLike,
    sid: str | None = None,
    max_atoms: int | None = None,
    min_distance: float = MIN_DISTANCE,
) -> tuple[str, Structure]:
    """Read (if a path) and validate one structure.

    Parameters
    ----------
    obj : Structure or path
        A pymatgen ``Structure`` or a CIF / POSCAR / extended-XYZ file.
    sid : str, optional
        Id to report; default: the file stem, or ``structure.properties["id"]``.
    max_atoms : int, optional
        Refuse cells with more atoms than this.
    min_distance : float
        Refuse two atoms closer than this (Å).

    Returns
    -------
    (str, Structure)

    Raises
    ------
    MultipleStructuresError
        A CIF holds several data blocks with a structure (use :func:`read_structures`).
    StructureError
        Any other bad input, with a typed subclass naming it and the reason.
    """
    sid = sid if sid is not None else structure_id(obj)
    if isinstance(obj, (str, os.PathLike)):
        structure = _read_file(Path(obj), sid)
    else:
        structure = obj
    return sid, validate_structure(structure, sid, max_atoms=max_atoms, min_distance=min_distance)


def read_structures(
    paths_or_structures: Iterable[Structure | PathLike] | Structure | PathLike,
    ids: Sequence[str] | None = None,
    max_atoms: int | None = None,
    min_distance: float = MIN_DISTANCE,
) -> list[tuple[str, Structure]]:
    """Read and validate structures; atom order is pymatgen's.

    Parameters
    ----------
    paths_or_structures : iterable of (Structure or path), or a single one
        Structures or files (CIF read with ``occupancy_tolerance=100`` as the MCRT
        reference does; partial occupancies are reported, not merged).
    ids : sequence of str, optional
        Ids to use in results and errors; default: file stems / structure index.
    max_atoms : int, optional
        Refuse cells with more atoms than this (the MCRT featuriser uses 1023).
    min_distance : float
        Refuse two atoms closer than this (Å).

    Returns
    -------
    list of (str, Structure)
        One entry per structure, in input order. A CIF with several data blocks that
        hold a structure gives one entry per block, with id ``<id>#<block name>``
        (``<id>#<k>`` when block names are missing or repeated), so the list can be
        longer than the input.

    Raises
    ------
    StructureError
        The first bad structure, with a typed subclass naming it and the reason.
    """
    if isinstance(paths_or_structures, (str, os.PathLike, Structure)):
        paths_or_structures = [paths_or_structures]
    items = list(paths_or_structures)
    if ids is not None and len(ids) != len(items):
        raise ValueError(f"got {len(ids)} ids for {len(items)} structures")
    out = []
    for i, obj in enumerate(items):
        sid = ids[i] if ids is not None else structure_id(obj, i)
        if not isinstance(obj, (str, os.PathLike)):
            out.append(read_structure(obj, sid, max_atoms=max_atoms, min_distance=min_distance))
            continue
        for block_sid, structure in _read_file_blocks(Path(obj), sid):
            validate_structure(structure, block_sid, max_atoms=max_atoms, min_distance=min_distance)
            out.append((block_sid, structure))
    return out
