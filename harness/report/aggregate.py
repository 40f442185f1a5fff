"""Pure aggregation functions: curves on a common grid, time to threshold, Table 1 ratios, IQM and CIs.

Nothing here reads or writes files. Conventions (returns are *maximised*):

* **Groups**: learning statistics (against epochs and timesteps, final returns, thresholds) pool the
  runs of one (env, algorithm), each seed once whatever its ``workers.n``; wall-clock statistics pool
  the runs of one (env, algorithm, ``workers.n``). Which run stands for a seed is decided by
  :func:`harness.report.load.mark_counted` (see "DataFrame level" below).

* **Curves** use only evaluated rows (``eval_return`` not empty). A run's curve ``(x, y)`` is
  interpolated linearly *within* its own range and is missing (NaN) outside it: no extrapolation.
  The common grid of a group of runs spans ``[max_i x_i[0], min_i x_i[-1]]``, i.e. the curve stops
  where the first run stops, so every point of an aggregate uses *all* runs of the group (no
  survivor bias).
* **IQM and 95% CIs** follow Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
  Statistical Precipice" (NeurIPS; the ``rliable`` library): the interquartile mean (25% trimmed mean,
  :func:`rliable.metrics.aggregate_iqm`) over runs, with percentile confidence intervals from
  :func:`rliable.library.get_interval_estimates` (stratified bootstrap over runs; one task here).
* **Wall-clock axis** (the *clock*): ``train_time_s``, training time without evaluation, by default
  (:data:`DEFAULT_CLOCK`); ``wall_time_s``, evaluation included, on request. Algorithms are evaluated at
  different step resolutions, and the time spent evaluating is not part of what Salimans et al. timed.
  A run without ``train_time_s`` (older runs) has its ``wall_time_s`` in that column
  (:func:`harness.report.load.load_runs`).
* **Time to threshold** of one run: the ``epoch``, ``timesteps`` and clock seconds of the *first
  evaluated row* whose ``eval_return >= threshold``, read straight from ``metrics.csv`` (no
  interpolation between evaluations, so it is only as fine as the run's evaluation spacing, see
  :func:`eval_resolution_table`); ``inf`` when the run never reaches it.
* **Across seeds** times to threshold are summarised by the **median** (``inf`` counts as "later than
  everything", so the median is finite exactly when more than half of the runs reached; the
  scaling figure of Salimans et al. 2017 also reports median times), with percentile bootstrap CIs.
* **Table 1 ratio** (Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable
  Alternative to Reinforcement Learning", Table 1 / supplement Table 3):
  ``ratio = median_seeds(time_ES) / median_seeds(time_TRPO)`` for each of timesteps and epochs (learning
  groups) and wall-clock time (per pair of worker counts). Salimans et al. instead averaged the
  learning curves over their 6 seeds and compared the first crossings of the *mean curves*;
  :func:`mean_curve_time` gives that variant too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

LEARNING_AXES = ("epoch", "timesteps")
#: The wall-clock axes a report can use: training time (evaluation excluded) or total time.
CLOCK_AXES = ("train_time_s", "wall_time_s")
CLOCKS = {"train": "train_time_s", "total": "wall_time_s"}  # --wall-clock choice -> metrics column
DEFAULT_CLOCK = "train_time_s"
AXIS_UNITS = {"epoch": "epochs", "timesteps": "environment steps", "train_time_s": "s", "wall_time_s": "s"}


def axes_of(clock: str = DEFAULT_CLOCK) -> tuple[str, str, str]:
    """The three axes of a report on ``clock``: epochs, timesteps and that wall-clock column."""
    if clock not in CLOCK_AXES:
        raise ValueError(f"the wall-clock axis must be one of {CLOCK_AXES}, got {clock!r}")
    return (*LEARNING_AXES, clock)


AXES = axes_of()


def clock_of(frame: pd.DataFrame) -> str:
    """The wall-clock column a :func:`time_to_threshold_table` (or any frame with one of
    :data:`CLOCK_AXES`) was computed on."""
    found = [c for c in CLOCK_AXES if c in frame.columns]
    if len(found) != 1:
        raise ValueError(f"expected exactly one of {CLOCK_AXES} among the columns, got {found}")
    return found[0]
DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
THRESHOLD_MODES = ("final", "progress")


# ----------------------------------------------------------------------------- rliable

def _rliable():
    """``(rliable.library, rliable.metrics)``, imported on first use (it pulls in arch and seaborn)."""
    from rliable import library, metrics

    return library, metrics


@contextlib.contextmanager
def _seeded_numpy_global(seed: int):
    """Seed numpy's *global* generator for the duration, then restore its state.

    rliable's ``StratifiedBootstrap.update_indices`` draws with ``np.random.choice`` (the global
    generator) and ignores ``random_state``, so this is the only way to make its CIs reproducible.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _iqm_over_runs(scores: np.ndarray) -> np.ndarray:
    """IQM over axis 0 of ``(runs, 1, points)`` -> ``(points,)``.

    Equal, point by point, to ``rliable.metrics.aggregate_iqm(scores[:, :, j])``, i.e.
    ``scipy.stats.trim_mean(..., 0.25)``: drop ``int(0.25 * runs)`` runs at each end, average the rest.
    Vectorised over the points: calling aggregate_iqm per grid point is ~30x slower.
    """
    x = np.sort(scores[:, 0, :], axis=0)
    cut = int(0.25 * x.shape[0])
    return x[cut:x.shape[0] - cut].mean(axis=0)


