"""The report's wall clock (training time, evaluation excluded; busy runs), the evaluation resolution and
readable log axes.

Every run here is SYNTHETIC: a run folder with the runner's files (config.yaml, metrics.csv with
``train_time_s``/``eval_time_s``, summary.json with ``machine``) and made-up numbers, so each answer is known
by hand.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.report import ReportOptions, build_report
from tests.test_report_runs import labelled

FAST = dict(reps=50)
COLUMNS = (
    "epoch",
    "timesteps",
    "episodes",
    "wall_time_s",
    "train_time_s",
    "eval_time_s",
    "return_mean",
    "return_max",
    "eval_return",
)


def machine(busy, others=0.02, cpu_model=None):
    """summary.json's ``machine`` (harness/machine.py), ``None`` for a run from before it existed; with a
    ``cpu_model`` it names its machine (``host``), as runs do since it was recorded."""
    if busy == "absent":
        return None
    m = {
        "busy": busy,
        "cpus": 2,
        "workers_n": 1,
        "wall_s": 10.0,
        "cpu_time_s": 9.0,
        "cpu_share": 0.45,
        "others_share": others,
        "load_avg_start": [1.0, 1.0, 1.0],
        "load_avg_end": [1.0, 1.0, 1.0],
        "segments": [],
    }
    if cpu_model is not None:
        m["host"] = {"cpu_model": cpu_model, "cpus": 2, "platform": "Linux", "python": "3.11", "packages": {}}
    return m


def write_run(
    path: Path,
    algo: str,
    seed: int,
    rows: list[dict],
    env: str = "InvertedPendulum",
    workers_n: int = 1,
    busy=False,
    others=0.02,
    extra: dict | None = None,
    status: str = "completed",
    cpu_model: str | None = None,
) -> Path:
    """A SYNTHETIC run folder; ``rows`` dicts with :data:`COLUMNS` (a missing ``train_time_s`` makes an older run:
    the column is left out), ``eval_return`` None = not evaluated."""
    path.mkdir(parents=True)
    cfg = {
        "algo": {"name": algo, **(extra or {}).get("algo", {})},
        "env": {"name": env, "id": (extra or {}).get("env_id", f"{env}-v5"), **(extra or {}).get("env", {})},
        "seed": seed,
        "workers": {"n": workers_n, "backend": "process"},
        "budget": {"timesteps": 0},
        "wandb": {"mode": "disabled"},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    cols = [c for c in COLUMNS if c in rows[0]] + [c for c in rows[0] if c not in COLUMNS]
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else repr(r[k])) for k in cols})
    summary = {"status": status}
    m = machine(busy, others, cpu_model)
    if m is not None:
        summary["machine"] = m
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def rows_of(
    steps_per_epoch: int,
    epochs: int,
    slope: float,
    train_s: float,
    eval_s: float,
    eval_every: int = 1,
    train_time: bool = True,
) -> list[dict]:
    """eval_return = slope * timesteps on every ``eval_every``-th epoch; each epoch trains ``train_s`` seconds and
    each evaluation takes ``eval_s``: train_time_s = train_s * epoch, wall_time_s adds the evaluations so far."""
    rows, evals = [], 0
    for e in range(1, epochs + 1):
        t = e * steps_per_epoch
        evaluated = e % eval_every == 0
        evals += evaluated
        r = {
            "epoch": e,
            "timesteps": t,
            "episodes": e,
            "wall_time_s": train_s * e + eval_s * evals,
            "train_time_s": train_s * e,
            "eval_time_s": eval_s * evals,
            "return_mean": slope * t,
            "return_max": slope * t,
            "eval_return": slope * t if evaluated else None,
        }
        if not train_time:
            del r["train_time_s"], r["eval_time_s"]
        rows.append(r)
    return rows


# ----------------------------------------------------------------------------- training time, busy runs


def clocked_results(root: Path) -> Path:
    """trpo seeds 0-1: 1000 steps and 1 s of training per epoch, every epoch evaluated (0.5 s each), eval_return =
    t / 1000 up to 100 epochs: final 100, thresholds 25/50/75/100. es seeds 0-2: 5000 steps and 0.1 s per epoch,
    evaluated every 2nd epoch (2 s each: evaluation dominates its wall clock), eval_return = t / 2000 up to 40
    epochs. es seed 2 ran on a busy machine, es seed 1 has no machine record."""
    for s in (0, 1):
        write_run(root / f"trpo_s{s}", "trpo", s, rows_of(1000, 100, 1e-3, 1.0, 0.5))
    for s, busy in ((0, False), (1, "absent"), (2, True)):
        write_run(root / f"es_s{s}", "es", s, rows_of(5000, 40, 5e-4, 0.1, 2.0, eval_every=2), busy=busy, others=0.4)
    return root


@pytest.mark.slow
def test_wall_clock_statistics_use_training_time_and_leave_busy_runs_out(tmp_path, drawn):
    rep = build_report(clocked_results(tmp_path / "results"), tmp_path / "out", ReportOptions(**FAST))
    # 50% threshold (50): trpo at epoch 50 -> 50 s of training (wall clock: 75 s); es at epoch 20 (100k steps,
    # evaluated) -> 2 s of training (wall clock 2 + 10 evaluations x 2 s = 22 s)
    ttt = rep.frames["ttt"].set_index(["run", "fraction"])
    assert ttt.loc[("trpo_s0", 0.5), "train_time_s"] == pytest.approx(50.0)
    assert ttt.loc[("es_s0", 0.5), "train_time_s"] == pytest.approx(2.0)
    assert "wall_time_s" not in rep.frames["ttt"]
    # the busy run counts against steps and epochs, not on the clock
    assert bool(ttt.loc[("es_s2", 0.5), "learning"]) and not bool(ttt.loc[("es_s2", 0.5), "wall_clock"])
    trade = rep.frames["tradeoff"].set_index(["group", "axis", "fraction"])
    assert trade.loc[("es", "epoch", 0.5), "n_runs"] == 3
    assert trade.loc[("es n=1", "train_time_s", 0.5), "n_runs"] == 2
    assert trade.loc[("es n=1", "train_time_s", 0.5), "median"] == pytest.approx(2.0)
    ratio = rep.frames["ratios"].set_index(["axis", "fraction"])
    assert ratio.loc[("train_time_s", 0.5), "ratio"] == pytest.approx(2.0 / 50.0)
    assert ratio.loc[("timesteps", 0.5), "ratio"] == pytest.approx(2.0)
    curves = rep.frames["curves"]
    assert set(curves.loc[curves["group"] == "es", "n_runs"]) == {3}
    assert set(curves.loc[curves["group"] == "es n=1", "n_runs"]) == {2}
    assert curves.loc[curves["group"] == "trpo n=1", "x"].max() == pytest.approx(100.0)  # training seconds
    # scaling: seconds per epoch on the training clock
    assert rep.frames["scaling"].set_index("algo").loc["es", "time_per_epoch_s"] == pytest.approx(0.1)
    # the figure says which clock, and its legends count what each axis draws
    fig = drawn["curves_InvertedPendulum"]
    epochs, _, seconds = fig.axes[:3]
    assert seconds.get_xlabel() == "training wall-clock time (s), evaluation excluded"
    assert "es (3 runs)" in labelled(epochs) and "es n=1 (2 runs)" in labelled(seconds)
    assert drawn["tradeoff_InvertedPendulum"].axes[0].get_xlabel().startswith("training wall-clock time to threshold")
    index = rep.index.read_text()
    assert "**Busy runs** (1:" in index and "- `es_s2`: other processes 40% of the CPUs" in index
    assert "**Runs with an unknown machine share** (1:" in index and "- `es_s1`" in index
    assert "Wall-clock seconds are training time, evaluation excluded" in index
    assert "5 runs read, 5 counted in the learning statistics (one per seed), 4 in the wall-clock statistics" in index
    runs = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("run")
    assert runs.loc["es_s2", "busy"] and not runs.loc["es_s2", "wall_clock"] and runs.loc["es_s2", "learning"]
    assert pd.isna(runs.loc["es_s1", "busy"])


@pytest.mark.slow
def test_include_busy_and_total_wall_clock(tmp_path, drawn):
    results = clocked_results(tmp_path / "results")
    rep = build_report(results, tmp_path / "busy", ReportOptions(include_busy=True, **FAST))
    trade = rep.frames["tradeoff"].set_index(["group", "axis", "fraction"])
    assert trade.loc[("es n=1", "train_time_s", 0.5), "n_runs"] == 3
    assert "counted all the same (--include-busy)" in rep.index.read_text()
    rep = build_report(results, tmp_path / "total", ReportOptions(wall_clock="total", **FAST))
    ttt = rep.frames["ttt"].set_index(["run", "fraction"])
    assert ttt.loc[("trpo_s0", 0.5), "wall_time_s"] == pytest.approx(75.0)
    assert ttt.loc[("es_s0", 0.5), "wall_time_s"] == pytest.approx(22.0)
    assert drawn["curves_InvertedPendulum"].axes[2].get_xlabel() == "wall-clock time (s), evaluation included"
    assert "total time since the first epoch began, evaluation included" in rep.index.read_text()
    from harness.report import __main__ as cli

    args = cli.parse_args([str(results), "--wall-clock", "total", "--include-busy"])
    assert (args.wall_clock, args.include_busy) == ("total", True)
    defaults = cli.parse_args([str(results)])
    assert (defaults.wall_clock, defaults.include_busy) == (ReportOptions().wall_clock, False) == ("train", False)


@pytest.mark.slow
def test_a_run_without_training_time_falls_back_to_wall_time_and_is_named(tmp_path):
    root = tmp_path / "results"
    write_run(root / "trpo_s0", "trpo", 0, rows_of(1000, 100, 1e-3, 1.0, 0.5))
    write_run(
        root / "es_old", "es", 0, rows_of(5000, 40, 5e-4, 0.1, 2.0, eval_every=2, train_time=False), busy="absent"
    )
    rep = build_report(root, tmp_path / "out", ReportOptions(**FAST))
    ttt = rep.frames["ttt"].set_index(["run", "fraction"])
    assert ttt.loc[("es_old", 0.5), "train_time_s"] == pytest.approx(22.0)  # its wall_time_s
    index = rep.index.read_text()
    assert "**Runs without `train_time_s`** (1, older runs): their wall-clock statistics use `wall_time_s`" in index
    assert "- `es_old`" in index
    runs = rep.loaded.runs.set_index("run")
    assert not runs.loc["es_old", "train_time_logged"] and runs.loc["trpo_s0", "train_time_logged"]


@pytest.mark.slow
def test_every_time_to_threshold_table_gives_the_evaluation_resolution(tmp_path):
    rep = build_report(clocked_results(tmp_path / "results"), tmp_path / "out", ReportOptions(**FAST))
    res = rep.frames["resolution"].set_index("algo")
    assert res.loc["es", "eval_every_timesteps"] == 10_000 and res.loc["es", "eval_every_epochs"] == 2
    assert res.loc["trpo", "eval_every_timesteps"] == 1000
    out = tmp_path / "out"
    assert "| InvertedPendulum | es | 3 | 10k [10k, 10k] | 2 |" in (out / "eval_resolution.md").read_text()
    trade = (out / "tradeoff.md").read_text()
    assert "eval every (steps)" in trade and "| InvertedPendulum | es | 50% | 50 | 3/3 | 0 | 10k |" in trade
    assert "| 10k / 1000 |" in (out / "salimans_table1.md").read_text()
    assert "eval_every_timesteps" in pd.read_csv(out / "time_to_threshold.csv").columns
    assert "Evaluation resolution (a time to threshold is only as fine as this)" in rep.index.read_text()


# ----------------------------------------------------------------------------- figures that read


def test_log_axes_get_few_round_ticks():
    from harness.report.figures import log_ticks, number_label

    assert log_ticks(20, 30) == [20, 25, 30]  # less than a decade: round numbers, not 2x10^1, 2.2x10^1, ...
    assert log_ticks(12, 50) == [20, 50]
    assert log_ticks(5, 2000) == [10, 30, 100, 300, 1000] and log_ticks(5, 2000, max_ticks=4) == [10, 100, 1000]
    assert len(log_ticks(1e-2, 1e6)) <= 5
    assert [number_label(v) for v in (0.5, 20, 1000, 25_000, 2e6)] == ["0.5", "20", "1000", "25k", "2M"]


@pytest.mark.slow
def test_the_tradeoff_figure_labels_a_narrow_log_range_with_few_plain_ticks(tmp_path, drawn):
    """Times to threshold between 20 and 30 s: matplotlib's default labelled every minor tick (2x10^1,
    2.2x10^1, ...), which overlapped."""
    root = tmp_path / "results"
    for s in (0, 1, 2):
        write_run(root / f"trpo_s{s}", "trpo", s, rows_of(1000, 30, 1e-3 * (1 + 0.1 * s), 1.0, 0.0))
    build_report(root, tmp_path / "out", ReportOptions(**FAST))
    ax = drawn["tradeoff_InvertedPendulum"].axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(ax.get_xlim() if axis is ax.xaxis else ax.get_ylim())
        labels = [
            t.get_text()
            for t in axis.get_ticklabels()
            if t.get_text() and lo <= t.get_position()[0 if axis is ax.xaxis else 1] <= hi
        ]
        assert 2 <= len(labels) <= 6, labels
        assert all(re.fullmatch(r"[0-9.]+[kM]?", s) for s in labels), labels
        assert not any(t.get_text() for t in axis.get_minorticklabels())
