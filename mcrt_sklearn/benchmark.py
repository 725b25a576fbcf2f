"""Resumable cross-validated benchmark of MCRT against the paper's baselines (DESIGN §8, §11).

:func:`run_benchmark` evaluates every model on the SAME folds of one dataset and target:

- featurisation once (MCRT records, SOAP vectors, CGCNN graphs cached under ``out_dir/cache``;
  the MCRT feature cache is content-addressed and shared by every run using that folder);
- one small MCRT pre-trained once on the pre-training corpus (checkpoint cached under
  ``out_dir/cache/pretrain``; a second, image-less one for MCRTi);
- every (dataset, target, model, fold) result written to
  ``<run_dir>/folds/<model>/fold<k>.json`` when done and skipped when present (with the
  same settings), so a long run can be stopped and finished later;
- metrics per fold and mean ± std: MAE, RMSE, R², Spearman ρ and top-k recovery (how many
  of the k best true structures are among the k best predicted; "best" = lowest for
  energies, highest otherwise unless told) and, for grouped runs, the mean Spearman ρ
  inside each test group (:func:`within_group_spearman`);
- ``results.json`` (every setting actually used, next to the numbers), ``results.md``
  (Markdown table), ``parity.png`` and ``radar.png``.

Models: ``MCRT`` (pre-trained), ``MCRTp`` (no pre-training), ``MCRTi`` (no persistence
images; pre-trained without images), ``RF-SOAP``, ``KRR-SOAP``, ``CGCNN``, ``ALIGNN``,
``CrystalTwins``.

:func:`benchmark_main` and :func:`demo_main` are the ``mcrt-sklearn benchmark`` / ``demo``
command lines.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from mcrt_sklearn.versions import provenance

__all__ = [
    "MODELS",
    "default_settings",
    "finetune_settings",
    "top_k_recovery",
    "regression_metrics",
    "within_group_spearman",
    "make_folds",
    "PAPER_PROTOCOL",
    "run_benchmark",
    "run_few_shot",
    "few_shot_splits",
    "summarize",
    "fold_key",
    "model_components",
    "predict_with_domain_check",
    "markdown_table",
    "benchmark_main",
    "demo_main",
]

logger = logging.getLogger(__name__)

#: Model names understood by :func:`run_benchmark`, in table order. ``TrainMean`` and
#: ``TrainMedian`` predict the training fold's mean / median for every structure: the
#: floor any model has to beat (the median is the best constant for MAE).
MODELS = ("MCRT", "MCRTp", "MCRTi", "MCRTa", "RF-SOAP", "KRR-SOAP", "CGCNN", "ALIGNN",
          "CrystalTwins", "TrainMean", "TrainMedian")
#: The MCRT variants: pre-trained (MCRT), fresh (MCRTp), without persistence images
#: (MCRTi), fresh with the absolute 3-D sin-cos positional embedding (MCRTa).
MCRT_MODELS = ("MCRT", "MCRTp", "MCRTi", "MCRTa")
#: Metric keys, in table order.
METRICS = ("mae", "rmse", "r2", "spearman", "topk")
#: Metrics reported only where they apply (grouped runs: ρ inside each test group).
OPTIONAL_METRICS = ("spearman_within_group",)
METRIC_LABELS = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "spearman": "Spearman ρ",
                 "topk": "top-{k}", "spearman_within_group": "ρ within group"}
#: The paper's protocol (``cv="paper"``): random train / validation / test fractions,
#: repeated with seeds ``random_state + 0 … repeats - 1``; the validation part picks the
#: best epoch of the MCRT networks.
PAPER_PROTOCOL = {"test_fraction": 0.1, "validation_fraction": 0.1, "repeats": 5}
#: Format name written into result files; its version is ``versions.VERSIONS
#: ["benchmark-results"]``, part of every result key with the versions of the model's
#: algorithms (:func:`model_components`).
_RESULT_FORMAT = "mcrt-benchmark-v1"


# --------------------------------------------------------------------------- metrics


def top_k_recovery(y_true, y_pred, k: int = 10, lower_is_better: bool = True) -> int:
    """How many of the ``k`` best structures (by ``y_true``) are among the ``k`` best predicted.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    k : int
        Size of the top set; ``min(k, n)`` when fewer structures are given.
    lower_is_better : bool
        True: best = lowest value (energies); False: best = highest (mobility, uptake).

    Returns
    -------
    int
        Between 0 and ``min(k, n)``. Ties are broken by position (stable sort).
    """
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape}, y_pred {y_pred.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), y_true.size)
    sign = 1.0 if lower_is_better else -1.0
    best_true = np.argsort(sign * y_true, kind="stable")[:k]
    best_pred = np.argsort(sign * y_pred, kind="stable")[:k]
    return int(np.intersect1d(best_true, best_pred).size)


def regression_metrics(y_true, y_pred, k: int = 10, lower_is_better: bool = True) -> dict:
    """MAE, RMSE, R², Spearman ρ and top-k recovery of one set of predictions.

    Spearman ρ (and R² for a constant ``y_true``) is NaN when undefined, e.g. for a
    constant prediction; so is top-k recovery for a constant prediction, where which k
    structures count as "best predicted" would be arbitrary.
    """
    from scipy.stats import spearmanr

    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal, non-empty shapes; got {y_true.shape} and {y_pred.shape}")
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(y_true, y_pred).statistic)
    topk = (float("nan") if np.ptp(y_pred) == 0
            else top_k_recovery(y_true, y_pred, k, lower_is_better))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": r2,
        "spearman": rho,
        "topk": topk,
        "k": int(min(k, y_true.size)),
        "n": int(y_true.size),
    }


def within_group_spearman(y_true, y_pred, groups, min_size: int = 5) -> tuple[float, int]:
    """Mean Spearman ρ inside each group: how well the packings of one molecule are ranked.

    In a grouped benchmark (e.g. one group per molecule's CSP landscape) the overall ρ is
    dominated by the offsets between groups; this metric asks what a CSP user asks —
    are the structures of one landscape put in the right order?

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    groups : array-like of shape (n,)
        Group label of each structure.
    min_size : int
        Groups with fewer structures, or with constant ``y_true``, are left out.

    Returns
    -------
    (mean ρ, number of groups used)
        A group whose predictions are constant counts as ρ = 0 (it ranks nothing). NaN
        and 0 when no group qualifies.
    """
    from scipy.stats import spearmanr

    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not y_true.shape == y_pred.shape == groups.shape:
        raise ValueError(f"need equal shapes; got {y_true.shape}, {y_pred.shape} and "
                         f"{groups.shape}")
    rhos = []
    for g in np.unique(groups):
        member = groups == g
        t, p = y_true[member], y_pred[member]
        if t.size < min_size or np.ptp(t) == 0:
            continue
        rhos.append(0.0 if np.ptp(p) == 0 else float(spearmanr(t, p).statistic))
    return (float(np.mean(rhos)) if rhos else float("nan")), len(rhos)


def guess_lower_is_better(target: str) -> bool:
    """True for energies (lower = more stable), False otherwise (mobility, uptake …)."""
    return "energy" in target.lower()


# --------------------------------------------------------------------------- settings


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
    ``max_structures`` (random subset of the dataset, None = all), ``seed``.

    ``fast=False`` is the paper's protocol (12×768 MCRT, 50 fine-tuning epochs, exact
    persistence images, 100/100/200 epochs for CGCNN/ALIGNN/Crystal Twins) — meant for a
    GPU. ``fast=True``: fast persistence images, a 2×64 MCRT, short training; the numbers
    are then those of a reduced protocol (and ``results.json`` says so). Its fine-tuning
    lr (1e-3) suits a fresh network; a pre-trained one is fine-tuned at the paper's 1e-4
    (at 1e-3 it can collapse to predicting the training mean, see docs/benchmarks.md).
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
        "finetune_pretrained": dict(lr=1e-4) if fast else {},
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
        "seed": 0,
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


def _hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a stopped run never leaves a half-written result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, default=_json_default)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


# --------------------------------------------------------------------------- folds


def make_folds(n: int, cv: int | str = 5, groups=None, random_state: int = 0,
               test_size: float = 0.2) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays shared by every model.

    ``cv`` an int: ``KFold(cv, shuffle=True)`` or, with ``groups``, ``GroupKFold(cv)``
    (whole groups held out). ``cv="split"``: one shuffled train/test split with
    ``test_size`` (``GroupShuffleSplit`` with groups). ``cv="paper"``: the paper's
    protocol, a random 90 / 10 train+validation / test split repeated with 5 seeds (the
    networks hold a ninth of the 90 % out for validation, so 80 / 10 / 10; see
    :data:`PAPER_PROTOCOL`).
    """
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit

    idx = np.arange(n)
    if cv == "paper":
        if groups is not None:
            raise ValueError("the paper protocol is a random split; it takes no groups")
        folds = [next(ShuffleSplit(1, test_size=PAPER_PROTOCOL["test_fraction"],
                                   random_state=random_state + rep).split(idx))
                 for rep in range(PAPER_PROTOCOL["repeats"])]
    elif cv == "split":
        if groups is not None:
            splitter = GroupShuffleSplit(1, test_size=test_size, random_state=random_state)
            folds = splitter.split(idx, groups=groups)
        else:
            folds = ShuffleSplit(1, test_size=test_size, random_state=random_state).split(idx)
    else:
        cv = int(cv)
        if cv < 2:
            raise ValueError(f"cv must be >= 2 or 'split', got {cv}")
        if groups is not None:
            if len(set(groups)) < cv:
                raise ValueError(f"{len(set(groups))} groups cannot make {cv} group folds")
            folds = GroupKFold(cv).split(idx, groups=groups)
        else:
            folds = KFold(cv, shuffle=True, random_state=random_state).split(idx)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]


