"""The benchmark harness: metrics, shared folds, resumability, end-to-end on real crystals.

The end-to-end runs use 20 (and 16) real azaphenacenes with tiny settings: the numbers are
meaningless, the test checks the plumbing (same folds for every model, files written,
finished folds skipped on a second call, changed settings re-run).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_scripts import load_script
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from mcrt_sklearn import benchmark
from mcrt_sklearn.benchmark import (
    benchmark_main,
    default_settings,
    finetune_settings,
    make_folds,
    markdown_table,
    merge_settings,
    regression_metrics,
    run_benchmark,
    run_few_shot,
    subsample_training,
    summarize,
    top_k_recovery,
    within_group_spearman,
)
from mcrt_sklearn.versions import VERSIONS, git_revision, versions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- metrics


def test_top_k_recovery_perfect_reversed_and_partial():
    y = np.arange(20, dtype=float)
    assert top_k_recovery(y, y, k=10) == 10
    assert top_k_recovery(y, -y, k=10) == 0  # best predicted are the worst true
    # lowest 10 true = 0..9; predictions put 3 of them (7, 8, 9) outside the predicted top 10
    pred = y.copy()
    pred[[7, 8, 9]] = [50, 51, 52]
    assert top_k_recovery(y, pred, k=10) == 7
    assert top_k_recovery(y, pred, k=3) == 3


def test_top_k_recovery_direction():
    y = np.arange(20, dtype=float)
    pred = y.copy()
    pred[[7, 8, 9]] = [50, 51, 52]  # now 3 low structures are predicted to be the highest
    assert top_k_recovery(y, pred, k=10, lower_is_better=False) == 7  # 10..16 of 10..19
    assert top_k_recovery(y, -y, k=5, lower_is_better=False) == 0
    assert top_k_recovery(y, y, k=5, lower_is_better=False) == 5


def test_top_k_recovery_small_sets_and_errors():
    assert top_k_recovery([3.0, 1.0, 2.0], [0.0, 5.0, 1.0], k=10) == 3  # k capped at n
    assert top_k_recovery([3.0, 1.0, 2.0], [0.0, 5.0, 1.0], k=1) == 0  # best true is index 1
    with pytest.raises(ValueError):
        top_k_recovery([1.0, 2.0], [1.0], k=1)
    with pytest.raises(ValueError):
        top_k_recovery([1.0, 2.0], [1.0, 2.0], k=0)


def test_regression_metrics_match_references():
    rng = np.random.default_rng(0)
    y = rng.normal(size=40)
    p = y + rng.normal(scale=0.5, size=40)
    m = regression_metrics(y, p, k=10)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["spearman"] == pytest.approx(spearmanr(y, p).statistic)
    assert m["topk"] == top_k_recovery(y, p, 10) and m["k"] == 10 and m["n"] == 40
    const = regression_metrics(y, np.full_like(y, y.mean()))
    assert np.isnan(const["spearman"]) and const["r2"] == pytest.approx(0.0)


def test_within_group_spearman_ranks_inside_groups_only():
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1, 2], 6)
    y = rng.normal(size=18) + 10.0 * groups
    # right order inside every group, group offsets reversed: overall ρ < 0, within ρ = 1
    p = y - 20.0 * groups
    assert spearmanr(y, p).statistic < 0
    assert within_group_spearman(y, p, groups) == (pytest.approx(1.0), 3)
    assert within_group_spearman(y, -p, groups) == (pytest.approx(-1.0), 3)
    # constant predictions in one group count as 0; a group below min_size is left out
    flat = p.copy()
    flat[groups == 2] = 3.0
    assert within_group_spearman(y, flat, groups) == (pytest.approx(2.0 / 3.0), 3)
    small = np.where(np.arange(18) < 3, 9, groups)  # group 9: 3 structures; group 0: 3 left
    assert within_group_spearman(y, p, small)[1] == 2
    # constant truth in a group leaves it out; no qualifying group gives NaN and 0
    y_const = y.copy()
    y_const[groups == 1] = 1.0
    assert within_group_spearman(y_const, p, groups)[1] == 2
    rho, n = within_group_spearman(y[:4], p[:4], groups[:4])
    assert np.isnan(rho) and n == 0
    with pytest.raises(ValueError, match="equal shapes"):
        within_group_spearman(y, p, groups[:-1])


def test_table_shows_within_group_column_only_when_every_model_has_it():
    def fold(rho=None):
        m = {"mae": 1.0, "rmse": 1.5, "r2": 0.1, "spearman": 0.2, "topk": 3, "k": 10, "n": 20}
        if rho is not None:
            m["spearman_within_group"] = rho
        return {"metrics": m, "fit_seconds": 1.0, "device": "cpu"}

    results = {"dataset": "d", "target": "t", "target_transform": None, "n_structures": 40,
               "n_folds": 2, "group": "g", "top_k": 10, "lower_is_better": True,
               "settings": {"fast": True, "featurizer": {"image_mode": "fast"}}, "models": []}
    grouped = summarize({"A": [fold(0.5), fold(0.1)], "B": [fold(-0.2), fold(0.0)]})
    assert grouped["A"]["spearman_within_group"]["mean"] == pytest.approx(0.3)
    table = markdown_table({**results, "summary": grouped})
    assert "ρ within group" in table.splitlines()[2]
    assert "| A | 1.00 | 1.50 | 0.100 | 0.200 | 0.300 ± 0.200 | 3.0 / 10 |" in table
    assert all(line.count("|") == 10 for line in table.splitlines()[2:6])
    assert "learnt little" not in table
    # a fold whose fit warned is named under the table
    warned = fold(0.2)
    warned.update(fold=3, fit_warnings=["MCRTRegressor: ... collapsed to the mean ..."])
    flagged = summarize({"A": [{**fold(0.5), "fold": 0}, warned]})
    assert flagged["A"]["warned_folds"] == [3]
    assert "learnt little" in markdown_table({**results, "summary": flagged})
    assert "A (fold3)" in markdown_table({**results, "summary": flagged})
    plain = summarize({"A": [fold(0.5), fold()]})  # one fold lacks it: no column
    assert "spearman_within_group" not in plain["A"]
    assert "within group" not in markdown_table({**results, "summary": plain})


def test_pretrained_starts_get_their_own_finetuning_settings():
    fast = default_settings(fast=True)
    assert finetune_settings("MCRTp", fast)["lr"] == 1e-3
    assert finetune_settings("MCRT", fast)["lr"] == 1e-4
    assert finetune_settings("MCRTi", fast)["lr"] == 1e-4  # pre-trained without images
    fresh_i = merge_settings(fast, {"MCRTi": {"pretrained": False}})
    assert finetune_settings("MCRTi", fresh_i)["lr"] == 1e-3
    assert finetune_settings("MCRT", fast)["max_epochs"] == fast["finetune"]["max_epochs"]
    # the fold key changes with it, so a cached lr-1e-3 MCRT fold is re-run
    s3 = merge_settings(fast, {"finetune_pretrained": {"lr": 1e-3}})
    assert benchmark._model_spec("MCRT", fast) != benchmark._model_spec("MCRT", s3)
    assert benchmark._model_spec("MCRTp", fast) == benchmark._model_spec("MCRTp", s3)
    paper = default_settings()
    assert finetune_settings("MCRT", paper) == paper["finetune"]
    # the table's settings line names the pre-trained starts' lr when it differs
    results = {"settings": fast, "models": ["MCRT", "MCRTp"], "pretrain_on": "corpus",
               "pretraining": {"True": {"n_structures": 200}}}
    line = benchmark.settings_line(results)
    assert "lr 0.001" in line and "(lr 0.001, batch 8; pre-trained ones lr 0.0001, lr_mult 10)" in line
    assert "pre-trained ones" not in benchmark.settings_line({**results, "settings": paper})


def test_guess_direction():
    assert benchmark.guess_lower_is_better("lattice_energy_kJ_per_mol")
    assert benchmark.guess_lower_is_better("relative_energy_kJ_per_mol")
    assert not benchmark.guess_lower_is_better("electron_mobility_cm2_per_V_s")


# --------------------------------------------------------------------------- folds, settings


def test_folds_partition_and_groups():
    folds = make_folds(23, 5, random_state=1)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == list(range(23))
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == 23
    assert [list(te) for _, te in make_folds(23, 5, random_state=1)] == [list(te) for _, te in folds]
    groups = np.repeat(np.arange(6), 4)
    for tr, te in make_folds(24, 3, groups=groups):
        assert not set(groups[tr]) & set(groups[te])
    [(tr, te)] = make_folds(50, "split", random_state=0)
    assert len(te) == 10 and len(tr) == 40
    with pytest.raises(ValueError):
        make_folds(10, 3, groups=np.array([0, 1] * 5))


def test_paper_protocol_folds():
    folds = make_folds(100, "paper", random_state=3)
    assert len(folds) == benchmark.PAPER_PROTOCOL["repeats"] == 5
    for tr, te in folds:
        assert len(te) == 10 and len(tr) == 90
        assert sorted(np.concatenate([tr, te])) == list(range(100))
    assert len({tuple(sorted(te)) for _, te in folds}) == 5  # five different test sets
    again = make_folds(100, "paper", random_state=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    with pytest.raises(ValueError, match="random split"):
        make_folds(100, "paper", groups=np.arange(100) % 4)
    args = benchmark.build_benchmark_parser().parse_args(
        ["--dataset", "roy", "--target", "t", "--protocol", "paper"])
    assert args.protocol == "paper"


def test_subsample_training_keeps_the_tests_and_nests_the_sizes():
    folds = make_folds(100, "paper", random_state=0)
    half = subsample_training(folds, 0.5, random_state=0)
    quarter = subsample_training(folds, 0.25, random_state=0)
    for (tr, te), (h_tr, h_te), (q_tr, q_te) in zip(folds, half, quarter):
        assert np.array_equal(te, h_te) and np.array_equal(te, q_te)
        assert len(h_tr) == 45 and len(q_tr) == 22  # round(0.25 * 90) = 22
        assert set(q_tr) <= set(h_tr) <= set(tr)  # a smaller part is within a larger one
    # seeded: the same call gives the same part, another seed another one
    again = subsample_training(folds, 0.5, random_state=0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(half, again))
    other = subsample_training(folds, 0.5, random_state=1)
    assert not np.array_equal(half[0][0], other[0][0])
    # folds of one run get different draws, not the same positions of their parts
    assert not np.array_equal(np.searchsorted(folds[0][0], half[0][0]),
                              np.searchsorted(folds[1][0], half[1][0]))
    assert subsample_training(folds, None)[0][0].tolist() == folds[0][0].tolist()
    assert subsample_training(folds, 1.0)[2][0].tolist() == folds[2][0].tolist()
    assert len(subsample_training(folds, 0.001)[0][0]) == 1
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="train_fraction"):
            subsample_training(folds, bad)
    args = benchmark.build_benchmark_parser().parse_args(
        ["--dataset", "roy", "--target", "t", "--train-fraction", "0.25"])
    assert args.train_fraction == 0.25


def test_learning_curve_point_end_to_end(shared_data, tmp_path):
    kw = dict(models=["TrainMean"], cv=2, out_dir=tmp_path, data_home=shared_data,
              verbose=False)
    full = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                         settings=TINY, **kw)
    part = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                         settings={**TINY, "train_fraction": 0.5}, **kw)
    # its own folder: the full run's folds are not replaced
    assert part["run_dir"].endswith("azaphenacenes-lattice_energy_kJ_per_mol-train0.5")
    assert full["run_dir"] != part["run_dir"]
    rf = [json.loads(p.read_text()) for p in sorted(
        (Path(full["run_dir"]) / "folds" / "TrainMean").glob("fold*.json"))]
    rp = [json.loads(p.read_text()) for p in sorted(
        (Path(part["run_dir"]) / "folds" / "TrainMean").glob("fold*.json"))]
    for a, b in zip(rf, rp):
        assert a["test_ids"] == b["test_ids"]  # the same test structures
        assert b["n_train"] == round(a["n_train"] / 2)
        assert a["key"] != b["key"]
    assert "learning-curve point" in markdown_table(part)
    with pytest.raises(ValueError, match="train_fraction"):
        run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                      settings={**TINY, "train_fraction": 2.0}, **kw)
    with pytest.raises(ValueError, match="train_fraction"):
        run_few_shot("azaphenacenes", "lattice_energy_kJ_per_mol", "group", models=["TrainMean"],
                     shots=[0, 5], out_dir=tmp_path, data_home=shared_data,
                     settings={**TINY, "train_fraction": 0.5}, verbose=False)


def test_learning_curve_report(shared_data, tmp_path):
    lc = load_script("learning_curve")
    a, b = lc.power_law(np.array([100.0, 200.0, 400.0]), 12.0 * np.array([100.0, 200, 400]) ** -0.4)
    assert a == pytest.approx(12.0) and b == pytest.approx(0.4)
    # 10 n^-0.2 and 20 n^-0.4 meet where n^0.2 = 2: n = 32
    assert lc.crossing((10.0, 0.2), (20.0, 0.4)) == pytest.approx(32.0)
    assert lc.crossing((10.0, 0.2), (20.0, 0.2)) is None
    # two points of one run, read back from the fold files the benchmark wrote
    kw = dict(models=["TrainMean", "RF-SOAP"], cv=2, out_dir=tmp_path, data_home=shared_data,
              verbose=False)
    runs = [run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                          settings={**TINY, "train_fraction": f}, **kw)["run_dir"]
            for f in (0.5, 1.0)]
    assert lc.main(["--run", runs[0], "--run", f"RF-SOAP={runs[1]}", "--out", str(tmp_path)]) == 0
    curves = json.loads((tmp_path / "learning_curve.json").read_text())["curves"]
    assert [p["n_train"] for p in curves["RF-SOAP"]["points"]] == [5, 10]
    assert len(curves["TrainMean"]["points"]) == 1 and curves["TrainMean"]["power_law"] is None
    maes = [json.loads(p.read_text())["metrics"]["mae"]
            for p in sorted((Path(runs[1]) / "folds" / "RF-SOAP").glob("fold*.json"))]
    assert curves["RF-SOAP"]["points"][1]["mae_mean"] == pytest.approx(np.mean(maes))
    assert "| RF-SOAP |" in (tmp_path / "learning_curve.md").read_text()
    # points measured on other test structures are not one curve
    other = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                          settings={**TINY, "train_fraction": 0.5}, random_state=1,
                          **{**kw, "out_dir": tmp_path / "seed1"})["run_dir"]
    with pytest.raises(ValueError, match="different test structures"):
        lc.main(["--run", other, "--run", runs[1], "--out", str(tmp_path)])


def test_mcrta_is_the_absolute_positional_variant():
    s = default_settings(fast=True)
    spec = benchmark._model_spec("MCRTa", s)
    assert spec["positional"] == "absolute" and "pretrain" not in spec
    assert spec != benchmark._model_spec("MCRTp", s)
    assert "MCRTa" in benchmark.MODELS
    # the recipe's version is part of every MCRT fold key: a new recipe refits
    assert all("training-recipe" in benchmark.model_components(m, s)
               for m in benchmark.MCRT_MODELS)


def test_settings_merge_and_cli_overrides():
    s = merge_settings(default_settings(fast=True), {"finetune": {"max_epochs": 3}, "top_k": 5})
    assert s["finetune"]["max_epochs"] == 3 and s["finetune"]["lr"] == 1e-3 and s["top_k"] == 5
    assert default_settings()["mcrt"]["hid_dim"] == 768  # paper default untouched
    assert default_settings(fast=True)["featurizer"]["image_mode"] == "fast"
    sets = benchmark._parse_sets(["finetune.max_epochs=20", "target_transform=log10",
                                  "featurizer.images=false"])
    assert sets == {"finetune": {"max_epochs": 20}, "target_transform": "log10",
                    "featurizer": {"images": False}}


# --------------------------------------------------------------------------- end to end

TINY = {
    "max_structures": 20,
    "featurizer": {"images": False},
    "pretrain": {"max_structures": 6, "max_epochs": 1},
    "finetune": {"max_epochs": 1, "batch_size": 10},
    "RF-SOAP": {"n_estimators": 20},
}


@pytest.fixture(autouse=True)
def _tiny_networks_on_one_thread(one_torch_thread):
    """The tiny networks are slower with several threads on a busy machine."""


@pytest.fixture
def count_builds(monkeypatch):
    """Counts model constructions (one per fold actually fitted)."""
    calls = []
    original = benchmark._ModelFactory.build

    def build(self, name):
        calls.append(name)
        return original(self, name)

    monkeypatch.setattr(benchmark._ModelFactory, "build", build)
    return calls


def test_paper_protocol_end_to_end(shared_data, tmp_path):
    res = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", models=["MCRTi", "TrainMean"],
                        cv="paper", fast=True, out_dir=tmp_path, data_home=shared_data,
                        settings={**TINY, "MCRTi": {"pretrained": False}}, verbose=False)
    assert res["n_folds"] == 5 and res["cv"] == "paper"
    # the networks select their epoch on a validation tenth of the whole set
    assert res["settings"]["finetune"]["validation_fraction"] == pytest.approx(1 / 9)
    for gnn in ("CGCNN", "CrystalTwins", "ALIGNN"):  # and so do the graph baselines
        assert res["settings"][gnn]["validation_fraction"] == pytest.approx(1 / 9)
    assert np.isfinite(res["summary"]["MCRTi"]["mae"]["mean"])
    assert "the paper's protocol (random 80/10/10 train/validation/test, 5 seeds)" in \
        markdown_table(res)


def test_end_to_end_resumable(shared_data, tmp_path, count_builds):
    kw = dict(models=["RF-SOAP", "MCRTi"], cv=2, fast=True, out_dir=tmp_path,
              data_home=shared_data, settings=TINY, verbose=False)
    res = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", **kw)
    run_dir = tmp_path / "azaphenacenes-lattice_energy_kJ_per_mol"
    assert res["run_dir"] == str(run_dir)
    assert sorted(count_builds) == ["MCRTi", "MCRTi", "RF-SOAP", "RF-SOAP"]
    assert len(res["fitted"]) == 4 and res["skipped"] == []

    stored = json.loads((run_dir / "results.json").read_text())
    assert stored["n_structures"] == 20 and stored["n_folds"] == 2
    assert stored["settings"]["finetune"]["max_epochs"] == 1  # settings actually used
    assert stored["settings"]["featurizer"]["image_mode"] == "fast"
    assert stored["pretraining"]["without_images"]["n_structures"] == 6
    for model in ("RF-SOAP", "MCRTi"):
        e = stored["summary"][model]
        assert e["n_folds"] == 2 and np.isfinite(e["mae"]["mean"]) and e["mae"]["mean"] > 0
        assert 0 <= e["topk"]["mean"] <= e["k"]
    # both models were scored on the same folds
    folds = json.loads((run_dir / "folds.json").read_text())["folds"]
    for model in ("RF-SOAP", "MCRTi"):
        for f in range(2):
            r = json.loads((run_dir / "folds" / model / f"fold{f}.json").read_text())
            assert r["test_ids"] == folds[f]["test"]
            assert r["metrics"]["mae"] == pytest.approx(
                np.mean(np.abs(np.subtract(r["y_pred"], r["y_true"]))))
            # what made it: the model's algorithm versions and the code revision
            assert r["provenance"]["versions"] == versions(
                *benchmark.model_components(model, stored["settings"]))
            assert r["provenance"]["git_revision"] == git_revision()
            # the network's epochs (the forest has none)
            if model == "MCRTi":
                assert r["training"]["epochs_run"] == 1 == r["training"]["best_epoch"]
                assert len(r["training"]["train_loss"]) == 1
                assert np.isfinite(r["training"]["train_loss"][0])
            else:
                assert "training" not in r
    assert stored["environment"]["versions"] == dict(VERSIONS)
    assert stored["environment"]["git_revision"] == git_revision()
    md = (run_dir / "results.md").read_text()
    assert "| RF-SOAP |" in md and "| MCRTi |" in md and md == markdown_table(stored) + "\n"
    for png in ("parity.png", "radar.png"):
        data = (run_dir / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000

    assert "| device |" in md and md.count("| cpu |") == 2

    # second run, with another n_jobs (speed only): nothing is fitted again, numbers
    # identical, and the cached pre-training is still reported
    count_builds.clear()
    again = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", **{
        **kw, "settings": merge_settings(TINY, {"featurizer": {"n_jobs": 2}})})
    assert count_builds == [] and again["fitted"] == [] and len(again["skipped"]) == 4
    assert again["summary"]["MCRTi"]["mae"] == stored["summary"]["MCRTi"]["mae"]
    assert again["pretraining"] == stored["pretraining"]

    # a lost fold result is recomputed alone; a changed setting re-runs that model only
    (run_dir / "folds" / "MCRTi" / "fold1.json").unlink()
    kw["settings"] = merge_settings(TINY, {"RF-SOAP": {"n_estimators": 10}})
    third = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", **kw)
    assert sorted(count_builds) == ["MCRTi", "RF-SOAP", "RF-SOAP"]
    assert sorted(third["skipped"]) == [("MCRTi", 0)]


def test_only_some_folds_then_the_rest(shared_data, tmp_path, count_builds):
    """Folds shared between runs (machines): each fits its own, the last sees them all."""
    kw = dict(models=["RF-SOAP"], cv=3, fast=True, out_dir=tmp_path, data_home=shared_data,
              settings=TINY, verbose=False)
    first = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", only_folds=[2], **kw)
    assert first["fitted"] == [("RF-SOAP", 2)] and first["summary"]["RF-SOAP"]["n_folds"] == 1
    assert "| RF-SOAP (1 of 3) |" in markdown_table(first)
    run_dir = tmp_path / "azaphenacenes-lattice_energy_kJ_per_mol"
    assert sorted(p.name for p in (run_dir / "folds" / "RF-SOAP").iterdir()) == ["fold2.json"]
    rest = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", **kw)
    assert rest["fitted"] == [("RF-SOAP", 0), ("RF-SOAP", 1)]
    assert rest["skipped"] == [("RF-SOAP", 2)] and rest["summary"]["RF-SOAP"]["n_folds"] == 3
    assert "| RF-SOAP |" in markdown_table(rest)
    assert count_builds == ["RF-SOAP"] * 3
    with pytest.raises(ValueError, match="only_folds"):
        run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", only_folds=[3], **kw)


def test_cli_on_a_folder(shared_data, tmp_path, capsys):
    """``--data DIR`` with a custom properties.csv, log10 target, grouped split."""
    src = shared_data / "azaphenacenes"
    table = pd.read_csv(src / "properties.csv").head(16)
    data = tmp_path / "mini"
    (data / "cifs").mkdir(parents=True)
    for sid in table["id"]:
        shutil.copy(src / "cifs" / f"{sid}.cif", data / "cifs")
    table["grp"] = np.arange(16) % 4
    table.to_csv(data / "properties.csv", index=False)
    rc = benchmark_main(["--data", str(data), "--target", "electron_mobility_cm2_per_V_s",
                         "--log10", "--group", "grp", "--cv", "split", "--models", "RF-SOAP",
                         "TrainMean", "TrainMedian", "--fast", "--set", "RF-SOAP.n_estimators=10", "--out",
                         str(tmp_path / "out"), "--no-plots"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| RF-SOAP |" in out and "top-10" in out
    res = json.loads((tmp_path / "out" / "mini-electron_mobility_cm2_per_V_s-log10" /
                      "results.json").read_text())
    assert res["target_transform"] == "log10" and res["lower_is_better"] is False
    assert "spearman_within_group" in res["summary"]["RF-SOAP"]  # grouped run
    fold = json.loads((tmp_path / "out" / "mini-electron_mobility_cm2_per_V_s-log10" / "folds" /
                       "RF-SOAP" / "fold0.json").read_text())
    y = np.log10(table.set_index("id").loc[fold["test_ids"], "electron_mobility_cm2_per_V_s"])
    assert np.allclose(fold["y_true"], y)
    test_groups = set(table.set_index("id").loc[fold["test_ids"], "grp"])
    train_ids = set(table["id"]) - set(fold["test_ids"])
    assert not test_groups & set(table.set_index("id").loc[sorted(train_ids), "grp"])
    # the constant references predict the training fold's mean / median of the target
    y_train = np.log10(table.set_index("id").loc[sorted(train_ids),
                                                 "electron_mobility_cm2_per_V_s"])
    run = tmp_path / "out" / "mini-electron_mobility_cm2_per_V_s-log10" / "folds"
    for model, centre in (("TrainMean", y_train.mean()), ("TrainMedian", np.median(y_train))):
        ref = json.loads((run / model / "fold0.json").read_text())
        assert np.allclose(ref["y_pred"], centre)
        # a constant prediction has no ranking: ρ and top-k are undefined, not 0 or chance
        assert np.isnan(ref["metrics"]["spearman"]) and np.isnan(ref["metrics"]["topk"])
        assert f"| {model} |" in out
    assert "| TrainMean |" in out and out.count("n/a / ") == 2  # top-k of both


def test_unknown_model_and_target(shared_data, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", models=["GPT"],
                      out_dir=tmp_path, data_home=shared_data)
    with pytest.raises(KeyError, match="not a column"):
        run_benchmark("azaphenacenes", "nope", models=["RF-SOAP"], out_dir=tmp_path,
                      data_home=shared_data, settings={"max_structures": 4}, verbose=False)


def test_few_shot_splits_are_nested_and_fixed():
    groups = np.array([0] * 12 + [1] * 5 + [2] * 9)
    ids = [f"s{i}" for i in range(len(groups))]
    sp = benchmark.few_shot_splits(ids, groups, shots=(0, 3, 6), min_test=3)
    assert sorted(sp) == [0, 2]  # group 1 is too small (needs 6 + 3)
    for g, part in sp.items():
        members = set(np.flatnonzero(groups == g))
        assert set(part["pool"]) | set(part["test"]) == members
        assert not set(part["pool"]) & set(part["test"]) and len(part["pool"]) == 6
        assert set(part["base"]) == set(range(len(groups))) - members
    with pytest.raises(ValueError, match="group 1"):
        benchmark.few_shot_splits(ids, groups, shots=(0, 6), min_test=3, target_groups=[1])


def _mini_grouped_dataset(shared_data, tmp_path, edit=None):
    """A folder dataset of 18 azaphenacenes in three groups of 6 (column ``grp``);
    ``edit(table)`` may change the table before it is written. Returns (folder, table)."""
    src = shared_data / "azaphenacenes"
    table = pd.read_csv(src / "properties.csv").head(18)
    data = tmp_path / "mini"
    (data / "cifs").mkdir(parents=True)
    for sid in table["id"]:
        shutil.copy(src / "cifs" / f"{sid}.cif", data / "cifs")
    table["grp"] = [0] * 6 + [1] * 6 + [2] * 6
    if edit is not None:
        edit(table)
    table.to_csv(data / "properties.csv", index=False)
    return data, table


def test_few_shot_end_to_end(shared_data, tmp_path, count_builds):
    data, table = _mini_grouped_dataset(shared_data, tmp_path)
    kw = dict(models=["RF-SOAP", "MCRTi"], shots=(0, 2), target_groups=[1], min_test=3,
              fast=True, out_dir=tmp_path / "out", settings=TINY, verbose=False,
              pretrain_on=data)
    res = benchmark.run_few_shot(data, "lattice_energy_kJ_per_mol", "grp", **kw)
    # MCRTi: one stage-1 model reused for 0 and 2 shots; RF refitted per shot count
    assert sorted(count_builds) == ["MCRTi", "RF-SOAP", "RF-SOAP"]
    assert len(res["fitted"]) == 4
    run_dir = tmp_path / "out" / "mini-lattice_energy_kJ_per_mol"
    for f in ("few_shot.json", "few_shot.md", "few_shot.png"):
        assert (run_dir / f).is_file()
    r0 = json.loads((run_dir / "few_shot" / "MCRTi" / "g1_n0.json").read_text())
    r2 = json.loads((run_dir / "few_shot" / "MCRTi" / "g1_n2.json").read_text())
    assert r0["test_ids"] == r2["test_ids"] and len(r0["test_ids"]) == 4
    assert set(r0["test_ids"]) <= set(table["id"][6:12])
    count_builds.clear()
    again = benchmark.run_few_shot(data, "lattice_energy_kJ_per_mol", "grp", **kw)
    assert count_builds == [] and len(again["skipped"]) == 4
    assert "ShotMean" not in again["summary"]
    # with TrainMean: a ShotMean row, the mean of the n shots predicted for the group
    ref = benchmark.run_few_shot(data, "lattice_energy_kJ_per_mol", "grp",
                                 **{**kw, "models": ["TrainMean"]})
    y = table.set_index("id")["lattice_energy_kJ_per_mol"]
    y_test = y.loc[r2["test_ids"]].to_numpy()
    shots = sorted(set(table["id"][6:12]) - set(r2["test_ids"]))  # the pool: 2 shots
    assert len(shots) == 2
    mae2 = np.mean(np.abs(y_test - y.loc[shots].mean()))
    assert ref["summary"]["ShotMean"]["2"]["mae"] == pytest.approx(mae2)
    mae0 = np.mean(np.abs(y_test - y.loc[list(table["id"][:6]) + list(table["id"][12:])].mean()))
    assert ref["summary"]["ShotMean"]["0"]["mae"] == pytest.approx(mae0)
    assert "| ShotMean |" in (run_dir / "few_shot.md").read_text()


def test_few_shot_leaves_out_non_finite_targets_as_cv_does(shared_data, tmp_path):
    """Few-shot shares the run setup of CV: a NaN or infinite target is dropped before the
    groups are split (it would otherwise be a shot, a test structure or a base target)."""
    target = "lattice_energy_kJ_per_mol"

    def non_finite(table):  # one in the base, one in the target group
        table.loc[[0, 7], target] = [np.inf, np.nan]

    data, table = _mini_grouped_dataset(shared_data, tmp_path, non_finite)
    bad = {table["id"][0], table["id"][7]}
    res = benchmark.run_few_shot(data, target, "grp", models=["TrainMean"], shots=(0, 2),
                                 target_groups=[1], min_test=3, fast=True,
                                 out_dir=tmp_path / "out", plots=False, verbose=False)
    run_dir = tmp_path / "out" / "mini-lattice_energy_kJ_per_mol"
    rows = [json.loads((run_dir / "few_shot" / "TrainMean" / f"g1_n{n}.json").read_text())
            for n in (0, 2)]
    for r in rows:
        assert not bad & set(r["test_ids"]) and len(r["test_ids"]) == 3  # 5 left, 2 shots
        assert np.all(np.isfinite(r["y_true"])) and np.all(np.isfinite(r["y_pred"]))
        assert r["n_base"] == 11  # 12 other structures, one of them infinite
    for model in ("TrainMean", "ShotMean"):
        assert all(np.isfinite(res["summary"][model][n]["mae"]) for n in ("0", "2"))
    # the 0-shot mean is that of the finite base targets
    y = table.set_index("id")[target]
    base = [i for i in table["id"] if i not in set(table["id"][6:12]) | bad]
    y_test = y.loc[rows[0]["test_ids"]].to_numpy()
    assert res["summary"]["ShotMean"]["0"]["mae"] == pytest.approx(
        np.mean(np.abs(y_test - y.loc[base].mean())))


def test_interval_columns_coverage_and_unchanged_keys_without(shared_data, tmp_path):
    """``--interval 0.9``: every fold's model inside MAPIE CV+, calibrated by group when the
    run is grouped; folds store the bounds, coverage and width; runs without intervals keep
    their keys."""
    from mcrt_sklearn.benchmark.intervals import interval_settings
    from mcrt_sklearn.screening.intervals import coverage, mean_width

    kw = dict(models=["TrainMean", "RF-SOAP"], cv=2, fast=True, out_dir=tmp_path,
              data_home=shared_data, group="group", plots=False, verbose=False)
    settings = merge_settings(TINY, {"max_structures": 40, "interval": interval_settings(0.9)})
    res = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", settings=settings, **kw)
    run_dir = tmp_path / "azaphenacenes-lattice_energy_kJ_per_mol"
    for model in ("TrainMean", "RF-SOAP"):
        for f in range(2):
            r = json.loads((run_dir / "folds" / model / f"fold{f}.json").read_text())
            lo, hi, yt = map(np.asarray, (r["lower"], r["upper"], r["y_true"]))
            assert np.all(lo <= hi) and len(lo) == len(yt)
            assert r["metrics"]["coverage"] == pytest.approx(coverage(yt, lo, hi))
            assert r["metrics"]["width"] == pytest.approx(mean_width(lo, hi))
            assert r["metrics"]["width"] > 0
            assert r["estimator"]["class"] == "ConformalRegressor"
        e = res["summary"][model]
        assert 0.0 <= e["coverage"]["mean"] <= 1.0
    md = (run_dir / "results.md").read_text()
    assert "coverage (0.9)" in md and "interval width" in md
    # the same run without intervals: other keys (refitted), and no interval columns
    plain = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                          settings=merge_settings(TINY, {"max_structures": 40}), **kw)
    assert len(plain["fitted"]) == 4 and "coverage" not in plain["summary"]["TrainMean"]
    assert "coverage" not in (run_dir / "results.md").read_text()
    args = benchmark.build_benchmark_parser().parse_args(["--dataset", "d", "--target", "t",
                                                          "--interval", "0.8"])
    assert args.interval == 0.8
    with pytest.raises(ValueError, match="confidence level"):
        interval_settings(1.5)


def test_split_conformal_intervals_fit_once_per_fold_under_their_own_keys(shared_data,
                                                                          tmp_path):
    """``--interval-method split``: one fit per fold on 80 % of its training part, the other
    20 % calibrating; the fold stores the method; other keys than the CV+ run's, whose
    settings stay as they were."""
    from mcrt_sklearn.benchmark.intervals import interval_settings

    assert interval_settings(0.9) == {"confidence_level": 0.9, "method": "cross", "cv": 5}
    split = interval_settings(0.9, method="split")
    assert split == {"confidence_level": 0.9, "method": "split", "calibration_size": 0.2}
    kw = dict(models=["TrainMean"], cv=2, fast=True, out_dir=tmp_path, data_home=shared_data,
              plots=False, verbose=False)
    run_dir = tmp_path / "azaphenacenes-lattice_energy_kJ_per_mol"
    run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                  settings=merge_settings(TINY, {"max_structures": 120, "interval": split}), **kw)
    r = json.loads((run_dir / "folds" / "TrainMean" / "fold0.json").read_text())
    assert r["estimator"]["params"]["method"] == "split"
    assert r["estimator"]["params"]["calibration_size"] == 0.2
    assert 0.0 <= r["metrics"]["coverage"] <= 1.0 and r["metrics"]["width"] > 0
    cross = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                          settings=merge_settings(TINY, {"max_structures": 120,
                                                         "interval": interval_settings(0.9)}),
                          **kw)
    assert len(cross["fitted"]) == 2  # nothing reused from the split run
    args = benchmark.build_benchmark_parser().parse_args(
        ["--dataset", "d", "--target", "t", "--interval", "0.9", "--interval-method", "split"])
    assert args.interval_method == "split"
    with pytest.raises(ValueError, match="'cross' or 'split'"):
        interval_settings(0.9, method="jackknife")
    with pytest.raises(ValueError, match="calibration_size"):
        interval_settings(0.9, method="split", calibration_size=1.0)


def test_grouped_run_can_validate_mcrt_on_whole_groups(shared_data, tmp_path, monkeypatch):
    """``--set finetune.validation_split=groups``: the MCRT variants' best epoch is picked
    on held-out training groups (the fold's groups are passed to fit); other keys than the
    random validation's."""
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    seen = []
    original = MCRTRegressor.fit

    def fit(self, X, y, groups=None):
        seen.append((self.validation_split, None if groups is None else len(set(groups))))
        return original(self, X, y, groups=groups)

    monkeypatch.setattr(MCRTRegressor, "fit", fit)
    settings = merge_settings(TINY, {"max_structures": 40, "MCRTi": {"pretrained": False},
                                     "finetune": {"validation_split": "groups",
                                                  "validation_fraction": 0.25}})
    kw = dict(models=["MCRTi"], cv=2, fast=True, out_dir=tmp_path, data_home=shared_data,
              group="group", plots=False, verbose=False)
    res = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", settings=settings, **kw)
    assert [v for v, _ in seen] == ["groups", "groups"] and all(n >= 2 for _, n in seen)
    run_dir = tmp_path / "azaphenacenes-lattice_energy_kJ_per_mol"
    r = json.loads((run_dir / "folds" / "MCRTi" / "fold0.json").read_text())
    assert r["estimator"]["params"]["validation_split"] == "groups"
    plain = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol",
                          settings=merge_settings(TINY, {"max_structures": 40,
                                                         "MCRTi": {"pretrained": False}}), **kw)
    assert len(plain["fitted"]) == 2 and np.isfinite(res["summary"]["MCRTi"]["mae"]["mean"])
