"""Resumable cross-validated benchmark of MCRT against the paper's baselines (DESIGN §8, §11).

:func:`run_benchmark` evaluates every model on the SAME folds of one dataset and target:

- featurisation once (MCRT records, SOAP vectors, CGCNN graphs cached under ``out_dir/cache``;
  the MCRT feature cache is content-addressed and shared by every run using that folder);
- one small MCRT pre-trained once on the pre-training corpus (checkpoint cached under
  ``out_dir/cache/pretrain``; a second, image-less one for MCRTi);
- every (dataset, target, model, fold) result written to
  ``<run_dir>/folds/<model>/fold<k>.json`` when done and skipped when present (with the
  same settings), so a long run can be stopped and finished later;
- metrics per fold and mean ± std: MAE, RMSE, R², Spearman ρ and top-k recovery (how many
  of the k best true structures are among the k best predicted; "best" = lowest for
  energies, highest otherwise unless told) and, for grouped runs, the mean Spearman ρ
  inside each test group (:func:`within_group_spearman`);
- ``results.json`` (every setting actually used, next to the numbers), ``results.md``
  (Markdown table), ``parity.png`` and ``radar.png``.

Models: ``MCRT`` (pre-trained), ``MCRTp`` (no pre-training), ``MCRTi`` (no persistence
images; pre-trained without images), ``RF-SOAP``, ``KRR-SOAP``, ``CGCNN``, ``ALIGNN``,
``CrystalTwins``.

:func:`benchmark_main` and :func:`demo_main` are the ``mcrt-sklearn benchmark`` / ``demo``
command lines.

The package, one module per step:

- :mod:`.metrics`: :func:`top_k_recovery`, :func:`regression_metrics`,
  :func:`within_group_spearman`, :data:`METRICS`;
- :mod:`.settings`: :data:`MODELS`, :data:`MCRT_MODELS`, :data:`PAPER_PROTOCOL`,
  :func:`default_settings`, :func:`merge_settings`, :func:`finetune_settings`;
- :mod:`.folds`: :func:`make_folds` (k-fold, group k-fold, one split, the paper's
  protocol), :func:`subsample_training` (learning-curve points) and
  :func:`few_shot_splits`;
- :mod:`.keys`: what a stored result depends on (:func:`fold_key`,
  :func:`model_components`, the model and pre-training specs);
- :mod:`.inputs`: the dataset subset and targets, the cached model inputs and the
  pre-training corpus with its cached checkpoint;
- :mod:`.tasks`: the public way for scripts to load what the benchmark sees:
  :class:`Task` / :func:`load_task` (structures, finite targets, groups),
  :func:`task_folds` (the benchmark's folds) and :func:`featurize_task` (cached records);
- :mod:`.models`: the model factory and :func:`predict_with_domain_check`;
- :mod:`.context`: :class:`RunContext`, the setup a cross-validated and a few-shot run
  share (settings, task, run folder, cache, inputs, model factory, log), built by
  :func:`make_run_context`;
- :mod:`.run`: :func:`run_benchmark`; :mod:`.fewshot`: :func:`run_few_shot`;
- :mod:`.report`: :func:`summarize`, :func:`markdown_table`, :func:`settings_line`, the
  few-shot table and the figures;
- :mod:`.storage`: atomic JSON files, the run's environment;
- :mod:`.cli`: :func:`benchmark_main`, :func:`demo_main`.
"""

from __future__ import annotations

# Everything listed in ``__all__``, plus (with redundant ``as`` aliases) the names other
# modules, the benchmark scripts and the tests import from here.
from mcrt_sklearn.benchmark.cli import DEMO_MODELS as DEMO_MODELS
from mcrt_sklearn.benchmark.cli import DEMO_SETTINGS as DEMO_SETTINGS
from mcrt_sklearn.benchmark.cli import benchmark_main, demo_main
from mcrt_sklearn.benchmark.cli import build_benchmark_parser as build_benchmark_parser
from mcrt_sklearn.benchmark.context import RunContext as RunContext
from mcrt_sklearn.benchmark.context import make_run_context as make_run_context
from mcrt_sklearn.benchmark.fewshot import run_few_shot
from mcrt_sklearn.benchmark.folds import few_shot_splits, make_folds, subsample_training
from mcrt_sklearn.benchmark.inputs import _Corpus as _Corpus
from mcrt_sklearn.benchmark.inputs import _Inputs as _Inputs
from mcrt_sklearn.benchmark.inputs import _load_subset as _load_subset
from mcrt_sklearn.benchmark.inputs import _pretrain_checkpoint as _pretrain_checkpoint
from mcrt_sklearn.benchmark.inputs import _pretrain_paths as _pretrain_paths
from mcrt_sklearn.benchmark.inputs import _target_values as _target_values
from mcrt_sklearn.benchmark.keys import _RESULT_FORMAT as _RESULT_FORMAT
from mcrt_sklearn.benchmark.keys import _featurizer_spec as _featurizer_spec
from mcrt_sklearn.benchmark.keys import _hash as _hash
from mcrt_sklearn.benchmark.keys import _model_spec as _model_spec
from mcrt_sklearn.benchmark.keys import _pretrain_spec as _pretrain_spec
from mcrt_sklearn.benchmark.keys import fold_key, model_components
from mcrt_sklearn.benchmark.metrics import METRIC_LABELS as METRIC_LABELS
from mcrt_sklearn.benchmark.metrics import METRICS as METRICS
from mcrt_sklearn.benchmark.metrics import OPTIONAL_METRICS as OPTIONAL_METRICS
from mcrt_sklearn.benchmark.metrics import guess_lower_is_better as guess_lower_is_better
from mcrt_sklearn.benchmark.metrics import (
    regression_metrics,
    top_k_recovery,
    within_group_spearman,
)
from mcrt_sklearn.benchmark.models import _ModelFactory as _ModelFactory
from mcrt_sklearn.benchmark.models import predict_with_domain_check
from mcrt_sklearn.benchmark.report import markdown_table, summarize
from mcrt_sklearn.benchmark.report import settings_line as settings_line
from mcrt_sklearn.benchmark.run import run_benchmark
from mcrt_sklearn.benchmark.settings import MCRT_MODELS as MCRT_MODELS
from mcrt_sklearn.benchmark.settings import (
    MODELS,
    PAPER_PROTOCOL,
    default_settings,
    finetune_settings,
    merge_settings,
    parse_overrides,
)
from mcrt_sklearn.benchmark.settings import _parse_sets as _parse_sets
from mcrt_sklearn.benchmark.storage import _environment as _environment
from mcrt_sklearn.benchmark.storage import _write_json as _write_json
from mcrt_sklearn.benchmark.tasks import Task, featurize_task, load_task, task_folds

__all__ = [
    "MODELS",
    "default_settings",
    "finetune_settings",
    "top_k_recovery",
    "regression_metrics",
    "within_group_spearman",
    "make_folds",
    "subsample_training",
    "PAPER_PROTOCOL",
    "run_benchmark",
    "run_few_shot",
    "few_shot_splits",
    "summarize",
    "fold_key",
    "model_components",
    "predict_with_domain_check",
    "markdown_table",
    "benchmark_main",
    "demo_main",
    "Task",
    "load_task",
    "task_folds",
    "featurize_task",
    "parse_overrides",
    "merge_settings",
]
