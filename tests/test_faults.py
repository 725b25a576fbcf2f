"""Faults a cluster job meets: a featurisation killed half-way, two processes writing one
cache, a damaged checkpoint. Nothing a user computed is lost or served corrupt."""

from __future__ import annotations

import glob
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

N_CRYSTALS = 8


def _crystals(n: int = N_CRYSTALS) -> list[Structure]:
    """Small two-molecule cells, each a little different (so each is its own entry)."""
    out = []
    for i in range(n):
        d = 0.17 + 0.004 * i
        out.append(Structure(Lattice.orthorhombic(5.0 + 0.1 * i, 6.0, 6.5), ["C", "O", "C", "O"],
                             [[0.1, 0.1, 0.1], [0.1 + d, 0.1, 0.1],
                              [0.6, 0.55, 0.6], [0.6, 0.55 + d, 0.6]]))
    for i, s in enumerate(out):
        s.properties["id"] = f"crystal_{i}"
    return out


def _entries(cache: Path) -> list[str]:
    return sorted(glob.glob(os.path.join(cache, "**", "output.pkl"), recursive=True))


def _equal(a, b) -> None:
    assert a.structure_id == b.structure_id
    for field in ("atomic_numbers", "distance_matrix", "angle_features", "edge_index",
                  "edge_vectors", "line_graph_index", "line_graph_cosines"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


#: A child process: featurise the pickled crystals into a cache, each record taking
#: ``delay`` seconds (the featuriser's own code, slowed down from outside), then pickle
#: the records to ``out``.
_CHILD = textwrap.dedent("""
    import pickle, sys, time
    import mcrt_sklearn.featurizers.graph as graph
    crystals_file, cache, delay, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    real = graph.featurize_structure
    def slow(*args, **kwargs):
        record = real(*args, **kwargs)
        time.sleep(delay)
        return record
    graph.featurize_structure = slow
    crystals = pickle.load(open(crystals_file, "rb"))
    records = graph.MCRTFeaturizer(images=False, cache_dir=cache).transform(crystals)
    pickle.dump(records, open(out, "wb"))
""")


def _child(tmp_path: Path, cache: Path, delay: float, out: Path) -> subprocess.Popen:
    crystals_file = tmp_path / "crystals.pkl"
    if not crystals_file.exists():
        crystals_file.write_bytes(pickle.dumps(_crystals()))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(script), str(crystals_file), str(cache),
                             str(delay), str(out)], env=env, stderr=subprocess.PIPE)


def test_sigkill_during_cached_featurisation_then_rerun(tmp_path):
    cache = tmp_path / "cache"
    proc = _child(tmp_path, cache, 0.4, tmp_path / "never.pkl")
    deadline = time.monotonic() + 120
    while len(_entries(cache)) < 2:  # killed once some, not all, entries are written
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the child wrote no cache entries"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(_entries(cache))
    assert 2 <= written < N_CRYSTALS
    for entry in _entries(cache):  # every entry left behind is whole
        joblib.load(entry)

    fz = MCRTFeaturizer(images=False, cache_dir=str(cache))
    rerun = fz.transform(_crystals())
    assert fz.cache_hits_ == written  # what was done before the kill is not redone
    fresh = MCRTFeaturizer(images=False).transform(_crystals())
    for a, b in zip(rerun, fresh, strict=True):
        _equal(a, b)
    assert len(_entries(cache)) == N_CRYSTALS
    again = MCRTFeaturizer(images=False, cache_dir=str(cache))
    again.transform(_crystals())
    assert again.cache_hits_ == N_CRYSTALS


def test_two_processes_featurise_into_one_cache(tmp_path):
    cache = tmp_path / "cache"
    outs = [tmp_path / "a.pkl", tmp_path / "b.pkl"]
    procs = [_child(tmp_path, cache, 0.05, out) for out in outs]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    first, second = (pickle.loads(out.read_bytes()) for out in outs)
    fresh = MCRTFeaturizer(images=False).transform(_crystals())
    for a, b, c in zip(first, second, fresh, strict=True):
        _equal(a, c)
        _equal(b, c)
    assert len(_entries(cache)) == N_CRYSTALS  # one entry per crystal, none doubled
    fz = MCRTFeaturizer(images=False, cache_dir=str(cache))
    for a, b in zip(fz.transform(_crystals()), fresh, strict=True):
        _equal(a, b)
    assert fz.cache_hits_ == N_CRYSTALS


def test_damaged_checkpoints_are_typed_errors_everywhere(tmp_path):
    import torch

    from mcrt_sklearn import MCRTEncoder, MCRTRegressor
    from mcrt_sklearn.errors import CheckpointError
    from mcrt_sklearn.model.checkpoint import load_checkpoint, save_checkpoint
    from mcrt_sklearn.model.mcrt import MCRT, MCRTConfig

    good = save_checkpoint(MCRT(MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2,
                                           alignn_hidden_dim=8, alignn_num_conv=1,
                                           use_images=False)), tmp_path / "good.ckpt")
    blob = good.read_bytes()
    damaged = {"truncated": blob[: len(blob) // 2], "empty": b"",
               "garbage": os.urandom(4096), "zeroed-tail": blob[:-64] + bytes(64)}
    for name, data in damaged.items():
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=str(path.name)):
            load_checkpoint(path)
        records = _records_for_encoder()
        with pytest.raises(CheckpointError):
            MCRTEncoder(checkpoint=str(path)).fit(records)
        with pytest.raises(CheckpointError):
            MCRTRegressor(checkpoint=str(path), hid_dim=16, num_blocks=1, num_heads=2,
                          alignn_hidden_dim=8, alignn_num_conv=1, use_images=False,
                          max_epochs=1).fit(records, np.arange(len(records), dtype=float))
    # a state dict with a tensor missing is named, not a KeyError deep in torch
    from safetensors.torch import load_file, save_file

    from mcrt_sklearn.model.checkpoint import read_checkpoint

    state, meta = read_checkpoint(good)
    key = sorted(state)[0]
    del state[key]
    torch.save({"format": "mcrt_sklearn", "format_version": 1, "config": meta["config"],
                "state_dict": state}, tmp_path / "missing.ckpt")  # a version-1 file
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "missing.ckpt")
    # the same in the safetensors format (its weights checksum left out of the document)
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as fh:
        header = dict(fh.metadata())
    doc = json.loads(header["mcrt_sklearn"])
    doc.pop("weights_sha256")
    header["mcrt_sklearn"] = json.dumps(doc)
    tensors = load_file(good)
    del tensors[key]
    save_file(tensors, tmp_path / "missing.safetensors", metadata=header)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint(tmp_path / "missing.safetensors")


def _records_for_encoder():
    return MCRTFeaturizer(images=False).transform(_crystals(4))
