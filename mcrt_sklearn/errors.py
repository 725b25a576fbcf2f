"""Typed errors for bad input.

Every error names the structure it is about (an id or a path) and says what to do,
so that a user featurising a landscape of thousands of CIFs can find and fix the
offending file. Batch featurisation (``ignore_errors=True``) records these errors
instead of raising them.
"""

from __future__ import annotations

import ast
import pickle
import re
from collections.abc import Iterable


def _restore(cls: type, args: tuple, state: dict) -> MCRTError:
    """Unpickle an error without calling its ``__init__`` (whatever its signature)."""
    err = cls.__new__(cls, *args)
    err.args = tuple(args)
    err.__dict__.update(state)
    return err


class MCRTError(Exception):
    """Base class of every error raised by ``mcrt_sklearn``.

    Every error of the package survives pickling (``pickle.loads(pickle.dumps(e))``
    keeps its type, message and attributes, so joblib workers can report it) and can
    be built from one message string, as matminer does when it re-raises
    ``type(e)(message)``.
    """

    def __reduce__(self):
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class StructureError(MCRTError, ValueError):
    """A structure cannot be used as input.

    Parameters
    ----------
    structure_id : str
        Id or path of the offending structure.
    reason : str
        What is wrong with it.
    hint : str, optional
        What the user can do about it.

    With a single argument, it is the whole message (matminer's re-raise): the id is
    read back from a message of the form ``structure '<id>': ...`` (else it is
    ``""``), ``reason`` is the rest of the message and ``hint`` is ``""``.
    """

    default_hint = ""

    def __init__(self, structure_id: str, reason: str | None = None, hint: str | None = None):
        if reason is None:
            message = str(structure_id)
            self.structure_id, self.reason = _split_message(message)
            self.hint = "" if hint is None else hint
            super().__init__(message)
            return
        self.structure_id = str(structure_id)
        self.reason = reason
        self.hint = self.default_hint if hint is None else hint
        message = f"structure {self.structure_id!r}: {reason}"
        if self.hint:
            message += f" ({self.hint})"
        super().__init__(message)


_MESSAGE_ID = re.compile(r"""structure ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"): """)


def _split_message(message: str) -> tuple[str, str]:
    """(structure id, rest) of a ``structure '<id>': <reason>`` message; ("", message) else."""
    match = _MESSAGE_ID.match(message)
    if match:
        try:
            return str(ast.literal_eval(match.group(1))), message[match.end():]
        except (ValueError, SyntaxError):
            pass
    return "", message


class UnreadableStructureError(StructureError):
    """The file is missing, empty, truncated, not text, or not a known format."""

    default_hint = "check that the file is a complete CIF, POSCAR or extended-XYZ file"


class EmptyStructureError(StructureError):
    """The structure has no atoms."""

    default_hint = "the cell must contain at least one atom"


class DisorderedStructureError(StructureError):
    """Partial occupancies or several species on one site."""

    default_hint = (
        "resolve the disorder first (e.g. keep the major component, or use "
        "pymatgen's OrderDisorderedStructureTransformation)"
    )


class TooManyAtomsError(StructureError):
    """More atoms in the cell than the model accepts."""

    default_hint = (
        "MCRT accepts at most 1023 atoms per cell; use a primitive or reduced cell "
        "(Structure.get_primitive_structure())"
    )


class NotPeriodicError(StructureError):
    """Not a periodic 3-D crystal (a molecule, or a degenerate cell)."""

    default_hint = "give a crystal with a full 3-D lattice (CIF or POSCAR)"


class OverlappingAtomsError(StructureError):
    """Two atoms closer than the allowed minimum distance."""

    default_hint = (
        "the cell probably holds duplicated or disordered positions; "
        "remove the duplicates or merge_sites() first"
    )


class NoBondsError(StructureError):
    """No atom pair falls within the graph cutoff (the graph would be empty)."""

    default_hint = "increase the cutoff or check the cell's scale (Å expected)"


class MultipleStructuresError(StructureError):
    """A file holds several crystal structures where one is expected."""

    default_hint = (
        "read it with read_structures, which returns one structure per data block "
        "(ids '<file>#<block>'), or split the file"
    )


