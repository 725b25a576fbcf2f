"""Typed errors for bad input.

Every error names the structure it is about (an id or a path) and says what to do,
so that a user featurising a landscape of thousands of CIFs can find and fix the
offending file. Batch featurisation (``ignore_errors=True``) records these errors
instead of raising them.
"""

from __future__ import annotations


class MCRTError(Exception):
    """Base class of every error raised by ``mcrt_sklearn``."""


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
    """

    default_hint = ""

    def __init__(self, structure_id: str, reason: str, hint: str | None = None):
        self.structure_id = str(structure_id)
        self.reason = reason
        self.hint = self.default_hint if hint is None else hint
        message = f"structure {self.structure_id!r}: {reason}"
        if self.hint:
            message += f" ({self.hint})"
        super().__init__(message)

    def __reduce__(self):
        # Keep the typed error picklable across joblib workers.
        return (type(self), (self.structure_id, self.reason, self.hint))


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


class FeaturizationError(MCRTError, RuntimeError):
    """Raised when a batch had failures and errors were not ignored.

    Parameters
    ----------
    failures : list of (str, Exception)
        The structure id and the error of each failed structure.
    """

    def __init__(self, failures):
        self.failures = list(failures)
        lines = [f"  {sid}: {type(err).__name__}: {err}" for sid, err in self.failures[:20]]
        more = len(self.failures) - 20
        if more > 0:
            lines.append(f"  … and {more} more")
        super().__init__(
            f"{len(self.failures)} structure(s) could not be featurised:\n" + "\n".join(lines)
        )


class CheckpointError(MCRTError, ValueError):
    """A checkpoint cannot be loaded (missing/unexpected keys, wrong shapes, untrusted)."""


class MissingImageError(MCRTError, ValueError):
    """A model that uses persistence images was given records without images."""
