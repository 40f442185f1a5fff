"""The report on awkward results folders: repeated seeds, several worker counts, torn or unfinished runs,
mixed environments, a reference that never scores above zero, algorithm-specific columns, reused output
folders. Every run here is SYNTHETIC (:func:`tests.test_report.write_run`: the runner's files with made-up
numbers), so each answer is known by hand.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.report import ReportOptions, build_report, curves
from harness.report import aggregate as ag
from harness.report.figures import ALGO_COLORS
from harness.report.load import load_runs, read_metrics_csv
from tests.test_report import REQUIRED, linear_rows, write_run

FAST = ReportOptions(reps=50)


def edit_config(run_dir, **values):
    """Set config keys given as ``section__key=value`` (``env__max_episode_steps=100``)."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    for dotted, v in values.items():
        section, key = dotted.split("__")
        cfg.setdefault(section, {})[key] = v
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))


def report_cli(runs, out, *args):
    """``python -m harness.report RUNS --out OUT *args`` as a user runs it; the test fails unless it exits 0."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "harness.report", str(runs), "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def set_mtime(run_dir, t):
    """Pretend the run finished at POSIX time ``t`` (its summary.json and metrics.csv)."""
    for name in ("summary.json", "metrics.csv"):
        if (run_dir / name).exists():
            os.utime(run_dir / name, (t, t))


# ----------------------------------------------------------------------------- loading


@pytest.mark.slow
def test_a_half_written_last_row_is_dropped_even_when_it_parses(tmp_path, caplog):
    rows = linear_rows(1000, 9000, 0.01, 1e-3)  # eval_return 10, 20, ..., 90 at 1, 2, ..., 9 s
    # epoch 10 would be "10,10000,10,10.0,100.0,100.0,100.0": killed after "10" of its eval_return
    write_run(tmp_path / "cut_return", "es", 0, rows)
    with open(tmp_path / "cut_return" / "metrics.csv", "a", newline="") as f:
        f.write("10,10000,10,10.0,100.0,100.0,10")
    # ... or after the "1" of its wall_time_s (which then goes backwards)
    write_run(tmp_path / "cut_time", "es", 1, rows)
    with open(tmp_path / "cut_time" / "metrics.csv", "a", newline="") as f:
        f.write("10,10000,10,1")
    with caplog.at_level(logging.WARNING):
        loaded = load_runs(tmp_path)
    runs = loaded.runs.set_index("run")
    assert sorted(runs.index) == ["cut_return", "cut_time"] and not loaded.skipped
    assert runs.loc["cut_return", "final_eval_return"] == pytest.approx(90.0)  # not 10
    assert (runs["epochs"] == 9).all()
    assert "cut short" in caplog.text


def test_rows_with_missing_cells_are_dropped_but_a_complete_file_is_read_whole(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(",".join(REQUIRED) + ",extra\r\n1,100,1,0.1,1,1,,7\r\n2,200,2,0.2\r\n3,300,3,0.3,3,3,3,\r\n")
    m = read_metrics_csv(path)
    assert list(m["epoch"]) == [1, 3] and math.isnan(m["eval_return"][0]) and math.isnan(m["extra"][1])


@pytest.mark.slow
def test_a_run_killed_before_its_first_epoch_is_listed_as_skipped(tmp_path):
    write_run(tmp_path / "ok", "es", 0, linear_rows(1000, 3000, 0.01, 1e-3))
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "config.yaml").write_text((tmp_path / "ok" / "config.yaml").read_text())
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("defaults: [a]\n")  # not a run's config: ignored
    loaded = load_runs(tmp_path)
    ((path, why),) = loaded.skipped
    assert path.endswith("killed") and "killed before its first epoch" in why


@pytest.mark.slow
def test_algorithm_specific_columns_load_for_any_algorithm_name(tmp_path):
    """The novelty family's, VO's, the mazes' extra columns, and an unknown algorithm logging columns that
    share names with the report's own (``status``, ``seed``) and a text column."""
    extra = {
        "ns_es": ["agent", "archive_size", "novelty_mean", "best_return"],
        "nsra_es": ["agent", "archive_size", "novelty_mean", "best_return", "reward_weight"],
        "vo": ["sigma_mean", "sigma_min", "sigma_max"],
        "My-Algo 2": ["status", "seed", "phase"],
    }
    for algo, cols in extra.items():
        run_dir = tmp_path / algo.replace(" ", "_")
        run_dir.mkdir()
        cfg = {
            "algo": {"name": algo},
            "env": {"name": "deceptive_point_maze", "id": "DeceptivePointMaze-v0", "success": True},
            "seed": 3,
            "workers": {"n": 1},
        }
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*REQUIRED, "eval_success", *cols])
            for e in (1, 2):
                w.writerow(
                    [
                        e,
                        100 * e,
                        e,
                        0.1 * e,
                        e,
                        e,
                        10 * e,
                        float(e == 2),
                        *("explore" if c == "phase" else ("" if c == "reward_weight" and e == 1 else e) for c in cols),
                    ]
                )
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed"}))
    loaded = load_runs(tmp_path)
    runs = loaded.runs.set_index("algo")
    assert sorted(runs.index) == sorted(extra) and not loaded.skipped
    assert (runs["seed"] == 3).all() and (runs["status"] == "completed").all()
    assert (runs["final_eval_return"] == 20).all() and (runs["final_eval_success"] == 1).all()
    mine = loaded.metrics[loaded.metrics["algo"] == "My-Algo 2"]
    assert list(mine["status_logged"]) == [1, 2] and list(mine["seed"]) == [3, 3] and mine["phase"].isna().all()
    assert loaded.metrics.loc[loaded.metrics["algo"] == "nsra_es", "reward_weight"].tolist()[1] == 2
    rep = build_report(tmp_path, tmp_path / "out", FAST)
    assert sorted(rep.frames["success"]["algo"]) == sorted(extra)
    assert sorted(rep.frames["final"]["algo"]) == sorted(extra)


