"""Learning curves from benchmark runs: test MAE against the number of training structures.

Each point is a ``mcrt-sklearn benchmark`` run folder; a run with ``--train-fraction F``
keeps a seeded, nested share F of each fold's training part and the same test parts, so
the points of one protocol differ only in how much each model was trained on. This
script reads the fold files of the runs named, checks that each model's points share
their test structures, and writes ``learning_curve.md`` and ``learning_curve.json``: per
model and point, the mean ± std test MAE over the folds (seeds), and the exponent ``b``
of a least-squares power law MAE ≈ a · n^-b through the points' mean MAEs. Where two
models' fitted laws cross beyond the largest point, the crossing is reported as an
extrapolation of that law, not as a measurement.

    python benchmarks/learning_curve.py \\
        --run benchmarks/results/learning-curve/azaphenacenes-lattice_energy_kJ_per_mol-train0.25 \\
        --run benchmarks/results/learning-curve/azaphenacenes-lattice_energy_kJ_per_mol-train0.5 \\
        --run KRR-SOAP,RF-SOAP,TrainMean=benchmarks/results/paper-protocol/azaphenacenes-lattice_energy_kJ_per_mol \\
        --run MCRTp=benchmarks/results/paper-protocol-60ep/azaphenacenes-lattice_energy_kJ_per_mol \\
        --out benchmarks/results/learning-curve

``MODELS=FOLDER`` takes only those models from a folder (e.g. the full-size point of a
model whose settings match the smaller points only in that folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np


def read_run(folder: Path, models: list[str] | None = None) -> dict[str, list[dict]]:
    """Fold results per model in a run folder: seed, n_train, MAE, test ids, fit warnings."""
    out: dict[str, list[dict]] = {}
    for model_dir in sorted((folder / "folds").iterdir()):
        if models is not None and model_dir.name not in models:
            continue
        rows = []
        for path in sorted(model_dir.glob("fold*.json")):
            r = json.loads(path.read_text())
            rows.append({"fold": r["fold"], "n_train": r["n_train"],
                         "mae": r["metrics"]["mae"], "r2": r["metrics"]["r2"],
                         "test_ids": r["test_ids"], "fit_seconds": r["fit_seconds"],
                         "fit_warnings": len(r.get("fit_warnings", []))})
        if rows:
            out[model_dir.name] = rows
    return out


def power_law(n: np.ndarray, mae: np.ndarray) -> tuple[float, float]:
    """(a, b) of MAE ≈ a · n^-b, least squares in log–log."""
    slope, intercept = np.polyfit(np.log(n), np.log(mae), 1)
    return float(math.exp(intercept)), float(-slope)


def crossing(law1: tuple[float, float], law2: tuple[float, float]) -> float | None:
    """n where two power laws give the same MAE, or None if they never meet."""
    (a1, b1), (a2, b2) = law1, law2
    if b1 == b2:
        return None
    return float(math.exp(math.log(a1 / a2) / (b1 - b2)))


def build(points: dict[str, dict[str, list[dict]]]) -> dict:
    """Per model: the points sorted by training size, their fold MAEs and the fitted law."""
    per_model: dict[str, list[dict]] = {}
    for label, runs in points.items():
        for model, rows in runs.items():
            per_model.setdefault(model, []).append({
                "run": label, "n_train": float(np.mean([r["n_train"] for r in rows])),
                "n_folds": len(rows), "folds": [r["fold"] for r in rows],
                "mae": [r["mae"] for r in rows], "r2": [r["r2"] for r in rows],
                "mae_mean": float(np.mean([r["mae"] for r in rows])),
                "mae_std": float(np.std([r["mae"] for r in rows])),
                "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in rows])),
                "fit_warnings": int(sum(r["fit_warnings"] for r in rows)),
                "test_ids": {r["fold"]: r["test_ids"] for r in rows}})
    out = {}
    for model, pts in per_model.items():
        pts.sort(key=lambda p: p["n_train"])
        # every point of a model must be measured on the same test structures, fold by fold
        for p, q in itertools.pairwise(pts):
            for f in set(p["test_ids"]) & set(q["test_ids"]):
                if sorted(p["test_ids"][f]) != sorted(q["test_ids"][f]):
                    raise ValueError(f"{model}: fold {f} of {p['run']} and {q['run']} have "
                                     "different test structures; not one learning curve")
        law = None
        if len(pts) >= 2 and all(p["mae_mean"] > 0 for p in pts):
            law = power_law(np.array([p["n_train"] for p in pts]),
                            np.array([p["mae_mean"] for p in pts]))
        for p in pts:
            del p["test_ids"]
        out[model] = {"points": pts, "power_law": law}
    return out


def markdown(curves: dict) -> str:
    sizes = sorted({round(p["n_train"]) for c in curves.values() for p in c["points"]})
    lines = ["Test MAE (mean ± std over the folds / seeds; `n` = folds) against the mean number "
             "of training structures per fold; `b`: exponent of MAE ≈ a · n^-b fitted to the "
             "mean MAEs.", "",
             "| model | " + " | ".join(f"n_train {s}" for s in sizes) + " | b |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for model, c in curves.items():
        cells = {round(p["n_train"]): p for p in c["points"]}
        row = []
        for s in sizes:
            p = cells.get(s)
            row.append("—" if p is None else
                       f"{p['mae_mean']:.2f} ± {p['mae_std']:.2f} (n={p['n_folds']}"
                       + (f", {p['fit_warnings']} fit warnings" if p["fit_warnings"] else "")
                       + ")")
        b = c["power_law"][1] if c["power_law"] else None
        lines.append(f"| {model} | " + " | ".join(row) + f" | {'—' if b is None else f'{b:.2f}'} |")
    laws = {m: c["power_law"] for m, c in curves.items() if c["power_law"]}
    n_max = max(p["n_train"] for c in curves.values() for p in c["points"])
    notes = []
    for m1, m2 in itertools.combinations(laws, 2):
        n = crossing(laws[m1], laws[m2])
        if n is not None and n > n_max:
            notes.append(f"- the fitted laws of {m1} and {m2} would meet at n ≈ {n:,.0f} "
                         f"training structures: an extrapolation beyond the largest point "
                         f"({n_max:.0f}), not a measurement")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="[MODELS=]FOLDER",
                   help="a benchmark run folder, optionally only some of its models")
    p.add_argument("--out", required=True, help="folder for learning_curve.md / .json")
    args = p.parse_args(argv)
    points = {}
    for item in args.run:
        models, _, folder = item.rpartition("=")
        folder = Path(folder)
        runs = read_run(folder, models.split(",") if models else None)
        if not runs:
            raise SystemExit(f"no fold results in {folder}")
        points[str(folder) + (f" ({models})" if models else "")] = runs
    curves = build(points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning_curve.json").write_text(json.dumps(
        {"runs": list(points), "curves": curves}, indent=1) + "\n")
    text = markdown(curves)
    (out / "learning_curve.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
