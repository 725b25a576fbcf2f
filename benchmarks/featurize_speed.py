"""Featurisation speed: vectorised graph + angle features vs a per-atom-loop baseline.

Run from the repository root (``nice`` it on a shared machine)::

    python benchmarks/featurize_speed.py [--n-corpus 24] [--repeats 3]

On the same structures (the ``mcrt_examples`` CIFs and some of the pre-training
corpus) and in one run it times

- ours: :mod:`mcrt_sklearn.featurizers.neighbors` (distance matrix + minimum-image
  vectors, 28 neighbour-angle cosines, ALIGNN k-NN graph, line graph);
- the baseline: a straightforward implementation of the same DESIGN §4 algorithm
  with Python loops over atoms, neighbours and edges (written below, as the
  reference code is written), which must give identical outputs — asserted on every
  structure before any time is reported.

CIF reading is excluded from both (done once up front). Persistence images are
timed separately by ``benchmarks/persistence_speed.py``.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict

import numpy as np

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.featurizers.neighbors import (
    angle_features,
    knn_graph,
    line_graph,
    periodic_distances,
)
from mcrt_sklearn.structures import read_structure

DATA = shared_data_dir()


# ---------------------------------------------------------------- baseline (loops)


def _cos(u, v):
    c = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return min(1.0, max(-1.0, c))


def loop_angle_features(structure, n_nbr=8, tol=1e-3, convention="reference"):
    """DESIGN §4 angle features, one atom and one neighbour at a time."""
    dm = structure.distance_matrix
    n = len(structure)
    if convention == "periodic":
        _, vecs = periodic_distances(structure)
    out = []
    for i in range(n):
        order = [j for j in np.argsort(dm[i], kind="stable") if j != i]
        dist = [dm[i, j] for j in order]
        if len(dist) < n_nbr:
            count = len(dist)
        else:
            count = n_nbr
            while count < len(dist) and abs(dist[count] - dist[n_nbr - 1]) < tol:
                count += 1
        nbrs, dist = order[:count], dist[:count]

        def vec(j, i=i):
            if convention == "periodic":
                return vecs[i, j]
            return structure[j].coords - structure[i].coords

        groups = []  # (first distance, member ranks)
        for r in range(count):
            if any(abs(dist[r] - first) < tol for first, _ in groups):
                continue
            members = [q for q in range(count) if abs(dist[q] - dist[r]) < tol]
            groups.append((dist[members[0]], members))
        gvec, ginner = [], []
        for _, members in groups:
            if len(members) == 1:
                gvec.append(vec(nbrs[members[0]]))
                ginner.append(1.0)
                continue
            vs = [vec(nbrs[q]) for q in members]
            total = sum(v / np.linalg.norm(v) for v in vs)
            gvec.append(total if np.linalg.norm(total) > 1e-6 else np.zeros(3))
            sq = [
                np.arccos(_cos(vs[a], vs[b])) ** 2
                for a in range(len(vs))
                for b in range(a + 1, len(vs))
            ]
            ginner.append(float(np.cos(np.sqrt(np.mean(sq)))))

        def group_of(r, groups=groups):
            for g, (_, members) in enumerate(groups):
                if r in members:
                    return g

        row = []
        for j in range(n_nbr - 1):
            for k in range(j + 1, n_nbr):
                if k >= count:
                    row.append(-100.0)
                    continue
                gj, gk = group_of(j), group_of(k)
                if gj == gk:
                    row.append(ginner[gj])
                elif np.linalg.norm(gvec[gj]) < 1e-6 or np.linalg.norm(gvec[gk]) < 1e-6:
                    row.append(-100.0)
                else:
                    row.append(_cos(gvec[gj], gvec[gk]))
        out.append(row)
    return np.array(out)


def loop_knn_graph(structure, k=12, cutoff=8.0):
    """ALIGNN k-NN graph with per-site neighbour lists, a dict of canonical edges."""
    lat = structure.lattice
    while True:
        all_nbrs = structure.get_all_neighbors(cutoff)
        if min(len(nb) for nb in all_nbrs) >= k:
            break
        cutoff = max(lat.a, lat.b, lat.c, 2 * cutoff)
    edges = defaultdict(set)
    for i, nbrs in enumerate(all_nbrs):
        nbrs = sorted(nbrs, key=lambda nb: nb.nn_distance)
        kth = nbrs[k - 1].nn_distance
        for nb in nbrs:
            if nb.nn_distance > kth + 1e-8:
                break
            src, dst, img = i, nb.index, tuple(int(round(x)) for x in nb.image)
            if dst < src:
                src, dst, img = dst, src, tuple(-x for x in img)
            edges[(src, dst)].add(img)
    fc = structure.frac_coords
    u, v, r = [], [], []
    for src, dst in sorted(edges):
        for img in sorted(edges[(src, dst)]):
            d = lat.get_cartesian_coords(fc[dst] + np.array(img) - fc[src])
            u += [src, dst]
            v += [dst, src]
            r += [d, -d]
    return np.array([u, v]), np.array(r)


def loop_line_graph(edge_index, vectors):
    """Line graph by scanning the outgoing edges of each edge's end atom."""
    out_edges = defaultdict(list)
    for e, s in enumerate(edge_index[0]):
        out_edges[int(s)].append(e)
    pairs, cos = [], []
    for e1, d in enumerate(edge_index[1]):
        for e2 in out_edges[int(d)]:
            pairs.append((e1, e2))
            cos.append(_cos(-vectors[e1], vectors[e2]))
    return np.array(pairs).T, np.array(cos)