@pytest.mark.slow
def test_runs_of_one_env_name_on_different_tasks_are_not_pooled(tmp_path, caplog):
    """Short-episode HalfCheetah runs next to full ones: two environments, each with its own thresholds."""
    for seed in (0, 1):
        write_run(tmp_path / f"trpo{seed}", "trpo", seed, linear_rows(1000, 10_000, 1e-3, 1e-3), env="HalfCheetah")
        write_run(tmp_path / f"short{seed}", "trpo", seed, linear_rows(1000, 10_000, 1e-4, 1e-3), env="HalfCheetah")
        edit_config(tmp_path / f"short{seed}", env__max_episode_steps=100)
    # the registration's own limit written out is the same task as leaving it to the registration
    edit_config(tmp_path / "trpo1", env__max_episode_steps=1000)
    write_run(tmp_path / "hopper", "trpo", 0, linear_rows(1000, 10_000, 2e-3, 1e-3), env="Hopper")
    with caplog.at_level(logging.WARNING):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    runs = rep.loaded.runs
    short, full = "HalfCheetah[max_episode_steps=100]", "HalfCheetah[max_episode_steps=1000]"
    assert sorted(runs["env"].unique()) == sorted([short, full, "Hopper"])
    assert "covers 2 different environments" in caplog.text
    final = rep.frames["thresholds"].query("fraction == 1.0").set_index("env")["threshold"]
    assert final.to_dict() == pytest.approx({short: 1.0, full: 10.0, "Hopper": 20.0})
    assert set(rep.loaded.metrics["env"]) == {short, full, "Hopper"}
    assert (tmp_path / "out" / "curves_HalfCheetah_max_episode_steps=100.png").exists()


def test_a_default_written_out_is_the_same_environment(tmp_path):
    from harness.report.load import label_environments

    runs = pd.DataFrame({"run": ["a", "b", "c"], "env": ["deceptive_point_maze"] * 3})
    maze = {"env.name": "deceptive_point_maze", "env.id": "DeceptivePointMaze-v0"}
    configs = {
        "a": maze,
        "b": {**maze, "env.kwargs.reward_type": "progress", "env.max_episode_steps": 750},
        "c": {**maze, "env.kwargs.reward_type": "dense"},
    }
    labelled = label_environments(runs, configs).set_index("run")["env"]
    assert labelled["a"] == labelled["b"] == "deceptive_point_maze[kwargs.reward_type=progress]"
    assert labelled["c"] == "deceptive_point_maze[kwargs.reward_type=dense]"


# ----------------------------------------------------------------------------- which runs count


@pytest.mark.slow
def test_each_seed_counts_once_preferring_the_latest_completed_run(tmp_path, caplog):
    rows = linear_rows(1000, 5000, 1e-3, 1e-3)
    spec = {  # run: (seed, workers.n, status, mtime)
        "s0_old": (0, 1, "completed", 100),
        "s0_new": (0, 1, "completed", 200),
        "s0_n2": (0, 2, "completed", 150),
        "s1_done": (1, 1, "completed", 100),
        "s1_rerun_cut": (1, 1, "interrupted", 300),
        "s2_killed": (2, 1, None, 400),
        "s1_n2_killed": (1, 2, None, 500),
        "s3_n2": (3, 2, "completed", 1),
    }
    for run, (seed, n, status, t) in spec.items():
        write_run(tmp_path / run, "es", seed, rows, workers_n=n, status=status)
        set_mtime(tmp_path / run, t)
    for run in spec:
        edit_config(tmp_path / run, algo__sigma=0.02)
    write_run(tmp_path / "s0_other_sigma", "es", 0, rows)  # same seed, another setting: not a duplicate
    edit_config(tmp_path / "s0_other_sigma", algo__sigma=0.1)
    with caplog.at_level(logging.INFO):
        runs = load_runs(tmp_path).runs.set_index("run")
    assert sorted(runs.index[runs["learning"]]) == ["s0_new", "s0_other_sigma", "s1_done", "s3_n2"]
    assert sorted(runs.index[runs["wall_clock"]]) == ["s0_n2", "s0_new", "s0_other_sigma", "s1_done", "s3_n2"]
    assert runs.loc["s0_old", "note"] == "duplicate of s0_new (same config and seed): not counted"
    assert runs.loc["s1_rerun_cut", "note"] == "duplicate of s1_done (same config and seed): not counted"
    assert runs.loc["s0_n2", "note"].startswith("same config and seed as s0_new: counted in wall-clock")
    assert runs.loc["s2_killed", "note"] == (
        "unknown, not completed: left out of the learning and wall-clock "
        "statistics (its group there has completed runs)"
    )
    # seed 1 counts through s1_done for learning; at workers.n=2 its killed run is left out too
    assert runs.loc["s1_n2_killed", "note"].startswith("unknown, not completed: left out of the wall-clock statistics")
    assert runs.loc["s0_new", "note"] == ""
    assert "duplicate of s0_new" in caplog.text
    # another sigma is another group, never a fifth seed of this one
    assert runs.loc["s0_other_sigma", "algo"] == "es[sigma=0.1]" and runs.loc["s0_new", "algo"] == "es[sigma=0.02]"
    assert "es on InvertedPendulum: runs differ in algo.sigma: reported as 2 groups" in caplog.text


