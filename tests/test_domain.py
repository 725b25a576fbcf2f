"""Structures with elements a model never saw in fit: a warning naming them, in every
estimator, and a flag on the benchmark fold."""

from __future__ import annotations

import dataclasses
import pickle
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from synthetic_records import random_records

from mcrt_sklearn.domain import UnseenElementWarning, check_elements, fitted_elements

SMALL = dict(hid_dim=16, num_blocks=1, num_heads=2, alignn_hidden_dim=8, alignn_num_conv=1,
             use_images=False, max_epochs=1, batch_size=4, accumulate=1,
             validation_fraction=None, random_state=0)


def _with_elements(records, numbers):
    rng = np.random.default_rng(0)
    return [dataclasses.replace(r, atomic_numbers=rng.choice(numbers, len(r.atomic_numbers))
                                .astype(np.int64)) for r in records]


def _unseen(caught):
    return [w.message for w in caught if issubclass(w.category, UnseenElementWarning)]


def _molecule_crystal(species, shift=0.0) -> Structure:
    coords = [[0.1 + shift, 0.1, 0.1], [0.1 + shift + 0.18, 0.1, 0.1],
              [0.6, 0.6 + shift, 0.6], [0.6, 0.6 + shift + 0.18, 0.6]]
    return Structure(Lattice.cubic(6.0), species, coords)


def test_warning_names_structures_and_elements_and_pickles():
    w = UnseenElementWarning("Est", [("a", ("S",)), ("b", ("S", "Cl"))], ("H", "C"))
    assert "2 structure(s)" in str(w) and "a: S" in str(w) and "b: S, Cl" in str(w)
    assert "fitted on H, C" in str(w)
    back = pickle.loads(pickle.dumps(w))
    assert type(back) is UnseenElementWarning and str(back) == str(w)
    assert back.unseen == w.unseen
    many = UnseenElementWarning("Est", [(f"s{i}", ("S",)) for i in range(8)], ("C",))
    assert "(and 3 more)" in str(many)


def test_check_elements_reports_only_the_unseen():
    class Fitted:
        elements_seen_ = ("H", "C", "N", "O")

    chon = _with_elements(random_records(2, images=False, seed=1), [1, 6, 7, 8])
    sulfur = _with_elements(random_records(1, images=False, seed=2), [1, 6, 16])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_elements(Fitted(), chon) == []
        assert check_elements(Fitted(), chon + sulfur) == [(sulfur[0].structure_id, ("S",))]
    assert len(_unseen(caught)) == 1
    assert fitted_elements(chon + sulfur) == ("H", "C", "N", "O", "S")

    class Old:  # fitted before elements_seen_ existed: not checked
        pass

    assert check_elements(Old(), sulfur) == []


def test_mcrt_regressor_warns_on_unseen_elements_and_keeps_them_through_save(tmp_path):
    from mcrt_sklearn import MCRTRegressor

    train = _with_elements(random_records(8, images=False, seed=3), [1, 6, 7, 8])
    sulfur = _with_elements(random_records(2, images=False, seed=4), [1, 6, 16])
    y = np.linspace(0.0, 1.0, len(train))
    est = MCRTRegressor(**SMALL).fit(train, y)
    assert est.elements_seen_ == fitted_elements(train)
    assert "S" not in est.elements_seen_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.predict(train)
    assert _unseen(caught) == []
    with pytest.warns(UnseenElementWarning, match="MCRTRegressor: 2 structure") as record:
        pred = est.predict(train[:1] + sulfur)
    assert np.isfinite(pred).all() and len(pred) == 3  # still predicted
    [w] = [r.message for r in record if isinstance(r.message, UnseenElementWarning)]
    assert [sid for sid, _ in w.unseen] == [r.structure_id for r in sulfur]
    path = est.save(tmp_path / "est.ckpt")
    again = MCRTRegressor.load(path)
    assert again.elements_seen_ == est.elements_seen_
    with pytest.warns(UnseenElementWarning):
        again.predict(sulfur)
    assert pickle.loads(pickle.dumps(est)).elements_seen_ == est.elements_seen_


class _CountingRecords:
    """A lazy record sequence (like a RecordStore) that counts the reads of each record."""

    _lazy_records = True

    def __init__(self, records):
        self.records = records
        self.reads = [0] * len(records)

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.records[i]


