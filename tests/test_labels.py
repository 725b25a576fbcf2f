"""Pre-training labels: molecules, symmetry elements (SEP), density, SEP loss weights."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import spglib
from pymatgen.core import Composition, Lattice, Structure
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.featurizers import labels
from mcrt_sklearn.featurizers.labels import (
    SEP_COLUMNS,
    compute_pretrain_labels,
    density,
    molecule_ids,
    sep_weights,
    spacegroup_number,
    symmetry_elements,
    symmetry_elements_from_operations,
    symmetry_elements_from_spacegroup,
)

SHARED_DATA = shared_data_dir()
SYMMETRY_DIR = SHARED_DATA / "symmetry"
CORPUS_DIR = SHARED_DATA / "pretrain_corpus"

# Single-component crystals with one molecule in the asymmetric unit (Z' = 1), so the
# number of molecules in the cell must equal the number of symmetry operations.
Z1_CRYSTALS = {
    "TRPHAM03": 2,  # P-1
    "DOLBIR10": 14,  # P2_1/c
    "VEWSIC02": 19,  # P2_12_12_1
    "AXOSOW03": 61,  # Pbca
    "PYAZAC": 33,  # Pna2_1
}


def _label(**on) -> list[float]:
    return [float(on.get(c, 0)) for c in SEP_COLUMNS]


# Labels read off the short Hermann-Mauguin symbols (the table's meaning), independent
# of the shared CSV so that the classifier is tested even without ../shared.
HM_SYMBOL_LABELS = {
    1: _label(p1=1),  # P1
    2: _label(inversion_center=1),  # P-1
    4: _label(screw_axis=1),  # P2_1
    14: _label(screw_axis=1, glide_plane=1),  # P2_1/c: centrosymmetric, -1 not written
    15: _label(rotation_axis=1, glide_plane=1),  # C2/c
    19: _label(screw_axis=1),  # P2_12_12_1
    23: _label(rotation_axis=1),  # I222
    24: _label(screw_axis=1),  # I2_12_12_1 (ITA exception to the priority rule)
    47: _label(mirror_plane=1),  # Pmmm: 2-fold axes not in the short symbol
    61: _label(glide_plane=1),  # Pbca
    147: _label(anti_axes=1),  # P-3
    173: _label(screw_axis=1),  # P6_3: implied 3-fold not written
    174: _label(anti_axes=1),  # P-6: implied 3 and m not written
    197: _label(rotation_axis=1),  # I23
    199: _label(rotation_axis=1, screw_axis=1),  # I2_13 (ITA exception)
    221: _label(mirror_plane=1, anti_axes=1),  # Pm-3m
    230: _label(anti_axes=1, glide_plane=1),  # Ia-3d
}


@pytest.fixture(scope="module")
def symmetry_table():
    pd = pytest.importorskip("pandas")
    path = SYMMETRY_DIR / "space_group_symmetry_elements.csv"
    if not path.is_file():
        pytest.skip(f"reference symmetry table not found at {path} (clone beside ../shared)")
    table = pd.read_csv(path).set_index("ID")
    assert list(table.columns[1:]) == list(SEP_COLUMNS)
    assert len(table) == 230
    return table


@pytest.fixture(scope="module")
def corpus():
    pd = pytest.importorskip("pandas")
    path = CORPUS_DIR / "properties.csv"
    if not path.is_file():
        pytest.skip(f"pre-training corpus not found at {CORPUS_DIR} (clone beside ../shared)")
    return pd.read_csv(path).set_index("id")


def _read(name: str) -> Structure:
    return Structure.from_file(CORPUS_DIR / "cifs" / f"{name}.cif")


# ---------------------------------------------------------------- symmetry elements


@pytest.mark.parametrize("number,expected", sorted(HM_SYMBOL_LABELS.items()))
def test_label_from_operations_matches_hm_symbol(number, expected):
    got = symmetry_elements_from_spacegroup(number)
    assert got.dtype == np.float32 and got.shape == (7,)
    assert got.tolist() == expected


def test_all_230_space_groups_match_reference_table(symmetry_table):
    wrong = {}
    for number, row in symmetry_table.iterrows():
        got = symmetry_elements_from_spacegroup(int(number)).tolist()
        expected = row[list(SEP_COLUMNS)].astype(float).tolist()
        if got != expected:
            wrong[number] = (row["Space Group"], expected, got)
    assert not wrong


def test_every_setting_of_every_group_gives_its_table_row(symmetry_table):
    # 530 Hall settings: other axes choices, origin choices, rhombohedral axes, cells
    wrong = []
    for hall in range(1, 531):
        number = int(spglib.get_spacegroup_type(hall).number)
        got = symmetry_elements_from_spacegroup(number, hall_number=hall).tolist()
        if got != symmetry_table.loc[number, list(SEP_COLUMNS)].astype(float).tolist():
            wrong.append((hall, number))
    assert not wrong


def test_hand_written_operations_p21c():
    # P2_1/c: x,y,z; -x,y+1/2,-z+1/2; -x,-y,-z; x,-y+1/2,z+1/2
    rot = np.array([np.eye(3), np.diag([-1, 1, -1]), -np.eye(3), np.diag([1, -1, 1])], dtype=int)
    trans = np.array([[0, 0, 0], [0, 0.5, 0.5], [0, 0, 0], [0, 0.5, 0.5]])
    assert symmetry_elements_from_operations(rot, trans).tolist() == HM_SYMBOL_LABELS[14]
    # the same rotations without the screw/glide translation are P2/m
    assert symmetry_elements_from_operations(rot, np.zeros((4, 3))).tolist() == _label(
        mirror_plane=1, rotation_axis=1
    )
    # adding a C-centring turns P2_1/c into C2/c (pure 2-fold axes appear)
    rot_c = np.concatenate([rot, rot])
    trans_c = np.concatenate([trans, trans + [0.5, 0.5, 0]])
    assert symmetry_elements_from_operations(rot_c, trans_c).tolist() == HM_SYMBOL_LABELS[15]


def test_non_rational_translations_rejected():
    rot = np.array([np.eye(3), -np.eye(3)], dtype=int)
    with pytest.raises(ValueError, match="1/24"):
        symmetry_elements_from_operations(rot, [[0, 0, 0], [0.11, 0, 0]])


@pytest.mark.parametrize("name,number", sorted(Z1_CRYSTALS.items()))
def test_structure_label_equals_table_row_of_its_group(corpus, symmetry_table, name, number):
    structure = _read(name)
    assert corpus.loc[name, "spacegroup_number"] == number
    assert spacegroup_number(structure, symprec=0.1) == number
    expected = symmetry_table.loc[number, list(SEP_COLUMNS)].astype(float).tolist()
    assert symmetry_elements(structure, symprec=0.1).tolist() == expected


def test_structure_labels_over_corpus_sample(corpus, symmetry_table):
    # every 16th crystal plus every space group of the corpus at least once
    names = list(corpus.index[::16]) + list(corpus.groupby("spacegroup_number").head(1).index)
    for name in dict.fromkeys(names):
        structure = _read(name)
        number = spacegroup_number(structure)
        assert number == corpus.loc[name, "spacegroup_number"], name
        expected = symmetry_table.loc[number, list(SEP_COLUMNS)].astype(float).tolist()
        assert symmetry_elements(structure).tolist() == expected, (name, number)


def _unimodular_setting(structure: Structure, matrix, shift) -> Structure:
    """Same crystal in another cell (new basis = matrix @ old basis) and origin."""
    matrix = np.asarray(matrix)
    lattice = Lattice(matrix @ structure.lattice.matrix)
    cart = structure.cart_coords + np.asarray(shift) @ structure.lattice.matrix
    return Structure(lattice, structure.species, cart, coords_are_cartesian=True, to_unit_cell=True)


@pytest.mark.parametrize(
    "number",
    [14, 15, 43, 88, 161],  # P2_1/c; centred C2/c, Fdd2, I4_1/a, R3c (primitive cells too)
)
def test_structure_label_independent_of_cell_and_origin(corpus, symmetry_table, number):
    name = corpus.index[corpus["spacegroup_number"] == number][0]
    structure = _read(name)
    expected = symmetry_table.loc[number, list(SEP_COLUMNS)].astype(float).tolist()
    variants = [
        structure.get_primitive_structure(),
        _unimodular_setting(structure, [[1, 0, 1], [0, 1, 0], [0, 0, 1]], [0.13, 0.31, 0.77]),
        _unimodular_setting(structure, [[0, 1, 0], [0, 0, 1], [1, 0, 0]], [0.5, 0.25, 0.1]),
        structure.make_supercell([1, 2, 1], in_place=False),
    ]
    for variant in variants:
        assert spacegroup_number(variant) == number
        assert symmetry_elements(variant).tolist() == expected


def _coset_table(rotations, translations) -> dict[bytes, frozenset]:
    """W -> the set of its translations mod 1 (units 1/24), closed under centring."""
    rot = np.rint(np.asarray(rotations, dtype=float)).astype(np.int64)
    trans = labels._snap_translations(translations, "test")
    identity = np.all(rot == np.eye(3, dtype=np.int64), axis=(1, 2))
    centrings = labels._centring_group(trans[identity])
    table: dict[bytes, set] = {}
    for w, t in zip(rot, trans, strict=True):
        table.setdefault(w.tobytes(), set()).update(
            tuple(int(x) for x in (t + c) % 24) for c in centrings
        )
    return {k: frozenset(v) for k, v in table.items()}


@pytest.mark.parametrize("name", ["DOLBIR10", "AXOSOW03"])
def test_structure_operations_are_the_database_group(corpus, name):
    # a structure's operations in the standard setting are exactly the tabulated group
    structure = _read(name)
    data = labels._dataset(structure, 0.1)
    db = spglib.get_symmetry_from_database(int(data.hall_number))
    expected = _coset_table(db["rotations"], db["translations"])
    assert _coset_table(*labels._standard_operations(data)) == expected
    assert _coset_table(*labels._transformed_input_operations(data)) == expected
    shifted = _unimodular_setting(structure, [[1, 0, 1], [0, 1, 0], [0, 0, 1]], [0.2, 0.7, 0.1])
    data = labels._dataset(shifted, 0.1)
    assert _coset_table(*labels._standard_operations(data)) == expected


# ---------------------------------------------------------------- molecules


def _molecule_compositions(structure: Structure, ids: np.ndarray) -> list[Composition]:
    return [
        Composition(Counter(structure[i].specie.symbol for i in np.flatnonzero(ids == m)))
        for m in range(ids.max() + 1)
    ]


def _components_without_periodic_bonds(structure: Structure) -> int:
    radii = labels._jmol_radii()
    r = np.array([radii[site.specie.symbol] for site in structure])
    c, n, images, d = structure.get_neighbor_list(2 * r.max() + 0.45)
    keep = (d <= r[c] + r[n] + 0.45) & (d > 0.4) & np.all(images == 0, axis=1)
    adjacency = coo_matrix((np.ones(keep.sum()), (c[keep], n[keep])), shape=(len(r), len(r)))
    return connected_components(adjacency, directed=False)[0]


@pytest.mark.parametrize("name", sorted(Z1_CRYSTALS))
def test_molecules_are_whole_and_count_z(corpus, name):
    structure = _read(name)
    ids = molecule_ids(structure)
    assert ids.dtype == np.int64 and ids.shape == (len(structure),)
    n_mol = int(ids.max()) + 1
    # ids 0..M-1 numbered by first atom
    _, first = np.unique(ids, return_index=True)
    assert np.all(np.diff(first) > 0) and set(ids.tolist()) == set(range(n_mol))

    # Z' = 1: one molecule per symmetry operation of the cell (independent of ids)
    n_ops = len(
        spglib.get_symmetry(
            (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers),
            symprec=0.1,
        )["rotations"]
    )
    assert n_mol == n_ops
    # all molecules identical, and together they are the cell
    comps = _molecule_compositions(structure, ids)
    assert len(set(comps)) == 1
    assert comps[0] * n_mol == structure.composition
    assert comps[0].reduced_composition == structure.composition.reduced_composition
    # the test can fail: molecules cut by the cell boundary exist in these crystals
    assert _components_without_periodic_bonds(structure) > n_mol


@pytest.mark.parametrize("name", ["DOLBIR10", "AXOSOW03"])
def test_molecules_independent_of_where_the_cell_cuts(name, corpus):
    structure = _read(name)
    ids = molecule_ids(structure)
    rng = np.random.default_rng(0)
    for _ in range(3):
        shifted = structure.copy()
        shifted.translate_sites(range(len(shifted)), rng.random(3), frac_coords=True)
        ids_shifted = molecule_ids(shifted)
        assert np.array_equal(ids_shifted, ids)  # same partition, same numbering
    supercell = structure.make_supercell([2, 1, 1], in_place=False)
    ids_super = molecule_ids(supercell)
    assert ids_super.max() + 1 == 2 * (ids.max() + 1)
    assert len(set(_molecule_compositions(supercell, ids_super))) == 1


@pytest.mark.parametrize("name", ["TRPHAM03", "VEWSIC02", "KABKIJ", "XAFQON"])
def test_fast_bond_criterion_equals_structuregraph_jmolnn(corpus, name):
    structure = _read(name)
    assert np.array_equal(molecule_ids(structure, "fast"), molecule_ids(structure, "jmol"))


def test_salt_or_solvate_has_several_kinds_of_molecule(corpus):
    # ANLINB02: anilinium bromide -> C6H8N+ cations and Br- anions
    structure = _read("ANLINB02")
    comps = set(_molecule_compositions(structure, molecule_ids(structure)))
    assert comps == {Composition("C6H8N"), Composition("Br")}


def test_molecule_ids_bad_method():
    s = Structure(Lattice.cubic(5), ["C"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="method"):
        molecule_ids(s, method="nope")


# ---------------------------------------------------------------- density and bundle


def test_density_matches_corpus_table(corpus):
    for name in list(corpus.index[::40]) + list(Z1_CRYSTALS):
        assert density(_read(name)) == pytest.approx(corpus.loc[name, "density_g_cm3"], abs=1e-3)


def test_compute_pretrain_labels(corpus, symmetry_table):
    name = "DOLBIR10"
    structure = _read(name)
    out = compute_pretrain_labels(structure, symprec=0.1)
    assert set(out) == {"molecule_ids", "symmetry_elements", "density", "spacegroup_number"}
    assert np.array_equal(out["molecule_ids"], molecule_ids(structure))
    assert out["symmetry_elements"].dtype == np.float32
    assert (
        out["symmetry_elements"].tolist()
        == symmetry_table.loc[14, list(SEP_COLUMNS)].astype(float).tolist()
    )
    assert isinstance(out["density"], float)
    assert out["density"] == pytest.approx(corpus.loc[name, "density_g_cm3"], abs=1e-3)
    assert out["spacegroup_number"] == 14 and isinstance(out["spacegroup_number"], int)


# ---------------------------------------------------------------- SEP loss weights


def test_sep_weights_from_csd_table():
    path = SYMMETRY_DIR / labels.FREQUENCY_FILE
    if not path.is_file():
        pytest.skip(f"CSD frequency table not found at {path} (clone beside ../shared)")
    w = sep_weights("csd")
    assert w.dtype == np.float32 and w.shape == (7,)
    # p1 occurs in ~1 % of the CSD, screw axes in ~58 %
    assert w[0] == pytest.approx(1 / math.log(1.1 + 0.00999), rel=1e-6)
    assert w[SEP_COLUMNS.index("screw_axis")] == pytest.approx(1 / math.log(1.1 + 0.5774), rel=1e-6)
    assert np.array_equal(sep_weights(path=SYMMETRY_DIR), w)
    assert np.array_equal(sep_weights(path=path), w)


def test_sep_weights_from_array_and_errors(tmp_path):
    freq = np.linspace(0.0, 0.6, 7)
    np.testing.assert_allclose(sep_weights(frequencies=freq), 1 / np.log(1.1 + freq), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="frequencies="):
        sep_weights(path=tmp_path)
    with pytest.raises(ValueError):
        sep_weights(frequencies=[0.1, 0.2])
    with pytest.raises(ValueError):
        sep_weights(source="cod")


def test_default_symmetry_dir_points_beside_repo():
    assert labels.default_symmetry_data_dir() == SYMMETRY_DIR