@pytest.mark.slow
def test_a_group_without_completed_runs_keeps_them_all(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path / f"s{seed}", "es", seed, linear_rows(1000, 5000, 1e-3, 1e-3), status=None)
    runs = load_runs(tmp_path).runs
    assert runs["learning"].all() and runs["wall_clock"].all() and (runs["note"] == "").all()


def labelled(ax) -> dict:
    """Legend label -> artist of everything labelled in ``ax`` (with or without a legend box)."""
    handles, labels = ax.get_legend_handles_labels()
    return dict(zip(labels, handles))


def color_of(handle) -> str:
    from matplotlib.colors import to_hex

    line = handle[0] if isinstance(handle, tuple) or hasattr(handle, "lines") else handle
    return to_hex(line.get_color())


def identical_seeds(root, algo, seeds, workers=(1,), steps=5000, slope=1e-3, seconds_per_step=1e-3):
    """Runs that differ only in ``workers.n`` (as the harness guarantees: same rows apart from wall_time_s,
    here n times faster)."""
    for n in workers:
        for s in seeds:
            write_run(
                root / f"{algo}_n{n}_s{s}",
                algo,
                s,
                linear_rows(1000, steps, slope * (1 + s / 10), seconds_per_step / n),
                workers_n=n,
            )


@pytest.mark.slow
def test_seeds_on_the_gymnasium_and_mujoco_engines_pool_and_envpool_runs_stay_apart(tmp_path):
    """The mujoco engine steps Gymnasium's own trajectories (the same rows, tests/test_mujoco_engine.py), so
    its seeds join the gymnasium engine's in one group; the removed envpool engine's runs (other initial states)
    are a group of their own, labelled."""
    runs = [(0, "gymnasium"), (1, "mujoco"), (2, "mujoco"), (0, "envpool"), (0, "mujoco")]
    for seed, engine in runs:
        run = write_run(tmp_path / f"es_{engine}_s{seed}", "es", seed, linear_rows(1000, 5000, 1e-3 * (1 + seed), 1e-3))
        edit_config(run, workers__engine=engine)
    set_mtime(tmp_path / "es_mujoco_s0", 100)  # seed 0's gymnasium run is the newer one: it stands for the seed
    rep = build_report(tmp_path, tmp_path / "out", FAST)
    final = rep.frames["final"].set_index("algo")["n_runs"].to_dict()
    assert final == {"es[engine=gymnasium]": 3, "es[engine=envpool]": 1}  # side by side, each group says its engine
    assert set(ag.learning_runs(rep.loaded.runs)["run"]) == {
        "es_gymnasium_s0",
        "es_mujoco_s1",
        "es_mujoco_s2",
        "es_envpool_s0",
    }
    # wall clock: one engine per group (the engines run at different speeds), the one most seeds ran on
    wall = ag.wall_clock_runs(rep.loaded.runs)
    assert set(wall["run"]) == {"es_mujoco_s0", "es_mujoco_s1", "es_mujoco_s2", "es_envpool_s0"}
    note = rep.loaded.runs.set_index("run").at["es_gymnasium_s0", "note"]
    assert "ran on the gymnasium engine, its wall-clock group on the mujoco engine" in note


@pytest.mark.slow
def test_repeated_runs_of_one_seed_count_once(tmp_path, caplog):
    identical_seeds(tmp_path, "es", [0])
    write_run(tmp_path / "es_n1_s0_again", "es", 0, linear_rows(1000, 5000, 1e-3, 1e-3))
    set_mtime(tmp_path / "es_n1_s0", 100)  # the rerun is the newer one
    with caplog.at_level(logging.WARNING):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    final = rep.frames["final"].iloc[0]
    assert final["n_runs"] == 1 and final["iqm"] == pytest.approx(5.0)
    assert (rep.frames["curves"]["n_runs"] == 1).all()
    assert list(rep.frames["ttt"]["run"].unique()) == ["es_n1_s0_again"]
    index = (tmp_path / "out" / "report.md").read_text()
    assert "**Duplicate runs dropped**" in index
    assert "- `es_n1_s0` (completed): duplicate of es_n1_s0_again" in index
    assert "es_n1_s0: duplicate of es_n1_s0_again" in caplog.text


