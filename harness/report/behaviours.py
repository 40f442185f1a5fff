"""Where the agents went: behaviour characterizations (BCs) from ``behaviours.csv``, one panel per
algorithm, coloured by epoch, over the task's layout when it has one (the deceptive mazes and the
humanoid trap: :func:`harness.envs.deceptive.layout`).

``python -m harness.report.behaviours RESULTS_DIR [--out DIR]`` draws the figure of every
environment below ``RESULTS_DIR`` (``make figures-novelty`` points it at the deceptive-maze sweep);
:func:`harness.report.build_report` draws the same figure into a report.

2-D BCs (final (x, y)) are drawn as points in the plane; 1-D BCs (final x of a planar robot)
against the epoch. The rows drawn are the archive entries of the novelty family (one per update:
the mean BC of the updated agent) and the BCs of every evaluation episode (every algorithm). An
algorithm with more than :data:`MAX_SEEDS_DRAWN` seeds (a sweep) has that many of them drawn, spread evenly
over its seeds, and its panel's title says so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
from matplotlib.patches import Rectangle

from harness.envs.deceptive import layout
from harness.envs.landscapes import LANDSCAPES
from harness.report.aggregate import learning_runs
from harness.report.figures import REPORT, save, thin_runs
from harness.report.load import load_runs
from harness.tracking import BEHAVIOURS_FILE

log = logging.getLogger(__name__)

SOURCE_MARKERS = {"archive": "o", "eval": "x"}
#: Seeds drawn in one algorithm's panel at the most: a sweep's thousands of seeds would be millions of points,
#: one blot (and minutes of drawing); beyond it the panel draws this many, spread evenly over the seeds in
#: order, and its title says how many of how many.
MAX_SEEDS_DRAWN = 100
#: A panel with more points than this draws them as an image in the PDF too (a vector marker each would be a
#: PDF of megabytes that takes minutes to write and seconds to open); the shipped panels have far fewer.
RASTER_POINTS = 20000


def read_behaviours(runs: pd.DataFrame) -> pd.DataFrame:
    """Every ``behaviours.csv`` of ``runs`` (columns ``run, algo, seed, run_dir``) in one frame:
    the file's columns plus ``algo`` and ``seed``. Runs without the file are left out; a file
    that cannot be parsed is skipped with a warning."""
    frames = []
    for r in runs.itertuples():
        path = Path(r.run_dir) / BEHAVIOURS_FILE
        if not path.exists():
            continue
        try:
            df = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if df.empty or "bc_0" not in df:
            continue
        frames.append(df.assign(algo=r.algo, seed=r.seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _env_kwargs(runs: pd.DataFrame) -> dict:
    """``env.kwargs`` of the first run's ``config.yaml`` (the runs of one environment share them)."""
    import yaml

    try:
        cfg = yaml.safe_load((Path(runs["run_dir"].iloc[0]) / "config.yaml").read_text())
        return dict(cfg["env"].get("kwargs") or {})
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return {}


def plot_behaviours(env: str, env_id: str, runs: pd.DataFrame, out_dir: Path, style=None) -> list[Path]:
    """One panel per algorithm of ``runs`` (one environment) that wrote BCs; nothing if none did.

    :param style: a :class:`harness.report.figures.FigureStyle` (default the report's; the paper's draws
        the panels across a double column, the legend under them and no title).
    :returns: the PNG and PDF paths (empty if there was nothing to draw).
    """
    style = style or REPORT
    with style.drawing():
        return _plot_behaviours(env, env_id, runs, out_dir, style)


def _axis_labels(env_id: str, two_d: bool) -> tuple[str, str]:
    """``(xlabel, ylabel)``: metres for a simulated body; a landscape's BC is the point itself (no unit)."""
    if env_id in LANDSCAPES:
        return ("x[0]", "x[1]") if two_d else ("epoch", "x")
    return ("final x (m)", "final y (m)") if two_d else ("epoch", "final x of the centre of mass (m)")


def _source_label(source: str, walls: bool) -> str:
    if source == "archive":  # the novelty family archives the mean BC of the updated agent's episodes
        return "archived (mean over the BC episodes" + (", so it may lie in a wall)" if walls else ")")
    return "evaluation episode" if source == "eval" else f"{source}"


