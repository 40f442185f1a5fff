"""The report's pipeline, :func:`build_report` (``python -m harness.report RESULTS_DIR [--out DIR]``).

Pipeline: :mod:`~harness.report.load` (find runs, tidy DataFrames) -> :mod:`~harness.report.aggregate`
(pure statistics: curves on a common grid, IQM and bootstrap CIs after Agarwal et al. 2021 / rliable,
times to threshold, the ES/TRPO ratios of Salimans et al. 2017 Table 1) ->
:mod:`~harness.report.figures` (PNG + PDF) and :mod:`~harness.report.tables` (CSV + Markdown) ->
``report.md``, an index of everything, and optionally a W&B run of ``job_type="report"``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report import aggregate, curves, tables
from harness.report.load import Loaded, config_differences, load_runs
from harness.report.options import ReportOptions

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`build_report` wrote: the folder, the index, every figure and table, and the frames."""

    out_dir: Path
    index: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    loaded: Loaded | None = None


def build_report(
    results_dir: str | Path, out_dir: str | Path | None = None, options: ReportOptions | None = None
) -> Report:
    """Read every run below ``results_dir`` and write the report into ``out_dir`` (default
    ``results_dir/report``), after deleting the files the previous report in ``out_dir`` wrote
    (:func:`remove_previous_report`; a user's own files there are kept).

    :raises FileNotFoundError: if ``results_dir`` does not exist.
    :raises ValueError: on inconsistent options (e.g. ``scaling_fraction`` not among ``fractions``).
    """
    opt = options or ReportOptions()
    if not any(abs(opt.scaling_fraction - f) < 1e-12 for f in opt.fractions):
        raise ValueError(f"scaling fraction {opt.scaling_fraction} is not one of the fractions {list(opt.fractions)}")
    from harness.report import salimans2017

    if opt.protocol not in salimans2017.PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(salimans2017.PROTOCOLS)}, got {opt.protocol!r}")
    if opt.wall_clock not in curves.CLOCKS:
        raise ValueError(f"wall_clock must be one of {list(curves.CLOCKS)}, got {opt.wall_clock!r}")
    clock = curves.CLOCKS[opt.wall_clock]
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir / "report"
    loaded = load_runs(
        results_dir,
        include_busy=opt.include_busy,
        ignore=tuple(opt.ignore),
        group_by=None if opt.group_by is None else tuple(opt.group_by),
    )
    out.mkdir(parents=True, exist_ok=True)
    remove_previous_report(out)
    rep = Report(out_dir=out, index=out / "report.md", loaded=loaded)
    runs, metrics = loaded.runs, loaded.metrics
    if runs.empty:
        rep.index.write_text(_index(rep, results_dir, opt, {}))
        _record_files(rep)
        return rep

    # imported here on purpose: matplotlib (heavy) loads only when there is something to draw
    from harness.report import figures
    from harness.report.behaviours import plot_behaviours

    style = figures.PAPER if opt.paper else figures.REPORT
    kw = dict(reps=opt.reps, seed=opt.seed, ci=opt.ci)
    fr: dict[str, pd.DataFrame] = {}
    fr["curves"] = aggregate.curve_table(metrics, runs, points=opt.points, clock=clock, **kw)
    fr["thresholds"] = aggregate.threshold_table(runs, opt.fractions, opt.threshold_mode, opt.reference)
    for r in fr["thresholds"][fr["thresholds"]["note"] != ""].drop_duplicates("env").itertuples():
        log.warning("%s: %s", r.env, r.note)
    fr["ttt"] = aggregate.time_to_threshold_table(metrics, runs, fr["thresholds"], clock)
    fr["resolution"] = aggregate.eval_resolution_table(runs)
    fr["tradeoff"] = aggregate.tradeoff_table(fr["ttt"], **kw)
    fr["ratios"] = aggregate.ratio_table(fr["ttt"], fr["thresholds"], metrics, **kw)
    fr["final"] = aggregate.final_return_table(runs, **kw)
    fr["scaling"] = aggregate.scaling_table(runs, fr["ttt"], opt.scaling_fraction, **kw)
    fr["success"] = aggregate.success_table(runs)
    fr["generation_cost"] = aggregate.generation_cost_table(metrics, runs)
    rep.frames = fr

    for env, r_env in runs.groupby("env", sort=True):
        rep.figures += figures.plot_curves(
            env, metrics, r_env, fr["curves"][fr["curves"]["env"] == env], out, clock, style
        )
        thr = fr["thresholds"][(fr["thresholds"]["env"] == env) & fr["thresholds"]["threshold"].notna()]
        if not thr.empty:
            rep.figures += figures.plot_tradeoff(
                env, fr["tradeoff"][fr["tradeoff"]["env"] == env], fr["ttt"][fr["ttt"]["env"] == env], thr, out, style
            )
        sc = fr["scaling"][fr["scaling"]["env"] == env]
        if (sc.groupby("algo")["workers_n"].nunique() > 1).any():
            rep.figures += figures.plot_scaling(env, sc, out, clock, style)
        if opt.behaviours:
            rep.figures += plot_behaviours(env, r_env["env_id"].iloc[0], aggregate.learning_runs(r_env), out, style)

    rep.tables += tables.write_table(
        runs.drop(columns=["run_dir"]),
        out,
        "runs",
        markdown=tables.runs_markdown(runs),
        title="Runs",
        notes="status: completed / interrupted / failed from summary.json; unknown = no summary.json "
        "(killed, or still running). final_eval_return: last evaluated eval_return. train_time_s: "
        "training time at the last row (wall_time_s minus evaluation; = wall_time_s where "
        "train_time_logged is no: an older run). busy: summary.json machine.busy (other processes used "
        "more than a tenth of the CPUs; – = unknown), cpu_share / others_share: the run's and the other "
        "processes' share of the CPUs. eval_every_timesteps / _epochs: median spacing of the run's "
        "evaluations. learning / wall_clock: the run counts in the learning / wall-clock statistics "
        "(each seed once; busy runs not on the wall clock, see report.md); note: why not. mtime: when "
        "summary.json or metrics.csv was last written.",
    )
    rep.tables += tables.write_table(
        fr["curves"],
        out,
        "curves",
        markdown=tables.curves_markdown(fr["curves"]),
        title="IQM learning curves (full grid in curves.csv)",
        notes="curves.csv: every grid point; band_exact is False where a group so large that its CI band would "
        "draw more than curves.BAND_VALUES resampled values has its CI interpolated between the points that "
        "were bootstrapped (both ends always are; the IQM itself is computed at every point).",
    )
    rep.tables += tables.write_table(fr["thresholds"], out, "thresholds", title="Return thresholds")
    clock_note = CLOCK_NOTES[clock]
    resolution_note = (
        "A time to threshold is the first *evaluated* row at or above the threshold, so it is only "
        "as fine as the run's evaluations: 'eval every' is the median number of training steps "
        "between consecutive evaluations (eval_resolution.md)."
    )
    rep.tables += tables.write_table(
        fr["ttt"],
        out,
        "time_to_threshold",
        title="Time to threshold, per run",
        notes="First evaluated row with eval_return >= threshold; not reached = inf. "
        "learning: the run counts for epochs and timesteps (each seed once); "
        f"wall_clock: for {clock} (busy runs do not). {clock_note} "
        "eval_every_timesteps: the run's median spacing of evaluations "
        "(training steps), the resolution of its times.",
    )
    rep.tables += tables.write_table(
        fr["resolution"],
        out,
        "eval_resolution",
        markdown=tables.eval_resolution_markdown(fr["resolution"]),
        title="Evaluation resolution: training steps between consecutive evaluations",
        notes=resolution_note + " Over each (env, algorithm)'s learning runs: the "
        "median of the runs' median spacings, and its range over runs.",
    )
    if not fr["generation_cost"].empty:
        rep.tables += tables.write_table(
            fr["generation_cost"],
            out,
            "generation_cost",
            title="What a generation cost: seconds and bytes per generation, median over runs",
            notes="ES family, the runs counted in the wall-clock statistics (busy ones left out unless "
            "--include-busy): rollout_s is a generation's wall seconds in the workers' rollouts; coordinator_s "
            "the rest of its training time (sampling, shaping, the update, observation statistics, logging and "
            "checkpoints: the serial part), coordinator_share that part's share of the training time; "
            "bytes_sent and bytes_received what the backend exchanged with its workers (0 on serial). Each the "
            "run's median over its generations, then the median over runs. Runs from before these columns "
            "(metrics.csv rollout_time_s) and TRPO's are not in it.",
        )
    rep.tables += tables.write_table(
        fr["tradeoff"],
        out,
        "tradeoff",
        markdown=tables.tradeoff_markdown(fr["tradeoff"], fr["resolution"]),
        title="Time to threshold: median over seeds [95% bootstrap CI]",
        notes=f"{clock_note} {resolution_note}",
    )
    rep.tables += tables.write_table(
        fr["ratios"],
        out,
        "salimans_table1",
        markdown=tables.salimans_markdown(fr["ratios"], fr["resolution"]),
        title=f"Time to threshold, algorithm / reference, {score_protocol(opt)}",
        notes=RATIO_NOTES + f"{clock_note}\n{resolution_note}\n",
    )
    rep.tables += tables.write_table(
        fr["final"],
        out,
        "final_return",
        markdown=tables.final_markdown(fr["final"]),
        title="Final evaluation return: IQM over seeds [95% bootstrap CI]",
    )
    rep.tables += tables.write_table(
        fr["scaling"],
        out,
        "scaling",
        markdown=tables.scaling_markdown(fr["scaling"]),
        title="Scaling with workers.n",
        notes=f"Seconds of {clock}. {clock_note} {resolution_note}",
    )
    if not fr["success"].empty:
        rep.tables += tables.write_table(
            fr["success"],
            out,
            "success",
            title="Goal reached (environments reporting success)",
            notes="n_final_success: runs whose last evaluation had eval_success > 0 (some evaluation episode "
            "ended within the goal radius); n_any_success: runs with eval_success > 0 at any evaluation.",
        )
    if opt.protocol == "salimans2017":
        t1 = salimans2017.table(metrics, aggregate.learning_runs(runs), opt.reference, opt.fractions, opt.final_evals)
        fr["salimans2017"] = t1
        t1.to_csv(out / "salimans2017_table1.csv", index=False)
        (out / "salimans2017_table1.md").write_text(salimans2017.markdown(t1))
        rep.tables += [out / "salimans2017_table1.csv", out / "salimans2017_table1.md"]
        if not t1.empty:
            with style.drawing():
                rep.figures += salimans2017.plot_ratios(t1, out, style)
                rep.figures += salimans2017.plot_curves(metrics, aggregate.learning_runs(runs), t1, out, style)
    rep.index.write_text(_index(rep, results_dir, opt, fr))
    _record_files(rep)
    if opt.wandb != "disabled":
        _log_wandb(rep, opt)
    return rep