@pytest.mark.slow
def test_worker_counts_split_only_the_wall_clock_statistics(tmp_path, drawn):
    """ES and TRPO seeds 0-1 at workers.n 1 and 2: one curve per algorithm against epochs and steps, one per
    (algorithm, workers.n) against seconds and in the scaling figure; every table counts each seed once."""
    identical_seeds(tmp_path, "es", [0, 1], workers=(1, 2), steps=20_000, slope=5e-4, seconds_per_step=5e-5)
    identical_seeds(tmp_path, "trpo", [0, 1], workers=(1, 2), steps=10_000)
    rep = build_report(tmp_path, tmp_path / "out", FAST)
    curves = rep.frames["curves"]
    groups = curves.groupby("axis")["group"].unique().map(sorted).to_dict()
    assert groups == {
        "epoch": ["es", "trpo"],
        "timesteps": ["es", "trpo"],
        "train_time_s": ["es n=1", "es n=2", "trpo n=1", "trpo n=2"],
    }  # no train_time_s: wall_time_s
    assert (curves["n_runs"] == 2).all()
    fig = drawn["curves_InvertedPendulum"]
    epochs, steps, seconds = fig.axes[:3]
    for ax in (epochs, steps):
        assert sorted(labelled(ax)) == ["es (2 runs)", "trpo (2 runs)"]
    wall = labelled(seconds)
    assert sorted(wall) == ["es n=1 (2 runs)", "es n=2 (2 runs)", "trpo n=1 (2 runs)", "trpo n=2 (2 runs)"]
    assert wall["es n=1 (2 runs)"].get_linestyle() == "-" and wall["es n=2 (2 runs)"].get_linestyle() == "--"
    # one colour per algorithm, in every panel
    assert {color_of(h) for label, h in [*labelled(epochs).items(), *wall.items()] if label.startswith("es")} == {
        ALGO_COLORS["es"]
    }
    assert {color_of(h) for label, h in wall.items() if label.startswith("trpo")} == {ALGO_COLORS["trpo"]}
    scaling = labelled(drawn["scaling_InvertedPendulum"].axes[0])
    assert sorted(scaling) == [
        "es (median over seeds; runs 2/2)",
        "es ideal: t(n_min) n_min / n",
        "trpo (median over seeds; runs 2/2)",
        "trpo ideal: t(n_min) n_min / n",
    ]
    np.testing.assert_array_equal(scaling["es (median over seeds; runs 2/2)"][0].get_xdata(), [1, 2])
    # tables: each seed once on the learning axes, per workers.n on the wall-clock axis
    final = rep.frames["final"].set_index("algo")
    assert final.loc["es", "n_runs"] == 2 and final.loc["es", "iqm"] == pytest.approx(np.mean([10, 11]))
    thr = rep.frames["thresholds"]
    assert (thr["n_reference_runs"] == 2).all() and thr["threshold"].max() == pytest.approx(np.mean([10, 11]))
    ratios = rep.frames["ratios"]
    learn = ratios[ratios["axis"] != "train_time_s"]
    assert set(learn["group"]) == {"es"} and (learn["n_runs"] == 2).all() and (learn["ref_n_runs"] == 2).all()
    wall_pairs = ratios.loc[ratios["axis"] == "train_time_s", ["group", "reference_group"]].drop_duplicates()
    assert len(wall_pairs) == 4  # es n=1, n=2 against trpo n=1, n=2
    # 50% threshold: 5.25 (trpo finals 10, 11). trpo (1e-3 t, 1.1e-3 t; 1 s per 1000 steps / n) first reaches
    # it at 6000 and 5000 steps, median 5500; es (5e-4 t, 5.5e-4 t; 0.05 s per 1000 steps / n) at 11000 and
    # 10000, median 10500 steps, 0.2625 s at n=2; trpo at n=1: 5.5 s
    half = ratios[ratios["fraction"] == 0.5].set_index(["axis", "group", "reference_group"])["ratio"]
    assert half[("timesteps", "es", "trpo")] == pytest.approx(10_500 / 5_500)
    assert half[("train_time_s", "es n=2", "trpo n=1")] == pytest.approx(0.2625 / 5.5)
    tradeoff = rep.frames["tradeoff"]
    assert set(tradeoff.loc[tradeoff["axis"] == "epoch", "group"]) == {"es", "trpo"}
    scaling_t = rep.frames["scaling"].set_index(["algo", "workers_n"])
    assert (scaling_t["n_runs"] == 2).all()
    per_epoch = scaling_t["time_per_epoch_s"]
    assert per_epoch[("es", 2)] == pytest.approx(0.5 * per_epoch[("es", 1)])


