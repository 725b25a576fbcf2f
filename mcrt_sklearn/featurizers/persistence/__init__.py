"""Persistence images of molecular crystals: MCRT's global (pore/void topology) modality.

The recipe (DESIGN.md §5) follows the MCRT reference code:

1. **Point cloud.** The atoms of a box of about ``box`` Å built from lattice copies of the
   cell (:func:`supercell_points`). ``supercell="reference"`` rebuilds the reference's
   copy loop exactly, *including its quirk*: copies ``x·a + y·b + z·c`` for ``x`` in
   3…19 and ``y, z`` in 0…19 plus the original cell, keeping points whose Cartesian
   coordinates all lie in (-5, box) Å. Copies ``x = 0, 1, 2`` (except the original cell)
   are missing, which leaves a large empty wedge in the cloud; the reference's maximum
   birth (the ``[SCL]`` scalar and the image's x-range) comes from that artefact. This is
   what the published checkpoint saw. ``supercell="cube"`` uses every periodic image of
   every atom inside ``[0, box)³`` instead (physically meaningful, but *different*
   numbers: e.g. BENZEN's max birth is 2.55 Å instead of 8.46 Å).
2. **Alpha complex** (gudhi, :func:`alpha_diagrams`), persistence diagrams in dimensions 1
   (channels / loops) and 2 (voids); birth and death radii are the square roots of
   gudhi's squared alpha values, rounded to float32 as the reference did.
3. **Image** (:func:`persistence_image`): the points ``(birth, persistence)`` are spread
   by an isotropic Gaussian of standard deviation ``spread`` (Å), integrated exactly over
   each pixel (products of normal-CDF differences), identity weights, on the diagram's own
   range ``[min(0, min birth), maxB] × [0, maxP]``; the result is transposed and flipped
   vertically (``img.T[::-1]``). Empty diagram → zero image and zero scalars.

Periodic copies are exactly co-spherical, so gudhi's default ``precision="safe"`` (and
``"fast"``) return garbage filtration values (~1e19-1e40) for some simplices here, and its
``"exact"`` costs 20-60 s per crystal. The default ``alpha_precision="delaunay"`` takes
gudhi's Delaunay triangulation (exact predicates) and computes the alpha values itself in
float64; our own persistence algorithm (:func:`.diagrams._numba_diagrams`: H2 by duality and
union-find, H1 by a cleared and compressed Z/2 reduction) replaces gudhi's general one, which needs
20-40 s on these ~2M-simplex complexes. Together: the reference images to ~1e-12 of
the image maximum on every fixture crystal, in a few seconds (numba required; without it
the code falls back to gudhi's exact path).

``mode="fast"`` computes the diagrams of two nested sub-clouds (1/27 and 1/8 of the
atoms) instead of the full one and extrapolates the image intensity with a bulk + surface
model and a calibration measured on other crystals (:func:`fast_persistence_image`, whose
docstring states its measured error). It is
an approximation for screening, **not** a substitute for the exact images: the image
range (the [SCL] scalars) is set by a handful of features of the whole 100 Å cloud, which
a sub-cloud can miss (image cosine below 0.999 for 7 of 40 crystals it was not
designed on, down to 0.86; see there).

Measured (2-core machine shared with other jobs, CPU seconds of one process;
``benchmarks/results/persistence_speed_baseline6.json``): 5A_CSP_1 (58,793 points) 2.3 s
in the default exact mode, against 28 s for gudhi's exact alpha complex + its
persistence, and 27 s with ``alpha_precision="exact"``; the fast mode 0.29 s. Over the
six fixture crystals the exact mode is 14× faster than plain gudhi (median), over 64
other crystals it takes 0.7-4.1 s. Peak memory of a process that computes one image:
0.56 GB for 5A_CSP_1 and 0.91 GB for COYBOJ (116k points), of which ~0.2 GB is the
interpreter with its imports (0.80 and 1.16 GB before the simplex tree and its arrays
were freed early); mind it when choosing ``n_jobs``. The numba kernels compile once
(~20 s) and are cached on disk.

Modules (one per step; everything below is importable from this package):

- :mod:`.cloud`: the point cloud (:func:`supercell_points`);
- :mod:`.gudhi_io`: the reader of gudhi's simplex-tree serialisation and the numba
  reductions of our persistence algorithm;
- :mod:`.alpha`: the alpha values of a Delaunay triangulation and the exact decision of
  near-ties;
- :mod:`.diagrams`: the diagram driver (:func:`alpha_diagrams`);
- :mod:`.images`: the rasterisation (:func:`persistence_image`, :func:`diagram_image`);
- :mod:`.fast`: ``mode="fast"`` (:func:`fast_persistence_image`, :data:`FAST_FRACTIONS`,
  :data:`FAST_TOTAL_CALIBRATION`, :data:`FAST_MODE_VERSION`, :func:`image_components`);
- :mod:`.featurizer`: one structure (:func:`compute_persistence_image`,
  :func:`check_image_params`) and :class:`PersistenceImageFeaturizer`.
"""

from __future__ import annotations

# Everything listed in ``__all__``, plus (with redundant ``as`` aliases) the names other
# modules, the benchmarks and the tests import from here.
from mcrt_sklearn.featurizers.persistence.alpha import _alpha_values as _alpha_values
from mcrt_sklearn.featurizers.persistence.cloud import REFERENCE_MIN_COORD as REFERENCE_MIN_COORD
from mcrt_sklearn.featurizers.persistence.cloud import REFERENCE_SHIFT_RANGES, supercell_points
from mcrt_sklearn.featurizers.persistence.diagrams import IMAGE_DIMS as IMAGE_DIMS
from mcrt_sklearn.featurizers.persistence.diagrams import _numba_diagrams as _numba_diagrams
from mcrt_sklearn.featurizers.persistence.diagrams import alpha_diagrams
from mcrt_sklearn.featurizers.persistence.fast import FAST_FRACTIONS, fast_persistence_image
from mcrt_sklearn.featurizers.persistence.fast import FAST_MODE_VERSION as FAST_MODE_VERSION
from mcrt_sklearn.featurizers.persistence.fast import (
    FAST_TOTAL_CALIBRATION as FAST_TOTAL_CALIBRATION,
)
from mcrt_sklearn.featurizers.persistence.fast import image_components as image_components
from mcrt_sklearn.featurizers.persistence.featurizer import (
    PersistenceImageFeaturizer,
    check_image_params,
    compute_persistence_image,
)
from mcrt_sklearn.featurizers.persistence.gudhi_io import _bt_max as _bt_max
from mcrt_sklearn.featurizers.persistence.gudhi_io import _bt_toggle as _bt_toggle
from mcrt_sklearn.featurizers.persistence.gudhi_io import _tree_arrays as _tree_arrays
from mcrt_sklearn.featurizers.persistence.images import (
    SCALAR_NAMES,
    diagram_image,
    persistence_image,
)

__all__ = [
    "REFERENCE_SHIFT_RANGES",
    "supercell_points",
    "alpha_diagrams",
    "persistence_image",
    "diagram_image",
    "compute_persistence_image",
    "check_image_params",
    "fast_persistence_image",
    "PersistenceImageFeaturizer",
    "SCALAR_NAMES",
    "FAST_FRACTIONS",
]
