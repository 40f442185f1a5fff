"""Salimans et al. 2017's Table 1, as the paper measured it (``python -m harness.report RESULTS --protocol salimans2017``).

Source: Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable Alternative to Reinforcement
Learning" (arXiv 1703.03864), Sec. 4.1, Table 1 and supplement Table 3 (:data:`TABLE3`, kept as data beside this
module). The rule, per task:

1. The reference algorithm (TRPO)'s **mean curve over seeds**: ``eval_return`` against ``timesteps``, every run
   interpolated linearly onto the union of the runs' evaluation steps, up to the shortest run's last one
   (:func:`mean_curve`).
2. ``init`` is that curve at step 0 (the untrained policy's evaluation, ``eval.at_start``; a reference without it
   has no thresholds). ``final`` is the mean of the curve's last ``k`` evaluations (``final_evals``), so that one
   collapsed last evaluation does not move it. The thresholds are ``init + p (final - init)`` for p = 25, 50, 75,
   100% (HalfCheetah's 25% in the paper: -1.35): fractions of the reference's *learning progress*.
3. Every algorithm's mean curve crosses a threshold at the first step where it reaches it, interpolated linearly
   between the two evaluations around it (:func:`crossing`). A curve that never reaches it within its budget (its
   last evaluated step) gives a lower bound, printed ``> budget``, never a number.
4. The ratio is the algorithm's crossing step over the reference's. Beside it: the paper's ratio, the algorithm's
   step over the paper's TRPO step, and the reference's step over the paper's TRPO step.

The other protocol, ``score`` (the report's default), compares medians over seeds of each run's first evaluation
at or above a fraction of the reference's final *return* (``--threshold-mode final``) or progress
(``progress``): :mod:`harness.report.aggregate`. It answers another question.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.curves import seed_mean_curve
from harness.report.curves import thresholds as progress_thresholds
from harness.report.options import DEFAULT_FRACTIONS, FINAL_EVALS, PROTOCOLS  # noqa: F401 (PROTOCOLS re-exported)

FRACTIONS = DEFAULT_FRACTIONS
#: the paper's Table 1 / Table 3 (env, percent, threshold, trpo_timesteps, es_timesteps, es_trpo_ratio)
TABLE3 = Path(__file__).resolve().parent / "data" / "salimans2017_table3.csv"
#: how a table or figure of this protocol names it
NAME = "protocol salimans2017 (fractions of TRPO's learning progress, mean curves over seeds)"

COLUMNS = [
    "env",
    "reference",
    "reference_runs",
    "reference_budget",
    "init",
    "final",
    "final_evals",
    "fraction",
    "threshold",
    "reference_timesteps",
    "algo",
    "algo_runs",
    "algo_budget",
    "algo_timesteps",
    "reached",
    "ratio",
    "ratio_lower_bound",
    "paper_threshold",
    "paper_trpo_timesteps",
    "paper_es_timesteps",
    "paper_ratio",
    "algo_over_paper_trpo",
    "reference_over_paper_trpo",
    "note",
]


@functools.lru_cache(maxsize=1)
def paper_table3() -> pd.DataFrame:
    """:data:`TABLE3` as a frame, one row per (env, percent); ``fraction`` = percent / 100."""
    table = pd.read_csv(TABLE3, comment="#")
    table["fraction"] = table["percent"] / 100.0
    return table


def mean_curve(runs: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The mean over runs of their evaluation curves.

    :param runs: one frame per run with columns ``timesteps`` and ``eval_return`` (rows not evaluated may be
        there, with ``eval_return`` NaN).
    :returns: columns ``timesteps`` (the union of the runs' evaluated steps up to the shortest run's last one,
        ascending) and ``eval_return`` (the mean of the runs' curves, each linearly interpolated there); empty
        when a run has no evaluation.
    """
    curves = []
    for run in runs:
        ev = run.loc[run["eval_return"].notna(), ["timesteps", "eval_return"]].sort_values("timesteps")
        if ev.empty:
            return pd.DataFrame(columns=["timesteps", "eval_return"])
        curves.append((ev["timesteps"].to_numpy(float), ev["eval_return"].to_numpy(float)))
    grid, mean = seed_mean_curve(curves)
    return pd.DataFrame({"timesteps": grid, "eval_return": mean})


