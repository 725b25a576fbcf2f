"""Reading a landscape folder for screening: every bad file skipped and reported.

The layout is the shared one (``cifs/<id>.cif`` + ``properties.csv`` with an ``id``
column, see :func:`mcrt_sklearn.datasets.load_dataset`), with two differences that suit
a folder of candidates: ``properties.csv`` is optional and needs no target column, and
nothing in it is fatal except a missing ``cifs/`` folder. The candidates are the ids of
``properties.csv`` followed by the CIFs of ``cifs/`` it does not list. Skipped, each with
its reason: ids without a CIF, ids that are not plain file names, files of ``cifs/`` that
are not ``.cif``, and structures that fail reading or validation (the package's typed
``StructureError``: unreadable, truncated, disordered, overlapping atoms, …).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mcrt_sklearn.datasets.layout import is_plain_id, read_properties
from mcrt_sklearn.errors import MCRTError, StructureError
from mcrt_sklearn.structures import read_structure

__all__ = ["LandscapeData", "load_landscape", "featurize_reporting", "skipped_lines"]


@dataclass
class LandscapeData:
    """Structures of one folder, aligned with ``table`` (one row each, an ``id`` column).

    ``skipped`` lists ``(id or file name, reason)`` for everything left out.
    """

    folder: Path
    ids: list[str]
    structures: list
    table: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def subset(self, keep) -> LandscapeData:
        """Rows ``keep`` (positions), with the same skipped list."""
        keep = list(keep)
        return LandscapeData(self.folder, [self.ids[i] for i in keep],
                             [self.structures[i] for i in keep],
                             self.table.iloc[keep].reset_index(drop=True), list(self.skipped))

    def values(self, column: str) -> np.ndarray:
        """A numeric column (NaN where missing or not a number); all-NaN when absent."""
        if column not in self.table:
            return np.full(len(self.ids), np.nan)
        return pd.to_numeric(self.table[column], errors="coerce").to_numpy(dtype=float)

    def density(self) -> np.ndarray:
        """Density from each cell (g/cm³, pymatgen), consistent with the structure."""
        return np.array([float(s.density) for s in self.structures])


def load_landscape(folder: str | os.PathLike, max_atoms: int | None = None) -> LandscapeData:
    """Read a landscape folder, skipping and reporting bad entries (never fatal).

    Raises
    ------
    FileNotFoundError
        The folder or its ``cifs/`` sub-folder does not exist.
    ValueError
        ``properties.csv`` exists but has no ``id`` column.
    """
    folder = Path(folder).expanduser()
    cifs = folder / "cifs"
    if not cifs.is_dir():
        raise FileNotFoundError(f"{folder} has no cifs/ folder (layout: cifs/<id>.cif "
                                "and an optional properties.csv)")
    skipped: list[tuple[str, str]] = []
    files = sorted(p for p in cifs.iterdir() if p.is_file())
    by_stem = {}
    for p in files:
        if p.suffix.lower() != ".cif":
            skipped.append((p.name, "not a .cif file"))
        else:
            by_stem.setdefault(p.stem, p)
    csv = folder / "properties.csv"
    if csv.exists():
        table = read_properties(csv).drop_duplicates("id", keep="first")
        listed = set(table["id"])
        extra = [s for s in by_stem if s not in listed]
        if extra:
            table = pd.concat([table, pd.DataFrame({"id": extra})], ignore_index=True)
    else:
        table = pd.DataFrame({"id": list(by_stem)})
    ids, structures, keep = [], [], []
    for row, sid in enumerate(table["id"]):
        if not is_plain_id(sid):
            skipped.append((sid, "the id is not a plain file name"))
            continue
        path = by_stem.get(sid)
        if path is None:
            skipped.append((sid, f"no CIF cifs/{sid}.cif"))
            continue
        try:
            _, structure = read_structure(path, sid, max_atoms=max_atoms)
        except StructureError as err:
            skipped.append((sid, f"{type(err).__name__}: {getattr(err, 'reason', err)}"))
            continue
        except Exception as err:  # noqa: BLE001 - a bad file must never stop a screen
            skipped.append((sid, f"{type(err).__name__}: {err}"))
            continue
        ids.append(sid)
        structures.append(structure)
        keep.append(row)
    table = table.iloc[keep].reset_index(drop=True)
    return LandscapeData(folder, ids, structures, table, skipped)


def featurize_reporting(featurizer, data: LandscapeData):
    """Featurise ``data`` with the failures skipped and added to ``data.skipped``.

    Returns
    -------
    (features, data) : the features of the structures that worked (a numeric array or a
    list of records) and ``data`` restricted to them.
    """
    from sklearn.base import clone

    feat = clone(featurizer).fit(data.structures)
    if "return_errors" in feat.get_params():
        feat.set_params(return_errors=True, ignore_errors=True)
        try:
            results, failures = feat.transform(data.structures, ids=data.ids)
        except MCRTError as err:  # a whole-batch failure: report every structure
            failures = [(sid, err) for sid in data.ids]
            results = [None] * len(data.ids)
    else:  # a plain transformer: no per-structure error policy
        results, failures = list(feat.transform(data.structures)), []
    keep = [i for i, r in enumerate(results) if r is not None]
    sub = data.subset(keep)
    sub.skipped.extend((str(sid), f"featurisation: {type(err).__name__}: {err}")
                       for sid, err in failures)
    kept = [results[i] for i in keep]
    if kept and np.ndim(kept[0]) >= 1 and not hasattr(kept[0], "atomic_numbers"):
        return np.vstack(kept).astype(float), sub
    return kept, sub


def skipped_lines(skipped: dict) -> list[str]:
    """Markdown lines listing the skipped entries of each part (``{part: [(id, why)]}``)."""
    lines = []
    for where, entries in skipped.items():
        lines.append(f"## Skipped ({where}): {len(entries)}")
        lines.append("")
        lines += [f"- `{sid}`: {why}" for sid, why in entries] or ["none"]
        lines.append("")
    return lines
