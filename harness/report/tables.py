"""Tables as CSV (full precision, for recomputation) and Markdown (rounded, for reading).

``inf`` in a CSV means "not reached"; an empty cell means undefined (e.g. a ratio whose reference never
reached the threshold). No third-party Markdown dependency: :func:`to_markdown` is a few lines.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.aggregate import AXES

AXIS_SHORT = {"epoch": "epochs", "timesteps": "timesteps", "wall_time_s": "wall-clock"}


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
        if 10 ** digits <= abs(v) < 1e9:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def fmt_ci(point, lo, hi, digits: int = 3) -> str:
    """``"1.23 [0.9, 1.6]"``; an infinite upper bound prints as ``inf``."""
    if point is None or (isinstance(point, float) and math.isnan(point)):
        return "–"
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


def write_table(df: pd.DataFrame, out_dir: Path, stem: str, markdown: pd.DataFrame | None = None,
                title: str = "", notes: str = "") -> list[Path]:
    """``stem.csv`` (``df``, full precision) and ``stem.md`` (``markdown`` or ``df``, titled, with notes).

    :returns: the two paths.
    """
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    df.to_csv(csv_path, index=False)
    body = to_markdown(df if markdown is None else markdown)
    md_path.write_text((f"# {title}\n\n" if title else "") + body + (f"\n{notes.strip()}\n" if notes else ""))
    return [csv_path, md_path]


def salimans_markdown(ratios: pd.DataFrame) -> pd.DataFrame:
    """The Table 1 layout: one row per (env, algorithm, reference, fraction), ratios with CIs side by side."""
    rows = []
    for _, r in ratios.iterrows():
        row = {"env": r["env"], "algo": r["group"], "vs": r["reference_group"], "fraction": f"{r['fraction']:.0%}",
               "threshold": fmt(r["threshold"], 4), "reached": f"{r['n_reached']}/{r['n_runs']}",
               "ref reached": f"{r['ref_n_reached']}/{r['ref_n_runs']}"}
        for ax in ("timesteps", "wall_time_s", "epoch"):
            row[f"{AXIS_SHORT[ax]} ratio [95% CI]"] = fmt_ci(r[f"ratio_{ax}"], r[f"ratio_{ax}_lower"],
                                                             r[f"ratio_{ax}_upper"])
        row["timesteps ratio, mean curves"] = fmt(r["meancurve_ratio_timesteps"])
        rows.append(row)
    return pd.DataFrame(rows)


def curves_markdown(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (env, group, axis): the grid's range and the IQM [CI] at its last point."""
    rows = []
    for (env, group, axis), c in curves.groupby(["env", "group", "axis"], sort=True):
        last = c.iloc[-1]
        rows.append({"env": env, "algo": group, "axis": axis, "runs": last["n_runs"], "from": fmt(c["x"].iloc[0]),
                     "to": fmt(last["x"]), "IQM at the end [95% CI]": fmt_ci(last["iqm"], last["lower"], last["upper"], 4)})
    return pd.DataFrame(rows)


def tradeoff_markdown(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """Median times to threshold with CIs, one row per (env, group, fraction)."""
    rows = []
    for _, r in tradeoff.iterrows():
        row = {"env": r["env"], "algo": r["group"], "fraction": f"{r['fraction']:.0%}",
               "threshold": fmt(r["threshold"], 4), "reached": f"{r['n_reached']}/{r['n_runs']}",
               "not completed": r["n_not_completed"]}
        for ax in AXES:
            row[f"median {AXIS_SHORT[ax]} [95% CI]"] = fmt_ci(r[ax], r[f"{ax}_lower"], r[f"{ax}_upper"])
        rows.append(row)
    return pd.DataFrame(rows)


def final_markdown(final: pd.DataFrame) -> pd.DataFrame:
    """Final evaluation return per group: IQM [CI], mean, runs."""
    return pd.DataFrame({"env": final["env"], "algo": final["group"], "runs": final["n_runs"],
                         "not completed": final["n_not_completed"],
                         "IQM [95% CI]": [fmt_ci(i, lo, hi, 4) for i, lo, hi in
                                          zip(final["iqm"], final["lower"], final["upper"])],
                         "mean": [fmt(v, 4) for v in final["mean"]]})


def scaling_markdown(scaling: pd.DataFrame) -> pd.DataFrame:
    """Seconds per epoch and to threshold against ``workers.n``, with the ideal values."""
    return pd.DataFrame({
        "env": scaling["env"], "algo": scaling["algo"], "workers.n": scaling["workers_n"], "runs": scaling["n_runs"],
        "s/epoch [95% CI]": [fmt_ci(*v) for v in zip(scaling["time_per_epoch_s"], scaling["time_per_epoch_s_lower"],
                                                     scaling["time_per_epoch_s_upper"])],
        "ideal s/epoch": [fmt(v) for v in scaling["ideal_time_per_epoch_s"]],
        "s to threshold [95% CI]": [fmt_ci(*v) for v in zip(scaling["time_to_threshold_s"],
                                                            scaling["time_to_threshold_s_lower"],
                                                            scaling["time_to_threshold_s_upper"])],
        "reached": [f"{a}/{b}" for a, b in zip(scaling["n_reached"], scaling["n_runs"])],
        "ideal s to threshold": [fmt(v) for v in scaling["ideal_time_to_threshold_s"]],
    })
