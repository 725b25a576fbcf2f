"""Checkpoint loading (reference Lightning layout, strictness, trust) and our own format."""

from __future__ import annotations

import fractions
import json

import pytest
import torch
from safetensors import safe_open
from synthetic_records import random_records

import mcrt_sklearn
from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.collate import collate
from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.model import MCRT, MCRTConfig, load_checkpoint, save_checkpoint
from mcrt_sklearn.model.checkpoint import (
    config_from_state_dict,
    is_safetensors,
    read_checkpoint_metadata,
)

torch.set_num_threads(2)

DATA = shared_data_dir()
PARITY = DATA / "reference_parity"
SMALL = PARITY / "reference_small.ckpt"
MANIFEST = PARITY / "pretrained_state_dict_manifest.json"

needs_small = pytest.mark.skipif(
    not SMALL.exists(), reason=f"reference checkpoint not found at {SMALL}"
)
needs_manifest = pytest.mark.skipif(
    not MANIFEST.exists(), reason=f"state_dict manifest not found at {MANIFEST}"
)


def _reference_layout(model: MCRT) -> dict:
    """A checkpoint as the reference writes it (Lightning: state_dict + hyper_parameters.config)."""
    return {
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "hyper_parameters": {"config": model.config.to_reference_config()},
    }


def _outputs(model, batch):
    with torch.no_grad():
        return model(batch)


@needs_small
def test_load_reference_small_checkpoint():
    model = load_checkpoint(SMALL)
    assert isinstance(model, MCRT) and not model.training
    raw = torch.load(SMALL, weights_only=True)
    cfg = raw["hyper_parameters"]["config"]
    assert model.config.hid_dim == cfg["hid_dim"] and model.config.num_blocks == cfg["num_blocks"]
    assert model.config.tasks == ("regression",)
    own = model.state_dict()
    assert set(own) == set(raw["state_dict"])
    assert all(torch.equal(own[k], raw["state_dict"][k]) for k in own)


@needs_manifest
def test_full_size_architecture_matches_the_manifest():
    manifest = json.loads(MANIFEST.read_text())
    cfg = MCRTConfig.from_reference_config(manifest["config"], tasks=manifest["tasks"])
    with torch.device("meta"):
        model = MCRT(cfg)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    expected = manifest["state_dict_shapes"]
    assert len(expected) == 437
    assert set(shapes) == set(expected), set(shapes) ^ set(expected)
    assert {k: v for k, v in shapes.items() if v != expected[k]} == {}
    # The loader's own shape inference agrees with the manifest's config.
    inferred = config_from_state_dict(
        {k: torch.empty(v, device="meta") for k, v in expected.items()}
    )
    for key in (
        "hid_dim",
        "num_blocks",
        "alignn_hidden_dim",
        "alignn_num_conv",
        "max_graph_len",
        "angle_nbr",
    ):
        assert inferred[key] == manifest["config"][key], key


def test_reference_checkpoint_of_another_size(tmp_path):
    """Nothing depends on the fixture's sizes: any reference-layout checkpoint round-trips."""
    torch.manual_seed(0)
    cfg = MCRTConfig(
        num_blocks=3,
        hid_dim=24,
        num_heads=3,
        mlp_ratio=2,
        alignn_hidden_dim=12,
        alignn_num_conv=3,
        alignn_rbf_distance_dim=20,
        max_graph_len=64,
        angle_nbr=6,
        tasks=("map", "apc", "cdp", "sep"),
    )
    model = MCRT(cfg).eval()
    path = tmp_path / "other.ckpt"
    torch.save(_reference_layout(model), path)
    loaded = load_checkpoint(path)
    assert loaded.config.tasks == ("map", "apc", "cdp", "sep")
    assert loaded.config.angle_nbr == 6 and loaded.config.max_graph_len == 64
    batch = collate(random_records(3, n_atoms=(4, 20), seed=1))
    a, b = _outputs(model, batch), _outputs(loaded, batch)
    for key in ("cls_feats", "raw_cls_feats", "map_logits", "cdp", "sep_logits"):
        assert torch.equal(a[key], b[key]), key


def test_missing_key_is_reported(tmp_path):
    model = MCRT(
        MCRTConfig(
            num_blocks=1,
            hid_dim=16,
            num_heads=2,
            alignn_hidden_dim=8,
            alignn_num_conv=1,
            tasks=("regression",),
        )
    )
    ckpt = _reference_layout(model)
    del ckpt["state_dict"]["transformer.blocks.0.attn.qkv.bias"]
    path = tmp_path / "missing.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(
        CheckpointError, match=r"missing keys \(1\)[\s\S]*transformer\.blocks\.0\.attn\.qkv\.bias"
    ):
        load_checkpoint(path)


def test_extra_key_and_shape_mismatch_are_reported(tmp_path):
    model = MCRT(
        MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1)
    )
    ckpt = _reference_layout(model)
    ckpt["state_dict"]["foo.weight"] = torch.zeros(3)
    ckpt["state_dict"]["pooler.dense.bias"] = torch.zeros(17)
    path = tmp_path / "extra.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "unexpected keys (1)" in msg and "foo.weight" in msg
    assert "shape mismatches (1)" in msg and "pooler.dense.bias" in msg


def test_config_contradicting_weights_is_reported(tmp_path):
    model = MCRT(
        MCRTConfig(num_blocks=2, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1)
    )
    ckpt = _reference_layout(model)
    ckpt["hyper_parameters"]["config"]["num_blocks"] = 3
    path = tmp_path / "contradicting.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="transformer.blocks.2"):
        load_checkpoint(path)


