"""The command line: help lists every subcommand; unfinished ones say so and fail."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mcrt_sklearn
from mcrt_sklearn.cli import COMMANDS, NOT_IMPLEMENTED, UNFINISHED, main


def test_version():
    out = subprocess.run([sys.executable, "-c", "import mcrt_sklearn; print(mcrt_sklearn.__version__)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == mcrt_sklearn.__version__


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "mcrt_sklearn", "--help"], capture_output=True,
                         text=True, check=True)
    for name in ["demo", "datasets", *COMMANDS]:
        assert name in out.stdout


@pytest.mark.parametrize("name", sorted(UNFINISHED))
def test_unfinished_commands_fail_honestly(name, capsys):
    assert main([name]) == NOT_IMPLEMENTED
    assert "not implemented yet" in capsys.readouterr().err


def test_datasets_summary(shared_data, capsys):
    assert main(["datasets", "x23", "--data-home", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "x23: 23 structures" in out and "lattice_energy_dmc_kJ_per_mol" in out
    assert main(["datasets", "--data-home", str(shared_data)]) == 0
    assert "azaphenacenes" in capsys.readouterr().out
