"""Speed and accuracy of the persistence images (DESIGN.md §5).

For each fixture crystal (``../shared/data/mcrt_examples``) this times

- ``exact``: :func:`compute_persistence_image` with its defaults (reference supercell,
  100 Å, ``alpha_precision="delaunay"``, our persistence algorithm), and checks it
  against the reference image;
- ``fast``: ``mode="fast"``, with its image cosine, total-intensity and scalar errors
  against ``exact``;
- optionally (``--baseline``) the plain gudhi route: ``AlphaComplex(precision="exact")``
  and ``SimplexTree.persistence()`` (~30-60 s per crystal), and
  ``alpha_precision="exact"`` with our persistence algorithm.

Times are CPU seconds of this process (``time.process_time``), which is robust to other
jobs sharing the machine; wall-clock seconds are printed too. Run with ``nice``::

    nice python benchmarks/persistence_speed.py [--ids 5A_CSP_1 BENZEN] [--baseline]
        [--unseen 24] [--fresh 40] [--frontier] [--supercell reference|cube]
        [--json out.json]

``--unseen N`` adds N crystals the fast mode was not designed on (drawn from the
pre-training corpus, the azaphenacenes, ROY and X23), which is where its limits show.

``--fresh M`` adds M crystals drawn (seed 2) from the same folders but never used to
design or calibrate the fast mode: neither among the 24 of ``--unseen 24`` nor among
the 24 calibration crystals below.

``--frontier`` instead runs the fast mode's two-sub-cloud extrapolation with several
pairs of sub-cloud fractions (:data:`FRONTIER`, from 1/125 + 1/64 of the atoms to 1/8 +
0.3) on the selected crystals and prints, for each pair, the CPU time against the exact
mode and the image errors: the accuracy / speed trade-off of this approach. Totals are
given uncalibrated and after the one uniform factor per image that best fits the same
crystals (their median exact / fast ratio: an optimistic, in-sample bound).

``--calibrate M --unseen N`` instead measures the fast mode's total-intensity
calibration (``persistence.FAST_TOTAL_CALIBRATION``): it draws M other crystals (seed 1)
from the same folders, leaving out the fixture and the N ``--unseen`` ones, and prints
the median ratio of exact to uncalibrated fast totals for H1 and H2. The shipped factors
come from ``--calibrate 24 --unseen 24``, so the 30 crystals of ``--unseen 24`` are never
used to calibrate.

The first call compiles the numba kernels (~10-20 s, cached on disk afterwards); a
warm-up on a small box is run before timing.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from mcrt_sklearn._paths import shared_data_dir
from mcrt_sklearn.featurizers.persistence import (
    FAST_TOTAL_CALIBRATION,
    compute_persistence_image,
    diagram_image,
    fast_persistence_image,
    supercell_points,
)

DATA = shared_data_dir()
EXAMPLES = DATA / "mcrt_examples"
#: Folders the ``--unseen`` crystals are drawn from (not the fixture).
UNSEEN_SOURCES = ("pretrain_corpus", "azaphenacenes", "roy", "x23")
IDS = ["5A_CSP_1", "5A_CSP_2", "5A_CSP_3", "5A_CSP_4", "5A_CSP_5", "BENZEN"]


def _timed(fn, *args, **kwargs):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.process_time() - c0, time.perf_counter() - w0


def _plain_gudhi(structure, supercell):
    """The naive route: gudhi exact alpha complex + gudhi persistence (Z/11)."""
    import gudhi

    pts = supercell_points(structure, supercell=supercell)
    st = gudhi.AlphaComplex(points=pts, precision="exact").create_simplex_tree()
    st.compute_persistence()
    image = np.zeros((2, 50, 50), np.float32)
    scalars = np.zeros(4, np.float32)
    for k, d in enumerate((1, 2)):
        iv = np.sqrt(np.asarray(st.persistence_intervals_in_dimension(d)).astype(np.float32))
        img, mb, mp = diagram_image(iv)
        image[k], scalars[2 * k : 2 * k + 2] = img, (mb, mp)
    return image, scalars


def _rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _cosine(a, b):
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


def _load(path: Path):
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_file(str(path), occupancy_tolerance=100)


def _draw(pool: list[Path], exclude: set[str], m: int, seed: int) -> list[Path]:
    rest = [p for p in pool if p.stem not in exclude]
    pick = np.random.default_rng(seed).choice(len(rest), size=min(m, len(rest)), replace=False)
    return [rest[i] for i in sorted(pick)]


def _design_crystals(pool: list[Path]) -> set[str]:
    """Names of the crystals the fast mode was designed and calibrated on: the 24 of
    ``--unseen 24`` (seed 0) and the 24 calibration crystals (seed 1)."""
    unseen = np.random.default_rng(0).choice(len(pool), size=min(24, len(pool)), replace=False)
    names = {pool[i].stem for i in unseen} | set(IDS)
    return names | {p.stem for p in _draw(pool, names, 24, 1)}


def fresh_crystals(pool: list[Path], m: int) -> list[Path]:
    """``m`` crystals (seed 2) of ``pool`` outside :func:`_design_crystals`."""
    return _draw(pool, _design_crystals(pool), m, 2)


def calibrate(pool: list[Path], evaluated: set[str], m: int, supercell: str,
              json_path: Path | None) -> list[dict]:
    """Median exact / uncalibrated-fast total ratio (H1, H2) over ``m`` crystals of
    ``pool`` (seed 1) whose names are not in ``evaluated``."""
    rows = []
    for path in _draw(pool, evaluated, m, 1):
        s = _load(path)
        img, _ = compute_persistence_image(s, supercell=supercell)
        fimg, _ = fast_persistence_image(s, supercell=supercell, calibration=None)
        row = {"id": path.stem, "atoms": len(s),
               "exact_total": [float(img[k].sum(dtype=float)) for k in range(2)],
               "fast_total": [float(fimg[k].sum(dtype=float)) for k in range(2)]}
        rows.append(row)
        print(f"{row['id']:18s} uncalibrated fast total "
              + ", ".join(f"{f / e - 1:+.1%}" for f, e in zip(row["fast_total"],
                                                             row["exact_total"], strict=True)),
              flush=True)
    ratios = np.array([[r["exact_total"][k] / r["fast_total"][k] for k in range(2)]
                       for r in rows])
    factors = np.median(ratios, axis=0)
    print(f"calibration over {len(rows)} crystals: H1 x{factors[0]:.4f}, H2 x{factors[1]:.4f} "
          f"(shipped: {FAST_TOTAL_CALIBRATION})")
    if json_path:
        json_path.write_text(json.dumps({"factors": factors.tolist(), "rows": rows}, indent=1))
    return rows


#: Sub-cloud fraction pairs of ``--frontier`` (the shipped fast mode is 1/27 + 1/8).
FRONTIER = ((1 / 125, 1 / 64), (1 / 64, 1 / 27), (1 / 27, 1 / 8), (1 / 8, 0.3))


def frontier(paths: dict[str, Path], supercell: str, json_path: Path | None) -> list[dict]:
    """Accuracy and CPU time of the sub-cloud extrapolation for each pair in FRONTIER."""
    rows = []
    for sid, path in paths.items():
        s = _load(path)
        (img, _), exact_cpu, _ = _timed(compute_persistence_image, s, supercell=supercell)
        row = {"id": sid, "atoms": len(s), "exact_cpu_s": exact_cpu, "fractions": []}
        for fr in FRONTIER:
            (fimg, _), cpu, _ = _timed(fast_persistence_image, s, supercell=supercell,
                                        fractions=fr, calibration=None)
            row["fractions"].append({
                "fractions": list(fr), "cpu_s": cpu,
                "cosine": [_cosine(fimg[k], img[k]) for k in range(2)],
                "total_ratio": [float(fimg[k].sum(dtype=float) / img[k].sum(dtype=float))
                                for k in range(2)],
            })
        rows.append(row)
        print(f"{sid:18s} exact {exact_cpu:5.2f} s  " + "  ".join(
            f"x{exact_cpu / f['cpu_s']:5.1f} cos {min(f['cosine']):.4f}" for f in row["fractions"]
        ), flush=True)
    print(f"sub-cloud extrapolation over {len(rows)} crystals "
          "(totals: uncalibrated | after the in-sample median factor):")
    for j, fr in enumerate(FRONTIER):
        res = [r["fractions"][j] for r in rows]
        speed = np.median([r["exact_cpu_s"] / f["cpu_s"] for r, f in zip(rows, res, strict=True)])
        cos = np.array([min(f["cosine"]) for f in res])
        ratio = np.array([f["total_ratio"] for f in res])
        raw = np.abs(ratio - 1).max(axis=1)
        fitted = np.abs(ratio / np.median(ratio, axis=0) - 1).max(axis=1)
        print(f"  {fr[0]:.4f} + {fr[1]:.4f} of the atoms: median x{speed:5.1f} faster than "
              f"exact; cosine >= 0.999 for {int((cos >= 0.999).sum()):2d}/{len(rows)} "
              f"(worst {cos.min():.3f}); total within 3 % for {int((raw <= 0.03).sum()):2d} | "
              f"{int((fitted <= 0.03).sum()):2d}/{len(rows)}; all three: "
              f"{int(((cos >= 0.999) & (fitted <= 0.03)).sum())}/{len(rows)}")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", nargs="*", default=IDS)
    parser.add_argument("--supercell", default="reference", choices=["reference", "cube"])
    parser.add_argument("--baseline", action="store_true", help="also time the slow routes")
    parser.add_argument("--unseen", type=int, default=0, metavar="N",
                        help="also N crystals drawn at random (seed 0) from "
                             + ", ".join(UNSEEN_SOURCES))
    parser.add_argument("--fresh", type=int, default=0, metavar="M",
                        help="also M crystals (seed 2) used neither by --unseen 24 nor by "
                             "the calibration")
    parser.add_argument("--frontier", action="store_true",
                        help="accuracy / speed of the sub-cloud extrapolation per fraction pair")
    parser.add_argument("--calibrate", type=int, default=0, metavar="M",
                        help="measure the fast-mode total calibration on M other crystals")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    paths = {sid: EXAMPLES / "cifs" / f"{sid}.cif" for sid in args.ids}
    pool = sorted(p for src in UNSEEN_SOURCES for p in (DATA / src / "cifs").glob("*.cif"))
    if args.unseen:
        pick = np.random.default_rng(0).choice(len(pool), size=min(args.unseen, len(pool)),
                                               replace=False)
        paths.update({pool[i].stem: pool[i] for i in sorted(pick)})
    if args.fresh:
        paths.update({p.stem: p for p in fresh_crystals(pool, args.fresh)})
    if args.calibrate:
        return calibrate(pool, set(paths), args.calibrate, args.supercell, args.json)
    if args.frontier:
        compute_persistence_image(_load(next(iter(paths.values()))), box=40.0)  # compile numba
        return frontier(paths, args.supercell, args.json)

    def load(sid):
        return _load(paths[sid])

    compute_persistence_image(load(next(iter(paths))), box=40.0)  # compile / load numba
    rows = []
    for sid in paths:
        s = load(sid)
        row = {
            "id": sid,
            "atoms": len(s),
            "points": len(supercell_points(s, supercell=args.supercell)),
        }
        (img, sc), row["exact_cpu_s"], row["exact_wall_s"] = _timed(
            compute_persistence_image, s, supercell=args.supercell
        )
        if args.supercell == "reference" and (EXAMPLES / "imgs" / f"{sid}.npy").exists():
            ref = np.load(EXAMPLES / "imgs" / f"{sid}.npy", allow_pickle=True)
            row["exact_vs_reference_pixel_err"] = max(
                _rel_err(img[k], np.asarray(ref[0][k], float)) for k in range(2)
            )
            row["exact_vs_reference_scalar_err"] = _rel_err(sc, np.array(ref[1:], np.float32))
        (fimg, fsc), row["fast_cpu_s"], row["fast_wall_s"] = _timed(
            compute_persistence_image, s, supercell=args.supercell, mode="fast"
        )
        row["fast_speedup"] = row["exact_cpu_s"] / row["fast_cpu_s"]
        row["fast_cosine"] = [_cosine(fimg[k], img[k]) for k in range(2)]
        row["fast_total_err"] = [
            float(fimg[k].sum(dtype=float) / img[k].sum(dtype=float) - 1) for k in range(2)
        ]
        row["fast_scalar_rel_err"] = (np.abs(fsc - sc) / np.maximum(sc, 1e-30)).tolist()
        if args.baseline:
            (bimg, bsc), row["gudhi_plain_cpu_s"], row["gudhi_plain_wall_s"] = _timed(
                _plain_gudhi, s, args.supercell
            )
            row["gudhi_plain_vs_exact_pixel_err"] = max(_rel_err(img[k], bimg[k]) for k in range(2))
            row["fast_speedup_vs_gudhi_plain"] = row["gudhi_plain_cpu_s"] / row["fast_cpu_s"]
            (_, _), row["cgal_exact_cpu_s"], row["cgal_exact_wall_s"] = _timed(
                compute_persistence_image, s, supercell=args.supercell, alpha_precision="exact"
            )
        rows.append(row)
        print(
            f"{sid:9s} {row['points']:6d} pts  exact {row['exact_cpu_s']:6.2f} s cpu "
            f"({row['exact_wall_s']:6.2f} wall)  fast {row['fast_cpu_s']:5.2f} s "
            f"(x{row['fast_speedup']:4.1f})  fast cos {min(row['fast_cosine']):.5f}  "
            f"fast total {', '.join(f'{e:+.1%}' for e in row['fast_total_err'])}"
            + (
                f"  ref err {row['exact_vs_reference_pixel_err']:.1e}"
                if "exact_vs_reference_pixel_err" in row
                else ""
            )
            + (
                f"  gudhi plain {row['gudhi_plain_cpu_s']:6.1f} s (fast "
                f"x{row['fast_speedup_vs_gudhi_plain']:5.1f} faster), cgal exact "
                f"{row['cgal_exact_cpu_s']:6.1f} s"
                if args.baseline
                else ""
            ),
            flush=True,
        )
    cos = np.array([min(r["fast_cosine"]) for r in rows])
    tot = np.array([max(abs(e) for e in r["fast_total_err"]) for r in rows])
    print(
        f"fast mode over {len(rows)} crystals: speed-up median "
        f"x{np.median([r['fast_speedup'] for r in rows]):.1f}; image cosine >= 0.999 for "
        f"{int((cos >= 0.999).sum())}, total intensity within 3 % for {int((tot <= 0.03).sum())}; "
        f"worst cosine {cos.min():.4f} ({rows[int(cos.argmin())]['id']}), worst total "
        f"{tot.max():.1%} ({rows[int(tot.argmax())]['id']})"
    )
    if args.baseline:
        print("median CPU time: exact "
              f"{np.median([r['exact_cpu_s'] for r in rows]):.2f} s, plain gudhi "
              f"{np.median([r['gudhi_plain_cpu_s'] for r in rows]):.1f} s, fast "
              f"{np.median([r['fast_cpu_s'] for r in rows]):.2f} s; fast is "
              f"x{np.median([r['fast_speedup_vs_gudhi_plain'] for r in rows]):.0f} faster than "
              "plain gudhi (median)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
