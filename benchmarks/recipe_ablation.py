"""Which part of the training recipe makes MCRT fit? A fresh MCRTp, old vs reference recipe.

For each task, one split, one fresh MCRTp (default 4 x 128, the largest size the 2-core
CPU budget allows) is fine-tuned with

- ``old``: this package's recipe before the reference one (AdamW with torch's betas over
  one decayed group, no clipping, one batch per step, rounded warm-up, the last epoch,
  BatchNorm statistics recomputed after training);
- ``reference``: the reference recipe (the estimators' defaults now);
- ``ref-<change>``: the reference recipe with one ingredient put back to the old one.

and records train / validation / test MAE, R², the spread of the training predictions
against the targets, the epochs used, and collapse diagnostics: how many distinct levels
the test predictions take, the share of saturated pooler outputs (|tanh| > 0.99) of the
[CLS] embedding, and how much of the prediction variance the number of atoms per cell
explains (eta²). ``--anchors`` also fits KRR-SOAP (grid-searched as in the benchmark)
and RF-SOAP (and the training mean) on train + validation of the same split, so the
variants can be read against baselines on the same test structures. The report gives each
run's mean signed test error and, on the grouped task, the test MAE left once each
held-out isomer's mean error is removed: what remains of the error when a new molecule's
level is set aside. One JSON file per task and variant under
``--out`` (a rerun skips the ones present); ``--report`` writes ``table.md`` there from them.

    python benchmarks/recipe_ablation.py --tasks roy aza-paper aza-grouped --threads 2
    python benchmarks/recipe_ablation.py --tasks roy aza-paper aza-grouped --anchors --only
    python benchmarks/recipe_ablation.py --report

Tasks: ``roy`` (ROY relative energy, random 80/10/10), ``aza-paper`` (azaphenacene lattice
energy, random 80/10/10, the paper's protocol), ``aza-grouped`` (azaphenacene lattice
energy, test = whole isomers, GroupShuffleSplit by ``group``), ``demo`` (the demo's 150
azaphenacene structures, random 80/20, with the old ``--fast`` profile, 2 x 64).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "recipe-ablation"

#: One ingredient of the reference recipe put back to the old behaviour.
CHANGES = {
    "betas": dict(betas=(0.9, 0.999)),
    "clip": dict(gradient_clip=None),
    "groups": dict(param_groups="decay_all"),
    "accumulate": dict(accumulate=1),
    "schedule": dict(schedule="legacy"),
    "last-epoch": dict(early_stopping=False),
    "recalibrate": dict(recalibrate_batchnorm=True),
}
OLD = dict(betas=(0.9, 0.999), gradient_clip=None, param_groups="decay_all", accumulate=1,
           schedule="legacy", early_stopping=False, recalibrate_batchnorm=True)

TASKS = {
    "roy": dict(dataset="roy", target="relative_energy_kJ_per_mol", group=None, max_n=None),
    "aza-paper": dict(dataset="azaphenacenes", target="lattice_energy_kJ_per_mol", group=None,
                      max_n=250),
    "aza-grouped": dict(dataset="azaphenacenes", target="lattice_energy_kJ_per_mol",
                        group="group", max_n=250),
    "demo": dict(dataset="azaphenacenes", target="lattice_energy_kJ_per_mol", group=None,
                 max_n=150),
}


def _arch(size: str) -> dict:
    hid, blocks = (int(v) for v in size.split("x")[::-1])
    return dict(hid_dim=hid, num_blocks=blocks, num_heads=4, alignn_hidden_dim=hid // 2,
                alignn_num_conv=2, drop_rate=0.0)


def split(n: int, groups, seed: int = 0):
    """train / validation / test positions: 80/10/10 at random, or whole groups as test."""
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        n_te = n_va = max(1, n // 10)
        return order[n_te + n_va:], order[n_te:n_te + n_va], order[:n_te]
    from sklearn.model_selection import GroupShuffleSplit

    tr, te = next(GroupShuffleSplit(1, test_size=0.2, random_state=seed).split(
        np.arange(n), groups=groups))
    tr = rng.permutation(tr)
    n_va = max(1, len(tr) // 9)
    return tr[n_va:], tr[:n_va], te


def load_task(name: str, cache: Path):
    from mcrt_sklearn.datasets import load_dataset
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    task = TASKS[name]
    ids, structures, table = load_dataset(task["dataset"])
    y = table[task["target"]].to_numpy(dtype=float)
    keep = np.flatnonzero(np.isfinite(y))
    if task["max_n"] and task["max_n"] < len(keep):
        keep = np.sort(np.random.default_rng(0).choice(keep, task["max_n"], replace=False))
    groups = table[task["group"]].to_numpy()[keep] if task["group"] else None
    fz = MCRTFeaturizer(image_mode="fast", angle_convention="reference", supercell="reference",
                        n_jobs=1, cache_dir=str(cache / "features"))
    records = fz.transform([structures[i] for i in keep], ids=[ids[i] for i in keep])
    return records, y[keep], groups, [structures[i] for i in keep]


#: Baselines fitted on the same split as the variants, so a variant's test MAE can be
#: read against what a well-tuned non-neural model gets on the same test structures.
ANCHORS = ("KRR-SOAP", "RF-SOAP", "TrainMean")


def run_anchor(name: str, structures, y, parts, cache: Path) -> dict:
    """Fit a SOAP baseline on train + validation (as the benchmark's 3-fold grid search
    does for KRR-SOAP) and score it on the variants' test structures."""
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import GridSearchCV

    from mcrt_sklearn.baselines import krr_soap_param_grid, make_krr_soap, make_rf_soap

    tr, va, te = parts
    pool = np.concatenate([tr, va])
    common = dict(soap_cache=str(cache / "soap"))
    if name == "TrainMean":  # its "offsets removed" MAE is the targets' spread within groups
        from sklearn.dummy import DummyRegressor

        est = DummyRegressor(strategy="mean")
    elif name == "KRR-SOAP":
        est = GridSearchCV(make_krr_soap(**common), krr_soap_param_grid(), cv=3,
                           scoring="neg_mean_absolute_error")
    else:
        est = make_rf_soap(n_estimators=200, random_state=0, **common)
    t0 = time.perf_counter()
    est.fit([structures[i] for i in pool], y[pool])
    fit_s = time.perf_counter() - t0
    out = {"variant": f"anchor-{name}", "fit_seconds": fit_s, "n_train": len(pool),
           "n_test": len(te)}
    for part, idx in (("train", pool), ("test", te)):
        pred = est.predict([structures[i] for i in idx])
        out[f"{part}_mae"] = float(mean_absolute_error(y[idx], pred))
        out[f"{part}_r2"] = float(r2_score(y[idx], pred))
        out[f"{part}_mean_mae"] = float(mean_absolute_error(
            y[idx], np.full(len(idx), y[pool].mean())))
    out["test_pred"] = [float(v) for v in est.predict([structures[i] for i in te])]
    out["test_true"] = y[te].tolist()
    if name == "KRR-SOAP":
        out["best_params"] = {k: v for k, v in est.best_params_.items()}
    return out


