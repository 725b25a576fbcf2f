"""ALIGNN baseline: the ``alignn`` package's pure-PyTorch model behind a sklearn estimator.

Uses :class:`alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure` (DGL-free) and
alignn's own graph construction :func:`alignn.torch_graph_builder.build_pure_torch_graph`
(12 nearest neighbours within 8 Å, line graph of bond pairs, CGCNN atom features
from jarvis-tools). Nothing of ALIGNN is re-implemented here: this module converts
pymatgen Structures to jarvis ``Atoms``, batches alignn's graphs and trains the model
with skorch. The force-field parts of the atomwise model (gradients, penalties, ZBL,
per-atom energy scaling) are switched off: it predicts one property per crystal, the
mean-pooled readout of the original ALIGNN.

Requires ``pip install alignn`` (pulls jarvis-tools and pydantic; no DGL needed).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from pymatgen.core import Structure
from torch import nn

from mcrt_sklearn.baselines._skorch import GraphBatch, GraphRegressorBase
from mcrt_sklearn.structures import read_structure

__all__ = ["ALIGNNRegressor", "ALIGNNGraph", "ALIGNNNet", "build_alignn_graph",
           "collate_alignn", "alignn_config"]


def _require_alignn():
    try:
        from alignn import torch_graph_builder  # noqa: F401
        from alignn.models import alignn_atomwise_pure  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ALIGNNRegressor needs the 'alignn' package (its pure-PyTorch model): "
            "pip install 'mcrt_sklearn[baselines]' or pip install alignn"
        ) from exc


class ALIGNNGraph:
    """alignn's (graph, line graph) pair of one crystal, with its id."""

    def __init__(self, sid: str, g, lg, cutoff: float, max_neighbors: int, atom_features: str,
                 atomic_numbers=None):
        self.sid = sid
        self.atomic_numbers = None if atomic_numbers is None else np.asarray(atomic_numbers)
        self.g = g
        self.lg = lg
        self.settings = (float(cutoff), int(max_neighbors), str(atom_features))


def build_alignn_graph(structure, cutoff: float = 8.0, max_neighbors: int = 12,
                       atom_features: str = "cgcnn", sid: str | None = None) -> ALIGNNGraph:
    """alignn's pure-torch graph of a crystal (Structure or path)."""
    _require_alignn()
    from alignn.torch_graph_builder import build_pure_torch_graph
    from pymatgen.io.jarvis import JarvisAtomsAdaptor

    sid, s = read_structure(structure, sid)
    atoms = JarvisAtomsAdaptor.get_atoms(s)
    with torch.no_grad():
        g, lg = build_pure_torch_graph(
            atoms=atoms,
            two_body_cutoff=float(cutoff),
            max_neighbors=int(max_neighbors),
            atom_features=atom_features,
            use_matscipy_topology=False,
            compute_line_graph=True,
        )
    if g.num_edges == 0:
        from mcrt_sklearn.errors import StructureError

        raise StructureError(sid, f"no neighbours within {cutoff} Å", "check the cell (Å expected)")
    return ALIGNNGraph(sid, g, lg, cutoff, max_neighbors, atom_features, s.atomic_numbers)


def collate_alignn(batch):
    """[(ALIGNNGraph, y), …] → (GraphBatch(g=…, lg=…), y) using alignn's batching."""
    from alignn.torch_graph_builder import batch_torch_graph_pairs

    g, lg = batch_torch_graph_pairs([(b[0].g, b[0].lg) for b in batch])
    y = torch.tensor([float(b[1]) for b in batch], dtype=torch.float32)
    return GraphBatch(len(batch), g=g, lg=lg), y


def alignn_config(**kw):
    """A property-prediction :class:`ALIGNNAtomWisePureConfig` (no forces/penalties)."""
    _require_alignn()
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePureConfig

    base = dict(
        name="alignn_atomwise_pure",
        output_features=1,
        calculate_gradient=False,
        gradwise_weight=0.0,
        stresswise_weight=0.0,
        atomwise_weight=0.0,
        atomwise_output_features=0,
        energy_mult_natoms=False,
        use_penalty=False,
        use_zbl=False,
        use_cutoff_function=False,
    )
    base.update(kw)
    return ALIGNNAtomWisePureConfig(**base)


