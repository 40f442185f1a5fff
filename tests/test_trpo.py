"""TRPO through the Runner: real MuJoCo runs, determinism, save/reload, per-env
hyperparameters, config errors, and the experiment sweeps."""

import itertools
import json

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from harness.algos import ALGOS, trpo
from harness.config import ConfigError, resolved_config, validate
from harness.runner import Runner
from harness.tracking import COST_COLUMNS, REQUIRED_COLUMNS
from harness.workers import WorkerError
from harness.workers.vec_env import GroupedSubprocVecEnv
from tests.conftest import CONF, ROOT, read_metrics, run_cli

# HalfCheetah with 100-step episodes: 2 envs x 256 steps = 512 steps per iteration, 4 iterations.
TINY = (
    "algo=trpo",
    "env=HalfCheetah",
    "env.max_episode_steps=100",
    "algo.n_steps=256",
    "budget.timesteps=2048",
    "seed=3",
    "eval.episodes=2",
    "eval.every_timesteps=1024",
    "wandb.mode=disabled",
    "progress=false",
    "eval.at_start=false",
)
HEALTH = tuple(trpo.HEALTH_SIGNALS)


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


def _run_in_process(make_cfg, run_dir, *overrides):
    """What the CLI does after composing, in this process (no Hydra run dir)."""
    data = resolved_config(make_cfg(*overrides))
    return Runner(data, run_dir, lambda c: trpo.make_trainer(OmegaConf.create(c))).run()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trpo") / "run"
    proc = run_cli(*TINY, "workers.n=2", f"hydra.run.dir={run_dir}")
    return run_dir, proc


@pytest.mark.slow
def test_cli_run_writes_the_metrics_contract(cli_run):
    run_dir, proc = cli_run
    rows = read_metrics(run_dir)
    assert list(rows[0]) == [
        *REQUIRED_COLUMNS[:4],
        "train_time_s",
        "eval_time_s",
        "return_mean",
        "return_std",
        "return_min",
        "return_max",
        "eval_return",
        "eval_return_std",
        *HEALTH,
    ]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["timesteps"]) for r in rows] == [512, 1024, 1536, 2048]
    # each env finishes an episode every 100 of its steps: 2, 5, 7, 10 each after 256, 512, 768, 1024
    assert [int(r["episodes"]) for r in rows] == [4, 10, 14, 20]
    assert [r["eval_return"] != "" for r in rows] == [False, True, False, True]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert "policy" not in saved  # TRPO's networks are algo.net_arch: the policy group did not run
    assert saved["algo"]["device"] == "cpu"
    for r in rows:
        assert float(r["return_max"]) >= float(r["return_mean"]) >= float(r["return_min"])
        success = float(r["line_search_success"])
        kl = float(r["kl_divergence"])
        assert success in (0.0, 1.0)
        # an accepted step is inside the trust region (HalfCheetah's target_kl); a rejected one reports 0
        assert (0 < kl < 0.04) if success else kl == 0
        assert float(r["std"]) > 0 and float(r["value_loss"]) >= 0 and float(r["explained_variance"]) <= 1
        assert np.isfinite(float(r["policy_objective"]))
    assert any(float(r["line_search_success"]) == 1.0 for r in rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["stop_reason"] == "budget.timesteps"
    assert summary["algo"] == "trpo" and summary["epochs"] == 4 and summary["episodes"] == 20
    assert summary["policy"] == str(run_dir / "model.zip")
    assert (run_dir / "model.zip").is_file() and (run_dir / "vecnormalize.pkl").is_file()
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["algo"]["target_kl"] == 0.04 and cfg["workers"]["n"] == 2  # HalfCheetah's zoo value
    assert "final eval_return:" in proc.stdout


# The same rows whatever the process count: tests/test_algorithms.py (serial = one process against process =
# two); the same seed twice: tests/test_golden_rows.py.


@pytest.mark.slow
def test_grouped_processes_step_like_one_dummy_vec_env():
    # 3 environments in 2 processes (groups of 2 and 1), 30-step episodes: resets included
    env_cfg = {"id": "HalfCheetah-v5", "kwargs": {}, "max_episode_steps": 30}
    grouped, dummy = trpo.make_vec_env(env_cfg, 3, 2), trpo.make_vec_env(env_cfg, 3, 1)
    try:
        assert isinstance(grouped, GroupedSubprocVecEnv) and [len(g) for g in grouped.groups] == [2, 1]
        for venv in (grouped, dummy):
            venv.seed(11)
        np.testing.assert_array_equal(grouped.reset(), dummy.reset())
        rng = np.random.default_rng(0)
        finished = 0
        for _ in range(70):
            actions = rng.uniform(-1, 1, size=(3, 6))
            (o1, r1, d1, i1), (o2, r2, d2, i2) = grouped.step(actions), dummy.step(actions)
            np.testing.assert_array_equal(o1, o2)
            assert r1.dtype == r2.dtype == np.float32
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(d1, d2)
            for a, b in zip(i1, i2):
                assert a.get("episode", {}).get("r") == b.get("episode", {}).get("r")
                np.testing.assert_array_equal(a.get("terminal_observation", 0), b.get("terminal_observation", 0))
            finished += int(d1.sum())
        assert finished == 6  # two episodes of 30 steps per environment
        assert grouped.env_is_wrapped(trpo.Monitor) == [True, True, True]
        assert grouped.get_attr("spec", indices=[2])[0].id == "HalfCheetah-v5"
        # a dead environment process stops the run with a clear error, and closing does not hang
        grouped.processes[1].kill()
        grouped.processes[1].join()
        with pytest.raises(WorkerError, match="environment process 1 died"):
            grouped.step(np.zeros((3, 6)))
    finally:
        grouped.close()
        dummy.close()


@pytest.mark.slow
def test_reload_gives_the_same_eval_returns_and_eval_touches_nothing(make_cfg, tmp_path):
    cfg = make_cfg("algo=trpo", "env=InvertedPendulum", "algo.n_steps=128", "workers.n=1", "seed=5")
    trainer = trpo.make_trainer(cfg)
    try:
        results = [trainer.train_epoch(e) for e in (1, 2)]
        env = trainer.model.get_env()
        stats = (env.obs_rms.mean.copy(), env.obs_rms.count, env.ret_rms.var.copy(), trainer.model.num_timesteps)
        rng = torch.get_rng_state()
        before = trainer.evaluate(2, 3).returns
        assert before.shape == (3,)
        np.testing.assert_array_equal(trainer.evaluate(2, 3).returns, before)  # same seeds, same returns
        assert not np.array_equal(trainer.evaluate(3, 3).returns, before)  # other epoch, other seeds
        after = (env.obs_rms.mean, env.obs_rms.count, env.ret_rms.var, trainer.model.num_timesteps)
        for a, b in zip(stats, after):
            np.testing.assert_array_equal(a, b)
        assert torch.equal(rng, torch.get_rng_state())
        trainer.save(tmp_path)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(resolved_config(cfg)))
    finally:
        trainer.close()
    # InvertedPendulum pays 1 per step: raw returns are whole numbers, normalized ones would not be
    returns = np.concatenate([r.returns for r in results])
    assert sum(r.episodes for r in results) == len(returns) > 0
    np.testing.assert_array_equal(returns, np.round(returns))
    np.testing.assert_array_equal(before, np.round(before))
    policy = trpo.load(tmp_path)
    try:
        np.testing.assert_array_equal(policy.evaluate(2, 3).returns, before)
        assert policy.act(np.zeros(4)).shape == (1,)
    finally:
        policy.close()


