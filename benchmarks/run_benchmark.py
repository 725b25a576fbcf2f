"""Run the cross-validated benchmark (same arguments as ``mcrt-sklearn benchmark``).

Examples::

    python benchmarks/run_benchmark.py --dataset azaphenacenes \
        --target lattice_energy_kJ_per_mol --group group --cv 5 --fast
    python benchmarks/run_benchmark.py --dataset roy --target relative_energy_kJ_per_mol

See ``benchmarks/README.md`` for the full runs and what each setting means.
"""

import sys

from mcrt_sklearn.benchmark import benchmark_main

if __name__ == "__main__":
    sys.exit(benchmark_main())
