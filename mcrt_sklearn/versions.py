"""The one registry of the versions that stored results depend on.

Every on-disk cache (records, persistence images, SOAP vectors, CGCNN graphs) and every
benchmark result (fold files, pre-trained checkpoints) is keyed by its inputs' content,
its parameters and the versions, from this table, of the algorithms and formats that
made it. Bump an entry when the code it names changes its output: every cache and
result that used it is then recomputed, and nothing else is.

The package's release number (``__version__``) is deliberately not part of any key: it
says nothing about which outputs changed, so it would either serve stale results (while
it stays ``0.1.0.dev0``) or throw away every cache at each release.

Examples
--------
>>> from mcrt_sklearn.versions import versions
>>> versions("cgcnn-graph", "structure-fingerprint")
{'cgcnn-graph': 1, 'structure-fingerprint': 1}
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "VERSIONS",
    "HISTORY",
    "version",
    "versions",
    "versioned_key",
    "git_revision",
    "provenance",
]

#: What each version means (and what changed at each bump).
HISTORY: Mapping[str, Mapping[int, str]] = MappingProxyType({
    "structure-fingerprint": {1: "sha256 of the quantised lattice, Z and fractional "
                                 "coordinates (featurizers.batch.structure_fingerprint)"},
    "mcrt-records": {1: "MCRTInput: neighbour graph, angles, labels",
                     2: "alpha-value ties of the persistence diagrams decided exactly"},
    "persistence-exact": {1: "exact alpha complex, ties decided in floating point",
                          2: "ties decided exactly (2026-11-27)"},
    "persistence-fast": {1: "fast mode before its total calibration",
                         2: "H1/H2 totals calibrated (FAST_TOTAL_CALIBRATION)"},
    "soap": {1: "DScribe power spectrum averaged over atoms, fixed organic species"},
    "cgcnn-graph": {1: "radius graph with Gaussian-expanded distances"},
    "alignn-graph": {1: "ALIGNN atom and line graphs"},
    "training-recipe": {1: "AdamW defaults, no clipping, decay on every parameter",
                        2: "the reference recipe (mcrt_sklearn.training)"},
    "checkpoint": {1: "mcrt_sklearn checkpoint: hparams + state_dict + metadata (torch .pt)",
                   2: "safetensors weights + one JSON document (architecture, estimator, "
                      "provenance) in its header; loading never unpickles; version 1 "
                      "files still load"},
    "benchmark-results": {1: "mcrt-benchmark-v1 fold files and results.json"},
})

#: The current version of each algorithm and format (the newest entry of :data:`HISTORY`).
VERSIONS: Mapping[str, int] = MappingProxyType(
    {name: max(history) for name, history in HISTORY.items()})


def version(name: str) -> int:
    """The current version of one registered algorithm or format.

    Raises
    ------
    ValueError
        ``name`` is not in :data:`VERSIONS`.
    """
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"no version registered for {name!r}; "
                         f"registered: {', '.join(sorted(VERSIONS))}") from None


def versions(*names: str) -> dict[str, int]:
    """``{name: version}`` of the named entries (sorted by name; duplicates once)."""
    return {name: version(name) for name in sorted(set(names))}


def versioned_key(namespace: str, payload: Any, components: Iterable[str],
                  length: int | None = None) -> str:
    """A cache or result key: sha256 of ``namespace``, ``payload`` and the versions of
    ``components``.

    Parameters
    ----------
    namespace : str
        What is cached (a featuriser's name, ``"benchmark-fold"`` …).
    payload : JSON-serialisable
        Everything else the stored output depends on: content fingerprints and
        parameters. Values JSON cannot hold are written with ``str``.
    components : iterable of str
        Registered names (:data:`VERSIONS`) of the algorithms that make the output.
    length : int, optional
        Keep only the first ``length`` hex digits.
    """
    blob = json.dumps({"namespace": namespace, "payload": payload,
                       "versions": versions(*components)},
                      sort_keys=True, default=str).encode()
    digest = hashlib.sha256(blob).hexdigest()
    return digest if length is None else digest[:length]


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # an installed wheel, not a checkout
        return None, None

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "mcrt_sklearn"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return revision or None, dirty


def git_revision() -> str | None:
    """The git commit of the package's checkout; None when it is not run from one.

    Read once per process, at the first call (later commits do not change it): a
    long run asks at its start, so what it records is the code it imported."""
    return _git_state()[0]


def provenance(components: Iterable[str] | None = None) -> dict[str, Any]:
    """What made a stored result: release, git revision (and whether the package's
    tracked files had uncommitted changes) and the versions of ``components`` (default:
    every registered entry)."""
    from mcrt_sklearn._version import __version__

    revision, dirty = _git_state()
    names = list(VERSIONS) if components is None else list(components)
    return {"mcrt_sklearn": __version__, "git_revision": revision, "git_dirty": dirty,
            "versions": versions(*names)}
