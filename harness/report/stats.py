"""Statistics over runs: the interquartile mean with stratified-bootstrap CIs, medians and ratios of
medians with percentile-bootstrap CIs.

* **IQM and 95% CIs** follow Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
  Statistical Precipice" (NeurIPS; the ``rliable`` library): the interquartile mean (25% trimmed mean,
  :func:`rliable.metrics.aggregate_iqm`) over runs, with percentile confidence intervals from
  :func:`rliable.library.get_interval_estimates` (stratified bootstrap over runs; one task here).
* **Across seeds** times to threshold are summarised by the **median** (``inf`` counts as "later than
  everything", so the median is finite exactly when more than half of the runs reached; the
  scaling figure of Salimans et al. 2017 also reports median times), with percentile bootstrap CIs.
* **Ratios** of two groups are ratios of their medians (Table 1 of Salimans et al. 2017), with CIs from
  resampling each group apart.

Every resampling is seeded (``seed``), so a report's numbers are reproducible. Pure functions on arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

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
    return x[cut : x.shape[0] - cut].mean(axis=0)


def iqm(scores: np.ndarray) -> np.ndarray:
    """IQM across runs of ``(runs, points)`` scores, per column -> ``(points,)``: the point estimate of
    :func:`iqm_with_ci`, without its resampling."""
    return _iqm_over_runs(np.asarray(scores, dtype=np.float64)[:, None, :])


def iqm_with_ci(
    scores: np.ndarray, reps: int = 2000, seed: int = 0, ci: float = 0.95
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

    def iqm_of_resamples(resampled):  # (chunk, runs, 1, points) -> (chunk, points): _iqm_over_runs of each
        x = np.sort(resampled[:, :, 0, :], axis=1)
        cut = int(0.25 * x.shape[1])
        return x[:, cut : x.shape[1] - cut].mean(axis=1)

    replicates = _bootstrap_replicates(iqm_of_resamples, [scores[:, None, :]], reps, seed)
    # arch's percentile interval (rliable's method="percentile"): np.percentile at 100 alpha, 100 (1 - alpha)
    alpha = (1.0 - ci) / 2.0
    lower, upper = np.percentile(replicates, list(np.array([alpha, 1.0 - alpha]) * 100), axis=0)
    return _iqm_over_runs(scores[:, None, :]), lower, upper


#: How many resampled values (over all arrays) one chunk of bootstrap resamples holds at most: about 16 MB of
#: float64 and as much of indices. Resamples are drawn, reduced to their statistic and dropped a chunk of
#: repetitions at a time, so a group of thousands of runs never holds ``reps`` copies of itself
#: (2,000 resamples of 3,000 runs x 100 grid points are 4.8 GB); the numbers do not depend on it.
RESAMPLE_CHUNK_VALUES = 1 << 21


def _draw(rng: np.random.RandomState, runs: int, shape) -> np.ndarray:
    """``rng.choice(runs, shape)`` (rliable's draw) as the same numbers, faster: ``choice`` is ``randint(0, runs)``,
    and below 2**31 runs the 32-bit draw is the same stream (``tests/test_report_scale.py``) with half the memory."""
    return rng.randint(0, runs, shape, dtype=np.int32) if runs < 2**31 else rng.choice(runs, shape, replace=True)


def _stratified_resample_chunks(arrays: Sequence[np.ndarray], reps: int, seed: int):
    """rliable's stratified bootstrap resamples, a chunk of repetitions at a time: yields, per chunk, one
    ``(chunk, *a.shape)`` array per array ``a``, the chunks in order and together ``reps`` repetitions
    (each chunk at most :data:`RESAMPLE_CHUNK_VALUES` values, or one repetition).

    Each array is ``(runs, ...)``; its runs are resampled separately in every other position ("tasks" and
    grid points in rliable's terms), and several arrays independently of each other. The indices are
    drawn exactly as :class:`rliable.library.StratifiedBootstrap` (one array) and
    :class:`rliable.library.StratifiedIndependentBootstrap` (several) draw them: per repetition, per array
    in order, ``np.random.choice(runs, a.shape)`` from numpy's global generator seeded with ``seed``
    (here a ``RandomState(seed)`` of its own, which draws the same numbers and leaves the global one alone).
    So the replicates, and every CI, are rliable's to the last bit (a test compares them), without the
    per-repetition overhead of arch's bootstrap loop (which made the report spend most of its time there).
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    per_rep = sum(a.size for a in arrays)
    step = max(1, RESAMPLE_CHUNK_VALUES // max(per_rep, 1))
    rng = np.random.RandomState(seed)
    one_bound = len({a.shape[0] for a in arrays}) == 1
    strata = [[np.arange(n).reshape((n,) + (1,) * (a.ndim - 2 - j)) for j, n in enumerate(a.shape[1:])] for a in arrays]
    for start in range(0, reps, step):
        chunk = min(step, reps - start)
        if one_bound:
            # one bound: the per-repetition draws are consecutive numbers of one stream, so one call draws
            # a chunk's (numpy's legacy generator fills an array element by element, in order, and a
            # bounded draw below 2**32 uses no buffer: consecutive calls continue the same stream)
            flat = _draw(rng, arrays[0].shape[0], (chunk, per_rep))
            parts = np.split(flat, np.cumsum([a.size for a in arrays])[:-1], axis=1)
            idx = [p.reshape((chunk, *a.shape)) for p, a in zip(parts, arrays)]
        else:
            idx = [np.empty((chunk, *a.shape), dtype=np.intp) for a in arrays]
            for r in range(chunk):
                for i, a in zip(idx, arrays):
                    i[r] = _draw(rng, a.shape[0], a.shape)
        yield [a[(i, *s)] for a, i, s in zip(arrays, idx, strata)]


def _bootstrap_replicates(stat, arrays: Sequence[np.ndarray], reps: int, seed: int) -> np.ndarray:
    """``(reps, k)`` values of ``stat`` on rliable's stratified bootstrap resamples of the runs
    (:func:`_stratified_resample_chunks`: computed a chunk of repetitions at a time, the resamples dropped
    after each).

    Each array is ``(runs, k)``: ``k`` statistics ("tasks" in rliable's terms) whose runs are resampled
    separately, which gives the marginal CI of each column. One array:
    :class:`rliable.library.StratifiedBootstrap`; several (e.g. ES and TRPO runs for a ratio): each
    array resampled independently, :class:`rliable.library.StratifiedIndependentBootstrap`.

    :param stat: a function of the resampled arrays, each ``(chunk, runs, k)``, over their runs (axis 1),
        returning ``(chunk, k)``; each repetition's value must not depend on the others in its chunk.
    """
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for resampled in _stratified_resample_chunks(arrays, reps, seed):
            out.append(np.asarray(stat(*resampled), dtype=np.float64))
    return np.concatenate(out)


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
