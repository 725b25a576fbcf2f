"""The model cache: a published model (or a URL) fetched into it once, hash-checked.

:func:`fetch` downloads a file once (:mod:`~mcrt_sklearn.pretrained.download`; a
figshare file's URL found by :mod:`~mcrt_sklearn.pretrained.figshare`), records the
sha256 of the first download beside it (``<file>.sha256``) when the registry pins none,
checks it at every later use and shows the licence and citation at the first download.
:func:`resolve_checkpoint` turns a ``checkpoint=`` value into a local file;
:func:`describe` tells an entry's cache state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mcrt_sklearn.errors import ModelHashError, ModelOfflineError
from mcrt_sklearn.pretrained.download import _download, _hand_download
from mcrt_sklearn.pretrained.figshare import _figshare_file
from mcrt_sklearn.pretrained.registry import REGISTRY, ModelInfo, _info_for, cache_path, is_url

__all__ = ["fetch", "resolve_checkpoint", "describe"]

_SIDECAR = ".sha256"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR)


def _recorded(path: Path) -> str | None:
    side = _sidecar(path)
    if not side.is_file():
        return None
    text = side.read_text().split()
    return text[0].lower() if text else None


def _record(path: Path, digest: str) -> Path:
    """Write ``<file>.sha256`` (``sha256sum`` format) atomically."""
    side = _sidecar(path)
    tmp = side.with_name(side.name + f".{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {path.name}\n")
    os.replace(tmp, side)
    return side


def _sha256(path: Path) -> str:
    from mcrt_sklearn.model.checkpoint import file_sha256

    return file_sha256(path)


def _notice(info: ModelInfo, path: Path, digest: str, how: str, licence: str | None) -> None:
    lines = [f"mcrt_sklearn: {how} {info.name}: {path}",
             f"  sha256 {digest} (recorded in {_sidecar(path).name}; checked at every use)"
             if info.sha256 is None else f"  sha256 {digest} (matches the registry)",
             f"  licence: {licence or info.licence}"]
    if info.citation:
        lines.append(f"  please cite: {info.citation}")
    print("\n".join(lines), file=sys.stderr)


def _verify(info: ModelInfo, path: Path, pinned: str | None) -> str:
    digest = _sha256(path)
    recorded = _recorded(path)
    for expected, what in ((pinned, "the registry's sha256"),
                           (recorded, f"the sha256 recorded at its first download "
                                      f"({_sidecar(path).name})")):
        if expected and digest != expected.lower():
            raise ModelHashError(
                f"{path}: sha256 {digest} does not match {what} {expected}: the file "
                "changed or is damaged. Delete it (and its .sha256) to download it again.",
                url=info.url, file_name=path.name, path=str(path))
    if recorded is None:
        _record(path, digest)
        _notice(info, path, digest, "using the file found in the cache for", None)
    return digest


def fetch(model: str | ModelInfo, progress: bool = True, sha256: str | None = None,
          retries: int = 1, timeout: float | None = None, refresh: bool = False) -> Path:
    """The local file of a published model or a URL, downloaded into the cache once.

    Parameters
    ----------
    model : str or ModelInfo
        A registry name (:func:`list_models`), an http(s) URL, or an entry.
    progress : bool
        Show a progress bar while downloading.
    sha256 : str, optional
        Expected sha256 (overrides the registry's).
    retries : int
        Further attempts after a failed download (pooch's ``retry_if_failed``).
    timeout : float, optional
        Seconds to wait for the server (pooch's default otherwise).
    refresh : bool
        Ask figshare for the article's file list again (it is kept in the cache).

    Returns
    -------
    Path
        The cached file, hash-checked.

    Raises
    ------
    ModelOfflineError
        Not cached, and the network cannot be reached or no download URL is known; the
        message names the URL, the file name and where to put a hand-downloaded copy.
    ModelHashError
        The download or the cached file does not have the expected sha256 (a failed
        download leaves no file in the cache).
    ModelDownloadError
        Any other failed download (HTTP error, connection closed mid-file).
    UnknownModelError
        Not a registered name, nor a URL.
    """
    info = _info_for(model)
    path = cache_path(info)
    pinned = (sha256 or info.sha256 or None)
    if path.is_file():
        _verify(info, path, pinned)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    licence = None
    known = f"sha256:{pinned.lower()}" if pinned else None
    if info.url:
        url = info.url
    elif info.figshare_article:
        try:
            url, md5, licence = _figshare_file(info, path, refresh, timeout)
        except ModelOfflineError as err:
            raise ModelOfflineError(
                f"cannot download {info.name}: figshare cannot be reached to find the file "
                f"in article {info.figshare_article}.\n  URL: {info.page}\n  file: "
                f"{info.remote_name or info.file_name}\n  " + _hand_download(info, path),
                url=info.page, file_name=info.remote_name or info.file_name,
                path=str(path)) from err
        known = known or md5
    else:
        raise ModelOfflineError(
            f"{info.name} has no published download URL.\n  URL: {info.page or '(none)'}\n"
            f"  file: {info.file_name}\n  " + _hand_download(info, path),
            url=info.page, file_name=info.file_name, path=str(path))
    _download(url, path, known, info, progress, retries, timeout)
    digest = _sha256(path)
    if pinned and digest != pinned.lower():  # pooch checked it; belt and braces
        path.unlink(missing_ok=True)
        raise ModelHashError(f"the download of {info.name} has sha256 {digest}, not {pinned}",
                             url=url, file_name=path.name, path=str(path))
    _record(path, digest)
    _notice(info, path, digest, "downloaded", licence)
    return path


def resolve_checkpoint(spec, progress: bool = True) -> Path:
    """A local file for a ``checkpoint=`` value: an existing path as it is; a registry
    name or an http(s) URL fetched into the cache (:func:`fetch`).

    Raises
    ------
    FileNotFoundError
        ``spec`` is neither a file, nor a registered name, nor an http(s) URL.
    """
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return path
    spec = str(spec)
    if is_url(spec):
        return fetch(spec, progress=progress)
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if spec in REGISTRY:
        return fetch(spec, progress=progress)
    raise FileNotFoundError(
        f"checkpoint not found: {spec} (not a file, not a published model's name — "
        f"{', '.join(sorted(REGISTRY))} — and not an http(s) URL)"
    )


def describe(model: str | ModelInfo) -> dict[str, Any]:
    """A registry entry (or URL) with its cache state: every :class:`ModelInfo` field,
    ``source``, ``cache_path``, ``cached`` and ``recorded_sha256``."""
    info = _info_for(model)
    d = info.as_dict()
    path = cache_path(info)
    d["cache_path"] = str(path)
    d["cached"] = path.is_file()
    d["recorded_sha256"] = _recorded(path) if path.is_file() else None
    return d
