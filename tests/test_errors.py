"""Every error of ``mcrt_sklearn.errors`` pickles and can be rebuilt from one message."""

from __future__ import annotations

import inspect
import pickle

import pytest

from mcrt_sklearn import errors

ERROR_CLASSES = sorted(
    (obj for _, obj in inspect.getmembers(errors, inspect.isclass)
     if issubclass(obj, BaseException) and obj.__module__ == errors.__name__),
    key=lambda cls: cls.__name__,
)

MATMINER_SUFFIX = (  # what matminer's featurize_wrapper appends before re-raising
    "\nTO SKIP THESE ERRORS when featurizing specific compounds, set 'ignore_errors=True' "
    "when running the batch featurize() operation (e.g., featurize_many(), "
    "featurize_dataframe(), etc.)."
)


class _TwoArgumentError(Exception):
    """Does not unpickle: its __init__ needs two arguments, args holds one."""

    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def _example(cls: type) -> BaseException:
    """An instance built with the class's full constructor."""
    if cls is errors.StructureBatchError:  # a batch of bad structures
        return cls([("5A_CSP_1", errors.TooManyAtomsError("5A_CSP_1", "2000 atoms in the cell")),
                    ("BENZEN", errors.NoBondsError("BENZEN", "no bonds"))])
    if issubclass(cls, errors.StructureError):
        return cls("5A_CSP_1", "2000 atoms in the cell")
    if issubclass(cls, errors.FeaturizationError):
        return cls([("5A_CSP_1", errors.TooManyAtomsError("5A_CSP_1", "2000 atoms")),
                    ("BENZEN", ValueError("boom"))])
    return cls("the checkpoint has unexpected keys")


def _attributes(err: BaseException) -> dict:
    """The instance attributes, with errors compared by type and message."""
    out = {}
    for key, value in vars(err).items():
        if key == "failures":
            value = [(sid, type(e), str(e)) for sid, e in value]
        out[key] = value
    return out


def test_every_error_class_is_covered():
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"MCRTError", "StructureError", "FeaturizationError", "TooManyAtomsError",
            "CheckpointError", "MissingImageError", "MultipleStructuresError",
            "InvalidIdError"} <= names
    assert all(issubclass(cls, errors.MCRTError) for cls in ERROR_CLASSES)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_pickle_round_trip(cls):
    err = _example(cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) and back.args == err.args
    assert _attributes(back) == _attributes(err)
    if isinstance(err, errors.StructureError):
        assert back.structure_id == "5A_CSP_1" and back.reason == "2000 atoms in the cell"
        assert back.hint == cls.default_hint


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_built_from_one_message_like_matminer(cls):
    err = _example(cls)
    message = str(err) + MATMINER_SUFFIX
    again = cls(message)  # what matminer's featurize_wrapper does: type(e)(msg)
    assert type(again) is cls and str(again) == message
    if isinstance(err, errors.StructureError):
        assert again.structure_id == err.structure_id
        assert again.reason.startswith(err.reason) and again.hint == ""
    if isinstance(err, errors.FeaturizationError):
        assert again.failures == []
    back = pickle.loads(pickle.dumps(again))
    assert type(back) is cls and str(back) == message
    assert _attributes(back) == _attributes(again)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_matminer_featurize_wrapper_reraises_the_same_type(cls):
    from matminer.featurizers.base import BaseFeaturizer

    err = _example(cls)

    class Failing(BaseFeaturizer):
        def featurize(self, x):
            raise err

        def feature_labels(self):
            return ["x"]

        def citations(self):
            return []

        def implementors(self):
            return []

    with pytest.raises(cls) as info:
        Failing().featurize_wrapper((1,))
    assert str(info.value).startswith(str(err)) and "TO SKIP THESE ERRORS" in str(info.value)
    if isinstance(err, errors.StructureError):
        assert info.value.structure_id == err.structure_id


def test_structure_id_with_quotes_is_read_back():
    err = errors.UnreadableStructureError("it's \"odd\"", "cannot read")
    again = errors.UnreadableStructureError(str(err))
    assert again.structure_id == "it's \"odd\""
    assert again.reason == f"cannot read ({errors.UnreadableStructureError.default_hint})"
    plain = errors.StructureError("no id in this message")
    assert plain.structure_id == "" and plain.reason == "no id in this message"


def test_featurization_error_with_an_unpicklable_failure_still_pickles():
    err = errors.FeaturizationError([("a", _TwoArgumentError(1, 2)),
                                     ("b", errors.EmptyStructureError("b", "no atoms"))])
    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(err.failures[0][1]))
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    (sid_a, first), (sid_b, second) = back.failures
    assert sid_a == "a" and type(first) is RuntimeError
    assert str(first) == "_TwoArgumentError: 1/2"
    assert sid_b == "b" and type(second) is errors.EmptyStructureError
    assert second.structure_id == "b"


def _fail_in_worker(i: int):
    raise errors.FeaturizationError([(f"s{i}", errors.TooManyAtomsError(f"s{i}", "too big"))])


def test_errors_cross_joblib_workers():
    from joblib import Parallel, delayed

    with pytest.raises(errors.FeaturizationError) as info:
        Parallel(n_jobs=2)(delayed(_fail_in_worker)(i) for i in range(2))
    [(sid, inner)] = info.value.failures
    assert sid in ("s0", "s1") and isinstance(inner, errors.TooManyAtomsError)
    assert inner.structure_id == sid and inner.reason == "too big"
