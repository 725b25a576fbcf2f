"""Shared batch machinery of the featurisers: parallelism, on-disk cache, errors.

A featuriser that computes one result per crystal plugs in with
:class:`BatchFeaturizerMixin` (or calls :func:`run_batch` directly):

- **parallel** over structures with joblib (``n_jobs``; any joblib backend, e.g.
  ``with joblib.parallel_backend("dask"):`` on a cluster), progress bar with tqdm;
- **cache** (``cache_dir``): a content-addressed on-disk store built on
  :class:`joblib.Memory`. The key of an entry is a SHA-256 of the structure's
  content (lattice quantised to 1e-5 Å, fractional coordinates to 1e-7, atomic
  numbers, site order), the featuriser's name and output-affecting parameters, and
  the versions (:mod:`mcrt_sklearn.versions`) of the algorithms that make the
  result — not of the file name or the Python object, so the same
  crystal read from a CIF or built in memory hits the same entry. joblib writes each
  entry to a temporary file and renames it, so a killed run leaves no partial
  entry; an unreadable (corrupt, truncated) entry is logged, recomputed and
  rewritten;
- **errors** (matminer semantics): every structure is attempted; then

  ================================  ==================================================
  default                           raise :class:`~mcrt_sklearn.errors.FeaturizationError`
                                    listing every failed id and reason (``.failures``
                                    holds the typed errors), chained to the first one;
                                    when every failure is a bad structure it is a
                                    :class:`~mcrt_sklearn.errors.StructureBatchError`,
                                    also a ``StructureError``
  ``ignore_errors=True``            drop the failed structures from the output, log a
                                    warning summary, keep ``(id, error)`` pairs in
                                    ``errors_`` (and their input positions in
                                    ``failed_indices_``)
  ``return_errors=True``            return ``(results, errors)``: ``results`` aligned
                                    with the input, ``None`` where a structure failed;
                                    ``errors`` the ``(id, error)`` pairs (implies not
                                    raising)
  ================================  ==================================================

  A failed structure never produces a NaN-filled result.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure

from mcrt_sklearn.errors import FeaturizationError, MCRTError, batch_error
from mcrt_sklearn.featurizers.cache_keys import cache_key, structure_fingerprint
from mcrt_sklearn.structures import read_structure, structure_id

__all__ = [
    "structure_fingerprint",
    "cache_key",
    "BatchResult",
    "run_batch",
    "resolve_errors",
    "BatchFeaturizerMixin",
]

logger = logging.getLogger("mcrt_sklearn.featurizers")

# -------------------------------------------------------------------------- cache

#: Set by _cached_compute in the process that ran the computation.
_COMPUTED = False


def _cached_compute(structure, sid, func, namespace, key):
    """The function memoised by joblib.Memory; only ``namespace`` and ``key`` are hashed."""
    global _COMPUTED
    _COMPUTED = True
    return func(structure, sid)


_MEMORIES: dict[str, Any] = {}


def _memoised(cache_dir: str):
    fn = _MEMORIES.get(cache_dir)
    if fn is None:
        import joblib

        memory = joblib.Memory(location=cache_dir, verbose=0)
        fn = memory.cache(_cached_compute, ignore=["structure", "sid", "func"])
        _MEMORIES[cache_dir] = fn
    return fn


def _relabel(result, sid: str):
    """Cached results are content-addressed: give them the id asked for now."""
    if (
        dataclasses.is_dataclass(result)
        and not isinstance(result, type)
        and getattr(result, "structure_id", sid) != sid
    ):
        return dataclasses.replace(result, structure_id=sid)
    return result


def _process_one(
    func: Callable[[Structure, str], Any],
    item,
    sid: str,
    max_atoms: int | None,
    cache_dir: str | None,
    namespace: str,
    params: dict[str, Any],
    components: Sequence[str] = (),
):
    """Read, validate and featurise one structure. Returns (result, error, cache_hit)."""
    global _COMPUTED
    try:
        sid, structure = read_structure(item, sid, max_atoms=max_atoms)
        if cache_dir is None:
            return func(structure, sid), None, False
        key = cache_key(structure, namespace, params, components)
        _COMPUTED = False
        result = _memoised(os.fspath(cache_dir))(structure, sid, func, namespace, key)
        return _relabel(result, sid), None, not _COMPUTED
    except Exception as exc:  # recorded per structure; KeyboardInterrupt still stops
        return None, exc, False


# ------------------------------------------------------------------------- driver


@dataclass
class BatchResult:
    """Outcome of :func:`run_batch`.

    Attributes
    ----------
    results : list
        One entry per input, ``None`` where the structure failed.
    ids : list of str
        Structure ids, aligned with the input.
    errors : list of (int, str, Exception)
        Input position, id and error of each failure.
    cache_hits : int
        Results loaded from the cache.
    """

    results: list
    ids: list[str]
    errors: list[tuple[int, str, Exception]] = field(default_factory=list)
    cache_hits: int = 0


def _as_items(X) -> list:
    if isinstance(X, (str, os.PathLike, Structure)):
        return [X]
    try:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            if X.shape[1] != 1:
                raise ValueError(
                    f"expected one column of structures or paths, got {X.shape[1]} columns"
                )
            X = X.iloc[:, 0]
        if isinstance(X, pd.Series):
            X = X.tolist()
    except ImportError:  # pragma: no cover
        pass
    return list(X)


def run_batch(
    func: Callable[[Structure, str], Any],
    X,
    *,
    ids: Sequence[str] | None = None,
    n_jobs: int | None = 1,
    cache_dir: str | os.PathLike | None = None,
    namespace: str = "",
    params: dict[str, Any] | None = None,
    components: Sequence[str] = (),
    max_atoms: int | None = None,
    progress: bool = False,
    desc: str = "featurising",
) -> BatchResult:
    """Featurise many structures (parallel, cached); failures are collected, not raised.

    Parameters
    ----------
    func : callable (Structure, str) -> result
        Computes one result from a validated structure and its id. Must be picklable
        (a module-level function, or a method of a picklable estimator) for
        ``n_jobs != 1``.
    X : iterable of (Structure or path), or a single one
    ids : sequence of str, optional
        Ids for results and errors; default: file stem / ``properties["id"]`` / index.
    n_jobs : int or None
        joblib workers (``-1``: all cores).
    cache_dir : path, optional
        Directory of the on-disk cache; None disables it.
    namespace, params, components
        Featuriser name, output-affecting parameters and the registered algorithms
        behind the result (cache key, see :func:`cache_key`).
    max_atoms : int, optional
        Passed to :func:`~mcrt_sklearn.structures.read_structure`.
    progress : bool
        Show a tqdm progress bar.
    desc : str
        Progress-bar label.

    Returns
    -------
    BatchResult
    """
    items = _as_items(X)
    if ids is not None and len(ids) != len(items):
        raise ValueError(f"got {len(ids)} ids for {len(items)} structures")
    sids = [str(ids[i]) if ids is not None else structure_id(obj, i) for i, obj in enumerate(items)]
    params = dict(params or {})
    cdir = os.fspath(cache_dir) if cache_dir is not None else None
    if cdir is not None:
        os.makedirs(cdir, exist_ok=True)
    args = [
        (func, obj, sid, max_atoms, cdir, namespace, params, tuple(components))
        for obj, sid in zip(items, sids, strict=True)
    ]

    if n_jobs in (None, 1) or len(items) <= 1:
        outputs = (_process_one(*a) for a in args)
    else:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_process_one)(*a) for a in args
        )
    if progress:
        from tqdm.auto import tqdm

        outputs = tqdm(outputs, total=len(items), desc=desc)

    results: list = []
    errors: list[tuple[int, str, Exception]] = []
    hits = 0
    for i, (res, err, hit) in enumerate(outputs):
        results.append(res)
        hits += bool(hit)
        if err is not None:
            errors.append((i, sids[i], err))
    # a failed structure's id may be refined by read_structure; keep the one asked for
    return BatchResult(results=results, ids=sids, errors=errors, cache_hits=hits)


def resolve_errors(
    batch: BatchResult,
    ignore_errors: bool = False,
    return_errors: bool = False,
    name: str = "featuriser",
):
    """Apply the error policy of the module docstring to a :class:`BatchResult`.

    Returns
    -------
    list, or (list, list of (str, Exception)) when ``return_errors``.

    Raises
    ------
    FeaturizationError
        When some structures failed and neither flag is set
        (:class:`~mcrt_sklearn.errors.StructureBatchError` when all of them are bad
        structures).
    """
    failures = [(sid, err) for _, sid, err in batch.errors]
    if return_errors:
        if failures:
            _log_summary(failures, name, "returned as errors")
        return batch.results, failures
    if failures and not ignore_errors:
        raise batch_error(failures) from failures[0][1]
    if failures:
        _log_summary(failures, name, "skipped")
    return [r for r in batch.results if r is not None]


def _log_summary(failures, name, what):
    lines = "; ".join(f"{sid}: {type(err).__name__}: {err}" for sid, err in failures[:5])
    more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
    logger.warning("%s: %d structure(s) %s — %s%s", name, len(failures), what, lines, more)


# -------------------------------------------------------------------------- mixin


class BatchFeaturizerMixin:
    """Batch behaviour for matminer featurisers that return one object per crystal.

    The subclass provides:

    - ``_compute(structure, sid) -> result`` for one validated structure;
    - ``_cache_namespace`` (str), ``_cache_params() -> dict`` (output-affecting
      parameters) and ``_cache_components`` (names in
      :data:`mcrt_sklearn.versions.VERSIONS` of the algorithms behind the result);
    - ``_max_atoms`` (int or None);
    - optionally ``_check_params()``, raising ``ValueError`` for bad parameters; it
      runs before any structure is read, in every entry point (``featurize_one``,
      ``transform``, ``featurize_many`` and so ``featurize_dataframe``), so a bad
      setting is one clear error, never a failure recorded per structure;
    - the constructor parameters ``n_jobs, cache_dir, ignore_errors, return_errors,
      progress``.

    It provides ``featurize_one`` (typed errors), ``transform`` (list output, error
    policy of :mod:`mcrt_sklearn.featurizers.batch`), ``fit`` (no-op) and a
    matminer-compatible ``featurize_many`` (so ``featurize_dataframe`` works,
    parallel through joblib).

    Attributes set by ``transform``
    -------------------------------
    errors_ : list of (str, Exception)
        Failed structures of the last call.
    failed_indices_ : list of int
        Their positions in the input.
    ids_ : list of str
        Ids of the structures of the last call, aligned with the input.
    cache_hits_ : int
        Results of the last call loaded from the cache.
    """

    _cache_namespace = "featuriser"
    _cache_components: tuple[str, ...] = ()
    _max_atoms: int | None = None
    #: True when the result of a crystal is one feature vector (a 1-D array):
    #: ``transform`` then returns an array of shape (n, n_features) (with
    #: ``return_errors``, the list aligned with the input, None where one failed).
    _vector_output = False

    # matminer's BaseFeaturizer.n_jobs is a read-only property; keep ours a parameter.
    @property
    def n_jobs(self):
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value):
        self._n_jobs = value

    def set_n_jobs(self, n_jobs):  # matminer API
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        # matminer's BaseFeaturizer lists BaseEstimator before TransformerMixin, which
        # hides the transformer tags from sklearn (Pipeline, set_output, the checks)
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags()
        tags.requires_fit = self._requires_fit
        return tags

    #: Whether ``transform`` needs ``fit`` first (SOAP fixes its species list there).
    _requires_fit = False

    def _cache_params(self) -> dict[str, Any]:  # pragma: no cover - overridden
        return {}

    def _compute(self, structure: Structure, sid: str):  # pragma: no cover - overridden
        raise NotImplementedError

    def _check_params(self) -> None:
        """Raise ``ValueError`` for bad parameters (override; default: nothing to check)."""

    def _run(self, X, ids=None, progress=None, ignore_errors=None, return_errors=None):
        self._check_params()
        batch = run_batch(
            self._compute,
            X,
            ids=ids,
            n_jobs=self.n_jobs,
            cache_dir=self.cache_dir,
            namespace=self._cache_namespace,
            params=self._cache_params(),
            components=self._cache_components,
            max_atoms=self._max_atoms,
            progress=self.progress if progress is None else progress,
            desc=type(self).__name__,
        )
        self.errors_ = [(sid, err) for _, sid, err in batch.errors]
        self.failed_indices_ = [i for i, _, _ in batch.errors]
        self.ids_ = batch.ids
        self.cache_hits_ = batch.cache_hits
        return batch

    def _as_row(self, result) -> list:
        """A result as the list ``featurize`` returns: the vector's values for vector
        featurisers, else ``[result]``."""
        return np.asarray(result, dtype=float).tolist() if self._vector_output else [result]

    def featurize_one(self, structure_or_path, sid: str | None = None):
        """Featurise one structure; errors are raised as they are (typed, naming it).

        Raises
        ------
        StructureError subclass
            Bad input (unreadable, disordered, too many atoms, …).
        FeaturizationError
            Any other failure, wrapped so that the message names the structure.
        ValueError
            A bad parameter of the featuriser (``_check_params``).
        """
        self._check_params()
        batch = run_batch(
            self._compute,
            [structure_or_path],
            ids=None if sid is None else [sid],
            n_jobs=1,
            cache_dir=self.cache_dir,
            namespace=self._cache_namespace,
            params=self._cache_params(),
            components=self._cache_components,
            max_atoms=self._max_atoms,
        )
        if batch.errors:
            _, bad_sid, err = batch.errors[0]
            if isinstance(err, MCRTError):
                raise err
            raise FeaturizationError([(bad_sid, err)]) from err
        return batch.results[0]

    def fit(self, X=None, y=None, **fit_params):
        """No-op (nothing is learned); returns self."""
        return self

    def transform(self, X, ids: Sequence[str] | None = None):
        """Featurise a list of structures / structure files.

        See :mod:`mcrt_sklearn.featurizers.batch` for the error policy
        (``ignore_errors``, ``return_errors``).
        """
        batch = self._run(X, ids=ids)
        out = resolve_errors(
            batch, self.ignore_errors, self.return_errors, name=type(self).__name__
        )
        if not self._vector_output or self.return_errors:
            return out
        if not out:
            return np.zeros((0, len(self.feature_labels())))
        return np.vstack(out).astype(float, copy=False)

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y, **fit_params).transform(X)

    def featurize_many(self, entries, ignore_errors=False, return_errors=False, pbar=True):
        """matminer batch API (used by ``featurize_dataframe``), run through joblib.

        Rows are ``[result]`` (``[nan]`` for a failure when ``ignore_errors``; with
        ``return_errors`` an extra column holds the error text, NaN on success).
        Failures are also recorded in ``errors_`` and logged. Bad parameters raise
        ``ValueError`` before any structure is featurised, whatever ``ignore_errors``.
        """
        self._check_params()
        if return_errors and not ignore_errors:
            raise ValueError("Please set ignore_errors to True to use return_errors.")
        items = [
            e[0] if isinstance(e, (tuple, list, np.ndarray)) and len(e) == 1 else e
            for e in _as_items(entries)
        ]
        batch = self._run(items, progress=bool(pbar) and self.progress)
        failures = [(sid, err) for _, sid, err in batch.errors]
        if failures and not ignore_errors:
            raise batch_error(failures) from failures[0][1]
        if failures:
            _log_summary(failures, type(self).__name__, "set to NaN in the dataframe")
        err_of = {i: err for i, _, err in batch.errors}
        rows = []
        for i, res in enumerate(batch.results):
            row = (
                self._as_row(res)
                if res is not None
                else [float("nan")] * len(self.feature_labels())
            )
            if return_errors:
                err = err_of.get(i)
                row = row + [float("nan") if err is None else f"{type(err).__name__}: {err}"]
            rows.append(row)
        return rows