def iqm_with_ci(scores: np.ndarray, reps: int = 2000, seed: int = 0, ci: float = 0.95
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM across runs with a stratified-bootstrap percentile CI, per column.

    :param scores: ``(runs, points)`` returns, no NaN (put only grid points every run reaches).
    :param reps: bootstrap repetitions; ``seed`` seeds them (results are reproducible).
    :param ci: coverage of the interval (0.95 = 95%).
    :returns: ``(iqm, lower, upper)``, each ``(points,)``, in the units of ``scores``.
    :raises ValueError: on a wrong shape, no run, or NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 1:
        raise ValueError(f"scores must be (runs >= 1, points), got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: keep only grid points that every run reaches")
    (resampled,) = _stratified_resamples([scores[:, None, :]], reps, seed)  # (reps, runs, 1, points)
    x = np.sort(resampled[:, :, 0, :], axis=1)
    cut = int(0.25 * x.shape[1])
    replicates = x[:, cut:x.shape[1] - cut].mean(axis=1)  # _iqm_over_runs of every resample
    # arch's percentile interval (rliable's method="percentile"): np.percentile at 100 alpha, 100 (1 - alpha)
    alpha = (1.0 - ci) / 2.0
    lower, upper = np.percentile(replicates, list(np.array([alpha, 1.0 - alpha]) * 100), axis=0)
    return _iqm_over_runs(scores[:, None, :]), lower, upper


def _stratified_resamples(arrays: Sequence[np.ndarray], reps: int, seed: int) -> list[np.ndarray]:
    """Every bootstrap resample of rliable's stratified bootstraps, at once: ``(reps, *a.shape)`` per array.

    Each array is ``(runs, ...)``; its runs are resampled separately in every other position ("tasks" and
    grid points in rliable's terms), and several arrays independently of each other. The indices are
    drawn exactly as :class:`rliable.library.StratifiedBootstrap` (one array) and
    :class:`rliable.library.StratifiedIndependentBootstrap` (several) draw them: per repetition, per array
    in order, ``np.random.choice(runs, a.shape)`` from numpy's global generator seeded with ``seed``
    (:func:`_seeded_numpy_global`). So the replicates, and every CI, are rliable's to the last bit (a test
    compares them), without the per-repetition overhead of arch's bootstrap loop (which made the
    report spend most of its time there).
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    with _seeded_numpy_global(seed):
        if len({a.shape[0] for a in arrays}) == 1:
            # one bound: the per-repetition draws are consecutive numbers of one stream, so one call draws
            # them all (numpy's legacy generator fills an array element by element, in order)
            sizes = [a.size for a in arrays]
            flat = np.random.choice(arrays[0].shape[0], (reps, sum(sizes)), replace=True)
            parts = np.split(flat, np.cumsum(sizes)[:-1], axis=1)
            idx = [p.reshape((reps, *a.shape)) for p, a in zip(parts, arrays)]
        else:
            idx = [np.empty((reps, *a.shape), dtype=np.intp) for a in arrays]
            for r in range(reps):
                for i, a in zip(idx, arrays):
                    i[r] = np.random.choice(a.shape[0], a.shape, replace=True)
    out = []
    for a, i in zip(arrays, idx):
        strata = [np.arange(n).reshape((n,) + (1,) * (a.ndim - 2 - j)) for j, n in enumerate(a.shape[1:])]
        out.append(a[(i, *strata)])
    return out


def _bootstrap_replicates(stat, arrays: Sequence[np.ndarray], reps: int, seed: int) -> np.ndarray:
    """``(reps, k)`` values of ``stat`` on rliable's stratified bootstrap resamples of the runs
    (:func:`_stratified_resamples`).

    Each array is ``(runs, k)``: ``k`` statistics ("tasks" in rliable's terms) whose runs are resampled
    separately, which gives the marginal CI of each column. One array:
    :class:`rliable.library.StratifiedBootstrap`; several (e.g. ES and TRPO runs for a ratio): each
    array resampled independently, :class:`rliable.library.StratifiedIndependentBootstrap`.

    :param stat: a function of the resampled arrays, each ``(reps, runs, k)``, over their runs (axis 1),
        returning ``(reps, k)``.
    """
    resampled = _stratified_resamples(arrays, reps, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(stat(*resampled), dtype=np.float64)


def _percentiles(values: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column percentile interval without interpolation (``inverted_cdf``), so ``inf`` stays valid.

    NaN replicates (an undefined ratio) count as ``inf``.
    """
    values = np.where(np.isnan(values), np.inf, values)
    lo, hi = np.quantile(values, [(1 - ci) / 2, (1 + ci) / 2], axis=0, method="inverted_cdf")
    return lo, hi


def _as_runs_by_k(values) -> tuple[np.ndarray, bool]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected (runs,) or (runs, k) values, got shape {arr.shape}")
    return (arr[:, None], True) if arr.ndim == 1 else (arr, False)


def median_with_ci(values, reps: int = 2000, seed: int = 0, ci: float = 0.95):
    """Median over seeds of times to threshold, with bootstrap percentile CIs.

    :param values: ``(runs,)`` or ``(runs, k)`` times (any unit); ``inf`` = never reached.
    :returns: ``(median, lower, upper)``: floats for 1-D input, ``(k,)`` arrays for 2-D; ``inf`` where
        more than half of the runs (of a resample) never reached; NaN when there is no run.
    """
    arr, one = _as_runs_by_k(values)
    if arr.shape[0] == 0:
        nan = np.full(arr.shape[1], np.nan)
        out = (nan, nan, nan)
    else:
        reps_ = _bootstrap_replicates(lambda x: np.median(x, axis=1), [arr], reps, seed)
        out = (np.median(arr, axis=0), *_percentiles(reps_, ci))
    return tuple(float(v[0]) for v in out) if one else out


def ratio_of_medians(a, b, axis: int = 0):
    """``median(a) / median(b)`` over runs (``axis``, 0 by default): ``inf`` if only ``a``'s median is
    unreached (``inf``), NaN if ``b``'s is (the ratio is then undefined).

    The Table 1 statistic with ``a`` = ES times to threshold over seeds, ``b`` = TRPO's, same unit.

    :param a: ``(runs_a,)`` or ``(runs_a, k)``; ``b``: ``(runs_b,)`` or ``(runs_b, k)`` (or any shapes
        with the runs along ``axis`` that broadcast once it is reduced).
    :returns: a float, or ``(k,)`` for 2-D input.
    """
    ma = np.median(np.asarray(a, dtype=np.float64), axis=axis)
    mb = np.median(np.asarray(b, dtype=np.float64), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isinf(mb) | (mb == 0), np.nan, ma / np.where(mb == 0, 1.0, mb))
        r = np.where(np.isfinite(mb) & (mb == 0) & (ma > 0), np.inf, r)
    return float(r) if np.ndim(r) == 0 else r


def ratio_with_ci(a, b, reps: int = 2000, seed: int = 0, ci: float = 0.95):
    """:func:`ratio_of_medians` with a percentile CI from resampling ``a``'s and ``b``'s runs independently.

    Resamples whose ratio is undefined (``b``'s median unreached) count as unbounded (``inf``), which
    can only widen the interval upwards. NaN everywhere where the point estimate itself is undefined.

    :returns: ``(ratio, lower, upper)``: floats for 1-D input, ``(k,)`` arrays for 2-D.
    """
    a2, one = _as_runs_by_k(a)
    b2, _ = _as_runs_by_k(b)
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"a and b need the same number of columns, got {a2.shape} and {b2.shape}")
    k = a2.shape[1]
    if a2.shape[0] == 0 or b2.shape[0] == 0:
        point = np.full(k, np.nan)
        lo = hi = point
    else:
        point = np.atleast_1d(ratio_of_medians(a2, b2))
        reps_ = _bootstrap_replicates(lambda x, y: ratio_of_medians(x, y, axis=1), [a2, b2], reps, seed)
        lo, hi = _percentiles(reps_, ci)
        lo, hi = np.where(np.isnan(point), np.nan, lo), np.where(np.isnan(point), np.nan, hi)
    out = (point, lo, hi)
    return tuple(float(v[0]) for v in out) if one else out


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


def aggregate_curves(curves: Sequence[tuple[Sequence[float], Sequence[float]]], points: int = 100,
                     reps: int = 2000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """IQM curve with CI of a group of runs on their common grid.

    :param curves: one ``(x, y)`` per run (evaluated rows only).
    :returns: DataFrame with columns ``x, iqm, lower, upper, n_runs``; empty when the runs share no
        range of ``x``.
    """
    grid = common_grid([np.asarray(x) for x, _ in curves], points)
    if grid.size == 0:
        return pd.DataFrame(columns=["x", "iqm", "lower", "upper", "n_runs"])
    mat = curves_on_grid(curves, grid)
    iqm, lo, hi = iqm_with_ci(mat, reps=reps, seed=seed, ci=ci)
    return pd.DataFrame({"x": grid, "iqm": iqm, "lower": lo, "upper": hi, "n_runs": len(curves)})


def mean_curve_time(curves: Sequence[tuple[Sequence[float], Sequence[float]]], threshold: float) -> float:
    """Salimans et al. 2017's variant: first position where the *seed-averaged* curve reaches ``threshold``.

    Every run is interpolated onto the union of all runs' evaluation positions inside the common range
    (where the mean of piecewise-linear curves can change slope); the result is the first such position
    whose mean return is ``>= threshold`` (no interpolation between positions), ``inf`` if none.
    """
    if not curves:
        return math.nan
    xs = [np.asarray(x, dtype=np.float64) for x, _ in curves]
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    union = np.unique(np.concatenate(xs))
    grid = union[(union >= lo) & (union <= hi)]
    if grid.size == 0:
        return math.nan
    mean = curves_on_grid(curves, grid).mean(axis=0)
    hit = np.flatnonzero(mean >= threshold)
    return float(grid[hit[0]]) if hit.size else math.inf


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
        return {"reached": False, **{a: math.inf for a in axes}}
    row = evaluated.loc[hit[0]]
    return {"reached": True, **{a: float(row[a]) for a in axes}}


def thresholds(reference_final: Sequence[float], fractions: Sequence[float] = DEFAULT_FRACTIONS,
               mode: str = "final", reference_initial: Sequence[float] | None = None) -> np.ndarray:
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
        raise ValueError(f"progress thresholds need a reference final return above its initial one, got "
                         f"{final.mean():.4g} <= {start:.4g}")
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
        return ("progress", "") if progress else (
            None, f"no thresholds: reference final return {final:.4g} is not above its initial return {initial:.4g}")
    if progress:
        return "progress", (f"reference final return {final:.4g} <= 0: thresholds from its learning progress "
                            f"instead, initial {initial:.4g} + f x (final - initial)")
    return None, (f"no thresholds: reference final return {final:.4g} is not positive, nor above its initial "
                  f"return {initial:.4g}")


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


# ----------------------------------------------------------------------------- DataFrame level
# ``runs`` and ``metrics`` below are :class:`harness.report.load.Loaded` frames. Which runs count is
# decided once, by :func:`harness.report.load.mark_counted` (each seed once; completed runs first):
#
# * **learning statistics** (returns against epochs and timesteps, final returns, thresholds, the Table 1
#   ratios of timesteps and epochs) pool the ``learning`` runs of one (env, algo): a run's numbers do
#   not depend on ``workers.n``, so worker counts are not separate groups;
# * **wall-clock statistics** (returns against seconds, seconds to threshold, the Table 1 ratio of
#   seconds, the scaling table) pool the ``wall_clock`` runs of one (env, algo, workers_n). A run on a
#   busy machine is not a wall-clock run (unless asked), but may be a learning run.
#
# Frames without the ``learning`` / ``wall_clock`` marks count every run in both.


def learning_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs counted in learning statistics (``learning`` mark), all of them without marks."""
    return runs[runs["learning"].astype(bool)] if "learning" in runs else runs


def wall_clock_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs counted in wall-clock statistics (``wall_clock`` mark), all of them without marks."""
    return runs[runs["wall_clock"].astype(bool)] if "wall_clock" in runs else runs


def wall_label(algo: str, workers_n) -> str:
    """The label of a wall-clock group: ``"es n=2"`` (``"es n=?"`` when the config had no ``workers.n``)."""
    return f"{algo} n={'?' if pd.isna(workers_n) else int(workers_n)}"


def statistic_groups(runs: pd.DataFrame, clock: str = DEFAULT_CLOCK):
    """Every group a statistic is computed over, learning groups first.

    :yields: ``(env, algo, workers_n, group, axes, runs_of_group)``: ``workers_n`` is ``pd.NA`` and
        ``group`` the algorithm name for a learning group (``axes`` = :data:`LEARNING_AXES`); a
        wall-clock group has its ``workers_n``, ``group`` = :func:`wall_label`, ``axes`` = ``(clock,)``.
    """
    for (env, algo), g in learning_runs(runs).groupby(["env", "algo"], sort=True):
        yield env, algo, pd.NA, str(algo), LEARNING_AXES, g
    for (env, algo, n), g in wall_clock_runs(runs).groupby(["env", "algo", "workers_n"], sort=True, dropna=False):
        yield env, algo, n, wall_label(algo, n), (clock,), g


def evaluated_by_run(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Run id -> that run's evaluated rows (``eval_return`` present), in epoch order; runs without any
    evaluation are absent (use ``.get(run, empty)``)."""
    rows = metrics[metrics["eval_return"].notna()]
    return {run: g.sort_values("epoch") for run, g in rows.groupby("run", sort=False)}


def _int64(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        df[c] = df[c].astype("Int64")
    return df


def curve_table(metrics: pd.DataFrame, runs: pd.DataFrame, points: int = 100, reps: int = 2000,
                seed: int = 0, ci: float = 0.95, clock: str = DEFAULT_CLOCK) -> pd.DataFrame:
    """IQM learning curves with CIs of every group (:func:`statistic_groups`): learning groups against
    epochs and timesteps, wall-clock groups against seconds of ``clock``.

    :returns: long DataFrame, columns ``env, group, algo, workers_n, axis, x, iqm, lower, upper, n_runs``
        (``x`` in the axis' unit, returns in return units; ``workers_n`` NA on the learning axes); a group
        whose runs share no range of an axis, or that has no evaluated run, is absent for that axis. A
        group of single evaluations (or runs that only share one position) has one row.
    """
    by_run = evaluated_by_run(metrics)
    out = []
    for env, algo, n, group, axes, g in statistic_groups(runs, clock):
        evaluated = [by_run[r] for r in g["run"] if r in by_run]
        for axis in axes if evaluated else ():
            curves = [(e[axis].to_numpy(), e["eval_return"].to_numpy()) for e in evaluated]
            agg = aggregate_curves(curves, points=points, reps=reps, seed=seed, ci=ci)
            if not agg.empty:
                out.append(agg.assign(env=env, group=group, algo=algo, workers_n=n, axis=axis))
    cols = ["env", "group", "algo", "workers_n", "axis", "x", "iqm", "lower", "upper", "n_runs"]
    return _int64(pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols), "workers_n")


def threshold_table(runs: pd.DataFrame, fractions: Sequence[float] = DEFAULT_FRACTIONS, mode: str = "final",
                    reference: str = "trpo") -> pd.DataFrame:
    """Return thresholds per environment, from the ``reference`` algorithm's learning runs (one per seed,
    whatever its ``workers.n``).

    The reference's *final return* is the mean over its runs of their last evaluated ``eval_return``
    (its *initial return*, for ``progress`` mode, the mean of their first); only its completed runs
    count when it has any (an interrupted or failed run's last return is not a final return). When an
    environment has no evaluated ``reference`` run, the algorithm with the highest final return stands
    in and ``fallback`` is True. The mode actually used follows :func:`threshold_rule` (``final`` falls
    back to ``progress`` for a non-positive final return; no thresholds without learning progress).

    :returns: columns ``env, reference, fallback, mode, fraction, threshold, reference_final,
        reference_initial, n_reference_runs, note``; one row per (env, fraction). ``mode`` is the mode
        used (``"none"`` and NaN thresholds when refused); ``note`` says why it differs from the one asked.
    """
    rows = []
    counted = learning_runs(runs)
    evaluated = counted[counted["final_eval_return"].notna()]
    for env, e in evaluated.groupby("env", sort=True):
        ref = e[e["algo"] == reference]
        fallback = ref.empty
        if fallback:
            finals = e.groupby("algo")["final_eval_return"].mean()
            ref = e[e["algo"] == finals.idxmax()]
        if (ref["status"] == "completed").any():  # an interrupted run's last return is not a final return
            ref = ref[ref["status"] == "completed"]
        final, initial = float(ref["final_eval_return"].mean()), float(ref["first_eval_return"].mean())
        used, note = threshold_rule(final, initial, mode)
        thr = (thresholds(ref["final_eval_return"], fractions, used, ref["first_eval_return"]) if used
               else np.full(len(fractions), np.nan))
        for f, t in zip(fractions, thr):
            rows.append({"env": env, "reference": ref["algo"].iloc[0], "fallback": fallback, "mode": used or "none",
                         "fraction": float(f), "threshold": float(t), "reference_final": final,
                         "reference_initial": initial, "n_reference_runs": len(ref), "note": note})
    cols = ["env", "reference", "fallback", "mode", "fraction", "threshold", "reference_final",
            "reference_initial", "n_reference_runs", "note"]
    return pd.DataFrame(rows, columns=cols)


def time_to_threshold_table(metrics: pd.DataFrame, runs: pd.DataFrame, thr: pd.DataFrame,
                            clock: str = DEFAULT_CLOCK) -> pd.DataFrame:
    """:func:`time_to_threshold` of every counted run (learning or wall-clock) for every threshold of its
    environment.

    :returns: columns ``env, algo, workers_n, seed, status, run, learning, wall_clock, fraction,
        threshold, reached, epoch, timesteps, <clock>, eval_every_timesteps`` (times ``inf`` when not
        reached; a run without any evaluation counts as not reached; the last column is the run's evaluation
        spacing, :func:`harness.report.load.eval_spacing`, the resolution of its times). ``learning`` / ``wall_clock``: the run counts in the learning /
        wall-clock statistics (:func:`harness.report.load.mark_counted`).
    """
    axes = axes_of(clock)
    learning = set(learning_runs(runs)["run"])
    wall = set(wall_clock_runs(runs)["run"])
    counted = runs[runs["run"].isin(learning | wall)]
    by_run = evaluated_by_run(metrics)
    empty = metrics.iloc[:0]
    rows = []
    for _, r in counted.iterrows():
        evaluated = by_run.get(r["run"], empty)
        for _, t in thr[(thr["env"] == r["env"]) & thr["threshold"].notna()].iterrows():
            rows.append({"env": r["env"], "algo": r["algo"], "workers_n": r["workers_n"], "seed": r["seed"],
                         "status": r["status"], "run": r["run"], "learning": r["run"] in learning,
                         "wall_clock": r["run"] in wall, "fraction": t["fraction"], "threshold": t["threshold"],
                         **time_to_threshold(evaluated, t["threshold"], axes),
                         "eval_every_timesteps": r.get("eval_every_timesteps", math.nan)})
    cols = ["env", "algo", "workers_n", "seed", "status", "run", "learning", "wall_clock", "fraction", "threshold",
            "reached", *axes, "eval_every_timesteps"]
    return _int64(pd.DataFrame(rows, columns=cols), "workers_n")


def _stack_times(g: pd.DataFrame, fractions: Sequence[float], axes: Sequence[str]) -> np.ndarray:
    """``(runs, len(fractions) * len(axes))`` times: fraction-major, then ``axes``."""
    cols = []
    for f in fractions:
        sub = g[g["fraction"] == f].sort_values("run")
        cols.extend(sub[a].to_numpy(dtype=np.float64) for a in axes)
    return np.stack(cols, axis=1)


def _ttt_groups(ttt: pd.DataFrame):
    """:func:`statistic_groups` of a :func:`time_to_threshold_table`: ``(env, algo, workers_n, group,
    axes, rows)``, learning groups (its ``learning`` rows) first, then wall-clock groups (its
    ``wall_clock`` rows) on its clock."""
    clock = clock_of(ttt)
    for (env, algo), g in ttt[ttt["learning"].astype(bool)].groupby(["env", "algo"], sort=True):
        yield env, algo, pd.NA, str(algo), LEARNING_AXES, g
    wall = ttt[ttt["wall_clock"].astype(bool)] if "wall_clock" in ttt else ttt
    for (env, algo, n), g in wall.groupby(["env", "algo", "workers_n"], sort=True, dropna=False):
        yield env, algo, n, wall_label(algo, n), (clock,), g


def tradeoff_table(ttt: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Median time to each threshold per group, with bootstrap CIs: epochs and timesteps per learning
    group (env, algo), seconds of the table's clock per wall-clock group (env, algo, workers_n).

    :param ttt: :func:`time_to_threshold_table`.
    :returns: one row per (group, axis, fraction): ``env, group, algo, workers_n, axis, fraction,
        threshold, n_runs, n_reached, n_not_completed, median, lower, upper`` (``median`` in the axis'
        unit, ``inf`` = not reached by more than half of the runs; ``workers_n`` NA on learning axes).
    """
    rows = []
    for env, algo, n, group, axes, g in _ttt_groups(ttt):
        fractions = sorted(g["fraction"].unique())
        med, lo, hi = median_with_ci(_stack_times(g, fractions, axes), reps=reps, seed=seed, ci=ci)
        for i, f in enumerate(fractions):
            sub = g[g["fraction"] == f]
            for j, a in enumerate(axes):
                k = len(axes) * i + j
                rows.append({"env": env, "group": group, "algo": algo, "workers_n": n, "axis": a, "fraction": f,
                             "threshold": sub["threshold"].iloc[0], "n_runs": len(sub),
                             "n_reached": int(sub["reached"].sum()),
                             "n_not_completed": int((sub["status"] != "completed").sum()),
                             "median": med[k], "lower": lo[k], "upper": hi[k]})
    cols = ["env", "group", "algo", "workers_n", "axis", "fraction", "threshold", "n_runs", "n_reached",
            "n_not_completed", "median", "lower", "upper"]
    return _int64(pd.DataFrame(rows, columns=cols), "workers_n")


def ratio_table(ttt: pd.DataFrame, thr: pd.DataFrame, metrics: pd.DataFrame, reps: int = 2000, seed: int = 0,
                ci: float = 0.95) -> pd.DataFrame:
    """Salimans et al. 2017 Table 1: time to threshold of each algorithm over the reference's.

    ``ratio = median_seeds(time of group) / median_seeds(time of reference group)`` with a 95% CI from
    resampling both groups' runs independently, and ``meancurve_ratio``, the same ratio of
    :func:`mean_curve_time` (Salimans et al.'s own procedure: crossings of the seed-averaged curves).
    Timesteps and epochs compare learning groups (every algorithm other than the reference against the
    reference); seconds compare wall-clock groups, every (algorithm, ``workers.n``) against every
    ``workers.n`` of the reference.

    :returns: one row per (env, group, reference group, axis, fraction): ``env, group, algo, workers_n,
        reference_group, ref_workers_n, axis, fraction, threshold, fallback, n_runs, n_reached,
        ref_n_runs, ref_n_reached, median, ref_median, ratio, ratio_lower, ratio_upper, meancurve_ratio``.
        NaN ratio: the reference's median never reached the threshold; ``inf``: the group's median never did.
    """
    rows = []
    by_run = evaluated_by_run(metrics)
    groups = list(_ttt_groups(ttt))
    for env, algo, n, group, axes, g in groups:
        t_env = thr[thr["env"] == env]
        ref_algo, fallback = t_env["reference"].iloc[0], bool(t_env["fallback"].iloc[0])
        if algo == ref_algo:
            continue
        for _, _, ref_n, ref_group, _, rg in (x for x in groups if x[0] == env and x[1] == ref_algo and x[4] == axes):
            fractions = sorted(g["fraction"].unique())
            a, b = _stack_times(g, fractions, axes), _stack_times(rg, fractions, axes)
            r, lo, hi = ratio_with_ci(a, b, reps=reps, seed=seed, ci=ci)
            ma, mb = np.median(a, axis=0), np.median(b, axis=0)
            for i, f in enumerate(fractions):
                sub, rsub = g[g["fraction"] == f], rg[rg["fraction"] == f]
                thr_f = float(sub["threshold"].iloc[0])
                for j, ax in enumerate(axes):
                    k = len(axes) * i + j
                    ta = mean_curve_time(_curves(by_run, g, ax), thr_f)
                    tb = mean_curve_time(_curves(by_run, rg, ax), thr_f)
                    rows.append({"env": env, "group": group, "algo": algo, "workers_n": n,
                                 "reference_group": ref_group, "ref_workers_n": ref_n, "axis": ax, "fraction": f,
                                 "threshold": thr_f, "fallback": fallback, "n_runs": len(sub),
                                 "n_reached": int(sub["reached"].sum()), "ref_n_runs": len(rsub),
                                 "ref_n_reached": int(rsub["reached"].sum()), "median": ma[k], "ref_median": mb[k],
                                 "ratio": r[k], "ratio_lower": lo[k], "ratio_upper": hi[k],
                                 "meancurve_ratio": ratio_of_medians([ta], [tb])})
    cols = ["env", "group", "algo", "workers_n", "reference_group", "ref_workers_n", "axis", "fraction", "threshold",
            "fallback", "n_runs", "n_reached", "ref_n_runs", "ref_n_reached", "median", "ref_median", "ratio",
            "ratio_lower", "ratio_upper", "meancurve_ratio"]
    return _int64(pd.DataFrame(rows, columns=cols), "workers_n", "ref_workers_n")


def _curves(by_run: dict[str, pd.DataFrame], g: pd.DataFrame, axis: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(by_run[run][axis].to_numpy(), by_run[run]["eval_return"].to_numpy())
            for run in sorted(g["run"].unique()) if run in by_run]


def final_return_table(runs: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """IQM over seeds of each learning run's last evaluated ``eval_return`` per (env, algo), with a 95%
    CI (rliable).

    :returns: columns ``env, algo, n_runs, n_not_completed, iqm, lower, upper, mean``.
    """
    rows = []
    counted = learning_runs(runs)
    for (env, algo), g in counted[counted["final_eval_return"].notna()].groupby(["env", "algo"], sort=True):
        iqm, lo, hi = iqm_with_ci(g["final_eval_return"].to_numpy()[:, None], reps=reps, seed=seed, ci=ci)
        rows.append({"env": env, "algo": algo, "n_runs": len(g),
                     "n_not_completed": int((g["status"] != "completed").sum()),
                     "iqm": float(iqm[0]), "lower": float(lo[0]), "upper": float(hi[0]),
                     "mean": float(g["final_eval_return"].mean())})
    return pd.DataFrame(rows, columns=["env", "algo", "n_runs", "n_not_completed", "iqm", "lower", "upper", "mean"])


def eval_resolution_table(runs: pd.DataFrame) -> pd.DataFrame:
    """How finely each algorithm's times to threshold are resolved: per (env, algo), over its learning
    runs, the median of the runs' evaluation spacings (:func:`harness.report.load.eval_spacing`: the
    median training steps, and epochs, between consecutive evaluations of a run). A time to threshold is
    the first *evaluated* row at or above the threshold, so it may be late by up to one spacing.

    :returns: columns ``env, algo, n_runs, eval_every_timesteps, eval_every_timesteps_min,
        eval_every_timesteps_max, eval_every_epochs`` (the min and max over runs of the per-run spacing;
        NaN where no run was evaluated twice).
    """
    cols = ["env", "algo", "n_runs", "eval_every_timesteps", "eval_every_timesteps_min", "eval_every_timesteps_max",
            "eval_every_epochs"]
    counted = learning_runs(runs)
    if counted.empty or "eval_every_timesteps" not in counted:
        return pd.DataFrame(columns=cols)
    rows = []
    for (env, algo), g in counted.groupby(["env", "algo"], sort=True):
        steps, epochs = g["eval_every_timesteps"].dropna(), g["eval_every_epochs"].dropna()
        rows.append({"env": env, "algo": algo, "n_runs": len(g),
                     "eval_every_timesteps": float(steps.median()) if steps.size else math.nan,
                     "eval_every_timesteps_min": float(steps.min()) if steps.size else math.nan,
                     "eval_every_timesteps_max": float(steps.max()) if steps.size else math.nan,
                     "eval_every_epochs": float(epochs.median()) if epochs.size else math.nan})
    return pd.DataFrame(rows, columns=cols)


def success_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Goal reaching, for environments that report success (the deceptive mazes): per (env, algo), how
    many learning runs ended with ``eval_success > 0`` at their last evaluation, and how many ever had it.

    :returns: columns ``env, algo, n_runs, n_final_success, n_any_success, mean_final_success``; no row
        for an environment without ``eval_success``.
    """
    cols = ["env", "algo", "n_runs", "n_final_success", "n_any_success", "mean_final_success"]
    counted = learning_runs(runs)
    if "final_eval_success" not in counted:
        return pd.DataFrame(columns=cols)
    rows = []
    for (env, algo), g in counted[counted["final_eval_success"].notna()].groupby(["env", "algo"], sort=True):
        rows.append({"env": env, "algo": algo, "n_runs": len(g),
                     "n_final_success": int((g["final_eval_success"] > 0).sum()),
                     "n_any_success": int((g["best_eval_success"] > 0).sum()),
                     "mean_final_success": float(g["final_eval_success"].mean())})
    return pd.DataFrame(rows, columns=cols)


def scaling_table(runs: pd.DataFrame, ttt: pd.DataFrame, fraction: float = 0.5, reps: int = 2000, seed: int = 0,
                  ci: float = 0.95) -> pd.DataFrame:
    """Wall-clock cost against ``workers.n`` per (env, algo), with the ideal linear-scaling line, over
    the wall-clock runs (a seed run at several worker counts counts at each).

    ``time_per_epoch_s`` of a run is :func:`time_per_epoch` on the clock of ``ttt`` (``train_time_s``:
    evaluation excluded, or ``wall_time_s``); ``time_to_threshold_s`` its seconds on that clock to reach
    the ``fraction`` threshold (``inf`` if never). Both are medians over seeds with bootstrap CIs;
    ``ideal_*`` is :func:`ideal_scaling` of the medians (from the smallest ``workers.n``).

    :returns: one row per (env, algo, workers_n): ``env, algo, workers_n, n_runs, fraction,
        time_per_epoch_s(_lower, _upper), ideal_time_per_epoch_s, time_to_threshold_s(_lower, _upper),
        n_reached, ideal_time_to_threshold_s``.
    """
    rows = []
    clock = clock_of(ttt)
    runs = wall_clock_runs(runs)
    runs = runs[runs["workers_n"].notna()]
    wall = ttt[ttt["wall_clock"].astype(bool)] if "wall_clock" in ttt else ttt
    for (env, algo), g in runs.groupby(["env", "algo"], sort=True):
        for n, gn in g.groupby("workers_n", sort=True):
            tpe = np.array([time_per_epoch(e, w) for e, w in zip(gn["epochs"], gn[clock])])
            sub = wall[(wall["env"] == env) & (wall["algo"] == algo) & (wall["workers_n"] == n)
                       & np.isclose(wall["fraction"], fraction)]
            m, lo, hi = median_with_ci(tpe, reps=reps, seed=seed, ci=ci)
            tm, tlo, thi = median_with_ci(sub[clock].to_numpy(), reps=reps, seed=seed, ci=ci)
            rows.append({"env": env, "algo": algo, "workers_n": int(n), "n_runs": len(gn), "fraction": fraction,
                         "time_per_epoch_s": m, "time_per_epoch_s_lower": lo, "time_per_epoch_s_upper": hi,
                         "time_to_threshold_s": tm, "time_to_threshold_s_lower": tlo,
                         "time_to_threshold_s_upper": thi, "n_reached": int(sub["reached"].sum())})
    cols = ["env", "algo", "workers_n", "n_runs", "fraction", "time_per_epoch_s", "time_per_epoch_s_lower",
            "time_per_epoch_s_upper", "ideal_time_per_epoch_s", "time_to_threshold_s", "time_to_threshold_s_lower",
            "time_to_threshold_s_upper", "n_reached", "ideal_time_to_threshold_s"]
    out = pd.DataFrame(rows, columns=[c for c in cols if not c.startswith("ideal")])
    out["ideal_time_per_epoch_s"] = np.nan
    out["ideal_time_to_threshold_s"] = np.nan
    for _, idx in out.groupby(["env", "algo"]).groups.items():
        part = out.loc[idx]
        out.loc[idx, "ideal_time_per_epoch_s"] = ideal_scaling(part["workers_n"], part["time_per_epoch_s"])
        with np.errstate(invalid="ignore"):
            out.loc[idx, "ideal_time_to_threshold_s"] = ideal_scaling(part["workers_n"], part["time_to_threshold_s"])
    return out[cols]
