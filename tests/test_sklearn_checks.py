"""scikit-learn's estimator checks on every estimator and transformer of the package.

sklearn's checks feed float matrices; ours take crystal structures or MCRT records, so
the checks that fit on such matrices cannot apply and are skipped (with the reason;
run they fail at once with a typed input error, and take minutes). Every other check (cloning, parameters stored verbatim, repr, tags,
nothing set in ``__init__``, NotFittedError before ``fit``, ``set_params``…) must pass.
The data-dependent contract (fit returns self, is idempotent, leaves its parameters
alone, predicts the same in any batch and after pickling) is then checked on real
crystals, built here with pymatgen, below.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from mcrt_sklearn import MCRTClassifier, MCRTEncoder, MCRTFeaturizer, MCRTRegressor
from mcrt_sklearn.estimators.pretrain import MCRTPretrainer
from mcrt_sklearn.featurizers.persistence import PersistenceImageFeaturizer

pytest.importorskip("dscribe")
from mcrt_sklearn.baselines import (  # noqa: E402
    ALIGNNRegressor,
    CGCNNRegressor,
    CrystalTwinsRegressor,
)
from mcrt_sklearn.featurizers.soap import SOAPFeaturizer  # noqa: E402

_ON_STRUCTURES = "takes crystal structures or MCRT records, not a float matrix"
#: The checks that fit or transform sklearn's float matrices.
MATRIX_CHECKS = (
    "check_classifier_data_not_an_array", "check_classifiers_classes",
    "check_classifiers_one_label", "check_classifiers_regression_target",
    "check_classifiers_train", "check_complex_data", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_dtype_object", "check_estimator_sparse_array",
    "check_estimator_sparse_matrix", "check_estimator_sparse_tag", "check_estimators_dtypes",
    "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit1d", "check_fit2d_1feature",
    "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_regressor_data_not_an_array", "check_regressors_int",
    "check_regressors_no_decision_function", "check_regressors_train", "check_requires_y_none",
    "check_supervised_y_2d", "check_supervised_y_no_nan", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_preserve_dtypes",
    "check_transformers_unfitted_stateless",
)

ESTIMATORS = [
    MCRTRegressor(), MCRTClassifier(), MCRTPretrainer(), MCRTEncoder(), MCRTFeaturizer(),
    PersistenceImageFeaturizer(), SOAPFeaturizer(), CGCNNRegressor(), CrystalTwinsRegressor(),
    ALIGNNRegressor(),
]


def _expected_failures(estimator) -> dict[str, str]:
    out = dict.fromkeys(MATRIX_CHECKS, _ON_STRUCTURES)
    if isinstance(estimator, (MCRTFeaturizer, PersistenceImageFeaturizer, SOAPFeaturizer)):
        out["check_mixin_order"] = ("matminer's BaseFeaturizer lists BaseEstimator before "
                                    "TransformerMixin; its subclasses cannot reorder them")
    return out


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    reason = _expected_failures(estimator).get(name)
    if reason:
        pytest.skip(reason)
    check(estimator)


# ------------------------------------------------------------ the contract on crystals


def _crystals(n: int, species=("C", "O", "C", "O")) -> list[Structure]:
    out = []
    for i in range(n):
        d = 0.17 + 0.004 * i
        s = Structure(Lattice.orthorhombic(5.0 + 0.1 * i, 6.0, 6.5), list(species),
                      [[0.1, 0.1, 0.1], [0.1 + d, 0.1, 0.1], [0.6, 0.55, 0.6],
                       [0.6, 0.55 + d, 0.6]])
        s.properties["id"] = f"crystal_{i}"
        out.append(s)
    return out


SMALL_MCRT = dict(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
                  use_images=False, max_epochs=2, batch_size=4, accumulate=1,
                  validation_fraction=None, random_state=0)

SUPERVISED = {
    "MCRTRegressor": (lambda: MCRTRegressor(**SMALL_MCRT), "records"),
    "CGCNNRegressor": (lambda: CGCNNRegressor(n_conv=1, atom_fea_len=8, max_epochs=2,
                                              batch_size=4, random_state=0), "structures"),
}


@pytest.fixture(scope="module")
def data():
    structures = _crystals(8)
    records = MCRTFeaturizer(images=False).transform(structures)
    return {"structures": structures, "records": records, "y": np.linspace(-1.0, 1.0, 8)}


@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_fit_contract_on_crystals(name, data):
    make, kind = SUPERVISED[name]
    X, y = data[kind], data["y"]
    est = make()
    with pytest.raises(NotFittedError):
        est.predict(X)
    params = est.get_params()
    assert est.fit(X, y) is est                           # fit returns self
    assert est.get_params() == params                     # and leaves its parameters alone
    pred = est.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    # any batch, any order: the same prediction for each crystal
    one_by_one = np.concatenate([est.predict([x]) for x in X])
    np.testing.assert_allclose(one_by_one, pred, rtol=1e-5, atol=1e-6)
    order = np.arange(len(X))[::-1]
    np.testing.assert_allclose(est.predict([X[i] for i in order]), pred[order], rtol=1e-5,
                               atol=1e-6)
    # pickling keeps the fitted model
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict(X), pred, rtol=1e-6)
    # fit is idempotent: refitting (also a clone) gives the same model
    np.testing.assert_allclose(est.fit(X, y).predict(X), pred, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clone(est).fit(X, y).predict(X), pred, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: MCRTFeaturizer(images=False),
    lambda: PersistenceImageFeaturizer(pixels=4, box=20.0),
    lambda: SOAPFeaturizer(r_cut=3.0, n_max=2, l_max=1),
], ids=["MCRTFeaturizer", "PersistenceImageFeaturizer", "SOAPFeaturizer"])
def test_transformer_contract_on_crystals(make, data):
    X = data["structures"][:4]
    fz = make()
    params = fz.get_params()
    out = fz.fit_transform(X)
    assert fz.get_params() == params and len(out) == len(X)
    again = pickle.loads(pickle.dumps(fz)).transform(X[::-1])
    for a, b in zip(out, again[::-1], strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(a.angle_features, b.angle_features)
