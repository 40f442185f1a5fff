"""The Table 1 recipe and what it needs: resume=auto, per-environment ES settings (es_env),
training without the survival bonus, per-algorithm lookup tables in experiments, and the
Optuna tuning driver (harness/tune.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from harness.algos.evolution import fitness_and_unstable, train_reward_shift
from harness.config import ConfigError, validate
from harness.tracking import COST_COLUMNS
from harness.tune import Recipe, RecipeError
from tests.conftest import FAST, ROOT, read_metrics, run_cli

IP = ("env=InvertedPendulum", "algo.population_size=8", "eval.episodes=2", "workers.n=1", *FAST)


def test_the_es_family_picks_its_per_environment_file_and_the_command_line_wins(make_cfg, tmp_path):
    # conf/algo/es_env/<Env>.yaml is applied after es.yaml, for ES and everything built on it
    env_files = sorted(p.stem for p in (ROOT / "conf" / "algo" / "es_env").glob("*.yaml"))
    assert {"Hopper", "Walker2d"} <= set(env_files), env_files
    for env in env_files:
        shipped = yaml.safe_load((ROOT / "conf" / "algo" / "es_env" / f"{env}.yaml").read_text())
        assert shipped["hparams_source"]  # every file names its source
        for algo in ("es", "vo", "nsr_es"):
            cfg = make_cfg(f"algo={algo}", f"env={env}")
            for key, value in shipped.items():
                assert cfg.algo[key] == value, (env, algo, key)
            validate(cfg)
    env = env_files[0]
    cfg = make_cfg("algo=vo", f"env={env}", "algo.sigma=0.123")
    assert cfg.algo.sigma == 0.123
    # an env without a file keeps es.yaml's values
    cfg = make_cfg("algo=es", "env=HalfCheetah")
    assert cfg.algo.sigma == 0.03 and "no per-env file" in cfg.algo.hparams_source


def test_inverted_double_pendulum_has_an_env_and_a_trpo_file(make_cfg):
    cfg = make_cfg("algo=trpo", "env=InvertedDoublePendulum")
    assert cfg.env.id == "InvertedDoublePendulum-v5" and "InvertedDoublePendulum" in cfg.algo.hparams_source
    validate(cfg)


def test_the_survival_bonus_is_left_out_of_training_fitness_only():
    results = [SimpleNamespace(episode_return=r, length=n, unstable=None) for r, n in ((100.0, 80), (50.0, 10))]
    fitness, _ = fitness_and_unstable(results, (2,), reward_shift=1.0)
    np.testing.assert_array_equal(fitness, [20.0, 40.0])  # the long, bonus-collecting episode now ranks below
    assert train_reward_shift({"id": "Hopper-v5"}, survival_bonus=False) == 1.0
    assert train_reward_shift({"id": "Humanoid-v5"}, survival_bonus=False) == 5.0
    assert train_reward_shift({"id": "Hopper-v5"}) == 0.0
    with pytest.raises(ValueError, match="no survival bonus"):
        train_reward_shift({"id": "HalfCheetah-v5"}, survival_bonus=False)


@pytest.mark.slow
def test_without_the_survival_bonus_a_run_still_reports_the_environments_reward(tmp_path, make_cfg):
    common = (
        "env=Hopper",
        "algo.train_survival_bonus=true",
        "env.max_episode_steps=100",
        "algo.population_size=8",
        "eval.episodes=2",
        "workers.n=1",
        "budget.generations=3",
        *FAST,
    )
    run_cli(*common, f"hydra.run.dir={tmp_path / 'with'}")
    run_cli(*common, "algo.train_survival_bonus=false", f"hydra.run.dir={tmp_path / 'without'}")
    a, b = read_metrics(tmp_path / "with"), read_metrics(tmp_path / "without")
    # the first generation's episodes are the same episodes, and report the same (environment) returns
    for col in ("return_mean", "return_max", "return_min", "episode_length_mean"):
        assert a[0][col] == b[0][col], col
    # the update differs (fitness left the bonus out), so the next generation's episodes differ
    assert a[1]["return_mean"] != b[1]["return_mean"]
    with pytest.raises(ConfigError, match="no survival bonus"):
        validate(make_cfg("env=HalfCheetah", "algo.train_survival_bonus=false"))
    with pytest.raises(ConfigError, match="must be true or false"):
        validate(make_cfg("env=Hopper", "algo.train_survival_bonus=maybe"))
    # TRPO trains on the environment's own reward: the key is the ES family's
    proc = run_cli("algo=trpo", "env=Hopper", "algo.train_survival_bonus=false", check=False)
    assert proc.returncode != 0 and "train_survival_bonus" in proc.stderr


@pytest.mark.slow
def test_an_experiment_may_look_values_up_by_algorithm(tmp_path):
    # the README's landscape recipe (algo.sigma_of) and the Table 1 budgets (budget.timesteps_of)
    proc = run_cli(
        "+experiment=landscape_toy",
        "algo=vo",
        "seed=0",
        "progress=false",
        "wandb.mode=disabled",
        f"hydra.run.dir={tmp_path / 'vo'}",
    )
    assert "final eval_return" in proc.stdout
    cfg = yaml.safe_load((tmp_path / "vo" / "config.yaml").read_text())
    assert cfg["algo"]["sigma"] == 1.0
    proc = run_cli(
        "+experiment=landscape_toy", "algo=vo", "+algo.sigma_off.vo=2", f"hydra.run.dir={tmp_path / 'x'}", check=False
    )
    assert proc.returncode == 2 and "unknown key algo.sigma_off.vo" in proc.stderr


def test_table1_recipe_gives_each_algorithm_its_budget(make_cfg):
    budgets = {
        a: make_cfg("+experiment=table1_mujoco", f"algo={a}", "env=Swimmer").budget.timesteps
        for a in ("es", "vo", "nsr_es", "trpo")
    }
    assert budgets == {"es": 5_000_000, "vo": 5_000_000, "nsr_es": 5_000_000, "trpo": 1_000_000}
    assert make_cfg("+experiment=table1_mujoco").resume == "auto"


def _sweep(tmp_path, *extra, check=True):
    return run_cli(
        "-m",
        "+experiment=table1_mujoco",
        "env=InvertedPendulum",
        "algo=es",
        "seed=0",
        "budget.generations=40",
        "budget.timesteps=0",
        "algo.population_size=8",
        "eval.episodes=2",
        "workers.n=1",
        *FAST,
        f"hydra.sweep.dir={tmp_path}",
        *extra,
        check=check,
    )


@pytest.mark.slow
def test_resume_auto_skips_completed_runs_continues_killed_ones_and_refuses_other_settings(tmp_path):
    run_dir = tmp_path / "es_InvertedPendulum_seed0"
    _sweep(tmp_path / "ref")
    reference = [
        {k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(tmp_path / "ref" / run_dir.name)
    ]
    # a sweep killed (SIGKILL, the whole process group) mid-run
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        "+experiment=table1_mujoco",
        "env=InvertedPendulum",
        "algo=es",
        "seed=0",
        "budget.generations=40",
        "budget.timesteps=0",
        "algo.population_size=8",
        "eval.episodes=2",
        "workers.n=1",
        *FAST,
        f"hydra.sweep.dir={tmp_path}",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not ((run_dir / "metrics.csv").exists() and len(read_metrics(run_dir)) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(read_metrics(run_dir)) < 40  # 40 short epochs: killed well before the end
    # the same command continues it, to the uninterrupted run's rows
    _sweep(tmp_path)
    assert [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)] == reference
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] >= 1
    assert len(summary["machine"]["segments"]) >= 1
    # and again: nothing to do, nothing changed
    before = (run_dir / "metrics.csv").read_text()
    proc = _sweep(tmp_path)
    assert "completed; skipped" in proc.stdout and (run_dir / "metrics.csv").read_text() == before
    # a larger budget continues it
    _sweep(tmp_path, "budget.generations=41")
    assert len(read_metrics(run_dir)) == 41
    # other settings in the same folder: refused, naming the key, nothing changed
    before = (run_dir / "metrics.csv").read_text()
    proc = _sweep(tmp_path, "budget.generations=41", "algo.sigma=0.5", check=False)
    assert proc.returncode == 1 and "algo.sigma: 0.03 -> 0.5" in proc.stderr
    assert (run_dir / "metrics.csv").read_text() == before


def test_a_tuning_recipe_is_checked_before_anything_runs(tmp_path):
    for name in sorted((ROOT / "tuning").glob("*.yaml")):
        recipe = Recipe.load(name)
        assert recipe.trials >= 1 and not set(recipe.seeds) & {0, 1, 2, 3, 4}  # tuning seeds are not report seeds
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "study: s\nalgo: es\nenv: Hopper\nseeds: [1]\ntrials: 2\nspace:\n  algo.sigma: {type: float, low: 1}\n"
    )
    with pytest.raises(RecipeError, match="space.algo.sigma"):
        Recipe.load(bad)
    bad.write_text("study: s\nalgo: es\nenv: Hopper\nseeds: [1]\ntrials: 2\nspace: {}\nsampeler: {}\n")
    with pytest.raises(RecipeError, match="unknown key.*sampeler"):
        Recipe.load(bad)


@pytest.mark.slow
def test_a_tuning_study_trains_real_runs_and_continues_where_it_stopped(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "study": "tiny",
                "algo": "es",
                "env": "InvertedPendulum",
                "seeds": [100, 101],
                "trials": 2,
                "overrides": [
                    "budget.generations=3",
                    "budget.timesteps=0",
                    "eval.episodes=2",
                    "eval.every_timesteps=0",
                    "workers.n=1",
                    "algo.noise_table_size=1000000",
                    "wandb.mode=disabled",
                ],
                "objective": {"last_evals": 2},
                "space": {
                    "algo.sigma": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
                    "algo.population_size": {"type": "categorical", "choices": [4, 8]},
                },
            }
        )
    )
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    tune = [sys.executable, "-m", "harness.tune", str(recipe), "--out", str(out)]
    subprocess.run(tune, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    study = out / "tiny"
    import pandas as pd

    trials = pd.read_csv(study / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    runs = sorted(p for p in (study / "runs").iterdir() if p.is_dir())
    assert len(runs) == 4  # 2 trials x 2 seeds, each a real run folder
    # a trial's value is the mean over its seeds of each run's last two evaluations
    first = trials.iloc[0]
    seed_values = json.loads(first["seed_values"])
    assert first["value"] == pytest.approx(np.mean(seed_values))
    best = yaml.safe_load((study / "best.yaml").read_text())
    assert set(best) == {"hparams_source", "sigma", "population_size"} and "Optuna study tiny" in best["hparams_source"]
    assert "evaluations at budget.generations=3 budget.timesteps=0" in best["hparams_source"]  # what the runs had
    # run again with one more trial (an override after the options is taken too): the two finished trials
    # are kept, one more runs
    subprocess.run(
        [*tune, "--trials", "3", "eval.episodes=2"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600
    )
    assert len(pd.read_csv(study / "trials.csv")) == 3


def test_the_tuning_command_takes_overrides_anywhere_and_says_the_budget_they_give():
    from harness.tune import budget_text, parse_args

    args = parse_args(["tuning/es_Hopper.yaml", "workers.n=2", "--trials", "3", "budget.generations=2"])
    assert args.trials == 3 and args.overrides == ["workers.n=2", "budget.generations=2"]
    assert (
        budget_text(["budget.timesteps=2000000", "eval.episodes=5", "budget.timesteps=0", "budget.generations=2"])
        == "budget.timesteps=0 budget.generations=2"
    )
    assert budget_text(["eval.episodes=5"]) == "the config's budget"


@pytest.mark.slow
def test_a_study_whose_runs_are_refused_stops_at_once_with_the_reason(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "study": "typo",
                "algo": "es",
                "env": "InvertedPendulum",
                "seeds": [100],
                "trials": 5,
                "overrides": ["budget.generations=1", "workers.n=1", "wandb.mode=disabled"],
                "space": {"algo.sigmaa": {"type": "float", "low": 0.01, "high": 0.1}},
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness.tune", str(recipe), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2 and "was refused" in proc.stderr and "sigmaa" in proc.stderr
    import pandas as pd

    assert list(pd.read_csv(tmp_path / "out" / "typo" / "trials.csv")["state"]) == ["FAIL"]  # not five


@pytest.mark.slow
def test_every_table1_task_has_a_tuning_recipe_whose_space_composes_and_validates(make_cfg):
    """Each recipe's overrides and every corner of its space (all lows, all highs, every categorical
    choice) compose into a config the harness accepts, so a study never starts on a key that does not
    exist or a value the trainer refuses."""
    recipe = yaml.safe_load((ROOT / "experiments" / "table1_mujoco.yaml").read_text())
    tasks = recipe["hydra"]["sweeper"]["params"]["env"].split(",")
    assert sorted(p.stem for p in (ROOT / "tuning").glob("*.yaml")) == sorted(f"es_{t}" for t in tasks)
    for task in tasks:
        r = Recipe.load(ROOT / "tuning" / f"es_{task}.yaml")
        assert (r.algo, r.env, r.study) == ("es", task, f"es_{task}")
        assert not set(r.seeds) & {0, 1, 2}, "tuning seeds must not be the seeds Table 1 reports"
        numeric = {k: s for k, s in r.space.items() if s["type"] != "categorical"}
        corners = [{k: s["low"] for k, s in numeric.items()}, {k: s["high"] for k, s in numeric.items()}]
        corners += [{k: c} for k, s in r.space.items() if s["type"] == "categorical" for c in s["choices"]]
        for corner in corners:
            overrides = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in corner.items()]
            cfg = make_cfg(f"algo={r.algo}", f"env={r.env}", *r.overrides, *overrides)
            validate(cfg)
            for key, value in corner.items():
                assert OmegaConf.select(cfg, key) == value, (task, key)
            if cfg.algo.train_survival_bonus is False:
                assert train_reward_shift(OmegaConf.to_container(cfg.env), survival_bonus=False) > 0
