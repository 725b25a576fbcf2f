"""Commands started by ``accelerate launch``: the accelerator they train through, and
printing from the main process only."""

from __future__ import annotations

import os

__all__ = ["launched_accelerator", "main_print"]


def launched_accelerator():
    """An ``accelerate.Accelerator`` when the command was started by ``accelerate launch``
    (or ``torchrun``) with several processes, else None (one process, no accelerate)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    try:
        from accelerate import Accelerator
    except ImportError as exc:  # pragma: no cover - accelerate is in the [scale] extra
        raise SystemExit("several processes need accelerate: pip install "
                         "'mcrt_sklearn[scale]'") from exc
    return Accelerator()


def main_print(est, *lines: str) -> None:
    """Print on the main process only (all of them, without an accelerator)."""
    from mcrt_sklearn.estimators._run import is_main_process

    if is_main_process(est):
        for line in lines:
            print(line)
