"""Step a network through a given sequence of micro-batches with the training recipe,
logging what the reference's training trace logs (to check the recipe against it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mcrt_sklearn.collate import collate
from mcrt_sklearn.training.losses import regression_loss
from mcrt_sklearn.training.optim import TrainingRecipe
from mcrt_sklearn.training.step import OptimizerStep

__all__ = ["replay_reference"]


def replay_reference(model, records: Sequence, targets, micro_batches: Sequence[Sequence[Sequence[int]]],
                     *, lr: float, total_steps: int, weight_decay: float = 1e-2,
                     warmup: float = 0.05, accumulate: int, clip: float | None = 1.0,
                     target_mean: float, target_std: float, pad_to: int | None = None) -> dict:
    """Fine-tune ``model`` in place for ``len(micro_batches)`` optimizer steps.

    Uses the reference recipe (:class:`~mcrt_sklearn.training.TrainingRecipe` defaults:
    its parameter groups, AdamW (0.9, 0.98) / 1e-8, warm-up then linear decay to 0 over
    ``total_steps``) and the same :class:`~mcrt_sklearn.training.OptimizerStep` that
    ``MCRTRegressor.fit`` uses, with the regression loss (MSE of standardised targets).

    Parameters
    ----------
    model : MCRT
        A network with a ``regression`` head (e.g. from ``load_checkpoint``), in the mode
        it should train in (``model.train()``; set dropout to 0 for a deterministic run).
    records : sequence of MCRTInput
        The crystals, with images attached when the model uses them.
    targets : array-like (n,)
        Target of each record, in its own units.
    micro_batches : sequence of sequences of sequences of int
        One entry per optimizer step: the micro-batches (indices into ``records``) whose
        gradients it accumulates, in order.
    lr, total_steps, weight_decay, warmup
        Schedule: ``total_steps`` is ``T`` (it may exceed the steps replayed).
    accumulate : int
        Loss divisor of each micro-batch.
    clip : float or None
        Global gradient-norm clipping.
    target_mean, target_std : float
        Standardisation of the targets.
    pad_to : int, optional
        Atom padding of the collated batches (None: batch maximum).

    Returns
    -------
    dict
        ``losses`` (per step, the unscaled MSE of each micro-batch), ``grad_norms``
        (global, before clipping), ``lrs`` (per step, each group's lr before the step)
        and ``param_groups`` (``names`` and ``weight_decay`` of each group).
    """
    if "regression" not in model.config.tasks:
        raise ValueError("replay_reference needs a model with a 'regression' head")
    records = list(records)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if len(y) != len(records):
        raise ValueError(f"got {len(records)} records and {len(y)} targets")
    y_std = torch.as_tensor((y - target_mean) / target_std, dtype=torch.float32)
    recipe = TrainingRecipe(lr=lr, weight_decay=weight_decay, warmup=warmup,
                            total_steps=total_steps, accumulate=accumulate,
                            gradient_clip=clip)
    optimizer, scheduler, groups = recipe.build(model)
    step = OptimizerStep(optimizer, scheduler, recipe.accumulate, recipe.gradient_clip)
    require_images = bool(model.config.use_images)

    def loss_fn(batch, target):
        pred = model(batch)["regression"]
        return regression_loss(pred, target), pred

    out = {"losses": [], "grad_norms": [], "lrs": [], "param_groups": groups}
    for parts in micro_batches:
        pairs = [(collate([records[i] for i in idx], pad_to=pad_to,
                          require_images=require_images), y_std[list(idx)])
                 for idx in parts]
        log = step(pairs, loss_fn)
        out["losses"].append(log.losses)
        out["grad_norms"].append(log.grad_norm)
        out["lrs"].append(log.lrs)
    return out
