"""Screen a CSP landscape: fit, predict the candidates with conformal intervals, rank.

:func:`screen` is the Python face of ``mcrt-sklearn screen``. It reads the training and
candidate folders (bad candidate files are skipped and reported, never fatal), featurises
every structure once, fits a :class:`~mcrt_sklearn.screening.ConformalRegressor` (MAPIE
CV+ by default) around the named model, and writes into ``out``:

- ``ranking.csv``: ``id, prediction, lower, upper, std, rank, p_top_k`` (+ ``density``,
  ``known``, and ``observed`` when the candidates' ``properties.csv`` has the target);
  ``std`` is the normal std implied by the interval, used for ``p_top_k``, the
  probability of being among the ``top_k`` best under the predictive distribution;
- ``landscape.png``: target against density, intervals as bars, training structures
  apart, the predicted top-k highlighted, the known forms starred and labelled;
- ``summary.md``: the settings, the top of the ranking, the known forms, the skipped
  files and — when the candidates carry the target — the empirical coverage, the mean
  width and a calibration curve (``calibration.png``; ``calibration.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mcrt_sklearn.screening.intervals import (
    DEFAULT_LEVELS,
    ConformalRegressor,
    calibration_curve,
    coverage,
    interval_std,
    mean_width,
    min_calibration_size,
    plot_calibration_curve,
)
from mcrt_sklearn.screening.landscape import plot_landscape
from mcrt_sklearn.screening.loading import (
    LandscapeData,
    featurize_reporting,
    load_landscape,
    skipped_lines,
)
from mcrt_sklearn.screening.models import build_model
from mcrt_sklearn.screening.rank import rank_table

__all__ = ["screen", "ScreenResult", "default_lower_is_better"]


def default_lower_is_better(target: str) -> bool:
    """Energies are ranked lowest first, everything else highest first."""
    return "energ" in target.lower()


@dataclass
class _Prepared:
    train: LandscapeData
    cand: LandscapeData
    F_train: object
    y_train: np.ndarray
    F_cand: object
    estimator: object
    lower_is_better: bool
    skipped: dict = field(default_factory=dict)


def _species(*datasets: LandscapeData) -> list[str]:
    elements = set()
    for data in datasets:
        for s in data.structures:
            elements.update(el.symbol for el in s.composition.elements)
    return sorted(elements)


def _prepare(train_dir, target, candidates_dir, model, model_params, featurizer_params,
             cache_dir, n_jobs, random_state, lower_is_better, keep_unlabelled=False):
    train = load_landscape(train_dir)
    if target not in train.table:
        raise ValueError(f"--target {target!r} is not a column of {train.folder}/properties.csv "
                         f"(columns: {list(train.table.columns)})")
    cand = load_landscape(candidates_dir)
    y_all = train.values(target)
    labelled = np.isfinite(y_all)
    skipped_train = list(train.skipped)
    unlabelled = train.subset(np.flatnonzero(~labelled))
    if not keep_unlabelled:
        skipped_train += [(sid, f"no finite {target}") for sid in unlabelled.ids]
    train = train.subset(np.flatnonzero(labelled))
    train.skipped = skipped_train
    if keep_unlabelled and unlabelled.ids:
        extra = [i for i, sid in enumerate(unlabelled.ids) if sid not in set(cand.ids)]
        more = unlabelled.subset(extra)
        cand = LandscapeData(cand.folder, cand.ids + more.ids, cand.structures + more.structures,
                             pd.concat([cand.table, more.table], ignore_index=True),
                             list(cand.skipped))
    species = _species(train, cand) if model.endswith("SOAP") else None
    feat, est = build_model(model, params=model_params, featurizer_params=featurizer_params,
                            species=species, cache_dir=cache_dir, n_jobs=n_jobs,
                            random_state=random_state)
    F_train, train = featurize_reporting(feat, train)
    F_cand, cand = featurize_reporting(feat, cand)
    if len(train.ids) < 3:
        raise ValueError(f"only {len(train.ids)} training structures left after skipping bad "
                         "ones; see the skipped list")
    y = train.values(target)
    lib = default_lower_is_better(target) if lower_is_better is None else bool(lower_is_better)
    return _Prepared(train, cand, F_train, y, F_cand, est, lib,
                     {"training": train.skipped, "candidates": cand.skipped})


@dataclass
class ScreenResult:
    """What :func:`screen` found and wrote."""

    ranking: pd.DataFrame
    skipped: dict
    interval: float
    coverage: float | None = None
    mean_width: float | None = None
    calibration: dict | None = None
    files: dict = field(default_factory=dict)
    summary: str = ""


def _levels_for(n: int, interval: float, levels: Sequence[float]) -> list[float]:
    """The calibration-curve levels MAPIE can give with n calibration scores."""
    ok = sorted({float(interval), *(float(c) for c in levels)})
    return [c for c in ok if min_calibration_size(c) <= n]


def screen(
    train_dir: str | os.PathLike,
    target: str,
    candidates_dir: str | os.PathLike,
    model: str = "GP-SOAP",
    interval: float = 0.9,
    known: Sequence[str] = (),
    top_k: int = 10,
    out: str | os.PathLike | None = None,
    lower_is_better: bool | None = None,
    method: str = "cross",
    cv: int = 5,
    model_params: dict | None = None,
    featurizer_params: dict | None = None,
    cache_dir=None,
    n_jobs: int = 1,
    random_state: int | None = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    n_samples: int = 4000,
    group_column: str | None = None,
) -> ScreenResult:
    """Fit on ``train_dir``, rank ``candidates_dir`` with conformal intervals.

    Parameters
    ----------
    train_dir, candidates_dir : folders in the shared layout (``cifs/`` + ``properties.csv``;
        the candidates need no target column)
    target : column of the training ``properties.csv``
    model : a name of :data:`~mcrt_sklearn.screening.SCREEN_MODELS`
    interval : nominal coverage of the intervals written to ``ranking.csv``
    known : ids of known / experimental forms (candidates or training structures),
        marked on the landscape and listed in the summary
    top_k : size of the top set (highlighted; ``p_top_k``)
    out : output folder (None: write nothing)
    lower_is_better : None: True for targets whose name holds "energ"
    method, cv : ``"cross"`` (CV+, ``cv`` folds) or ``"split"`` conformal
    model_params, featurizer_params : see :func:`~mcrt_sklearn.screening.build_model`
    cache_dir, n_jobs : featurisation cache and workers
    random_state : seeds the folds, the models and the Monte Carlo of ``p_top_k``
    levels : nominal levels of the calibration curve (when the candidates have targets)
    n_samples : Monte Carlo draws for ``p_top_k``
    group_column : column of the training ``properties.csv`` naming each structure's
        molecule (e.g. ``"group"``). The conformal folds then leave whole groups out, so
        the intervals are calibrated for candidates of molecules not in the training
        set; without it they are calibrated for new packings of the training molecules.
    """
    prep = _prepare(train_dir, target, candidates_dir, model, model_params, featurizer_params,
                    cache_dir, n_jobs, random_state, lower_is_better)
    n_cal = len(prep.y_train) if method == "cross" else int(0.3 * len(prep.y_train))
    fit_levels = _levels_for(n_cal, interval, levels)
    if float(interval) not in fit_levels:
        raise ValueError(f"{len(prep.y_train)} training structures are too few for "
                         f"{interval:.0%} conformal intervals (need at least "
                         f"{min_calibration_size(interval)} calibration scores)")
    conf = ConformalRegressor(prep.estimator, method=method, confidence_level=fit_levels, cv=cv,
                              random_state=random_state)
    groups = None
    if group_column is not None:
        if group_column not in prep.train.table:
            raise ValueError(f"group_column {group_column!r} is not a column of the training "
                             "properties.csv")
        groups = prep.train.table[group_column].astype(str).to_numpy()
    conf.fit(prep.F_train, prep.y_train, groups=groups)
    cand = prep.cand
    if cand.ids:
        pred, lower_all, upper_all = conf.predict_interval(prep.F_cand)
        lower_all = lower_all.reshape(len(pred), -1)
        upper_all = upper_all.reshape(len(pred), -1)
    else:
        pred = np.zeros(0)
        lower_all = upper_all = np.zeros((0, len(fit_levels)))
    j = fit_levels.index(float(interval))
    lower, upper = lower_all[:, j], upper_all[:, j]
    std = interval_std(lower, upper, interval)
    ranking = rank_table(cand.ids, pred, lower, upper, std=std, top_k=top_k,
                         lower_is_better=prep.lower_is_better, n_samples=n_samples,
                         random_state=random_state)
    density = dict(zip(cand.ids, cand.density()))
    ranking["density"] = ranking["id"].map(density)
    known = [str(k) for k in known]
    ranking["known"] = ranking["id"].isin(known)
    observed = cand.values(target)
    result = ScreenResult(ranking=ranking, skipped=prep.skipped, interval=float(interval))
    has_obs = np.isfinite(observed)
    if has_obs.any():
        ranking["observed"] = ranking["id"].map(dict(zip(cand.ids, observed)))
        result.coverage = coverage(observed[has_obs], lower[has_obs], upper[has_obs])
        result.mean_width = mean_width(lower[has_obs], upper[has_obs])
        result.calibration = calibration_curve(observed[has_obs], lower_all[has_obs],
                                               upper_all[has_obs], fit_levels)
    top_ids = ranking["id"].head(top_k).tolist()
    result.summary = _summary(result, prep, model, target, method, cv, top_k, known,
                              train_dir, candidates_dir, group_column)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        ranking.to_csv(out / "ranking.csv", index=False)
        result.files["ranking"] = out / "ranking.csv"
        train_density = prep.train.density()
        fig = plot_landscape(
            ranking["density"].to_numpy(), ranking["prediction"].to_numpy(),
            ranking["lower"].to_numpy(), ranking["upper"].to_numpy(), ids=ranking["id"].tolist(),
            top=top_ids, known=known, train_density=train_density, train_value=prep.y_train,
            train_ids=prep.train.ids, ylabel=target,
            title=f"{model}: {len(cand.ids)} candidates, {interval:.0%} conformal intervals",
            path=out / "landscape.png")
        _close(fig)
        result.files["landscape"] = out / "landscape.png"
        if result.calibration is not None:
            fig = plot_calibration_curve(result.calibration, out / "calibration.png",
                                         label=f"{model} ({method} conformal)")
            _close(fig)
            (out / "calibration.json").write_text(json.dumps(result.calibration, indent=1))
            result.files["calibration"] = out / "calibration.png"
        (out / "summary.md").write_text(result.summary)
        result.files["summary"] = out / "summary.md"
    return result


def _close(fig) -> None:
    from mcrt_sklearn.screening._plotting import pyplot

    pyplot().close(fig)


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.4g}"


def _summary(result: ScreenResult, prep: _Prepared, model, target, method, cv, top_k, known,
             train_dir, candidates_dir, group_column=None) -> str:
    r = result.ranking
    lines = [
        f"# Screening: {target} with {model}",
        "",
        f"- training: `{train_dir}` — {len(prep.train.ids)} structures",
        f"- candidates: `{candidates_dir}` — {len(prep.cand.ids)} ranked",
        f"- ranking: {'lowest' if prep.lower_is_better else 'highest'} first; intervals: "
        f"{result.interval:.0%} {'CV+' if method == 'cross' else 'split'} conformal (MAPIE"
        f"{f', {cv} folds' if method == 'cross' else ''}); `p_top_k` = P(among the {top_k} best) "
        "under independent normals with the interval's std",
        f"- calibration: {'folds leave whole `' + group_column + '` groups out (new molecules)' if group_column else 'random folds (new packings of the training molecules)'}",
    ]
    if len(r):
        lines.append(f"- mean interval width: {_fmt(mean_width(r['lower'], r['upper']))}")
    if result.coverage is not None:
        n_obs = result.calibration["n"]
        se = np.sqrt(result.interval * (1 - result.interval) / max(n_obs, 1))
        lines.append(f"- the candidates carry `{target}`: empirical coverage "
                     f"{result.coverage:.3f} on {n_obs} (nominal {result.interval:.2f} ± "
                     f"{1.96 * se:.3f} at 95 %), mean width {_fmt(result.mean_width)}")
        cal = result.calibration
        lines += ["", "| nominal | empirical | mean width |", "|---|---|---|"]
        lines += [f"| {c:.2f} | {e:.3f} | {w:.4g} |"
                  for c, e, w in zip(cal["levels"], cal["coverage"], cal["width"])]
    lines += ["", f"## Top {min(top_k, len(r))}", "",
              "| rank | id | prediction | lower | upper | p_top_k |", "|---|---|---|---|---|---|"]
    for row in r.head(top_k).itertuples():
        lines.append(f"| {row.rank} | `{row.id}` | {_fmt(row.prediction)} | {_fmt(row.lower)} | "
                     f"{_fmt(row.upper)} | {row.p_top_k:.3f} |")
    if known:
        lines += ["", "## Known forms", "", "| id | where | value | rank | p_top_k |",
                  "|---|---|---|---|---|"]
        by_id = r.set_index("id")
        train_y = dict(zip(prep.train.ids, prep.y_train))
        for sid in known:
            if sid in by_id.index:
                row = by_id.loc[sid]
                lines.append(f"| `{sid}` | candidate | {_fmt(row['prediction'])} (predicted) | "
                             f"{int(row['rank'])} | {row['p_top_k']:.3f} |")
            elif sid in train_y:
                lines.append(f"| `{sid}` | training | {_fmt(train_y[sid])} (computed) | — | — |")
            else:
                lines.append(f"| `{sid}` | not found | — | — | — |")
    lines.append("")
    lines += skipped_lines(prep.skipped)
    return "\n".join(lines) + "\n"