def _levels(pred: np.ndarray, y: np.ndarray) -> int:
    """Distinct prediction levels: clusters of predictions closer than 2 % of the target range."""
    gap = 0.02 * (np.ptp(y) or 1.0)
    p = np.sort(pred)
    return int(1 + np.sum(np.diff(p) > gap))


def _eta2(pred: np.ndarray, n_atoms: np.ndarray) -> float:
    """Share of the prediction variance explained by the number of atoms per cell."""
    total = float(np.var(pred))
    if total == 0:
        return float("nan")
    means = {n: pred[n_atoms == n].mean() for n in np.unique(n_atoms)}
    between = float(np.mean([(means[n] - pred.mean()) ** 2 for n in n_atoms]))
    return between / total


def run_variant(records, y, parts, params: dict, seed: int = 0) -> dict:
    import torch
    from sklearn.metrics import mean_absolute_error, r2_score

    from mcrt_sklearn.collate import collate
    from mcrt_sklearn.estimators._net import validation_indices
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    tr, va, te = parts
    # The estimator draws its validation split from what it is given (seeded); give it
    # train + validation with the fraction of ours and read back which records it held out.
    pool = np.concatenate([tr, va])
    has_valid = params.get("early_stopping", True)
    frac = len(va) / len(pool)
    params = {**params, "validation_fraction": frac if has_valid else None}
    if has_valid:
        held, kept = validation_indices(len(pool), frac, seed)
        va, tr = pool[held], pool[kept]
    else:
        tr, va = pool, np.array([], dtype=int)
    t0 = time.perf_counter()
    reg = MCRTRegressor(**params, random_state=seed, device="cpu").fit(
        [records[i] for i in pool], y[pool])
    fit_s = time.perf_counter() - t0
    out = {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()},
           "fit_seconds": fit_s, "epochs_run": len(reg.history_), "best_epoch": reg.best_epoch_,
           "n_train": len(tr), "n_valid": len(va), "n_test": len(te)}
    for name, idx in (("train", tr), ("valid", va), ("test", te)):
        if not len(idx):
            out[f"{name}_mae"] = out[f"{name}_r2"] = float("nan")
            continue
        X = [records[i] for i in idx]
        pred = reg.predict(X)
        out[f"{name}_mae"] = float(mean_absolute_error(y[idx], pred))
        out[f"{name}_r2"] = float(r2_score(y[idx], pred))
        out[f"{name}_pred_std"] = float(np.std(pred))
        out[f"{name}_target_std"] = float(np.std(y[idx]))
        out[f"{name}_mean_mae"] = float(mean_absolute_error(y[idx], np.full(len(idx), y[tr].mean())))
        if name == "test":
            n_atoms = np.array([r.n_atoms for r in X])
            out["test_levels"] = _levels(pred, y[idx])
            out["test_eta2_n_atoms"] = _eta2(pred, n_atoms)
            out["test_pred"] = pred.tolist()
            out["test_true"] = y[idx].tolist()
            out["test_n_atoms"] = n_atoms.tolist()
            with torch.no_grad():
                cls = reg.network_.eval().encode(collate(X))["cls_feats"].numpy()
            out["test_cls_saturated"] = float(np.mean(np.abs(cls) > 0.99))
    out["train_loss_last"] = float(reg.history_[-1, "train_loss"])
    out["grad_norm_median"] = float(np.median([b["grad_norm"] for e in reg.history_
                                               for b in e["batches"] if "grad_norm" in b]))
    return out


