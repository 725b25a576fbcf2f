"""Bad input raises a typed StructureError through every featuriser and every entry point
(featurize, transform, matminer's featurize_dataframe): never a TypeError from
matminer's re-raise, never a NaN row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mcrt_sklearn import errors
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer
from mcrt_sklearn.featurizers.persistence import PersistenceImageFeaturizer

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"
GOOD = BAD_DIR / "good.cif"
BAD = {
    "empty.cif": errors.UnreadableStructureError,
    "truncated.cif": errors.UnreadableStructureError,
    "partial_occupancy.cif": errors.DisorderedStructureError,
    "disordered.cif": errors.DisorderedStructureError,
    "close_atoms.cif": errors.OverlappingAtomsError,
    "molecule.xyz": errors.NotPeriodicError,
    "non_utf8.cif": errors.UnreadableStructureError,
    "not_a_cif.cif": errors.UnreadableStructureError,
}


def _soap():
    pytest.importorskip("dscribe")
    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    return SOAPFeaturizer(r_cut=3.0, n_max=2, l_max=1).fit([])


FEATURIZERS = {
    "MCRTFeaturizer": lambda: MCRTFeaturizer(images=False),
    "PersistenceImageFeaturizer": lambda: PersistenceImageFeaturizer(pixels=4, box=20.0),
    "SOAPFeaturizer": _soap,
}


@pytest.mark.parametrize("featurizer", sorted(FEATURIZERS))
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_structure_is_typed_on_every_path(featurizer, name):
    fz = FEATURIZERS[featurizer]()
    bad, error = BAD_DIR / name, BAD[name]
    with pytest.raises(error) as one:
        fz.featurize(bad)
    assert one.value.structure_id == bad.stem
    with pytest.raises(errors.StructureError, match=bad.stem) as batch:
        fz.transform([GOOD, bad])
    assert batch.value.structure_id == bad.stem
    assert [type(e) for _, e in batch.value.failures] == [error]
    df = pd.DataFrame({"structure": [str(GOOD), str(bad)]})
    with pytest.raises(errors.StructureError, match=bad.stem):
        fz.featurize_dataframe(df, "structure", pbar=False)
    # skip-and-report instead: the good structure is kept, the bad one named
    out = fz.featurize_dataframe(df, "structure", ignore_errors=True, return_errors=True,
                                 pbar=False)
    assert len(out) == 2 and bad.stem in str(out.iloc[1, -1])


def test_too_many_atoms_is_refused_by_the_mcrt_featuriser():
    with pytest.raises(errors.TooManyAtomsError):
        MCRTFeaturizer(images=False).featurize(BAD_DIR / "too_many_atoms.cif")
    with pytest.raises(errors.StructureError, match="too_many_atoms"):
        MCRTFeaturizer(images=False).transform([GOOD, BAD_DIR / "too_many_atoms.cif"])
