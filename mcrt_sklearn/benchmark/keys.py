"""Keys of stored results: what a fold result and a cached pre-training depend on.

A fold result is reused only when its key matches: :func:`fold_key` hashes a payload
(dataset, target, :func:`_model_spec`, fold ids and structure content …) with the
versions of :func:`model_components`. Changing anything here changes every key, so a
finished run would be refitted: keep the payloads as they are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mcrt_sklearn.benchmark.settings import MCRT_MODELS, _is_pretrained, finetune_settings

__all__ = ["fold_key", "model_components"]


#: Format name written into result files; its version is ``versions.VERSIONS
#: ["benchmark-results"]``, part of every result key with the versions of the model's
#: algorithms (:func:`model_components`).
_RESULT_FORMAT = "mcrt-benchmark-v1"


def _hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _featurizer_spec(settings: dict, use_images: bool = True) -> dict:
    """Featuriser settings that change the records (``n_jobs`` only changes the speed).
    The versions of the algorithms behind them are not here but in the keys, through
    :func:`model_components`."""
    return {k: v for k, v in settings["featurizer"].items() if k != "n_jobs"}


def _mcrt_components(settings: dict, use_images: bool) -> tuple[str, ...]:
    from mcrt_sklearn.featurizers.persistence import image_components

    images = use_images and settings["featurizer"].get("images", True)
    mode = settings["featurizer"].get("image_mode", "exact")
    return ("structure-fingerprint", "mcrt-records", "training-recipe",
            *(image_components(mode) if images else ()))


def model_components(name: str, settings: dict) -> tuple[str, ...]:
    """Names in :data:`mcrt_sklearn.versions.VERSIONS` of what a model's fold result
    depends on: the result format, the structures' fingerprint, and the model's own
    inputs and training (MCRTi ignores the persistence images, so a new image
    algorithm does not refit it)."""
    if name in MCRT_MODELS:
        own = _mcrt_components(settings, use_images=name != "MCRTi")
    else:
        own = {"RF-SOAP": ("soap",), "KRR-SOAP": ("soap",), "CGCNN": ("cgcnn-graph",),
               "CrystalTwins": ("cgcnn-graph",), "ALIGNN": ("alignn-graph",)}.get(name, ())
    return ("benchmark-results", "structure-fingerprint", *own)


def fold_key(payload: dict, name: str, settings: dict) -> str:
    """Key of one stored fold result: ``payload`` (dataset, target, model spec, fold
    ids and content …) with the versions of :func:`model_components`."""
    from mcrt_sklearn.versions import versioned_key

    return versioned_key("benchmark-fold", payload, model_components(name, settings),
                         length=16)


def _model_spec(name: str, settings: dict) -> dict:
    """The settings a model's result depends on (part of its fold-result key)."""
    if name in MCRT_MODELS:
        spec = {"arch": settings["mcrt"], "finetune": finetune_settings(name, settings),
                "featurizer": _featurizer_spec(settings, use_images=name != "MCRTi")}
        if name == "MCRTa":
            spec["positional"] = "absolute"
        if _is_pretrained(name, settings):
            spec["pretrain"] = settings["pretrain"]
            spec["pretrain_on"] = settings.get("_pretrain_on")
        if name == "MCRTi":
            spec["MCRTi"] = settings["MCRTi"]
        return spec
    return {"model": settings[name]}


def _pretrain_spec(settings: dict, pretrain_on, use_images: bool) -> dict:
    from mcrt_sklearn.versions import versions

    pt = dict(settings["pretrain"])
    components = _mcrt_components(settings, use_images)
    return {"format": _RESULT_FORMAT, "versions": versions(*components),
            "corpus": str(pretrain_on),
            "max_structures": pt.pop("max_structures", None), "seed": settings["seed"],
            "arch": settings["mcrt"], "train": pt,
            "featurizer": _featurizer_spec(settings, use_images), "use_images": use_images}
