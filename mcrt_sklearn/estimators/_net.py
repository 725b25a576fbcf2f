"""skorch plumbing shared by the MCRT estimators.

The estimators are thin scikit-learn faces; training runs through a skorch
``NeuralNet`` built in ``fit`` whose optimizer step is
:class:`mcrt_sklearn.training.OptimizerStep` (the reference recipe: its parameter
groups, AdamW, warm-up + decay per optimizer step, micro-batch accumulation, gradient
clipping), with a validation split that picks the best epoch, a progress bar, and a
collate function that turns lists of
:class:`~mcrt_sklearn.featurizers.record.MCRTInput` into batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PassthroughScoring, ProgressBar
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator
from torch import nn

from mcrt_sklearn.collate import batch_to, collate
from mcrt_sklearn.estimators._run import (  # noqa: F401  (re-exported to the estimators)
    check_accumulation,
    fit_net,
    is_main_process,
    main_process_writes,
    n_processes,
    rank_batching,
    train_iterator_params,
)
from mcrt_sklearn.estimators._validation import (  # noqa: F401  (re-exported)
    RecordView,
    group_validation_indices,
    split_validation,
    validation_indices,
)
from mcrt_sklearn.featurizers.record import MCRTInput
from mcrt_sklearn.model.checkpoint import load_checkpoint
from mcrt_sklearn.model.heads import HEAD_INITS, init_head_fan_in
from mcrt_sklearn.model.mcrt import MCRT, MCRTConfig
from mcrt_sklearn.training import OptimizerStep, TrainingRecipe, optimizer_steps_per_epoch

#: Architecture parameters of the estimators, under the reference config names.
ARCH_PARAMS = ("hid_dim", "num_blocks", "num_heads", "mlp_ratio", "alignn_hidden_dim",
               "alignn_num_conv", "drop_rate", "use_images", "positional")
#: Estimator parameters that become the :class:`~mcrt_sklearn.training.TrainingRecipe`.
RECIPE_PARAMS = ("lr", "weight_decay", "betas", "eps", "param_groups", "lr_mult", "schedule",
                 "warmup", "end_lr", "decay_power", "accumulate", "gradient_clip")


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


class MicroBatches:
    """One optimizer step's micro-batches (collated), as one skorch batch.

    ``len`` is the number of crystals of the step (what skorch weighs the loss by).
    """

    __slots__ = ("parts",)

    def __init__(self, parts: list[CollatedBatch]):
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def to(self, device, non_blocking: bool = False, **kwargs) -> MicroBatches:
        return MicroBatches([p.to(device) for p in self.parts])


class CollateRecords:
    """Picklable collate function: (record, target) items → (batch dict, targets).

    With ``micro_batch_size``, the items of one optimizer step are split into
    micro-batches of that size and returned as ``(MicroBatches, [targets, ...])``.
    """

    def __init__(self, pad_to: int | None = None, shuffle_atoms: bool = False,
                 require_images: bool = True, seed: int | None = None, extra=None,
                 micro_batch_size: int | None = None):
        self.pad_to = pad_to
        self.shuffle_atoms = shuffle_atoms
        self.require_images = require_images
        self.seed = seed
        self.extra = extra
        self.micro_batch_size = micro_batch_size
        self._generator = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_generator"] = None  # a torch.Generator does not pickle
        return state

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            seed = 0 if self.seed is None else int(self.seed)
            worker = torch.utils.data.get_worker_info()
            if worker is not None:
                # a DataLoader worker (a new copy every epoch): its own stream, from the
                # worker seed the DataLoader draws for each epoch and worker, so that
                # atom shuffling and pre-training masks differ between workers and epochs
                seed = (seed * 1_000_003 + int(worker.seed)) % (2 ** 63)
            self._generator = torch.Generator()
            self._generator.manual_seed(seed)
        return self._generator

    def __call__(self, items):
        if self.micro_batch_size:
            m = int(self.micro_batch_size)
            parts = [self._one(items[i : i + m]) for i in range(0, len(items), m)]
            return MicroBatches([x for x, _ in parts]), [y for _, y in parts]
        return self._one(items)

    def _one(self, items):
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
    """skorch ``NeuralNet`` whose inputs are collated MCRT batches (dicts with lists).

    Its optimizer, schedule and training step come from ``recipe`` (a dict of
    :class:`~mcrt_sklearn.training.TrainingRecipe` fields): every training batch is one
    optimizer step over its micro-batches (:class:`MicroBatches`). With
    ``validation_mae``, validation also records ``valid_mae`` (MAE of the network's
    output against the — standardised — targets).
    """

    def __init__(self, *args, recipe: dict | None = None, validation_mae: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.validation_mae = validation_mae

    def initialize_optimizer(self, triggered_directly=None):
        recipe = TrainingRecipe(**(self.recipe or {"lr": self.lr}))
        # pylint: disable=attribute-defined-outside-init
        self.optimizer_, self.scheduler_, self.param_groups_ = recipe.build(
            self.module_, prefix="network.")
        self.recipe_ = recipe
        return self

    # -- resuming inside an epoch (mcrt_sklearn.training.state) ----------------------
    _resume_partial = None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self._resume_partial is None:  # else the epoch's history row is restored
            super().on_epoch_begin(net, dataset_train=dataset_train,
                                   dataset_valid=dataset_valid, **kwargs)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and iterator is not None and self._resume_partial is not None:
            from mcrt_sklearn.training.state import run_resumed_epoch

            return run_resumed_epoch(self, iterator, prefix, step_fn, **fit_params)
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def infer(self, x, **fit_params):
        # device None: accelerate placed the batch already
        data = x.data if self.device is None else batch_to(x.data, self.device)
        return self.module_(data, **fit_params)

    # -- hooks that accelerate replaces ----------------------------------------------
    def _backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def _clip_grad_norm(self, parameters, max_norm):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def _autocast(self):
        return contextlib.nullcontext()

    def _process_mean(self, value: torch.Tensor) -> torch.Tensor:
        return value

    def train_step(self, batch, **fit_params):
        """One optimizer step over the batch's micro-batches (``OptimizerStep``)."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        if not isinstance(Xi, MicroBatches):
            Xi, yi = MicroBatches([Xi]), [yi]
        recipe = self.recipe_
        step = OptimizerStep(self.optimizer_, self.scheduler_, recipe.accumulate,
                             recipe.gradient_clip, backward=self._backward,
                             clip_grad_norm=self._clip_grad_norm)

        def loss_fn(x, y):
            with self._autocast():
                y_pred = self.infer(x, **fit_params)
                return self.get_loss(y_pred, y, X=x, training=True), y_pred

        def on_grad_computed():
            self.notify("on_grad_computed",
                        named_parameters=TeeGenerator(self.get_all_learnable_params()),
                        batch=batch, training=True)

        log = step(zip(Xi.parts, yi), loss_fn, on_grad_computed)
        self.history.record_batch("grad_norm", log.grad_norm)
        preds = log.predictions
        y_pred = torch.cat(preds) if all(isinstance(p, torch.Tensor) for p in preds) else preds
        # the mean over the processes' crystals: the loss of the whole optimizer step
        return {"loss": self._process_mean(torch.tensor(log.mean_loss)), "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        # with several processes each sees its shard; the mean over them is recorded, so
        # every process picks the same best epoch
        step = super().validation_step(batch, **fit_params)
        step["loss"] = self._process_mean(step["loss"].detach())
        if self.validation_mae:
            _, yi = unpack_data(batch)
            pred = step["y_pred"].reshape(-1).float()
            target = yi.to(pred.device).reshape(-1).float()
            mae = self._process_mean((pred - target).abs().mean())
            self.history.record_batch("valid_mae", float(mae))
        return step


class AcceleratedMCRTNet(AccelerateMixin, MCRTNet):
    """:class:`MCRTNet` trained through Hugging Face ``accelerate`` (multi-GPU / multi-node)."""

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        _find_unused_parameters(self.accelerator)
        # a criterion without parameters (MSE, the pre-training's Identity) is not
        # prepared: DistributedDataParallel refuses a module with none
        plain = {}
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, nn.Module) and not any(
                    p.requires_grad for p in criterion.parameters()):
                plain[name] = criterion
                setattr(self, name + "_", None)
        try:
            return super()._initialize_accelerator()
        finally:
            for name, criterion in plain.items():
                setattr(self, name + "_", criterion)

    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def _clip_grad_norm(self, parameters, max_norm):
        return self.accelerator.clip_grad_norm_(parameters, max_norm)

    def _autocast(self):
        return self.accelerator.autocast()

    def _process_mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return value
        return self.accelerator.reduce(value.reshape(1), reduction="mean").reshape(())


