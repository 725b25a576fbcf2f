"""Persistence images (DESIGN.md §5): exactness against the reference, rasterisation,
diagrams, fast mode, and the matminer / scikit-learn featurizer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.featurizers import persistence as pi
from mcrt_sklearn.featurizers.persistence import (
    PersistenceImageFeaturizer,
    alpha_diagrams,
    compute_persistence_image,
    diagram_image,
    persistence_image,
    supercell_points,
)

DATA = shared_data_dir()
EXAMPLES = DATA / "mcrt_examples"
ALL_IDS = ["5A_CSP_1", "5A_CSP_2", "5A_CSP_3", "5A_CSP_4", "5A_CSP_5", "BENZEN"]
# 5A_CSP_1: a plain case; 5A_CSP_4: needs the float32 tie rule (1.6 % pixel error without).
FAST_IDS = ["5A_CSP_1", "5A_CSP_4"]


def _need_examples():
    if not (EXAMPLES / "cifs").is_dir() or not (EXAMPLES / "imgs").is_dir():
        pytest.skip(f"reference examples not found at {EXAMPLES} (shared data folder absent)")


def _structure(sid):
    _need_examples()
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_file(str(EXAMPLES / "cifs" / f"{sid}.cif"), occupancy_tolerance=100)


def _reference(sid):
    ref = np.load(EXAMPLES / "imgs" / f"{sid}.npy", allow_pickle=True)
    return np.asarray(ref[0], dtype=float), np.array(ref[1:], dtype=np.float32)


def _assert_matches_reference(sid, image, scalars):
    ref_img, ref_scalars = _reference(sid)
    assert image.shape == ref_img.shape == (2, 50, 50)
    assert image.dtype == np.float32 and scalars.dtype == np.float32
    for k in range(2):
        err = np.abs(image[k] - ref_img[k]).max() / ref_img[k].max()
        assert err < 1e-4, f"{sid} H{k + 1}: max pixel error {err:.2e} of the image max"
    np.testing.assert_allclose(scalars, ref_scalars, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("sid", FAST_IDS)
def test_reference_images_reproduced(sid):
    image, scalars = compute_persistence_image(_structure(sid))
    _assert_matches_reference(sid, image, scalars)


@pytest.mark.slow
@pytest.mark.parametrize("sid", [s for s in ALL_IDS if s not in FAST_IDS])
def test_reference_images_reproduced_all(sid):
    image, scalars = compute_persistence_image(_structure(sid))
    _assert_matches_reference(sid, image, scalars)


@pytest.mark.slow
def test_reference_images_with_cgal_exact_precision():
    image, scalars = compute_persistence_image(_structure("5A_CSP_4"), alpha_precision="exact")
    _assert_matches_reference("5A_CSP_4", image, scalars)


def test_reference_supercell_construction():
    s = _structure("BENZEN")
    pts = supercell_points(s)
    assert pts.shape == (76043, 3)  # the count that reproduces the reference images
    assert pts.max() < 100.0 and pts.min() > -5.0
    np.testing.assert_array_equal(pts[: len(s)], s.cart_coords[(s.cart_coords > -5).all(1)])
    # copies are lattice translates of the cell: integer fractional offsets
    diff = s.lattice.get_fractional_coords(pts)[:, None, :] - s.frac_coords[None, :, :]
    off = np.abs(diff - np.round(diff)).max(axis=2)  # (points, sites)
    site = off.argmin(axis=1)
    assert off[np.arange(len(pts)), site].max() < 1e-8
    shift = np.round(diff[np.arange(len(pts)), site])
    # the reference's quirk: apart from the original cell, no copies with x = 0, 1 or 2
    xs = set(np.unique(shift[:, 0]).tolist())
    assert 0.0 in xs and 3.0 in xs and not xs & {1.0, 2.0} and xs <= set(range(20))
    assert (shift[shift[:, 0] == 0] == 0).all()


def test_cube_supercell():
    s = _structure("5A_CSP_3")
    box = 30.0
    pts = supercell_points(s, box=box, supercell="cube")
    assert pts.min() >= 0.0 and pts.max() < box
    expected = len(s) / s.volume * box**3
    assert abs(len(pts) - expected) < 0.05 * expected
    # every periodic image inside the cube, each once
    assert len(np.unique(np.round(pts, 6), axis=0)) == len(pts)
    shifted = supercell_points(s, box=box + 3.0, supercell="cube")
    assert (shifted < box).all(axis=1).sum() == len(pts)


@pytest.mark.slow
def test_cube_differs_from_reference_benzen():
    # DESIGN.md §5: with a true cube, BENZEN's max birth is 2.55 Å instead of 8.46 Å
    _, scalars = compute_persistence_image(_structure("BENZEN"), supercell="cube")
    assert abs(scalars[0] - 2.55) < 0.01


# --------------------------------------------------------------------------- diagrams
def test_our_persistence_equals_gudhi():
    pytest.importorskip("numba", reason="our persistence algorithm is compiled with numba")
    pts = supercell_points(_structure("BENZEN"), box=40.0)
    for precision in ("jitter", "exact"):
        ours = alpha_diagrams(pts, precision=precision, backend="numba")
        ref = alpha_diagrams(pts, precision=precision, backend="gudhi")
        for d in (1, 2):
            assert len(ours[d]) > 100
            a = ours[d][np.lexsort(ours[d].T[::-1])]
            b = ref[d][np.lexsort(ref[d].T[::-1])]
            np.testing.assert_array_equal(a, b)


def _assert_same_diagrams(ours, exact, min_pairs):
    for d in (1, 2):
        a = ours[d][np.lexsort(ours[d].T[::-1])]
        b = exact[d][np.lexsort(exact[d].T[::-1])]
        assert a.shape == b.shape and len(a) > min_pairs
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_delaunay_values_equal_cgal_exact():
    pts = supercell_points(_structure("5A_CSP_2"), box=45.0)
    _assert_same_diagrams(alpha_diagrams(pts, precision="delaunay"),
                          alpha_diagrams(pts, precision="exact"), 100)


@pytest.mark.slow
def test_delaunay_values_equal_cgal_exact_on_co_spherical_ties():
    """UHAWUX (pre-training corpus), full 100 Å box: float64 cannot tell whether some
    periodic copies lie inside a triangle's / edge's smallest sphere; deciding those ties
    by a relative tolerance gave a spurious loop of persistence 86 Å. They are now
    decided in exact arithmetic, like CGAL's kernel (~30 s: gudhi's exact route)."""
    path = DATA / "pretrain_corpus" / "cifs" / "UHAWUX.cif"
    if not path.is_file():
        pytest.skip(f"{path} not found (shared data folder absent)")
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pts = supercell_points(Structure.from_file(str(path), occupancy_tolerance=100))
    ours = alpha_diagrams(pts, precision="delaunay")
    _assert_same_diagrams(ours, alpha_diagrams(pts, precision="exact"), 10000)
    assert (ours[1][:, 1] - ours[1][:, 0]).max() < 1.0  # 86.3 Å with the tolerance rule


def test_bit_tree_of_the_h1_reduction_matches_a_set():
    # the H1 reduction keeps long working columns in a 64-ary bit tree (toggle, max); the
    # fixture crystals' 100 Å clouds go through it (5A_CSP_1: 48 columns) and must still
    # give the reference images, this checks the structure itself, incl. bit 63 and
    # ranks beyond 64**2
    from mcrt_sklearn.featurizers.persistence import _bt_max, _bt_toggle

    size = 300_000
    levels = [(size + 63) // 64]
    while levels[-1] > 1:
        levels.append((levels[-1] + 63) // 64)
    off = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.int64)
    tree = np.zeros(int(off[-1]) + 1, np.uint64)
    rng = np.random.default_rng(3)
    present: set[int] = set()
    picks = np.concatenate([[63, 64, 4095, 4096, size - 1, 0], rng.integers(0, size, 3000)])
    for i in picks.tolist() + rng.choice(picks, 2000).tolist():
        _bt_toggle(tree, off, len(levels), int(i))
        present ^= {int(i)}
        assert _bt_max(tree, off, len(levels)) == (max(present) if present else -1)
    for i in sorted(present):
        _bt_toggle(tree, off, len(levels), i)
    assert _bt_max(tree, off, len(levels)) == -1 and not tree.any()


def test_alpha_diagrams_known_geometry():
    # a regular tetrahedron (edge 2): the six edges enter at 1 and make three loops, which
    # the (acute) faces fill at their circumradius 2/sqrt(3); then a void, killed at the
    # tetrahedron's circumradius sqrt(3/2)
    pts = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / np.sqrt(2)
    for precision in ("exact", "delaunay"):
        dg = alpha_diagrams(pts, precision=precision)
        np.testing.assert_allclose(dg[1], [[1.0, 2 / np.sqrt(3)]] * 3, rtol=1e-6)
        np.testing.assert_allclose(dg[2], [[2 / np.sqrt(3), np.sqrt(1.5)]], rtol=1e-6)
    # a square (side 2) with points above and below: a loop born at 1, dying at sqrt(2)
    sq = np.array([[1, 1, 0], [1, -1, 0], [-1, -1, 0], [-1, 1, 0], [0, 0, 5], [0, 0, -5]], float)
    dg = alpha_diagrams(sq)
    assert len(dg[1]) >= 1
    assert np.any(np.all(np.isclose(dg[1], [1.0, np.sqrt(2)], rtol=1e-6), axis=1))


# --------------------------------------------------------------------------- images
def _brute_force_image(points, pixels, spread, max_b, max_p, n_sub=400):
    """Midpoint-rule integral of the Gaussians over the reference pixel grid."""
    xs_lo = np.linspace(0.0, max_b, pixels)
    ys_lo = np.linspace(0.0, max_p, pixels)
    img = np.zeros((pixels, pixels))
    for b, p in points:

        def axis(lo_edges, width, c):
            t = (np.arange(n_sub) + 0.5) / n_sub
            x = lo_edges[:, None] + width * t[None, :]
            dens = np.exp(-0.5 * ((x - c) / spread) ** 2) / (spread * np.sqrt(2 * np.pi))
            return dens.mean(axis=1) * width

        img += np.outer(axis(xs_lo, max_b / pixels, b), axis(ys_lo, max_p / pixels, p))
    return img.T[::-1]


@pytest.mark.parametrize("use_numba", [True, False])
def test_rasterisation_matches_numerical_integration(use_numba):
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(0, 3, 7), rng.uniform(0, 0.5, 7)])
    img = persistence_image(pts, 12, 0.15, 3.0, 0.5, 0.0, use_numba=use_numba)
    ref = _brute_force_image(pts, 12, 0.15, 3.0, 0.5)
    np.testing.assert_allclose(img, ref, atol=1e-6 * ref.max())


def test_single_point_mass_and_orientation():
    # reference grid: pixel i covers [i * 10/9, i * 10/9 + 1] on both axes (10 pixels on
    # [0, 10]); a spread much smaller than a pixel puts all the mass in one pixel
    img = persistence_image(np.array([[1.6, 9.4]]), 10, 0.01, 10.0, 10.0, 0.0)
    assert abs(img.sum() - 1.0) < 1e-6
    row, col = np.unravel_index(img.argmax(), img.shape)
    # birth 1.6 -> column 1; persistence 9.4 -> pixel 8 from the bottom -> row 1 (img.T[::-1])
    assert (row, col) == (1, 1)
    # a point in a gap between two pixels' intervals falls off the image
    assert persistence_image(np.array([[1.05, 9.4]]), 10, 0.01, 10.0, 10.0, 0.0).sum() < 1e-6
    # wide Gaussian inside a large range: pixels of width M/50 every M/49 cover 49/50 of
    # each axis, so the mass is (49/50)^2
    img = persistence_image(np.array([[50.0, 50.0]]), 50, 3.0, 100.0, 100.0, 0.0)
    assert abs(img.sum() - (49 / 50) ** 2) < 1e-3


def test_empty_diagram_gives_zero_image_and_scalars():
    img, max_b, max_p = diagram_image(np.zeros((0, 2), np.float32), pixels=7)
    assert img.shape == (7, 7) and not img.any() and max_b == 0.0 and max_p == 0.0
    from pymatgen.core import Lattice, Structure

    lone = Structure(Lattice.cubic(60.0), ["C"], [[0.1, 0.1, 0.1]])  # one point in the box
    image, scalars = compute_persistence_image(lone, pixels=8)
    assert image.shape == (2, 8, 8) and not image.any() and not scalars.any()


def test_diagram_image_uses_diagram_range():
    dgm = np.array([[1.0, 1.5], [2.0, 2.2], [0.5, 0.9]], np.float32)
    img, max_b, max_p = diagram_image(dgm, pixels=20, spread=0.1)
    assert max_b == pytest.approx(2.0) and max_p == pytest.approx(0.5)
    land = np.column_stack([dgm[:, 0], dgm[:, 1] - dgm[:, 0]])
    np.testing.assert_allclose(img, persistence_image(land, 20, 0.1, 2.0, 0.5, 0.0))


@pytest.mark.parametrize("use_numba", [True, False])
def test_weights_count_as_repeated_points(use_numba):
    rng = np.random.default_rng(2)
    pts = np.column_stack([rng.uniform(0, 3, 5), rng.uniform(0, 0.5, 5)])
    counts = np.array([1, 4, 2, 7, 3])
    repeated = persistence_image(np.repeat(pts, counts, axis=0), 12, 0.15, 3.0, 0.5, 0.0,
                                 use_numba=use_numba)
    weighted = persistence_image(pts, 12, 0.15, 3.0, 0.5, 0.0, use_numba=use_numba,
                                 weights=counts)
    np.testing.assert_allclose(weighted, repeated, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="weights"):
        persistence_image(pts, 12, 0.15, weights=counts[:3])


def test_diagram_image_of_a_periodic_cloud_equals_the_pointwise_sum():
    # diagram_image rasterises each distinct pair once with its count; a real periodic
    # cloud repeats pairs thousands of times (the test can fail if counting goes wrong)
    from mcrt_sklearn.featurizers.persistence import alpha_diagrams, supercell_points

    _need_examples()
    diagrams = alpha_diagrams(supercell_points(_structure("5A_CSP_4"), box=50.0))
    for d in (1, 2):
        dgm = diagrams[d]
        land = np.column_stack([dgm[:, 0], dgm[:, 1] - dgm[:, 0]])
        assert len(np.unique(land, axis=0)) < len(land) / 2  # pairs do repeat
        img, max_b, max_p = diagram_image(dgm)
        pointwise = persistence_image(land, 50, 0.15, max_b, max_p, min(land.min(), 0.0))
        np.testing.assert_allclose(img, pointwise, rtol=0, atol=1e-10 * pointwise.max())


# --------------------------------------------------------------------------- fast mode
# The documented accuracy of mode="fast" on the six fixture crystals (docstring of
# fast_persistence_image and docs/user_guide.md): image cosine >= 0.9996 and total
# intensity -2.1 % ... +0.9 % of the exact (= reference) image; docs/benchmarks.md rounds
# this to "cosine >= 0.999 / total within 3 %: 6 fixture crystals 6 / 6". The range is
# checked at the precision it is printed with (-2.1 % covers down to -2.15 %).
FAST_COSINE_MIN = 0.9996
FAST_TOTAL_RANGE = (-0.0215, 0.0095)


@pytest.mark.parametrize("sid", ALL_IDS)
def test_fast_mode_meets_its_documented_accuracy(sid):
    _need_examples()
    ref_img, ref_scalars = _reference(sid)
    image, scalars = compute_persistence_image(_structure(sid), mode="fast")
    assert image.shape == (2, 50, 50)
    for k in range(2):
        a, b = image[k].astype(float), ref_img[k]
        cos = (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)
        assert cos >= FAST_COSINE_MIN, f"{sid} H{k + 1} cosine {cos:.5f}"
        dev = a.sum() / b.sum() - 1
        assert abs(dev) <= 0.03, f"{sid} H{k + 1} total {dev:+.2%} (benchmarks.md: within 3 %)"
        lo, hi = FAST_TOTAL_RANGE
        assert lo <= dev <= hi, f"{sid} H{k + 1} total {dev:+.2%} outside the documented range"
    # the scalars are those of the larger sub-cloud (no accuracy is documented for them;
    # measured: at most 3.9 %, 5A_CSP_3); 5 % keeps this a regression bound
    np.testing.assert_allclose(scalars, ref_scalars, rtol=0.05)


def test_fast_mode_calibration_scales_only_the_totals():
    _need_examples()
    s = _structure("BENZEN")
    raw, raw_sc = pi.fast_persistence_image(s, calibration=None)
    cal, cal_sc = pi.fast_persistence_image(s)
    np.testing.assert_array_equal(cal_sc, raw_sc)
    for k in range(2):
        factor = pi.FAST_TOTAL_CALIBRATION[k]
        np.testing.assert_allclose(cal[k], raw[k] * factor, rtol=1e-6)
    # when the largest sub-cloud is the whole cloud nothing is extrapolated or calibrated
    whole_raw, _ = pi.fast_persistence_image(s, box=12.0, fractions=(0.5, 1.0), calibration=None)
    whole, _ = pi.fast_persistence_image(s, box=12.0, fractions=(0.5, 1.0))
    exact, _ = pi.compute_persistence_image(s, box=12.0)
    np.testing.assert_array_equal(whole, whole_raw)
    np.testing.assert_allclose(whole, exact, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------- featurizer
def test_featurizer_output_labels_and_clone():
    from sklearn.base import clone

    feat = PersistenceImageFeaturizer(pixels=6, box=40.0, n_jobs=1)
    params = feat.get_params()
    assert params == {
        "pixels": 6,
        "spread": 0.15,
        "box": 40.0,
        "supercell": "reference",
        "mode": "exact",
        "n_jobs": 1,
        "cache_dir": None,
        "ignore_errors": False,
        "return_errors": False,
        "progress": False,
    }
    twin = clone(feat)
    assert twin.get_params() == params and twin is not feat
    assert feat.fit([]) is feat
    labels = feat.feature_labels()
    assert len(labels) == 2 * 36 + 4 and len(set(labels)) == len(labels)
    assert labels[-4:] == list(pi.SCALAR_NAMES)
    assert feat.citations() and feat.implementors()

    _need_examples()
    path = EXAMPLES / "cifs" / "5A_CSP_3.cif"
    x = feat.featurize(path)  # a CIF path
    assert isinstance(x, list) and len(x) == len(labels)
    image, scalars = compute_persistence_image(_structure("5A_CSP_3"), pixels=6, box=40.0)
    np.testing.assert_allclose(x, np.concatenate([image.ravel(), scalars]))
    assert np.allclose(x, feat.featurize(_structure("5A_CSP_3")))  # a Structure
    X = feat.transform([path, _structure("5A_CSP_3")])
    assert X.shape == (2, len(labels))
    np.testing.assert_allclose(X[0], X[1])


def test_featurizer_errors():
    from mcrt_sklearn.errors import UnreadableStructureError

    feat = PersistenceImageFeaturizer(pixels=4, box=30.0)
    with pytest.raises(UnreadableStructureError):
        feat.featurize("/nonexistent/crystal.cif")
    # in a batch: a StructureError too (naming every bad structure), or skipped
    from mcrt_sklearn.errors import StructureBatchError, StructureError

    good = _structure("5A_CSP_3") if EXAMPLES.is_dir() else None
    with pytest.raises(StructureError, match="nonexistent") as info:
        feat.transform(["/nonexistent/crystal.cif", "/nonexistent/other.cif"])
    assert isinstance(info.value, StructureBatchError) and len(info.value.failures) == 2
    if good is not None:
        skipping = PersistenceImageFeaturizer(pixels=4, box=30.0, ignore_errors=True)
        X = skipping.transform(["/nonexistent/crystal.cif", good])
        assert X.shape == (1, 2 * 16 + 4) and skipping.failed_indices_ == [0]
    with pytest.raises(ValueError, match="supercell"):
        PersistenceImageFeaturizer(supercell="sphere").fit()
    with pytest.raises(ValueError, match="mode"):
        PersistenceImageFeaturizer(mode="quick").fit()
    with pytest.raises(ValueError, match="precision"):
        alpha_diagrams(np.zeros((4, 3)), precision="safe")


@pytest.mark.parametrize("params,name", [({"pixels": 0}, "pixels"), ({"spread": -1.0}, "spread"),
                                         ({"box": 0.0}, "box"), ({"mode": "quick"}, "mode"),
                                         ({"supercell": "sphere"}, "supercell")])
def test_bad_settings_raise_in_featurize_many_and_dataframe(params, name):
    import pandas as pd

    feat = PersistenceImageFeaturizer(**params)
    entries = ["/nonexistent/crystal.cif"]  # never read: the settings fail first
    for ignore_errors, return_errors in ((False, False), (True, False), (True, True)):
        with pytest.raises(ValueError, match=name):
            feat.featurize_many(entries, ignore_errors=ignore_errors,
                                return_errors=return_errors, pbar=False)
    with pytest.raises(ValueError, match=name):
        feat.featurize_dataframe(pd.DataFrame({"s": entries}), "s", ignore_errors=True,
                                 pbar=False)


def test_featurizer_cache(tmp_path, monkeypatch):
    # count the images actually computed: a cache hit computes none
    # (patched where the featurizer looks it up: the module that defines it)
    from mcrt_sklearn.featurizers.persistence import featurizer as pi_featurizer

    calls = []
    compute = pi.compute_persistence_image
    monkeypatch.setattr(pi_featurizer, "compute_persistence_image",
                        lambda *a, **k: calls.append(1) or compute(*a, **k))
    feat = PersistenceImageFeaturizer(pixels=5, box=30.0, cache_dir=str(tmp_path))
    s = _structure("5A_CSP_5")
    a = feat.featurize(s)
    assert len(calls) == 1
    assert any(tmp_path.rglob("output.pkl")), "nothing was written to the cache"
    assert feat.featurize(s) == a
    assert len(calls) == 1, "the second call recomputed instead of reading the cache"
    # another featuriser on the same folder, the crystal read again from its CIF: a hit
    twin = PersistenceImageFeaturizer(pixels=5, box=30.0, cache_dir=str(tmp_path))
    assert twin.featurize(EXAMPLES / "cifs" / "5A_CSP_5.cif") == a
    assert len(calls) == 1
    # other settings are another entry
    b = PersistenceImageFeaturizer(pixels=4, box=30.0, cache_dir=str(tmp_path)).featurize(s)
    assert len(calls) == 2 and len(b) == 2 * 16 + 4
    # transform reads the same entries and counts its hits
    X = twin.transform([s, EXAMPLES / "cifs" / "5A_CSP_5.cif"])
    assert twin.cache_hits_ == 2 and len(calls) == 2
    np.testing.assert_array_equal(X[0], a)