@pytest.mark.slow
def test_single_evaluations_are_drawn_and_colours_are_fixed_across_reports(tmp_path, drawn):
    one_eval = [
        {
            "epoch": 1,
            "timesteps": 1000,
            "episodes": 1,
            "wall_time_s": 1.0,
            "return_mean": 1.0,
            "return_max": 1.0,
            "eval_return": 3.0,
        }
    ]
    write_run(tmp_path / "a" / "vo", "vo", 0, one_eval)
    identical_seeds(tmp_path / "a", "trpo", [0, 1])
    identical_seeds(tmp_path / "b", "trpo", [0])
    identical_seeds(tmp_path / "b", "es", [0])
    identical_seeds(tmp_path / "b", "my_new_algo", [0])
    build_report(tmp_path / "a", tmp_path / "out_a", FAST)
    panels_a = labelled(drawn["curves_InvertedPendulum"].axes[0])
    build_report(tmp_path / "b", tmp_path / "out_b", FAST)
    panels_b = labelled(drawn["curves_InvertedPendulum"].axes[0])
    vo = panels_a["vo (1 run)"]
    line = vo[0] if hasattr(vo, "lines") else vo  # an errorbar: its data line
    assert line.get_marker() == "o" and list(line.get_xdata()) == [1] and list(line.get_ydata()) == [3]
    assert color_of(panels_a["trpo (2 runs)"]) == color_of(panels_b["trpo (1 run)"]) == ALGO_COLORS["trpo"]
    assert color_of(panels_b["es (1 run)"]) == ALGO_COLORS["es"]
    assert color_of(panels_b["my_new_algo (1 run)"]) not in {
        color_of(h) for k, h in panels_b.items() if not k.startswith("my_new_algo")
    }


@pytest.mark.slow
def test_a_run_killed_before_its_summary_does_not_cut_the_statistics_short(tmp_path, caplog):
    """Seeds 0 and 1 complete 20 epochs; seed 2 was killed after 5 (no summary.json): it is listed and left
    out, instead of ending every curve at epoch 5 and giving its epoch-5 return as a final return."""
    for seed in (0, 1):
        write_run(tmp_path / f"s{seed}", "es", seed, linear_rows(1000, 20_000, 1e-3, 1e-3))
    write_run(tmp_path / "s2", "es", 2, linear_rows(1000, 5_000, 1e-3, 1e-3), status=None)
    with caplog.at_level(logging.WARNING):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    curves = rep.frames["curves"]
    assert curves.groupby("axis")["x"].max().to_dict() == {"epoch": 20, "timesteps": 20_000, "train_time_s": 20}
    assert (curves["n_runs"] == 2).all()
    final = rep.frames["final"].iloc[0]
    assert (final["n_runs"], final["n_not_completed"], final["iqm"]) == (2, 0, pytest.approx(20.0))
    assert "- `s2` (unknown): unknown, not completed: left out" in rep.index.read_text()
    assert "s2: unknown, not completed: left out" in caplog.text


# ----------------------------------------------------------------------------- thresholds


def shifted_rows(offset, slope, epochs=10, steps_per_epoch=1000):
    """eval_return = offset + slope * epoch, every epoch evaluated, 1 s per epoch."""
    rows = linear_rows(steps_per_epoch, epochs * steps_per_epoch, 0.0, 1e-3)
    for r in rows:
        r["eval_return"] = r["return_mean"] = r["return_max"] = offset + slope * r["epoch"]
    return rows


def test_threshold_rule_keeps_thresholds_increasing():
    assert curves.threshold_rule(100.0, -5.0, "final") == ("final", "")
    mode, note = curves.threshold_rule(-20.0, -92.0, "final")
    assert mode == "progress" and "-20 <= 0" in note
    assert curves.threshold_rule(-50.0, -10.0, "final")[0] is None
    assert curves.threshold_rule(5.0, 10.0, "progress")[0] is None
    np.testing.assert_allclose(curves.thresholds([-20.0], [0.25, 1.0], "progress", [-92.0]), [-74, -20])
    with pytest.raises(ValueError, match="positive"):
        curves.thresholds([-20.0], [0.25, 1.0], "final")  # would give -5 for 25%, above -20 for 100%
    with pytest.raises(ValueError, match="above its initial"):
        curves.thresholds([-50.0], [0.5], "progress", [-10.0])