MANIFEST = ".report-files"
# names an earlier report (before MANIFEST existed) wrote: only warned about, never deleted
_REPORT_NAME = re.compile(
    r"^((curves|tradeoff|scaling|behaviours)_.+\.(png|pdf)"
    r"|(runs|curves|thresholds|time_to_threshold|tradeoff|salimans_table1|final_return|scaling"
    r"|success|eval_resolution|generation_cost)\.(csv|md)|report\.md)$"
)

CLOCK_NOTES = {
    "train_time_s": "Wall-clock seconds are training time, evaluation excluded (metrics.csv train_time_s; runs "
    "without it, listed in report.md, use wall_time_s).",
    "wall_time_s": "Wall-clock seconds are total time, evaluation included (metrics.csv wall_time_s; "
    "--wall-clock total).",
}


def remove_previous_report(out: Path) -> list[Path]:
    """Delete the files the previous report wrote into ``out``, as listed in its :data:`MANIFEST`, so no
    stale figure survives (an environment or algorithm that is gone, a renamed table).

    Nothing else is deleted: a user's files, the W&B folder, and files an older report wrote before the
    manifest existed stay (those are named in a warning by :func:`_record_files`).

    :returns: the deleted paths.
    """
    manifest = out / MANIFEST
    if not manifest.exists():
        return []
    removed = []
    for name in manifest.read_text().splitlines():
        path = out / name
        if name and "/" not in name and name not in (".", "..") and path.is_file():
            path.unlink()
            removed.append(path)
    manifest.unlink()
    log.info("removed %d files of the previous report in %s", len(removed), out)
    return removed


