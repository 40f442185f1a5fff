"""Learning curves of single runs, their aggregation on a common grid, and times to a threshold.

Returns are *maximised*.

* **Curves** use only evaluated rows (``eval_return`` not empty). A run's curve ``(x, y)`` is
  interpolated linearly *within* its own range and is missing (NaN) outside it: no extrapolation.
  The common grid of a group of runs spans ``[max_i x_i[0], min_i x_i[-1]]``, i.e. the curve stops
  where the first run stops, so every point of an aggregate uses *all* runs of the group (no
  survivor bias).
* **Axes**: ``epoch``, ``timesteps`` and a wall-clock column (the *clock*): ``train_time_s``, training
  time without evaluation, by default (:data:`DEFAULT_CLOCK`); ``wall_time_s``, evaluation included, on
  request. Algorithms are evaluated at different step resolutions, and the time spent evaluating is not
  part of what Salimans et al. timed. A run without ``train_time_s`` (older runs) has its
  ``wall_time_s`` in that column (:func:`harness.report.load.load_runs`).
* **Time to threshold** of one run: the ``epoch``, ``timesteps`` and clock seconds of the *first
  evaluated row* whose ``eval_return >= threshold``, read straight from ``metrics.csv`` (no
  interpolation between evaluations, so it is only as fine as the run's evaluation spacing, see
  :func:`harness.report.aggregate.eval_resolution_table`); ``inf`` when the run never reaches it.
  :func:`mean_curve_time` gives Salimans et al.'s variant (the first crossing of the mean curve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.report.options import DEFAULT_FRACTIONS, THRESHOLD_MODES, WALL_CLOCKS
from harness.report.stats import iqm as stats_iqm
from harness.report.stats import iqm_with_ci

LEARNING_AXES = ("epoch", "timesteps")
#: The wall-clock axes a report can use: training time (evaluation excluded) or total time.
CLOCK_AXES = ("train_time_s", "wall_time_s")
CLOCKS = dict(zip(WALL_CLOCKS, ("train_time_s", "wall_time_s")))  # --wall-clock choice -> metrics column
DEFAULT_CLOCK = "train_time_s"
AXIS_UNITS = {"epoch": "epochs", "timesteps": "environment steps", "train_time_s": "s", "wall_time_s": "s"}


def axes_of(clock: str = DEFAULT_CLOCK) -> tuple[str, str, str]:
    """The three axes of a report on ``clock``: epochs, timesteps and that wall-clock column."""
    if clock not in CLOCK_AXES:
        raise ValueError(f"the wall-clock axis must be one of {CLOCK_AXES}, got {clock!r}")
    return (*LEARNING_AXES, clock)


AXES = axes_of()


# ----------------------------------------------------------------------------- curves


def _check_curve(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"a curve needs 1-D x and y of one length >= 1, got {x.shape} and {y.shape}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("a curve must not contain NaN (keep only evaluated rows)")
    if (np.diff(x) <= 0).any():
        raise ValueError("a curve's x must be strictly increasing")


def interpolate_to_grid(x: Sequence[float], y: Sequence[float], grid: Sequence[float]) -> np.ndarray:
    """One run's curve on ``grid``: linear interpolation inside ``[x[0], x[-1]]``, NaN outside.

    :param x: ``(k,)`` strictly increasing positions (epochs, timesteps or seconds).
    :param y: ``(k,)`` returns at ``x``.
    :param grid: ``(g,)`` positions to evaluate at, same unit as ``x``.
    :returns: ``(g,)`` returns; NaN where the run has no data (never extrapolated).
    :raises ValueError: on mismatched shapes, NaN, or non-increasing ``x``.
    """
    x, y, grid = (np.asarray(v, dtype=np.float64) for v in (x, y, grid))
    _check_curve(x, y)
    out = np.interp(grid, x, y)
    out[(grid < x[0]) | (grid > x[-1])] = np.nan
    return out


def common_grid(xs: Sequence[Sequence[float]], points: int = 100) -> np.ndarray:
    """``points`` evenly spaced positions that every run covers: ``[max_i x_i[0], min_i x_i[-1]]``.

    :param xs: each run's ``(k_i,)`` increasing positions.
    :returns: ``(points,)`` grid, ``(1,)`` if the common range is a single point, ``(0,)`` if the runs
        share no range (or there is no run).
    """
    if not xs:
        return np.empty(0)
    lo = max(float(x[0]) for x in xs)
    hi = min(float(x[-1]) for x in xs)
    if hi < lo:
        return np.empty(0)
    if hi == lo:
        return np.array([lo])
    return np.linspace(lo, hi, int(points))


def curves_on_grid(curves: Sequence[tuple[Sequence[float], Sequence[float]]], grid: Sequence[float]) -> np.ndarray:
    """``(runs, len(grid))`` matrix of :func:`interpolate_to_grid` for every ``(x, y)`` curve."""
    grid = np.asarray(grid, dtype=np.float64)
    if not curves:
        return np.empty((0, grid.size))
    return np.stack([interpolate_to_grid(x, y, grid) for x, y in curves])


#: Resampled values one curve's CI band may draw (runs x band points x repetitions, about 1-2 s here). A band of
#: more runs is computed at fewer grid points (:func:`band_points`, never fewer than :data:`MIN_BAND_POINTS`,
#: always both ends) and drawn straight between them: the bootstrap costs runs x points x repetitions, so a
#: sweep's group of thousands of runs would spend minutes on a band far narrower than its line.
BAND_VALUES = 1 << 26
MIN_BAND_POINTS = 11


def band_points(runs: int, points: int, reps: int, budget: int | None = None) -> int:
    """How many of a grid's ``points`` get a bootstrapped CI for ``runs`` runs and ``reps`` repetitions: all of
    them while ``runs * points * reps <= budget`` (default :data:`BAND_VALUES`), else as many as the budget
    allows, but at least :data:`MIN_BAND_POINTS` (and at most ``points``)."""
    budget = BAND_VALUES if budget is None else budget
    if runs * points * reps <= budget:
        return points
    return min(points, max(MIN_BAND_POINTS, budget // max(runs * reps, 1)))


def aggregate_curves(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]],
    points: int = 100,
    reps: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """IQM curve with CI of a group of runs on their common grid.

    The IQM is computed at every grid point; the CI at every point too, unless the group is so large that
    :func:`band_points` allows fewer: then at that many evenly spaced grid points (both ends included; the
    CIs rliable gives for those points), linearly interpolated between them (``band_exact`` False there).

    :param curves: one ``(x, y)`` per run (evaluated rows only).
    :returns: DataFrame with columns ``x, iqm, lower, upper, n_runs, band_exact``; empty when the runs share
        no range of ``x``.
    """
    grid = common_grid([np.asarray(x) for x, _ in curves], points)
    if grid.size == 0:
        return pd.DataFrame(columns=["x", "iqm", "lower", "upper", "n_runs", "band_exact"])
    mat = curves_on_grid(curves, grid)
    at = np.unique(np.linspace(0, grid.size - 1, band_points(len(curves), grid.size, reps)).round().astype(int))
    if at.size == grid.size:
        iqm, lo, hi = iqm_with_ci(mat, reps=reps, seed=seed, ci=ci)
    else:
        iqm = stats_iqm(mat)
        _, lo_at, hi_at = iqm_with_ci(mat[:, at], reps=reps, seed=seed, ci=ci)
        lo, hi = np.interp(grid, grid[at], lo_at), np.interp(grid, grid[at], hi_at)
    exact = np.zeros(grid.size, dtype=bool)
    exact[at] = True
    return pd.DataFrame({"x": grid, "iqm": iqm, "lower": lo, "upper": hi, "n_runs": len(curves), "band_exact": exact})


#: Runs x positions of the seed-averaged curve held in one matrix at the most (32 MB of float64). The union of
#: a sweep's evaluation positions grows with its runs (every run has its own seconds), so the matrix of every
#: run on it grows with their square: beyond this, the mean is summed one run at a time (the same sums) and
#: :func:`mean_curve_time` looks for its crossing without it.
MEAN_MATRIX_VALUES = 1 << 22


def _union_grid(curves) -> tuple[list[np.ndarray], np.ndarray]:
    xs = [np.asarray(x, dtype=np.float64) for x, _ in curves]
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    union = np.unique(np.concatenate(xs))
    return xs, union[(union >= lo) & (union <= hi)]


def seed_mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """The *seed-averaged* curve of ``curves`` (one ``(x, y)`` per run, ``x`` ascending): every run interpolated
    linearly onto the union of all runs' positions inside the range every run covers (where the mean of
    piecewise-linear curves can change slope). :returns: ``(grid, mean)``, both ``(n,)``; empty without a
    common range."""
    if not curves:
        return np.empty(0), np.empty(0)
    _, grid = _union_grid(curves)
    if grid.size == 0:
        return grid, np.empty(0)
    if grid.size == 1 or len(curves) * grid.size <= MEAN_MATRIX_VALUES:
        return grid, curves_on_grid(curves, grid).mean(axis=0)
    # numpy's mean over the runs of a (runs, n > 1) matrix adds its rows in order, then divides: the same
    # numbers, one run at a time
    total = interpolate_to_grid(*curves[0], grid)
    for x, y in curves[1:]:
        total += interpolate_to_grid(x, y, grid)
    return grid, total / len(curves)


def mean_curve_time(curves: Sequence[tuple[Sequence[float], Sequence[float]]], threshold: float) -> float:
    """Salimans et al. 2017's variant: first position where the *seed-averaged* curve (:func:`seed_mean_curve`)
    reaches ``threshold``: the first grid position whose mean return is ``>= threshold`` (no interpolation between
    positions; :mod:`harness.report.salimans2017` interpolates), ``inf`` if none.

    Many runs on many positions (beyond :data:`MEAN_MATRIX_VALUES`) are not interpolated onto every position
    of the union: an approximate mean curve (:func:`_approximate_mean`, linear in the runs) says where the mean
    may reach ``threshold``, and the exact mean, summed as :func:`seed_mean_curve` sums it, is computed at those
    positions only, in order, up to the first that reaches it. The answer is the same."""
    if not curves:
        return math.nan
    xs, grid = _union_grid(curves)
    if grid.size == 0:
        return math.nan
    if grid.size > 1 and len(curves) * grid.size > MEAN_MATRIX_VALUES:
        found = _first_crossing(curves, xs, grid, threshold)
        if found is not None:
            return found
    grid, mean = seed_mean_curve(curves)
    hit = np.flatnonzero(mean >= threshold)
    return float(grid[hit[0]]) if hit.size else math.inf


def _approximate_mean(curves, xs: list[np.ndarray], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the runs' piecewise-linear curves on ``grid`` (inside every run's range), summed as slopes and
    intercepts that change at the runs' positions (difference arrays: no runs x grid matrix), and a bound on
    its rounding error at each position."""
    n = len(curves)
    slope_d, icept_d = np.zeros(grid.size + 1), np.zeros(grid.size + 1)
    abs_slope_d, abs_icept_d = np.zeros(grid.size + 1), np.zeros(grid.size + 1)
    for x, (_, y) in zip(xs, curves):
        y = np.asarray(y, dtype=np.float64)
        if x.size == 1:  # a single position: the whole common range is that point
            slope, icept = np.zeros(1), y.copy()
            starts = np.zeros(1, dtype=np.intp)
        else:
            slope = np.diff(y) / np.diff(x)
            icept = y[:-1] - slope * x[:-1]
            # segment j covers the grid positions in [x_j, x_j+1); the last one also covers x_-1
            starts = np.searchsorted(grid, x[:-1], side="left")
            starts[0] = 0
        for arr, absarr, v in ((slope_d, abs_slope_d, slope), (icept_d, abs_icept_d, icept)):
            dv = np.diff(v, prepend=0.0)
            np.add.at(arr, starts, dv)
            np.add.at(absarr, starts, np.abs(dv))
    s, c = np.cumsum(slope_d)[:-1], np.cumsum(icept_d)[:-1]
    scale = np.cumsum(abs_icept_d)[:-1] + np.cumsum(abs_slope_d)[:-1] * np.abs(grid)
    return (c + s * grid) / n, 1e-7 * (scale + 1.0) / n


