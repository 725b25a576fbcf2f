"""The registry of the published MCRT models: their entries, names and cache places.

:data:`REGISTRY` holds ``mcrt-pretrained`` and the paper's fine-tuned ``mcrt-<task>``
models (what is known of each, and where that comes from); :func:`register_model` adds
one, :func:`list_models` lists them with their cache state, :func:`cache_path` says
where a name's (or a URL's) file lives in the model cache (:func:`models_dir`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mcrt_sklearn.errors import UnknownModelError

__all__ = [
    "ModelInfo",
    "REGISTRY",
    "ENV_VAR",
    "list_models",
    "get_model_info",
    "register_model",
    "models_dir",
    "cache_path",
    "is_url",
]

#: Environment variable naming the model cache.
ENV_VAR = "MCRT_SKLEARN_MODELS"
#: The figshare article of the published models (reference README, "To fineture").
FIGSHARE_ARTICLE = 27822705
ARTICLE_PAGE = "https://figshare.com/articles/online_resource/Pretrained_MCRT_models/27822705"
CITATION = (
    "Feng, Zhao, Day, Evangelopoulos, Cooper, 'A universal foundation model for transfer "
    "learning in molecular crystals', Chem. Sci. 16, 12844-12859 (2025), "
    "doi:10.1039/D5SC00677E"
)
#: What the registry knows of the published files' licence.
UNKNOWN_LICENCE = ("unknown: not stated in the reference repository (its code is MIT); "
                   "see the figshare article")


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


#: The published models (see the :mod:`mcrt_sklearn.pretrained` docstring for what is
#: confirmed).
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
