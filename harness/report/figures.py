"""Matplotlib figures (Agg backend), each saved as PNG and PDF.

* :func:`plot_curves`: evaluation return against epochs, environment steps (one curve per algorithm)
  and wall-clock seconds (one per algorithm and ``workers.n``); IQM over seeds with a 95%
  stratified-bootstrap CI band (Agarwal et al. 2021, rliable), every counted run drawn faintly
  underneath over its whole length. :func:`plot_curves_panels`: one axis, every environment.
* :func:`plot_tradeoff`: per algorithm and ``workers.n``, epochs against wall-clock seconds needed to
  reach each return threshold (median over seeds, 95% bootstrap CIs as error bars, runs as faint dots).
  :func:`plot_tradeoff_panels`: the same, one panel per environment, in one figure.
* :func:`plot_scaling`: seconds per epoch and seconds to a threshold against ``workers.n``, with the
  ideal linear-scaling line ``t(n_min) * n_min / n``.

The wall-clock axis is the report's clock (:data:`harness.report.aggregate.DEFAULT_CLOCK`:
``train_time_s``, training time with evaluation excluded; or ``wall_time_s``), named in every axis
label (:data:`AXIS_LABELS`).

Every figure colours an algorithm with :func:`algo_color` (the same colour in every report) and tells
worker counts apart by line style (:func:`worker_styles`). A :class:`FigureStyle` sets the size: the
report's (wide, titled, with notes in the figure) or a paper's (:data:`PAPER`: single-column 3.5 in or
double-column 7 in wide, 6-8 pt text, no titles or notes: the captions are in the paper index).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.collections
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.font_manager import FontProperties

from harness.report.aggregate import clock_of, evaluated_by_run, statistic_groups, wall_clock_runs, wall_label
from harness.report.curves import DEFAULT_CLOCK, axes_of

AXIS_LABELS = {
    "epoch": "epoch (policy updates)",
    "timesteps": "environment steps",
    "train_time_s": "training wall-clock time (s), evaluation excluded",
    "wall_time_s": "wall-clock time (s), evaluation included",
}
#: The same, in two lines, for narrow panels.
AXIS_LABELS_SHORT = {
    **AXIS_LABELS,
    "train_time_s": "training wall-clock time (s),\nevaluation excluded",
    "wall_time_s": "wall-clock time (s),\nevaluation included",
}
FRACTION_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


@dataclass(frozen=True)
class FigureStyle:
    """How a figure is sized and how much it says itself.

    :ivar paper: False: the report's figures (wide, with a title and notes in the figure, 150 dpi); True:
        a paper's (``single`` or ``double`` column wide, small fonts from :meth:`rc`, no title or notes:
        the index gives the caption, 300 dpi).
    """

    paper: bool = False
    single: float = 3.5  # inches: one column of a two-column paper
    double: float = 7.0  # inches: the full text width
    dpi: int = 150

    def rc(self) -> dict:
        """Matplotlib settings while drawing: in paper mode 8 pt labels, 7 pt ticks, 6.5 pt legends
        (nothing below 6 pt at print size), thinner lines, TrueType fonts in the PDF."""
        if not self.paper:
            return {}
        return {
            "font.size": 8,
            "axes.titlesize": 8,
            "axes.labelsize": 8,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "legend.fontsize": 6.5,
            "legend.title_fontsize": 7,
            "figure.titlesize": 8,
            "lines.linewidth": 1.2,
            "lines.markersize": 4,
            "axes.linewidth": 0.6,
            "grid.linewidth": 0.4,
            "xtick.major.width": 0.6,
            "ytick.major.width": 0.6,
            "xtick.minor.width": 0.4,
            "ytick.minor.width": 0.4,
            "legend.handlelength": 1.8,
            "legend.borderaxespad": 0.3,
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
        }

    @contextlib.contextmanager
    def drawing(self):
        """The :meth:`rc` settings for the figure drawn (and saved) inside."""
        with plt.rc_context(self.rc()):
            yield


REPORT = FigureStyle()
PAPER = FigureStyle(paper=True, dpi=300)


def number_label(v: float) -> str:
    """A tick label: ``0.5``, ``20``, ``2500``, ``10k``, ``1.5M``."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return str(int(v)) if v == int(v) else f"{v:.3g}"


