"""The ``mcrt-sklearn`` command line.

Subcommands that later work fills in say "not implemented yet" and exit with status 2
rather than pretend to work.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mcrt_sklearn._version import __version__

NOT_IMPLEMENTED = 2


def _not_implemented(name: str):
    def run(args: argparse.Namespace) -> int:
        print(f"mcrt-sklearn {name}: not implemented yet", file=sys.stderr)
        return NOT_IMPLEMENTED

    return run


def _cmd_datasets(args: argparse.Namespace) -> int:
    """Summarise one dataset, or list the known ones."""
    import numpy as np

    from mcrt_sklearn.datasets import DATASETS, get_data_home, load_dataset

    if args.name is None:
        home = get_data_home(args.data_home)
        for name, info in DATASETS.items():
            where = "present" if (home / name / "cifs").is_dir() else (
                "downloadable" if info.download else "missing")
            print(f"{name:16s} {where:13s} {info.description}")
        print(f"data home: {home}")
        return 0
    ids, structures, table = load_dataset(args.name, data_home=args.data_home)
    n_atoms = np.array([len(s) for s in structures])
    print(f"{args.name}: {len(ids)} structures, {n_atoms.min()}–{n_atoms.max()} atoms "
          f"(median {int(np.median(n_atoms))})")
    numeric = table.select_dtypes("number").drop(columns=["n_atoms"], errors="ignore")
    if not numeric.empty:
        print(numeric.describe().T[["count", "mean", "std", "min", "max"]].to_string())
    for sid, why in table.attrs.get("skipped", []):
        print(f"left out {sid}: {why}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """For now: load the azaphenacene landscape and summarise it (the benchmark comes later)."""
    args.name = "azaphenacenes"
    print("mcrt-sklearn demo: the model comparison is not implemented yet; "
          "summarising the demo dataset instead.\n")
    return _cmd_datasets(args)


COMMANDS = {
    "featurize": "featurise CIFs into MCRT input records",
    "pretrain": "self-supervised pre-training (MAP/APC/CDP/SEP)",
    "finetune": "fine-tune MCRT on a property",
    "predict": "predict a property for CIFs with a fine-tuned model",
    "embed": "[CLS] embeddings and a t-SNE map",
    "explain": "attention-rollout maps over atoms and persistence-image patches",
    "benchmark": "cross-validated benchmark of MCRT against the baselines",
}


#: Subcommands still to be written; they fail with "not implemented yet".
UNFINISHED = tuple(COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcrt-sklearn",
        description="MCRT for scikit-learn: molecular-crystal property prediction.",
    )
    parser.add_argument("--version", action="version", version=f"mcrt_sklearn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="the main job on a real dataset (see README)")
    p.add_argument("--data-home", default=None, help="folder holding the datasets")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("datasets", help="list the datasets, or summarise one")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--data-home", default=None, help="folder holding the datasets")
    p.set_defaults(func=_cmd_datasets)

    for name in UNFINISHED:
        p = sub.add_parser(name, help=f"{COMMANDS[name]} (not implemented yet)")
        p.set_defaults(func=_not_implemented(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
