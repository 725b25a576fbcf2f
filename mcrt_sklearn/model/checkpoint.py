"""Loading reference (Lightning) checkpoints and saving/loading our own files.

Files read by :func:`load_checkpoint`:

- **ours, format version 2** (what :func:`save_checkpoint` writes): a
  `safetensors <https://huggingface.co/docs/safetensors>`_ file. Its header holds the
  weights' layout and one JSON document under the key ``"mcrt_sklearn"``: the
  architecture (``config``), the library version, a checksum of the weights, the
  provenance (what the network was trained on and how, what it started from) and, for a
  saved estimator, its parameters and fitted state (target scaling, classes). Reading it
  never unpickles anything.
- **ours, format version 1**: a torch ``.pt`` of plain values (``format``, ``config``,
  ``state_dict`` …), loaded with ``torch.load(weights_only=True)``; still read.
- **the reference's** Lightning checkpoints ``{"state_dict": …, "hyper_parameters":
  {"config": {…}}}``: the architecture is rebuilt from ``config`` (keys it lacks are
  inferred from the state_dict's shapes where that is possible), the heads from the
  ``<task>_head.*`` keys present, and the weights are loaded strictly. A file that holds
  Python objects besides tensors (Lightning's callbacks, optimizer state) needs
  ``trusted=True``; :func:`convert_checkpoint` turns it once into a version-2 file that
  loads safely and gives identical outputs.

``path`` may also be the name of a published model or an http(s) URL
(:mod:`mcrt_sklearn.pretrained` downloads it into the model cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import types
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.model.mcrt import KNOWN_TASKS, MCRT, MCRTConfig
from mcrt_sklearn.versions import git_revision, version
from mcrt_sklearn.versions import provenance as version_provenance

__all__ = [
    "load_checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "read_checkpoint_metadata",
    "convert_checkpoint",
    "checkpoint_info",
    "is_safetensors",
    "weights_digest",
    "file_sha256",
    "config_from_state_dict",
    "FORMAT_NAME",
]

FORMAT_NAME = "mcrt_sklearn"
#: ``versions.VERSIONS["checkpoint"]``
FORMAT_VERSION = version("checkpoint")
#: The safetensors metadata key of the JSON document.
METADATA_KEY = "mcrt_sklearn"
#: Keys of the JSON document that ``extra`` may not set.
RESERVED = ("format", "format_version", "library_version", "git_revision", "config",
            "state_dict", "weights_sha256", "provenance")
#: safetensors headers larger than this are not believed (the format's own limit).
_MAX_HEADER = 100_000_000


def _resolve(path) -> Path:
    """A local file for ``path``: a path as given, else a published model's name or an
    http(s) URL, fetched into the model cache."""
    if isinstance(path, str) and not os.path.exists(path):
        from mcrt_sklearn.pretrained import resolve_checkpoint  # names and URLs

        return resolve_checkpoint(path)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def is_safetensors(path) -> bool:
    """Whether ``path`` starts like a safetensors file (8-byte header length, then JSON)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= min(_MAX_HEADER, size - 8) and head[8:9] == b"{"


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes (in name order): the
    checksum stored with the weights, so a damaged file is an error, not other numbers."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{str(t.dtype)}|{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def _first_line(err: BaseException) -> str:
    msg = str(err)
    return msg.splitlines()[0] if msg else type(err).__name__


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            state_dict = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # SafetensorError: truncated, bad header …
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {_first_line(err)})"
        ) from err
    if meta.get("format") != FORMAT_NAME or METADATA_KEY not in meta:
        raise CheckpointError(
            f"{path}: a safetensors file without the {FORMAT_NAME} document in its header "
            f"(metadata keys: {sorted(meta)}); it was not written by save_checkpoint"
        )
    try:
        doc = json.loads(meta[METADATA_KEY])
    except ValueError as err:
        raise CheckpointError(f"{path}: damaged {FORMAT_NAME} document ({err})") from err
    if not isinstance(doc, dict) or "config" not in doc:
        raise CheckpointError(f"{path}: the {FORMAT_NAME} document has no 'config'")
    expected = doc.get("weights_sha256")
    if expected is not None and weights_digest(state_dict) != expected:
        raise CheckpointError(
            f"{path}: damaged: the weights do not match the checksum stored with them "
            "(the file was changed or cut short after it was written)"
        )
    return state_dict, doc


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


