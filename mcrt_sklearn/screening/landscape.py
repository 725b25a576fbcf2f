"""The energy–density landscape figure (the paper's Fig. S15 by one call).

Predicted target against density for the candidates, with their intervals as vertical
bars; the training structures (computed values) shown apart in grey; the predicted top-k
highlighted; the known or experimental forms marked with a star, labelled on the plot and
named one by one in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mcrt_sklearn.screening._plotting import pyplot

__all__ = ["plot_landscape"]


def plot_landscape(
    density,
    prediction,
    lower=None,
    upper=None,
    ids: Sequence[str] | None = None,
    top: Sequence[str] = (),
    known: Sequence[str] = (),
    train_density=None,
    train_value=None,
    train_ids: Sequence[str] | None = None,
    ylabel: str = "predicted target",
    title: str | None = None,
    path=None,
    ax=None,
):
    """Draw the landscape.

    Parameters
    ----------
    density, prediction : (n,) candidates' density (g/cm³) and predicted value
    lower, upper : (n,), optional
        Interval bounds, drawn as bars.
    ids : candidate ids (needed for ``top`` and ``known``)
    top : ids of the predicted top-k candidates (highlighted)
    known : ids of known / experimental forms, among the candidates or the training
        structures; each is starred, labelled and listed in the legend
        (``"known: <id>"``)
    train_density, train_value, train_ids : the training structures (computed values)
    ylabel, title : axis label and title
    path : where to save the PNG (optional)
    ax : matplotlib Axes to draw on (optional)

    Returns
    -------
    matplotlib Figure
    """
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5.0))
    else:
        fig = ax.figure
    density = np.asarray(density, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    ids = [str(i) for i in (ids if ids is not None else range(len(density)))]
    pos = {sid: i for i, sid in enumerate(ids)}
    if train_density is not None and train_value is not None:
        ax.scatter(train_density, train_value, s=14, marker="s", color="0.6", alpha=0.7,
                   label=f"training (computed, n={len(train_value)})", zorder=1)
    if lower is not None and upper is not None:
        lower = np.asarray(lower, dtype=float)
        upper = np.asarray(upper, dtype=float)
        ax.vlines(density, lower, upper, color="tab:blue", alpha=0.25, lw=1.0, zorder=2,
                  label="interval")
    ax.scatter(density, prediction, s=12, color="tab:blue", alpha=0.8, zorder=3,
               label=f"candidates (predicted, n={len(prediction)})")
    top_idx = [pos[t] for t in top if t in pos]
    if top_idx:
        ax.scatter(density[top_idx], prediction[top_idx], s=46, facecolors="none",
                   edgecolors="tab:red", linewidths=1.4, zorder=4,
                   label=f"predicted top {len(top_idx)}")
    train_pos = {str(t): i for i, t in enumerate(train_ids or [])}
    markers = ["*", "P", "X", "D", "^", "v", "<", ">", "p", "h"]
    for j, sid in enumerate(known):
        sid = str(sid)
        if sid in pos:
            x, yv, where = density[pos[sid]], prediction[pos[sid]], "predicted"
        elif sid in train_pos and train_density is not None:
            i = train_pos[sid]
            x, yv, where = np.asarray(train_density)[i], np.asarray(train_value)[i], "computed"
        else:
            continue
        ax.scatter([x], [yv], s=150, marker=markers[j % len(markers)], color=f"C{(j + 2) % 10}",
                   edgecolors="k", linewidths=0.6, zorder=5, label=f"known: {sid} ({where})")
        ax.annotate(sid, (x, yv), xytext=(5, 5), textcoords="offset points", fontsize=7,
                    zorder=6)
    ax.set_xlabel("density (g/cm³)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
