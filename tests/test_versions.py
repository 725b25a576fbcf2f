"""The version registry: every cache key and fold key changes with the versions of the
algorithms behind it, and with nothing else."""

from __future__ import annotations

import json
import subprocess
from types import MappingProxyType

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import mcrt_sklearn.versions as registry
from mcrt_sklearn import benchmark
from mcrt_sklearn.featurizers.batch import cache_key
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer


def _bumped(monkeypatch, name: str) -> None:
    """Pretend the algorithm ``name`` changed its output."""
    bumped = dict(registry.VERSIONS)
    bumped[name] += 1
    monkeypatch.setattr(registry, "VERSIONS", MappingProxyType(bumped))


def _crystal() -> Structure:
    return Structure(Lattice.cubic(6.0), ["C", "H"], [[0, 0, 0], [0.18, 0, 0]])


def test_registry_is_the_newest_history_entry_and_refuses_unknown_names():
    for name, history in registry.HISTORY.items():
        assert registry.VERSIONS[name] == max(history)
        assert all(isinstance(text, str) and text for text in history.values())
    assert registry.versions("soap", "cgcnn-graph", "soap") == {
        "cgcnn-graph": registry.version("cgcnn-graph"), "soap": registry.version("soap")}
    with pytest.raises(ValueError, match="no version registered for 'sopa'"):
        registry.version("sopa")
    # the constants other modules document are read from the registry
    from mcrt_sklearn.baselines.cgcnn import GRAPH_VERSION
    from mcrt_sklearn.featurizers.persistence import FAST_MODE_VERSION
    from mcrt_sklearn.model.checkpoint import FORMAT_VERSION
    from mcrt_sklearn.training import RECIPE_VERSION

    assert (GRAPH_VERSION, FAST_MODE_VERSION, FORMAT_VERSION, RECIPE_VERSION) == (
        registry.VERSIONS["cgcnn-graph"], registry.VERSIONS["persistence-fast"],
        registry.VERSIONS["checkpoint"], registry.VERSIONS["training-recipe"])


def test_versioned_key_depends_on_payload_namespace_and_component_versions(monkeypatch):
    key = registry.versioned_key("ns", {"a": 1}, ["soap"])
    assert key == registry.versioned_key("ns", {"a": 1}, ("soap", "soap"))
    assert len(registry.versioned_key("ns", {"a": 1}, ["soap"], length=16)) == 16
    assert key != registry.versioned_key("ns", {"a": 2}, ["soap"])
    assert key != registry.versioned_key("other", {"a": 1}, ["soap"])
    assert key != registry.versioned_key("ns", {"a": 1}, ["soap", "cgcnn-graph"])
    _bumped(monkeypatch, "cgcnn-graph")
    assert key == registry.versioned_key("ns", {"a": 1}, ["soap"])  # not a component
    _bumped(monkeypatch, "soap")
    assert key != registry.versioned_key("ns", {"a": 1}, ["soap"])


def test_record_cache_keys_follow_the_image_algorithms(monkeypatch):
    s = _crystal()

    def keys():
        out = {}
        for label, fz in {"exact": MCRTFeaturizer(image_mode="exact"),
                          "fast": MCRTFeaturizer(image_mode="fast"),
                          "none": MCRTFeaturizer(images=False, image_mode="fast")}.items():
            out[label] = cache_key(s, fz._cache_namespace, fz._cache_params(),
                                   fz._cache_components)
        return out

    before = keys()
    assert len(set(before.values())) == 3
    _bumped(monkeypatch, "persistence-fast")
    after_fast = keys()
    assert after_fast["fast"] != before["fast"]
    assert after_fast["exact"] == before["exact"] and after_fast["none"] == before["none"]
    # the exact algorithm also runs inside the fast mode (on small clouds)
    _bumped(monkeypatch, "persistence-exact")
    after_exact = keys()
    assert after_exact["exact"] != before["exact"] and after_exact["fast"] != after_fast["fast"]
    assert after_exact["none"] == before["none"]
    _bumped(monkeypatch, "mcrt-records")
    assert keys()["none"] != before["none"]
    _bumped(monkeypatch, "structure-fingerprint")
    assert keys()["none"] != before["none"]


