"""Where named datasets live: ``data_home``, ``$MCRT_SKLEARN_DATA``, the checkout's data."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcrt_sklearn._paths import shared_data_dir

__all__ = ["ENV_DATA_HOME", "CHECKOUT_DATA", "DatasetNotFoundError", "DatasetInfo",
           "get_data_home"]

ENV_DATA_HOME = "MCRT_SKLEARN_DATA"
#: In a development checkout the project's data folder sits beside the repository; it is
#: read (never written) when neither ``data_home`` nor ``$MCRT_SKLEARN_DATA`` is given.
CHECKOUT_DATA = shared_data_dir()


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a named dataset holds and how to get it."""

    name: str
    description: str
    targets: tuple[str, ...] = ()
    group_column: str | None = None
    download: Callable[[Path], None] | None = None


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Resolve the data folder: argument, ``$MCRT_SKLEARN_DATA``, ``~/.cache/mcrt_sklearn``."""
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get(ENV_DATA_HOME)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/mcrt_sklearn").expanduser()
