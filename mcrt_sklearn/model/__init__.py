"""The MCRT network in pure PyTorch (no DGL, no sklearn): encoder, heads, rollout,
checkpoint loading."""

from mcrt_sklearn.model.alignn import ALIGNN, GatedGCNLayer, RBFExpansion
from mcrt_sklearn.model.checkpoint import load_checkpoint, save_checkpoint
from mcrt_sklearn.model.mcrt import KNOWN_TASKS, MCRT, MCRTConfig
from mcrt_sklearn.model.rollout import attention_rollout, cls_rollout

__all__ = [
    "MCRT",
    "MCRTConfig",
    "KNOWN_TASKS",
    "ALIGNN",
    "GatedGCNLayer",
    "RBFExpansion",
    "load_checkpoint",
    "save_checkpoint",
    "attention_rollout",
    "cls_rollout",
]
