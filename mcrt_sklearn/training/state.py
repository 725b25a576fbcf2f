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

With ``every_steps``, the state is also written every that many optimizer steps inside an
epoch, with the random states of the epoch's start (to draw the same epoch order again)
and the number of batches done. When the file exists as ``fit`` starts, the run continues
at the step after the last one it holds: the epoch's order is drawn again, the batches
done are skipped at the sampler (never collated), and an interrupted run and an
uninterrupted one end with the same weights (in one process without DataLoader workers
bit for bit; workers start their augmentation streams afresh). The file is read
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

__all__ = ["TrainingState", "STATE_FORMAT", "read_training_state", "set_rng_state"]

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


def set_rng_state(net, state: dict[str, Any]) -> None:
    """Set this process's random states (see :func:`_rng_state`); absent parts are kept."""
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
    every_steps : int, optional
        Also write the state every this many optimizer steps (None: at the end of every
        epoch only).

    Attributes
    ----------
    fingerprint : dict
        What identifies the run (set by the estimator before training); a state file of
        another run is refused.
    epochs_done_ : int
        Epochs held by the file read by :meth:`load` (0 without a file).
    """

    def __init__(self, path: str | os.PathLike, accelerator=None,
                 every_steps: int | None = None):
        if every_steps is not None and int(every_steps) < 1:
            raise ValueError(f"every_steps must be a positive number of steps, got {every_steps}")
        self.path = path
        self.accelerator = accelerator
        self.every_steps = every_steps
        self.fingerprint: dict = {}
        self._restore: dict | None = None
        self._epoch_start: dict | None = None
        self._steps = 0
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
        partial = payload.get("partial")
        if partial is None:
            set_rng_state(net, payload["rng"][rank])
        else:  # the net finishes the epoch (MCRTNet.run_single_epoch)
            net._resume_partial = {"batches_done": int(partial["batches_done"]),
                                   "epoch_start": partial["epoch_start"][rank],
                                   "now": payload["rng"][rank],
                                   "stats": partial.get("stats")}

    def on_epoch_begin(self, net, **kwargs):
        # the random states the epoch order is drawn from (a DataLoader draws it when its
        # iteration starts, after this); a resumed epoch keeps those it was written with
        resumed = getattr(net, "_resume_partial", None)
        self._epoch_start = resumed["epoch_start"] if resumed else _rng_state(net)
        self._steps = resumed["batches_done"] if resumed else 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        self._steps += 1
        if self.every_steps and self._steps % int(self.every_steps) == 0:
            self.write(net, finished=False, batches_done=self._steps)

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

    def write(self, net, finished: bool, batches_done: int | None = None) -> None:
        """Write the current state (the main process only; every process takes part).

        ``batches_done``: the state is inside an epoch, after that many of its batches."""
        rank, world = _process(self.accelerator)
        rng = _rng_state(net)
        start = self._epoch_start if batches_done is not None else None
        if world > 1:
            from accelerate.utils import gather_object

            rngs = gather_object([rng])
            starts = gather_object([start]) if start is not None else None
        else:
            rngs = [rng]
            starts = [start] if start is not None else None
        if rank != 0:
            return
        callbacks = {
            name: {k: v for k, v in vars(cb).items()
                   if k.endswith("_") and not k.startswith("_") and _storable(v)}
            for name, cb in net.callbacks_ if name != "training_state"
        }
        scheduler = getattr(net, "scheduler_", None)
        partial = None
        if batches_done is not None:
            stats = getattr(net, "_stats", None)  # the pre-training's per-task sums
            partial = {"batches_done": int(batches_done), "epoch_start": starts,
                       "stats": None if stats is None else {k: list(v) for k, v in stats.items()}}
        payload = {
            "format": STATE_FORMAT,
            "fingerprint": self.fingerprint,
            # the epoch in progress is not done
            "epochs_done": len(net.history_) - (batches_done is not None),
            "partial": partial,
            "finished": bool(finished),
            "module": _unwrap(net.module_).state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "history": json.dumps(net.history_.to_list(), default=float),
            "callbacks": callbacks,
            "rng": rngs,
        }
        _atomic_save(_plain(payload), Path(self.path))


class SkipBatches:
    """A batch sampler without the first ``skip`` batches of ``base`` (whose iteration
    still draws the epoch order, so the batches after them are the same)."""

    def __init__(self, base, skip: int):
        self.base = base
        self.skip = int(skip)

    def __iter__(self):
        for i, indices in enumerate(self.base):
            if i >= self.skip:
                yield indices

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def _skip_loader(net, loader, skip: int):
    accelerator = getattr(net, "accelerator", None)
    if accelerator is not None:
        return accelerator.skip_first_batches(loader, skip)
    from torch.utils.data import DataLoader

    return DataLoader(loader.dataset, batch_sampler=SkipBatches(loader.batch_sampler, skip),
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, timeout=loader.timeout,
                      worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                      multiprocessing_context=loader.multiprocessing_context)


def run_resumed_epoch(net, iterator, prefix: str, step_fn, **fit_params) -> None:
    """The rest of an epoch a training state was written in (``net._resume_partial``):
    the epoch order drawn again from the epoch's starting random states, the batches done
    skipped at the sampler, then this process's random states as they were when the
    state was written, and skorch's batch loop over what is left."""
    import itertools

    partial, net._resume_partial = net._resume_partial, None
    done, start, now = partial["batches_done"], partial["epoch_start"], partial["now"]
    if partial.get("stats") is not None:  # the pre-training's sums, just reset
        net._stats.update({k: list(v) for k, v in partial["stats"].items()})
    # the collate function's generator as it was; the order from the epoch's start
    set_rng_state(net, {**now, "torch": start["torch"],
                        **({"shuffle": start["shuffle"]} if "shuffle" in start else {})})
    batches = iter(_skip_loader(net, iterator, done))
    first = next(batches, None)  # draws the order, skips, collates the next batch
    torch.set_rng_state(now["torch"])  # dropout goes on as it was
    if "shuffle" in now:
        net.iterator_train__generator.set_state(now["shuffle"])
    rest = itertools.chain([] if first is None else [first], batches)
    net.run_single_epoch(rest, training=True, prefix=prefix, step_fn=step_fn, **fit_params)
    # the epoch's batches: those done before the state was written too
    count = prefix + "_batch_count"
    net.history.record(count, net.history[-1, count] + done)