def _record_files(rep: Report) -> None:
    """Write :data:`MANIFEST` (every file of this report); warn about report-like files it did not write."""
    written = [rep.index, *rep.figures, *rep.tables]
    (rep.out_dir / MANIFEST).write_text("".join(f"{p.name}\n" for p in written))
    names = {p.name for p in written}
    stale = sorted(
        p.name for p in rep.out_dir.iterdir() if p.is_file() and _REPORT_NAME.match(p.name) and p.name not in names
    )
    if stale:
        log.warning(
            "%s holds files that look like an earlier report's but are not this one's (kept; delete "
            "them or use a fresh --out): %s",
            rep.out_dir,
            ", ".join(stale),
        )


def score_protocol(opt: ReportOptions) -> str:
    """The name and rule of the ``score`` protocol's thresholds, for a title or caption."""
    rule = (
        "f x the reference's final return (mean over its runs of the last evaluated eval_return)"
        if opt.threshold_mode == "final"
        else "initial + f x (final - initial) of the reference's returns (initial: mean of the first evaluated "
        "eval_return, the step-0 evaluation where the runs have one)"
    )
    return f"protocol score (threshold rule {opt.threshold_mode}: {rule}; medians over seeds of per-run times)"


RATIO_NOTES = """\
ratio = median over the group's seeds of A / median over the reference group's seeds of A, where A is the
timesteps, wall-clock seconds or epochs of the first evaluated row whose eval_return >= threshold (a run that
never reaches counts as infinitely late, so a median is finite only when more than half of the runs reached).
Timesteps and epochs: each algorithm's seeds, whatever their workers.n; wall-clock: one ratio per pair
(workers.n of the algorithm, workers.n of the reference), over the runs not on a busy machine.
"not reached": the group's median never reached; "–": the reference's median never reached (undefined).
95% CI: percentile bootstrap, both groups' seeds resampled independently (rliable's stratified bootstrap).
"mean curves": Salimans et al.'s own procedure — first evaluation position where the seed-averaged curve
(runs interpolated linearly onto the union of their evaluation positions) reaches the threshold.
Salimans et al. 2017 Table 1 compares timesteps only, with thresholds that are fractions of TRPO's learning
progress after 5M steps (init + p (final - init)), on mean curves over 6 seeds: `--protocol salimans2017`
(salimans2017_table1.md).
"""


