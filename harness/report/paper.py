"""``python -m harness.report.paper [--results results/paper] [--out results/figures/paper]``: the paper's
figures and tables, from the run folders under ``results/paper`` alone (no training), at a paper's sizes.

What it reads (each part may be missing; the sweep is run in parts, across days):

- ``<results>/table1_mujoco/<algo>_<Env>_seed<s>/``: the Salimans et al. 2017 Table 1 sweep
  (``experiments/table1_mujoco.yaml``): :func:`harness.report.build_report` in the paper style into
  ``<out>/table1_mujoco/`` (per-task learning curves against steps, epochs and training time, the epochs-vs-
  training-time trade-off, the scaling figure where an algorithm ran at several ``workers.n``, every table),
  then, into ``<out>``, one multi-panel figure of the trade-off over every task, learning curves of every task
  against steps and against training time, the Table 1 ratios beside Salimans et al.'s (:data:`SALIMANS_TABLE1`)
  and the final returns;
- ``<results>/deceptive_point_maze/``: where the agents went (:func:`harness.report.behaviours.plot_behaviours`)
  and how many runs reached the goal, into ``<out>/deceptive_point_maze/``;
- ``<results>/landscape_toy/``: the toy-landscape sweep (``experiments/landscape_toy.yaml``), its ES and VO
  runs drawn from their run folders (:func:`harness.report.landscape.sweep_groups`) beside the smoothed
  landscapes (closed form, no run), into ``<out>/landscape/``. ``--landscape-runs`` adds the in-process
  descents of ``make figures-landscape`` (ES at several sigma, gradient descent, toy_2d), which run ES and VO
  for a few tens of seconds;
- ``<results>/es_variants_halfcheetah/`` and ``<results>/engines_halfcheetah/`` (:data:`COMPARISONS`): one task's
  comparison each (the ES variations and CMA-ES; the gymnasium and the removed envpool rollout engines): ``build_report`` into
  ``<out>/<part>/``, its learning curves, and ``<out>/<part>.md``, final return and time per configuration.

``<out>/README.md`` indexes everything: what was found and what was missing, one caption per figure with its
printed size, and which of a figure or a table reads better. Only a missing or empty ``<results>`` is an
error (one line, exit status 1); a missing part is listed there and the rest is drawn (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report import ReportOptions, aggregate, build_report, curves, figures, landscape, salimans2017, tables
from harness.report.behaviours import plot_behaviours
from harness.report.curves import CLOCK_AXES
from harness.report.figures import PAPER
from harness.report.load import find_run_dirs, load_runs
from harness.report.tables import fmt_ci

log = logging.getLogger(__name__)

#: Comparisons on one task beside Table 1, each an experiment under experiments/: (section, what it compares)
COMPARISONS = {
    "es_variants_halfcheetah": (
        "The ES variations and classic ES",
        "OpenAI-ES, its variations (noise, optimizers, curvature, jumps, guided sampling, "
        "topologies, virtual batch norm) and CMA-ES on HalfCheetah-v5 at 2M training steps",
    ),
    "engines_halfcheetah": (
        "Rollout engines",
        "OpenAI-ES on the gymnasium and envpool rollout engines, HalfCheetah-v5, 5M training steps (Intel Xeon, "
        "2026-12-03; the envpool engine was removed by issue 31, its runs stay as shipped)",
    ),
}
PARTS = (
    "salimans2017_mujoco",
    "table1_mujoco",
    "deceptive_point_maze",
    "landscape_toy",
    *COMPARISONS,
    "wall_time_scale",
)
#: The parts drawn by build_report into out/<part>, a report that keeps its own list of files
REPORT_PARTS = ("salimans2017_mujoco", "table1_mujoco", *COMPARISONS)
MAKE_PART = {
    "salimans2017_mujoco": "python -m harness -m +experiment=salimans2017_mujoco hydra.sweep.dir=results/paper/"
    "salimans2017_mujoco (the recipe's header lists its TRPO sweeps)",
    "table1_mujoco": "python -m harness -m +experiment=table1_mujoco hydra.sweep.dir=results/paper/table1_mujoco",
    **{
        part: f"python -m harness -m +experiment={part} hydra.sweep.dir=results/paper/{part} (the recipe's header "
        "lists its other sweeps)"
        for part in COMPARISONS
    },
    "deceptive_point_maze": "python -m harness -m +experiment=deceptive_point_maze hydra.sweep.dir=results/paper/"
    "deceptive_point_maze",
    "landscape_toy": "python -m harness -m +experiment=landscape_toy hydra.sweep.dir=results/paper/landscape_toy",
    "wall_time_scale": "python -m harness.bench.scale measure --out-dir results/paper/wall_time_scale, then "
    "python -m harness.bench.scale simulate results/paper/wall_time_scale/measured*.json --runs "
    "results/paper/salimans2017_mujoco --out-dir results/paper/wall_time_scale",
}

#: Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable Alternative to Reinforcement
#: Learning", Table 1: ES timesteps / TRPO timesteps to reach 25/50/75/100% of TRPO's *learning progress* after 5M
#: steps (init + p (final - init) on TRPO's mean curve; MuJoCo v1, 64-64 tanh MLP, 6 seeds), and TRPO's mean
#: return at 5M (its 100% threshold): {env: ({fraction: ratio}, final)}, from harness/report/data/salimans2017_table3.csv.
SALIMANS_TABLE1 = {
    env: (dict(zip(g["fraction"], g["es_trpo_ratio"])), float(g.loc[g["percent"] == 100, "threshold"].iloc[0]))
    for env, g in salimans2017.paper_table3().groupby("env", sort=True)
}
MANIFEST = ".paper-files"


class NoResults(Exception):
    """``results`` is missing or holds no run folder: nothing to draw."""


@dataclass
class Entry:
    """One item of the index: a figure (``path`` without suffix: PNG and PDF) or a table (``.md``, ``.csv``)."""

    section: str
    title: str
    path: str  # relative to the output folder, without suffix
    caption: str
    kind: str = "figure"
    advice: str = ""  # which of a figure or a table reads better


@dataclass
class Paper:
    """What :func:`build_paper` wrote."""

    out: Path
    index: Path
    entries: list[Entry] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)  # part -> one line on what was read
    missing: list[str] = field(default_factory=list)  # what was missing, one line each
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file written outside table1_mujoco/


@dataclass
class PaperOptions:
    """The settings of :func:`build_paper` (the command line's options): ``reps`` and ``seed`` of the
    bootstrap; ``threshold_mode``, ``wall_clock`` and ``include_busy`` as :class:`harness.report.ReportOptions`'s
    (``threshold_mode`` is not passed to the Salimans et al. 2017 part, whose protocol sets its own thresholds);
    ``landscape_runs``: also run the in-process toy-landscape descents, ``landscape_seeds`` seeds per setting."""

    reps: int = 2000
    seed: int = 0
    threshold_mode: str = "final"
    wall_clock: str = "train"
    include_busy: bool = False
    landscape_runs: bool = False
    landscape_seeds: int = 10


def build_paper(
    results: str | Path = "results/paper",
    out: str | Path = "results/figures/paper",
    options: PaperOptions | None = None,
) -> Paper:
    """Draw every figure and table the data under ``results`` allows into ``out`` and index them in
    ``out/README.md`` (see the module docstring). Files a previous call wrote into ``out`` (its
    :data:`MANIFEST`) are deleted first; nothing else there is.

    :raises NoResults: when ``results`` does not exist or holds no run folder.
    """

    opt = options or PaperOptions()
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise NoResults(
            f"{results} does not exist: no paper results to draw (runs go to {results}/<part>/, "
            f"parts: {', '.join(PARTS)})"
        )
    if not find_run_dirs(results):
        raise NoResults(f"{results} holds no run folder (config.yaml + metrics.csv): no paper results to draw")
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    paper = Paper(out=out, index=out / "README.md")
    others = sorted(
        p.name for p in results.iterdir() if p.is_dir() and p.name not in PARTS and not p.name.startswith(".")
    )
    if others:
        paper.notes.append(
            "Folders of "
            + str(results)
            + " that are not a part of the paper (no report of their own): "
            + ", ".join(f"`{o}`" for o in others)
            + "; the Hopper strip takes its policies from any folder."
        )
    _salimans2017(results / "salimans2017_mujoco", paper, opt)
    _table1(results / "table1_mujoco", paper, opt)
    _maze(results / "deceptive_point_maze", paper)
    _landscape(results / "landscape_toy", paper, opt)
    for part in COMPARISONS:
        _comparison(results / part, paper, opt, part)
    _wall_time_scale(results / "wall_time_scale", paper)
    _policy_strip(results, paper)
    paper.index.write_text(_index(paper, results, opt))
    paper.files.append(paper.index)
    (out / MANIFEST).write_text("".join(f"{p.relative_to(out).as_posix()}\n" for p in paper.files))
    return paper


# ----------------------------------------------------------------------------- parts


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _has_runs(folder: Path) -> bool:

    return folder.is_dir() and bool(find_run_dirs(folder))


def _missing(paper: Paper, part: str, folder: Path) -> None:
    what = "does not exist" if not folder.exists() else "holds no run folder"
    paper.missing.append(f"`{part}`: {folder} {what}; it is made by `{MAKE_PART[part]}`.")


def _figure_size(png: Path, dpi: int) -> str:
    """The printed size of a saved PNG: ``"7.0 x 2.4 in"``."""
    from PIL import Image

    with Image.open(png) as im:
        w, h = im.size
    return f"{w / dpi:.1f} x {h / dpi:.1f} in"


def _add_figures(paper: Paper, paths: list[Path], section: str, title: str, caption: str, advice: str = "") -> None:
    pngs = [p for p in paths if p.suffix == ".png"]
    for png in pngs:
        paper.entries.append(
            Entry(section, title, png.relative_to(paper.out).with_suffix("").as_posix(), caption, advice=advice)
        )
    paper.files += [p for p in paths if not _under_report(p, paper.out)]


def _under_report(path: Path, out: Path) -> bool:
    """A file of a report (``out/table1_mujoco``, ``out/<comparison>``), which keeps its own list of files."""
    return path.relative_to(out).parts[0] in REPORT_PARTS


def _salimans2017(folder: Path, paper: Paper, opt: PaperOptions) -> None:
    """Salimans et al. 2017's Table 1 as the paper measured it (``experiments/salimans2017_mujoco.yaml``,
    :mod:`harness.report.salimans2017`): ``build_report --protocol salimans2017`` into ``out/salimans2017_mujoco``;
    its table and its two figures in the index."""
    part = "salimans2017_mujoco"
    if not _has_runs(folder):
        _missing(paper, part, folder)
        return
    rep = build_report(
        folder,
        paper.out / part,
        ReportOptions(
            reps=opt.reps,
            seed=opt.seed,
            wall_clock=opt.wall_clock,
            include_busy=opt.include_busy,
            paper=True,
            behaviours=False,
            protocol="salimans2017",
            ignore=("budget.",),
        ),
    )  # an ES run extended to a larger budget is a seed of the same group (mean curves end
    # where the group's shortest run ends)
    runs = rep.loaded.runs
    if runs.empty:
        paper.missing.append(f"`{part}`: no usable run in {folder} (see {part}/report.md for what was skipped)")
        return
    learn = aggregate.learning_runs(runs)
    paper.found[part] = (
        f"{_n(len(runs), 'run')} read from `{folder}`, {len(learn)} counted (one per seed): "
        + ", ".join(f"{e}: {', '.join(f'{a} {len(g)}' for a, g in x.groupby('algo'))}" for e, x in learn.groupby("env"))
        + f". Full report: [{part}/report.md]({part}/report.md)."
    )
    section = "Table 1 as Salimans et al. measured it"
    t1 = rep.frames["salimans2017"]
    text = salimans2017.markdown(t1).split("\n", 2)[2]  # without its title: the index gives it
    paper.entries.append(
        Entry(
            section,
            "Table 1, protocol salimans2017, beside the paper's Table 3",
            f"{part}/salimans2017_table1",
            text,
            kind="table",
            advice="Table: the paper's cells beside ours, cell by cell; the figure below shows "
            "the same ratios against the paper's at a glance.",
        )
    )
    ratios = [p for p in rep.figures if p.stem.startswith("salimans2017_ratios")]
    _add_figures(
        paper,
        ratios,
        section,
        "ES / TRPO timesteps ratio beside the paper's, per task",
        f"{salimans2017.NAME}: per task, the timesteps ratio to each threshold (ours, circles; not reached "
        "within the budget: an open triangle at its lower bound) beside Salimans et al.'s (black squares), "
        "on a log axis with 1 marked (below 1: ES needs fewer steps than TRPO).",
    )
    mean = [p for p in rep.figures if p.stem.startswith("salimans2017_curves")]
    _add_figures(
        paper,
        mean,
        section,
        "Mean learning curves with the four thresholds",
        f"{salimans2017.NAME}: per task, each algorithm's mean evaluation curve over seeds against "
        "environment steps (TRPO dashed), with the thresholds, 25/50/75/100% of TRPO's learning progress, "
        "dotted. The crossings of these curves are the table's steps.",
    )


def _wall_time_scale(folder: Path, paper: Paper) -> None:
    """Wall time at scale (:mod:`harness.report.scale`): the model's CSV files (``python -m harness.bench.scale
    simulate``) drawn into ``out/wall_time_scale``, its figures and tables in the index. No run folder: the part
    is its CSV files."""
    from harness.report import scale

    part = "wall_time_scale"
    if not (folder / "validation.csv").exists():
        what = "does not exist" if not folder.exists() else "holds no validation.csv"
        paper.missing.append(f"`{part}`: {folder} {what}; it is made by `{MAKE_PART[part]}`.")
        return
    frames = scale.read(folder)
    paths = scale.draw(frames, paper.out / part)
    paper.found[part] = f"the model's CSV files in `{folder}` ({', '.join(scale.FILES)})"
    section = "Wall time at scale (a model calibrated here)"
    md = next(p for p in paths if p.suffix == ".md")
    paper.entries.append(
        Entry(
            section,
            "Validation, projections and calibration",
            md.relative_to(paper.out).with_suffix("").as_posix(),
            scale.summary(frames),
            kind="table",
        )
    )
    captions = {
        "speedup": "Speedup of one ES generation against workers (log-log), simulated from costs measured here on "
        "1-2 workers, on a stated cluster (10 Gb/s, 0.1 ms, 18 workers a machine); the ideal line dotted; Salimans "
        "et al.'s Humanoid points as stars, their 18-core point put on the ideal line (other hardware).",
        "bytes": "Bytes through the coordinator's link a generation: shared seeds (noise offsets) against full "
        "parameter vectors (workers.ship=vectors), per policy size.",
        "time_to_threshold": "HalfCheetah, minutes to 50% of TRPO's learning progress against workers: steps to the "
        "threshold from the shipped salimans2017_mujoco runs, time a generation or iteration from the model.",
    }
    for stem, caption in captions.items():
        _add_figures(paper, [p for p in paths if p.stem == stem], section, stem.replace("_", " ").capitalize(), caption)
    paper.files += [p for p in paths if p.suffix in (".md", ".csv")]


def _comparison(folder: Path, paper: Paper, opt: PaperOptions, part: str) -> None:
    """A comparison on one task (:data:`COMPARISONS`): ``build_report`` into ``out/<part>``, its learning
    curves, and a table of final returns and wall times, one row per configuration."""
    section, what = COMPARISONS[part]
    if not _has_runs(folder):
        _missing(paper, part, folder)
        return
    rep = build_report(
        folder,
        paper.out / part,
        ReportOptions(
            reps=opt.reps,
            seed=opt.seed,
            threshold_mode=opt.threshold_mode,
            wall_clock=opt.wall_clock,
            include_busy=opt.include_busy,
            paper=True,
            behaviours=False,
        ),
    )
    runs = rep.loaded.runs
    if runs.empty:
        paper.missing.append(f"`{part}`: no usable run in {folder} (see {part}/report.md for what was skipped)")
        return
    learn = aggregate.learning_runs(runs)
    clock = curves.CLOCKS[opt.wall_clock]
    paper.found[part] = (
        f"{_n(len(runs), 'run')} read from `{folder}`, {len(learn)} counted (one per seed), "
        f"{learn['algo'].nunique()} configurations. Full report: [{part}/report.md]({part}/report.md)."
    )
    for env in sorted(runs["env"].unique()):
        curve = [p for p in rep.figures if p.stem == figures.file_stem(f"curves_{env}")]
        _add_figures(
            paper,
            curve,
            section,
            f"{env}: learning curves",
            f"{what}: evaluation return against environment steps, epochs and wall-clock time; IQM over "
            "seeds with its 95% stratified-bootstrap CI, every counted run thin.",
            "Figure for the shape of learning; the final returns and times are in the table below.",
        )
    table = comparison_table(rep.frames["final"], learn, clock)
    paths = [paper.out / f"{part}.csv", paper.out / f"{part}.md"]
    table.to_csv(paths[0], index=False)
    text = tables.to_markdown(table) + "\n" + COMPARISON_NOTES
    paths[1].write_text(f"# {section}: final evaluation return and time\n\n{what}.\n\n" + text)
    paper.files += paths
    paper.entries.append(
        Entry(
            section,
            f"{section}: final return and time",
            part,
            text,
            kind="table",
            advice="Table: final returns with CIs and times are read, not seen; the curves show how they got there.",
        )
    )


COMPARISON_NOTES = """IQM over seeds of each run's last evaluated return with a 95% stratified-bootstrap CI; the median of the runs'
training steps and of their training time (evaluation excluded; wall time with it in brackets), on the machine
their summary.json names. Rows are sorted by IQM.
"""


def comparison_table(final: pd.DataFrame, learn: pd.DataFrame, clock: str = "train_time_s") -> pd.DataFrame:
    """One row per (env, configuration): final return IQM and CI, runs, median training steps and median times
    (``clock`` and the wall time, seconds), sorted by IQM within each env."""
    if final.empty:
        return pd.DataFrame()
    times = learn.groupby(["env", "algo"]).agg(
        steps=("timesteps", "median"), clock=(clock, "median"), wall=("wall_time_s", "median")
    )
    rows = []
    for r in final.sort_values(["env", "iqm"], ascending=[True, False]).itertuples():
        t = times.loc[(r.env, r.algo)] if (r.env, r.algo) in times.index else None
        rows.append(
            {
                "env": r.env,
                "configuration": r.algo,
                "final return IQM [95% CI]": tables.fmt_ci(r.iqm, r.lower, r.upper, 4),
                "runs": int(r.n_runs),
                "steps": tables._steps(t["steps"]) if t is not None else "n/a",
                "time (s)": f"{t['clock']:.0f} ({t['wall']:.0f})" if t is not None else "n/a",
            }
        )
    return pd.DataFrame(rows)


def _table1(folder: Path, paper: Paper, opt: PaperOptions) -> None:

    if not _has_runs(folder):
        _missing(paper, "table1_mujoco", folder)
        return
    rep = build_report(
        folder,
        paper.out / "table1_mujoco",
        ReportOptions(
            reps=opt.reps,
            seed=opt.seed,
            threshold_mode=opt.threshold_mode,
            wall_clock=opt.wall_clock,
            include_busy=opt.include_busy,
            paper=True,
            behaviours=False,
        ),
    )
    runs = rep.loaded.runs
    if runs.empty:
        paper.missing.append(
            f"`table1_mujoco`: no usable run in {folder} (see table1_mujoco/report.md for what was skipped)"
        )
        return
    fr, clock = rep.frames, curves.CLOCKS[opt.wall_clock]
    learn = aggregate.learning_runs(runs)
    paper.found["table1_mujoco"] = (
        f"{_n(len(runs), 'run')} read from `{folder}`, {len(learn)} counted (one per seed), "
        f"{len(aggregate.wall_clock_runs(runs))} in the wall-clock statistics; "
        + ", ".join(f"{e}: {', '.join(f'{a} {len(g)}' for a, g in x.groupby('algo'))}" for e, x in learn.groupby("env"))
        + ". Full report: [table1_mujoco/report.md](table1_mujoco/report.md)."
    )
    paper.missing += _table1_gaps(learn)
    n_busy = int(runs["busy"].map(lambda v: v is True).sum())
    if n_busy:
        paper.notes.append(
            f"{n_busy} run{'s' if n_busy != 1 else ''} of table1_mujoco ran on a busy machine: "
            + (
                "counted in the wall-clock statistics all the same (--include-busy)."
                if opt.include_busy
                else "left out of every wall-clock statistic, counted against "
                "steps and epochs (list in table1_mujoco/report.md)."
            )
        )
    clock_words = (
        "training wall-clock time (evaluation excluded)"
        if clock == "train_time_s"
        else "wall-clock time (evaluation included)"
    )
    budgets = ", ".join(f"{a} {tables._steps(v)}" for a, v in learn.groupby("algo")["timesteps"].median().items())
    thr = fr["thresholds"]

    # the per-task figures build_report drew in the paper style
    for env in sorted(runs["env"].unique()):
        curve = [p for p in rep.figures if p.stem == figures.file_stem(f"curves_{env}")]
        _add_figures(
            paper,
            curve,
            "Learning curves, per task",
            f"{env}: learning curves",
            f"{env}: evaluation return against environment steps, epochs (policy updates) and {clock_words}; "
            "IQM over seeds (thick) with its 95% stratified-bootstrap CI (band), every counted run thin. The "
            "legend gives the runs per algorithm and, where they differ, those on the time axis (busy runs "
            f"are left out there). Each IQM ends where its shortest run ends (median training steps per run: "
            f"{budgets}).",
            "Figure: the shape of learning (when, how fast, how variable) does not fit a table; the final "
            "returns are in the table below.",
        )
        trade = [p for p in rep.figures if p.stem == figures.file_stem(f"tradeoff_{env}")]
        _add_figures(
            paper,
            trade,
            "Epochs against training time, per task",
            f"{env}: epochs vs {clock_words}",
            f"{env}: epochs (y) against {clock_words} (x) to reach "
            f"{_threshold_words(thr[thr['env'] == env], opt.threshold_mode)}; one marker shape per "
            "fraction, median over seeds with 95% bootstrap CIs, faint dots single runs; log axes. "
            + _not_reached(fr["tradeoff"], env),
            "Figure for the trade-off (ES: few epochs, little time; TRPO: many epochs, more time); the exact "
            "medians are in table1_mujoco/tradeoff.md.",
        )
        scale = [p for p in rep.figures if p.stem == figures.file_stem(f"scaling_{env}")]
        _add_figures(
            paper,
            scale,
            "Scaling with workers",
            f"{env}: scaling with workers.n",
            f"{env}: {clock_words} per epoch and to the 50% threshold against workers.n, with the ideal "
            "linear-scaling line.",
            "Table rather than figure with two or three worker counts (table1_mujoco/scaling.md).",
        )
    paper.notes.append(
        "table1_mujoco/ is `make report`'s report in the paper style without the behaviour-"
        "characterization figures of the NSR-ES runs (`python -m harness.report` draws them)."
    )
    if not any(p.stem.startswith("scaling_") for p in rep.figures):
        paper.notes.append(
            "No scaling figure: in table1_mujoco no algorithm ran at more than one workers.n on an "
            "env (the scaling sweep, experiments/scaling_halfcheetah.yaml, is not part of "
            "results/paper)."
        )

    # one figure for every task
    tradeoff_all = figures.plot_tradeoff_panels(fr["tradeoff"], fr["ttt"], thr, paper.out, figures.PAPER)
    _add_figures(
        paper,
        tradeoff_all,
        "Every task in one figure",
        f"Epochs vs {clock_words}, every task",
        f"One panel per task with thresholds: epochs (y) against {clock_words} (x) to reach "
        f"{_threshold_words(thr, opt.threshold_mode)}; "
        "median over seeds, 95% bootstrap CIs, log axes with each panel's own range; the legend gives each "
        "group's runs on the time axis (busy runs left out). "
        + " ".join(_not_reached(fr["tradeoff"], env) for env in sorted(thr["env"].unique())),
        "Figure: the point is the shape (ES lower left in epochs, TRPO upper right), which a table of 4 "
        "fractions x tasks x algorithms hides.",
    )
    for axis, words in (("timesteps", "environment steps"), (clock, clock_words)):
        paths = figures.plot_curves_panels(
            rep.loaded.metrics,
            runs,
            fr["curves"],
            paper.out,
            axis=axis,
            clock=clock,
            style=figures.PAPER,
            stem=f"curves_{axis}_all",
        )
        _add_figures(
            paper,
            paths,
            "Every task in one figure",
            f"Learning curves against {words}, every task",
            f"Evaluation return against {words}, one panel per task: IQM over seeds with 95% stratified-"
            "bootstrap CI, single runs thin; runs per task in the legend"
            + (" (busy runs left out of this time axis)." if axis == clock else "."),
            "Figure."
            + (
                " Wall-clock comparisons across tasks depend on the machine; the trade-off "
                "figure and the ratio table normalise them."
                if axis == clock
                else ""
            ),
        )

    # tables
    t1 = table1_comparison(fr["ratios"], fr["thresholds"], fr["resolution"], learn)
    md = _table1_markdown(t1, fr, clock, opt, runs)
    paths = [paper.out / "table1_vs_salimans.csv", paper.out / "table1_vs_salimans.md"]
    t1.to_csv(paths[0], index=False)
    paths[1].write_text(md)
    paper.files += paths
    paper.entries.append(
        Entry(
            "Tables",
            "Table 1 ratios, protocol score (tuned linear ES, fractions of TRPO's final "
            "return at 1M), beside Salimans et al.",
            "table1_vs_salimans",
            md,
            kind="table",
            advice="Table: ratios with CIs against the paper's numbers are read, not seen.",
        )
    )
    final = final_table(fr["final"], learn)
    paths = [paper.out / "final_returns.csv", paper.out / "final_returns.md"]
    final.to_csv(paths[0], index=False)
    paths[1].write_text("# Final evaluation return\n\n" + tables.to_markdown(final) + "\n" + FINAL_NOTES)
    paper.files += paths
    paper.entries.append(
        Entry(
            "Tables",
            "Final evaluation return",
            "final_returns",
            tables.to_markdown(final) + "\n" + FINAL_NOTES,
            kind="table",
            advice="Table: one number with its CI per task and algorithm; a bar chart would "
            "hide that the budgets differ (given in each cell).",
        )
    )


def _threshold_words(thr: pd.DataFrame, mode: str) -> str:
    t = thr[thr["threshold"].notna()]
    if t.empty:
        return "the return thresholds"
    fractions = "/".join(f"{f:.0%}".rstrip("%") for f in sorted(t["fraction"].unique())) + "%"
    what = "final return" if mode == "final" else "learning progress (initial + f x (final - initial))"
    words = f"{fractions} of TRPO's {what} (mean over its seeds; protocol score)"
    fallback = t[t["fallback"].astype(bool)].drop_duplicates("env")
    if not fallback.empty:
        words += "; " + ", ".join(f"on {r.env}, without TRPO runs, of {r.reference}'s" for r in fallback.itertuples())
    other = t[(t["mode"] != mode) & (t["mode"] != "none")].drop_duplicates("env")
    if not other.empty:
        words += "; " + ", ".join(f"on {r.env} the {r.mode} rule ({r.note})" for r in other.itertuples())
    return words


def _not_reached(tradeoff: pd.DataFrame, env: str) -> str:
    """The medians of ``env`` the trade-off figure could not draw (not reached by more than half of the runs),
    on its two axes: epochs (per algorithm) and seconds (per algorithm and workers.n)."""

    t = tradeoff[(tradeoff["env"] == env) & tradeoff["axis"].isin(("epoch", *CLOCK_AXES))]
    t = t[~t["median"].map(lambda v: math.isfinite(float(v)))]
    if t.empty:
        return ""
    by_algo: dict[str, set] = {}
    for r in t.itertuples():
        by_algo.setdefault(r.algo, set()).add(r.fraction)
    return (
        f"{env}, not drawn (median over seeds not reached): "
        + "; ".join(f"{a} {', '.join(f'{f:.0%}' for f in sorted(fs))}" for a, fs in sorted(by_algo.items()))
        + "."
    )


def _table1_gaps(learn: pd.DataFrame) -> list[str]:
    """Runs of the Table 1 grid (Salimans et al.'s six tasks x the algorithms and seeds seen) that are absent."""
    algos, seeds = sorted(learn["algo"].unique()), sorted(learn["seed"].unique())
    lines = []
    done = {(r.env, r.algo, r.seed) for r in learn.itertuples()}
    for env in SALIMANS_TABLE1:
        absent = [(a, s) for a in algos for s in seeds if (env, a, s) not in done]
        if len(absent) == len(algos) * len(seeds):
            lines.append(f"`table1_mujoco`: no run on {env}.")
        elif absent:
            by_algo: dict[str, list[int]] = {}
            for a, s in absent:
                by_algo.setdefault(a, []).append(int(s))
            lines.append(
                f"`table1_mujoco`: on {env} no run of "
                + "; ".join(f"{a} seed{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}" for a, v in by_algo.items())
                + "."
            )
    return lines


def table1_comparison(
    ratios: pd.DataFrame, thresholds: pd.DataFrame, resolution: pd.DataFrame, learn: pd.DataFrame
) -> pd.DataFrame:
    """Salimans et al.'s Table 1 beside this harness's ratios: one row per (env, fraction) of the paper's six
    tasks (and any other task with a ratio), the paper's ES/TRPO timesteps ratio, and per algorithm other
    than TRPO its timesteps ratio against TRPO with the 95% CI and how many runs reached.

    An env without TRPO runs has no ratio here (the report's fallback reference is not TRPO).

    :returns: columns ``env, fraction, salimans_es_trpo, algo, ratio, ratio_lower, ratio_upper, n_reached,
        n_runs, ref_n_reached, ref_n_runs, threshold, reference_final, note`` (one row per algorithm; an env
        without any ratio has one row with ``algo`` empty and the reason in ``note``).
    """
    rows = []
    ts = ratios[(ratios["axis"] == "timesteps") & ~ratios["fallback"].astype(bool)]
    algos = sorted(a for a in learn["algo"].unique() if a != "trpo")
    envs = list(SALIMANS_TABLE1) + sorted(set(ts["env"]) - set(SALIMANS_TABLE1))
    for env in envs:
        paper_ratios = SALIMANS_TABLE1.get(env, ({}, math.nan))[0]
        fractions = sorted(set(paper_ratios) | set(ts.loc[ts["env"] == env, "fraction"]))
        env_runs = learn[learn["env"] == env]
        thr = thresholds[thresholds["env"] == env]
        if env_runs.empty:
            note = "no run"
        elif "trpo" not in set(env_runs["algo"]):
            note = "no TRPO run"
        elif thr.empty or thr["threshold"].isna().all():
            note = "no threshold: " + (thr["note"].iloc[0] if not thr.empty else "no evaluated run")
        else:
            note = ""
        for f in fractions:
            base = {"env": env, "fraction": f, "salimans_es_trpo": paper_ratios.get(f, math.nan)}
            sub = ts[(ts["env"] == env) & (ts["fraction"] == f)]
            if sub.empty:
                rows.append({**base, "algo": "", "note": note or "no ratio"})
                continue
            for algo in algos:
                r = sub[sub["algo"] == algo]
                if r.empty:
                    rows.append({**base, "algo": algo, "note": "no run"})
                    continue
                r = r.iloc[0]
                rows.append(
                    {
                        **base,
                        "algo": algo,
                        "ratio": r["ratio"],
                        "ratio_lower": r["ratio_lower"],
                        "ratio_upper": r["ratio_upper"],
                        "n_reached": r["n_reached"],
                        "n_runs": r["n_runs"],
                        "ref_n_reached": r["ref_n_reached"],
                        "ref_n_runs": r["ref_n_runs"],
                        "threshold": r["threshold"],
                        "note": "",
                    }
                )
    cols = [
        "env",
        "fraction",
        "salimans_es_trpo",
        "algo",
        "ratio",
        "ratio_lower",
        "ratio_upper",
        "n_reached",
        "n_runs",
        "ref_n_reached",
        "ref_n_runs",
        "threshold",
        "note",
    ]
    out = pd.DataFrame(rows, columns=cols)
    ref = dict(zip(thresholds["env"], thresholds["reference_final"]))
    out["reference_final"] = [ref.get(e, math.nan) for e in out["env"]]
    return out


def _ratio_cell(r) -> str:

    if r.note:
        return f"– ({r.note})"
    cell = fmt_ci(r.ratio, r.ratio_lower, r.ratio_upper, 2)
    if (r.n_reached, r.ref_n_reached) != (r.n_runs, r.ref_n_runs):
        cell += f" ({int(r.n_reached)}/{int(r.n_runs)} vs {int(r.ref_n_reached)}/{int(r.ref_n_runs)} reached)"
    return cell


def _table1_markdown(t1: pd.DataFrame, fr: dict, clock: str, opt: PaperOptions, runs: pd.DataFrame) -> str:

    algos = sorted(a for a in t1["algo"].unique() if a)
    wide = []
    for (env, f), g in t1.groupby(["env", "fraction"], sort=False):
        row = {"env": env, "fraction": f"{f:.0%}", "Salimans et al. ES/TRPO": tables.fmt(g["salimans_es_trpo"].iloc[0])}
        for algo in algos:
            r = g[g["algo"] == algo]
            row[f"{algo}/trpo [95% CI]"] = _ratio_cell(r.iloc[0]) if not r.empty else _ratio_cell(g.iloc[0])
        wide.append(row)
    lines = [
        "# Table 1 ratios, protocol score (not the paper's): timesteps to threshold, algorithm / TRPO",
        "",
        tables.to_markdown(pd.DataFrame(wide)),
        "",
    ]
    # the references the thresholds come from, beside the paper's
    thr = fr["thresholds"].drop_duplicates("env")
    refs = []
    for env in list(SALIMANS_TABLE1) + sorted(set(thr["env"]) - set(SALIMANS_TABLE1)):
        t = thr[thr["env"] == env]
        refs.append(
            {
                "env": env,
                "Salimans et al. TRPO at 5M steps": tables.fmt(SALIMANS_TABLE1.get(env, (0, math.nan))[1]),
                "reference here": "–"
                if t.empty
                else f"{t['reference'].iloc[0]}" + (" (no TRPO runs)" if bool(t["fallback"].iloc[0]) else ""),
                "its final return (seeds)": "–"
                if t.empty
                else f"{tables.fmt(t['reference_final'].iloc[0], 4)} ({int(t['n_reference_runs'].iloc[0])})",
                "threshold rule": "–" if t.empty else t["mode"].iloc[0],
            }
        )
    lines += [
        "Reference returns (threshold rule `final`: the thresholds are 25/50/75/100% of them; Salimans et al.'s "
        "column is TRPO's mean return at 5M, their 100% threshold):",
        "",
        tables.to_markdown(pd.DataFrame(refs)),
        "",
    ]
    res = fr["resolution"]
    if not res.empty:
        spacing = res.pivot(index="env", columns="algo", values="eval_every_timesteps")
        cells = spacing.apply(lambda col: col.map(tables._steps))
        lines += [
            "Evaluation resolution, median training steps between consecutive evaluations (a time to threshold "
            "is only as fine as this):",
            "",
            tables.to_markdown(cells.reset_index()),
            "",
        ]
    wall = fr["ratios"][(fr["ratios"]["axis"] == clock) & ~fr["ratios"]["fallback"].astype(bool)]
    if not wall.empty:
        w, crossed = [], set()
        reference = dict(zip(fr["thresholds"]["env"], fr["thresholds"]["reference"]))
        for (env, f), g in wall.groupby(["env", "fraction"], sort=True):
            row = {"env": env, "fraction": f"{f:.0%}"}
            for r in g.itertuples():
                cell = tables.fmt_ci(r.ratio, r.ratio_lower, r.ratio_upper, 2)
                if aggregate.machines_differ(runs, env, (r.algo, r.workers_n), (reference[env], r.ref_workers_n)):
                    cell, crossed = cell + " †", crossed | {env}
                row[f"{r.group} / {r.reference_group}"] = cell
            w.append(row)
        lines += [
            f"The same ratio in {'training wall-clock time (evaluation excluded)' if clock == 'train_time_s' else 'wall-clock time'} "
            "(not in Salimans et al.'s table; their text reports ES 20-60x faster in wall-clock time with "
            "enough workers). Busy runs left out unless --include-busy:",
            "",
            tables.to_markdown(pd.DataFrame(w).fillna("–")),
            "",
        ]
        if crossed:
            lines += [
                "† The two groups' runs ran on different machines, so this ratio compares machines as well as "
                "algorithms (`summary.json` `machine.host`; `unrecorded`: a run from before it was recorded): "
                + "; ".join(
                    f"{env}: "
                    + ", ".join(
                        f"{a} on {' + '.join(aggregate.machines_of(runs, env, a))}"
                        for a in sorted(aggregate.wall_clock_runs(runs).query("env == @env")["algo"].unique())
                    )
                    for env in sorted(crossed)
                )
                + ". The timesteps and epochs ratios above do not "
                "depend on the machine.",
                "",
            ]
    lines += [TABLE1_NOTES.format(mode=opt.threshold_mode)]
    return "\n".join(lines)


TABLE1_NOTES = """\
Ratio: median over seeds of the algorithm's timesteps to the threshold / the same for TRPO (the first evaluated
row at or above it; a run that never reaches counts as infinitely late: "not reached" when the algorithm's median
is not reached, "–" when TRPO's is not), with a 95% bootstrap CI (rliable's stratified bootstrap, both groups
resampled). This is protocol `score`, not the paper's: the thresholds are fractions of TRPO's final return at *its* budget in the
recipe (1M steps; threshold rule `{mode}`, see the reference table), times are medians over seeds of each run's
first evaluation at or above them, the ES family is tuned per task with linear policies, and the seeds are those
listed. Salimans et al. (their Table 1; MuJoCo v1, 64-64 tanh MLP, one ES setting, 6 seeds) took fractions of
TRPO's *learning progress* at 5M steps, init + p (final - init), on mean curves over seeds: that is protocol
`salimans2017`, the section "Table 1 as Salimans et al. measured it". Other axes (epochs, wall-clock per
workers.n pair, the mean-curve variant) are in table1_mujoco/salimans_table1.md.
"""

FINAL_NOTES = """\
IQM over seeds of each run's last evaluated return, with a 95% stratified-bootstrap CI; in brackets the runs and
their median training steps. The budgets differ between algorithms, so a row compares algorithms at their own
budgets, not at equal data. Runs that did not complete are counted only where no run of the group completed
(table1_mujoco/report.md lists them).
"""


def final_table(final: pd.DataFrame, learn: pd.DataFrame) -> pd.DataFrame:
    """Final returns, one row per env and one column per algorithm: ``IQM [CI] (n runs at s steps)``, ``s`` the
    median training steps of those runs (budgets differ between algorithms)."""

    if final.empty:
        return pd.DataFrame()
    budget = learn.groupby(["env", "algo"])["timesteps"].median()
    rows = []
    for env, g in final.groupby("env", sort=True):
        row = {"env": env}
        for r in g.itertuples():
            row[r.algo] = (
                tables.fmt_ci(r.iqm, r.lower, r.upper, 4)
                + f" ({_n(r.n_runs, 'run')} at {tables._steps(budget.get((env, r.algo)))} steps)"
            )
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def _maze(folder: Path, paper: Paper) -> None:

    if not _has_runs(folder):
        _missing(paper, "deceptive_point_maze", folder)
        return
    loaded = load_runs(folder)
    runs = aggregate.learning_runs(loaded.runs)
    if runs.empty:
        paper.missing.append(f"`deceptive_point_maze`: no usable run in {folder}")
        return
    sub = paper.out / "deceptive_point_maze"
    sub.mkdir(exist_ok=True)
    bad = runs[runs["status"] != "completed"]
    paper.found["deceptive_point_maze"] = (
        f"{_n(len(loaded.runs), 'run')} read from `{folder}`, {len(runs)} counted (one per seed): "
        + ", ".join(f"{a} {len(g)}" for a, g in runs.groupby("algo"))
        + (
            f"; {_n(len(bad), 'run')} did not complete ({', '.join(f'`{r}`' for r in bad['run'])}) and "
            f"count{'s' if len(bad) == 1 else ''} because no run of {'its' if len(bad) == 1 else 'their'} "
            "algorithm did"
            if not bad.empty
            else ""
        )
        + "."
    )
    drawn = False
    for env, r in runs.groupby("env", sort=True):
        paths = plot_behaviours(env, r["env_id"].iloc[0], r, sub, PAPER)
        drawn |= bool(paths)
        _add_figures(
            paper,
            paths,
            "Deceptive maze",
            f"{env}: where the agents went",
            f"{r['env_id'].iloc[0]}: behaviour characterizations (final x, y) of every counted run, one panel "
            "per algorithm, coloured by epoch, over the maze (grey walls; square: start, star: goal). o: the "
            "BC archived after an update (the mean over the updated agent's BC episodes, so it may lie inside "
            "a wall); x: one evaluation episode. Seeds per algorithm in the panel titles.",
            "Figure: where the agents went is spatial; how many reached the goal is the table below.",
        )
    if not drawn:
        paper.missing.append(f"`deceptive_point_maze`: no run in {folder} wrote behaviours.csv (no figure)")
    success, final = aggregate.success_table(runs), aggregate.final_return_table(runs)
    if not success.empty:
        paper.files += tables.write_table(
            success,
            sub,
            "success",
            title="Goal reached",
            notes="n_final_success: runs whose last evaluation had an episode within the "
            "goal radius; n_any_success: at any evaluation.",
        )
        paper.entries.append(
            Entry(
                "Deceptive maze",
                "Goal reached, per algorithm",
                "deceptive_point_maze/success",
                tables.to_markdown(success),
                kind="table",
                advice="Table: counts of runs out of a handful of seeds.",
            )
        )
    if not final.empty:
        md = tables.final_markdown(final)
        paper.files += tables.write_table(
            final, sub, "final_return", markdown=md, title="Final evaluation return: IQM over seeds [95% bootstrap CI]"
        )
        paper.entries.append(
            Entry(
                "Deceptive maze",
                "Final evaluation return (how much closer to the goal)",
                "deceptive_point_maze/final_return",
                tables.to_markdown(md),
                kind="table",
            )
        )


def _landscape(folder: Path, paper: Paper, opt: PaperOptions) -> None:

    sub = paper.out / "landscape"
    sub.mkdir(exist_ok=True)
    advice = {
        "toy_1d_smoothed": "Figure.",
        "toy_2d_smoothed": "Figure.",
        "toy_1d_sweep_es_vs_vo": "Figure; the counts in the caption are the table.",
        "toy_1d_sweep_vo_plane": "Figure: the point of VO, seen from above.",
        "toy_1d_es_descent": "Figure.",
        "toy_1d_vo_plane": "Figure.",
        "toy_1d_es_vs_vo": "Figure.",
        "toy_2d_descent": "Figure.",
    }
    titles = {
        "toy_1d_smoothed": "toy_1d and its Gaussian-smoothed versions",
        "toy_2d_smoothed": "toy_2d and its Gaussian-smoothed versions",
        "toy_1d_es_descent": "ES descends the smoothed loss (toy_1d)",
        "toy_1d_vo_plane": "VO's objective J(mu, σ) with VO and ES paths (toy_1d)",
        "toy_1d_es_vs_vo": "ES against VO from a poor start (toy_1d)",
        "toy_2d_descent": "ES, VO and gradient descent on toy_2d",
        "toy_1d_sweep_es_vs_vo": "The toy sweep's runs: ES against VO (toy_1d)",
        "toy_1d_sweep_vo_plane": "The toy sweep's runs on VO's objective J(mu, σ) (toy_1d)",
    }
    if opt.landscape_runs:
        figs = landscape.build_figures(sub, opt.landscape_seeds, style=PAPER, readme=False)
        source = f"in-process ES, VO and gradient-descent runs ({opt.landscape_seeds} seeds per setting)"
    else:
        figs = landscape.smoothed_figures(sub, style=PAPER)
        source = "closed form, no run"
        paper.notes.append(
            "Landscape descents of `make figures-landscape` (ES at several sigma, gradient descent, "
            "toy_2d; in-process runs, tens of seconds) are not drawn here: add `--landscape-runs`."
        )
    for stem, caption in figs:
        _add_figures(
            paper,
            [sub / f"{stem}.png", sub / f"{stem}.pdf"],
            "Toy landscapes",
            titles.get(stem, stem),
            f"{caption} ({source})",
            advice.get(stem, "Figure."),
        )
    if not _has_runs(folder):
        _missing(paper, "landscape_toy", folder)
        return
    groups, notes = landscape.sweep_groups(folder)
    paper.notes += [f"landscape_toy: {n}" for n in notes]
    if not any(g.env == "toy_1d" for g in groups):
        paper.missing.append(f"`landscape_toy`: no toy_1d run with behaviours.csv in {folder} (no sweep figure)")
        return
    paper.found["landscape_toy"] = (
        f"`{folder}`: " + ", ".join(f"{g.label} on {g.env}: {len(g.runs)} runs" for g in groups) + "."
    )
    for fig in (landscape.figure_sweep_es_vs_vo, landscape.figure_sweep_plane):
        stem, caption = fig(groups, sub, f"`{folder.name}`", style=PAPER)
        _add_figures(
            paper,
            [sub / f"{stem}.png", sub / f"{stem}.pdf"],
            "Toy landscapes",
            titles.get(stem, stem),
            caption,
            advice.get(stem, "Figure."),
        )


# ----------------------------------------------------------------------------- index and files

#: the steps of the episode a strip shows (Hopper-v5: 0.008 s a step, so 0 to 1.6 s of it)
STRIP_STEPS = (0, 40, 80, 120, 160, 200)


def strip_policies(results: Path, env_id: str = "Hopper-v5") -> dict[str, Path]:
    """One shipped run per algorithm on ``env_id`` whose policy can be replayed (its ``policy.npz``,
    TRPO's ``model.zip``, or a checkpoint): the one with the highest final ``eval_return`` in its
    ``summary.json``, by algorithm (``algo.name``) in name order."""
    import json

    import yaml

    best: dict[str, tuple[float, Path]] = {}
    for run in find_run_dirs(results):
        run = Path(run)
        summary = run / "summary.json"
        if not summary.exists() or not any(
            (run / f).exists() for f in ("policy.npz", "model.zip", "checkpoint/latest")
        ):
            continue
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        if cfg["env"].get("id") != env_id:
            continue
        value = json.loads(summary.read_text()).get("eval_return")
        value = -math.inf if value is None else float(value)
        algo = cfg["algo"]["name"]
        if algo not in best or value > best[algo][0]:
            best[algo] = (value, run)
    return {algo: best[algo][1] for algo in sorted(best)}


def _policy_strip(results: Path, paper: Paper) -> None:
    """A strip of frames of one shipped Hopper policy per algorithm (:func:`strip_policies`), for the README:
    the episode of each run's first evaluation seed at its last epoch, at :data:`STRIP_STEPS`."""
    import matplotlib.pyplot as plt

    from harness import replay

    runs = strip_policies(results)
    if not runs:
        paper.missing.append(
            f"Hopper strip: no run under {results} on Hopper-v5 with a policy to replay "
            "(policy.npz, model.zip or a checkpoint)"
        )
        return
    rows = []
    for algo, run in runs.items():
        try:
            policy = replay.load_policy(
                run, replay.FINAL if (run / "policy.npz").exists() or (run / "model.zip").exists() else "latest"
            )
            rows.append((algo, run, policy.epoch, replay.frames_at(policy, policy.eval_seeds(1)[0], list(STRIP_STEPS))))
        except replay.RenderError as exc:
            paper.missing.append(f"Hopper strip: {exc}")
            return
    paths = [paper.out / "hopper_strip.png", paper.out / "hopper_strip.pdf"]
    with PAPER.drawing():
        fig, axes = plt.subplots(len(rows), len(STRIP_STEPS), figsize=(PAPER.double, 1.2 * len(rows)), squeeze=False)
        for r, (algo, _run, _epoch, frames) in enumerate(rows):
            for c, frame in enumerate(frames):
                ax = axes[r][c]
                ax.imshow(frame)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == len(rows) - 1:
                    ax.set_xlabel(f"step {STRIP_STEPS[c]}")
            axes[r][0].set_ylabel(algo)
        fig.tight_layout(pad=0.3)
        fig.savefig(paths[0], dpi=PAPER.dpi)
        fig.savefig(paths[1])
    plt.close(fig)
    used = "; ".join(f"{algo}: `{run.relative_to(results)}` (epoch {epoch})" for algo, run, epoch, _ in rows)
    _add_figures(
        paper,
        paths,
        "Shipped policies",
        "Hopper-v5, one shipped policy per algorithm",
        f"Frames of one episode (the first seed of the run's last evaluation) at "
        f"{', '.join(str(s) for s in STRIP_STEPS)} steps, one row per algorithm with a shipped Hopper "
        f"policy, the run with the highest final evaluation return: {used}. Replay any run with "
        "`python -m harness.enjoy RUN_DIR --video out.mp4`.",
    )


def _remove_previous(out: Path) -> None:
    """Delete the files the previous :func:`build_paper` listed in ``out/`` :data:`MANIFEST` (paths inside
    ``out`` only), then the list."""
    manifest = out / MANIFEST
    if not manifest.exists():
        return
    root = out.resolve()
    for name in manifest.read_text().splitlines():
        path = out / name
        if name and ".." not in Path(name).parts and path.is_file() and root in path.resolve().parents:
            path.unlink()
    manifest.unlink()


def _index(paper: Paper, results: Path, opt: PaperOptions) -> str:

    lines = [
        "# Paper figures and tables",
        "",
        f"Made by `python -m harness.report.paper --results {results} --out {paper.out}` (`make figures`) from the "
        f"run folders under `{results}` alone: nothing is trained"
        + (" except the in-process toy-landscape descents (`--landscape-runs`)" if opt.landscape_runs else "")
        + ". Figures are PNG (300 dpi) and PDF at a paper's widths, single column 3.5 in or double column 7 in "
        "(the printed size is given with each), text 6.5 to 8 pt at that size; tables are Markdown and CSV.",
        "",
        f"Wall-clock statistics use {'training time, evaluation excluded (train_time_s)' if opt.wall_clock == 'train' else 'total time, evaluation included (wall_time_s)'}"
        f"; runs on a busy machine (summary.json machine.busy) are {'counted (--include-busy)' if opt.include_busy else 'left out of them'}. "
        f"Thresholds: rule `{opt.threshold_mode}`; CIs: {opt.reps} bootstrap repetitions, seed {opt.seed}.",
        "",
        "## What was read",
        "",
    ]
    for part in PARTS:
        if part in paper.found:
            lines.append(f"- **{part}**: {paper.found[part]}")
    if paper.missing:
        lines += ["", "## Missing", "", "Drawn without these (every figure below uses what exists):", ""]
        lines += [f"- {m}" for m in paper.missing]
    if paper.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in paper.notes]
    sections: dict[str, list[Entry]] = {}
    for e in paper.entries:
        sections.setdefault(e.section, []).append(e)
    order = [
        "Tables",
        "Every task in one figure",
        "Learning curves, per task",
        "Epochs against training time, per task",
        "Scaling with workers",
        "Deceptive maze",
        "Toy landscapes",
        "Shipped policies",
    ]
    for section in sorted(sections, key=lambda s: order.index(s) if s in order else len(order)):
        lines += ["", f"## {section}", ""]
        for e in sections[section]:
            if e.kind == "table":
                lines += [
                    f"### {e.title}",
                    "",
                    f"[Markdown]({e.path}.md), [CSV]({e.path}.csv)" + (f". *{e.advice}*" if e.advice else ""),
                    "",
                    e.caption.split("\n", 2)[-1] if e.caption.startswith("# ") else e.caption,
                    "",
                ]
            else:
                size = _figure_size(paper.out / f"{e.path}.png", PAPER.dpi)
                lines += [
                    f"### {e.title}",
                    "",
                    f"![{e.title}]({e.path}.png)",
                    "",
                    f"[PDF]({e.path}.pdf), {size}. {e.caption}" + (f" *{e.advice}*" if e.advice else ""),
                    "",
                ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    """``python -m harness.report.paper``: :func:`build_paper` with the command line's options, then one
    summary line and one line per missing part. Returns 0, or 1 with an ``error:`` line on stderr when there
    are no results (:class:`NoResults`); argparse exits with status 2 on bad arguments (``--reps`` or
    ``--landscape-seeds`` below 1 included)."""
    p = argparse.ArgumentParser(
        prog="python -m harness.report.paper",
        description="The paper's figures (PNG + PDF at 3.5 / 7 in) and tables from results/paper "
        "alone, indexed by OUT/README.md. Parts that are missing are listed there.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--results", type=Path, default=Path("results/paper"), help="the paper's results folder")
    p.add_argument("--out", type=Path, default=Path("results/figures/paper"), help="output folder")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions of every CI")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument(
        "--threshold-mode",
        choices=("final", "progress"),
        default="final",
        help="thresholds: final = f x TRPO's final return; progress = initial + f x (final - initial)",
    )
    p.add_argument(
        "--wall-clock",
        choices=("train", "total"),
        default="train",
        help="train: training time, evaluation excluded (train_time_s); total: wall_time_s",
    )
    p.add_argument(
        "--include-busy",
        action="store_true",
        help="count runs on a busy machine (summary.json machine.busy) in the wall-clock statistics",
    )
    p.add_argument(
        "--landscape-runs",
        action="store_true",
        help="also run and draw the in-process toy-landscape descents of make figures-landscape",
    )
    p.add_argument("--landscape-seeds", type=int, default=10, help="seeds per setting of --landscape-runs")
    args = p.parse_args(argv)
    if args.reps < 1 or args.landscape_seeds < 1:
        p.error("--reps and --landscape-seeds must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    opts = PaperOptions(
        reps=args.reps,
        seed=args.seed,
        threshold_mode=args.threshold_mode,
        wall_clock=args.wall_clock,
        include_busy=args.include_busy,
        landscape_runs=args.landscape_runs,
        landscape_seeds=args.landscape_seeds,
    )
    try:
        paper = build_paper(args.results, args.out, opts)
    except NoResults as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_fig = sum(e.kind == "figure" for e in paper.entries)
    n_tab = sum(e.kind == "table" for e in paper.entries)
    print(
        f"paper: {paper.index} ({n_fig} figures, {n_tab} tables; {len(paper.missing)} missing parts or gaps; "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    for line in paper.missing:
        print(f"  missing: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
