"""MCRT estimators: sklearn contract, Pipelines, GridSearchCV, fine-tuning, pre-training."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from mcrt_sklearn.errors import MissingImageError
from mcrt_sklearn.estimators.encoder import MCRTEncoder
from mcrt_sklearn.estimators.pretrain import MCRTPretrainer
from mcrt_sklearn.estimators.regressor import MCRTClassifier, MCRTRegressor
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.model.checkpoint import load_checkpoint

SMALL = dict(hid_dim=32, num_blocks=1, num_heads=2, alignn_hidden_dim=16, alignn_num_conv=1,
             use_images=False)
# The smallest configuration that learns lattice energies in a few CPU epochs.
LEARNS = dict(hid_dim=64, num_blocks=2, num_heads=4, alignn_hidden_dim=32, alignn_num_conv=2,
              use_images=False, drop_rate=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def aza(shared_data):
    """~100 azaphenacene CIF paths (60–120 atoms) with lattice energies."""
    import pandas as pd

    table = pd.read_csv(shared_data / "azaphenacenes" / "properties.csv")
    table = table[table["n_atoms"] <= 120].sample(100, random_state=0)
    paths = [str(shared_data / "azaphenacenes" / "cifs" / f"{i}.cif") for i in table["id"]]
    return paths, table["lattice_energy_kJ_per_mol"].to_numpy()


@pytest.fixture(scope="module")
def aza_records(aza, tmp_path_factory):
    paths, y = aza
    cache = tmp_path_factory.mktemp("feat_cache")
    records = MCRTFeaturizer(images=False, cache_dir=str(cache)).transform(paths)
    return records, y, str(cache)


def test_clone_keeps_params_and_drops_fit(aza_records):
    records, y, _ = aza_records
    reg = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, random_state=0)
    reg.fit(records[:16], y[:16])
    copy = clone(reg)
    assert copy.get_params() == reg.get_params()
    assert not hasattr(copy, "net_") and hasattr(reg, "net_")


def test_grid_search_and_cross_val_on_cif_paths(aza, aza_records):
    paths, y = aza
    _, _, cache = aza_records
    pipe = Pipeline([
        ("feat", MCRTFeaturizer(images=False, cache_dir=cache)),
        ("model", MCRTRegressor(**SMALL, max_epochs=2, batch_size=8, random_state=0)),
    ])
    search = GridSearchCV(pipe, {"model__lr": [1e-3, 3e-4]}, cv=3,
                          scoring="neg_mean_absolute_error")
    search.fit(paths[:30], y[:30])
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert scores[0] != scores[1]  # the grid's lr reached the network
    best = int(np.argmax(scores))
    assert search.best_index_ == best
    assert search.best_params_ == search.cv_results_["params"][best]
    # the refitted model is the chosen one, trained on all the data
    assert search.best_estimator_.named_steps["model"].lr == search.best_params_["model__lr"]
    assert len(search.best_estimator_.named_steps["model"].history_) == 2
    scores = cross_val_score(pipe, paths[:30], y[:30], cv=3, scoring="neg_mean_absolute_error")
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_same_seed_same_predictions_and_pickle_roundtrip(aza_records, tmp_path):
    records, y, _ = aza_records
    kw = dict(**SMALL, max_epochs=2, batch_size=8, lr=1e-3, random_state=7)
    a = MCRTRegressor(**kw).fit(records[:24], y[:24])
    b = MCRTRegressor(**kw).fit(records[:24], y[:24])
    pa, pb = a.predict(records[24:32]), b.predict(records[24:32])
    np.testing.assert_array_equal(pa, pb)
    c = MCRTRegressor(**{**kw, "random_state": 8}).fit(records[:24], y[:24])
    assert not np.allclose(pa, c.predict(records[24:32]))
    back = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(back.predict(records[24:32]), pa)
    # save/load: safetensors weights + JSON (config, params, target scaling, provenance)
    from mcrt_sklearn.model.checkpoint import is_safetensors, read_checkpoint_metadata

    path = a.save(tmp_path / "reg.pt")
    assert is_safetensors(path)
    loaded = MCRTRegressor.load(path)
    np.testing.assert_allclose(loaded.predict(records[24:32]), pa, rtol=1e-6, atol=1e-6)
    assert loaded.get_params() == a.get_params()  # tuples (betas) come back as tuples
    meta = read_checkpoint_metadata(path)
    assert meta["estimator"]["fitted"] == {"y_mean": a.y_mean_, "y_std": a.y_std_}
    prov = meta["provenance"]
    assert prov["trained_on"]["n_structures"] == 24 and prov["started_from"] is None
    assert prov["training"]["best_epoch"] == a.best_epoch_
    assert prov["trained_on"]["first_ids"] == [r.structure_id for r in records[:5]]
    # the saved file is also a network checkpoint the encoder accepts
    emb = MCRTEncoder(checkpoint=path).fit().transform(records[:3])
    assert emb.shape == (3, 32)


def test_fitted_pipeline_pickles(aza, aza_records):
    paths, y = aza
    _, _, cache = aza_records
    pipe = Pipeline([
        ("feat", MCRTFeaturizer(images=False, cache_dir=cache)),
        ("model", MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, random_state=0)),
    ]).fit(paths[:16], y[:16])
    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(back.predict(paths[16:20]), pipe.predict(paths[16:20]))


def test_finetuning_beats_the_mean(aza_records):
    records, y, _ = aza_records
    n_train = 80
    reg = MCRTRegressor(**LEARNS, max_epochs=8, batch_size=8, lr=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a fit that learns: no warning
        reg.fit(records[:n_train], y[:n_train])
    assert reg.history_[-1, "train_loss"] < MCRTRegressor._no_fit_loss
    pred = reg.predict(records[n_train:])
    mae_model = np.abs(pred - y[n_train:]).mean()
    mae_mean = np.abs(y[:n_train].mean() - y[n_train:]).mean()
    print(f"\nazaphenacene lattice energy, held-out {len(y) - n_train}: "
          f"MAE model {mae_model:.2f} kJ/mol vs training mean {mae_mean:.2f} kJ/mol")
    assert mae_model < mae_mean


def test_a_fit_that_learns_nothing_warns(aza_records):
    records, y, _ = aza_records
    # lr 0: the weights never move, the loss stays at (or above) the mean predictor's 1.0
    reg = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, lr=0.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="little better than the mean") as caught:
        reg.fit(records[:16], y[:16])
    assert reg.history_[-1, "train_loss"] >= 0.9
    # the last epoch was kept, so the advice is to train longer
    assert "(epoch 1 of 1)" in str(caught[0].message)
    assert "Train longer (max_epochs=1)" in str(caught[0].message)


def test_no_fit_warning_says_when_more_epochs_would_not_help(aza_records):
    records, y, _ = aza_records
    reg = MCRTRegressor(**SMALL, max_epochs=3, batch_size=8, lr=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(records[:16], y[:16])
    # as if validation had kept the first of the three epochs
    reg.best_epoch_ = 1
    with pytest.warns(ConvergenceWarning, match="little better than the mean") as caught:
        reg._check_training()
    message = str(caught[0].message)
    assert "(epoch 1 of 3)" in message
    assert "training longer will not help" in message and "Train longer" not in message


def test_images_required_when_the_model_uses_them(aza_records):
    records, y, _ = aza_records
    reg = MCRTRegressor(**{**SMALL, "use_images": True}, max_epochs=1, batch_size=8)
    with pytest.raises(MissingImageError, match="persistence images"):
        reg.fit(records[:8], y[:8])


def test_bad_inputs(aza_records):
    records, y, _ = aza_records
    with pytest.raises(TypeError, match="MCRTFeaturizer"):
        MCRTRegressor(**SMALL).fit(["not a record"], [1.0])
    with pytest.raises(ValueError, match="targets"):
        MCRTRegressor(**SMALL).fit(records[:4], y[:3])
    with pytest.raises(ValueError, match="NaN"):
        MCRTRegressor(**SMALL).fit(records[:2], [1.0, np.nan])


def test_classifier(aza_records):
    records, y, _ = aza_records
    labels = np.where(y[:24] < np.median(y[:24]), "stable", "unstable")
    clf = MCRTClassifier(**SMALL, max_epochs=2, batch_size=8, random_state=0).fit(records[:24], labels)
    assert list(clf.classes_) == ["stable", "unstable"]
    proba = clf.predict_proba(records[:5])
    # binary head: P(second class) is the sigmoid of the network's one logit …
    logit = clf._raw_predict(records[:5]).reshape(-1)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logit)), rtol=1e-5)
    np.testing.assert_allclose(proba[:, 0], 1 - proba[:, 1], rtol=1e-6)
    assert np.ptp(proba[:, 1]) > 0  # one probability per record, not one for all
    # … and predict is its most probable class
    np.testing.assert_array_equal(clf.predict(records[:5]), clf.classes_[proba.argmax(1)])
    # three classes: a softmax over three logits
    three = np.array(["a", "b", "c"])[np.argsort(np.argsort(y[:24])) * 3 // 24]
    clf3 = MCRTClassifier(**SMALL, max_epochs=1, batch_size=8, random_state=0).fit(records[:24],
                                                                                   three)
    logits3 = clf3._raw_predict(records[:5])
    assert logits3.shape == (5, 3)
    e = np.exp(logits3 - logits3.max(1, keepdims=True))
    np.testing.assert_allclose(clf3.predict_proba(records[:5]), e / e.sum(1, keepdims=True),
                               rtol=1e-5)


@pytest.fixture(scope="module")
def reference_records(shared_data):
    """The 5 parity CIFs with the reference persistence images attached."""
    import dataclasses

    cifs = [shared_data / "mcrt_examples" / "cifs" / f"5A_CSP_{i}.cif" for i in range(1, 6)]
    records = MCRTFeaturizer(images=False).transform([str(p) for p in cifs])
    out = []
    for rec in records:
        img = np.load(shared_data / "mcrt_examples" / "imgs" / f"{rec.structure_id}.npy",
                      allow_pickle=True)
        out.append(dataclasses.replace(rec, image=np.asarray(img[0], np.float32),
                                       image_scalars=np.asarray(img[1:5], np.float32)))
    return out


def test_encoder_reproduces_reference_cls(shared_data, reference_records):
    ckpt = shared_data / "reference_parity" / "reference_small.ckpt"
    ref = np.load(shared_data / "reference_parity" / "reference_small_outputs.npz")
    enc = MCRTEncoder(checkpoint=ckpt).fit()
    np.testing.assert_allclose(enc.transform(reference_records), ref["cls_feats"], atol=1e-4)
    raw = clone(enc).set_params(output="raw_cls").fit().transform(reference_records)
    np.testing.assert_allclose(raw, ref["raw_cls_feats"], atol=1e-4)
    assert list(enc.get_feature_names_out()[:2]) == ["mcrt_cls_0", "mcrt_cls_1"]
    maps = enc.explain(reference_records[:2])
    assert maps[0]["atoms"].shape == (reference_records[0].n_atoms,)
    assert maps[0]["patches_1d"].shape == (10, 10)
    total = maps[0]["atoms"].sum() + maps[0]["patches_1d"].sum() + maps[0]["patches_2d"].sum() \
        + maps[0]["special"].sum()
    assert total == pytest.approx(1.0, abs=1e-4)


def test_finetuning_starts_from_the_reference_weights(shared_data, reference_records):
    ckpt = shared_data / "reference_parity" / "reference_small.ckpt"
    loaded = load_checkpoint(ckpt)
    seen = []

    from skorch.callbacks import Callback

    class FirstBatch(Callback):
        def on_batch_begin(self, net, batch=None, training=None, **kw):
            if training and not seen:
                module = net.module_.network
                module.eval()
                with torch.no_grad():
                    (part,) = batch[0].parts  # one micro-batch (accumulate=1)
                    seen.append(module.encode(part.data)["cls_feats"].clone())
                module.train()

    reg = MCRTRegressor(checkpoint=ckpt, max_epochs=1, batch_size=5, accumulate=1,
                        validation_fraction=None, shuffle_atoms=False,
                        random_state=0, callbacks=[FirstBatch()])
    reg.fit(reference_records, np.arange(5.0))
    from mcrt_sklearn.collate import collate

    with torch.no_grad():
        expected = loaded.encode(collate(reference_records))["cls_feats"]
    # one batch of all five crystals, in loader order: compare as sets of rows
    got = seen[0]
    dist = torch.cdist(got, expected)
    assert dist.min(dim=1).values.max() < 1e-4


def test_pretrainer_lowers_every_loss_and_feeds_the_encoder(shared_data, tmp_path):
    import pandas as pd

    table = pd.read_csv(shared_data / "pretrain_corpus" / "properties.csv")
    table = table[(table["n_atoms"] <= 60) & ~table["id"].str.startswith("TEPHTH")].head(24)
    paths = [str(shared_data / "pretrain_corpus" / "cifs" / f"{i}.cif") for i in table["id"]]
    records = MCRTFeaturizer(images=False, pretrain_labels=True).transform(paths)
    pre = MCRTPretrainer(**SMALL, max_epochs=10, batch_size=8, accumulate=1, lr=3e-3,
                         n_pairs=40, validation_fraction=None, random_state=0).fit(records)
    hist = pre.history_
    for key in ("train_map_loss", "train_cdp_loss", "train_sep_loss", "train_apc_loss"):
        print(f"{key}: {hist[0, key]:.4f} -> {hist[-1, key]:.4f}")
    # MAP, CDP and SEP learn in a few CPU epochs. APC (same molecule or not) barely moves
    # from chance (ln 2) in runs this short, with atom shuffling (see the next test), but
    # must not get worse than chance.
    for key in ("train_map_loss", "train_cdp_loss", "train_sep_loss"):
        assert hist[-1, key] < 0.9 * hist[0, key], key
    assert hist[-1, "train_apc_loss"] < np.log(2) + 0.05
    assert hist[-1, "train_map_acc"] > hist[0, "train_map_acc"]
    for key in ("train_apc_acc", "train_sep_acc", "train_cdp_mae"):
        assert np.isfinite(hist[-1, key])
    path = pre.save(tmp_path / "pretrained.pt")
    enc = MCRTEncoder(checkpoint=path).fit()
    emb = enc.transform(records[:4])
    assert emb.shape == (4, 32) and np.isfinite(emb).all()
    reg = MCRTRegressor(checkpoint=path, max_epochs=1, batch_size=8, accumulate=2,
                        random_state=0)
    reg.fit(records[:8], np.arange(8.0))
    assert reg.network_.tasks == ("regression",)
    with pytest.raises(ValueError, match="pretrain_labels=True"):
        MCRTPretrainer(**SMALL).fit(MCRTFeaturizer(images=False).transform(paths[:2]))


def test_accelerate_single_cpu_process(aza_records):
    accelerate = pytest.importorskip("accelerate")
    records, y, _ = aza_records
    reg = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, random_state=0,
                        accelerator=accelerate.Accelerator(cpu=True))
    reg.fit(records[:16], y[:16])
    pred = reg.predict(records[16:20])
    # one CPU process through accelerate trains exactly as without it
    plain = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, random_state=0)
    plain.fit(records[:16], y[:16])
    np.testing.assert_allclose(pred, plain.predict(records[16:20]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reg.history_[:, "train_loss"], plain.history_[:, "train_loss"],
                               rtol=1e-5)
    # unwrapped after training: the network is ours again and saves like any other
    assert type(reg.net_.module_).__name__ == "TaskModule"
    assert reg.network_.tasks == ("regression",)


def test_absolute_positional_ablation_uses_coordinates(aza_records):
    import dataclasses

    records, _, _ = aza_records
    assert records[0].cart_coords.shape == (records[0].n_atoms, 3)
    enc = MCRTEncoder(**{**SMALL, "positional": "absolute"}, random_state=0).fit()
    emb = enc.transform(records[:4])
    assert emb.shape == (4, 32) and np.isfinite(emb).all()
    moved = [dataclasses.replace(r, cart_coords=r.cart_coords + 5.0) for r in records[:4]]
    assert not np.allclose(enc.transform(moved), emb)  # MCRTa sees absolute positions
    with pytest.raises(ValueError):
        enc.transform([dataclasses.replace(records[0], cart_coords=None)])


def test_apc_learns_when_the_atom_order_is_kept(shared_data):
    """APC (same molecule or not) needs atom identities that line up with the distance
    rows; with per-batch atom shuffling (the reference's training default) a short run
    stays at chance, without it the head learns."""
    import pandas as pd

    table = pd.read_csv(shared_data / "pretrain_corpus" / "properties.csv")
    table = table[(table["n_atoms"] <= 60) & ~table["id"].str.startswith("TEPHTH")].head(24)
    paths = [str(shared_data / "pretrain_corpus" / "cifs" / f"{i}.cif") for i in table["id"]]
    records = MCRTFeaturizer(images=False, pretrain_labels=True).transform(paths)
    pre = MCRTPretrainer(**{**SMALL, "drop_rate": 0.0}, tasks=("apc",), shuffle_atoms=False,
                         max_epochs=30, batch_size=8, accumulate=1, validation_fraction=None,
                         lr=3e-3, n_pairs=40, random_state=0)
    pre.fit(records)
    loss, acc = pre.history_[:, "train_apc_loss"], pre.history_[:, "train_apc_acc"]
    print(f"\nAPC without shuffling: loss {loss[0]:.3f} -> {loss[-1]:.3f}, "
          f"accuracy {acc[0]:.2f} -> {acc[-1]:.2f}")
    assert loss[-1] < 0.65 and acc[-1] > 0.7


def test_reference_recipe_micro_batches_and_best_epoch(aza_records):
    from skorch.callbacks import Callback

    records, y, _ = aza_records
    sizes = []

    class Parts(Callback):
        def on_batch_begin(self, net, batch=None, training=None, **kw):
            if training:
                sizes.append([len(p) for p in batch[0].parts])

    reg = MCRTRegressor(**SMALL, max_epochs=5, batch_size=8, accumulate=2, lr=1e-2,
                        validation_fraction=0.25, random_state=0, callbacks=[Parts()])
    reg.fit(records[:24], y[:24])
    # 18 training crystals: optimizer steps of 8, 8 and 2 crystals, micro-batches of 4
    assert sizes[:3] == [[4, 4], [4, 4], [2]] and len(sizes) == 15
    assert [len(g["names"]) > 0 for g in reg.net_.param_groups_] == [True] * 4
    assert reg.net_.recipe_.betas == (0.9, 0.98) and reg.net_.recipe_.total_steps == 15
    norms = [b["grad_norm"] for e in reg.history_ for b in e["batches"] if "grad_norm" in b]
    assert len(norms) == 15 and all(np.isfinite(norms))
    # the weights kept are those of the best validation epoch: their MAE on the held-out
    # crystals is the one recorded for that epoch
    maes = reg.history_[:, "valid_mae"]
    assert reg.best_epoch_ == int(np.argmin(maes)) + 1
    order = np.random.default_rng(0).permutation(24)
    valid = order[:6]
    pred = reg.predict([records[i] for i in valid])
    got = np.mean(np.abs(pred - y[valid])) / reg.y_std_
    assert got == pytest.approx(maes[reg.best_epoch_ - 1], rel=1e-4)


def test_the_earlier_recipe_stays_reachable(aza_records):
    records, y, _ = aza_records
    old = dict(betas=(0.9, 0.999), gradient_clip=None, param_groups="decay_all", accumulate=1,
               schedule="legacy", validation_fraction=None, recalibrate_batchnorm=True)
    reg = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, random_state=0, **old)
    reg.fit(records[:16], y[:16])
    assert len(reg.net_.param_groups_) == 1 and reg.best_epoch_ == 1
    assert "valid_mae" not in reg.history_[-1]
    assert clone(reg).get_params()["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="multiple of accumulate"):
        MCRTRegressor(**SMALL, batch_size=6, accumulate=4).fit(records[:8], y[:8])


def test_bf16_inference_is_close_to_fp32_and_precision_is_checked(aza_records):
    records, y, _ = aza_records
    reg = MCRTRegressor(**LEARNS, max_epochs=2, batch_size=8, accumulate=1, lr=1e-3,
                        random_state=0).fit(records[:32], y[:32])
    fp32 = reg.predict(records[32:48])
    bf16 = reg.set_params(precision="bf16").predict(records[32:48])
    assert bf16.dtype == fp32.dtype and not np.array_equal(bf16, fp32)  # bf16 really ran
    np.testing.assert_allclose(bf16, fp32, atol=0.05 * np.std(y[:32]))
    enc = MCRTEncoder(**SMALL, random_state=0).fit()
    a = enc.transform(records[:8])
    b = enc.set_params(precision="bf16").transform(records[:8])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert b.dtype == np.float32 and cos.min() > 0.99
    with pytest.raises(ValueError, match="precision must be one of"):
        MCRTEncoder(**SMALL, precision="fp8").fit()
    with pytest.raises(ValueError, match="precision must be one of"):
        MCRTRegressor(**SMALL, precision="half").fit(records[:8], y[:8])


def test_validation_split_by_groups_holds_out_whole_groups(aza_records):
    from mcrt_sklearn.estimators._net import group_validation_indices

    groups = np.repeat(np.arange(10), [5, 8, 3, 12, 7, 6, 9, 4, 10, 6])
    valid, train = group_validation_indices(groups, 0.2, random_state=0)
    assert set(groups[valid]).isdisjoint(groups[train])
    assert len(valid) + len(train) == len(groups) and 0.1 < len(valid) / len(groups) < 0.3
    again, _ = group_validation_indices(groups, 0.2, random_state=0)
    np.testing.assert_array_equal(valid, again)  # seeded
    with pytest.raises(ValueError, match="at least 2 groups"):
        group_validation_indices(np.zeros(5), 0.2, 0)

    records, y, _ = aza_records
    g = np.arange(24) // 4  # six groups of four
    reg = MCRTRegressor(**SMALL, max_epochs=1, batch_size=8, accumulate=1, random_state=0,
                        validation_fraction=0.25, validation_split="groups")
    with pytest.raises(ValueError, match="needs fit"):
        reg.fit(records[:24], y[:24])
    reg.fit(records[:24], y[:24], groups=g)
    held = {r.structure_id for r in reg.net_.train_split.keywords["valid_ds"].X}
    held_groups = {g[i] for i, r in enumerate(records[:24]) if r.structure_id in held}
    assert held and all(set(np.flatnonzero(g == k)) <= {i for i, r in enumerate(records[:24])
                                                        if r.structure_id in held}
                        for k in held_groups)
    assert reg.training_provenance_["trained_on"]["validation_split"] == "groups"
    with pytest.raises(ValueError, match="'random' or 'groups'"):
        MCRTRegressor(**SMALL, validation_split="molecule").fit(records[:8], y[:8])


def test_head_init_fan_in_redraws_only_a_new_head(shared_data):
    """``head_init="fan_in"``: a new task head is drawn from N(0, 1/H), the rest of the
    network is the reference initialisation, and a head a checkpoint brings is kept."""
    from mcrt_sklearn.estimators._net import build_network

    arch = dict(hid_dim=64, num_blocks=1, num_heads=2, alignn_hidden_dim=16, alignn_num_conv=1)
    nets = {}
    for init in ("reference", "fan_in"):
        torch.manual_seed(0)
        nets[init] = build_network(MCRTRegressor(**arch, head_init=init), ("regression",))
    ref, fan = nets["reference"].state_dict(), nets["fan_in"].state_dict()
    head = "regression_head.fc.weight"
    assert ref[head].std().item() == pytest.approx(0.02, rel=0.3)
    assert fan[head].std().item() == pytest.approx(64 ** -0.5, rel=0.3)
    assert torch.count_nonzero(fan["regression_head.fc.bias"]) == 0
    assert all(torch.equal(ref[k], fan[k]) for k in ref if not k.startswith("regression_head"))
    # the reference checkpoint has a regression head: fan_in leaves it as it was
    ckpt = shared_data / "reference_parity" / "reference_small.ckpt"
    loaded = load_checkpoint(ckpt).state_dict()
    kept = build_network(MCRTRegressor(checkpoint=ckpt, head_init="fan_in"),
                         ("regression",)).state_dict()
    assert torch.equal(kept[head], loaded[head])
    # a checkpoint without a classification head gets a fan-in one
    clf = build_network(MCRTClassifier(checkpoint=ckpt, head_init="fan_in"),
                        ("classification",), n_classes=3)
    assert clf.classification_head.fc.weight.std().item() == pytest.approx(64 ** -0.5, rel=0.3)
    with pytest.raises(ValueError, match="head_init"):
        build_network(MCRTRegressor(**arch, head_init="xavier"), ("regression",))