def _find_unused_parameters(accelerator) -> None:
    """Let DDP find the parameters a step leaves without gradient.

    MCRT keeps the reference's architecture, parameters that no forward pass uses
    included (the last ALIGNN layers' edge BatchNorm, the symmetry-element embedding,
    the image embeddings of a network without images): without this DDP stops at the
    first step."""
    from accelerate.utils import DistributedDataParallelKwargs

    handler = getattr(accelerator, "ddp_handler", None)
    if handler is None:
        accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
    elif not handler.find_unused_parameters:
        handler.find_unused_parameters = True


def net_class_and_device(est, plain: type, accelerated: type) -> tuple[type, dict]:
    """The skorch net class and its device/accelerator keyword arguments for ``est``.

    Under an accelerator the network stays wrapped until :func:`fit_net` unwraps it
    (after the callbacks' end of training: early stopping restores its best weights into
    the wrapped module, whose parameter names it stored)."""
    if getattr(est, "accelerator", None) is None:
        return plain, {"device": device_of(est)}
    return accelerated, {"accelerator": est.accelerator, "device": None,
                         "unwrap_after_train": False}


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


def check_records(X, name: str, allow_empty: bool = False) -> Sequence[MCRTInput]:
    """X as a sequence of records, with a clear error when it is something else (or,
    unless ``allow_empty``, when it is empty).

    A :class:`~mcrt_sklearn.store.RecordStore` (or a :class:`RecordView` of one) is
    returned as it is, checked on its first record, so that training and prediction read
    its records from disk batch by batch; anything else becomes a list."""
    if isinstance(X, MCRTInput):
        X = [X]
    if getattr(X, "_lazy_records", False):
        if len(X) == 0 and not allow_empty:
            raise ValueError(f"{name} got no records")
        if len(X) and not isinstance(X[0], MCRTInput):
            raise TypeError(f"{name} expects MCRTInput records, got {type(X[0]).__name__}")
        return X
    X = list(X)
    if not X and not allow_empty:
        raise ValueError(f"{name} got no records")
    bad = [type(x).__name__ for x in X if not isinstance(x, MCRTInput)]
    if bad:
        raise TypeError(
            f"{name} expects MCRTInput records (from MCRTFeaturizer), got {bad[0]}; "
            "put MCRTFeaturizer() before it in a Pipeline"
        )
    return X


