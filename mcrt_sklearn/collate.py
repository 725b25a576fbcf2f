"""Batching: lists of :class:`~mcrt_sklearn.featurizers.record.MCRTInput` → torch tensors.

:func:`collate` pads atom tokens to the largest crystal in the batch (or to ``pad_to``),
and batches the ALIGNN graphs as flat index tensors with offsets (no DGL):

=====================  =====================  =============================================
key                    shape                  meaning
=====================  =====================  =============================================
``structure_ids``      list[str]              ids of the records
``n_atoms``            (B,) long              atoms per crystal
``atom_mask``          (B, N) bool            real atom tokens (N = batch max or pad_to)
``atomic_numbers``     (A,) long              all atoms of the batch, crystal after crystal
``atom_batch``         (A,) long              crystal of each atom
``atom_position``      (A,) long              token position of each atom in its crystal
``distance``           (B, N, N) float32      distance rows, zero-padded (width N, not 1023)
``angles``             (B, N, 28) float32     neighbour-angle cosines, -100 = missing/padding
``edge_index``         (2, E) long            (source, destination) atoms, batch-global
``edge_vectors``       (E, 3) float32         bond vectors
``edge_distances``     (E,) float32           bond lengths
``line_graph_index``   (2, T) long            (e1, e2) edges, batch-global
``line_graph_cosines`` (T,) float32           bond-angle cosines
``image``              (B, 2, P, P) or None   persistence images
``image_scalars``      (B, 4) or None         max birth / persistence, H1 then H2
``cart_coords``        (B, N, 3) or None      Cartesian coordinates (absolute positional)
``permutations``       list of (n,) or None   atom order used: new atom i = old atom perm[i]
=====================  =====================  =============================================

Pre-training labels are added when every record has them: ``molecule_ids`` (B, N)
(-1 on padding), ``symmetry_elements`` (B, 7), ``density`` (B,), ``spacegroup_number``
(B,).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mcrt_sklearn.errors import MissingImageError

__all__ = [
    "collate",
    "batch_to",
    "MISSING_ANGLE",
]

MISSING_ANGLE = -100.0


def _two_channels(image) -> np.ndarray:
    """(2, P, P) float32; a 3-channel (H0, H1, H2) image keeps H1 and H2, as the reference."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 3:
        image = image[1:]
    if image.ndim != 3 or image.shape[0] != 2:
        raise ValueError(f"persistence image must have shape (2, P, P), got {image.shape}")
    return image


