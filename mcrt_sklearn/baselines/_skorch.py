"""Shared skorch plumbing of the graph-network baselines (CGCNN, Crystal Twins, ALIGNN).

Each baseline is a scikit-learn estimator whose constructor only stores its
parameters; ``fit`` turns X (Structures, CIF paths or precomputed graph records)
into graph records, standardises y, builds a torch module and trains it with a
:class:`skorch.NeuralNet` (AdamW, linear warm-up then linear decay, §7). Fitted
attributes end with ``_`` (``net_``, ``y_mean_``, ``y_std_``…), so ``clone`` and
pickling work as for any sklearn estimator.
"""

from __future__ import annotations

import logging
import random
from abc import abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from mcrt_sklearn.domain import check_elements, fitted_elements
from mcrt_sklearn.schedules import WarmupLinearDecay

logger = logging.getLogger(__name__)

__all__ = [
    "GraphBatch",
    "GraphDataset",
    "GraphNet",
    "WarmupLinearDecay",
    "GraphRegressorBase",
    "seed_everything",
]


def seed_everything(seed) -> None:
    """Seed python, numpy and torch (no-op for None)."""
    if seed is None:
        return
    seed = int(seed) % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class GraphDataset(torch.utils.data.Dataset):
    """(record, target) pairs; target 0.0 when y is None (prediction)."""

    def __init__(self, records, y=None):
        self.records = list(records)
        self.y = None if y is None else np.asarray(y, dtype=np.float32).reshape(-1)
        if self.y is not None and len(self.y) != len(self.records):
            raise ValueError(f"{len(self.records)} structures but {len(self.y)} targets")

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i], (0.0 if self.y is None else float(self.y[i]))


class GraphBatch:
    """A collated batch of n crystals: keyword inputs of the module.

    Not a Mapping on purpose: skorch checks that every value of a dict batch has the
    same length, while graph batches mix per-atom, per-edge and per-crystal arrays.
    ``len()`` is the number of crystals. Values need a ``.to(device)`` method.
    """

    def __init__(self, n: int, **data):
        self.n = int(n)
        self.data = data

    def __len__(self) -> int:
        return self.n

    def to(self, device) -> dict:
        return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in self.data.items()}


class GraphNet(NeuralNet):
    """skorch NeuralNet that feeds :class:`GraphBatch` inputs to the module."""

    def infer(self, x, **fit_params):
        if isinstance(x, GraphBatch):
            return self.module_(**x.to(self.device), **fit_params)
        return super().infer(x, **fit_params)


