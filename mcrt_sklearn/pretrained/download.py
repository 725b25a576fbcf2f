"""Downloads through pooch: temporary file, hash check, rename; typed errors.

An interrupted download leaves nothing behind; a network that cannot be reached is a
:class:`~mcrt_sklearn.errors.ModelOfflineError` whose message names the URL, the file
name and where to put a hand-downloaded copy; any other failure is a
:class:`~mcrt_sklearn.errors.ModelDownloadError`, a wrong hash a
:class:`~mcrt_sklearn.errors.ModelHashError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mcrt_sklearn.errors import ModelDownloadError, ModelHashError, ModelOfflineError
from mcrt_sklearn.pretrained.registry import ModelInfo


def _hand_download(info: ModelInfo, path: Path) -> str:
    where = info.url or info.page or "its source"
    return (f"download {info.remote_name or info.file_name!r} by hand from {where} and put it "
            f"at\n    {path}\n  (a file there is used without a download; its sha256 is "
            "recorded at its first use)")


def _request_errors():
    import requests

    return requests.exceptions


def _is_loopback(url: str) -> bool:
    import ipaddress

    host = (urlparse(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _download(url: str, path: Path, known_hash: str | None, info: ModelInfo, progress: bool,
              retries: int, timeout: float | None) -> None:
    """``url`` → ``path`` through pooch (temporary file, hash check, rename)."""
    import pooch

    exc = _request_errors()
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    if _is_loopback(url):  # a proxy from the environment cannot reach this machine
        kwargs["proxies"] = {"http": "", "https": ""}
    if url.startswith("doi:"):
        downloader = pooch.DOIDownloader(progressbar=progress, **kwargs)
    else:
        downloader = pooch.HTTPDownloader(progressbar=progress, **kwargs)
    store = pooch.create(path=path.parent, base_url="", registry={path.name: known_hash},
                         urls={path.name: url}, retry_if_failed=max(0, int(retries)))
    context = dict(url=url, file_name=path.name, path=str(path))
    try:
        store.fetch(path.name, downloader=downloader)
    except (exc.ConnectionError, exc.Timeout) as err:
        raise ModelOfflineError(
            f"cannot download {info.name}: the network or the server cannot be reached "
            f"({type(err).__name__}).\n  URL: {url}\n  file: {path.name}\n  "
            + _hand_download(info, path), **context) from err
    except exc.RequestException as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        why = f"HTTP {status}" if status else f"{type(err).__name__}: {err}"
        raise ModelDownloadError(
            f"cannot download {info.name} ({why}); nothing was written to the cache.\n"
            f"  URL: {url}\n  file: {path.name}\n  " + _hand_download(info, path),
            **context) from err
    except ValueError as err:  # pooch: hash mismatch, or a file not in a DOI archive
        if "hash" in str(err).lower():
            raise ModelHashError(
                f"the download of {info.name} from {url} has the wrong hash; the cache keeps "
                f"no file for it ({err})", **context) from err
        raise ModelDownloadError(f"cannot download {info.name}: {err}\n  "
                                 + _hand_download(info, path), **context) from err
