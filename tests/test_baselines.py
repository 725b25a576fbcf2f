"""Baselines of the MCRT paper (issue 6): SOAP + RF/KRR, CGCNN, Crystal Twins, ALIGNN.

Real crystals: 48 azaphenacene CSP structures (≤ 120 atoms, 16 isomer groups, random
split 36 / 12) with their lattice energies. Networks are trained small and short
(stated per test) so that the whole file runs in a few minutes on a loaded 2-core
CPU; each "beats the mean" test prints its MAE next to the predict-the-training-mean
MAE. Graphs are built once per module and shared.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402

from mcrt_sklearn._paths import shared_data_dir  # noqa: E402
from mcrt_sklearn.errors import StructureError  # noqa: E402

DATA = shared_data_dir()
AZA = DATA / "azaphenacenes"
CT = DATA / "crystal_twins"
X23 = DATA / "x23"
ROY = DATA / "roy"
# Four S-free X23 crystals (C/H/N/O) then two ROY polymorphs (C/H/N/O/S, 54 atoms):
# unshuffled 3-fold CV tests the ROY pair on folds that have never seen sulphur.
MIXED_IDS = [X23 / "cifs" / f"{i}.cif" for i in
             ("x23_07co2", "x23_04ammonia", "x23_21urea", "x23_16pyrazine")]
MIXED_IDS += [ROY / "cifs" / f"{i}.cif" for i in ("roy_0003_R", "roy_0005_YN")]
# SOAP settings small enough for a few-second test (the paper's: 4.0 / 6 / 6)
SOAP_SMALL = dict(r_cut=3.0, n_max=2, l_max=1)

needs_aza = pytest.mark.skipif(
    not (AZA / "properties.csv").is_file(),
    reason=f"shared azaphenacene data not found at {AZA} (see shared/data/azaphenacenes/README.md)",
)
needs_ct = pytest.mark.skipif(
    not (CT / "atom_init.json").is_file() or not (CT / "cgcnn_barlow_twins.pth").is_file(),
    reason=f"Crystal Twins files (atom_init.json, cgcnn_barlow_twins.pth) not found in {CT}",
)
N_TRAIN = 36


def _mae(a, b):
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.fixture(scope="module")
def aza():
    """48 structures, lattice energies (kJ/mol) and ids; first 36 train, last 12 test."""
    if not (AZA / "properties.csv").is_file():
        pytest.skip(f"shared azaphenacene data not found at {AZA}")
    import pandas as pd
    from pymatgen.core import Structure

    df = pd.read_csv(AZA / "properties.csv")
    df = df[df.n_atoms <= 120].sample(48, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_file(AZA / "cifs" / f"{i}.cif") for i in df.id]
    for s, i in zip(structures, df.id, strict=True):
        s.properties["id"] = i
    return structures, df.lattice_energy_kJ_per_mol.to_numpy(), list(df.id)


@pytest.fixture(scope="module")
def mean_mae(aza):
    _, y, _ = aza
    return _mae(np.full(len(y) - N_TRAIN, y[:N_TRAIN].mean()), y[N_TRAIN:])


@pytest.fixture(scope="module")
def cg_graphs(aza):
    from mcrt_sklearn.baselines.cgcnn import build_cgcnn_graphs

    return build_cgcnn_graphs(aza[0])


@pytest.fixture(scope="module")
def al_graphs(aza):
    pytest.importorskip("alignn", reason="the 'alignn' package is not installed")
    from mcrt_sklearn.baselines import ALIGNNRegressor

    # 8 neighbours instead of 12 keeps the line graph (and the test) small.
    return ALIGNNRegressor(max_neighbors=8).make_graphs(aza[0])


# ------------------------------------------------------------------------ API
def test_public_import_path():
    from mcrt_sklearn import baselines

    for name in ["make_rf_soap", "make_krr_soap", "CGCNNRegressor", "ALIGNNRegressor",
                 "CrystalTwinsRegressor", "rf_soap_param_grid", "krr_soap_param_grid"]:
        assert callable(getattr(baselines, name)), name


def test_soap_featurizer_does_not_import_torch():
    code = ("import sys; import mcrt_sklearn.featurizers.soap; "
            "import mcrt_sklearn.baselines.soap_models; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, \
        "SOAP featuriser / RF-KRR factories pulled in torch"


# ----------------------------------------------------------------------- SOAP
@needs_aza
def test_soap_outer_average_equals_mean_of_matminer_site_soap(aza):
    from matminer.featurizers.site import SOAP as SiteSOAP

    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    structures = aza[0]
    s = min(structures, key=len)
    f = SOAPFeaturizer(species=["C", "H", "N"]).fit(structures)
    assert f.species_ == [1, 6, 7]
    vec = np.asarray(f.featurize(s))
    assert vec.shape == (f.n_features_,) == (1197,)
    assert len(f.feature_labels()) == f.n_features_
    assert f.citations() and f.implementors()
    site = SiteSOAP(rcut=4.0, nmax=6, lmax=6, sigma=1.0, periodic=True, crossover=False)
    site.fit(structures)
    site.set_n_jobs(1)
    ref = np.mean([site.featurize(s, i) for i in range(len(s))], axis=0)
    np.testing.assert_allclose(vec, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
    inner = SOAPFeaturizer(species=["C", "H", "N"], average="inner").fit(structures).featurize(s)
    assert not np.allclose(inner, vec)


@needs_aza
def test_soap_transform_paths_pickle_clone(aza, tmp_path, monkeypatch):
    from dscribe.descriptors import SOAP

    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    _, _, ids = aza
    paths = [AZA / "cifs" / f"{i}.cif" for i in ids[:3]]
    f = SOAPFeaturizer().fit(paths)
    X = f.transform(paths)
    assert X.shape == (3, f.n_features_) and np.isfinite(X).all()
    f2 = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(f2.transform(paths), X)
    c = clone(f)
    assert c.get_params() == f.get_params() and not hasattr(c, "species_")
    # count DScribe computations: a cache hit must not compute again
    calls = []
    create = SOAP.create
    monkeypatch.setattr(SOAP, "create", lambda self, *a, **k: calls.append(1) or create(self, *a, **k))
    cached = SOAPFeaturizer(cache_dir=str(tmp_path)).fit(paths)
    np.testing.assert_allclose(cached.transform(paths), X)
    assert len(calls) == 3
    assert any(tmp_path.rglob("output.pkl")), "nothing was written to the SOAP cache"
    np.testing.assert_allclose(cached.transform(paths), X)
    assert len(calls) == 3, "the second transform recomputed instead of reading the cache"
    assert cached.cache_hits_ == 3
    # content-addressed: another featuriser (and Structures instead of paths) hits too
    again = SOAPFeaturizer(cache_dir=str(tmp_path)).fit([]).transform([aza[0][0], aza[0][1]])
    np.testing.assert_allclose(again, X[:2])
    assert len(calls) == 3
    # … but other settings are another entry
    SOAPFeaturizer(cache_dir=str(tmp_path), sigma=0.5).fit([]).transform(paths[:1])
    assert len(calls) == 4


@needs_aza
def test_soap_unseen_species_and_not_fitted(aza):
    from sklearn.exceptions import NotFittedError

    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer, UnseenSpeciesError

    s = aza[0][0]
    with pytest.raises(NotFittedError):
        SOAPFeaturizer().transform([s])
    f = SOAPFeaturizer(species=["C", "H"]).fit([])
    with pytest.raises(UnseenSpeciesError, match=r"element\(s\) N not in the SOAP species list"):
        f.featurize(s)
    with pytest.raises(StructureError, match=r"element\(s\) N not in the SOAP species list") as err:
        f.transform([s])  # a batch: every bad structure named, each with its typed error
    assert isinstance(err.value.failures[0][1], UnseenSpeciesError)
    # skip-and-report instead of raising
    skipping = SOAPFeaturizer(species=["C", "H"], ignore_errors=True).fit([])
    assert skipping.transform([s]).shape == (0, skipping.n_features_)
    assert skipping.failed_indices_ == [0]


@pytest.fixture(scope="module")
def mixed():
    """Structures of MIXED_IDS (ids set) and their densities (g/cm³) as the target."""
    missing = [p for p in MIXED_IDS if not p.is_file()]
    if missing:
        pytest.skip(f"shared X23 / ROY CIFs not found: {missing[0]}")
    from mcrt_sklearn import read_structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [read_structure(p)[1] for p in MIXED_IDS]
    for s, p in zip(structures, MIXED_IDS, strict=True):
        s.properties["id"] = p.stem
    return structures, np.array([s.density for s in structures])


@pytest.mark.parametrize("kind", ["rf", "krr"])
def test_soap_cross_val_with_an_element_unseen_in_training(kind, mixed):
    """Issue 19: S appears only in the last fold; every fold must still score."""
    from mcrt_sklearn.baselines import make_krr_soap, make_rf_soap

    X, y = mixed
    has_s = ["S" in s.composition for s in X]
    assert has_s == [False] * 4 + [True] * 2  # the last fold alone holds sulphur
    est = (make_rf_soap(n_estimators=5, random_state=0, **SOAP_SMALL) if kind == "rf"
           else make_krr_soap(gamma=1e-2, **SOAP_SMALL))
    scores = cross_val_score(est, X, y, cv=KFold(3), scoring="neg_mean_absolute_error",
                             error_score="raise")
    assert scores.shape == (3,) and np.isfinite(scores).all(), scores


def test_soap_layout_does_not_depend_on_the_training_data(mixed):
    from dscribe.descriptors import SOAP
    from pymatgen.core import Element

    from mcrt_sklearn.featurizers.soap import ORGANIC_SPECIES, SOAPFeaturizer

    X, _ = mixed
    a = SOAPFeaturizer(**SOAP_SMALL).fit(X[:4])   # no S in the fit data
    b = SOAPFeaturizer(**SOAP_SMALL).fit(X[4:])   # S in the fit data
    c = SOAPFeaturizer(**SOAP_SMALL).fit([])
    assert a.species_ == b.species_ == c.species_
    assert [Element.from_Z(z).symbol for z in a.species_] == list(ORGANIC_SPECIES) == [
        "H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"]
    Xa = a.transform(X)
    np.testing.assert_array_equal(Xa, b.transform(X))
    # the blocks of the species a crystal holds equal those of a featuriser that knows
    # only them (so nothing changes for them), and every other block is zero
    roy = X[4]
    own = sorted({int(z) for z in roy.atomic_numbers})
    small = SOAPFeaturizer(species=own, **SOAP_SMALL).fit([])
    v_small = small.transform([roy])[0]
    v_full = Xa[4]
    d_small, d_full = small._descriptor(), a._descriptor()
    assert isinstance(d_full, SOAP) and v_full.shape == (a.n_features_,)
    covered = np.zeros(a.n_features_, dtype=bool)
    for i, z1 in enumerate(own):
        for z2 in own[i:]:
            full, part = d_full.get_location((z1, z2)), d_small.get_location((z1, z2))
            np.testing.assert_allclose(v_full[full], v_small[part], rtol=1e-10, atol=1e-12)
            covered[full] = True
    assert np.abs(v_small).max() > 0 and not v_full[~covered].any()


def test_soap_element_outside_the_list_is_refused_by_name(mixed):
    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer, UnseenSpeciesError

    X, y = mixed
    odd = X[2].copy()
    odd.replace(0, "Na")
    odd.properties["id"] = "urea_with_sodium"
    f = SOAPFeaturizer(**SOAP_SMALL).fit(X)
    with pytest.raises(StructureError, match=r"'urea_with_sodium'.*element\(s\) Na ") as err:
        f.transform([X[0], odd])
    assert err.value.structure_id == "urea_with_sodium"
    assert isinstance(err.value.failures[0][1], UnseenSpeciesError)
    assert "species=[...]" in str(err.value)
    # an explicit list that holds the element featurises it
    assert np.isfinite(SOAPFeaturizer(species=["H", "C", "N", "O", "Na"], **SOAP_SMALL)
                       .fit([]).transform([odd])).all()
    # in cross-validation the refusal is the error itself (no silent NaN row)
    from mcrt_sklearn.baselines import make_rf_soap

    with pytest.raises(StructureError, match="urea_with_sodium"):
        cross_val_score(make_rf_soap(n_estimators=2, **SOAP_SMALL), X[:3] + [odd], y[:4],
                        cv=KFold(2), error_score="raise")


@needs_aza
def test_rf_soap_gridsearch_beats_mean(aza, mean_mae, tmp_path):
    from mcrt_sklearn.baselines import make_rf_soap, rf_soap_param_grid

    grid = rf_soap_param_grid()["rf__n_estimators"]
    assert min(grid) == 10 and max(grid) == 1000
    X, y, _ = aza
    gs = GridSearchCV(
        make_rf_soap(random_state=0, soap_cache=str(tmp_path)),
        {"rf__n_estimators": [10, 100]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_absolute_error",
    )
    gs.fit(X[:N_TRAIN], y[:N_TRAIN])
    mae = _mae(gs.predict(X[N_TRAIN:]), y[N_TRAIN:])
    print(f"\nRF-SOAP test MAE {mae:.2f} kJ/mol vs mean {mean_mae:.2f} ({gs.best_params_})")
    assert mae < 0.7 * mean_mae


@needs_aza
def test_krr_soap_gridsearch_beats_mean(aza, mean_mae, tmp_path):
    from mcrt_sklearn.baselines import krr_soap_param_grid, make_krr_soap

    alphas = [a for g in krr_soap_param_grid() for a in g["krr__alpha"]]
    assert min(alphas) == pytest.approx(1e-3) and max(alphas) == pytest.approx(100)
    X, y, _ = aza
    gs = GridSearchCV(
        make_krr_soap(soap_cache=str(tmp_path)),
        {"krr__alpha": [1e-3, 1e-1, 10.0], "krr__gamma": [1e-4, 1e-3]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_absolute_error",
    )
    gs.fit(X[:N_TRAIN], y[:N_TRAIN])
    mae = _mae(gs.predict(X[N_TRAIN:]), y[N_TRAIN:])
    print(f"\nKRR-SOAP test MAE {mae:.2f} kJ/mol vs mean {mean_mae:.2f} ({gs.best_params_})")
    assert mae < 0.7 * mean_mae


# ---------------------------------------------------------------------- CGCNN
@needs_aza
def test_cgcnn_graph_is_12_nearest_within_8A(aza, cg_graphs):
    s, g = aza[0][0], cg_graphs[0]
    d = np.linalg.norm(g.nbr_vec, axis=-1)
    assert g.nbr_idx.shape == (len(s), 12) and g.nbr_mask.all()
    assert (d <= 8.0 + 1e-6).all() and (np.diff(d, axis=1) >= -1e-6).all()
    for i in (0, len(s) // 2):
        ref = sorted(n.nn_distance for n in s.get_neighbors(s[i], 8.0))[:12]
        np.testing.assert_allclose(d[i], ref, atol=1e-5)
        # bond vectors point at the neighbour's periodic image
        j = g.nbr_idx[i, 0]
        assert s.get_distance(i, j) <= d[i, 0] + 1e-5


@needs_aza
def test_cgcnn_graph_cache(aza, cg_graphs, tmp_path, monkeypatch):
    from mcrt_sklearn.baselines import cgcnn
    from mcrt_sklearn.baselines.cgcnn import build_cgcnn_graphs

    # count the graphs actually built (a cache hit builds none)
    calls = []
    build = cgcnn.build_cgcnn_graph
    monkeypatch.setattr(cgcnn, "build_cgcnn_graph",
                        lambda *a, **k: calls.append(1) or build(*a, **k))
    for _ in range(3):  # the first round builds, the others read the cache
        cached = build_cgcnn_graphs(aza[0][:2], cache=tmp_path)
        assert len(calls) == 2
        for a, b in zip(cached, cg_graphs[:2], strict=True):
            assert a.sid == b.sid
            np.testing.assert_array_equal(a.nbr_idx, b.nbr_idx)
            np.testing.assert_allclose(a.nbr_vec, b.nbr_vec)
    assert any(tmp_path.rglob("output.pkl")), "nothing was written to the graph cache"
    # content-addressed: the same crystal from its CIF, under another id, is a hit
    [again] = build_cgcnn_graphs([AZA / "cifs" / f"{aza[2][0]}.cif"], cache=tmp_path)
    assert len(calls) == 2 and again.sid == aza[2][0]
    np.testing.assert_array_equal(again.nbr_idx, cg_graphs[0].nbr_idx)
    moved = aza[0][0].copy()
    moved.properties["id"] = "moved"
    moved.translate_sites([0], [0.05, 0.0, 0.0], frac_coords=False)
    [g] = build_cgcnn_graphs([moved], cache=tmp_path)  # other content: a miss
    assert len(calls) == 3 and g.sid == "moved"
    build_cgcnn_graphs(aza[0][:1], max_num_nbr=6, cache=tmp_path)  # other settings: a miss
    assert len(calls) == 4


@needs_ct
def test_cgcnn_default_architecture():
    from mcrt_sklearn.baselines import CGCNNRegressor
    from mcrt_sklearn.baselines.cgcnn import load_atom_init

    est = CGCNNRegressor()
    est.atom_table_ = load_atom_init()
    net = est._make_module()
    assert len(net.encoder.convs) == 5 and len(net.fcs) == 0
    assert net.encoder.gdf.n_features == 41
    assert net.encoder.convs[0].fc_full.in_features == 2 * 64 + 41
    assert net.encoder.convs[0].fc_full.out_features == 128
    assert net.encoder.embedding.in_features == 92 and net.encoder.conv_to_fc.out_features == 128
    assert (est.max_epochs, est.batch_size) == (100, 32)


def test_cgcnn_missing_atom_init_is_a_clear_error(tmp_path):
    from mcrt_sklearn.baselines import CGCNNRegressor

    with pytest.raises(FileNotFoundError, match="atom_init"):
        CGCNNRegressor(atom_init=tmp_path / "nope.json").fit([], [])


# small, fast settings for the networks in tests
CG_SMALL = dict(n_conv=2, atom_fea_len=32, lr=1e-2, batch_size=8, random_state=0)


@needs_aza
@needs_ct
def test_cgcnn_cross_val_and_beats_mean(aza, cg_graphs, mean_mae):
    from mcrt_sklearn.baselines import CGCNNRegressor

    _, y, _ = aza
    scores = cross_val_score(CGCNNRegressor(max_epochs=2, **CG_SMALL), cg_graphs, y,
                             cv=KFold(3, shuffle=True, random_state=0),
                             scoring="neg_mean_absolute_error")
    assert scores.shape == (3,) and np.isfinite(scores).all()
    est = CGCNNRegressor(max_epochs=10, **CG_SMALL).fit(cg_graphs[:N_TRAIN], y[:N_TRAIN])
    mae = _mae(est.predict(cg_graphs[N_TRAIN:]), y[N_TRAIN:])
    print(f"\nCGCNN (2 conv x 32, 10 epochs) test MAE {mae:.2f} vs mean {mean_mae:.2f}")
    assert mae < 0.8 * mean_mae


@needs_aza
@needs_ct
def test_cgcnn_accepts_structures_and_paths(aza):
    from mcrt_sklearn.baselines import CGCNNRegressor

    X, y, ids = aza
    est = CGCNNRegressor(max_epochs=1, progress_bar=True, **CG_SMALL).fit(X[:4], y[:4])
    assert len(est.net_.history) == 1
    paths = [str(AZA / "cifs" / f"{i}.cif") for i in ids[:4]]
    np.testing.assert_allclose(est.predict(paths), est.predict(X[:4]), atol=1e-4)


# ------------------------------------------------------------- Crystal Twins
@needs_ct
def test_crystal_twins_loads_published_encoder_strictly():
    from mcrt_sklearn.baselines.cgcnn import CGCNNEncoder
    from mcrt_sklearn.baselines.crystal_twins import (
        CrystalTwinsPretrainNet,
        load_published_encoder,
    )

    state = torch.load(CT / "cgcnn_barlow_twins.pth", map_location="cpu", weights_only=True)
    enc = load_published_encoder(CGCNNEncoder(n_conv=3))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert len(enc.state_dict()) == len([k for k in state if not k.startswith("fc_head.")])
    full = CrystalTwinsPretrainNet()
    full.load_flat_state_dict(state)  # encoder and projector, both strict
    assert set(full.flat_state_dict()) == set(state)
    with pytest.raises(RuntimeError):  # strict: a 5-conv encoder cannot take 3-conv weights
        load_published_encoder(CGCNNEncoder(n_conv=5))


@needs_aza
@needs_ct
def test_crystal_twins_finetunes_from_published_and_beats_mean(aza, cg_graphs, mean_mae):
    from mcrt_sklearn.baselines import CrystalTwinsRegressor

    _, y, _ = aza
    state = torch.load(CT / "cgcnn_barlow_twins.pth", map_location="cpu", weights_only=True)
    est = CrystalTwinsRegressor(max_epochs=10, batch_size=8, lr=3e-3, random_state=0)
    est.atom_table_ = np.zeros((101, 92), np.float32)
    start = est._prepare_module(est._make_module())
    assert torch.equal(start.encoder.convs[2].fc_full.weight, state["convs.2.fc_full.weight"])
    est.fit(cg_graphs[:N_TRAIN], y[:N_TRAIN])
    mae = _mae(est.predict(cg_graphs[N_TRAIN:]), y[N_TRAIN:])
    print(f"\nCrystal Twins (published encoder, 10 epochs) test MAE {mae:.2f} vs mean {mean_mae:.2f}")
    assert mae < 0.7 * mean_mae
    scores = cross_val_score(
        CrystalTwinsRegressor(max_epochs=1, batch_size=8, random_state=0), cg_graphs[:24],
        y[:24], cv=2, scoring="neg_mean_absolute_error")
    assert np.isfinite(scores).all()


@needs_aza
@needs_ct
def test_crystal_twins_pretrain_barlow_twins(aza, cg_graphs):
    from mcrt_sklearn.baselines import CrystalTwinsRegressor
    from mcrt_sklearn.baselines.crystal_twins import barlow_twins_loss

    z = torch.randn(64, 16)
    assert float(barlow_twins_loss(z, z, lambd=0.0)) == pytest.approx(0.0, abs=1e-4)
    assert float(barlow_twins_loss(z, torch.randn(64, 16))) > 1.0

    # the published weights survive into training (lr 0: weights do not move)
    _, y, _ = aza
    frozen = CrystalTwinsRegressor(lr=0.0, max_epochs=1, batch_size=8).fit(cg_graphs[:4], y[:4])
    published = torch.load(CT / "cgcnn_barlow_twins.pth", map_location="cpu", weights_only=True)
    assert torch.equal(frozen.module_.encoder.convs[1].fc_full.weight,
                       published["convs.1.fc_full.weight"])

    est = CrystalTwinsRegressor(pretrained=None, random_state=0)
    est.pretrain(cg_graphs[:16], max_epochs=3, batch_size=8, lr=1e-3)
    hist = est.pretrain_history_
    assert len(hist) == 3 and np.isfinite(hist).all()
    assert hist[-1] < hist[0], hist
    # fit starts from the pre-trained encoder
    start = est._prepare_module(est._make_module())
    assert torch.equal(start.encoder.embedding.weight, est.pretrained_state_["embedding.weight"])
    # … and so does a clone given the state explicitly
    c = clone(est).set_params(pretrained=est.pretrained_state_)
    c.atom_table_ = est.atom_table_
    start2 = c._prepare_module(c._make_module())
    assert torch.equal(start2.encoder.embedding.weight, start.encoder.embedding.weight)
    tuned = clone(c).set_params(lr=0.0, max_epochs=1, batch_size=8).fit(cg_graphs[:4], y[:4])
    assert torch.equal(tuned.module_.encoder.embedding.weight, start.encoder.embedding.weight)


@needs_aza
@needs_ct
def test_early_stopping_needs_validation(aza, cg_graphs):
    from mcrt_sklearn.baselines import CGCNNRegressor

    _, y, _ = aza
    with pytest.raises(ValueError, match="validation_fraction"):
        CGCNNRegressor(patience=2, **CG_SMALL).fit(cg_graphs[:4], y[:4])
    est = CGCNNRegressor(max_epochs=3, validation_fraction=0.25, patience=1, **CG_SMALL)
    est.fit(cg_graphs[:12], y[:12])
    assert "valid_loss" in est.net_.history[-1]


@needs_aza
@needs_ct
def test_validation_split_keeps_the_best_epoch(aza, cg_graphs):
    """With a validation split, the weights kept are those of the lowest validation loss
    (the paper protocol picks every network's epoch that way), not the last epoch's."""
    from skorch.dataset import ValidSplit

    from mcrt_sklearn.baselines import CGCNNRegressor
    from mcrt_sklearn.baselines._skorch import GraphDataset

    _, y, _ = aza
    graphs, y = cg_graphs[:24], np.asarray(y[:24], dtype=float)
    est = CGCNNRegressor(max_epochs=6, validation_fraction=0.25, warmup=0.0,
                         **CG_SMALL).fit(graphs, y)
    valid = [e["valid_loss"] for e in est.history_]
    assert len(valid) == 6 and est.best_epoch_ == int(np.argmin(valid)) + 1
    assert est.best_epoch_ < 6, "the test needs a run whose last epoch is not its best"
    # the held-out quarter, as skorch split it, scored with the weights kept
    z = (y - est.y_mean_) / est.y_std_
    _, held = ValidSplit(0.25, random_state=0)(GraphDataset(graphs, z))
    idx = np.asarray(held.indices)
    pred = est._predict_scaled([graphs[i] for i in idx])
    assert np.mean((pred - z[idx]) ** 2) == pytest.approx(min(valid), rel=1e-4)
    assert np.mean((pred - z[idx]) ** 2) != pytest.approx(valid[-1], rel=1e-3)
    assert CGCNNRegressor(max_epochs=1, **CG_SMALL).fit(graphs[:8], y[:8]).best_epoch_ is None


@needs_aza
@needs_ct
def test_crystal_twins_augmentation_changes_the_view(aza, cg_graphs):
    from mcrt_sklearn.baselines.cgcnn import collate_cgcnn, load_atom_init
    from mcrt_sklearn.baselines.crystal_twins import augment_batch

    batch = collate_cgcnn([(g, 0.0) for g in cg_graphs[:2]], load_atom_init())[0].to("cpu")
    view = augment_batch(batch, torch.Generator().manual_seed(0), 0.2, 0.2, 0.05)
    masked = (view["atom_fea"].abs().sum(1) == 0).float().mean()
    assert 0.05 < masked < 0.4
    assert 0.05 < (~view["edge_keep"]).float().mean() < 0.4
    dd = (view["nbr_vec"] - batch["nbr_vec"]).norm(dim=-1)
    assert 0 < dd.mean() < 0.3


# --------------------------------------------------------------------- ALIGNN
AL_SMALL = dict(alignn_layers=1, gcn_layers=1, hidden_features=32, embedding_features=16,
                max_neighbors=8, batch_size=8, random_state=0)


def test_alignn_default_config():
    pytest.importorskip("alignn", reason="the 'alignn' package is not installed")
    from mcrt_sklearn.baselines import ALIGNNRegressor

    net = ALIGNNRegressor()._make_module()
    assert len(net.alignn.alignn_layers) == 4 and len(net.alignn.gcn_layers) == 4
    assert net.alignn.fc.in_features == 256 and not net.alignn.config.calculate_gradient


@needs_aza
def test_alignn_predictions_equal_a_direct_alignn_call(aza, al_graphs):
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure
    from alignn.torch_graph_builder import build_pure_torch_graph
    from pymatgen.io.jarvis import JarvisAtomsAdaptor

    from mcrt_sklearn.baselines import ALIGNNRegressor

    X, y, _ = aza
    with pytest.raises(ValueError, match="was built with"):
        ALIGNNRegressor().make_graphs(al_graphs[:1])  # 8-neighbour graph, 12 expected
    est = ALIGNNRegressor(max_epochs=1, **AL_SMALL).fit(al_graphs[:8], y[:8])
    pred = est.predict(X[8:11])  # from Structures, batched by the wrapper
    direct = ALIGNNAtomWisePure(est.module_.alignn.config)
    direct.load_state_dict(est.module_.alignn.state_dict())
    direct.eval()
    ref = []
    with torch.no_grad():
        for s in X[8:11]:
            g, lg = build_pure_torch_graph(JarvisAtomsAdaptor.get_atoms(s), two_body_cutoff=8.0,
                                           max_neighbors=8, atom_features="cgcnn",
                                           use_matscipy_topology=False)
            ref.append(float(direct((g, lg, None))["out"]))
    ref = np.asarray(ref) * est.y_std_ + est.y_mean_
    np.testing.assert_allclose(pred, ref, rtol=0, atol=1e-4)
    assert np.ptp(pred) > 0


@needs_aza
def test_alignn_cross_val_and_beats_mean(aza, al_graphs, mean_mae):
    from mcrt_sklearn.baselines import ALIGNNRegressor

    _, y, _ = aza
    scores = cross_val_score(ALIGNNRegressor(max_epochs=1, **AL_SMALL), al_graphs[:24], y[:24],
                             cv=2, scoring="neg_mean_absolute_error")
    assert np.isfinite(scores).all()
    est = ALIGNNRegressor(max_epochs=20, lr=1e-2, **AL_SMALL).fit(al_graphs[:N_TRAIN], y[:N_TRAIN])
    mae = _mae(est.predict(al_graphs[N_TRAIN:]), y[N_TRAIN:])
    print(f"\nALIGNN (1+1 layers x 32, 8 nbrs, 20 epochs) test MAE {mae:.2f} vs mean {mean_mae:.2f}")
    assert mae < 0.8 * mean_mae


# ------------------------------------------------------- clone / pickle / save
@needs_aza
@needs_ct
@pytest.mark.parametrize("kind", ["cgcnn", "crystal_twins", "alignn"])
def test_clone_pickle_save_roundtrip(kind, aza, cg_graphs, request, tmp_path):
    from mcrt_sklearn.baselines import ALIGNNRegressor, CGCNNRegressor, CrystalTwinsRegressor

    _, y, _ = aza
    if kind == "alignn":
        pytest.importorskip("alignn")
        graphs = request.getfixturevalue("al_graphs")
        est = ALIGNNRegressor(max_epochs=1, **AL_SMALL)
    elif kind == "cgcnn":
        graphs, est = cg_graphs, CGCNNRegressor(max_epochs=1, **CG_SMALL)
    else:
        graphs = cg_graphs
        est = CrystalTwinsRegressor(max_epochs=1, batch_size=8, random_state=0)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "net_")
    est.fit(graphs[:8], y[:8])
    pred = est.predict(graphs[8:12])
    assert np.isfinite(pred).all() and np.ptp(pred) > 0
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(graphs[8:12]), pred)
    est.save(tmp_path / "m.pt")
    loaded = type(est).load(tmp_path / "m.pt")
    np.testing.assert_allclose(loaded.predict(graphs[8:12]), pred, rtol=0, atol=1e-5)
    # same seed → same model
    np.testing.assert_allclose(clone(est).fit(graphs[:8], y[:8]).predict(graphs[8:12]), pred,
                               rtol=1e-5, atol=1e-4)
