"""The ``mcrt-sklearn`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mcrt_sklearn._version import __version__


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


COMMANDS = {
    "featurize": "featurise CIFs into MCRT input records",
    "pretrain": "self-supervised pre-training (MAP/APC/CDP/SEP)",
    "finetune": "fine-tune MCRT on a property",
    "predict": "predict a property for CIFs with a fine-tuned model",
    "embed": "[CLS] embeddings and a t-SNE map",
    "explain": "attention-rollout maps over atoms and persistence-image patches",
    "benchmark": "cross-validated benchmark of MCRT against the baselines",
    "models": "the published MCRT models: list, fetch, convert, info",
}

#: Help of every option that takes a model.
MODEL_HELP = ("a checkpoint file, a published model's name (`mcrt-sklearn models list`, "
              "e.g. mcrt-pretrained) or an http(s) URL")

#: Architecture presets (reference config names).
ARCHITECTURES = {
    "tiny": dict(hid_dim=64, num_blocks=2, num_heads=4, alignn_hidden_dim=32, alignn_num_conv=2,
                 drop_rate=0.0),
    "small": dict(hid_dim=256, num_blocks=4, num_heads=8, alignn_hidden_dim=64,
                  alignn_num_conv=2),
    "full": dict(hid_dim=768, num_blocks=12, num_heads=12, alignn_hidden_dim=256,
                 alignn_num_conv=4),
}


def _add_input_args(p: argparse.ArgumentParser, positional: bool = True) -> None:
    if positional:
        p.add_argument("inputs", nargs="*", help="CIF/POSCAR files or folders of CIFs")
    p.add_argument("--dataset", help="a named dataset (see `mcrt-sklearn datasets`)")
    p.add_argument("--data", help="a folder with cifs/<id>.cif and properties.csv")
    p.add_argument("--data-home", default=None, help="folder holding the named datasets")


def _add_featurizer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", choices=["exact", "fast", "none"], default="exact",
                   help="persistence images: reference-exact (slow), fast, or none")
    p.add_argument("--n-jobs", type=int, default=1, help="featurisation processes")
    p.add_argument("--cache-dir", default=None, help="on-disk featurisation cache")


def _add_training_args(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--checkpoint", default=None, help="start from this: " + MODEL_HELP)
    p.add_argument("--trusted", action="store_true",
                   help="allow full unpickling of the checkpoint (trusted files only; the "
                        "published reference files need it, converted files never do)")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="full",
                   help="architecture preset when no checkpoint is given")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=32, help="crystals per optimizer step")
    p.add_argument("--accumulate", type=int, default=4,
                   help="micro-batches per optimizer step (of batch-size / accumulate crystals)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, metavar="STATE",
                   help="training-state file: written after every epoch; if it exists, the "
                        "run continues from it (a killed run, started again)")
    p.add_argument("--resume-every", type=int, default=None, metavar="STEPS",
                   help="with --resume: also write the state every STEPS optimizer steps")


def _expand_paths(inputs: Sequence[str]) -> list[str]:
    from pathlib import Path

    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(q for q in path.iterdir() if q.suffix.lower() == ".cif")
            if not found and (path / "cifs").is_dir():
                found = sorted((path / "cifs").glob("*.cif"))
            paths.extend(str(q) for q in found)
        else:
            paths.append(str(path))
    return paths


def _load_inputs(args: argparse.Namespace):
    """(ids, structures or paths, properties table or None) from the input arguments."""
    from mcrt_sklearn.datasets import load_dataset

    source = getattr(args, "dataset", None) or getattr(args, "data", None)
    if source:
        ids, structures, table = load_dataset(source, data_home=args.data_home)
        return ids, structures, table
    paths = _expand_paths(getattr(args, "inputs", []) or [])
    if not paths:
        raise SystemExit("no input structures: give CIF files/folders, --dataset or --data")
    from pathlib import Path

    return [Path(p).stem for p in paths], paths, None


def _featurizer(args: argparse.Namespace, pretrain_labels: bool = False, images=None):
    from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

    mode = args.images if images is None else images
    return MCRTFeaturizer(images=mode != "none", image_mode=mode if mode != "none" else "exact",
                          pretrain_labels=pretrain_labels, n_jobs=args.n_jobs,
                          cache_dir=args.cache_dir, ignore_errors=True,
                          progress=bool(args.verbose))


def _featurize_reporting(featurizer, items, ids):
    records = featurizer.transform(items, ids=ids)
    for sid, err in getattr(featurizer, "errors_", []):
        print(f"skipped {sid}: {type(err).__name__}: {err}", file=sys.stderr)
    return records


def _store_or_featurize(args: argparse.Namespace, pretrain_labels: bool = False, images=None):
    """The records of a command: the ``--store`` (read from disk as needed), or the
    inputs featurised now."""
    if getattr(args, "store", None):
        from mcrt_sklearn.store import RecordStore

        return RecordStore(args.store)
    ids, items, _ = _load_inputs(args)
    return _featurize_reporting(_featurizer(args, pretrain_labels, images=images), items, ids)


def _add_store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="read the records from this record store (`featurize --store`) "
                        "instead of featurising inputs")


def _cmd_featurize(args: argparse.Namespace) -> int:
    import joblib

    ids, items, _ = _load_inputs(args)
    if args.store:
        from mcrt_sklearn.store import featurize_to_store

        store = featurize_to_store(items, args.store, _featurizer(args, args.pretrain_labels),
                                   ids=ids, client=args.scheduler, chunk_size=args.chunk_size,
                                   progress=True)
        for err in store.errors:
            print(f"failed {err['structure_id']}: {err['type']}: {err['message']}",
                  file=sys.stderr)
        print(f"{args.store}: {len(store)} records, {len(store.errors)} failed")
        return 0
    if args.scheduler:
        raise SystemExit("--scheduler needs --store")
    records = _featurize_reporting(_featurizer(args, args.pretrain_labels), items, ids)
    joblib.dump(records, args.out)
    print(f"wrote {len(records)} records to {args.out}")
    return 0


def _training_kwargs(args: argparse.Namespace) -> dict:
    """Estimator parameters of the training options (and the accelerator, if launched)."""
    from mcrt_sklearn._launch import launched_accelerator

    accelerator = launched_accelerator()
    return dict(max_epochs=args.epochs, batch_size=args.batch_size, accumulate=args.accumulate,
                lr=args.lr, random_state=args.seed, verbose=int(args.verbose),
                resume_from=args.resume, resume_every=args.resume_every,
                **({"accelerator": accelerator} if accelerator is not None
                   else {"device": args.device}))


def _arch_kwargs(args: argparse.Namespace, use_images: bool) -> dict:
    if args.checkpoint:
        return dict(checkpoint=args.checkpoint, trusted=args.trusted)
    return dict(**ARCHITECTURES[args.arch], use_images=use_images)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from mcrt_sklearn.estimators.pretrain import MCRTPretrainer

    records = _store_or_featurize(args, pretrain_labels=True)
    from mcrt_sklearn._launch import main_print

    pre = MCRTPretrainer(**_arch_kwargs(args, args.images != "none"), **_training_kwargs(args))
    pre.fit(records)
    pre.save(args.out)
    last = pre.history_[-1]
    summary = ", ".join(f"{k}={last[k]:.4g}" for k in sorted(last)
                        if k.startswith("train_") and isinstance(last[k], float))
    main_print(pre, f"pre-trained on {len(records)} crystals for {len(pre.history_)} epochs "
                     f"({summary})", f"wrote checkpoint {args.out}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    import numpy as np

    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    if args.store:
        from mcrt_sklearn.datasets.layout import read_properties

        if not args.targets:
            raise SystemExit("--store needs --targets CSV (id and target columns)")
        table = read_properties(args.targets)
    else:
        _, _, table = _load_inputs(args)
    if table is None or args.target not in table:
        raise SystemExit(f"--target {args.target!r} must be a column of the dataset's "
                         "properties.csv (use --dataset, --data, or --store with --targets)")
    records = _store_or_featurize(args)
    y_by_id = dict(zip(table["id"], table[args.target]))
    ids = records.ids if hasattr(records, "ids") else [r.structure_id for r in records]
    missing = [sid for sid in ids if sid not in y_by_id]
    if missing:
        raise SystemExit(f"{len(missing)} structure(s) have no {args.target!r} value, "
                         f"e.g. {missing[0]!r}")
    y = np.array([y_by_id[sid] for sid in ids], dtype=float)
    if args.log10:
        y = np.log10(y)
    from mcrt_sklearn._launch import main_print

    reg = MCRTRegressor(**_arch_kwargs(args, args.images != "none"), **_training_kwargs(args),
                        validation_fraction=args.validation_fraction)
    reg.fit(records, y)
    reg.save(args.out)
    main_print(reg, f"fine-tuned on {len(records)} crystals "
                     f"({args.target}{', log10' if args.log10 else ''}); "
                     f"final train loss {reg.history_[-1, 'train_loss']:.4g}",
                f"wrote model {args.out}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from mcrt_sklearn.estimators.regressor import MCRTRegressor

    reg = MCRTRegressor.load(args.model, device=args.device)
    images = "none" if not reg.network_.config.use_images else args.images
    if images == "none" and reg.network_.config.use_images:
        raise SystemExit("this model uses persistence images; choose --images exact or fast")
    records = _store_or_featurize(args, images=images)
    if args.store:  # a store: predicted chunk by chunk, each chunk appended to the CSV
        from tqdm.auto import tqdm

        from mcrt_sklearn.estimators._net import RecordView

        ids, chunk, n = records.ids, max(1, int(args.chunk_size)), len(records)
        tmp = f"{args.out}.partial"
        for start in tqdm(range(0, n, chunk), desc="predicting", disable=n <= chunk):
            part = RecordView(records, range(start, min(start + chunk, n)))
            pd.DataFrame({"id": ids[start:start + chunk], "prediction": reg.predict(part)}
                         ).to_csv(tmp, index=False, mode="w" if start == 0 else "a",
                                  header=start == 0)
        import os

        if n == 0:
            pd.DataFrame({"id": [], "prediction": []}).to_csv(tmp, index=False)
        os.replace(tmp, args.out)  # complete, or not there at all
        print(f"wrote {n} predictions to {args.out}")
        return 0
    frame = pd.DataFrame({"id": [r.structure_id for r in records],
                          "prediction": reg.predict(records)})
    frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame)} predictions to {args.out}")
    return 0


def _encoder(args: argparse.Namespace):
    from mcrt_sklearn.estimators.encoder import MCRTEncoder

    return MCRTEncoder(checkpoint=args.checkpoint, trusted=args.trusted, device=args.device,
                       random_state=args.seed).fit()


def _cmd_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from mcrt_sklearn.featurizers.labels import SEP_COLUMNS
    from mcrt_sklearn.visualize import plot_embedding_map, tsne

    enc = _encoder(args)
    images = args.images if enc.network_.config.use_images else "none"
    by_symmetry = args.color_by in SEP_COLUMNS or args.color_by == "spacegroup"
    if args.store:  # records read from disk as they are embedded
        from mcrt_sklearn.store import RecordStore

        records, table = RecordStore(args.store), None
        ids = records.ids
    else:
        ids, items, table = _load_inputs(args)
        records = _featurize_reporting(
            _featurizer(args, pretrain_labels=by_symmetry, images=images), items, ids)
        ids = [r.structure_id for r in records]
    emb = enc.transform(records)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", emb)
    (out / "ids.txt").write_text("\n".join(ids) + "\n")
    if args.color_by in SEP_COLUMNS:
        k = SEP_COLUMNS.index(args.color_by)
        values = np.array(["yes" if r.symmetry_elements[k] > 0 else "no" for r in records])
    elif args.color_by == "spacegroup":
        values = np.array([r.spacegroup_number for r in records])
    elif args.color_by:
        if table is None or args.color_by not in table:
            raise SystemExit(f"--color-by {args.color_by!r}: not a symmetry element, "
                             "'spacegroup', or a column of the dataset (with --store, only "
                             "the first two)")
        by_id = dict(zip(table["id"], table[args.color_by]))
        values = np.array([by_id[sid] for sid in ids])
    else:
        values = np.zeros(len(records))
    xy = tsne(emb, random_state=args.seed)
    plot_embedding_map(xy, values, args.color_by or "", out / "tsne.png")
    print(f"wrote {out / 'embeddings.npy'} ({emb.shape[0]} x {emb.shape[1]}), "
          f"{out / 'ids.txt'} and {out / 'tsne.png'}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcrt_sklearn.structures import read_structure
    from mcrt_sklearn.visualize import plot_attention

    enc = _encoder(args)
    images = args.images if enc.network_.config.use_images else "none"
    sid, structure = read_structure(args.cif, max_atoms=1023)
    records = _featurize_reporting(_featurizer(args, images=images), [structure], [sid])
    scores = enc.explain(records)[0]
    out = Path(args.out)
    plot_attention(structure, scores, out, image=records[0].image)
    top = scores["atoms"].argsort()[::-1][:5]
    listing = ", ".join(f"{structure[i].specie}{i} ({scores['atoms'][i]:.3f})" for i in top)
    print(f"most attended atoms of {sid}: {listing}")
    print(f"wrote {out}")
    return 0


#: Subcommands whose options live in :mod:`mcrt_sklearn.benchmark`.
DELEGATED = ("demo", "benchmark")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcrt-sklearn",
        description="MCRT for scikit-learn: molecular-crystal property prediction.",
    )
    parser.add_argument("--version", action="version", version=f"mcrt_sklearn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # demo and benchmark parse their own options (mcrt_sklearn.benchmark)
    sub.add_parser("demo", add_help=False,
                   help="the main job: MCRT vs the baselines on azaphenacene lattice energies")

    p = sub.add_parser("datasets", help="list the datasets, or summarise one")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--data-home", default=None, help="folder holding the datasets")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("featurize", help=COMMANDS["featurize"])
    _add_input_args(p)
    _add_featurizer_args(p)
    p.add_argument("--pretrain-labels", action="store_true",
                   help="also compute molecules, symmetry elements and density")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="output file (joblib pickle of records)")
    out.add_argument("--store", help="a record store folder (LMDB; created or resumed)")
    p.add_argument("--scheduler", default=None,
                   help="with --store: featurise on dask, 'local:N' (N worker processes) or "
                        "a scheduler address such as tcp://HOST:8786")
    p.add_argument("--chunk-size", type=int, default=8, help="inputs per dask task")
    p.set_defaults(func=_cmd_featurize)

    p = sub.add_parser("pretrain", help=COMMANDS["pretrain"])
    _add_input_args(p)
    _add_featurizer_args(p)
    _add_training_args(p, epochs=10)
    _add_store_arg(p)
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("finetune", help=COMMANDS["finetune"])
    _add_input_args(p, positional=False)
    _add_featurizer_args(p)
    _add_training_args(p, epochs=50)
    p.add_argument("--target", required=True, help="column of properties.csv")
    p.add_argument("--log10", action="store_true", help="fit log10 of the target")
    p.add_argument("--validation-fraction", type=float, default=None)
    _add_store_arg(p)
    p.add_argument("--targets", default=None,
                   help="with --store: a CSV with an id column and the --target column")
    p.add_argument("--out", required=True, help="model file to write")
    p.set_defaults(func=_cmd_finetune)

    p = sub.add_parser("predict", help=COMMANDS["predict"])
    _add_input_args(p)
    _add_featurizer_args(p)
    p.add_argument("--model", required=True,
                   help="a model written by `finetune` or converted by `models convert` "
                        "(a file, a published model's name or an http(s) URL)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    _add_store_arg(p)
    p.add_argument("--chunk-size", type=int, default=1024,
                   help="with --store: records predicted (and written) at a time")
    p.add_argument("--out", required=True, help="CSV of ids and predictions")
    p.set_defaults(func=_cmd_predict)

    for name in ("embed", "explain"):
        p = sub.add_parser(name, help=COMMANDS[name])
        if name == "embed":
            _add_input_args(p)
            p.add_argument("--color-by", default=None,
                           help="a properties column, 'spacegroup', or a symmetry element "
                                "(p1, inversion_center, mirror_plane, rotation_axis, "
                                "screw_axis, anti_axes, glide_plane)")
            p.add_argument("--out", required=True, help="output folder")
            _add_store_arg(p)
        else:
            p.add_argument("cif", help="the crystal to explain")
            p.add_argument("--out", required=True, help="PNG to write")
        _add_featurizer_args(p)
        p.add_argument("--checkpoint", default=None, help="network to use: " + MODEL_HELP)
        p.add_argument("--trusted", action="store_true",
                       help="allow full unpickling of the checkpoint (trusted files only)")
        p.add_argument("--device", default="auto")
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=_cmd_embed if name == "embed" else _cmd_explain)

    sub.add_parser("benchmark", add_help=False, help=COMMANDS["benchmark"])
    __import__("mcrt_sklearn.screening.cli", fromlist=["register"]).register(sub)  # screen, suggest

    __import__("mcrt_sklearn.pretrained.cli", fromlist=["register"]).register(
        sub, COMMANDS["models"], MODEL_HELP)  # models list | fetch | convert | info

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mcrt_sklearn.versions import git_revision

    git_revision()  # the revision of the code this command runs (read once, now)
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    rest = argv[1:] if verbose else argv
    if rest and rest[0] in DELEGATED:
        from mcrt_sklearn import benchmark

        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        run = benchmark.demo_main if rest[0] == "demo" else benchmark.benchmark_main
        return int(run(rest[1:]) or 0)
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
