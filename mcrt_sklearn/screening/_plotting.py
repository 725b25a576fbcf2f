"""matplotlib on the Agg backend (files only), as in :mod:`mcrt_sklearn.benchmark.figures`."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend selected."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
