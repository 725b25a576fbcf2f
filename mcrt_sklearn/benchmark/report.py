"""Reporting: mean ± std over folds (:func:`summarize`), the Markdown comparison table
with the settings actually used (:func:`markdown_table`), the few-shot table and the
figures (:func:`write_plots`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mcrt_sklearn.benchmark.folds import learning_curve_fraction
from mcrt_sklearn.benchmark.metrics import METRICS, OPTIONAL_METRICS, _finite_mean

__all__ = ["summarize", "markdown_table", "settings_line", "few_shot_table", "write_plots"]


def summarize(per_model: dict[str, list[dict]]) -> dict:
    """Mean and std (over folds) of every metric and of the fit time, per model."""
    out = {}
    for model, folds in per_model.items():
        if not folds:
            continue
        entry: dict[str, Any] = {"n_folds": len(folds)}
        optional = [m for m in OPTIONAL_METRICS if all(m in f["metrics"] for f in folds)]
        for m in (*METRICS, *optional):
            vals = np.array([f["metrics"][m] for f in folds], dtype=float)
            finite = vals[np.isfinite(vals)]
            entry[m] = {"mean": _finite_mean(vals),
                        "std": float(finite.std()) if finite.size else float("nan"),
                        "folds": vals.tolist()}
        entry["k"] = int(min(f["metrics"]["k"] for f in folds))
        fit = np.array([f["fit_seconds"] for f in folds])
        entry["fit_seconds"] = {"mean": float(fit.mean()), "total": float(fit.sum())}
        entry["devices"] = sorted({str(f.get("device", "?")) for f in folds})
        warned = [int(f["fold"]) for f in folds if f.get("fit_warnings")]
        if warned:
            entry["warned_folds"] = warned
        unseen = [int(f["fold"]) for f in folds if f.get("domain_warnings")]
        if unseen:
            entry["unseen_element_folds"] = unseen
        out[model] = entry
    return out


def _fmt(entry: dict, digits: int) -> str:
    mean, std = entry["mean"], entry["std"]
    if not math.isfinite(mean):
        return "n/a"
    if std and math.isfinite(std) and std > 0:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def settings_line(results: dict) -> str:
    """One line naming the model sizes and training lengths actually used."""
    s, models = results["settings"], results["models"]
    parts = []
    if any(m.startswith("MCRT") for m in models):
        a, ft, pt = s["mcrt"], s["finetune"], s["pretrain"]
        pre = results.get("pretraining") or {}
        ft_pre = {k: v for k, v in (s.get("finetune_pretrained") or {}).items()
                  if ft.get(k) != v}
        own = ("; pre-trained ones " + ", ".join(
            f"{k.replace('max_epochs', 'epochs')} {v:g}" if isinstance(v, (int, float))
            else f"{k} {v}" for k, v in ft_pre.items())) if pre and ft_pre else ""
        text = (f"MCRT {a['num_blocks']} blocks × {a['hid_dim']} (ALIGNN encoder "
                f"{a['alignn_hidden_dim']} × {a['alignn_num_conv']}), fine-tuned "
                f"{ft['max_epochs']} epochs (lr {ft['lr']:g}, batch {ft['batch_size']}{own})")
        if pre:
            meta = next(iter(pre.values()))
            text += (f", pre-trained {pt['max_epochs']} epochs on {meta['n_structures']} "
                     f"structures of {results.get('pretrain_on')}")
        parts.append(text)
    for m in ("CGCNN", "ALIGNN", "CrystalTwins"):
        if m in models:
            extra = (f", {s[m].get('alignn_layers', 4)}+{s[m].get('gcn_layers', 4)} layers × "
                     f"{s[m].get('hidden_features', 256)}" if m == "ALIGNN" else "")
            parts.append(f"{m} {s[m].get('max_epochs')} epochs{extra}")
    if "RF-SOAP" in models:
        rf = s["RF-SOAP"]
        parts.append("RF-SOAP " + ("grid search" if rf.get("search")
                                   else f"{rf.get('n_estimators')} trees"))
    if "KRR-SOAP" in models:
        parts.append("KRR-SOAP " + ("grid search" if s["KRR-SOAP"].get("search")
                                    else f"alpha {s['KRR-SOAP'].get('alpha')}"))
    return "; ".join(parts) + "."


def markdown_table(results: dict) -> str:
    """The comparison table (mean ± std over folds) in Markdown, with the run's settings."""
    summary = results["summary"]
    k = results["top_k"]
    has_within = bool(summary) and all("spearman_within_group" in e for e in summary.values())
    within_col = " ρ within group |" if has_within else ""
    has_iv = bool(summary) and all("coverage" in e for e in summary.values())
    level = (results["settings"].get("interval") or {}).get("confidence_level")
    iv_col = f" coverage ({level:g}) | interval width |" if has_iv else ""
    t = results["target"] + (f" ({results['target_transform']})" if results["target_transform"]
                             else "")
    lines = [
        f"{results['dataset']} — {t}: {results['n_structures']} structures, "
        + (f"the paper's protocol (random 80/10/10 train/validation/test, "
           f"{results['n_folds']} seeds)" if results.get("cv") == "paper" else
           f"{results['n_folds']} folds" if results["n_folds"] > 1 else
           "one train/test split" + (" ({}/{})".format(*results["fold_sizes"][0])
                                     if results.get("fold_sizes") else ""))
        + (f" grouped by `{results['group']}`" if results["group"] else "")
        + (f", trained on {frac:g} of each training part (test parts unchanged: a "
           "learning-curve point)" if (frac := learning_curve_fraction(
               results["settings"].get("train_fraction"))) is not None else "")
        + f"; top-{k} = {'lowest' if results['lower_is_better'] else 'highest'} values; "
        + ("reduced settings (`fast` profile)" if results["settings"].get("fast")
           else "paper settings")
        + ", persistence images "
        + (f"`{results['settings']['featurizer']['image_mode']}`"
           if results["settings"]["featurizer"].get("images", True) else "off")
        + ".",
        "",
        *(["Settings: " + settings_line(results), ""] if results.get("models") else []),
        f"| model | MAE | RMSE | R² | Spearman ρ |{within_col}{iv_col} top-{k} recovered "
        "| fit time / fold (s) | device |",
        "|---|---|---|---|---|" + "---|" * (has_within + 2 * has_iv) + "---|---|---|",
    ]
    for model, e in summary.items():
        w = f" {_fmt(e['spearman_within_group'], 3)} |" if has_within else ""
        if has_iv:
            w += f" {_fmt(e['coverage'], 3)} | {_fmt(e['width'], 2)} |"
        name = model if e["n_folds"] == results["n_folds"] else \
            f"{model} ({e['n_folds']} of {results['n_folds']})"
        lines.append(
            f"| {name} | {_fmt(e['mae'], 2)} | {_fmt(e['rmse'], 2)} | {_fmt(e['r2'], 3)} | "
            f"{_fmt(e['spearman'], 3)} |{w} {_fmt(e['topk'], 1)} / {e['k']} | "
            f"{e['fit_seconds']['mean']:.0f} | {', '.join(e.get('devices', ['?']))} |"
        )
    if has_within:
        lines += ["", "ρ within group: mean Spearman ρ inside each test group with ≥ 5 "
                  "structures (constant predictions count as 0), then mean ± std over folds."]
    warned = {m: e["warned_folds"] for m, e in summary.items() if e.get("warned_folds")}
    if warned:
        lines += ["", "Fits that learnt little (last-epoch training loss ≥ 0.9 on standardised "
                  "targets, where predicting the training mean gives 1.0; `fit_warnings` "
                  "in these fold files): " + "; ".join(
                      f"{m} ({', '.join(f'fold{i}' for i in f)})"
                      for m, f in warned.items()) + "."]
    unseen = {m: e["unseen_element_folds"] for m, e in summary.items()
              if e.get("unseen_element_folds")}
    if unseen:
        lines += ["", "Folds whose test structures hold elements unseen in fit (their "
                  "predictions are extrapolations; `domain_warnings` in these fold files): "
                  + "; ".join(f"{m} ({', '.join(f'fold{i}' for i in f)})"
                              for m, f in unseen.items()) + "."]
    return "\n".join(lines)


