"""``mcrt-sklearn models list | fetch | convert | info``: the published models and
checkpoint files from the command line (registered by :mod:`mcrt_sklearn.cli`)."""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def _cmd_models_list(args: argparse.Namespace) -> int:
    from mcrt_sklearn.pretrained import list_models, models_dir

    for m in list_models():
        what = f"{m['predicts']} [{m['unit']}]" if m["predicts"] else "pre-trained encoder"
        print(f"{m['name']:26s} {m['kind']:10s} {'cached' if m['cached'] else 'not cached':10s} "
              f"{what}")
        print(f"    {m['description']}")
        size = f"{m['size']:,} bytes" if m["size"] else "unknown"
        print(f"    source: {m['source']}\n    size: {size}; sha256: "
              f"{m['sha256'] or 'not published (recorded at the first download)'}")
        print(f"    licence: {m['licence']}")
    print(f"model cache: {models_dir()} (set $MCRT_SKLEARN_MODELS to move it)")
    return 0


def _cmd_models_fetch(args: argparse.Namespace) -> int:
    from mcrt_sklearn.pretrained import fetch

    print(fetch(args.name, progress=not args.no_progress, sha256=args.sha256))
    return 0


def _cmd_models_convert(args: argparse.Namespace) -> int:
    from mcrt_sklearn.pretrained import convert

    out = convert(args.src, args.dst, trusted=args.trusted)
    print(f"wrote {out} (safetensors weights + JSON; loads without --trusted)")
    return 0


def _print_checkpoint_info(info: dict) -> None:
    arch = info["architecture"]
    keys = ("num_blocks", "hid_dim", "num_heads", "mlp_ratio", "alignn_hidden_dim",
            "alignn_num_conv", "positional", "use_images", "max_graph_len", "angle_nbr")
    print(f"file: {info['path']} ({info['size_bytes']:,} bytes, sha256 {info['sha256']})")
    print(f"format: {info['format']}; loads without unpickling: "
          f"{'yes' if info['safe'] else 'no (needs --trusted; convert it once)'}")
    print("architecture: " + ", ".join(f"{k}={arch[k]}" for k in keys if k in arch))
    print(f"parameters: {info['n_parameters']:,} ({info['n_tensors']} tensors)")
    print(f"heads: {', '.join(info['heads']) or '(none)'}")
    if info.get("library_version"):
        print(f"written by: mcrt_sklearn {info['library_version']}")
    est = info.get("estimator")
    if est:
        print(f"estimator: {est.get('class')}; fitted state: {est.get('fitted')}")
    if info.get("provenance"):
        print("provenance: " + json.dumps(info["provenance"], indent=2, sort_keys=True))
    elif "reference_config" in info:
        print("provenance: a reference checkpoint (no provenance recorded in it)")


def _cmd_models_info(args: argparse.Namespace) -> int:
    import os

    from mcrt_sklearn.errors import CheckpointError
    from mcrt_sklearn.model.checkpoint import checkpoint_info
    from mcrt_sklearn.pretrained import REGISTRY, describe

    entry = None
    if args.model in REGISTRY and not os.path.exists(args.model):
        entry = describe(args.model)
        if not entry["cached"]:
            if args.json:
                print(json.dumps({"registry": entry}, indent=2, sort_keys=True))
                return 0
            _print_entry(entry)
            print(f"not downloaded yet: `mcrt-sklearn models fetch {args.model}` "
                  f"(or put the file at {entry['cache_path']})")
            return 0
    try:
        info = checkpoint_info(entry["cache_path"] if entry else args.model, trusted=args.trusted)
    except CheckpointError as err:
        if entry is None or "trusted=True" not in str(err):
            raise
        _print_entry(entry)
        print(f"cached at {entry['cache_path']}; it is a file that needs full unpickling: "
              f"add --trusted, or convert it once (`mcrt-sklearn models convert {args.model} "
              "OUT --trusted`)")
        return 0
    if args.json:
        print(json.dumps({"registry": entry, "file": info} if entry else info, indent=2,
                         sort_keys=True))
        return 0
    if entry:
        _print_entry(entry)
    _print_checkpoint_info(info)
    return 0


def _print_entry(entry: dict) -> None:
    print(f"{entry['name']}: {entry['description']}")
    if entry.get("predicts"):
        scale = ("" if entry.get("target_mean") is None else
                 f"; trained on (y - {entry['target_mean']}) / {entry['target_std']}")
        print(f"predicts: {entry['predicts']} [{entry['unit']}]{scale}")
    print(f"source: {entry['source']}")
    print(f"licence: {entry['licence']}")
    if entry.get("citation"):
        print(f"cite: {entry['citation']}")
    if entry.get("trained_on"):
        print(f"trained on: {entry['trained_on']}")
    if entry.get("notes"):
        print(f"notes: {entry['notes']}")



def register(sub, help_text: str, model_help: str) -> None:
    """Add the ``models`` subcommand and its actions to ``sub`` (argparse subparsers)."""
    p = sub.add_parser("models", help=help_text)
    actions = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="the published models, and which are cached")
    q.set_defaults(func=_cmd_models_list)
    q = actions.add_parser("fetch", help="download a model into the cache (once), print its path")
    q.add_argument("name", help="a published model's name or an http(s) URL")
    q.add_argument("--sha256", default=None, help="expected sha256 of the file")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_models_fetch)
    q = actions.add_parser("convert", help="convert a checkpoint once into safetensors + JSON "
                                           "(loads without --trusted, identical outputs)")
    q.add_argument("src", help="the checkpoint: " + model_help)
    q.add_argument("dst", help="the file to write")
    q.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of SRC (needed for Lightning files; trusted "
                        "sources only)")
    q.set_defaults(func=_cmd_models_convert)
    q = actions.add_parser("info", help="architecture, parameter count, heads and provenance "
                                        "of a file or a published model")
    q.add_argument("model", help="a checkpoint file, a published model's name or a URL")
    q.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of a Lightning file")
    q.add_argument("--json", action="store_true", help="print the information as JSON")
    q.set_defaults(func=_cmd_models_info)