def _no_ratio_reason(thresholds: pd.DataFrame) -> str:
    """Why the Salimans table is empty: no env with a threshold (each env's note says why), or no
    algorithm beside the reference."""
    if thresholds.empty or thresholds["threshold"].isna().all():
        notes = "; ".join(f"{r.env}: {r.note}" for r in thresholds.drop_duplicates("env").itertuples() if r.note)
        return (
            "No ratio: no env has a return threshold to time"
            + (f" ({notes})" if notes else "")
            + "; see the thresholds table.\n"
        )
    return "No ratio: the reference algorithm is the only one on every env with a threshold.\n"


def _links(paths: list[Path], suffix: str, out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in paths if p.suffix == suffix]


def _seed_count(runs: pd.DataFrame) -> str:
    """``"3 seeds"``, or ``"4 runs of 2 seeds"`` where runs of one seed were pooled on purpose (``--ignore``)."""
    seeds, n = runs["seed"].nunique(), len(runs)
    counted = f"{seeds} seed{'s' if seeds != 1 else ''}"
    return counted if n == seeds else f"{n} runs of {counted}"


def _machine_lists(runs: pd.DataFrame, opt: ReportOptions) -> list[str]:
    """The report.md paragraphs on the machine and the clock: busy runs, runs whose machine share is
    unknown, and (on the training-time clock) runs without ``train_time_s``."""
    lines = []
    if "busy" not in runs:
        return lines
    busy = runs[runs["busy"].map(lambda v: v is True)]
    unknown = runs[runs["busy"].map(lambda v: v is None)]
    if not busy.empty:
        what = (
            "counted all the same (--include-busy)"
            if opt.include_busy
            else "left out of every wall-clock statistic (returns against seconds, seconds to threshold and their "
            "ratios, scaling), still counted in the learning statistics; --include-busy counts them"
        )
        lines += [
            "",
            f"**Busy runs** ({len(busy)}: `summary.json` says `machine.busy`, other processes used more "
            f"than a tenth of the CPUs while they ran): {what}:",
            "",
        ]
        lines += [
            f"- `{r.run}`: other processes {_share(r.others_share)} of the CPUs, the run {_share(r.cpu_share)}"
            for r in busy.itertuples()
        ]
    if not unknown.empty:
        lines += [
            "",
            f"**Runs with an unknown machine share** ({len(unknown)}: no `machine` in `summary.json`, an "
            "older or unfinished run, or `busy` null, e.g. under Ray): counted in the wall-clock statistics, "
            "but nothing says the machine was idle:",
            "",
        ]
        lines += [f"- `{r.run}`" for r in unknown.itertuples()]
    if "machine" in runs:  # wall time compares only on one kind of machine (summary.json machine.host)
        w = aggregate.wall_clock_runs(runs)
        spread = {env: g for env, g in w.groupby("env") if g["machine"].nunique() > 1}
        if spread:
            lines += [
                "",
                "**Wall-clock runs on more than one machine** (`summary.json` `machine.host`; `unrecorded`: "
                "a run from before it was recorded): seconds of one machine against another's compare the "
                "machines too, so read these tasks' wall-clock statistics with care:",
                "",
            ]
            lines += [
                f"- {env}: "
                + "; ".join(
                    f"{algo}: " + ", ".join(f"{m} ({n})" for m, n in a["machine"].value_counts().sort_index().items())
                    for algo, a in g.groupby("algo")
                )
                for env, g in spread.items()
            ]
    if opt.wall_clock == "train" and "train_time_logged" in runs:
        old = runs[~runs["train_time_logged"].astype(bool)]
        if not old.empty:
            lines += [
                "",
                f"**Runs without `train_time_s`** ({len(old)}, older runs): their wall-clock statistics use "
                "`wall_time_s`, evaluation included:",
                "",
            ]
            lines += [f"- `{r.run}`" for r in old.itertuples()]
    return lines


