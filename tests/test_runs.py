"""Small real MuJoCo runs through the CLI: the metrics contract, multirun, determinism."""

import json

import numpy as np
import pytest

from harness.algos.evolution import load_policy
from harness.envs import make_env
from harness.seeding import EVAL_ENV, env_seeds
from harness.tracking import COST_COLUMNS, REQUIRED_COLUMNS
from harness.workers.rollout import run_episode
from tests.conftest import FAST, read_metrics, run_cli
from tests.wandb_records import history, metric_definitions, run_info

SMALL = (*FAST, "algo.population_size=8", "eval.episodes=2")


@pytest.mark.slow
def test_halfcheetah_run_writes_the_metrics_contract(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "algo=es",
        "env=HalfCheetah",
        "budget.timesteps=20000",
        "workers.n=2",
        f"hydra.run.dir={run_dir}",
        *SMALL,
        "eval.every_timesteps=16000",
    )
    rows = read_metrics(run_dir)
    # 8 episodes of 1000 steps per generation: the budget of 20000 ends after the third
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["timesteps"]) for r in rows] == [8000, 16000, 24000]
    assert [int(r["episodes"]) for r in rows] == [8, 16, 24]
    for col in REQUIRED_COLUMNS:
        if col != "eval_return":
            assert all(r[col] != "" for r in rows), col
    # evaluated once 16000 steps have passed since the last evaluation, and after the last epoch
    assert [r["eval_return"] != "" for r in rows] == [False, True, True]
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls) and walls[0] > 0
    # wall time is training time plus evaluation time; only evaluated epochs add evaluation time
    evals = [float(r["eval_time_s"]) for r in rows]
    assert evals[0] == 0 and 0 < evals[1] < evals[2]
    for r in rows:
        assert float(r["train_time_s"]) + float(r["eval_time_s"]) == pytest.approx(float(r["wall_time_s"]))
    for r in rows:
        assert float(r["return_max"]) >= float(r["return_mean"]) >= float(r["return_min"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stop_reason"] == "budget.timesteps"
    assert summary["timesteps"] == 24000 and summary["epochs"] == 3
    assert summary["budget_overshoot_timesteps"] == 4000  # budget 20000, checked after each 8000-step epoch
    assert summary["eval_return"] == pytest.approx(float(rows[-1]["eval_return"]))
    assert summary["train_time_s"] + summary["eval_time_s"] == pytest.approx(summary["wall_time_s"])
    machine = summary["machine"]  # how much of the machine the run had (harness/machine.py)
    assert machine["workers_n"] == 2 and len(machine["segments"]) == 1
    assert machine["cpu_time_s"] > 0 and 0 < machine["cpu_share"] <= 1.0 + 1e-6
    assert machine["busy"] in (True, False) and machine["others_share"] >= 0
    assert "workers:\n  n: 2" in (run_dir / "config.yaml").read_text()
    with np.load(run_dir / "policy.npz") as z:
        assert z["params"].shape == (6 * 17 + 6,)
        assert z["obs_mean"].shape == z["obs_std"].shape == (17,)
        # one observation per training step; the evaluations at epochs 2 and 3 added none
        assert float(z["obs_count"]) == 24000
    # the saved policy, reloaded, replays the final evaluation exactly
    policy, params, mean, std, meta = load_policy(run_dir / "policy.npz")
    env = make_env(meta["env"]["id"])
    seeds = env_seeds(0, EVAL_ENV, 3, 2)
    replay = [run_episode(env, policy, params, mean, std, s, False).episode_return for s in seeds]
    assert np.mean(replay) == pytest.approx(float(rows[-1]["eval_return"]), rel=1e-12)
    log = (run_dir / "harness.log").read_text()
    assert "epoch 1 | timesteps 8000 |" in log and "| eval - |" in log  # not evaluated: "-", never "nan"
    assert "nan" not in log
    assert f"run directory: {run_dir}" in proc.stdout
    assert "final eval_return:" in proc.stdout


def _run_table(run_dir, *args):
    """Run the CLI into ``run_dir``; its metrics rows without the wall-time column."""
    run_cli(*args, f"hydra.run.dir={run_dir}")
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


# Same rows whatever workers.n or the backend: tests/test_algorithms.py (every algorithm, serial and process on
# Hopper, whose early terminations make the pieces uneven) and tests/test_ray_backend.py.


@pytest.mark.slow
def test_multirun_gives_one_run_directory_and_one_wandb_run_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        "seed=0,1",
        "env=InvertedPendulum",
        "budget.generations=2",
        *SMALL,
        "wandb.mode=offline",
        "workers.n=1",
        f"hydra.sweep.dir={sweep}",
    )
    runs = sorted(p.parent for p in sweep.glob("*/metrics.csv"))
    assert [p.name for p in runs] == ["es_InvertedPendulum_seed0_0", "es_InvertedPendulum_seed1_1"]
    for seed, run in enumerate(runs):
        rows = read_metrics(run)
        assert len(rows) == 2
        (wandb_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
        logged = history(wandb_file)
        assert [h["epoch"] for h in logged] == [1, 2]
        for h, r in zip(logged, rows):  # W&B got the same rows as metrics.csv
            for col in (
                "timesteps",
                "episodes",
                "return_mean",
                "return_max",
                "eval_return",
                "wall_time_s",
                "train_time_s",
            ):
                assert h[col] == pytest.approx(float(r[col])), col
        assert metric_definitions(wandb_file) == {
            "epoch": "",
            "timesteps": "",
            "wall_time_s": "",
            "train_time_s": "",
            "*": "timesteps",
        }
        info = run_info(wandb_file)
        assert info["job_type"] == "es" and info["group"] == "InvertedPendulum"
        assert info["name"] == f"es-InvertedPendulum-s{seed}"
    assert read_metrics(runs[0]) != read_metrics(runs[1])


@pytest.mark.slow
@pytest.mark.parametrize("mujoco_gl", [None, "egl"])
def test_a_readme_command_prints_no_wandb_banner_or_opengl_notice(tmp_path, mujoco_gl):
    proc = run_cli(
        "env=InvertedPendulum",
        "budget.generations=1",
        *SMALL,
        "wandb.mode=offline",
        "workers.n=1",
        f"hydra.run.dir={tmp_path}",
        env_vars={"WANDB_SILENT": None, "MUJOCO_GL": mujoco_gl},
    )
    assert "wandb:" not in proc.stdout + proc.stderr
    assert "OpenGL" not in proc.stdout + proc.stderr
    assert list((tmp_path / "wandb").glob("offline-run-*"))  # W&B still recorded the run
    assert "final eval_return:" in proc.stdout
