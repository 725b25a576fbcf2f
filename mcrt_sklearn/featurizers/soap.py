"""Averaged SOAP vectors of whole crystals (the RF/KRR baselines of the MCRT paper).

The SOAP power spectrum itself is computed by DScribe (the engine behind matminer's
``matminer.featurizers.site.SOAP``); this module only fixes the settings of the
MCRT paper's baselines (r_cut 4 Å, n_max 6, l_max 6), fixes the species list and
averages over the atoms of the cell.

Species list: unless ``species=`` is given, the featuriser uses the fixed list
:data:`ORGANIC_SPECIES` (H, C, N, O, F, P, S, Cl, Br, I), not the elements of the
training structures. The layout of the SOAP vector (which column holds which pair of
species) then never depends on the training data, so a cross-validation fold whose
test part holds an element that its training part lacks (a sulphur-containing
molecule among several S-free ones, say) is featurised like any other, instead of
failing with :class:`UnseenSpeciesError`, and every fold, grid point and refit of
the same crystals sees the same columns. This costs nothing in information: the
power spectrum blocks of the species a crystal holds are exactly those of a
featuriser fitted on just those species, and the blocks of absent species are
zero. The price is a longer vector (12 810 features at the paper's settings,
against 1 197 for C/H/N alone); pass ``species=[...]`` to shorten it when you know
every element you will featurise. A species-compressed SOAP would keep the vector
short but merges the densities of different elements, which is not the paper's
baseline. An element outside the list is never dropped: the structure is refused
with :class:`UnseenSpeciesError`, which names it and the element.

Averaging: ``average="outer"`` (default) — the per-atom power spectra are computed
first and then averaged. This is exactly the mean of matminer's per-site SOAP
vectors over all sites (what ``SiteStatsFingerprint(SOAP, stats=["mean"])`` would
give, at a fraction of the cost), and a linear kernel on it is the average of the
local-environment kernels, the usual "average kernel" of SOAP-based regression.
``"inner"`` averages the density-expansion coefficients before forming the power
spectrum; it is cheaper but mixes distinct environments non-linearly, so it is
offered only as an option.

No torch here (featurizers are pure numpy).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from matminer.featurizers.base import BaseFeaturizer
from pymatgen.core import Element

from mcrt_sklearn.domain import element_symbols, fitted_elements, warn_unseen
from mcrt_sklearn.errors import StructureError
from mcrt_sklearn.featurizers.batch import BatchFeaturizerMixin, resolve_errors

__all__ = ["ORGANIC_SPECIES", "SOAPFeaturizer", "UnseenSpeciesError"]

#: Elements of the default species list: those of organic molecular crystals
#: (every element of the shipped datasets is among them). B, Si, Se, metals etc.
#: need an explicit ``species=[...]``.
ORGANIC_SPECIES: tuple[str, ...] = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")


class UnseenSpeciesError(StructureError):
    """A structure holds an element outside the SOAP featuriser's species list."""

    default_hint = (
        "pass species=[...] listing every element you will featurise; the default "
        "list is mcrt_sklearn.featurizers.soap.ORGANIC_SPECIES"
    )


def _to_z(species) -> list[int]:
    out = set()
    for s in species:
        if isinstance(s, (int, np.integer)):
            out.add(int(s))
        else:
            out.add(Element(str(s)).Z)
    return sorted(out)


_DESCRIPTORS: dict = {}


def _soap_descriptor(species, r_cut, n_max, l_max, sigma, average, rbf):
    key = (tuple(species), float(r_cut), int(n_max), int(l_max), float(sigma), average, rbf)
    soap = _DESCRIPTORS.get(key)
    if soap is None:
        from dscribe.descriptors import SOAP

        if average not in ("outer", "inner"):
            raise ValueError(f"average must be 'outer' or 'inner', got {average!r}")
        soap = SOAP(species=list(species), r_cut=float(r_cut), n_max=int(n_max),
                    l_max=int(l_max), sigma=float(sigma), rbf=rbf, periodic=True,
                    average=average, sparse=False)
        if len(_DESCRIPTORS) > 16:  # a small memo of DScribe objects per setting
            _DESCRIPTORS.clear()
        _DESCRIPTORS[key] = soap
    return soap


def _averaged_soap(structure, species, r_cut, n_max, l_max, sigma, average, rbf) -> np.ndarray:
    """Averaged SOAP vector of one (validated) structure."""
    from ase import Atoms

    atoms = Atoms(numbers=np.asarray(structure.atomic_numbers, dtype=np.int64),
                  positions=np.asarray(structure.cart_coords, dtype=np.float64),
                  cell=np.asarray(structure.lattice.matrix, dtype=np.float64), pbc=True)
    soap = _soap_descriptor(species, r_cut, n_max, l_max, sigma, average, rbf)
    return np.asarray(soap.create(atoms), dtype=np.float64).reshape(-1)


