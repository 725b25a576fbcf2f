"""Why do the MCRT rows of a demo or benchmark fold stop at a floor? Look at the [CLS] path.

Refits one MCRT variant of a finished ``mcrt-sklearn demo`` / ``benchmark`` fold with the
settings recorded in its ``results.json`` (features from its cache), then reports, for the
test structures, the regression head's prediction next to the lowest and highest values
the head can reach at all, ``b ± Σ|w_i|`` (the pooler output ``tanh(dense(h))`` lies in
[-1, 1]^H), and how saturated the pooler is (share of units with |tanh| > 0.99). A floor
that sits at that bound means the pooler is saturated: the head cannot go lower without
larger weights.

    python benchmarks/pooler_diagnosis.py --run mcrt_demo/azaphenacenes-lattice_energy_kJ_per_mol \
        --model MCRTp --out benchmarks/results/recipe-ablation/demo-pooler-MCRTp.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    import torch

    from mcrt_sklearn.benchmark import featurize_task, finetune_settings, load_task
    from mcrt_sklearn.collate import collate
    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a run folder (results.json)")
    p.add_argument("--model", default="MCRTp", choices=["MCRTp", "MCRTa"])
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--cache", type=Path, default=None, help="default: RUN/../cache")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = json.loads((args.run / "results.json").read_text())
    s = res["settings"]
    folds = json.loads((args.run / "folds.json").read_text())
    fold = folds["folds"][args.fold]
    task = load_task(res["dataset"], res["target"], ids=fold["train"] + fold["test"])
    y = task.y
    records = featurize_task(task, s, args.cache or args.run.parent / "cache")
    n_tr = len(fold["train"])
    arch = dict(s["mcrt"])
    if args.model == "MCRTa":
        arch["positional"] = "absolute"
    reg = MCRTRegressor(**arch, **finetune_settings(args.model, s), random_state=s["seed"],
                        device="cpu").fit(records[:n_tr], y[:n_tr])
    net = reg.network_.eval()
    head = net.regression_head.fc
    w, b = head.weight.detach().reshape(-1).numpy(), float(head.bias.detach())
    lo = (b - np.abs(w).sum()) * reg.y_std_ + reg.y_mean_
    hi = (b + np.abs(w).sum()) * reg.y_std_ + reg.y_mean_
    with torch.no_grad():
        enc = net.encode(collate(records[n_tr:]))
    cls = enc["cls_feats"].numpy()
    pred = reg.predict(records[n_tr:])
    y_te = y[n_tr:]
    floor = pred <= np.quantile(pred, 0.1) + 0.5
    out = {
        "run": str(args.run), "model": args.model, "fold": args.fold, "n_train": n_tr,
        "best_epoch": reg.best_epoch_, "epochs": len(reg.history_),
        "test_mae": float(np.mean(np.abs(pred - y_te))),
        "head_lowest_reachable": float(lo), "head_highest_reachable": float(hi),
        "pred_min": float(pred.min()), "pred_max": float(pred.max()),
        "target_min": float(y_te.min()), "target_max": float(y_te.max()),
        "n_at_floor": int(floor.sum()),
        "saturated_share_at_floor": float(np.mean(np.abs(cls[floor]) > 0.99)),
        "saturated_share_others": float(np.mean(np.abs(cls[~floor]) > 0.99)),
        # how much of the possible downward range the floor structures use: 1 = every unit
        # at the sign that lowers the prediction, fully saturated
        "floor_use_of_range": float(np.mean(-(cls[floor] @ np.sign(w)) / len(w))),
        "head_weight_l1": float(np.abs(w).sum()), "y_std": reg.y_std_, "y_mean": reg.y_mean_,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
