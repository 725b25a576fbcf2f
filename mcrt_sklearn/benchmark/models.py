"""The estimators: :class:`_ModelFactory` builds (estimator, inputs) for each model name
and pre-trains the MCRT start lazily, once; :func:`predict_with_domain_check` predicts
and keeps the unseen-element warnings.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from mcrt_sklearn.benchmark.inputs import _Corpus, _Inputs, _pretrain_checkpoint, _pretrain_paths
from mcrt_sklearn.benchmark.settings import MCRT_MODELS, MODELS, _is_pretrained, finetune_settings

__all__ = ["predict_with_domain_check"]


def _plain(params: dict) -> dict:
    return {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool, type(None)))}


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


def predict_with_domain_check(est, X, method: str = "predict"):
    """``est.predict(X)`` as a float vector, with the messages of the
    :class:`~mcrt_sklearn.domain.UnseenElementWarning` it raised (test structures that
    hold elements the fit never saw).

    ``method="predict_interval"`` (a conformal regressor): ``(prediction, lower,
    upper)`` as float vectors instead of the prediction, from one prediction pass.
    """
    from mcrt_sklearn.domain import UnseenElementWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnseenElementWarning)
        out = getattr(est, method)(X)
        if method == "predict_interval":
            pred = tuple(np.asarray(a, dtype=float).reshape(-1) for a in out)
        else:
            pred = np.asarray(out, dtype=float).reshape(-1)
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


def _training_curve(est) -> dict | None:
    """What a network's fit did, per epoch (``history_``: train loss, validation loss and
    validation MAE where recorded, all on the standardised targets) and the epoch kept
    (``best_epoch_``); None without a history."""
    history = getattr(est, "history_", None)
    if history is None:
        return None
    out: dict = {"epochs_run": len(history)}
    if getattr(est, "best_epoch_", None) is not None:
        out["best_epoch"] = int(est.best_epoch_)
    for name in ("train_loss", "valid_loss", "valid_mae"):
        values = [epoch.get(name) for epoch in history]
        if any(v is not None for v in values):
            out[name] = [None if v is None else float(v) for v in values]
    return out
