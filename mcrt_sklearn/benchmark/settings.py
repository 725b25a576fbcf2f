"""Every setting of a benchmark run: the model names, the paper's and the reduced ``fast``
profile, deep merging of overrides, and the fine-tuning settings of each MCRT variant.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence

__all__ = ["MODELS", "MCRT_MODELS", "PAPER_PROTOCOL", "default_settings",
           "merge_settings", "finetune_settings", "parse_overrides"]


#: Model names understood by :func:`run_benchmark`, in table order. ``TrainMean`` and
#: ``TrainMedian`` predict the training fold's mean / median for every structure: the
#: floor any model has to beat (the median is the best constant for MAE).
MODELS = ("MCRT", "MCRTp", "MCRTi", "MCRTa", "RF-SOAP", "KRR-SOAP", "CGCNN", "ALIGNN",
          "CrystalTwins", "TrainMean", "TrainMedian")
#: The MCRT variants: pre-trained (MCRT), fresh (MCRTp), without persistence images
#: (MCRTi), fresh with the absolute 3-D sin-cos positional embedding (MCRTa).
MCRT_MODELS = ("MCRT", "MCRTp", "MCRTi", "MCRTa")
#: The paper's protocol (``cv="paper"``): random train / validation / test fractions,
#: repeated with seeds ``random_state + 0 … repeats - 1``; the validation part picks the
#: best epoch of every network (MCRT and :data:`GNN_BASELINES`).
PAPER_PROTOCOL = {"test_fraction": 0.1, "validation_fraction": 0.1, "repeats": 5}
#: The graph networks that, like MCRT, keep their best validation epoch under the paper protocol.
GNN_BASELINES = ("CGCNN", "CrystalTwins", "ALIGNN")


def _mcrt_arch(fast: bool) -> dict:
    if fast:
        return dict(hid_dim=64, num_blocks=2, num_heads=4, alignn_hidden_dim=32,
                    alignn_num_conv=2, drop_rate=0.0)
    return dict(hid_dim=768, num_blocks=12, num_heads=12, alignn_hidden_dim=256,
                alignn_num_conv=4, drop_rate=0.1)


def default_settings(fast: bool = False) -> dict:
    """Every setting of a benchmark run (paper's, or the reduced ``fast`` CPU profile).

    Keys: ``featurizer`` (MCRTFeaturizer parameters), ``mcrt`` (architecture shared by
    MCRT/MCRTp/MCRTi and pre-training), ``finetune`` (MCRTRegressor training),
    ``finetune_pretrained`` (overrides of ``finetune`` for the models that start from the
    benchmark's pre-training: MCRT, and MCRTi unless ``MCRTi.pretrained`` is False),
    ``pretrain`` (MCRTPretrainer training; ``max_structures`` subsets the corpus),
    ``MCRTi`` (``pretrained``: pre-train an image-less network for it), one entry per
    baseline (estimator keyword arguments; ``search`` = the paper's inner grid search for
    RF/KRR), and run-wide ``device``, ``n_jobs``, ``top_k``, ``lower_is_better``
    (None: lowest is best for energies), ``target_transform`` (None or ``"log10"``),
    ``max_structures`` (random subset of the dataset, None = all), ``train_fraction``
    (None, or the share of each fold's training part kept, the test parts unchanged: a
    point of a learning curve; :func:`~mcrt_sklearn.benchmark.folds.subsample_training`),
    ``seed``.

    ``fast=False`` is the paper's protocol (12×768 MCRT, 50 fine-tuning epochs, exact
    persistence images, 100/100/200 epochs for CGCNN/ALIGNN/Crystal Twins) — meant for a
    GPU. ``fast=True``: fast persistence images, a 2×64 MCRT, short training; the numbers
    are then those of a reduced protocol (and ``results.json`` says so). Its fine-tuning
    lr (1e-3) suits a fresh network; a pre-trained one is fine-tuned at the paper's 1e-4
    (at 1e-3 it can collapse to predicting the training mean, see docs/benchmarks.md),
    with its head at 1e-3 (``lr_mult=10``; the reference's is 1), which a network of
    hidden size 64 needs to widen its output range in a short run.
    """
    s = {
        "featurizer": dict(image_mode="fast" if fast else "exact", angle_convention="reference",
                           supercell="reference", n_jobs=1),
        "mcrt": _mcrt_arch(fast),
        "finetune": (dict(lr=1e-3, batch_size=8, accumulate=1, max_epochs=30, weight_decay=1e-2,
                          warmup=0.05, validation_fraction=0.1)
                     if fast else
                     dict(lr=1e-4, batch_size=32, accumulate=4, max_epochs=50, weight_decay=1e-2,
                          warmup=0.05, validation_fraction=0.1)),
        # the head of a pre-trained start at the fresh networks' 1e-3 (lr_mult 10): at 1e-4
        # it widens its output range too slowly (docs/benchmarks.md, the demo)
        "finetune_pretrained": dict(lr=1e-4, lr_mult=10) if fast else {},
        "pretrain": (dict(lr=1e-3, batch_size=8, accumulate=1, max_epochs=5, max_structures=200)
                     if fast else
                     dict(lr=1e-4, batch_size=512, accumulate=16, max_epochs=50,
                          validation_fraction=0.1, max_structures=None)),
        "MCRTi": dict(pretrained=True),
        "RF-SOAP": (dict(n_estimators=200, search=False) if fast else
                    dict(n_estimators=500, search=True)),
        "KRR-SOAP": dict(alpha=1e-2, kernel="rbf", search=True),
        "CGCNN": (dict(max_epochs=30, batch_size=32, lr=1e-3) if fast else
                  dict(max_epochs=100, batch_size=32, lr=1e-3)),
        "ALIGNN": (dict(max_epochs=10, batch_size=16, hidden_features=64, alignn_layers=2,
                        gcn_layers=2, lr=1e-3) if fast else
                   dict(max_epochs=100, batch_size=32, hidden_features=256, alignn_layers=4,
                        gcn_layers=4, lr=1e-3)),
        "CrystalTwins": (dict(max_epochs=30, batch_size=32, lr=1e-3, pretrained="published")
                         if fast else
                         dict(max_epochs=200, batch_size=128, lr=1e-3, pretrained="published")),
        "TrainMean": {},
        "TrainMedian": {},
        "device": "auto",
        "n_jobs": 1,
        "top_k": 10,
        "lower_is_better": None,
        "target_transform": None,
        "max_structures": None,
        "train_fraction": None,
        "seed": 0,
        "interval": None,
        "fast": bool(fast),
    }
    return s


def merge_settings(base: dict, overrides: dict | None) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base`` (dicts merged, other values replaced)."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _is_pretrained(name: str, settings: dict) -> bool:
    """Whether model ``name`` starts from the benchmark's own pre-training."""
    return name == "MCRT" or (name == "MCRTi" and settings["MCRTi"].get("pretrained", True))


def finetune_settings(name: str, settings: dict) -> dict:
    """The MCRTRegressor training settings of MCRT variant ``name``: ``finetune``, with
    ``finetune_pretrained`` merged in for the variants that start from pre-training."""
    if _is_pretrained(name, settings):
        return {**settings["finetune"], **settings.get("finetune_pretrained", {})}
    return dict(settings["finetune"])


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str] | None) -> dict:
    """Settings overrides from ``--set`` options: ``KEY=VALUE``, dots for nesting.

    Parameters
    ----------
    items : sequence of str, optional
        E.g. ``["finetune.max_epochs=20", "target_transform=log10"]``. A value is read
        as JSON when it parses (numbers, ``true``, ``null`` …), else kept as a string.

    Returns
    -------
    dict
        Nested overrides for :func:`merge_settings`, e.g.
        ``{"finetune": {"max_epochs": 20}, "target_transform": "log10"}``.
    """
    out: dict = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE (dots for nesting), got {item!r}")
        key, value = item.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value)
    return out


#: The old private name (tests and older scripts use it).
_parse_sets = parse_overrides
