"""Screening (issue 18): conformal intervals, ensembles, GP-SOAP, ranking, landscape, suggest.

Tiny data only: synthetic features for the coverage checks, the 54-atom ROY structures of
``../shared/data`` (31, SOAP / MCRT without images) for the rest.
"""

from __future__ import annotations

import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from bench_scripts import load_script
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mcrt_sklearn.screening import (
    ConformalRegressor,
    MCRTEnsembleRegressor,
    as_samples,
    calibration_curve,
    coverage,
    interval_std,
    make_gp_soap,
    mean_width,
    normal_intervals,
    plot_landscape,
    prob_top_k,
    rank_table,
    screen,
    suggest,
)

pytest.importorskip("mapie")

TARGET = "relative_energy_kJ_per_mol"
SPECIES = ["H", "C", "N", "O", "S"]


def _synthetic(n, sigma=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + sigma * rng.normal(size=n)


# -- intervals on synthetic data with a known noise level ----------------------------------

@pytest.mark.parametrize("method", ["split", "cross"])
def test_conformal_coverage_matches_nominal_on_known_noise(method):
    sigma, level = 0.5, 0.9
    X, y = _synthetic(400, sigma, seed=1)
    Xt, yt = _synthetic(4000, sigma, seed=2)
    conf = ConformalRegressor(LinearRegression(), method=method, confidence_level=level,
                              calibration_size=0.5, random_state=0).fit(X, y)
    pred, lower, upper = conf.predict_interval(Xt)
    cov = coverage(yt, lower, upper)
    # calibration on >= 200 scores (sd of the conditional coverage ~ 0.02) + 4000 test points
    assert abs(cov - level) < 0.05, cov
    # the exact 90 % interval of N(0, sigma²) has width 2 * 1.645 * sigma
    assert mean_width(lower, upper) == pytest.approx(2 * 1.6449 * sigma, rel=0.12)
    assert np.allclose(pred, conf.predict(Xt))


def _grouped(n_groups, per_group, seed):
    """y = x·w + offset of the group + noise; features: x and a code of the group that a
    nearest-neighbour model memorises for groups it has seen, and cannot use for new ones."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=(len(g), 2))
    code = rng.normal(size=(n_groups, 4))[g] * 10.0
    y = x @ np.array([0.3, -0.3]) + rng.normal(size=n_groups)[g] + 0.2 * rng.normal(size=len(g))
    return np.hstack([x, code]), y, g


def test_group_calibration_covers_new_groups():
    from sklearn.neighbors import KNeighborsRegressor

    X, y, g = _grouped(60, 5, seed=0)
    Xt, yt, _ = _grouped(300, 3, seed=1)  # new groups only
    knn = KNeighborsRegressor(n_neighbors=3)
    plain = ConformalRegressor(knn, confidence_level=0.9, cv=5, random_state=0).fit(X, y)
    grouped = ConformalRegressor(knn, confidence_level=0.9, cv=5).fit(X, y, groups=g)
    cov_plain = coverage(yt, *plain.predict_interval(Xt)[1:])
    cov_grouped = coverage(yt, *grouped.predict_interval(Xt)[1:])
    # random folds calibrate for new members of seen groups: far too narrow for new groups
    assert cov_plain < 0.75 < 0.84 < cov_grouped < 0.97, (cov_plain, cov_grouped)


def test_calibration_curve_and_normal_intervals_with_true_sigma():
    sigma = 0.3
    rng = np.random.default_rng(0)
    mean = rng.normal(size=5000)
    y = mean + sigma * rng.normal(size=5000)
    levels = (0.5, 0.8, 0.9)
    lower, upper = normal_intervals(mean, np.full(5000, sigma), levels)
    curve = calibration_curve(y, lower, upper, levels)
    se = np.sqrt(np.array(levels) * (1 - np.array(levels)) / 5000)
    assert np.all(np.abs(np.array(curve["coverage"]) - levels) < 4 * se)
    lo, up = normal_intervals(mean, np.full(5000, sigma), 0.9)
    assert np.allclose(interval_std(lo, up, 0.9), sigma)


def test_conformal_multiple_levels_are_nested():
    X, y = _synthetic(120, seed=3)
    conf = ConformalRegressor(Ridge(), confidence_level=[0.5, 0.9], cv=4, random_state=0).fit(X, y)
    _, lower, upper = conf.predict_interval(X[:10])
    assert lower.shape == (10, 2)
    assert np.all(lower[:, 1] <= lower[:, 0]) and np.all(upper[:, 1] >= upper[:, 0])
    _, lo9, _ = conf.predict_interval(X[:10], confidence_level=0.9)
    assert np.allclose(lo9, lower[:, 1])
    with pytest.raises(ValueError, match="not fitted"):
        conf.predict_interval(X[:2], confidence_level=0.8)


def test_too_few_structures_for_the_level_is_a_clear_error():
    X, y = _synthetic(8)
    with pytest.raises(ValueError, match="too few"):
        ConformalRegressor(Ridge(), confidence_level=0.9).fit(X, y)


# -- ranking -------------------------------------------------------------------------------

def test_prob_top_k_sums_to_k_and_is_seeded():
    mean = np.linspace(0, 5, 30)
    std = np.full(30, 1.0)
    p = prob_top_k(mean, std, k=5, n_samples=2000, random_state=0)
    assert p.sum() == pytest.approx(5.0)
    assert np.array_equal(p, prob_top_k(mean, std, k=5, n_samples=2000, random_state=0))
    assert p[0] > p[10] > p[-1] >= 0
    # no spread: exactly the k lowest; properties: the k highest
    assert np.array_equal(prob_top_k(mean, 0.0, k=3), (np.arange(30) < 3).astype(float))
    assert np.array_equal(prob_top_k(mean, 0.0, k=3, lower_is_better=False),
                          (np.arange(30) >= 27).astype(float))


def test_rank_table_columns_and_order():
    table = rank_table(["a", "b", "c"], [3.0, 1.0, 2.0], [2, 0, 1], [4, 2, 3], std=[1, 1, 1],
                       top_k=2)
    assert list(table.columns[:7]) == ["id", "prediction", "lower", "upper", "std", "rank",
                                       "p_top_k"]
    assert table["id"].tolist() == ["b", "c", "a"]
    assert table["rank"].tolist() == [1, 2, 3]


# -- ensembles -----------------------------------------------------------------------------

def test_ensemble_contract_with_a_plain_regressor():
    from sklearn.ensemble import RandomForestRegressor

    X, y = _synthetic(60, seed=4)
    ens = MCRTEnsembleRegressor(RandomForestRegressor(n_estimators=5), n_ensemble=3,
                                random_state=7)
    assert ens.get_params()["n_ensemble"] == 3 and ens.get_params()["random_state"] == 7
    assert clone(ens).get_params()["estimator"].get_params()["n_estimators"] == 5
    ens.fit(X, y)
    assert [m.random_state for m in ens.estimators_] == [7, 8, 9]
    mean, std = ens.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,) and np.all(std > 0)
    again = pickle.loads(pickle.dumps(ens))
    assert np.allclose(again.predict(X[:5]), mean)


# -- on real structures (ROY, 54-atom cells) -------------------------------------------------

@pytest.fixture(scope="module")
def roy_small(shared_data):
    table = pd.read_csv(shared_data / "roy" / "properties.csv")
    table = table[table["n_atoms"] <= 54].sample(frac=1.0, random_state=1).reset_index(drop=True)
    from mcrt_sklearn.datasets import load_dataset

    ids, structures, props = load_dataset("roy", ids=table["id"].tolist())
    return ids, structures, props[TARGET].to_numpy(float), table


def test_mapie_round_trip_with_soap_pipeline(roy_small):
    from mapie.regression import CrossConformalRegressor, SplitConformalRegressor

    from mcrt_sklearn.baselines import make_krr_soap

    ids, structures, y, _ = roy_small
    X = as_samples(structures)
    assert X.shape == (len(structures),) and X[0] is structures[0]
    pipe = make_krr_soap(alpha=0.1, gamma=1e-3, species=SPECIES)
    split = SplitConformalRegressor(pipe, confidence_level=0.8, prefit=False)
    split.fit(X[:14], y[:14]).conformalize(X[14:26], y[14:26])
    pred, iv = split.predict_interval(X[26:])
    assert pred.shape == (len(X) - 26,) and iv.shape == (len(X) - 26, 2, 1)
    assert np.all(iv[:, 0, 0] <= pred) and np.all(pred <= iv[:, 1, 0])
    cross = CrossConformalRegressor(clone(pipe), confidence_level=0.8, cv=3, random_state=0)
    cross.fit_conformalize(X[:26], y[:26])
    pred, iv = cross.predict_interval(X[26:])
    assert np.all(iv[:, 1, 0] > iv[:, 0, 0])


def test_mcrt_records_and_ensemble_inside_mapie(roy_small):
    from mcrt_sklearn import MCRTFeaturizer, MCRTRegressor

    ids, structures, y, _ = roy_small
    records = MCRTFeaturizer(images=False).transform(structures[:18])
    tiny = MCRTRegressor(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8,
                         alignn_num_conv=1, use_images=False, max_epochs=1, batch_size=8,
                         accumulate=1, validation_fraction=None, lr=1e-3, random_state=0)
    ens = MCRTEnsembleRegressor(tiny, n_ensemble=2, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 1-epoch network does not converge
        conf = ConformalRegressor(ens, method="split", confidence_level=0.8,
                                  calibration_size=0.5, random_state=0).fit(records[:14], y[:14])
        pred, lower, upper = conf.predict_interval(records[14:])
        assert pred.shape == (4,) and np.all(lower < upper)
        fitted = clone(ens).fit(records[:8], y[:8])
    assert [m.random_state for m in fitted.estimators_] == [3, 4]
    mean, std = fitted.predict(records[14:], return_std=True)
    assert mean.shape == (4,) and np.all(std > 0)


def test_gp_soap_returns_std(roy_small):
    ids, structures, y, _ = roy_small
    gp = make_gp_soap(species=SPECIES).fit(structures[:16], y[:16])
    mean, std = gp.predict(structures[16:20], return_std=True)
    assert mean.shape == std.shape == (4,) and np.all(std > 0)
    assert np.all(np.isfinite(mean))


def test_suggest_never_returns_a_labelled_id():
    X, y = _synthetic(40, seed=5)
    ids = [f"s{i}" for i in range(40)]
    labelled = list(range(10))
    # the pool holds every structure, labelled ones included, and a duplicate id
    pool_ids = ids + ["s12"]
    pool = np.vstack([X, X[12:13]])
    gp = Pipeline([("scale", StandardScaler()), ("gp", make_gp_soap()[-1])])
    for est in (gp, Ridge()):
        table = suggest(est, X[labelled], y[labelled], pool, pool_ids,
                        labelled_ids=[ids[i] for i in labelled], n=8, random_state=0)
        chosen = table["id"].tolist()
        assert len(chosen) == 8 == len(set(chosen))
        assert not set(chosen) & {ids[i] for i in labelled}
        assert table.attrs["excluded_labelled"] == 11
    # asking for more than the pool holds returns the whole unlabelled pool
    table = suggest(Ridge(), X[labelled], y[labelled], pool, pool_ids,
                    labelled_ids=[ids[i] for i in labelled], n=100)
    assert sorted(table["id"]) == sorted(ids[10:])


def test_suggest_uses_a_model_fitted_before():
    X, y = _synthetic(40, seed=6)
    ids = [f"s{i}" for i in range(40)]
    lab = list(range(12))
    gp = Pipeline([("scale", StandardScaler()), ("gp", make_gp_soap()[-1])])
    kw = dict(labelled_ids=[ids[i] for i in lab], n=6, random_state=0)
    fresh = suggest(gp, X[lab], y[lab], X, ids, **kw)
    prefit = clone(gp).fit(X[lab], y[lab])
    same = suggest(gp, X[lab], y[lab], X, ids, fitted=prefit, **kw)
    pd.testing.assert_frame_equal(fresh, same)
    # the model given is the one asked: one fitted on other targets ranks otherwise
    other = clone(gp).fit(X[lab], -y[lab])
    flipped = suggest(gp, X[lab], y[lab], X, ids, fitted=other, **kw)
    assert not np.allclose(flipped["prediction"], fresh["prediction"])
    # the pool's predictions come back: every unlabelled id, the fitted model's mean
    pool = same.attrs["pool_prediction"]
    assert list(pool.index) == ids[12:]
    np.testing.assert_allclose(pool.to_numpy(), prefit.predict(X[12:]), rtol=1e-12)
    np.testing.assert_allclose(pool.loc[same["id"]].to_numpy(), same["prediction"])


def test_active_learning_campaign_reads_the_mae_from_suggest():
    bench = load_script("active_learning")
    X, y = _synthetic(60, seed=7)
    gp = Pipeline([("scale", StandardScaler()), ("gp", make_gp_soap()[-1])])
    kw = dict(init=10, batch=5, rounds=3, top=5, lower_is_better=True, kappa=1.0,
              diversity=1.0)
    curve = bench.run_campaign(X, y, None, gp, "acquisition", 0, **kw)
    assert curve["n_labels"] == [10, 15, 20, 25]
    # the same campaign, each MAE predicted afresh by a model fitted on the labels so far
    rng = np.random.default_rng(0)
    labelled = [int(i) for i in rng.choice(60, size=10, replace=False)]
    for r, mae in enumerate(curve["mae_unlabelled"]):
        rest = np.setdiff1d(np.arange(60), labelled)
        model = clone(gp).fit(X[labelled], y[labelled])
        assert mae == pytest.approx(np.abs(model.predict(X[rest]) - y[rest]).mean(), rel=1e-9)
        if r < 3:
            table = suggest(gp, X[labelled], y[labelled], X, [str(i) for i in range(60)],
                            labelled_ids=[str(i) for i in labelled], n=5, random_state=0,
                            fitted=model)
            labelled += [int(i) for i in table["id"]]


def test_landscape_figure_lists_the_known_forms(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(12)]
    pred = rng.normal(size=12)
    fig = plot_landscape(rng.uniform(1.3, 1.5, 12), pred, pred - 1, pred + 1, ids=ids,
                         top=ids[:3], known=["c4", "t1"], train_density=[1.4, 1.45],
                         train_value=[0.0, 0.5], train_ids=["t0", "t1"],
                         path=tmp_path / "landscape.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "known: c4 (predicted)" in labels and "known: t1 (computed)" in labels
    assert any(label.startswith("predicted top 3") for label in labels)
    assert any(label.startswith("training") for label in labels)
    assert (tmp_path / "landscape.png").stat().st_size > 0


def _layout(folder, table, src, drop_target=False):
    (folder / "cifs").mkdir(parents=True)
    for sid in table["id"]:
        shutil.copy(src / "cifs" / f"{sid}.cif", folder / "cifs" / f"{sid}.cif")
    (table.drop(columns=[TARGET]) if drop_target else table).to_csv(
        folder / "properties.csv", index=False)


def test_screen_skips_and_reports_bad_candidates(tmp_path, shared_data, roy_small):
    from conftest import BAD_DIR

    _, _, _, table = roy_small
    src = shared_data / "roy"
    known = table[table["type"] == "known"]["id"].tolist()
    _layout(tmp_path / "train", table.iloc[:20], src)
    cand = table.iloc[20:]
    _layout(tmp_path / "cand", cand, src)
    bad = ["truncated", "empty", "not_a_cif", "disordered", "close_atoms"]
    for name in bad:
        shutil.copy(BAD_DIR / f"{name}.cif", tmp_path / "cand" / "cifs" / f"{name}.cif")
    (tmp_path / "cand" / "cifs" / "notes.txt").write_text("not a structure")
    listed = pd.concat([cand, pd.DataFrame({"id": ["missing_cif"]})], ignore_index=True)
    listed.to_csv(tmp_path / "cand" / "properties.csv", index=False)
    out = tmp_path / "out"
    res = screen(tmp_path / "train", TARGET, tmp_path / "cand", model="GP-SOAP", known=known,
                 top_k=3, out=out, cv=4, interval=0.8, levels=(0.5, 0.8))
    ranking = pd.read_csv(out / "ranking.csv")
    assert sorted(ranking["id"]) == sorted(cand["id"])
    for col in ("id", "prediction", "lower", "upper", "rank", "p_top_k", "observed"):
        assert col in ranking
    assert ranking["p_top_k"].sum() == pytest.approx(3.0)
    skipped = dict(res.skipped["candidates"])
    assert set(bad) | {"missing_cif", "notes.txt"} <= set(skipped)
    assert "UnreadableStructureError" in skipped["truncated"]
    summary = (out / "summary.md").read_text()
    for name in bad + ["missing_cif", "notes.txt"]:
        assert f"`{name}`" in summary
    assert (out / "landscape.png").stat().st_size > 0 and (out / "calibration.png").exists()
    assert res.coverage is not None and 0.0 <= res.coverage <= 1.0
    assert "Known forms" in summary and all(f"`{k}`" in summary for k in known)


def test_cli_screen_and_suggest(tmp_path, shared_data, roy_small):
    from mcrt_sklearn.cli import main
    from mcrt_sklearn.screening import SCREEN_MODELS
    from mcrt_sklearn.screening.cli import MODEL_CHOICES

    assert tuple(MODEL_CHOICES) == tuple(SCREEN_MODELS)
    _, _, _, table = roy_small
    src = shared_data / "roy"
    _layout(tmp_path / "train", table.iloc[:16], src)
    _layout(tmp_path / "cand", table.iloc[16:], src, drop_target=True)
    known = table[table["type"] == "known"]["id"].tolist()
    common = ["--train", str(tmp_path / "train"), "--target", TARGET, "--candidates",
              str(tmp_path / "cand"), "--model", "GP-SOAP"]
    assert main(["screen", *common, "--interval", "0.8", "--cv", "4", "--top-k", "3",
                 "--known", *known, "--out", str(tmp_path / "screen")]) == 0
    ranking = pd.read_csv(tmp_path / "screen" / "ranking.csv")
    assert len(ranking) == len(table) - 16 and "observed" not in ranking
    assert (tmp_path / "screen" / "landscape.png").exists()
    assert not (tmp_path / "screen" / "calibration.png").exists()  # no targets to check
    assert main(["suggest", *common, "--n", "3", "--out", str(tmp_path / "next")]) == 0
    chosen = pd.read_csv(tmp_path / "next" / "suggestions.csv")["id"].tolist()
    assert len(chosen) == 3 and not set(chosen) & set(table["id"].iloc[:16])


def test_active_learning_campaigns_are_claimed_once(tmp_path):
    import subprocess
    import sys

    bench = load_script("active_learning")
    campaign = tmp_path / "roy__GP-SOAP__random__0.json"
    assert bench.claim(campaign)
    assert not bench.claim(campaign)  # held by a live process (this one)
    bench.release(campaign)
    assert bench.claim(campaign)
    # a lock left by a process that died is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lock = campaign.with_suffix(".lock")
    host = lock.read_text().split()[0]
    lock.write_text(f"{host} {dead}")
    assert bench.claim(campaign)
    # another host's lock is never taken over
    lock.write_text(f"{host}-elsewhere {dead}")
    assert not bench.claim(campaign)