def test_config_without_num_heads_is_refused(tmp_path):
    model = MCRT(
        MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1)
    )
    ckpt = _reference_layout(model)
    del ckpt["hyper_parameters"]["config"]["num_heads"]
    path = tmp_path / "noheads.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="num_heads"):
        load_checkpoint(path)


def test_untrusted_pickle_needs_trusted_flag(tmp_path):
    model = MCRT(
        MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1)
    )
    ckpt = _reference_layout(model)
    ckpt["callbacks"] = {"some_state": fractions.Fraction(1, 3)}  # not allowed by weights_only
    path = tmp_path / "pickled.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, trusted=True)
    assert isinstance(loaded, MCRT)


def test_garbage_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path)
    path2 = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), path2)
    with pytest.raises(CheckpointError, match="not an MCRT checkpoint"):
        load_checkpoint(path2)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_own_format_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = MCRTConfig(
        num_blocks=2,
        hid_dim=16,
        num_heads=4,
        alignn_hidden_dim=8,
        alignn_num_conv=1,
        use_images=False,
        positional="relative",
        tasks=("classification", "sep"),
        n_classes=3,
    )
    model = MCRT(cfg).eval()
    path = save_checkpoint(model, tmp_path / "sub" / "mine.pt", extra={"estimator": {"lr": 1e-4}})
    assert is_safetensors(path)  # safetensors weights + a JSON document, whatever the suffix
    with safe_open(str(path), framework="pt") as fh:
        raw = json.loads(fh.metadata()["mcrt_sklearn"])  # plain JSON, no pickle
        assert set(fh.keys()) == set(model.state_dict())
    assert raw["estimator"] == {"lr": 1e-4}
    with pytest.raises(ValueError, match="state_dict"):
        save_checkpoint(model, tmp_path / "bad.pt", extra={"state_dict": {}})
    assert raw["library_version"] == mcrt_sklearn.__version__
    assert raw["format"] == "mcrt_sklearn" and raw["config"]["n_classes"] == 3
    assert raw["format_version"] == 2 and raw["provenance"]["versions"]["checkpoint"] == 2
    assert read_checkpoint_metadata(path)["estimator"] == {"lr": 1e-4}
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    assert not loaded.training
    batch = collate(random_records(2, seed=3), require_images=False)
    a, b = _outputs(model, batch), _outputs(loaded, batch)
    assert torch.equal(a["classification"], b["classification"])
    assert torch.equal(a["sep_logits"], b["sep_logits"])
    assert not list(tmp_path.glob("sub/*.tmp"))


@needs_small
def test_reference_checkpoint_resaved_in_our_format(tmp_path):
    model = load_checkpoint(SMALL)
    path = save_checkpoint(model, tmp_path / "small.pt")
    again = load_checkpoint(path)
    own, other = model.state_dict(), again.state_dict()
    assert set(own) == set(other) and all(torch.equal(own[k], other[k]) for k in own)


def test_trusted_load_survives_classes_of_absent_packages(tmp_path, monkeypatch):
    """Lightning/sacred checkpoints pickle e.g. ``AttributeDict``; loading them must not
    need those packages installed."""
    import sys
    import types

    fake = types.ModuleType("absent_pkg_for_mcrt_test")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = fake.__name__
    AttributeDict.__qualname__ = "AttributeDict"
    fake.AttributeDict = AttributeDict
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    model = MCRT(
        MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1)
    )
    ckpt = _reference_layout(model)
    hp = AttributeDict(ckpt["hyper_parameters"])
    hp.extra = "attribute state"
    ckpt["hyper_parameters"] = hp
    path = tmp_path / "lightning_like.ckpt"
    torch.save(ckpt, path)
    monkeypatch.delitem(sys.modules, fake.__name__)
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, trusted=True)
    assert loaded.config.hid_dim == 16


def test_version_1_files_of_ours_keep_loading(tmp_path):
    """The torch ``.pt`` written before the safetensors format (format version 1) loads
    with weights_only, and converts to the new format with identical outputs."""
    from mcrt_sklearn.model.checkpoint import convert_checkpoint

    torch.manual_seed(1)
    model = MCRT(MCRTConfig(num_blocks=1, hid_dim=16, num_heads=2, alignn_hidden_dim=8,
                            alignn_num_conv=1, use_images=False, tasks=("regression",))).eval()
    old = tmp_path / "old.pt"
    torch.save({"format": "mcrt_sklearn", "format_version": 1, "library_version": "0.1.0",
                "git_revision": None, "config": model.config.to_dict(),
                "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
                "estimator": {"class": "MCRTRegressor", "params": {"lr": 1e-4,
                                                                   "betas": (0.9, 0.98)}}},
               old)
    loaded = load_checkpoint(old)
    assert loaded.config == model.config
    assert read_checkpoint_metadata(old)["format_version"] == 1
    new = convert_checkpoint(old, tmp_path / "new.safetensors")
    meta = read_checkpoint_metadata(new)
    assert meta["format_version"] == 2 and meta["estimator"]["class"] == "MCRTRegressor"
    assert meta["provenance"]["converted_from"]["format"].endswith("(format version 1)")
    batch = collate(random_records(2, seed=5), require_images=False)
    a, b = _outputs(model, batch), _outputs(load_checkpoint(new), batch)
    assert torch.equal(a["regression"], b["regression"])