@pytest.mark.slow
def test_a_reference_with_a_negative_final_return_gets_progress_thresholds_or_none(tmp_path, caplog):
    # Swimmer: trpo climbs from -92 (epoch 1) to -20 (epoch 10): progress thresholds -74, -56, -38, -20.
    # es climbs from -96 to -60: reaches -74 at epoch 7 (-72), -56 never.
    # Ant: trpo gets worse (-14 -> -50): no thresholds at all.
    for seed in (0, 1):
        write_run(tmp_path / f"sw_trpo{seed}", "trpo", seed, shifted_rows(-100, 8), env="Swimmer")
        write_run(tmp_path / f"sw_es{seed}", "es", seed, shifted_rows(-100, 4), env="Swimmer")
        write_run(tmp_path / f"ant_trpo{seed}", "trpo", seed, shifted_rows(-10, -4), env="Ant")
        write_run(tmp_path / f"ant_es{seed}", "es", seed, shifted_rows(-10, 1), env="Ant")
    with caplog.at_level(logging.WARNING):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    thr = rep.frames["thresholds"]
    swimmer = thr[thr["env"] == "Swimmer"]
    np.testing.assert_allclose(swimmer["threshold"], [-74, -56, -38, -20])
    assert set(swimmer["mode"]) == {"progress"} and swimmer["note"].str.contains("<= 0").all()
    ant = thr[thr["env"] == "Ant"]
    assert ant["threshold"].isna().all() and set(ant["mode"]) == {"none"}
    ttt = rep.frames["ttt"]
    assert set(ttt["env"]) == {"Swimmer"}
    es = ttt[(ttt["algo"] == "es") & ttt["learning"]].set_index(["seed", "fraction"])
    assert es.loc[(0, 0.25), "epoch"] == 7 and not es.loc[(0, 0.5), "reached"]
    assert set(rep.frames["ratios"]["env"]) == {"Swimmer"}
    assert not (tmp_path / "out" / "tradeoff_Ant.png").exists() and (tmp_path / "out" / "tradeoff_Swimmer.png").exists()
    index = rep.index.read_text()
    assert "- Ant: no thresholds: reference final return -50 is not positive, nor above its initial return -14" in index
    assert "Swimmer: reference final return -20 <= 0" in caplog.text


# ----------------------------------------------------------------------------- output folder, CLI


@pytest.mark.slow
def test_a_reused_output_folder_keeps_no_stale_figure_and_no_user_file_is_deleted(tmp_path, caplog):
    results, out = tmp_path / "results", tmp_path / "out"
    for env in ("Hopper", "Swimmer"):
        identical_seeds(results / env, "trpo", [0])
        for run in (results / env).iterdir():
            edit_config(run, env__name=env)
    build_report(results, out, FAST)
    assert (out / "curves_Hopper.png").exists()
    (out / "notes.txt").write_text("mine")
    (out / "tradeoff_Old.png").write_bytes(b"not written by this report")  # e.g. left by an older report
    import shutil

    shutil.rmtree(results / "Hopper")
    with caplog.at_level(logging.WARNING):
        rep = build_report(results, out, FAST)
    assert not (out / "curves_Hopper.png").exists() and not (out / "tradeoff_Hopper.pdf").exists()
    assert (out / "curves_Swimmer.png").exists() and (out / "notes.txt").read_text() == "mine"
    assert (out / "tradeoff_Old.png").exists() and "tradeoff_Old.png" in caplog.text
    listed = (out / ".report-files").read_text().split()
    assert sorted(listed) == sorted(p.name for p in [rep.index, *rep.figures, *rep.tables])


@pytest.mark.slow
def test_an_empty_results_folder_gives_one_error_and_no_success_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.report", str(tmp_path / "empty")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: no usable run directory below {tmp_path / 'empty'} (0 skipped: see "
        f"{tmp_path / 'empty' / 'report' / 'report.md'})"
    ]


@pytest.mark.slow
def test_figures_pass_matplotlib_arrays_not_pandas_series(tmp_path):
    import warnings

    identical_seeds(tmp_path, "es", [0, 1], workers=(1, 2))
    identical_seeds(tmp_path, "trpo", [0, 1])  # one worker count: one point in the scaling figure
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    assert any(p.name == "scaling_InvertedPendulum.png" for p in rep.figures)
    assert [str(w.message) for w in caught if "Series" in str(w.message)] == []


@pytest.mark.slow
def test_the_behaviours_figure_draws_a_repeated_seed_once(tmp_path, drawn):
    for run in ("first", "again"):
        write_run(tmp_path / run, "ns_es", 0, linear_rows(1000, 3000, 1e-3, 1e-3), env="Swimmer")
        (tmp_path / run / "behaviours.csv").write_text(
            "epoch,timesteps,source,agent,episode,bc_0\n1,1000,archive,0,,0.5\n2,2000,archive,1,,0.7\n"
            "3,3000,eval,,0,0.9\n"
        )
    build_report(tmp_path, tmp_path / "out", FAST)
    (ax,) = [a for a in drawn["behaviours_Swimmer"].axes if a.get_title()]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3


@pytest.mark.slow
def test_an_empty_ratio_table_says_why(tmp_path, drawn):
    flat = [{**row, "eval_return": 0.0} for row in linear_rows(1000, 5000, 1e-3, 1e-3)]  # no progress: no threshold
    for algo in ("es", "trpo"):
        write_run(tmp_path / "flat" / algo, algo, 0, flat)
    build_report(tmp_path / "flat", tmp_path / "out_flat", FAST)
    text = (tmp_path / "out_flat" / "report.md").read_text()
    assert "No ratio: no env has a return threshold to time" in text and "only one" not in text
    identical_seeds(tmp_path / "alone", "trpo", [0, 1])  # thresholds, but nothing to compare with them
    build_report(tmp_path / "alone", tmp_path / "out_alone", FAST)
    text = (tmp_path / "out_alone" / "report.md").read_text()
    assert "No ratio: the reference algorithm is the only one on every env with a threshold." in text


