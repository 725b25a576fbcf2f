"""The published MCRT models by name: a registry, safe downloads, a one-time conversion.

The paper's model, pre-trained on 706,126 CSD crystals (12 blocks × 768, heads MAP, APC,
CDP and SEP), and the models fine-tuned in the paper are published on figshare, article
27822705 ("Pretrained_MCRT_models"). Each one has a name here (:func:`list_models`):

>>> from mcrt_sklearn import MCRTEncoder
>>> enc = MCRTEncoder(checkpoint="mcrt-pretrained", trusted=True).fit()  # doctest: +SKIP

``checkpoint=`` of every estimator, :func:`~mcrt_sklearn.model.checkpoint.load_checkpoint`
and every command line that takes a model accept a path, a name of this registry or an
http(s) URL. Names and URLs are downloaded once, through pooch, into the model cache
(``$MCRT_SKLEARN_MODELS``, else ``~/.cache/mcrt_sklearn/models``):

- with a progress bar, into a temporary file that is renamed only when the download is
  complete and its hash is right, so an interrupted download leaves nothing behind;
- checked against the sha256 the registry pins, when it pins one; otherwise (the
  published files have no published sha256) the sha256 computed at the first download is
  recorded beside the file (``<file>.sha256``) and checked at every later use;
- with the licence and the citation shown at the first download.

Without a network, a model that is not in the cache raises
:class:`~mcrt_sklearn.errors.ModelOfflineError`, which names the URL, the file name and
the exact path to put a hand-downloaded copy at; a file put there is then used (its
sha256 is recorded at that first use).

The published files are the reference's Lightning checkpoints: loading them unpickles
Python objects, so it needs ``trusted=True``. :func:`convert` (``mcrt-sklearn models
convert``) turns one once into our safetensors + JSON format, which loads without
``trusted`` and gives identical outputs.

What is and is not published (checked against the reference README and example scripts,
``fmggggg/MCRT``): the article page is published; the names of the files in it, their
direct download URLs, sizes, sha256 and the article's licence are not stated there. The
pre-trained model is looked up in the article's file list (figshare's public API) under
the name the reference code expects, ``MCRT.ckpt``; the fine-tuned models' file names are
unknown, so fetching them by name asks for a hand download (or :func:`register_model`
with the file's URL).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mcrt_sklearn.errors import (
    ModelDownloadError,
    ModelHashError,
    ModelOfflineError,
    UnknownModelError,
)

__all__ = [
    "ModelInfo",
    "REGISTRY",
    "ENV_VAR",
    "list_models",
    "get_model_info",
    "register_model",
    "models_dir",
    "cache_path",
    "fetch",
    "resolve_checkpoint",
    "convert",
    "describe",
    "is_url",
]

#: Environment variable naming the model cache.
ENV_VAR = "MCRT_SKLEARN_MODELS"
#: The figshare article of the published models (reference README, "To fineture").
FIGSHARE_ARTICLE = 27822705
ARTICLE_PAGE = "https://figshare.com/articles/online_resource/Pretrained_MCRT_models/27822705"
#: figshare's public API: an article's metadata, with its files' names, download URLs,
#: sizes and md5 (https://docs.figshare.com, ``GET /v2/articles/{article_id}``).
FIGSHARE_API = "https://api.figshare.com/v2/articles/{article_id}"
CITATION = (
    "Feng, Zhao, Day, Evangelopoulos, Cooper, 'A universal foundation model for transfer "
    "learning in molecular crystals', Chem. Sci. 16, 12844-12859 (2025), "
    "doi:10.1039/D5SC00677E"
)
#: What the registry knows of the published files' licence.
UNKNOWN_LICENCE = ("unknown: not stated in the reference repository (its code is MIT); "
                   "see the figshare article")
_SIDECAR = ".sha256"


@dataclass(frozen=True)
class ModelInfo:
    """One published model.

    Parameters
    ----------
    name : str
        Registry name (``mcrt-pretrained``, ``mcrt-<task>``).
    description : str
        One line.
    url : str, optional
        Direct download URL of the file (http(s), or pooch's ``doi:<DOI>/<file>``);
        ``None`` when it is not published.
    file_name : str
        Name of the file in the cache.
    remote_name : str, optional
        Name of the file in the figshare article, to find its download URL in the
        article's file list when ``url`` is not known; ``None`` when not known.
    figshare_article : int, optional
        The figshare article holding the file.
    page : str, optional
        Where a person finds the file (to download it by hand).
    sha256 : str, optional
        Pinned hash; ``None``: the hash of the first download is recorded and checked.
    size : int, optional
        Size in bytes, when known.
    licence, citation : str
        Shown at the first download.
    kind : {"pretrained", "fine-tuned"}
    heads : tuple of str
        Heads the checkpoint holds (reference names), as far as known.
    predicts, unit : str, optional
        What a fine-tuned model predicts and in which unit.
    target_mean, target_std : float, optional
        The normalisation of the target in training (the regression head predicts
        ``(y - mean) / std``), from the reference's fine-tuning script.
    trained_on : str
        Data it was trained on.
    notes : str
        Where the facts come from, and what is not known.
    """

    name: str
    description: str
    url: str | None = None
    file_name: str = "model.ckpt"
    remote_name: str | None = None
    figshare_article: int | None = None
    page: str | None = None
    sha256: str | None = None
    size: int | None = None
    licence: str = "unknown"
    citation: str = ""
    kind: str = "fine-tuned"
    heads: tuple[str, ...] = ()
    predicts: str | None = None
    unit: str | None = None
    target_mean: float | None = None
    target_std: float | None = None
    trained_on: str = ""
    notes: str = ""

    @property
    def source(self) -> str:
        """Where the file comes from: its URL, else the page it is published on."""
        return self.url or self.page or ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heads"] = list(self.heads)
        d["source"] = self.source
        return d


def _fine_tuned(name: str, label: str, predicts: str, unit: str, n: int,
                mean: float | None, std: float | None, script: str | None,
                extra_note: str = "") -> ModelInfo:
    where = (f"target normalisation (mean {mean}, std {std}) from the reference's "
             f"MCRT/examples/{script}" if script else
             "no reference fine-tuning script: target normalisation unknown")
    return ModelInfo(
        name=name,
        description=f"MCRT fine-tuned on {label} ({n:,} structures): {predicts} [{unit}]",
        file_name=f"{name}.ckpt",
        figshare_article=FIGSHARE_ARTICLE,
        page=ARTICLE_PAGE,
        licence=UNKNOWN_LICENCE,
        citation=CITATION,
        kind="fine-tuned",
        heads=("regression",),
        predicts=predicts,
        unit=unit,
        target_mean=mean,
        target_std=std,
        trained_on=f"{label}, {n:,} structures, random 80/10/10 split (paper, Table 1)",
        notes=(f"task, unit and size from the paper's Table 1; {where}. The README says the "
               "fine-tuned models of the paper are in the figshare article; their file "
               "names there are not stated, so the file must be downloaded by hand (or "
               "registered with its URL). " + extra_note).strip(),
    )


#: The published models (see the module docstring for what is confirmed).
REGISTRY: dict[str, ModelInfo] = {
    "mcrt-pretrained": ModelInfo(
        name="mcrt-pretrained",
        description=("the paper's MCRT pre-trained on 706,126 CSD crystals: 12 blocks x 768, "
                     "12 heads, ALIGNN 256 x 4; heads MAP, APC, CDP, SEP"),
        file_name="MCRT.ckpt",
        remote_name="MCRT.ckpt",
        figshare_article=FIGSHARE_ARTICLE,
        page=ARTICLE_PAGE,
        licence=UNKNOWN_LICENCE,
        citation=CITATION,
        kind="pretrained",
        heads=("map", "apc", "cdp", "sep"),
        trained_on=("706,126 experimental crystal structures from the Cambridge Structural "
                    "Database; self-supervised (MAP, APC, CDP, SEP), 90/10 split, batch 512"),
        notes=("published in figshare article 27822705 (reference README); the reference "
               "code loads it as MCRT.ckpt (MCRT/models/MCRT.ckpt), the name looked up in "
               "the article's file list; direct URL, size and sha256 not published (the "
               "sha256 of the first download is recorded). A reference Lightning file: "
               "load with trusted=True, or convert once."),
    ),
    **{info.name: info for info in (
        _fine_tuned("mcrt-lattice-energy-all", "LE_all (lattice energies of the CSP "
                    "landscapes of all the triptycene molecules)", "lattice energy", "kJ/mol",
                    73_779, -115.928, 30.131, "server_finetune_Tall.py"),
        _fine_tuned("mcrt-lattice-energy-t2", "LE_T2 (lattice energies of the T2 CSP "
                    "landscape)", "lattice energy", "kJ/mol", 8_293, -121.097, 22.639,
                    "server_finetune_T2.py"),
        _fine_tuned("mcrt-lattice-energy-t2a", "LE_T2A (lattice energies of the T2A CSP "
                    "landscape)", "lattice energy", "kJ/mol", 1_367, -72.929, 14.742,
                    "server_finetune_T2A.py"),
        _fine_tuned("mcrt-methane-capacity", "MC (T2 predicted structures)",
                    "methane deliverable capacity", "v STP/v", 5_687, 52.249, 38.011,
                    "server_finetune_T2_CH4.py"),
        _fine_tuned("mcrt-methane-diffusivity", "MD (T2 predicted structures)",
                    "methane diffusivity", "1e-8 cm^2/s", 5_687, 1.511, 2.516,
                    "server_finetune_T2_CH4_diff.py",
                    "That script fine-tunes without persistence images (if_image=False); "
                    "the architecture is read from the file."),
        _fine_tuned("mcrt-charge-mobility", "CM (azaacene CSP structures)",
                    "charge (electron) mobility", "cm^2/(V s)", 1_130, 2.825, 1.354,
                    "server_finetune_mobility.py"),
        _fine_tuned("mcrt-bulk-modulus", "BM", "bulk modulus", "GPa", 6_087, None, None,
                    None),
        _fine_tuned("mcrt-delta-energy", "Delta-E (1000CSP)",
                    "DFT minus force-field energy", "kJ/mol", 11_458, 6.886, 6.801,
                    "server_finetune_1000CSP.py",
                    "Split: that of the original study (paper)."),
    )},
}


def register_model(info: ModelInfo, overwrite: bool = False) -> ModelInfo:
    """Add a model to the registry (e.g. a fine-tuned file whose URL you know).

    Raises
    ------
    ValueError
        ``info.name`` is registered already and ``overwrite`` is False.
    """
    if info.name in REGISTRY and not overwrite:
        raise ValueError(f"{info.name!r} is registered already (overwrite=True replaces it)")
    REGISTRY[info.name] = info
    return info


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``.

    Raises
    ------
    UnknownModelError
        Not a registered name.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"no published model named {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None


def list_models() -> list[dict[str, Any]]:
    """Every registered model: ``name``, ``description``, ``source`` (URL or page),
    ``size`` and ``sha256`` (None when unknown), ``licence``, ``kind``, ``predicts``,
    ``unit``, ``file_name`` and ``cached`` (the cached file's path, or None)."""
    out = []
    for name in REGISTRY:
        info = REGISTRY[name]
        path = cache_path(name)
        out.append({"name": name, "description": info.description, "source": info.source,
                    "size": info.size, "sha256": info.sha256, "licence": info.licence,
                    "kind": info.kind, "predicts": info.predicts, "unit": info.unit,
                    "file_name": info.file_name,
                    "cached": str(path) if path.is_file() else None})
    return out


def models_dir() -> Path:
    """The model cache: ``$MCRT_SKLEARN_MODELS``, else ``~/.cache/mcrt_sklearn/models``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/mcrt_sklearn/models").expanduser()


def is_url(spec) -> bool:
    """Whether ``spec`` is an http(s) URL."""
    return isinstance(spec, str) and spec.lower().startswith(("http://", "https://"))


def _url_info(url: str) -> ModelInfo:
    name = Path(urlparse(url).path).name or "model.ckpt"
    return ModelInfo(name=url, description=f"downloaded from {url}", url=url, file_name=name,
                     page=url, licence="unknown: see where the file comes from")


def _info_for(model: str | ModelInfo) -> ModelInfo:
    if isinstance(model, ModelInfo):
        return model
    if is_url(model):
        return _url_info(model)
    return get_model_info(model)


def cache_path(model: str | ModelInfo) -> Path:
    """Where the file of a name or URL lives in the cache (whether it is there or not):
    ``<cache>/<name>/<file_name>``; a URL: ``<cache>/urls/<hash of the URL>/<file name>``."""
    info = _info_for(model)
    if info.name == info.url:  # a plain URL
        key = hashlib.sha256(info.url.encode()).hexdigest()[:16]
        return models_dir() / "urls" / key / info.file_name
    return models_dir() / info.name / info.file_name


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


def _hand_download(info: ModelInfo, path: Path) -> str:
    where = info.url or info.page or "its source"
    return (f"download {info.remote_name or info.file_name!r} by hand from {where} and put it "
            f"at\n    {path}\n  (a file there is used without a download; its sha256 is "
            "recorded at its first use)")


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


def _estimator_block(info: ModelInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved-``MCRTRegressor`` block for a published fine-tuned regression model whose
    target normalisation is known, so the converted file predicts in ``info.unit``."""
    if (info.target_mean is None or info.target_std is None
            or "regression" not in tuple(config.get("tasks", ()))):
        return {}
    from mcrt_sklearn.estimators._net import ARCH_PARAMS

    params = {p: config[p] for p in ARCH_PARAMS if p in config}
    params["checkpoint"] = None
    return {"estimator": {
        "class": "MCRTRegressor", "params": params,
        "fitted": {"y_mean": float(info.target_mean), "y_std": float(info.target_std)},
        "elements_seen": None,
        "target_scaling_source": (f"the reference's fine-tuning script ({info.notes})"),
    }}


def convert(src, dst, trusted: bool = False) -> Path:
    """Convert a checkpoint (a published model's name, a URL or a file) once into our
    safetensors + JSON format (:func:`~mcrt_sklearn.model.checkpoint.convert_checkpoint`).

    The converted file records where the original came from (name, URL, sha256,
    licence, citation, the reference's config). A published fine-tuned regression model
    whose target normalisation is known becomes a saved ``MCRTRegressor``:
    ``MCRTRegressor.load(dst).predict(records)`` is in the model's unit.
    """
    from mcrt_sklearn.model.checkpoint import convert_checkpoint

    info = None
    if isinstance(src, str) and not os.path.exists(src) and (is_url(src) or src in REGISTRY):
        info = _info_for(src)
    if info is None:
        return convert_checkpoint(src, dst, trusted=trusted)
    prov = {"published_model": {
        "name": info.name, "source": info.source, "page": info.page, "licence": info.licence,
        "citation": info.citation, "trained_on": info.trained_on, "predicts": info.predicts,
        "unit": info.unit, "notes": info.notes}}
    return convert_checkpoint(src, dst, trusted=trusted, provenance=prov,
                              extra=lambda config: _estimator_block(info, config))


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
