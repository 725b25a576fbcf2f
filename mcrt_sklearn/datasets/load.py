"""The named datasets and loading one: :data:`DATASETS`, :func:`dataset_folder`,
:func:`load_dataset`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from mcrt_sklearn.datasets.azaphenacenes import _download_azaphenacenes
from mcrt_sklearn.datasets.home import (
    CHECKOUT_DATA,
    ENV_DATA_HOME,
    DatasetInfo,
    DatasetNotFoundError,
    get_data_home,
)
from mcrt_sklearn.datasets.layout import MCRT_EXAMPLES_MOBILITY, _find_cif, _properties_table
from mcrt_sklearn.datasets.roy import _download_roy
from mcrt_sklearn.errors import StructureError
from mcrt_sklearn.structures import MIN_DISTANCE, read_structure

__all__ = ["DATASETS", "dataset_folder", "load_dataset"]

logger = logging.getLogger(__name__)


DATASETS: dict[str, DatasetInfo] = {
    "azaphenacenes": DatasetInfo(
        "azaphenacenes",
        "CSP landscapes of 28 azaphenacene isomers (Yang et al., Chem. Mater. 2018)",
        ("lattice_energy_kJ_per_mol", "electron_mobility_cm2_per_V_s"),
        "group",
        _download_azaphenacenes,
    ),
    "roy": DatasetInfo(
        "roy",
        "ROY CSP landscape (Beran et al., Chem. Sci. 2022)",
        ("relative_energy_kJ_per_mol", "density_g_cm3"),
        None,
        _download_roy,
    ),
    "x23": DatasetInfo("x23", "X23 molecular crystals, DMC lattice energies",
                       ("lattice_energy_dmc_kJ_per_mol",)),
    "pretrain_corpus": DatasetInfo(
        "pretrain_corpus", "experimental CSD-derived organic crystals (no labels)"
    ),
    "mcrt_examples": DatasetInfo(
        "mcrt_examples",
        "MCRT reference example CIFs (azapentacene CSP + BENZEN)",
        (MCRT_EXAMPLES_MOBILITY,),
    ),
}

def dataset_folder(
    name_or_dir: str | os.PathLike,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Path:
    """The folder holding a dataset's ``cifs/`` and ``properties.csv``.

    A named dataset is looked up in ``data_home`` (see :func:`get_data_home`; in a
    development checkout ``../shared/data`` is read in place when neither ``data_home``
    nor ``$MCRT_SKLEARN_DATA`` is set) and downloaded there when missing and
    downloadable; any other argument must be such a folder.

    Raises
    ------
    DatasetNotFoundError
    """
    candidate = Path(name_or_dir).expanduser()
    name = str(name_or_dir)
    if name in DATASETS and not candidate.is_dir():
        folder = get_data_home(data_home) / name
        beside = CHECKOUT_DATA / name
        if (not (folder / "cifs").is_dir() and data_home is None
                and not os.environ.get(ENV_DATA_HOME) and (beside / "cifs").is_dir()):
            folder = beside
        if not (folder / "cifs").is_dir():
            info = DATASETS[name]
            if info.download is None or not download:
                raise DatasetNotFoundError(
                    f"dataset {name!r} not found at {folder} and it has no public download; "
                    f"set data_home= or ${ENV_DATA_HOME} to a folder holding '{name}/cifs'"
                )
            logger.info("downloading dataset %r into %s", name, folder)
            try:
                info.download(folder)
            except OSError as exc:
                raise DatasetNotFoundError(
                    f"dataset {name!r} not found at {folder} and the download failed: {exc}"
                ) from exc
    elif candidate.is_dir():
        folder = candidate
    else:
        raise DatasetNotFoundError(
            f"{name!r} is neither a known dataset ({', '.join(DATASETS)}) nor a folder"
        )
    if not (folder / "cifs").is_dir():
        raise DatasetNotFoundError(f"{folder} has no cifs/ folder")

    return folder


def load_dataset(
    name_or_dir: str | os.PathLike,
    data_home: str | os.PathLike | None = None,
    ids: Sequence[str] | None = None,
    download: bool = True,
    max_atoms: int | None = None,
    min_distance: float = MIN_DISTANCE,
    on_error: str = "warn",
) -> tuple[list[str], list[Structure], pd.DataFrame]:
    """Load a molecular-crystal dataset.

    Parameters
    ----------
    name_or_dir : str or path
        A dataset name (``"azaphenacenes"``, ``"roy"``, ``"x23"``, ``"pretrain_corpus"``,
        ``"mcrt_examples"``) or a folder with ``cifs/<id>.cif`` and a ``properties.csv``
        that has an ``id`` column.
    data_home : path, optional
        Folder holding the named datasets; default ``$MCRT_SKLEARN_DATA``, then
        ``~/.cache/mcrt_sklearn`` (in a development checkout, ``../shared/data`` beside
        the repository is read when the dataset is not in the cache).
    ids : sequence of str, optional
        Load only these ids (in this order).
    download : bool
        Download and convert a missing dataset that has a public source.
    max_atoms : int, optional
        Refuse structures with more atoms (typed error naming the structure).
    min_distance : float
        Refuse structures with two atoms closer than this (Å). Some experimental CSD
        crystals store both positions of a disordered H (H–H ≈ 0.42 Å); the shared
        ``pretrain_corpus`` has dropped those since 2026-12-01, so nothing of it is
        left out.
    on_error : {"warn", "raise"}
        ``"warn"``: leave out structures that fail validation, with a warning naming
        each and why (the skipped ids and reasons are in ``properties.attrs["skipped"]``);
        ``"raise"``: raise the first typed error.

    Returns
    -------
    ids : list of str
    structures : list of pymatgen Structure
    properties : pandas.DataFrame
        One row per structure, aligned with ``ids``; has an ``id`` column.

    Raises
    ------
    DatasetNotFoundError
        The dataset is not on disk and cannot be downloaded.
    InvalidIdError
        An id of ``properties.csv`` is not a plain file stem (``../x``, ``a/b``): it
        would read a file outside the dataset folder. Raised whatever ``on_error``.
    StructureError
        A structure is unreadable or invalid (names the file).
    """
    folder = dataset_folder(name_or_dir, data_home=data_home, download=download)
    table = _properties_table(folder)
    if ids is not None:
        wanted = [str(i) for i in ids]
        unknown = sorted(set(wanted) - set(table["id"]))
        if unknown:
            raise KeyError(f"ids not in {folder / 'properties.csv'}: {unknown[:10]}")
        table = table.set_index("id").loc[wanted].reset_index()
    paths = [_find_cif(folder, sid) for sid in table["id"]]
    missing = [sid for sid, p in zip(table["id"], paths) if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} id(s) of {folder / 'properties.csv'} have no CIF in "
            f"{folder / 'cifs'}: {missing[:10]}"
        )
    if on_error not in ("warn", "raise"):
        raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
    out_ids, structures, keep, skipped = [], [], [], []
    for row, (sid, path) in enumerate(zip(table["id"], paths)):
        try:
            sid, structure = read_structure(path, sid, max_atoms=max_atoms, min_distance=min_distance)
        except StructureError as err:
            if on_error == "raise":
                raise
            skipped.append((sid, f"{type(err).__name__}: {err.reason}"))
            continue
        out_ids.append(sid)
        structures.append(structure)
        keep.append(row)
    table = table.iloc[keep].reset_index(drop=True)
    table.attrs["skipped"] = skipped
    if skipped:
        listing = "; ".join(f"{sid} ({why})" for sid, why in skipped[:10])
        warnings.warn(
            f"{len(skipped)} structure(s) of {folder} left out: {listing}", stacklevel=2
        )
    return out_ids, structures, table