def variants(profile: str, epochs: int) -> dict[str, dict]:
    """Variants of one profile; micro-batches of 8 crystals (what the reference's
    BatchNorm sees) unless the variant changes that."""
    if profile == "demo":  # the demo's --fast MCRTp: 2 x 64, batch 8, lr 1e-3, 8 epochs
        base = dict(**_arch("2x64"), lr=1e-3, batch_size=8, accumulate=1, max_epochs=8,
                    use_images=True)
        extra = {"reference-micro2": {**base, "accumulate": 4},
                 "reference-32x4": {**base, "batch_size": 32, "accumulate": 4},
                 "reference-20ep": {**base, "max_epochs": 20},
                 "reference-30ep": {**base, "max_epochs": 30},
                 "reference-20ep-head10": {**base, "max_epochs": 20, "lr_mult": 10.0},
                 "reference-30ep-head10": {**base, "max_epochs": 30, "lr_mult": 10.0},
                 "reference-30ep-fanin": {**base, "max_epochs": 30, "head_init": "fan_in"}}
    else:
        base = dict(**_arch(profile), lr=3e-4, batch_size=16, accumulate=2,
                    max_epochs=epochs, use_images=True)
        extra = {"ref-accumulate": {**base, "accumulate": 1}}
    out = {"old": {**base, **OLD}, "reference": dict(base)}
    for name, change in CHANGES.items():
        if name != "accumulate":
            out[f"ref-{name}"] = {**base, **change}
    out.update(extra)
    return out


def report(out: Path) -> str:
    rows = ["| task | variant | train MAE | valid MAE | test MAE | test R² | mean-predictor test MAE "
            "| train pred. std / target std | epochs (best) | test levels | saturated [CLS] | "
            "eta²(n_atoms) | test bias | test MAE, group offsets removed | fit s |", "|" + "---|" * 15]
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for f in sorted(task_dir.glob("*.json"), key=lambda p: (p.stem != "old",
                                                                 p.stem != "reference", p.stem)):
            r = json.loads(f.read_text())
            if "variant" not in r or f.stem.startswith("anchor-"):  # e.g. old-demo/summary.json
                continue
            bias, within = offsets(r)
            rows.append(
                f"| {task_dir.name} | {f.stem} | {r['train_mae']:.2f} | {r['valid_mae']:.2f} | "
                f"{r['test_mae']:.2f} | {r['test_r2']:.2f} | {r['test_mean_mae']:.2f} | "
                f"{r['train_pred_std'] / r['train_target_std']:.2f} | {r['epochs_run']} "
                f"({r['best_epoch']}) | {r['test_levels']} | {r['test_cls_saturated']:.2f} | "
                f"{r['test_eta2_n_atoms']:.2f} | {bias:+.2f} | {within:.2f} | "
                f"{r['fit_seconds']:.0f} |")
    summary = ["", "Over seeds (mean ± std of the test MAE; R² mean):", "",
               "| task | variant | seeds | test MAE | test R² | train MAE |", "|---|---|---|---|---|---|"]
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        runs: dict[str, list] = {}
        for f in task_dir.glob("*.json"):
            r = json.loads(f.read_text())
            if "variant" in r:
                runs.setdefault(r["variant"], []).append(r)
        for name, rs in sorted(runs.items()):
            if len(rs) < 2:
                continue
            te = np.array([r["test_mae"] for r in rs])
            summary.append(f"| {task_dir.name} | {name} | {len(rs)} | {te.mean():.2f} ± "
                           f"{te.std():.2f} | {np.mean([r['test_r2'] for r in rs]):.2f} | "
                           f"{np.mean([r['train_mae'] for r in rs]):.2f} |")
    anchors = ["", "Baselines on the same split (fitted on train + validation; "
               "`--anchors`):", "", "| task | model | train MAE | test MAE | test R² | "
               "mean-predictor test MAE | test bias | test MAE, group offsets removed | fit s |",
               "|---|---|---|---|---|---|---|---|---|"]
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for f in sorted(task_dir.glob("anchor-*.json")):
            r = json.loads(f.read_text())
            bias, within = offsets(r)
            anchors.append(f"| {task_dir.name} | {f.stem[len('anchor-'):]} | {r['train_mae']:.2f} "
                           f"| {r['test_mae']:.2f} | {r['test_r2']:.2f} | "
                           f"{r['test_mean_mae']:.2f} | {bias:+.2f} | {within:.2f} | "
                           f"{r['fit_seconds']:.0f} |")
    return "\n".join(rows + (summary if len(summary) > 5 else [])
                     + (anchors if len(anchors) > 5 else []))