def _two_population_sizes(root):
    """ES at population sizes 20 and 80, seeds 0 and 1 each (issue 19, item 4)."""
    for pop in (20, 80):
        for seed in (0, 1):
            run = write_run(
                root / f"es_pop{pop}_seed{seed}", "es", seed, linear_rows(1000, 5000, 1e-3 * pop / 20, 1e-3)
            )
            edit_config(run, algo__population_size=pop)


@pytest.mark.slow
def test_runs_with_other_settings_are_other_groups_never_seeds_of_one(tmp_path, caplog):
    _two_population_sizes(tmp_path)
    with caplog.at_level(logging.WARNING):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    learn = ag.learning_runs(rep.loaded.runs)
    assert learn.groupby("algo")["seed"].apply(sorted).to_dict() == {
        "es[population_size=20]": [0, 1],
        "es[population_size=80]": [0, 1],
    }
    text = rep.index.read_text()
    assert "es[population_size=20] on InvertedPendulum: 2 seeds" in text
    assert "es[population_size=80] on InvertedPendulum: 2 seeds" in text
    assert sorted(rep.frames["final"]["algo"]) == ["es[population_size=20]", "es[population_size=80]"]
    assert "pooling" not in caplog.text


@pytest.mark.slow
def test_a_key_only_newer_runs_record_is_a_note_not_a_warning_about_different_settings(tmp_path, caplog):
    """An older run's config lacks the keys added since (e.g. algo.noise): it is pooled with the newer runs
    of its seed group, and the report says the keys are absent rather than that the settings differ."""
    for seed in (0, 1):
        run = write_run(tmp_path / f"es_seed{seed}", "es", seed, linear_rows(1000, 5000, 1e-3, 1e-3))
        if seed == 1:
            edit_config(run, algo__noise="gaussian")
    with caplog.at_level(logging.INFO, logger="harness.report.load"):
        rep = build_report(tmp_path, tmp_path / "out", FAST)
    assert sorted(ag.learning_runs(rep.loaded.runs)["seed"]) == [0, 1]
    assert "configs differ" not in caplog.text
    assert "some of whose configs lack algo.noise (written by an older version of the harness" in caplog.text


@pytest.mark.slow
def test_ignore_pools_a_setting_on_purpose_and_says_so(tmp_path):
    """Through the CLI: --ignore KEY pools, the headline then counts runs of distinct seeds; --group-by
    KEY splits by KEY alone."""

    _two_population_sizes(tmp_path / "runs")
    for run in (tmp_path / "runs").iterdir():  # a second difference, in the budget
        edit_config(run, budget__timesteps=5000 if "seed0" in run.name else 6000)

    def report(*args):
        out = tmp_path / ("out" + "_".join(a.strip("-.") for a in args))
        proc = report_cli(tmp_path / "runs", out, "--reps", "20", *args)
        return (out / "report.md").read_text(), proc.stderr

    text, _ = report()  # budget and population size differ: four groups of one seed
    assert "es[population_size=20, budget.timesteps=5000] on InvertedPendulum: 1 seed" in text
    text, err = report("--ignore", "budget.", "--ignore", "algo.population_size")
    assert "es on InvertedPendulum: 4 runs of 2 seeds" in text
    assert "- es on InvertedPendulum: algo.population_size, budget.timesteps" in text  # listed as pooled
    assert "pooling 4 runs whose configs differ in algo.population_size, budget.timesteps" in err
    text, _ = report("--group-by", "algo.population_size")
    assert "es[population_size=80] on InvertedPendulum: 2 seeds" in text


@pytest.mark.slow
def test_a_run_never_evaluated_is_listed_and_left_out_not_counted_as_never_reaching(tmp_path):
    """Issue 19, item 6: no evaluation, no curve; it is named in report.md and counts in no statistic."""
    rows = linear_rows(1000, 5000, 1e-3, 1e-3)
    for seed in (0, 1):
        write_run(tmp_path / f"es{seed}", "es", seed, rows)
        write_run(tmp_path / f"trpo{seed}", "trpo", seed, rows)
    write_run(tmp_path / "es2_no_eval", "es", 2, [{**r, "eval_return": None} for r in rows])
    rep = build_report(tmp_path, tmp_path / "out", FAST)
    runs = rep.loaded.runs.set_index("run")
    assert not runs.loc["es2_no_eval", "learning"] and not runs.loc["es2_no_eval", "wall_clock"]
    assert runs.loc["es2_no_eval", "note"].startswith("no evaluation")
    text = rep.index.read_text()
    assert "**Runs without any evaluation**" in text and "- `es2_no_eval`" in text
    assert "es on InvertedPendulum: 2 seeds" in text
    assert set(ag.learning_runs(rep.loaded.runs)["run"]) == {"es0", "es1", "trpo0", "trpo1"}