def log_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[float]:
    """At most ``max_ticks`` (at least 2 when the range allows) readable positions in ``[lo, hi]`` for a
    log axis: 1-2-5 per decade, thinned to powers of ten over many decades; in a range narrower than
    that, evenly spaced round numbers (e.g. 20, 25, 30 between 18 and 33)."""
    if not (0 < lo < hi) or not math.isfinite(hi):
        return []
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**k for k in range(k0, k1 + 1) for m in subs if lo <= m * 10.0**k <= hi]
        if 2 <= len(ticks) <= max_ticks:
            return ticks
        if len(ticks) > max_ticks and subs == (1,):
            step = math.ceil(len(ticks) / max_ticks)
            return ticks[::step]
    ticks = [
        t for t in matplotlib.ticker.MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi
    ]
    return ticks


def set_log_ticks(ax, which: str = "both", max_ticks: int = 5) -> None:
    """Few, readable major ticks on the log axes of ``ax`` (:func:`log_ticks`, labelled by
    :func:`number_label`), no minor tick labels: matplotlib's default labels every minor tick when an
    axis spans less than a decade (``2x10^1 2.2x10^1 ...``), which overlap. Call after the limits are set."""
    for name in ("x", "y") if which == "both" else (which,):
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
        ticks = log_ticks(lo, hi, max_ticks)
        if not ticks:
            continue
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: number_label(v)))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


# One colour per algorithm in every figure of every report, from Okabe and Ito's colour-blind-safe palette
# (2008, "Color Universal Design"): the ES family in its colours, the TRPO baseline in black (NSR-ES's brown
# and TRPO's red of tab10 were hard to tell apart, and tab10's red and green are one colour to many readers);
# tests/test_figures.py holds every pair apart under normal vision and the three dichromacies. Any other
# name gets one of the fallback colours, picked by a hash of the name (stable across processes and reports,
# unlike Python's hash(); two unknown names can share a colour).
ALGO_COLORS = {
    "es": "#0072b2",
    "vo": "#009e73",
    "ns_es": "#56b4e9",
    "nsr_es": "#e69f00",
    "nsra_es": "#cc79a7",
    "trpo": "#000000",
}
FALLBACK_COLORS = (
    "#d55e00",
    "#7f7f7f",
    "#bcbd22",
    "#aec7e8",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
    "#8c564b",
    "#f0e442",
)
WORKER_LINESTYLES = ("-", "--", ":", "-.")
#: The epochs axis ends after the curves when a run goes on beyond this many times their end (:func:`_draw_curves`).
EPOCH_AXIS_CUT = 2.0


def algo_color(algo: str) -> str:
    """The colour of algorithm ``algo`` (``algo.name``): :data:`ALGO_COLORS`, else a
    :data:`FALLBACK_COLORS` entry chosen by the MD5 of the name, moved on to the next free one when
    another name of this process has it (so the groups of one report never share a colour while the
    palette lasts)."""
    if algo in ALGO_COLORS:
        return ALGO_COLORS[algo]
    if algo in _TAKEN:
        return _TAKEN[algo]
    digest = hashlib.md5(str(algo).encode()).digest()
    start, used = int.from_bytes(digest[:4], "big"), set(_TAKEN.values())
    # the hashed colour, or the next one no other name of this process has (a recipe's dozen variants)
    free = [FALLBACK_COLORS[(start + k) % len(FALLBACK_COLORS)] for k in range(len(FALLBACK_COLORS))]
    color = next((c for c in free if c not in used), free[0])
    _TAKEN[algo] = color
    return color


_TAKEN: dict[str, str] = {}  # the colours algo_color gave names outside ALGO_COLORS, in this process


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
        stem = f"{stem[: max_length - 9]}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return stem


def save(fig, out_dir: Path, stem: str, dpi: int = 150, tight: bool = True) -> list[Path]:
    """Write ``stem.png`` (``dpi``) and ``stem.pdf`` into ``out_dir`` (``stem`` through :func:`file_stem`),
    close the figure; the two paths. ``tight``: crop (or grow) to what is drawn, plus a small margin; a paper
    figure laid out by matplotlib's constrained layout is saved at exactly its size instead (``tight=False``)."""
    stem = file_stem(stem)
    paths = [Path(out_dir) / f"{stem}.png", Path(out_dir) / f"{stem}.pdf"]
    bbox = "tight" if tight else None
    fig.savefig(paths[0], dpi=dpi, bbox_inches=bbox)
    fig.savefig(paths[1], bbox_inches=bbox)
    plt.close(fig)
    return paths


def _run_count_label(group: str, g: pd.DataFrame, drawn: int | None = None) -> str:
    """``"es (5 runs, 1 interrupted)"``; ``"es (4500 runs, 100 drawn)"`` when only ``drawn`` of them have a thin line."""
    n = len(g)
    bad = g["status"][g["status"] != "completed"].value_counts()
    extra = ", ".join(f"{c} {s}" for s, c in bad.items())
    if drawn is not None and drawn < n:
        extra = ", ".join(x for x in (f"{drawn} drawn", extra) if x)
    return f"{group} ({n} run{'s' if n != 1 else ''}{', ' + extra if extra else ''})"


