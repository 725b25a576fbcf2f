"""Exact alpha values of a Delaunay triangulation, and the decision of near-ties.

The filtration values are computed in float64 (numba kernels); the attachment tests
float64 cannot decide (co-spherical periodic copies) are redone in exact rational
arithmetic (:func:`_alpha_values`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from mcrt_sklearn.featurizers.persistence._numba import _njit

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
