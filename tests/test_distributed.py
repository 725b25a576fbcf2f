"""Training past one process: DDP under ``accelerate launch`` (2 CPU processes), and a
run killed with SIGKILL then resumed from its training-state file."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mcrt_sklearn import MCRTPretrainer, MCRTRegressor
from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.estimators._run import rank_batching
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.model.checkpoint import load_checkpoint
from mcrt_sklearn.store import RecordStore, featurize_to_store

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_train_worker.py"
sys.path.insert(0, str(HERE))
import _train_worker as worker  # noqa: E402


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(*args, processes: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes N`` of ``args`` on CPU processes.

    (accelerate's ``--cpu`` starts one process; its torchrun launcher, ``--multi_gpu``,
    starts N, which are CPU processes where there is no GPU or with
    ``ACCELERATE_USE_CPU``.)"""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
           str(processes), "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *map(str, args)]
    env = {**_env(), "ACCELERATE_USE_CPU": "true"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


# One torch thread, as in the launched processes: parameters whose gradient is zero in
# exact arithmetic (a bias before a BatchNorm) get rounding noise, which Adam turns into
# full-size steps, and another summation order (another thread count) other noise.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_paths(shared_data):
    """16 small azaphenacene crystals (the fewest atoms) and their lattice energies."""
    import pandas as pd

    table = pd.read_csv(shared_data / "azaphenacenes" / "properties.csv")
    table = table.nsmallest(16, "n_atoms")
    paths = [str(shared_data / "azaphenacenes" / "cifs" / f"{i}.cif") for i in table["id"]]
    return paths, table["lattice_energy_kJ_per_mol"].to_numpy(float)


@pytest.fixture(scope="module")
def store(small_paths, tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "store"
    featurize_to_store(small_paths[0], path, MCRTFeaturizer(images=False, pretrain_labels=True))
    return path


def test_rank_batching_shares_a_step_between_processes():
    est = SimpleNamespace(batch_size=8, accumulate=2, accelerator=None)
    assert rank_batching(est) == (8, 2, 4)
    est.accelerator = SimpleNamespace(num_processes=2)
    assert rank_batching(est) == (4, 1, 4)  # each process: one micro-batch of 4
    est.accelerator = SimpleNamespace(num_processes=4)
    with pytest.raises(ValueError, match="multiple of the 4 processes"):
        rank_batching(est)


def _parameters(module: torch.nn.Module) -> dict[str, np.ndarray]:
    # parameters only: BatchNorm running statistics are each process's own under DDP
    return {k: v.detach().numpy() for k, v in module.named_parameters()}


def test_ddp_two_processes_train_like_one_with_the_same_global_batch(store, tmp_path):
    pytest.importorskip("accelerate")
    out = tmp_path / "out"
    out.mkdir()
    run = _launch(WORKER, "ddp", store, out)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["processes"] == 2
    # only the main process wrote: one file of each, the other rank returned None
    assert sorted(p.name for p in out.iterdir()) == ["pretrained.safetensors",
                                                     "regressor.safetensors", "report.json"]
    by_rank = {r["rank"]: r for r in report["ranks"]}
    assert by_rank[0]["saved"] and by_rank[1]["saved"] is None
    assert by_rank[0]["reg_saved"] and by_rank[1]["reg_saved"] is None
    # both ranks predict every structure, identically (gathered)
    np.testing.assert_allclose(by_rank[0]["pred"], by_rank[1]["pred"], rtol=1e-6)
    assert len(by_rank[0]["pred"]) == len(RecordStore(store))
    assert report["pretrain_loss"][-1] < report["pretrain_loss"][0]

    # one process, same global batch (8 = 2 micro-batches of 4) and epoch order
    records = RecordStore(store)
    single = MCRTPretrainer(**worker.PRETRAIN, shuffle_seed=0).fit(records)
    np.testing.assert_allclose(report["pretrain_loss"], single.history_[:, "train_loss"],
                               rtol=1e-4)
    ddp_net = load_checkpoint(out / "pretrained.safetensors")
    for name, value in _parameters(single.network_).items():
        np.testing.assert_allclose(_parameters(ddp_net)[name], value, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    # the fine-tuning from the DDP checkpoint, in one process
    density = np.array([r.density for r in records], dtype=float)
    reg = MCRTRegressor(checkpoint=out / "pretrained.safetensors", **worker.FINETUNE,
                        shuffle_seed=0).fit(records, density)
    np.testing.assert_allclose(report["finetune_loss"], reg.history_[:, "train_loss"],
                               rtol=1e-4)
    ddp_reg = MCRTRegressor.load(out / "regressor.safetensors")
    np.testing.assert_allclose(ddp_reg.predict(records), reg.predict(records), rtol=1e-4,
                               atol=1e-4)


def test_cli_pretrain_and_finetune_under_accelerate_launch(store, tmp_path):
    pytest.importorskip("accelerate")
    out = tmp_path / "cli.safetensors"
    run = _launch("-m", "mcrt_sklearn", "pretrain", "--store", store, "--out", out, "--arch",
                  "tiny", "--images", "none", "--epochs", "2", "--batch-size", "8",
                  "--accumulate", "2", "--lr", "1e-3")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote checkpoint") == 1  # printed by the main process only
    assert load_checkpoint(out).config.hid_dim == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.safetensors"]
    # fine-tune from it on the store, targets from a CSV, resumable state file
    records = RecordStore(store)
    targets = tmp_path / "targets.csv"
    targets.write_text("id,density\n" + "".join(f"{r.structure_id},{r.density}\n"
                                                 for r in records))
    model, state = tmp_path / "model.safetensors", tmp_path / "run.state"
    run = _launch("-m", "mcrt_sklearn", "finetune", "--store", store, "--targets", targets,
                  "--target", "density", "--checkpoint", out, "--images", "none", "--epochs",
                  "2", "--batch-size", "8", "--accumulate", "2", "--lr", "1e-3",
                  "--resume", state, "--out", model)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote model") == 1
    assert torch.load(state, weights_only=True)["finished"]
    reg = MCRTRegressor.load(model)
    assert np.isfinite(reg.predict(records)).all()


def _resume_run(tmp_path, records_file, state, name, kill=0, every=None):
    out = tmp_path / f"{name}.pt"
    args = [sys.executable, str(WORKER), "resume", str(records_file), str(state or ""),
            str(out), str(kill)] + ([str(every)] if every else [])
    run = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    return run, out


def test_sigkill_then_resume_gives_the_uninterrupted_weights(small_paths, tmp_path):
    paths, y = small_paths
    records = MCRTFeaturizer(images=False).transform(paths)
    records_file = tmp_path / "records.pkl"
    records_file.write_bytes(pickle.dumps((records, y)))
    state = tmp_path / "run.state"

    killed, out = _resume_run(tmp_path, records_file, state, "killed", kill=3)
    assert killed.returncode == -9 and not out.exists()
    assert state.exists()  # two whole epochs written before the kill
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    stored = torch.load(state, weights_only=True)
    assert stored["epochs_done"] == 2 and not stored["finished"]

    resumed, out_resumed = _resume_run(tmp_path, records_file, state, "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    plain, out_plain = _resume_run(tmp_path, records_file, None, "plain")
    assert plain.returncode == 0, plain.stderr[-3000:]
    a, b = torch.load(out_resumed), torch.load(out_plain)
    assert [h["epoch"] for h in a["history"]] == [1, 2, 3, 4]
    assert a["history"] == b["history"] and a["best_epoch"] == b["best_epoch"]
    for name, value in b["weights"].items():
        torch.testing.assert_close(a["weights"][name], value, rtol=0, atol=0, msg=name)
    # a finished run, started again, trains no more and gives the same weights
    again, out_again = _resume_run(tmp_path, records_file, state, "again")
    assert again.returncode == 0, again.stderr[-3000:]
    for name, value in b["weights"].items():
        torch.testing.assert_close(torch.load(out_again)["weights"][name], value, rtol=0,
                                   atol=0, msg=name)


def test_sigkill_mid_epoch_then_resume_at_the_step(small_paths, tmp_path):
    """With resume_every=1 the run continues at the step after the last one written: the
    same final weights as an uninterrupted run, though the kill came mid-epoch."""
    paths, y = small_paths
    records = MCRTFeaturizer(images=False).transform(paths)
    records_file = tmp_path / "records.pkl"
    records_file.write_bytes(pickle.dumps((records, y)))
    state = tmp_path / "run.state"
    killed, _ = _resume_run(tmp_path, records_file, state, "killed", kill=3, every=1)
    assert killed.returncode == -9
    stored = torch.load(state, weights_only=True)
    # killed after the second batch of epoch 3, before its state: the first batch's is kept
    assert stored["epochs_done"] == 2 and stored["partial"]["batches_done"] == 1
    resumed, out_resumed = _resume_run(tmp_path, records_file, state, "resumed", every=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    plain, out_plain = _resume_run(tmp_path, records_file, None, "plain")
    assert plain.returncode == 0, plain.stderr[-3000:]
    a, b = torch.load(out_resumed), torch.load(out_plain)
    assert a["history"] == b["history"] and a["best_epoch"] == b["best_epoch"]
    for name, value in b["weights"].items():
        torch.testing.assert_close(a["weights"][name], value, rtol=0, atol=0, msg=name)


def test_state_file_of_another_run_is_refused(small_paths, tmp_path):
    paths, y = small_paths
    records = MCRTFeaturizer(images=False).transform(paths[:8])
    state = tmp_path / "run.state"
    params = dict(worker.TINY, max_epochs=1, batch_size=4, accumulate=1, random_state=0,
                  resume_from=state)
    MCRTRegressor(**params).fit(records, y[:8])
    assert torch.load(state, weights_only=True)["finished"]
    with pytest.raises(CheckpointError, match="another run.*data"):
        MCRTRegressor(**params).fit(records[:6], y[:6])
    with pytest.raises(CheckpointError, match="another run.*recipe"):
        MCRTRegressor(**{**params, "lr": 5e-4}).fit(records, y[:8])
    state.write_bytes(b"not a state")
    with pytest.raises(CheckpointError, match="not a readable training state"):
        MCRTRegressor(**params).fit(records, y[:8])


class _Stop(Exception):
    pass


def test_pretraining_interrupted_mid_epoch_resumes_with_its_task_metrics(store, tmp_path):
    """A pre-training stopped inside an epoch (an exception out of fit after its second
    batch, whose state is not written: the first batch's is kept) and resumed ends as an
    uninterrupted one, per-task epoch metrics and batch count included."""
    from skorch.callbacks import Callback

    class StopAt(Callback):
        def on_batch_end(self, net, training=None, **kwargs):
            if training and len(net.history) == 2 and len(net.history[-1]["batches"]) == 2:
                raise _Stop

    records = RecordStore(store)
    params = dict(worker.TINY, tasks=("map", "apc", "cdp", "sep"), max_epochs=3, batch_size=4,
                  accumulate=1, validation_fraction=None, random_state=0, resume_every=1)
    state = tmp_path / "pre.state"
    with pytest.raises(_Stop):
        MCRTPretrainer(**params, resume_from=state, callbacks=[StopAt()]).fit(records)
    assert torch.load(state, weights_only=True)["partial"]["batches_done"] == 1
    resumed = MCRTPretrainer(**params, resume_from=state).fit(records)
    plain = MCRTPretrainer(**params).fit(records)
    keys = [k for k in plain.history_[-1] if k.startswith("train_")]
    assert "train_map_loss" in keys and "train_apc_acc" in keys
    for k in keys + ["train_batch_count"]:
        assert resumed.history_[:, k] == plain.history_[:, k], k
    for name, value in plain.network_.state_dict().items():
        torch.testing.assert_close(resumed.network_.state_dict()[name], value, rtol=0, atol=0,
                                   msg=name)
