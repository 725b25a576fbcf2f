"""MCRTFeaturizer: crystal → :class:`~mcrt_sklearn.featurizers.record.MCRTInput` (DESIGN §4).

A matminer ``BaseFeaturizer`` and scikit-learn transformer. Pure numpy (no torch):
distance matrix, neighbour-angle cosines, ALIGNN graph and line graph here
(:mod:`~mcrt_sklearn.featurizers.neighbors`), persistence images and pre-training
labels from their own modules, batch behaviour (joblib, cache, errors) from
:mod:`~mcrt_sklearn.featurizers.batch`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matminer.featurizers.base import BaseFeaturizer
from pymatgen.core import Structure
from sklearn.base import TransformerMixin

from mcrt_sklearn.featurizers.batch import BatchFeaturizerMixin
from mcrt_sklearn.featurizers.neighbors import (
    ANGLE_CONVENTIONS,
    angle_features,
    knn_graph,
    line_graph,
    periodic_distances,
)
from mcrt_sklearn.featurizers.record import MAX_ATOMS, MCRTInput

__all__ = ["MCRTFeaturizer", "featurize_structure"]

#: Parameters that only steer how a batch is run (not part of the cache key).
_RUN_PARAMS = ("n_jobs", "cache_dir", "ignore_errors", "return_errors", "progress")
#: compute_persistence_image's argument names -> MCRTFeaturizer's parameter names.
_IMAGE_PARAMS = {"pixels": "image_pixels", "spread": "image_spread", "box": "image_box",
                 "mode": "image_mode", "supercell": "supercell"}
#: Bump when the record layout or an algorithm changes (part of the cache key).
_NAMESPACE = "mcrt-input"


class MCRTFeaturizer(BatchFeaturizerMixin, BaseFeaturizer, TransformerMixin):
    """Featurise crystals into MCRT input records (DESIGN §4).

    For each crystal (a pymatgen ``Structure`` or a CIF / POSCAR / extended-XYZ
    path; at most 1023 atoms) the record holds: atomic numbers in pymatgen's site
    order, the periodic distance matrix, 28 neighbour-angle cosines per atom, the
    ALIGNN k-nearest-neighbour graph (bond vectors) and its line graph (bond-angle
    cosines), optionally the two persistence images with their four scalars (§5) and
    the self-supervised pre-training labels.

    The defaults reproduce the published MCRT reference exactly (use them with the
    published weights); ``angle_convention="periodic"`` and ``supercell="cube"`` are
    the physically meaningful alternatives (invariant to translating atoms across
    the cell boundary), which a model must be trained with.

    Parameters
    ----------
    n_neighbors : int, default 12
        k of the ALIGNN k-nearest-neighbour graph (ties at the k-th distance kept).
    cutoff : float, default 8.0
        Initial neighbour-search radius (Å), enlarged to ``max(a, b, c, 2*cutoff)``
        when an atom has fewer than ``n_neighbors`` neighbours.
    angle_neighbors : int, default 8
        Neighbours per atom whose pairwise angles are described (8 → 28 cosines).
    angle_convention : {"reference", "periodic"}, default "reference"
        ``"reference"``: neighbour vectors from in-cell Cartesian coordinates, as the
        reference code (and the published weights) did; ``"periodic"``: minimum-image
        vectors.
    images : bool, default True
        Compute the persistence images (slow: tens of seconds per crystal in exact
        mode). With False, ``record.image`` is None.
    image_pixels, image_spread, image_box, image_mode, supercell
        Persistence-image settings (§5), passed to
        ``persistence.compute_persistence_image``.
    pretrain_labels : bool, default False
        Also compute molecule ids, symmetry elements, density and space group.
    symprec : float, default 0.1
        Symmetry tolerance of the pre-training labels.
    n_jobs : int or None, default 1
        Structures featurised in parallel (joblib; -1 = all cores).
    cache_dir : str or path, optional
        On-disk cache (content-addressed, atomic writes; see
        :mod:`mcrt_sklearn.featurizers.batch`).
    ignore_errors : bool, default False
        In ``transform``: skip failed structures (recorded in ``errors_``, logged)
        instead of raising ``FeaturizationError``.
    return_errors : bool, default False
        In ``transform``: return ``(records, errors)``, ``records`` aligned with the
        input with None for failures, ``errors`` a list of ``(id, error)``.
    progress : bool, default False
        tqdm progress bar in ``transform``.

    Attributes
    ----------
    errors_, failed_indices_, ids_, cache_hits_
        Set by ``transform`` (see :class:`~mcrt_sklearn.featurizers.batch.BatchFeaturizerMixin`).

    Examples
    --------
    >>> fz = MCRTFeaturizer(images=False)
    >>> [record] = fz.featurize("5A_CSP_1.cif")          # doctest: +SKIP
    >>> records = fz.transform(list_of_cifs)             # doctest: +SKIP
    """

    _max_atoms = MAX_ATOMS

    _cache_namespace = _NAMESPACE

    @property
    def _cache_components(self) -> tuple[str, ...]:
        # the images' algorithms count only when the records hold images
        from mcrt_sklearn.featurizers.persistence import image_components

        return ("mcrt-records", *(image_components(self.image_mode) if self.images else ()))

    def __init__(
        self,
        n_neighbors: int = 12,
        cutoff: float = 8.0,
        angle_neighbors: int = 8,
        angle_convention: str = "reference",
        images: bool = True,
        image_pixels: int = 50,
        image_spread: float = 0.15,
        image_box: float = 100.0,
        image_mode: str = "exact",
        supercell: str = "reference",
        pretrain_labels: bool = False,
        symprec: float = 0.1,
        n_jobs: int | None = 1,
        cache_dir=None,
        ignore_errors: bool = False,
        return_errors: bool = False,
        progress: bool = False,
    ):
        self.n_neighbors = n_neighbors
        self.cutoff = cutoff
        self.angle_neighbors = angle_neighbors
        self.angle_convention = angle_convention
        self.images = images
        self.image_pixels = image_pixels
        self.image_spread = image_spread
        self.image_box = image_box
        self.image_mode = image_mode
        self.supercell = supercell
        self.pretrain_labels = pretrain_labels
        self.symprec = symprec
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir
        self.ignore_errors = ignore_errors
        self.return_errors = return_errors
        self.progress = progress

    # ------------------------------------------------------------ matminer API

    def featurize(self, structure_or_path) -> list[MCRTInput]:
        """Featurise one crystal.

        Parameters
        ----------
        structure_or_path : Structure or path

        Returns
        -------
        [MCRTInput]
            A one-element list (matminer convention; label ``"mcrt_input"``).

        Raises
        ------
        StructureError subclass
            The typed error itself, naming the structure (unreadable, disordered,
            more than 1023 atoms → ``TooManyAtomsError``, overlapping atoms, …).
        FeaturizationError
            Any other failure, naming the structure.
        ValueError
            A bad parameter (checked before the structure is read).
        """
        return [self.featurize_one(structure_or_path)]

    def feature_labels(self) -> list[str]:
        return ["mcrt_input"]

    def citations(self) -> list[str]:
        return [
            "@misc{mcrt,\n"
            "  title = {MCRT: A Universal Foundation Model for Transfer Learning in "
            "Molecular Crystals},\n"
            "  author = {Feng, Minggao and others},\n"
            "  howpublished = {\\url{https://github.com/fmggggg/MCRT}}\n}",
            "@article{choudhary2021alignn,\n"
            "  title = {Atomistic Line Graph Neural Network for improved materials "
            "property predictions},\n"
            "  author = {Choudhary, Kamal and DeCost, Brian},\n"
            "  journal = {npj Computational Materials}, volume = {7}, pages = {185},\n"
            "  year = {2021}\n}",
            "@article{adams2017persistence,\n"
            "  title = {Persistence Images: A Stable Vector Representation of "
            "Persistent Homology},\n"
            "  author = {Adams, Henry and others},\n"
            "  journal = {Journal of Machine Learning Research}, volume = {18},\n"
            "  number = {8}, pages = {1--35}, year = {2017}\n}",
        ]

    def implementors(self) -> list[str]:
        return ["mcrt_sklearn developers"]

    # --------------------------------------------------------------- sklearn

    def transform(self, X, ids=None):
        """Featurise a list of Structures / structure files.

        Parameters
        ----------
        X : list of (Structure or path), or a single one
        ids : list of str, optional
            Ids for the records and errors (default: file stem / index).

        Returns
        -------
        list of MCRTInput
            In input order. Failures: see ``ignore_errors`` / ``return_errors``;
            by default a :class:`~mcrt_sklearn.errors.FeaturizationError` listing
            every failed structure is raised after all were attempted. Bad
            parameters raise ``ValueError`` first (as in ``featurize`` and
            ``featurize_many`` / ``featurize_dataframe``).
        """
        return super().transform(X, ids=ids)

    # -------------------------------------------------------------- internals

    def _check_params(self) -> None:
        """Validate the parameters; run by every entry point (see ``BatchFeaturizerMixin``)."""
        if self.angle_convention not in ANGLE_CONVENTIONS:
            raise ValueError(
                f"angle_convention must be one of {ANGLE_CONVENTIONS}, got {self.angle_convention!r}"
            )
        for name in ("n_neighbors", "angle_neighbors"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff!r}")
        if self.images:
            from mcrt_sklearn.featurizers.persistence import check_image_params

            try:
                check_image_params(self.image_pixels, self.image_spread, self.image_box,
                                   self.supercell, self.image_mode)
            except ValueError as err:  # name the featuriser's parameter, not the function's
                name, rest = str(err).split(" ", 1)
                raise ValueError(f"{_IMAGE_PARAMS.get(name, name)} {rest}") from None

    def _cache_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.get_params().items() if k not in _RUN_PARAMS}

    def _compute(self, structure: Structure, sid: str) -> MCRTInput:
        return featurize_structure(structure, sid, **self._cache_params())


def featurize_structure(
    structure: Structure,
    sid: str = "structure",
    *,
    n_neighbors: int = 12,
    cutoff: float = 8.0,
    angle_neighbors: int = 8,
    angle_convention: str = "reference",
    images: bool = True,
    image_pixels: int = 50,
    image_spread: float = 0.15,
    image_box: float = 100.0,
    image_mode: str = "exact",
    supercell: str = "reference",
    pretrain_labels: bool = False,
    symprec: float = 0.1,
) -> MCRTInput:
    """Build the :class:`MCRTInput` of one validated structure (no cache, no checks).

    See :class:`MCRTFeaturizer` for the parameters. Use the featuriser for input
    validation (``read_structure``), caching and batches.
    """
    distances, vectors = periodic_distances(structure)
    angles = angle_features(
        structure,
        n_neighbors=angle_neighbors,
        convention=angle_convention,
        distances=distances,
        vectors=vectors,
    )
    graph = knn_graph(structure, n_neighbors=n_neighbors, cutoff=cutoff, sid=sid)
    lg_index, lg_cos = line_graph(graph.edge_index, graph.edge_vectors)

    image = scalars = None
    if images:
        from mcrt_sklearn.featurizers.persistence import compute_persistence_image

        image, scalars = compute_persistence_image(
            structure,
            pixels=image_pixels,
            spread=image_spread,
            box=image_box,
            supercell=supercell,
            mode=image_mode,
        )
        image = np.asarray(image, dtype=np.float32)
        scalars = np.asarray(scalars, dtype=np.float32)

    labels: dict[str, Any] = {}
    if pretrain_labels:
        from mcrt_sklearn.featurizers.labels import compute_pretrain_labels

        labels = dict(compute_pretrain_labels(structure, symprec=symprec))

    record = MCRTInput(
        structure_id=str(sid),
        atomic_numbers=np.asarray([site.specie.Z for site in structure], dtype=np.int64),
        distance_matrix=distances.astype(np.float32),
        angle_features=angles.astype(np.float32),
        edge_index=graph.edge_index.astype(np.int64),
        edge_vectors=graph.edge_vectors.astype(np.float32),
        line_graph_index=lg_index.astype(np.int64),
        line_graph_cosines=lg_cos.astype(np.float32),
        cart_coords=np.asarray(structure.cart_coords, dtype=np.float32),
        image=image,
        image_scalars=scalars,
        molecule_ids=labels.get("molecule_ids"),
        symmetry_elements=labels.get("symmetry_elements"),
        density=labels.get("density"),
        spacegroup_number=labels.get("spacegroup_number"),
    )
    _check_finite(record)
    return record


def _check_finite(record: MCRTInput) -> None:
    """Never hand out a record with NaN/inf: fail loudly, naming the structure."""
    for name in (
        "distance_matrix",
        "angle_features",
        "edge_vectors",
        "line_graph_cosines",
        "image",
        "image_scalars",
    ):
        value = getattr(record, name)
        if value is not None and not np.all(np.isfinite(value)):
            raise ValueError(
                f"structure {record.structure_id!r}: non-finite values in {name} "
                "(please report this with the structure)"
            )