# --------------------------------------------------------------------------- data


def _load_subset(dataset, data_home, max_structures: int | None, seed: int, target: str | None):
    """(ids, structures, table) of a dataset, optionally a seeded random subset."""
    from mcrt_sklearn.datasets import _properties_table, dataset_folder, load_dataset

    if max_structures is None:
        return load_dataset(dataset, data_home=data_home)
    table = _properties_table(dataset_folder(dataset, data_home=data_home))
    if target is not None and target in table:
        table = table[np.isfinite(table[target].astype(float))]
    ids = list(table["id"])
    if max_structures < len(ids):
        rng = np.random.default_rng(seed)
        ids = [ids[i] for i in sorted(rng.choice(len(ids), int(max_structures), replace=False))]
    return load_dataset(dataset, data_home=data_home, ids=ids)


class _Inputs:
    """Lazily built, cached model inputs of one dataset (shared by all models and folds)."""

    def __init__(self, ids, structures, settings, cache: Path):
        self.ids = list(ids)
        self.structures = list(structures)
        self.settings = settings
        self.cache = cache
        self._records = None
        self._cgcnn = None
        self._alignn = None
        self._fingerprints = None
        self.timings: dict[str, float] = {}

    def content(self, indices) -> str:
        """Hash of the content of the structures at ``indices`` (in order): a fold key
        changes when a structure of the fold is corrected, even under the same id."""
        if self._fingerprints is None:
            from mcrt_sklearn.featurizers.batch import structure_fingerprint

            self._fingerprints = [structure_fingerprint(st) for st in self.structures]
        return _hash([self._fingerprints[i] for i in indices])

    def featurizer(self, pretrain_labels=False, images=None):
        from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

        fz = dict(self.settings["featurizer"])
        with_images = fz.pop("images", True)
        if images is None:
            images = with_images
        return MCRTFeaturizer(images=images, pretrain_labels=pretrain_labels,
                              cache_dir=str(self.cache / "features"), **fz)

    def records(self):
        if self._records is None:
            t = time.perf_counter()
            self._records = self.featurizer().transform(self.structures, ids=self.ids)
            self.timings["mcrt_features_s"] = time.perf_counter() - t
            logger.info("MCRT features of %d structures: %.1f s", len(self.ids),
                        self.timings["mcrt_features_s"])
        return self._records

    def cgcnn_graphs(self, radius=8.0, max_num_nbr=12):
        from mcrt_sklearn.baselines.cgcnn import build_cgcnn_graphs

        key = (float(radius), int(max_num_nbr))
        if self._cgcnn is None or self._cgcnn[0] != key:
            t = time.perf_counter()
            graphs = build_cgcnn_graphs(self.structures, radius, max_num_nbr,
                                        cache=str(self.cache / "cgcnn_graphs"),
                                        n_jobs=self.settings["n_jobs"])
            self._cgcnn = (key, graphs)
            self.timings["cgcnn_graphs_s"] = time.perf_counter() - t
        return self._cgcnn[1]

    def alignn_graphs(self, cutoff=8.0, max_neighbors=12, atom_features="cgcnn"):
        from mcrt_sklearn.baselines.alignn_wrapper import build_alignn_graph

        key = (float(cutoff), int(max_neighbors), str(atom_features))
        if self._alignn is None or self._alignn[0] != key:
            t = time.perf_counter()
            graphs = [build_alignn_graph(s, *key, sid=sid)
                      for sid, s in zip(self.ids, self.structures, strict=False)]
            self._alignn = (key, graphs)
            self.timings["alignn_graphs_s"] = time.perf_counter() - t
        return self._alignn[1]

    def species(self):
        return sorted({el.symbol for s in self.structures for el in s.composition.elements})


# --------------------------------------------------------------------------- pre-training


def _pretrain_spec(settings: dict, pretrain_on, use_images: bool) -> dict:
    from mcrt_sklearn.versions import versions

    pt = dict(settings["pretrain"])
    components = _mcrt_components(settings, use_images)
    return {"format": _RESULT_FORMAT, "versions": versions(*components),
            "corpus": str(pretrain_on),
            "max_structures": pt.pop("max_structures", None), "seed": settings["seed"],
            "arch": settings["mcrt"], "train": pt,
            "featurizer": _featurizer_spec(settings, use_images), "use_images": use_images}


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