def _share(v) -> str:
    return "?" if pd.isna(v) else f"{v:.0%}"


def _run_lists(runs: pd.DataFrame) -> list[str]:
    """The report.md paragraphs naming runs that do not count everywhere (see :func:`mark_counted`)."""
    lines = []
    sections = [
        (
            runs["note"].str.startswith("duplicate of"),
            "**Duplicate runs dropped** (same algorithm, environment, seed and config apart from workers.* (but an engine of other trajectories, envpool), "
            "wandb.*, progress, hydra.*; the latest completed run is kept, see Definitions):",
        ),
        (
            runs["note"].str.startswith("same config and seed as"),
            "**The same seed at another workers.n** (counted once in the learning statistics, and at its own "
            "workers.n in the wall-clock statistics):",
        ),
        (
            runs["note"].str.contains("not completed: left out"),
            "**Runs that did not complete, left out** (their group has completed runs):",
        ),
    ]
    for mask, title in sections:
        if mask.any():
            lines += ["", title, ""] + [f"- `{r.run}` ({r.status}): {r.note}" for r in runs[mask].itertuples()]
    counted_bad = runs[(runs["status"] != "completed") & (runs["learning"] | runs["wall_clock"])]
    if not counted_bad.empty:
        lines += ["", "**Runs that did not complete, counted** (no run of their group completed):", ""]
        lines += [f"- `{r.run}`: {r.status} after {r.epochs} epochs" for r in counted_bad.itertuples()]
    return lines


