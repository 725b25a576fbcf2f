"""The download URL of a published file from its figshare article's file list.

figshare's public API lists an article's files with their names, download URLs, sizes
and md5; the list is fetched once (through pooch) and kept in the model cache under
``.figshare/article-<id>.json``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mcrt_sklearn.errors import ModelDownloadError
from mcrt_sklearn.pretrained.download import _download, _hand_download
from mcrt_sklearn.pretrained.registry import ModelInfo, models_dir

#: figshare's public API: an article's metadata, with its files' names, download URLs,
#: sizes and md5 (https://docs.figshare.com, ``GET /v2/articles/{article_id}``).
FIGSHARE_API = "https://api.figshare.com/v2/articles/{article_id}"


def _figshare_file(info: ModelInfo, path: Path, refresh: bool, timeout: float | None
                   ) -> tuple[str, str | None, str | None]:
    """(download URL, ``md5:<hash>`` or None, licence) of ``info`` from its figshare
    article's file list (fetched through pooch and kept in the cache)."""
    api = FIGSHARE_API.format(article_id=info.figshare_article)
    listing = models_dir() / ".figshare" / f"article-{info.figshare_article}.json"
    if refresh or not listing.is_file():
        _download(api, listing, None, replace(info, url=api), progress=False, retries=1,
                  timeout=timeout)
    try:
        article = json.loads(listing.read_text())
        files = {f["name"]: f for f in article.get("files", [])}
        licence = (article.get("license") or {}).get("name")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        listing.unlink(missing_ok=True)
        raise ModelDownloadError(f"unreadable figshare answer for article "
                                 f"{info.figshare_article} ({err}); try again",
                                 url=api, file_name=path.name, path=str(path)) from err
    if info.remote_name is None or info.remote_name not in files:
        what = ("its file name in the article is not known" if info.remote_name is None
                else f"the article has no file named {info.remote_name!r}")
        raise ModelDownloadError(
            f"cannot download {info.name}: {what}; the article's files: "
            f"{', '.join(sorted(files)) or '(none)'}.\n  " + _hand_download(info, path)
            + f"\n  (or register_model(ModelInfo({info.name!r}, ..., url=<the file's URL>), "
            "overwrite=True))", url=info.page, file_name=path.name, path=str(path))
    entry = files[info.remote_name]
    md5 = entry.get("computed_md5") or entry.get("supplied_md5")
    return entry["download_url"], (f"md5:{md5}" if md5 else None), licence
