"""Matplotlib figures (Agg backend), each saved as PNG and PDF.

* :func:`plot_curves`: evaluation return against epochs, environment steps and wall-clock seconds;
  IQM over seeds with a 95% stratified-bootstrap CI band (Agarwal et al. 2021, rliable), every run
  drawn faintly underneath over its whole length.
* :func:`plot_tradeoff`: per algorithm, epochs against wall-clock seconds needed to reach each return
  threshold (median over seeds, 95% bootstrap CIs as error bars, runs as faint dots).
* :func:`plot_scaling`: seconds per epoch and seconds to a threshold against ``workers.n``, with the
  ideal linear-scaling line ``t(n_min) * n_min / n``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.report.aggregate import AXES, evaluated_by_run, with_group_labels  # noqa: E402

AXIS_LABELS = {"epoch": "epoch (policy updates)", "timesteps": "environment steps",
               "wall_time_s": "wall-clock time (s)"}
FRACTION_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def colors_for(runs: pd.DataFrame) -> dict[str, tuple]:
    """A fixed colour per group label (sorted), the same in every figure of a report; an algorithm name
    maps to the colour of its first group (for the scaling figure, which pools worker counts).

    :param runs: runs with ``algo`` and ``group`` columns (:func:`~harness.report.aggregate.with_group_labels`).
    """
    cmap = plt.get_cmap("tab10")
    colors = {label: cmap(i % 10) for i, label in enumerate(sorted(set(runs["group"])))}
    for algo, g in runs.groupby("algo"):
        colors.setdefault(algo, colors[sorted(g["group"])[0]])
    return colors


def file_stem(text: str) -> str:
    """``text`` as a portable file name: runs of characters other than letters, digits, ``_.=-``
    become one ``_`` (``"HalfCheetah[max_episode_steps=100]"`` -> ``"HalfCheetah_max_episode_steps=100"``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


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


def plot_curves(env: str, metrics: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame, colors: dict,
                out_dir: Path) -> list[Path]:
    """Learning curves of one environment: three panels (epochs, steps, seconds).

    :param runs: runs of this environment (:class:`~harness.report.load.Loaded` ``runs``).
    :param curves: :func:`~harness.report.aggregate.curve_table` rows of this environment.
    :returns: the PNG and PDF paths.
    """
    runs = with_group_labels(runs)
    by_run = evaluated_by_run(metrics[metrics["run"].isin(runs["run"])])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    env_id = runs["env_id"].iloc[0] if not runs.empty else env
    for axis, ax in zip(AXES, axes):
        for group, g in runs.groupby("group", sort=True):
            color = colors[group]
            for run in g["run"]:
                e = by_run.get(run)
                if e is not None:
                    ax.plot(e[axis], e["eval_return"], color=color, alpha=0.25, lw=0.8)
            c = curves[(curves["group"] == group) & (curves["axis"] == axis)]
            label = _run_count_label(group, g)
            if c.empty:
                ax.plot([], [], color=color, alpha=0.4, label=f"{label}: no common range")
                continue
            ax.plot(c["x"], c["iqm"], color=color, lw=2, label=label)
            ax.fill_between(c["x"], c["lower"], c["upper"], color=color, alpha=0.2, lw=0)
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.grid(alpha=0.3)
        if axis == "timesteps":
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0].set_ylabel("evaluation return (mean over eval episodes)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"{env_id}: evaluation return, IQM over seeds with 95% bootstrap CI "
                 f"(thin: single runs; IQM ends where the shortest run ends)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"curves_{env}")


def plot_tradeoff(env: str, tradeoff: pd.DataFrame, ttt: pd.DataFrame, thr: pd.DataFrame, colors: dict,
                  out_dir: Path) -> list[Path]:
    """Epochs against wall-clock seconds to reach each threshold, one colour per group, one marker per
    fraction; log-log. Medians not reached are listed in a note instead of plotted; an infinite CI
    bound is drawn up to the plot edge.

    :param tradeoff: :func:`~harness.report.aggregate.tradeoff_table` rows of this environment.
    :param ttt: :func:`~harness.report.aggregate.time_to_threshold_table` rows of this environment.
    :param thr: :func:`~harness.report.aggregate.threshold_table` rows of this environment.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    fractions = sorted(thr["fraction"].unique())
    marker = {f: FRACTION_MARKERS[i % len(FRACTION_MARKERS)] for i, f in enumerate(fractions)}
    finite = pd.concat([ttt[["wall_time_s", "epoch"]], tradeoff[["wall_time_s", "epoch"]],
                        tradeoff[["wall_time_s_lower", "epoch_lower"]].set_axis(["wall_time_s", "epoch"], axis=1),
                        tradeoff[["wall_time_s_upper", "epoch_upper"]].set_axis(["wall_time_s", "epoch"], axis=1)])
    finite = finite[np.isfinite(finite["wall_time_s"]) & np.isfinite(finite["epoch"])]
    not_reached = []
    if not finite.empty:
        xmin, xmax = finite["wall_time_s"].min() / 1.5, finite["wall_time_s"].max() * 1.5
        ymin, ymax = max(finite["epoch"].min() / 1.5, 0.5), finite["epoch"].max() * 1.5
        r = ttt[ttt["reached"]]
        for group, g in r.groupby("group"):
            ax.scatter(g["wall_time_s"], g["epoch"], color=colors[group], alpha=0.25, s=12, lw=0)
        for group, g in tradeoff.groupby("group", sort=True):
            g = g.sort_values("fraction")
            ok = np.isfinite(g["wall_time_s"]) & np.isfinite(g["epoch"])
            ax.plot(g["wall_time_s"][ok], g["epoch"][ok], color=colors[group], lw=1, alpha=0.6)
            for _, row in g.iterrows():
                if not ok[row.name]:
                    not_reached.append(f"{group} {row['fraction']:.0%} ({row['n_reached']}/{row['n_runs']} reached)")
                    continue
                x, y = row["wall_time_s"], row["epoch"]
                xhi = min(row["wall_time_s_upper"], xmax) if math.isfinite(row["wall_time_s_upper"]) else xmax
                yhi = min(row["epoch_upper"], ymax) if math.isfinite(row["epoch_upper"]) else ymax
                ax.errorbar([x], [y], xerr=[[x - row["wall_time_s_lower"]], [xhi - x]],
                            yerr=[[y - row["epoch_lower"]], [yhi - y]], color=colors[group],
                            marker=marker[row["fraction"]], ms=7, capsize=3, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
    else:
        not_reached.append("no run reached any threshold")
    ax.set_xlabel("wall-clock time to reach the threshold (s)")
    ax.set_ylabel("epochs to reach the threshold")
    ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=colors[gname], lw=2, label=gname) for gname in sorted(tradeoff["group"].unique())]
    handles += [plt.Line2D([], [], color="gray", marker=marker[f], ls="", label=f"{f:.0%}: return >= {t:.4g}")
                for f, t in zip(thr["fraction"], thr["threshold"])]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ref = thr["reference"].iloc[0]
    what = "learning progress" if thr["mode"].iloc[0] == "progress" else "final return"
    note = (f"thresholds: fractions of {ref}'s {what}"
            + (f" ({ref} is the best algorithm here: no trpo runs)" if thr["fallback"].iloc[0] else ""))
    if not_reached:
        note += "\nmedian not reached: " + "; ".join(not_reached)
    ax.set_title(f"{env}: epochs vs wall-clock time to reach a return threshold\n"
                 f"median over seeds, 95% bootstrap CI; faint dots: single runs", fontsize=10)
    fig.text(0.01, -0.02, note, fontsize=8, va="top", wrap=True)
    fig.tight_layout()
    return save(fig, out_dir, f"tradeoff_{env}")


def plot_scaling(env: str, scaling: pd.DataFrame, colors: dict, out_dir: Path) -> list[Path]:
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
            upper = np.where(np.isfinite(gg[f"{col}_upper"]), gg[f"{col}_upper"], gg[col])
            ax.errorbar(gg["workers_n"], gg[col], yerr=[gg[col] - gg[f"{col}_lower"], upper - gg[col]],
                        color=colors.get(algo), marker="o", capsize=3, label=f"{algo} (median over seeds)")
            if len(gg) > 1:
                ax.plot(gg["workers_n"], gg[f"ideal_{col}"], color=colors.get(algo), ls="--", lw=1,
                        label=f"{algo} ideal: t(n_min) n_min / n")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ns = sorted(scaling["workers_n"].unique())
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