#: Runs of one group drawn as thin lines at the most: beyond it, this many spread evenly over the group's runs in
#: seed order (the IQM and its CI still use every run). A sweep's thousands of lines are one blot, and a PDF of
#: them takes minutes to write.
MAX_THIN_LINES = 100


def thin_runs(g: pd.DataFrame, most: int = MAX_THIN_LINES) -> pd.DataFrame:
    """The runs of group ``g`` that get a thin line (or, per algorithm, a behaviours panel's points:
    :func:`harness.report.behaviours.drawn_runs`): all of them, or ``most`` spread evenly over them in seed
    order."""
    if len(g) <= most:
        return g
    g = g.sort_values(["seed", "run"], kind="stable")
    return g.iloc[np.unique(np.linspace(0, len(g) - 1, most).round().astype(int))]


def _style(algo: str, workers_n, styles: dict) -> dict:
    """Colour of the algorithm; line style of the worker count (solid for a learning group)."""
    return {"color": algo_color(algo), "ls": "-" if pd.isna(workers_n) else styles.get(int(workers_n), "-")}


def _runs_per_task(counts: list[int]) -> str:
    """``"3 runs"`` or, when the environments differ, ``"2-3 runs per task"``."""
    lo, hi = min(counts), max(counts)
    return f"{lo} run{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} runs per task"


def _draw_curves(
    ax, axis: str, by_run: dict, runs: pd.DataFrame, curves: pd.DataFrame, styles: dict, clock: str, style: FigureStyle
) -> None:
    """One panel: every group of ``runs`` that has ``axis`` (thin lines: its runs; thick: the IQM with its CI
    band, or a marker with an error bar where the group shares a single position).

    On the epochs axis a run may go on far past the others (a Walker2d ES run that learned to fall at once
    makes 8-step episodes, hence 40 times the epochs of its seeds for the same steps): when one ends beyond
    :data:`EPOCH_AXIS_CUT` times the end of the groups' curves, the axis ends a little after the curves and
    the panel says how far the cut runs go."""
    thin, thick = (0.5, 1.3) if style.paper else (0.8, 2)
    run_ends, curve_end = [], 0.0
    for _, algo, n, group, group_axes, g in statistic_groups(runs, clock):
        if axis not in group_axes:
            continue
        st = _style(algo, n, styles)
        lines = []  # the group's runs as one collection: a sweep's thousands of runs, one artist
        drawn = set(thin_runs(g)["run"])
        for run in g["run"]:
            e = by_run.get(run)
            if e is not None:
                run_ends.append(float(np.nanmax(e[axis].to_numpy(dtype=float))) if len(e) else 0.0)
            if run not in drawn:
                continue
            if e is not None and len(e) == 1:
                ax.plot(
                    e[axis].to_numpy(),
                    e["eval_return"].to_numpy(),
                    alpha=0.25,
                    lw=thin,
                    marker="o",
                    ms=2 if style.paper else 3,
                    **st,
                )
            elif e is not None:
                lines.append(np.column_stack([e[axis].to_numpy(dtype=float), e["eval_return"].to_numpy(dtype=float)]))
        if lines:  # with the caps and joins ax.plot gives a line of that style: the same pixels
            kind = "solid" if st["ls"] == "-" else "dash"
            ax.add_collection(
                matplotlib.collections.LineCollection(
                    lines,
                    colors=st["color"],
                    linestyles=st["ls"],
                    linewidths=thin,
                    alpha=0.25,
                    capstyle=plt.rcParams[f"lines.{kind}_capstyle"],
                    joinstyle=plt.rcParams[f"lines.{kind}_joinstyle"],
                )
            )
        c = curves[(curves["env"].isin(g["env"].unique())) & (curves["group"] == group) & (curves["axis"] == axis)]
        curve_end = max(curve_end, float(c["x"].max()) if not c.empty else 0.0)
        label = _run_count_label(group, g, drawn=len(drawn))
        if c.empty:
            ax.plot([], [], alpha=0.4, label=f"{label}: no common range", **st)
        elif len(c) == 1:
            x, y, lo, hi = (c[k].to_numpy(dtype=float) for k in ("x", "iqm", "lower", "upper"))
            ax.errorbar(
                x,
                y,
                yerr=[y - lo, hi - y],
                marker="o",
                ms=4 if style.paper else 6,
                capsize=2 if style.paper else 3,
                lw=thick * 0.75,
                label=label,
                **st,
            )
        else:
            ax.plot(c["x"].to_numpy(), c["iqm"].to_numpy(), lw=thick, label=label, **st)
            ax.fill_between(
                c["x"].to_numpy(dtype=float),
                c["lower"].to_numpy(dtype=float),
                c["upper"].to_numpy(dtype=float),
                color=st["color"],
                alpha=0.2,
                lw=0,
            )
    ax.grid(alpha=0.3)
    if axis == "timesteps":
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: number_label(v)))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
    elif axis == "epoch":  # epochs are whole numbers: no 2.5 on the axis
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins="auto", integer=True))
        cut = [end for end in run_ends if end > EPOCH_AXIS_CUT * curve_end]
        if curve_end > 0 and cut:
            right = curve_end * 1.1
            left = min(ax.dataLim.x0, 0.0)
            ax.set_xlim(left - 0.03 * (right - left), right)
            ax.text(
                1.0,
                1.01,
                f"{len(cut)} run{'s' if len(cut) > 1 else ''} cut, to {max(cut):,.0f} epochs",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                color="0.4",
                fontsize=matplotlib.rcParams["font.size"] * 0.8,
            )  # above the frame: over no curve


