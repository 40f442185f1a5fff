"""Tables as CSV (full precision, for recomputation) and Markdown (rounded, for reading).

``inf`` in a CSV means "not reached"; an empty cell means undefined (e.g. a ratio whose reference never
reached the threshold). No third-party Markdown dependency: :func:`to_markdown` is a few lines.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.curves import CLOCK_AXES, LEARNING_AXES

AXIS_SHORT = {
    "epoch": "epochs",
    "timesteps": "timesteps",
    "train_time_s": "training wall-clock",
    "wall_time_s": "wall-clock",
}


def _split_axes(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Rows of the learning axes, rows of the wall-clock axis, and that axis' name (``train_time_s`` when
    there is none)."""
    is_wall = frame["axis"].isin(CLOCK_AXES)
    clocks = frame.loc[is_wall, "axis"].unique()
    return frame[~is_wall], frame[is_wall], (str(clocks[0]) if len(clocks) else CLOCK_AXES[0])


def _steps(v) -> str:
    """An evaluation spacing in steps: ``"50k"``, ``"1.02M"``, ``"2048"``; "–" when unknown."""
    if v is None or pd.isna(v):
        return "–"
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e4:
        return f"{v / 1e3:.3g}k"
    return fmt(v)


def _spacing(resolution: pd.DataFrame | None) -> dict:
    """(env, algo) -> median evaluation spacing in steps (:func:`harness.report.aggregate.eval_resolution_table`)."""
    if resolution is None or resolution.empty:
        return {}
    return {(r.env, r.algo): r.eval_every_timesteps for r in resolution.itertuples()}


def fmt(v, digits: int = 3) -> str:
    """A cell for Markdown: ``inf`` -> "not reached", NaN/None -> "–", floats to ``digits`` significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if math.isinf(v):
            return "not reached" if v > 0 else "-inf"
        if v == int(v) and abs(v) < 1e9:
            return str(int(v))
        if 10**digits <= abs(v) < 1e9:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def fmt_ci(point, lo, hi, digits: int = 3) -> str:
    """``"1.23 [0.9, 1.6]"``; an infinite upper bound prints as ``inf``; a point and lower bound both
    ``inf`` as "not reached" alone."""
    if point is None or (isinstance(point, float) and math.isnan(point)):
        return "–"
    if all(isinstance(v, float) and math.isinf(v) and v > 0 for v in (point, lo)):
        return "not reached"
    b = lambda v: "inf" if isinstance(v, float) and math.isinf(v) else fmt(v, digits)  # noqa: E731
    return f"{fmt(point, digits)} [{b(lo)}, {b(hi)}]"


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (cells through :func:`fmt`); "(empty)" for no rows."""
    if df.empty:
        return "(empty)\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame, out_dir: Path, stem: str, markdown: pd.DataFrame | None = None, title: str = "", notes: str = ""
) -> list[Path]:
    """``stem.csv`` (``df``, full precision) and ``stem.md`` (``markdown`` or ``df``, titled, with notes).

    :returns: the two paths.
    """
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    df.to_csv(csv_path, index=False)
    body = to_markdown(df if markdown is None else markdown)
    md_path.write_text((f"# {title}\n\n" if title else "") + body + (f"\n{notes.strip()}\n" if notes else ""))
    return [csv_path, md_path]


def _by_workers(rows: pd.DataFrame, value, label) -> str:
    """One cell for several wall-clock groups: ``"n=1: 5 [4, 6]; n=2: 3 [2, 4]"``."""
    return "; ".join(f"{label(r)}: {value(r)}" for _, r in rows.iterrows()) or "–"


def _n(v) -> str:
    return "?" if pd.isna(v) else str(int(v))


def salimans_markdown(ratios: pd.DataFrame, resolution: pd.DataFrame | None = None) -> pd.DataFrame:
    """The Table 1 layout: one row per (env, algorithm, fraction), ratios with CIs side by side; the
    wall-clock cell lists every (``workers.n`` of the algorithm vs ``workers.n`` of the reference) pair.
    With ``resolution`` (:func:`harness.report.aggregate.eval_resolution_table`), a column gives both
    algorithms' evaluation spacing in steps, the resolution of the times whose ratio is taken."""
    rows = []
    learn, wall, clock = _split_axes(ratios)
    spacing = _spacing(resolution)
    for (env, algo, f), g in learn.groupby(["env", "algo", "fraction"], sort=True):
        ts = g[g["axis"] == "timesteps"].iloc[0]
        row = {
            "env": env,
            "algo": algo,
            "vs": ts["reference_group"],
            "fraction": f"{f:.0%}",
            "threshold": fmt(ts["threshold"], 4),
            "reached": f"{ts['n_reached']}/{ts['n_runs']}",
            "ref reached": f"{ts['ref_n_reached']}/{ts['ref_n_runs']}",
        }
        if resolution is not None:
            row["eval every (steps): algo / ref"] = (
                f"{_steps(spacing.get((env, algo)))} / {_steps(spacing.get((env, ts['reference_group'])))}"
            )
        for ax in ("timesteps", clock, "epoch"):
            if ax == clock:
                w = wall[(wall["env"] == env) & (wall["algo"] == algo) & (wall["fraction"] == f)]
                cell = _by_workers(
                    w,
                    lambda r: fmt_ci(r["ratio"], r["ratio_lower"], r["ratio_upper"]),
                    lambda r: f"n={_n(r['workers_n'])} vs n={_n(r['ref_workers_n'])}",
                )
            else:
                r = g[g["axis"] == ax].iloc[0]
                cell = fmt_ci(r["ratio"], r["ratio_lower"], r["ratio_upper"])
            row[f"{AXIS_SHORT[ax]} ratio [95% CI]"] = cell
        row["timesteps ratio, mean curves"] = fmt(ts["meancurve_ratio"])
        rows.append(row)
    return pd.DataFrame(rows)