def drawn_runs(runs: pd.DataFrame, most: int = MAX_SEEDS_DRAWN) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs a behaviours figure draws, in their order: per algorithm every run, or, for an algorithm with
    more than ``most``, ``most`` of them spread evenly over its runs in seed order; and the number of seeds of
    each algorithm cut so."""
    keep, cut = [], {}
    for algo, g in runs.groupby("algo", sort=True):
        if len(g) > most:
            cut[algo] = g["seed"].nunique()
        keep.extend(thin_runs(g, most).index)
    return runs[runs.index.isin(keep)], cut


def _plot_behaviours(env: str, env_id: str, runs: pd.DataFrame, out_dir: Path, style) -> list[Path]:
    runs, all_seeds = drawn_runs(runs)
    bcs = read_behaviours(runs)
    if bcs.empty:
        return []
    algos = sorted(bcs["algo"].unique())
    two_d = "bc_1" in bcs and bcs["bc_1"].notna().all()
    if style.paper:  # one column for one panel, the full width for several
        width = style.single if len(algos) == 1 else style.double
        side = min(2.4, (width - 1.0) / len(algos))
        figsize = (width, side + 1.0)
    else:  # square panels for the plane, wider ones against the epoch; room for the colour bar and legend
        side = 3.4
        figsize = ((side if two_d else 1.4 * side) * len(algos) + 1.2, side + 1.3)
    fig, axes = plt.subplots(
        1, len(algos), figsize=figsize, squeeze=False, sharex=True, sharey=True, layout="constrained"
    )
    norm = plt.Normalize(bcs["epoch"].min(), bcs["epoch"].max())
    lay = layout(env_id, _env_kwargs(runs)) if two_d else None
    walls = lay is not None and bool(lay.walls)
    xlabel, ylabel = _axis_labels(env_id, two_d)
    scatter = None
    for ax, algo in zip(axes[0], algos):
        a = bcs[bcs["algo"] == algo]
        if lay is not None:
            for x0, y0, w, h in lay.walls:
                ax.add_patch(Rectangle((x0, y0), w, h, color="0.6", lw=0))
            ax.plot(*lay.start, marker="s", ms=6 if style.paper else 8, mfc="none", mec="k", ls="", label="start")
            if lay.goal is not None:
                ax.plot(*lay.goal, marker="*", ms=10 if style.paper else 12, color="gold", mec="k", ls="", label="goal")
        for source, s in a.groupby("source"):
            x, y = (s["bc_0"], s["bc_1"]) if two_d else (s["epoch"], s["bc_0"])
            scatter = ax.scatter(
                x,
                y,
                c=s["epoch"],
                cmap="viridis",
                norm=norm,
                s=4 if style.paper else 10,
                marker=SOURCE_MARKERS.get(source, "."),
                lw=(0.5 if style.paper else 0.8) if source == "eval" else 0,
                alpha=0.7,
                label=_source_label(source, walls),
                rasterized=len(a) > RASTER_POINTS,
            )
        seeds = a["seed"].nunique()
        of = f" of {all_seeds[algo]}" if algo in all_seeds else ""
        ax.set_title(
            f"{algo} ({seeds}{of} seed{'s' if seeds != 1 or of else ''})", fontsize=None if style.paper else 10
        )
        ax.set_xlabel(xlabel)
        if not two_d:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if two_d:
            ax.set_aspect("equal", adjustable="box")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    entries: dict[str, object] = {}  # every panel's, once each: the first panel may lack archived BCs
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    labels, handles = list(entries), list(entries.values())
    fig.colorbar(scatter, ax=axes[0].tolist(), label="epoch", shrink=0.9, aspect=15 if style.paper else 20)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=len(labels),
        frameon=False,
        markerscale=1.2,
        columnspacing=1.0,
        handletextpad=0.3,
        fontsize=None if style.paper else 8,
    )
    if style.paper:
        return save(fig, out_dir, f"behaviours_{env}", style.dpi, tight=False)
    which = "all seeds" if not all_seeds else f"at most {MAX_SEEDS_DRAWN} seeds per algorithm, spread over all"
    fig.suptitle(f"{env_id}: behaviour characterizations of {which}, coloured by epoch", fontsize=10)
    return save(fig, out_dir, f"behaviours_{env}", tight=False)


def main(argv=None) -> int:
    """``python -m harness.report.behaviours RESULTS_DIR... [--out DIR]``: :func:`plot_behaviours` for each
    env of the runs (each seed once) below the first RESULTS_DIR that exists, into ``--out`` (default
    ``RESULTS_DIR/report``); one line per file written. Returns 0, 1 when no run wrote ``behaviours.csv``, 2
    when no RESULTS_DIR exists (an ``error:`` line on stderr for both)."""
    p = argparse.ArgumentParser(
        prog="python -m harness.report.behaviours",
        description="Figures of where the agents went (behaviours.csv), one per env.",
    )
    p.add_argument(
        "results_dir",
        type=Path,
        nargs="+",
        help="folder of run directories (any depth); given several, the first that exists is used "
        "(make figures-novelty: results/deceptive_point_maze, else results/paper/deceptive_point_maze)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default RESULTS_DIR/report)")
    args = p.parse_args(argv)
    found = [d for d in args.results_dir if d.is_dir()]
    if not found:
        print(
            f"error: {' nor '.join(str(d) for d in args.results_dir)} exists; run the sweep first "
            "(python -m harness -m +experiment=deceptive_point_maze)",
            file=sys.stderr,
        )
        return 2
    results_dir = found[0]
    if results_dir != args.results_dir[0]:
        print(f"{args.results_dir[0]} does not exist: using {results_dir}")
    runs = learning_runs(load_runs(results_dir).runs)  # each seed once
    out = args.out or results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for env, r in runs.groupby("env", sort=True):
        written += plot_behaviours(env, r["env_id"].iloc[0], r, out)
    if not written:
        print(f"error: no run below {results_dir} wrote {BEHAVIOURS_FILE} (an env with env.bc set)", file=sys.stderr)
        return 1
    for path in written:
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