def _paper_legend_entries(runs: pd.DataFrame, clock: str, styles: dict) -> list[tuple]:
    """``(handle, label)`` per algorithm for a figure-wide legend: its colour and its learning runs, and
    what the time axis draws when that is not the same runs at one solid line (busy runs left out,
    several ``workers.n``: one more entry per extra line style)."""
    groups = list(statistic_groups(runs, clock))
    entries = []
    for _, algo, _n, _group, axes, g in groups:
        if axes == (clock,):
            continue
        walls = [(n, gw) for _, a, n, _, ax_, gw in groups if a == algo and ax_ == (clock,)]
        label = _run_count_label(algo, g)
        one = (
            len(walls) == 1
            and _style(algo, walls[0][0], styles)["ls"] == "-"
            and set(walls[0][1]["run"]) == set(g["run"])
        )
        if not one:
            if len(walls) == 1:
                label = label[:-1] + f"; {len(walls[0][1])} on the time axis)"
            else:
                parts = [f"{'n=?' if pd.isna(n) else f'n={int(n)}'}: {len(gw)}" for n, gw in walls]
                label = label[:-1] + "; time axis: " + (", ".join(parts) if parts else "none") + ")"
        entries.append((plt.Line2D([], [], color=algo_color(algo), lw=1.5), label))
        for n, _gw in walls:
            st = _style(algo, n, styles)
            if st["ls"] != "-":
                entries.append((plt.Line2D([], [], lw=1.5, **st), f"{wall_label(algo, n)} (time axis)"))
    return entries