def curves_markdown(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (env, group, axis): the grid's range and the IQM [CI] at its last point."""
    rows = []
    for (env, group, axis), c in curves.groupby(["env", "group", "axis"], sort=True):
        last = c.iloc[-1]
        rows.append(
            {
                "env": env,
                "algo": group,
                "axis": axis,
                "runs": last["n_runs"],
                "from": fmt(c["x"].iloc[0]),
                "to": fmt(last["x"]),
                "IQM at the end [95% CI]": fmt_ci(last["iqm"], last["lower"], last["upper"], 4),
            }
        )
    return pd.DataFrame(rows)


def tradeoff_markdown(tradeoff: pd.DataFrame, resolution: pd.DataFrame | None = None) -> pd.DataFrame:
    """Median times to threshold with CIs, one row per (env, algorithm, fraction); the wall-clock cell
    lists every ``workers.n``. With ``resolution``, a column gives the algorithm's evaluation spacing in
    steps (the resolution of its times to threshold)."""
    rows = []
    learn, wall, clock = _split_axes(tradeoff)
    spacing = _spacing(resolution)
    for (env, algo, f), g in learn.groupby(["env", "algo", "fraction"], sort=True):
        ep = g[g["axis"] == "epoch"].iloc[0]
        row = {
            "env": env,
            "algo": algo,
            "fraction": f"{f:.0%}",
            "threshold": fmt(ep["threshold"], 4),
            "reached": f"{ep['n_reached']}/{ep['n_runs']}",
            "not completed": ep["n_not_completed"],
        }
        if resolution is not None:
            row["eval every (steps)"] = _steps(spacing.get((env, algo)))
        for ax in (*LEARNING_AXES, clock):
            if ax == clock:
                w = wall[(wall["env"] == env) & (wall["algo"] == algo) & (wall["fraction"] == f)]
                cell = _by_workers(
                    w,
                    lambda r: f"{fmt_ci(r['median'], r['lower'], r['upper'])} ({r['n_reached']}/{r['n_runs']})",
                    lambda r: f"n={_n(r['workers_n'])}",
                )
            else:
                r = g[g["axis"] == ax].iloc[0]
                cell = fmt_ci(r["median"], r["lower"], r["upper"])
            row[f"median {AXIS_SHORT[ax]} [95% CI]"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def final_markdown(final: pd.DataFrame) -> pd.DataFrame:
    """Final evaluation return per (env, algorithm): IQM [CI], mean, runs."""
    return pd.DataFrame(
        {
            "env": final["env"],
            "algo": final["algo"],
            "runs": final["n_runs"],
            "not completed": final["n_not_completed"],
            "IQM [95% CI]": [fmt_ci(i, lo, hi, 4) for i, lo, hi in zip(final["iqm"], final["lower"], final["upper"])],
            "mean": [fmt(v, 4) for v in final["mean"]],
        }
    )


def runs_markdown(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table without ``run_dir``, ``mtime`` as local time to the second."""
    out = runs.drop(columns=["run_dir"], errors="ignore")
    if "mtime" in out:
        out = out.assign(mtime=[datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds") for t in out["mtime"]])
    return out


def eval_resolution_markdown(resolution: pd.DataFrame) -> pd.DataFrame:
    """Evaluation spacing per (env, algorithm): median [min, max over runs] steps, and epochs."""
    return pd.DataFrame(
        {
            "env": resolution["env"],
            "algo": resolution["algo"],
            "runs": resolution["n_runs"],
            "eval every (steps), median [min, max over runs]": [
                "–" if pd.isna(m) else f"{_steps(m)} [{_steps(lo)}, {_steps(hi)}]"
                for m, lo, hi in zip(
                    resolution["eval_every_timesteps"],
                    resolution["eval_every_timesteps_min"],
                    resolution["eval_every_timesteps_max"],
                )
            ],
            "eval every (epochs)": [fmt(v) for v in resolution["eval_every_epochs"]],
        }
    )


def scaling_markdown(scaling: pd.DataFrame) -> pd.DataFrame:
    """Seconds per epoch and to threshold against ``workers.n``, with the ideal values."""
    return pd.DataFrame(
        {
            "env": scaling["env"],
            "algo": scaling["algo"],
            "workers.n": scaling["workers_n"],
            "runs": scaling["n_runs"],
            "s/epoch [95% CI]": [
                fmt_ci(*v)
                for v in zip(
                    scaling["time_per_epoch_s"], scaling["time_per_epoch_s_lower"], scaling["time_per_epoch_s_upper"]
                )
            ],
            "ideal s/epoch": [fmt(v) for v in scaling["ideal_time_per_epoch_s"]],
            "s to threshold [95% CI]": [
                fmt_ci(*v)
                for v in zip(
                    scaling["time_to_threshold_s"],
                    scaling["time_to_threshold_s_lower"],
                    scaling["time_to_threshold_s_upper"],
                )
            ],
            "reached": [f"{a}/{b}" for a, b in zip(scaling["n_reached"], scaling["n_runs"])],
            "ideal s to threshold": [fmt(v) for v in scaling["ideal_time_to_threshold_s"]],
        }
    )