def test_a_version_bump_misses_the_on_disk_record_cache(tmp_path, monkeypatch):
    s = _crystal()
    fz = MCRTFeaturizer(images=False, cache_dir=str(tmp_path))
    [first] = fz.transform([s])
    assert fz.cache_hits_ == 0
    fz.transform([s])
    assert fz.cache_hits_ == 1
    _bumped(monkeypatch, "mcrt-records")
    [again] = fz.transform([s])
    assert fz.cache_hits_ == 0  # recomputed, not served from the old entry
    np.testing.assert_array_equal(first.angle_features, again.angle_features)
    _bumped(monkeypatch, "soap")  # not an algorithm of the records
    fz.transform([s])
    assert fz.cache_hits_ == 1


def test_persistence_and_cgcnn_caches_are_versioned(tmp_path, monkeypatch):
    from mcrt_sklearn.baselines.cgcnn import build_cgcnn_graphs
    from mcrt_sklearn.featurizers import persistence

    feat = persistence.PersistenceImageFeaturizer(pixels=4, box=20.0,
                                                  cache_dir=str(tmp_path / "pi"))
    s = _crystal()
    feat.transform([s])
    feat.transform([s])
    assert feat.cache_hits_ == 1
    _bumped(monkeypatch, "persistence-exact")
    feat.transform([s])
    assert feat.cache_hits_ == 0

    import joblib

    built = []
    memory = joblib.Memory(str(tmp_path / "cg"), verbose=0)
    from mcrt_sklearn.baselines import cgcnn

    real_graph = cgcnn.build_cgcnn_graph
    monkeypatch.setattr(cgcnn, "build_cgcnn_graph",
                        lambda *a, **k: built.append(1) or real_graph(*a, **k))
    build_cgcnn_graphs([s], cache=memory)
    build_cgcnn_graphs([s], cache=memory)
    assert len(built) == 1
    _bumped(monkeypatch, "cgcnn-graph")
    build_cgcnn_graphs([s], cache=memory)
    assert len(built) == 2


def test_fold_keys_follow_each_models_own_algorithms(monkeypatch):
    s = benchmark.default_settings(fast=True)
    payload = {"dataset": "d", "train": ["a"], "test": ["b"], "content": "c"}

    def keys():
        return {m: benchmark.fold_key(payload, m, s) for m in benchmark.MODELS}

    before = keys()
    changed = {}
    for name in ("persistence-fast", "training-recipe", "soap", "cgcnn-graph",
                 "alignn-graph", "benchmark-results"):
        monkeypatch.undo()
        _bumped(monkeypatch, name)
        now = keys()
        changed[name] = {m for m in benchmark.MODELS if now[m] != before[m]}
    monkeypatch.undo()
    mcrt = set(benchmark.MCRT_MODELS)
    assert changed["persistence-fast"] == mcrt - {"MCRTi"}  # MCRTi has no images
    assert changed["training-recipe"] == mcrt
    assert changed["soap"] == {"RF-SOAP", "KRR-SOAP"}
    assert changed["cgcnn-graph"] == {"CGCNN", "CrystalTwins"}
    assert changed["alignn-graph"] == {"ALIGNN"}
    assert changed["benchmark-results"] == set(benchmark.MODELS)
    # the pre-training checkpoint's name changes with the recipe too
    spec = benchmark._pretrain_spec(s, "corpus", True)
    _bumped(monkeypatch, "training-recipe")
    assert benchmark._pretrain_spec(s, "corpus", True) != spec
    # and a corrected structure under the same id changes the key
    assert benchmark.fold_key({**payload, "content": "d"}, "KRR-SOAP", s) != benchmark.fold_key(
        payload, "KRR-SOAP", s)


def test_provenance_names_the_checkout_revision():
    prov = registry.provenance(["soap"])
    assert prov["versions"] == {"soap": registry.version("soap")}
    assert set(registry.provenance()["versions"]) == set(registry.VERSIONS)
    try:
        head = subprocess.run(["git", "-C", str(registry.__file__).rsplit("/", 2)[0],
                               "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not run from a git checkout")
    assert prov["git_revision"] == head and isinstance(prov["git_dirty"], bool)
    json.dumps(prov)  # stored in fold files and results.json
