"""Real molecular-crystal datasets in one layout: ``<dir>/cifs/<id>.cif`` + ``properties.csv``.

``load_dataset`` finds a dataset under ``data_home`` (argument, then the environment
variable ``MCRT_SKLEARN_DATA``, then ``~/.cache/mcrt_sklearn``). The two datasets with a
public download (``azaphenacenes`` and ``roy``) are fetched with pooch, checksum-verified
and converted into that layout when they are not found locally. The azaphenacene
supercells are reduced only to cells verified to tile them (:func:`find_tiling_cell`),
the rule the shared cells were made with.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pooch
from pymatgen.core import Composition, Lattice, Structure

from mcrt_sklearn.errors import InvalidIdError, StructureError
from mcrt_sklearn.structures import MIN_DISTANCE, read_structure

__all__ = ["load_dataset", "dataset_folder", "get_data_home", "DATASETS", "DatasetNotFoundError"]

logger = logging.getLogger(__name__)

ENV_DATA_HOME = "MCRT_SKLEARN_DATA"
#: In a development checkout the project's data folder sits beside the repository; it is
#: read (never written) when neither ``data_home`` nor ``$MCRT_SKLEARN_DATA`` is given.
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a named dataset holds and how to get it."""

    name: str
    description: str
    targets: tuple[str, ...] = ()
    group_column: str | None = None
    download: Callable[[Path], None] | None = None


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Resolve the data folder: argument, ``$MCRT_SKLEARN_DATA``, ``~/.cache/mcrt_sklearn``."""
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get(ENV_DATA_HOME)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/mcrt_sklearn").expanduser()


# --------------------------------------------------------------------------- download


#: Seconds pooch's HTTP downloader waits for the server (connect and each read).
DOWNLOAD_TIMEOUT = 60.0


def _copy_local_file(url: str, output_file, _pooch=None) -> None:
    """A pooch downloader for ``file://`` URLs (a local mirror; offline tests)."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    with open(source, "rb") as src:
        if isinstance(output_file, (str, os.PathLike)):
            with open(output_file, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copyfileobj(src, output_file)


def _downloader(url: str):
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        return _copy_local_file
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=False, timeout=DOWNLOAD_TIMEOUT)
    raise OSError(f"unsupported URL scheme {scheme!r} in {url}")


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs every download (and the hash of each unpinned file) to stderr at INFO."""
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        pooch_logger.setLevel(level)


def fetch_file(
    dataset: str, url: str, folder: str | os.PathLike, fname: str, sha256: str | None = None
) -> Path:
    """Download ``url`` to ``folder/fname`` with pooch, verifying its SHA-256 when given.

    ``pooch.retrieve`` streams the download into a temporary file in ``folder``,
    checks the hash and only then moves it to ``fname``: a failed or corrupted
    download leaves nothing behind. ``http(s)://`` and ``file://`` URLs are accepted.

    Parameters
    ----------
    dataset : str
        The dataset the file belongs to (named in errors).
    url : str
        Where to get the file.
    folder : path
        Folder to write into (created when missing).
    fname : str
        File name inside ``folder``.
    sha256 : str, optional
        Expected hex SHA-256 of the file; None: not verified here.

    Returns
    -------
    Path
        ``folder / fname``.

    Raises
    ------
    OSError
        The download failed or the file's checksum does not match; the message names
        the dataset and the URL.
    """
    downloader = _downloader(url)
    known_hash = None if sha256 is None else f"sha256:{sha256}"
    try:
        with _quiet_pooch():
            path = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                  downloader=downloader, progressbar=False)
    except ValueError as exc:  # pooch's hash mismatch (the temporary file is deleted)
        raise OSError(f"checksum mismatch for {url} (dataset {dataset!r}): {exc}") from exc
    except OSError as exc:  # requests' errors are OSErrors, as is a missing local file
        raise OSError(f"downloading {url} (dataset {dataset!r}) failed: {exc}") from exc
    return Path(path)


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


#: The mobility column of ``mcrt_examples/properties.csv`` (and of the table built from
#: ``charge_mobility_labels.csv`` for a copy made before that file existed).
MCRT_EXAMPLES_MOBILITY = "charge_mobility_cm2_per_V_s"


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


def _check_id(sid: str, source: Path) -> None:
    """Refuse an id that is not a plain file stem: ``cifs/<id>.cif`` must stay in ``cifs/``.

    Raises
    ------
    InvalidIdError
        The id holds a path separator (``/`` or ``\\``, whatever the OS) or a NUL,
        is empty, or is ``.`` or ``..``.
    """
    if not sid or sid in (".", "..") or any(c in sid for c in ("/", "\\", "\0")):
        raise InvalidIdError(
            sid,
            f"the id {sid!r} in {source} is not a plain file name (it has a path separator "
            "or is '.' / '..'), so cifs/<id>.cif would point outside the dataset's cifs/ folder",
        )


def _properties_table(folder: Path) -> pd.DataFrame:
    csv = folder / "properties.csv"
    if csv.exists():
        table = pd.read_csv(csv)
        if "id" not in table.columns:
            raise ValueError(f"{csv} has no 'id' column (columns: {list(table.columns)})")
        table["id"] = table["id"].astype(str)
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
