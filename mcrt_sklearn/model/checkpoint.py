"""Loading reference (Lightning) checkpoints and saving/loading our own files.

Reference checkpoints hold ``{"state_dict": …, "hyper_parameters": {"config": {…}}}``;
the architecture is rebuilt from ``config`` (keys it lacks are inferred from the
state_dict's shapes where that is possible), the heads from the ``<task>_head.*`` keys
present, and the weights are loaded strictly.

Our format (:func:`save_checkpoint`) holds only tensors and plain values, so it always
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import types
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.model.mcrt import KNOWN_TASKS, MCRT, MCRTConfig
from mcrt_sklearn.versions import git_revision, version

__all__ = ["load_checkpoint", "save_checkpoint", "config_from_state_dict", "FORMAT_NAME"]

FORMAT_NAME = "mcrt_sklearn"
#: ``versions.VERSIONS["checkpoint"]``
FORMAT_VERSION = version("checkpoint")


def _torch_load(path, map_location, trusted: bool):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle.UnpicklingError, RuntimeError …
        msg = str(err)
        first = msg.splitlines()[0] if msg else type(err).__name__
        if "weights only" not in msg.lower() and "weights_only" not in msg:
            raise CheckpointError(
                f"{path}: not a readable torch checkpoint ({type(err).__name__}: {first})"
            ) from err
        safe_error = first
    if not trusted:
        raise CheckpointError(
            f"{path}: this checkpoint holds Python objects besides tensors and cannot be "
            "loaded with torch.load(weights_only=True). Unpickling it can run arbitrary code: "
            "pass trusted=True only if you trust where the file comes from. "
            f"(weights_only load said: {safe_error})"
        )
    try:
        return torch.load(
            path, map_location=map_location, weights_only=False, pickle_module=_lenient_pickle
        )
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot be loaded even with full unpickling ({err})"
        ) from err


class _Missing(dict):
    """Stand-in for a class whose package is not installed (e.g. Lightning's
    ``AttributeDict``, sacred's ``ReadOnlyDict``, callback objects): keeps dict items
    and attribute state, ignores constructor arguments."""

    def __new__(cls, *args, **kwargs):
        return dict.__new__(cls)

    def __init__(self, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], dict):
            self.update(args[0])

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif isinstance(state, tuple) and state and isinstance(state[-1], dict):
            self.__dict__.update(state[-1])


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Missing,), {"__module__": f"missing:{module}"})


#: ``pickle_module`` for trusted full unpickling that survives absent packages.
_lenient_pickle = types.SimpleNamespace(
    Unpickler=_LenientUnpickler,
    load=pickle.load,
    loads=pickle.loads,
    __name__="mcrt_lenient_pickle",
)


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def config_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Reference-config values implied by a state_dict's keys and shapes.

    ``num_heads`` cannot be inferred (it does not change any shape).
    """
    sd = state_dict
    keys = list(sd)
    out: dict[str, Any] = {}
    if "cls_embeddings.weight" in sd:
        out["hid_dim"] = int(sd["cls_embeddings.weight"].shape[0])
    n = _count(keys, r"transformer\.blocks\.(\d+)\.")
    if n:
        out["num_blocks"] = n
        w = sd.get("transformer.blocks.0.mlp.fc1.weight")
        if w is not None and "hid_dim" in out:
            ratio = w.shape[0] / out["hid_dim"]
            out["mlp_ratio"] = int(ratio) if float(ratio).is_integer() else ratio
        out["qkv_bias"] = "transformer.blocks.0.attn.qkv.bias" in sd
    if "GNN_embeddings.node_embedding.weight" in sd:
        out["alignn_hidden_dim"] = int(sd["GNN_embeddings.node_embedding.weight"].shape[1])
    n = _count(keys, r"GNN_embeddings\.conv_layers\.(\d+)\.")
    if n:
        out["alignn_num_conv"] = n
    if "GNN_embeddings.edge_embedding.weight" in sd:
        out["alignn_rbf_distance_dim"] = int(sd["GNN_embeddings.edge_embedding.weight"].shape[1])
    if "GNN_embeddings.angle_embedding.weight" in sd:
        out["alignn_rbf_triplet_dim"] = int(sd["GNN_embeddings.angle_embedding.weight"].shape[1])
    if "dist_MLP_Projector.fc1.weight" in sd:
        out["max_graph_len"] = int(sd["dist_MLP_Projector.fc1.weight"].shape[1])
        out["pos_emb"] = "relative"
    else:
        out["pos_emb"] = "none"
    if "angle_MLP_Projector.fc1.weight" in sd:
        n_feat = int(sd["angle_MLP_Projector.fc1.weight"].shape[1])
        for k in range(2, 9):
            if k * (k - 1) // 2 == n_feat:
                out["angle_nbr"] = k
    w = sd.get("transformer.patch_embed_1d.proj.1.weight")
    if w is not None:
        patch_dim = int(w.shape[1])
        side = int(round(patch_dim**0.5))
        if side * side == patch_dim:
            out["patch_size"] = (side, side)
    w = sd.get("classification_head.fc.weight")
    if w is not None:
        out["n_classes"] = 2 if w.shape[0] == 1 else int(w.shape[0])
    return out


def _tasks_in(state_dict) -> list[str]:
    present = {
        k.split(".", 1)[0][: -len("_head")]
        for k in state_dict
        if k.split(".", 1)[0].endswith("_head")
    }
    return [t for t in KNOWN_TASKS if t in present]


def _strict_check(model: MCRT, state_dict: Mapping[str, torch.Tensor], path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                shown = "\n    ".join(items[:30]) + (
                    f"\n    … and {len(items) - 30} more" if len(items) > 30 else ""
                )
                parts.append(f"  {title} ({len(items)}):\n    {shown}")
        raise CheckpointError(
            f"{path}: the weights do not match the architecture built from its config:\n"
            + "\n".join(parts)
        )


def _unwrap_state_dict(sd: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Plain {key: tensor}; strips a common ``model.``/``module.`` prefix."""
    sd = dict(sd)
    for prefix in ("module.", "model."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"state_dict entries that are not tensors: {bad[:10]}")
    return sd


#: Config fields that ``load_checkpoint(overrides=...)`` may change: they do not change
#: the weights, only how the network trains.
OVERRIDABLE = ("drop_rate", "attn_drop", "drop_path_rate", "alignn_dropout")


def load_checkpoint(path, map_location="cpu", trusted: bool = False,
                    overrides: Mapping[str, Any] | None = None) -> MCRT:
    """Load an MCRT network from a reference Lightning checkpoint or one of ours.

    Parameters
    ----------
    path : str or Path
        ``.ckpt`` of the reference implementation (``state_dict`` +
        ``hyper_parameters.config``) or a file written by :func:`save_checkpoint`.
    map_location : str or torch.device
        Where to put the tensors.
    trusted : bool
        Allow full unpickling for files that ``torch.load(weights_only=True)`` refuses
        (e.g. Lightning checkpoints carrying optimizer or callback objects). Only for
        files from a trusted source.
    overrides : mapping, optional
        New values of the dropout fields of the stored config (:data:`OVERRIDABLE`),
        e.g. ``{"drop_rate": 0.0, "attn_drop": 0.0, "drop_path_rate": 0.0}`` for a
        deterministic training replay.

    Returns
    -------
    MCRT
        The network in eval mode.

    Raises
    ------
    CheckpointError
        Unreadable/untrusted file, unsupported architecture, or weights that do not
        match (missing/unexpected keys, wrong shapes — all listed).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = _torch_load(path, map_location, trusted)
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        raise CheckpointError(
            f"{path}: not an MCRT checkpoint (expected a dict with 'state_dict' and a config; "
            f"got {type(obj).__name__}{' with keys ' + str(list(obj)[:10]) if isinstance(obj, Mapping) else ''})"
        )
    sd = _unwrap_state_dict(obj["state_dict"])
    try:
        if obj.get("format") == FORMAT_NAME:
            config = MCRTConfig.from_dict(dict(obj["config"]))
        else:
            hp = obj.get("hyper_parameters") or {}
            ref = hp.get("config", hp) if isinstance(hp, Mapping) else {}
            ref = dict(ref) if isinstance(ref, Mapping) else {}
            if "num_heads" not in ref:
                raise CheckpointError(
                    f"{path}: hyper_parameters.config has no 'num_heads'; it cannot be inferred from the weights"
                )
            merged = {
                **config_from_state_dict(sd),
                **{k: v for k, v in ref.items() if v is not None or k == "qk_scale"},
            }
            if "pos_emb" not in ref:
                merged["pos_emb"] = config_from_state_dict(sd)["pos_emb"]
            tasks = _tasks_in(sd)
            if "classification" in tasks and not merged.get("n_classes"):
                merged["n_classes"] = config_from_state_dict(sd).get("n_classes", 2)
            config = MCRTConfig.from_reference_config(merged, tasks=tasks)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: unsupported or invalid configuration: {err}") from err
    if overrides:
        bad = sorted(set(overrides) - set(OVERRIDABLE))
        if bad:
            raise ValueError(f"overrides may only change {OVERRIDABLE}, got {bad}")
        config = replace(config, **dict(overrides))
    model = MCRT(config)
    _strict_check(model, sd, path)
    model.load_state_dict(sd, strict=True)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def save_checkpoint(model: MCRT, path, extra: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` as weights + config + library version and git revision (loadable
    with weights_only).

    ``extra`` adds plain values (str/int/float/bool/None, lists and dicts of them) under
    their own keys, e.g. an estimator's parameters; :func:`load_checkpoint` ignores them.
    The file is written atomically (temporary file, then rename).
    """
    from mcrt_sklearn import __version__

    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "git_revision": git_revision(),
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    reserved = set(payload) & set(extra or {})
    if reserved:
        raise ValueError(f"extra may not override {sorted(reserved)}")
    payload.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
