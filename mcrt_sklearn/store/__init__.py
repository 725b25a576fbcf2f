"""On-disk MCRT records for corpora that do not fit in memory: :class:`RecordStore` (LMDB,
no pickle, many readers, atomic appends) and :func:`featurize_to_store` (in process or on
a dask cluster, resumable)."""

from mcrt_sklearn.store.featurize import featurize_to_store, make_client, store_manifest
from mcrt_sklearn.store.lmdb_store import RecordStore, StoreError

__all__ = ["RecordStore", "StoreError", "featurize_to_store", "make_client", "store_manifest"]
