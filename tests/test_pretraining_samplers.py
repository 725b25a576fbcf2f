"""MAP masking and APC pair sampling follow the specification exactly."""

from __future__ import annotations

import torch

from mcrt_sklearn.training.samplers import IGNORE_INDEX, MASK_TOKEN, mask_atoms, sample_atom_pairs


def _batch(sizes, z=6):
    numbers = torch.cat([torch.full((n,), z + i) for i, n in enumerate(sizes)])
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return numbers, batch


def test_map_chooses_fifteen_percent_per_crystal_at_least_one():
    numbers, batch = _batch([3, 20, 62, 124])
    g = torch.Generator().manual_seed(1)
    _, labels = mask_atoms(numbers, batch, g, rule="exact")
    chosen = labels != IGNORE_INDEX
    per_crystal = torch.bincount(batch[chosen], minlength=4).tolist()
    assert per_crystal == [1, 3, 9, 19]  # max(1, round(0.15 n))
    assert torch.equal(labels[chosen], numbers[chosen] - 1)


def test_map_80_10_10_and_valid_indices():
    numbers, batch = _batch([100] * 400, z=1)
    numbers = (numbers % 90) + 1  # elements 1 … 90, all inside the table
    g = torch.Generator().manual_seed(2)
    corrupted, labels = mask_atoms(numbers, batch, g, n_embeddings=103)
    chosen = labels != IGNORE_INDEX
    assert torch.equal(corrupted[~chosen], numbers[~chosen])
    masked = (corrupted[chosen] == MASK_TOKEN).double().mean().item()
    kept = (corrupted[chosen] == numbers[chosen]).double().mean().item()
    assert abs(masked - 0.8) < 0.03
    # "random" draws may hit the original element (1/102 of the time): kept ≈ 0.1 + 0.1/102
    assert abs(kept - 0.1) < 0.03
    assert int(corrupted.min()) >= 0 and int(corrupted.max()) <= 102


def test_map_refuses_elements_without_embedding():
    numbers, batch = _batch([5], z=110)
    try:
        mask_atoms(numbers, batch, n_embeddings=103)
    except ValueError as exc:
        assert "no embedding" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_map_is_reproducible_with_a_seed():
    numbers, batch = _batch([30, 40])
    a = mask_atoms(numbers, batch, torch.Generator().manual_seed(5))
    b = mask_atoms(numbers, batch, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_apc_pairs_respect_molecules():
    mol = torch.full((3, 12), -1)
    mol[0, :12] = torch.tensor([0] * 6 + [1] * 6)
    mol[1, :8] = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    mol[2, :5] = 0  # one molecule: no cross pairs exist
    g = torch.Generator().manual_seed(3)
    pairs, labels = sample_atom_pairs(mol, n_pairs=200, generator=g, rule="independent")
    assert pairs.shape == (3, 200, 2) and labels.shape == (3, 200)
    for b in range(3):
        for (i, j), lab in zip(pairs[b].tolist(), labels[b].tolist()):
            if lab == -1:
                assert i == j == -1
                continue
            assert i != j and mol[b, i] >= 0 and mol[b, j] >= 0
            assert (mol[b, i] == mol[b, j]).item() == bool(lab)
    assert (labels[:2] == 1).sum(1).tolist() == [100, 100]
    assert (labels[:2] == 0).sum(1).tolist() == [100, 100]
    assert (labels[2] == 1).sum() == 100 and (labels[2] == -1).sum() == 100


def test_map_bernoulli_chooses_each_atom_with_probability_rate():
    numbers, batch = _batch([50] * 400)
    numbers = torch.full_like(numbers, 6)
    g = torch.Generator().manual_seed(7)
    _, labels = mask_atoms(numbers, batch, g)  # the reference rule is the default
    chosen = labels != IGNORE_INDEX
    counts = torch.bincount(batch[chosen], minlength=400).double()
    # Binomial(50, 0.15): mean 7.5, variance 6.375 -- not a fixed count per crystal
    assert abs(counts.mean().item() - 7.5) < 0.3
    assert abs(counts.var().item() - 6.375) < 1.5
    assert torch.equal(labels[chosen], numbers[chosen] - 1)
    small, small_batch = _batch([2] * 200)
    small = torch.full_like(small, 7)
    _, few = mask_atoms(small, small_batch, g)
    per = torch.bincount(small_batch[few != IGNORE_INDEX], minlength=200)
    assert (per == 0).any()  # unlike the "exact" rule, a crystal may get no MAP atom


def test_apc_reference_rule_takes_distinct_pairs_as_many_of_each_kind():
    mol = torch.full((4, 30), -1)
    mol[0, :30] = torch.arange(30) // 10  # 3 molecules of 10: 135 same, 300 different
    mol[1, :6] = torch.tensor([0, 0, 0, 1, 1, 1])  # 6 same, 9 different pairs
    mol[2, :5] = 0  # one molecule: no different pair, so none of either kind
    mol[3, :4] = torch.tensor([0, 1, 2, 3])  # no same pair
    g = torch.Generator().manual_seed(4)
    pairs, labels = sample_atom_pairs(mol, n_pairs=200, generator=g)
    assert pairs.shape == (4, 200, 2)
    assert (labels == 1).sum(1).tolist() == [100, 6, 0, 0]
    assert (labels == 0).sum(1).tolist() == [100, 6, 0, 0]
    for b in range(4):
        keep = labels[b] >= 0
        got = [tuple(sorted(p)) for p in pairs[b][keep].tolist()]
        assert len(set(got)) == len(got)  # without repetition
        for (i, j), lab in zip(got, labels[b][keep].tolist()):
            assert i != j and (mol[b, i] == mol[b, j]).item() == bool(lab)
        assert (pairs[b][~keep] == -1).all()