def plot_curves(
    env: str,
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: Path,
    clock: str = DEFAULT_CLOCK,
    style: FigureStyle = REPORT,
) -> list[Path]:
    """Learning curves of one environment: three panels (epochs, steps, seconds of ``clock``).

    The epochs and steps panels draw one curve per algorithm (its learning runs, one per seed, whatever
    their ``workers.n``); the seconds panel one per (algorithm, ``workers.n``), the worker count in the
    line style, over the wall-clock runs (busy runs left out). Colours: :func:`algo_color`. A group whose
    runs share a single evaluated position (e.g. one evaluation each) is drawn as a marker with its CI as
    an error bar; so is a run with one evaluation. The report's style labels each panel's groups with
    their run counts; the paper style has one legend under the panels (:func:`_paper_legend_entries`).

    :param runs: runs of this environment (:class:`~harness.report.load.Loaded` ``runs``).
    :param curves: :func:`~harness.report.aggregate.curve_table` rows of this environment.
    :returns: the PNG and PDF paths.
    """
    with style.drawing():
        by_run = evaluated_by_run(metrics[metrics["run"].isin(runs["run"])])
        styles = worker_styles(wall_clock_runs(runs)["workers_n"])
        size = (style.double, 2.1) if style.paper else (15, 4.4)
        entries = _paper_legend_entries(runs, clock, styles) if style.paper else []
        if entries:  # room for the legend's rows below the panels (a recipe's variants make a dozen)
            size = (size[0], size[1] + 0.17 * max(0, math.ceil(len(entries) / 4) - 1) + 0.17 * len(entries) / 4)
        fig, axes = plt.subplots(1, 3, figsize=size, sharey=True, layout="constrained" if style.paper else None)
        env_id = runs["env_id"].iloc[0] if not runs.empty else env
        for axis, ax in zip(axes_of(clock), axes):
            _draw_curves(ax, axis, by_run, runs, curves, styles, clock, style)
            ax.set_xlabel((AXIS_LABELS_SHORT if style.paper else AXIS_LABELS)[axis])
        axes[0].set_ylabel("evaluation return" if style.paper else "evaluation return (mean over eval episodes)")
        if style.paper:
            if entries:
                # as many columns as the longest label leaves room for across the figure (a recipe's variants
                # have long labels: four columns of them ran off the page)
                points = FontProperties(size=plt.rcParams["legend.fontsize"]).get_size_in_points()
                chars_per_row = size[0] * 72 / (0.55 * points)  # an average character is ~0.55 em wide
                fit = max(1, int(chars_per_row // (max(len(label) for _, label in entries) + 6)))
                fig.legend(*zip(*entries), loc="outside lower center", ncol=min(len(entries), 4, fit), frameon=False)
        else:
            for ax in (axes[0], axes[2]):
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(loc="best", fontsize=8)
            fig.suptitle(
                f"{env_id}: evaluation return, IQM over seeds with 95% bootstrap CI (thin: single runs, at most "
                f"{MAX_THIN_LINES} a group; "
                f"IQM ends where the shortest run ends)\nepochs and steps: one curve per algorithm, each "
                f"seed once; {AXIS_LABELS[clock].split(' (s)')[0]}: one per algorithm and workers.n",
                fontsize=10,
            )
            fig.tight_layout()
        return save(fig, out_dir, f"curves_{env}", style.dpi, tight=not style.paper)


def _shared_labels(fig, xlabel: str, ylabel: str) -> None:
    """One x label under and one y label beside a grid of panels (panel-wide labels do not fit narrow panels)."""
    size = plt.rcParams["axes.labelsize"]
    fig.supxlabel(xlabel, fontsize=size)
    fig.supylabel(ylabel, fontsize=size)


def _panel_grid(n: int, style: FigureStyle, row_height: float, legend_height: float, ncols: int = 3):
    """A figure of ``n`` panels (``ncols`` a row) above a strip for the legend: ``(fig, panels_subfigure,
    axes, legend_subfigure)``. The panels' shared labels go on their subfigure, the legend on its own, so
    that constrained layout keeps them apart."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    width = (style.single if ncols == 1 else style.double) if style.paper else 5.0 * ncols
    height = row_height * nrows + 0.45
    fig = plt.figure(figsize=(width, height + legend_height), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, legend_height])
    axes = top.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, top, list(axes.flat[:n]), bottom


def plot_curves_panels(
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: Path,
    axis: str = "timesteps",
    clock: str = DEFAULT_CLOCK,
    style: FigureStyle = REPORT,
    stem: str | None = None,
) -> list[Path]:
    """One panel per environment of ``runs``: IQM learning curves against ``axis`` (as one panel of
    :func:`plot_curves`), one legend for all (each algorithm with its runs per task).

    :returns: the PNG and PDF paths (none without runs).
    """
    envs = sorted(runs["env"].unique())
    if not envs:
        return []
    with style.drawing():
        fig, top, axes, bottom = _panel_grid(
            len(envs), style, 1.7 if style.paper else 3.6, 0.45 if style.paper else 0.8
        )
        styles = worker_styles(wall_clock_runs(runs)["workers_n"])
        counts: dict[str, list[int]] = {}
        for env, ax in zip(envs, axes):
            r_env = runs[runs["env"] == env]
            by_run = evaluated_by_run(metrics[metrics["run"].isin(r_env["run"])])
            _draw_curves(ax, axis, by_run, r_env, curves[curves["env"] == env], styles, clock, style)
            ax.set_title(env)
            drawn = 0
            for _, algo, _n, _g, axes_, g in statistic_groups(r_env, clock):
                if axis in axes_:
                    counts.setdefault(algo if axes_ != (clock,) else wall_label(algo, _n), []).append(len(g))
                    drawn += 1
            if not drawn:  # e.g. every run of the task on a busy machine, on the clock axis
                ax.text(
                    0.5,
                    0.5,
                    "no run counts on this axis" + ("\n(busy machine)" if axis == clock else ""),
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.4",
                )
        _shared_labels(top, AXIS_LABELS[axis], "evaluation return")
        handles = []
        for label, c in sorted(counts.items()):
            algo = label.split(" n=")[0]
            n = label.split(" n=")[1] if " n=" in label else None
            st = _style(algo, pd.NA if n in (None, "?") else int(n), styles)
            handles.append(plt.Line2D([], [], lw=1.5, **st, label=f"{label} ({_runs_per_task(c)})"))
        if handles:
            bottom.legend(handles=handles, loc="center", ncol=min(len(handles), 5), frameon=False)
        if not style.paper:
            top.suptitle(
                f"evaluation return against {AXIS_LABELS[axis]}: IQM over seeds with 95% bootstrap CI", fontsize=10
            )
        return save(fig, out_dir, stem or f"curves_{axis}_all", style.dpi, tight=not style.paper)


def _draw_tradeoff(
    ax, tradeoff: pd.DataFrame, ttt: pd.DataFrame, thr: pd.DataFrame, style: FigureStyle, styles: dict | None = None
) -> tuple[list, list[str]]:
    """The trade-off of one environment on ``ax`` (see :func:`plot_tradeoff`).

    :returns: ``(groups, not_reached)``: ``(group, line style kwargs, runs on the time axis, runs on the
        epochs axis)`` per wall-clock group drawn, and the groups and fractions whose median was not
        reached (not drawn).
    """
    clock = clock_of(ttt)
    fractions = sorted(thr["fraction"].unique())
    marker = {f: FRACTION_MARKERS[i % len(FRACTION_MARKERS)] for i, f in enumerate(fractions)}
    wall = tradeoff[tradeoff["axis"] == clock]
    epochs = {(r.algo, r.fraction): r for r in tradeoff[tradeoff["axis"] == "epoch"].itertuples()}
    styles = styles if styles is not None else worker_styles(wall["workers_n"])
    timed = ttt[ttt["wall_clock"].astype(bool)] if "wall_clock" in ttt else ttt
    learned = ttt[ttt["learning"].astype(bool)] if "learning" in ttt else ttt

    def finite(*arrays):
        v = np.concatenate([np.asarray(a, dtype=float) for a in arrays])
        return v[np.isfinite(v)]

    xs = finite(timed[clock], wall["median"], wall["lower"], wall["upper"])
    ep_rows = tradeoff[tradeoff["axis"] == "epoch"]
    ys = finite(learned["epoch"], ep_rows["median"], ep_rows["lower"], ep_rows["upper"])
    not_reached, drawn = [], []
    ms, cap, lw = (4, 2, 0.8) if style.paper else (7, 3, 1)
    if xs.size and ys.size:
        xmin, xmax = xs.min() / 1.5, xs.max() * 1.5
        ymin, ymax = max(ys.min() / 1.5, 0.5), ys.max() * 1.5
        both = timed[timed["reached"].astype(bool)]
        for algo, g in both.groupby("algo"):
            ax.scatter(
                g[clock].to_numpy(),
                g["epoch"].to_numpy(),
                color=algo_color(algo),
                alpha=0.25,
                s=6 if style.paper else 12,
                lw=0,
            )
        for (algo, n), g in wall.groupby(["algo", "workers_n"], sort=True, dropna=False):
            st, group = _style(algo, n, styles), g["group"].iloc[0]
            n_time = int(g["n_runs"].iloc[0])
            n_ep = next((int(r.n_runs) for (a, _f), r in epochs.items() if a == algo), n_time)
            drawn.append((group, st, n_time, n_ep))
            pts = []
            for row in g.sort_values("fraction").itertuples():
                ep = epochs.get((algo, row.fraction))
                if ep is None or not (math.isfinite(row.median) and math.isfinite(ep.median)):
                    reached = f"{row.n_reached}/{row.n_runs}" + (
                        f", epochs: {ep.n_reached}/{ep.n_runs}"
                        if ep and (ep.n_reached, ep.n_runs) != (row.n_reached, row.n_runs)
                        else ""
                    )
                    not_reached.append(f"{group} {row.fraction:.0%} ({reached} reached)")
                    continue
                x, y = row.median, ep.median
                xhi = min(row.upper, xmax) if math.isfinite(row.upper) else xmax
                yhi = min(ep.upper, ymax) if math.isfinite(ep.upper) else ymax
                ax.errorbar(
                    [x],
                    [y],
                    xerr=[[x - row.lower], [xhi - x]],
                    yerr=[[y - ep.lower], [yhi - y]],
                    color=st["color"],
                    marker=marker[row.fraction],
                    ms=ms,
                    capsize=cap,
                    lw=lw,
                )
                pts.append((x, y))
            if len(pts) > 1:
                ax.plot(*zip(*pts), lw=lw, alpha=0.6, **st)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        set_log_ticks(ax, max_ticks=4 if style.paper else 6)
    else:
        why = (
            "no run counts on the wall clock\n(every run on a busy machine; --include-busy counts them)"
            if wall.empty and not ttt.empty
            else "no run reached any threshold"
        )
        not_reached.append(why.replace("\n", " "))
        ax.text(
            0.5,
            0.5,
            why,
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
            fontsize=None if style.paper else 9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    ax.grid(alpha=0.3, which="major")
    return drawn, not_reached


def _group_handle(group: str, st: dict, n_time: int, n_epochs: int, lw: float) -> plt.Line2D:
    count = (
        f"{n_time} run{'s' if n_time != 1 else ''}"
        if n_epochs == n_time
        else f"time: {n_time} runs, epochs: {n_epochs}"
    )
    return plt.Line2D([], [], lw=lw, label=f"{group} ({count})", **st)


def _fraction_handles(thr: pd.DataFrame, with_values: bool = True) -> list:
    fractions = sorted(thr["fraction"].unique())
    marker = {f: FRACTION_MARKERS[i % len(FRACTION_MARKERS)] for i, f in enumerate(fractions)}
    values = thr.drop_duplicates("fraction").set_index("fraction")["threshold"]
    return [
        plt.Line2D(
            [],
            [],
            color="gray",
            marker=marker[f],
            ls="",
            label=f"{f:.0%}: return >= {values[f]:.4g}" if with_values else f"{f:.0%}",
        )
        for f in fractions
    ]


def plot_tradeoff(
    env: str, tradeoff: pd.DataFrame, ttt: pd.DataFrame, thr: pd.DataFrame, out_dir: Path, style: FigureStyle = REPORT
) -> list[Path]:
    """Epochs against wall-clock seconds to reach each threshold, log-log: one point per (algorithm,
    ``workers.n``) and fraction at (median seconds of that worker count on the clock of ``ttt``, median
    epochs of the algorithm's learning runs), colour per algorithm (:func:`algo_color`), line style per
    worker count, one marker per fraction. Medians not reached are listed in a note (report style) instead
    of plotted; an infinite CI bound is drawn up to the plot edge. Log axes carry a few round ticks
    (:func:`set_log_ticks`).

    :param tradeoff: :func:`~harness.report.aggregate.tradeoff_table` rows of this environment.
    :param ttt: :func:`~harness.report.aggregate.time_to_threshold_table` rows of this environment.
    :param thr: :func:`~harness.report.aggregate.threshold_table` rows of this environment.
    """
    clock = clock_of(ttt)
    with style.drawing():
        if style.paper:
            fig, ax = plt.subplots(figsize=(style.single, 3.3), layout="constrained")
        else:
            fig, ax = plt.subplots(figsize=(7.5, 5.5))
        drawn, not_reached = _draw_tradeoff(ax, tradeoff, ttt, thr, style)
        handles = [_group_handle(*d, lw=1.5 if style.paper else 2) for d in drawn]
        labels = AXIS_LABELS_SHORT if style.paper else AXIS_LABELS
        ax.set_xlabel(labels[clock].replace(" (s)", " to threshold (s)", 1))
        ax.set_ylabel("epochs to threshold")
        handles += _fraction_handles(thr)
        if style.paper:
            fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
            return save(fig, out_dir, f"tradeoff_{env}", style.dpi, tight=False)
        ax.legend(handles=handles, fontsize=8, loc="best")
        ref = thr["reference"].iloc[0]
        what = "learning progress" if thr["mode"].iloc[0] == "progress" else "final return"
        note = f"protocol score: thresholds are fractions of {ref}'s {what}, times per-run medians over seeds" + (
            f" ({ref} is the best algorithm here: the reference algorithm has no runs)"
            if thr["fallback"].iloc[0]
            else ""
        )
        if "note" in thr and thr["note"].iloc[0]:
            note += "\n" + thr["note"].iloc[0]
        if not_reached:
            note += "\nmedian not reached: " + "; ".join(not_reached)
        ax.set_title(
            f"{env}: epochs vs training time to reach a return threshold\n"
            f"median over seeds, 95% bootstrap CI; faint dots: single runs",
            fontsize=10,
        )
        fig.text(0.01, -0.02, note, fontsize=8, va="top", wrap=True)
        fig.tight_layout()
        return save(fig, out_dir, f"tradeoff_{env}", style.dpi)


def plot_tradeoff_panels(
    tradeoff: pd.DataFrame,
    ttt: pd.DataFrame,
    thr: pd.DataFrame,
    out_dir: Path,
    style: FigureStyle = REPORT,
    stem: str = "tradeoff_all",
) -> list[Path]:
    """:func:`plot_tradeoff` of every environment with thresholds, one panel each, in one figure with one
    legend (each wall-clock group with its runs per task, and the fractions; each panel's thresholds
    differ, so the legend gives fractions only).

    :returns: the PNG and PDF paths (none when no environment has a threshold).
    """
    thr = thr[thr["threshold"].notna()]
    envs = sorted(thr["env"].unique())
    if not envs:
        return []
    clock = clock_of(ttt)
    styles = worker_styles(tradeoff.loc[tradeoff["axis"] == clock, "workers_n"])
    with style.drawing():
        fig, top, axes, bottom = _panel_grid(
            len(envs), style, 1.9 if style.paper else 4.0, 0.55 if style.paper else 0.9
        )
        counts: dict[str, tuple[dict, list[int]]] = {}
        for env, ax in zip(envs, axes):
            drawn, _ = _draw_tradeoff(
                ax, tradeoff[tradeoff["env"] == env], ttt[ttt["env"] == env], thr[thr["env"] == env], style, styles
            )
            ax.set_title(env)
            for group, st, n_time, _ in drawn:
                counts.setdefault(group, (st, []))[1].append(n_time)
        _shared_labels(top, AXIS_LABELS[clock].replace(" (s)", " to threshold (s)", 1), "epochs to threshold")
        handles = [
            plt.Line2D([], [], lw=1.5, **st, label=f"{g} ({_runs_per_task(c)})")  # runs on the time axis
            for g, (st, c) in sorted(counts.items())
        ]
        handles += [
            plt.Line2D([], [], color="gray", marker=h.get_marker(), ls="", label=f"{h.get_label()} threshold")
            for h in _fraction_handles(thr, with_values=False)
        ]
        bottom.legend(handles=handles, loc="center", ncol=2 if len(envs) == 1 else 3, frameon=False)
        if not style.paper:
            top.suptitle(
                "epochs vs wall-clock time to reach a return threshold (protocol score): median over seeds, "
                "95% bootstrap CI",
                fontsize=10,
            )
        return save(fig, out_dir, stem, style.dpi, tight=not style.paper)


def plot_scaling(
    env: str, scaling: pd.DataFrame, out_dir: Path, clock: str = DEFAULT_CLOCK, style: FigureStyle = REPORT
) -> list[Path]:
    """Seconds per epoch and seconds to the threshold against ``workers.n`` (log-log), with ideal lines;
    seconds of ``clock`` (training time without evaluation by default).

    :param scaling: :func:`~harness.report.aggregate.scaling_table` rows of this environment.
    """
    what = "training time" if clock == "train_time_s" else "wall-clock time"
    with style.drawing():
        fig, axes = plt.subplots(
            1,
            2,
            figsize=(style.double, 2.6) if style.paper else (11, 4.4),
            layout="constrained" if style.paper else None,
        )
        frac = scaling["fraction"].iloc[0]
        for ax, col, ylabel in (
            (axes[0], "time_per_epoch_s", f"{what} per epoch (s)"),
            (axes[1], "time_to_threshold_s", f"{what} to {frac:.0%} threshold (s)"),
        ):
            for algo, g in scaling.groupby("algo", sort=True):
                g = g.sort_values("workers_n")
                ok = np.isfinite(g[col].to_numpy(dtype=float))
                if not ok.any():
                    continue
                gg = g[ok]
                n, y = gg["workers_n"].to_numpy(dtype=float), gg[col].to_numpy(dtype=float)
                lower, upper = gg[f"{col}_lower"].to_numpy(dtype=float), gg[f"{col}_upper"].to_numpy(dtype=float)
                upper = np.where(np.isfinite(upper), upper, y)
                runs = "/".join(str(int(v)) for v in gg["n_runs"])
                ax.errorbar(
                    n,
                    y,
                    yerr=[y - lower, upper - y],
                    color=algo_color(algo),
                    marker="o",
                    capsize=3,
                    ms=4 if style.paper else 6,
                    label=f"{algo} (median over seeds; runs {runs})",
                )
                if len(gg) > 1:
                    ax.plot(
                        n,
                        gg[f"ideal_{col}"].to_numpy(dtype=float),
                        color=algo_color(algo),
                        ls="--",
                        lw=1,
                        label=f"{algo} ideal: t(n_min) n_min / n",
                    )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ns = sorted(int(n) for n in scaling["workers_n"].unique())
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            set_log_ticks(ax, "y")
            ax.set_xlabel("rollout workers (workers.n)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3, which="major")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=None if style.paper else 8)
            else:  # e.g. no run reached the threshold: say so instead of an empty panel
                ax.text(
                    0.5,
                    0.5,
                    f"no run reached the {frac:.0%} threshold" if col == "time_to_threshold_s" else "no run to draw",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color="0.4",
                )
        if not style.paper:
            fig.suptitle(
                f"{env}: scaling with the number of workers (95% bootstrap CIs; {AXIS_LABELS[clock]})", fontsize=10
            )
            fig.tight_layout()
        return save(fig, out_dir, f"scaling_{env}", style.dpi, tight=not style.paper)