def crossing(curve: pd.DataFrame, threshold: float) -> float:
    """The first step at which ``curve`` (:func:`mean_curve`) reaches ``threshold``, interpolated linearly between
    the evaluation before and the one at or above it; ``inf`` if it never does (and NaN for a NaN threshold)."""
    if not np.isfinite(threshold):
        return math.nan
    t, v = curve["timesteps"].to_numpy(float), curve["eval_return"].to_numpy(float)
    above = np.flatnonzero(v >= threshold)
    if above.size == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return float(t[0])
    return float(t[i - 1] + (threshold - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1]))


def thresholds(
    curve: pd.DataFrame, fractions: Sequence[float] = FRACTIONS, final_evals: int = FINAL_EVALS
) -> tuple[float, float, list[float], str]:
    """``(init, final, thresholds, note)`` of a reference's mean curve: ``init`` its value at step 0, ``final``
    the mean of its last ``final_evals`` values after step 0 (fewer where it has fewer), thresholds
    ``init + p (final - init)``. Without a step-0
    evaluation, or without progress (``final <= init``), the thresholds are NaN and ``note`` says why."""
    if curve.empty:
        return math.nan, math.nan, [math.nan] * len(fractions), "no evaluated run"
    trained = curve[curve["timesteps"] > 0]  # final is of the trained policy: never the step-0 evaluation
    if trained.empty:
        return math.nan, math.nan, [math.nan] * len(fractions), "no evaluation after step 0"
    final = float(trained["eval_return"].tail(final_evals).mean())
    if curve["timesteps"].iloc[0] != 0:
        return (
            math.nan,
            final,
            [math.nan] * len(fractions),
            ("the reference's runs have no step-0 evaluation (eval.at_start): init is undefined"),
        )
    init = float(curve["eval_return"].iloc[0])
    if not final > init:
        return init, final, [math.nan] * len(fractions), f"no learning progress (final {final:.4g} <= init {init:.4g})"
    return init, final, [float(t) for t in progress_thresholds([final], fractions, "progress", [init])], ""


def reference_groups(algos: Sequence[str], reference: str) -> list[str]:
    """The algorithm labels that are ``reference``: itself, or its groups ``reference[key=value, ...]`` (runs of
    one algorithm with other settings, :func:`harness.report.load.label_algorithms`), each a reference of its own."""
    return sorted(a for a in set(algos) if a == reference or a.startswith(f"{reference}["))


def base_name(algo: str) -> str:
    """``"trpo[variant=zoo]"`` -> ``"trpo"``."""
    return algo.split("[", 1)[0]


def table(
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    reference: str = "trpo",
    fractions: Sequence[float] = FRACTIONS,
    final_evals: int = FINAL_EVALS,
) -> pd.DataFrame:
    """The protocol's Table 1: one row per (env, reference group, fraction, algorithm), :data:`COLUMNS`.

    :param metrics: :attr:`harness.report.load.Loaded.metrics`. :param runs: the runs to count (e.g.
        :func:`harness.report.aggregate.learning_runs`: one per seed), with ``run``, ``env`` and ``algo``.
    :param reference: the reference algorithm's name; each of its groups (:func:`reference_groups`) is a
        reference of its own, and the algorithms compared are those of another name.
    A task without a reference run gets one row per (algorithm, fraction) with ``reference`` empty and the reason
    in ``note``. ``algo_timesteps`` is ``inf`` where the algorithm's mean curve does not reach the threshold; ``ratio`` is then
    NaN and ``ratio_lower_bound`` its budget over the reference's step. The ``paper_*`` columns are the paper's
    (:func:`paper_table3`), NaN for a task or fraction it does not have.
    """
    if not 0 < final_evals:
        raise ValueError(f"final_evals must be >= 1, got {final_evals}")
    paper = paper_table3()
    by_run = dict(list(metrics.groupby("run", sort=False)))
    rows = []
    for env, r_env in runs.groupby("env", sort=True):
        curves = {
            algo: mean_curve([by_run[r] for r in g["run"] if r in by_run])
            for algo, g in r_env.groupby("algo", sort=True)
        }
        counts = r_env.groupby("algo")["run"].count().to_dict()
        others = sorted(a for a in curves if base_name(a) != reference)
        if not reference_groups(list(curves), reference):  # said, not left out: the table lists every task run
            rows += [
                {
                    "env": env,
                    "reference": "",
                    "fraction": f,
                    "algo": a,
                    "algo_runs": counts[a],
                    "note": f"no {reference} run",
                }
                for a in others
                for f in fractions
            ]
        for ref in reference_groups(list(curves), reference):
            curve = curves[ref]
            init, final, thr, note = thresholds(curve, fractions, final_evals)
            ref_budget = float(curve["timesteps"].iloc[-1]) if not curve.empty else math.nan
            for f, t in zip(fractions, thr):
                ref_steps = crossing(curve, t)
                p = paper[(paper["env"] == env) & np.isclose(paper["fraction"], f)]
                paper_cols = (
                    {
                        "paper_threshold": math.nan,
                        "paper_trpo_timesteps": math.nan,
                        "paper_es_timesteps": math.nan,
                        "paper_ratio": math.nan,
                    }
                    if p.empty
                    else {
                        "paper_threshold": float(p["threshold"].iloc[0]),
                        "paper_trpo_timesteps": float(p["trpo_timesteps"].iloc[0]),
                        "paper_es_timesteps": float(p["es_timesteps"].iloc[0]),
                        "paper_ratio": float(p["es_trpo_ratio"].iloc[0]),
                    }
                )
                base = {
                    "env": env,
                    "reference": ref,
                    "reference_runs": counts[ref],
                    "reference_budget": ref_budget,
                    "init": init,
                    "final": final,
                    "final_evals": final_evals,
                    "fraction": f,
                    "threshold": t,
                    "reference_timesteps": ref_steps,
                    **paper_cols,
                    "reference_over_paper_trpo": ref_steps / paper_cols["paper_trpo_timesteps"],
                }
                for algo in others or [""]:
                    if not algo:
                        rows.append({**base, "algo": "", "note": note or f"no algorithm beside {reference}"})
                        continue
                    other = curves[algo]
                    steps = crossing(other, t)
                    budget = float(other["timesteps"].iloc[-1]) if not other.empty else math.nan
                    reached = bool(np.isfinite(steps))
                    rows.append(
                        {
                            **base,
                            "algo": algo,
                            "algo_runs": counts[algo],
                            "algo_budget": budget,
                            "algo_timesteps": steps,
                            "reached": reached,
                            "ratio": steps / ref_steps if reached else math.nan,
                            "ratio_lower_bound": budget / ref_steps if not reached else math.nan,
                            "algo_over_paper_trpo": steps / paper_cols["paper_trpo_timesteps"] if reached else math.nan,
                            "note": note or ("" if not other.empty else "no evaluated run"),
                        }
                    )
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------ text


