"""Bad input from environments and configs, through the real worker path: MuJoCo instability,
NaN observations and rewards, updates that would go non-finite, degenerate TRPO settings,
NumPy seeds."""

import json

import numpy as np
import pytest

from harness.config import ConfigError, validate
from harness.es import VO, Adam, NoiseTable, OpenAIES, SGDMomentum
from harness.es.strategies.openai_es import OpenAIESConfig
from harness.es.strategies.vo import VOConfig
from harness.seeding import NOISE_TABLE, STRATEGY, generator, seed_sequence
from tests.conftest import FAST, read_metrics, run_cli

ES_CONFIG = dict(
    population_size=10,
    sigma=0.1,
    weight_decay=0.0,
    antithetic=True,
    fitness_shaping="centered_ranks",
    curvature=False,
    precondition=False,
    curvature_floor=0.01,
)
UNSTABLE = (
    "env.id=tests.envs:UnstableHopper-v0",
    "env.bc=null",
    "algo.population_size=8",
    "eval.episodes=2",
    "workers.n=2",
    *FAST,
)


@pytest.mark.slow
def test_mujoco_instability_fails_the_run_naming_the_episode(tmp_path):
    proc = run_cli(*UNSTABLE, "budget.generations=2", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 1
    assert "MuJoCo reported an unstable simulation (BADQVEL x1)" in proc.stderr
    assert "environment tests.envs:UnstableHopper-v0, episode seed" in proc.stderr
    assert "noise offset" in proc.stderr and "sign" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "unstable" in summary["error"]


@pytest.mark.slow
def test_rank_last_ranks_unstable_episodes_below_every_stable_one_and_counts_them(tmp_path):
    run_cli(*UNSTABLE, "env.on_unstable=rank_last", "budget.generations=2", f"hydra.run.dir={tmp_path}")
    rows = read_metrics(tmp_path)
    counts = [int(r["unstable_episodes"]) for r in rows]
    # episodes with an even seed blow up at step 5: some of the 16, not all; the run goes on
    assert len(rows) == 2 and 0 < sum(counts) < 16
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"


def test_rank_last_fitness_is_below_the_stable_returns():
    from harness.algos.evolution import fitness_and_unstable
    from harness.workers.rollout import EpisodeResult

    results = [
        EpisodeResult(r, 10, False, None, unstable=u)
        for r, u in [(5.0, None), (900.0, "BADQACC x1"), (-2.0, None), (3.0, None)]
    ]
    fitness, n = fitness_and_unstable(results, (2, 2))
    np.testing.assert_array_equal(fitness, [[5.0, -3.0], [-2.0, 3.0]])
    assert n == 1


@pytest.mark.slow
def test_a_nan_observation_is_reported_with_environment_seed_and_step(tmp_path):
    proc = run_cli(
        "env.id=tests.envs:NanObservation-v0",
        "env.bc=null",
        "+env.kwargs.nan_after_resets=1",
        "algo.population_size=4",
        "workers.backend=serial",
        "budget.generations=1",
        f"hydra.run.dir={tmp_path}",
        *FAST,
        check=False,
    )
    assert proc.returncode == 1
    assert "the episode is not finite: observation not finite at step 3" in proc.stderr
    assert "environment tests.envs:NanObservation-v0, episode seed" in proc.stderr


def test_a_nan_reward_names_its_step():
    from harness.workers import Chunk, EpisodeSpec
    from harness.workers.rollout import EpisodeError
    from harness.workers.worker import RolloutWorker, WorkerSpec

    env_cfg = {"id": "tests.envs:NanReward-v0", "kwargs": {"nan_after_resets": 1}, "max_episode_steps": None}
    worker = RolloutWorker(WorkerSpec(env_cfg, {"name": "linear"}, (0, (0,)), 1000))
    chunk = Chunk(np.zeros((1, 3)), 0.0, np.zeros(2), np.ones(2), (EpisodeSpec(0, 0, 7),), False)
    with pytest.raises(EpisodeError, match=r"reward nan at step 1 .*episode seed 7, unperturbed parameters"):
        worker.run(chunk)


@pytest.mark.parametrize(
    "make",
    [
        lambda noise: OpenAIES(4, noise, Adam(0.1), OpenAIESConfig(**ES_CONFIG)),
        lambda noise: VO(
            4,
            noise,
            Adam(0.1),
            VOConfig(
                **ES_CONFIG,
                sigma_learning_rate=1.0,
                sigma_param="log",
                sigma_mode="per_param",
                sigma_max_change=0.2,
                sigma_min=1e-3,
                sigma_max=1.0,
            ),
        ),
    ],
)
def test_equal_returns_give_a_zero_update_never_nan(make):
    strategy = make(NoiseTable(seed_sequence(0, NOISE_TABLE), 10_000))
    state = strategy.init(np.ones(4))
    pop = strategy.ask(state, generator(0, STRATEGY, 0))
    new, metrics = strategy.tell(state, pop, np.full(pop.fitness_shape, 7.0))
    np.testing.assert_array_equal(new.params, state.params)  # centered ranks of ties are all 0
    if hasattr(new, "sigma"):
        np.testing.assert_array_equal(new.sigma, state.sigma)
    assert metrics["grad_norm"] == 0.0


def test_an_update_that_would_go_non_finite_stops_with_the_field_named():
    es = OpenAIES(
        4,
        NoiseTable(seed_sequence(0, NOISE_TABLE), 10_000),
        SGDMomentum(1e308, momentum=0.0),
        OpenAIESConfig(**{**ES_CONFIG, "fitness_shaping": "none"}),
    )
    state = es.init(np.zeros(4))
    pop = es.ask(state, generator(0, STRATEGY, 0))
    fitness = np.tile([1e308, -1e308], (5, 1))
    with (
        np.errstate(over="ignore", invalid="ignore"),
        pytest.raises(FloatingPointError, match="the update made params non-finite"),
    ):
        es.tell(state, pop, fitness)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (("algo.n_steps=4", "algo.n_envs=1", "algo.sub_sampling_factor=4"), "leaves 1 sample of the 4-step batch"),
        (("algo.n_steps=8", "algo.n_envs=2", "algo.sub_sampling_factor=16"), "leaves 1 sample of the 16-step batch"),
        (("env.on_unstable=rank_last",), "TRPO supports env.on_unstable=fail only"),
    ],
)
def test_degenerate_trpo_settings_are_config_errors(make_cfg, overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg("algo=trpo", "env=Hopper", *overrides))
    validate(make_cfg("algo=trpo", "env=Hopper", "algo.n_steps=4", "algo.n_envs=1", "algo.sub_sampling_factor=2"))


