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

import math
import weakref
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.report.curves import (
    CLOCK_AXES,
    DEFAULT_CLOCK,
    DEFAULT_FRACTIONS,
    LEARNING_AXES,
    aggregate_curves,
    axes_of,
    ideal_scaling,
    mean_curve_time,
    threshold_rule,
    thresholds,
    time_per_epoch,
)
from harness.report.stats import iqm_with_ci, median_with_ci, ratio_of_medians, ratio_with_ci


def clock_of(frame: pd.DataFrame) -> str:
    """The wall-clock column a :func:`time_to_threshold_table` (or any frame with one of
    :data:`CLOCK_AXES`) was computed on."""
    found = [c for c in CLOCK_AXES if c in frame.columns]
    if len(found) != 1:
        raise ValueError(f"expected exactly one of {CLOCK_AXES} among the columns, got {found}")
    return found[0]


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


def machines_of(runs: pd.DataFrame, env: str, algo: str | None = None, workers_n=None) -> list[str]:
    """The machines (``machine`` column, :func:`harness.report.load.machine_share`) of the runs counted in
    the wall-clock statistics of ``env`` (and ``algo``, and ``workers_n`` when given), sorted; ``[]``
    without that column. Wall-clock numbers of two groups compare only if both lists are the same one
    machine."""
    if "machine" not in runs:
        return []
    w = wall_clock_runs(runs)
    w = w[w["env"] == env]
    if algo is not None:
        w = w[w["algo"] == algo]
    if workers_n is not None and not pd.isna(workers_n):
        w = w[w["workers_n"] == workers_n]
    return sorted(set(w["machine"].dropna()))


def machines_differ(runs: pd.DataFrame, env: str, a: tuple, b: tuple) -> bool:
    """Whether the wall-clock runs of groups ``a`` and ``b`` (each ``(algo, workers_n)``) on ``env`` ran on
    more than one machine between them (a ratio of their seconds then compares machines too)."""
    return len(set(machines_of(runs, env, *a)) | set(machines_of(runs, env, *b))) > 1


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
    evaluation are absent (use ``.get(run, empty)``). The frames are slices of one sorted copy: read them,
    do not modify them.

    One sort of every evaluated row (run, then epoch, stable), cut where the run changes: a sweep's thousands
    of runs, not a groupby and a sort per run. The last answer is kept for the same ``metrics`` object, which
    the report asks for several times."""
    key = id(metrics)
    if _BY_RUN_CACHE and _BY_RUN_CACHE[0] == key and _BY_RUN_CACHE[1]() is metrics:
        return _BY_RUN_CACHE[2]
    rows = metrics[metrics["eval_return"].notna()]
    codes, names = pd.factorize(rows["run"], sort=False)
    order = np.lexsort((rows["epoch"].to_numpy(), codes))
    rows, codes = rows.iloc[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.empty(0, dtype=int)
    ends = np.r_[starts[1:], len(codes)]
    by_run = {names[codes[a]]: rows.iloc[a:b] for a, b in zip(starts, ends)}
    _BY_RUN_CACHE[:] = [key, weakref.ref(metrics), by_run]
    return by_run


_BY_RUN_CACHE: list = []  # [id(metrics), weakref to it, evaluated_by_run's answer]


def _int64(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        df[c] = df[c].astype("Int64")
    return df


def curve_table(
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    points: int = 100,
    reps: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    clock: str = DEFAULT_CLOCK,
) -> pd.DataFrame:
    """IQM learning curves with CIs of every group (:func:`statistic_groups`): learning groups against
    epochs and timesteps, wall-clock groups against seconds of ``clock``.

    :returns: long DataFrame, columns ``env, group, algo, workers_n, axis, x, iqm, lower, upper, n_runs,
        band_exact`` (``x`` in the axis' unit, returns in return units; ``workers_n`` NA on the learning axes;
        ``band_exact`` False where a large group's CI is interpolated, :func:`~harness.report.curves.aggregate_curves`); a group
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
    cols = ["env", "group", "algo", "workers_n", "axis", "x", "iqm", "lower", "upper", "n_runs", "band_exact"]
    return _int64(pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols), "workers_n")


