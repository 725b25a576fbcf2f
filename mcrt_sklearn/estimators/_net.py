"""skorch plumbing shared by the MCRT estimators.

The estimators are thin scikit-learn faces; training runs through a skorch
``NeuralNet`` built in ``fit``: AdamW, linear warm-up then linear decay (per batch),
optional validation split with early stopping, progress bar, and a collate function
that turns lists of :class:`~mcrt_sklearn.featurizers.record.MCRTInput` into batches.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from skorch.hf import AccelerateMixin
from torch import nn

from mcrt_sklearn.data import batch_to, collate
from mcrt_sklearn.featurizers.record import MCRTInput
from mcrt_sklearn.model.checkpoint import load_checkpoint
from mcrt_sklearn.model.mcrt import MCRT, MCRTConfig
from mcrt_sklearn.schedules import WarmupLinearDecay

#: Architecture parameters of the estimators, under the reference config names.
ARCH_PARAMS = ("hid_dim", "num_blocks", "num_heads", "mlp_ratio", "alignn_hidden_dim",
               "alignn_num_conv", "drop_rate", "use_images", "positional")


class CollatedBatch:
    """A collated batch as skorch sees it: opaque, with the number of crystals as length.

    (skorch measures batches with ``len``; the batch dict mixes per-crystal, per-atom
    and per-edge tensors, so it cannot be handed over as a plain dict.)
    """

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def __len__(self) -> int:
        return int(self.data["atom_mask"].shape[0])

    def to(self, device, non_blocking: bool = False, **kwargs) -> CollatedBatch:
        """Move the tensors (used by ``accelerate``'s device placement)."""
        return CollatedBatch(batch_to(self.data, device))


class CollateRecords:
    """Picklable collate function: (record, target) items → (batch dict, targets)."""

    def __init__(self, pad_to: int | None = None, shuffle_atoms: bool = False,
                 require_images: bool = True, seed: int | None = None, extra=None):
        self.pad_to = pad_to
        self.shuffle_atoms = shuffle_atoms
        self.require_images = require_images
        self.seed = seed
        self.extra = extra
        self._generator = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_generator"] = None  # a torch.Generator does not pickle
        return state

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator()
            self._generator.manual_seed(0 if self.seed is None else int(self.seed))
        return self._generator

    def __call__(self, items):
        records, targets = zip(*items)
        batch = collate(records, pad_to=self.pad_to, shuffle_atoms=self.shuffle_atoms,
                        generator=self.generator if self.shuffle_atoms else None,
                        require_images=self.require_images)
        if self.extra is not None:
            batch = self.extra(batch, self.generator)
        if isinstance(targets[0], torch.Tensor):
            y = torch.stack(targets)
        else:
            y = torch.as_tensor(np.asarray(targets))
        return CollatedBatch(batch), y


class TaskModule(nn.Module):
    """Wraps :class:`MCRT` so that skorch gets one output tensor for one task."""

    def __init__(self, network: MCRT, task: str):
        super().__init__()
        self.network = network
        self.task = task

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.network(batch)[self.task]


class MCRTNet(NeuralNet):
    """skorch ``NeuralNet`` whose inputs are collated MCRT batches (dicts with lists)."""

    def infer(self, x, **fit_params):
        # device None: accelerate placed the batch already
        data = x.data if self.device is None else batch_to(x.data, self.device)
        return self.module_(data, **fit_params)


class AcceleratedMCRTNet(AccelerateMixin, MCRTNet):
    """:class:`MCRTNet` trained through Hugging Face ``accelerate`` (multi-GPU / multi-node)."""


def net_class_and_device(est, plain: type, accelerated: type) -> tuple[type, dict]:
    """The skorch net class and its device/accelerator keyword arguments for ``est``."""
    if getattr(est, "accelerator", None) is None:
        return plain, {"device": device_of(est)}
    return accelerated, {"accelerator": est.accelerator, "device": None}


def module_device(module: nn.Module) -> torch.device:
    """Device of a module's parameters."""
    return next(module.parameters()).device


@torch.no_grad()
def recalibrate_batchnorm(network: nn.Module, records, batch_size: int, device,
                          pad_to: int | None = None, require_images: bool = True) -> None:
    """Recompute BatchNorm running statistics of ``network`` on ``records``.

    The ALIGNN encoder's BatchNorm inputs have tiny variances (~1e-5) at the start of
    training, so the running variance, initialised at 1 and moved 10 % per batch, is
    still far too large after a short fine-tuning run; in eval mode the network then
    collapses to a near-constant output. One pass over the training data with
    cumulative averaging (only the BatchNorm layers in train mode) gives the exact
    statistics of the final weights.
    """
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = network.training
    network.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    try:
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            if len(chunk) < 2 and start > 0:
                break  # a batch of one would give a degenerate CDP BatchNorm update
            batch = collate(chunk, pad_to=pad_to, require_images=require_images)
            network(batch_to(batch, device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        network.train(was_training)


def check_records(X, name: str) -> list[MCRTInput]:
    """X as a list of records, with a clear error when it is something else."""
    if isinstance(X, MCRTInput):
        X = [X]
    X = list(X)
    if not X:
        raise ValueError(f"{name} got no records")
    bad = [type(x).__name__ for x in X if not isinstance(x, MCRTInput)]
    if bad:
        raise TypeError(
            f"{name} expects MCRTInput records (from MCRTFeaturizer), got {bad[0]}; "
            "put MCRTFeaturizer() before it in a Pipeline"
        )
    return X


def build_network(est, tasks: Sequence[str], n_classes: int = 0) -> MCRT:
    """The network of an estimator: from ``est.checkpoint`` or from its architecture params."""
    if est.checkpoint is not None:
        network = load_checkpoint(est.checkpoint, trusted=est.trusted)
        network.set_tasks(tuple(tasks), n_classes=n_classes or None)
        return network
    config = MCRTConfig(
        **{p: getattr(est, p) for p in ARCH_PARAMS},
        tasks=tuple(tasks),
        n_classes=n_classes,
    )
    return MCRT(config)


def make_callbacks(est, n_train: int, has_valid: bool) -> list:
    """LR schedule (+ early stopping, progress bar, user callbacks)."""
    steps = est.max_epochs * max(1, math.ceil(n_train / est.batch_size))
    callbacks = [
        ("lr_schedule", LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
                                    lr_lambda=WarmupLinearDecay(steps, est.warmup),
                                    step_every="batch")),
    ]
    if has_valid and est.early_stopping:
        callbacks.append(("early_stopping", EarlyStopping(monitor="valid_loss",
                                                          patience=est.patience,
                                                          load_best=True)))
    if est.verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(est.callbacks or [])
    return callbacks


def split_validation(est, X: list, y: np.ndarray, stratify=None):
    """(X_train, y_train, train_split) with a seeded hold-out of ``validation_fraction``."""
    frac = est.validation_fraction
    if not frac:
        return X, y, None
    rng = np.random.default_rng(est.random_state)
    n = len(X)
    n_valid = max(1, int(round(frac * n)))
    if n - n_valid < 1:
        raise ValueError(f"validation_fraction={frac} leaves no training data for {n} records")
    order = rng.permutation(n)
    valid, train = order[:n_valid], order[n_valid:]
    ds = Dataset([X[i] for i in valid], y[valid])
    return [X[i] for i in train], y[train], predefined_split(ds)


def device_of(est) -> str:
    if est.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return est.device


@contextlib.contextmanager
def seeded(est):
    """torch's global RNG seeded from ``est.random_state`` inside, restored on exit."""
    with torch.random.fork_rng(devices=[]):
        if est.random_state is not None:
            torch.manual_seed(int(est.random_state))
        yield
