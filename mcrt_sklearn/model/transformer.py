"""Transformer pieces of MCRT: pre-norm blocks, patch embeddings, projectors.

Names of modules and parameters follow the reference implementation
(``transformer.blocks.0.attn.qkv.weight``, ``transformer.patch_embed_1d.proj.1.weight``,
``dist_MLP_Projector.fc1.weight`` ...), so its state_dict loads as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DropPath",
    "Mlp",
    "Attention",
    "Block",
    "PatchEmbed2D",
    "MCRTTransformer",
    "MLPProjector",
    "PositionalEncoding3D",
    "sincos_2d_table",
]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Linear → GELU → Dropout → Linear → Dropout."""

    def __init__(
        self, in_features: int, hidden_features: int, out_features: int | None = None, drop=0.0
    ):
        super().__init__()
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention with a key-padding mask.

    ``key_mask`` (B, T) is True for real tokens; masked keys get no attention.
    With ``need_weights=True`` the attention probabilities (B, heads, T, T) are
    returned too (explicit softmax path); otherwise PyTorch's fused
    ``scaled_dot_product_attention`` is used.
    """

    def __init__(
        self, dim, num_heads=8, qkv_bias=True, qk_scale=None, attn_drop=0.0, proj_drop=0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = int(num_heads)
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, key_mask=None, need_weights=False):
        B, T, C = x.shape
        qkv = (
            self.qkv(x).reshape(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * self.scale
            if key_mask is not None:
                scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
            attn = scores.softmax(dim=-1)
            out = self.attn_drop(attn) @ v
        else:
            mask = None if key_mask is None else key_mask[:, None, None, :]
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=self.attn_drop.p if self.training else 0.0,
                scale=self.scale,
            )
        out = out.transpose(1, 2).reshape(B, T, C)
        return self.proj_drop(self.proj(out)), attn


class Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)); x + MLP(LN(x)), with DropPath."""

    def __init__(
        self,
        dim,
        num_heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        qk_scale=None,
        drop=0.0,
        attn_drop=0.0,
        drop_path=0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dim, drop)

    def forward(self, x, key_mask=None, need_weights=False):
        y, attn = self.attn(self.norm1(x), key_mask=key_mask, need_weights=need_weights)
        x = x + self.drop_path(y)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, attn