def threshold_table(
    runs: pd.DataFrame, fractions: Sequence[float] = DEFAULT_FRACTIONS, mode: str = "final", reference: str = "trpo"
) -> pd.DataFrame:
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
        thr = (
            thresholds(ref["final_eval_return"], fractions, used, ref["first_eval_return"])
            if used
            else np.full(len(fractions), np.nan)
        )
        for f, t in zip(fractions, thr):
            rows.append(
                {
                    "env": env,
                    "reference": ref["algo"].iloc[0],
                    "fallback": fallback,
                    "mode": used or "none",
                    "fraction": float(f),
                    "threshold": float(t),
                    "reference_final": final,
                    "reference_initial": initial,
                    "n_reference_runs": len(ref),
                    "note": note,
                }
            )
    cols = [
        "env",
        "reference",
        "fallback",
        "mode",
        "fraction",
        "threshold",
        "reference_final",
        "reference_initial",
        "n_reference_runs",
        "note",
    ]
    return pd.DataFrame(rows, columns=cols)


def time_to_threshold_table(
    metrics: pd.DataFrame, runs: pd.DataFrame, thr: pd.DataFrame, clock: str = DEFAULT_CLOCK
) -> pd.DataFrame:
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
    of_env = {
        env: thr.loc[(thr["env"] == env) & thr["threshold"].notna(), ["fraction", "threshold"]].to_numpy(float)
        for env in counted["env"].unique()
    }  # once per env, not once per run
    spacing = counted["eval_every_timesteps"] if "eval_every_timesteps" in counted else [math.nan] * len(counted)
    for r, every in zip(counted.itertuples(index=False), spacing):
        evaluated = by_run.get(r.run, empty)
        returns = evaluated["eval_return"].to_numpy()
        at = {a: evaluated[a].to_numpy(dtype=np.float64) for a in axes}
        for fraction, threshold in of_env[r.env]:
            hit = np.flatnonzero(returns >= threshold)  # time_to_threshold, on arrays
            times = {a: float(at[a][hit[0]]) if hit.size else math.inf for a in axes}
            rows.append(
                {
                    "env": r.env,
                    "algo": r.algo,
                    "workers_n": r.workers_n,
                    "seed": r.seed,
                    "status": r.status,
                    "run": r.run,
                    "learning": r.run in learning,
                    "wall_clock": r.run in wall,
                    "fraction": fraction,
                    "threshold": threshold,
                    "reached": bool(hit.size),
                    **times,
                    "eval_every_timesteps": every,
                }
            )
    cols = [
        "env",
        "algo",
        "workers_n",
        "seed",
        "status",
        "run",
        "learning",
        "wall_clock",
        "fraction",
        "threshold",
        "reached",
        *axes,
        "eval_every_timesteps",
    ]
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
                rows.append(
                    {
                        "env": env,
                        "group": group,
                        "algo": algo,
                        "workers_n": n,
                        "axis": a,
                        "fraction": f,
                        "threshold": sub["threshold"].iloc[0],
                        "n_runs": len(sub),
                        "n_reached": int(sub["reached"].sum()),
                        "n_not_completed": int((sub["status"] != "completed").sum()),
                        "median": med[k],
                        "lower": lo[k],
                        "upper": hi[k],
                    }
                )
    cols = [
        "env",
        "group",
        "algo",
        "workers_n",
        "axis",
        "fraction",
        "threshold",
        "n_runs",
        "n_reached",
        "n_not_completed",
        "median",
        "lower",
        "upper",
    ]
    return _int64(pd.DataFrame(rows, columns=cols), "workers_n")


def ratio_table(
    ttt: pd.DataFrame, thr: pd.DataFrame, metrics: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95
) -> pd.DataFrame:
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
                    rows.append(
                        {
                            "env": env,
                            "group": group,
                            "algo": algo,
                            "workers_n": n,
                            "reference_group": ref_group,
                            "ref_workers_n": ref_n,
                            "axis": ax,
                            "fraction": f,
                            "threshold": thr_f,
                            "fallback": fallback,
                            "n_runs": len(sub),
                            "n_reached": int(sub["reached"].sum()),
                            "ref_n_runs": len(rsub),
                            "ref_n_reached": int(rsub["reached"].sum()),
                            "median": ma[k],
                            "ref_median": mb[k],
                            "ratio": r[k],
                            "ratio_lower": lo[k],
                            "ratio_upper": hi[k],
                            "meancurve_ratio": ratio_of_medians([ta], [tb]),
                        }
                    )
    cols = [
        "env",
        "group",
        "algo",
        "workers_n",
        "reference_group",
        "ref_workers_n",
        "axis",
        "fraction",
        "threshold",
        "fallback",
        "n_runs",
        "n_reached",
        "ref_n_runs",
        "ref_n_reached",
        "median",
        "ref_median",
        "ratio",
        "ratio_lower",
        "ratio_upper",
        "meancurve_ratio",
    ]
    return _int64(pd.DataFrame(rows, columns=cols), "workers_n", "ref_workers_n")


