"""Benchmark figures: parity plots and a radar plot (matplotlib, Agg backend, PNG).

Used by :mod:`mcrt_sklearn.benchmark`; both functions also take the stored results
(``per_model``: model → list of fold-result dicts with ``y_true``/``y_pred``;
``summary``: model → metric → mean/std) so figures can be redrawn from disk.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["parity_plot", "radar_plot", "radar_scores", "few_shot_plot"]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def parity_plot(per_model: dict, path, title: str | None = None, units: str = "") -> Path:
    """One parity panel per model: predicted vs true, pooled over folds (colour = fold).

    Parameters
    ----------
    per_model : dict
        Model name → list of fold results (each with ``y_true``, ``y_pred``, ``metrics``).
    path : path
        PNG to write.
    title : str, optional
        Figure title.
    units : str
        Appended to the axis labels.
    """
    plt = _pyplot()
    models = [m for m, folds in per_model.items() if folds]
    n = max(len(models), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    all_vals = [v for m in models for f in per_model[m] for v in (*f["y_true"], *f["y_pred"])]
    lo, hi = (min(all_vals), max(all_vals)) if all_vals else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    suffix = f" ({units})" if units else ""
    for ax, model in zip(axes.flat, models, strict=False):
        folds = per_model[model]
        for i, f in enumerate(folds):
            ax.scatter(f["y_true"], f["y_pred"], s=9, alpha=0.7, color=f"C{i % 10}",
                       label=f"fold {i + 1}" if len(folds) > 1 else None)
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        mae = np.mean([f["metrics"]["mae"] for f in folds])
        r2 = np.mean([f["metrics"]["r2"] for f in folds])
        ax.set_title(f"{model}\nMAE {mae:.3g}, R² {r2:.2f}", fontsize=9)
        ax.set_xlabel(f"true{suffix}", fontsize=8)
        ax.set_ylabel(f"predicted{suffix}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def radar_scores(summary: dict, k: int = 10) -> tuple[list[str], dict[str, list[float]]]:
    """Per-axis scores in [0, 1] (1 = best model on that axis) for the radar plot.

    MAE and RMSE: best / value (lower is better); R² and Spearman ρ: value clipped at 0;
    top-k: recovered / k. NaN (undefined) counts as 0.
    """
    axes = ["MAE", "RMSE", "R²", "Spearman ρ", f"top-{k}"]
    models = list(summary)

    def mean(m, key):
        v = summary[m][key]["mean"]
        return v if v is not None and math.isfinite(v) else float("nan")

    best_mae = np.nanmin([mean(m, "mae") for m in models]) if models else 1.0
    best_rmse = np.nanmin([mean(m, "rmse") for m in models]) if models else 1.0
    scores = {}
    for m in models:
        kk = summary[m].get("k", k) or k
        vals = [
            best_mae / mean(m, "mae") if mean(m, "mae") > 0 else 1.0,
            best_rmse / mean(m, "rmse") if mean(m, "rmse") > 0 else 1.0,
            max(0.0, mean(m, "r2")),
            max(0.0, mean(m, "spearman")),
            mean(m, "topk") / kk,
        ]
        scores[m] = [float(v) if math.isfinite(v) else 0.0 for v in vals]
    return axes, scores


def radar_plot(summary: dict, path, k: int = 10, title: str | None = None) -> Path:
    """Radar (spider) plot of every model's normalised metrics (see :func:`radar_scores`)."""
    plt = _pyplot()
    axes_names, scores = radar_scores(summary, k)
    n = len(axes_names)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False).tolist()
    angles += angles[:1]
    fig = plt.figure(figsize=(5.5, 5.0))
    ax = fig.add_subplot(111, polar=True)
    for i, (model, vals) in enumerate(scores.items()):
        closed = vals + vals[:1]
        ax.plot(angles, closed, color=f"C{i % 10}", lw=1.5, label=model)
        ax.fill(angles, closed, color=f"C{i % 10}", alpha=0.08)
    ax.set_xticks(angles[:-1])
    ax.set_xticklabels(axes_names, fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels(["0.25", "0.5", "0.75", "1"], fontsize=7)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize=8)
    ax.set_title((title + "\n" if title else "") + "1 = best (MAE/RMSE: best ÷ model)",
                 fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def few_shot_plot(summary: dict, path, metric: str = "mae", title: str | None = None) -> Path:
    """Few-shot learning curves: ``metric`` (mean over target groups) against shots."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    for i, (model, by_n) in enumerate(summary.items()):
        ns = sorted(int(n) for n in by_n)
        ax.plot(ns, [by_n[str(n)][metric] for n in ns], marker="o", color=f"C{i % 10}",
                label=model)
    ax.set_xlabel("structures of the target group used")
    ax.set_ylabel(metric.upper() if metric in ("mae", "rmse") else metric)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