def sincos_2d_table(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sin-cos table (h*w, dim), patches row-major.

    For patch row y, column x and d = dim/4 frequencies ``w_k = T**(-k/(d-1))``:
    ``[sin(x w), cos(x w), sin(y w), cos(y w)]``.
    """
    if dim % 4:
        raise ValueError(f"hidden size {dim} must be a multiple of 4 for the 2-D sin-cos table")
    d = dim // 4
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    k = torch.arange(d) / max(d - 1, 1)
    omega = 1.0 / (temperature**k)
    ys = yy.flatten()[:, None] * omega[None, :]
    xs = xx.flatten()[:, None] * omega[None, :]
    return torch.cat([xs.sin(), xs.cos(), ys.sin(), ys.cos()], dim=1).float()


class _Patchify(nn.Module):
    """(B, C, H, W) → (B, patches, p1*p2*C): patches row-major, pixels row-major."""

    def __init__(self, p1: int, p2: int):
        super().__init__()
        self.p1, self.p2 = int(p1), int(p2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h, w = H // self.p1, W // self.p2
        x = x.reshape(B, C, h, self.p1, w, self.p2)
        x = x.permute(0, 2, 4, 3, 5, 1)  # B, h, w, p1, p2, C
        return x.reshape(B, h * w, self.p1 * self.p2 * C)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


class PatchEmbed2D(nn.Module):
    """Image → patch tokens: Linear(patch pixels → dim) + fixed 2-D sin-cos table."""

    def __init__(self, img_size=(50, 50), patch_size=(5, 5), in_chans=1, embed_dim=768):
        super().__init__()
        self.img_size = _pair(img_size)
        self.patch_size = _pair(patch_size)
        gh = self.img_size[0] // self.patch_size[0]
        gw = self.img_size[1] // self.patch_size[1]
        self.grid = (gh, gw)
        self.num_patches = gh * gw
        patch_dim = self.patch_size[0] * self.patch_size[1] * int(in_chans)
        self.proj = nn.Sequential(_Patchify(*self.patch_size), nn.Linear(patch_dim, embed_dim))
        self.register_buffer("pos_embedding", sincos_2d_table(gh, gw, embed_dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.pos_embedding.to(dtype=x.dtype)


class MCRTTransformer(nn.Module):
    """The two patch embeddings (H1, H2), the blocks and the final LayerNorm."""

    def __init__(
        self,
        num_blocks=12,
        dim=768,
        num_heads=12,
        img_size=(50, 50),
        patch_size=(5, 5),
        in_chans=1,
        mlp_ratio=4.0,
        qkv_bias=True,
        qk_scale=None,
        drop=0.0,
        attn_drop=0.0,
        drop_path_rate=0.1,
    ):
        super().__init__()
        self.patch_embed_1d = PatchEmbed2D(img_size, patch_size, in_chans, dim)
        self.patch_embed_2d = PatchEmbed2D(img_size, patch_size, in_chans, dim)
        # Stochastic depth rate grows linearly from 0 to drop_path_rate.
        rates = [
            drop_path_rate * i / (num_blocks - 1) if num_blocks > 1 else 0.0
            for i in range(num_blocks)
        ]
        self.blocks = nn.ModuleList(
            [
                Block(dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, rates[i])
                for i in range(num_blocks)
            ]
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, key_mask=None, need_weights=False):
        attentions = []
        for block in self.blocks:
            x, attn = block(x, key_mask=key_mask, need_weights=need_weights)
            if need_weights:
                attentions.append(attn)
        return self.norm(x), attentions


class MLPProjector(nn.Module):
    """Linear → GELU → Dropout → Linear → Dropout, output zeroed on masked rows.

    Used for the distance row and the angle cosines of each atom. When the input is
    narrower than ``fc1`` expects (distance rows given only up to the batch's largest
    crystal instead of padded with zeros to ``max_graph_len``), only the first
    columns of ``fc1`` are used — identical to zero padding.
    """

    def __init__(
        self, in_features: int, hidden_features: int, out_features: int, drop: float = 0.0
    ):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, row_mask: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        if width == self.fc1.in_features:
            h = self.fc1(x)
        elif width < self.fc1.in_features:
            h = F.linear(x, self.fc1.weight[:, :width], self.fc1.bias)
        else:
            raise ValueError(
                f"projector input has {width} columns but the model accepts at most "
                f"{self.fc1.in_features} (max_graph_len)"
            )
        h = self.drop(self.fc2(self.drop(self.act(h))))
        return h * row_mask.unsqueeze(-1).to(h.dtype)


class PositionalEncoding3D(nn.Module):
    """Absolute 3-D sin-cos embedding of Cartesian coordinates (reference "absolute").

    For each axis i: ``pe[2j] = sin(10 x_i / 10000**(2j/H))``, ``pe[2j+1] = cos(...)``;
    the three axes' tables are summed onto the tokens, then dropout.
    """

    def __init__(self, embed_dim: int, dropout: float = 0.1):
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        pos = pos.to(x.dtype) * 10
        div = torch.exp(
            torch.arange(0.0, self.embed_dim, 2, device=x.device)
            * -(math.log(10000.0) / self.embed_dim)
        ).to(x.dtype)
        pe = x.new_zeros(x.shape)
        for i in range(3):
            angle = pos[..., i].unsqueeze(-1) * div
            pe[..., 0::2] += torch.sin(angle)
            pe[..., 1::2] += torch.cos(angle)[..., : pe[..., 1::2].shape[-1]]
        return self.dropout(x + pe)
