"""ALIGNN atom encoder, reference flavour, in pure PyTorch (no DGL).

Graphs arrive as flat index tensors (see :func:`mcrt_sklearn.collate.collate`): the
crystal graph as ``edge_index`` (2, E) of (source, destination) atom indices, the line
graph as ``line_graph_index`` (2, T) of (e1, e2) edge indices where edge ``e1`` ends
where edge ``e2`` starts. Message passing sums over the edges ARRIVING at a node
(messages from the edge's source), with ``index_add``.

Module and parameter names follow the reference implementation so that its
state_dict keys (``GNN_embeddings.conv_layers.0.node_update.A.weight`` ...) load as
they are.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RBFExpansion", "GatedGCNLayer", "ALIGNNLayer", "ALIGNN"]


class RBFExpansion(nn.Module):
    """Gaussian radial-basis expansion on ``bins`` evenly spaced centres.

    ``exp(-gamma * (x - c)**2)`` with ``gamma = 1 / spacing`` (not 1/spacing**2:
    this is what the reference does and what its weights expect).
    """

    def __init__(self, vmin: float = 0.0, vmax: float = 8.0, bins: int = 40):
        super().__init__()
        self.vmin = float(vmin)
        self.vmax = float(vmax)
        self.bins = int(bins)
        centers = torch.linspace(self.vmin, self.vmax, self.bins, device="cpu")
        # Spacing measured on the float32 centres, as the reference does.
        spacing = np.diff(centers.numpy()).mean() if self.bins > 1 else 1.0
        self.register_buffer("centers", centers.to(torch.empty(0).device))
        self.gamma = float(np.float32(1.0) / np.float32(spacing))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (x.unsqueeze(-1) - self.centers) ** 2)


class GatedGCNLayer(nn.Module):
    """Residual gated graph convolution (edge-gated), reference flavour.

    ``e' = D h_src + E h_dst + C e``; ``sigma = sigmoid(e')``;
    ``h' = A h + sum_in(sigma * B h_src) / (sum_in(sigma) + 1e-6)``; then batch norm
    (optional), SiLU, residual (optional) and dropout on both ``h'`` and ``e'``.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        batch_norm: bool = True,
        residual: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.batch_norm = bool(batch_norm)
        self.residual = bool(residual) and input_dim == output_dim
        self.dropout = float(dropout)
        self.A = nn.Linear(input_dim, output_dim)
        self.B = nn.Linear(input_dim, output_dim)
        self.C = nn.Linear(input_dim, output_dim)
        self.D = nn.Linear(input_dim, output_dim)
        self.E = nn.Linear(input_dim, output_dim)
        # Always created (the reference state_dict has them even without batch norm).
        self.bn_node_h = nn.BatchNorm1d(output_dim)
        self.bn_node_e = nn.BatchNorm1d(output_dim)

    def forward(
        self, edge_index: torch.Tensor, h: torch.Tensor, e: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = edge_index[0], edge_index[1]
        if not torch.is_grad_enabled() and not self.training:
            return self._forward_inference(src, dst, h, e)
        h_in, e_in = h, e
        Ah = self.A(h)
        Bh = self.B(h)
        Dh = self.D(h)
        Eh = self.E(h)
        e_new = Dh.index_select(0, src) + Eh.index_select(0, dst) + self.C(e)
        sigma = torch.sigmoid(e_new)
        msg = Bh.index_select(0, src) * sigma
        num = msg.new_zeros(Ah.shape).index_add(0, dst, msg)
        den = sigma.new_zeros(Ah.shape).index_add(0, dst, sigma)
        h_new = Ah + num / (den + 1e-6)
        if self.batch_norm:
            h_new = self.bn_node_h(h_new)
            e_new = self.bn_node_e(e_new)
        h_new = F.silu(h_new)
        e_new = F.silu(e_new)
        if self.residual:
            h_new = h_in + h_new
            e_new = e_in + e_new
        if self.dropout > 0:
            h_new = F.dropout(h_new, self.dropout, training=self.training)
            e_new = F.dropout(e_new, self.dropout, training=self.training)
        return h_new, e_new

    def _forward_inference(self, src, dst, h, e):
        """Same maths, in place where possible: fewer (E, H) temporaries (eval, no grad)."""
        e_new = self.C(e)
        e_new += self.D(h).index_select(0, src)
        e_new += self.E(h).index_select(0, dst)
        sigma = torch.sigmoid(e_new)
        msg = self.B(h).index_select(0, src)
        msg *= sigma
        h_new = self.A(h)
        num = msg.new_zeros(h_new.shape).index_add_(0, dst, msg)
        del msg
        den = sigma.new_zeros(h_new.shape).index_add_(0, dst, sigma)
        del sigma
        h_new += num.div_(den.add_(1e-6))
        if self.batch_norm:
            h_new = self.bn_node_h(h_new)
            e_new = self.bn_node_e(e_new)
        h_new = F.silu(h_new, inplace=True)
        e_new = F.silu(e_new, inplace=True)
        if self.residual:
            h_new += h
            e_new += e
        return h_new, e_new


class ALIGNNLayer(nn.Module):
    """One ALIGNN layer: gated GCN on the graph, then on the line graph.

    The bond features produced by the graph update are the node features of the
    line-graph update.
    """

    def __init__(
        self, input_dim: int, output_dim: int, batch_norm=True, residual=False, dropout=0.0
    ):
        super().__init__()
        self.node_update = GatedGCNLayer(input_dim, output_dim, batch_norm, residual, dropout)
        self.edge_update = GatedGCNLayer(output_dim, input_dim, batch_norm, residual, dropout)

    def forward(self, edge_index, line_graph_index, h, e, a):
        h, m = self.node_update(edge_index, h, e)
        e, a = self.edge_update(line_graph_index, m, a)
        return h, e, a


class ALIGNN(nn.Module):
    """ALIGNN atom encoder without pooling: per-atom features of size ``out_dim``.

    Parameters
    ----------
    num_conv : int
        Number of ALIGNN layers; the same number of gated GCN layers follows.
    hidden_dim : int
        Width of atom, bond and angle features.
    rbf_distance_dim, rbf_triplet_dim : int
        Number of RBF centres for bond lengths (0–8 Å) and bond-angle cosines (-1–1).
    out_dim : int
        Output width (the transformer's hidden size), via the final ``fc``.
    """

    def __init__(
        self,
        num_conv: int = 4,
        hidden_dim: int = 256,
        rbf_distance_dim: int = 40,
        rbf_triplet_dim: int = 40,
        batch_norm: bool = True,
        dropout: float = 0.0,
        residual: bool = False,
        out_dim: int = 768,
        num_species: int = 103,
    ):
        super().__init__()
        self.node_embedding = nn.Embedding(num_species, hidden_dim)
        self.edge_embedding = nn.Linear(rbf_distance_dim, hidden_dim)
        self.angle_embedding = nn.Linear(rbf_triplet_dim, hidden_dim)
        self.rbf_expansion_distance = RBFExpansion(0.0, 8.0, rbf_distance_dim)
        self.rbf_expansion_triplet = RBFExpansion(-1.0, 1.0, rbf_triplet_dim)
        self.conv_layers = nn.ModuleList(
            [
                ALIGNNLayer(hidden_dim, hidden_dim, batch_norm, residual, dropout)
                for _ in range(num_conv)
            ]
        )
        self.gated_gcn_layers = nn.ModuleList(
            [
                GatedGCNLayer(hidden_dim, hidden_dim, batch_norm, residual, dropout)
                for _ in range(num_conv)
            ]
        )
        self.fc = nn.Linear(hidden_dim, out_dim)

    def forward(
        self,
        atomic_numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_distances: torch.Tensor,
        line_graph_index: torch.Tensor,
        line_graph_cosines: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom features, shape (total atoms, out_dim)."""
        h = self.node_embedding(atomic_numbers)
        e = self.edge_embedding(self.rbf_expansion_distance(edge_distances))
        a = self.angle_embedding(self.rbf_expansion_triplet(line_graph_cosines))
        for layer in self.conv_layers:
            h, e, a = layer(edge_index, line_graph_index, h, e, a)
        for layer in self.gated_gcn_layers:
            h, _ = layer(edge_index, h, e)
        return self.fc(h)