class GraphRegressorBase(RegressorMixin, BaseEstimator):
    """Common fit / predict of the graph baselines (subclasses define the graph and net).

    Subclasses implement ``_records(X)``, ``_collate_fn()`` and ``_make_module()``
    and may override ``_prepare_module(module)`` (e.g. to load pre-trained weights).
    Every subclass ``__init__`` stores its arguments verbatim and nothing else.

    ``fit`` stores ``elements_seen_`` (the training structures' elements); ``predict``
    warns with :class:`~mcrt_sklearn.domain.UnseenElementWarning` for structures that
    hold others.
    """

    # ------------------------------------------------------------ to implement
    @abstractmethod
    def _records(self, X) -> list:
        """X (Structures / paths / records) → list of graph records."""

    @abstractmethod
    def _collate_fn(self):
        """A picklable callable turning [(record, y), …] into (dict of tensors, y)."""

    @abstractmethod
    def _make_module(self) -> torch.nn.Module:
        """A fresh torch module mapping the collated dict to (batch,) outputs."""

    def _prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def _fit_setup(self, X) -> None:
        """Hook run at the start of fit, before records are built."""

    # --------------------------------------------------------------- training
    def _make_net(self, module, n_train: int):
        from skorch.callbacks import LRScheduler, ProgressBar
        from skorch.dataset import ValidSplit

        vf = getattr(self, "validation_fraction", None)
        if vf:
            if not 0.0 < float(vf) < 1.0:
                raise ValueError(f"validation_fraction must be in (0, 1), got {vf!r}")
            vf = float(vf)
            n_train = n_train - int(np.ceil(n_train * vf))
        steps_per_epoch = max(int(np.ceil(n_train / self.batch_size)), 1)
        total = steps_per_epoch * int(self.max_epochs)
        callbacks = [
            (
                "lr_schedule",
                LRScheduler(
                    policy=torch.optim.lr_scheduler.LambdaLR,
                    lr_lambda=WarmupLinearDecay(total, self.warmup),
                    step_every="batch",
                ),
            )
        ]
        if self.progress_bar:
            callbacks.append(("progress", ProgressBar()))
        train_split = ValidSplit(vf, random_state=self.random_state) if vf else None
        patience = getattr(self, "patience", None)
        if patience and not vf:
            raise ValueError("patience (early stopping) needs validation_fraction")
        if vf:
            from skorch.callbacks import EarlyStopping

            # with a validation split the best epoch's weights are kept, as MCRT's
            # fit does; without patience, one longer than the run never stops it
            stop_after = int(patience) if patience else int(self.max_epochs) + 1
            callbacks.append(
                ("early_stopping", EarlyStopping(monitor="valid_loss", patience=stop_after,
                                                 load_best=True))
            )
        collate = self._collate_fn()
        return GraphNet(
            module=module,
            criterion=torch.nn.MSELoss,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            iterator_train__collate_fn=collate,
            iterator_train__shuffle=True,
            iterator_valid__collate_fn=collate,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose),
        )

    def fit(self, X, y):
        """Train on X (Structures, CIF paths or graph records) and targets y.

        y is standardised with the training mean / std inside fit; predictions are
        mapped back to the original units.
        """
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        self._fit_setup(X)
        records = self._records(X)
        if len(records) != len(y):
            raise ValueError(f"{len(records)} structures but {len(y)} targets")
        self.elements_seen_ = fitted_elements(records)
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_std_ = std if std > 0 else 1.0
        seed_everything(self.random_state)
        module = self._prepare_module(self._make_module())
        net = self._make_net(module, len(records))
        ds = GraphDataset(records, (y - self.y_mean_) / self.y_std_)
        net.fit(ds, y=None)
        self.net_ = net
        # the epoch whose weights were kept, as the callback that restored them records it
        stopper = dict(net.callbacks_).get("early_stopping")
        self.best_epoch_ = int(stopper.best_epoch_) if stopper is not None else None
        return self

    def _predict_scaled(self, records) -> np.ndarray:
        check_is_fitted(self, "net_")
        if not records:
            return np.zeros(0)
        out = self.net_.predict(GraphDataset(records))
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def predict(self, X) -> np.ndarray:
        """Predictions in the units of the training targets."""
        check_is_fitted(self, "net_")
        records = self._records(X)
        check_elements(self, records)
        return self._predict_scaled(records) * self.y_std_ + self.y_mean_

    @property
    def history_(self) -> list[dict]:
        """Per epoch: ``train_loss`` and, with a validation split, ``valid_loss``
        (standardised targets)."""
        check_is_fitted(self, "net_")
        return [{k: epoch[k] for k in ("train_loss", "valid_loss") if k in epoch}
                for epoch in self.net_.history]

    @property
    def module_(self) -> torch.nn.Module:
        """The trained torch module."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    # ------------------------------------------------------- save / load (§7)
    def save(self, path) -> None:
        """Save weights + constructor parameters + target scaling (not a pickle)."""
        check_is_fitted(self, "net_")
        torch.save(
            {
                "class": type(self).__name__,
                "params": {k: v for k, v in self.get_params(deep=False).items()
                           if isinstance(v, (int, float, str, bool, type(None)))},
                "state_dict": self.net_.module_.state_dict(),
                "y_mean": self.y_mean_,
                "y_std": self.y_std_,
                "elements_seen": list(self.elements_seen_ or ()),
                "extra": self._save_extra(),
            },
            path,
        )

    def _save_extra(self) -> dict:
        return {}

    def _load_extra(self, extra: dict) -> None:
        pass

    @classmethod
    def load(cls, path, **overrides):
        """Rebuild a fitted estimator from :meth:`save` output (``weights_only`` load)."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {blob.get('class')}, not a {cls.__name__}")
        est = cls(**{**blob["params"], **overrides})
        est._load_extra(blob.get("extra", {}))
        est.y_mean_, est.y_std_ = float(blob["y_mean"]), float(blob["y_std"])
        seen = blob.get("elements_seen")  # absent from files saved before it was kept
        est.elements_seen_ = None if seen is None else tuple(seen)
        module = est._make_module()
        module.load_state_dict(blob["state_dict"], strict=True)
        net = est._make_net(module, 1)
        net.initialize()
        est.net_ = net
        return est