def _first_crossing(curves, xs: list[np.ndarray], grid: np.ndarray, threshold: float, most: int = 64):
    """:func:`mean_curve_time` without the runs x grid matrix: the first position whose exact mean reaches
    ``threshold`` among those the approximate mean says may; ``inf`` if none may; ``None`` (compute it the
    long way) when more than ``most`` candidates fall short."""
    approx, err = _approximate_mean(curves, xs, grid)
    candidates = np.flatnonzero(approx >= threshold - err)
    for k in candidates[:most]:
        g = grid[k]
        total = float(np.interp(g, xs[0], curves[0][1]))
        for x, (_, y) in zip(xs[1:], curves[1:]):
            total += float(np.interp(g, x, y))  # in run order, as the matrix's mean adds them
        if total / len(curves) >= threshold:
            return float(g)
    return math.inf if candidates.size == 0 else None


# ----------------------------------------------------------------------------- thresholds


def time_to_threshold(evaluated: pd.DataFrame, threshold: float, axes: Sequence[str] = AXES) -> dict:
    """When one run first reaches ``threshold``.

    :param evaluated: that run's evaluated rows (columns ``axes`` and ``eval_return``), in epoch order.
    :param axes: the positions to read, default ``epoch, timesteps, train_time_s``.
    :returns: ``{"reached": bool, "epoch": ..., "timesteps": ..., "train_time_s": ...}`` taken from the
        first row with ``eval_return >= threshold``; the times are ``inf`` if no row reaches it.
    """
    hit = evaluated.index[evaluated["eval_return"].to_numpy() >= threshold]
    if len(hit) == 0:
        return {"reached": False, **dict.fromkeys(axes, math.inf)}
    row = evaluated.loc[hit[0]]
    return {"reached": True, **{a: float(row[a]) for a in axes}}


