"""How one training run of an MCRT estimator goes: how many processes share it
(``accelerate launch``), what one process computes of an optimizer step, the epoch order,
and resuming a run from its training-state file (``resume_from``)."""

from __future__ import annotations

import json

import torch

__all__ = ["check_accumulation", "fit_net", "is_main_process", "main_process_writes",
           "n_processes", "rank_batching", "run_fingerprint", "train_iterator_params"]


def check_accumulation(est) -> int:
    """The micro-batch size ``batch_size // accumulate``; a clear error if it does not divide."""
    acc = int(est.accumulate)
    if acc < 1 or est.batch_size % acc:
        raise ValueError(f"batch_size={est.batch_size} must be a positive multiple of "
                         f"accumulate={est.accumulate} (micro-batches of batch_size // accumulate)")
    return est.batch_size // acc


def n_processes(est) -> int:
    """Processes training together (``accelerate launch``): 1 without an accelerator."""
    accelerator = getattr(est, "accelerator", None)
    return 1 if accelerator is None else int(accelerator.num_processes)


def is_main_process(est) -> bool:
    """Whether this process writes files and logs (always, without an accelerator)."""
    accelerator = getattr(est, "accelerator", None)
    return accelerator is None or bool(accelerator.is_main_process)


def main_process_writes(est, write):
    """``write()`` on the main process only; every process waits until it is done.

    Returns what ``write`` returned (the path written) on the main process, None on the
    others, which write nothing."""
    accelerator = getattr(est, "accelerator", None)
    out = write() if is_main_process(est) else None
    if accelerator is not None and accelerator.num_processes > 1:
        accelerator.wait_for_everyone()
    return out


def train_iterator_params(est) -> dict:
    """skorch net parameters of the training batches: ``batch_size`` (of one process) and
    the ``iterator_train__*`` of the epoch order.

    ``batch_size`` crystals make one optimizer step in all: with P processes each takes
    ``batch_size // P`` of them (``accumulate // P`` micro-batches). The order is drawn
    from torch's global generator, or, with ``shuffle_seed`` or several processes (which
    must all draw the same order), from a generator of its own seeded by ``shuffle_seed``
    (else ``random_state``, else 0)."""
    params = {"batch_size": rank_batching(est)[0], "iterator_train__shuffle": True}
    workers = int(getattr(est, "num_workers", 0) or 0)
    if workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {workers}")
    if workers:  # records read and collated in worker processes
        params.update(iterator_train__num_workers=workers, iterator_valid__num_workers=workers)
    seed = getattr(est, "shuffle_seed", None)
    if seed is None and n_processes(est) > 1:
        seed = 0 if est.random_state is None else int(est.random_state)
    if seed is not None:
        params["iterator_train__generator"] = torch.Generator().manual_seed(int(seed))
    return params


def rank_batching(est) -> tuple[int, int, int]:
    """(crystals, micro-batches) of one process in one optimizer step, and the
    micro-batch size; a clear error when the processes cannot share a step evenly."""
    micro = check_accumulation(est)
    world = n_processes(est)
    if est.accumulate % world:
        raise ValueError(
            f"accumulate={est.accumulate} must be a multiple of the {world} processes: each "
            f"computes accumulate // {world} of the micro-batches of batch_size // accumulate "
            f"= {micro} crystals of an optimizer step")
    return est.batch_size // world, est.accumulate // world, micro


def run_fingerprint(est, X_train) -> dict:
    """What identifies a training run, for its ``resume_from`` state file."""
    import hashlib

    from mcrt_sklearn.estimators._net import RECIPE_PARAMS

    recipe = {p: getattr(est, p) for p in RECIPE_PARAMS}
    # the ids in order (a store's index, without reading its records)
    ids = X_train.ids if hasattr(X_train, "ids") else [r.structure_id for r in X_train]
    return json.loads(json.dumps({
        "estimator": type(est).__name__, "recipe": recipe, "batch_size": est.batch_size,
        "max_epochs": est.max_epochs, "random_state": est.random_state,
        "shuffle_seed": getattr(est, "shuffle_seed", None), "processes": n_processes(est),
        "data": hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest(),
        "n_train": len(X_train),
    }, default=str))


def fit_net(est, net, X_train, y_train) -> None:
    """``net.fit``; with ``est.resume_from``, continue the run its state file holds.

    Under an accelerator the network is unwrapped afterwards."""
    path = getattr(est, "resume_from", None)
    if path is None:
        net.fit(X_train, y_train)
    else:
        net.initialize()
        state = dict(net.callbacks_)["training_state"]
        state.fingerprint = run_fingerprint(est, X_train)
        done = state.load()
        remaining = 0 if state.stopped else max(0, int(est.max_epochs) - done)
        net.partial_fit(X_train, y_train, epochs=remaining)
    if hasattr(net, "_unwrap_accelerator"):
        net._unwrap_accelerator()
    # a torch.Generator does not pickle, and the fitted estimator must
    if isinstance(getattr(net, "iterator_train__generator", None), torch.Generator):
        net.iterator_train__generator = None
