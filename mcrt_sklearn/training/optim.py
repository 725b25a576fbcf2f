"""Optimiser parameter groups, AdamW and the learning-rate schedule of the MCRT recipe.

The reference recipe (``fmggggg/MCRT``, see ``docs/differences.md``):

- four parameter groups, chosen by *substrings* of the parameter names: no weight decay
  on biases and on the transformer's LayerNorms (names containing one of
  :data:`NO_DECAY_FRAGMENTS`), and the task heads (:data:`HEAD_FRAGMENTS`) at
  ``lr * lr_mult``;
- AdamW with betas (0.9, 0.98) and eps 1e-8;
- a warm-up over ``int(warmup * T)`` optimizer steps (lr 0 on the first one), then a
  polynomial decay (power 1: linear) to ``end_lr`` at step ``T``, stepped once per
  optimizer step (after gradient accumulation).

Torch only; no sklearn, no skorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = [
    "NO_DECAY_FRAGMENTS",
    "HEAD_FRAGMENTS",
    "PARAM_GROUP_RULES",
    "SCHEDULES",
    "TrainingRecipe",
    "WarmupPolynomialDecay",
    "named_param_groups",
    "optimizer_steps_per_epoch",
]

#: A parameter whose name contains one of these is not weight-decayed (reference rule:
#: every bias, and the LayerNorms named ``norm``/``norm1``/``norm2``/``LayerNorm``;
#: the ALIGNN BatchNorm weights *are* decayed).
NO_DECAY_FRAGMENTS = ("bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias",
                      "norm.weight", "norm1.bias", "norm1.weight", "norm2.bias",
                      "norm2.weight")
#: Parameters whose name contains one of these train at ``lr * lr_mult``.
HEAD_FRAGMENTS = ("regression_head", "classification_head")
#: ``"reference"``: the four groups above; ``"decay_all"``: one group, every parameter
#: decayed (this package's behaviour before the reference recipe).
PARAM_GROUP_RULES = ("reference", "decay_all")
#: ``"reference"``: :class:`WarmupPolynomialDecay`; ``"legacy"``: the earlier
#: ``mcrt_sklearn.schedules.WarmupLinearDecay`` (rounded warm-up, lr/w on step 0).
SCHEDULES = ("reference", "legacy")


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def named_param_groups(module: nn.Module, weight_decay: float, lr: float,
                       lr_mult: float = 1.0, rule: str = "reference",
                       prefix: str = "") -> list[dict]:
    """Split ``module``'s trainable parameters into optimiser groups.

    Parameters
    ----------
    module : nn.Module
        The network (or a wrapper of it: the rules match substrings, so a prefix such as
        ``network.`` does not change the groups).
    weight_decay, lr : float
        Decay of the decayed groups and the base learning rate.
    lr_mult : float
        Learning-rate factor of the head groups.
    rule : {"reference", "decay_all"}
        See :data:`PARAM_GROUP_RULES`.
    prefix : str
        Removed from the front of the names recorded in ``"names"``.

    Returns
    -------
    list of dict
        Non-empty groups in the reference order (decayed body, undecayed body, decayed
        heads, undecayed heads), each with ``params``, ``names``, ``weight_decay``, ``lr``.
    """
    if rule not in PARAM_GROUP_RULES:
        raise ValueError(f"param_groups must be one of {PARAM_GROUP_RULES}, got {rule!r}")
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if rule == "decay_all":
        return [{"params": [p for _, p in named], "names": [_strip(n, prefix) for n, _ in named],
                 "weight_decay": float(weight_decay), "lr": float(lr)}]
    slots: list[list] = [[], [], [], []]
    for name, p in named:
        no_decay = any(f in name for f in NO_DECAY_FRAGMENTS)
        head = any(f in name for f in HEAD_FRAGMENTS)
        slots[2 * head + no_decay].append((name, p))
    groups = []
    for i, members in enumerate(slots):
        if not members:
            continue
        groups.append({
            "params": [p for _, p in members],
            "names": [_strip(n, prefix) for n, _ in members],
            "weight_decay": 0.0 if i % 2 else float(weight_decay),
            "lr": float(lr) * (lr_mult if i >= 2 else 1.0),
        })
    return groups


class WarmupPolynomialDecay:
    """LambdaLR factor of the reference schedule (picklable).

    ``step / W`` for ``step < W`` (so 0 on the first step), then
    ``(1 - end) * (1 - (step - W) / (T - W)) ** power + end`` up to ``T`` and ``end``
    after it, where ``W = int(warmup * T)`` and ``end = end_lr / lr``.

    Parameters
    ----------
    total_steps : int
        ``T``: optimizer steps of the whole run (after accumulation).
    warmup : float or int
        Fraction of ``T`` (float) or a number of steps (int).
    power : float
        Decay exponent (1: linear).
    end_factor : float
        ``end_lr / lr``.
    """

    def __init__(self, total_steps: int, warmup: float | int = 0.05, power: float = 1.0,
                 end_factor: float = 0.0):
        self.total_steps = max(int(total_steps), 1)
        if isinstance(warmup, float):
            self.warmup_steps = int(self.total_steps * warmup)
        else:
            self.warmup_steps = int(warmup)
        self.power = float(power)
        self.end_factor = float(end_factor)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        if step > self.total_steps:
            return self.end_factor
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        remaining = 1.0 - (step - self.warmup_steps) / decay_steps
        return (1.0 - self.end_factor) * remaining ** self.power + self.end_factor


def optimizer_steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps of one epoch: one per ``batch_size`` crystals (the last one partial).

    With accumulation, ``batch_size`` is the number of crystals per optimizer step
    (``accumulate`` micro-batches of ``batch_size // accumulate``), so this equals the
    reference's ``ceil(micro-batches / accumulate)``.
    """
    return max(1, math.ceil(int(n_train) / int(batch_size)))