def test_a_recipe_variant_run_on_two_policies_is_two_groups_and_engines_never_pool():
    """recipe.variant names a group, but runs of one variant that still differ (policy.name: plain on linear
    and on mlp) are not pooled; nor are runs that differ only in workers.engine where the engine's rows differ
    (the removed envpool engine; the gymnasium and mujoco engines pool:
    test_seeds_on_the_gymnasium_and_mujoco_engines_pool_and_envpool_runs_stay_apart)."""
    import pandas as pd

    from harness.report.load import label_algorithms, run_key

    configs = {
        f"r{i}": {
            "algo.name": "es",
            "seed": s,
            "recipe.variant": v,
            "policy.name": p,
            "workers.engine": "gymnasium",
            "workers.n": 2,
        }
        for i, (v, p, s) in enumerate(
            [("plain", "linear", 0), ("plain", "mlp", 0), ("vbn", "mlp", 0), ("plain", "linear", 1)]
        )
    }
    configs["r4"] = {**configs["r0"], "workers.engine": "envpool"}
    runs = pd.DataFrame({"run": list(configs), "env": "HalfCheetah", "algo": "es"})
    labels = dict(zip(runs["run"], label_algorithms(runs, configs)["algo"]))
    assert labels["r0"] == labels["r3"] != labels["r1"] != labels["r2"]
    assert "policy.name=mlp" in labels["r1"] and "variant=vbn" in labels["r2"]
    assert labels["r4"] != labels["r0"] and "engine=envpool" in labels["r4"]
    assert run_key(configs["r4"]) != run_key(configs["r0"])


@pytest.mark.slow
def test_the_console_line_counts_the_duplicates_it_did_not_count(tmp_path):
    write_run(tmp_path / "runs" / "es_a", "es", 0, linear_rows(1000, 5000, 1e-3, 1e-3))
    write_run(tmp_path / "runs" / "es_b", "es", 0, linear_rows(1000, 5000, 1e-3, 1e-3))  # the same seed again
    write_run(tmp_path / "runs" / "es_c", "es", 1, linear_rows(1000, 5000, 2e-3, 1e-3))
    proc = report_cli(tmp_path / "runs", tmp_path / "out", "--reps", "50")
    assert "(3 runs, 1 of them duplicates not counted, 0 skipped," in proc.stdout, proc.stdout


def test_a_damaged_summary_json_is_named_in_a_warning(tmp_path, caplog):
    """summary.json is written whole (renamed into place), so one that does not parse was damaged afterwards: the
    report still reads the run, and says that its status, machine and busy flag are unknown."""
    from tests.test_report import linear_rows, write_run

    run = write_run(tmp_path / "r", "es", 0, linear_rows(1000, 3000, 0.01, 1e-3))
    (run / "summary.json").write_text('{"status": "comple')
    loaded = load_runs(tmp_path)
    assert list(loaded.runs["status"]) == ["unknown"]
    assert "summary.json unreadable" in caplog.text and str(run / "summary.json") in caplog.text
    assert caplog.text.count("summary.json unreadable") == 1


def test_report_cli_refuses_a_file_for_out_and_abbreviated_flags(tmp_path):
    from harness.report.__main__ import parse_args

    (tmp_path / "file").write_text("x")
    for argv in (["results", "--out", str(tmp_path / "file")], ["results", "--proto", "salimans2017"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
    assert parse_args(["results", "--out", str(tmp_path / "new")]).out == str(tmp_path / "new")


@pytest.mark.slow
def test_the_report_cli_takes_its_defaults_from_report_options_and_help_loads_no_pandas():
    """Issue 33, one home per default: every flag's default is ReportOptions' own, and reading them (``--help``,
    an argument error) imports neither pandas nor matplotlib (the package imports its pipeline lazily)."""
    import dataclasses
    import subprocess
    import sys

    from harness.report.__main__ import parse_args
    from harness.report.options import ReportOptions
    from tests.conftest import ROOT

    args, d = vars(parse_args([str(ROOT)])), ReportOptions()
    shared = [f.name for f in dataclasses.fields(d) if f.name in args and f.name not in ("final_evals", "group_by")]
    assert len(shared) >= 12
    for name in shared:
        given = tuple(args[name]) if isinstance(args[name], list) else args[name]
        assert given == (tuple(getattr(d, name)) if name in ("fractions", "ignore") else getattr(d, name)), name
    code = (
        "import sys\nfrom harness.report.__main__ import parse_args\n"
        "try:\n    parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('pandas', 'matplotlib', 'rliable') if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, timeout=120)


def test_a_misspelt_ignore_or_group_by_key_is_warned_of_with_the_closest_keys(tmp_path, caplog):
    from tests.test_report import linear_rows, write_run

    write_run(tmp_path / "r", "es", 0, linear_rows(1000, 3000, 0.01, 1e-3))
    load_runs(tmp_path, ignore=("budget.timestep", "wandb.", "budget.timesteps"), group_by=("sed",))
    assert "--ignore budget.timestep: no run has this setting" in caplog.text
    assert "did you mean budget.timesteps" in caplog.text
    assert "--group-by sed: no run has this setting" in caplog.text and "did you mean seed" in caplog.text
    assert "wandb." not in caplog.text and "--ignore budget.timesteps:" not in caplog.text  # keys that exist
