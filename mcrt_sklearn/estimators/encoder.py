"""[CLS] embeddings and attention maps of MCRT as a scikit-learn transformer."""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mcrt_sklearn.collate import batch_to, collate
from mcrt_sklearn.estimators._net import build_network, check_records, device_of, seeded
from mcrt_sklearn.model.precision import check_precision, inference_autocast
from mcrt_sklearn.model.rollout import cls_rollout

__all__ = ["MCRTEncoder"]

_OUTPUTS = {"cls": "cls_feats", "raw_cls": "raw_cls_feats", "atoms_mean": "graph_feats"}


class MCRTEncoder(TransformerMixin, BaseEstimator):
    """Embed crystals with an MCRT network: the [CLS] embedding, for t-SNE maps or as
    features for another model.

    Parameters
    ----------
    checkpoint : str or path, optional
        Network to load: a file (a reference Lightning checkpoint, or one of ours, e.g.
        from ``MCRTPretrainer.save``, ``MCRTRegressor.save`` or ``mcrt-sklearn models
        convert``), the name of a published model (``"mcrt-pretrained"``, see
        :func:`mcrt_sklearn.pretrained.list_models`) or an http(s) URL; names and URLs
        are downloaded once into the model cache, at ``fit``. ``None``: a randomly
        initialised network from the architecture parameters (seeded by
        ``random_state``) — useful only as a baseline.
    trusted : bool
        Allow full unpickling of a checkpoint that needs it (the published reference
        files do; a converted file never does).
    output : {"cls", "raw_cls", "atoms_mean"}
        ``"cls"``: pooler output tanh(dense(token 0)); ``"raw_cls"``: token 0 after the
        final LayerNorm; ``"atoms_mean"``: mean of the atom-token outputs.
    hid_dim, num_blocks, num_heads, mlp_ratio, alignn_hidden_dim, alignn_num_conv, drop_rate, use_images, positional
        Architecture when no checkpoint is given (reference config names).
    batch_size : int
        Crystals per forward pass.
    pad_to : int, optional
        Pad atom tokens to this length (1023 = reference); outputs are the same.
    random_state : int, optional
        Seed of a randomly initialised network.
    device : {"cpu", "cuda", "auto"}
        Where to run.
    precision : {"fp32", "bf16"}
        ``"bf16"``: the forward pass under bfloat16 autocast (faster on GPUs with bf16
        units; embeddings returned as float32). Attention is PyTorch's fused
        ``scaled_dot_product_attention`` in either case (the explicit softmax path only
        runs for :meth:`explain`). Its accuracy against fp32:
        ``benchmarks/inference_precision.py``.

    Attributes
    ----------
    network_ : MCRT
        The network, in eval mode.
    n_features_out_ : int
        Embedding size (``hid_dim``).
    started_from_ : dict or None
        The checkpoint asked for, the file it resolved to and its sha256.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        trusted: bool = False,
        output: str = "cls",
        hid_dim: int = 768,
        num_blocks: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        alignn_hidden_dim: int = 256,
        alignn_num_conv: int = 4,
        drop_rate: float = 0.1,
        use_images: bool = True,
        positional: str = "relative",
        batch_size: int = 32,
        pad_to: int | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        self.checkpoint = checkpoint
        self.trusted = trusted
        self.output = output
        self.hid_dim = hid_dim
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.alignn_hidden_dim = alignn_hidden_dim
        self.alignn_num_conv = alignn_num_conv
        self.drop_rate = drop_rate
        self.use_images = use_images
        self.positional = positional
        self.batch_size = batch_size
        self.pad_to = pad_to
        self.random_state = random_state
        self.device = device
        self.precision = precision

    def fit(self, X=None, y=None):
        """Load (or initialise) the network; X and y are not used."""
        if self.output not in _OUTPUTS:
            raise ValueError(f"output must be one of {sorted(_OUTPUTS)}, got {self.output!r}")
        check_precision(self.precision)
        with seeded(self):
            network = build_network(self, ())
        self.network_ = network.to(device_of(self)).eval()
        self.n_features_out_ = int(network.config.hid_dim)
        return self

    def _batches(self, X: list):
        """Collated batches of the (checked) records ``X``, on the estimator's device."""
        require = bool(self.network_.config.use_images)
        for start in range(0, len(X), self.batch_size):
            chunk = X[start : start + self.batch_size]
            batch = collate(chunk, pad_to=self.pad_to, require_images=require)
            yield chunk, batch_to(batch, device_of(self))

    def transform(self, X) -> np.ndarray:
        """Embeddings of records ``X``, shape (n, hid_dim), float32.

        No records (e.g. every structure of a batch failed featurisation and was
        skipped) give an empty (0, ``n_features_out_``) array.
        """
        check_is_fitted(self, "network_")
        X = check_records(X, "MCRTEncoder", allow_empty=True)
        if not X:
            return np.empty((0, self.n_features_out_), dtype=np.float32)
        key = _OUTPUTS[self.output]
        parts = []
        with torch.no_grad(), inference_autocast(self.precision, device_of(self)):
            for _, batch in self._batches(X):
                parts.append(self.network_.encode(batch)[key].float().cpu().numpy())
        return np.concatenate(parts, axis=0)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``mcrt_<output>_<i>`` for each embedding dimension."""
        check_is_fitted(self, "n_features_out_")
        return np.array([f"mcrt_{self.output}_{i}" for i in range(self.n_features_out_)],
                        dtype=object)

    def explain(self, X) -> list[dict]:
        """Attention-rollout scores of the [CLS] token for each record.

        Returns
        -------
        list of dict, one per record, with ``structure_id``, ``atoms`` (n,) — the score
        of each atom in the record's own order — and, with images, ``patches_1d`` and
        ``patches_2d`` (10, 10) laid out like the H1 / H2 persistence images, plus
        ``special`` (scores of [CLS], [SEP] and the four [SCL] tokens). Scores of one
        record sum to 1 over all tokens. No records give an empty list.
        """
        check_is_fitted(self, "network_")
        X = check_records(X, "MCRTEncoder", allow_empty=True)
        out = []
        if not X:
            return out
        for chunk, batch in self._batches(X):
            scores = cls_rollout(self.network_, batch)
            for i, rec in enumerate(chunk):
                item = {"structure_id": rec.structure_id,
                        "atoms": scores["atoms"][i, : rec.n_atoms].cpu().numpy(),
                        "special": scores["special"][i].cpu().numpy()}
                if "patches_1d" in scores:
                    item["patches_1d"] = scores["patches_1d"][i].cpu().numpy()
                    item["patches_2d"] = scores["patches_2d"][i].cpu().numpy()
                out.append(item)
        return out
