"""The MCRT input record: everything the network needs about one crystal.

Records are plain frozen dataclasses of numpy arrays: picklable, compact (float32),
and ``dataclasses.replace``-able, so a user can attach persistence images computed
elsewhere::

    rec = dataclasses.replace(rec, image=img, image_scalars=scalars)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Number of neighbour-angle cosines per atom (pairs of the first 8 neighbours).
N_ANGLE_FEATURES = 28
#: Value marking a missing angle cosine (reference convention).
MISSING_ANGLE = -100.0
#: Largest number of atoms the reference distance projector accepts.
MAX_ATOMS = 1023


@dataclass(frozen=True, eq=False)
class MCRTInput:
    """Featurised crystal, as produced by :class:`~mcrt_sklearn.MCRTFeaturizer`.

    Attributes
    ----------
    structure_id : str
        Id (or path) of the structure.
    atomic_numbers : ndarray of int64, shape (n,)
        Atomic numbers in pymatgen's site order.
    distance_matrix : ndarray of float32, shape (n, n)
        Periodic minimum-image distances (Å).
    angle_features : ndarray of float32, shape (n, 28)
        Neighbour-angle cosines; ``-100`` marks a missing value.
    edge_index : ndarray of int64, shape (2, E)
        ALIGNN graph edges (source, destination), both directions stored.
    edge_vectors : ndarray of float32, shape (E, 3)
        Bond vectors (destination image minus source, Å).
    line_graph_index : ndarray of int64, shape (2, T)
        Line-graph edges (e1, e2): edge e1 ends where edge e2 starts.
    line_graph_cosines : ndarray of float32, shape (T,)
        Cosine of the bond angle between ``-r(e1)`` and ``r(e2)``.
    cart_coords : ndarray of float32, shape (n, 3), or None
        Cartesian coordinates (Å) in site order; used by the absolute positional
        embedding (``positional="absolute"``, MCRTa).
    image : ndarray of float32, shape (2, P, P), or None
        H1 and H2 persistence images.
    image_scalars : ndarray of float32, shape (4,), or None
        ``max_birth_1d, max_persistence_1d, max_birth_2d, max_persistence_2d``.
    molecule_ids : ndarray of int64, shape (n,), or None
        Molecule index of each atom (pre-training labels only).
    symmetry_elements : ndarray of float32, shape (7,), or None
        Multi-hot symmetry-element label (pre-training labels only).
    density : float or None
        Density in g/cm³ (pre-training labels only).
    spacegroup_number : int or None
        International space-group number (pre-training labels only).
    """

    structure_id: str
    atomic_numbers: np.ndarray
    distance_matrix: np.ndarray
    angle_features: np.ndarray
    edge_index: np.ndarray
    edge_vectors: np.ndarray
    line_graph_index: np.ndarray
    line_graph_cosines: np.ndarray
    cart_coords: np.ndarray | None = None
    image: np.ndarray | None = None
    image_scalars: np.ndarray | None = None
    molecule_ids: np.ndarray | None = None
    symmetry_elements: np.ndarray | None = None
    density: float | None = None
    spacegroup_number: int | None = None

    @property
    def n_atoms(self) -> int:
        """Number of atoms in the cell."""
        return int(self.atomic_numbers.shape[0])

    @property
    def has_image(self) -> bool:
        """Whether persistence images (and their scalars) are attached."""
        return self.image is not None and self.image_scalars is not None

    @property
    def has_pretrain_labels(self) -> bool:
        """Whether the self-supervised pre-training labels are attached."""
        return self.molecule_ids is not None and self.symmetry_elements is not None

    def __repr__(self) -> str:
        return (
            f"MCRTInput({self.structure_id!r}, n_atoms={self.n_atoms}, "
            f"n_edges={self.edge_index.shape[1]}, image={self.has_image}, "
            f"pretrain_labels={self.has_pretrain_labels})"
        )

    def nbytes(self) -> int:
        """Memory held by the arrays of this record, in bytes."""
        return sum(
            getattr(self, f.name).nbytes
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        )
