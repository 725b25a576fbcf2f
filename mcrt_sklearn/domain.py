"""Out of domain, said out loud: the elements an estimator was fitted on, and a warning
when it is asked to predict for a structure that holds others.

A model fitted on C/H/N/O crystals has never seen sulfur: its embedding of S is the
random initialisation (MCRT, CGCNN, ALIGNN, Crystal Twins) or an all-zero SOAP channel
(RF-SOAP, KRR-SOAP), and what it predicts for a thiophene packing is not an
interpolation. In grouped cross-validation over molecules this happens without a word
(a CGCNN fold MAE of 168 kJ/mol on targets with a spread of 11). Every estimator of the
package therefore stores ``elements_seen_`` in ``fit`` and, in ``predict``, issues one
:class:`UnseenElementWarning` per call naming the structures and their unseen elements.
The prediction is still made: the warning is the user's to act on (the benchmark stores
it in the fold file and flags the fold under its table).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["UnseenElementWarning", "atomic_numbers_of", "element_symbols", "fitted_elements",
           "check_elements", "warn_unseen"]


class UnseenElementWarning(UserWarning):
    """Structures given to ``predict`` hold elements that ``fit`` never saw.

    Attributes
    ----------
    estimator : str
        Name of the estimator's class.
    unseen : list of (str, tuple of str)
        Each offending structure's id and its unseen element symbols.
    """

    def __init__(self, estimator: str, unseen: Sequence[tuple[str, tuple[str, ...]]],
                 seen: Sequence[str]):
        self.estimator = estimator
        self.unseen = list(unseen)
        self.seen = tuple(seen)
        shown = "; ".join(f"{sid}: {', '.join(els)}" for sid, els in self.unseen[:5])
        more = f" (and {len(self.unseen) - 5} more)" if len(self.unseen) > 5 else ""
        super().__init__(
            f"{estimator}: {len(self.unseen)} structure(s) hold elements unseen in fit — "
            f"{shown}{more}; fitted on {', '.join(seen) or 'nothing'}. Their predictions "
            "are extrapolations.")

    def __reduce__(self):
        return (type(self), (self.estimator, self.unseen, self.seen))


def atomic_numbers_of(item: Any) -> Iterable[int]:
    """Atomic numbers of a record (``MCRTInput``, CGCNN / ALIGNN graph) or Structure.

    Anything else (a path) is read with :func:`~mcrt_sklearn.structures.read_structure`.
    """
    z = getattr(item, "atomic_numbers", None)
    if z is None:
        from mcrt_sklearn.structures import read_structure

        z = read_structure(item)[1].atomic_numbers
    return (int(v) for v in z)


def _id_of(item: Any, i: int) -> str:
    for attr in ("structure_id", "sid"):
        value = getattr(item, attr, None)
        if value:
            return str(value)
    from mcrt_sklearn.structures import structure_id

    return structure_id(item, i)


def element_symbols(numbers: Iterable[int]) -> tuple[str, ...]:
    """Element symbols of atomic numbers, sorted by atomic number, each once."""
    from pymatgen.core import Element

    return tuple(Element.from_Z(z).symbol for z in sorted(set(numbers)))


def fitted_elements(items: Iterable[Any]) -> tuple[str, ...]:
    """The ``elements_seen_`` of a fit on ``items``: every element, sorted by Z."""
    return element_symbols(z for item in items for z in atomic_numbers_of(item))


def check_elements(estimator: Any, items: Sequence[Any],
                   ids: Sequence[str] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """Warn (:class:`UnseenElementWarning`) when ``items`` hold elements outside
    ``estimator.elements_seen_``; returns the offending ``(id, elements)`` pairs.

    An estimator without ``elements_seen_`` (fitted by an older version) is not checked.
    """
    if getattr(estimator, "elements_seen_", None) is None:
        return []
    pairs = [(ids[i] if ids is not None else _id_of(item, i),
              element_symbols(atomic_numbers_of(item))) for i, item in enumerate(items)]
    return warn_unseen(estimator, pairs)


def warn_unseen(estimator: Any, elements: Iterable[tuple[str, Sequence[str]]]
                ) -> list[tuple[str, tuple[str, ...]]]:
    """:func:`check_elements` for ``(id, element symbols)`` pairs already known."""
    seen = getattr(estimator, "elements_seen_", None)
    if seen is None:
        return []
    known = set(seen)
    unseen = [(sid, tuple(el for el in els if el not in known)) for sid, els in elements]
    unseen = [(sid, extra) for sid, extra in unseen if extra]
    if unseen:
        warnings.warn(UnseenElementWarning(type(estimator).__name__, unseen, seen),
                      stacklevel=3)
    return unseen


class ElementTap(Sequence):
    """A lazy sequence of records (a record store) that notes each record's elements as
    it is read, so the unseen-element check of a prediction from disk costs no second
    read: predict through the tap, then :meth:`warn` (:func:`warn_unseen`)."""

    _lazy_records = True

    def __init__(self, base: Sequence[Any]):
        self.base = base
        self.seen: dict[int, tuple[str, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        record = self.base[i]
        self.seen[int(i)] = (_id_of(record, int(i)), element_symbols(atomic_numbers_of(record)))
        return record

    def warn(self, estimator: Any) -> list[tuple[str, tuple[str, ...]]]:
        """:func:`warn_unseen` for the records read so far, in their order."""
        return warn_unseen(estimator, [self.seen[i] for i in sorted(self.seen)])
