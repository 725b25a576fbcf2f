"""Resumable training: the state of a run, written after every epoch and restored.

:class:`TrainingState` is the skorch callback behind the estimators' ``resume_from=``.
After every epoch it writes, atomically (temporary file + ``os.replace``) and from the
main process only, one file holding everything the rest of the run depends on:

- the network's weights and buffers, the optimizer's and the schedule's state;
- the history, and the state of the other callbacks (early stopping's best epoch and
  its stored best weights);
- the random states of every process (torch, numpy, Python, the collate function's
  generator — atom shuffling, MAP masks, APC pairs — and the shuffling generator of the
  epoch order), gathered to the main process;
- a fingerprint of the run (estimator, recipe, data), checked when resuming.

When the file exists as ``fit`` starts, the run continues after the last epoch it holds:
an interrupted run and an uninterrupted one end with the same weights. The file is read
with ``torch.load(weights_only=True)``, so it never unpickles code.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.history import History

from mcrt_sklearn.errors import CheckpointError

__all__ = ["TrainingState", "STATE_FORMAT", "read_training_state"]

#: Format name of the training-state file.
STATE_FORMAT = "mcrt-training-state-v1"
_PLAIN = (bool, int, float, str, type(None))


def _storable(value) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    return False


def _plain(obj):
    """``obj`` with numpy scalars made Python numbers (``weights_only`` loading refuses
    numpy objects), through dicts, lists and tuples; tensors stay as they are."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)  # DistributedDataParallel keeps it in .module


def _process(accelerator) -> tuple[int, int]:
    if accelerator is None:
        return 0, 1
    return int(accelerator.process_index), int(accelerator.num_processes)


def _rng_state(net) -> dict[str, Any]:
    """This process's random states (torch, numpy, Python and the net's generators)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])),
        "python": random.getstate(),
    }
    collate = getattr(net, "iterator_train__collate_fn", None)
    if collate is not None and hasattr(collate, "generator"):
        state["collate"] = collate.generator.get_state()
    shuffle = getattr(net, "iterator_train__generator", None)
    if isinstance(shuffle, torch.Generator):
        state["shuffle"] = shuffle.get_state()
    return state


def _set_rng_state(net, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "collate" in state:
        net.iterator_train__collate_fn.generator.set_state(state["collate"])
    if "shuffle" in state:
        net.iterator_train__generator.set_state(state["shuffle"])


def read_training_state(path: str | os.PathLike) -> dict[str, Any] | None:
    """The training state at ``path`` (None when there is no file).

    Raises
    ------
    CheckpointError
        The file is not a training state of this package (or is damaged).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, unsafe content …
        raise CheckpointError(f"{path}: not a readable training state ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training state ({STATE_FORMAT})")
    return payload


def _atomic_save(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TrainingState(Callback):
    """Write the run's state after every epoch; restore it at the start of training.

    Parameters
    ----------
    path : path-like
        The training-state file.
    accelerator : accelerate.Accelerator, optional
        With several processes, the random states of all of them are gathered and the
        main process alone writes.

    Attributes
    ----------
    fingerprint : dict
        What identifies the run (set by the estimator before training); a state file of
        another run is refused.
    epochs_done_ : int
        Epochs held by the file read by :meth:`load` (0 without a file).
    """

    def __init__(self, path: str | os.PathLike, accelerator=None):
        self.path = path
        self.accelerator = accelerator
        self.fingerprint: dict = {}
        self._restore: dict | None = None
        self.epochs_done_ = 0

    def load(self) -> int:
        """Read the state file, if there is one, to restore at the start of training.

        Returns
        -------
        int
            The epochs the stored run has finished (0 when starting afresh).
        """
        payload = read_training_state(self.path)
        if payload is None:
            self._restore, self.epochs_done_ = None, 0
            return 0
        stored = payload.get("fingerprint", {})
        diff = sorted(k for k in set(stored) | set(self.fingerprint)
                      if stored.get(k) != self.fingerprint.get(k))
        if diff:
            raise CheckpointError(f"{self.path}: a training state of another run "
                                  f"(differs in {', '.join(diff)}); remove it to start afresh")
        self._restore = payload
        self.epochs_done_ = int(payload["epochs_done"])
        return self.epochs_done_

    @property
    def stopped(self) -> bool:
        """Whether the stored run had already finished (all epochs, or stopped early)."""
        return bool(self._restore and self._restore.get("finished"))

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        payload, self._restore = self._restore, None
        if payload is None:
            return
        _unwrap(net.module_).load_state_dict(payload["module"])
        net.optimizer_.load_state_dict(payload["optimizer"])
        if getattr(net, "scheduler_", None) is not None:
            net.scheduler_.load_state_dict(payload["scheduler"])
        net.history_ = History(json.loads(payload["history"]))
        for name, callback in net.callbacks_:
            for attr, value in payload["callbacks"].get(name, {}).items():
                setattr(callback, attr, value)
        rank, world = _process(self.accelerator)
        if len(payload["rng"]) != world:
            raise CheckpointError(f"{self.path}: written by {len(payload['rng'])} process(es), "
                                  f"resumed by {world}")
        _set_rng_state(net, payload["rng"][rank])

    def on_epoch_end(self, net, **kwargs):
        self.write(net, finished=False)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # finished: every epoch run, or stopped by early stopping's patience. A run
        # interrupted mid-epoch (Ctrl-C, which skorch turns into the end of training)
        # keeps the state of its last whole epoch, so rerunning it continues from there.
        stopper = dict(net.callbacks_).get("early_stopping")
        patience_spent = (stopper is not None and getattr(stopper, "misses_", 0)
                          >= getattr(stopper, "patience", np.inf))
        if len(net.history_) >= net.max_epochs or patience_spent:
            self.write(net, finished=True)

    def write(self, net, finished: bool) -> None:
        """Write the current state (the main process only; every process takes part)."""
        rank, world = _process(self.accelerator)
        rng = _rng_state(net)
        if world > 1:
            from accelerate.utils import gather_object

            rngs = gather_object([rng])
        else:
            rngs = [rng]
        if rank != 0:
            return
        callbacks = {
            name: {k: v for k, v in vars(cb).items()
                   if k.endswith("_") and not k.startswith("_") and _storable(v)}
            for name, cb in net.callbacks_ if name != "training_state"
        }
        scheduler = getattr(net, "scheduler_", None)
        payload = {
            "format": STATE_FORMAT,
            "fingerprint": self.fingerprint,
            "epochs_done": len(net.history_),
            "finished": bool(finished),
            "module": _unwrap(net.module_).state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "history": json.dumps(net.history_.to_list(), default=float),
            "callbacks": callbacks,
            "rng": rngs,
        }
        _atomic_save(_plain(payload), Path(self.path))
