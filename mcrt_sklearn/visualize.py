"""Pictures of what MCRT learnt: t-SNE maps of [CLS] embeddings and attention maps."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["tsne", "plot_embedding_map", "plot_attention"]


def tsne(embeddings: np.ndarray, random_state: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of ``embeddings`` (openTSNE when installed, else scikit-learn)."""
    X = np.asarray(embeddings, dtype=np.float64)
    perplexity = float(min(perplexity, max(2.0, (len(X) - 1) / 3)))
    try:
        from openTSNE import TSNE as OpenTSNE

        return np.asarray(OpenTSNE(perplexity=perplexity, random_state=random_state,
                                   n_jobs=1).fit(X))
    except ImportError:
        from sklearn.manifold import TSNE

        return TSNE(perplexity=perplexity, random_state=random_state, init="pca").fit_transform(X)


def plot_embedding_map(xy: np.ndarray, values: Sequence, label: str, path: str | os.PathLike,
                       title: str = "MCRT [CLS] embeddings (t-SNE)") -> None:
    """Scatter plot of a 2-D map, coloured by numeric or categorical ``values``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(values)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if values.dtype.kind in "biuf":
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values.astype(float), s=14, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=label)
    else:
        for cat in sorted(set(values.tolist()), key=str):
            mask = values == cat
            ax.scatter(xy[mask, 0], xy[mask, 1], s=14, label=str(cat))
        ax.legend(title=label, fontsize=7, markerscale=1.5, loc="best")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_attention(structure, scores: dict, path: str | os.PathLike, image=None) -> None:
    """Attention-rollout figure: atoms coloured by score, and the image-patch scores.

    Parameters
    ----------
    structure : pymatgen Structure
        The crystal (atoms in the record's order).
    scores : dict
        One item of :meth:`MCRTEncoder.explain`.
    path : path
        PNG to write.
    image : ndarray (2, P, P), optional
        The persistence images, drawn under the patch scores.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_patches = "patches_1d" in scores
    ncols = 3 if has_patches else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4.6), squeeze=False)
    ax = axes[0, 0]
    xyz = structure.cart_coords
    # Project on the two directions of largest spread so the molecules are readable.
    centred = xyz - xyz.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    atom_scores = np.asarray(scores["atoms"])
    sizes = [30 + 25 * (site.specie.Z > 1) for site in structure]
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=atom_scores, s=sizes, cmap="magma_r",
                    edgecolors="k", linewidths=0.3)
    for (x, y), site in zip(xy, structure):
        if site.specie.Z > 1:
            ax.annotate(site.specie.symbol, (x, y), fontsize=5, ha="center", va="center",
                        color="w")
    fig.colorbar(sc, ax=ax, label="rollout score")
    ax.set_title(f"{scores['structure_id']}: atoms")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if has_patches:
        for k, (key, name) in enumerate((("patches_1d", "H1 (channels)"),
                                         ("patches_2d", "H2 (voids)"))):
            ax = axes[0, 1 + k]
            patch = np.asarray(scores[key])
            if image is not None:
                ax.imshow(np.asarray(image[k]), cmap="gray_r", extent=(0, 10, 10, 0))
                ax.imshow(patch, cmap="magma_r", alpha=0.6, extent=(0, 10, 10, 0))
            else:
                ax.imshow(patch, cmap="magma_r", extent=(0, 10, 10, 0))
            ax.set_title(f"persistence image {name}: patches")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
