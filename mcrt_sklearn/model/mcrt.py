"""The MCRT network: ALIGNN atom tokens + persistence-image patch tokens → transformer.

Token sequence (DESIGN §6)::

    [CLS] atom_1 … atom_N (padded) [SEP] 100 H1 patches [SCL-b1] [SCL-p1]
          100 H2 patches [SCL-b2] [SCL-p2]

Atom tokens are padded to the largest crystal of the batch (padded keys are masked,
so outputs do not depend on the padding); ``pad_to=1023`` in
:func:`mcrt_sklearn.collate.collate` reproduces the reference layout exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from mcrt_sklearn.model.alignn import ALIGNN
from mcrt_sklearn.model.heads import (
    DEFAULT_SEP_WEIGHTS,
    APCHead,
    CDPHead,
    ClassificationHead,
    LinearHead,
    MAPHead,
    PairMLPHead,
    Pooler,
    RegressionHead,
    SEPHead,
)
from mcrt_sklearn.model.transformer import MCRTTransformer, MLPProjector, PositionalEncoding3D

__all__ = ["MCRTConfig", "MCRT", "KNOWN_TASKS", "angle_feature_indices"]

#: Heads this implementation can build (reference names; ``<task>_head`` in state_dict).
KNOWN_TASKS = (
    "map",
    "apc",
    "cdp",
    "sep",
    "sgp",
    "ucp",
    "adp",
    "aap",
    "regression",
    "classification",
)
_POSITIONAL = ("relative", "absolute", "both", "none")


def angle_feature_indices(angle_nbr: int, n_nbr: int = 8) -> list[int]:
    """Columns of the 28 neighbour-pair cosines kept for the first ``angle_nbr`` neighbours.

    The 28 features are ordered (0,1),(0,2)…(0,7),(1,2)…(6,7); keep pairs (j, k) with
    ``k < angle_nbr``.
    """
    if not 2 <= angle_nbr <= n_nbr:
        raise ValueError(f"angle_nbr must be between 2 and {n_nbr}, got {angle_nbr}")
    out, col = [], 0
    for j in range(n_nbr - 1):
        for k in range(j + 1, n_nbr):
            if k < angle_nbr:
                out.append(col)
            col += 1
    return out


@dataclass
class MCRTConfig:
    """Architecture of an MCRT network (reference config names where they exist).

    Ablations: ``use_images=False`` (no image modality, "MCRTi"),
    ``positional="absolute"`` (3-D sin-cos of Cartesian coordinates, "MCRTa"),
    ``positional="none"``; ``"both"`` = relative + absolute (reference option).
    ``tasks`` lists the heads to build (see :data:`KNOWN_TASKS`).
    """

    num_blocks: int = 12
    hid_dim: int = 768
    num_heads: int = 12
    mlp_ratio: float = 4
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.1
    attn_drop: float = 0.0
    drop_path_rate: float = 0.1
    alignn_num_conv: int = 4
    alignn_hidden_dim: int = 256
    alignn_rbf_distance_dim: int = 40
    alignn_rbf_triplet_dim: int = 40
    alignn_batch_norm: bool = True
    alignn_dropout: float = 0.0
    alignn_residual: bool = False
    angle_nbr: int = 8
    max_graph_len: int = 1023
    img_size: tuple[int, int] = (50, 50)
    patch_size: tuple[int, int] = (5, 5)
    in_chans: int = 1
    positional: str = "relative"
    use_images: bool = True
    tasks: tuple[str, ...] = ()
    n_classes: int = 0
    sep_weights: tuple[float, ...] = field(default=DEFAULT_SEP_WEIGHTS)

    def __post_init__(self):
        self.img_size = tuple(int(v) for v in _pair(self.img_size))
        self.patch_size = tuple(int(v) for v in _pair(self.patch_size))
        self.tasks = tuple(dict.fromkeys(str(t) for t in self.tasks))
        self.sep_weights = tuple(float(w) for w in self.sep_weights)
        if self.positional not in _POSITIONAL:
            raise ValueError(f"positional must be one of {_POSITIONAL}, got {self.positional!r}")
        unknown = [t for t in self.tasks if t not in KNOWN_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {KNOWN_TASKS}")
        if "classification" in self.tasks and self.n_classes < 2:
            raise ValueError("the classification head needs n_classes >= 2")
        if self.hid_dim % self.num_heads:
            raise ValueError(
                f"hid_dim={self.hid_dim} is not divisible by num_heads={self.num_heads}"
            )
        if self.hid_dim % 4:
            raise ValueError(
                f"hid_dim={self.hid_dim} must be a multiple of 4 (2-D sin-cos patch table)"
            )
        angle_feature_indices(self.angle_nbr)

    # -- conversions -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (only str/int/float/bool/None/tuple values: safe for weights_only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MCRTConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown MCRTConfig field(s): {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_reference_config(cls, config: dict[str, Any], tasks=None) -> MCRTConfig:
        """Config of the reference implementation (sacred/Lightning ``config`` dict).

        Architecture keys keep their names; ``pos_emb`` → ``positional``, ``if_image`` →
        ``use_images``, ``loss_names`` (weights > 0) → ``tasks`` unless ``tasks`` is given.
        Keys that do not change the architecture (optimiser, paths …) are ignored.
        """
        config = dict(config)
        if config.get("if_alignn", True) is False or config.get("if_conv", False):
            raise ValueError("only the ALIGNN atom encoder (if_alignn=True) is supported")
        kw: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, value in config.items():
            if key in names and key not in ("tasks", "positional", "use_images"):
                kw[key] = value
        if "pos_emb" in config:
            pos = config["pos_emb"]
            kw["positional"] = pos if pos in _POSITIONAL else "none"
        if "if_image" in config:
            kw["use_images"] = bool(config["if_image"])
        if kw.get("qk_scale") is None:
            kw["qk_scale"] = None
        if kw.get("n_classes") is None:
            kw.pop("n_classes", None)
        if kw.get("sep_weights") is None:
            kw.pop("sep_weights", None)
        if tasks is None:
            loss_names = config.get("loss_names") or {}
            tasks = [t for t in KNOWN_TASKS if float(loss_names.get(t, 0) or 0) > 0]
        kw["tasks"] = tuple(tasks)
        return cls(**kw)

    def to_reference_config(self) -> dict[str, Any]:
        """The reference implementation's names for this architecture."""
        d = self.to_dict()
        d["pos_emb"] = d.pop("positional")
        d["if_image"] = d.pop("use_images")
        d["if_alignn"] = True
        tasks = d.pop("tasks")
        d["loss_names"] = {t: (1 if t in tasks else 0) for t in KNOWN_TASKS}
        d["img_size"] = list(d["img_size"])
        d["patch_size"] = list(d["patch_size"])
        d["sep_weights"] = list(d["sep_weights"])
        return d

    @property
    def n_angle_features(self) -> int:
        return self.angle_nbr * (self.angle_nbr - 1) // 2


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    return tuple(v)


