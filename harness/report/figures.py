"""Matplotlib figures (Agg backend), each saved as PNG and PDF.

* :func:`plot_curves`: evaluation return against epochs, environment steps (one curve per algorithm)
  and wall-clock seconds (one per algorithm and ``workers.n``); IQM over seeds with a 95%
  stratified-bootstrap CI band (Agarwal et al. 2021, rliable), every counted run drawn faintly
  underneath over its whole length.
* :func:`plot_tradeoff`: per algorithm and ``workers.n``, epochs against wall-clock seconds needed to
  reach each return threshold (median over seeds, 95% bootstrap CIs as error bars, runs as faint dots).
* :func:`plot_scaling`: seconds per epoch and seconds to a threshold against ``workers.n``, with the
  ideal linear-scaling line ``t(n_min) * n_min / n``.

Every figure colours an algorithm with :func:`algo_color` (the same colour in every report) and tells
worker counts apart by line style (:func:`worker_styles`).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.report.aggregate import AXES, evaluated_by_run, statistic_groups, wall_clock_runs  # noqa: E402

AXIS_LABELS = {"epoch": "epoch (policy updates)", "timesteps": "environment steps",
               "wall_time_s": "wall-clock time (s)"}
FRACTION_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


# One colour per algorithm in every figure of every report: the tab10 colours for the known algorithms
# (the novelty family in shades of one hue would be prettier but harder to tell apart); any other name
# gets one of the remaining tab20 colours, picked by a hash of the name (stable across processes and
# reports, unlike Python's hash(); two unknown names can share a colour).
ALGO_COLORS = {"es": "#1f77b4", "vo": "#2ca02c", "ns_es": "#9467bd", "nsr_es": "#8c564b",
               "nsra_es": "#e377c2", "trpo": "#d62728"}
FALLBACK_COLORS = ("#ff7f0e", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                   "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
WORKER_LINESTYLES = ("-", "--", ":", "-.")


def algo_color(algo: str) -> str:
    """The colour of algorithm ``algo`` (``algo.name``): :data:`ALGO_COLORS`, else a
    :data:`FALLBACK_COLORS` entry chosen by the MD5 of the name."""
    if algo in ALGO_COLORS:
        return ALGO_COLORS[algo]
    digest = hashlib.md5(str(algo).encode()).digest()
    return FALLBACK_COLORS[int.from_bytes(digest[:4], "big") % len(FALLBACK_COLORS)]


def worker_styles(workers) -> dict:
    """``workers.n`` value -> line style, by rank among the values given (smallest: solid)."""
    ns = sorted({int(n) for n in workers if not pd.isna(n)})
    return {n: WORKER_LINESTYLES[i % len(WORKER_LINESTYLES)] for i, n in enumerate(ns)}


def file_stem(text: str, max_length: int = 80) -> str:
    """``text`` as a portable file name: runs of characters other than letters, digits, ``_.=-``
    become one ``_`` (``"HalfCheetah[max_episode_steps=100]"`` -> ``"HalfCheetah_max_episode_steps=100"``);
    a longer name is cut to ``max_length`` characters ending in a hash of the whole text, so
    names stay distinct."""
    import hashlib

    stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")
    if len(stem) > max_length:
        stem = f"{stem[:max_length - 9]}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return stem


def save(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf`` into ``out_dir`` (``stem`` through :func:`file_stem`),
    close the figure; the two paths."""
    stem = file_stem(stem)
    paths = [Path(out_dir) / f"{stem}.png", Path(out_dir) / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _run_count_label(group: str, g: pd.DataFrame) -> str:
    n = len(g)
    bad = g["status"][g["status"] != "completed"].value_counts()
    extra = ", ".join(f"{c} {s}" for s, c in bad.items())
    return f"{group} ({n} run{'s' if n != 1 else ''}{', ' + extra if extra else ''})"


def _style(algo: str, workers_n, styles: dict) -> dict:
    """Colour of the algorithm; line style of the worker count (solid for a learning group)."""
    return {"color": algo_color(algo), "ls": "-" if pd.isna(workers_n) else styles.get(int(workers_n), "-")}


def plot_curves(env: str, metrics: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame,
                out_dir: Path) -> list[Path]:
    """Learning curves of one environment: three panels (epochs, steps, seconds).

    The epochs and steps panels draw one curve per algorithm (its learning runs, one per seed, whatever
    their ``workers.n``); the seconds panel one per (algorithm, ``workers.n``), the worker count in the
    line style. Colours: :func:`algo_color`. A group whose runs share a single evaluated position (e.g.
    one evaluation each) is drawn as a marker with its CI as an error bar; so is a run with one evaluation.

    :param runs: runs of this environment (:class:`~harness.report.load.Loaded` ``runs``).
    :param curves: :func:`~harness.report.aggregate.curve_table` rows of this environment.
    :returns: the PNG and PDF paths.
    """
    by_run = evaluated_by_run(metrics[metrics["run"].isin(runs["run"])])
    styles = worker_styles(wall_clock_runs(runs)["workers_n"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    env_id = runs["env_id"].iloc[0] if not runs.empty else env
    for axis, ax in zip(AXES, axes):
        for _, algo, n, group, group_axes, g in statistic_groups(runs):
            if axis not in group_axes:
                continue
            style = _style(algo, n, styles)
            for run in g["run"]:
                e = by_run.get(run)
                if e is not None:
                    ax.plot(e[axis].to_numpy(), e["eval_return"].to_numpy(), alpha=0.25, lw=0.8,
                            marker="o" if len(e) == 1 else None, ms=3, **style)
            c = curves[(curves["group"] == group) & (curves["axis"] == axis)]
            label = _run_count_label(group, g)
            if c.empty:
                ax.plot([], [], alpha=0.4, label=f"{label}: no common range", **style)
            elif len(c) == 1:
                x, y, lo, hi = (c[k].to_numpy(dtype=float) for k in ("x", "iqm", "lower", "upper"))
                ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", ms=6, capsize=3, lw=1.5, label=label, **style)
            else:
                ax.plot(c["x"].to_numpy(), c["iqm"].to_numpy(), lw=2, label=label, **style)
                ax.fill_between(c["x"].to_numpy(dtype=float), c["lower"].to_numpy(dtype=float),
                                c["upper"].to_numpy(dtype=float), color=style["color"], alpha=0.2, lw=0)
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.grid(alpha=0.3)
        if axis == "timesteps":
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0].set_ylabel("evaluation return (mean over eval episodes)")
    for ax in (axes[0], axes[2]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{env_id}: evaluation return, IQM over seeds with 95% bootstrap CI (thin: single runs; IQM "
                 f"ends where the shortest run ends)\nepochs and steps: one curve per algorithm, each seed once; "
                 f"wall-clock: one per algorithm and workers.n", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"curves_{env}")


def plot_tradeoff(env: str, tradeoff: pd.DataFrame, ttt: pd.DataFrame, thr: pd.DataFrame,
                  out_dir: Path) -> list[Path]:
    """Epochs against wall-clock seconds to reach each threshold, log-log: one point per (algorithm,
    ``workers.n``) and fraction at (median seconds of that worker count, median epochs of the
    algorithm's learning runs), colour per algorithm (:func:`algo_color`), line style per worker count,
    one marker per fraction. Medians not reached are listed in a note instead of plotted; an infinite
    CI bound is drawn up to the plot edge.

    :param tradeoff: :func:`~harness.report.aggregate.tradeoff_table` rows of this environment.
    :param ttt: :func:`~harness.report.aggregate.time_to_threshold_table` rows of this environment.
    :param thr: :func:`~harness.report.aggregate.threshold_table` rows of this environment.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    fractions = sorted(thr["fraction"].unique())
    marker = {f: FRACTION_MARKERS[i % len(FRACTION_MARKERS)] for i, f in enumerate(fractions)}
    wall = tradeoff[tradeoff["axis"] == "wall_time_s"]
    epochs = {(r.algo, r.fraction): r for r in tradeoff[tradeoff["axis"] == "epoch"].itertuples()}
    styles = worker_styles(wall["workers_n"])

    def finite(*arrays):
        v = np.concatenate([np.asarray(a, dtype=float) for a in arrays])
        return v[np.isfinite(v)]

    xs = finite(ttt["wall_time_s"], wall["median"], wall["lower"], wall["upper"])
    ep_rows = tradeoff[tradeoff["axis"] == "epoch"]
    ys = finite(ttt["epoch"], ep_rows["median"], ep_rows["lower"], ep_rows["upper"])
    not_reached, handles = [], []
    if xs.size and ys.size:
        xmin, xmax = xs.min() / 1.5, xs.max() * 1.5
        ymin, ymax = max(ys.min() / 1.5, 0.5), ys.max() * 1.5
        for algo, g in ttt[ttt["reached"]].groupby("algo"):
            ax.scatter(g["wall_time_s"].to_numpy(), g["epoch"].to_numpy(), color=algo_color(algo), alpha=0.25,
                       s=12, lw=0)
        for (algo, n), g in wall.groupby(["algo", "workers_n"], sort=True, dropna=False):
            style, group = _style(algo, n, styles), g["group"].iloc[0]
            handles.append(plt.Line2D([], [], lw=2, label=group, **style))
            pts = []
            for row in g.sort_values("fraction").itertuples():
                ep = epochs.get((algo, row.fraction))
                if ep is None or not (math.isfinite(row.median) and math.isfinite(ep.median)):
                    reached = f"{row.n_reached}/{row.n_runs}" + (
                        f", epochs: {ep.n_reached}/{ep.n_runs}" if ep and (ep.n_reached, ep.n_runs) != (row.n_reached,
                                                                                                 row.n_runs) else "")
                    not_reached.append(f"{group} {row.fraction:.0%} ({reached} reached)")
                    continue
                x, y = row.median, ep.median
                xhi = min(row.upper, xmax) if math.isfinite(row.upper) else xmax
                yhi = min(ep.upper, ymax) if math.isfinite(ep.upper) else ymax
                ax.errorbar([x], [y], xerr=[[x - row.lower], [xhi - x]], yerr=[[y - ep.lower], [yhi - y]],
                            color=style["color"], marker=marker[row.fraction], ms=7, capsize=3, lw=1)
                pts.append((x, y))
            if len(pts) > 1:
                ax.plot(*zip(*pts), lw=1, alpha=0.6, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
    else:
        not_reached.append("no run reached any threshold")
    ax.set_xlabel("wall-clock time to reach the threshold (s), per workers.n")
    ax.set_ylabel("epochs to reach the threshold, per algorithm")
    ax.grid(alpha=0.3, which="both")
    handles += [plt.Line2D([], [], color="gray", marker=marker[f], ls="", label=f"{f:.0%}: return >= {t:.4g}")
                for f, t in zip(thr["fraction"], thr["threshold"])]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ref = thr["reference"].iloc[0]
    what = "learning progress" if thr["mode"].iloc[0] == "progress" else "final return"
    note = (f"thresholds: fractions of {ref}'s {what}"
            + (f" ({ref} is the best algorithm here: the reference algorithm has no runs)"
               if thr["fallback"].iloc[0] else ""))
    if "note" in thr and thr["note"].iloc[0]:
        note += "\n" + thr["note"].iloc[0]
    if not_reached:
        note += "\nmedian not reached: " + "; ".join(not_reached)
    ax.set_title(f"{env}: epochs vs wall-clock time to reach a return threshold\n"
                 f"median over seeds, 95% bootstrap CI; faint dots: single runs", fontsize=10)
    fig.text(0.01, -0.02, note, fontsize=8, va="top", wrap=True)
    fig.tight_layout()
    return save(fig, out_dir, f"tradeoff_{env}")


def plot_scaling(env: str, scaling: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Seconds per epoch and seconds to the threshold against ``workers.n`` (log-log), with ideal lines.

    :param scaling: :func:`~harness.report.aggregate.scaling_table` rows of this environment.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    frac = scaling["fraction"].iloc[0]
    for ax, col, ylabel in ((axes[0], "time_per_epoch_s", "wall-clock time per epoch (s)"),
                            (axes[1], "time_to_threshold_s", f"wall-clock time to {frac:.0%} threshold (s)")):
        for algo, g in scaling.groupby("algo", sort=True):
            g = g.sort_values("workers_n")
            ok = np.isfinite(g[col].to_numpy(dtype=float))
            if not ok.any():
                continue
            gg = g[ok]
            n, y = gg["workers_n"].to_numpy(dtype=float), gg[col].to_numpy(dtype=float)
            lower, upper = gg[f"{col}_lower"].to_numpy(dtype=float), gg[f"{col}_upper"].to_numpy(dtype=float)
            upper = np.where(np.isfinite(upper), upper, y)
            ax.errorbar(n, y, yerr=[y - lower, upper - y], color=algo_color(algo), marker="o", capsize=3,
                        label=f"{algo} (median over seeds)")
            if len(gg) > 1:
                ax.plot(n, gg[f"ideal_{col}"].to_numpy(dtype=float), color=algo_color(algo), ls="--", lw=1,
                        label=f"{algo} ideal: t(n_min) n_min / n")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ns = sorted(int(n) for n in scaling["workers_n"].unique())
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("rollout workers (workers.n)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"{env}: scaling with the number of workers (95% bootstrap CIs; per-epoch time includes "
                 f"evaluation)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"scaling_{env}")
