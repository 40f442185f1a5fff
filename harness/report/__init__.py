"""Turn run directories into figures and tables: ``python -m harness.report RESULTS_DIR [--out DIR]``.

Pipeline: :mod:`~harness.report.load` (find runs, tidy DataFrames) -> :mod:`~harness.report.aggregate`
(pure statistics: curves on a common grid, IQM and bootstrap CIs after Agarwal et al. 2021 / rliable,
times to threshold, the ES/TRPO ratios of Salimans et al. 2017 Table 1) ->
:mod:`~harness.report.figures` (PNG + PDF) and :mod:`~harness.report.tables` (CSV + Markdown) ->
``report.md``, an index of everything, and optionally a W&B run of ``job_type="report"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report import aggregate, tables
from harness.report.aggregate import DEFAULT_FRACTIONS
from harness.report.load import Loaded, config_differences, load_runs

log = logging.getLogger(__name__)

__all__ = ["ReportOptions", "build_report", "load_runs"]


@dataclass
class ReportOptions:
    """Everything :func:`build_report` can be told (the CLI flags of ``python -m harness.report``)."""

    reps: int = 2000                      # bootstrap repetitions for every CI
    seed: int = 0                         # seeds every bootstrap (same numbers on every run of the report)
    ci: float = 0.95                      # CI coverage
    points: int = 100                     # grid points of an IQM curve
    fractions: Sequence[float] = DEFAULT_FRACTIONS  # threshold fractions
    threshold_mode: str = "final"         # final: f * final return; progress: initial + f * (final - initial)
    reference: str = "trpo"               # algorithm the thresholds and ratios refer to
    scaling_fraction: float = 0.5         # threshold of the scaling figure's time-to-threshold panel
    wandb: str = "disabled"               # disabled | offline | online
    wandb_project: str = "harness"
    wandb_entity: str | None = None


@dataclass
class Report:
    """What :func:`build_report` wrote: the folder, the index, every figure and table, and the frames."""

    out_dir: Path
    index: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    loaded: Loaded | None = None


def build_report(results_dir: str | Path, out_dir: str | Path | None = None,
                 options: ReportOptions | None = None) -> Report:
    """Read every run below ``results_dir`` and write the report into ``out_dir`` (default
    ``results_dir/report``).

    :raises FileNotFoundError: if ``results_dir`` does not exist.
    :raises ValueError: on inconsistent options (e.g. ``scaling_fraction`` not among ``fractions``).
    """
    opt = options or ReportOptions()
    if not any(abs(opt.scaling_fraction - f) < 1e-12 for f in opt.fractions):
        raise ValueError(f"scaling fraction {opt.scaling_fraction} is not one of the fractions {list(opt.fractions)}")
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir / "report"
    loaded = load_runs(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(out_dir=out, index=out / "report.md", loaded=loaded)
    runs, metrics = loaded.runs, loaded.metrics
    if runs.empty:
        rep.index.write_text(_index(rep, results_dir, opt, {}))
        return rep

    from harness.report import figures  # matplotlib: only when there is something to draw
    from harness.report.behaviours import plot_behaviours

    kw = dict(reps=opt.reps, seed=opt.seed, ci=opt.ci)
    runs_l = aggregate.with_group_labels(runs)
    colors = figures.colors_for(runs_l)
    fr: dict[str, pd.DataFrame] = {}
    fr["curves"] = aggregate.curve_table(metrics, runs, points=opt.points, **kw)
    fr["thresholds"] = aggregate.threshold_table(runs, opt.fractions, opt.threshold_mode, opt.reference)
    fr["ttt"] = aggregate.time_to_threshold_table(metrics, runs, fr["thresholds"])
    fr["tradeoff"] = aggregate.tradeoff_table(fr["ttt"], **kw)
    fr["ratios"] = aggregate.ratio_table(fr["ttt"], fr["thresholds"], metrics, **kw)
    fr["final"] = aggregate.final_return_table(runs, **kw)
    fr["scaling"] = aggregate.scaling_table(runs, fr["ttt"], opt.scaling_fraction, **kw)
    fr["success"] = aggregate.success_table(runs)
    rep.frames = fr

    for env, r_env in runs.groupby("env", sort=True):
        rep.figures += figures.plot_curves(env, metrics, r_env, fr["curves"][fr["curves"]["env"] == env], colors, out)
        thr = fr["thresholds"][fr["thresholds"]["env"] == env]
        if not thr.empty:
            rep.figures += figures.plot_tradeoff(env, fr["tradeoff"][fr["tradeoff"]["env"] == env],
                                                 fr["ttt"][fr["ttt"]["env"] == env], thr, colors, out)
        sc = fr["scaling"][fr["scaling"]["env"] == env]
        if (sc.groupby("algo")["workers_n"].nunique() > 1).any():
            rep.figures += figures.plot_scaling(env, sc, colors, out)
        rep.figures += plot_behaviours(env, r_env["env_id"].iloc[0], r_env, out)

    rep.tables += tables.write_table(
        runs.drop(columns=["run_dir"]), out, "runs", title="Runs",
        notes="status: completed / interrupted / failed from summary.json; unknown = no summary.json "
              "(still running or killed). final_eval_return: last evaluated eval_return.")
    rep.tables += tables.write_table(fr["curves"], out, "curves", markdown=tables.curves_markdown(fr["curves"]),
                                     title="IQM learning curves (full grid in curves.csv)")
    rep.tables += tables.write_table(fr["thresholds"], out, "thresholds", title="Return thresholds")
    rep.tables += tables.write_table(fr["ttt"], out, "time_to_threshold", title="Time to threshold, per run",
                                     notes="First evaluated row with eval_return >= threshold; not reached = inf.")
    rep.tables += tables.write_table(fr["tradeoff"], out, "tradeoff", markdown=tables.tradeoff_markdown(fr["tradeoff"]),
                                     title="Time to threshold: median over seeds [95% bootstrap CI]")
    rep.tables += tables.write_table(fr["ratios"], out, "salimans_table1",
                                     markdown=tables.salimans_markdown(fr["ratios"]),
                                     title="Salimans et al. 2017 Table 1: time to threshold, algorithm / reference",
                                     notes=RATIO_NOTES)
    rep.tables += tables.write_table(fr["final"], out, "final_return", markdown=tables.final_markdown(fr["final"]),
                                     title="Final evaluation return: IQM over seeds [95% bootstrap CI]")
    rep.tables += tables.write_table(fr["scaling"], out, "scaling", markdown=tables.scaling_markdown(fr["scaling"]),
                                     title="Scaling with workers.n")
    if not fr["success"].empty:
        rep.tables += tables.write_table(
            fr["success"], out, "success", title="Goal reached (environments reporting success)",
            notes="n_final_success: runs whose last evaluation had eval_success > 0 (some evaluation episode "
                  "ended within the goal radius); n_any_success: runs with eval_success > 0 at any evaluation.")
    rep.index.write_text(_index(rep, results_dir, opt, fr))
    if opt.wandb != "disabled":
        _log_wandb(rep, opt)
    return rep


RATIO_NOTES = """\
ratio_A = median over the group's seeds of A / median over the reference group's seeds of A, where A is the
timesteps, wall-clock seconds or epochs of the first evaluated row whose eval_return >= threshold (a run that
never reaches counts as infinitely late, so a median is finite only when more than half of the runs reached).
"not reached": the group's median never reached; "–": the reference's median never reached (undefined).
95% CI: percentile bootstrap, both groups' seeds resampled independently (rliable's stratified bootstrap).
"mean curves": Salimans et al.'s own procedure — first evaluation position where the seed-averaged curve
(runs interpolated linearly onto the union of their evaluation positions) reaches the threshold.
Salimans et al. 2017 Table 1 compares timesteps only, at TRPO's score after 5M steps, over 6 seeds.
"""


def _links(paths: list[Path], suffix: str, out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in paths if p.suffix == suffix]


def _index(rep: Report, results_dir: Path, opt: ReportOptions, fr: dict[str, pd.DataFrame]) -> str:
    """The text of ``report.md``: what was read, definitions, links to every figure and table."""
    loaded, out = rep.loaded, rep.out_dir
    runs = loaded.runs
    lines = [f"# Report of `{results_dir}`", ""]
    if runs.empty:
        lines += ["No usable run directory found (a run directory holds `metrics.csv` with at least one row "
                  "and `config.yaml`)."]
    else:
        labelled = aggregate.with_group_labels(runs)
        lines += [f"{len(runs)} runs in {labelled.groupby(['env', 'group']).ngroups} groups (env, algorithm, "
                  f"workers.n) over {runs['env'].nunique()} environments: "
                  + ", ".join(f"{g} on {e}: {len(x)}" for (e, g), x in labelled.groupby(["env", "group"])) + "."]
        bad = runs[runs["status"] != "completed"]
        if not bad.empty:
            lines += ["", "**Runs that did not complete (included in every statistic):**", ""]
            lines += [f"- `{r.run}`: {r.status} after {r.epochs} epochs" for r in bad.itertuples()]
        no_eval = runs[runs["n_evals"] == 0]
        if not no_eval.empty:
            lines += ["", "**Runs without any evaluation (no curve; count as not reaching any threshold):**", ""]
            lines += [f"- `{r}`" for r in no_eval["run"]]
        thr = fr.get("thresholds", pd.DataFrame())
        fb = thr[thr["fallback"]].drop_duplicates("env") if not thr.empty else thr
        if not fb.empty:
            lines += ["", f"**No `{opt.reference}` runs** on " + ", ".join(
                f"{r.env} (thresholds from the best algorithm there, `{r.reference}`)" for r in fb.itertuples()) + "."]
        pooled = []
        for (e, a, n), g in runs.groupby(["env", "algo", "workers_n"], dropna=False):
            d = config_differences(list(g["run"]), loaded.configs)
            if d:
                pooled.append(f"- {a} on {e}, workers.n={n}: {', '.join(d)}")
        if pooled:
            lines += ["", "**Pooled runs whose configs differ** (beyond seed and W&B settings):", "", *pooled]
    if loaded.skipped:
        lines += ["", "**Skipped run directories:**", ""]
        lines += [f"- `{p}`: {why}" for p, why in loaded.skipped]
    if runs.empty:
        return "\n".join(lines) + "\n"

    what = ("a fraction f of the reference's final return: f x mean over its runs of the last evaluated eval_return"
            if opt.threshold_mode == "final" else
            "a fraction f of the reference's learning progress: initial + f x (final - initial), initial = mean of "
            "the first evaluated eval_return")
    lines += ["", "## Definitions", "",
              "- **Curves**: `eval_return` of evaluated epochs only, against epochs, environment steps and "
              "wall-clock seconds. Each run is interpolated linearly onto a grid of "
              f"{opt.points} points spanning the range *every* run of the group covers (from the latest first "
              "evaluation to the earliest last one): no extrapolation, and the aggregate stops where the shortest "
              "run stops, so each point uses all runs. Thin lines show every run in full.",
              f"- **IQM and CI**: interquartile mean over seeds (25% trimmed mean, rliable `aggregate_iqm`) with "
              f"{opt.ci:.0%} percentile stratified-bootstrap CIs (rliable `get_interval_estimates`, "
              f"{opt.reps} repetitions, seed {opt.seed}); Agarwal et al. 2021.",
              f"- **Thresholds**: {what}; reference `{opt.reference}` (its completed runs on that env, all of "
              "them if none completed), fractions "
              + ", ".join(f"{f:.0%}" for f in opt.fractions) + ".",
              "- **Time to threshold** of a run: `epoch`, `timesteps` and `wall_time_s` of the first evaluated row "
              "with `eval_return >= threshold` (no interpolation); never = inf. Across seeds: the median (finite only "
              "if more than half reached), with bootstrap CIs; counts of runs reaching are always shown.",
              "- **Salimans et al. 2017 Table 1 ratio**: median time (group) / median time (reference group), for "
              "timesteps, wall-clock time and epochs; plus Salimans et al.'s mean-curve variant for comparison.",
              f"- **Scaling**: seconds per epoch = final `wall_time_s` / final `epoch` (evaluation included); time "
              f"to the {opt.scaling_fraction:.0%} threshold; medians over seeds; ideal line t(n_min) x n_min / n.",
              "", "## Figures", ""]
    for link in _links(rep.figures, ".png", out):
        pdf = link[:-4] + ".pdf"
        lines += [f"### {link[:-4]}", "", f"![{link[:-4]}]({link}) ([PDF]({pdf}))", ""]
    if not any("scaling_" in p.name for p in rep.figures):
        lines += ["No scaling figure: no algorithm was run with more than one `workers.n` value on an env.", ""]
    lines += ["## Tables", ""]
    for link in _links(rep.tables, ".md", out):
        lines += [f"- [{link[:-3]}]({link}) ([CSV]({link[:-3]}.csv))"]
    lines += ["", "## Salimans et al. 2017 Table 1 (this harness's numbers)", "",
              tables.to_markdown(tables.salimans_markdown(fr["ratios"])) if not fr["ratios"].empty
              else "No ratio: the reference algorithm is the only one on every env.\n"]
    return "\n".join(lines) + "\n"


def _log_wandb(rep: Report, opt: ReportOptions) -> None:
    """Log every figure (PNG) and table to one W&B run of ``job_type="report"`` (offline needs no account)."""
    import wandb

    run = wandb.init(project=opt.wandb_project, entity=opt.wandb_entity, job_type="report", mode=opt.wandb,
                     dir=str(rep.out_dir), name=f"report-{rep.out_dir.parent.name or 'results'}",
                     config={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(opt).items()})
    try:
        data = {f"figures/{p.stem}": wandb.Image(str(p)) for p in rep.figures if p.suffix == ".png"}
        stems = {"thresholds": "thresholds", "ttt": "time_to_threshold", "tradeoff": "tradeoff",
                 "ratios": "salimans_table1", "final": "final_return", "scaling": "scaling", "success": "success"}
        frames = {"runs": rep.loaded.runs.drop(columns=["run_dir"]),
                  **{stems[k]: v for k, v in rep.frames.items() if k in stems}}
        for name, df in frames.items():
            if df.empty:
                continue
            cells = df.astype(object).map(lambda v: tables.fmt(v, 6))
            data[f"tables/{name}"] = wandb.Table(dataframe=cells)
        run.log(data)
        run.save(str(rep.index), base_path=str(rep.out_dir), policy="now")
    finally:
        run.finish()