class _Corpus:
    """The pre-training corpus, loaded and featurised (with labels) at most once."""

    def __init__(self, settings: dict, pretrain_on, data_home, cache: Path, log):
        self.settings, self.pretrain_on, self.data_home = settings, pretrain_on, data_home
        self.cache, self.log = cache, log
        self._loaded = None
        self._records: dict[bool, list] = {}
        self.featurize_seconds = 0.0

    def records(self, use_images: bool) -> list:
        if True in self._records:  # image records also serve an image-less network
            return self._records[True]
        if use_images not in self._records:
            t0 = time.perf_counter()
            if self._loaded is None:
                self._loaded = _load_subset(self.pretrain_on, self.data_home,
                                            self.settings["pretrain"].get("max_structures"),
                                            self.settings["seed"], None)
            ids, structures, _ = self._loaded
            fz = _Inputs(ids, structures, self.settings, self.cache).featurizer(
                pretrain_labels=True, images=use_images)
            fz.set_params(ignore_errors=True)
            self.log(f"pre-training corpus {self.pretrain_on}: featurising {len(ids)} structures"
                     f"{' with persistence images' if use_images else ''} …")
            recs = [r for r in fz.transform(structures, ids=ids) if r is not None]
            self._records[use_images] = recs
            self.featurize_seconds += time.perf_counter() - t0
        return self._records[use_images]


def _pretrain_paths(settings: dict, pretrain_on, cache: Path, use_images: bool
                    ) -> tuple[dict, Path, Path]:
    """(spec, checkpoint path, metadata path) of the cached pre-training for ``settings``."""
    spec = _pretrain_spec(settings, pretrain_on, use_images)
    ckpt = cache / "pretrain" / f"pretrain-{'img' if use_images else 'noimg'}-{_hash(spec)}.pt"
    return spec, ckpt, ckpt.with_suffix(".json")


def _pretrain_checkpoint(settings: dict, corpus: _Corpus, cache: Path, use_images: bool,
                         device: str, log: Callable[[str], None]) -> tuple[Path, dict]:
    """Pre-train a small MCRT on the corpus once; reuse the cached checkpoint afterwards."""
    spec, ckpt, meta_path = _pretrain_paths(settings, corpus.pretrain_on, cache, use_images)
    folder = ckpt.parent
    if ckpt.is_file() and meta_path.is_file():
        log(f"pre-trained checkpoint found: {ckpt}")
        return ckpt, json.loads(meta_path.read_text())
    from mcrt_sklearn.estimators.pretrain import MCRTPretrainer

    t0 = time.perf_counter()
    records = corpus.records(use_images)
    t_feat = time.perf_counter() - t0
    model = MCRTPretrainer(**settings["mcrt"], use_images=use_images, **spec["train"],
                           random_state=settings["seed"], device=device)
    log(f"pre-training MCRT ({'with' if use_images else 'without'} images) on "
        f"{len(records)} structures for {model.max_epochs} epochs …")
    t1 = time.perf_counter()
    model.fit(records)
    t_fit = time.perf_counter() - t1
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{ckpt.name}.tmp"
    model.save(tmp)
    os.replace(tmp, ckpt)
    last = {k: v for k, v in model.history_[-1].items() if isinstance(v, (int, float))}
    meta = {"checkpoint": str(ckpt), "spec": spec, "n_structures": len(records),
            "featurize_seconds": t_feat, "fit_seconds": t_fit, "last_epoch": last}
    _write_json(meta_path, meta)
    log(f"pre-training done in {t_fit:.0f} s (featurisation {t_feat:.0f} s)")
    return ckpt, meta


# --------------------------------------------------------------------------- models


def _plain(params: dict) -> dict:
    return {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None)))}


def _is_pretrained(name: str, settings: dict) -> bool:
    """Whether model ``name`` starts from the benchmark's own pre-training."""
    return name == "MCRT" or (name == "MCRTi" and settings["MCRTi"].get("pretrained", True))


def finetune_settings(name: str, settings: dict) -> dict:
    """The MCRTRegressor training settings of MCRT variant ``name``: ``finetune``, with
    ``finetune_pretrained`` merged in for the variants that start from pre-training."""
    if _is_pretrained(name, settings):
        return {**settings["finetune"], **settings.get("finetune_pretrained", {})}
    return dict(settings["finetune"])


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


