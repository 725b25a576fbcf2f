"""RecordStore and featurize_to_store: equal to in-memory featurisation, resumable after
a kill, readable by several processes at once, with an errors table and a manifest."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.store import RecordStore, StoreError, featurize_to_store

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"
FIELDS = ("atomic_numbers", "distance_matrix", "angle_features", "edge_index", "edge_vectors",
          "line_graph_index", "line_graph_cosines", "cart_coords", "molecule_ids",
          "symmetry_elements")


def _crystals(n: int, start: int = 0) -> list[Structure]:
    out = []
    for i in range(start, start + n):
        d = 0.17 + 0.003 * i
        s = Structure(Lattice.orthorhombic(5.0 + 0.1 * i, 6.0, 6.5), ["C", "O", "C", "O"],
                      [[0.1, 0.1, 0.1], [0.1 + d, 0.1, 0.1], [0.6, 0.55, 0.6],
                       [0.6, 0.55 + d, 0.6]])
        s.properties["id"] = f"crystal_{i}"
        out.append(s)
    return out


def _equal(a, b) -> None:
    assert a.structure_id == b.structure_id
    assert a.density == b.density and a.spacegroup_number == b.spacegroup_number
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            assert x.dtype == y.dtype, field
            np.testing.assert_array_equal(x, y, err_msg=field)


FZ = dict(images=False, pretrain_labels=True)


def test_store_equals_in_memory_featurisation_and_keeps_errors(tmp_path):
    inputs = [*_crystals(4), str(BAD_DIR / "truncated.cif"), str(BAD_DIR / "good.cif"),
              str(BAD_DIR / "disordered.cif")]
    store = featurize_to_store(inputs, tmp_path / "s", MCRTFeaturizer(**FZ), chunk_size=3)
    expected = MCRTFeaturizer(**FZ, ignore_errors=True).transform(inputs)
    assert len(store) == len(expected) == 5
    assert store.ids == [r.structure_id for r in expected]
    for a, b in zip(store, expected, strict=True):
        _equal(a, b)
    _equal(store[-1], expected[-1])
    assert [r.structure_id for r in store[1:3]] == store.ids[1:3]
    with pytest.raises(IndexError):
        store[5]
    errors = {e["structure_id"]: e["type"] for e in store.errors}
    assert errors == {"truncated": "UnreadableStructureError",
                      "disordered": "DisorderedStructureError"}
    assert store.manifest["featurizer"] == "MCRTFeaturizer"
    assert store.manifest["params"]["pretrain_labels"] is True
    # read-only: the same records; writing refused
    ro = RecordStore(tmp_path / "s")
    _equal(ro[2], expected[2])
    with pytest.raises(StoreError, match="read-only"):
        ro.add_error("x", ValueError("y"))
    with pytest.raises(StoreError, match="no record store"):
        RecordStore(tmp_path / "absent")


def test_resume_skips_finished_inputs_and_refuses_other_settings(tmp_path, monkeypatch):
    import mcrt_sklearn.featurizers.graph as graph

    calls = []
    real = graph.featurize_structure
    monkeypatch.setattr(graph, "featurize_structure",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    first = _crystals(3)
    featurize_to_store(first, tmp_path / "s", MCRTFeaturizer(**FZ))
    assert len(calls) == 3
    store = featurize_to_store(_crystals(5), tmp_path / "s", MCRTFeaturizer(**FZ))
    assert len(calls) == 5 and len(store) == 5  # only the two new ones were computed
    assert store.ids == [f"crystal_{i}" for i in range(5)]
    # a duplicate crystal under another id: its own position, one stored record
    twin = _crystals(1)[0].copy()
    twin.properties["id"] = "twin_of_0"
    store = featurize_to_store([twin], tmp_path / "s", MCRTFeaturizer(**FZ))
    assert len(store) == 6 and store.keys()[5] == store.keys()[0]
    _equal(store[5], MCRTFeaturizer(**FZ).transform([twin])[0])
    with pytest.raises(StoreError, match="other settings"):
        featurize_to_store(_crystals(1), tmp_path / "s", MCRTFeaturizer(**FZ, n_neighbors=8))


_CHILD = textwrap.dedent("""
    import pickle, sys, time
    import mcrt_sklearn.featurizers.graph as graph
    from mcrt_sklearn.store import featurize_to_store
    crystals = pickle.load(open(sys.argv[1], "rb"))
    real = graph.featurize_structure
    def slow(*args, **kwargs):
        record = real(*args, **kwargs)
        time.sleep(float(sys.argv[3]))
        return record
    graph.featurize_structure = slow
    featurize_to_store(crystals, sys.argv[2], graph.MCRTFeaturizer(images=False,
                       pretrain_labels=True), chunk_size=1)
""")

_READER = textwrap.dedent("""
    import pickle, sys
    from mcrt_sklearn.store import RecordStore
    store = RecordStore(sys.argv[1])
    records = [store[i] for i in range(len(store))] * 3
    pickle.dump([r.structure_id for r in records], open(sys.argv[2], "wb"))
