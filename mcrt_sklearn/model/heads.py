"""Output heads of MCRT (pre-training and downstream) and their losses.

Names follow the reference (``map_head.fc``, ``apc_head.mlp.0``, ``cdp_head.bn`` ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Pooler",
    "MAPHead",
    "APCHead",
    "PairMLPHead",
    "CDPHead",
    "SEPHead",
    "LinearHead",
    "RegressionHead",
    "ClassificationHead",
    "DEFAULT_SEP_WEIGHTS",
    "weighted_bce_with_logits",
    "gather_atom_pairs",
    "HEAD_INITS",
    "init_head_fan_in",
]

#: Reference SEP class weights, 1 / ln(1.1 + frequency) of the 7 symmetry elements
#: over the pre-training corpus.
DEFAULT_SEP_WEIGHTS = (
    9.58304127,
    3.39176836,
    8.91170359,
    5.50722613,
    1.93331989,
    9.76274322,
    1.97087159,
)


class Pooler(nn.Module):
    """[CLS] embedding: ``tanh(dense(token 0))``."""

    def __init__(self, hidden_size: int, index: int = 0):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.index = index

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, self.index]))


class LinearHead(nn.Module):
    """A single ``fc`` Linear layer."""

    def __init__(self, hid_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(hid_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MAPHead(LinearHead):
    """Masked atom prediction: Linear(H → 118) on atom tokens (class = Z - 1)."""

    def __init__(self, hid_dim: int, num_atom_types: int = 118):
        super().__init__(hid_dim, num_atom_types)


class SEPHead(LinearHead):
    """Symmetry-element prediction: Linear(H → 7) on [CLS], multi-label."""

    def __init__(self, hid_dim: int, num_symmetry_elements: int = 7):
        super().__init__(hid_dim, num_symmetry_elements)


class RegressionHead(LinearHead):
    """Linear(H → 1) on [CLS]."""

    def __init__(self, hid_dim: int):
        super().__init__(hid_dim, 1)


class ClassificationHead(LinearHead):
    """Linear(H → 1) for two classes (logit of class 1), else Linear(H → n_classes)."""

    def __init__(self, hid_dim: int, n_classes: int):
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.binary = n_classes == 2
        super().__init__(hid_dim, 1 if self.binary else n_classes)


class CDPHead(nn.Module):
    """Crystal density prediction: BatchNorm (skipped for a batch of one) + Linear(H → 1)."""

    def __init__(self, hid_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(hid_dim)
        self.fc = nn.Linear(hid_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(0) > 1:
            x = self.bn(x)
        return self.fc(x)


def gather_atom_pairs(atom_feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Features of atom tuples: (B, N, H) and (B, m, k) indices → (B, m, k*H).

    Entries of ``pairs`` equal to -1 (no pair) give zero features.
    """
    B, m, k = pairs.shape
    H = atom_feats.shape[-1]
    valid = (pairs >= 0).all(dim=-1)
    idx = pairs.clamp_min(0).to(atom_feats.device)
    parts = [atom_feats.gather(1, idx[:, :, j, None].expand(B, m, H)) for j in range(k)]
    out = torch.cat(parts, dim=-1)
    return out * valid.unsqueeze(-1).to(out.dtype)


class PairMLPHead(nn.Module):
    """Symmetrised MLP on a tuple of atom features: mean of f(a..z) and f(z..a)."""

    def __init__(self, hid_dim: int, arity: int = 2):
        super().__init__()
        self.arity = int(arity)
        self.mlp = nn.Sequential(
            nn.Linear(arity * hid_dim, hid_dim), nn.ReLU(), nn.Linear(hid_dim, 1)
        )

    def forward(self, atom_feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits (B, m) for the tuples ``pairs`` (B, m, arity); -1 marks no tuple."""
        x = gather_atom_pairs(atom_feats, pairs)
        H = atom_feats.shape[-1]
        chunks = x.split(H, dim=-1)
        x_rev = torch.cat(chunks[::-1], dim=-1)
        return ((self.mlp(x) + self.mlp(x_rev)) / 2).squeeze(-1)


class APCHead(PairMLPHead):
    """Atom-pair classification (same molecule or not): MLP on concat(a,b) and concat(b,a)."""

    def __init__(self, hid_dim: int):
        super().__init__(hid_dim, arity=2)


def weighted_bce_with_logits(logits: torch.Tensor, target: torch.Tensor, weights) -> torch.Tensor:
    """The reference SEP loss: mean of ``-w (t log σ + (1-t) log(1-σ))`` (stable form)."""
    w = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
    loss = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")
    return (w * loss).mean()


#: ``head_init`` values: the reference's N(0, 0.02) for a new task head, or N(0, 1/H).
HEAD_INITS = ("reference", "fan_in")


def init_head_fan_in(head) -> None:
    """Re-draw the weights of a new linear task head from N(0, 1/H) (H its input width),
    biases 0.

    The prediction is ``b + w · tanh(dense([CLS]))`` (standardised targets), so it lies
    within ``b ± Σ|w_i|``: about 0.016 H at the reference's N(0, 0.02), one target standard
    deviation for H = 64, which the head has to outgrow before a small network can reach
    the extremes of the targets. N(0, 1/H) keeps the initial output's spread at or below
    one standard deviation (the pooler's outputs lie in [-1, 1]) with a reach of about
    0.8 √H standard deviations."""
    fc = getattr(head, "fc", None)
    if not isinstance(fc, nn.Linear):
        return
    with torch.no_grad():
        fc.weight.normal_(0.0, fc.in_features ** -0.5)
        if fc.bias is not None:
            fc.bias.zero_()