def _groups_of(groups, parts) -> dict:
    """The group of each test structure (in the order of ``test_pred``), for grouped tasks."""
    return {} if groups is None else {"test_groups": [str(v) for v in groups[parts[2]]]}


def offsets(r: dict) -> tuple[float, float]:
    """Mean signed test error, and the test MAE left once each test group's mean error
    (the misplaced level of an unseen molecule) is removed (NaN without groups)."""
    err = np.asarray(r["test_pred"]) - np.asarray(r["test_true"])
    if "test_groups" not in r:
        return float(err.mean()), float("nan")
    g = np.asarray(r["test_groups"])
    within = np.concatenate([err[g == k] - err[g == k].mean() for k in np.unique(g)])
    return float(err.mean()), float(np.abs(within).mean())


def _write(path: Path, res: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["roy", "aza-paper", "aza-grouped"],
                   choices=sorted(TASKS))
    p.add_argument("--size", default="4x128", help="BLOCKSxHIDDEN of the fresh MCRTp")
    p.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (not demo)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="model seeds (initialisation, shuffling, validation split); the "
                        "train/test split stays that of seed 0; seed s > 0 writes <variant>@s.json")
    p.add_argument("--only", nargs="*", default=None, help="variants to run (default: all; "
                   "`--only` with no name runs none, e.g. with --anchors)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "MCRT_ABLATION_CACHE", "recipe_ablation_cache")))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--anchors", action="store_true",
                   help=f"also fit the baselines {', '.join(ANCHORS)} on each task's split")
    p.add_argument("--report", action="store_true", help="only write README.md from the JSONs")
    args = p.parse_args(argv)
    if args.report:
        table = report(args.out)
        (args.out / "table.md").write_text(table + "\n")
        print(table)
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for task in args.tasks:
        records, y, groups, structures = load_task(task, args.cache)
        parts = split(len(records), groups)
        profile = "demo" if task == "demo" else args.size
        folder = args.out / task
        folder.mkdir(parents=True, exist_ok=True)
        for name in ANCHORS if args.anchors else ():
            path = folder / f"anchor-{name}.json"
            if not path.exists():
                res = run_anchor(name, structures, y, parts, args.cache)
                res.update(task=task, **_groups_of(groups, parts))
                _write(path, res)
                print(f"{task} {name}: train {res['train_mae']:.2f} test {res['test_mae']:.2f} "
                      f"(mean {res['test_mean_mae']:.2f}) R² {res['test_r2']:.2f} "
                      f"{res['fit_seconds']:.0f} s", flush=True)
        for (name, params), seed in itertools.product(variants(profile, args.epochs).items(),
                                                      args.seeds):
            if args.only is not None and name not in args.only:
                continue
            path = folder / (f"{name}.json" if seed == 0 else f"{name}@{seed}.json")
            if path.exists():
                continue
            res = run_variant(records, y, parts, params, seed=seed)
            res.update(task=task, variant=name, size=profile, seed=seed, **_groups_of(groups, parts))
            _write(path, res)
            print(f"{task} {name} seed {seed}: train {res['train_mae']:.2f} valid {res['valid_mae']:.2f} "
                  f"test {res['test_mae']:.2f} (mean {res['test_mean_mae']:.2f}) R² "
                  f"{res['test_r2']:.2f} levels {res['test_levels']} sat "
                  f"{res['test_cls_saturated']:.2f} eta2 {res['test_eta2_n_atoms']:.2f} "
                  f"{res['fit_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
