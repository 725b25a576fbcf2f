"""Writing results: atomic JSON files and the description of the machine a run was made on."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mcrt_sklearn.versions import provenance


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a stopped run never leaves a half-written result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, default=_json_default)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def _environment() -> dict:
    """Where a run was made: versions (release, git revision, every registered
    algorithm version), Python, platform and libraries."""
    env = {**provenance(), "python": platform.python_version(),
           "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import sklearn
        import torch

        env.update({"torch": torch.__version__, "sklearn": sklearn.__version__,
                    "torch_threads": torch.get_num_threads()})
    except Exception:  # pragma: no cover
        pass
    return env
