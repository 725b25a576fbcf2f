"""Label samplers of the self-supervised pre-training tasks (torch only).

- MAP (masked atom prediction): atoms are chosen, ``rule="bernoulli"`` (the reference):
  each atom independently with probability 0.15; ``rule="exact"``: ``round(0.15 n)`` of
  each crystal's atoms, at least one. Of the chosen atoms 80 % become the mask token 0,
  10 % a random element, 10 % stay as they are. The label is ``Z - 1`` (the MAP head has
  118 classes); atoms not chosen are ignored (-100).

  The reference's collate writes the mask into ``atom_num``, but its ALIGNN graph reads
  the atomic numbers stored before collate, so the reference network always sees the
  true atoms and MAP there only learns to read back its input. Here the corrupted
  numbers are what the network sees.
- APC (atom-pair classification), ``rule="reference"``: ``min(n_pairs // 2, #same,
  #different)`` distinct unordered pairs of each kind per crystal, within one molecule
  (label 1) and across two molecules (label 0), without repetition; ``rule="independent"``:
  ``n_pairs // 2`` pairs of each kind drawn independently (repetitions possible; a crystal
  of one molecule gets same-molecule pairs only).
"""

from __future__ import annotations

import torch

__all__ = ["mask_atoms", "sample_atom_pairs", "IGNORE_INDEX", "MASK_TOKEN", "MAP_RULES",
           "APC_RULES"]

#: How MAP chooses atoms (see the module docstring).
MAP_RULES = ("bernoulli", "exact")
#: How APC samples pairs (see the module docstring).
APC_RULES = ("reference", "independent")

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
    rule: str = "bernoulli",
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
        Probability of each atom to be chosen (``"bernoulli"``), or the fraction of each
        crystal's atoms to choose, at least one (``"exact"``).
    n_embeddings : int
        Rows of the atom embedding table; random replacements are drawn from
        ``1 … n_embeddings - 1`` so no index the table lacks is ever produced.
    rule : {"bernoulli", "exact"}
        How atoms are chosen (see the module docstring).

    Returns
    -------
    corrupted : LongTensor (A,)
        Input atomic numbers for the network.
    labels : LongTensor (A,)
        ``Z - 1`` at chosen atoms, :data:`IGNORE_INDEX` elsewhere.
    """
    if rule not in MAP_RULES:
        raise ValueError(f"MAP rule must be one of {MAP_RULES}, got {rule!r}")
    A = atomic_numbers.numel()
    if A and int(atomic_numbers.max()) >= n_embeddings:
        raise ValueError(f"atomic number {int(atomic_numbers.max())} has no embedding "
                         f"(table of {n_embeddings})")
    if rule == "bernoulli":
        chosen = torch.rand(A, generator=generator, dtype=torch.float64) < rate
        return _corrupt(atomic_numbers, chosen, generator, n_embeddings)
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
    return _corrupt(atomic_numbers, chosen, generator, n_embeddings)


def _corrupt(atomic_numbers, chosen, generator, n_embeddings):
    """Labels of the chosen atoms and their 80 / 10 / 10 corruption."""
    A = atomic_numbers.numel()
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
    rule: str = "reference",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample atom pairs within and across molecules.

    Parameters
    ----------
    molecule_ids : LongTensor (B, N)
        Molecule of each atom token, -1 on padding.
    n_pairs : int
        Pairs per crystal: at most ``n_pairs // 2`` within a molecule and as many across.
    generator : torch.Generator, optional
        Random source.
    rule : {"reference", "independent"}
        See the module docstring.

    Returns
    -------
    pairs : LongTensor (B, n_pairs, 2)
        Atom token indices; -1 where no pair of that kind exists (e.g. a crystal of
        one molecule has no cross-molecule pair).
    labels : FloatTensor (B, n_pairs)
        1 for same molecule, 0 for different; -1 where there is no pair.
    """
    if rule not in APC_RULES:
        raise ValueError(f"APC rule must be one of {APC_RULES}, got {rule!r}")
    if rule == "reference":
        return _distinct_pairs(molecule_ids, n_pairs // 2, generator)
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


def _distinct_pairs(molecule_ids: torch.Tensor, per_kind: int,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``min(per_kind, #same, #different)`` distinct unordered pairs of each kind per crystal.

    Output layout as :func:`sample_atom_pairs`: ``(B, 2 * per_kind, 2)`` pairs, the
    same-molecule ones first, then the cross-molecule ones, then -1 padding.
    """
    B, _ = molecule_ids.shape
    pairs = torch.full((B, 2 * per_kind, 2), -1, dtype=torch.long)
    labels = torch.full((B, 2 * per_kind), -1.0)
    for b in range(B):
        mol = molecule_ids[b]
        n = int((mol >= 0).sum())  # real atoms come first (collate's layout)
        if n < 2:
            continue
        i, j = torch.triu_indices(n, n, offset=1)
        same = mol[i] == mol[j]
        k = min(per_kind, int(same.sum()), int((~same).sum()))
        if k == 0:
            continue
        for slot, kind in ((0, same), (k, ~same)):
            where = torch.nonzero(kind).squeeze(1)
            pick = where[torch.randperm(len(where), generator=generator)[:k]]
            pairs[b, slot:slot + k, 0] = i[pick]
            pairs[b, slot:slot + k, 1] = j[pick]
            labels[b, slot:slot + k] = 1.0 if slot == 0 else 0.0
    return pairs, labels
