"""The ROY CSP landscape (scikit-matter's extended-XYZ file): download and conversion."""

from __future__ import annotations

import bz2
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from mcrt_sklearn.datasets.download import fetch_file
from mcrt_sklearn.datasets.layout import _write_layout

__all__ = ["ROY_COMMIT", "ROY_URL", "ROY_SHA256", "convert_roy"]


ROY_COMMIT = "382a1d883875352e4608d1676fe0f8e5a90948a2"
ROY_URL = (
    "https://raw.githubusercontent.com/scikit-learn-contrib/scikit-matter/"
    + ROY_COMMIT
    + "/src/skmatter/datasets/data/beran_roy_structures.xyz.bz2"
)
ROY_SHA256 = "09d04881d6a7d8d327c6876e4ca85ec5d5594acfd3b6f328513faea356b87729"


def _parse_extxyz_comment(comment: str) -> dict[str, str]:
    """Key=value pairs of an extended-XYZ comment line (values may be double-quoted)."""
    import shlex

    out = {}
    for token in shlex.split(comment):
        if "=" in token:
            key, value = token.split("=", 1)
            out[key] = value
    return out


def convert_roy(text: str) -> tuple[dict, pd.DataFrame]:
    """Convert the extended-XYZ ROY landscape into structures + a properties table."""
    lines = text.splitlines()
    structures, rows, pos = {}, [], 0
    while pos < len(lines) and lines[pos].strip():
        n = int(lines[pos])
        info = _parse_extxyz_comment(lines[pos + 1])
        atoms = [line.split() for line in lines[pos + 2 : pos + 2 + n]]
        pos += 2 + n
        lattice = Lattice(np.array(info["Lattice"].split(), dtype=float).reshape(3, 3))
        coords = np.array([a[1:4] for a in atoms], dtype=float)
        structure = Structure(lattice, [a[0] for a in atoms], coords, coords_are_cartesian=True)
        sid = f"roy_{info['name']}"
        structures[sid] = structure
        rows.append(
            {
                "id": sid,
                "relative_energy_kJ_per_mol": float(info["energy"]),
                "density_g_cm3": float(info["density"]),
                "type": info.get("type", ""),
                "spacegroup_symbol": info.get("spacegroup", ""),
                "n_atoms": n,
            }
        )
    return structures, pd.DataFrame(rows)


def _download_roy(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = fetch_file("roy", ROY_URL, tmp, "roy.xyz.bz2", ROY_SHA256)
        structures, table = convert_roy(bz2.decompress(path.read_bytes()).decode())
    _write_layout(target, structures, table)