def _index(rep: Report, results_dir: Path, opt: ReportOptions, fr: dict[str, pd.DataFrame]) -> str:
    """The text of ``report.md``: what was read, which runs count, definitions, links to every figure
    and table."""
    loaded, out = rep.loaded, rep.out_dir
    runs = loaded.runs
    lines = [f"# Report of `{results_dir}`", ""]
    if runs.empty:
        lines += [
            "No usable run directory found (a run directory holds `metrics.csv` with at least one row "
            "and `config.yaml`)."
        ]
    else:
        learn = aggregate.learning_runs(runs)
        wall = aggregate.wall_clock_runs(runs)
        lines += [
            f"{len(runs)} runs read, {len(learn)} counted in the learning statistics (one per seed), "
            f"{len(wall)} in the wall-clock statistics, "
            f"over {runs['env'].nunique()} environment{'s' if runs['env'].nunique() != 1 else ''}: "
            + ", ".join(f"{a} on {e}: {_seed_count(x)}" for (e, a), x in learn.groupby(["env", "algo"]))
            + "."
        ]
        lines += [
            "",
            "**Wall clock**: "
            + CLOCK_NOTES[curves.CLOCKS[opt.wall_clock]].replace("listed in report.md", "listed below"),
        ]
        lines += _machine_lists(runs, opt)
        lines += _run_lists(runs)
        no_eval = runs[runs["n_evals"] == 0]
        if not no_eval.empty:
            lines += [
                "",
                "**Runs without any evaluation** (no curve: left out of every statistic, not counted as "
                "runs that never reached a threshold):",
                "",
            ]
            lines += [f"- `{r}`" for r in no_eval["run"]]
        thr = fr.get("thresholds", pd.DataFrame())
        fb = thr[thr["fallback"]].drop_duplicates("env") if not thr.empty else thr
        if not fb.empty:
            lines += [
                "",
                f"**No `{opt.reference}` runs** on "
                + ", ".join(
                    f"{r.env} (thresholds from the best algorithm there, `{r.reference}`)" for r in fb.itertuples()
                )
                + ".",
            ]
        noted = thr[thr["note"] != ""].drop_duplicates("env") if not thr.empty else thr
        if not noted.empty:
            lines += ["", "**Thresholds not as asked** (see Definitions):", ""]
            lines += [f"- {r.env}: {r.note}" for r in noted.itertuples()]
        pooled = []
        for (e, a), g in learn.groupby(["env", "algo"]):
            d = config_differences(list(g["run"]), loaded.configs)
            if d:
                pooled.append(f"- {a} on {e}: {', '.join(d)}")
        if pooled:
            lines += [
                "",
                "**Pooled runs whose configs differ** (beyond seed, workers, W&B, progress and Hydra "
                "settings; pooled on purpose with --ignore or --group-by):",
                "",
                *pooled,
            ]
    if loaded.skipped:
        lines += ["", "**Skipped run directories:**", ""]
        lines += [f"- `{p}`: {why}" for p, why in loaded.skipped]
    if runs.empty:
        return "\n".join(lines) + "\n"

    what = (
        "a fraction f of the reference's final return: f x mean over its runs of the last evaluated eval_return"
        if opt.threshold_mode == "final"
        else "a fraction f of the reference's learning progress: initial + f x (final - initial), initial = mean of "
        "the first evaluated eval_return"
    )
    lines += [
        "",
        "## Definitions",
        "",
        "- **Which runs count**: runs with the same algorithm, environment, seed and config (apart from "
        "`workers.*` but the removed envpool engine, whose trajectories are its own, `wandb.*`, `progress`, `hydra.*`) are one seed. Runs of one algorithm that differ in "
        "any other setting (a population size, a budget, a target KL) are separate groups, labelled "
        "`algo[key=value]`, never seeds of one group (`--ignore KEY` pools across KEY on purpose, "
        "`--group-by KEY` splits by KEY alone). *Learning statistics* (returns "
        "against epochs and steps, final returns, thresholds, epochs and steps to threshold and their "
        "Table 1 ratios) count each seed once per (env, algorithm), whatever its `workers.n`: the numbers "
        "of a run do not depend on it. *Wall-clock statistics* (returns against seconds, seconds to "
        "threshold and their ratio, scaling) count each seed once per (env, algorithm, `workers.n`). "
        "Among the runs of one seed the counted one is the latest completed run: status `completed` "
        "first, then the newest modification time of `summary.json` / `metrics.csv`, then the run path "
        "that sorts last. In a group with completed runs, runs that did not complete (interrupted, failed, "
        "or without `summary.json`: killed or still running) are left out; a group without any completed "
        "run keeps them all (counted in `not completed`).",
        "- **Environment**: `env.name` with its `env.*` settings (`id`, `kwargs`, `max_episode_steps`, "
        "...; not `bc` or `success`). Runs of one name with different settings are reported as separate "
        "environments, `name[setting=value]`.",
        "- **Curves**: `eval_return` of evaluated epochs only, against epochs and environment steps (one "
        "curve per algorithm) and wall-clock seconds (one per algorithm and `workers.n`, told apart by "
        "line style; one colour per algorithm in every report). Each run is interpolated linearly onto a "
        f"grid of {opt.points} points spanning the range *every* run of the group covers (from the latest "
        "first evaluation to the earliest last one): no extrapolation, and the aggregate stops where the "
        "shortest run stops, so each point uses all runs. Thin lines show every counted run in full (at "
        "most figures.MAX_THIN_LINES a group, spread over its seeds); a group whose runs share one evaluated "
        "position is a marker with its CI as an error bar.",
        f"- **IQM and CI**: interquartile mean over seeds (25% trimmed mean, rliable `aggregate_iqm`) with "
        f"{opt.ci:.0%} percentile stratified-bootstrap CIs (rliable `get_interval_estimates`: its resamples, "
        f"drawn as rliable draws them, a chunk of repetitions at a time; {opt.reps} repetitions, seed "
        f"{opt.seed}); Agarwal et al. 2021. A group too large for a CI at every grid point gets it at fewer "
        "points, drawn straight between them (band_exact in curves.csv).",
        f"- **Thresholds**: {what}; reference `{opt.reference}` (its counted runs on that env, completed "
        "ones when there are any), fractions " + ", ".join(f"{f:.0%}" for f in opt.fractions) + ". "
        "Thresholds must grow with f: a reference whose final return is not positive gets the learning-"
        "progress rule initial + f x (final - initial) instead of f x final (which would make the 25% "
        "threshold harder than the 100% one), and a reference whose final return is not above its "
        "initial one gets no thresholds on that env (no time to threshold, trade-off figure or ratio "
        "there); `thresholds.md` gives the rule used per env (`mode`) and why (`note`).",
        f"- **Wall-clock time**: `{curves.CLOCKS[opt.wall_clock]}`: "
        + (
            "training time, evaluation excluded (`train_time_s` = `wall_time_s` minus the seconds spent "
            "evaluating; `--wall-clock total` uses `wall_time_s`). Algorithms are evaluated at different step "
            "resolutions, and evaluation is not part of the time Salimans et al. compare. A run without "
            "`train_time_s` (older runs) uses its `wall_time_s`, and is listed above."
            if opt.wall_clock == "train"
            else "total time since the first epoch began, evaluation included (`--wall-clock total`; the default, "
            "`train`, leaves evaluation out)."
        )
        + " Runs on a busy machine (`summary.json` `machine.busy`: other processes used more than a tenth of "
        "the CPUs) are "
        + (
            "counted (`--include-busy`)"
            if opt.include_busy
            else "left out of every wall-clock statistic (not of the learning statistics)"
        )
        + ".",
        f"- **Time to threshold** of a run: `epoch`, `timesteps` and `{curves.CLOCKS[opt.wall_clock]}` of the "
        "first evaluated row with `eval_return >= threshold` (no interpolation); never = inf. It is only as fine "
        "as the run's evaluations: `eval_resolution.md` gives each algorithm's median training steps between "
        "consecutive evaluations (also a column of the trade-off and Table 1 tables). Across seeds: the median "
        "(finite only if more than half reached), with bootstrap CIs; counts of runs reaching are always shown.",
        "- **Salimans et al. 2017 Table 1 ratio**: median time (algorithm) / median time (reference), for "
        "timesteps and epochs per algorithm, and for wall-clock time per pair of `workers.n`; plus "
        "Salimans et al.'s mean-curve variant for comparison.",
        f"- **Scaling**: seconds per epoch = final `{curves.CLOCKS[opt.wall_clock]}` / final `epoch` "
        f"({'evaluation excluded' if opt.wall_clock == 'train' else 'evaluation included'}); time "
        f"to the {opt.scaling_fraction:.0%} threshold; medians over seeds; ideal line t(n_min) x n_min / n.",
        "",
        "## Figures",
        "",
    ]
    for link in _links(rep.figures, ".png", out):
        pdf = link[:-4] + ".pdf"
        lines += [f"### {link[:-4]}", "", f"![{link[:-4]}]({link}) ([PDF]({pdf}))", ""]
    if not any("scaling_" in p.name for p in rep.figures):
        lines += ["No scaling figure: no algorithm was run with more than one `workers.n` value on an env.", ""]
    lines += ["## Tables", ""]
    for link in _links(rep.tables, ".md", out):
        lines += [f"- [{link[:-3]}]({link}) ([CSV]({link[:-3]}.csv))"]
    lines += [
        "",
        "## Salimans et al. 2017 Table 1 (this harness's numbers)",
        "",
        tables.to_markdown(tables.salimans_markdown(fr["ratios"], fr["resolution"]))
        if not fr["ratios"].empty
        else _no_ratio_reason(fr["thresholds"]),
        "",
        "Evaluation resolution (a time to threshold is only as fine as this):",
        "",
        tables.to_markdown(tables.eval_resolution_markdown(fr["resolution"])),
    ]
    return "\n".join(lines) + "\n"


