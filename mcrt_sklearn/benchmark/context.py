"""What a cross-validated run (:func:`run_benchmark`) and a few-shot run
(:func:`run_few_shot`) share, built once by :func:`make_run_context`: the merged settings,
the loaded task (subset, non-finite targets left out, target transform), the run folder
and cache, the model inputs, the model factory and the progress log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcrt_sklearn.benchmark.folds import learning_curve_fraction
from mcrt_sklearn.benchmark.inputs import _Inputs
from mcrt_sklearn.benchmark.metrics import guess_lower_is_better
from mcrt_sklearn.benchmark.models import _ModelFactory
from mcrt_sklearn.benchmark.settings import (
    MODELS,
    _resolve_device,
    default_settings,
    merge_settings,
)
from mcrt_sklearn.benchmark.tasks import Task, load_task
from mcrt_sklearn.versions import git_revision

__all__ = ["RunContext", "make_run_context"]

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    """The common setup of one benchmark run (cross-validated or few-shot).

    Attributes
    ----------
    settings : dict
        :func:`default_settings` with the overrides merged in, ``seed`` and
        ``_pretrain_on`` set (the settings every key and model is made from).
    task : Task
        The loaded dataset and target (non-finite targets already left out).
    models : list of str
    pretrain_on : str
    device : str
        ``settings["device"]`` resolved (``"auto"`` → ``"cuda"`` or ``"cpu"``).
    lower : bool
        Whether lower target values are better (top-k recovery): ``lower_is_better``, or
        guessed from the target's name when that is None.
    k : int
        ``settings["top_k"]``.
    out_dir, cache, run_dir : Path
        The output folder, its shared ``cache/`` and this run's
        ``<dataset>-<target>[-<transform>]`` folder (created).
    inputs : _Inputs
        The lazily built, cached model inputs of ``task``.
    factory : _ModelFactory
        Builds (estimator, inputs) per model; pre-trains lazily, once.
    log : callable
        ``print`` when verbose, else the module logger.
    load_seconds : float
        Time spent loading the dataset.
    """

    settings: dict
    task: Task
    models: list
    pretrain_on: str
    device: str
    lower: bool
    k: int
    out_dir: Path
    cache: Path
    run_dir: Path
    inputs: _Inputs
    factory: _ModelFactory
    log: Callable[[str], None]
    load_seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def target(self) -> str:
        return self.task.target

    @property
    def transform(self) -> str | None:
        return self.task.transform

    @property
    def ids(self) -> list:
        return self.task.ids

    @property
    def y(self) -> np.ndarray:
        return self.task.y

    @property
    def groups(self) -> np.ndarray | None:
        return self.task.groups


def make_run_context(dataset, target: str, models: Sequence[str], *, group: str | None = None,
                     pretrain_on="pretrain_corpus", fast: bool = False,
                     out_dir="benchmark_results", data_home=None, random_state: int = 0,
                     settings: dict | None = None, verbose: bool = True) -> RunContext:
    """Merge the settings, load the task and set up the run folder, cache, inputs and models.

    The arguments are those of :func:`run_benchmark` / :func:`run_few_shot`. Unknown
    model names raise ``ValueError`` before anything is loaded; structures whose target
    is NaN or infinite are left out (and the number logged) before any fold or split.
    """
    log = print if verbose else logger.info
    # the checkout's revision now, when the code of this run has been imported: a fold
    # written an hour later must not name a commit made meanwhile
    git_revision()
    models = list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {MODELS}")
    s = merge_settings(default_settings(fast), settings)
    s["seed"] = int(random_state)
    s["_pretrain_on"] = str(pretrain_on)
    device = _resolve_device(s["device"])
    lower = s["lower_is_better"]
    if lower is None:
        lower = guess_lower_is_better(target)
    transform = s["target_transform"]

    t0 = time.perf_counter()
    task = load_task(dataset, target, group=group, transform=transform, data_home=data_home,
                     max_structures=s["max_structures"], seed=s["seed"])
    load_seconds = time.perf_counter() - t0
    if task.n_dropped:
        log(f"leaving out {task.n_dropped} structures without a {target} value")

    out_dir = Path(out_dir)
    cache = out_dir / "cache"
    fraction = learning_curve_fraction(s.get("train_fraction"))
    # a learning-curve point gets its own folder: its folds must not replace the full run's
    part = f"-train{fraction:g}" if fraction is not None else ""
    run_dir = out_dir / (f"{task.name}-{target}" + (f"-{transform}" if transform else "")
                         + part)
    run_dir.mkdir(parents=True, exist_ok=True)
    inputs = _Inputs(task.ids, task.structures, s, cache)
    factory = _ModelFactory(inputs, s, pretrain_on, data_home, cache, device, log)
    return RunContext(settings=s, task=task, models=models, pretrain_on=str(pretrain_on),
                      device=device, lower=lower, k=int(s["top_k"]), out_dir=out_dir,
                      cache=cache, run_dir=run_dir, inputs=inputs, factory=factory, log=log,
                      load_seconds=load_seconds)