def _steps(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{v:.3g}" if v < 1e3 else f"{v:.3g}".replace("e+0", "e").replace("e+", "e")


def _ratio(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{v:.2f}"


def budget_words(steps: float) -> str:
    """``5e6`` -> ``"5M"``, ``2.5e7`` -> ``"25M"``, ``256`` -> ``"256"``."""
    return "–" if not np.isfinite(steps) else f"{steps / 1e6:.3g}M" if steps >= 1e5 else f"{steps:.0f}"


def markdown(t1: pd.DataFrame) -> str:
    """The table as Markdown: one section per reference group, one row per (task, percent, algorithm), the
    paper's Table 3 beside our numbers, then the notes (the rule, the budgets)."""
    if t1.empty:
        return f"# Salimans et al. 2017 Table 1, {NAME}\n\nNo run.\n"
    lines = [f"# Salimans et al. 2017 Table 1, {NAME}", ""]
    alone = t1[t1["reference"] == ""].drop_duplicates(["env", "algo"])
    t1 = t1[t1["reference"] != ""]
    for ref, g in t1.groupby("reference", sort=True):
        lines += [f"## Reference: {ref}", ""]
        head = [
            "task",
            "%",
            "threshold here (paper)",
            f"{ref} steps here",
            "algorithm",
            "its steps here",
            "ratio here",
            "paper ES/TRPO",
            "ours / paper's TRPO steps",
            f"{ref} / paper's TRPO steps",
        ]
        body = []
        for r in g.itertuples():
            if not r.algo:
                body.append(
                    [r.env, f"{r.fraction:.0%}", "–", "–", "–", "–", f"– ({r.note})", _ratio(r.paper_ratio), "–", "–"]
                )
                continue
            at = budget_words(r.reference_budget)
            thr = "–" if not np.isfinite(r.threshold) else f"{r.threshold:.5g}"
            paper_thr = "" if not np.isfinite(r.paper_threshold) else f" ({r.paper_threshold:.6g})"
            if r.note:  # no threshold, or no curve: nothing to compare
                body.append(
                    [
                        f"{r.env} (thresholds at {at})",
                        f"{r.fraction:.0%}",
                        thr + paper_thr,
                        "–",
                        r.algo,
                        "–",
                        f"– ({r.note})",
                        _ratio(r.paper_ratio),
                        "–",
                        "–",
                    ]
                )
                continue
            ours = _steps(r.algo_timesteps) if r.reached else f"> {_steps(r.algo_budget)}"
            ratio = (
                _ratio(r.ratio)
                if r.reached
                else f"> {_ratio(r.ratio_lower_bound)}"
                if np.isfinite(r.ratio_lower_bound)
                else "–"
            )
            over = (
                _ratio(r.algo_over_paper_trpo)
                if r.reached
                else f"> {_ratio(r.algo_budget / r.paper_trpo_timesteps)}"
                if np.isfinite(r.paper_trpo_timesteps)
                else "–"
            )
            body.append(
                [
                    f"{r.env} (thresholds at {at})",
                    f"{r.fraction:.0%}",
                    thr + paper_thr,
                    _steps(r.reference_timesteps),
                    r.algo,
                    ours,
                    ratio,
                    _ratio(r.paper_ratio),
                    over,
                    _ratio(r.reference_over_paper_trpo),
                ]
            )
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
        lines += [""]
        info = g.drop_duplicates("env")
        lines += [
            "Reference curves: "
            + "; ".join(
                f"{r.env}: init {r.init:.4g}, final {r.final:.4g} (mean of the last {int(r.final_evals)} evaluations of the "
                f"mean curve over {int(r.reference_runs)} seeds, at {budget_words(r.reference_budget)} steps)"
                for r in info.itertuples()
                if np.isfinite(r.final)
            )
            + ".",
            "",
        ]
    if not alone.empty:
        lines += [
            "Tasks without a reference run (no threshold yet): "
            + "; ".join(
                f"{env}: "
                + ", ".join(
                    f"{r.algo} ({int(r.algo_runs)} seed{'s' if r.algo_runs != 1 else ''})" for r in g.itertuples()
                )
                for env, g in alone.groupby("env", sort=True)
            )
            + ".",
            "",
        ]
    lines += [NOTES]
    return "\n".join(lines)


NOTES = """\
Rule (Salimans et al. 2017, Sec. 4.1, Table 1 and supplement Table 3): per task, the reference's mean learning curve
over seeds (eval_return against training steps, each run interpolated linearly onto the union of evaluation steps);
init = its value at step 0 (the untrained policy), final = the mean of its last k evaluations at its budget
("thresholds at"); thresholds = init + p (final - init). A crossing is the first step at which a mean curve reaches
a threshold, interpolated linearly between evaluations; "> N" = not reached within the algorithm's budget N (a lower
bound). Ratio here = the algorithm's crossing step / the reference's. Paper: MuJoCo v1-era tasks, TRPO at 5M
steps, ES mean curves over 6 seeds (data: harness/report/data/salimans2017_table3.csv). Thresholds "at 1M" come
from a TRPO run at 1M steps standing in for 5M on a task where it saturates early.
"""


# ------------------------------------------------------------------------------------------------ figures


def plot_ratios(t1: pd.DataFrame, out_dir: Path, style=None) -> list[Path]:
    """Per task, the ratio here against the paper's at each percentage, on a log axis with 1 marked: one figure
    per reference group (``salimans2017_ratios[_<reference>]``). A threshold not reached is drawn as an upward
    triangle at its lower bound. :returns: the PNG and PDF paths."""
    import matplotlib.pyplot as plt

    from harness.report import figures

    style = style or figures.REPORT
    paths = []
    refs = sorted(r for r in t1["reference"].unique() if r)
    for ref in refs:
        g = t1[(t1["reference"] == ref)]
        envs = sorted(g["env"].unique())
        ncols = min(3, len(envs))
        nrows = -(-len(envs) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows + 0.6), squeeze=False, sharex=True)
        for ax in axes.flat[len(envs) :]:
            ax.set_visible(False)
        for ax, env in zip(axes.flat, envs):
            e = g[g["env"] == env]
            pct = e.drop_duplicates("fraction")
            ax.plot(pct["fraction"] * 100, pct["paper_ratio"], "ks--", ms=5, lw=0.8, label="Salimans et al. ES/TRPO")
            for algo, a in e[e["algo"] != ""].groupby("algo", sort=True):
                color = figures.algo_color(base_name(algo))
                ok = a[a["reached"].astype(bool)]
                ax.plot(ok["fraction"] * 100, ok["ratio"], "o-", color=color, ms=5, lw=1.2, label=f"{algo} / {ref}")
                lb = a[~a["reached"].astype(bool) & a["ratio_lower_bound"].notna()]
                ax.plot(
                    lb["fraction"] * 100,
                    lb["ratio_lower_bound"],
                    "^",
                    color=color,
                    ms=7,
                    mfc="none",
                    label=f"{algo}: not reached (lower bound)" if not lb.empty else None,
                )
            if e["threshold"].isna().all():  # nothing to compare: say why in the panel, not with an empty one
                ax.text(
                    0.5,
                    0.5,
                    f"no thresholds:\n{e['note'].iloc[0]}",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=7,
                    wrap=True,
                )
            ax.axhline(1.0, color="0.4", lw=0.8)
            ax.set_yscale("log")
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(lo, 0.8), max(hi, 1.25))  # 1 always in view
            figures.set_log_ticks(ax, "y")
            at = budget_words(e["reference_budget"].iloc[0])
            ax.set_title(f"{env} (thresholds at {at})", fontsize=9)
            ax.set_xticks([25, 50, 75, 100])
            ax.grid(alpha=0.3, which="both")
        for ax in axes[-1]:
            ax.set_xlabel("% of TRPO's learning progress")
        for ax in axes[:, 0]:
            ax.set_ylabel("timesteps ratio to threshold")
        handles = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="lower center",
            ncol=min(3, len(handles)),
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(handles) > 3)),
        )
        fig.suptitle(f"ES / {ref} timesteps to threshold beside Salimans et al. 2017 Table 1\n{NAME}", fontsize=9)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        stem = "salimans2017_ratios" + ("" if len(refs) == 1 else f"_{ref}")
        paths += figures.save(fig, out_dir, stem, dpi=style.dpi)
    return paths


