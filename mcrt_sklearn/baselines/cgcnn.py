"""CGCNN baseline: crystal graphs, the torch network and the sklearn/skorch regressor.

Graph (as in CGCNN / Crystal Twins): for every atom its ``max_num_nbr`` (12) nearest
neighbours within ``radius`` (8 Å), periodic images included, sorted by distance.
Records keep the bond vectors (not only lengths) so that Crystal Twins can perturb
coordinates without rebuilding the neighbour list; the network expands the lengths
in Gaussians (``dmin`` 0, ``dmax`` = radius 8, ``step`` 0.2 → 41 features).

Atom features are CGCNN's 92-dim ``atom_init.json`` vectors, read from a path
(default: ``../shared/data/crystal_twins/atom_init.json`` or ``$MCRT_SKLEARN_DATA``);
the table is kept in the fitted estimator, so a pickled model needs no file.

Network (CGCNN, Xie & Grossman 2018): Linear(92 → F) embedding; ``n_conv`` conv
layers, each ``fc_full`` Linear(2F + 41 → 2F) on [h_i, h_j, e_ij], BatchNorm ``bn1``,
split into a sigmoid gate and a softplus core, product summed over neighbours,
BatchNorm ``bn2``, softplus(h_i + sum); mean pooling over atoms;
``conv_to_fc`` Linear(F → H) on softplus(pool), softplus; ``n_h - 1`` more hidden
layers; ``fc_out`` Linear(H → 1).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure
from torch import nn

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.baselines._skorch import GraphBatch, GraphRegressorBase
from mcrt_sklearn.featurizers.batch import structure_fingerprint
from mcrt_sklearn.structures import read_structure
from mcrt_sklearn.versions import version, versions

__all__ = [
    "CGCNNGraph",
    "build_cgcnn_graph",
    "build_cgcnn_graphs",
    "load_atom_init",
    "default_shared_data",
    "collate_cgcnn",
    "GaussianDistance",
    "CGCNNConv",
    "CGCNNEncoder",
    "CGCNNNet",
    "CGCNNRegressor",
]


# ----------------------------------------------------------------- shared data
def default_shared_data() -> Path:
    """``$MCRT_SKLEARN_DATA`` or the ``shared/data`` folder next to the checkout."""
    env = os.environ.get("MCRT_SKLEARN_DATA")
    if env:
        return Path(env)
    return shared_data_dir()


def _atom_init_path(path=None) -> Path:
    if path is None:
        return default_shared_data() / "crystal_twins" / "atom_init.json"
    return Path(path)


def load_atom_init(path=None) -> np.ndarray:
    """CGCNN atom features as a (101, 92) float32 table indexed by atomic number.

    Row 0 and elements absent from the file are NaN (used to detect unknown
    elements).

    Raises
    ------
    FileNotFoundError
        With the path tried and how to point to the file.
    """
    p = _atom_init_path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"CGCNN atom features not found at {p}. Pass atom_init='/path/to/atom_init.json' "
            "(CGCNN's 92-dim atom_init.json) or set $MCRT_SKLEARN_DATA to the folder "
            "holding crystal_twins/atom_init.json."
        )
    with open(p) as fh:
        data = json.load(fh)
    dim = len(next(iter(data.values())))
    zmax = max(int(k) for k in data)
    table = np.full((max(zmax, 100) + 1, dim), np.nan, dtype=np.float32)
    for k, v in data.items():
        table[int(k)] = np.asarray(v, dtype=np.float32)
    return table


# ---------------------------------------------------------------------- graphs
@dataclass
class CGCNNGraph:
    """Neighbour graph of one crystal (numpy only).

    Attributes
    ----------
    sid : str
        Structure id.
    atomic_numbers : (n,) int
    nbr_idx : (n, M) int — neighbour atom index (0 where padded)
    nbr_vec : (n, M, 3) float32 — bond vector r_j + image − r_i (Å)
    nbr_mask : (n, M) bool — False where an atom has fewer than M neighbours
    """

    sid: str
    atomic_numbers: np.ndarray
    nbr_idx: np.ndarray
    nbr_vec: np.ndarray
    nbr_mask: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])


def build_cgcnn_graph(
    structure, radius: float = 8.0, max_num_nbr: int = 12, sid: str | None = None
) -> CGCNNGraph:
    """The 12-nearest-neighbour graph of a crystal (vectorised; pymatgen + numpy).

    Parameters
    ----------
    structure : Structure or path
    radius : float
        Neighbour search radius (Å).
    max_num_nbr : int
        Neighbours kept per atom (the nearest ones).
    sid : str, optional
        Id for errors and the record.
    """
    sid, s = read_structure(structure, sid)
    n = len(s)
    center, neighbor, images, dist = s.get_neighbor_list(r=float(radius))
    coords = s.cart_coords
    vec = coords[neighbor] + images @ s.lattice.matrix - coords[center]
    order = np.lexsort((dist, center))
    center, neighbor, vec = center[order], neighbor[order], vec[order]
    counts = np.bincount(center, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(center)) - starts[center]
    keep = rank < max_num_nbr
    nbr_idx = np.zeros((n, max_num_nbr), dtype=np.int64)
    nbr_vec = np.zeros((n, max_num_nbr, 3), dtype=np.float32)
    nbr_mask = np.zeros((n, max_num_nbr), dtype=bool)
    c, r = center[keep], rank[keep]
    nbr_idx[c, r] = neighbor[keep]
    nbr_vec[c, r] = vec[keep]
    nbr_mask[c, r] = True
    if not nbr_mask.any():
        from mcrt_sklearn.errors import StructureError

        raise StructureError(sid, f"no neighbours within {radius} Å", "check the cell (Å expected)")
    return CGCNNGraph(
        sid=sid,
        atomic_numbers=np.asarray(s.atomic_numbers, dtype=np.int64),
        nbr_idx=nbr_idx,
        nbr_vec=nbr_vec,
        nbr_mask=nbr_mask,
    )


#: Version of the graph construction (``versions.VERSIONS["cgcnn-graph"]``), part of the
#: cache key of cached graphs.
GRAPH_VERSION = version("cgcnn-graph")


def _cached_graph(structure, sid, radius, max_num_nbr, fingerprint, versions):
    """:func:`build_cgcnn_graph` as memoised by joblib; ``structure`` and ``sid`` are not
    hashed (the content fingerprint stands for the structure)."""
    return build_cgcnn_graph(structure, radius, max_num_nbr, sid)


def build_cgcnn_graphs(
    X, radius: float = 8.0, max_num_nbr: int = 12, cache=None, n_jobs: int = 1
) -> list[CGCNNGraph]:
    """Graphs of many crystals; records already in X are passed through.

    Parameters
    ----------
    X : iterable of Structure, path or CGCNNGraph
    radius, max_num_nbr
        As in :func:`build_cgcnn_graph`.
    cache : joblib.Memory, str or None
        Optional on-disk cache, one entry per crystal and settings. The key is the
        crystal's content (:func:`~mcrt_sklearn.featurizers.batch.structure_fingerprint`),
        not the file name or the Python object: pymatgen objects change their pickled
        state as cached properties are computed (``Lattice.volume``), so hashing the
        object itself missed on the second call with the same Structure, and a path
        key would outlive an edited file. The same crystal under another id is a hit
        and gets the id asked for.
    n_jobs : int
        joblib workers.

    Returns
    -------
    list of CGCNNGraph
        In input order.
    """
    items = list(X)
    build = None
    if cache is not None:
        from joblib import Memory

        memory = cache if isinstance(cache, Memory) else Memory(str(cache), verbose=0)
        build = memory.cache(_cached_graph, ignore=["structure", "sid"])

    def one(i, x):
        if isinstance(x, CGCNNGraph):
            return x
        sid = f"structure_{i}" if isinstance(x, Structure) and not x.properties.get("id") else None
        if build is None:
            return build_cgcnn_graph(x, radius, max_num_nbr, sid)
        sid, s = read_structure(x, sid)
        graph = build(s, sid, float(radius), int(max_num_nbr), structure_fingerprint(s),
                      versions("structure-fingerprint", "cgcnn-graph"))
        return graph if graph.sid == sid else replace(graph, sid=sid)

    if n_jobs == 1 or len(items) < 2:
        return [one(i, x) for i, x in enumerate(items)]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(one)(i, x) for i, x in enumerate(items))


def collate_cgcnn(batch, atom_table: np.ndarray):
    """[(CGCNNGraph, y), …] → (GraphBatch, y tensor) for :class:`CGCNNNet`."""
    graphs = [b[0] for b in batch]
    y = torch.tensor([float(b[1]) for b in batch], dtype=torch.float32)
    z = np.concatenate([g.atomic_numbers for g in graphs])
    if z.max() >= atom_table.shape[0] or np.isnan(atom_table[z]).any():
        bad = sorted({int(v) for v in z if v >= atom_table.shape[0] or np.isnan(atom_table[v]).any()})
        raise ValueError(f"atom_init.json has no features for atomic number(s) {bad}")
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    nbr_idx = np.concatenate([g.nbr_idx + o for g, o in zip(graphs, offsets, strict=True)])
    counts = torch.tensor([g.n_atoms for g in graphs], dtype=torch.long)
    X = GraphBatch(
        len(graphs),
        atom_fea=torch.from_numpy(atom_table[z]),
        nbr_idx=torch.from_numpy(nbr_idx),
        nbr_vec=torch.from_numpy(np.concatenate([g.nbr_vec for g in graphs])),
        nbr_mask=torch.from_numpy(np.concatenate([g.nbr_mask for g in graphs])),
        crystal_atoms=counts,
    )
    return X, y


# ---------------------------------------------------------------------- torch
class GaussianDistance(nn.Module):
    """exp(−(d − μ_k)² / step²), μ_k = dmin, dmin + step, …, dmax (41 for 0–8 Å, 0.2)."""

    def __init__(self, dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2):
        super().__init__()
        n = int(round((dmax - dmin) / step)) + 1
        self.register_buffer("centers", dmin + step * torch.arange(n, dtype=torch.float32),
                             persistent=False)
        self.var = float(step)

    @property
    def n_features(self) -> int:
        return int(self.centers.shape[0])

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((d.unsqueeze(-1) - self.centers) ** 2) / self.var**2)


class CGCNNConv(nn.Module):
    """One CGCNN convolution (gated sum over the M neighbours)."""

    def __init__(self, atom_fea_len: int = 64, nbr_fea_len: int = 41):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def forward(self, h, nbr_fea, nbr_idx, nbr_mask):
        n, m = nbr_idx.shape
        f = self.atom_fea_len
        pair = torch.cat([h.unsqueeze(1).expand(n, m, f), h[nbr_idx], nbr_fea], dim=2)
        gated = self.bn1(self.fc_full(pair).view(n * m, 2 * f)).view(n, m, 2 * f)
        gate, core = gated.chunk(2, dim=2)
        msg = torch.sigmoid(gate) * nn.functional.softplus(core)
        msg = msg * nbr_mask.unsqueeze(-1).to(msg.dtype)
        return nn.functional.softplus(h + self.bn2(msg.sum(dim=1)))


def mean_pool(h: torch.Tensor, crystal_atoms: torch.Tensor) -> torch.Tensor:
    """Mean of atom rows per crystal (rows are grouped crystal by crystal)."""
    b = crystal_atoms.shape[0]
    index = torch.repeat_interleave(torch.arange(b, device=h.device), crystal_atoms)
    out = torch.zeros(b, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, index, h)
    return out / crystal_atoms.to(h.dtype).unsqueeze(1)


class CGCNNEncoder(nn.Module):
    """Embedding + convolutions + pooling + ``conv_to_fc``: crystal → (H,) vector.

    State-dict names (``embedding``, ``convs.{i}.fc_full/bn1/bn2``, ``conv_to_fc``)
    are those of the published Crystal Twins encoder.
    """

    def __init__(
        self,
        orig_atom_fea_len: int = 92,
        atom_fea_len: int = 64,
        n_conv: int = 3,
        h_fea_len: int = 128,
        dmin: float = 0.0,
        dmax: float = 8.0,
        step: float = 0.2,
    ):
        super().__init__()
        self.gdf = GaussianDistance(dmin, dmax, step)
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList(
            [CGCNNConv(atom_fea_len, self.gdf.n_features) for _ in range(n_conv)]
        )
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)

    def forward(self, atom_fea, nbr_idx, nbr_vec, nbr_mask, crystal_atoms, edge_keep=None):
        nbr_fea = self.gdf(torch.linalg.vector_norm(nbr_vec, dim=-1))
        if edge_keep is not None:
            nbr_fea = nbr_fea * edge_keep.unsqueeze(-1).to(nbr_fea.dtype)
        h = self.embedding(atom_fea)
        for conv in self.convs:
            h = conv(h, nbr_fea, nbr_idx, nbr_mask)
        crys = mean_pool(h, crystal_atoms)
        return nn.functional.softplus(self.conv_to_fc(nn.functional.softplus(crys)))


class CGCNNNet(nn.Module):
    """CGCNN regressor network: :class:`CGCNNEncoder` + hidden layers + ``fc_out``."""

    def __init__(
        self,
        orig_atom_fea_len: int = 92,
        atom_fea_len: int = 64,
        n_conv: int = 5,
        h_fea_len: int = 128,
        n_h: int = 1,
        dmin: float = 0.0,
        dmax: float = 8.0,
        step: float = 0.2,
    ):
        super().__init__()
        self.encoder = CGCNNEncoder(
            orig_atom_fea_len, atom_fea_len, n_conv, h_fea_len, dmin, dmax, step
        )
        self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
        self.fc_out = nn.Linear(h_fea_len, 1)

    def forward(self, atom_fea, nbr_idx, nbr_vec, nbr_mask, crystal_atoms):
        x = self.encoder(atom_fea, nbr_idx, nbr_vec, nbr_mask, crystal_atoms)
        for fc in self.fcs:
            x = nn.functional.softplus(fc(x))
        return self.fc_out(x).squeeze(-1)


# ------------------------------------------------------------------ estimator
class CGCNNRegressor(GraphRegressorBase):
    """CGCNN (Xie & Grossman 2018) as a scikit-learn regressor, trained with skorch.

    Parameters
    ----------
    n_conv : int
        Convolution layers (MCRT paper: 5).
    atom_fea_len : int
        Hidden atom features (64).
    h_fea_len : int
        Width of the hidden layer after pooling (128).
    n_h : int
        Hidden layers after pooling (1).
    radius, max_num_nbr : float, int
        Graph: ``max_num_nbr`` nearest neighbours within ``radius`` Å (8, 12).
    dmin, step : float
        Gaussian distance expansion (0, 0.2; dmax = radius).
    atom_init : str or Path, optional
        CGCNN ``atom_init.json``; default the shared-data copy.
    max_epochs, batch_size, lr, weight_decay, warmup : training (100, 32, 1e-3, 0, 5 %)
        AdamW with linear warm-up over ``warmup`` of the steps, then linear decay.
    validation_fraction : float, optional
        Hold out this fraction for skorch's validation loss and keep the weights of the
        epoch with the lowest one (``best_epoch_``, 1-based); None: train on all, keep
        the last epoch.
    patience : int, optional
        Early stopping on the validation loss (needs ``validation_fraction``).
    random_state : int, optional
        Seeds python, numpy and torch (init and batch order).
    device : str
        "cpu" or "cuda".
    progress_bar, verbose : bool, int
        tqdm progress bar per epoch; skorch's epoch table.
    graph_cache : joblib.Memory or str, optional
        On-disk cache of the graphs.
    n_jobs : int
        Workers for graph building.

    X may hold Structures, CIF paths or :class:`CGCNNGraph` records (see
    :meth:`make_graphs`), so that graphs can be built once and shared by CV folds.
    """

    def __init__(
        self,
        n_conv: int = 5,
        atom_fea_len: int = 64,
        h_fea_len: int = 128,
        n_h: int = 1,
        radius: float = 8.0,
        max_num_nbr: int = 12,
        dmin: float = 0.0,
        step: float = 0.2,
        atom_init=None,
        max_epochs: int = 100,
        batch_size: int = 32,
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
        self.n_conv = n_conv
        self.atom_fea_len = atom_fea_len
        self.h_fea_len = h_fea_len
        self.n_h = n_h
        self.radius = radius
        self.max_num_nbr = max_num_nbr
        self.dmin = dmin
        self.step = step
        self.atom_init = atom_init
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
        self.graph_cache = graph_cache
        self.n_jobs = n_jobs

    def make_graphs(self, X) -> list[CGCNNGraph]:
        """Graph records of X with this estimator's graph settings."""
        return build_cgcnn_graphs(
            X, self.radius, self.max_num_nbr, cache=self.graph_cache, n_jobs=self.n_jobs
        )

    def _records(self, X):
        graphs = self.make_graphs(X)
        for g in graphs:
            if g.nbr_idx.shape[1] != self.max_num_nbr:
                raise ValueError(
                    f"graph {g.sid!r} has {g.nbr_idx.shape[1]} neighbours per atom, "
                    f"the estimator expects max_num_nbr={self.max_num_nbr}"
                )
        return graphs

    def _fit_setup(self, X):
        self.atom_table_ = load_atom_init(self.atom_init)

    def _collate_fn(self):
        return partial(collate_cgcnn, atom_table=self.atom_table_)

    def _make_module(self):
        return CGCNNNet(
            orig_atom_fea_len=self.atom_table_.shape[1],
            atom_fea_len=self.atom_fea_len,
            n_conv=self.n_conv,
            h_fea_len=self.h_fea_len,
            n_h=self.n_h,
            dmin=self.dmin,
            dmax=self.radius,
            step=self.step,
        )

    def _save_extra(self):
        return {"atom_table": torch.from_numpy(self.atom_table_)}

    def _load_extra(self, extra):
        self.atom_table_ = extra["atom_table"].numpy()
