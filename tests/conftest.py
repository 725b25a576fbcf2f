"""Shared fixtures: where the real data lives (``../shared/data`` beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcrt_sklearn._paths import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir()
BAD_DIR = REPO / "tests" / "data" / "bad"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips the test when it is not beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (clone the repo beside ../shared)")
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the tiny networks are slower with several on a busy
    machine, and runs compared with other processes (which use one) then match exactly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
