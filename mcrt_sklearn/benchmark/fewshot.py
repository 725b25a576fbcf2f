"""Few-shot transfer to unseen groups (the paper's protocol): train on the other groups,
adapt with ``n`` structures of the target group, score on its fixed test structures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np

from mcrt_sklearn.benchmark.context import make_run_context
from mcrt_sklearn.benchmark.folds import few_shot_splits, learning_curve_fraction
from mcrt_sklearn.benchmark.keys import _RESULT_FORMAT, _model_spec, fold_key, model_components
from mcrt_sklearn.benchmark.metrics import METRICS, _finite_mean, regression_metrics
from mcrt_sklearn.benchmark.models import predict_with_domain_check
from mcrt_sklearn.benchmark.report import few_shot_table, write_plots
from mcrt_sklearn.benchmark.storage import _environment, _write_json
from mcrt_sklearn.versions import provenance

__all__ = ["run_few_shot"]


def _regressor_with_scale(base_cls):
    """An MCRTRegressor subclass whose target scaling can be pinned (few-shot stage 2)."""

    class _Pinned(base_cls):
        _pinned_scale = None

        def _encode_targets(self, y):
            out = super()._encode_targets(y)
            if self._pinned_scale is not None:
                self.y_mean_, self.y_std_ = self._pinned_scale
                y = np.asarray(y, dtype=np.float64).reshape(-1)
                out = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
            return out

        def _check_training(self):
            # with the stage-1 scaling, a loss of 1 is not the shots' mean predictor
            if self._pinned_scale is None:
                super()._check_training()

    _Pinned.__name__ = base_cls.__name__
    return _Pinned


def run_few_shot(
    dataset,
    target: str,
    group: str,
    models: Sequence[str] = ("MCRT", "MCRTp", "MCRTi", "RF-SOAP", "KRR-SOAP"),
    shots: Sequence[int] = (0, 5, 10, 20),
    target_groups=None,
    min_test: int = 10,
    pretrain_on="pretrain_corpus",
    fast: bool = False,
    out_dir="benchmark_results",
    data_home=None,
    random_state: int = 0,
    settings: dict | None = None,
    plots: bool = True,
    verbose: bool = True,
) -> dict:
    """Few-shot transfer to unseen molecules (the paper's protocol), resumable.

    For every target group: train on all OTHER groups (stage 1), then, for each ``n`` in
    ``shots``, adapt with ``n`` structures of the target group and score on the group's
    fixed test structures. MCRT variants are fine-tuned further from the stage-1 network
    (same fine-tuning settings, or ``settings["few_shot"]["epochs"]``; target scaling of
    stage 1 kept); ``n = 0`` is the stage-1 model itself. Baselines without a
    fine-tuning stage are refitted on other groups + the ``n`` shots. With ``TrainMean``
    among ``models`` a ``ShotMean`` row is added: the mean of the ``n`` shots predicted
    for the whole target group (what knowing the group's offset alone gives).

    Results: ``<out_dir>/<dataset>-<target>/few_shot/<model>/g<group>_n<n>.json`` (skipped
    when present with the same settings), ``few_shot.json``, ``few_shot.md`` and
    ``few_shot.png`` (MAE against shots). Returns the summary plus ``fitted``/``skipped``.

    The setup is that of :func:`run_benchmark` (:func:`make_run_context`): structures
    whose target is NaN or infinite are left out before the groups are split.
    """
    if group is None:
        raise ValueError("few-shot needs a group column (group=...)")
    if learning_curve_fraction((settings or {}).get("train_fraction")) is not None:
        raise ValueError("train_fraction is a cross-validation setting; few-shot sets its "
                         "training sizes with shots")
    ctx = make_run_context(dataset, target, models, group=group, pretrain_on=pretrain_on,
                           fast=fast, out_dir=out_dir, data_home=data_home,
                           random_state=random_state, settings=settings, verbose=verbose)
    s, log, models, device, lower, k = (ctx.settings, ctx.log, ctx.models, ctx.device,
                                        ctx.lower, ctx.k)
    name, transform, ids, y = ctx.name, ctx.transform, ctx.ids, ctx.y
    run_dir, inputs, factory = ctx.run_dir, ctx.inputs, ctx.factory
    shots = sorted({int(n) for n in shots})
    fs_epochs = (s.get("few_shot") or {}).get("epochs")
    splits = few_shot_splits(ids, ctx.groups, shots, min_test, target_groups, s["seed"])
    log(f"{name}: few-shot on {len(splits)} target group(s) {list(splits)}, shots {shots}")
    fitted, skipped, rows = [], [], []
    for model in models:
        spec = _model_spec(model, s)
        is_mcrt = model.startswith("MCRT")
        for g, sp in splits.items():
            base_est = None
            for n in shots:
                key = fold_key({"few_shot": True, "dataset": name, "target": target,
                                "transform": transform, "spec": spec, "seed": s["seed"],
                                "group": str(g), "n": n, "epochs": fs_epochs,
                                "base": [ids[i] for i in sp["base"]],
                                "shots": [ids[i] for i in sp["pool"][:n]],
                                "test": [ids[i] for i in sp["test"]], "k": k, "lower": lower,
                                "content": inputs.content(
                                    [*sp["base"], *sp["pool"][:n], *sp["test"]])}, model, s)
                path = run_dir / "few_shot" / model / f"g{g}_n{n}.json"
                if path.is_file():
                    old = json.loads(path.read_text())
                    if old.get("key") == key:
                        rows.append(old)
                        skipped.append((model, str(g), n))
                        continue
                shot_idx = sp["pool"][:n]
                te = sp["test"]
                t1 = time.perf_counter()
                if is_mcrt:
                    if base_est is None:
                        base_est, X = factory.build(model)
                        base_est.fit([X[i] for i in sp["base"]], y[sp["base"]])
                        base_ckpt = run_dir / "few_shot" / model / f".g{g}_base.pt"
                        base_ckpt.parent.mkdir(parents=True, exist_ok=True)
                        base_est.save(base_ckpt)
                    X = inputs.records()
                    if n == 0:
                        est = base_est
                    else:
                        params = base_est.get_params()
                        params.update(checkpoint=str(base_ckpt))
                        if fs_epochs:
                            params["max_epochs"] = int(fs_epochs)
                        params["batch_size"] = min(params["batch_size"], n)
                        est = _regressor_with_scale(type(base_est))(**params)
                        est._pinned_scale = (base_est.y_mean_, base_est.y_std_)
                        est.fit([X[i] for i in shot_idx], y[shot_idx])
                else:
                    est, X = factory.build(model)
                    train = np.concatenate([sp["base"], shot_idx])
                    est.fit([X[i] for i in train], y[train])
                t_fit = time.perf_counter() - t1
                pred, domain_warnings = predict_with_domain_check(est, [X[i] for i in te])
                metrics = regression_metrics(y[te], pred, k, lower)
                row = {"format": _RESULT_FORMAT, "key": key, "model": model, "group": str(g),
                       "provenance": provenance(model_components(model, s)),
                       "n_shots": n, "metrics": metrics, "n_base": len(sp["base"]),
                       "n_test": len(te), "fit_seconds": t_fit, "test_ids": [ids[i] for i in te],
                       "y_true": y[te].tolist(), "y_pred": pred.tolist()}
                if domain_warnings:
                    row["domain_warnings"] = domain_warnings
                _write_json(path, row)
                rows.append(row)
                fitted.append((model, str(g), n))
                log(f"[{model}] group {g}, {n} shots: MAE {metrics['mae']:.3g} "
                    f"ρ {metrics['spearman']:.3f} (fit {t_fit:.0f} s)")
    if "TrainMean" in models:
        # what knowing the target group's offset alone gives: the mean of its n shots
        # (n = 0: the other groups' mean); instant, so recomputed rather than stored
        for g, sp in splits.items():
            te = sp["test"]
            for n in shots:
                centre = float(np.mean(y[sp["pool"][:n]] if n else y[sp["base"]]))
                pred = np.full(len(te), centre)
                rows.append({"model": "ShotMean", "group": str(g), "n_shots": n,
                             "metrics": regression_metrics(y[te], pred, k, lower),
                             "n_base": len(sp["base"]), "n_test": len(te), "fit_seconds": 0.0,
                             "test_ids": [ids[i] for i in te], "y_true": y[te].tolist(),
                             "y_pred": pred.tolist()})
        models = [*models, "ShotMean"]
    summary: dict = {}
    for model in models:
        summary[model] = {}
        for n in shots:
            sel = [r for r in rows if r["model"] == model and r["n_shots"] == n]
            summary[model][str(n)] = {m: _finite_mean([r["metrics"][m] for r in sel])
                                      for m in METRICS}
    results = {"format": _RESULT_FORMAT, "protocol": "few-shot", "dataset": name,
               "target": target, "target_transform": transform, "group": group,
               "target_groups": [str(g) for g in splits], "shots": shots,
               "min_test": min_test, "models": list(models), "lower_is_better": bool(lower),
               "top_k": k, "settings": {a: b for a, b in s.items() if not a.startswith("_")},
               "pretraining": {("with_images" if ui else "without_images"): meta
                               for ui, (_, meta) in factory.pretrained.items()},
               "summary": summary, "device": device, "environment": _environment()}
    _write_json(run_dir / "few_shot.json", results)
    (run_dir / "few_shot.md").write_text(few_shot_table(results) + "\n")
    if plots:
        write_plots(results, None, run_dir)
    results.update({"fitted": fitted, "skipped": skipped, "run_dir": str(run_dir)})
    return results
