"""The chemiscope Azaphenacenes dataset: download, supercell reduction, conversion."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
from pymatgen.core import Lattice, Structure

from mcrt_sklearn.datasets.cells import PRIMITIVE_TOLERANCES, TILING_TOLERANCE, find_tiling_cell
from mcrt_sklearn.datasets.download import fetch_file
from mcrt_sklearn.datasets.layout import _write_layout

__all__ = ["AZAPHENACENES_COMMIT", "AZAPHENACENES_URL", "AZAPHENACENES_SHA256",
           "AZAPHENACENES_STRUCTURES_SHA256", "AZAPHENACENE_FORMULA",
           "chemiscope_frame_to_structure", "convert_azaphenacene_frame", "convert_azaphenacenes"]


def chemiscope_frame_to_structure(frame: dict) -> Structure:
    """A chemiscope structure dict (``names``, ``x``, ``y``, ``z``, ``cell``) as a Structure.

    chemiscope stores the cell as ``[ax, ay, az, bx, by, bz, cx, cy, cz]``.
    """
    lattice = Lattice(np.asarray(frame["cell"], dtype=float).reshape(3, 3))
    coords = np.column_stack([frame["x"], frame["y"], frame["z"]])
    return Structure(lattice, frame["names"], coords, coords_are_cartesian=True)


AZAPHENACENES_COMMIT = "85bc52931cca00e94d80e7d7093b004c9627b9df"
AZAPHENACENES_URL = (
    "https://raw.githubusercontent.com/lab-cosmo/chemiscope/" + AZAPHENACENES_COMMIT + "/examples/"
)
AZAPHENACENES_SHA256 = "4b5087e6bd8d864364a6b64ff9f5a1f7d9bf0ed34f981fc530f28df98d2c16ef"
#: SHA-256 over the concatenated hex SHA-256 digests of the 523 structure files, in index order.
AZAPHENACENES_STRUCTURES_SHA256 = "1f4bf62f9c2c10cfe76ccdcc49c9eb51ba76a51f6d21494f11f1a06a69fbf6b3"


#: Every molecule of every azaphenacene cell has this formula.
AZAPHENACENE_FORMULA = "C16H10N4"


def convert_azaphenacene_frame(
    properties: dict, index: int, frame: dict
) -> tuple[str, Structure, dict]:
    """One chemiscope azaphenacene: its id, verified reduced cell and properties row.

    The stored supercell is reduced with :func:`find_tiling_cell` (tolerances
    :data:`PRIMITIVE_TOLERANCES`, tiling within :data:`TILING_TOLERANCE` Å, whole
    C16H10N4 molecules), the rule the shared ``azaphenacenes/`` cells were made with.

    Parameters
    ----------
    properties : dict
        The chemiscope index's ``"properties"`` (``energy``, ``mobility``, ``groups``,
        ``Heuristic_Classes``, ``Detected_Classes``, ``CV1``, ``CV2``).
    index : int
        The structure's row in the chemiscope file.
    frame : dict
        Its chemiscope structure (``names``, ``x``, ``y``, ``z``, ``cell``).

    Returns
    -------
    (str, Structure, dict)
        ``azaphenacene_<index>``, the reduced cell, and its ``properties.csv`` row.

    Raises
    ------
    ValueError
        When no primitive reduction tiles the stored supercell: the converted dataset
        would not be the documented one.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sid = f"azaphenacene_{index:03d}"
    supercell = chemiscope_frame_to_structure(frame)
    reduction = find_tiling_cell(supercell, tolerances=PRIMITIVE_TOLERANCES,
                                 max_deviation=TILING_TOLERANCE,
                                 molecule_formula=AZAPHENACENE_FORMULA)
    if reduction.tolerance is None:
        raise ValueError(
            f"{sid}: no primitive reduction (tolerances {tuple(PRIMITIVE_TOLERANCES)} Å) of "
            f"the stored {len(supercell)}-atom supercell tiles it within {TILING_TOLERANCE} Å "
            "with whole molecules; refusing to write a cell that is not the documented one"
        )
    cell = reduction.structure

    def value(key: str):
        return properties[key]["values"][index]

    row = {
        "id": sid,
        "lattice_energy_kJ_per_mol": value("energy"),
        "electron_mobility_cm2_per_V_s": value("mobility"),
        "group": value("groups"),
        "heuristic_class": value("Heuristic_Classes"),
        "detected_class": value("Detected_Classes"),
        "sketchmap_cv1": value("CV1"),
        "sketchmap_cv2": value("CV2"),
        "n_atoms": len(cell),
        "n_molecules": reduction.n_molecules,
        "n_atoms_original_supercell": len(supercell),
        "supercell_multiplicity": reduction.multiplicity,
        "primitive_tolerance_A": reduction.tolerance,
        "tiling_max_deviation_A": round(reduction.max_deviation, 4),
        "spacegroup_number": SpacegroupAnalyzer(cell, symprec=0.1).get_space_group_number(),
        "density_g_cm3": round(float(cell.density), 4),
        "chemiscope_index": index,
    }
    return sid, cell, row


def convert_azaphenacenes(index_json: dict, frames: Sequence[dict]) -> tuple[dict, pd.DataFrame]:
    """Convert the chemiscope Azaphenacenes dataset into structures + a properties table.

    Every supercell is reduced and verified by :func:`convert_azaphenacene_frame`.
    """
    from tqdm.auto import tqdm

    props = index_json["properties"]
    structures, rows = {}, []
    for i, frame in enumerate(tqdm(frames, desc="reducing azaphenacene supercells")):
        sid, cell, row = convert_azaphenacene_frame(props, i, frame)
        structures[sid] = cell
        rows.append(row)
    return structures, pd.DataFrame(rows)


def _download_azaphenacenes(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        index = fetch_file("azaphenacenes", AZAPHENACENES_URL + "Azaphenacenes.json.gz", tmp,
                           "index.json.gz", AZAPHENACENES_SHA256)
        with gzip.open(index, "rt") as fh:
            index_json = json.load(fh)
        n = len(index_json["structures"])
        # No checksum is pinned per structure file: the files are verified together.
        combined, frames = hashlib.sha256(), []
        for i in range(n):
            path = fetch_file("azaphenacenes",
                              AZAPHENACENES_URL + f"structures/Azaphenacenes-{i}.json", tmp,
                              f"{i}.json")
            combined.update(pooch.file_hash(str(path), alg="sha256").encode())
            frames.append(json.loads(path.read_text()))
        if combined.hexdigest() != AZAPHENACENES_STRUCTURES_SHA256:
            raise OSError(
                f"checksum mismatch for the {n} azaphenacene structure files under "
                f"{AZAPHENACENES_URL}structures/ (dataset 'azaphenacenes'): combined SHA-256 "
                f"{combined.hexdigest()}, expected {AZAPHENACENES_STRUCTURES_SHA256}"
            )
        structures, table = convert_azaphenacenes(index_json, frames)
    _write_layout(target, structures, table)
