"""Speed of the baselines: featurisation per structure, fit and predict per 100 crystals.

Usage::

    python benchmarks/baselines_speed.py                 # 100 azaphenacenes, 1 epoch
    python benchmarks/baselines_speed.py --n 20 --epochs 1 --models rf,krr,cgcnn
    python benchmarks/baselines_speed.py --device cuda

Network fit times are measured over ``--epochs`` epochs and also extrapolated to each
model's default number of epochs (CGCNN/ALIGNN 100, Crystal Twins 200); everything is
scaled to 100 crystals. RF/KRR fit times include SOAP featurisation (listed alone too).
Data: ``../shared/data/azaphenacenes`` (or ``--data``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from mcrt_sklearn._paths import shared_data_dir


def _load(data: Path, n: int, seed: int):
    import pandas as pd
    from pymatgen.core import Structure

    df = pd.read_csv(data / "properties.csv").sample(n, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_file(data / "cifs" / f"{i}.cif") for i in df.id]
    return structures, df.lattice_energy_kJ_per_mol.to_numpy()


def _timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=shared_data_dir() / "azaphenacenes")
    p.add_argument("--n", type=int, default=100, help="crystals to time on")
    p.add_argument("--epochs", type=int, default=1, help="epochs actually run per network")
    p.add_argument("--models", default="rf,krr,cgcnn,ct,alignn")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    structures, y = _load(args.data, args.n, args.seed)
    n = len(structures)
    per100 = 100.0 / n
    atoms = np.mean([len(s) for s in structures])
    print(f"{n} azaphenacene crystals, mean {atoms:.0f} atoms; torch threads {args.threads}; "
          f"device {args.device}")

    # --- featurisation per structure
    from mcrt_sklearn.baselines.cgcnn import build_cgcnn_graphs
    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    soap = SOAPFeaturizer().fit(structures)
    _, t_soap = _timed(soap.transform, structures)
    cg, t_cg = _timed(build_cgcnn_graphs, structures)
    print("\nfeaturisation per structure:")
    print(f"  SOAP (r_cut 4, n_max 6, l_max 6, outer average) {1e3 * t_soap / n:8.1f} ms")
    print(f"  CGCNN graph (12 NN within 8 Å)                  {1e3 * t_cg / n:8.1f} ms")
    models = args.models.split(",")
    al = None
    if "alignn" in models:
        from mcrt_sklearn.baselines import ALIGNNRegressor

        al, t_al = _timed(ALIGNNRegressor().make_graphs, structures)
        print(f"  ALIGNN graph + line graph (alignn package)      {1e3 * t_al / n:8.1f} ms")

    # --- fit / predict per 100 crystals
    from mcrt_sklearn.baselines import (
        ALIGNNRegressor,
        CGCNNRegressor,
        CrystalTwinsRegressor,
        make_krr_soap,
        make_rf_soap,
    )

    print(f"\nper 100 crystals (fit on all {n}, predict on all {n}):")
    print(f"  {'model':<22}{'fit (s)':>12}{'predict (s)':>14}{'fit, default epochs (s)':>26}")
    rows = []
    if "rf" in models:
        est = make_rf_soap(random_state=0, n_estimators=500)
        _, tf = _timed(est.fit, structures, y)
        _, tp = _timed(est.predict, structures)
        rows.append(("RF-SOAP (500)", tf, tp, None))
    if "krr" in models:
        est = make_krr_soap()
        _, tf = _timed(est.fit, structures, y)
        _, tp = _timed(est.predict, structures)
        rows.append(("KRR-SOAP", tf, tp, None))
    nets = {
        "cgcnn": ("CGCNN", lambda: CGCNNRegressor(max_epochs=args.epochs, device=args.device,
                                                   random_state=0), cg, 100),
        "ct": ("CrystalTwins", lambda: CrystalTwinsRegressor(max_epochs=args.epochs,
                                                             device=args.device,
                                                             random_state=0), cg, 200),
        "alignn": ("ALIGNN", lambda: ALIGNNRegressor(max_epochs=args.epochs, device=args.device,
                                                     random_state=0), al, 100),
    }
    for key, (name, make, graphs, default_epochs) in nets.items():
        if key not in models:
            continue
        make().set_params(max_epochs=1).fit(graphs[:2], y[:2])  # warm-up, not timed
        est = make()
        _, tf = _timed(est.fit, graphs, y)
        _, tp = _timed(est.predict, graphs)
        rows.append((f"{name} ({args.epochs} ep)", tf, tp, tf / args.epochs * default_epochs))
    for name, tf, tp, tdef in rows:
        extra = f"{tdef * per100:26.0f}" if tdef is not None else f"{'—':>26}"
        print(f"  {name:<22}{tf * per100:12.2f}{tp * per100:14.2f}{extra}")
    print("\n(graph building excluded from network fit/predict: graphs were precomputed)")


if __name__ == "__main__":
    main()
