"""Loading reference (Lightning) checkpoints and saving/loading our own files.

Files read by :func:`load_checkpoint`:

- **ours, format version 2** (what :func:`save_checkpoint` writes): a
  `safetensors <https://huggingface.co/docs/safetensors>`_ file. Its header holds the
  weights' layout and one JSON document under the key ``"mcrt_sklearn"``: the
  architecture (``config``), the library version, a checksum of the weights, the
  provenance (what the network was trained on and how, what it started from) and, for a
  saved estimator, its parameters and fitted state (target scaling, classes). Reading it
  never unpickles anything (:mod:`mcrt_sklearn.model.safe_format`).
- **ours, format version 1**: a torch ``.pt`` of plain values (``format``, ``config``,
  ``state_dict`` …), loaded with ``torch.load(weights_only=True)``; still read.
- **the reference's** Lightning checkpoints ``{"state_dict": …, "hyper_parameters":
  {"config": {…}}}``: the architecture is rebuilt from ``config`` (keys it lacks are
  inferred from the state_dict's shapes where that is possible), the heads from the
  ``<task>_head.*`` keys present, and the weights are loaded strictly. A file that holds
  Python objects besides tensors (Lightning's callbacks, optimizer state) needs
  ``trusted=True``; :func:`convert_checkpoint` turns it once into a version-2 file that
  loads safely and gives identical outputs (:mod:`mcrt_sklearn.model.reference_format`).

``path`` may also be the name of a published model or an http(s) URL
(:mod:`mcrt_sklearn.pretrained` downloads it into the model cache).

This module holds the entry points and the dispatch between the formats; the names of
the two format modules that were defined here before are re-exported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.model.mcrt import MCRT, MCRTConfig
from mcrt_sklearn.model.reference_format import (
    _LIGHTNING_KEYS,
    read_torch_checkpoint,
    reference_config,
    reference_model_config,
)
from mcrt_sklearn.model.reference_format import _count as _count
from mcrt_sklearn.model.reference_format import _lenient_pickle as _lenient_pickle
from mcrt_sklearn.model.reference_format import _LenientUnpickler as _LenientUnpickler
from mcrt_sklearn.model.reference_format import _Missing as _Missing
from mcrt_sklearn.model.reference_format import _tasks_in as _tasks_in
from mcrt_sklearn.model.reference_format import _torch_load as _torch_load
from mcrt_sklearn.model.reference_format import _unwrap_state_dict as _unwrap_state_dict
from mcrt_sklearn.model.reference_format import (
    config_from_state_dict as config_from_state_dict,
)
from mcrt_sklearn.model.safe_format import _MAX_HEADER as _MAX_HEADER
from mcrt_sklearn.model.safe_format import FORMAT_NAME as FORMAT_NAME
from mcrt_sklearn.model.safe_format import FORMAT_VERSION as FORMAT_VERSION
from mcrt_sklearn.model.safe_format import METADATA_KEY as METADATA_KEY
from mcrt_sklearn.model.safe_format import RESERVED as RESERVED
from mcrt_sklearn.model.safe_format import _first_line as _first_line
from mcrt_sklearn.model.safe_format import _json_document as _json_document
from mcrt_sklearn.model.safe_format import _json_safe as _json_safe
from mcrt_sklearn.model.safe_format import file_sha256 as file_sha256
from mcrt_sklearn.model.safe_format import is_safetensors as is_safetensors
from mcrt_sklearn.model.safe_format import read_safetensors as _read_safetensors
from mcrt_sklearn.model.safe_format import (
    read_safetensors_metadata,
    write_safetensors,
)
from mcrt_sklearn.model.safe_format import weights_digest as weights_digest

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

#: Config fields that ``load_checkpoint(overrides=...)`` may change: they do not change
#: the weights, only how the network trains.
OVERRIDABLE = ("drop_rate", "attn_drop", "drop_path_rate", "alignn_dropout")


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


def _read(path: Path, map_location, trusted: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, metadata) of a local file; see :func:`read_checkpoint`."""
    if is_safetensors(path):
        sd, doc = _read_safetensors(path)
        return _unwrap_state_dict(sd), {**doc, "unpickled": False}
    return read_torch_checkpoint(path, map_location, trusted)


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
    return {**read_safetensors_metadata(path), "unpickled": False}


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


def _config_of(sd: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path) -> MCRTConfig:
    try:
        if meta.get("format") == FORMAT_NAME:
            return MCRTConfig.from_dict(dict(meta["config"]))
        return reference_model_config(sd, meta, path)
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
    return write_safetensors(model, path, extra=extra, provenance=provenance)


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
        source["reference_config"] = _json_safe(reference_config(meta))
        for key in _LIGHTNING_KEYS:
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
        out["reference_config"] = _json_safe(reference_config(meta))
    return out
