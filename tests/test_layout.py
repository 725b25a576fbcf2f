"""Import direction of the layers (README "Layout"): the featurisers are numpy only and
never import torch, the network is torch only and never imports scikit-learn or skorch.

Each module is imported in a fresh interpreter (an import made by an earlier test, or
by pytest plugins, cannot hide one), and the modules are found on disk, so a new
module is checked without editing this file.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mcrt_sklearn"


def _modules(package: str) -> list[str]:
    """The package and each of its modules (found on disk, not imported here)."""
    folder = PACKAGE.joinpath(*package.split(".")[1:])
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]


FEATURIZER_MODULES = _modules("mcrt_sklearn.featurizers")
# mcrt_sklearn.collate (collate) belongs to the network side too (docs/api.md: torch only)
MODEL_MODULES = _modules("mcrt_sklearn.model") + ["mcrt_sklearn.collate"]

_PROBE = (
    "import json, sys\n"
    "import {module}\n"
    "print(json.dumps(sorted({{name.partition('.')[0] for name in sys.modules}})))\n"
)


def _top_level_imports(module: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after importing ``module`` in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"importing {module} failed:\n{proc.stderr[-2000:]}"
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def imported() -> dict[str, set[str]]:
    """``module -> top-level packages it pulls in``, for every module checked here."""
    modules = FEATURIZER_MODULES + MODEL_MODULES
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return dict(zip(modules, pool.map(_top_level_imports, modules), strict=True))


def test_the_module_lists_are_complete():
    assert {"mcrt_sklearn.featurizers.graph", "mcrt_sklearn.featurizers.persistence",
            "mcrt_sklearn.featurizers.soap", "mcrt_sklearn.featurizers.labels"} <= set(
        FEATURIZER_MODULES)
    assert {"mcrt_sklearn.model.mcrt", "mcrt_sklearn.model.rollout",
            "mcrt_sklearn.model.checkpoint"} <= set(MODEL_MODULES)
    on_disk = {p.stem for p in (PACKAGE / "model").glob("*.py") if p.stem != "__init__"}
    assert {m.rpartition(".")[2] for m in MODEL_MODULES[1:-1]} == on_disk


def test_the_probe_sees_what_a_module_imports(imported):
    # the check is not vacuous: the heavy imports that are allowed show up
    assert "torch" in imported["mcrt_sklearn.model.mcrt"]
    assert "sklearn" in imported["mcrt_sklearn.featurizers.graph"]
    assert "numpy" in imported["mcrt_sklearn.featurizers.record"]


@pytest.mark.parametrize("module", FEATURIZER_MODULES)
def test_featurizers_do_not_import_torch(module, imported):
    assert "torch" not in imported[module], f"{module} imports torch (featurisers are numpy only)"


@pytest.mark.parametrize("module", MODEL_MODULES)
def test_model_does_not_import_sklearn_or_skorch(module, imported):
    bad = {"sklearn", "skorch"} & imported[module]
    assert not bad, f"{module} imports {sorted(bad)} (the network is torch only)"
