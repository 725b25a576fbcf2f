"""How MCRT is trained: the reference recipe's optimiser, schedule, accumulation and
clipping in one step implementation, and a replay of the reference's training trace.

Torch only: the skorch nets of :mod:`mcrt_sklearn.estimators` call into it.
"""

from mcrt_sklearn.training.losses import RegressionLoss, regression_loss
from mcrt_sklearn.training.optim import (
    HEAD_FRAGMENTS,
    NO_DECAY_FRAGMENTS,
    TrainingRecipe,
    WarmupPolynomialDecay,
    named_param_groups,
    optimizer_steps_per_epoch,
)
from mcrt_sklearn.training.replay import replay_reference
from mcrt_sklearn.training.step import OptimizerStep, StepLog
from mcrt_sklearn.versions import version

#: Version of the training recipe, ``versions.VERSIONS["training-recipe"]`` (fold and
#: cache keys of trained models include it): 1 = torch-default AdamW over one group, no
#: clipping, one batch per step, rounded warm-up, last epoch, recomputed BatchNorm
#: statistics; 2 = the reference recipe.
RECIPE_VERSION = version("training-recipe")

__all__ = [
    "RECIPE_VERSION",
    "TrainingRecipe",
    "WarmupPolynomialDecay",
    "named_param_groups",
    "optimizer_steps_per_epoch",
    "NO_DECAY_FRAGMENTS",
    "HEAD_FRAGMENTS",
    "OptimizerStep",
    "StepLog",
    "regression_loss",
    "RegressionLoss",
    "replay_reference",
]
