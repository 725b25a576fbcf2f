"""The on-disk layout of a dataset: ``<dir>/cifs/<id>.cif`` + ``properties.csv``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from mcrt_sklearn.errors import InvalidIdError

__all__ = ["MCRT_EXAMPLES_MOBILITY"]

#: The mobility column of ``mcrt_examples/properties.csv`` (and of the table built from
#: ``charge_mobility_labels.csv`` for a copy made before that file existed).
MCRT_EXAMPLES_MOBILITY = "charge_mobility_cm2_per_V_s"


def _write_layout(target: Path, structures: dict[str, Structure], table: pd.DataFrame) -> None:
    """Write ``cifs/<id>.cif`` + ``properties.csv`` into ``target`` atomically (whole folder)."""
    from pymatgen.io.cif import CifWriter

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        (tmp / "cifs").mkdir()
        for sid, structure in structures.items():
            CifWriter(structure).write_file(str(tmp / "cifs" / f"{sid}.cif"))
        table.to_csv(tmp / "properties.csv", index=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def is_plain_id(sid: str) -> bool:
    """Whether ``cifs/<sid>.cif`` stays inside ``cifs/``: not empty, not ``.`` or ``..``,
    no path separator (``/`` or ``\\``, whatever the OS) and no NUL."""
    return bool(sid) and sid not in (".", "..") and not any(c in sid for c in ("/", "\\", "\0"))


def _check_id(sid: str, source: Path) -> None:
    """Refuse an id that is not a plain file stem: ``cifs/<id>.cif`` must stay in ``cifs/``.

    Raises
    ------
    InvalidIdError
        The id holds a path separator (``/`` or ``\\``, whatever the OS) or a NUL,
        is empty, or is ``.`` or ``..``.
    """
    if not is_plain_id(sid):
        raise InvalidIdError(
            sid,
            f"the id {sid!r} in {source} is not a plain file name (it has a path separator "
            "or is '.' / '..'), so cifs/<id>.cif would point outside the dataset's cifs/ folder",
        )


def read_properties(csv: Path) -> pd.DataFrame:
    """A ``properties.csv`` with its ``id`` column as strings.

    Raises
    ------
    ValueError
        The file has no ``id`` column.
    """
    table = pd.read_csv(csv)
    if "id" not in table.columns:
        raise ValueError(f"{csv} has no 'id' column (columns: {list(table.columns)})")
    table["id"] = table["id"].astype(str)
    return table


def _properties_table(folder: Path) -> pd.DataFrame:
    csv = folder / "properties.csv"
    if csv.exists():
        table = read_properties(csv)
        for sid in table["id"]:
            _check_id(sid, csv)
        return table
    # an mcrt_examples copy from before 2026-12 has no properties.csv, only the labels
    # (no header line, and for some of the CIFs): same column name as the new table
    ids = sorted(p.stem for p in (folder / "cifs").glob("*.cif"))
    table = pd.DataFrame({"id": ids})
    labels = folder / "charge_mobility_labels.csv"
    if labels.exists():
        mob = pd.read_csv(labels, header=None, names=["id", MCRT_EXAMPLES_MOBILITY],
                          dtype={"id": str})
        table = table.merge(mob, on="id", how="left")
    return table


def _find_cif(folder: Path, sid: str) -> Path | None:
    for ext in (".cif", ".CIF"):
        path = folder / "cifs" / f"{sid}{ext}"
        if path.exists():
            return path
    return None