def _read(path: Path, map_location, trusted: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, metadata) of a local file; see :func:`read_checkpoint`."""
    if is_safetensors(path):
        sd, doc = _read_safetensors(path)
        return _unwrap_state_dict(sd), {**doc, "unpickled": False}
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
        for key in ("epoch", "global_step", "pytorch-lightning_version"):
            if key in obj:
                meta[key] = obj[key]
    meta["unpickled"] = unpickled
    return sd, meta


def read_checkpoint(path, map_location="cpu", trusted: bool = False
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and the metadata of any checkpoint :func:`load_checkpoint` reads.

    Returns
    -------
    state_dict : dict of str to Tensor
    metadata : dict
        Ours: the stored document (``format`` = ``"mcrt_sklearn"``, ``format_version``,
        ``config``, ``library_version``, ``provenance``, ``estimator`` …). The
        reference's: ``format`` = ``"reference"``, ``hyper_parameters``, the top-level
        ``keys``. Both: ``unpickled`` (whether reading it needed full unpickling).
    """
    return _read(_resolve(path), map_location, trusted)


def read_checkpoint_metadata(path, trusted: bool = False) -> dict[str, Any]:
    """The metadata of :func:`read_checkpoint`; for a version-2 file only its header is read."""
    path = _resolve(path)
    if not is_safetensors(path):
        return _read(path, "cpu", trusted)[1]
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
    except Exception as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {_first_line(err)})"
        ) from err
    try:
        doc = json.loads(meta[METADATA_KEY])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: no readable {FORMAT_NAME} document ({err})") from err
    return {**doc, "unpickled": False}


def _config_of(sd: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path) -> MCRTConfig:
    try:
        if meta.get("format") == FORMAT_NAME:
            return MCRTConfig.from_dict(dict(meta["config"]))
        hp = meta.get("hyper_parameters") or {}
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
        return MCRTConfig.from_reference_config(merged, tasks=tasks)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: unsupported or invalid configuration: {err}") from err


def _build(sd: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path,
           overrides: Mapping[str, Any] | None = None) -> MCRT:
    config = _config_of(sd, meta, path)
    if overrides:
        bad = sorted(set(overrides) - set(OVERRIDABLE))
        if bad:
            raise ValueError(f"overrides may only change {OVERRIDABLE}, got {bad}")
        config = replace(config, **dict(overrides))
    model = MCRT(config)
    _strict_check(model, sd, path)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def load_checkpoint(path, map_location="cpu", trusted: bool = False,
                    overrides: Mapping[str, Any] | None = None) -> MCRT:
    """Load an MCRT network from one of our files, a reference Lightning checkpoint, a
    published model's name or a URL.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint` (safetensors + JSON; or a version-1
        ``.pt`` of ours), a ``.ckpt`` of the reference implementation (``state_dict`` +
        ``hyper_parameters.config``), the name of a published model
        (:func:`mcrt_sklearn.pretrained.list_models`, e.g. ``"mcrt-pretrained"``) or an
        http(s) URL; names and URLs are downloaded once into the model cache
        (:func:`mcrt_sklearn.pretrained.fetch`).
    map_location : str or torch.device
        Where to put the tensors.
    trusted : bool
        Allow full unpickling for files that ``torch.load(weights_only=True)`` refuses
        (e.g. Lightning checkpoints carrying optimizer or callback objects). Only for
        files from a trusted source. Our own files never need it.
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
        Unreadable, damaged or untrusted file, unsupported architecture, or weights that
        do not match (missing/unexpected keys, wrong shapes — all listed).
    FileNotFoundError
        ``path`` is neither a file, nor a published model's name, nor a URL.
    mcrt_sklearn.errors.ModelDownloadError
        A name or URL that cannot be downloaded (:class:`~mcrt_sklearn.errors.ModelOfflineError`
        says where to put a hand-downloaded copy).
    """
    path = _resolve(path)
    sd, meta = _read(path, map_location, trusted)
    model = _build(sd, meta, path, overrides)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def _json_document(doc: Mapping[str, Any]) -> str:
    try:
        return json.dumps(doc, sort_keys=True, allow_nan=True)
    except TypeError as err:
        raise ValueError(f"checkpoint metadata must be plain JSON values: {err}") from err


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON values (anything else written with ``str``)."""
    return json.loads(json.dumps(value, default=str))


def save_checkpoint(model: MCRT, path, extra: Mapping[str, Any] | None = None,
                    provenance: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` as safetensors weights + one JSON document (format version 2).

    The document (in the safetensors header, key ``"mcrt_sklearn"``) holds the
    architecture (``config``), the library version and git revision, a checksum of the
    weights and ``provenance``: the release, git revision and registered versions
    (:func:`mcrt_sklearn.versions.provenance`), the time, and what the caller adds (what
    the network was trained on and how, what it started from). ``extra`` adds plain JSON
    values under their own keys, e.g. an estimator's parameters; :func:`load_checkpoint`
    ignores them. Loading never unpickles. The file is written atomically (temporary
    file, then rename) at exactly ``path``, whatever its suffix.
    """
    from safetensors.torch import save_file

    from mcrt_sklearn import __version__

    path = Path(path)
    reserved = set(RESERVED) & set(extra or {})
    if reserved:
        raise ValueError(f"extra may not override {sorted(reserved)}")
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        if t.numel() and t.data_ptr() in seen:  # safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[key] = t
    prov = {**version_provenance(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **dict(provenance or {})}
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "git_revision": git_revision(),
        "config": model.config.to_dict(),
        "weights_sha256": weights_digest(tensors),
        "provenance": prov,
        **dict(extra or {}),
    }
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
                METADATA_KEY: _json_document(doc)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _format_label(meta: Mapping[str, Any]) -> str:
    if meta.get("format") == FORMAT_NAME:
        v = int(meta.get("format_version", 1))
        return (f"{FORMAT_NAME} safetensors + JSON (format version {v})" if v >= 2
                else f"{FORMAT_NAME} torch .pt (format version {v})")
    return "reference Lightning checkpoint" + (" (needs full unpickling)"
                                               if meta.get("unpickled") else "")


