"""Wall time at scale (issue 32): figures and tables from the CSV files of ``python -m harness.bench.scale
simulate`` (shipped in ``results/paper/wall_time_scale/``), drawn by ``make figures``; nothing is simulated here.

* ``speedup.png``: a generation's speedup against workers, log-log, per size (:data:`SPEEDUP_SIZES`), ship mode
  and schedule, the ideal line, and
  Salimans et al.'s Humanoid points (18 and 1,440 cores, 657 and 10 minutes to 6000; their 18-core point is put on
  the ideal line, since they ran other hardware: only the ratio between their two points is theirs);
* ``time_to_threshold.png``: HalfCheetah's minutes to a threshold against workers, ES (the shipped runs'
  population, and one grown with the workers) and TRPO, with where ES overtakes TRPO;
* ``bytes.png``: bytes through the coordinator's link per generation, seeds against full vectors;
* ``wall_time_scale.md``: the validation (predicted against measured generation seconds, with the error), the
  calibration, and the projected minutes at 18, 80 and 1,440 workers beside the paper's claims.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.figures import PAPER, FigureStyle, save

#: Salimans et al. 2017, Sec. 4.2 / Fig. 1: Humanoid to a score of 6000, median over 7 runs: (cores, minutes).
PAPER_HUMANOID = ((18, 657.0), (1440, 10.0))
#: The worker counts of the projection table.
TABLE_WORKERS = (18, 80, 1440)
#: The sizes the speedup figure draws (the table has every one): the Table 1 recipe's network on HalfCheetah, and
#: the paper's Humanoid network with its measured (untrained) and with 1000-step episodes.
SPEEDUP_SIZES = (
    "HalfCheetah MLP 64-64",
    "Humanoid MLP 256-256",
    "Humanoid MLP 256-256, 1000-step episodes",
)
FILES = ("calibration", "validation", "scaling", "population_fit", "time_to_threshold")
SHIP_LABELS = {"seeds": "shared seeds (offsets)", "vectors": "full vectors"}
ALGO_LABELS = {
    "es": "ES, the runs' population",
    "es_scaled": "ES, population 2 x workers (generations fitted to populations 20-80)",
    "es_scaled_vectors": "the same, full vectors sent instead of seeds",
    "trpo": "TRPO (rl-baselines3-zoo)",
}


def read(folder: Path) -> dict[str, pd.DataFrame]:
    """The CSV files of ``folder`` by name (:data:`FILES`).

    :raises FileNotFoundError: naming the first file missing.
    """
    frames = {}
    for name in FILES:
        path = Path(folder) / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: make it with `python -m harness.bench.scale simulate`")
        frames[name] = pd.read_csv(path)
    return frames


def _line(ship: str, schedule: str) -> tuple[str, str]:
    """The line style and label of a ship mode and schedule."""
    if schedule == "equal":
        return "-.", f"{SHIP_LABELS[ship]}, one piece a worker"
    return ("-" if ship == "seeds" else "--"), SHIP_LABELS[ship]


def _figure(style: FigureStyle, height: float, title: str):
    """A double-column figure of ``height`` inches in ``style`` (a title only outside paper mode)."""
    import matplotlib.pyplot as plt

    width = style.double if style.paper else 9.0
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    if not style.paper:
        ax.set_title(title)
    return fig, ax


def _colors(sizes) -> dict:
    import matplotlib.pyplot as plt

    return dict(zip(sorted(sizes), plt.rcParams["axes.prop_cycle"].by_key()["color"]))


def _simulated(ax, lo: float) -> None:
    """Shade the workers beyond the measured ones (1-2): what the model extrapolates."""
    ax.axvspan(2, ax.get_xlim()[1], color="0.93", zorder=0)
    ax.text(2.2, lo, "simulated (measured: 1-2 workers)", fontsize=6.5, color="0.35", va="bottom")


def plot_speedup(scaling: pd.DataFrame, out: Path, style: FigureStyle = PAPER) -> list[Path]:
    """``out/speedup.{png,pdf}``: speedup of a generation against workers (log-log), the ideal line, the paper's
    Humanoid points; the paths."""
    with style.drawing():
        fig, ax = _figure(style, 3.6, f"An ES generation of {int(scaling['population'].iloc[0]):,} episodes (model)")
        w = np.array(sorted(scaling["workers"].unique()), dtype=float)
        ax.plot(w, w, color="0.6", lw=1, ls=":", label="ideal")
        drawn = scaling[scaling["size"].isin(SPEEDUP_SIZES)] if scaling["size"].isin(SPEEDUP_SIZES).any() else scaling
        colors = _colors(drawn["size"].unique())
        for (size, ship, schedule), g in drawn.groupby(["size", "ship", "schedule"], sort=True):
            ls, what = _line(ship, schedule)
            ax.plot(g["workers"], g["speedup"], marker="o", ms=2, ls=ls, color=colors[size], label=f"{size}, {what}")
        (c0, m0), (c1, m1) = PAPER_HUMANOID
        ax.plot(
            [c0, c1],
            [c0, c0 * m0 / m1],
            marker="*",
            ms=8,
            color="k",
            ls="none",
            label=f"Salimans et al., Humanoid\n({c0}: {m0:g} min, {c1:,}: {m1:g} min;\n{c0} put on the ideal)",
        )
        ax.set(xscale="log", yscale="log", xlabel="workers", ylabel="speedup of a generation over 1 worker")
        _simulated(ax, 1.0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        return save(fig, out, "speedup", dpi=style.dpi, tight=not style.paper)


def plot_time_to_threshold(ttt: pd.DataFrame, out: Path, fraction: float, style: FigureStyle = PAPER) -> list[Path]:
    """``out/time_to_threshold.{png,pdf}``: minutes to the threshold ``fraction`` of TRPO's learning progress
    on HalfCheetah against workers, per algorithm (the grown population between its two bounds, shaded); where
    ES overtakes TRPO marked; the paths."""
    t = ttt[np.isclose(ttt["fraction"], fraction)]
    title = f"HalfCheetah, {fraction:.0%} of TRPO's learning progress (model; steps from the shipped runs)"
    with style.drawing():
        fig, ax = _figure(style, 3.0, title)
        for algo, g in t.groupby("algo", sort=True):
            (line,) = ax.plot(g["workers"], g["minutes"], marker="o", ms=2.5, label=ALGO_LABELS.get(algo, algo))
            if algo == "es_scaled_vectors":
                line.set_linestyle("--")
            if algo == "es_scaled":
                ax.fill_between(
                    g["workers"],
                    g["minutes_alpha1"],
                    g["minutes_alpha0"],
                    color=line.get_color(),
                    alpha=0.15,
                    lw=0,
                    label="its bounds: the runs' generations (top), their timesteps (bottom)",
                )
        ax.set(xscale="log", yscale="log", xlabel="workers", ylabel="minutes to the threshold")
        cross = overtakes(t, "es_scaled")
        if cross is not None:
            ax.axvline(cross, color="0.5", ls=":", lw=1)
            ax.annotate(
                f"ES overtakes TRPO\nat {cross:g} worker{'s' if cross != 1 else ''}",
                (cross, t["minutes"].min()),
                fontsize=6.5,
                xytext=(4, 0),
                textcoords="offset points",
                va="bottom",
            )
        _simulated(ax, t["minutes_alpha1"].min() if "minutes_alpha1" in t else t["minutes"].min())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        return save(fig, out, "time_to_threshold", dpi=style.dpi, tight=not style.paper)


def plot_bytes(scaling: pd.DataFrame, out: Path, style: FigureStyle = PAPER) -> list[Path]:
    """``out/bytes.{png,pdf}``: bytes through the coordinator's link a generation against workers, seeds against
    full vectors, per size (the harness's schedule); the paths."""
    with style.drawing():
        fig, ax = _figure(style, 2.8, f"Traffic of a generation of {int(scaling['population'].iloc[0]):,} episodes")
        colors = _colors(scaling["size"].unique())
        measured = scaling[(scaling["schedule"] == "guided") & ~scaling["size"].str.contains("1000-step")]
        for (size, ship), g in measured.groupby(["size", "ship"], sort=True):
            ls, what = _line(ship, "guided")
            ax.plot(
                g["workers"],
                g["bytes_per_generation"],
                marker="o",
                ms=2.5,
                ls=ls,
                color=colors[size],
                label=f"{size}, {what}",
            )
        ax.set(xscale="log", yscale="log", xlabel="workers", ylabel="bytes a generation (coordinator's link)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        return save(fig, out, "bytes", dpi=style.dpi, tight=not style.paper)


def prediction_error(validation: pd.DataFrame) -> tuple[int, float, float]:
    """``(n, mean, largest)`` absolute relative error of the validation's predictions (its cells that set no term
    of the model)."""
    error = validation.loc[~validation["calibration"], "error"].abs()
    return len(error), float(error.mean()), float(error.max())


def overtakes(t: pd.DataFrame, es: str = "es_scaled") -> float | None:
    """The fewest workers at which ``es`` takes fewer minutes than TRPO in ``t`` (one fraction), or ``None``."""
    es_m = t[t["algo"] == es].set_index("workers")["minutes"]
    trpo_m = t[t["algo"] == "trpo"].set_index("workers")["minutes"]
    faster = [w for w in es_m.index if w in trpo_m.index and es_m[w] < trpo_m[w]]
    return float(min(faster)) if faster else None


def markdown(frames: dict[str, pd.DataFrame], fraction: float) -> str:
    """The validation, the projection at :data:`TABLE_WORKERS` and the calibration, as Markdown."""
    v = frames["validation"]
    lines = [
        "# Wall time at scale (model; issue 32)",
        "",
        "## Validation: predicted against measured seconds a generation",
        "",
        "Measured on this machine (1 and 2 workers); predicted by the model from the calibration cells (marked "
        "*cal.*), on one machine's link. Error = predicted / measured - 1.",
        "",
        "| setup | size | ship | backend | workers | measured s | predicted s | error |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in v.itertuples():
        cal = " (cal.)" if r.calibration else ""
        lines.append(
            f"| {r.setup} | {r.size} | {r.ship} | {r.backend} | {r.workers} | {r.measured_s:.3f} | "
            f"{r.predicted_s:.3f} | {r.error:+.1%}{cal} |"
        )
    n, mean, largest = prediction_error(v)
    if n:
        lines += ["", f"Predictions (not calibration cells): mean absolute error {mean:.1%}, largest {largest:.1%}."]
    t = frames["time_to_threshold"]
    t = t[np.isclose(t["fraction"], fraction)]
    fit = frames["population_fit"]
    alpha = float(fit["alpha"].iloc[0])
    lines += [
        "",
        f"## Projected minutes to {fraction:.0%} of TRPO's learning progress, HalfCheetah",
        "",
        "Steps to the threshold from the shipped `salimans2017_mujoco` runs (ES: the recipe's population "
        f"{int(t.loc[t['algo'] == 'es', 'population'].iloc[0])}, a 64-64 MLP; TRPO: rl-baselines3-zoo's settings); "
        "minutes from the model on the stated cluster. ES with a population grown to 2 x workers needs "
        f"G0 (N / N0)^-alpha generations, alpha = {alpha:.2f} fitted to `salimans2017_population` "
        f"({len(fit)} runs at populations {', '.join(str(p) for p in sorted(fit['population'].unique()))}, "
        f"generations to {float(fit['threshold'].iloc[0]):.0f}); in brackets its bounds, alpha = 0 (the runs' "
        "generations) and alpha = 1 (their timesteps).",
        "",
        "| workers | TRPO | ES, runs' population | ES, grown population [bounds] | the same, full vectors | "
        "TRPO / ES grown [bounds] |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for w in TABLE_WORKERS:
        rows = t[t["workers"] == w].set_index("algo")
        if rows.empty or "es_scaled" not in rows.index:
            continue
        trpo, grown = rows.loc["trpo", "minutes"], rows.loc["es_scaled"]
        lo, hi = grown["minutes_alpha1"], grown["minutes_alpha0"]
        vectors = rows.loc["es_scaled_vectors", "minutes"] if "es_scaled_vectors" in rows.index else np.nan
        lines.append(
            f"| {w:,} | {trpo:.2f} | {rows.loc['es', 'minutes']:.2f} | {grown['minutes']:.2f} [{lo:.2f}, {hi:.2f}] | "
            f"{vectors:.2f} | {trpo / grown['minutes']:.1f}x [{trpo / hi:.1f}x, {trpo / lo:.1f}x] |"
        )
    sc = frames["scaling"]
    lines += [
        "",
        "Salimans et al. 2017 claim ES 20-60x faster than TRPO in wall time, given enough machines, and "
        "Humanoid to 6000 in 10 minutes on 1,440 cores against 657 on 18 (65.7x for 80x the cores).",
        "",
        f"## Speedup of a generation of {int(sc['population'].iloc[0]):,} episodes over one worker",
        "",
        "| size | sent | schedule | " + " | ".join(f"{w:,} workers" for w in TABLE_WORKERS) + " | 1,440 / 18 |",
        "|---|---|---|" + "---:|" * (len(TABLE_WORKERS) + 1),
    ]
    for (size, ship, schedule), g in sc.groupby(["size", "ship", "schedule"], sort=True):
        g = g.set_index("workers")
        cells = [f"{g.loc[w, 'speedup']:.1f}" if w in g.index else "–" for w in TABLE_WORKERS]
        ratio = g.loc[1440, "speedup"] / g.loc[18, "speedup"] if {18, 1440} <= set(g.index) else np.nan
        lines.append(f"| {size} | {ship} | {schedule} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
    lines += [
        "",
        "## Calibration",
        "",
        "| term | key | value | unit |",
        "|---|---|---:|---|",
    ]
    for r in frames["calibration"].itertuples():
        key, unit = (x if isinstance(x, str) else "" for x in (r.key, r.unit))
        lines.append(f"| {r.term} | {key} | {r.value:.4g} | {unit} |")
    return "\n".join(lines) + "\n"


def build(folder: Path, out: Path, fraction: float = 0.5) -> list[Path]:
    """Every figure and the Markdown of ``folder`` into ``out``; the paths written."""
    return draw(read(folder), out, fraction)


def draw(frames: dict[str, pd.DataFrame], out: Path, fraction: float = 0.5) -> list[Path]:
    """Every figure and the Markdown of ``frames`` (:func:`read`) into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_speedup(frames["scaling"], out) + plot_bytes(frames["scaling"], out)
    paths += plot_time_to_threshold(frames["time_to_threshold"], out, fraction)
    md = out / "wall_time_scale.md"
    md.write_text(markdown(frames, fraction))
    csv = out / "wall_time_scale.csv"  # the Markdown's first table, the validation, as CSV
    frames["validation"].to_csv(csv, index=False)
    return [*paths, md, csv]


def summary(frames: dict[str, pd.DataFrame], fraction: float = 0.5) -> str:
    """One paragraph on the model of ``frames`` (:func:`read`) for an index: the validation's error and the
    projected minutes to ``fraction`` at :data:`TABLE_WORKERS` workers."""
    v = frames["validation"]
    n, mean, largest = prediction_error(v)
    t = frames["time_to_threshold"]
    t = t[np.isclose(t["fraction"], fraction)]
    cells = []
    for w in TABLE_WORKERS:
        rows = t[t["workers"] == w].set_index("algo")["minutes"]
        if {"trpo", "es_scaled"} <= set(rows.index):
            cells.append(f"{w:,} workers: TRPO {rows['trpo']:.2f} min, ES {rows['es_scaled']:.2f} min")
    return (
        f"The model against {len(v)} measured generations (1-2 workers, process and Ray, a two-node Ray cluster): "
        f"{n} predictions, mean absolute error {mean:.1%}, largest {largest:.1%} (CSV: every cell). Minutes to {fraction:.0%} of TRPO's learning progress "
        f"on HalfCheetah, projected: {'; '.join(cells)}. The Markdown has the tables: validation, projections, "
        "speedups, calibration."
    )