""")


def _python(tmp_path, code, *args):
    script = tmp_path / f"script_{abs(hash(code))}.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stderr=subprocess.PIPE)


def test_killed_writer_leaves_a_valid_store_and_resumes(tmp_path):
    crystals = _crystals(8)
    (tmp_path / "c.pkl").write_bytes(pickle.dumps(crystals))
    path = tmp_path / "s"
    proc = _python(tmp_path, _CHILD, tmp_path / "c.pkl", path, 0.3)
    deadline = time.monotonic() + 120
    while not (path / "data.mdb").is_file() or len(RecordStore(path)) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the writer stored nothing"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = RecordStore(path)
    n = len(done)
    assert 2 <= n < 8
    fresh = MCRTFeaturizer(**FZ).transform(crystals)
    for a, b in zip(done, fresh, strict=False):  # what is there is whole
        _equal(a, b)
    store = featurize_to_store(crystals, path, MCRTFeaturizer(**FZ))
    assert len(store) == 8
    for a, b in zip(store, fresh, strict=True):
        _equal(a, b)


def test_several_processes_read_one_store_while_it_is_read_here(tmp_path):
    featurize_to_store(_crystals(6), tmp_path / "s", MCRTFeaturizer(**FZ))
    outs = [tmp_path / "a.pkl", tmp_path / "b.pkl"]
    procs = [_python(tmp_path, _READER, tmp_path / "s", out) for out in outs]
    store = RecordStore(tmp_path / "s")
    mine = [store[i].structure_id for i in range(len(store))] * 3
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    for out in outs:
        assert pickle.loads(out.read_bytes()) == mine


def test_a_store_pickles_feeds_dataloader_workers_and_estimators(tmp_path):
    import torch

    from mcrt_sklearn import MCRTRegressor

    store = featurize_to_store(_crystals(8), tmp_path / "s", MCRTFeaturizer(images=False))
    back = pickle.loads(pickle.dumps(RecordStore(tmp_path / "s")))
    assert back.ids == store.ids
    loader = torch.utils.data.DataLoader(back, batch_size=3, num_workers=2,
                                         collate_fn=lambda batch: [r.structure_id for r in batch])
    assert [sid for batch in loader for sid in batch] == store.ids
    reg = MCRTRegressor(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8,
                        alignn_num_conv=1, use_images=False, max_epochs=1, batch_size=4,
                        accumulate=1, validation_fraction=None, random_state=0)
    pred = reg.fit(store, np.arange(8.0)).predict(store)
    records = list(store)
    same = MCRTRegressor(**reg.get_params()).fit(records, np.arange(8.0)).predict(records)
    np.testing.assert_allclose(pred, same, rtol=1e-6)
    # the store is read batch by batch, never gathered: also its validation split
    from mcrt_sklearn.estimators._net import RecordView, check_records

    assert check_records(store, "test") is store
    held = reg.set_params(validation_fraction=0.25, max_epochs=2)
    reads = []
    getitem = RecordStore.__getitem__
    RecordStore.__getitem__ = lambda self, i: reads.append(i) or getitem(self, i)
    try:
        pred_v = held.fit(store, np.arange(8.0)).predict(store)
    finally:
        RecordStore.__getitem__ = getitem
    assert reads and all(isinstance(i, (int, np.integer)) for i in reads)
    same_v = MCRTRegressor(**held.get_params()).fit(records, np.arange(8.0)).predict(records)
    np.testing.assert_allclose(pred_v, same_v, rtol=1e-6)
    view = RecordView(store, [5, 1])
    assert [r.structure_id for r in view] == [store.ids[5], store.ids[1]]
    assert len(view[1:]) == 1
    # its ids come from the store's index, without reading a record
    RecordStore.__getitem__ = lambda self, i: pytest.fail("a record was read")
    try:
        assert view.ids == [store.ids[5], store.ids[1]]
    finally:
        RecordStore.__getitem__ = getitem


def test_dask_local_cluster_fills_the_same_store(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    inputs = [*_crystals(6), str(BAD_DIR / "empty.cif")]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        store = featurize_to_store(inputs, tmp_path / "d", MCRTFeaturizer(**FZ), client=client,
                                   chunk_size=2)
        assert len(client.scheduler_info()["workers"]) == 2
    local = featurize_to_store(inputs, tmp_path / "l", MCRTFeaturizer(**FZ))
    assert sorted(store.ids) == sorted(local.ids) and len(store) == 6
    by_id = {r.structure_id: r for r in local}
    for record in store:  # chunks arrive in any order; each record equals the local one
        _equal(record, by_id[record.structure_id])
    assert [e["structure_id"] for e in store.errors] == ["empty"]


def test_cli_featurize_into_a_store_and_resume(tmp_path, capsys):
    from mcrt_sklearn.cli import main

    files = [str(BAD_DIR / "good.cif"), str(BAD_DIR / "truncated.cif")]
    args = ["featurize", *files, "--images", "none", "--store", str(tmp_path / "s")]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "1 records, 1 failed" in out.out and "failed truncated" in out.err
    store = RecordStore(tmp_path / "s")
    assert store.ids == ["good"] and [e["structure_id"] for e in store.errors] == ["truncated"]
    assert main(args) == 0  # resumed: nothing new, nothing lost
    assert len(RecordStore(tmp_path / "s")) == 1
    with pytest.raises(SystemExit):
        main(["featurize", *files, "--images", "none", "--out", str(tmp_path / "r.pkl"),
              "--scheduler", "local:2"])


def test_cli_finetune_and_predict_from_a_store(tmp_path, capsys):
    import pandas as pd

    from mcrt_sklearn.cli import main

    crystals = _crystals(6)
    store = featurize_to_store(crystals, tmp_path / "s", MCRTFeaturizer(images=False))
    targets = tmp_path / "y.csv"
    pd.DataFrame({"id": store.ids, "e": np.linspace(-1, 1, 6)}).to_csv(targets, index=False)
    common = ["--images", "none", "--store", str(tmp_path / "s")]
    assert main(["finetune", *common, "--targets", str(targets), "--target", "e", "--arch",
                 "tiny", "--epochs", "1", "--batch-size", "3", "--accumulate", "1", "--device",
                 "cpu", "--out", str(tmp_path / "m.safetensors")]) == 0
    assert main(["predict", *common, "--model", str(tmp_path / "m.safetensors"), "--device",
                 "cpu", "--chunk-size", "4", "--out", str(tmp_path / "p.csv")]) == 0
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out["id"]) == store.ids and np.isfinite(out["prediction"]).all()
    assert not (tmp_path / "p.csv.partial").exists()
    # the same predictions as the records in memory, in one chunk
    from mcrt_sklearn import MCRTRegressor

    reg = MCRTRegressor.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(out["prediction"], reg.predict(list(store)), rtol=1e-5)
    with pytest.raises(SystemExit, match="--targets"):
        main(["finetune", *common, "--target", "e", "--out", str(tmp_path / "x")])


def test_cli_pretrain_from_a_store(tmp_path, capsys):
    from mcrt_sklearn.cli import main
    from mcrt_sklearn.model.checkpoint import load_checkpoint

    featurize_to_store(_crystals(6), tmp_path / "s", MCRTFeaturizer(**FZ))
    assert main(["pretrain", "--images", "none", "--store", str(tmp_path / "s"), "--arch",
                 "tiny", "--epochs", "1", "--batch-size", "3", "--accumulate", "1",
                 "--device", "cpu", "--out", str(tmp_path / "pre.safetensors")]) == 0
    assert "pre-trained on 6 crystals" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "pre.safetensors").config.hid_dim == 64


def test_cli_embed_from_a_store(tmp_path, capsys):
    from mcrt_sklearn import MCRTEncoder
    from mcrt_sklearn.cli import main
    from mcrt_sklearn.model.checkpoint import save_checkpoint

    store = featurize_to_store(_crystals(8), tmp_path / "s", MCRTFeaturizer(**FZ))
    enc = MCRTEncoder(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8,
                      alignn_num_conv=1, use_images=False, random_state=0).fit()
    ckpt = save_checkpoint(enc.network_, tmp_path / "enc.safetensors")
    assert main(["embed", "--store", str(tmp_path / "s"), "--images", "none", "--checkpoint",
                 str(ckpt), "--device", "cpu", "--color-by", "spacegroup", "--out",
                 str(tmp_path / "emb")]) == 0
    emb = np.load(tmp_path / "emb" / "embeddings.npy")
    assert emb.shape == (8, 16)
    assert (tmp_path / "emb" / "ids.txt").read_text().split() == store.ids
    again = MCRTEncoder(checkpoint=str(ckpt)).fit().transform(list(store))
    np.testing.assert_allclose(emb, again, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "emb" / "tsne.png").stat().st_size > 1000


def test_fit_and_predict_read_a_store_in_dataloader_workers(tmp_path):
    from mcrt_sklearn import MCRTRegressor

    store = featurize_to_store(_crystals(12), tmp_path / "s", MCRTFeaturizer(images=False))
    y = np.linspace(0.0, 1.0, len(store))
    params = dict(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8,
                  alignn_num_conv=1, use_images=False, max_epochs=2, batch_size=4,
                  accumulate=1, validation_fraction=0.25, random_state=0, num_workers=2)
    reg = MCRTRegressor(**params).fit(store, y)
    assert reg.net_.iterator_train__num_workers == 2
    assert np.isfinite(reg.history_[:, "train_loss"]).all()
    pred = reg.predict(store)
    again = MCRTRegressor(**params).fit(store, y).predict(store)
    np.testing.assert_array_equal(pred, again)  # seeded, workers or not
    reg.net_.iterator_valid__num_workers = 0
    np.testing.assert_allclose(reg.predict(store), pred, rtol=1e-6)  # same network, in process
    with pytest.raises(ValueError, match="num_workers"):
        MCRTRegressor(**{**params, "num_workers": -1}).fit(store, y)
