"""What the models are fed: a dataset's (subset of) structures and targets, their lazily
built and cached inputs (:class:`_Inputs`: MCRT records, CGCNN and ALIGNN graphs), and
the pre-training corpus with its cached checkpoint (:func:`_pretrain_checkpoint`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mcrt_sklearn.benchmark.keys import _hash, _pretrain_spec
from mcrt_sklearn.benchmark.storage import _write_json

logger = logging.getLogger(__name__)


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
