"""Simulated active-learning campaigns on CSP landscapes (issue 18).

Every structure of a landscape has its computed value; a campaign pretends not to know
them. It starts from ``--init`` random labels and adds ``--batch`` per round, chosen either
by the acquisition of :func:`mcrt_sklearn.screening.suggest` (lower confidence bound
for energies, upper for properties, with diversity in the model's embedding) or at
random.
After each round it records

- ``top_recovered``: how many of the landscape's true ``--top`` best structures are
  among the labels so far (what a CSP user wants: the low-energy end found early);
- ``mae_unlabelled``: the MAE of the model fitted on the labels so far, on the
  structures not yet labelled;

against the number of labels used. Models: ``KRR-SOAP``, ``GP-SOAP``, ``RF-SOAP``,
``MCRT``, ``MCRT-ensemble`` (:func:`mcrt_sklearn.screening.build_model`; pass MCRT sizes
with ``--set hid_dim=64`` etc.). Each (landscape, model, strategy, seed) campaign is
written to ``<out>/campaigns/`` when done and skipped when present (resumable). The same
command may run in several processes at once (or on cluster nodes sharing the folder): each
campaign is claimed by a ``.lock`` file beside it, so they share the campaigns out.
``results.json``, ``results.md`` and one figure per landscape summarise the campaigns done
by then, whichever process ran them.

The full run of the issue (5 seeds, ROY and the three largest azaphenacene isomer
landscapes, KRR-SOAP / GP-SOAP and MCRT, rounds until 100 labels)::

    python benchmarks/active_learning.py --dataset roy --models KRR-SOAP GP-SOAP MCRT-ensemble \\
        --seeds 5 --rounds 9 --out benchmarks/results/active-learning/roy
    python benchmarks/active_learning.py --dataset azaphenacenes --groups 9 16 5 \\
        --models KRR-SOAP GP-SOAP MCRT-ensemble --seeds 5 --rounds 5 \\
        --out benchmarks/results/active-learning/azaphenacenes

A smoke run (what was run on 2 CPU cores here)::

    python benchmarks/active_learning.py --dataset roy --models KRR-SOAP GP-SOAP --seeds 2 \\
        --rounds 3 --smoke --out benchmarks/results/active-learning/smoke-roy
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcrt_sklearn.screening.acquire import suggest, supports_std  # noqa: E402
from mcrt_sklearn.screening.loading import featurize_reporting  # noqa: E402
from mcrt_sklearn.screening.models import build_model  # noqa: E402
from mcrt_sklearn.screening.workflow import default_lower_is_better  # noqa: E402

log = logging.getLogger("active_learning")

DEFAULT_TARGETS = {"roy": "relative_energy_kJ_per_mol",
                   "azaphenacenes": "lattice_energy_kJ_per_mol"}


def _value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_landscapes(dataset: str, target: str, groups, data_home=None):
    """[(name, LandscapeData-like tuple (ids, structures, y))] of the dataset."""
    from mcrt_sklearn.datasets import load_dataset
    from mcrt_sklearn.screening.loading import LandscapeData

    ids, structures, table = load_dataset(dataset, data_home=data_home)
    y = table[target].to_numpy(dtype=float)
    ok = np.isfinite(y)
    out = []
    if groups:
        for g in groups:
            keep = np.flatnonzero(ok & (table["group"].astype(str) == str(g)).to_numpy())
            out.append((f"{dataset}-group{g}", keep))
    else:
        out.append((dataset, np.flatnonzero(ok)))
    result = []
    for name, keep in out:
        data = LandscapeData(Path(dataset), [ids[i] for i in keep],
                             [structures[i] for i in keep],
                             table.iloc[keep].reset_index(drop=True))
        result.append((name, data, y[keep]))
    return result


def claim(path: Path) -> bool:
    """Claim the campaign written to ``path`` for this process (``<path>.lock``, created
    atomically), so that the same command run in several processes, or on several nodes
    sharing the folder, shares out the campaigns instead of repeating them. A lock left by
    a process of this host that is no longer alive is taken over."""
    lock = path.with_suffix(".lock")
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = lock.read_text().split()
            except (OSError, ValueError):  # being written, or unreadable: leave it
                return False
            if host != socket.gethostname() or _alive(int(pid)):
                return False
            lock.unlink(missing_ok=True)  # its process died mid-campaign
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def release(path: Path) -> None:
    """Give up the claim on the campaign written to ``path`` (see :func:`claim`)."""
    path.with_suffix(".lock").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _done(path: Path, params: dict):
    """The campaign record at ``path`` when it was run with ``params``, else None."""
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    return done if done.get("params") == params else None


def _species(data):
    return sorted({el.symbol for s in data.structures for el in s.composition.elements})


def run_campaign(features, y, ids, estimator, strategy, seed, init, batch, rounds, top,
                 lower_is_better, kappa, diversity):
    """One campaign; returns its curves."""
    from sklearn.base import clone

    from mcrt_sklearn.screening.intervals import as_samples

    rng = np.random.default_rng(seed)
    n = len(y)
    X = as_samples(features)
    order = np.argsort(y if lower_is_better else -y, kind="stable")
    true_top = set(order[:top].tolist())
    labelled = [int(i) for i in rng.choice(n, size=min(init, n), replace=False)]
    curve = {"n_labels": [], "top_recovered": [], "mae_unlabelled": [], "seconds": []}
    # a model with its own std gives suggest the same mean as its predict: the MAE on the
    # unlabelled structures is read from suggest's pool predictions, not predicted twice
    own_std = supports_std(estimator)
    for r in range(rounds + 1):
        t0 = time.time()
        lab = np.array(labelled)
        rest = np.setdiff1d(np.arange(n), lab)
        last = r == rounds or not len(rest)
        k = min(batch, len(rest))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = clone(estimator).fit(X[lab], y[lab])
            table = None
            if not last and strategy != "random":
                table = suggest(estimator, X[lab], y[lab], X, [str(i) for i in range(n)],
                                labelled_ids=[str(i) for i in lab], n=k,
                                lower_is_better=lower_is_better, kappa=kappa,
                                diversity=diversity, random_state=seed, fitted=model)
            if not len(rest):
                pred = np.array([])
            elif own_std and table is not None:
                pred = table.attrs["pool_prediction"].loc[[str(i) for i in rest]].to_numpy()
            else:
                pred = np.asarray(model.predict(X[rest]), dtype=float).ravel()
        mae = float(np.abs(pred - y[rest]).mean()) if len(rest) else float("nan")
        curve["n_labels"].append(len(lab))
        curve["top_recovered"].append(len(true_top & set(labelled)))
        curve["mae_unlabelled"].append(mae)
        if last:
            curve["seconds"].append(time.time() - t0)
            break
        if table is None:
            new = [int(i) for i in rng.choice(rest, size=k, replace=False)]
        else:
            new = [int(i) for i in table["id"]]
        assert not set(new) & set(labelled), "a labelled structure was suggested"
        labelled.extend(new)
        curve["seconds"].append(time.time() - t0)
    return curve


def summarize(campaigns: list[dict]) -> dict:
    """Mean and sd over seeds of each curve, per (landscape, model, strategy)."""
    groups: dict = {}
    for c in campaigns:
        groups.setdefault((c["landscape"], c["model"], c["strategy"]), []).append(c)
    out = {}
    for (land, model, strategy), items in sorted(groups.items()):
        m = min(len(c["curve"]["n_labels"]) for c in items)
        top = np.array([c["curve"]["top_recovered"][:m] for c in items], dtype=float)
        mae = np.array([c["curve"]["mae_unlabelled"][:m] for c in items], dtype=float)
        out[f"{land}|{model}|{strategy}"] = {
            "landscape": land, "model": model, "strategy": strategy, "seeds": len(items),
            "n_labels": items[0]["curve"]["n_labels"][:m],
            "top_recovered_mean": top.mean(0).tolist(), "top_recovered_sd": top.std(0).tolist(),
            "mae_mean": mae.mean(0).tolist(), "mae_sd": mae.std(0).tolist(),
            # per seed, the mean over the rounds after the random start (the area under
            # the recovery curve / rounds): how early the best structures are found
            "top_recovered_area_mean": float(top[:, 1:].mean(1).mean()) if m > 1 else None,
            "top_recovered_area_sd": float(top[:, 1:].mean(1).std()) if m > 1 else None,
            "n_structures": items[0]["n_structures"],
        }
    return out


def verdicts(summary: dict, top: int) -> list[str]:
    """One honest line per (landscape, model): does acquisition beat random at the end?"""
    lines = []
    pairs = {}
    for s in summary.values():
        pairs.setdefault((s["landscape"], s["model"]), {})[s["strategy"]] = s
    for (land, model), by in sorted(pairs.items()):
        if not {"acquisition", "random"} <= set(by):
            continue
        a, r = by["acquisition"], by["random"]
        m = min(len(a["n_labels"]), len(r["n_labels"]))
        da = a["top_recovered_mean"][m - 1] - r["top_recovered_mean"][m - 1]
        se = np.hypot(a["top_recovered_sd"][m - 1], r["top_recovered_sd"][m - 1]) / np.sqrt(
            max(min(a["seeds"], r["seeds"]), 1))
        mae_a, mae_r = a["mae_mean"][m - 1], r["mae_mean"][m - 1]
        if abs(da) <= 2 * se or da == 0:
            word = "no clear difference from random selection"
        elif da > 0:
            word = "acquisition beats random selection"
        else:
            word = "random selection beats acquisition"
        line = (
            f"- {land}, {model}: after {a['n_labels'][m - 1]} labels, top-{top} recovered "
            f"{a['top_recovered_mean'][m - 1]:.1f} (acquisition) vs "
            f"{r['top_recovered_mean'][m - 1]:.1f} (random), difference {da:+.1f} ± "
            f"{se:.1f} (se over {min(a['seeds'], r['seeds'])} seeds): {word}; "
            f"MAE on the unlabelled rest {mae_a:.3g} vs {mae_r:.3g}")
        if a.get("top_recovered_area_mean") is not None and r.get("top_recovered_area_mean") \
                is not None:
            d_area = a["top_recovered_area_mean"] - r["top_recovered_area_mean"]
            se_area = np.hypot(a["top_recovered_area_sd"], r["top_recovered_area_sd"]) / np.sqrt(
                max(min(a["seeds"], r["seeds"]), 1))
            word_area = ("no clear difference" if abs(d_area) <= 2 * se_area else
                         "acquisition ahead" if d_area > 0 else "random ahead")
            line += (f". Averaged over the rounds after the start (how early they are "
                     f"found): {a['top_recovered_area_mean']:.1f} vs "
                     f"{r['top_recovered_area_mean']:.1f}, {d_area:+.1f} ± {se_area:.1f}: "
                     f"{word_area}")
        lines.append(line)
    return lines


def write_report(out: Path, summary: dict, settings: dict, top: int) -> None:
    from mcrt_sklearn.screening._plotting import pyplot

    plt = pyplot()
    (out / "results.json").write_text(json.dumps({"settings": settings, "summary": summary},
                                                 indent=1))
    lands = sorted({s["landscape"] for s in summary.values()})
    for land in lands:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for s in summary.values():
            if s["landscape"] != land:
                continue
            x = np.array(s["n_labels"])
            style = "-" if s["strategy"] == "acquisition" else "--"
            label = f"{s['model']} {s['strategy']}"
            for ax, key in zip(axes, ("top_recovered", "mae")):
                mu, sd = np.array(s[f"{key}_mean"]), np.array(s[f"{key}_sd"])
                line, = ax.plot(x, mu, style, marker="o", ms=3, label=label)
                ax.fill_between(x, mu - sd, mu + sd, color=line.get_color(), alpha=0.15)
        axes[0].set_ylabel(f"true top-{top} among the labels")
        axes[1].set_ylabel("MAE on the unlabelled structures")
        for ax in axes:
            ax.set_xlabel("labels used")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{land}{' (SMOKE RUN)' if settings.get('smoke') else ''}")
        fig.tight_layout()
        fig.savefig(out / f"{land}.png", dpi=130)
        plt.close(fig)
    lines = [f"# Active learning{' — SMOKE RUN, not a result' if settings.get('smoke') else ''}",
             ""]
    if settings.get("smoke"):
        lines += ["This is a smoke run at a tiny setting (few seeds and rounds, SOAP models "
                  "only) to check that the script works end to end; it is too small to say "
                  "whether acquisition beats random selection. The full command is in "
                  "`benchmarks/active_learning.py` and `docs/screening.md`.", ""]
    lines += [f"Settings: `{json.dumps(settings)}`", "", "## Verdict", ""]
    lines += verdicts(summary, top) or ["- (no acquisition / random pair)"]
    lines += ["", "## Curves (mean ± sd over seeds)", ""]
    for s in summary.values():
        lines.append(f"### {s['landscape']} — {s['model']} — {s['strategy']} "
                     f"({s['seeds']} seeds, {s['n_structures']} structures)")
        lines += ["", "| labels | top recovered | MAE unlabelled |", "|---|---|---|"]
        for i, n in enumerate(s["n_labels"]):
            lines.append(f"| {n} | {s['top_recovered_mean'][i]:.1f} ± "
                         f"{s['top_recovered_sd'][i]:.1f} | {s['mae_mean'][i]:.3g} ± "
                         f"{s['mae_sd'][i]:.2g} |")
        lines.append("")
    lines += [f"Figures: {', '.join(f'`{land}.png`' for land in lands)}", ""]
    (out / "results.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="roy")
    p.add_argument("--target", default=None)
    p.add_argument("--groups", nargs="*", default=None,
                   help="azaphenacenes: isomer groups, one landscape each (e.g. 9 16 5, the "
                        "three with most structures)")
    p.add_argument("--models", nargs="+", default=["KRR-SOAP", "GP-SOAP"])
    p.add_argument("--strategies", nargs="+", default=["acquisition", "random"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--init", type=int, default=10)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--kappa", type=float, default=1.0)
    p.add_argument("--diversity", type=float, default=1.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model parameter, e.g. hid_dim=64 (MCRT)")
    p.add_argument("--images", choices=["exact", "fast", "none"], default="fast")
    p.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/mcrt_sklearn/active_learning"))
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--data-home", default=None)
    p.add_argument("--smoke", action="store_true", help="label the outputs as a smoke run")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    target = args.target or DEFAULT_TARGETS.get(args.dataset)
    lower = default_lower_is_better(target)
    params = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    out = Path(args.out)
    (out / "campaigns").mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "cache_dir", "data_home")}
    settings.update(target=target, lower_is_better=lower)
    paths = []
    for land, data, _y in load_landscapes(args.dataset, target, args.groups, args.data_home):
        for model in args.models:
            fparams = {}
            if model.startswith("MCRT"):
                fparams = ({"images": False} if args.images == "none"
                           else {"images": True, "image_mode": args.images})
            feat, est = build_model(model, params=dict(params), featurizer_params=fparams,
                                    species=_species(data) if model.endswith("SOAP") else None,
                                    cache_dir=args.cache_dir, n_jobs=args.n_jobs)
            t0 = time.time()
            F, sub = featurize_reporting(feat, data)
            ysub = sub.values(target)
            log.info("%s %s: %d structures featurised in %.0f s (%d skipped)", land, model,
                     len(sub.ids), time.time() - t0, len(sub.skipped))
            for strategy in args.strategies:
                for seed in range(args.seeds):
                    path = out / "campaigns" / f"{land}__{model}__{strategy}__{seed}.json"
                    paths.append(path)
                    if _done(path, params) is not None:
                        continue
                    if path.exists():
                        log.info("%s: other model parameters, re-running", path.name)
                    if not claim(path):
                        log.info("%s: being run by another process, skipped", path.name)
                        continue
                    if _done(path, params) is not None:  # finished just before the claim
                        release(path)
                        continue
                    try:
                        t0 = time.time()
                        curve = run_campaign(F, ysub, sub.ids, est, strategy, seed, args.init,
                                             args.batch, args.rounds, args.top, lower,
                                             args.kappa, args.diversity)
                        record = {"landscape": land, "model": model, "strategy": strategy,
                                  "seed": seed, "n_structures": len(sub.ids), "curve": curve,
                                  "seconds": time.time() - t0, "params": params}
                        tmp = path.with_suffix(f".{os.getpid()}.tmp")
                        tmp.write_text(json.dumps(record, indent=1))
                        tmp.replace(path)
                    finally:
                        release(path)
                    log.info("%s %s %s seed %d: top-%d recovered %s (%.0f s)", land, model,
                             strategy, seed, args.top, curve["top_recovered"], time.time() - t0)
    # every campaign of the run that is done by now, whichever process ran it
    campaigns = [c for c in (_done(p, params) for p in paths) if c is not None]
    if len(campaigns) < len(paths):
        log.info("%d of %d campaigns done; the summary holds those", len(campaigns), len(paths))
    summary = summarize(campaigns)
    write_report(out, summary, settings, args.top)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
