"""The fine-tuning estimators' common part: :class:`_MCRTFineTuner` (constructor,
training loop through the reference recipe, save/load), which :class:`MCRTRegressor`
and :class:`MCRTClassifier` specialise (targets, loss, predictions).

Both fine-tune every weight of an MCRT network (pre-trained checkpoint, or a fresh one
built from the architecture parameters) with a linear head on the [CLS] embedding,
through a skorch ``NeuralNet``. X is a list of
:class:`~mcrt_sklearn.featurizers.record.MCRTInput` records, so

>>> Pipeline([("feat", MCRTFeaturizer()), ("model", MCRTRegressor())])  # doctest: +SKIP

works on pymatgen Structures or CIF paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from mcrt_sklearn.domain import ElementTap, check_elements, fitted_elements
from mcrt_sklearn.errors import CheckpointError
from mcrt_sklearn.estimators._net import (
    AcceleratedMCRTNet,
    CollateRecords,
    MCRTNet,
    TaskModule,
    build_network,
    check_accumulation,
    check_records,
    data_summary,
    fit_net,
    main_process_writes,
    make_callbacks,
    module_device,
    net_class_and_device,
    recalibrate_batchnorm,
    recipe_of,
    seeded,
    split_validation,
    train_iterator_params,
)
from mcrt_sklearn.model.checkpoint import (
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from mcrt_sklearn.model.precision import check_precision, inference_autocast

__all__ = ["_MCRTFineTuner"]

_PLAIN = (str, int, float, bool, type(None))


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(isinstance(v, _PLAIN) for v in value)
    return isinstance(value, _PLAIN)



class _MCRTFineTuner(BaseEstimator):
    """Shared constructor, training loop and persistence of the fine-tuning estimators."""

    _task = ""

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        trusted: bool = False,
        hid_dim: int = 768,
        num_blocks: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        alignn_hidden_dim: int = 256,
        alignn_num_conv: int = 4,
        drop_rate: float = 0.1,
        use_images: bool = True,
        positional: str = "relative",
        lr: float = 1e-4,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-8,
        param_groups: str = "reference",
        lr_mult: float = 1.0,
        head_init: str = "reference",
        schedule: str = "reference",
        warmup: float = 0.05,
        end_lr: float = 0.0,
        decay_power: float = 1.0,
        batch_size: int = 32,
        accumulate: int = 4,
        gradient_clip: float | None = 1.0,
        max_epochs: int = 50,
        validation_fraction: float | None = 0.1,
        validation_split: str = "random",
        early_stopping: bool = True,
        patience: int | None = None,
        shuffle_atoms: bool = True,
        pad_to: int | None = None,
        recalibrate_batchnorm: bool = False,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: int = 0,
        callbacks: list | None = None,
        accelerator=None,
        shuffle_seed: int | None = None,
        resume_from: str | os.PathLike | None = None,
        resume_every: int | None = None,
        num_workers: int = 0,
        precision: str = "fp32",
    ):
        self.checkpoint = checkpoint
        self.trusted = trusted
        self.hid_dim = hid_dim
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.alignn_hidden_dim = alignn_hidden_dim
        self.alignn_num_conv = alignn_num_conv
        self.drop_rate = drop_rate
        self.use_images = use_images
        self.positional = positional
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.param_groups = param_groups
        self.lr_mult = lr_mult
        self.head_init = head_init
        self.schedule = schedule
        self.warmup = warmup
        self.end_lr = end_lr
        self.decay_power = decay_power
        self.batch_size = batch_size
        self.accumulate = accumulate
        self.gradient_clip = gradient_clip
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.shuffle_atoms = shuffle_atoms
        self.pad_to = pad_to
        self.recalibrate_batchnorm = recalibrate_batchnorm
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.shuffle_seed = shuffle_seed
        self.resume_from = resume_from
        self.resume_every = resume_every
        self.num_workers = num_workers
        self.precision = precision

    # -- hooks for the subclasses ---------------------------------------------------
    def _encode_targets(self, y) -> np.ndarray:
        raise NotImplementedError

    def _criterion(self):
        raise NotImplementedError

    def _n_classes(self) -> int:
        return 0

    def _check_training(self) -> None:
        """Warn about a fit that learnt nothing (hook; called at the end of ``fit``)."""

    #: Validation metric that picks the best epoch (``valid_loss`` or ``valid_mae``).
    _monitor = "valid_loss"

    # -- training -------------------------------------------------------------------
    def _make_net(self, network, n_train: int, train_split):
        require_images = bool(network.config.use_images)
        micro = check_accumulation(self)
        net_class, placement = net_class_and_device(self, MCRTNet, AcceleratedMCRTNet)
        has_valid = train_split is not None
        return net_class(
            module=TaskModule(network, self._task),
            criterion=self._criterion(),
            recipe=recipe_of(self, n_train),
            validation_mae=self._monitor == "valid_mae",
            lr=self.lr,
            max_epochs=self.max_epochs,
            **train_iterator_params(self),
            iterator_train__collate_fn=CollateRecords(self.pad_to, self.shuffle_atoms,
                                                      require_images, self.random_state,
                                                      micro_batch_size=micro),
            iterator_valid__collate_fn=CollateRecords(self.pad_to, False, require_images),
            train_split=train_split,
            callbacks=make_callbacks(self, has_valid, self._monitor),
            verbose=self.verbose,
            **placement,
        )

    def fit(self, X, y, groups=None):
        """Fine-tune on records ``X`` and targets ``y``.

        Parameters
        ----------
        X : list of MCRTInput
            Records from :class:`~mcrt_sklearn.MCRTFeaturizer`.
        y : array-like of shape (n,)
            Targets.
        groups : array-like of shape (n,), optional
            Group of each record (e.g. its molecule); with ``validation_split="groups"``
            the validation split holds out whole groups. Ignored otherwise.

        Returns
        -------
        self
        """
        X = check_records(X, type(self).__name__)
        check_precision(self.precision)
        self.elements_seen_ = fitted_elements(X)
        y_enc = self._encode_targets(y)
        if len(y_enc) != len(X):
            raise ValueError(f"got {len(X)} records and {len(y_enc)} targets")
        with seeded(self):
            network = build_network(self, (self._task,), n_classes=self._n_classes())
            X_train, y_train, train_split = split_validation(self, X, y_enc, groups=groups)
            self.net_ = self._make_net(network, len(X_train), train_split)
            fit_net(self, self.net_, X_train, y_train)
            if self.recalibrate_batchnorm:
                recalibrate_batchnorm(network, X_train, self.batch_size, module_device(network),
                                      self.pad_to, bool(network.config.use_images))
        self.config_ = network.config.to_dict()
        self.history_ = self.net_.history
        # the epoch whose weights early stopping restored; the last one without it
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        restored = int(stopper.best_epoch_) if stopper is not None else 0
        self.best_epoch_ = restored or len(self.history_)
        self.training_provenance_ = {
            "origin": "fit", "estimator": type(self).__name__,
            "trained_on": {**data_summary(X), "validation_fraction": self.validation_fraction,
                           "validation_split": self.validation_split},
            "training": {"epochs_run": len(self.history_), "best_epoch": self.best_epoch_,
                         "train_loss_of_best_epoch":
                             float(self.history_[self.best_epoch_ - 1, "train_loss"])},
            "started_from": self.started_from_,
        }
        self._check_training()
        return self

    def _raw_predict(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = check_records(X, type(self).__name__)
        tap = None
        in_process = not getattr(self.net_, "iterator_valid__num_workers", 0)
        if getattr(X, "_lazy_records", False) and in_process:
            X = tap = ElementTap(X)  # from disk: note the elements as they are read
        else:
            check_elements(self, X)
        device = module_device(self.net_.module_)
        with torch.no_grad(), inference_autocast(self.precision, device):
            out = self.net_.forward(X, training=False)
        if tap is not None:
            tap.warn(self)
        return out.detach().float().cpu().numpy()

    @property
    def network_(self):
        """The fitted MCRT network (torch module)."""
        check_is_fitted(self, "net_")
        return self.net_.module_.network

    # -- persistence ----------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {}

    def _set_fitted_state(self, state: dict) -> None:
        pass

    def save(self, path: str | os.PathLike) -> Path | None:
        """Save the fitted network and the estimator: safetensors weights + one JSON
        document (architecture, the estimator's parameters, its fitted state — target
        scaling or classes —, the library version and the provenance: what it was trained
        on, how, and what it started from).

        Returns the path written; under a multi-process accelerator only the main process
        writes, and the others return None once it has. Loading it never unpickles; it
        is also a checkpoint that
        :func:`~mcrt_sklearn.load_checkpoint`, ``MCRTEncoder(checkpoint=...)`` and
        ``MCRTRegressor(checkpoint=...)`` accept.
        """
        check_is_fitted(self, "net_")
        params = {k: v for k, v in self.get_params().items() if _plain(v)}
        params["checkpoint"] = None
        params["resume_from"] = None  # the run's state file is not part of the model
        params["resume_every"] = None
        seen = getattr(self, "elements_seen_", None)
        extra = {"estimator": {"class": type(self).__name__, "params": params,
                               "fitted": self._fitted_state(),
                               "elements_seen": None if seen is None else list(seen)}}
        return main_process_writes(self, lambda: save_checkpoint(
            self.network_, path, extra=extra,
            provenance=getattr(self, "training_provenance_", None)))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None):
        """Load an estimator written by :meth:`save` (or converted from a published
        fine-tuned model, :func:`mcrt_sklearn.pretrained.convert`), ready to predict.

        ``path`` may be a file (safetensors + JSON, or a version-1 ``.pt`` of ours), a
        published model's name or an http(s) URL. ``device`` overrides the saved
        ``device`` parameter (e.g. ``"cuda"``).
        """
        from mcrt_sklearn.pretrained import resolve_checkpoint

        path = resolve_checkpoint(path)
        payload = read_checkpoint_metadata(path)
        meta = payload.get("estimator") if isinstance(payload, dict) else None
        if not meta or meta.get("class") != cls.__name__:
            found = meta.get("class") if meta else "a bare network checkpoint"
            raise CheckpointError(f"{path}: holds {found}, not a saved {cls.__name__}")
        # JSON has no tuples: betas, tasks … come back as lists
        est = cls(**{k: tuple(v) if isinstance(v, list) else v
                     for k, v in meta["params"].items()})
        if device is not None:
            est.set_params(device=device)
        network = load_checkpoint(path)
        with seeded(est):
            est.net_ = est._make_net(network, 1, None)
            est.net_.initialize()
        est.config_ = network.config.to_dict()
        est.history_ = est.net_.history
        est._set_fitted_state(meta["fitted"])
        seen = meta.get("elements_seen")  # absent from files saved before it was kept
        est.elements_seen_ = None if seen is None else tuple(seen)
        stored = payload.get("provenance")
        est.training_provenance_ = dict(stored) if isinstance(stored, dict) else None
        return est