def _permute_record(rec, perm: np.ndarray) -> dict[str, Any]:
    """Atom-indexed arrays of ``rec`` in the order ``perm`` (new i = old perm[i])."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    out = {
        "atomic_numbers": np.asarray(rec.atomic_numbers)[perm],
        "distance_matrix": np.asarray(rec.distance_matrix)[np.ix_(perm, perm)],
        "angle_features": np.asarray(rec.angle_features)[perm],
        "edge_index": inv[np.asarray(rec.edge_index)],
    }
    coords = getattr(rec, "cart_coords", None)
    if coords is not None:
        out["cart_coords"] = np.asarray(coords)[perm]
    if rec.molecule_ids is not None:
        out["molecule_ids"] = np.asarray(rec.molecule_ids)[perm]
    return out


def collate(
    records: Sequence,
    pad_to: int | None = None,
    shuffle_atoms: bool = False,
    generator: torch.Generator | None = None,
    require_images: bool = True,
) -> dict[str, Any]:
    """Batch MCRT input records into tensors for :class:`mcrt_sklearn.model.MCRT`.

    Parameters
    ----------
    records : sequence of MCRTInput
        Featurised crystals.
    pad_to : int, optional
        Pad atom tokens (and distance rows) to this length instead of the largest
        crystal in the batch; ``pad_to=1023`` mimics the reference layout. Outputs are
        the same either way; batch-max padding is much faster.
    shuffle_atoms : bool
        Randomly permute the atom order of every crystal, consistently in every
        field (a training augmentation; the reference shuffles each epoch).
    generator : torch.Generator, optional
        Random source for ``shuffle_atoms``.
    require_images : bool
        Raise :class:`~mcrt_sklearn.errors.MissingImageError` when a record has no
        persistence images. When False, ``image``/``image_scalars`` are None unless
        every record has them.

    Returns
    -------
    dict
        See the module docstring for the keys.
    """
    records = list(records)
    if not records:
        raise ValueError("collate() needs at least one record")
    B = len(records)
    ns = [int(r.n_atoms) for r in records]
    n_max = max(ns)
    if pad_to is not None:
        if pad_to < n_max:
            raise ValueError(f"pad_to={pad_to} is smaller than the largest crystal ({n_max} atoms)")
        N = int(pad_to)
    else:
        N = n_max

    missing = [r.structure_id for r in records if not r.has_image]
    if missing and require_images:
        shown = ", ".join(map(repr, missing[:5])) + (" …" if len(missing) > 5 else "")
        raise MissingImageError(
            f"{len(missing)} record(s) have no persistence images ({shown}); compute them with "
            "PersistenceImageFeaturizer (or MCRTFeaturizer(images=True)), or use a model "
            "without the image modality (use_images=False)"
        )

    views = []
    perms = [] if shuffle_atoms else None
    for r in records:
        if shuffle_atoms:
            perm = torch.randperm(r.n_atoms, generator=generator).numpy()
            perms.append(perm)
            views.append(_permute_record(r, perm))
        else:
            views.append(
                {
                    "atomic_numbers": np.asarray(r.atomic_numbers),
                    "distance_matrix": np.asarray(r.distance_matrix),
                    "angle_features": np.asarray(r.angle_features),
                    "edge_index": np.asarray(r.edge_index),
                    "cart_coords": getattr(r, "cart_coords", None),
                    "molecule_ids": r.molecule_ids,
                }
            )

    n_feat = views[0]["angle_features"].shape[1]
    distance = np.zeros((B, N, N), dtype=np.float32)
    angles = np.full((B, N, n_feat), MISSING_ANGLE, dtype=np.float32)
    atom_mask = np.zeros((B, N), dtype=bool)
    edge_parts, vec_parts, lg_parts, cos_parts = [], [], [], []
    atom_offset = edge_offset = 0
    for i, (r, v, n) in enumerate(zip(records, views, ns, strict=True)):
        distance[i, :n, :n] = v["distance_matrix"]
        angles[i, :n] = v["angle_features"]
        atom_mask[i, :n] = True
        edge_parts.append(np.asarray(v["edge_index"], dtype=np.int64) + atom_offset)
        vec_parts.append(np.asarray(r.edge_vectors, dtype=np.float32))
        lg_parts.append(np.asarray(r.line_graph_index, dtype=np.int64) + edge_offset)
        cos_parts.append(np.asarray(r.line_graph_cosines, dtype=np.float32))
        atom_offset += n
        edge_offset += int(np.asarray(r.edge_index).shape[1])

    edge_vectors = torch.from_numpy(np.concatenate(vec_parts, axis=0).reshape(-1, 3))
    batch: dict[str, Any] = {
        "structure_ids": [r.structure_id for r in records],
        "n_atoms": torch.tensor(ns, dtype=torch.long),
        "atom_mask": torch.from_numpy(atom_mask),
        "atomic_numbers": torch.from_numpy(
            np.concatenate([np.asarray(v["atomic_numbers"], dtype=np.int64) for v in views])
        ),
        "atom_batch": torch.repeat_interleave(torch.arange(B), torch.tensor(ns)),
        "atom_position": torch.cat([torch.arange(n) for n in ns]),
        "distance": torch.from_numpy(distance),
        "angles": torch.from_numpy(angles),
        "edge_index": torch.from_numpy(np.concatenate(edge_parts, axis=1).reshape(2, -1)),
        "edge_vectors": edge_vectors,
        "edge_distances": torch.linalg.vector_norm(edge_vectors, dim=1),
        "line_graph_index": torch.from_numpy(np.concatenate(lg_parts, axis=1).reshape(2, -1)),
        "line_graph_cosines": torch.from_numpy(np.concatenate(cos_parts)),
        "image": None,
        "image_scalars": None,
        "cart_coords": None,
        "permutations": perms,
    }
    if not missing:
        batch["image"] = torch.from_numpy(np.stack([_two_channels(r.image) for r in records]))
        batch["image_scalars"] = torch.from_numpy(
            np.stack([np.asarray(r.image_scalars, dtype=np.float32).reshape(4) for r in records])
        )
    if all(v.get("cart_coords") is not None for v in views):
        coords = np.zeros((B, N, 3), dtype=np.float32)
        for i, (v, n) in enumerate(zip(views, ns, strict=True)):
            coords[i, :n] = v["cart_coords"]
        batch["cart_coords"] = torch.from_numpy(coords)

    # Pre-training labels, when every record carries them.
    if all(v.get("molecule_ids") is not None for v in views):
        mol = np.full((B, N), -1, dtype=np.int64)
        for i, (v, n) in enumerate(zip(views, ns, strict=True)):
            mol[i, :n] = v["molecule_ids"]
        batch["molecule_ids"] = torch.from_numpy(mol)
    if all(r.symmetry_elements is not None for r in records):
        batch["symmetry_elements"] = torch.from_numpy(
            np.stack([np.asarray(r.symmetry_elements, dtype=np.float32) for r in records])
        )
    if all(r.density is not None for r in records):
        batch["density"] = torch.tensor([float(r.density) for r in records], dtype=torch.float32)
    if all(r.spacegroup_number is not None for r in records):
        batch["spacegroup_number"] = torch.tensor([int(r.spacegroup_number) for r in records])
    return batch


def batch_to(batch: dict[str, Any], device) -> dict[str, Any]:
    """Move every tensor of a collated batch to ``device`` (other values kept)."""
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