@pytest.mark.slow
def test_reloaded_cli_run_reproduces_its_last_eval(cli_run):
    run_dir, _ = cli_run
    last = read_metrics(run_dir)[-1]
    policy = trpo.load(run_dir)
    try:
        returns = policy.evaluate(int(last["epoch"]), 2).returns
    finally:
        policy.close()
    assert float(returns.mean()) == float(last["eval_return"])
    assert float(returns.std()) == float(last["eval_return_std"])


@pytest.mark.parametrize("env", ["HalfCheetah", "Hopper", "Walker2d", "Swimmer", "Ant", "Humanoid", "InvertedPendulum"])
def test_each_env_gets_its_zoo_hyperparameters(make_cfg, env):
    cfg = make_cfg("algo=trpo", f"env={env}")
    validate(cfg)
    a = cfg.algo
    assert a.name == "trpo" and env in a.hparams_source
    assert (a.n_envs, a.n_steps, a.batch_size, a.n_critic_updates, a.cg_max_steps) == (2, 1024, 128, 20, 25)
    assert (a.gae_lambda, a.cg_damping, a.learning_rate) == (0.95, 0.1, 1e-3)
    assert a.normalize.obs and a.normalize.reward
    assert a.target_kl == (0.04 if env == "HalfCheetah" else 0.01)
    assert a.gamma == (0.9999 if env == "Swimmer" else 0.99)


def test_command_line_wins_and_sets_can_be_swapped(make_cfg):
    assert make_cfg("algo=trpo", "env=HalfCheetah", "algo.target_kl=0.02").algo.target_kl == 0.02
    cfg = make_cfg("algo=trpo", "env=Hopper", "algo/trpo_env@algo=Swimmer")
    assert cfg.algo.gamma == 0.9999 and cfg.env.id == "Hopper-v5"
    assert "target_kl" not in make_cfg("algo=es", "env=HalfCheetah").algo