def _init_weights(module: nn.Module) -> None:
    """Reference initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    elif isinstance(module, nn.LayerNorm):
        nn.init.zeros_(module.bias)
        nn.init.ones_(module.weight)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_transformer_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.zeros_(module.bias)
        nn.init.ones_(module.weight)


class MCRT(nn.Module):
    """MCRT network (pure PyTorch; reference-compatible state_dict names).

    Parameters
    ----------
    config : MCRTConfig, optional
        Architecture; defaults to the paper's (L=12, H=768, 12 heads, ALIGNN 256×4).
    **overrides
        Fields of :class:`MCRTConfig` replacing those of ``config``.

    Input is a batch from :func:`mcrt_sklearn.collate.collate`. :meth:`encode` returns the
    token states; :meth:`forward` adds the outputs of the configured heads.
    """

    def __init__(self, config: MCRTConfig | None = None, **overrides):
        super().__init__()
        cfg = config if config is not None else MCRTConfig()
        if overrides:
            cfg = replace(cfg, **overrides)
        self.config = cfg
        H = cfg.hid_dim

        self.GNN_embeddings = ALIGNN(
            num_conv=cfg.alignn_num_conv,
            hidden_dim=cfg.alignn_hidden_dim,
            rbf_distance_dim=cfg.alignn_rbf_distance_dim,
            rbf_triplet_dim=cfg.alignn_rbf_triplet_dim,
            batch_norm=cfg.alignn_batch_norm,
            dropout=cfg.alignn_dropout,
            residual=cfg.alignn_residual,
            out_dim=H,
        )
        if cfg.positional in ("relative", "both"):
            self.dist_MLP_Projector = MLPProjector(cfg.max_graph_len, H, H, cfg.drop_rate)
            self.angle_MLP_Projector = MLPProjector(cfg.n_angle_features, H, H, cfg.drop_rate)
        if cfg.positional in ("absolute", "both"):
            self.pe_3D = PositionalEncoding3D(H, cfg.drop_rate)
        self.register_buffer(
            "angle_index",
            torch.tensor(angle_feature_indices(cfg.angle_nbr), dtype=torch.long),
            persistent=False,
        )

        self.transformer = MCRTTransformer(
            num_blocks=cfg.num_blocks,
            dim=H,
            num_heads=cfg.num_heads,
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            in_chans=cfg.in_chans,
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            qk_scale=cfg.qk_scale,
            drop=cfg.drop_rate,
            attn_drop=cfg.attn_drop,
            drop_path_rate=cfg.drop_path_rate,
        )
        self.cls_embeddings = nn.Linear(1, H)
        self.sep_embeddings = nn.Linear(1, H)
        self.birth_1d_embeddings = nn.Linear(1, H)
        self.pers_1d_embeddings = nn.Linear(1, H)
        self.birth_2d_embeddings = nn.Linear(1, H)
        self.pers_2d_embeddings = nn.Linear(1, H)
        self.token_type_embeddings = nn.Embedding(2, H)
        self.pooler = Pooler(H)

        self.apply(_init_weights)
        self.transformer.apply(_init_transformer_weights)
        for task in cfg.tasks:
            self._build_head(task)

    # -- heads ---------------------------------------------------------------------
    def _build_head(self, task: str) -> nn.Module:
        H = self.config.hid_dim
        if task == "map":
            head = MAPHead(H)
        elif task == "apc":
            head = APCHead(H)
        elif task == "adp":
            head = PairMLPHead(H, arity=2)
        elif task == "aap":
            head = PairMLPHead(H, arity=3)
        elif task == "cdp":
            head = CDPHead(H)
        elif task == "sep":
            head = SEPHead(H)
        elif task == "sgp":
            head = LinearHead(H, 230)
        elif task == "ucp":
            head = LinearHead(H, 6)
        elif task == "regression":
            head = RegressionHead(H)
        elif task == "classification":
            head = ClassificationHead(H, self.config.n_classes)
        else:
            raise ValueError(f"unknown task {task!r}; known: {KNOWN_TASKS}")
        head.apply(_init_weights)
        ref = next(self.parameters())
        head.to(device=ref.device, dtype=ref.dtype)
        setattr(self, f"{task}_head", head)
        return head

    def set_tasks(self, tasks, n_classes: int | None = None) -> MCRT:
        """Keep the heads in ``tasks`` (existing weights kept), add missing ones freshly
        initialised, drop the others. Returns self (e.g. a pre-trained encoder → regressor)."""
        tasks = tuple(dict.fromkeys(tasks))
        new_cfg = replace(
            self.config,
            tasks=tasks,
            n_classes=self.config.n_classes if n_classes is None else n_classes,
        )
        rebuild_cls = n_classes is not None and n_classes != self.config.n_classes
        for task in self.config.tasks:
            if task not in tasks or (task == "classification" and rebuild_cls):
                delattr(self, f"{task}_head")
        self.config = new_cfg
        for task in tasks:
            if not hasattr(self, f"{task}_head"):
                self._build_head(task)
        return self

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    # -- forward -------------------------------------------------------------------
    def encode(self, batch: dict[str, Any], need_weights: bool = False) -> dict[str, Any]:
        """Run the encoder on a collated batch.

        Returns
        -------
        dict with
            ``tokens`` (B, T, H): all token states after the final LayerNorm;
            ``token_mask`` (B, T) bool;
            ``cls_feats`` (B, H): pooler output, the [CLS] embedding;
            ``raw_cls_feats`` (B, H): token 0 after the final LayerNorm;
            ``atom_feats`` (B, N, H) and ``atom_mask`` (B, N): per-atom outputs;
            ``graph_feats`` (B, H): mean of the real atoms' outputs;
            ``image_feats`` (B, 204, H) or None: patch and [SCL] token outputs;
            ``attentions``: list of per-block (B, heads, T, T) when ``need_weights``.
        """
        cfg = self.config
        atom_mask = batch["atom_mask"]
        B, N = atom_mask.shape
        H = cfg.hid_dim
        device = atom_mask.device

        node = self.GNN_embeddings(
            batch["atomic_numbers"],
            batch["edge_index"],
            batch["edge_distances"],
            batch["line_graph_index"],
            batch["line_graph_cosines"],
        )
        flat = batch["atom_batch"] * N + batch["atom_position"]
        atoms = node.new_zeros(B * N, H).index_copy(0, flat, node).view(B, N, H)

        if cfg.positional in ("relative", "both"):
            dist = batch["distance"].to(atoms.dtype)
            atoms = atoms + self.dist_MLP_Projector(dist, atom_mask)
            angles = batch["angles"].to(atoms.dtype)
            if angles.shape[-1] != self.angle_index.numel():
                angles = angles.index_select(-1, self.angle_index)
            angle_rows = (angles != -100.0).any(dim=-1) & atom_mask
            atoms = atoms + self.angle_MLP_Projector(angles, angle_rows)
        if cfg.positional in ("absolute", "both"):
            pos = batch.get("cart_coords")
            if pos is None:
                raise ValueError(
                    "positional='absolute' needs Cartesian coordinates: records must carry "
                    "`cart_coords` (n, 3) so that collate() can provide batch['cart_coords']"
                )
            atoms = self.pe_3D(atoms, pos)

        zeros = atoms.new_zeros(B, 1, 1)
        cls = self.cls_embeddings(zeros)
        graph_tokens = torch.cat([cls, atoms], dim=1)
        graph_mask = torch.cat(
            [torch.ones(B, 1, dtype=torch.bool, device=device), atom_mask], dim=1
        )
        graph_tokens = graph_tokens + self.token_type_embeddings.weight[0]

        if cfg.use_images:
            image = batch.get("image")
            scalars = batch.get("image_scalars")
            if image is None or scalars is None:
                from mcrt_sklearn.errors import MissingImageError

                raise MissingImageError(
                    "this model uses persistence images (use_images=True) but the batch has none; "
                    "attach them to the records or use a model with use_images=False"
                )
            image = image.to(atoms.dtype)
            scalars = scalars.to(atoms.dtype)
            h1 = self.transformer.patch_embed_1d(image[:, 0:1])
            h2 = self.transformer.patch_embed_2d(image[:, 1:2])
            sep = self.sep_embeddings(zeros)
            b1 = self.birth_1d_embeddings(scalars[:, 0, None, None])
            p1 = self.pers_1d_embeddings(scalars[:, 1, None, None])
            b2 = self.birth_2d_embeddings(scalars[:, 2, None, None])
            p2 = self.pers_2d_embeddings(scalars[:, 3, None, None])
            image_tokens = torch.cat([sep, h1, b1, p1, h2, b2, p2], dim=1)
            image_tokens = image_tokens + self.token_type_embeddings.weight[1]
            x = torch.cat([graph_tokens, image_tokens], dim=1)
            mask = torch.cat(
                [graph_mask, torch.ones(B, image_tokens.shape[1], dtype=torch.bool, device=device)],
                dim=1,
            )
        else:
            x, mask = graph_tokens, graph_mask

        x, attentions = self.transformer(x, key_mask=mask, need_weights=need_weights)
        atom_feats = x[:, 1 : 1 + N]
        n_atoms = atom_mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
        graph_feats = (atom_feats * atom_mask.unsqueeze(-1).to(x.dtype)).sum(dim=1) / n_atoms
        return {
            "tokens": x,
            "token_mask": mask,
            "cls_feats": self.pooler(x),
            "raw_cls_feats": x[:, 0],
            "atom_feats": atom_feats,
            "atom_mask": atom_mask,
            "graph_feats": graph_feats,
            "image_feats": x[:, 2 + N :] if cfg.use_images else None,
            "attentions": attentions if need_weights else None,
        }

    def forward(self, batch: dict[str, Any], need_weights: bool = False) -> dict[str, Any]:
        """:meth:`encode` plus the outputs of every configured head.

        Adds ``regression`` (B,), ``classification`` (B,) logit of class 1 for two
        classes else (B, n_classes), ``map_logits`` (B, N, 118), ``cdp`` (B,),
        ``sep_logits`` (B, 7), ``sgp_logits`` (B, 230), ``ucp`` (B, 6), and
        ``apc_logits`` / ``adp`` / ``aap`` (B, m) when the batch carries
        ``atom_pairs`` / ``dist_pairs`` / ``angle_triples``.
        """
        out = self.encode(batch, need_weights=need_weights)
        cls = out["cls_feats"]
        for task in self.config.tasks:
            head = getattr(self, f"{task}_head")
            if task == "regression":
                out["regression"] = head(cls).squeeze(-1)
            elif task == "classification":
                logits = head(cls)
                out["classification"] = logits.squeeze(-1) if head.binary else logits
            elif task == "map":
                out["map_logits"] = head(out["atom_feats"])
            elif task == "cdp":
                out["cdp"] = head(cls).squeeze(-1)
            elif task == "sep":
                out["sep_logits"] = head(cls)
            elif task == "sgp":
                out["sgp_logits"] = head(cls)
            elif task == "ucp":
                out["ucp"] = head(cls)
            elif task == "apc" and batch.get("atom_pairs") is not None:
                out["apc_logits"] = head(out["atom_feats"], batch["atom_pairs"])
            elif task == "adp" and batch.get("dist_pairs") is not None:
                out["adp"] = head(out["atom_feats"], batch["dist_pairs"])
            elif task == "aap" and batch.get("angle_triples") is not None:
                out["aap"] = head(out["atom_feats"], batch["angle_triples"])
        return out