class _ModelFactory:
    """Builds (estimator, X) for one model and fold; pre-trains lazily, once."""

    def __init__(self, inputs: _Inputs, settings: dict, pretrain_on, data_home, cache: Path,
                 device: str, log):
        self.inputs = inputs
        self.settings = settings
        self.pretrain_on = pretrain_on
        self.data_home = data_home
        self.cache = cache
        self.device = device
        self.log = log
        self.pretrained: dict[bool, tuple[Path, dict]] = {}
        self.corpus = _Corpus(settings, pretrain_on, data_home, cache, log)

    def checkpoint(self, use_images: bool) -> Path:
        if use_images not in self.pretrained:
            self.pretrained[use_images] = _pretrain_checkpoint(
                self.settings, self.corpus, self.cache, use_images, self.device, self.log)
        return self.pretrained[use_images][0]

    def pretraining_metadata(self) -> dict[bool, dict]:
        """Metadata of the pre-trainings used: made in this call, or cached by an earlier one
        (when every fold was done before, nothing is pre-trained again)."""
        out = {ui: meta for ui, (_, meta) in self.pretrained.items()}
        for ui in (True, False):
            meta_path = _pretrain_paths(self.settings, self.pretrain_on, self.cache, ui)[2]
            if ui not in out and meta_path.is_file():
                out[ui] = json.loads(meta_path.read_text())
        return out

    def build(self, name: str):
        s = self.settings
        seed = s["seed"]
        if name in MCRT_MODELS:
            from mcrt_sklearn.estimators.regressor import MCRTRegressor

            use_images = name != "MCRTi"
            if use_images and not s["featurizer"].get("images", True):
                raise ValueError(f"{name} uses persistence images but settings['featurizer']"
                                 "['images'] is False; run only MCRTi or enable images")
            ckpt = str(self.checkpoint(use_images)) if _is_pretrained(name, s) else None
            arch = dict(s["mcrt"])
            if name == "MCRTa":
                arch["positional"] = "absolute"
            est = MCRTRegressor(checkpoint=ckpt, **arch, use_images=use_images,
                                **finetune_settings(name, s), random_state=seed,
                                device=self.device)
            return est, self.inputs.records()
        params = dict(s[name])
        if name in ("RF-SOAP", "KRR-SOAP"):
            from sklearn.model_selection import GridSearchCV

            from mcrt_sklearn.baselines import (
                krr_soap_param_grid,
                make_krr_soap,
                make_rf_soap,
                rf_soap_param_grid,
            )

            search = params.pop("search", False)
            common = dict(soap_cache=str(self.cache / "soap"), species=self.inputs.species())
            if name == "RF-SOAP":
                est = make_rf_soap(random_state=seed, n_jobs=s["n_jobs"], **common, **params)
                grid = rf_soap_param_grid()
            else:
                est = make_krr_soap(**common, **params)
                grid = krr_soap_param_grid()
            if search:
                est = GridSearchCV(est, grid, cv=3, scoring="neg_mean_absolute_error",
                                   n_jobs=s["n_jobs"])
            return est, self.inputs.structures
        if name in ("CGCNN", "CrystalTwins"):
            from mcrt_sklearn.baselines import CGCNNRegressor, CrystalTwinsRegressor

            cls = CGCNNRegressor if name == "CGCNN" else CrystalTwinsRegressor
            est = cls(random_state=seed, device=self.device, **params)
            return est, self.inputs.cgcnn_graphs(est.radius, est.max_num_nbr)
        if name == "ALIGNN":
            from mcrt_sklearn.baselines import ALIGNNRegressor

            est = ALIGNNRegressor(random_state=seed, device=self.device, **params)
            return est, self.inputs.alignn_graphs(est.cutoff, est.max_neighbors, est.atom_features)
        if name in ("TrainMean", "TrainMedian"):
            from sklearn.dummy import DummyRegressor

            strategy = "mean" if name == "TrainMean" else "median"
            return DummyRegressor(strategy=strategy, **params), self.inputs.structures
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def predict_with_domain_check(est, X) -> tuple[np.ndarray, list[str]]:
    """``est.predict(X)`` as a float vector, with the messages of the
    :class:`~mcrt_sklearn.domain.UnseenElementWarning` it raised (test structures that
    hold elements the fit never saw)."""
    from mcrt_sklearn.domain import UnseenElementWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnseenElementWarning)
        pred = np.asarray(est.predict(X), dtype=float).reshape(-1)
    notes = [str(w.message) for w in caught if issubclass(w.category, UnseenElementWarning)]
    for w in caught:  # let every other warning through as it would have gone
        if not issubclass(w.category, UnseenElementWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return pred, notes


def _estimator_params(est) -> dict:
    """Plain-valued parameters of a fitted estimator (and the chosen grid point)."""
    out = {"class": type(est).__name__}
    try:
        out["params"] = _plain(est.get_params(deep=True))
    except Exception:  # pragma: no cover - defensive
        pass
    if hasattr(est, "best_params_"):
        out["best_params"] = _plain(est.best_params_)
    return out


# --------------------------------------------------------------------------- the harness


def _target_values(table, target: str, transform: str | None) -> np.ndarray:
    if target not in table:
        cols = [c for c in table.columns if c != "id"]
        raise KeyError(f"target {target!r} is not a column of the dataset; columns: {cols}")
    y = table[target].to_numpy(dtype=float)
    if transform in (None, "none"):
        return y
    if transform == "log10":
        if np.any(y <= 0):
            raise ValueError(f"log10 transform needs positive {target} values")
        return np.log10(y)
    raise ValueError(f"target_transform must be None or 'log10', got {transform!r}")


def _dataset_name(dataset) -> str:
    p = Path(str(dataset))
    return p.name if p.is_dir() else str(dataset)


def run_benchmark(
    dataset,
    target: str,
    models: Sequence[str] = MODELS,
    cv: int | str = 5,
    group: str | None = None,
    pretrain_on="pretrain_corpus",
    fast: bool = False,
    out_dir="benchmark_results",
    data_home=None,
    random_state: int = 0,
    settings: dict | None = None,
    plots: bool = True,
    verbose: bool = True,
) -> dict:
    """Cross-validate ``models`` on one dataset/target with shared folds; resumable.

    Parameters
    ----------
    dataset : str or path
        A dataset name (``"azaphenacenes"``, ``"roy"`` …) or a folder with
        ``cifs/<id>.cif`` + ``properties.csv``.
    target : str
        Column of ``properties.csv`` to predict.
    models : sequence of str
        Subset of :data:`MODELS`.
    cv : int or "split"
        Number of (group) folds, ``"split"`` for one 80/20 split, or ``"paper"`` for the
        paper's protocol (random 80/10/10 train/validation/test, 5 seeds).
    group : str, optional
        Column whose values are kept together (``GroupKFold``; e.g. ``"group"`` = the
        azaphenacene isomer → unseen molecules in every test fold).
    pretrain_on : str or path
        Unlabelled corpus for MCRT's pre-training (a dataset name or folder).
    fast : bool
        Reduced CPU profile (see :func:`default_settings`).
    out_dir : path
        Results, caches and figures. The run folder is ``out_dir/<dataset>-<target>``.
    data_home : path, optional
        Where datasets live (else ``$MCRT_SKLEARN_DATA``, else downloaded).
    random_state : int
        Seeds folds, subsets and every model.
    settings : dict, optional
        Overrides deep-merged into :func:`default_settings` (e.g.
        ``{"finetune": {"max_epochs": 20}, "target_transform": "log10"}``).
    plots : bool
        Write ``parity.png`` and ``radar.png``.
    verbose : bool
        Print progress lines.

    Returns
    -------
    dict
        The content of ``results.json`` plus ``"fitted"`` / ``"skipped"`` lists of
        ``(model, fold)`` run or reused in this call and ``"run_dir"``.
    """
    t_start = time.perf_counter()
    log = print if verbose else logger.info
    models = list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {MODELS}")
    s = merge_settings(default_settings(fast), settings)
    s["seed"] = int(random_state)
    s["_pretrain_on"] = str(pretrain_on)
    device = _resolve_device(s["device"])
    lower = s["lower_is_better"]
    if lower is None:
        lower = guess_lower_is_better(target)
    k = int(s["top_k"])
    transform = s["target_transform"]

    out_dir = Path(out_dir)
    cache = out_dir / "cache"
    name = _dataset_name(dataset)
    tag = f"{name}-{target}" + (f"-{transform}" if transform else "")
    run_dir = out_dir / tag
    run_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    ids, structures, table = _load_subset(dataset, data_home, s["max_structures"], s["seed"], target)
    t_load = time.perf_counter() - t0
    y = _target_values(table, target, transform)
    ok = np.isfinite(y)
    if not ok.all():
        log(f"leaving out {int((~ok).sum())} structures without a {target} value")
        ids = [i for i, keep in zip(ids, ok, strict=False) if keep]
        structures = [st for st, keep in zip(structures, ok, strict=False) if keep]
        table, y = table[ok].reset_index(drop=True), y[ok]
    groups = table[group].to_numpy() if group is not None else None
    folds = make_folds(len(ids), cv, groups, s["seed"])
    if cv == "paper":  # validation = 10 % of all, held out of the 90 % training part
        frac = PAPER_PROTOCOL["validation_fraction"] / (1 - PAPER_PROTOCOL["test_fraction"])
        s["finetune"] = {**s["finetune"], "validation_fraction": frac}
    log(f"{name}: {len(ids)} structures, target {target}"
        f"{' (' + transform + ')' if transform else ''}, {len(folds)} fold(s)"
        f"{' grouped by ' + group if group else ''}; models: {', '.join(models)}; device {device}")
    _write_json(run_dir / "folds.json", {"ids": ids, "folds": [
        {"train": [ids[i] for i in tr], "test": [ids[i] for i in te]} for tr, te in folds]})

    inputs = _Inputs(ids, structures, s, cache)
    factory = _ModelFactory(inputs, s, pretrain_on, data_home, cache, device, log)
    fitted, skipped = [], []
    per_model: dict[str, list[dict]] = {}
    for model in models:
        spec = _model_spec(model, s)
        per_model[model] = []
        for f, (tr, te) in enumerate(folds):
            key = fold_key({"dataset": name, "target": target, "transform": transform,
                            "spec": spec, "seed": s["seed"], "test": [ids[i] for i in te],
                            "train": [ids[i] for i in tr], "k": k, "lower": lower,
                            "content": inputs.content([*tr, *te])}, model, s)
            path = run_dir / "folds" / model / f"fold{f}.json"
            if path.is_file():
                try:
                    old = json.loads(path.read_text())
                except json.JSONDecodeError:
                    old = {}
                if old.get("key") == key:
                    per_model[model].append(old)
                    skipped.append((model, f))
                    log(f"[{model}] fold {f + 1}/{len(folds)}: done before, skipped")
                    continue
                log(f"[{model}] fold {f + 1}/{len(folds)}: settings changed, re-running")
            est, X = factory.build(model)
            X_tr = [X[i] for i in tr]
            X_te = [X[i] for i in te]
            t1 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est.fit(X_tr, y[tr])
            t_fit = time.perf_counter() - t1
            # keep what says the fit failed (e.g. a collapse to the mean); drop library noise
            fit_warnings = [str(w.message) for w in caught
                            if issubclass(w.category, ConvergenceWarning)]
            for text in fit_warnings:
                log(f"[{model}] fold {f + 1}/{len(folds)}: warning: {text}")
            t2 = time.perf_counter()
            pred, domain_warnings = predict_with_domain_check(est, X_te)
            t_pred = time.perf_counter() - t2
            for text in domain_warnings:
                log(f"[{model}] fold {f + 1}/{len(folds)}: warning: {text}")
            metrics = regression_metrics(y[te], pred, k, lower)
            result = {"format": _RESULT_FORMAT, "key": key, "dataset": name, "target": target,
                      "transform": transform, "model": model, "fold": f, "metrics": metrics,
                      "n_train": len(tr), "n_test": len(te), "fit_seconds": t_fit,
                      "predict_seconds": t_pred, "device": device,
                      "provenance": provenance(model_components(model, s)),
                      "estimator": _estimator_params(est), "spec": spec,
                      "test_ids": [ids[i] for i in te], "y_true": y[te].tolist(),
                      "y_pred": pred.tolist()}
            if fit_warnings:
                result["fit_warnings"] = fit_warnings
            if domain_warnings:
                result["domain_warnings"] = domain_warnings
            _write_json(path, result)
            per_model[model].append(result)
            fitted.append((model, f))
            log(f"[{model}] fold {f + 1}/{len(folds)}: MAE {metrics['mae']:.3g}  "
                f"R² {metrics['r2']:.3f}  ρ {metrics['spearman']:.3f}  "
                f"top-{metrics['k']} {metrics['topk']}/{metrics['k']}  (fit {t_fit:.0f} s)")

    if groups is not None:
        # computed from the stored predictions, so folds run before this metric get it too
        group_of = dict(zip(ids, groups, strict=True))
        for results_of_model in per_model.values():
            for r in results_of_model:
                rho, n_groups = within_group_spearman(
                    r["y_true"], r["y_pred"], [group_of[i] for i in r["test_ids"]])
                r["metrics"] = {**r["metrics"], "spearman_within_group": rho,
                                "n_groups_ranked": n_groups}
    summary = summarize(per_model)
    results = {
        "format": _RESULT_FORMAT,
        "dataset": name,
        "dataset_source": str(dataset),
        "target": target,
        "target_transform": transform,
        "lower_is_better": bool(lower),
        "top_k": k,
        "cv": cv,
        "group": group,
        "n_structures": len(ids),
        "n_folds": len(folds),
        "fold_sizes": [[len(tr), len(te)] for tr, te in folds],
        "models": models,
        "pretrain_on": str(pretrain_on) if any(m in ("MCRT", "MCRTi") for m in models) else None,
        "pretraining": {("with_images" if ui else "without_images"): meta
                        for ui, meta in factory.pretraining_metadata().items()
                        if any(_is_pretrained(m, s) and (m != "MCRTi") == ui for m in models)},
        "settings": {k2: v for k2, v in s.items() if not k2.startswith("_")},
        "device": device,
        "summary": summary,
        "timings": {"load_seconds": t_load, **inputs.timings,
                    "wall_seconds_this_call": time.perf_counter() - t_start},
        "environment": _environment(),
        "folds_file": "folds.json",
        "fold_results": {m: [f"folds/{m}/fold{i}.json" for i in range(len(folds))]
                         for m in models},
    }
    _write_json(run_dir / "results.json", results)
    table_md = markdown_table(results)
    (run_dir / "results.md").write_text(table_md + "\n")
    if plots:
        from mcrt_sklearn.plots import parity_plot, radar_plot

        parity_plot(per_model, run_dir / "parity.png",
                    title=f"{name}: {target}" + (f" ({transform})" if transform else ""))
        radar_plot(summary, run_dir / "radar.png", k=k, title=f"{name}: {target}")
    results.update({"fitted": fitted, "skipped": skipped, "run_dir": str(run_dir),
                    "per_model": per_model})
    return results


def _environment() -> dict:
    """Where a run was made: versions (release, git revision, every registered
    algorithm version), Python, platform and libraries."""
    env = {**provenance(), "python": platform.python_version(),
           "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import sklearn
        import torch

        env.update({"torch": torch.__version__, "sklearn": sklearn.__version__,
                    "torch_threads": torch.get_num_threads()})
    except Exception:  # pragma: no cover
        pass
    return env


def summarize(per_model: dict[str, list[dict]]) -> dict:
    """Mean and std (over folds) of every metric and of the fit time, per model."""
    out = {}
    for model, folds in per_model.items():
        if not folds:
            continue
        entry: dict[str, Any] = {"n_folds": len(folds)}
        optional = [m for m in OPTIONAL_METRICS if all(m in f["metrics"] for f in folds)]
        for m in (*METRICS, *optional):
            vals = np.array([f["metrics"][m] for f in folds], dtype=float)
            finite = vals[np.isfinite(vals)]
            entry[m] = {"mean": _finite_mean(vals),
                        "std": float(finite.std()) if finite.size else float("nan"),
                        "folds": vals.tolist()}
        entry["k"] = int(min(f["metrics"]["k"] for f in folds))
        fit = np.array([f["fit_seconds"] for f in folds])
        entry["fit_seconds"] = {"mean": float(fit.mean()), "total": float(fit.sum())}
        entry["devices"] = sorted({str(f.get("device", "?")) for f in folds})
        warned = [int(f["fold"]) for f in folds if f.get("fit_warnings")]
        if warned:
            entry["warned_folds"] = warned
        unseen = [int(f["fold"]) for f in folds if f.get("domain_warnings")]
        if unseen:
            entry["unseen_element_folds"] = unseen
        out[model] = entry
    return out


def _finite_mean(values) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _fmt(entry: dict, digits: int) -> str:
    mean, std = entry["mean"], entry["std"]
    if not math.isfinite(mean):
        return "n/a"
    if std and math.isfinite(std) and std > 0:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def settings_line(results: dict) -> str:
    """One line naming the model sizes and training lengths actually used."""
    s, models = results["settings"], results["models"]
    parts = []
    if any(m.startswith("MCRT") for m in models):
        a, ft, pt = s["mcrt"], s["finetune"], s["pretrain"]
        pre = results.get("pretraining") or {}
        ft_pre = {k: v for k, v in (s.get("finetune_pretrained") or {}).items()
                  if ft.get(k) != v}
        own = ("; pre-trained ones " + ", ".join(
            f"{k.replace('max_epochs', 'epochs')} {v:g}" if isinstance(v, (int, float))
            else f"{k} {v}" for k, v in ft_pre.items())) if pre and ft_pre else ""
        text = (f"MCRT {a['num_blocks']} blocks × {a['hid_dim']} (ALIGNN encoder "
                f"{a['alignn_hidden_dim']} × {a['alignn_num_conv']}), fine-tuned "
                f"{ft['max_epochs']} epochs (lr {ft['lr']:g}, batch {ft['batch_size']}{own})")
        if pre:
            meta = next(iter(pre.values()))
            text += (f", pre-trained {pt['max_epochs']} epochs on {meta['n_structures']} "
                     f"structures of {results.get('pretrain_on')}")
        parts.append(text)
    for m in ("CGCNN", "ALIGNN", "CrystalTwins"):
        if m in models:
            extra = (f", {s[m].get('alignn_layers', 4)}+{s[m].get('gcn_layers', 4)} layers × "
                     f"{s[m].get('hidden_features', 256)}" if m == "ALIGNN" else "")
            parts.append(f"{m} {s[m].get('max_epochs')} epochs{extra}")
    if "RF-SOAP" in models:
        rf = s["RF-SOAP"]
        parts.append("RF-SOAP " + ("grid search" if rf.get("search")
                                   else f"{rf.get('n_estimators')} trees"))
    if "KRR-SOAP" in models:
        parts.append("KRR-SOAP " + ("grid search" if s["KRR-SOAP"].get("search")
                                    else f"alpha {s['KRR-SOAP'].get('alpha')}"))
    return "; ".join(parts) + "."


def markdown_table(results: dict) -> str:
    """The comparison table (mean ± std over folds) in Markdown, with the run's settings."""
    summary = results["summary"]
    k = results["top_k"]
    has_within = bool(summary) and all("spearman_within_group" in e for e in summary.values())
    within_col = " ρ within group |" if has_within else ""
    t = results["target"] + (f" ({results['target_transform']})" if results["target_transform"]
                             else "")
    lines = [
        f"{results['dataset']} — {t}: {results['n_structures']} structures, "
        + (f"{results['n_folds']} folds" if results["n_folds"] > 1 else
           "one train/test split" + (" ({}/{})".format(*results["fold_sizes"][0])
                                     if results.get("fold_sizes") else ""))
        + (f" grouped by `{results['group']}`" if results["group"] else "")
        + f"; top-{k} = {'lowest' if results['lower_is_better'] else 'highest'} values; "
        + ("reduced settings (`fast` profile)" if results["settings"].get("fast")
           else "paper settings")
        + ", persistence images "
        + (f"`{results['settings']['featurizer']['image_mode']}`"
           if results["settings"]["featurizer"].get("images", True) else "off")
        + ".",
        "",
        *(["Settings: " + settings_line(results), ""] if results.get("models") else []),
        f"| model | MAE | RMSE | R² | Spearman ρ |{within_col} top-{k} recovered "
        "| fit time / fold (s) | device |",
        "|---|---|---|---|---|" + "---|" * has_within + "---|---|---|",
    ]
    for model, e in summary.items():
        w = f" {_fmt(e['spearman_within_group'], 3)} |" if has_within else ""
        lines.append(
            f"| {model} | {_fmt(e['mae'], 2)} | {_fmt(e['rmse'], 2)} | {_fmt(e['r2'], 3)} | "
            f"{_fmt(e['spearman'], 3)} |{w} {_fmt(e['topk'], 1)} / {e['k']} | "
            f"{e['fit_seconds']['mean']:.0f} | {', '.join(e.get('devices', ['?']))} |"
        )
    if has_within:
        lines += ["", "ρ within group: mean Spearman ρ inside each test group with ≥ 5 "
                  "structures (constant predictions count as 0), then mean ± std over folds."]
    warned = {m: e["warned_folds"] for m, e in summary.items() if e.get("warned_folds")}
    if warned:
        lines += ["", "Fits that learnt little (last-epoch training loss ≥ 0.9 on standardised "
                  "targets, where predicting the training mean gives 1.0; `fit_warnings` "
                  "in these fold files): " + "; ".join(
                      f"{m} ({', '.join(f'fold{i}' for i in f)})"
                      for m, f in warned.items()) + "."]
    unseen = {m: e["unseen_element_folds"] for m, e in summary.items()
              if e.get("unseen_element_folds")}
    if unseen:
        lines += ["", "Folds whose test structures hold elements unseen in fit (their "
                  "predictions are extrapolations; `domain_warnings` in these fold files): "
                  + "; ".join(f"{m} ({', '.join(f'fold{i}' for i in f)})"
                              for m, f in unseen.items()) + "."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- few-shot


def _regressor_with_scale(base_cls):
    """An MCRTRegressor subclass whose target scaling can be pinned (few-shot stage 2)."""

    class _Pinned(base_cls):
        _pinned_scale = None

        def _encode_targets(self, y):
            out = super()._encode_targets(y)
            if self._pinned_scale is not None:
                self.y_mean_, self.y_std_ = self._pinned_scale
                y = np.asarray(y, dtype=np.float64).reshape(-1)
                out = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
            return out

        def _check_training(self):
            # with the stage-1 scaling, a loss of 1 is not the shots' mean predictor
            if self._pinned_scale is None:
                super()._check_training()

    _Pinned.__name__ = base_cls.__name__
    return _Pinned


def few_shot_splits(ids, groups, shots: Sequence[int], min_test: int = 10,
                    target_groups=None, random_state: int = 0) -> dict:
    """Per target group: base (other groups), nested shot pools and a fixed test set.

    Only groups with at least ``max(shots) + min_test`` structures are used (unless
    ``target_groups`` names them). The first ``n`` structures of a seeded permutation of
    the group are the ``n`` shots; the structures after the first ``max(shots)`` are the
    test set, the same for every ``n``.
    """
    groups = np.asarray(groups)
    need = max(shots) + min_test
    values, counts = np.unique(groups, return_counts=True)
    if target_groups is None:
        chosen = [v for v, c in zip(values, counts, strict=True) if c >= need]
    else:
        chosen = list(target_groups)
    out = {}
    for g in chosen:
        members = np.flatnonzero(groups == g)
        if len(members) < need:
            raise ValueError(f"group {g!r} has {len(members)} structures; shots up to "
                             f"{max(shots)} plus {min_test} test structures need {need}")
        seed = int(random_state) + int(hashlib.sha256(str(g).encode()).hexdigest()[:6], 16)
        perm = np.random.default_rng(seed).permutation(members)
        out[g] = {"base": np.flatnonzero(groups != g), "pool": perm[: max(shots)],
                  "test": perm[max(shots):]}
    if not out:
        raise ValueError(f"no group has {need} structures (max(shots) + min_test)")
    return out


def run_few_shot(
    dataset,
    target: str,
    group: str,
    models: Sequence[str] = ("MCRT", "MCRTp", "MCRTi", "RF-SOAP", "KRR-SOAP"),
    shots: Sequence[int] = (0, 5, 10, 20),
    target_groups=None,
    min_test: int = 10,
    pretrain_on="pretrain_corpus",
    fast: bool = False,
    out_dir="benchmark_results",
    data_home=None,
    random_state: int = 0,
    settings: dict | None = None,
    plots: bool = True,
    verbose: bool = True,
) -> dict:
    """Few-shot transfer to unseen molecules (the paper's protocol), resumable.

    For every target group: train on all OTHER groups (stage 1), then, for each ``n`` in
    ``shots``, adapt with ``n`` structures of the target group and score on the group's
    fixed test structures. MCRT variants are fine-tuned further from the stage-1 network
    (same fine-tuning settings, or ``settings["few_shot"]["epochs"]``; target scaling of
    stage 1 kept); ``n = 0`` is the stage-1 model itself. Baselines without a
    fine-tuning stage are refitted on other groups + the ``n`` shots. With ``TrainMean``
    among ``models`` a ``ShotMean`` row is added: the mean of the ``n`` shots predicted
    for the whole target group (what knowing the group's offset alone gives).

    Results: ``<out_dir>/<dataset>-<target>/few_shot/<model>/g<group>_n<n>.json`` (skipped
    when present with the same settings), ``few_shot.json``, ``few_shot.md`` and
    ``few_shot.png`` (MAE against shots). Returns the summary plus ``fitted``/``skipped``.
    """
    log = print if verbose else logger.info
    s = merge_settings(default_settings(fast), settings)
    s["seed"] = int(random_state)
    s["_pretrain_on"] = str(pretrain_on)
    device = _resolve_device(s["device"])
    lower = s["lower_is_better"]
    if lower is None:
        lower = guess_lower_is_better(target)
    k = int(s["top_k"])
    transform = s["target_transform"]
    shots = sorted({int(n) for n in shots})
    fs_epochs = (s.get("few_shot") or {}).get("epochs")
    out_dir = Path(out_dir)
    cache = out_dir / "cache"
    name = _dataset_name(dataset)
    run_dir = out_dir / (f"{name}-{target}" + (f"-{transform}" if transform else ""))
    ids, structures, table = _load_subset(dataset, data_home, s["max_structures"], s["seed"], target)
    y = _target_values(table, target, transform)
    splits = few_shot_splits(ids, table[group].to_numpy(), shots, min_test, target_groups,
                             s["seed"])
    log(f"{name}: few-shot on {len(splits)} target group(s) {list(splits)}, shots {shots}")
    inputs = _Inputs(ids, structures, s, cache)
    factory = _ModelFactory(inputs, s, pretrain_on, data_home, cache, device, log)
    fitted, skipped, rows = [], [], []
    for model in models:
        spec = _model_spec(model, s)
        is_mcrt = model.startswith("MCRT")
        for g, sp in splits.items():
            base_est = None
            for n in shots:
                key = fold_key({"few_shot": True, "dataset": name, "target": target,
                                "transform": transform, "spec": spec, "seed": s["seed"],
                                "group": str(g), "n": n, "epochs": fs_epochs,
                                "base": [ids[i] for i in sp["base"]],
                                "shots": [ids[i] for i in sp["pool"][:n]],
                                "test": [ids[i] for i in sp["test"]], "k": k, "lower": lower,
                                "content": inputs.content(
                                    [*sp["base"], *sp["pool"][:n], *sp["test"]])}, model, s)
                path = run_dir / "few_shot" / model / f"g{g}_n{n}.json"
                if path.is_file():
                    old = json.loads(path.read_text())
                    if old.get("key") == key:
                        rows.append(old)
                        skipped.append((model, str(g), n))
                        continue
                shot_idx = sp["pool"][:n]
                te = sp["test"]
                t1 = time.perf_counter()
                if is_mcrt:
                    if base_est is None:
                        base_est, X = factory.build(model)
                        base_est.fit([X[i] for i in sp["base"]], y[sp["base"]])
                        base_ckpt = run_dir / "few_shot" / model / f".g{g}_base.pt"
                        base_ckpt.parent.mkdir(parents=True, exist_ok=True)
                        base_est.save(base_ckpt)
                    X = inputs.records()
                    if n == 0:
                        est = base_est
                    else:
                        params = base_est.get_params()
                        params.update(checkpoint=str(base_ckpt))
                        if fs_epochs:
                            params["max_epochs"] = int(fs_epochs)
                        params["batch_size"] = min(params["batch_size"], n)
                        est = _regressor_with_scale(type(base_est))(**params)
                        est._pinned_scale = (base_est.y_mean_, base_est.y_std_)
                        est.fit([X[i] for i in shot_idx], y[shot_idx])
                else:
                    est, X = factory.build(model)
                    train = np.concatenate([sp["base"], shot_idx])
                    est.fit([X[i] for i in train], y[train])
                t_fit = time.perf_counter() - t1
                pred, domain_warnings = predict_with_domain_check(est, [X[i] for i in te])
                metrics = regression_metrics(y[te], pred, k, lower)
                row = {"format": _RESULT_FORMAT, "key": key, "model": model, "group": str(g),
                       "provenance": provenance(model_components(model, s)),
                       "n_shots": n, "metrics": metrics, "n_base": len(sp["base"]),
                       "n_test": len(te), "fit_seconds": t_fit, "test_ids": [ids[i] for i in te],
                       "y_true": y[te].tolist(), "y_pred": pred.tolist()}
                if domain_warnings:
                    row["domain_warnings"] = domain_warnings
                _write_json(path, row)
                rows.append(row)
                fitted.append((model, str(g), n))
                log(f"[{model}] group {g}, {n} shots: MAE {metrics['mae']:.3g} "
                    f"ρ {metrics['spearman']:.3f} (fit {t_fit:.0f} s)")
    if "TrainMean" in models:
        # what knowing the target group's offset alone gives: the mean of its n shots
        # (n = 0: the other groups' mean); instant, so recomputed rather than stored
        for g, sp in splits.items():
            te = sp["test"]
            for n in shots:
                centre = float(np.mean(y[sp["pool"][:n]] if n else y[sp["base"]]))
                pred = np.full(len(te), centre)
                rows.append({"model": "ShotMean", "group": str(g), "n_shots": n,
                             "metrics": regression_metrics(y[te], pred, k, lower),
                             "n_base": len(sp["base"]), "n_test": len(te), "fit_seconds": 0.0,
                             "test_ids": [ids[i] for i in te], "y_true": y[te].tolist(),
                             "y_pred": pred.tolist()})
        models = [*models, "ShotMean"]
    summary: dict = {}
    for model in models:
        summary[model] = {}
        for n in shots:
            sel = [r for r in rows if r["model"] == model and r["n_shots"] == n]
            summary[model][str(n)] = {m: _finite_mean([r["metrics"][m] for r in sel])
                                      for m in METRICS}
    results = {"format": _RESULT_FORMAT, "protocol": "few-shot", "dataset": name,
               "target": target, "target_transform": transform, "group": group,
               "target_groups": [str(g) for g in splits], "shots": shots,
               "min_test": min_test, "models": list(models), "lower_is_better": bool(lower),
               "top_k": k, "settings": {a: b for a, b in s.items() if not a.startswith("_")},
               "pretraining": {("with_images" if ui else "without_images"): meta
                               for ui, (_, meta) in factory.pretrained.items()},
               "summary": summary, "device": device, "environment": _environment()}
    _write_json(run_dir / "few_shot.json", results)
    lines = [f"{name} — {target}: few-shot on unseen `{group}` values "
             f"({len(splits)} target groups); MAE (mean over target groups) by number of "
             "target-group structures used", "",
             "| model | " + " | ".join(f"{n} shots" for n in shots) + " |",
             "|---|" + "---|" * len(shots)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(
            f"{summary[model][str(n)]['mae']:.2f}" for n in shots) + " |")
    (run_dir / "few_shot.md").write_text("\n".join(lines) + "\n")
    if plots:
        from mcrt_sklearn.plots import few_shot_plot

        few_shot_plot(summary, run_dir / "few_shot.png", title=f"{name}: {target}")
    results.update({"fitted": fitted, "skipped": skipped, "run_dir": str(run_dir)})
    return results


# --------------------------------------------------------------------------- command lines


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_sets(items: Sequence[str] | None) -> dict:
    """``["finetune.max_epochs=20", "target_transform=log10"]`` → nested overrides."""
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


def _cv_arg(text: str):
    return text if text in ("split", "paper") else int(text)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def build_benchmark_parser(prog: str = "mcrt-sklearn benchmark") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Cross-validated, resumable benchmark of MCRT against the "
        "baselines (results.json, results.md, parity.png, radar.png).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset name (azaphenacenes, roy, …)")
    src.add_argument("--data", help="folder with cifs/<id>.cif + properties.csv")
    p.add_argument("--target", required=True, help="column of properties.csv to predict")
    p.add_argument("--group", default=None, help="column for grouped CV (e.g. group)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                   help=f"models to run (default: all of {' '.join(MODELS)})")
    p.add_argument("--cv", type=_cv_arg, default=5, help="number of folds, or 'split' (default 5)")
    p.add_argument("--protocol", choices=("cv", "paper"), default="cv",
                   help="'paper': the paper's random 80/10/10 train/validation/test split, "
                        "repeated over 5 seeds (overrides --cv; no --group)")
    p.add_argument("--pretrain-on", default="pretrain_corpus",
                   help="unlabelled corpus for MCRT pre-training (name or folder)")
    p.add_argument("--fast", action="store_true",
                   help="reduced CPU profile: fast persistence images, 2x64 MCRT, short training")
    p.add_argument("--log10", action="store_true", help="predict log10 of the target")
    p.add_argument("--higher-is-better", action="store_true",
                   help="top-k = highest values (default: lowest for energies, else highest)")
    p.add_argument("--lower-is-better", action="store_true", help="top-k = lowest values")
    p.add_argument("--max-structures", type=int, default=None, help="random subset size")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default auto)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. finetune.max_epochs=20 (repeatable)")
    p.add_argument("--out", default="benchmark_results", help="output folder")
    p.add_argument("--data-home", default=None, help="folder holding the datasets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--few-shot", type=int, nargs="+", default=None, metavar="N",
                   help="few-shot protocol instead of CV (needs --group): train on the other "
                   "groups, then adapt with N structures of each target group, e.g. 0 5 10 20")
    p.add_argument("--target-groups", nargs="+", default=None,
                   help="few-shot target groups (default: every group large enough)")
    p.add_argument("--min-test", type=int, default=10,
                   help="few-shot: test structures kept per target group (default 10)")
    return p


def benchmark_main(argv: Sequence[str] | None = None) -> int:
    """``mcrt-sklearn benchmark``: parse ``argv`` and run :func:`run_benchmark`."""
    args = build_benchmark_parser().parse_args(argv)
    _set_threads(args.threads)
    overrides = _parse_sets(args.set)
    if args.log10:
        overrides["target_transform"] = "log10"
    if args.higher_is_better:
        overrides["lower_is_better"] = False
    if args.lower_is_better:
        overrides["lower_is_better"] = True
    if args.max_structures is not None:
        overrides["max_structures"] = args.max_structures
    if args.device is not None:
        overrides["device"] = args.device
    if args.few_shot is not None:
        if args.group is None:
            raise SystemExit("--few-shot needs --group COL")
        groups = args.target_groups
        if groups is not None:  # match the column's type (ints for the azaphenacenes)
            groups = [_parse_value(g) for g in groups]
        res = run_few_shot(
            args.dataset or args.data, args.target, args.group, models=args.models,
            shots=args.few_shot, target_groups=groups, min_test=args.min_test,
            pretrain_on=args.pretrain_on, fast=args.fast, out_dir=args.out,
            data_home=args.data_home, random_state=args.seed, settings=overrides,
            plots=not args.no_plots)
        print()
        print(Path(res["run_dir"], "few_shot.md").read_text())
        return 0
    if args.protocol == "paper" and args.group:
        raise SystemExit("--protocol paper is a random split; drop --group")
    results = run_benchmark(
        args.dataset or args.data, args.target, models=args.models,
        cv="paper" if args.protocol == "paper" else args.cv,
        group=args.group, pretrain_on=args.pretrain_on, fast=args.fast, out_dir=args.out,
        data_home=args.data_home, random_state=args.seed, settings=overrides,
        plots=not args.no_plots)
    print()
    print(markdown_table(results))
    print(f"\nresults: {results['run_dir']}/results.json (+ results.md, parity.png, radar.png)")
    return 0


#: The demo's reduced protocol (measured to finish in ≤ 15 min on 2 CPU cores; see README).
DEMO_SETTINGS = {
    "max_structures": 150,
    "featurizer": {"image_mode": "fast"},
    "pretrain": {"max_structures": 96, "max_epochs": 5, "lr": 1e-3, "batch_size": 8},
    "finetune": {"max_epochs": 25, "lr": 1e-3, "batch_size": 8, "accumulate": 1},
    "RF-SOAP": {"n_estimators": 200, "search": False},
    "KRR-SOAP": {"search": True},
    "CGCNN": {"max_epochs": 15, "batch_size": 16},
    "CrystalTwins": {"max_epochs": 15, "batch_size": 16},
}
DEMO_MODELS = ("MCRT", "MCRTp", "MCRTi", "RF-SOAP", "KRR-SOAP", "CGCNN", "CrystalTwins",
               "TrainMean")


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``mcrt-sklearn demo``: a small, complete, honest comparison on azaphenacene lattice energies.

    A seeded random subset of the azaphenacene CSP landscape, one 80/20 split, fast
    persistence images, a 2×64 MCRT pre-trained briefly on part of the pre-training
    corpus, reduced epochs for every network. Prints the table from this very run and
    writes results.json, results.md, parity.png and radar.png.
    """
    p = argparse.ArgumentParser(prog="mcrt-sklearn demo", description=demo_main.__doc__.split("\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding the datasets "
                   "(default $MCRT_SKLEARN_DATA, else ~/.cache/mcrt_sklearn; downloaded if missing)")
    p.add_argument("--out", default="mcrt_demo", help="output folder (default ./mcrt_demo)")
    p.add_argument("--n", type=int, default=DEMO_SETTINGS["max_structures"],
                   help="number of azaphenacene structures (default %(default)s)")
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=MODELS,
                   metavar="MODEL", help=f"default: {' '.join(DEMO_MODELS)}")
    p.add_argument("--cv", type=_cv_arg, default="split", help="'split' (default) or folds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting")
    args = p.parse_args(argv)
    _set_threads(args.threads)
    overrides = merge_settings(DEMO_SETTINGS, {"max_structures": args.n})
    overrides = merge_settings(overrides, _parse_sets(args.set))
    t = time.perf_counter()
    print("MCRT demo: azaphenacene lattice energies (reduced CPU protocol; see results.json)\n")
    results = run_benchmark("azaphenacenes", "lattice_energy_kJ_per_mol", models=args.models,
                            cv=args.cv, fast=True, out_dir=args.out, data_home=args.data_home,
                            random_state=args.seed, settings=overrides)
    wall = time.perf_counter() - t
    print()
    print(markdown_table(results))
    print(f"\nMAE/RMSE in kJ/mol. Wall time {wall / 60:.1f} min. Figures and settings: "
          f"{results['run_dir']}/ (results.json, results.md, parity.png, radar.png)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(benchmark_main())