def plot_curves(metrics: pd.DataFrame, runs: pd.DataFrame, t1: pd.DataFrame, out_dir: Path, style=None) -> list[Path]:
    """Per task, every group's mean curve over seeds against training steps, with the reference's four threshold
    lines (one figure per reference group, ``salimans2017_curves[_<reference>]``). :returns: the PNG and PDF paths."""
    import matplotlib.pyplot as plt

    from harness.report import figures

    style = style or figures.REPORT
    by_run = dict(list(metrics.groupby("run", sort=False)))
    paths = []
    refs = sorted(r for r in t1["reference"].unique() if r)
    for ref in refs:
        g = t1[t1["reference"] == ref]
        envs = sorted(g["env"].unique())
        ncols = min(3, len(envs))
        nrows = -(-len(envs) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows + 0.6), squeeze=False)
        for ax in axes.flat[len(envs) :]:
            ax.set_visible(False)
        for ax, env in zip(axes.flat, envs):
            e = g[g["env"] == env]
            shown = [ref, *sorted(a for a in e["algo"].unique() if a)]
            r_env = runs[runs["env"] == env]
            for algo in shown:
                ids = [r for r in r_env.loc[r_env["algo"] == algo, "run"] if r in by_run]
                curve = mean_curve([by_run[r] for r in ids])
                if curve.empty:
                    continue
                ax.plot(
                    curve["timesteps"],
                    curve["eval_return"],
                    color=figures.algo_color(base_name(algo)),
                    lw=1.3,
                    ls="--" if algo == ref else "-",
                    label=f"{algo} (mean of {len(ids)})",
                )
            if e["threshold"].isna().all():
                ax.text(
                    0.5,
                    0.95,
                    f"no thresholds: {e['note'].iloc[0]}",
                    transform=ax.transAxes,
                    ha="center",
                    va="top",
                    fontsize=6,
                    wrap=True,
                )
            for r in e.drop_duplicates("fraction").itertuples():
                if np.isfinite(r.threshold):
                    ax.axhline(r.threshold, color="0.5", lw=0.7, ls=":")
                    ax.annotate(
                        f"{r.fraction:.0%}",
                        (1.0, r.threshold),
                        xycoords=("axes fraction", "data"),
                        fontsize=6,
                        color="0.4",
                        ha="right",
                        va="bottom",
                    )
            ax.set_title(env, fontsize=9)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(6, 6))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, frameon=False)
        for ax in axes[-1]:
            ax.set_xlabel("environment steps")
        for ax in axes[:, 0]:
            ax.set_ylabel("evaluation return")
        fig.suptitle(f"Mean learning curves with the thresholds of {ref} (dotted: 25/50/75/100%)\n{NAME}", fontsize=9)
        fig.tight_layout()
        stem = "salimans2017_curves" + ("" if len(refs) == 1 else f"_{ref}")
        paths += figures.save(fig, out_dir, stem, dpi=style.dpi)
    return paths
