"""Persistence images of molecular crystals: MCRT's global (pore/void topology) modality.

The recipe (DESIGN.md §5) follows the MCRT reference code:

1. **Point cloud.** The atoms of a box of about ``box`` Å built from lattice copies of the
   cell (:func:`supercell_points`). ``supercell="reference"`` rebuilds the reference's
   copy loop exactly, *including its quirk*: copies ``x·a + y·b + z·c`` for ``x`` in
   3…19 and ``y, z`` in 0…19 plus the original cell, keeping points whose Cartesian
   coordinates all lie in (-5, box) Å. Copies ``x = 0, 1, 2`` (except the original cell)
   are missing, which leaves a large empty wedge in the cloud; the reference's maximum
   birth (the ``[SCL]`` scalar and the image's x-range) comes from that artefact. This is
   what the published checkpoint saw. ``supercell="cube"`` uses every periodic image of
   every atom inside ``[0, box)³`` instead (physically meaningful, but *different*
   numbers: e.g. BENZEN's max birth is 2.55 Å instead of 8.46 Å).
2. **Alpha complex** (gudhi, :func:`alpha_diagrams`), persistence diagrams in dimensions 1
   (channels / loops) and 2 (voids); birth and death radii are the square roots of
   gudhi's squared alpha values, rounded to float32 as the reference did.
3. **Image** (:func:`persistence_image`): the points ``(birth, persistence)`` are spread
   by an isotropic Gaussian of standard deviation ``spread`` (Å), integrated exactly over
   each pixel (products of normal-CDF differences), identity weights, on the diagram's own
   range ``[min(0, min birth), maxB] × [0, maxP]``; the result is transposed and flipped
   vertically (``img.T[::-1]``). Empty diagram → zero image and zero scalars.

Periodic copies are exactly co-spherical, so gudhi's default ``precision="safe"`` (and
``"fast"``) return garbage filtration values (~1e19-1e40) for some simplices here, and its
``"exact"`` costs 20-60 s per crystal. The default ``alpha_precision="delaunay"`` takes
gudhi's Delaunay triangulation (exact predicates) and computes the alpha values itself in
float64; our own persistence algorithm (:func:`_numba_diagrams`: H2 by duality and
union-find, H1 by a cleared and compressed Z/2 reduction) replaces gudhi's general one, which needs
20-40 s on these ~2M-simplex complexes. Together: the reference images to ~1e-12 of
the image maximum on every fixture crystal, in a few seconds (numba required; without it
the code falls back to gudhi's exact path).

``mode="fast"`` computes the diagrams of two nested sub-clouds (1/27 and 1/8 of the
atoms) instead of the full one and extrapolates the image intensity with a bulk + surface
model and a calibration measured on other crystals (:func:`fast_persistence_image`, whose
docstring states its measured error). It is
an approximation for screening, **not** a substitute for the exact images: the image
range (the [SCL] scalars) is set by a handful of features of the whole 100 Å cloud, which
a sub-cloud can miss (image cosine below 0.999 for 7 of 40 crystals it was not
designed on, down to 0.86; see there).

Measured (2-core machine shared with other jobs, CPU seconds of one process;
``benchmarks/results/persistence_speed_baseline6.json``): 5A_CSP_1 (58,793 points) 2.3 s
in the default exact mode, against 28 s for gudhi's exact alpha complex + its
persistence, and 27 s with ``alpha_precision="exact"``; the fast mode 0.29 s. Over the
six fixture crystals the exact mode is 14× faster than plain gudhi (median), over 64
other crystals it takes 0.7-4.1 s. Peak memory of a process that computes one image:
0.56 GB for 5A_CSP_1 and 0.91 GB for COYBOJ (116k points), of which ~0.2 GB is the
interpreter with its imports (0.80 and 1.16 GB before the simplex tree and its arrays
were freed early); mind it when choosing ``n_jobs``. The numba kernels compile once
(~20 s) and are cached on disk.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.special import ndtr
from sklearn.base import TransformerMixin

try:  # matminer is a hard dependency, but keep the numerical core importable without it
    from matminer.featurizers.base import BaseFeaturizer
except ImportError:  # pragma: no cover
    BaseFeaturizer = object  # type: ignore[assignment,misc]

__all__ = [
    "REFERENCE_SHIFT_RANGES",
    "supercell_points",
    "alpha_diagrams",
    "persistence_image",
    "diagram_image",
    "compute_persistence_image",
    "check_image_params",
    "fast_persistence_image",
    "PersistenceImageFeaturizer",
    "SCALAR_NAMES",
    "FAST_FRACTIONS",
]

logger = logging.getLogger(__name__)

#: Ranges of the lattice-copy loop of the reference supercell (x, y, z), plus the original
#: cell (0, 0, 0). ``x`` starts at 3 in the reference code (``range(-min_range, max_range)``
#: with ``min_range = -3``).
REFERENCE_SHIFT_RANGES = (range(3, 20), range(0, 20), range(0, 20))
#: Lower bound (Å) of the reference box: points with any coordinate <= this are dropped.
REFERENCE_MIN_COORD = -5.0
#: Names of the four scalars (the [SCL] tokens' values).
SCALAR_NAMES = ("max_birth_1d", "max_persistence_1d", "max_birth_2d", "max_persistence_2d")
#: Homology dimensions that make the two image channels.
IMAGE_DIMS = (1, 2)


# --------------------------------------------------------------------------------------
# 1. point cloud
# --------------------------------------------------------------------------------------
def _reference_shifts() -> np.ndarray:
    xs, ys, zs = (np.asarray(r) for r in REFERENCE_SHIFT_RANGES)
    grid = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.vstack([np.zeros((1, 3), dtype=grid.dtype), grid])


def _cube_points(coords: np.ndarray, lattice: np.ndarray, box: float) -> np.ndarray:
    """Every lattice image of every atom with all Cartesian coordinates in ``[0, box)``."""
    inv = np.linalg.inv(lattice)
    corners = np.array([[i, j, k] for i in (0, box) for j in (0, box) for k in (0, box)], float)
    frac_corners = corners @ inv
    frac_atoms = coords @ inv
    lo = np.floor(frac_corners.min(0) - frac_atoms.max(0)).astype(int) - 1
    hi = np.ceil(frac_corners.max(0) - frac_atoms.min(0)).astype(int) + 1
    out = []
    # loop over the first axis only: memory stays O(n_atoms * n_b * n_c)
    jj, kk = np.meshgrid(np.arange(lo[1], hi[1] + 1), np.arange(lo[2], hi[2] + 1), indexing="ij")
    jk = np.stack([jj.ravel(), kk.ravel()], 1).astype(float)
    for i in range(lo[0], hi[0] + 1):
        shifts = np.column_stack([np.full(len(jk), float(i)), jk]) @ lattice
        pts = (coords[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        keep = np.all((pts >= 0.0) & (pts < box), axis=1)
        if keep.any():
            out.append(pts[keep])
    return np.vstack(out) if out else np.zeros((0, 3))


def supercell_points(
    structure: Any, box: float = 100.0, supercell: str = "reference"
) -> np.ndarray:
    """Cartesian coordinates of the atoms of a ~``box`` Å block built from copies of the cell.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal (its ``cart_coords`` are used as given, not wrapped into the cell, as
        in the reference).
    box : float
        Edge of the box in Å.
    supercell : {"reference", "cube"}
        ``"reference"``: the reference's copy loop (x in 3…19, y and z in 0…19, plus the
        original cell; see the module docstring), points with all coordinates in
        ``(-5, box)``. ``"cube"``: all periodic images of the atoms inside ``[0, box)³``.

    Returns
    -------
    ndarray of float64, shape (m, 3)
        In the reference's order for ``"reference"`` (original cell first, then the copies
        with x slowest, z fastest).
    """
    coords = np.asarray(structure.cart_coords, dtype=float)
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    if supercell == "cube":
        return _cube_points(coords, lattice, float(box))
    if supercell != "reference":
        raise ValueError(f"supercell must be 'reference' or 'cube', got {supercell!r}")
    shifts = _reference_shifts().astype(float) @ lattice
    pts = (shifts[:, None, :] + coords[None, :, :]).reshape(-1, 3)
    keep = (pts.max(axis=1) < box) & (pts.min(axis=1) > REFERENCE_MIN_COORD)
    return pts[keep]


# --------------------------------------------------------------------------------------
# 2. alpha complex and diagrams
# --------------------------------------------------------------------------------------
try:  # optional accelerator: our own persistence algorithm (see _numba_diagrams)
    import numba as _nb
except ImportError:  # pragma: no cover
    _nb = None


def _njit(fn):
    return _nb.njit(cache=True, nogil=True)(fn) if _nb is not None else fn


# Our persistence algorithm for 3-D alpha complexes (gudhi's general cohomology algorithm
# takes 20-40 s on these ~2M-simplex complexes; this takes ~1 s and gives identical
# diagrams, checked in the tests):
# * the simplex tree is read from gudhi's own serialisation (pickle state) instead of a
#   Python loop over 2M simplices;
# * H2 by Alexander duality: union-find over tetrahedra + the outer cell, triangles in
#   decreasing filtration order, elder rule; a triangle that joins two dual components
#   creates a void (paired with the younger component's oldest tetrahedron), every other
#   triangle kills a 1-cycle;
# * H1 by standard Z/2 column reduction of the edge boundaries of exactly those
#   triangles (clearing: the H2-creating triangles' columns would reduce to zero), with
#   the rows of negative edges (those that merge two components, found by union-find)
#   left out ("compression"), and a working column that grows past _LONG_COLUMN
#   entries kept in a bit tree, so that adding a short column to it does not cost a
#   pass over it. Same pairs (diagrams bit-identical on 94 crystals); the H1 reduction
#   of azaphenacene_439 went from 8.8 s to 1.1 s, that of 5A_CSP_1 stays ~0.1 s.


@_njit
def _u32(buf, p):
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@_njit
def _parse(buf, pos, cap):
    verts = np.full((cap, 4), -1, np.int64)
    dim = np.empty(cap, np.int64)
    filt = np.empty(cap, np.float64)
    tmp = np.empty(1, np.uint64)
    fview = tmp.view(np.float64)
    st_first = np.empty(16, np.int64)
    st_n = np.empty(16, np.int64)
    st_i = np.empty(16, np.int64)
    cnt = 0
    nbuf = buf.shape[0]
    # read the root block (every read is bounds-checked: a format change gives pos = -1)
    if pos + 4 > nbuf:
        return verts[:0], dim[:0], filt[:0], -1
    n = _u32(buf, pos)
    pos += 4
    if pos + 12 * n > nbuf or n > cap:
        return verts[:0], dim[:0], filt[:0], -1
    first = cnt
    for _ in range(n):
        verts[cnt, 0] = _u32(buf, pos)
        pos += 4
        u = np.uint64(0)
        for b in range(8):
            u |= np.uint64(buf[pos + b]) << np.uint64(8 * b)
        tmp[0] = u
        filt[cnt] = fview[0]
        pos += 8
        dim[cnt] = 0
        cnt += 1
    depth = 0
    st_first[0] = first
    st_n[0] = n
    st_i[0] = 0
    while depth >= 0:
        if st_i[depth] >= st_n[depth]:
            depth -= 1
            continue
        parent = st_first[depth] + st_i[depth]
        st_i[depth] += 1
        if pos + 4 > nbuf:
            return verts[:0], dim[:0], filt[:0], -1
        n = _u32(buf, pos)
        pos += 4
        if n == 0:
            continue
        d = dim[parent] + 1
        if d > 3 or depth >= 15 or cnt + n > cap or pos + 12 * n > nbuf:
            return verts[:0], dim[:0], filt[:0], -1
        first = cnt
        for _ in range(n):
            for j in range(d):
                verts[cnt, j] = verts[parent, j]
            verts[cnt, d] = _u32(buf, pos)
            pos += 4
            u = np.uint64(0)
            for b in range(8):
                u |= np.uint64(buf[pos + b]) << np.uint64(8 * b)
            tmp[0] = u
            filt[cnt] = fview[0]
            pos += 8
            dim[cnt] = d
            cnt += 1
        depth += 1
        st_first[depth] = first
        st_n[depth] = n
        st_i[depth] = 0
    return verts[:cnt], dim[:cnt], filt[:cnt], pos


@_njit
def _find(parent, x):
    r = x
    while parent[r] != r:
        r = parent[r]
    while parent[x] != r:
        nx = parent[x]
        parent[x] = r
        x = nx
    return r


@_njit
def _h2_dual(t_order, cof, tet_rank, tet_order, ff, ftet, ntet):
    parent = np.arange(ntet + 1)
    key = np.empty(ntet + 1, np.int64)
    key[:ntet] = tet_rank
    key[ntet] = ntet + 1
    F = t_order.shape[0]
    neg1 = np.zeros(F, np.bool_)
    births = np.empty(F, np.float64)
    deaths = np.empty(F, np.float64)
    m = 0
    for ii in range(F - 1, -1, -1):
        t = t_order[ii]
        a = cof[t, 0]
        b = cof[t, 1]
        if a < 0:
            a = ntet
        if b < 0:
            b = ntet
        ra = _find(parent, a)
        rb = _find(parent, b)
        if ra == rb:
            neg1[t] = True
        else:
            if key[ra] < key[rb]:
                dying = ra
                surv = rb
            else:
                dying = rb
                surv = ra
            tet = tet_order[key[dying]]
            if ftet[tet] > ff[t]:
                births[m] = ff[t]
                deaths[m] = ftet[tet]
                m += 1
            parent[dying] = surv
    return neg1, births[:m], deaths[:m]


@_njit
def _negative_edges(e_order, ev, n_points):
    # Edges that join two components when added in filtration order (H0 deaths).
    parent = np.arange(n_points)
    neg = np.zeros(e_order.shape[0], np.bool_)
    for ii in range(e_order.shape[0]):
        e = e_order[ii]
        ra = _find(parent, ev[e, 0])
        rb = _find(parent, ev[e, 1])
        if ra != rb:
            parent[ra] = rb
            neg[e] = True
    return neg


#: A working column longer than this moves into a bit tree (see :func:`_h1_reduce`).
_LONG_COLUMN = 256
_ONE = np.uint64(1)


@_njit
def _top_bit(w):
    # index of the highest set bit of a non-zero uint64
    r = 0
    for sh in (32, 16, 8, 4, 2, 1):
        if w >> np.uint64(sh):
            w = w >> np.uint64(sh)
            r += sh
    return r


@_njit
def _bt_toggle(tree, off, nl, i):
    # flip bit i of the bottom level; a word that turns (non-)empty flips its parent bit
    level = 0
    idx = i
    while True:
        w = off[level] + (idx >> 6)
        old = tree[w]
        new = old ^ (_ONE << np.uint64(idx & 63))
        tree[w] = new
        if level == nl - 1 or (old == 0) == (new == 0):
            return
        idx = idx >> 6
        level += 1


@_njit
def _bt_max(tree, off, nl):
    # largest set index, or -1
    if tree[off[nl - 1]] == 0:
        return -1
    idx = 0
    for level in range(nl - 1, -1, -1):
        idx = idx * 64 + _top_bit(tree[off[level] + idx])
    return idx


@_njit
def _grown(a, used, need):
    # a itself if it holds `need` entries, else a copy of its first `used` entries in an
    # int64 array of twice, four times... its size
    size = a.shape[0]
    if need <= size:
        return a
    while size < need:
        size *= 2
    out = np.empty(size, np.int64)
    out[:used] = a[:used]
    return out


@_njit
def _h1_reduce(t_order, neg1, tri_edges, e_rank, e_order, fe, ff, neg0):
    E = fe.shape[0]
    pivot_col = np.full(E, -1, np.int64)
    store = np.empty(1 << 20, np.int64)
    start = np.empty(t_order.shape[0] + 1, np.int64)
    length = np.empty(t_order.shape[0] + 1, np.int64)
    used = 0
    ncol = 0
    cur = np.empty(1024, np.int64)
    nxt = np.empty(1024, np.int64)
    births = np.empty(t_order.shape[0], np.float64)
    deaths = np.empty(t_order.shape[0], np.float64)
    # bit tree over the E edge ranks (64-ary, levels until one word): adding a short
    # column to a long working column then costs O(short) instead of O(long)
    sizes = [max((E + 63) // 64, 1)]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 63) // 64)
    nl = len(sizes)
    off = np.zeros(nl, np.int64)
    for k in range(1, nl):
        off[k] = off[k - 1] + sizes[k - 1]
    tree = np.zeros(off[nl - 1] + 1, np.uint64)
    m = 0
    nadd = 0
    for ii in range(t_order.shape[0]):
        t = t_order[ii]
        if not neg1[t]:
            continue
        # the column holds the triangle's positive edges only: rows of negative edges
        # (H0 deaths) never hold a pivot and can be dropped without changing any pair
        # ("compression", Bauer, Kerber & Reininghaus 2014)
        n = 0
        for q in range(3):
            e = tri_edges[t, q]
            if neg0[e]:
                continue
            r = e_rank[e]
            k = n
            while k > 0 and cur[k - 1] > r:
                cur[k] = cur[k - 1]
                k -= 1
            cur[k] = r
            n += 1
        in_tree = False
        while True:
            if in_tree:
                p = _bt_max(tree, off, nl)
                if p < 0:
                    in_tree = False
                    n = 0
                    break
            else:
                if n == 0:
                    break
                p = cur[n - 1]
            o = pivot_col[p]
            if o < 0:
                break
            nadd += 1
            s0 = start[o]
            ln = length[o]
            if in_tree:
                for j in range(ln):
                    _bt_toggle(tree, off, nl, store[s0 + j])
                continue
            # symmetric difference cur ^ stored[o]
            if n + ln > cur.shape[0]:
                cur = _grown(cur, n, n + ln)
                nxt = np.empty(cur.shape[0], np.int64)
            i = 0
            j = 0
            k = 0
            while i < n and j < ln:
                x = cur[i]
                y = store[s0 + j]
                if x < y:
                    nxt[k] = x
                    k += 1
                    i += 1
                elif y < x:
                    nxt[k] = y
                    k += 1
                    j += 1
                else:
                    i += 1
                    j += 1
            while i < n:
                nxt[k] = cur[i]
                k += 1
                i += 1
            while j < ln:
                nxt[k] = store[s0 + j]
                k += 1
                j += 1
            cur, nxt = nxt, cur
            n = k
            if n > _LONG_COLUMN:
                for j in range(n):
                    _bt_toggle(tree, off, nl, cur[j])
                in_tree = True
        if in_tree:
            # read the column back (descending) and leave the tree empty
            n = 0
            p = _bt_max(tree, off, nl)
            while p >= 0:
                if n == cur.shape[0]:
                    cur = _grown(cur, n, n + 1)
                    nxt = np.empty(cur.shape[0], np.int64)
                cur[n] = p
                n += 1
                _bt_toggle(tree, off, nl, p)
                p = _bt_max(tree, off, nl)
            cur[:n] = cur[:n][::-1].copy()
        if n == 0:
            continue
        p = cur[n - 1]
        pivot_col[p] = ncol
        store = _grown(store, used, used + n)
        store[used : used + n] = cur[:n]
        start[ncol] = used
        length[ncol] = n
        used += n
        ncol += 1
        bv = fe[e_order[p]]
        if ff[t] > bv:
            births[m] = bv
            deaths[m] = ff[t]
            m += 1
    return births[:m], deaths[:m], nadd


#: Filtration value given to exactly flat simplices (whose circumradius is infinite); pairs
#: that die at or after it are dropped (see :func:`alpha_diagrams`).
_FLAT_VALUE = 1e30


@_njit
def _alpha_tets_triangles(x, tv, qv, faces, rel_tol, flat_tol):
    # Squared circumradii of the tetrahedra and triangles, the triangles' circumcentres,
    # and which triangles are attached: an opposite vertex of a cofacet lies strictly
    # inside the triangle's smallest circumsphere. Tests within rel_tol of the sphere
    # (co-spherical periodic copies) are left undecided and returned as (triangle,
    # vertex) pairs for an exact test. Simplices flat to within flat_tol (relative volume
    # / area) get _FLAT_VALUE: exact arithmetic gives them meaningless ~1e30+ values.
    F = tv.shape[0]
    T = qv.shape[0]
    big = 1e30
    fq = np.empty(T)
    for t in range(T):
        p0 = x[qv[t, 0]]
        a = x[qv[t, 1]] - p0
        b = x[qv[t, 2]] - p0
        c = x[qv[t, 3]] - p0
        bxc = np.cross(b, c)
        cxa = np.cross(c, a)
        axb = np.cross(a, b)
        det = a[0] * bxc[0] + a[1] * bxc[1] + a[2] * bxc[2]
        na = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
        nb = b[0] * b[0] + b[1] * b[1] + b[2] * b[2]
        nc = c[0] * c[0] + c[1] * c[1] + c[2] * c[2]
        if abs(det) <= flat_tol * np.sqrt(na * nb * nc):
            fq[t] = big
            continue
        o = (na * bxc + nb * cxa + nc * axb) / (2.0 * det)
        fq[t] = min(o[0] * o[0] + o[1] * o[1] + o[2] * o[2], big)
    ff = np.empty(F)
    flat_t = np.zeros(F, np.bool_)
    cen = np.empty((F, 3))
    for s in range(F):
        p0 = x[tv[s, 0]]
        a = x[tv[s, 1]] - p0
        b = x[tv[s, 2]] - p0
        axb = np.cross(a, b)
        na = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
        nb = b[0] * b[0] + b[1] * b[1] + b[2] * b[2]
        n2 = axb[0] * axb[0] + axb[1] * axb[1] + axb[2] * axb[2]
        if n2 <= flat_tol * flat_tol * na * nb:
            flat_t[s] = True  # collinear: infinite circumcircle, every vertex is inside
            ff[s] = big
            cen[s] = p0
            continue
        o = np.cross(na * b - nb * a, axb) / (2.0 * n2)
        cen[s] = p0 + o
        ff[s] = min(o[0] * o[0] + o[1] * o[1] + o[2] * o[2], big)
    att = flat_t.copy()
    low = np.full(F, np.inf)
    und = np.empty((4 * T, 2), np.int64)
    m = 0
    for t in range(T):
        for k in range(4):
            s = faces[t, k]
            if fq[t] < low[s]:
                low[s] = fq[t]
            if not att[s]:
                d = x[qv[t, k]] - cen[s]
                d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
                if d2 < ff[s] * (1.0 - rel_tol):
                    att[s] = True
                elif d2 <= ff[s] * (1.0 + rel_tol):
                    und[m, 0] = s
                    und[m, 1] = qv[t, k]
                    m += 1
    return fq, ff, att, low, und[:m]


@_njit
def _alpha_edges(x, ev, tv, tri_edges, ff, att, low, rel_tol):
    # Triangle values (attached: the smallest cofacet value), then the edges' squared
    # half-lengths and attachment (opposite vertex strictly inside the diametral sphere),
    # near-ties returned as (edge, vertex) pairs as above.
    F = tv.shape[0]
    E = ev.shape[0]
    for s in range(F):
        if att[s] and low[s] < np.inf:
            ff[s] = low[s]
    fe = np.empty(E)
    for e in range(E):
        d = x[ev[e, 1]] - x[ev[e, 0]]
        fe[e] = 0.25 * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    att_e = np.zeros(E, np.bool_)
    low_e = np.full(E, np.inf)
    und = np.empty((3 * F, 2), np.int64)
    m = 0
    for s in range(F):
        for k in range(3):
            e = tri_edges[s, k]
            if ff[s] < low_e[e]:
                low_e[e] = ff[s]
            if not att_e[e]:
                q = tv[s, 2 - k]  # edges are (v0 v1), (v0 v2), (v1 v2)
                mid = 0.5 * (x[ev[e, 0]] + x[ev[e, 1]])
                d = x[q] - mid
                d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
                if d2 < fe[e] * (1.0 - rel_tol):
                    att_e[e] = True
                elif d2 <= fe[e] * (1.0 + rel_tol):
                    und[m, 0] = e
                    und[m, 1] = q
                    m += 1
    return ff, fe, att_e, low_e, und[:m]


@_njit
def _alpha_finish(tv, qv, tri_edges, faces, ff, fq, fe, att_e, low_e):
    # Attached edges take their smallest cofacet value; then a filtration: faces never
    # after cofaces (only flat-simplex handling can violate it).
    E = fe.shape[0]
    F = tv.shape[0]
    T = qv.shape[0]
    for e in range(E):
        if att_e[e] and low_e[e] < np.inf:
            fe[e] = low_e[e]
    for s in range(F):
        for k in range(3):
            v = fe[tri_edges[s, k]]
            if v > ff[s]:
                ff[s] = v
    for t in range(T):
        for k in range(4):
            v = ff[faces[t, k]]
            if v > fq[t]:
                fq[t] = v
    return fe, ff, fq


def _exact_vec(p) -> list[Fraction]:
    return [Fraction(float(c)) for c in p]


def _exactly_inside_diametral_ball(a, b, q) -> bool:
    """``q`` strictly inside the smallest sphere through ``a`` and ``b`` (exact rationals)."""
    a, b, q = _exact_vec(a), _exact_vec(b), _exact_vec(q)
    return sum((qi - ai) * (qi - bi) for ai, bi, qi in zip(a, b, q)) < 0


def _exactly_inside_circumsphere(a, b, c, q) -> bool:
    """``q`` strictly inside the smallest sphere through triangle ``abc`` (exact rationals).

    With ``u = b - a``, ``v = c - a``, ``w = u × v``, the centre is ``a + O / (2 |w|²)``
    where ``O = (|u|² v - |v|² u) × w``; inside ⇔ ``|w|² |q-a|² < (q-a)·O``.
    """
    a, b, c, q = _exact_vec(a), _exact_vec(b), _exact_vec(c), _exact_vec(q)

    def sub(p, r):
        return [pi - ri for pi, ri in zip(p, r)]

    def dot(p, r):
        return sum(pi * ri for pi, ri in zip(p, r))

    def cross(p, r):
        return [p[1] * r[2] - p[2] * r[1], p[2] * r[0] - p[0] * r[2], p[0] * r[1] - p[1] * r[0]]

    u, v, qa = sub(b, a), sub(c, a), sub(q, a)
    w = cross(u, v)
    nu, nv = dot(u, u), dot(v, v)
    big_o = cross([nu * vi - nv * ui for ui, vi in zip(u, v)], w)
    return dot(w, w) * dot(qa, qa) < dot(qa, big_o)


def _alpha_values(x, ev, tv, qv, tri_edges, faces, rel_tol=1e-10, flat_tol=1e-12):
    """Squared alpha filtration values of a Delaunay triangulation of the points ``x``.

    CGAL/diode semantics, in float64: a tetrahedron enters at its squared circumradius; a
    triangle (edge) at its own squared circumradius if no opposite vertex of a cofacet
    lies strictly inside its smallest circumsphere, else at the smallest value of its
    cofacets. Periodic copies put many vertices on those spheres up to rounding; tests
    that float64 cannot decide (within ``rel_tol``) are redone in exact rational
    arithmetic on the same coordinates, as CGAL's exact kernel does (a relative tolerance
    alone decided "outside" and gave, e.g., UHAWUX a spurious 86 Å loop).
    """
    fq, ff, att, low, und_t = _alpha_tets_triangles(x, tv, qv, faces, rel_tol, flat_tol)
    for s, q in und_t:
        if not att[s] and _exactly_inside_circumsphere(x[tv[s, 0]], x[tv[s, 1]],
                                                       x[tv[s, 2]], x[q]):
            att[s] = True
    ff, fe, att_e, low_e, und_e = _alpha_edges(x, ev, tv, tri_edges, ff, att, low, rel_tol)
    for e, q in und_e:
        if not att_e[e] and _exactly_inside_diametral_ball(x[ev[e, 0]], x[ev[e, 1]], x[q]):
            att_e[e] = True
    return _alpha_finish(tv, qv, tri_edges, faces, ff, fq, fe, att_e, low_e)


#: Header of gudhi's simplex-tree serialisation that :func:`_parse` understands.
_GUDHI_STATE_HEADER = bytes([1, 0, 1, 0, 0, 0])


def _tree_arrays(simplex_tree) -> list[np.ndarray] | None:
    """``[vertices, dimension, filtration]`` of every simplex of a gudhi simplex tree of
    dimension ≤ 3, read from its serialisation, or None if that is not possible."""
    if _nb is None or simplex_tree.dimension() > 3:
        return None
    state = np.ascontiguousarray(simplex_tree.__getstate__())
    buf = state.view(np.uint8) if state.dtype.itemsize == 1 else np.frombuffer(
        state.tobytes(), dtype=np.uint8
    )
    n_simplices = simplex_tree.num_simplices()
    if bytes(buf[:6]) != _GUDHI_STATE_HEADER:
        return None
    verts, dim, filt, pos = _parse(buf, 6, n_simplices)
    if pos != len(buf) or len(verts) != n_simplices:
        logger.debug("unexpected gudhi serialisation; using gudhi's persistence")
        return None
    return [verts, dim, filt]


def _numba_diagrams(
    tree: list[np.ndarray] | None,
    n_points: int,
    coords: np.ndarray | None = None,
    rel_tol: float = 1e-10,
    flat_tol: float = 1e-12,
) -> dict[int, np.ndarray] | None:
    """Squared-alpha (birth, death) pairs in dims 1 and 2, or None if not applicable.

    ``tree`` is :func:`_tree_arrays` of the complex; it is emptied here so that its
    arrays (~100 MB at 100k points) are freed as soon as they are split by dimension.
    With ``coords``, the tree is only a triangulation and the filtration values are
    computed by :func:`_alpha_values` from ``coords``; else the tree's values are used.
    """
    if tree is None:
        return None
    verts, dim, filt = tree
    tree.clear()  # the caller's list no longer holds the arrays: they are freed below
    big = np.int64(max(n_points, int(verts.max()) + 1))

    ev, fe, tv, ff, qv, fq = (
        a for d in (1, 2, 3) for a in (verts[dim == d, : d + 1], filt[dim == d])
    )
    del verts, dim, filt
    if len(ev) == 0:
        return {1: np.zeros((0, 2)), 2: np.zeros((0, 2))}
    e_key = ev[:, 0] * big + ev[:, 1]
    t_key = (tv[:, 0] * big + tv[:, 1]) * big + tv[:, 2]
    e_sort = np.argsort(e_key, kind="stable")
    t_sort = np.argsort(t_key, kind="stable")
    e_key_s, t_key_s = e_key[e_sort], t_key[t_sort]

    def edge_id(a, b):
        return e_sort[np.searchsorted(e_key_s, a * big + b)]

    def tri_id(a, b, c):
        return t_sort[np.searchsorted(t_key_s, (a * big + b) * big + c)]

    tri_edges = np.stack(
        [edge_id(tv[:, 0], tv[:, 1]), edge_id(tv[:, 0], tv[:, 2]), edge_id(tv[:, 1], tv[:, 2])], 1
    )
    n_tri, n_tet = len(tv), len(qv)
    cof = np.full((n_tri, 2), -1, dtype=np.int64)
    if n_tet:
        faces = np.stack(
            [
                tri_id(qv[:, a], qv[:, b], qv[:, c])
                for a, b, c in ((1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2))
            ],
            1,
        )
        flat_faces = faces.ravel()
        tets = np.repeat(np.arange(n_tet), 4)
        o = np.argsort(flat_faces, kind="stable")
        flat_faces, tets = flat_faces[o], tets[o]
        first = np.ones(len(flat_faces), dtype=bool)
        first[1:] = flat_faces[1:] != flat_faces[:-1]
        cof[flat_faces[first], 0] = tets[first]
        cof[flat_faces[~first], 1] = tets[~first]
    else:
        faces = np.zeros((0, 4), dtype=np.int64)
    if coords is not None:
        fe, ff, fq = _alpha_values(
            np.ascontiguousarray(coords, dtype=np.float64),
            ev,
            tv,
            qv,
            tri_edges,
            faces,
            float(rel_tol),
            float(flat_tol),
        )
    e_order = np.argsort(fe, kind="stable")
    e_rank = np.empty_like(e_order)
    e_rank[e_order] = np.arange(len(fe))
    t_order = np.argsort(ff, kind="stable")
    q_order = np.argsort(fq, kind="stable")
    q_rank = np.empty_like(q_order)
    q_rank[q_order] = np.arange(n_tet)
    neg1, b2, d2 = _h2_dual(t_order, cof, q_rank, q_order, ff, fq, n_tet)
    neg0 = _negative_edges(e_order, ev, int(big))
    b1, d1, _ = _h1_reduce(t_order, neg1, tri_edges, e_rank, e_order, fe, ff, neg0)
    return {1: np.column_stack([b1, d1]), 2: np.column_stack([b2, d2])}


def alpha_diagrams(
    points: np.ndarray,
    dims: Sequence[int] = IMAGE_DIMS,
    precision: str = "delaunay",
    jitter: float = 1e-5,
    seed: int = 0,
    backend: str = "auto",
) -> dict[int, np.ndarray]:
    """Persistence diagrams of the alpha-complex filtration of a point cloud.

    Parameters
    ----------
    points : ndarray, shape (m, 3)
        Cartesian coordinates (Å).
    dims : sequence of int
        Homology dimensions to return.
    precision : {"delaunay", "exact", "jitter"}
        How the alpha complex is built. Periodic copies are exactly co-spherical, which
        breaks gudhi's default ``"safe"`` (filtration values ~1e40) and its ``"fast"``.

        - ``"delaunay"`` (default): gudhi's Delaunay triangulation with exact predicates
          (``DelaunayComplex(precision="fast")``), then our own float64 alpha values
          (circumradii; attachment tests in float64, the co-spherical ties it cannot
          decide redone in exact rational arithmetic; exactly flat simplices at 1e30).
          Same pixels as the reference to ~1e-12 on every fixture crystal, the same
          diagrams as ``"exact"`` on unseen crystals with many ties (UHAWUX, roy_29),
          ~5-10x faster than ``"exact"``. Needs numba and gudhi's documented
          pickle format; otherwise falls back to ``"exact"``.
        - ``"exact"``: ``AlphaComplex(precision="exact")``: the reference's numbers
          (CGAL exact arithmetic), 20-60 s per 100 Å box.
        - ``"jitter"``: points moved by N(0, ``jitter``) (fixed ``seed``), gudhi
          ``precision="fast"``: radii within ~4e-5 Å of the exact ones, but some exactly
          degenerate pairs survive (up to 2e-3 relative pixel error on the fixtures).
    jitter : float
        Standard deviation (Å) of the jitter (``precision="jitter"``).
    seed : int
        Seed of the jitter.
    backend : {"auto", "numba", "gudhi"}
        Persistence algorithm. ``"numba"``: ours for 3-D alpha complexes (H2 by duality
        and union-find, H1 by a cleared, compressed Z/2 column reduction), ~10x faster
        than gudhi's and identical diagrams. ``"gudhi"``: ``SimplexTree.compute_persistence`` with Z/2
        coefficients (not available with ``precision="delaunay"``). ``"auto"``: numba if
        importable, else gudhi.

    Returns
    -------
    dict of int to ndarray of float32, shape (k, 2)
        ``{dim: [[birth, death], ...]}`` in Å: square roots of the squared alpha values
        rounded to float32, as in the reference (dionysus keeps float32 values and drops
        pairs whose float32 birth and death are equal; so do we). Pairs dying at the flat
        value (1e30, i.e. never in a real crystal) are dropped.
    """
    import gudhi

    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (m, 3), got {pts.shape}")
    if precision not in ("delaunay", "exact", "jitter"):
        raise ValueError(f"precision must be 'delaunay', 'exact' or 'jitter', got {precision!r}")
    if backend not in ("auto", "numba", "gudhi"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'gudhi', got {backend!r}")
    if backend == "numba" and _nb is None:
        raise RuntimeError("backend='numba' needs the numba package")
    dims = [int(d) for d in dims]
    if len(pts) < 2:
        return {d: np.zeros((0, 2), dtype=np.float32) for d in dims}
    use_numba = backend != "gudhi" and _nb is not None and set(dims) <= {1, 2}
    if precision == "delaunay" and not use_numba:
        logger.warning("precision='delaunay' needs numba and dims within (1, 2); using 'exact'")
        precision = "exact"
    squared = None
    if precision == "delaunay":
        st = gudhi.DelaunayComplex(points=pts, precision="fast").create_simplex_tree()
        tree = _tree_arrays(st)
        del st  # the tree (~200 MB at 100k points) is not needed past this point
        squared = _numba_diagrams(tree, len(pts), coords=pts)
        if squared is None:
            logger.warning("unexpected gudhi simplex-tree format; using precision='exact'")
            precision = "exact"
    if squared is None:
        if precision == "jitter":
            rng = np.random.default_rng(seed)
            alpha_pts = pts + rng.normal(0.0, jitter, size=pts.shape)
        else:
            alpha_pts = pts
        st = gudhi.AlphaComplex(
            points=alpha_pts, precision="fast" if precision == "jitter" else "exact"
        ).create_simplex_tree()
        if use_numba:
            squared = _numba_diagrams(_tree_arrays(st), len(pts))
        if squared is None:
            # Z/2 coefficients: the complex lives in R^3, so there is no torsion and the
            # diagrams equal gudhi's default Z/11 ones.
            st.compute_persistence(homology_coeff_field=2, persistence_dim_max=False)
            squared = {
                d: np.asarray(st.persistence_intervals_in_dimension(d), dtype=float) for d in dims
            }
    out = {}
    for d in dims:
        iv = np.asarray(squared[d], dtype=float).reshape(-1, 2)
        iv = iv[np.isfinite(iv).all(axis=1) & (iv[:, 1] < 0.5 * _FLAT_VALUE)]
        iv32 = np.maximum(iv, 0.0).astype(np.float32)
        iv32 = iv32[iv32[:, 1] > iv32[:, 0]]
        out[d] = np.sqrt(iv32)
    return out


# --------------------------------------------------------------------------------------
# 3. images
# --------------------------------------------------------------------------------------
def _axis_weights(centres: np.ndarray, lower: np.ndarray, upper: np.ndarray, spread: float):
    """(n, P) Gaussian mass of each point in each pixel interval [lower, upper]."""
    c = centres[:, None]
    return ndtr((upper[None, :] - c) / spread) - ndtr((lower[None, :] - c) / spread)


@_njit
def _raster_numba(pts, weights, xs_lo, xs_hi, ys_lo, ys_hi, spread, img):
    # Same sums as the numpy path, skipping birth pixels more than 12 spreads away from
    # the point (their mass is < 1e-32).
    n = pts.shape[0]
    nx = xs_lo.shape[0]
    ny = ys_lo.shape[0]
    inv = 1.0 / (spread * np.sqrt(2.0))
    cut = 12.0 * spread
    wy = np.empty(ny)
    for k in range(n):
        b = pts[k, 0]
        q = pts[k, 1]
        for j in range(ny):
            wy[j] = 0.5 * (math.erfc(-(ys_hi[j] - q) * inv) - math.erfc(-(ys_lo[j] - q) * inv))
        for i in range(nx):
            if xs_hi[i] < b - cut or xs_lo[i] > b + cut:
                continue
            w = weights[k] * 0.5 * (
                math.erfc(-(xs_hi[i] - b) * inv) - math.erfc(-(xs_lo[i] - b) * inv)
            )
            for j in range(ny):
                img[i, j] += w * wy[j]
    return img


def persistence_image(
    points: np.ndarray,
    pixels: int = 50,
    spread: float = 0.15,
    max_birth: float | None = None,
    max_persistence: float | None = None,
    min_value: float | None = None,
    chunk: int = 65536,
    use_numba: bool | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Rasterise (birth, persistence) points the way the reference's ``PersImage`` does.

    Pixel ``i`` along the birth axis covers ``[l_i, l_i + maxB / P]`` with
    ``l = linspace(minB, maxB, P)`` (so pixels overlap slightly when ``minB = 0``: the
    reference's grid, kept for exactness); the persistence axis likewise with
    ``linspace(0, maxP, P)`` and width ``maxP / P``. Each point adds the mass of an
    isotropic Gaussian (standard deviation ``spread``, same units as the points) in each
    pixel rectangle, computed exactly as a product of normal-CDF differences; weights
    are 1.

    Parameters
    ----------
    points : ndarray, shape (n, 2)
        ``(birth, persistence)`` pairs.
    pixels : int
        Image side P.
    spread : float
        Standard deviation of the Gaussian.
    max_birth, max_persistence : float, optional
        Range of the image; default: the maxima of ``points`` (and 0).
    min_value : float, optional
        Lower end of the birth axis; default ``min(0, points.min())``.
    chunk : int
        Points processed at once by the numpy path (bounds memory).
    use_numba : bool, optional
        Use the compiled loop (same numbers to ~1e-15, ~5x faster); default: if numba
        is importable.
    weights : ndarray, shape (n,), optional
        Weight of each point (default 1): a point of weight ``k`` counts as ``k`` copies
        of it, which is how :func:`diagram_image` passes the repeated pairs of a periodic
        cloud.

    Returns
    -------
    ndarray of float64, shape (P, P)
        ``img.T[::-1]``: rows are persistence (highest first), columns are birth.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros((pixels, pixels))
    max_b = float(max(pts[:, 0].max(), 0.0)) if max_birth is None else float(max_birth)
    max_p = float(max(pts[:, 1].max(), 0.0)) if max_persistence is None else float(max_persistence)
    min_b = float(min(pts.min(), 0.0)) if min_value is None else float(min(min_value, 0.0))
    xs_lo = np.linspace(min_b, max_b, pixels)
    xs_hi = xs_lo + max_b / pixels
    ys_lo = np.linspace(0.0, max_p, pixels)
    ys_hi = ys_lo + max_p / pixels
    if weights is None:
        weights = np.ones(len(pts))
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(weights) != len(pts):
        raise ValueError(f"weights has {len(weights)} values for {len(pts)} points")
    img = np.zeros((pixels, pixels))
    if use_numba is None:
        use_numba = _nb is not None
    if use_numba:
        _raster_numba(pts, weights, xs_lo, xs_hi, ys_lo, ys_hi, float(spread), img)
        return img.T[::-1]
    for start in range(0, len(pts), chunk):
        part = pts[start : start + chunk]
        wx = _axis_weights(part[:, 0], xs_lo, xs_hi, spread)
        wy = _axis_weights(part[:, 1], ys_lo, ys_hi, spread) * weights[start : start + chunk, None]
        img += wx.T @ wy  # (birth pixel, persistence pixel)
    return img.T[::-1]


def diagram_image(
    diagram: np.ndarray, pixels: int = 50, spread: float = 0.15
) -> tuple[np.ndarray, float, float]:
    """Image of one (birth, death) diagram on its own range, plus its maxB and maxP.

    Parameters
    ----------
    diagram : ndarray, shape (n, 2)
        ``(birth, death)`` pairs (float32 in the reference; persistence is formed in the
        diagram's dtype, as there).
    pixels, spread
        See :func:`persistence_image`.

    Returns
    -------
    image : ndarray of float64, shape (P, P)
    max_birth, max_persistence : float
        0 for an empty diagram (whose image is all zeros).
    """
    dgm = np.asarray(diagram).reshape(-1, 2)
    if len(dgm) == 0:
        return np.zeros((pixels, pixels)), 0.0, 0.0
    landscape = np.column_stack([dgm[:, 0], dgm[:, 1] - dgm[:, 0]])
    max_b = max(landscape[:, 0].max(), 0)
    max_p = max(landscape[:, 1].max(), 0)
    min_v = min(landscape.min(), 0)
    # A periodic cloud repeats each pair once per lattice copy (5A_CSP_1: 161,786 H1
    # pairs, 526 distinct): rasterise each distinct pair once, weighted by its count.
    unique, counts = _distinct_rows(landscape)
    img = persistence_image(
        unique, pixels, spread, float(max_b), float(max_p), float(min_v), weights=counts
    )
    return img, float(max_b), float(max_p)


def _distinct_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of an (n, 2) array and how often each occurs (bitwise equality)."""
    pts = np.ascontiguousarray(points)
    if pts.dtype.itemsize not in (4, 8):
        pts = pts.astype(np.float64)
    key = pts.view(np.uint64 if pts.dtype.itemsize == 4 else np.dtype((np.void, 16))).ravel()
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    return pts[first], counts


def _image_from_diagrams(
    diagrams: dict[int, np.ndarray], pixels: int, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((len(IMAGE_DIMS), pixels, pixels), dtype=np.float32)
    scalars = np.zeros(2 * len(IMAGE_DIMS), dtype=np.float32)
    for k, d in enumerate(IMAGE_DIMS):
        img, max_b, max_p = diagram_image(diagrams[d], pixels, spread)
        image[k] = img
        scalars[2 * k : 2 * k + 2] = (max_b, max_p)
    return image, scalars


# --------------------------------------------------------------------------------------
# 4. one structure
# --------------------------------------------------------------------------------------
#: Fractions of the full cloud's atoms in the two small clouds of ``mode="fast"``.
FAST_FRACTIONS = (1.0 / 27.0, 1.0 / 8.0)
#: Multipliers of the fast mode's extrapolated H1 and H2 totals: the median ratio of exact
#: to uncalibrated fast totals over 24 crystals drawn (seed 1) from the pre-training
#: corpus, azaphenacenes, ROY and X23, disjoint from the 30 crystals the fast mode is
#: evaluated on (``benchmarks/persistence_speed.py --calibrate 24`` measures them).
FAST_TOTAL_CALIBRATION = (1.0115, 1.0191)
#: Version of the fast mode's output, part of the cache keys of fast images (1: before the
#: total calibration).
FAST_MODE_VERSION = 2


def image_version(mode: str) -> int | None:
    """Version of the images ``mode`` makes, for cache and result keys:
    :data:`FAST_MODE_VERSION` for ``"fast"``, None for ``"exact"`` (whose images do not
    change)."""
    return FAST_MODE_VERSION if mode == "fast" else None


def fast_persistence_image(
    structure: Any,
    pixels: int = 50,
    spread: float = 0.15,
    box: float = 100.0,
    supercell: str = "reference",
    alpha_precision: str = "delaunay",
    fractions: Sequence[float] = FAST_FRACTIONS,
    calibration: Sequence[float] | None = FAST_TOTAL_CALIBRATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate persistence images from two small clouds (``mode="fast"``).

    The full ``box`` cloud is built (cheap) and cut into nested corner sub-clouds: the
    points whose largest coordinate is at most ``t``, with ``t`` chosen so that they
    hold ``fractions`` of the atoms (default 1/27 and 1/8, i.e. the same construction
    with a box of about 1/3 and 1/2 of the edge). Their diagrams are computed exactly.
    The image *shape* and the four scalars are those of the larger sub-cloud; the
    *total intensity* of each image, which grows with the cloud, is extrapolated to
    the full cloud with a bulk + surface model ``total = a·N + b·L²`` (``N`` atoms,
    ``L`` the edge of the region, ``t`` minus its lower bound) fitted to the
    sub-clouds, then multiplied by :data:`FAST_TOTAL_CALIBRATION` (H1 ×1.0115,
    H2 ×1.0191): the extrapolation alone is biased low, and these factors are the median
    exact / fast ratios over 24 crystals (``benchmarks/persistence_speed.py --calibrate
    24 --unseen 24``, ``benchmarks/results/persistence_fast_calibration24.json``) that
    are not among the 30 below.

    Measured against ``mode="exact"`` (reference supercell, 100 Å;
    ``benchmarks/persistence_speed.py``, results in ``benchmarks/results/``):

    - the six fixture crystals: image cosine ≥ 0.9996, total intensity -2.1 %…+0.9 %;
    - those six plus 24 crystals drawn from the pre-training corpus, the azaphenacenes and
      ROY (``--unseen 24``; the fast mode was designed on them): cosine ≥ 0.999 for 25 of
      30, total within 3 % for 26 of 30 (19 without the calibration);
    - 40 further crystals used neither to design nor to calibrate it (``--fresh 40``):
      cosine ≥ 0.999 for 33 of 40, total within 3 % for 36 of 40;
    - at a median 6.5-7× less CPU time than the exact mode (~0.4 s per crystal), and
      ~100× less than gudhi's exact alpha complex + persistence (``--baseline``).

    All 23 azaphenacene CSP structures among them passed (cosine ≥ 0.9995, totals within
    2.4 %); the 14 failures are CSD and ROY crystals. Where it fails it can fail badly:
    roy_71 H2 total -85 % (cosine 0.88), PYRZIN01 cosine 0.86, KUPWOJ H2 total -65 %
    (cosine 0.91). These are crystals whose image range (the [SCL] scalars) or H2
    population is set by features of the whole 100 Å cloud, mostly at its faces, that the
    sub-clouds do not hold, so larger sub-clouds do not cure it: with 1/8 + 0.3 of the
    atoms (2.7× faster than exact) 35 of the 40 fresh crystals pass, with 1/64 + 1/27
    (16×) 11, with 1/125 + 1/64 (22×) 4 (``--frontier``). Sub-cloud extrapolations with a
    constant or edge term, or per pixel, were tried on 19 crystals and were not better.
    With ``supercell="cube"`` it is worse (measured on 19 crystals before the exact tie
    rule of :func:`_alpha_values`: cosine down to 0.0002, totals -6.6 %…+38 %). Use it
    for quick screening of large landscapes only; use the exact mode (~2-3 s per
    crystal, parallel with ``n_jobs``) for results and for the published checkpoint.

    Parameters
    ----------
    structure, pixels, spread, box, supercell, alpha_precision
        As in :func:`compute_persistence_image`.
    fractions : sequence of float
        Fractions of the full cloud's atoms in the sub-clouds (at least two).
    calibration : (float, float) or None
        Multipliers of the extrapolated H1 and H2 totals (default
        :data:`FAST_TOTAL_CALIBRATION`); None leaves the extrapolation as it is.

    Returns
    -------
    image : ndarray of float32, shape (2, P, P)
    scalars : ndarray of float32, shape (4,)
    """
    fr = sorted(float(f) for f in fractions)
    if len(fr) < 2 or not 0 < fr[0] < fr[-1] <= 1:
        raise ValueError(
            f"fractions must be at least two increasing values in (0, 1], got {fractions!r}"
        )
    points = supercell_points(structure, box=box, supercell=supercell)
    n_full = len(points)
    lower = REFERENCE_MIN_COORD if supercell == "reference" else 0.0
    top = points.max(axis=1)
    top_sorted = np.sort(top)
    counts, sizes, totals = [], [], []
    image = scalars = None
    for i, f in enumerate(fr):
        k = min(n_full, max(int(round(f * n_full)), 1))
        if n_full == 0:
            sub, cut = points, float(box)
        else:
            # cut half-way to the next point so that L is the region's edge, as for the box
            nxt = top_sorted[k] if k < n_full else float(box)
            cut = 0.5 * (top_sorted[k - 1] + nxt)
            sub = points[top <= top_sorted[k - 1]]
        img, sc = _image_from_diagrams(
            alpha_diagrams(sub, IMAGE_DIMS, precision=alpha_precision), int(pixels), float(spread)
        )
        counts.append(len(sub))
        sizes.append(cut - lower)
        totals.append(img.reshape(len(IMAGE_DIMS), -1).sum(axis=1, dtype=np.float64))
        if i == len(fr) - 1:
            image, scalars = img, sc
    if counts[-1] == n_full:  # nothing to extrapolate (tiny cloud)
        return image, scalars
    design = np.array([[n, s * s] for n, s in zip(counts, sizes, strict=True)], dtype=float)
    full = np.array([n_full, (float(box) - lower) ** 2])
    totals = np.array(totals)  # (n_sub, n_dims)
    for k in range(len(IMAGE_DIMS)):
        current = totals[-1, k]
        if current <= 0:
            continue
        coef = np.linalg.lstsq(design, totals[:, k], rcond=None)[0]
        target = float(coef @ full)
        if not np.isfinite(target) or target <= 0:
            target = current * n_full / counts[-1]  # plain volume scaling
        if calibration is not None:
            target *= float(calibration[k])
        image[k] *= np.float32(target / current)
    return image, scalars


def check_image_params(pixels: int, spread: float, box: float, supercell: str, mode: str) -> None:
    """Validate persistence-image settings (the arguments of :func:`compute_persistence_image`).

    Parameters
    ----------
    pixels : int
        Image side (positive integer).
    spread : float
        Gaussian width (> 0).
    box : float
        Image extent (> 0).
    supercell : {"reference", "cube"}
    mode : {"exact", "fast"}

    Raises
    ------
    ValueError
        Naming the first bad argument: ``"<argument> must be ..."``.
    """
    if int(pixels) != pixels or pixels < 1:
        raise ValueError(f"pixels must be a positive integer, got {pixels!r}")
    if not spread > 0:
        raise ValueError(f"spread must be > 0, got {spread!r}")
    if not box > 0:
        raise ValueError(f"box must be > 0, got {box!r}")
    if supercell not in ("reference", "cube"):
        raise ValueError(f"supercell must be 'reference' or 'cube', got {supercell!r}")
    if mode not in ("exact", "fast"):
        raise ValueError(f"mode must be 'exact' or 'fast', got {mode!r}")


def compute_persistence_image(
    structure: Any,
    pixels: int = 50,
    spread: float = 0.15,
    box: float = 100.0,
    supercell: str = "reference",
    mode: str = "exact",
    alpha_precision: str = "delaunay",
) -> tuple[np.ndarray, np.ndarray]:
    """Persistence images (H1, H2) and the four [SCL] scalars of one crystal.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The crystal.
    pixels : int
        Image side P (the reference uses 50).
    spread : float
        Standard deviation (Å) of the Gaussian put on each (birth, persistence) point.
    box : float
        Edge (Å) of the point-cloud box (reference: 100).
    supercell : {"reference", "cube"}
        How the box is filled; see :func:`supercell_points`. ``"reference"`` reproduces
        the reference images (and its copy-loop artefact); ``"cube"`` is the physically
        meaningful block and gives different numbers.
    mode : {"exact", "fast"}
        ``"exact"``: the diagrams of the ``box`` Å cloud. ``"fast"``: see
        :func:`fast_persistence_image` — an approximation whose measured error is stated
        there.
    alpha_precision : {"delaunay", "exact", "jitter"}
        See :func:`alpha_diagrams`; ``"delaunay"`` (default) matches the reference images
        to ~1e-12 and is the fastest.

    Returns
    -------
    image : ndarray of float32, shape (2, P, P)
        H1 and H2 images, each ``img.T[::-1]`` (rows: persistence from high to low,
        columns: birth from low to high).
    scalars : ndarray of float32, shape (4,)
        ``max_birth_1d, max_persistence_1d, max_birth_2d, max_persistence_2d`` (Å).
    """
    check_image_params(pixels, spread, box, supercell, mode)
    if mode == "fast":
        return fast_persistence_image(
            structure,
            pixels=pixels,
            spread=spread,
            box=box,
            supercell=supercell,
            alpha_precision=alpha_precision,
        )
    t0 = time.perf_counter()
    points = supercell_points(structure, box=box, supercell=supercell)
    diagrams = alpha_diagrams(points, IMAGE_DIMS, precision=alpha_precision)
    t1 = time.perf_counter()
    image, scalars = _image_from_diagrams(diagrams, int(pixels), float(spread))
    logger.debug(
        "persistence image: %d points, diagrams %.2f s, images %.2f s",
        len(points),
        t1 - t0,
        time.perf_counter() - t1,
    )
    return image, scalars


def _versioned_image(structure: Any, fingerprint: str, fast_version: int | None, **kwargs):
    """:func:`compute_persistence_image` as memoised by joblib: ``structure`` itself is
    not hashed but its content ``fingerprint`` is, and the fast mode's version, so
    that a cache of fast images is not reused after the fast mode changes."""
    return compute_persistence_image(structure, **kwargs)


# --------------------------------------------------------------------------------------
# 5. matminer / scikit-learn featurizer
# --------------------------------------------------------------------------------------
class PersistenceImageFeaturizer(BaseFeaturizer, TransformerMixin):
    """Persistence images of a crystal's atoms (MCRT's global modality) as features.

    ``featurize(structure)`` returns ``2·P·P + 4`` floats: the H1 image (P×P, row-major,
    in the reference orientation ``img.T[::-1]``: rows are persistence from high to low,
    columns birth from low to high), the H2 image, then ``max_birth_1d,
    max_persistence_1d, max_birth_2d, max_persistence_2d`` (Å). See the module docstring
    and :func:`compute_persistence_image` for the recipe.

    Parameters
    ----------
    pixels : int
        Image side P (reference: 50).
    spread : float
        Standard deviation (Å) of the Gaussian on each diagram point (reference: 0.15).
    box : float
        Edge (Å) of the point-cloud box (reference: 100).
    supercell : {"reference", "cube"}
        ``"reference"`` (default) reproduces the reference images, including the
        artefact of its copy loop, and is what the published MCRT checkpoint saw;
        ``"cube"`` is physically meaningful but gives different numbers.
    mode : {"exact", "fast"}
        ``"fast"``: two small clouds and an intensity extrapolation; see
        :func:`fast_persistence_image` for its measured error.
    n_jobs : int or None
        Processes used by matminer's ``featurize_many`` / ``featurize_dataframe`` (and
        ``transform``); 1 (default) runs in this process; None uses all cores. Each job
        needs up to ~1 GB for a 100 Å box (0.9 GB peak measured for 77k points).
    memory : str, joblib.Memory or None
        Cache of per-structure results (a ``joblib.Memory`` or a folder); None: no cache.
        Entries are keyed on the crystal's content
        (:func:`~mcrt_sklearn.featurizers.batch.structure_fingerprint`) and the
        settings, so a CIF and the same crystal built in memory share one.

    Examples
    --------
    >>> feat = PersistenceImageFeaturizer()                       # doctest: +SKIP
    >>> x = feat.featurize("BENZEN.cif")                          # doctest: +SKIP
    >>> len(x) == 2 * 50 * 50 + 4                                 # doctest: +SKIP
    True
    """

    def __init__(
        self,
        pixels: int = 50,
        spread: float = 0.15,
        box: float = 100.0,
        supercell: str = "reference",
        mode: str = "exact",
        n_jobs: int | None = 1,
        memory: Any = None,
    ):
        self.pixels = pixels
        self.spread = spread
        self.box = box
        self.supercell = supercell
        self.mode = mode
        self.n_jobs = n_jobs
        self.memory = memory

    # matminer keeps the job count in ``_n_jobs`` behind a read-only property; expose it
    # as a plain parameter so that get_params / set_params / clone work.
    @property
    def n_jobs(self) -> int | None:  # type: ignore[override]
        """Number of processes for batch featurisation (None: all cores)."""
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int | None) -> None:
        self._n_jobs = value

    def set_n_jobs(self, n_jobs: int | None) -> None:
        """Set the number of processes (matminer API)."""
        self._n_jobs = n_jobs

    def fit(self, X: Any = None, y: Any = None, **fit_params: Any) -> PersistenceImageFeaturizer:
        """No-op (the featurizer has nothing to learn); validates the parameters.

        Returns
        -------
        self
        """
        check_image_params(self.pixels, self.spread, self.box, self.supercell, self.mode)
        return self

    def _compute(self, structure: Any) -> tuple[np.ndarray, np.ndarray]:
        kwargs = dict(
            pixels=int(self.pixels),
            spread=float(self.spread),
            box=float(self.box),
            supercell=self.supercell,
            mode=self.mode,
        )
        if self.memory is None:
            return compute_persistence_image(structure, **kwargs)
        import joblib

        memory = (
            self.memory
            if isinstance(self.memory, joblib.Memory)
            else joblib.Memory(str(self.memory), verbose=0)
        )
        # keyed on the content, not on the pickled object: a pymatgen Structure's
        # pickle changes as its cached properties fill in, so the same object missed
        # the cache on its second call
        from mcrt_sklearn.featurizers.batch import structure_fingerprint

        cached = memory.cache(_versioned_image, ignore=["structure"])
        return cached(structure, structure_fingerprint(structure), image_version(self.mode),
                      **kwargs)

    def featurize(self, structure: Any) -> list[float]:
        """Features of one crystal.

        Parameters
        ----------
        structure : pymatgen.core.Structure or path
            A structure, or a CIF / POSCAR / extended-XYZ file.

        Returns
        -------
        list of float
            ``2·P·P + 4`` values (see the class docstring).

        Raises
        ------
        mcrt_sklearn.errors.StructureError
            Unreadable or unusable structure (typed subclass naming it and the reason).
        """
        from mcrt_sklearn.structures import read_structure

        check_image_params(self.pixels, self.spread, self.box, self.supercell, self.mode)
        _, struct = read_structure(structure)
        image, scalars = self._compute(struct)
        return np.concatenate([image.reshape(-1), scalars]).astype(float).tolist()

    def featurize_many(self, entries: Any, ignore_errors: bool = False,
                       return_errors: bool = False, pbar: bool = True) -> list:
        """matminer batch API (also behind ``featurize_dataframe``).

        The settings are checked once, before any structure: a bad one raises
        ``ValueError`` even with ``ignore_errors`` (which would otherwise turn it
        into a NaN row per structure).
        """
        check_image_params(self.pixels, self.spread, self.box, self.supercell, self.mode)
        return super().featurize_many(entries, ignore_errors=ignore_errors,
                                      return_errors=return_errors, pbar=pbar)

    def transform(self, X: Any) -> np.ndarray:
        """Features of several crystals as an array of shape (n, 2·P·P + 4).

        Unlike matminer's default (NaN rows), a bad structure raises its typed error.
        """
        if isinstance(X, (str, os.PathLike)) or hasattr(X, "lattice"):
            X = [X]
        rows = self.featurize_many(list(X), ignore_errors=False, pbar=False)
        return np.asarray(rows, dtype=float).reshape(len(rows), -1)

    def feature_labels(self) -> list[str]:
        """Names: ``pi_h1_r{row}_c{col}``, ``pi_h2_r{row}_c{col}``, then the scalars."""
        p = int(self.pixels)
        labels = [f"pi_h{d}_r{r}_c{c}" for d in IMAGE_DIMS for r in range(p) for c in range(p)]
        return labels + list(SCALAR_NAMES)

    def citations(self) -> list[str]:
        """BibTeX of MCRT and of persistence images."""
        return [
            "@article{feng2025mcrt,\n"
            "  title={A universal foundation model for transfer learning in molecular"
            " crystals},\n"
            "  author={Feng, Minggao and Zhao, Chengxi and Day, Graeme M. and"
            " Evangelopoulos, Xenophon and Cooper, Andrew I.},\n"
            "  journal={Chemical Science},\n  volume={16},\n  pages={12844--12859},\n"
            "  year={2025},\n  doi={10.1039/D5SC00677E}\n}",
            "@article{adams2017persistence,\n"
            "  title={Persistence images: A stable vector representation of persistent"
            " homology},\n"
            "  author={Adams, Henry and Emerson, Tegan and Kirby, Michael and Neville, Rachel"
            " and Peterson, Chris and Shipman, Patrick and Chepushtanova, Sofya and Hanson,"
            " Eric and Motta, Francis and Ziegelmeier, Lori},\n"
            "  journal={Journal of Machine Learning Research},\n"
            "  volume={18},\n  number={8},\n  pages={1--35},\n  year={2017}\n}",
        ]

    def implementors(self) -> list[str]:
        """Authors of this implementation."""
        return ["mcrt_sklearn developers"]
