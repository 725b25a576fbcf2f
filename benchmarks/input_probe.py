"""How much of a target do MCRT's inputs hold? Kernel and linear probes on one fold.

A fine-tuned network can only use what its inputs carry. This script summarises each
input modality of the benchmark's MCRT records into a fixed-length vector and fits
kernel ridge regression (RBF, hyper-parameters by 5-fold grid search on the training
part) and ridge regression (``RidgeCV``) on one fold of a benchmark dataset, printing
the test MAE of each next to that of the training mean:

- the two persistence images and the four [SCL] scalars (the global modality), and the
  scalars alone;
- the neighbour-angle cosines (the angle projector's input), pooled over atoms: mean,
  standard deviation and fraction missing of each of the 28 columns;
- a histogram of the cell's pair distances per atom (what the distance rows hold once
  atom order is shuffled);
- the [CLS] embedding, the pooled [CLS] and the mean atom token of a *freshly
  initialised* MCRT of the benchmark's size (no training: what the architecture passes
  on by construction).

These are simple summaries, so a low score bounds what a *simple* model gets from a
modality, not what a trained network could; a high one shows the signal is there. The
benchmark's ``KRR-SOAP`` row on the same fold is the comparison.

    python benchmarks/input_probe.py --dataset roy --target relative_energy_kJ_per_mol \
        --cache /work/bench_out/cache
    python benchmarks/input_probe.py --dataset azaphenacenes \
        --target lattice_energy_kJ_per_mol --group group --cache /work/bench_out/cache
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def pooled_angles(record) -> np.ndarray:
    """Mean, std and missing fraction of each angle column over the crystal's atoms."""
    from mcrt_sklearn.featurizers.record import MISSING_ANGLE

    a = np.asarray(record.angle_features, dtype=np.float64)
    missing = a <= MISSING_ANGLE + 1.0
    present = np.where(missing, np.nan, a)
    with warnings.catch_warnings():  # an all-missing column: NaN, reported as 0
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(present, axis=0), np.nanstd(present, axis=0)
    return np.nan_to_num(np.concatenate([mean, std, missing.mean(axis=0)]))


def distance_histogram(record, bins: int = 40, r_max: float = 12.0) -> np.ndarray:
    """Histogram of the cell's minimum-image pair distances, per atom."""
    d = record.distance_matrix[np.triu_indices(record.n_atoms, 1)]
    return np.histogram(d, bins=bins, range=(0.8, r_max))[0] / record.n_atoms


def network_embeddings(records, arch: dict, seed: int = 0, batch: int = 16):
    """[CLS], pooled [CLS] and mean atom token of a freshly initialised MCRT."""
    import torch

    from mcrt_sklearn.collate import collate
    from mcrt_sklearn.model import MCRT, MCRTConfig

    torch.manual_seed(seed)
    net = MCRT(MCRTConfig(**arch)).eval()
    raw, pooled, mean_tok = [], [], []
    with torch.no_grad():
        for i in range(0, len(records), batch):
            b = collate(records[i:i + batch])
            out = net.encode(b)
            mask = b["atom_mask"]
            atoms = out["tokens"][:, 1:1 + mask.shape[1]]
            raw.append(out["raw_cls_feats"])
            pooled.append(out["cls_feats"])
            mean_tok.append((atoms * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
    return {name: torch.cat(v).numpy() for name, v in
            (("fresh MCRT [CLS]", raw), ("fresh MCRT pooled [CLS]", pooled),
             ("fresh MCRT mean atom token", mean_tok))}


def probe_scores(X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray
                 ) -> tuple[float, float]:
    """Test MAE of grid-searched RBF kernel ridge and of RidgeCV, both on standardised X."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    grid = {"kernelridge__alpha": [1e-3, 1e-2, 1e-1, 1.0],
            "kernelridge__gamma": list(np.logspace(-3, 1, 5) / X.shape[1])}
    krr = GridSearchCV(make_pipeline(StandardScaler(), KernelRidge(kernel="rbf")), grid, cv=5,
                       scoring="neg_mean_absolute_error").fit(X[tr], y[tr])
    lin = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15))).fit(X[tr],
                                                                                      y[tr])
    return (float(np.mean(np.abs(krr.predict(X[te]) - y[te]))),
            float(np.mean(np.abs(lin.predict(X[te]) - y[te]))))


def main(argv=None) -> None:
    from _one_fold import add_fold_arguments, load_fold

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fold_arguments(p, cache_default="input_probe_cache")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    fold = load_fold(args)
    s, records, y, tr, te = fold.settings, fold.records, fold.y, fold.train, fold.test

    features = {
        "persistence images + [SCL] scalars": np.array(
            [np.concatenate([r.image.ravel(), r.image_scalars]) for r in records]),
        "[SCL] scalars": np.array([r.image_scalars for r in records]),
        "angle cosines (pooled)": np.array([pooled_angles(r) for r in records]),
        "pair-distance histogram": np.array([distance_histogram(r) for r in records]),
        **network_embeddings(records, s["mcrt"], s["seed"]),
    }
    print(f"{args.dataset} / {args.target}: fold {args.fold} of {args.cv}, "
          f"{len(tr)} train / {len(te)} test; MAE of the training mean "
          f"{np.mean(np.abs(y[tr].mean() - y[te])):.3g}")
    print("| input summary | dim | KRR (RBF) test MAE | ridge test MAE | s |")
    print("|---|---|---|---|---|")
    for name, X in features.items():
        t = time.perf_counter()
        k, r = probe_scores(X, y, tr, te)
        print(f"| {name} | {X.shape[1]} | {k:.3g} | {r:.3g} | {time.perf_counter() - t:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