def checkpoint_source(spec, path) -> dict[str, Any]:
    """Provenance of a starting checkpoint: what was asked for (a path, a published
    model's name or a URL), the file it resolved to, and that file's sha256 (the one
    recorded at its download for a fetched model)."""
    from pathlib import Path

    from mcrt_sklearn.model.checkpoint import file_sha256

    path = Path(path)
    side = path.with_name(path.name + ".sha256")
    digest = side.read_text().split()[0] if side.is_file() else file_sha256(path)
    return {"checkpoint": str(spec), "file": path.name, "sha256": digest}


def data_summary(X: Sequence[MCRTInput]) -> dict[str, Any]:
    """What an estimator was trained on, for the provenance of a saved model: the number
    of structures, a sha256 of their ids in order, the first ids and the elements."""
    import hashlib

    from mcrt_sklearn.domain import fitted_elements

    ids = [str(i) for i in X.ids] if hasattr(X, "ids") else [str(r.structure_id) for r in X]
    return {"n_structures": len(ids),
            "structure_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "first_ids": ids[:5], "elements": list(fitted_elements(X))}


def build_network(est, tasks: Sequence[str], n_classes: int = 0) -> MCRT:
    """The network of an estimator: from ``est.checkpoint`` (a path, a published model's
    name or an http(s) URL, resolved here, at fit time) or from its architecture params.
    Sets ``est.started_from_`` (the checkpoint's provenance, or None)."""
    head_init = getattr(est, "head_init", "reference")
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
    if est.checkpoint is not None:
        from mcrt_sklearn.pretrained import resolve_checkpoint

        path = resolve_checkpoint(est.checkpoint)
        network = load_checkpoint(path, trusted=est.trusted)
        fresh = [t for t in tasks if t not in network.config.tasks]
        network.set_tasks(tuple(tasks), n_classes=n_classes or None)
        est.started_from_ = checkpoint_source(est.checkpoint, path)
    else:
        est.started_from_ = None
        config = MCRTConfig(
            **{p: getattr(est, p) for p in ARCH_PARAMS},
            tasks=tuple(tasks),
            n_classes=n_classes,
        )
        network = MCRT(config)
        fresh = list(tasks)
    if head_init == "fan_in":
        for task in fresh:
            init_head_fan_in(getattr(network, f"{task}_head", None))
    return network


def recipe_of(est, n_train: int) -> dict:
    """The :class:`~mcrt_sklearn.training.TrainingRecipe` fields of ``est`` for ``n_train``
    training records (``total_steps`` = epochs × optimizer steps per epoch)."""
    check_accumulation(est)
    d = {p: getattr(est, p) for p in RECIPE_PARAMS}
    d["total_steps"] = est.max_epochs * optimizer_steps_per_epoch(n_train, est.batch_size)
    d["accumulate"] = rank_batching(est)[1]  # the loss divisor of one process
    TrainingRecipe(**d)  # validate now, with the estimator's names in the message
    return d


def make_callbacks(est, has_valid: bool, monitor: str = "valid_loss") -> list:
    """Best-epoch selection on the validation split (+ progress bar, user callbacks).

    With a validation split and ``est.early_stopping``, the epoch with the lowest
    ``monitor`` is restored at the end of training; ``est.patience`` (if not None) also
    stops training after that many epochs without improvement.
    """
    callbacks = []
    if has_valid and monitor != "valid_loss":
        callbacks.append((monitor, PassthroughScoring(name=monitor, lower_is_better=True,
                                                      on_train=False)))
    if has_valid and est.early_stopping:
        patience = est.max_epochs + 1 if est.patience is None else est.patience
        callbacks.append(("early_stopping", EarlyStopping(monitor=monitor, patience=patience,
                                                          threshold=0.0, load_best=True)))
    if est.verbose and is_main_process(est):
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(est.callbacks or [])
    if getattr(est, "resume_from", None) is not None:
        from mcrt_sklearn.training.state import TrainingState

        callbacks.append(("training_state",
                          TrainingState(est.resume_from, getattr(est, "accelerator", None),
                                        every_steps=getattr(est, "resume_every", None))))
    return callbacks


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