class ALIGNNNet(nn.Module):
    """Thin module: ``alignn`` model → (batch,) predictions."""

    def __init__(self, **config):
        super().__init__()
        from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure

        self.alignn = ALIGNNAtomWisePure(alignn_config(**config))

    def forward(self, g, lg):
        return self.alignn((g, lg, None))["out"].reshape(-1)


class ALIGNNRegressor(GraphRegressorBase):
    """ALIGNN (Choudhary & DeCost 2021), from the ``alignn`` package, as a sklearn regressor.

    Parameters
    ----------
    alignn_layers, gcn_layers : int
        ALIGNN (graph + line graph) and plain gated-GCN layers (MCRT paper: 4, 4).
    hidden_features : int
        Hidden width (256).
    embedding_features, edge_input_features, triplet_input_features : int
        alignn's embedding width and RBF sizes (64, 80, 40: alignn defaults).
    cutoff, max_neighbors : float, int
        alignn graph: ``max_neighbors`` nearest within ``cutoff`` Å (8, 12).
    atom_features : str
        jarvis atom feature set ("cgcnn": 92-dim, as CGCNN).
    max_epochs, batch_size, lr, weight_decay, warmup
        Training (100, 32, 1e-3, 1e-5, 5 %): AdamW, linear warm-up then decay.
    validation_fraction, patience, random_state, device, progress_bar, verbose, n_jobs
        As :class:`~mcrt_sklearn.baselines.CGCNNRegressor`.

    X holds Structures, CIF paths or :class:`ALIGNNGraph` records (:meth:`make_graphs`).
    """

    def __init__(
        self,
        alignn_layers: int = 4,
        gcn_layers: int = 4,
        hidden_features: int = 256,
        embedding_features: int = 64,
        edge_input_features: int = 80,
        triplet_input_features: int = 40,
        cutoff: float = 8.0,
        max_neighbors: int = 12,
        atom_features: str = "cgcnn",
        max_epochs: int = 100,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        warmup: float = 0.05,
        validation_fraction=None,
        patience=None,
        random_state=None,
        device: str = "cpu",
        progress_bar: bool = False,
        verbose: int = 0,
        n_jobs: int = 1,
    ):
        self.alignn_layers = alignn_layers
        self.gcn_layers = gcn_layers
        self.hidden_features = hidden_features
        self.embedding_features = embedding_features
        self.edge_input_features = edge_input_features
        self.triplet_input_features = triplet_input_features
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors
        self.atom_features = atom_features
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress_bar = progress_bar
        self.verbose = verbose
        self.n_jobs = n_jobs

    def make_graphs(self, X) -> list[ALIGNNGraph]:
        """alignn graphs of X (records already in X are checked and passed through)."""
        _require_alignn()
        want = (float(self.cutoff), int(self.max_neighbors), str(self.atom_features))
        items = list(X)

        def one(i, x):
            if isinstance(x, ALIGNNGraph):
                if x.settings != want:
                    raise ValueError(
                        f"graph {x.sid!r} was built with (cutoff, max_neighbors, "
                        f"atom_features)={x.settings}, the estimator uses {want}"
                    )
                return x
            sid = f"structure_{i}" if isinstance(x, Structure) and not x.properties.get("id") else None
            return build_alignn_graph(x, *want, sid=sid)

        if self.n_jobs == 1 or len(items) < 2:
            return [one(i, x) for i, x in enumerate(items)]
        from joblib import Parallel, delayed

        return Parallel(n_jobs=self.n_jobs)(delayed(one)(i, x) for i, x in enumerate(items))

    _records = make_graphs

    def _collate_fn(self):
        return partial(collate_alignn)

    def _config(self) -> dict:
        return dict(
            alignn_layers=self.alignn_layers,
            gcn_layers=self.gcn_layers,
            hidden_features=self.hidden_features,
            embedding_features=self.embedding_features,
            edge_input_features=self.edge_input_features,
            triplet_input_features=self.triplet_input_features,
            atom_input_features=92 if self.atom_features == "cgcnn" else self._n_atom_features(),
        )

    def _n_atom_features(self) -> int:
        from jarvis.core.specie import get_node_attributes

        return len(get_node_attributes("C", atom_features=self.atom_features))

    def _make_module(self):
        _require_alignn()
        return ALIGNNNet(**self._config())
