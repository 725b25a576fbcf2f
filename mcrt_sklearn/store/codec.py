"""One record as bytes and back, without pickle: an ``.npz`` archive of its arrays.

Loading a store must never run code from the file (a store may come from a colleague or
a cluster scratch disk), so a record is written with :func:`numpy.savez` and read with
``allow_pickle=False``: plain numeric and unicode arrays only. Fields that are None are
left out and come back as None.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

from mcrt_sklearn.featurizers.record import MCRTInput

__all__ = ["encode_record", "decode_record"]

_FIELDS = {f.name for f in dataclasses.fields(MCRTInput)}
_SCALARS = {"structure_id": str, "density": float, "spacegroup_number": int}


def encode_record(record: MCRTInput) -> bytes:
    """``record`` as the bytes of an uncompressed ``.npz`` archive (no pickled objects)."""
    arrays = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if value is None:
            continue
        arrays[field.name] = np.asarray(value) if field.name not in _SCALARS else np.array(value)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_record(blob: bytes) -> MCRTInput:
    """The record :func:`encode_record` wrote (arrays keep their dtypes and shapes).

    Raises
    ------
    ValueError
        The bytes are not such a record (an unknown field, or an archive that would need
        unpickling).
    """
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        unknown = set(archive.files) - _FIELDS
        if unknown:
            raise ValueError(f"not an MCRT record: unknown fields {sorted(unknown)}")
        values = {}
        for name in archive.files:
            array = archive[name]
            values[name] = _SCALARS[name](array[()]) if name in _SCALARS else array
    return MCRTInput(**values)
