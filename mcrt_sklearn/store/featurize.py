"""Featurise many structures into a :class:`RecordStore`, in this process or on a dask
cluster; a killed run started again skips what it finished.

The workers only compute (read the structure, check it, featurise it); the process that
called :func:`featurize_to_store` writes every record as its chunk arrives, so the store
has one writer and the workers need no access to its disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcrt_sklearn.featurizers.batch import _as_items
from mcrt_sklearn.featurizers.cache_keys import cache_key, structure_fingerprint
from mcrt_sklearn.store.lmdb_store import RecordStore
from mcrt_sklearn.structures import read_structure, structure_id
from mcrt_sklearn.versions import versions

__all__ = ["featurize_to_store", "store_manifest", "make_client"]


def store_manifest(featurizer) -> dict:
    """What a store's records depend on: the featuriser's class, its output-affecting
    parameters and the versions of its algorithms."""
    return {"featurizer": type(featurizer).__name__,
            "params": featurizer._cache_params(),
            "versions": versions("structure-fingerprint", *featurizer._cache_components)}


def _source(item) -> dict:
    """What identifies an input for resuming: a file by path, size and mtime; an
    in-memory structure by its content."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        try:
            st = path.stat()
        except OSError:
            return {"path": str(path)}
        return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        return {"fingerprint": structure_fingerprint(item)}
    except Exception:  # not a structure: let the worker report it
        return {"object": repr(item)[:200]}


def _featurize_chunk(featurizer, chunk: Sequence[tuple[str, Any, dict]]) -> list[tuple]:
    """(id, key, record, error, source) of each input of ``chunk`` (runs on a worker)."""
    out = []
    for sid, item, source in chunk:
        try:
            sid, structure = read_structure(item, sid, max_atoms=featurizer._max_atoms)
            key = cache_key(structure, featurizer._cache_namespace, featurizer._cache_params(),
                            featurizer._cache_components)
            out.append((sid, key, featurizer._compute(structure, sid), None, source))
        except Exception as exc:  # recorded in the errors table; KeyboardInterrupt stops
            out.append((sid, None, None, {"type": type(exc).__name__, "message": str(exc)},
                        source))
    return out


def make_client(scheduler: str):
    """A dask ``Client`` for ``"local:N"`` (a LocalCluster of N one-thread worker
    processes) or a scheduler address (``"tcp://host:8786"``)."""
    from distributed import Client, LocalCluster

    if scheduler.startswith("local:"):
        n = int(scheduler.split(":", 1)[1])
        return Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None))
    return Client(scheduler)


def featurize_to_store(
    X,
    store: RecordStore | str | os.PathLike,
    featurizer=None,
    *,
    ids: Sequence[str] | None = None,
    client=None,
    chunk_size: int = 8,
    progress: bool = False,
) -> RecordStore:
    """Featurise structures into an on-disk store; resumable.

    Parameters
    ----------
    X : iterable of Structure or path
        The inputs (CIF / POSCAR / extended-XYZ files, or pymatgen Structures).
    store : RecordStore or path
        The store to fill (opened for appending; created when absent).
    featurizer : MCRTFeaturizer, optional
        Default ``MCRTFeaturizer()``. A store holds the records of one featuriser
        setting: a store made with other settings is refused
        (:class:`~mcrt_sklearn.store.StoreError`).
    ids : sequence of str, optional
        Structure ids (default: file stem / ``properties["id"]`` / position).
    client : dask.distributed.Client or str, optional
        Run the featurisation on this dask cluster (a string is passed to
        :func:`make_client`, e.g. ``"local:4"``); None: in this process.
    chunk_size : int
        Inputs per dask task.
    progress : bool
        A tqdm progress bar over the chunks.

    Returns
    -------
    RecordStore
        The store (its ``errors`` list what failed and why).

    Notes
    -----
    An input is finished once its record or its error is written (one transaction
    each). Run again with the same inputs, only the unfinished ones are featurised; an
    input whose file changed (size or modification time) is featurised again.
    """
    if featurizer is None:
        from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

        featurizer = MCRTFeaturizer()
    featurizer._check_params()
    if not isinstance(store, RecordStore):
        store = RecordStore(store, mode="a")
    store.set_manifest(store_manifest(featurizer))
    items = _as_items(X)
    if ids is not None and len(ids) != len(items):
        raise ValueError(f"got {len(ids)} ids for {len(items)} structures")
    todo = []
    for i, item in enumerate(items):
        sid = str(ids[i]) if ids is not None else structure_id(item, i)
        source = _source(item)
        finished = store.finished(sid)
        if finished is None or finished.get("source") != source:
            todo.append((sid, item, source))
    chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), max(1, int(chunk_size)))]
    own_client = isinstance(client, str)
    if own_client:
        client = make_client(client)
    try:
        if client is None:
            results = (_featurize_chunk(featurizer, chunk) for chunk in chunks)
        else:
            from distributed import as_completed

            futures = client.map(_featurize_chunk, [featurizer] * len(chunks), chunks,
                                 pure=False)
            results = (future.result() for future in as_completed(futures))
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(chunks), desc="featurising")
        for chunk_result in results:
            for sid, key, record, error, source in chunk_result:
                if error is not None:
                    store.add_error(sid, error, source)
                else:
                    store.append(record, key, source)
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    return store
