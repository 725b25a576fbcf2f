"""Real molecular-crystal datasets in one layout: ``<dir>/cifs/<id>.cif`` + ``properties.csv``.

``load_dataset`` finds a dataset under ``data_home`` (argument, then the environment
variable ``MCRT_SKLEARN_DATA``, then ``~/.cache/mcrt_sklearn``). The two datasets with a
public download (``azaphenacenes`` and ``roy``) are fetched with pooch, checksum-verified
and converted into that layout when they are not found locally. The azaphenacene
supercells are reduced only to cells verified to tile them (:func:`find_tiling_cell`),
the rule the shared cells were made with.

Modules: ``home`` (data home, ``$MCRT_SKLEARN_DATA``, :class:`DatasetInfo`,
:class:`DatasetNotFoundError`), ``download`` (:func:`fetch_file`, pooch), ``layout``
(writing and reading ``cifs/`` + ``properties.csv``), ``cells`` (:func:`find_tiling_cell`
and the tiling check), ``azaphenacenes`` and ``roy`` (download + conversion of each),
``load`` (:data:`DATASETS`, :func:`dataset_folder`, :func:`load_dataset`).
"""

from mcrt_sklearn.datasets.azaphenacenes import AZAPHENACENE_FORMULA as AZAPHENACENE_FORMULA
from mcrt_sklearn.datasets.azaphenacenes import AZAPHENACENES_COMMIT as AZAPHENACENES_COMMIT
from mcrt_sklearn.datasets.azaphenacenes import AZAPHENACENES_SHA256 as AZAPHENACENES_SHA256
from mcrt_sklearn.datasets.azaphenacenes import (
    AZAPHENACENES_STRUCTURES_SHA256 as AZAPHENACENES_STRUCTURES_SHA256,
)
from mcrt_sklearn.datasets.azaphenacenes import AZAPHENACENES_URL as AZAPHENACENES_URL
from mcrt_sklearn.datasets.azaphenacenes import _download_azaphenacenes as _download_azaphenacenes
from mcrt_sklearn.datasets.azaphenacenes import (
    chemiscope_frame_to_structure as chemiscope_frame_to_structure,
)
from mcrt_sklearn.datasets.azaphenacenes import (
    convert_azaphenacene_frame as convert_azaphenacene_frame,
)
from mcrt_sklearn.datasets.azaphenacenes import convert_azaphenacenes as convert_azaphenacenes
from mcrt_sklearn.datasets.cells import PRIMITIVE_TOLERANCES as PRIMITIVE_TOLERANCES
from mcrt_sklearn.datasets.cells import TILING_TOLERANCE as TILING_TOLERANCE
from mcrt_sklearn.datasets.cells import CellReduction as CellReduction
from mcrt_sklearn.datasets.cells import find_tiling_cell as find_tiling_cell
from mcrt_sklearn.datasets.cells import reduce_supercell as reduce_supercell
from mcrt_sklearn.datasets.cells import tiling_deviation as tiling_deviation
from mcrt_sklearn.datasets.download import DOWNLOAD_TIMEOUT as DOWNLOAD_TIMEOUT
from mcrt_sklearn.datasets.download import fetch_file as fetch_file
from mcrt_sklearn.datasets.home import CHECKOUT_DATA as CHECKOUT_DATA
from mcrt_sklearn.datasets.home import ENV_DATA_HOME as ENV_DATA_HOME
from mcrt_sklearn.datasets.home import DatasetInfo as DatasetInfo
from mcrt_sklearn.datasets.home import DatasetNotFoundError, get_data_home
from mcrt_sklearn.datasets.layout import MCRT_EXAMPLES_MOBILITY as MCRT_EXAMPLES_MOBILITY
from mcrt_sklearn.datasets.layout import _check_id as _check_id
from mcrt_sklearn.datasets.layout import _find_cif as _find_cif
from mcrt_sklearn.datasets.layout import _properties_table as _properties_table
from mcrt_sklearn.datasets.layout import _write_layout as _write_layout
from mcrt_sklearn.datasets.load import DATASETS, dataset_folder, load_dataset
from mcrt_sklearn.datasets.roy import ROY_COMMIT as ROY_COMMIT
from mcrt_sklearn.datasets.roy import ROY_SHA256 as ROY_SHA256
from mcrt_sklearn.datasets.roy import ROY_URL as ROY_URL
from mcrt_sklearn.datasets.roy import _download_roy as _download_roy
from mcrt_sklearn.datasets.roy import convert_roy as convert_roy

__all__ = ["load_dataset", "dataset_folder", "get_data_home", "DATASETS", "DatasetNotFoundError"]