class InvalidIdError(StructureError):
    """A structure id that is not a plain file name (it would point outside its folder)."""

    default_hint = (
        "ids must be the file stems of cifs/<id>.cif: no path separators, no '..'"
    )


class FeaturizationError(MCRTError, RuntimeError):
    """Raised when a batch had failures and errors were not ignored.

    Parameters
    ----------
    failures : list of (str, Exception), or str
        The structure id and the error of each failed structure. A string is taken
        as the whole message (matminer's re-raise), with no failures listed.

    Attributes
    ----------
    failures : list of (str, Exception)
        As given. When pickled, an error that cannot itself be pickled is replaced by
        a ``RuntimeError`` holding its type name and message.
    """

    def __init__(self, failures: Iterable[tuple[str, BaseException]] | str):
        if isinstance(failures, str):
            self.failures = []
            super().__init__(failures)
            return
        self.failures = list(failures)
        lines = [f"  {sid}: {type(err).__name__}: {err}" for sid, err in self.failures[:20]]
        more = len(self.failures) - 20
        if more > 0:
            lines.append(f"  … and {more} more")
        super().__init__(
            f"{len(self.failures)} structure(s) could not be featurised:\n" + "\n".join(lines)
        )

    def __reduce__(self):
        state = dict(self.__dict__)
        state["failures"] = [(sid, _picklable(err)) for sid, err in self.failures]
        return (_restore, (type(self), self.args, state))


class StructureBatchError(FeaturizationError, StructureError):
    """A batch failed, and every failure is a bad structure (a :class:`StructureError`).

    It is both a :class:`FeaturizationError` (``failures`` lists every structure and its
    typed error) and a :class:`StructureError` (``structure_id`` and ``reason`` are those
    of the first failure), so ``except StructureError`` catches bad input whether it
    came in one structure or in a batch.
    """

    def __init__(self, failures: Iterable[tuple[str, BaseException]] | str):
        FeaturizationError.__init__(self, failures)
        if self.failures:
            sid, err = self.failures[0]
            self.structure_id = sid
            self.reason = getattr(err, "reason", str(err))
        else:  # rebuilt from its message: the first listed failure's "structure '<id>': …"
            self.structure_id, self.reason = "", str(self)
            for line in str(self).splitlines():
                match = _MESSAGE_ID.search(line)
                if match:
                    self.structure_id, self.reason = _split_message(line[match.start():])
                    break
        self.hint = ""


def batch_error(failures: list[tuple[str, BaseException]]) -> FeaturizationError:
    """The error a failed batch raises: :class:`StructureBatchError` when every failure
    is a :class:`StructureError`, else :class:`FeaturizationError`."""
    if failures and all(isinstance(err, StructureError) for _, err in failures):
        return StructureBatchError(failures)
    return FeaturizationError(failures)


def _picklable(err: BaseException) -> BaseException:
    """``err``, or a RuntimeError with its type and message when it does not pickle."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


class CheckpointError(MCRTError, ValueError):
    """A checkpoint cannot be loaded (missing/unexpected keys, wrong shapes, untrusted)."""


class MissingImageError(MCRTError, ValueError):
    """A model that uses persistence images was given records without images."""


class ModelDownloadError(MCRTError, OSError):
    """A published model could not be fetched into the model cache.

    Parameters
    ----------
    message : str
        What went wrong (the whole message when given alone).
    url : str, optional
        Where the file was to come from.
    file_name : str, optional
        The file's name.
    path : str, optional
        The exact path where a hand-downloaded copy is used from.
    """

    def __init__(self, message: str, url: str | None = None, file_name: str | None = None,
                 path: str | None = None):
        super().__init__(message)
        self.url = url
        self.file_name = file_name
        self.path = None if path is None else str(path)


class ModelOfflineError(ModelDownloadError):
    """The model is not in the cache and cannot be downloaded (no network, or no file URL
    published): the message names the URL, the file name and the path to put a
    hand-downloaded copy at."""


class ModelHashError(ModelDownloadError):
    """A downloaded or cached model file does not have the expected sha256 (the one the
    registry pins, or the one recorded at its first download)."""


class UnknownModelError(MCRTError, LookupError):
    """A name that is not in the registry of published models."""
