"""Random, self-consistent MCRT input records for unit tests of the network (no pymatgen)."""

from __future__ import annotations

import numpy as np

from mcrt_sklearn.collate import MISSING_ANGLE


def random_records(
    n_records: int,
    n_atoms: tuple[int, int] = (4, 12),
    n_neighbors: int = 4,
    images: bool = True,
    pretrain_labels: bool = False,
    seed: int = 0,
):
    """Random, self-consistent MCRT input records (no pymatgen): for smoke tests.

    Atoms are random points in a 6 Å box (non-periodic distances), the graph is the
    ``n_neighbors``-nearest-neighbour graph stored both ways, the line graph and its
    cosines follow the DESIGN §4 definition; angle features are random cosines with a
    few -100 entries.
    """
    from mcrt_sklearn.featurizers.record import MCRTInput

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_records):
        n = int(rng.integers(n_atoms[0], n_atoms[1] + 1))
        pos = rng.uniform(0, 6, size=(n, 3))
        diff = pos[None, :, :] - pos[:, None, :]
        dist = np.linalg.norm(diff, axis=-1)
        k = min(n_neighbors, n - 1)
        pairs = set()
        for a in range(n):
            for b in np.argsort(dist[a])[1 : k + 1]:
                pairs.add((min(a, int(b)), max(a, int(b))))
        src = [a for a, b in sorted(pairs)] + [b for a, b in sorted(pairs)]
        dst = [b for a, b in sorted(pairs)] + [a for a, b in sorted(pairs)]
        edge_index = np.array([src, dst], dtype=np.int64).reshape(2, -1)
        vec = (pos[edge_index[1]] - pos[edge_index[0]]).astype(np.float32)
        e1, e2 = np.nonzero(edge_index[1][:, None] == edge_index[0][None, :])
        r1, r2 = -vec[e1], vec[e2]
        cos = (r1 * r2).sum(1) / (np.linalg.norm(r1, axis=1) * np.linalg.norm(r2, axis=1))
        angles = rng.uniform(-1, 1, size=(n, 28)).astype(np.float32)
        angles[rng.random(size=(n, 28)) < 0.1] = MISSING_ANGLE
        kw = {}
        if images:
            kw["image"] = rng.random(size=(2, 50, 50)).astype(np.float32)
            kw["image_scalars"] = rng.uniform(0.5, 8, size=4).astype(np.float32)
        if pretrain_labels:
            kw["molecule_ids"] = (np.arange(n) * 2 // n).astype(np.int64)
            sym = (rng.random(7) < 0.4).astype(np.float32)
            sym[0] = 1.0
            kw["symmetry_elements"] = sym
            kw["density"] = float(rng.uniform(1.0, 1.6))
            kw["spacegroup_number"] = int(rng.integers(1, 231))
        out.append(
            MCRTInput(
                structure_id=f"random_{seed}_{i}",
                atomic_numbers=rng.choice([1, 6, 7, 8, 16], size=n).astype(np.int64),
                distance_matrix=dist.astype(np.float32),
                angle_features=angles,
                edge_index=edge_index,
                edge_vectors=vec,
                line_graph_index=np.stack([e1, e2]).astype(np.int64).reshape(2, -1),
                line_graph_cosines=np.clip(cos, -1, 1).astype(np.float32),
                **kw,
            )
        )
    return out