def few_shot_table(results: dict) -> str:
    """The few-shot table (MAE, mean over target groups, per number of shots) in Markdown."""
    summary, shots, models = results["summary"], results["shots"], results["models"]
    lines = [f"{results['dataset']} — {results['target']}: few-shot on unseen "
             f"`{results['group']}` values ({len(results['target_groups'])} target groups); "
             "MAE (mean over target groups) by number of target-group structures used", "",
             "| model | " + " | ".join(f"{n} shots" for n in shots) + " |",
             "|---|" + "---|" * len(shots)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(
            f"{summary[model][str(n)]['mae']:.2f}" for n in shots) + " |")
    return "\n".join(lines)


def write_plots(results: dict, per_model: dict[str, list[dict]] | None, run_dir) -> None:
    """The figures of a run, into ``run_dir``: ``parity.png`` and ``radar.png`` for a
    cross-validated run (``per_model``: its fold results), ``few_shot.png`` (MAE against
    shots) for a few-shot one."""
    run_dir = Path(run_dir)
    name, target = results["dataset"], results["target"]
    if results.get("protocol") == "few-shot":
        from mcrt_sklearn.benchmark.figures import few_shot_plot

        few_shot_plot(results["summary"], run_dir / "few_shot.png", title=f"{name}: {target}")
        return
    from mcrt_sklearn.benchmark.figures import parity_plot, radar_plot

    transform = results["target_transform"]
    parity_plot(per_model, run_dir / "parity.png",
                title=f"{name}: {target}" + (f" ({transform})" if transform else ""))
    radar_plot(results["summary"], run_dir / "radar.png", k=results["top_k"],
               title=f"{name}: {target}")