def _curves(by_run: dict[str, pd.DataFrame], g: pd.DataFrame, axis: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (by_run[run][axis].to_numpy(), by_run[run]["eval_return"].to_numpy())
        for run in sorted(g["run"].unique())
        if run in by_run
    ]


def final_return_table(runs: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """IQM over seeds of each learning run's last evaluated ``eval_return`` per (env, algo), with a 95%
    CI (rliable).

    :returns: columns ``env, algo, n_runs, n_not_completed, iqm, lower, upper, mean``.
    """
    rows = []
    counted = learning_runs(runs)
    for (env, algo), g in counted[counted["final_eval_return"].notna()].groupby(["env", "algo"], sort=True):
        iqm, lo, hi = iqm_with_ci(g["final_eval_return"].to_numpy()[:, None], reps=reps, seed=seed, ci=ci)
        rows.append(
            {
                "env": env,
                "algo": algo,
                "n_runs": len(g),
                "n_not_completed": int((g["status"] != "completed").sum()),
                "iqm": float(iqm[0]),
                "lower": float(lo[0]),
                "upper": float(hi[0]),
                "mean": float(g["final_eval_return"].mean()),
            }
        )
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
    cols = [
        "env",
        "algo",
        "n_runs",
        "eval_every_timesteps",
        "eval_every_timesteps_min",
        "eval_every_timesteps_max",
        "eval_every_epochs",
    ]
    counted = learning_runs(runs)
    if counted.empty or "eval_every_timesteps" not in counted:
        return pd.DataFrame(columns=cols)
    rows = []
    for (env, algo), g in counted.groupby(["env", "algo"], sort=True):
        steps, epochs = g["eval_every_timesteps"].dropna(), g["eval_every_epochs"].dropna()
        rows.append(
            {
                "env": env,
                "algo": algo,
                "n_runs": len(g),
                "eval_every_timesteps": float(steps.median()) if steps.size else math.nan,
                "eval_every_timesteps_min": float(steps.min()) if steps.size else math.nan,
                "eval_every_timesteps_max": float(steps.max()) if steps.size else math.nan,
                "eval_every_epochs": float(epochs.median()) if epochs.size else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def generation_cost_table(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """What a generation cost, from the ES family's :data:`harness.tracking.EPOCH_COST_COLUMNS`, per (env, algo,
    ``workers.n``, backend, engine) over its wall-clock runs (busy ones left out): of each run's training
    epochs, the median seconds in the workers' rollouts (``rollout_time_s``), the median seconds outside them
    (the coordinator's serial part: the epoch's increase of ``train_time_s`` minus its rollouts), the
    coordinator's share of the run's training time, and the median bytes sent to and received from the workers;
    each the median over the group's runs. The terms a model of wall time against the number of workers needs
    (issue 32). Runs without the columns (TRPO, runs from before them) are left out.

    :returns: columns ``env, algo, workers_n, backend, engine, n_runs, generations, rollout_s, coordinator_s,
        coordinator_share, bytes_sent, bytes_received`` (seconds and bytes per generation; ``generations``
        summed over the runs).
    """
    cols = [
        "env",
        "algo",
        "workers_n",
        "backend",
        "engine",
        "n_runs",
        "generations",
        "rollout_s",
        "coordinator_s",
        "coordinator_share",
        "bytes_sent",
        "bytes_received",
    ]
    if "rollout_time_s" not in metrics:
        return pd.DataFrame(columns=cols)
    per_run = []
    counted = wall_clock_runs(runs)
    rows_of = dict(tuple(metrics[metrics["run"].isin(counted["run"])].groupby("run", sort=False)))  # one pass
    for r in counted.itertuples(index=False):
        if r.run not in rows_of:
            continue
        m = rows_of[r.run].sort_values("epoch")
        train = m["train_time_s"].to_numpy(dtype=np.float64)
        spent = np.diff(train, prepend=0.0)  # each epoch's training seconds (the step-0 row has none)
        trained = m["rollout_time_s"].notna().to_numpy()
        if not trained.any():
            continue
        rollout = m["rollout_time_s"].to_numpy(dtype=np.float64)[trained]
        coordinator = spent[trained] - rollout
        per_run.append(
            {
                "env": r.env,
                "algo": r.algo,
                "workers_n": r.workers_n,
                "backend": r.workers_backend,
                "engine": getattr(r, "engine", None),
                "generations": int(trained.sum()),
                "rollout_s": float(np.median(rollout)),
                "coordinator_s": float(np.median(coordinator)),
                "coordinator_share": float(coordinator.sum() / spent[trained].sum()),
                "bytes_sent": float(np.median(m["bytes_sent"].to_numpy(dtype=np.float64)[trained])),
                "bytes_received": float(np.median(m["bytes_received"].to_numpy(dtype=np.float64)[trained])),
            }
        )
    if not per_run:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(per_run)
    keys = ["env", "algo", "workers_n", "backend", "engine"]
    out = frame.groupby(keys, sort=True, dropna=False).agg(
        n_runs=("generations", "size"),
        generations=("generations", "sum"),
        **{
            c: (c, "median")
            for c in ("rollout_s", "coordinator_s", "coordinator_share", "bytes_sent", "bytes_received")
        },
    )
    return _int64(out.reset_index()[cols], "workers_n")


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
        rows.append(
            {
                "env": env,
                "algo": algo,
                "n_runs": len(g),
                "n_final_success": int((g["final_eval_success"] > 0).sum()),
                "n_any_success": int((g["best_eval_success"] > 0).sum()),
                "mean_final_success": float(g["final_eval_success"].mean()),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def scaling_table(
    runs: pd.DataFrame, ttt: pd.DataFrame, fraction: float = 0.5, reps: int = 2000, seed: int = 0, ci: float = 0.95
) -> pd.DataFrame:
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
            sub = wall[
                (wall["env"] == env)
                & (wall["algo"] == algo)
                & (wall["workers_n"] == n)
                & np.isclose(wall["fraction"], fraction)
            ]
            m, lo, hi = median_with_ci(tpe, reps=reps, seed=seed, ci=ci)
            tm, tlo, thi = median_with_ci(sub[clock].to_numpy(), reps=reps, seed=seed, ci=ci)
            rows.append(
                {
                    "env": env,
                    "algo": algo,
                    "workers_n": int(n),
                    "n_runs": len(gn),
                    "fraction": fraction,
                    "time_per_epoch_s": m,
                    "time_per_epoch_s_lower": lo,
                    "time_per_epoch_s_upper": hi,
                    "time_to_threshold_s": tm,
                    "time_to_threshold_s_lower": tlo,
                    "time_to_threshold_s_upper": thi,
                    "n_reached": int(sub["reached"].sum()),
                }
            )
    cols = [
        "env",
        "algo",
        "workers_n",
        "n_runs",
        "fraction",
        "time_per_epoch_s",
        "time_per_epoch_s_lower",
        "time_per_epoch_s_upper",
        "ideal_time_per_epoch_s",
        "time_to_threshold_s",
        "time_to_threshold_s_lower",
        "time_to_threshold_s_upper",
        "n_reached",
        "ideal_time_to_threshold_s",
    ]
    out = pd.DataFrame(rows, columns=[c for c in cols if not c.startswith("ideal")])
    out["ideal_time_per_epoch_s"] = np.nan
    out["ideal_time_to_threshold_s"] = np.nan
    for _, idx in out.groupby(["env", "algo"]).groups.items():
        part = out.loc[idx]
        out.loc[idx, "ideal_time_per_epoch_s"] = ideal_scaling(part["workers_n"], part["time_per_epoch_s"])
        with np.errstate(invalid="ignore"):
            out.loc[idx, "ideal_time_to_threshold_s"] = ideal_scaling(part["workers_n"], part["time_to_threshold_s"])
    return out[cols]
