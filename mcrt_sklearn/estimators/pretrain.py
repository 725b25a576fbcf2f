"""Self-supervised pre-training of MCRT on unlabelled crystals (MAP, APC, CDP, SEP)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from mcrt_sklearn.estimators._net import (
    AcceleratedMCRTNet,
    CollateRecords,
    MCRTNet,
    build_network,
    check_accumulation,
    check_records,
    data_summary,
    fit_net,
    main_process_writes,
    make_callbacks,
    module_device,
    net_class_and_device,
    recalibrate_batchnorm,
    recipe_of,
    seeded,
    split_validation,
    train_iterator_params,
)
from mcrt_sklearn.model.checkpoint import save_checkpoint
from mcrt_sklearn.model.heads import DEFAULT_SEP_WEIGHTS, weighted_bce_with_logits
from mcrt_sklearn.training.samplers import (
    APC_RULES,
    IGNORE_INDEX,
    MAP_RULES,
    mask_atoms,
    sample_atom_pairs,
)

__all__ = ["MCRTPretrainer", "PRETRAIN_TASKS"]

#: The pre-training tasks of the paper.
PRETRAIN_TASKS = ("map", "apc", "cdp", "sep")


def sep_weights_from_frequencies(freq) -> np.ndarray:
    """SEP loss weights ``w = 1 / ln(1.1 + freq)`` of the 7 symmetry elements."""
    freq = np.asarray(freq, dtype=np.float64).reshape(7)
    return 1.0 / np.log(1.1 + freq)


class PretrainLabels:
    """Collate step: corrupt atoms for MAP and sample atom pairs for APC (picklable)."""

    def __init__(self, tasks, mask_rate: float, n_pairs: int, n_embeddings: int,
                 mask_rule: str = "bernoulli", pair_rule: str = "reference"):
        self.tasks = tuple(tasks)
        self.mask_rate = mask_rate
        self.n_pairs = n_pairs
        self.n_embeddings = n_embeddings
        self.mask_rule = mask_rule
        self.pair_rule = pair_rule

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        if "map" in self.tasks:
            corrupted, labels = mask_atoms(batch["atomic_numbers"], batch["atom_batch"], generator,
                                           rate=self.mask_rate, n_embeddings=self.n_embeddings,
                                           rule=self.mask_rule)
            B, N = batch["atom_mask"].shape
            grid = torch.full((B, N), IGNORE_INDEX, dtype=torch.long)
            grid[batch["atom_batch"], batch["atom_position"]] = labels
            batch["atomic_numbers"] = corrupted
            batch["map_labels"] = grid
        if "apc" in self.tasks:
            pairs, labels = sample_atom_pairs(batch["molecule_ids"], self.n_pairs, generator,
                                              rule=self.pair_rule)
            batch["atom_pairs"] = pairs
            batch["apc_labels"] = labels
        return batch


class _PretrainLoss:
    """Mixin: the multi-task pre-training loss; per-task metrics per epoch."""

    def __init__(self, *args, tasks=PRETRAIN_TASKS, loss_weights=None, sep_weights=None, **kw):
        super().__init__(*args, **kw)
        self.tasks = tasks
        self.loss_weights = loss_weights
        self.sep_weights = sep_weights

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        self._stats = defaultdict(lambda: [0.0, 0])

    def _add(self, key: str, value: float, weight: int) -> None:
        total = self._stats[key]
        total[0] += float(value) * weight
        total[1] += weight

    def on_epoch_end(self, net, **kwargs):
        for key, (total, count) in sorted(self._stats.items()):
            if count:
                self.history.record(key, total / count)
        super().on_epoch_end(net, **kwargs)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        X = X.data
        phase = "train" if training else "valid"
        weights = self.loss_weights or {}
        total = 0.0
        n = int(X["atom_mask"].shape[0])
        if "map" in self.tasks:
            labels = X["map_labels"].to(y_pred["map_logits"].device)
            logits = y_pred["map_logits"]
            chosen = labels != IGNORE_INDEX
            if chosen.any():  # a Bernoulli draw can choose no atom in a small batch
                loss = F.cross_entropy(logits[chosen], labels[chosen])
                acc = (logits.argmax(-1)[chosen] == labels[chosen]).float().mean()
                self._add(f"{phase}_map_loss", loss.item(), n)
                self._add(f"{phase}_map_acc", acc.item(), int(chosen.sum()))
                total = total + weights.get("map", 1.0) * loss
        if "apc" in self.tasks:
            labels = X["apc_labels"].to(y_pred["apc_logits"].device)
            valid = labels >= 0
            logits = y_pred["apc_logits"][valid]
            loss = F.binary_cross_entropy_with_logits(logits, labels[valid])
            acc = ((logits > 0).float() == labels[valid]).float().mean()
            self._add(f"{phase}_apc_loss", loss.item(), n)
            self._add(f"{phase}_apc_acc", acc.item(), int(valid.sum()))
            total = total + weights.get("apc", 1.0) * loss
        if "cdp" in self.tasks:
            target = X["density"].to(y_pred["cdp"].device)
            loss = F.mse_loss(y_pred["cdp"], target)
            self._add(f"{phase}_cdp_loss", loss.item(), n)
            self._add(f"{phase}_cdp_mae", (y_pred["cdp"] - target).abs().mean().item(), n)
            total = total + weights.get("cdp", 1.0) * loss
        if "sep" in self.tasks:
            target = X["symmetry_elements"].to(y_pred["sep_logits"].device)
            loss = weighted_bce_with_logits(y_pred["sep_logits"], target, self.sep_weights)
            acc = ((y_pred["sep_logits"] > 0).float() == target).float().mean()
            self._add(f"{phase}_sep_loss", loss.item(), n)
            self._add(f"{phase}_sep_acc", acc.item(), n)
            total = total + weights.get("sep", 1.0) * loss
        return total


class PretrainNet(_PretrainLoss, MCRTNet):
    """skorch net with the multi-task pre-training loss; per-task metrics per epoch."""


class AcceleratedPretrainNet(_PretrainLoss, AcceleratedMCRTNet):
    """:class:`PretrainNet` trained through Hugging Face ``accelerate``."""


class _ForwardAll(torch.nn.Module):
    """The network with the whole output dict (skorch's module)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, batch):
        return self.network(batch)


class MCRTPretrainer(BaseEstimator):
    """Self-supervised pre-training of MCRT on unlabelled structures.

    Tasks (all labels come from the structures, via ``MCRTFeaturizer(pretrain_labels=True)``):
    ``"map"`` masked atom prediction (each atom chosen with probability 0.15: 80 % mask
    token, 10 % random element, 10 % kept), ``"apc"`` atom-pair classification (same
    molecule or not; ``min(n_pairs // 2, #same, #different)`` distinct pairs of each
    kind per crystal), ``"cdp"`` crystal density (MSE), ``"sep"`` symmetry elements
    (7-way multi-hot, weighted BCE, w = 1/ln(1.1 + freq)). These are the reference's
    rules (:mod:`mcrt_sklearn.training.samplers`), except that the masked atoms are what the
    network sees (the reference's input is never masked).

    Parameters
    ----------
    tasks : sequence of str
        Subset of ``("map", "apc", "cdp", "sep")``.
    loss_weights : dict, optional
        Loss weight per task, e.g. ``{"map": 1, "apc": 1, "cdp": 0.5, "sep": 1}``
        (default 1 each).
    sep_weights : {"csd", "train"} or array of 7
        ``"csd"``: the reference weights (frequencies over the paper's 706k CSD
        crystals); ``"train"``: from the symmetry-element frequencies of ``X``.
    mask_rate : float
        MAP: probability of each atom to be chosen.
    mask_rule : {"bernoulli", "exact"}
        MAP: choose each atom independently (reference) or exactly ``round(mask_rate n)``
        atoms of each crystal, at least one (this package's earlier rule).
    n_pairs : int
        APC: at most ``n_pairs // 2`` pairs of each kind per crystal.
    pair_rule : {"reference", "independent"}
        APC: distinct pairs, as many of each kind (reference), or ``n_pairs // 2`` of
        each kind drawn with repetition (this package's earlier rule).
    checkpoint, trusted
        Continue pre-training from a checkpoint instead of a fresh network: a file, a
        published model's name (``"mcrt-pretrained"``) or an http(s) URL, resolved at
        ``fit``; ``trusted`` allows full unpickling of a file that needs it.
    shuffle_seed, resume_from, resume_every, num_workers
        As in :class:`~mcrt_sklearn.MCRTRegressor` (each worker draws its own MAP masks
        and APC pairs).
    hid_dim, num_blocks, num_heads, mlp_ratio, alignn_hidden_dim, alignn_num_conv, drop_rate, use_images, positional
        Architecture (reference config names).
    lr, weight_decay, betas, eps, param_groups, lr_mult, schedule, warmup, end_lr, decay_power, accumulate, gradient_clip, max_epochs, validation_fraction, early_stopping, patience, shuffle_atoms, pad_to, recalibrate_batchnorm, random_state, device, verbose, callbacks, accelerator
        As in :class:`~mcrt_sklearn.MCRTRegressor` (the best epoch is the one with the
        lowest validation loss).
    batch_size : int
        Crystals per optimizer step: the paper's 512, by accumulating ``accumulate``
        micro-batches of ``batch_size // accumulate``.

    Attributes
    ----------
    network_ : MCRT
        The pre-trained network (with its pre-training heads).
    history_ : skorch.History
        Per epoch: ``train_loss`` and, per task, ``train_<task>_loss`` plus
        ``train_map_acc``, ``train_apc_acc``, ``train_sep_acc`` and ``train_cdp_mae``
        (``valid_*`` likewise with a validation split).
    sep_weights_ : ndarray (7,)
        The SEP loss weights used.
    """

    def __init__(
        self,
        tasks=PRETRAIN_TASKS,
        loss_weights: dict | None = None,
        sep_weights="csd",
        mask_rate: float = 0.15,
        mask_rule: str = "bernoulli",
        n_pairs: int = 200,
        pair_rule: str = "reference",
        checkpoint: str | os.PathLike | None = None,
        trusted: bool = False,
        hid_dim: int = 768,
        num_blocks: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        alignn_hidden_dim: int = 256,
        alignn_num_conv: int = 4,
        drop_rate: float = 0.1,
        use_images: bool = True,
        positional: str = "relative",
        lr: float = 1e-4,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-8,
        param_groups: str = "reference",
        lr_mult: float = 1.0,
        schedule: str = "reference",
        warmup: float = 0.05,
        end_lr: float = 0.0,
        decay_power: float = 1.0,
        batch_size: int = 512,
        accumulate: int = 16,
        gradient_clip: float | None = 1.0,
        max_epochs: int = 50,
        validation_fraction: float | None = 0.1,
        early_stopping: bool = True,
        patience: int | None = None,
        shuffle_atoms: bool = True,
        pad_to: int | None = None,
        recalibrate_batchnorm: bool = False,
        random_state: int | None = None,
        device: str = "cpu",
        verbose: int = 0,
        callbacks: list | None = None,
        accelerator=None,
        shuffle_seed: int | None = None,
        resume_from: str | os.PathLike | None = None,
        resume_every: int | None = None,
        num_workers: int = 0,
    ):
        self.tasks = tasks
        self.loss_weights = loss_weights
        self.sep_weights = sep_weights
        self.mask_rate = mask_rate
        self.mask_rule = mask_rule
        self.n_pairs = n_pairs
        self.pair_rule = pair_rule
        self.checkpoint = checkpoint
        self.trusted = trusted
        self.hid_dim = hid_dim
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.alignn_hidden_dim = alignn_hidden_dim
        self.alignn_num_conv = alignn_num_conv
        self.drop_rate = drop_rate
        self.use_images = use_images
        self.positional = positional
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.param_groups = param_groups
        self.lr_mult = lr_mult
        self.schedule = schedule
        self.warmup = warmup
        self.end_lr = end_lr
        self.decay_power = decay_power
        self.batch_size = batch_size
        self.accumulate = accumulate
        self.gradient_clip = gradient_clip
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.shuffle_atoms = shuffle_atoms
        self.pad_to = pad_to
        self.recalibrate_batchnorm = recalibrate_batchnorm
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.shuffle_seed = shuffle_seed
        self.resume_from = resume_from
        self.resume_every = resume_every
        self.num_workers = num_workers

    def _resolve_sep_weights(self, X) -> np.ndarray:
        if isinstance(self.sep_weights, str):
            if self.sep_weights == "csd":
                return np.asarray(DEFAULT_SEP_WEIGHTS, dtype=np.float64)
            if self.sep_weights == "train":
                freq = np.mean([np.asarray(r.symmetry_elements, float) for r in X], axis=0)
                return sep_weights_from_frequencies(freq)
            raise ValueError(f"sep_weights must be 'csd', 'train' or 7 numbers, "
                             f"got {self.sep_weights!r}")
        return np.asarray(self.sep_weights, dtype=np.float64).reshape(7)

    def fit(self, X, y=None):
        """Pre-train on records carrying pre-training labels; ``y`` is ignored."""
        X = check_records(X, "MCRTPretrainer")
        tasks = tuple(self.tasks)
        unknown = set(tasks) - set(PRETRAIN_TASKS)
        if unknown or not tasks:
            raise ValueError(f"tasks must be a non-empty subset of {PRETRAIN_TASKS}, got {tasks}")
        unlabelled = [r.structure_id for r in X if not r.has_pretrain_labels or r.density is None]
        if unlabelled:
            raise ValueError(
                f"{len(unlabelled)} record(s) lack pre-training labels (e.g. {unlabelled[:3]}); "
                "featurise with MCRTFeaturizer(pretrain_labels=True)"
            )
        if self.mask_rule not in MAP_RULES:
            raise ValueError(f"mask_rule must be one of {MAP_RULES}, got {self.mask_rule!r}")
        if self.pair_rule not in APC_RULES:
            raise ValueError(f"pair_rule must be one of {APC_RULES}, got {self.pair_rule!r}")
        self.sep_weights_ = self._resolve_sep_weights(X)
        with seeded(self):
            network = build_network(self, tasks)
            X_train, y_train, train_split = split_validation(
                self, X, np.zeros(len(X), dtype=np.float32))
            require = bool(network.config.use_images)
            micro = check_accumulation(self)
            labels = PretrainLabels(tasks, self.mask_rate, self.n_pairs,
                                    network.GNN_embeddings.node_embedding.num_embeddings,
                                    self.mask_rule, self.pair_rule)
            net_class, placement = net_class_and_device(self, PretrainNet,
                                                        AcceleratedPretrainNet)
            self.net_ = net_class(
                module=_ForwardAll(network),
                criterion=torch.nn.Identity,
                recipe=recipe_of(self, len(X_train)),
                lr=self.lr,
                max_epochs=self.max_epochs,
                **train_iterator_params(self),
                iterator_train__collate_fn=CollateRecords(self.pad_to, self.shuffle_atoms,
                                                          require, self.random_state, labels,
                                                          micro_batch_size=micro),
                iterator_valid__collate_fn=CollateRecords(self.pad_to, False, require,
                                                          self.random_state, labels),
                train_split=train_split,
                callbacks=make_callbacks(self, train_split is not None),
                verbose=self.verbose,
                **placement,
                tasks=tasks,
                loss_weights=self.loss_weights,
                sep_weights=tuple(float(w) for w in self.sep_weights_),
            )
            fit_net(self, self.net_, X_train, y_train)
            if self.recalibrate_batchnorm:
                recalibrate_batchnorm(network, X_train, self.batch_size, module_device(network),
                                      self.pad_to, require)
        self.network_ = network.eval()
        self.history_ = self.net_.history
        self.training_provenance_ = {
            "origin": "pretrain", "estimator": type(self).__name__,
            "trained_on": {**data_summary(X), "validation_fraction": self.validation_fraction},
            "training": {"tasks": list(tasks), "epochs_run": len(self.history_),
                         "mask_rule": self.mask_rule, "pair_rule": self.pair_rule},
            "started_from": self.started_from_,
        }
        return self

    def save(self, path: str | os.PathLike) -> Path | None:
        """Write the pre-trained network as a checkpoint (safetensors weights + JSON:
        architecture, heads, provenance — what it was pre-trained on and how; loads
        without unpickling) that ``MCRTEncoder``/``MCRTRegressor(checkpoint=path)`` accept.

        Returns the path written; under a multi-process accelerator only the main process
        writes, and the others return None once it has."""
        check_is_fitted(self, "network_")
        return main_process_writes(self, lambda: save_checkpoint(
            self.network_, path, provenance=getattr(self, "training_provenance_", None)))