@pytest.mark.parametrize(
    "override,match",
    [
        ("algo.n_steps=0", "algo.n_steps must be a positive integer"),
        ("algo.n_steps=1.5", "algo.n_steps must be a positive integer"),
        ("algo.n_envs=0", "algo.n_envs must be a positive integer"),
        ("algo.batch_size=0", "algo.batch_size must be a positive integer"),
        ("algo.n_critic_updates=-1", "algo.n_critic_updates must be a positive integer"),
        ("algo.torch_threads=0", "algo.torch_threads must be a positive integer"),
        ("algo.target_kl=0", "algo.target_kl must be a positive finite number"),
        ("algo.learning_rate=-1e-3", "algo.learning_rate must be a positive finite number"),
        ("algo.gamma=1.5", r"algo.gamma must be in \(0, 1\]"),
        ("algo.gae_lambda=-0.1", r"algo.gae_lambda must be in \[0, 1\]"),
        ("algo.cg_damping=-0.1", "algo.cg_damping must be >= 0"),
        ("algo.line_search_shrinking_factor=1", r"algo.line_search_shrinking_factor must be in \(0, 1\)"),
        ("algo.normalize.obs=maybe", "algo.normalize.obs must be true or false"),
        ("algo.normalize.clip_obs=0", "algo.normalize.clip_obs must be a positive finite number"),
        ("algo.net_arch.pi=[64,0]", "algo.net_arch.pi must be a list of positive integers"),
        ("~algo.net_arch.vf", "algo.net_arch must be a mapping with exactly the keys pi and vf"),
        ("algo.activation=sigmoid", "algo.activation must be one of tanh, relu"),
        ("algo.device=tpu", "algo.device must be one of cpu"),
        pytest.param(
            "algo.device=cuda",
            "algo.device=cuda but torch sees no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_bad_trpo_values_are_rejected(make_cfg, override, match):
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg("algo=trpo", "env=Hopper", override))


def test_single_sample_batch_is_rejected(make_cfg):
    with pytest.raises(ConfigError, match=r"algo.n_steps \* algo.n_envs must be > 1"):
        validate(make_cfg("algo=trpo", "algo.n_steps=1", "algo.n_envs=1"))


EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


def test_experiment_group_is_the_experiments_folder():
    assert (CONF / "experiment").resolve() == (ROOT / "experiments").resolve()
    assert {"scaling_halfcheetah", "tradeoff_halfcheetah"} <= set(EXPERIMENTS)


def _expand(name):
    """Compose ``+experiment=name``; returns the config and the jobs its sweeper params expand to."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = [
        [
            f"{o.get_key_element()}={v}"
            for v in (o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()])
        ]
        for o in parsed
    ]
    return cfg, [list(job) for job in itertools.product(*axes)]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_expands_to_valid_jobs(name):
    cfg, jobs = _expand(name)
    assert cfg.wandb.group == name
    sweep_dir = OmegaConf.to_container(cfg.hydra.sweep)["dir"]
    assert sweep_dir == f"results/{name}" or sweep_dir.startswith(f"results/{name}/")
    assert len(jobs) >= 2
    first_seed = next((o for job in jobs for o in job if o.startswith("seed=")), None)
    for job in jobs:
        if first_seed is not None and first_seed not in job:
            continue  # every setting of the grid once, at its first seed: the seed changes nothing else
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            job_cfg = compose("config", overrides=[f"+experiment={name}", *job])
        validate(job_cfg)
        assert job_cfg.wandb.group == name and job_cfg.budget.timesteps > 0


@pytest.mark.slow
def test_the_two_halfcheetah_sweeps_run_the_intended_grids():
    cfg, jobs = _expand("tradeoff_halfcheetah")
    # the four algorithms the harness compares, three seeds, one budget
    assert {tuple(j) for j in jobs} == {
        (f"algo={a}", f"seed={s}") for a in ("es", "vo", "nsr_es", "trpo") for s in (0, 1, 2)
    }
    assert {"es", "vo", "nsr_es", "trpo"} <= set(ALGOS)
    assert cfg.env.id == "HalfCheetah-v5" and cfg.budget.timesteps == 3_840_000
    # a budget ES (80 x 1000 steps per generation) and TRPO (2 x 1024 per iteration) both meet exactly
    assert cfg.budget.timesteps % 80_000 == 0 and cfg.budget.timesteps % 2048 == 0
    cfg, jobs = _expand("scaling_halfcheetah")
    assert {tuple(j) for j in jobs} == {("workers.n=1", "seed=0"), ("workers.n=2", "seed=0")}
    assert cfg.algo.name == "es" and cfg.env.id == "HalfCheetah-v5"
