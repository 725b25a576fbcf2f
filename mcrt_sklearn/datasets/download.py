"""Fetching a dataset's source files with pooch (temporary file, checksum, then move)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pooch

__all__ = ["DOWNLOAD_TIMEOUT", "fetch_file"]

#: Seconds pooch's HTTP downloader waits for the server (connect and each read).
DOWNLOAD_TIMEOUT = 60.0


def _copy_local_file(url: str, output_file, _pooch=None) -> None:
    """A pooch downloader for ``file://`` URLs (a local mirror; offline tests)."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    with open(source, "rb") as src:
        if isinstance(output_file, (str, os.PathLike)):
            with open(output_file, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copyfileobj(src, output_file)


def _downloader(url: str):
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        return _copy_local_file
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=False, timeout=DOWNLOAD_TIMEOUT)
    raise OSError(f"unsupported URL scheme {scheme!r} in {url}")


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs every download (and the hash of each unpinned file) to stderr at INFO."""
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        pooch_logger.setLevel(level)


def fetch_file(
    dataset: str, url: str, folder: str | os.PathLike, fname: str, sha256: str | None = None
) -> Path:
    """Download ``url`` to ``folder/fname`` with pooch, verifying its SHA-256 when given.

    ``pooch.retrieve`` streams the download into a temporary file in ``folder``,
    checks the hash and only then moves it to ``fname``: a failed or corrupted
    download leaves nothing behind. ``http(s)://`` and ``file://`` URLs are accepted.

    Parameters
    ----------
    dataset : str
        The dataset the file belongs to (named in errors).
    url : str
        Where to get the file.
    folder : path
        Folder to write into (created when missing).
    fname : str
        File name inside ``folder``.
    sha256 : str, optional
        Expected hex SHA-256 of the file; None: not verified here.

    Returns
    -------
    Path
        ``folder / fname``.

    Raises
    ------
    OSError
        The download failed or the file's checksum does not match; the message names
        the dataset and the URL.
    """
    downloader = _downloader(url)
    known_hash = None if sha256 is None else f"sha256:{sha256}"
    try:
        with _quiet_pooch():
            path = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                  downloader=downloader, progressbar=False)
    except ValueError as exc:  # pooch's hash mismatch (the temporary file is deleted)
        raise OSError(f"checksum mismatch for {url} (dataset {dataset!r}): {exc}") from exc
    except OSError as exc:  # requests' errors are OSErrors, as is a missing local file
        raise OSError(f"downloading {url} (dataset {dataset!r}) failed: {exc}") from exc
    return Path(path)