# ------------------------------------------------------------------------ timing


def ours(structure):
    distances, vectors = periodic_distances(structure)
    af = angle_features(structure, distances=distances, vectors=vectors)
    g = knn_graph(structure)
    lg, cos = line_graph(g.edge_index, g.edge_vectors)
    return distances, af, g.edge_index, g.edge_vectors, lg, cos


def baseline(structure):
    distances = structure.distance_matrix
    af = loop_angle_features(structure)
    ei, ev = loop_knn_graph(structure)
    lg, cos = loop_line_graph(ei, ev)
    return distances, af, ei, ev, lg, cos


def assert_identical(a, b, sid):
    names = [
        "distance_matrix",
        "angle_features",
        "edge_index",
        "edge_vectors",
        "line_graph_index",
        "line_graph_cosines",
    ]
    for name, x, y in zip(names, a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape, f"{sid}: {name} shapes {x.shape} vs {y.shape}"
        if x.dtype.kind in "iu":
            assert np.array_equal(x, y), f"{sid}: {name} differs"
        else:  # same algorithm, different float operation order
            err = np.abs(x - y).max() if x.size else 0.0
            assert err <= 1e-9, f"{sid}: {name} differs by {err:.2e}"


def _best_time(fn, structure, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(structure)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n-corpus",
        type=int,
        default=24,
        help="pre-training corpus structures to add (spread over sizes)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best of)")
    args = parser.parse_args(argv)

    paths = sorted((DATA / "mcrt_examples" / "cifs").glob("*.cif"))
    rows = list(csv.DictReader(open(DATA / "pretrain_corpus" / "properties.csv")))
    rows.sort(key=lambda r: int(r["n_atoms"]))
    if args.n_corpus:
        pick = np.linspace(0, len(rows) - 1, args.n_corpus).round().astype(int)
        paths += [DATA / "pretrain_corpus" / "cifs" / f"{rows[i]['id']}.cif" for i in pick]
    structures = [read_structure(p) for p in paths]

    print(f"{'structure':24s} {'atoms':>5s} {'ours ms':>9s} {'loop ms':>9s} {'ratio':>7s}")
    t_ours, t_loop = [], []
    for sid, s in structures:
        assert_identical(ours(s), baseline(s), sid)
        a = _best_time(ours, s, args.repeats)
        b = _best_time(baseline, s, max(1, args.repeats - 1))
        t_ours.append(a)
        t_loop.append(b)
        print(f"{sid:24s} {len(s):5d} {1e3 * a:9.2f} {1e3 * b:9.1f} {b / a:7.1f}")
    t_ours, t_loop = np.array(t_ours), np.array(t_loop)
    print(
        f"\n{len(structures)} structures ({min(len(s) for _, s in structures)}–"
        f"{max(len(s) for _, s in structures)} atoms), outputs identical (asserted)"
    )
    print(
        f"graph + angle featurisation per structure: ours {1e3 * t_ours.mean():.2f} ms, "
        f"loop baseline {1e3 * t_loop.mean():.1f} ms"
    )
    print(
        f"speed ratio (total time): {t_loop.sum() / t_ours.sum():.1f}x; "
        f"median per-structure ratio {np.median(t_loop / t_ours):.1f}x (target >= 20x)"
    )
    print("persistence images (exact vs fast, with the fast mode's errors): "
          "benchmarks/persistence_speed.py")


if __name__ == "__main__":
    main()