def test_on_unstable_is_validated(make_cfg):
    with pytest.raises(ConfigError, match="env.on_unstable must be one of fail, rank_last"):
        validate(make_cfg("env.on_unstable=ignore"))


@pytest.mark.slow
def test_numpy_integer_seeds_work(make_cfg, tmp_path):
    from omegaconf import OmegaConf

    from harness.algos import es
    from harness.config import resolved_config
    from harness.runner import Runner

    data = resolved_config(
        make_cfg(
            "env=InvertedPendulum", "budget.generations=1", "algo.population_size=4", "workers.backend=serial", *FAST
        )
    )
    data["seed"] = np.int64(3)
    data["algo"]["population_size"] = np.int32(4)
    summary = Runner(data, tmp_path, lambda c: es.make_trainer(OmegaConf.create(c))).run()
    assert summary["status"] == "completed" and summary["seed"] == 3
    assert "seed: 3\n" in (tmp_path / "config.yaml").read_text()


@pytest.mark.slow
def test_a_run_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path):
    """Issue 19, item 10 (a file stands where the folder should go: this also fails as root, where a
    read-only folder would not)."""
    taken = tmp_path / "taken"
    taken.write_text("a file where a folder should be")
    for args, folder in (
        (("budget.generations=1",), f"hydra.run.dir={taken / 'run'}"),
        (("-m", "seed=0,1", "budget.generations=1"), f"hydra.sweep.dir={taken / 'sweep'}"),
    ):
        proc = run_cli(*args, *FAST, folder, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"error: cannot make the run folder {folder.split('=', 1)[1]}: {taken} is a file, not a folder"
        ]


@pytest.mark.slow
def test_a_folder_that_looks_writable_but_takes_no_folders_is_one_line(tmp_path):
    """/proc passes a permission check as root but takes no new folder: found by trying, before Hydra."""
    proc = run_cli("budget.generations=1", *FAST, "hydra.run.dir=/proc/forbidden", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: cannot make the run folder /proc/forbidden: /proc does not take new folders (No such file or "
        "directory); choose another with hydra.run.dir=DIR"
    ]


@pytest.mark.slow
def test_a_bad_mujoco_gl_is_a_one_line_error(tmp_path):
    """MuJoCo reads MUJOCO_GL when imported and raises on a value it does not know; the CLI says so in
    one line (exit 2) rather than with a traceback, and starts no run."""
    proc = run_cli("algo=es", f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False, env_vars={"MUJOCO_GL": "bogus"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "MUJOCO_GL" in proc.stderr and "egl" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
