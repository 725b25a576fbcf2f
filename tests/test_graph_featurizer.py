"""MCRTFeaturizer: reference parity (DESIGN §4), invariances, cache, errors, API.

Parity data: ``../shared/data/reference_parity/reference_inputs.json`` (outputs of the
published reference code on the five ``mcrt_examples`` CIFs).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.errors import (
    FeaturizationError,
    StructureError,
    TooManyAtomsError,
    UnreadableStructureError,
)
from mcrt_sklearn.featurizers.batch import cache_key, structure_fingerprint
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.featurizers.neighbors import angle_features, knn_graph, line_graph
from mcrt_sklearn.featurizers.record import MCRTInput
from mcrt_sklearn.structures import read_structure

DATA = shared_data_dir()
PARITY = DATA / "reference_parity" / "reference_inputs.json"
EXAMPLES = DATA / "mcrt_examples" / "cifs"

#: Real crystals for the invariance checks (P1 cells of CSD structures and X23).
INVARIANCE_CIFS = [
    "pretrain_corpus/cifs/QUGWUK.cif",
    "pretrain_corpus/cifs/DXCYTD.cif",
    "pretrain_corpus/cifs/VIDMAX02.cif",
    "x23/cifs/x23_05anthracene.cif",
    "x23/cifs/x23_22Hexamine.cif",
]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"shared test data not found: {path} (expected ../shared/data next to the repo)"
        )
    return path


@pytest.fixture(scope="module")
def reference():
    return json.loads(_need(PARITY).read_text())


@pytest.fixture(scope="module")
def reference_records(reference):
    fz = MCRTFeaturizer(images=False)
    paths = [_need(EXAMPLES / f"{r['cif_id']}.cif") for r in reference]
    return fz.transform(paths)


def _read(rel: str) -> Structure:
    return read_structure(_need(DATA / rel))[1]


@pytest.fixture(scope="module", params=INVARIANCE_CIFS, ids=lambda p: Path(p).stem)
def crystal(request):
    return _read(request.param)


def _random_rotation(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _rotated(s: Structure, R: np.ndarray) -> Structure:
    return Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)


def _translated(s: Structure, t) -> Structure:
    return Structure(s.lattice, s.species, (s.frac_coords + np.asarray(t)) % 1.0)


def _permuted(s: Structure, perm) -> Structure:
    return Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])


def _edge_table(edge_index, lengths, relabel=None):
    ei = edge_index if relabel is None else relabel[edge_index]
    table = np.column_stack([ei.T, np.round(lengths, 5)])
    return table[np.lexsort(table.T[::-1])]


# ----------------------------------------------------------------- parity (§4)


def test_reference_atom_order(reference, reference_records):
    for ref, rec in zip(reference, reference_records, strict=True):
        assert rec.structure_id == ref["cif_id"]
        assert rec.atomic_numbers.dtype == np.int64
        assert rec.atomic_numbers.tolist() == ref["atom_num"]


def test_reference_angle_features(reference, reference_records):
    for ref, rec in zip(reference, reference_records, strict=True):
        expected = np.asarray(ref["angles_list"], dtype=np.float64)
        assert rec.angle_features.shape == expected.shape == (rec.n_atoms, 28)
        assert rec.angle_features.dtype == np.float32
        err = np.abs(rec.angle_features - expected).max()
        assert err <= 1e-5, f"{ref['cif_id']}: max angle error {err:.2e}"
    # measured: 5.7e-7 (the fixture is rounded to 1e-6)


def test_reference_edges(reference, reference_records):
    for ref, rec in zip(reference, reference_records, strict=True):
        expected = np.asarray(ref["edges"], dtype=np.float64)
        lengths = np.linalg.norm(rec.edge_vectors.astype(np.float64), axis=1)
        mine = _edge_table(rec.edge_index, lengths)
        theirs = expected[np.lexsort(np.round(expected, 5).T[::-1])]
        assert rec.edge_index.shape[1] == ref["n_edges"] == len(expected)
        np.testing.assert_array_equal(mine[:, :2], theirs[:, :2])
        np.testing.assert_allclose(mine[:, 2], theirs[:, 2], atol=1e-4, rtol=0)


def test_distance_matrix_is_pymatgens(reference_records):
    s = read_structure(EXAMPLES / "5A_CSP_1.cif")[1]
    rec = reference_records[0]
    assert rec.distance_matrix.dtype == np.float32
    np.testing.assert_array_equal(rec.distance_matrix, s.distance_matrix.astype(np.float32))


def test_line_graph_definition(reference_records):
    rec = reference_records[0]
    src, dst = rec.edge_index
    e1, e2 = rec.line_graph_index
    # every pair chains e1 into e2, and every chaining pair is present
    assert np.all(dst[e1] == src[e2])
    indeg = np.bincount(dst, minlength=rec.n_atoms)
    outdeg = np.bincount(src, minlength=rec.n_atoms)
    assert e1.size == int(np.sum(indeg * outdeg))
    assert len({(a, b) for a, b in zip(e1.tolist(), e2.tolist(), strict=True)}) == e1.size
    # back-tracking pairs (u→v, v→u) are included with cosine 1
    r = rec.edge_vectors.astype(np.float64)
    back = np.all(np.isclose(r[e2], -r[e1], atol=1e-5), axis=1) & (src[e1] == dst[e2])
    assert back.sum() >= rec.edge_index.shape[1]
    np.testing.assert_allclose(rec.line_graph_cosines[back], 1.0, atol=1e-6)
    # cosine of the angle at the shared atom: between -r(e1) and r(e2)
    a, b = -r[e1], r[e2]
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(rec.line_graph_cosines, cos, atol=1e-6)


def test_edges_stored_both_ways(reference_records):
    rec = reference_records[4]
    src, dst = rec.edge_index
    np.testing.assert_array_equal(src[0::2], dst[1::2])
    np.testing.assert_array_equal(dst[0::2], src[1::2])
    np.testing.assert_array_equal(rec.edge_vectors[0::2], -rec.edge_vectors[1::2])
    # every atom has at least k = 12 outgoing edges
    assert np.bincount(src, minlength=rec.n_atoms).min() >= 12


# ------------------------------------------------------- hand-made geometry


def _cluster(offsets, extra=(), box=30.0):
    """One centre atom with neighbours at Cartesian offsets, in a big cubic box."""
    centre = np.array([box / 2] * 3)
    coords = [centre] + [centre + np.asarray(o, float) for o in offsets] + list(extra)
    return Structure(Lattice.cubic(box), ["C"] * len(coords), coords, coords_are_cartesian=True)


def test_angle_groups_internal_cosine_and_zero_vector():
    # ranks 0,1: equidistant at 90° (one group, internal cos = cos(90°) = 0);
    # ranks 2,3: equidistant and opposite (group vector 0 → -100 against every other
    # group, internal cos = cos(180°) = -1); ranks 4..7 at distinct distances.
    offs = [
        (1.0, 0, 0),
        (0, 1.0, 0),
        (0, 0, 1.5),
        (0, 0, -1.5),
        (2.0, 0.1, 0.0),
        (-2.2, 0.0, 0.3),
        (0.1, -2.4, 0.0),
        (0.0, 0.2, 2.6),
        (4.0, 4.0, 4.0),
    ]
    s = _cluster(offs)
    for convention in ("periodic", "reference"):
        af = angle_features(s, convention=convention)[0]
        val = dict(zip(zip(*np.triu_indices(8, 1), strict=True), af, strict=True))
        assert val[(0, 1)] == pytest.approx(0.0, abs=1e-12)
        assert val[(2, 3)] == pytest.approx(-1.0, abs=1e-12)
        for j in (0, 1, 4, 5, 6, 7):
            for r in (2, 3):
                assert val[(min(j, r), max(j, r))] == -100.0
        # group (0,1): vector x̂ + ŷ against the single neighbour 4
        g = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
        v4 = np.array(offs[4]) / np.linalg.norm(offs[4])
        assert val[(0, 4)] == pytest.approx(g @ v4, abs=1e-12)
        assert val[(1, 4)] == pytest.approx(g @ v4, abs=1e-12)
        # two single neighbours: plain cosine
        v5 = np.array(offs[5]) / np.linalg.norm(offs[5])
        assert val[(4, 5)] == pytest.approx(v4 @ v5, abs=1e-12)


def test_angle_extension_beyond_eighth():
    # 7 neighbours at distinct distances, then ranks 7, 8, 9 all at 2.5 Å along x, y,
    # z: the list is extended to 10 and {7, 8, 9} is one group with vector x̂+ŷ+ẑ, so
    # pair (6, 7) uses that vector (not rank 7's own direction).
    offs = [
        (1.0 + 0.1 * i, 0.05 * i, 0.0) if i % 2 == 0 else (0.0, -(1.0 + 0.1 * i), 0.03 * i)
        for i in range(7)
    ]
    tri = [(2.5, 0, 0), (0, 2.5, 0), (0, 0, 2.5)]
    s = _cluster(offs + tri + [(5.0, 5.0, 5.0)])
    af = angle_features(s, convention="periodic")[0]
    v6 = np.array(offs[6]) / np.linalg.norm(offs[6])
    g = np.ones(3) / np.sqrt(3)
    assert af[-1] == pytest.approx(v6 @ g, abs=1e-12)  # pair (6, 7)
    assert abs(af[-1] - v6 @ np.array([1.0, 0, 0])) > 0.1
    # a group inside the first 8: pairs within it get the internal cosine
    # cos(sqrt(mean(angle²))) = cos(90°) = 0; pairs with others the group vector
    s2 = _cluster(tri + [(3.5, 0.1, 0.0), (0.0, 3.7, 0.2)] + [(5.0, 5.0, 5.0)])
    af2 = dict(
        zip(
            zip(*np.triu_indices(8, 1), strict=True),
            angle_features(s2, convention="periodic")[0],
            strict=True,
        )
    )
    for pair in ((0, 1), (0, 2), (1, 2)):
        assert af2[pair] == pytest.approx(0.0, abs=1e-12)
    v3 = np.array([3.5, 0.1, 0.0]) / np.linalg.norm([3.5, 0.1, 0.0])
    assert af2[(0, 3)] == pytest.approx(g @ v3, abs=1e-12)


def test_fewer_than_eight_neighbours_are_missing():
    s = _cluster([(1.0, 0, 0), (0, 1.3, 0), (0, 0, 1.6), (2.0, 2.0, 0)])  # 5 atoms
    af = angle_features(s, convention="periodic")
    pairs = list(zip(*np.triu_indices(8, 1), strict=True))
    for row in af:
        for (_, k), v in zip(pairs, row, strict=True):
            assert (v == -100.0) == (k >= 4)


def test_unknown_angle_convention():
    with pytest.raises(ValueError, match="angle_convention"):
        MCRTFeaturizer(images=False, angle_convention="cartesian").featurize(
            _need(EXAMPLES / "BENZEN.cif")
        )


BAD_PARAMS = [
    ({"n_neighbors": 0}, "n_neighbors"),
    ({"angle_neighbors": 2.5}, "angle_neighbors"),
    ({"cutoff": -1.0}, "cutoff"),
    ({"angle_convention": "cartesian"}, "angle_convention"),
    ({"images": True, "image_mode": "slow"}, "image_mode"),
    ({"images": True, "image_pixels": 0}, "image_pixels"),
    ({"images": True, "supercell": "sphere"}, "supercell"),
]


@pytest.mark.parametrize("params,name", BAD_PARAMS, ids=[n for _, n in BAD_PARAMS])
def test_bad_parameters_fail_first_in_every_entry_point(params, name):
    pd = pytest.importorskip("pandas")
    good = read_structure(Path(__file__).resolve().parent / "data" / "bad" / "good.cif")[1]
    fz = MCRTFeaturizer(**{"images": False, **params})
    ignoring = clone(fz).set_params(ignore_errors=True)
    df = pd.DataFrame({"structure": [good, good]})
    calls = {
        "featurize": lambda: fz.featurize(good),
        "featurize_one": lambda: fz.featurize_one(good),
        "transform": lambda: fz.transform([good]),
        "transform, ignore_errors": lambda: ignoring.transform([good]),
        "featurize_many": lambda: fz.featurize_many([good], pbar=False),
        "featurize_many, ignore_errors": lambda: fz.featurize_many(
            [good, "missing.cif"], ignore_errors=True, pbar=False),
        "featurize_many, return_errors": lambda: fz.featurize_many(
            [good], ignore_errors=True, return_errors=True, pbar=False),
        "featurize_dataframe": lambda: fz.featurize_dataframe(df, "structure", pbar=False),
        "featurize_dataframe, ignore_errors": lambda: fz.featurize_dataframe(
            df, "structure", ignore_errors=True, pbar=False),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match=name) as info:
            call()
        assert not isinstance(info.value, StructureError), what  # a setting, not a structure


# ----------------------------------------------------------------- invariances


def test_periodic_angles_invariant(crystal):
    rng = np.random.default_rng(1)
    base = angle_features(crystal, convention="periodic")
    rot = angle_features(_rotated(crystal, _random_rotation(rng)), convention="periodic")
    np.testing.assert_allclose(rot, base, atol=1e-5, rtol=0)
    tr = angle_features(_translated(crystal, rng.uniform(size=3)), convention="periodic")
    np.testing.assert_allclose(tr, base, atol=1e-5, rtol=0)
    perm = rng.permutation(len(crystal))
    pm = angle_features(_permuted(crystal, perm), convention="periodic")
    np.testing.assert_allclose(pm, base[perm], atol=1e-5, rtol=0)


def test_reference_angles_not_translation_invariant(crystal):
    """Documents the reference quirk: in-cell vectors change when atoms wrap.

    Rotating the lattice and permuting atoms leave the reference features unchanged,
    but translating all atoms (with wrapping into the cell) changes them, because a
    neighbour's in-cell position may jump by a lattice vector.
    """
    rng = np.random.default_rng(2)
    base = angle_features(crystal, convention="reference")
    rot = angle_features(_rotated(crystal, _random_rotation(rng)), convention="reference")
    np.testing.assert_allclose(rot, base, atol=1e-5, rtol=0)
    perm = rng.permutation(len(crystal))
    pm = angle_features(_permuted(crystal, perm), convention="reference")
    np.testing.assert_allclose(pm, base[perm], atol=1e-5, rtol=0)
    moved = angle_features(_translated(crystal, [0.5, 0.5, 0.5]), convention="reference")
    assert np.abs(moved - base).max() > 0.1


def test_graph_invariant(crystal):
    rng = np.random.default_rng(3)
    g = knn_graph(crystal)
    base = _edge_table(g.edge_index, g.edge_lengths)
    _, base_cos = line_graph(g.edge_index, g.edge_vectors)

    R = _random_rotation(rng)
    gr = knn_graph(_rotated(crystal, R))
    np.testing.assert_allclose(_edge_table(gr.edge_index, gr.edge_lengths), base, atol=1e-5)
    # same canonical edge order: vectors rotate with the lattice
    np.testing.assert_array_equal(gr.edge_index, g.edge_index)
    np.testing.assert_allclose(gr.edge_vectors, g.edge_vectors @ R.T, atol=1e-9)

    gt = knn_graph(_translated(crystal, rng.uniform(size=3)))
    np.testing.assert_allclose(_edge_table(gt.edge_index, gt.edge_lengths), base, atol=1e-5)
    _, cos_t = line_graph(gt.edge_index, gt.edge_vectors)
    np.testing.assert_allclose(np.sort(cos_t), np.sort(base_cos), atol=1e-9)

    perm = rng.permutation(len(crystal))
    gp = knn_graph(_permuted(crystal, perm))
    np.testing.assert_allclose(
        _edge_table(gp.edge_index, gp.edge_lengths, relabel=perm), base, atol=1e-5
    )
    _, cos_p = line_graph(gp.edge_index, gp.edge_vectors)
    np.testing.assert_allclose(np.sort(cos_p), np.sort(base_cos), atol=1e-9)


def test_graph_cutoff_enlarged_for_sparse_cells():
    # 4 atoms in a 9 Å cube: fewer than 12 neighbours within 8 Å → cutoff grows.
    s = Structure(
        Lattice.cubic(9.0), ["C"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    g = knn_graph(s, cutoff=3.0)
    assert g.cutoff > 3.0
    assert np.bincount(g.edge_index[0], minlength=4).min() >= 12


# ------------------------------------------------------------ featuriser API


def test_featurizer_params_and_matminer_api():
    fz = MCRTFeaturizer()
    params = fz.get_params()
    assert params == dict(
        n_neighbors=12,
        cutoff=8.0,
        angle_neighbors=8,
        angle_convention="reference",
        images=True,
        image_pixels=50,
        image_spread=0.15,
        image_box=100.0,
        image_mode="exact",
        supercell="reference",
        pretrain_labels=False,
        symprec=0.1,
        n_jobs=1,
        cache_dir=None,
        ignore_errors=False,
        return_errors=False,
        progress=False,
    )
    fz2 = clone(MCRTFeaturizer(n_jobs=2, angle_convention="periodic"))
    assert fz2.n_jobs == 2 and fz2.angle_convention == "periodic"
    assert fz.feature_labels() == ["mcrt_input"]
    assert any("MCRT" in c for c in fz.citations())
    assert fz.implementors()
    assert fz.fit([]) is fz
    assert pickle.loads(pickle.dumps(fz2)).get_params() == fz2.get_params()


def test_featurize_returns_one_record_and_transform_accepts_structures():
    path = _need(EXAMPLES / "BENZEN.cif")
    fz = MCRTFeaturizer(images=False)
    [rec] = fz.featurize(path)
    assert isinstance(rec, MCRTInput) and rec.structure_id == "BENZEN"
    assert rec.image is None and rec.molecule_ids is None
    s = read_structure(path)[1]
    recs = fz.transform([s, path])
    assert [r.structure_id for r in recs] == ["structure_0", "BENZEN"]
    np.testing.assert_array_equal(recs[0].angle_features, rec.angle_features)
    np.testing.assert_array_equal(recs[0].edge_index, rec.edge_index)


def test_record_pickle_and_replace(reference_records):
    rec = reference_records[0]
    back = pickle.loads(pickle.dumps(rec))
    for f in dataclasses.fields(MCRTInput):
        a, b = getattr(rec, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        else:
            assert a == b
    img = np.zeros((2, 50, 50), np.float32)
    new = dataclasses.replace(rec, image=img, image_scalars=np.ones(4, np.float32))
    assert new.has_image and not rec.has_image
    assert new.angle_features is rec.angle_features


def test_images_and_labels_are_wired(monkeypatch):
    """images=True / pretrain_labels=True call the persistence and label modules."""
    calls = {}

    def fake_image(structure, pixels, spread, box, supercell, mode):
        calls["image"] = (len(structure), pixels, spread, box, supercell, mode)
        return np.full((2, pixels, pixels), 0.5), np.arange(4.0)

    def fake_labels(structure, symprec=0.1):
        calls["labels"] = symprec
        n = len(structure)
        return dict(
            molecule_ids=np.zeros(n, np.int64),
            symmetry_elements=np.ones(7, np.float32),
            density=1.25,
            spacegroup_number=14,
        )

    monkeypatch.setitem(
        sys.modules,
        "mcrt_sklearn.featurizers.persistence",
        types.SimpleNamespace(compute_persistence_image=fake_image,
                              check_image_params=lambda *args: None,
                              image_components=lambda mode: ()),
    )
    monkeypatch.setitem(
        sys.modules,
        "mcrt_sklearn.featurizers.labels",
        types.SimpleNamespace(compute_pretrain_labels=fake_labels),
    )
    fz = MCRTFeaturizer(
        images=True,
        image_pixels=10,
        image_box=35.0,
        image_mode="fast",
        supercell="cube",
        pretrain_labels=True,
        symprec=0.2,
    )
    [rec] = fz.featurize(_need(EXAMPLES / "BENZEN.cif"))
    assert calls["image"] == (48, 10, 0.15, 35.0, "cube", "fast")
    assert calls["labels"] == 0.2
    assert rec.image.shape == (2, 10, 10) and rec.image.dtype == np.float32
    assert rec.image_scalars.dtype == np.float32 and rec.has_image
    assert rec.has_pretrain_labels and rec.spacegroup_number == 14 and rec.density == 1.25


def test_parallel_equals_serial():
    paths = [_need(EXAMPLES / f"5A_CSP_{i}.cif") for i in (1, 2, 3)]
    serial = MCRTFeaturizer(images=False).transform(paths)
    parallel = MCRTFeaturizer(images=False, n_jobs=2).transform(paths)
    for a, b in zip(serial, parallel, strict=True):
        assert a.structure_id == b.structure_id
        np.testing.assert_array_equal(a.angle_features, b.angle_features)
        np.testing.assert_array_equal(a.line_graph_index, b.line_graph_index)


def test_featurize_dataframe():
    pd = pytest.importorskip("pandas")
    s = read_structure(_need(EXAMPLES / "BENZEN.cif"))[1]
    df = pd.DataFrame({"structure": [s, s]})
    out = MCRTFeaturizer(images=False).featurize_dataframe(df, "structure", pbar=False)
    assert list(out.columns) == ["structure", "mcrt_input"]
    assert all(isinstance(r, MCRTInput) for r in out["mcrt_input"])


# ---------------------------------------------------------------------- cache


def _records_equal(a: MCRTInput, b: MCRTInput):
    assert a.structure_id == b.structure_id
    for f in dataclasses.fields(MCRTInput):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def _cache_files(cache_dir):
    return sorted(glob.glob(os.path.join(cache_dir, "**", "output.pkl"), recursive=True))


def _count_computations(monkeypatch) -> list:
    """Count the records actually built (featurize_structure calls): hits build none."""
    import mcrt_sklearn.featurizers.graph as graph

    calls = []
    build = graph.featurize_structure
    monkeypatch.setattr(graph, "featurize_structure",
                        lambda *a, **k: calls.append(a[1] if len(a) > 1 else k.get("sid"))
                        or build(*a, **k))
    return calls


def test_cache_hit_returns_equal_records(tmp_path, monkeypatch):
    calls = _count_computations(monkeypatch)
    paths = [_need(EXAMPLES / f"5A_CSP_{i}.cif") for i in (1, 2)]
    fz = MCRTFeaturizer(images=False, cache_dir=tmp_path)
    first = fz.transform(paths)
    assert fz.cache_hits_ == 0 and calls == ["5A_CSP_1", "5A_CSP_2"]
    assert len(_cache_files(tmp_path)) == 2
    second = fz.transform(paths)
    assert fz.cache_hits_ == 2
    assert len(calls) == 2, "the second transform recomputed instead of reading the cache"
    for a, b in zip(first, second, strict=True):
        _records_equal(a, b)
    # the same crystal as an in-memory Structure hits the same entry, under its own id
    s = read_structure(paths[0])[1]
    [rec] = fz.transform([s], ids=["mine"])
    assert fz.cache_hits_ == 1 and rec.structure_id == "mine" and len(calls) == 2
    np.testing.assert_array_equal(rec.angle_features, first[0].angle_features)
    # featurize() also goes through the cache (a hit: nothing computed, nothing written)
    [again] = fz.featurize(paths[1])
    assert len(calls) == 2 and len(_cache_files(tmp_path)) == 2
    _records_equal(again, first[1])
    # a fresh featuriser on the same folder hits too; other settings are a miss
    MCRTFeaturizer(images=False, cache_dir=tmp_path).transform(paths[:1])
    assert len(calls) == 2
    MCRTFeaturizer(images=False, n_neighbors=8, cache_dir=tmp_path).transform(paths[:1])
    assert len(calls) == 3


def test_corrupt_cache_entry_is_recomputed(tmp_path, caplog, monkeypatch):
    calls = _count_computations(monkeypatch)
    path = _need(EXAMPLES / "5A_CSP_1.cif")
    fz = MCRTFeaturizer(images=False, cache_dir=tmp_path)
    [good] = fz.transform([path])
    [entry] = _cache_files(tmp_path)
    size = os.path.getsize(entry)
    assert len(calls) == 1
    for damage in (b"\x80\x04garbage", open(entry, "rb").read()[: size // 2], b""):
        before = len(calls)
        with open(entry, "wb") as fh:
            fh.write(damage)
        with caplog.at_level(logging.WARNING):
            [again] = fz.transform([path])
        assert fz.cache_hits_ == 0 and len(calls) == before + 1  # recomputed, not loaded
        _records_equal(good, again)
        assert os.path.getsize(entry) == size  # rewritten whole
        [third] = fz.transform([path])
        assert fz.cache_hits_ == 1 and len(calls) == before + 1  # the rewritten entry is read
        _records_equal(good, third)


def test_cache_keys_depend_on_content_and_params():
    s = read_structure(_need(EXAMPLES / "5A_CSP_1.cif"))[1]
    base = MCRTFeaturizer(images=False)
    k0 = cache_key(s, base._cache_namespace, base._cache_params())
    # run-only parameters do not change the key
    other = MCRTFeaturizer(images=False, n_jobs=4, progress=True, ignore_errors=True, cache_dir="x")
    assert cache_key(s, other._cache_namespace, other._cache_params()) == k0
    # output-affecting parameters do
    for change in (
        dict(angle_convention="periodic"),
        dict(n_neighbors=10),
        dict(images=True),
        dict(image_box=50.0),
        dict(supercell="cube"),
        dict(pretrain_labels=True),
    ):
        fz = MCRTFeaturizer(**{"images": False, **change})
        assert cache_key(s, fz._cache_namespace, fz._cache_params()) != k0, change
    # content: a moved atom or another species changes the fingerprint
    moved = s.copy()
    moved.translate_sites([0], [0.01, 0, 0], frac_coords=False)
    assert structure_fingerprint(moved) != structure_fingerprint(s)
    swapped = s.copy()
    swapped.replace(0, "Si")
    assert structure_fingerprint(swapped) != structure_fingerprint(s)
    # round-off below the rounding does not (CIF round trip)
    jitter = Structure(s.lattice, s.species, s.frac_coords + 1e-10)
    assert structure_fingerprint(jitter) == structure_fingerprint(s)


# --------------------------------------------------------------------- errors


def test_bad_structure_raises_typed_error_naming_it(tmp_path):
    bad = tmp_path / "broken_one.cif"
    bad.write_text("data_x\n_cell_length_a 5\n")
    fz = MCRTFeaturizer(images=False)
    with pytest.raises(UnreadableStructureError, match="broken_one"):
        fz.featurize(bad)


def test_too_many_atoms():
    s = read_structure(_need(EXAMPLES / "5A_CSP_5.cif"))[1] * (3, 3, 1)  # 1116 atoms
    with pytest.raises(TooManyAtomsError, match="1116"):
        MCRTFeaturizer(images=False).featurize(s)


def test_batch_errors_raise_ignore_and_return(tmp_path, caplog):
    good = _need(EXAMPLES / "BENZEN.cif")
    bad1 = tmp_path / "empty_file.cif"
    bad1.write_text("")
    bad2 = tmp_path / "missing_file.cif"
    X = [good, bad1, good, bad2]

    with pytest.raises(FeaturizationError) as info:
        MCRTFeaturizer(images=False).transform(X)
    ids = [sid for sid, _ in info.value.failures]
    assert ids == ["empty_file", "missing_file"]
    assert all(isinstance(e, UnreadableStructureError) for _, e in info.value.failures)
    assert "empty_file" in str(info.value) and "missing_file" in str(info.value)

    fz = MCRTFeaturizer(images=False, ignore_errors=True)
    with caplog.at_level(logging.WARNING, logger="mcrt_sklearn"):
        recs = fz.transform(X)
    assert [r.structure_id for r in recs] == ["BENZEN", "BENZEN"]
    assert [sid for sid, _ in fz.errors_] == ["empty_file", "missing_file"]
    assert fz.failed_indices_ == [1, 3]
    assert "2 structure(s) skipped" in caplog.text and "empty_file" in caplog.text

    fz = MCRTFeaturizer(images=False, return_errors=True)
    recs, errors = fz.transform(X)
    assert [r is None for r in recs] == [False, True, False, True]
    assert [sid for sid, _ in errors] == ["empty_file", "missing_file"]
    assert not any(isinstance(r, MCRTInput) and np.isnan(r.angle_features).any() for r in recs if r)
