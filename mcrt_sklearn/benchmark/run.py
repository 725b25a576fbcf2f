"""The cross-validated, resumable benchmark run (:func:`run_benchmark`)."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence

from sklearn.exceptions import ConvergenceWarning

from mcrt_sklearn.benchmark.context import make_run_context
from mcrt_sklearn.benchmark.folds import learning_curve_fraction, subsample_training
from mcrt_sklearn.benchmark.intervals import conformal, interval_metrics
from mcrt_sklearn.benchmark.keys import _RESULT_FORMAT, _model_spec, fold_key, model_components
from mcrt_sklearn.benchmark.metrics import regression_metrics, within_group_spearman
from mcrt_sklearn.benchmark.models import (
    _estimator_params,
    _training_curve,
    predict_with_domain_check,
)
from mcrt_sklearn.benchmark.report import markdown_table, summarize, write_plots
from mcrt_sklearn.benchmark.settings import GNN_BASELINES, MODELS, PAPER_PROTOCOL, _is_pretrained
from mcrt_sklearn.benchmark.storage import _environment, _write_json
from mcrt_sklearn.benchmark.tasks import task_folds
from mcrt_sklearn.versions import provenance

__all__ = ["run_benchmark"]


def run_benchmark(
    dataset,
    target: str,
    models: Sequence[str] = MODELS,
    cv: int | str = 5,
    group: str | None = None,
    pretrain_on="pretrain_corpus",
    fast: bool = False,
    out_dir="benchmark_results",
    data_home=None,
    random_state: int = 0,
    settings: dict | None = None,
    plots: bool = True,
    verbose: bool = True,
    only_folds: Sequence[int] | None = None,
) -> dict:
    """Cross-validate ``models`` on one dataset/target with shared folds; resumable.

    Parameters
    ----------
    dataset : str or path
        A dataset name (``"azaphenacenes"``, ``"roy"`` …) or a folder with
        ``cifs/<id>.cif`` + ``properties.csv``.
    target : str
        Column of ``properties.csv`` to predict.
    models : sequence of str
        Subset of :data:`MODELS`.
    cv : int or "split"
        Number of (group) folds, ``"split"`` for one 80/20 split, or ``"paper"`` for the
        paper's protocol (random 80/10/10 train/validation/test, 5 seeds).
    group : str, optional
        Column whose values are kept together (``GroupKFold``; e.g. ``"group"`` = the
        azaphenacene isomer → unseen molecules in every test fold).
    pretrain_on : str or path
        Unlabelled corpus for MCRT's pre-training (a dataset name or folder).
    fast : bool
        Reduced CPU profile (see :func:`default_settings`).
    out_dir : path
        Results, caches and figures. The run folder is ``out_dir/<dataset>-<target>``.
    data_home : path, optional
        Where datasets live (else ``$MCRT_SKLEARN_DATA``, else downloaded).
    random_state : int
        Seeds folds, subsets and every model.
    settings : dict, optional
        Overrides deep-merged into :func:`default_settings` (e.g.
        ``{"finetune": {"max_epochs": 20}, "target_transform": "log10"}``).
    plots : bool
        Write ``parity.png`` and ``radar.png``.
    verbose : bool
        Print progress lines.
    only_folds : sequence of int, optional
        Fit only these folds (0-based; e.g. one per machine of a cluster). Folds fitted
        before are still read; the others are left out of this call's summary, whose
        ``n_folds`` per model then says how many it holds.

    Returns
    -------
    dict
        The content of ``results.json`` plus ``"fitted"`` / ``"skipped"`` lists of
        ``(model, fold)`` run or reused in this call and ``"run_dir"``.
    """
    t_start = time.perf_counter()
    ctx = make_run_context(dataset, target, models, group=group, pretrain_on=pretrain_on,
                           fast=fast, out_dir=out_dir, data_home=data_home,
                           random_state=random_state, settings=settings, verbose=verbose)
    s, log, models, device, lower, k = (ctx.settings, ctx.log, ctx.models, ctx.device,
                                        ctx.lower, ctx.k)
    name, transform, ids, y, groups = ctx.name, ctx.transform, ctx.ids, ctx.y, ctx.groups
    run_dir, inputs, factory = ctx.run_dir, ctx.inputs, ctx.factory
    folds = task_folds(ctx.task, cv, s["seed"])
    fraction = learning_curve_fraction(s.get("train_fraction"))
    if fraction is not None:
        n_full = len(folds[0][0])
        folds = subsample_training(folds, fraction, s["seed"])
        log(f"learning-curve point: {fraction:g} of each fold's training part "
            f"({len(folds[0][0])} of {n_full} structures in fold 1), the test parts unchanged")
    if only_folds is not None:
        only_folds = sorted({int(f) for f in only_folds})
        if not only_folds or only_folds[0] < 0 or only_folds[-1] >= len(folds):
            raise ValueError(f"only_folds must name folds 0 … {len(folds) - 1}; got {only_folds}")
    if cv == "paper":  # validation = 10 % of all, held out of the 90 % training part
        frac = PAPER_PROTOCOL["validation_fraction"] / (1 - PAPER_PROTOCOL["test_fraction"])
        s["finetune"] = {**s["finetune"], "validation_fraction": frac}
        for gnn in GNN_BASELINES:  # the same held-out tenth picks their best epoch
            s[gnn] = {**s[gnn], "validation_fraction": frac}
    log(f"{name}: {len(ids)} structures, target {target}"
        f"{' (' + transform + ')' if transform else ''}, {len(folds)} fold(s)"
        f"{' grouped by ' + group if group else ''}; models: {', '.join(models)}; device {device}")
    _write_json(run_dir / "folds.json", {"ids": ids, "folds": [
        {"train": [ids[i] for i in tr], "test": [ids[i] for i in te]} for tr, te in folds]})
    fitted, skipped = [], []
    per_model: dict[str, list[dict]] = {}
    for model in models:
        spec = _model_spec(model, s)
        per_model[model] = []
        for f, (tr, te) in enumerate(folds):
            payload = {"dataset": name, "target": target, "transform": transform,
                       "spec": spec, "seed": s["seed"], "test": [ids[i] for i in te],
                       "train": [ids[i] for i in tr], "k": k, "lower": lower,
                       "content": inputs.content([*tr, *te])}
            if s.get("interval"):  # only then: the keys of runs without intervals stay
                payload["interval"] = s["interval"]
            key = fold_key(payload, model, s)
            path = run_dir / "folds" / model / f"fold{f}.json"
            wanted = only_folds is None or f in only_folds
            if path.is_file():
                try:
                    old = json.loads(path.read_text())
                except json.JSONDecodeError:
                    old = {}
                if old.get("key") == key:
                    per_model[model].append(old)
                    skipped.append((model, f))
                    log(f"[{model}] fold {f + 1}/{len(folds)}: done before, skipped")
                    continue
                if wanted:
                    log(f"[{model}] fold {f + 1}/{len(folds)}: settings changed, re-running")
            if not wanted:
                continue
            est, X = factory.build(model)
            X_tr = [X[i] for i in tr]
            X_te = [X[i] for i in te]
            if s.get("interval"):
                est = conformal(est, s["interval"], s["seed"])
            t1 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # groups: conformal calibration for new groups, or an MCRT validation
                # split of whole groups (finetune.validation_split="groups")
                if groups is not None and (s.get("interval") or getattr(
                        est, "validation_split", None) == "groups"):
                    est.fit(X_tr, y[tr], groups=groups[tr])
                else:
                    est.fit(X_tr, y[tr])
            t_fit = time.perf_counter() - t1
            # keep what says the fit failed (e.g. a collapse to the mean); drop library noise
            fit_warnings = [str(w.message) for w in caught
                            if issubclass(w.category, ConvergenceWarning)]
            for text in fit_warnings:
                log(f"[{model}] fold {f + 1}/{len(folds)}: warning: {text}")
            t2 = time.perf_counter()
            bounds = None
            if s.get("interval"):  # the point prediction and its interval in one pass
                (pred, *bounds), domain_warnings = predict_with_domain_check(
                    est, X_te, "predict_interval")
            else:
                pred, domain_warnings = predict_with_domain_check(est, X_te)
            t_pred = time.perf_counter() - t2
            for text in domain_warnings:
                log(f"[{model}] fold {f + 1}/{len(folds)}: warning: {text}")
            metrics = regression_metrics(y[te], pred, k, lower)
            if bounds is not None:
                metrics.update(interval_metrics(y[te], *bounds))
            result = {"format": _RESULT_FORMAT, "key": key, "dataset": name, "target": target,
                      "transform": transform, "model": model, "fold": f, "metrics": metrics,
                      "n_train": len(tr), "n_test": len(te), "fit_seconds": t_fit,
                      "predict_seconds": t_pred, "device": device,
                      "provenance": provenance(model_components(model, s)),
                      "estimator": _estimator_params(est), "spec": spec,
                      "test_ids": [ids[i] for i in te], "y_true": y[te].tolist(),
                      "y_pred": pred.tolist()}
            curve = _training_curve(est)
            if curve is not None:
                result["training"] = curve
            if fit_warnings:
                result["fit_warnings"] = fit_warnings
            if domain_warnings:
                result["domain_warnings"] = domain_warnings
            if bounds is not None:
                result["lower"], result["upper"] = bounds[0].tolist(), bounds[1].tolist()
            _write_json(path, result)
            per_model[model].append(result)
            fitted.append((model, f))
            log(f"[{model}] fold {f + 1}/{len(folds)}: MAE {metrics['mae']:.3g}  "
                f"R² {metrics['r2']:.3f}  ρ {metrics['spearman']:.3f}  "
                f"top-{metrics['k']} {metrics['topk']}/{metrics['k']}  (fit {t_fit:.0f} s)")

    if groups is not None:
        # computed from the stored predictions, so folds run before this metric get it too
        group_of = dict(zip(ids, groups, strict=True))
        for results_of_model in per_model.values():
            for r in results_of_model:
                rho, n_groups = within_group_spearman(
                    r["y_true"], r["y_pred"], [group_of[i] for i in r["test_ids"]])
                r["metrics"] = {**r["metrics"], "spearman_within_group": rho,
                                "n_groups_ranked": n_groups}
    summary = summarize(per_model)
    results = {
        "format": _RESULT_FORMAT,
        "dataset": name,
        "dataset_source": str(dataset),
        "target": target,
        "target_transform": transform,
        "lower_is_better": bool(lower),
        "top_k": k,
        "cv": cv,
        "group": group,
        "n_structures": len(ids),
        "n_folds": len(folds),
        "fold_sizes": [[len(tr), len(te)] for tr, te in folds],
        "models": models,
        "pretrain_on": str(pretrain_on) if any(m in ("MCRT", "MCRTi") for m in models) else None,
        "pretraining": {("with_images" if ui else "without_images"): meta
                        for ui, meta in factory.pretraining_metadata().items()
                        if any(_is_pretrained(m, s) and (m != "MCRTi") == ui for m in models)},
        "settings": {k2: v for k2, v in s.items() if not k2.startswith("_")},
        "device": device,
        "summary": summary,
        "timings": {"load_seconds": ctx.load_seconds, **inputs.timings,
                    "wall_seconds_this_call": time.perf_counter() - t_start},
        "environment": _environment(),
        "folds_file": "folds.json",
        "fold_results": {m: [f"folds/{m}/fold{i}.json" for i in range(len(folds))]
                         for m in models},
    }
    _write_json(run_dir / "results.json", results)
    table_md = markdown_table(results)
    (run_dir / "results.md").write_text(table_md + "\n")
    if plots:
        write_plots(results, per_model, run_dir)
    results.update({"fitted": fitted, "skipped": skipped, "run_dir": str(run_dir),
                    "per_model": per_model})
    return results
