"""Per-element weights of the SEP loss (:func:`sep_weights`), from the frequency of
each symmetry element in the reference CSD pre-training set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.featurizers.labels.symmetry import SEP_COLUMNS

FREQUENCY_FILE = "symmetry_element_frequencies_csd.csv"


def default_symmetry_data_dir() -> Path:
    """``<checkout>/../shared/data/symmetry``, used only when no path is given.

    See :func:`mcrt_sklearn._paths.shared_data_dir` (meaningful in a checkout only).
    """
    return shared_data_dir() / "symmetry"


def load_symmetry_frequencies(path: str | Path | None = None) -> np.ndarray:
    """Frequency of each symmetry element in the reference CSD pre-training set.

    Parameters
    ----------
    path : str or Path, optional
        The ``symmetry_element_frequencies_csd.csv`` file (columns ``Column``,
        ``Count of Ones``, ``Frequency of Ones``) or the folder holding it. Default:
        :func:`default_symmetry_data_dir`.

    Returns
    -------
    ndarray of float64, shape (7,)
        Frequencies in the order of :data:`SEP_COLUMNS`.
    """
    import pandas as pd

    path = default_symmetry_data_dir() if path is None else Path(path)
    if path.is_dir():
        path = path / FREQUENCY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"symmetry-element frequency table not found at {path}; pass "
            f"path=<folder or {FREQUENCY_FILE}> or frequencies=<7 numbers in the order "
            f"{', '.join(SEP_COLUMNS)}>"
        )
    table = pd.read_csv(path)
    freq = table.set_index("Column")["Frequency of Ones"]
    missing = [c for c in SEP_COLUMNS if c not in freq.index]
    if missing:
        raise ValueError(f"{path}: no row for {missing}")
    return freq.loc[list(SEP_COLUMNS)].to_numpy(dtype=np.float64)


def sep_weights(
    source: str = "csd",
    frequencies: np.ndarray | list[float] | None = None,
    path: str | Path | None = None,
) -> np.ndarray:
    """Per-element weights of the SEP loss, ``w = 1 / ln(1.1 + frequency)``.

    Parameters
    ----------
    source : {"csd"}
        Which frequency table to read when ``frequencies`` is not given: the reference
        CSD pre-training set (see :func:`load_symmetry_frequencies`).
    frequencies : array-like of 7 floats, optional
        Frequencies in the order of :data:`SEP_COLUMNS` (e.g. measured on your own
        corpus as the mean of its labels); overrides ``source``/``path``.
    path : str or Path, optional
        Location of the frequency table (file or folder).

    Returns
    -------
    ndarray of float32, shape (7,)
    """
    if frequencies is None:
        if source != "csd":
            raise ValueError(f"unknown source {source!r}; use 'csd' or pass frequencies=")
        frequencies = load_symmetry_frequencies(path)
    freq = np.asarray(frequencies, dtype=np.float64)
    if freq.shape != (len(SEP_COLUMNS),):
        raise ValueError(f"expected {len(SEP_COLUMNS)} frequencies, got shape {freq.shape}")
    if np.any(freq < 0) or np.any(freq > 1):
        raise ValueError("frequencies must lie in [0, 1]")
    return (1.0 / np.log(1.1 + freq)).astype(np.float32)