@dataclass
class TrainingRecipe:
    """Every choice of the optimisation (one place, shared by fit and the replay).

    Parameters
    ----------
    lr, weight_decay : float
        Base learning rate and the decayed groups' weight decay.
    betas : tuple of float
        AdamW betas (reference: (0.9, 0.98); torch's default: (0.9, 0.999)).
    eps : float
        AdamW eps.
    param_groups : {"reference", "decay_all"}
        See :func:`named_param_groups`.
    lr_mult : float
        Learning-rate factor of the task heads.
    schedule : {"reference", "legacy"}
        See :data:`SCHEDULES`.
    warmup : float
        Warm-up fraction of the optimizer steps.
    end_lr : float
        Learning rate at the last step (reference schedule).
    decay_power : float
        Exponent of the polynomial decay (reference schedule).
    total_steps : int
        Optimizer steps of the whole run (``T``, after accumulation).
    accumulate : int
        Micro-batches per optimizer step; each micro-batch's loss is divided by it.
    gradient_clip : float or None
        Clip the global gradient norm (2-norm over all parameters) to this; None: no
        clipping (the norm is still measured).
    """

    lr: float = 1e-4
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    param_groups: str = "reference"
    lr_mult: float = 1.0
    schedule: str = "reference"
    warmup: float = 0.05
    end_lr: float = 0.0
    decay_power: float = 1.0
    total_steps: int = 1
    accumulate: int = 1
    gradient_clip: float | None = 1.0

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.param_groups not in PARAM_GROUP_RULES:
            raise ValueError(f"param_groups must be one of {PARAM_GROUP_RULES}, "
                             f"got {self.param_groups!r}")
        if int(self.accumulate) < 1:
            raise ValueError(f"accumulate must be >= 1, got {self.accumulate}")
        if self.gradient_clip is not None and not self.gradient_clip > 0:
            raise ValueError(f"gradient_clip must be positive or None, got {self.gradient_clip}")
        if not self.lr >= 0:
            raise ValueError(f"lr must be >= 0, got {self.lr}")

    def to_dict(self) -> dict:
        """Plain values, for logs and fold files."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    def lr_lambda(self):
        """The LambdaLR factor of this recipe's schedule."""
        if self.schedule == "legacy":
            from mcrt_sklearn.schedules import WarmupLinearDecay

            return WarmupLinearDecay(self.total_steps, self.warmup)
        end_factor = self.end_lr / self.lr if self.lr > 0 else 0.0
        return WarmupPolynomialDecay(self.total_steps, float(self.warmup), self.decay_power,
                                     end_factor)

    def build(self, module: nn.Module, prefix: str = ""
              ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list[dict]]:
        """AdamW over ``module``'s parameter groups and its LambdaLR schedule.

        Returns
        -------
        optimizer, scheduler, groups
            ``groups`` lists each group's parameter ``names`` and ``weight_decay``.
        """
        groups = named_param_groups(module, self.weight_decay, self.lr, self.lr_mult,
                                    self.param_groups, prefix)
        described = [{"names": g.pop("names"), "weight_decay": g["weight_decay"]}
                     for g in groups]
        optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda())
        return optimizer, scheduler, described


def parameters_of(optimizer: torch.optim.Optimizer) -> Iterable[torch.Tensor]:
    """Every parameter the optimizer updates (what gradient clipping looks at)."""
    for group in optimizer.param_groups:
        yield from group["params"]
