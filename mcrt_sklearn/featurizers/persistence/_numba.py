"""numba, the optional accelerator of the persistence algorithm, and ``_njit``.

Every compiled kernel of the package is decorated with :func:`_njit`: compiled (and
cached on disk) when numba is importable, plain Python otherwise.
"""

from __future__ import annotations

try:  # optional accelerator: our own persistence algorithm (see _numba_diagrams)
    import numba as _nb
except ImportError:  # pragma: no cover
    _nb = None


def _njit(fn):
    return _nb.njit(cache=True, nogil=True)(fn) if _nb is not None else fn

