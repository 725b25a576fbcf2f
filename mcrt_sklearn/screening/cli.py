"""``mcrt-sklearn screen`` and ``mcrt-sklearn suggest`` (registered by :mod:`mcrt_sklearn.cli`)."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]

#: The model names of :data:`mcrt_sklearn.screening.models.SCREEN_MODELS` (kept here so
#: that building the parser imports nothing heavy; a test checks they agree).
MODEL_CHOICES = ("KRR-SOAP", "GP-SOAP", "RF-SOAP", "MCRT", "MCRT-ensemble")

HELP = {
    "screen": "rank a CSP landscape with conformal intervals; ranking.csv, landscape.png",
    "suggest": "the next structures to compute (confidence-bound acquisition + diversity)",
}


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _params(items) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = _value(value.strip())
    return out


def _featurizer_params(args) -> dict:
    if args.model.startswith("MCRT"):
        if args.images == "none":
            return {"images": False}
        return {"images": True, "image_mode": args.images}
    return {}


def _direction(args):
    if args.lower_is_better:
        return True
    if args.higher_is_better:
        return False
    return None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="folder: cifs/ + properties.csv with --target")
    p.add_argument("--target", required=True, help="column of the training properties.csv")
    p.add_argument("--candidates", required=True,
                   help="folder: cifs/ (+ optional properties.csv; no target needed)")
    p.add_argument("--model", default="GP-SOAP", choices=MODEL_CHOICES)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model parameter (JSON value), e.g. --set hid_dim=64 --set n_ensemble=5")
    p.add_argument("--images", choices=["exact", "fast", "none"], default="exact",
                   help="MCRT persistence images")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--lower-is-better", action="store_true",
                     help="rank lowest first (default for targets named *energ*)")
    way.add_argument("--higher-is-better", action="store_true")
    p.add_argument("--cache-dir", default=None, help="featurisation cache")
    p.add_argument("--n-jobs", type=int, default=1, help="featurisation processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")


def _cmd_screen(args) -> int:
    from mcrt_sklearn.screening.workflow import screen

    res = screen(args.train, args.target, args.candidates, model=args.model,
                 interval=args.interval, known=args.known or (), top_k=args.top_k, out=args.out,
                 lower_is_better=_direction(args), method=args.method, cv=args.cv,
                 model_params=_params(args.set), featurizer_params=_featurizer_params(args),
                 cache_dir=args.cache_dir, n_jobs=args.n_jobs, random_state=args.seed,
                 group_column=args.group_column)
    for part, entries in res.skipped.items():
        for sid, why in entries:
            print(f"skipped ({part}) {sid}: {why}", file=sys.stderr)
    print(f"ranked {len(res.ranking)} candidates; wrote "
          + ", ".join(str(p) for p in res.files.values()))
    if res.coverage is not None:
        print(f"empirical coverage of the {res.interval:.0%} intervals on the candidates: "
              f"{res.coverage:.3f} (mean width {res.mean_width:.4g})")
    return 0


def _cmd_suggest(args) -> int:
    from mcrt_sklearn.screening.acquire import suggest_next

    table, skipped = suggest_next(args.train, args.target, args.candidates, model=args.model,
                                  n=args.n, lower_is_better=_direction(args), kappa=args.kappa,
                                  diversity=args.diversity, out=args.out,
                                  model_params=_params(args.set),
                                  featurizer_params=_featurizer_params(args),
                                  cache_dir=args.cache_dir, n_jobs=args.n_jobs,
                                  random_state=args.seed)
    for part, entries in skipped.items():
        for sid, why in entries:
            print(f"skipped ({part}) {sid}: {why}", file=sys.stderr)
    print(table.to_string(index=False))
    print(f"wrote {args.out}/suggestions.csv and suggestions.md")
    return 0


def register(sub) -> None:
    """Add the ``screen`` and ``suggest`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("screen", help=HELP["screen"])
    _common(p)
    p.add_argument("--interval", type=float, default=0.9, help="nominal coverage")
    p.add_argument("--known", nargs="*", default=[], metavar="ID",
                   help="ids of known / experimental forms to mark")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--method", choices=["cross", "split"], default="cross",
                   help="CV+ (cross, default) or split conformal")
    p.add_argument("--cv", type=int, default=5, help="folds of --method cross")
    p.add_argument("--group-column", default=None,
                   help="training column naming each structure's molecule: calibrate the "
                        "intervals for candidates of new molecules (leave-groups-out folds)")
    p.set_defaults(func=_cmd_screen)

    p = sub.add_parser("suggest", help=HELP["suggest"])
    _common(p)
    p.add_argument("--n", type=int, default=10, help="structures to suggest")
    p.add_argument("--kappa", type=float, default=1.0, help="std weight of the bound")
    p.add_argument("--diversity", type=float, default=1.0,
                   help="similarity penalty in the embedding (0: off)")
    p.set_defaults(func=_cmd_suggest)
