"""MCRTEncoder on edge-case input (no records)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from synthetic_records import random_records

from mcrt_sklearn.estimators.encoder import MCRTEncoder
from mcrt_sklearn.featurizers.graph import MCRTFeaturizer

TINY = dict(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
            use_images=False, random_state=0)
BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"


@pytest.fixture(scope="module")
def encoder():
    return MCRTEncoder(**TINY).fit()


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=object)], ids=["list", "tuple", "array"])
def test_transform_of_no_records_is_an_empty_float32_array(encoder, empty):
    out = encoder.transform(empty)
    assert out.shape == (0, encoder.n_features_out_) == (0, 16)
    assert out.dtype == np.float32
    assert encoder.explain(empty) == []


def test_empty_output_stacks_with_a_real_one(encoder):
    records = random_records(3, images=False)
    full = encoder.transform(records)
    assert full.shape == (3, 16) and full.dtype == np.float32
    np.testing.assert_array_equal(np.vstack([encoder.transform([]), full]), full)


def test_pipeline_whose_structures_all_failed(encoder):
    pipe = make_pipeline(MCRTFeaturizer(images=False, ignore_errors=True), encoder)
    out = pipe.transform([BAD_DIR / "empty.cif", BAD_DIR / "close_atoms.cif"])
    assert out.shape == (0, 16) and out.dtype == np.float32