def convert_checkpoint(src, dst, trusted: bool = False,
                       extra: Mapping[str, Any] | Callable[[dict], Mapping[str, Any]] | None = None,
                       provenance: Mapping[str, Any] | None = None) -> Path:
    """Convert a reference Lightning checkpoint (or a version-1 ``.pt`` of ours) once
    into a safetensors + JSON file that loads without unpickling and gives identical
    outputs.

    Parameters
    ----------
    src : str or Path
        Anything :func:`load_checkpoint` accepts (a path, a published model's name, a URL).
    dst : str or Path
        The file to write (exactly this path).
    trusted : bool
        Needed when ``src`` holds Python objects besides tensors (a Lightning file with
        callbacks or optimizer state): unpickling it can run code.
    extra : mapping, or callable of the config dict returning one, optional
        More keys for the document (e.g. a saved estimator's block).
    provenance : mapping, optional
        More keys for the document's ``provenance``. What the source was
        (file name, sha256, format, the reference's config) is recorded under
        ``provenance["converted_from"]``; a saved estimator of ours keeps its parameters.
    """
    path = _resolve(src)
    sd, meta = _read(path, "cpu", trusted)
    model = _build(sd, meta, path)
    carried: dict[str, Any] = {}
    source: dict[str, Any] = {"source": str(src), "file": path.name,
                              "sha256": file_sha256(path), "format": _format_label(meta)}
    before = None
    if meta.get("format") == FORMAT_NAME:
        carried = {k: _json_safe(v) for k, v in meta.items()
                   if k not in RESERVED and k != "unpickled"}
        source["library_version"] = meta.get("library_version")
        source["git_revision"] = meta.get("git_revision")
        before = meta.get("provenance")
    else:
        hp = meta.get("hyper_parameters") or {}
        ref = hp.get("config", hp) if isinstance(hp, Mapping) else {}
        source["reference_config"] = _json_safe(dict(ref) if isinstance(ref, Mapping) else {})
        for key in ("epoch", "global_step", "pytorch-lightning_version"):
            if key in meta:
                source[key] = _json_safe(meta[key])
    prov: dict[str, Any] = {"origin": "convert", "converted_from": source}
    if before:
        prov["before_conversion"] = before
    prov.update(dict(provenance or {}))
    if callable(extra):
        extra = extra(model.config.to_dict())
    return save_checkpoint(model, dst, extra={**carried, **dict(extra or {})}, provenance=prov)


def checkpoint_info(path, trusted: bool = False) -> dict[str, Any]:
    """What a checkpoint holds: format, architecture, parameter count, heads, provenance.

    Returns
    -------
    dict with ``path``, ``size_bytes``, ``sha256``, ``format``, ``safe`` (loads without
    unpickling), ``architecture`` (the :class:`~mcrt_sklearn.model.MCRTConfig` fields),
    ``n_parameters``, ``n_tensors``, ``heads``, ``library_version``, ``provenance``,
    ``estimator`` (class and fitted state, e.g. target scaling, of a saved estimator) and,
    for a reference file, ``reference_config``.
    """
    path = _resolve(path)
    sd, meta = _read(path, "cpu", trusted)
    model = _build(sd, meta, path)
    out: dict[str, Any] = {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "format": _format_label(meta),
        "safe": not meta.get("unpickled", False),
        "architecture": _json_safe(model.config.to_dict()),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "n_tensors": len(sd),
        "heads": list(model.config.tasks),
        "library_version": meta.get("library_version"),
        "provenance": _json_safe(meta.get("provenance")),
    }
    est = meta.get("estimator")
    if isinstance(est, Mapping):
        out["estimator"] = _json_safe({k: est.get(k) for k in ("class", "fitted") if k in est})
    if meta.get("format") != FORMAT_NAME:
        hp = meta.get("hyper_parameters") or {}
        ref = hp.get("config", hp) if isinstance(hp, Mapping) else {}
        out["reference_config"] = _json_safe(dict(ref) if isinstance(ref, Mapping) else {})
    return out
