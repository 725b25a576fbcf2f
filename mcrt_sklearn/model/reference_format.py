"""Reading torch-pickled checkpoints: the reference's Lightning files and our version 1.

- :func:`read_torch_checkpoint` loads a file with ``torch.load(weights_only=True)``; a
  file that holds Python objects besides tensors (Lightning's callbacks, optimizer state,
  ``AttributeDict``) needs ``trusted=True`` and is then unpickled with
  :data:`_lenient_pickle`, which stands in for the classes of packages that are not
  installed.
- The reference's ``{"state_dict": …, "hyper_parameters": {"config": {…}}}``: the
  architecture is rebuilt from ``config`` (:func:`reference_model_config`), keys it lacks
  inferred from the state_dict's shapes (:func:`config_from_state_dict`), the heads from
  the ``<task>_head.*`` keys present; a common ``model.`` / ``module.`` prefix of the keys
  is stripped (:func:`_unwrap_state_dict`).

The entry points are in :mod:`mcrt_sklearn.model.checkpoint`.
"""

from __future__ import annotations

import pickle
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.model.mcrt import KNOWN_TASKS, MCRTConfig
from mcrt_sklearn.model.safe_format import FORMAT_NAME

__all__ = [
    "read_torch_checkpoint",
    "reference_config",
    "reference_model_config",
    "config_from_state_dict",
]

#: Top-level keys of a Lightning file kept in the metadata (besides its config).
_LIGHTNING_KEYS = ("epoch", "global_step", "pytorch-lightning_version")


def _torch_load(path, map_location, trusted: bool) -> tuple[Any, bool]:
    """(object, whether it needed full unpickling)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True), False
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
        ), True
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


def read_torch_checkpoint(path: Path, map_location, trusted: bool
                          ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, metadata) of a torch-pickled file: a reference Lightning checkpoint
    (metadata ``format`` = ``"reference"``, ``hyper_parameters``, the top-level ``keys``)
    or a version-1 ``.pt`` of ours (its stored values); both with ``unpickled``.

    Raises
    ------
    CheckpointError
        Unreadable file, untrusted Python objects, no ``state_dict``.
    """
    obj, unpickled = _torch_load(path, map_location, trusted)
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        raise CheckpointError(
            f"{path}: not an MCRT checkpoint (expected a dict with 'state_dict' and a config; "
            f"got {type(obj).__name__}{' with keys ' + str(list(obj)[:10]) if isinstance(obj, Mapping) else ''})"
        )
    sd = _unwrap_state_dict(obj["state_dict"])
    if obj.get("format") == FORMAT_NAME:
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        meta.setdefault("format_version", 1)
    else:  # the reference's Lightning layout: keep what describes it, not optimizer state
        meta = {"format": "reference", "hyper_parameters": obj.get("hyper_parameters"),
                "keys": sorted(str(k) for k in obj)}
        for key in _LIGHTNING_KEYS:
            if key in obj:
                meta[key] = obj[key]
    meta["unpickled"] = unpickled
    return sd, meta


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


def reference_config(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The reference's config in a Lightning file's metadata
    (``hyper_parameters.config``, or ``hyper_parameters`` itself); ``{}`` when absent."""
    hp = meta.get("hyper_parameters") or {}
    ref = hp.get("config", hp) if isinstance(hp, Mapping) else {}
    return dict(ref) if isinstance(ref, Mapping) else {}


def reference_model_config(sd: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                           path) -> MCRTConfig:
    """The architecture of a reference file: its config, completed from the weights'
    shapes, with the heads whose keys are present.

    Raises
    ------
    CheckpointError
        The config has no ``num_heads`` (the weights do not tell it).
    ValueError, TypeError, KeyError
        An unsupported or invalid configuration.
    """
    ref = reference_config(meta)
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
    return MCRTConfig.from_reference_config(merged, tasks=tasks)
