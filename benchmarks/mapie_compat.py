"""Does every estimator of the package run inside MAPIE's conformal regressors unchanged?

Each model is fitted (tiny sizes, 1 epoch: this checks the plumbing, not accuracy) on 20
ROY structures of 54 atoms inside MAPIE's ``SplitConformalRegressor`` (12 fit, 8
calibrate) and ``CrossConformalRegressor`` (2 folds), with X as
:func:`mcrt_sklearn.screening.as_samples` of the Structures and, for the split one, also
as a plain list; then as a 2-member :class:`~mcrt_sklearn.screening.MCRTEnsembleRegressor`
with ``predict(X, return_std=True)``. Writes ``benchmarks/results/screening/mapie_compat.json``.

    python benchmarks/mapie_compat.py
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def models():
    from sklearn.pipeline import Pipeline

    from mcrt_sklearn import MCRTFeaturizer, MCRTRegressor
    from mcrt_sklearn.baselines import (
        ALIGNNRegressor,
        CGCNNRegressor,
        CrystalTwinsRegressor,
        make_krr_soap,
        make_rf_soap,
    )
    from mcrt_sklearn.screening import make_gp_soap

    species = ["H", "C", "N", "O", "S"]
    mcrt = MCRTRegressor(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8,
                         alignn_num_conv=1, use_images=False, max_epochs=1, batch_size=8,
                         accumulate=1, validation_fraction=None, lr=1e-3, random_state=0)
    return {
        "MCRT (Pipeline: MCRTFeaturizer, MCRTRegressor)":
            Pipeline([("feat", MCRTFeaturizer(images=False)), ("model", mcrt)]),
        "RF-SOAP": make_rf_soap(n_estimators=10, species=species, random_state=0),
        "KRR-SOAP": make_krr_soap(alpha=0.1, gamma=1e-3, species=species),
        "GP-SOAP": make_gp_soap(species=species),
        "CGCNN": CGCNNRegressor(n_conv=1, atom_fea_len=8, h_fea_len=8, max_epochs=1,
                                batch_size=8, random_state=0),
        "ALIGNN": ALIGNNRegressor(alignn_layers=1, gcn_layers=1, hidden_features=8,
                                  embedding_features=8, max_epochs=1, batch_size=8,
                                  random_state=0),
        "CrystalTwins": CrystalTwinsRegressor(max_epochs=1, batch_size=8, random_state=0),
    }


def main() -> int:
    from mapie.regression import CrossConformalRegressor, SplitConformalRegressor

    from mcrt_sklearn.datasets import load_dataset
    from mcrt_sklearn.screening import MCRTEnsembleRegressor, as_samples

    warnings.simplefilter("ignore")
    table = pd.read_csv(REPO.parent / "shared" / "data" / "roy" / "properties.csv")
    sel = table[table["n_atoms"] <= 54].sample(frac=1, random_state=1)["id"].tolist()[:20]
    _, structures, props = load_dataset("roy", ids=sel)
    y = props["relative_energy_kJ_per_mol"].to_numpy(float)
    X = as_samples(structures)
    out = {}
    for name, est in models().items():
        t0 = time.time()
        row = {}
        try:
            split = SplitConformalRegressor(est, confidence_level=0.8, prefit=False)
            split.fit(X[:12], y[:12]).conformalize(X[12:], y[12:])
            _, iv = split.predict_interval(X[:3])
            row["split"] = list(iv.shape)
            cross = CrossConformalRegressor(est, confidence_level=0.6, cv=2, random_state=0)
            _, iv = cross.fit_conformalize(X, y).predict_interval(X[:3])
            row["cross"] = list(iv.shape)
            plain = SplitConformalRegressor(est, confidence_level=0.8, prefit=False)
            plain.fit(list(structures[:12]), y[:12]).conformalize(list(structures[12:]), y[12:])
            row["split_plain_list"] = "ok"
            ens = MCRTEnsembleRegressor(est, n_ensemble=2, random_state=0).fit(X[:12], y[:12])
            _, sd = ens.predict(X[12:], return_std=True)
            row["ensemble_std_mean"] = float(np.mean(sd))
            row["ok"] = True
        except Exception as err:  # noqa: BLE001 - record and go on
            row.update(ok=False, error=f"{type(err).__name__}: {err}",
                       traceback=traceback.format_exc()[-2000:])
        row["seconds"] = round(time.time() - t0, 1)
        out[name] = row
        print(name, row, flush=True)
    dest = REPO / "benchmarks" / "results" / "screening" / "mapie_compat.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))
    return 0 if all(r["ok"] for r in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