def _log_wandb(rep: Report, opt: ReportOptions) -> None:
    """Log every figure (PNG) and table to one W&B run of ``job_type="report"`` (offline needs no account)."""
    import wandb

    run = wandb.init(
        project=opt.wandb_project,
        entity=opt.wandb_entity,
        job_type="report",
        mode=opt.wandb,
        dir=str(rep.out_dir),
        name=f"report-{rep.out_dir.parent.name or 'results'}",
        config={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(opt).items()},
    )
    try:
        data = {f"figures/{p.stem}": wandb.Image(str(p)) for p in rep.figures if p.suffix == ".png"}
        stems = {
            "thresholds": "thresholds",
            "ttt": "time_to_threshold",
            "tradeoff": "tradeoff",
            "ratios": "salimans_table1",
            "final": "final_return",
            "scaling": "scaling",
            "success": "success",
            "resolution": "eval_resolution",
        }
        frames = {
            "runs": rep.loaded.runs.drop(columns=["run_dir"]),
            **{stems[k]: v for k, v in rep.frames.items() if k in stems},
        }
        for name, df in frames.items():
            if df.empty:
                continue
            cells = df.astype(object).map(lambda v: tables.fmt(v, 6))
            data[f"tables/{name}"] = wandb.Table(dataframe=cells)
        run.log(data)
        run.save(str(rep.index), base_path=str(rep.out_dir), policy="now")
    finally:
        run.finish()