def test_predict_from_disk_checks_elements_without_a_second_read():
    from mcrt_sklearn import MCRTRegressor

    train = _with_elements(random_records(8, images=False, seed=3), [1, 6, 7, 8])
    sulfur = _with_elements(random_records(2, images=False, seed=4), [1, 6, 16])
    est = MCRTRegressor(**SMALL).fit(train, np.linspace(0.0, 1.0, len(train)))
    lazy = _CountingRecords(train[:3] + sulfur)
    with pytest.warns(UnseenElementWarning, match="2 structure") as record:
        pred = est.predict(lazy)
    [w] = [r.message for r in record if isinstance(r.message, UnseenElementWarning)]
    assert [sid for sid, _ in w.unseen] == [r.structure_id for r in sulfur]
    np.testing.assert_allclose(pred, est.predict(train[:3] + sulfur), rtol=1e-6)
    # the first record is also read once by the type check of check_records
    assert lazy.reads == [2, 1, 1, 1, 1]


def test_cgcnn_warns_on_unseen_elements(tmp_path):
    pytest.importorskip("skorch")
    from mcrt_sklearn.baselines import CGCNNRegressor

    train = [_molecule_crystal(["C", "H", "O", "H"], 0.01 * i) for i in range(6)]
    test = [_molecule_crystal(["C", "H", "S", "H"])]
    est = CGCNNRegressor(n_conv=1, atom_fea_len=8, max_epochs=1, batch_size=3,
                         random_state=0).fit(train, np.arange(6.0))
    assert est.elements_seen_ == ("H", "C", "O")
    with pytest.warns(UnseenElementWarning, match="S"):
        est.predict(test)
    est.save(tmp_path / "cg.pt")
    assert CGCNNRegressor.load(tmp_path / "cg.pt").elements_seen_ == est.elements_seen_


def test_soap_pipeline_warns_in_predict_not_in_fit():
    pytest.importorskip("dscribe")
    from mcrt_sklearn.baselines import make_krr_soap

    train = [_molecule_crystal(["C", "H", "O", "H"], 0.01 * i) for i in range(6)]
    test = [_molecule_crystal(["C", "H", "S", "H"])]
    model = make_krr_soap(r_cut=3.0, n_max=2, l_max=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, np.arange(6.0))
    assert _unseen(caught) == []
    soap = model.steps[0][1]
    assert soap.elements_seen_ == ("H", "C", "O")
    with pytest.warns(UnseenElementWarning, match="SOAPFeaturizer: 1 structure"):
        assert np.isfinite(model.predict(test)).all()
    # fit([]) fixes the species only: nothing to compare with, no warning
    from mcrt_sklearn.featurizers.soap import SOAPFeaturizer

    bare = SOAPFeaturizer(r_cut=3.0, n_max=2, l_max=1).fit([])
    assert bare.elements_seen_ is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bare.transform(test)
    assert _unseen(caught) == []


def test_benchmark_stores_and_flags_unseen_element_folds():
    from mcrt_sklearn import benchmark

    class Stub:
        elements_seen_ = ("H", "C")

        def predict(self, X):
            check_elements(self, X)
            return np.zeros(len(X))

    X = [_molecule_crystal(["C", "H", "C", "H"]), _molecule_crystal(["C", "H", "S", "H"])]
    pred, notes = benchmark.predict_with_domain_check(Stub(), X)
    assert pred.shape == (2,) and len(notes) == 1 and "S" in notes[0]
    def fold(i, **extra):
        return {"fold": i, "fit_seconds": 1.0, "device": "cpu", **extra,
                "metrics": benchmark.regression_metrics(np.arange(4.0), np.arange(4.0) + i)}

    summary = benchmark.summarize({"A": [fold(0), fold(1, domain_warnings=notes)]})
    assert summary["A"]["unseen_element_folds"] == [1]
    results = {"dataset": "d", "target": "t", "target_transform": None, "n_structures": 8,
               "n_folds": 2, "group": None, "top_k": 10, "lower_is_better": True,
               "settings": {"fast": True, "featurizer": {"image_mode": "fast"}}, "models": [],
               "summary": summary}
    md = benchmark.markdown_table(results)
    assert "elements unseen in fit" in md and "A (fold1)" in md
    clean = benchmark.summarize({"A": [fold(0), fold(1)]})
    assert "unseen_element_folds" not in clean["A"]
    assert "elements unseen" not in benchmark.markdown_table({**results, "summary": clean})
