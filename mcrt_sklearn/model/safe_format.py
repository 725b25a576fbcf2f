"""Our checkpoint format, version 2: safetensors weights + one JSON document.

The document sits in the safetensors header under :data:`METADATA_KEY`: the
architecture (``config``), the library version and git revision, a checksum of the
weights (:func:`weights_digest`), the provenance and, for a saved estimator, its
parameters and fitted state. Reading a file never unpickles anything.

The entry points are in :mod:`mcrt_sklearn.model.checkpoint`
(:func:`~mcrt_sklearn.model.checkpoint.save_checkpoint`,
:func:`~mcrt_sklearn.model.checkpoint.load_checkpoint` …); this module writes and reads
the file itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.versions import git_revision, version
from mcrt_sklearn.versions import provenance as version_provenance

if TYPE_CHECKING:
    from mcrt_sklearn.model.mcrt import MCRT

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "RESERVED",
    "is_safetensors",
    "file_sha256",
    "weights_digest",
    "read_safetensors",
    "read_safetensors_metadata",
    "write_safetensors",
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


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, document) of a version-2 file; the weights checked against the
    document's checksum.

    Raises
    ------
    CheckpointError
        Unreadable or damaged file, no (or a damaged) document, weights that do not match
        their checksum.
    """
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


def read_safetensors_metadata(path: Path) -> dict[str, Any]:
    """The document of a version-2 file, from its header alone (no weights read)."""
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
    return doc


def _json_document(doc: Mapping[str, Any]) -> str:
    try:
        return json.dumps(doc, sort_keys=True, allow_nan=True)
    except TypeError as err:
        raise ValueError(f"checkpoint metadata must be plain JSON values: {err}") from err


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON values (anything else written with ``str``)."""
    return json.loads(json.dumps(value, default=str))


def write_safetensors(model: MCRT, path, extra: Mapping[str, Any] | None = None,
                      provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a version-2 file at exactly ``path``, atomically; see
    :func:`~mcrt_sklearn.model.checkpoint.save_checkpoint`."""
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