def thresholds(
    reference_final: Sequence[float],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    mode: str = "final",
    reference_initial: Sequence[float] | None = None,
) -> np.ndarray:
    """Return thresholds from the reference algorithm's runs, increasing with the fraction.

    ``final`` mode: ``f * mean(final)`` (a fraction of the reference's final return).
    ``progress`` mode: ``mean(initial) + f * (mean(final) - mean(initial))``, a fraction of its
    *learning progress*, which is what Salimans et al. 2017 used (supplement Table 3: their
    HalfCheetah 25% threshold is -1.35 for a final score of 2385.79).

    Each mode is refused where it would reverse the order of the thresholds (a 25% threshold harder
    than the 100% one): ``final`` when ``mean(final) <= 0``, ``progress`` when ``mean(final) <=
    mean(initial)``. :func:`threshold_rule` picks the mode that applies.

    :param reference_final: ``(runs,)`` last evaluated ``eval_return`` of each reference run.
    :param reference_initial: ``(runs,)`` first evaluated ``eval_return`` (``progress`` mode only).
    :returns: ``(len(fractions),)`` thresholds in return units.
    :raises ValueError: on an unknown mode, no reference run, missing initial returns, or a mode refused
        as above.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"threshold mode must be one of {THRESHOLD_MODES}, got {mode!r}")
    final = np.asarray(reference_final, dtype=np.float64)
    if final.size == 0:
        raise ValueError("no reference run to take thresholds from")
    f = np.asarray(fractions, dtype=np.float64)
    if mode == "final":
        if not final.mean() > 0:
            raise ValueError(f"final-return thresholds need a positive reference final return, got {final.mean():.4g}")
        return np.where(f == 1.0, final.mean(), f * final.mean())
    if reference_initial is None or len(reference_initial) == 0:
        raise ValueError("progress mode needs the reference runs' initial returns")
    start = float(np.mean(reference_initial))
    if not final.mean() > start:
        raise ValueError(
            f"progress thresholds need a reference final return above its initial one, got "
            f"{final.mean():.4g} <= {start:.4g}"
        )
    # f = 1 is the final return itself, not start + (final - start), which rounding can put above it
    return np.where(f == 1.0, final.mean(), start + f * (final.mean() - start))


def threshold_rule(final: float, initial: float, mode: str = "final") -> tuple[str | None, str]:
    """Which threshold mode applies to a reference with mean final return ``final`` and mean initial
    (first evaluated) return ``initial``, and why when it is not ``mode``.

    Rule: ``final`` needs ``final > 0`` (else ``f * final`` decreases with ``f``: with a final return
    of -50 the 25% threshold, -12.5, is harder than the 100% one); a non-positive final return falls
    back to ``progress``. ``progress`` needs ``final > initial`` (learning progress to take fractions
    of); without it there are no thresholds (``None``).

    :returns: ``(mode used or None, note)``; ``note`` is ``""`` when ``mode`` applies as asked.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"threshold mode must be one of {THRESHOLD_MODES}, got {mode!r}")
    if mode == "final" and final > 0:
        return "final", ""
    progress = final > initial
    if mode == "progress":
        return (
            ("progress", "")
            if progress
            else (
                None,
                f"no thresholds: reference final return {final:.4g} is not above its initial return {initial:.4g}",
            )
        )
    if progress:
        return "progress", (
            f"reference final return {final:.4g} <= 0: thresholds from its learning progress "
            f"instead, initial {initial:.4g} + f x (final - initial)"
        )
    return None, (
        f"no thresholds: reference final return {final:.4g} is not positive, nor above its initial return {initial:.4g}"
    )


def time_per_epoch(last_epoch: float, last_time_s: float) -> float:
    """Mean wall-clock seconds per epoch of a run: its clock (``train_time_s``, or ``wall_time_s`` with
    evaluation included) at the end over its last ``epoch``."""
    return float(last_time_s) / float(last_epoch)


def ideal_scaling(workers: Sequence[float], times: Sequence[float]) -> np.ndarray:
    """Linear-scaling reference: ``t(n_min) * n_min / n`` for every ``n`` in ``workers``.

    :param workers: ``(k,)`` worker counts; ``times``: ``(k,)`` measured times (any unit), same order.
    """
    workers = np.asarray(workers, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    i = int(np.argmin(workers))
    return times[i] * workers[i] / workers
