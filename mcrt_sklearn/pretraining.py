"""Label samplers of the self-supervised pre-training tasks (torch only).

- MAP (masked atom prediction): 15 % of each crystal's atoms are chosen; of those 80 %
  become the mask token 0, 10 % a random element, 10 % stay as they are. The label is
  ``Z - 1`` (the MAP head has 118 classes); atoms not chosen are ignored (-100).
- APC (atom-pair classification): ``n_pairs`` atom pairs per crystal, half within one
  molecule (label 1), half across two molecules (label 0).
"""

from __future__ import annotations

import torch

__all__ = ["mask_atoms", "sample_atom_pairs", "IGNORE_INDEX", "MASK_TOKEN"]

#: Label of atoms that do not enter the MAP loss (``F.cross_entropy``'s default).
IGNORE_INDEX = -100
#: Atomic-number index of the mask token (the embedding table's row 0 is unused by atoms).
MASK_TOKEN = 0


def mask_atoms(
    atomic_numbers: torch.Tensor,
    atom_batch: torch.Tensor,
    generator: torch.Generator | None = None,
    rate: float = 0.15,
    n_embeddings: int = 103,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose and corrupt atoms for masked atom prediction.

    Parameters
    ----------
    atomic_numbers : LongTensor (A,)
        Atomic numbers of all atoms of a batch, crystal after crystal.
    atom_batch : LongTensor (A,)
        Crystal index of each atom.
    generator : torch.Generator, optional
        Random source.
    rate : float
        Fraction of each crystal's atoms to choose (at least one per crystal).
    n_embeddings : int
        Rows of the atom embedding table; random replacements are drawn from
        ``1 … n_embeddings - 1`` so no index the table lacks is ever produced.

    Returns
    -------
    corrupted : LongTensor (A,)
        Input atomic numbers for the network.
    labels : LongTensor (A,)
        ``Z - 1`` at chosen atoms, :data:`IGNORE_INDEX` elsewhere.
    """
    A = atomic_numbers.numel()
    if A and int(atomic_numbers.max()) >= n_embeddings:
        raise ValueError(f"atomic number {int(atomic_numbers.max())} has no embedding "
                         f"(table of {n_embeddings})")
    n_crystals = int(atom_batch.max()) + 1 if A else 0
    counts = torch.bincount(atom_batch, minlength=n_crystals)
    n_chosen = torch.clamp((counts.double() * rate).round().long(), min=1)
    # Rank atoms within their crystal by a random key; the lowest n_chosen are chosen.
    key = torch.rand(A, generator=generator, dtype=torch.float64) + atom_batch.double()
    order = torch.argsort(key)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(A, dtype=torch.long)
    rank[order] = torch.arange(A) - starts.repeat_interleave(counts)
    chosen = rank < n_chosen[atom_batch]

    labels = torch.full_like(atomic_numbers, IGNORE_INDEX)
    labels[chosen] = atomic_numbers[chosen] - 1
    action = torch.rand(A, generator=generator)
    corrupted = atomic_numbers.clone()
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    corrupted[to_mask] = MASK_TOKEN
    corrupted[to_random] = torch.randint(
        1, n_embeddings, (int(to_random.sum()),), generator=generator
    )
    return corrupted, labels


def sample_atom_pairs(
    molecule_ids: torch.Tensor,
    n_pairs: int = 200,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample atom pairs within and across molecules.

    Parameters
    ----------
    molecule_ids : LongTensor (B, N)
        Molecule of each atom token, -1 on padding.
    n_pairs : int
        Pairs per crystal: ``n_pairs // 2`` within a molecule, the rest across.
    generator : torch.Generator, optional
        Random source.

    Returns
    -------
    pairs : LongTensor (B, n_pairs, 2)
        Atom token indices; -1 where no pair of that kind exists (e.g. a crystal of
        one molecule has no cross-molecule pair).
    labels : FloatTensor (B, n_pairs)
        1 for same molecule, 0 for different; -1 where there is no pair.
    """
    B, N = molecule_ids.shape
    n_same = n_pairs // 2
    want_same = torch.zeros(n_pairs, dtype=torch.bool)
    want_same[:n_same] = True
    real = molecule_ids >= 0
    # First atom: uniform over the crystal's atoms.
    first = torch.multinomial(real.double(), n_pairs, replacement=True, generator=generator)
    first_mol = molecule_ids.gather(1, first)  # (B, n_pairs)
    same = molecule_ids[:, None, :] == first_mol[:, :, None]  # (B, n_pairs, N)
    not_self = torch.arange(N)[None, None, :] != first[:, :, None]
    allowed = torch.where(want_same[None, :, None], same & not_self, real[:, None, :] & ~same)
    allowed &= real[:, None, :]
    has = allowed.any(-1)
    weights = allowed.double()
    weights[~has] = 1.0  # placeholder row; the pair is dropped below
    second = torch.multinomial(weights.reshape(B * n_pairs, N), 1, generator=generator)
    second = second.reshape(B, n_pairs)
    pairs = torch.stack([first, second], dim=-1)
    labels = want_same.float().expand(B, n_pairs).clone()
    pairs[~has] = -1
    labels[~has] = -1
    return pairs, labels
