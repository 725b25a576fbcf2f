"""One optimizer step with gradient accumulation and clipping: the only training step.

``MCRTRegressor``, ``MCRTClassifier`` and ``MCRTPretrainer`` (through their skorch nets)
and :func:`mcrt_sklearn.training.replay_reference` all call :meth:`OptimizerStep.__call__`.
Torch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from mcrt_sklearn.training.optim import parameters_of

__all__ = ["OptimizerStep", "StepLog"]

#: ``loss_fn(x, y) -> (loss, y_pred)`` of one micro-batch.
LossFn = Callable[[Any, Any], tuple[torch.Tensor, Any]]


@dataclass
class StepLog:
    """What one optimizer step did.

    Attributes
    ----------
    losses : list of float
        The unscaled loss of each micro-batch.
    sizes : list of int
        Items (crystals) in each micro-batch.
    grad_norm : float
        Global 2-norm of the accumulated gradient, before clipping.
    lrs : list of float
        Each parameter group's learning rate used by this step.
    predictions : list
        Each micro-batch's ``y_pred`` (detached).
    """

    losses: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    grad_norm: float = float("nan")
    lrs: list[float] = field(default_factory=list)
    predictions: list = field(default_factory=list)

    @property
    def mean_loss(self) -> float:
        """Mean loss over the step's items (micro-batch losses weighted by their sizes)."""
        total = sum(self.sizes)
        if not total:
            return float("nan")
        return sum(loss * n for loss, n in zip(self.losses, self.sizes)) / total


def _size(x) -> int:
    try:
        return len(x)
    except TypeError:
        return 1


def _detach(y):
    if isinstance(y, torch.Tensor):
        return y.detach()
    if isinstance(y, dict):
        return {k: _detach(v) for k, v in y.items()}
    return y


class OptimizerStep:
    """Accumulate the gradients of micro-batches, clip, step the optimizer and schedule.

    For each micro-batch: ``loss / accumulate`` is back-propagated (so a step of fewer
    micro-batches, the last one of an epoch, is scaled as Lightning's
    ``accumulate_grad_batches`` scales it); then the global gradient norm is measured and
    clipped to ``gradient_clip``, ``optimizer.step()``, ``scheduler.step()`` and
    ``zero_grad()``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler, optional
        Stepped once per optimizer step.
    accumulate : int
        Micro-batches per optimizer step (the loss divisor).
    gradient_clip : float or None
        Global-norm clipping threshold; None measures the norm without clipping.
    backward : callable, optional
        ``backward(loss)``; default ``loss.backward()`` (``accelerate`` passes its own).
    clip_grad_norm : callable, optional
        ``clip_grad_norm(parameters, max_norm) -> norm``; default
        ``torch.nn.utils.clip_grad_norm_``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler=None, accumulate: int = 1,
                 gradient_clip: float | None = 1.0,
                 backward: Callable[[torch.Tensor], None] | None = None,
                 clip_grad_norm: Callable | None = None):
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.accumulate = int(accumulate)
        self.gradient_clip = gradient_clip
        self.backward = backward or (lambda loss: loss.backward())
        self.clip_grad_norm = clip_grad_norm or torch.nn.utils.clip_grad_norm_

    def __call__(self, micro_batches: Iterable[tuple[Any, Any]], loss_fn: LossFn,
                 on_grad_computed: Callable[[], None] | None = None) -> StepLog:
        """Run one optimizer step over ``micro_batches`` (pairs ``(x, y)``)."""
        log = StepLog(lrs=[float(g["lr"]) for g in self.optimizer.param_groups])
        self.optimizer.zero_grad()
        for x, y in micro_batches:
            loss, y_pred = loss_fn(x, y)
            self.backward(loss / self.accumulate)
            log.losses.append(float(loss.detach()))
            log.sizes.append(_size(y))
            log.predictions.append(_detach(y_pred))
        if not log.losses:
            raise ValueError("an optimizer step needs at least one micro-batch")
        if on_grad_computed is not None:
            on_grad_computed()
        max_norm = math.inf if self.gradient_clip is None else float(self.gradient_clip)
        norm = self.clip_grad_norm(list(parameters_of(self.optimizer)), max_norm)
        log.grad_norm = float(norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad()
        return log
