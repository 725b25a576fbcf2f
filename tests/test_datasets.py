"""Dataset loaders: the real datasets in ../shared/data, the layout, and the download path."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from mcrt_sklearn import datasets
from mcrt_sklearn.datasets import (
    DatasetNotFoundError,
    chemiscope_frame_to_structure,
    convert_roy,
    get_data_home,
    load_dataset,
    reduce_supercell,
)
from mcrt_sklearn.structures import MIN_DISTANCE


def test_azaphenacenes(shared_data):
    ids, structures, table = load_dataset("azaphenacenes", data_home=shared_data)
    assert len(ids) == len(structures) == len(table) == 523
    assert list(table["id"]) == ids
    for col in ("lattice_energy_kJ_per_mol", "electron_mobility_cm2_per_V_s", "group"):
        assert col in table and table[col].notna().all()
    assert table["group"].nunique() == 28
    assert all(isinstance(s, Structure) for s in structures)
    assert [len(s) for s in structures] == list(table["n_atoms"])


def test_pretrain_corpus_loads_every_structure(shared_data):
    # Since 2026-12-01 the corpus itself drops the proton-disordered cells and the
    # duplicate COUMAR01, so nothing is left out and nothing is warned about.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids, structures, table = load_dataset("pretrain_corpus", data_home=shared_data)
    assert not [w for w in caught if "left out" in str(w.message)]
    raw = pd.read_csv(shared_data / "pretrain_corpus" / "properties.csv")
    assert ids == list(raw["id"]) and len(ids) == 644 and table.attrs["skipped"] == []
    assert not {"TEPHTH16", "TEPHTH17", "ADIPAC", "CHEXDC", "TAPSAF"} & set(ids)
    assert ids.count("COUMAR01") == 1
    assert table["source"].value_counts().to_dict() == {"csd500": 500, "pyxtal_test": 100,
                                                         "pyxtal_mech": 44}
    assert [len(s) for s in structures] == list(table["n_atoms"])
    assert (table["min_interatomic_distance_A"] > MIN_DISTANCE).all()
    # the new column is the shortest distance of each cell (a few, to keep this quick)
    for k in (0, 300, 643):
        shortest = structures[k].distance_matrix[np.triu_indices(len(structures[k]), 1)].min()
        assert shortest == pytest.approx(table["min_interatomic_distance_A"][k], abs=1e-3)


def _dataset_copy(tmp_path, cifs: dict[str, Path], table: pd.DataFrame | None = None) -> Path:
    folder = tmp_path / "copy"
    (folder / "cifs").mkdir(parents=True)
    for sid, src in cifs.items():
        shutil.copyfile(src, folder / "cifs" / f"{sid}.cif")
    if table is not None:
        table.to_csv(folder / "properties.csv", index=False)
    return folder


def test_load_dataset_reports_what_it_leaves_out(tmp_path):
    bad_dir = Path(__file__).resolve().parent / "data" / "bad"
    folder = _dataset_copy(tmp_path, {"good": bad_dir / "good.cif",
                                      "close": bad_dir / "close_atoms.cif"},
                           pd.DataFrame({"id": ["good", "close"], "y": [1.0, 2.0]}))
    with pytest.warns(UserWarning, match="1 structure.* left out: close"):
        ids, structures, table = load_dataset(folder)
    assert ids == ["good"] and list(table["y"]) == [1.0] and len(structures) == 1
    [(sid, why)] = table.attrs["skipped"]
    assert sid == "close" and "OverlappingAtomsError" in why
    # Asking for strictness raises the typed error instead; a looser limit keeps them all.
    from mcrt_sklearn.errors import OverlappingAtomsError

    with pytest.raises(OverlappingAtomsError, match="close"):
        load_dataset(folder, on_error="raise")
    ids, _, _ = load_dataset(folder, min_distance=0.05)
    assert ids == ["good", "close"]


def test_mcrt_examples_mobility(shared_data, tmp_path):
    ids, _, table = load_dataset("mcrt_examples", data_home=shared_data)
    column = datasets.MCRT_EXAMPLES_MOBILITY
    assert column == "charge_mobility_cm2_per_V_s"
    assert datasets.DATASETS["mcrt_examples"].targets == (column,)
    labels = pd.read_csv(shared_data / "mcrt_examples" / "charge_mobility_labels.csv",
                         header=None, names=["id", "y"]).set_index("id")["y"]
    mobility = table.set_index("id")[column]
    five = [f"5A_CSP_{i}" for i in range(1, 6)]
    np.testing.assert_allclose(mobility[five], labels[five], rtol=1e-9)
    assert np.isnan(mobility["BENZEN"])
    # an older copy without properties.csv gets the same column from the labels file
    src = shared_data / "mcrt_examples"
    folder = _dataset_copy(tmp_path, {"5A_CSP_1": src / "cifs" / "5A_CSP_1.cif",
                                      "BENZEN": src / "cifs" / "BENZEN.cif"})
    shutil.copyfile(src / "charge_mobility_labels.csv", folder / "charge_mobility_labels.csv")
    ids, _, old = load_dataset(folder)
    assert ids == ["5A_CSP_1", "BENZEN"] and list(old.columns) == ["id", column]
    assert old[column][0] == pytest.approx(labels["5A_CSP_1"]) and np.isnan(old[column][1])


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_declared_targets_and_groups_are_columns(shared_data, name):
    info = datasets.DATASETS[name]
    table = datasets._properties_table(datasets.dataset_folder(name, data_home=shared_data))
    declared = [*info.targets, *([info.group_column] if info.group_column else [])]
    assert set(declared) <= set(table.columns)
    for column in declared:
        assert table[column].notna().any()


@pytest.mark.parametrize("name,n,column", [("roy", 264, "relative_energy_kJ_per_mol"),
                                           ("x23", 23, "lattice_energy_dmc_kJ_per_mol"),
                                           ("mcrt_examples", 6, "charge_mobility_cm2_per_V_s")])
def test_other_named_datasets(shared_data, name, n, column):
    ids, structures, table = load_dataset(name, data_home=shared_data)
    assert len(ids) == len(structures) == n
    assert column in table


def test_subset_and_directory(shared_data):
    folder = shared_data / "x23"
    ids, structures, table = load_dataset(folder, ids=["x23_03adamantane", "x23_01CYHEXO"])
    assert ids == ["x23_03adamantane", "x23_01CYHEXO"]
    assert list(table["n_atoms"]) == [len(s) for s in structures]
    with pytest.raises(KeyError, match="nope"):
        load_dataset(folder, ids=["nope"])


def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.ENV_DATA_HOME, raising=False)
    assert get_data_home().name == "mcrt_sklearn"
    monkeypatch.setenv(datasets.ENV_DATA_HOME, str(tmp_path))
    assert get_data_home() == tmp_path
    assert get_data_home(tmp_path / "x") == tmp_path / "x"


def test_env_data_home_is_used(monkeypatch, shared_data):
    monkeypatch.setenv(datasets.ENV_DATA_HOME, str(shared_data))
    ids, _, _ = load_dataset("x23")
    assert len(ids) == 23


def test_missing_dataset_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no public download"):
        load_dataset("x23", data_home=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="download=False|not found"):
        load_dataset("roy", data_home=tmp_path, download=False)
    with pytest.raises(DatasetNotFoundError, match="neither a known dataset"):
        load_dataset("no_such_thing", data_home=tmp_path)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.roy, "ROY_URL", (tmp_path / "missing.bz2").as_uri())
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_dataset("roy", data_home=tmp_path)
    assert not (tmp_path / "roy").exists()


def test_download_verifies_checksum_and_leaves_no_partial_file(tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(b"molecular crystals")
    good = hashlib.sha256(b"molecular crystals").hexdigest()
    out = tmp_path / "out"
    path = datasets.fetch_file("roy", src.as_uri(), out, "payload.bin", good)
    assert path == out / "payload.bin" and path.read_bytes() == b"molecular crystals"
    with pytest.raises(OSError, match="checksum mismatch") as info:
        datasets.fetch_file("roy", src.as_uri(), out, "bad.bin", "0" * 64)
    assert src.as_uri() in str(info.value) and "'roy'" in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["payload.bin"]
    with pytest.raises(OSError, match="failed") as info:
        datasets.fetch_file("roy", (tmp_path / "missing").as_uri(), out, "missing.bin")
    assert (tmp_path / "missing").as_uri() in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["payload.bin"]


def test_download_over_http_through_pooch(tmp_path):
    # pooch's own HTTP downloader, against a server on localhost (no network needed).
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / "served"
    served.mkdir()
    (served / "payload.bin").write_bytes(b"molecular crystals")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        out = tmp_path / "out"
        good = hashlib.sha256(b"molecular crystals").hexdigest()
        path = datasets.fetch_file("roy", url + "payload.bin", out, "payload.bin", good)
        assert path.read_bytes() == b"molecular crystals"
        with pytest.raises(OSError, match="checksum mismatch for http://127.0.0.1"):
            datasets.fetch_file("roy", url + "payload.bin", out, "bad.bin", "0" * 64)
        with pytest.raises(OSError, match="404") as info:
            datasets.fetch_file("roy", url + "missing.bin", out, "missing.bin")
        assert url + "missing.bin" in str(info.value) and "'roy'" in str(info.value)
        assert sorted(p.name for p in out.iterdir()) == ["payload.bin"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _roy_extxyz(structure: Structure, name: str) -> str:
    lat = " ".join(f"{v:.8f}" for v in structure.lattice.matrix.ravel())
    atoms = "\n".join(f"{site.specie} {x:.8f} {y:.8f} {z:.8f}"
                      for site, (x, y, z) in zip(structure, structure.cart_coords))
    return (f"{len(structure)}\nLattice=\"{lat}\" Properties=species:S:1:pos:R:3 "
            f"spacegroup=\"P 1\" energy=1.5 density=1.2 name={name} type=test "
            f"pbc=\"T T T\"\n{atoms}\n")


def test_roy_download_through_pooch(tmp_path, monkeypatch):
    # Offline: the "download" is a local bz2 file served through pooch (file://).
    cell = Structure.from_file(Path(__file__).resolve().parent / "data" / "bad" / "good.cif")
    src = tmp_path / "src" / "roy.xyz.bz2"
    src.parent.mkdir()
    src.write_bytes(bz2.compress(_roy_extxyz(cell, "0001_Y").encode()))
    monkeypatch.setattr(datasets.roy, "ROY_URL", src.as_uri())
    home = tmp_path / "home"

    # The pinned checksum is not this file's: a clear error, nothing in the data home.
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as info:
        load_dataset("roy", data_home=home)
    assert src.as_uri() in str(info.value) and "'roy'" in str(info.value)
    assert not home.exists() or not any(home.rglob("*"))

    monkeypatch.setattr(datasets.roy, "ROY_SHA256",
                        hashlib.sha256(src.read_bytes()).hexdigest())
    ids, structures, table = load_dataset("roy", data_home=home)
    assert ids == ["roy_0001_Y"] and list(table["relative_energy_kJ_per_mol"]) == [1.5]
    assert len(structures[0]) == len(cell)
    assert sorted(p.name for p in home.iterdir()) == ["roy"]
    assert sorted(p.name for p in (home / "roy").iterdir()) == ["cifs", "properties.csv"]


def test_azaphenacene_structure_files_are_verified_together(tmp_path, monkeypatch):
    # The index has a pinned checksum, the structure files only a combined one.
    src = tmp_path / "src"
    (src / "structures").mkdir(parents=True)
    with gzip.open(src / "Azaphenacenes.json.gz", "wt") as fh:
        json.dump({"structures": [{}], "properties": {}}, fh)
    (src / "structures" / "Azaphenacenes-0.json").write_text("{}")
    monkeypatch.setattr(datasets.azaphenacenes, "AZAPHENACENES_URL", src.as_uri() + "/")
    home = tmp_path / "home"
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch.*Azaphenacenes.json.gz"):
        load_dataset("azaphenacenes", data_home=home)
    monkeypatch.setattr(datasets.azaphenacenes, "AZAPHENACENES_SHA256",
                        hashlib.sha256((src / "Azaphenacenes.json.gz").read_bytes()).hexdigest())
    with pytest.raises(DatasetNotFoundError,
                       match="checksum mismatch for the 1 azaphenacene structure files") as info:
        load_dataset("azaphenacenes", data_home=home)
    assert (src.as_uri() + "/structures/") in str(info.value)
    assert not home.exists() or not any(home.rglob("*"))


def test_reduce_supercell_recovers_the_cell(shared_data):
    cell = Structure.from_file(shared_data / "azaphenacenes" / "cifs" / "azaphenacene_000.cif")
    big = cell * (2, 1, 2)
    reduced = reduce_supercell(big)
    assert len(reduced) == len(cell)
    assert reduced.volume == pytest.approx(cell.volume, rel=1e-6)
    assert reduced.composition == cell.composition


def test_chemiscope_frame_cell_convention(shared_data):
    cell = Structure.from_file(shared_data / "azaphenacenes" / "cifs" / "azaphenacene_000.cif")
    frame = json.loads(json.dumps({
        "names": [s.specie.symbol for s in cell],
        "x": cell.cart_coords[:, 0].tolist(), "y": cell.cart_coords[:, 1].tolist(),
        "z": cell.cart_coords[:, 2].tolist(), "cell": cell.lattice.matrix.ravel().tolist(),
        "size": len(cell),
    }))
    back = chemiscope_frame_to_structure(frame)
    np.testing.assert_allclose(back.lattice.matrix, cell.lattice.matrix)
    np.testing.assert_allclose(back.frac_coords, cell.frac_coords, atol=1e-9)


def test_convert_roy_extxyz(shared_data):
    ids, structures, table = load_dataset("roy", data_home=shared_data, ids=["roy_0001_Y", "roy_0003_R"])
    frames = []
    for sid, s, (_, row) in zip(ids, structures, table.iterrows()):
        lat = " ".join(f"{v:.8f}" for v in s.lattice.matrix.ravel())
        atoms = "\n".join(f"{site.specie} {x:.8f} {y:.8f} {z:.8f}" for site, (x, y, z) in zip(s, s.cart_coords))
        frames.append(
            f"{len(s)}\nLattice=\"{lat}\" Properties=species:S:1:pos:R:3 "
            f"spacegroup=\"{row.spacegroup_symbol}\" energy={row.relative_energy_kJ_per_mol} "
            f"density={row.density_g_cm3} name={sid[4:]} type={row.type} pbc=\"T T T\"\n{atoms}"
        )
    converted, conv_table = convert_roy("\n".join(frames) + "\n")
    assert list(conv_table["id"]) == ids
    assert list(conv_table["spacegroup_symbol"]) == list(table["spacegroup_symbol"])
    np.testing.assert_allclose(conv_table["relative_energy_kJ_per_mol"], table["relative_energy_kJ_per_mol"])
    for sid, s in zip(ids, structures):
        np.testing.assert_allclose(converted[sid].cart_coords, s.cart_coords, atol=1e-6)


def test_checkout_data_is_found_without_configuration(shared_data, monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.ENV_DATA_HOME, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty ~/.cache
    assert datasets.CHECKOUT_DATA.resolve() == shared_data.resolve()
    ids, _, _ = load_dataset("x23")
    assert len(ids) == 23
    assert not (tmp_path / ".cache").exists()  # read in place, nothing downloaded or copied


def test_shared_data_dir_is_beside_the_checkout():
    # One spelling of ../shared/data: the package's (this checkout's, editable install).
    from mcrt_sklearn._paths import shared_data_dir

    assert shared_data_dir() == Path(__file__).resolve().parents[2] / "shared" / "data"
    assert datasets.CHECKOUT_DATA == shared_data_dir()


def test_dataset_folder_and_benchmark_subset_use_checkout_data(shared_data, monkeypatch, tmp_path):
    from mcrt_sklearn.benchmark import _load_subset

    monkeypatch.delenv(datasets.ENV_DATA_HOME, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.dataset_folder("x23").resolve() == (shared_data / "x23").resolve()
    ids, structures, table = _load_subset("x23", None, 5, 0, "lattice_energy_dmc_kJ_per_mol")
    assert len(ids) == len(structures) == len(table) == 5


def _chemiscope_frame(structure: Structure, seed: int = 0) -> dict:
    """A structure as a chemiscope frame, sites shuffled and moved by a lattice vector."""
    order = np.random.default_rng(seed).permutation(len(structure))
    cart = structure.cart_coords[order] + structure.lattice.matrix[0]
    return {
        "names": [structure[i].specie.symbol for i in order],
        "x": cart[:, 0].tolist(), "y": cart[:, 1].tolist(), "z": cart[:, 2].tolist(),
        "cell": structure.lattice.matrix.ravel().tolist(), "size": len(structure),
    }


def _chemiscope_properties(table: pd.DataFrame) -> dict:
    table = table.sort_values("chemiscope_index")
    columns = {"energy": "lattice_energy_kJ_per_mol", "mobility": "electron_mobility_cm2_per_V_s",
               "groups": "group", "Heuristic_Classes": "heuristic_class",
               "Detected_Classes": "detected_class", "CV1": "sketchmap_cv1",
               "CV2": "sketchmap_cv2"}
    return {key: {"values": table[col].tolist()} for key, col in columns.items()}


def test_tiling_deviation():
    cell = Structure.from_file(Path(__file__).resolve().parent / "data" / "bad" / "good.cif")
    supercell = cell * ((1, 1, 0), (0, 2, 0), (0, 0, 1))
    assert datasets.tiling_deviation(supercell, cell) < 1e-9
    moved = supercell.copy()
    moved.translate_sites([3], [0.05, 0, 0], frac_coords=False, to_unit_cell=False)
    assert datasets.tiling_deviation(moved, cell) == pytest.approx(0.05, abs=1e-6)
    squeezed = Structure(cell.lattice.matrix * 1.01, cell.species, cell.frac_coords)
    assert datasets.tiling_deviation(supercell, squeezed) == np.inf
    one_short = supercell.copy()
    one_short.remove_sites([0])
    assert datasets.tiling_deviation(one_short, cell) == np.inf
    doubled = supercell.copy()
    doubled.replace(0, "H", supercell[2].frac_coords)  # H 1 of the cell hit 3 times, H 0 once
    assert datasets.tiling_deviation(doubled, cell) == np.inf


@pytest.mark.parametrize("sid", ["azaphenacene_063", "azaphenacene_066", "azaphenacene_122"])
def test_azaphenacene_conversion_reproduces_the_corrected_cells(shared_data, sid):
    # Offline stand-in for the download: the shared cell multiplied into a supercell of
    # the stored size, written as a chemiscope frame and converted back. The half-size
    # cell that get_primitive_structure finds at 0.1-0.5 Å (pseudo-translation) only
    # nearly tiles it and must be refused, as in the corrected shared data.
    folder = shared_data / "azaphenacenes"
    table = pd.read_csv(folder / "properties.csv")
    expected = table.set_index("id").loc[sid]
    cell = Structure.from_file(folder / "cifs" / f"{sid}.cif")
    assert len(cell) == expected["n_atoms"] == 120 and expected["n_molecules"] == 4
    assert expected["tiling_max_deviation_A"] <= datasets.TILING_TOLERANCE
    supercell = cell * (2, 2, expected["supercell_multiplicity"] // 4)
    assert len(supercell) == expected["n_atoms_original_supercell"]
    half = supercell.get_primitive_structure(tolerance=0.5)
    assert len(half) == 60 and 0.02 < datasets.tiling_deviation(supercell, half) < 0.05

    index = int(expected["chemiscope_index"])
    got_id, reduced, row = datasets.convert_azaphenacene_frame(
        _chemiscope_properties(table), index, _chemiscope_frame(supercell)
    )
    assert got_id == sid
    assert len(reduced) == 120 and reduced.composition == cell.composition
    assert reduced.volume == pytest.approx(cell.volume, rel=1e-6)
    assert row["tiling_max_deviation_A"] == 0.0
    for column, value in row.items():  # every other column as in the shared table
        if column in ("id", "tiling_max_deviation_A"):
            continue
        if isinstance(value, float):
            assert value == pytest.approx(float(expected[column]), abs=1e-4), column
        else:
            assert value == expected[column], column

    # With only the tolerance that gives the half cell, nothing tiles: kept / refused.
    reduction = datasets.find_tiling_cell(supercell, tolerances=(0.5,))
    assert reduction.multiplicity == 1 and reduction.tolerance is None
    assert len(reduction.structure) == len(supercell)


def test_azaphenacene_conversion_refuses_a_cell_that_does_not_tile(shared_data, monkeypatch):
    cell = Structure.from_file(shared_data / "azaphenacenes" / "cifs" / "azaphenacene_063.cif")
    frame = _chemiscope_frame(cell * (2, 2, 2))
    monkeypatch.setattr(datasets.azaphenacenes, "PRIMITIVE_TOLERANCES", (0.5,))
    with pytest.raises(ValueError, match="azaphenacene_063: no primitive reduction"):
        datasets.convert_azaphenacene_frame({}, 63, frame)


@pytest.mark.parametrize("bad_id", ["../outside", "sub/inner", "..\\outside", "..", "/abs/x"])
def test_ids_that_leave_the_dataset_folder_are_refused(tmp_path, bad_id):
    from mcrt_sklearn.errors import InvalidIdError

    good = Path(__file__).resolve().parent / "data" / "bad" / "good.cif"
    folder = _dataset_copy(tmp_path, {"fine": good},
                           pd.DataFrame({"id": ["fine", bad_id], "y": [1.0, 2.0]}))
    shutil.copyfile(good, folder / "outside.cif")  # what '../outside' would have read
    (folder / "cifs" / "sub").mkdir()
    shutil.copyfile(good, folder / "cifs" / "sub" / "inner.cif")
    for on_error in ("warn", "raise"):
        with pytest.raises(InvalidIdError) as info:
            load_dataset(folder, on_error=on_error)
        assert info.value.structure_id == bad_id
        assert repr(bad_id) in str(info.value)
        assert str(folder / "properties.csv") in str(info.value)


def test_ids_with_dots_that_stay_in_the_folder_are_fine(tmp_path):
    good = Path(__file__).resolve().parent / "data" / "bad" / "good.cif"
    folder = _dataset_copy(tmp_path, {"a..b": good, ".hidden": good},
                           pd.DataFrame({"id": ["a..b", ".hidden"]}))
    ids, _, _ = load_dataset(folder)
    assert ids == ["a..b", ".hidden"]
