"""Attention rollout (Abnar & Zuidema, 2020) for the [CLS] token of MCRT.

Each block's attention is averaged over heads, the identity is added (the residual
path) and rows are renormalised; the rollout is the product of these matrices from the
first block to the last. Row 0 of the result says how much each input token
contributes to the [CLS] output.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["attention_rollout", "cls_rollout"]


def attention_rollout(attentions, add_identity: bool = True) -> torch.Tensor:
    """Rollout of a list of per-block attention tensors (B, heads, T, T) → (B, T, T).

    ``R_0 = I``; ``R_l = norm(mean_heads(A_l) + I) @ R_{l-1}``. Rows of the result
    sum to 1.
    """
    attentions = list(attentions)
    if not attentions:
        raise ValueError("attention_rollout needs the attention of at least one block")
    first = attentions[0]
    B, _, T, _ = first.shape
    eye = torch.eye(T, dtype=first.dtype, device=first.device)
    rollout = eye.expand(B, T, T)
    for attn in attentions:
        a = attn.mean(dim=1)
        if add_identity:
            a = a + eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    return rollout


@torch.no_grad()
def cls_rollout(model, batch: dict[str, Any], add_identity: bool = True) -> dict[str, Any]:
    """Rollout scores of the [CLS] token of ``model`` on a collated ``batch``.

    Returns
    -------
    dict with
        ``atoms`` (B, N): score of each atom token (0 on padding);
        ``patches_1d`` and ``patches_2d`` (B, gh, gw): scores of the H1 / H2 image
        patches laid out as the image grid (row-major, as the patches were cut);
        ``special`` (B, 6): scores of [CLS], [SEP], [SCL-b1], [SCL-p1], [SCL-b2],
        [SCL-p2] (only [CLS] when the model has no image modality);
        ``rollout`` (B, T): the whole [CLS] row (sums to 1).
    The model is put in eval mode for the pass and restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        out = model.encode(batch, need_weights=True)
    finally:
        model.train(was_training)
    row = attention_rollout(out["attentions"], add_identity=add_identity)[:, 0]
    atom_mask = out["atom_mask"]
    N = atom_mask.shape[1]
    result = {
        "atoms": row[:, 1 : 1 + N] * atom_mask.to(row.dtype),
        "rollout": row,
        "atom_mask": atom_mask,
    }
    if model.config.use_images:
        gh, gw = model.transformer.patch_embed_1d.grid
        P = gh * gw
        start = 1 + N  # [SEP]
        h1 = row[:, start + 1 : start + 1 + P]
        scl1 = row[:, start + 1 + P : start + 3 + P]
        s2 = start + 3 + P
        h2 = row[:, s2 : s2 + P]
        scl2 = row[:, s2 + P : s2 + P + 2]
        result["patches_1d"] = h1.reshape(-1, gh, gw)
        result["patches_2d"] = h2.reshape(-1, gh, gw)
        result["special"] = torch.cat([row[:, :1], row[:, start : start + 1], scl1, scl2], dim=1)
    else:
        result["special"] = row[:, :1]
    return result
