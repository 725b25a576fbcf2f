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

Modules: :mod:`~mcrt_sklearn.pretrained.registry` (the entries, :func:`list_models`,
:func:`register_model`, :func:`cache_path`), :mod:`~mcrt_sklearn.pretrained.download`
(pooch downloads, typed errors), :mod:`~mcrt_sklearn.pretrained.figshare` (the article's
file list), :mod:`~mcrt_sklearn.pretrained.cache` (:func:`fetch`, hash records,
:func:`resolve_checkpoint`, :func:`describe`), :mod:`~mcrt_sklearn.pretrained.conversion`
(:func:`convert`). Every name is importable from here.
"""

from __future__ import annotations

from mcrt_sklearn.pretrained.cache import _SIDECAR as _SIDECAR
from mcrt_sklearn.pretrained.cache import _notice as _notice
from mcrt_sklearn.pretrained.cache import _record as _record
from mcrt_sklearn.pretrained.cache import _recorded as _recorded
from mcrt_sklearn.pretrained.cache import _sha256 as _sha256
from mcrt_sklearn.pretrained.cache import _sidecar as _sidecar
from mcrt_sklearn.pretrained.cache import _verify as _verify
from mcrt_sklearn.pretrained.cache import describe, fetch, resolve_checkpoint
from mcrt_sklearn.pretrained.conversion import _estimator_block as _estimator_block
from mcrt_sklearn.pretrained.conversion import convert
from mcrt_sklearn.pretrained.download import _download as _download
from mcrt_sklearn.pretrained.download import _hand_download as _hand_download
from mcrt_sklearn.pretrained.download import _is_loopback as _is_loopback
from mcrt_sklearn.pretrained.download import _request_errors as _request_errors
from mcrt_sklearn.pretrained.figshare import FIGSHARE_API as FIGSHARE_API
from mcrt_sklearn.pretrained.figshare import _figshare_file as _figshare_file
from mcrt_sklearn.pretrained.registry import ARTICLE_PAGE as ARTICLE_PAGE
from mcrt_sklearn.pretrained.registry import CITATION as CITATION
from mcrt_sklearn.pretrained.registry import (
    ENV_VAR,
    REGISTRY,
    ModelInfo,
    cache_path,
    get_model_info,
    is_url,
    list_models,
    models_dir,
    register_model,
)
from mcrt_sklearn.pretrained.registry import FIGSHARE_ARTICLE as FIGSHARE_ARTICLE
from mcrt_sklearn.pretrained.registry import UNKNOWN_LICENCE as UNKNOWN_LICENCE
from mcrt_sklearn.pretrained.registry import _fine_tuned as _fine_tuned
from mcrt_sklearn.pretrained.registry import _info_for as _info_for
from mcrt_sklearn.pretrained.registry import _url_info as _url_info

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