class SOAPFeaturizer(BatchFeaturizerMixin, BaseFeaturizer):
    """Atom-averaged SOAP vector of a crystal (DScribe power spectrum).

    Batches, parallelism, the on-disk cache and errors work as for every featuriser of
    the package (:mod:`mcrt_sklearn.featurizers.batch`); ``transform`` returns an array
    of shape (n, n_features_).

    Parameters
    ----------
    r_cut : float
        Cutoff radius in Å (MCRT paper: 4.0).
    n_max : int
        Number of radial basis functions (paper: 6).
    l_max : int
        Maximum degree of spherical harmonics (paper: 6).
    sigma : float
        Width (Å) of the Gaussians smearing the atom density (DScribe default 1.0).
    species : list of str or int, optional
        Elements (symbols or atomic numbers) the vector is built for. None (default):
        :data:`ORGANIC_SPECIES`, the same for any training data, so that
        cross-validation folds never disagree on the vector layout (see the module
        docstring). A structure with an element outside the list fails with
        :class:`UnseenSpeciesError`.
    average : {"outer", "inner"}
        How the per-atom spectra are averaged (see module docstring).
    rbf : {"gto", "polynomial"}
        Radial basis of DScribe.
    n_jobs : int or None
        joblib workers over structures.
    cache_dir : str, optional
        Folder of the content-addressed cache (one entry per crystal and settings,
        keyed also by the registered SOAP version), so that cross-validation and grid
        searches featurise each crystal once.
    ignore_errors, return_errors : bool
        The batch error policy (:mod:`mcrt_sklearn.featurizers.batch`).
    progress : bool
        Show a tqdm progress bar in ``transform``.

    Attributes
    ----------
    species_ : list of int
        Atomic numbers of the species the features are built for (sorted).
    n_features_ : int
        Length of the feature vector.
    elements_seen_ : tuple of str or None
        Elements of the ``fit`` structures (None after ``fit([])``); ``transform``
        warns with :class:`~mcrt_sklearn.domain.UnseenElementWarning` for others.

    Examples
    --------
    >>> f = SOAPFeaturizer().fit(structures)          # doctest: +SKIP
    >>> X = f.transform(structures)                   # (n, n_features_) array
    >>> SOAPFeaturizer(species=["H", "C", "N"]).fit([])  # a shorter vector  # doctest: +SKIP
    """

    _cache_namespace = "soap"
    _cache_components = ("soap",)
    _vector_output = True
    _requires_fit = True

    def __init__(
        self,
        r_cut: float = 4.0,
        n_max: int = 6,
        l_max: int = 6,
        sigma: float = 1.0,
        species=None,
        average: str = "outer",
        rbf: str = "gto",
        n_jobs: int | None = 1,
        cache_dir=None,
        ignore_errors: bool = False,
        return_errors: bool = False,
        progress: bool = False,
    ):
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.species = species
        self.average = average
        self.rbf = rbf
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir
        self.ignore_errors = ignore_errors
        self.return_errors = return_errors
        self.progress = progress

    # ------------------------------------------------------------------ batch hooks
    def _check_params(self) -> None:
        """Bad settings raise ``ValueError``; an unfitted featuriser raises sklearn's
        ``NotFittedError`` (a ValueError), before any structure is read."""
        if self.average not in ("outer", "inner"):
            raise ValueError(f"average must be 'outer' or 'inner', got {self.average!r}")
        if self.rbf not in ("gto", "polynomial"):
            raise ValueError(f"rbf must be 'gto' or 'polynomial', got {self.rbf!r}")
        if not self.r_cut > 0 or not self.sigma > 0:
            raise ValueError(f"r_cut and sigma must be > 0, got {self.r_cut!r}, {self.sigma!r}")
        if int(self.n_max) < 1 or int(self.l_max) < 0:
            raise ValueError(f"n_max must be ≥ 1 and l_max ≥ 0, got {self.n_max!r}, "
                             f"{self.l_max!r}")
        self._check_fitted()

    def _cache_params(self) -> dict[str, Any]:
        return dict(species=list(self.species_), r_cut=float(self.r_cut),
                    n_max=int(self.n_max), l_max=int(self.l_max), sigma=float(self.sigma),
                    average=self.average, rbf=self.rbf)

    def _compute(self, structure, sid: str) -> tuple[np.ndarray, tuple[int, ...]]:
        """(SOAP vector, atomic numbers present) of one validated structure."""
        present = tuple(sorted({int(z) for z in structure.atomic_numbers}))
        unseen = [z for z in present if z not in set(self.species_)]
        if unseen:
            names = ", ".join(Element.from_Z(z).symbol for z in unseen)
            known = ", ".join(Element.from_Z(z).symbol for z in self.species_)
            raise UnseenSpeciesError(
                sid, f"contains element(s) {names} not in the SOAP species list [{known}]"
            )
        return _averaged_soap(structure, tuple(self.species_), float(self.r_cut),
                              int(self.n_max), int(self.l_max), float(self.sigma),
                              self.average, self.rbf), present

    def _as_row(self, result) -> list:
        return np.asarray(result[0], dtype=float).tolist()

    # ------------------------------------------------------------------ fitting
    def _descriptor(self):
        return _soap_descriptor(self.species_, self.r_cut, self.n_max, self.l_max,
                                self.sigma, self.average, self.rbf)

    def fit(self, X: Iterable[Any], y: Any = None) -> SOAPFeaturizer:
        """Fix the species list and note the elements of X (X may be empty).

        Parameters
        ----------
        X : list of Structure or path
            The training structures. They do not set the species list (that is
            ``species`` or :data:`ORGANIC_SPECIES`, never the elements of X, see the
            module docstring); their elements become ``elements_seen_``, and
            ``transform`` warns about structures with others. ``fit([])`` leaves
            ``elements_seen_`` None (nothing to compare with).
        y : ignored

        Returns
        -------
        SOAPFeaturizer
            self, with ``species_``, ``n_features_`` and ``elements_seen_`` set.
        """
        self._set_species()
        X = list(X)
        self.elements_seen_ = fitted_elements(X) if X else None
        return self

    def fit_transform(self, X: Iterable[Any], y: Any = None, **fit_params) -> np.ndarray:
        """``fit(X).transform(X)``, reading and featurising each structure once."""
        self._set_species()
        self.elements_seen_ = None
        batch = self._run(list(X))
        out = self._resolve(batch)
        present = [r[1] for r in batch.results if r is not None]
        self.elements_seen_ = (element_symbols(z for zs in present for z in zs)
                               if present else None)
        return out

    def _set_species(self) -> None:
        species = _to_z(ORGANIC_SPECIES if self.species is None else self.species)
        if not species:
            raise ValueError("SOAPFeaturizer.fit: species=[] lists no element")
        self.species_ = species
        self.n_features_ = int(self._descriptor().get_number_of_features())

    def _check_fitted(self):
        if not hasattr(self, "species_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "SOAPFeaturizer is not fitted: call fit(structures) or fit([]) first "
                "(it fixes the species list)."
            )

    # -------------------------------------------------------------- featurising
    def featurize(self, structure: Any) -> list[float]:
        """Averaged SOAP vector of one structure (Structure or CIF path).

        Raises
        ------
        StructureError subclass
            A bad structure (:class:`UnseenSpeciesError` for an element outside the
            species list).
        """
        return self._as_row(self.featurize_one(structure))

    def transform(self, X: Iterable[Any], ids=None) -> np.ndarray:
        """Featurise a list of Structures / CIF paths → array (n, n_features_).

        Bad structures follow the batch error policy (by default a
        :class:`~mcrt_sklearn.errors.StructureBatchError` naming each), never NaN
        rows. A structure with an element that was not in the ``fit`` data gets its
        vector and an :class:`~mcrt_sklearn.domain.UnseenElementWarning` (its
        channels for that element were all zero in training).
        """
        batch = self._run(X, ids=ids)
        out = self._resolve(batch)
        warn_unseen(self, [(sid, element_symbols(r[1]))
                           for sid, r in zip(batch.ids, batch.results, strict=True)
                           if r is not None])
        return out

    def _resolve(self, batch):
        out = resolve_errors(batch, self.ignore_errors, self.return_errors,
                             name=type(self).__name__)
        if self.return_errors:
            rows, errors = out
            return [None if r is None else r[0] for r in rows], errors
        if not out:
            return np.zeros((0, self.n_features_))
        return np.vstack([r[0] for r in out])

    # ---------------------------------------------------------------- metadata
    def feature_labels(self) -> list[str]:
        self._check_fitted()
        return [f"SOAP_{self.average}_{i}" for i in range(self.n_features_)]

    def citations(self) -> list[str]:
        return [
            "@article{Bartok2013, title={On representing chemical environments}, "
            "author={Bart{\\'o}k, Albert P. and Kondor, Risi and Cs{\\'a}nyi, G{\\'a}bor}, "
            "journal={Phys. Rev. B}, volume={87}, pages={184115}, year={2013}, "
            "doi={10.1103/PhysRevB.87.184115}}",
            "@article{De2016, title={Comparing molecules and solids across structural "
            "and alchemical space}, author={De, Sandip and Bart{\\'o}k, Albert P. and "
            "Cs{\\'a}nyi, G{\\'a}bor and Ceriotti, Michele}, journal={Phys. Chem. Chem. "
            "Phys.}, volume={18}, pages={13754}, year={2016}, doi={10.1039/C6CP00415F}}",
            "@article{Himanen2020, title={DScribe: Library of descriptors for machine "
            "learning in materials science}, author={Himanen, Lauri and others}, "
            "journal={Comput. Phys. Commun.}, volume={247}, pages={106949}, year={2020}, "
            "doi={10.1016/j.cpc.2019.106949}}",
        ]

    def implementors(self) -> list[str]:
        return ["mcrt_sklearn developers (SOAP by DScribe)"]
