"""Pre-training labels taken from the structures themselves (§4 of the design).

MCRT's self-supervised tasks need, per crystal,

- the molecule each atom belongs to (MAP/APC: connected components of the bond graph),
- a 7-dim multi-hot of symmetry elements (SEP), in the order of :data:`SEP_COLUMNS`,
- the density (CDP, g/cm³) and the space-group number.

:func:`compute_pretrain_labels` returns all of them for one structure.

Modules (everything below is importable from this package):

- :mod:`.molecules`: the molecule of each atom (:func:`molecule_ids`);
- :mod:`.symmetry`: the symmetry-element multi-hot of a space group from its operations
  (:func:`symmetry_elements_from_operations`, :data:`SEP_COLUMNS`), and what that label
  means (its docstring);
- :mod:`.spacegroups`: the same label and the space-group number of a structure, via
  spglib (:func:`symmetry_elements`, :func:`symmetry_elements_from_spacegroup`,
  :func:`spacegroup_number`);
- :mod:`.sep`: the SEP loss weights (:func:`sep_weights`,
  :func:`load_symmetry_frequencies`, :func:`default_symmetry_data_dir`);
- :mod:`.pretrain`: :func:`compute_pretrain_labels` and :func:`density`.
"""

from __future__ import annotations

# Everything listed in ``__all__``, plus (with redundant ``as`` aliases) the names other
# modules and the tests import from here.
from mcrt_sklearn.featurizers.labels.molecules import _jmol_radii as _jmol_radii
from mcrt_sklearn.featurizers.labels.molecules import molecule_ids
from mcrt_sklearn.featurizers.labels.pretrain import compute_pretrain_labels, density
from mcrt_sklearn.featurizers.labels.sep import FREQUENCY_FILE as FREQUENCY_FILE
from mcrt_sklearn.featurizers.labels.sep import (
    default_symmetry_data_dir,
    load_symmetry_frequencies,
    sep_weights,
)
from mcrt_sklearn.featurizers.labels.spacegroups import _dataset as _dataset
from mcrt_sklearn.featurizers.labels.spacegroups import (
    _standard_operations as _standard_operations,
)
from mcrt_sklearn.featurizers.labels.spacegroups import (
    _transformed_input_operations as _transformed_input_operations,
)
from mcrt_sklearn.featurizers.labels.spacegroups import (
    spacegroup_number,
    symmetry_elements,
    symmetry_elements_from_spacegroup,
)
from mcrt_sklearn.featurizers.labels.symmetry import (
    SEP_COLUMNS,
    symmetry_elements_from_operations,
)
from mcrt_sklearn.featurizers.labels.symmetry import _centring_group as _centring_group
from mcrt_sklearn.featurizers.labels.symmetry import (
    _snap_translations as _snap_translations,
)

__all__ = [
    "SEP_COLUMNS",
    "molecule_ids",
    "density",
    "spacegroup_number",
    "symmetry_elements",
    "symmetry_elements_from_operations",
    "symmetry_elements_from_spacegroup",
    "compute_pretrain_labels",
    "default_symmetry_data_dir",
    "load_symmetry_frequencies",
    "sep_weights",
]
