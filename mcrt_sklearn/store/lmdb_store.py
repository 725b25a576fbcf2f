"""``RecordStore``: MCRT records on disk, in an LMDB database.

Why LMDB (and not zarr, HDF5 or webdataset shards): a record is a handful of ragged
arrays whose sizes change with the crystal, and training reads them in random order.
LMDB is a key-value store made for exactly that:

- **random access by key or index**, memory-mapped, so a read copies one record and
  the store never has to fit in memory;
- **many concurrent readers** (DataLoader workers, DDP ranks, other jobs) next to one
  writer, across processes, without a server;
- **transactions**: a record, its index entry and the count are written in one
  commit, so a writer killed at any point leaves the store as it was before that
  record (nothing half-written, nothing to repair), and appending again resumes.

zarr and HDF5 want rectangular chunks (ragged records need side tables and give no
atomic append across them; HDF5 also dislikes concurrent writers); webdataset shards are
made for sequential streaming, not random access. Records are stored as ``.npz`` bytes
(:mod:`mcrt_sklearn.store.codec`): reading a store never unpickles.

Layout (one LMDB environment, keys by prefix):

===================  ==========================================================
``r/<key>``          the record (npz bytes); ``<key>`` is the featuriser cache key
                     (structure content + parameters + algorithm versions), so the
                     same crystal under two ids is stored once
``i/<position>``     ``<key>`` and the structure id at that position (8-byte index);
                     every input that succeeded has a position, duplicates included
``s/<id>``           how an input was finished: ``{"key", "source", "position"}``, or
                     ``{"error", "source"}``
``e/<id>``           the error of an input that failed: type, message
``m/manifest``       featuriser class, parameters and versions (JSON)
``m/count``          number of records
===================  ==========================================================
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mcrt_sklearn.featurizers.record import MCRTInput
from mcrt_sklearn.store.codec import decode_record, encode_record

__all__ = ["RecordStore", "StoreError"]

#: Virtual size of the memory map (sparse: only what is written takes disk space).
DEFAULT_MAP_SIZE = 1 << 40


#: Open LMDB environments of this process: real path → (pid, environment, writable).
_ENVS: dict[str, tuple[int, Any, bool]] = {}


def _close_before_fork() -> None:
    """LMDB handles must not cross a fork (a DataLoader worker would inherit one it may
    not use, and could not open its own): close them; each side reopens on next use."""
    for key, (pid, env, _) in list(_ENVS.items()):
        if pid == os.getpid():
            env.close()
        del _ENVS[key]


os.register_at_fork(before=_close_before_fork)


class StoreError(ValueError):
    """A store cannot be opened or used as asked (missing, other settings, corrupt)."""


def _position(i: int) -> bytes:
    return struct.pack(">Q", i)


class RecordStore(Sequence):
    """An on-disk, append-only sequence of :class:`~mcrt_sklearn.MCRTInput` records.

    Parameters
    ----------
    path : str or Path
        Folder of the LMDB environment.
    mode : {"r", "a"}
        ``"r"``: read only (the store must exist); ``"a"``: append (created if absent).
    map_size : int
        Largest size the store may grow to (virtual; default 1 TiB).

    Notes
    -----
    A store is a ``Sequence``: ``len(store)``, ``store[i]`` (negative indices and slices
    too), iteration and ``store.ids`` (the structure id of each record, in order). It
    pickles (the LMDB handle is reopened in the process that unpickles it, e.g. a
    DataLoader worker), and every process opens its own read handle. The estimators
    read a store given as ``X`` batch by batch (its records are not gathered in memory).

    Examples
    --------
    >>> store = featurize_to_store(cifs, "corpus.lmdb", MCRTFeaturizer())  # doctest: +SKIP
    >>> len(store), store.ids[:3], store.errors[:1]                       # doctest: +SKIP
    """

    #: Estimators read it batch by batch instead of gathering it into a list.
    _lazy_records = True

    def __init__(self, path: str | os.PathLike, mode: str = "r",
                 map_size: int = DEFAULT_MAP_SIZE):
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.map_size = int(map_size)
        if mode == "r" and not (self.path / "data.mdb").is_file():
            raise StoreError(f"{self.path}: no record store here (data.mdb missing)")

    # ------------------------------------------------------------------ handle
    @property
    def env(self):
        """The LMDB environment of this process for this folder (LMDB allows one per
        process: every RecordStore of the folder shares it; a forked or spawned worker
        opens its own on first use)."""
        key = str(self.path.resolve())
        entry = _ENVS.get(key)
        writable = self.mode == "a"
        if entry is not None and entry[0] == os.getpid() and (entry[2] or not writable):
            return entry[1]
        import lmdb

        if entry is not None and entry[0] == os.getpid():
            entry[1].close()  # a read-only handle, and this instance writes
        if writable:
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            env = lmdb.open(str(self.path), map_size=self.map_size, subdir=True,
                            readonly=not writable, lock=True, readahead=False, max_readers=512)
        except lmdb.Error as err:
            raise StoreError(f"{self.path}: cannot open the record store ({err})") from err
        _ENVS[key] = (os.getpid(), env, writable)
        return env

    def close(self) -> None:
        """Close this process's handle on the folder (reopened on the next use)."""
        entry = _ENVS.pop(str(self.path.resolve()), None)
        if entry is not None and entry[0] == os.getpid():
            entry[1].close()

    def __getstate__(self) -> dict:
        return {"path": self.path, "mode": self.mode, "map_size": self.map_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["mode"], state["map_size"])

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, key: bytes) -> bytes | None:
        with self.env.begin(buffers=False) as txn:
            return txn.get(key)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        raw = self._get(b"m/count")
        return 0 if raw is None else int(raw)

    def _locate(self, i: int) -> tuple[str, str]:
        raw = self._get(b"i/" + _position(i))
        if raw is None:
            raise StoreError(f"{self.path}: position {i} is missing from the index")
        key, sid = raw.decode().split("\0", 1)
        return key, sid

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        i = int(index) + n if int(index) < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"record {index} of a store of {n}")
        key, sid = self._locate(i)
        blob = self._get(b"r/" + key.encode())
        if blob is None:
            raise StoreError(f"{self.path}: the record of {sid!r} is missing")
        record = decode_record(blob)
        return record if record.structure_id == sid else _relabelled(record, sid)

    def __iter__(self) -> Iterator[MCRTInput]:
        for i in range(len(self)):
            yield self[i]

    @property
    def ids(self) -> list[str]:
        """The structure id of each record, in store order."""
        return [sid for _, sid in self._index()]

    def keys(self) -> list[str]:
        """The content key of each record, in store order."""
        return [key for key, _ in self._index()]

    def _index(self) -> list[tuple[str, str]]:
        """(key, id) of every position, in order, read with one cursor in one transaction
        (big-endian positions sort in order)."""
        n = len(self)
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor()
            if n and cursor.set_range(b"i/"):
                for raw_key, value in cursor:
                    if not raw_key.startswith(b"i/") or len(out) == n:
                        break
                    key, sid = value.decode().split("\0", 1)
                    out.append((key, sid))
        if len(out) != n:
            raise StoreError(f"{self.path}: the index holds {len(out)} of {n} positions")
        return out

    def has_key(self, key: str) -> bool:
        """Whether a record with this content key is stored."""
        return self._get(b"r/" + key.encode()) is not None

    def finished(self, sid: str) -> dict | None:
        """How the input ``sid`` was finished (``{"key", "source"}`` or ``{"error",
        "source"}``), or None if it never was."""
        raw = self._get(b"s/" + sid.encode())
        return None if raw is None else json.loads(raw)

    @property
    def errors(self) -> list[dict]:
        """The inputs that failed: ``{"structure_id", "type", "message"}`` each."""
        out = []
        with self.env.begin() as txn:
            cursor = txn.cursor()
            if cursor.set_range(b"e/"):
                for key, value in cursor:
                    if not key.startswith(b"e/"):
                        break
                    out.append(json.loads(value))
        return out

    @property
    def manifest(self) -> dict | None:
        """What made the records: featuriser class, parameters and algorithm versions."""
        raw = self._get(b"m/manifest")
        return None if raw is None else json.loads(raw)

    # ------------------------------------------------------------------ writing
    def _writable(self) -> None:
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only (mode='r')")

    def set_manifest(self, manifest: dict) -> None:
        """Record the featuriser's settings; refuse a store made with other ones.

        Raises
        ------
        StoreError
            The store holds records made with another featuriser, other parameters or
            other algorithm versions (mixing them would silently mix two inputs).
        """
        self._writable()
        manifest = json.loads(json.dumps(manifest, sort_keys=True, default=str))
        old = self.manifest
        if old is None:
            with self.env.begin(write=True) as txn:
                txn.put(b"m/manifest", json.dumps(manifest, sort_keys=True).encode())
            return
        if old != manifest:
            changed = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise StoreError(f"{self.path}: holds records made with other settings "
                             f"(differ in {', '.join(changed)}); use a new store")

    def append(self, record: MCRTInput, key: str, source: Any = None) -> int:
        """Add the record of one input (one transaction); returns its position.

        The record's bytes are stored once per content ``key`` (a duplicate crystal
        under another id gets its own position, pointing at the same bytes). Appending
        an input that is stored already (same id, same key) returns its position: that
        is how a killed run resumes.

        Raises
        ------
        StoreError
            The id is stored already with other content.
        """
        self._writable()
        sid = record.structure_id
        with self.env.begin(write=True) as txn:
            old = txn.get(b"s/" + sid.encode())
            if old is not None:
                old = json.loads(old)
                if old.get("key") == key:
                    return int(old["position"])
                if "key" in old:
                    raise StoreError(f"{self.path}: {sid!r} is stored already with other "
                                     "content; use a new store or another id")
            n = int(txn.get(b"m/count") or 0)
            if txn.get(b"r/" + key.encode()) is None:
                txn.put(b"r/" + key.encode(), encode_record(record))
            txn.put(b"i/" + _position(n), f"{key}\0{sid}".encode())
            txn.put(b"s/" + sid.encode(),
                    json.dumps({"key": key, "source": source, "position": n}).encode())
            txn.delete(b"e/" + sid.encode())
            txn.put(b"m/count", str(n + 1).encode())
        return n

    def add_error(self, sid: str, error: BaseException | dict, source: Any = None) -> None:
        """Record that input ``sid`` failed, and why (in the errors table)."""
        self._writable()
        info = error if isinstance(error, dict) else {"type": type(error).__name__,
                                                      "message": str(error)}
        info = {"structure_id": sid, **info}
        with self.env.begin(write=True) as txn:
            txn.put(b"e/" + sid.encode(), json.dumps(info).encode())
            txn.put(b"s/" + sid.encode(), json.dumps({"error": info["type"],
                                                     "source": source}).encode())

    def __repr__(self) -> str:
        return f"RecordStore({str(self.path)!r}, mode={self.mode!r})"


def _relabelled(record: MCRTInput, sid: str) -> MCRTInput:
    import dataclasses

    return dataclasses.replace(record, structure_id=sid)
