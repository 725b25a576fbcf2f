"""The command line: help lists every subcommand, and each one runs end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mcrt_sklearn
from mcrt_sklearn.cli import COMMANDS, main


def test_version():
    out = subprocess.run([sys.executable, "-c", "import mcrt_sklearn; print(mcrt_sklearn.__version__)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == mcrt_sklearn.__version__


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "mcrt_sklearn", "--help"], capture_output=True,
                         text=True, check=True)
    for name in ["demo", "datasets", *COMMANDS]:
        assert name in out.stdout


@pytest.mark.parametrize("name", ["benchmark", "demo"])
def test_delegated_commands_have_their_own_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert f"mcrt-sklearn {name}" in capsys.readouterr().out


def test_datasets_summary(shared_data, capsys):
    assert main(["datasets", "x23", "--data-home", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "x23: 23 structures" in out and "lattice_energy_dmc_kJ_per_mol" in out
    assert main(["datasets", "--data-home", str(shared_data)]) == 0
    assert "azaphenacenes" in capsys.readouterr().out


def test_finetune_predict_embed_explain_roundtrip(shared_data, tmp_path, monkeypatch, capsys):
    import numpy as np
    import pandas as pd

    monkeypatch.setenv("MCRT_SKLEARN_DATA", str(shared_data))
    model = tmp_path / "x23.pt"
    common = ["--images", "none", "--device", "cpu"]
    assert main(["finetune", "--dataset", "x23", "--target", "lattice_energy_dmc_kJ_per_mol",
                 "--arch", "tiny", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3",
                 "--out", str(model), *common]) == 0
    cifs = shared_data / "x23" / "cifs"
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(cifs), "--model", str(model), "--out", str(pred), *common]) == 0
    frame = pd.read_csv(pred)
    assert len(frame) == 23 and frame["prediction"].notna().all()
    assert frame["id"].iloc[0] == "x23_01CYHEXO"
    out = tmp_path / "emb"
    assert main(["embed", "--checkpoint", str(model), "--dataset", "x23", "--color-by",
                 "n_molecules", "--out", str(out), *common]) == 0
    assert np.load(out / "embeddings.npy").shape == (23, 64)
    assert (out / "tsne.png").stat().st_size > 10_000
    png = tmp_path / "acetic.png"
    assert main(["explain", str(cifs / "x23_02acetic_acid.cif"), "--checkpoint", str(model),
                 "--out", str(png), *common]) == 0
    assert png.stat().st_size > 10_000
    assert "most attended atoms of x23_02acetic_acid" in capsys.readouterr().out
