"""Crystal Twins baseline: a CGCNN encoder pre-trained with Barlow Twins, then fine-tuned.

Magar, Wang & Barati Farimani, npj Comput. Mater. 8, 231 (2022). The encoder is
CGCNN with 3 convolutions (64 atom features, 128 after pooling); pre-training feeds
two augmented views of each crystal (random atom masking, edge masking, small
coordinate perturbations) through encoder + projector ``fc_head`` (128 → 128 → 256)
and minimises the Barlow Twins loss

    L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²,

C the cross-correlation matrix of the batch-standardised projections of the two
views, λ = 0.0051.

``CrystalTwinsRegressor(pretrained="published")`` (the default) starts from the
published encoder ``../shared/data/crystal_twins/cgcnn_barlow_twins.pth`` — what
the MCRT paper compared against; ``pretrain(structures)`` trains your own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mcrt_sklearn.baselines._skorch import GraphDataset, seed_everything
from mcrt_sklearn.baselines.cgcnn import (
    CGCNNEncoder,
    CGCNNNet,
    CGCNNRegressor,
    collate_cgcnn,
    default_shared_data,
    load_atom_init,
)

__all__ = [
    "CrystalTwinsRegressor",
    "CrystalTwinsPretrainNet",
    "barlow_twins_loss",
    "augment_batch",
    "load_published_encoder",
    "published_weights_path",
]

_ENCODER_PREFIXES = ("embedding.", "convs.", "conv_to_fc.")


def published_weights_path() -> Path:
    """Default location of the published Crystal Twins encoder."""
    return default_shared_data() / "crystal_twins" / "cgcnn_barlow_twins.pth"


def _load_state(pretrained) -> dict:
    if isinstance(pretrained, dict):
        return pretrained
    path = published_weights_path() if pretrained == "published" else Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(
            f"Crystal Twins weights not found at {path}. Pass pretrained='/path/to/"
            "cgcnn_barlow_twins.pth', pretrained=None (random init), or set "
            "$MCRT_SKLEARN_DATA to the folder holding crystal_twins/."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a plain state_dict")
    return state


def split_state(state: dict) -> tuple[dict, dict]:
    """Split a Crystal Twins state dict into (encoder part, projector ``fc_head`` part)."""
    enc = {k: v for k, v in state.items() if k.startswith(_ENCODER_PREFIXES)}
    head = {k[len("fc_head."):]: v for k, v in state.items() if k.startswith("fc_head.")}
    other = sorted(set(state) - set(enc) - {f"fc_head.{k}" for k in head})
    if other:
        raise ValueError(f"unexpected keys in Crystal Twins state dict: {other[:10]}")
    return enc, head


def load_published_encoder(encoder: CGCNNEncoder, pretrained="published") -> CGCNNEncoder:
    """Load the published (or given) Crystal Twins encoder weights, strictly."""
    enc, _ = split_state(_load_state(pretrained))
    encoder.load_state_dict(enc, strict=True)
    return encoder


class CrystalTwinsPretrainNet(nn.Module):
    """Encoder + projector, with state-dict names of the published checkpoint."""

    def __init__(self, orig_atom_fea_len=92, atom_fea_len=64, n_conv=3, h_fea_len=128,
                 embed_size=256, dmin=0.0, dmax=8.0, step=0.2):
        super().__init__()
        self.encoder = CGCNNEncoder(orig_atom_fea_len, atom_fea_len, n_conv, h_fea_len,
                                    dmin, dmax, step)
        self.fc_head = nn.Sequential(
            nn.Linear(h_fea_len, h_fea_len), nn.ReLU(), nn.Linear(h_fea_len, embed_size)
        )

    def forward(self, atom_fea, nbr_idx, nbr_vec, nbr_mask, crystal_atoms, edge_keep=None):
        return self.fc_head(
            self.encoder(atom_fea, nbr_idx, nbr_vec, nbr_mask, crystal_atoms, edge_keep)
        )

    def flat_state_dict(self) -> dict:
        """State dict in the published layout (``embedding.…``, ``fc_head.…``)."""
        out = {k: v.detach().cpu().clone() for k, v in self.encoder.state_dict().items()}
        out.update({f"fc_head.{k}": v.detach().cpu().clone()
                    for k, v in self.fc_head.state_dict().items()})
        return out

    def load_flat_state_dict(self, state: dict) -> None:
        enc, head = split_state(state)
        self.encoder.load_state_dict(enc, strict=True)
        self.fc_head.load_state_dict(head, strict=True)


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051) -> torch.Tensor:
    """Barlow Twins loss of two (batch, d) projections (batch ≥ 2)."""
    n = z1.shape[0]
    if n < 2:
        raise ValueError("the Barlow Twins loss needs at least 2 crystals per batch")
    z1 = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + 1e-6)
    z2 = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + 1e-6)
    c = z1.T @ z2 / n
    diag = torch.diagonal(c)
    on = ((diag - 1) ** 2).sum()
    off = (c**2).sum() - (diag**2).sum()
    return on + lambd * off


def augment_batch(batch: dict, generator: torch.Generator, atom_mask: float = 0.1,
                  edge_mask: float = 0.1, sigma: float = 0.05) -> dict:
    """One augmented view of a collated CGCNN batch.

    Random atom masking (feature rows set to 0 with probability ``atom_mask``),
    edge masking (Gaussian bond features set to 0 with probability ``edge_mask``)
    and a coordinate perturbation (every atom moved by N(0, σ²) per axis, Å; bond
    vectors become r_ij + δ_j − δ_i, the neighbour list is kept).
    """
    out = dict(batch)
    dev = batch["atom_fea"].device
    n = batch["atom_fea"].shape[0]
    if atom_mask > 0:
        keep = (torch.rand(n, generator=generator) >= atom_mask).to(dev)
        out["atom_fea"] = batch["atom_fea"] * keep.unsqueeze(1).to(batch["atom_fea"].dtype)
    if edge_mask > 0:
        out["edge_keep"] = (torch.rand(batch["nbr_idx"].shape, generator=generator)
                            >= edge_mask).to(dev)
    if sigma > 0:
        delta = (torch.randn(n, 3, generator=generator) * sigma).to(dev, batch["nbr_vec"].dtype)
        out["nbr_vec"] = batch["nbr_vec"] + delta[batch["nbr_idx"]] - delta.unsqueeze(1)
    return out


class CrystalTwinsRegressor(CGCNNRegressor):
    """Crystal Twins (Barlow-Twins pre-trained CGCNN) fine-tuned as a regressor.

    Parameters
    ----------
    pretrained : "published", str/Path, dict or None
        Initial encoder: the published Crystal Twins encoder (default), a
        ``.pth`` state dict in the published layout, such a dict itself (e.g.
        ``other.pretrained_state_``), or None (random init, i.e. plain CGCNN with 3
        convolutions). Weights learned by :meth:`pretrain` on this very estimator
        take precedence.
    n_conv, atom_fea_len, h_fea_len, n_h
        Architecture (3, 64, 128, 1 as the published encoder).
    max_epochs, batch_size
        Fine-tuning (paper: 200 epochs, batch 128).
    Other parameters as :class:`~mcrt_sklearn.baselines.CGCNNRegressor`.

    Attributes
    ----------
    pretrained_state_ : dict
        Encoder + projector weights from :meth:`pretrain` (published layout).
    pretrain_history_ : list of float
        Mean Barlow Twins loss per pre-training epoch.
    """

    def __init__(
        self,
        pretrained="published",
        n_conv: int = 3,
        atom_fea_len: int = 64,
        h_fea_len: int = 128,
        n_h: int = 1,
        radius: float = 8.0,
        max_num_nbr: int = 12,
        dmin: float = 0.0,
        step: float = 0.2,
        atom_init=None,
        max_epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup: float = 0.05,
        validation_fraction=None,
        patience=None,
        random_state=None,
        device: str = "cpu",
        progress_bar: bool = False,
        verbose: int = 0,
        graph_cache=None,
        n_jobs: int = 1,
    ):
        self.pretrained = pretrained
        super().__init__(
            n_conv=n_conv, atom_fea_len=atom_fea_len, h_fea_len=h_fea_len, n_h=n_h,
            radius=radius, max_num_nbr=max_num_nbr, dmin=dmin, step=step,
            atom_init=atom_init, max_epochs=max_epochs, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, warmup=warmup,
            validation_fraction=validation_fraction, patience=patience,
            random_state=random_state,
            device=device, progress_bar=progress_bar, verbose=verbose,
            graph_cache=graph_cache, n_jobs=n_jobs,
        )

    def _initial_state(self):
        if getattr(self, "pretrained_state_", None) is not None:
            return self.pretrained_state_
        if self.pretrained is None:
            return None
        return _load_state(self.pretrained)

    def _prepare_module(self, module: CGCNNNet) -> CGCNNNet:
        state = self._initial_state()
        if state is not None:
            enc, _ = split_state(state)
            module.encoder.load_state_dict(enc, strict=True)
        return module

    def _pretrain_module(self) -> CrystalTwinsPretrainNet:
        return CrystalTwinsPretrainNet(
            orig_atom_fea_len=self.atom_table_.shape[1], atom_fea_len=self.atom_fea_len,
            n_conv=self.n_conv, h_fea_len=self.h_fea_len, dmin=self.dmin,
            dmax=self.radius, step=self.step,
        )

    def pretrain(
        self,
        X,
        max_epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-5,
        weight_decay: float = 1e-6,
        lambd: float = 0.0051,
        atom_mask: float = 0.1,
        edge_mask: float = 0.1,
        sigma: float = 0.05,
        init: str | None = None,
    ):
        """Self-supervised Barlow Twins pre-training on unlabelled crystals.

        Defaults are the published config (Adam, lr 1e-5, wd 1e-6, batch 64, 20
        epochs, λ 0.0051). ``init=None`` starts from random weights; ``init=
        "published"`` (or a path/dict) continues from those weights. The result is
        stored in ``pretrained_state_`` and used by the next :meth:`fit`.

        Returns
        -------
        self
        """
        self.atom_table_ = load_atom_init(self.atom_init)
        records = self._records(X)
        if len(records) < 2:
            raise ValueError("pre-training needs at least 2 crystals")
        seed_everything(self.random_state)
        net = self._pretrain_module()
        if init is not None:
            net.load_flat_state_dict(_load_state(init))
        net.to(self.device)
        gen = torch.Generator().manual_seed(
            0 if self.random_state is None else int(self.random_state) % (2**32)
        )
        bs = max(2, min(int(batch_size), len(records)))
        loader = torch.utils.data.DataLoader(
            GraphDataset(records), batch_size=bs, shuffle=True, drop_last=True,
            collate_fn=lambda b: collate_cgcnn(b, self.atom_table_)[0], generator=gen,
        )
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        history = []
        epochs = range(int(max_epochs))
        if self.progress_bar:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="Barlow Twins pre-training")
        net.train()
        for _ in epochs:
            losses = []
            for gb in loader:
                batch = gb.to(self.device)
                v1 = augment_batch(batch, gen, atom_mask, edge_mask, sigma)
                v2 = augment_batch(batch, gen, atom_mask, edge_mask, sigma)
                loss = barlow_twins_loss(net(**v1), net(**v2), lambd)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            history.append(float(np.mean(losses)))
        net.eval()
        self.pretrained_state_ = net.flat_state_dict()
        self.pretrain_history_ = history
        return self

    def embed(self, X) -> np.ndarray:
        """Encoder embeddings (after ``conv_to_fc``) of the fitted model, (n, h_fea_len)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "net_")
        records = self._records(X)
        module = self.net_.module_
        module.eval()
        outs = []
        with torch.no_grad():
            for i in range(0, len(records), int(self.batch_size)):
                gb, _ = collate_cgcnn([(r, 0.0) for r in records[i:i + self.batch_size]],
                                      self.atom_table_)
                outs.append(module.encoder(**gb.to(self.device)).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.h_fea_len))
