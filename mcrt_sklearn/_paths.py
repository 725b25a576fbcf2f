"""Where the project's data lives in a development checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["shared_data_dir"]


def shared_data_dir() -> Path:
    """The ``shared/data`` folder beside the repository checkout.

    In a development checkout the project's data (the named datasets, the symmetry
    tables, the Crystal Twins files, the reference parity inputs) sits in
    ``<folder holding the repository>/shared/data``. The path is derived from this
    file's location, so it is only meaningful in such a checkout (an editable install
    included): for a package installed into ``site-packages`` it points at a folder
    that does not exist. Callers check that it exists and prefer an explicit path,
    ``data_home`` or ``$MCRT_SKLEARN_DATA``.

    Returns
    -------
    Path
        ``<checkout>/../shared/data`` (absolute; it may not exist).
    """
    return Path(__file__).resolve().parents[2] / "shared" / "data"
