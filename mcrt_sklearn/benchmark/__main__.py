"""``python -m mcrt_sklearn.benchmark``: the ``mcrt-sklearn benchmark`` command line."""

import sys

from mcrt_sklearn.benchmark.cli import benchmark_main

if __name__ == "__main__":
    sys.exit(benchmark_main())
