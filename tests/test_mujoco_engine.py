"""The ``mujoco`` engine (issue 31) simulates Gymnasium's tasks, and the harness's promises hold under
it: rows that depend on the seed alone, mirrored pairs from one initial state, clear refusals.

Equivalence, per task the engine serves (:data:`harness.workers.mujoco_engine.TASKS`):

* the same initial state (Gymnasium's own reset, same seed) and the same actions give the same
  observations, rewards and terminations, from the first step over an open-loop horizon of
  ``STEPS`` steps, within ``RTOL`` (relative to the largest entry, 1e-12; measured: 0, bit for bit,
  on the machines here: the same MuJoCo build steps the same states with the same warm starts);
* a fixed policy's episodes are those of the ``gymnasium`` engine for the same seeds (returns,
  lengths, terminations, observation statistics and behaviour characterizations; measured: bit
  for bit), and its returns over ``EPISODES`` seeded episodes per engine on disjoint seeds pass a
  two-sample Kolmogorov-Smirnov test at alpha = 0.001. With 200 episodes each, that test detects a
  shift of the mean return by 0.55 of its standard deviation with power of about 0.9
  (:func:`test_the_stated_power_of_the_return_test`);
* ``max_episode_steps`` truncation and the termination rules give the same lengths and flags.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

from harness.policies import make_policy
from harness.tracking import COST_COLUMNS
from harness.workers.engines import engine_problem
from harness.workers.mujoco_engine import TASKS, MujocoObjective, mujoco_batch_available
from harness.workers.rollout import EnvObjective, UnstableSimulationError
from tests.conftest import FAST, read_metrics, run_cli

pytestmark = pytest.mark.skipif(not mujoco_batch_available(), reason="this mujoco has no mujoco.batch")

STEPS = 100
RTOL = 1e-12
EPISODES = 200


def _objectives(env_id: str, policy_cfg: dict | None = None, **env_keys):
    env_cfg = {"id": env_id, "kwargs": {}, "max_episode_steps": None, "bc": None, **env_keys}
    policy_cfg = policy_cfg or {"name": "linear"}
    return EnvObjective(env_cfg, policy_cfg), MujocoObjective(env_cfg, policy_cfg)


def _fixed_params(objective, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, objective.num_params)


def _close(actual, expected, what: str) -> None:
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL * scale, err_msg=what)


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_the_same_state_and_actions_give_gymnasiums_step(env_id):
    """Open loop: two episodes side by side in one batch (seeds 3 and 4), each against a Gymnasium
    environment reset with its seed and given the same actions."""
    _, objective = _objectives(env_id)
    seeds = [3, 4]
    envs = [gym.make(env_id) for _ in seeds]
    batch = objective.batch(len(seeds))
    obs = objective.reset_rows(batch, seeds)
    for env, seed, o in zip(envs, seeds, obs):
        np.testing.assert_array_equal(o, env.reset(seed=seed)[0])  # Gymnasium's own reset
    rng = np.random.default_rng(0)
    low, high = envs[0].action_space.low, envs[0].action_space.high
    rows = np.arange(len(seeds), dtype=np.int32)
    for step in range(1, STEPS + 1):
        actions = rng.uniform(low, high, (len(rows), len(low))) * 0.5  # half the box: longer Hopper episodes
        obs, reward, terminated = objective.step(batch, rows, actions)
        for k, row in enumerate(rows):
            g_obs, g_reward, g_term, g_trunc, _ = envs[row].step(actions[k])
            _close(obs[k], g_obs, f"{env_id} row {row} step {step} observation")
            _close(reward[k], g_reward, f"{env_id} row {row} step {step} reward")
            assert bool(terminated[k]) == g_term and not g_trunc, f"{env_id} row {row} step {step}"
        rows = rows[~terminated]
        if not rows.size:
            break


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_a_fixed_policys_episodes_are_gymnasiums(env_id):
    """Closed loop, 8 episodes of 150 steps at most in one batch (a mirrored pair among them), with
    behaviour characterizations where the task's config has one: what the gymnasium engine gives."""
    bc = {
        "Ant-v5": "com_xy",
        "Humanoid-v5": "com_xy",
        "Swimmer-v5": "com_xy",
        "InvertedPendulum-v5": None,
        "InvertedDoublePendulum-v5": None,
    }.get(env_id, "com_x")
    policy = {"name": "mlp", "hidden_sizes": [16, 16]} if env_id.startswith("Humanoid") else None
    gym_obj, mj_obj = _objectives(env_id, policy, max_episode_steps=150, bc=bc)
    rng = np.random.default_rng(1)
    params = [_fixed_params(gym_obj, seed=k, scale=0.1) for k in range(8)]
    mean, std = rng.normal(0, 0.1, gym_obj.obs_dim), rng.uniform(0.5, 2, gym_obj.obs_dim)
    seeds = [5, 5, 6, 7, 8, 9, 2**32 - 1, 11]
    expected = [gym_obj.run(p, mean, std, s, True) for p, s in zip(params, seeds)]
    got = list(mj_obj.run_batch(params, mean, std, seeds, True))
    for a, b in zip(expected, got):
        assert (b.length, b.terminated, b.unstable, b.success) == (a.length, a.terminated, a.unstable, a.success)
        assert b.episode_return == pytest.approx(a.episode_return, rel=1e-9, abs=1e-9)
        assert b.obs_stat.count == a.obs_stat.count == a.length
        _close(b.obs_stat.mean, a.obs_stat.mean, "observation mean")
        np.testing.assert_allclose(b.obs_stat.m2, a.obs_stat.m2, rtol=1e-9, atol=1e-9)
        if bc is None:
            assert b.bc is None and a.bc is None
        else:
            _close(b.bc, a.bc, "behaviour")


@pytest.mark.parametrize(
    "env_id,policy_cfg",
    [
        ("Hopper-v5", {"name": "linear", "action_bins": 5}),
        ("Swimmer-v5", {"name": "mlp", "hidden_sizes": [8, 8], "action_bins": 10}),
    ],
)
def test_discretized_actions_go_through_the_same_batched_actor(env_id, policy_cfg):
    """policy.action_bins: the batched actor's argmax over each component's K scores, as the per-episode
    actor's; the episodes are the gymnasium engine's."""
    gym_obj, mj_obj = _objectives(env_id, policy_cfg, max_episode_steps=100)
    params = [_fixed_params(gym_obj, seed=k, scale=0.5) for k in range(4)]
    mean, std = np.zeros(gym_obj.obs_dim), np.ones(gym_obj.obs_dim)
    expected = [gym_obj.run(p, mean, std, s, True) for p, s in zip(params, range(4))]
    got = list(mj_obj.run_batch(params, mean, std, list(range(4)), True))
    assert [(r.length, r.terminated) for r in got] == [(r.length, r.terminated) for r in expected]
    np.testing.assert_allclose([r.episode_return for r in got], [r.episode_return for r in expected], rtol=1e-9)


@pytest.mark.slow
def test_a_fixed_policys_returns_are_distributed_as_on_gymnasium():
    """Hopper (its reset noise decides when a fixed policy falls), 200 episodes per engine on
    disjoint seeds."""
    gym_obj, mj_obj = _objectives("Hopper-v5")
    params = _fixed_params(gym_obj)
    mean, std = np.zeros(gym_obj.obs_dim), np.ones(gym_obj.obs_dim)
    seeds = np.random.default_rng(1).integers(0, 2**31, EPISODES)
    gym_returns = [gym_obj.run(params, mean, std, int(s), False).episode_return for s in seeds]
    mj_returns = [r.episode_return for r in mj_obj.run_batch([params] * EPISODES, mean, std, seeds + 1, False)]
    assert np.std(gym_returns) > 0  # the reset noise matters to this policy, so the test can tell
    assert stats.ks_2samp(gym_returns, mj_returns).pvalue > 0.001


def test_the_stated_power_of_the_return_test():
    """The module docstring's power: KS at alpha 0.001 with 200 samples each, against a shift of 0.55 sd
    (normal returns; the test is distribution-free under the null). 200 simulated pairs: the estimate's
    standard error is about 0.02."""
    rng = np.random.default_rng(0)
    rejected = [
        stats.ks_2samp(rng.normal(0, 1, EPISODES), rng.normal(0.55, 1, EPISODES)).pvalue < 0.001 for _ in range(200)
    ]
    assert np.mean(rejected) >= 0.85


def test_truncation_at_max_episode_steps_counts_only_real_steps():
    _, mj_obj = _objectives("HalfCheetah-v5", max_episode_steps=37)
    params = [_fixed_params(mj_obj, seed=k) for k in range(5)]
    mean, std = np.zeros(mj_obj.obs_dim), np.ones(mj_obj.obs_dim)
    results = list(mj_obj.run_batch(params, mean, std, [1, 2, 3, 4, 5], True))
    assert [(r.length, r.terminated, r.obs_stat.count) for r in results] == [(37, False, 37)] * 5


def test_the_default_limit_is_gymnasiums_time_limit():
    """The task's own TimeLimit (1000 steps), and a Hopper that may not fall (terminate_when_unhealthy=false)
    runs to it as on Gymnasium."""
    gym_obj, mj_obj = _objectives("Hopper-v5", kwargs={"terminate_when_unhealthy": False})
    assert mj_obj.max_episode_steps == gym.spec("Hopper-v5").max_episode_steps == 1000
    params = _fixed_params(gym_obj, scale=0.5)
    mean, std = np.zeros(gym_obj.obs_dim), np.ones(gym_obj.obs_dim)
    a = gym_obj.run(params, mean, std, 3, False)
    (b,) = mj_obj.run_batch([params], mean, std, [3], False)
    assert (b.length, b.terminated) == (a.length, a.terminated) == (1000, False)
    assert b.episode_return == pytest.approx(a.episode_return, rel=1e-9)


def test_episodes_that_end_early_stop_costing_simulation():
    """Hopper with a strong random policy: episodes end at different steps; each one's result is the one
    it has alone (a batch of one), and each row's simulated time stops at its own end."""
    _, mj_obj = _objectives("Hopper-v5")
    params = [_fixed_params(mj_obj, seed=k, scale=1.0) for k in range(12)]
    mean, std = np.zeros(mj_obj.obs_dim), np.ones(mj_obj.obs_dim)
    seeds = list(range(100, 112))
    batch = list(mj_obj.run_batch(params, mean, std, seeds, True))
    times = mj_obj.batch(12).bind("time")[:12].copy()
    assert len({r.length for r in batch}) > 3 and all(r.terminated for r in batch)
    np.testing.assert_allclose(times, [r.length * mj_obj.env.unwrapped.dt for r in batch], rtol=1e-12)
    alone = [mj_obj.run(p, mean, std, s, True) for p, s in zip(params, seeds)]
    assert [(r.episode_return, r.length, r.obs_stat.count) for r in batch] == [
        (r.episode_return, r.length, r.obs_stat.count) for r in alone
    ]


def test_an_episodes_initial_state_depends_on_its_seed_alone():
    """Mirrored pairs share a seed: equal seeds give equal initial states wherever they sit in a batch,
    other seeds other states (uint32 seeds above 2**31 included)."""
    big = 2**32 - 5
    _, mj_obj = _objectives("HalfCheetah-v5")
    batch = mj_obj.batch(4)
    a = mj_obj.reset_rows(batch, [7, 7, 8, big]), batch.state[:4].copy()
    b = mj_obj.reset_rows(batch, [8, big, 7]), batch.state[:3].copy()
    env = gym.make("HalfCheetah-v5")
    np.testing.assert_array_equal(a[0], [env.reset(seed=s)[0] for s in (7, 7, 8, big)])
    np.testing.assert_array_equal(a[1][0], a[1][1])
    np.testing.assert_array_equal(a[1][0], b[1][2])
    np.testing.assert_array_equal(a[1][2], b[1][0])
    np.testing.assert_array_equal(a[1][3], b[1][1])
    assert not np.array_equal(a[1][0], a[1][2]) and not np.array_equal(a[1][2], a[1][3])


def test_an_instability_is_reported_as_on_gymnasium():
    """A huge joint velocity: MuJoCo warns BADQVEL and resets the row as it resets Gymnasium's data; the
    episode's result names it, and env.on_unstable=fail stops on it."""
    env = gym.make("Hopper-v5")
    gym_obs, _ = env.reset(seed=1)
    _, mj_obj = _objectives("Hopper-v5", on_unstable="rank_last")
    batch = mj_obj.batch(2)
    mj_obj.reset_rows(batch, [1, 1])
    env.unwrapped.data.qvel[:] = 1e12
    batch.bind("qvel")[0] = 1e12
    action = np.zeros((2, 3))
    obs, reward, _ = mj_obj.step(batch, slice(0, 2), action)
    g_obs, g_reward, *_ = env.step(action[0])
    np.testing.assert_array_equal(obs[0], g_obs)
    assert reward[0] == g_reward
    assert (mj_obj.unstable(batch, 0), mj_obj.unstable(batch, 1)) == ("BADQVEL x1", None)

    _, failing = _objectives("Hopper-v5")
    step = failing.step

    def blow_up_row_0_at_step_5(batch, rows, actions):
        failing.t = getattr(failing, "t", 0) + 1
        if failing.t == 5:
            batch.bind("qvel")[0] = 1e12
        return step(batch, rows, actions)

    failing.step = blow_up_row_0_at_step_5
    params = [_fixed_params(failing, scale=0.01)] * 2
    mean, std = np.zeros(failing.obs_dim), np.ones(failing.obs_dim)
    with pytest.raises(UnstableSimulationError, match=r"unstable simulation \(BADQVEL x1\)"):
        list(failing.run_batch(params, mean, std, [1, 2], False))


def test_a_non_finite_episode_names_its_step_as_on_gymnasium():
    gym_obj, mj_obj = _objectives("HalfCheetah-v5", max_episode_steps=20)
    params = np.full(gym_obj.num_params, np.nan)
    mean, std = np.zeros(gym_obj.obs_dim), np.ones(gym_obj.obs_dim)
    with pytest.raises(ValueError) as expected:
        gym_obj.run(params, mean, std, 0, False)
    with pytest.raises(ValueError) as got:
        mj_obj.run(params, mean, std, 0, False)
    assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)


@pytest.mark.parametrize("policy_cfg", [{"name": "linear"}, {"name": "mlp", "hidden_sizes": [8, 8]}])
def test_the_batched_actor_is_the_policy_row_by_row_bit_for_bit_here(policy_cfg):
    """The one place a CPU's BLAS could make the engines' actions differ: measured equal here."""
    from harness.policies import BatchActor

    env = gym.make("Hopper-v5")
    policy = make_policy(policy_cfg, 11, env.action_space.low, env.action_space.high)
    rng = np.random.default_rng(0)
    params = [rng.normal(0, 0.3, policy.num_params) for _ in range(6)]
    mean, std = rng.normal(0, 1, 11), rng.uniform(0.5, 2, 11)
    obs = rng.normal(0, 1, (6, 11))
    actor = BatchActor(policy, [policy.layers(p, mean, std) for p in params], mean, std)
    expected = np.stack([policy.actor(policy.layers(p, mean, std), mean, std)(o.copy()) for p, o in zip(params, obs)])
    np.testing.assert_allclose(actor(obs), expected, rtol=RTOL, atol=RTOL)


# -- runs ------------------------------------------------------------------------------------------

RUN = (
    "env=Hopper",
    "env.max_episode_steps=200",
    "algo.population_size=24",
    "budget.generations=2",
    "eval.episodes=3",
    *FAST,
)


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


def _same_rows(a: list[dict], b: list[dict]) -> None:
    """Equal rows, numbers to a relative 1e-6 as the golden rows are (equal here, bit for bit)."""
    assert len(a) == len(b) and [r.keys() for r in a] == [r.keys() for r in b]
    for x, y in zip(a, b):
        for key in x:
            if x[key] == y[key]:
                continue
            assert float(x[key]) == pytest.approx(float(y[key]), rel=1e-6), key


@pytest.mark.slow
def test_rows_are_the_same_for_every_backend_and_worker_count_and_as_on_gymnasium(tmp_path):
    """Pieces differ (a batch of 24 on one worker, 16 and 8 on two, the serial backend's whole chunk),
    and Ray runs them in actors; the gymnasium engine steps the same episodes one at a time."""
    runs = {}
    cases = [("serial", ("workers.backend=serial",)), ("one", ("workers.n=1",)), ("two", ("workers.n=2",))]
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        cases.append(("ray", ("workers.backend=ray", "workers.n=2")))
    for name, extra in cases:
        runs[name] = tmp_path / name
        run_cli(*RUN, "workers.engine=mujoco", *extra, f"hydra.run.dir={runs[name]}")
    rows = {name: _rows(path) for name, path in runs.items()}
    assert all(r == rows["one"] for r in rows.values()), {k: len(v) for k, v in rows.items()}
    assert len(rows["one"]) == 2 and all(float(r["timesteps"]) > 0 for r in rows["one"])
    assert json.loads((runs["two"] / "summary.json").read_text())["engine"] == "mujoco"
    run_cli(*RUN, "workers.engine=gymnasium", "workers.n=2", f"hydra.run.dir={tmp_path / 'gymnasium'}")
    _same_rows(rows["one"], _rows(tmp_path / "gymnasium"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides,message",
    [
        (("env=toy_1d",), "has no simulator to batch"),
        (("env=deceptive_point_maze",), "does not serve DeceptivePointMaze"),
        (("env=Hopper", "+env.kwargs.xml_file=hopper.xml"), "env.kwargs has xml_file, which it does not read"),
        (("env=Hopper", "env.success=true"), "cannot read info['success']"),
        (("algo=trpo",), "TRPO steps its own SB3 vector"),
        (("workers.engine=jax",), "workers.engine must be one of auto, gymnasium, mujoco"),
    ],
)
def test_what_the_engine_cannot_run_is_refused_before_any_worker_starts(overrides, message, tmp_path):
    engine = () if any(o.startswith("workers.engine") for o in overrides) else ("workers.engine=mujoco",)
    fast = ("wandb.mode=disabled", "progress=false") if "algo=trpo" in overrides else FAST
    proc = run_cli(*engine, *overrides, *fast, f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "metrics.csv").exists()


def test_engine_problem_names_a_missing_mujoco_batch(monkeypatch):
    import harness.workers.mujoco_engine as engine

    monkeypatch.setattr(engine, "mujoco_batch_available", lambda: False)
    assert "needs mujoco.batch" in engine_problem("mujoco", {"id": "Hopper-v5", "kind": "gym"})
    assert engine_problem("mujoco", {"id": "Hopper-v5", "kind": "gym", "kwargs": {"healthy_reward": 2.0}}) is not None
    monkeypatch.undo()
    assert engine_problem("mujoco", {"id": "Hopper-v5", "kind": "gym", "kwargs": {"healthy_reward": 2.0}}) is None


# -- the default: auto ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,engine",
    [
        ((), "mujoco"),  # the ES family on a task the mujoco engine serves
        (("env=Humanoid", "policy=mlp"), "mujoco"),
        (("algo=nsr_es",), "mujoco"),
        (("env=deceptive_point_maze",), "gymnasium"),  # a task it does not serve
        (("env=toy_1d",), "gymnasium"),  # no simulator at all
        (("+env.kwargs.xml_file=half_cheetah.xml",), "gymnasium"),  # a kwarg its NumPy code does not read
        (("algo=trpo",), "gymnasium"),  # no rollout workers: SB3's own vector environments
        (("workers.engine=gymnasium",), "gymnasium"),  # asked for: kept
    ],
)
def test_auto_resolves_to_the_mujoco_engine_where_it_serves_the_task(make_cfg, overrides, engine):
    from harness.config import resolved_config, validate

    cfg = make_cfg(*overrides)
    assert cfg.workers.engine == ("gymnasium" if "workers.engine=gymnasium" in overrides else "auto")
    validate(cfg)
    assert resolved_config(cfg)["workers"]["engine"] == engine


def test_a_mistyped_engine_is_named_with_the_choices_and_the_closest():
    assert engine_problem("MuJoCo", {"id": "Hopper-v5"}).endswith("got 'MuJoCo'; did you mean mujoco?")
    assert "one of auto, gymnasium, mujoco, got null" in engine_problem(None, {"id": "Hopper-v5"})


def test_the_removed_envpool_engine_is_named_with_what_to_use():
    problem = engine_problem("envpool", {"id": "HalfCheetah-v5", "kind": "gym"})
    assert "workers.engine=envpool was removed" in problem and "use workers.engine=mujoco or auto" in problem


@pytest.mark.slow
def test_a_resume_may_change_the_engine_and_the_rows_are_those_of_one_run(tmp_path):
    """The engines give the same rows, so the engine is how a run is computed, not what: a run started on the
    gymnasium engine and resumed on the mujoco engine (auto) writes the rows of a run on either alone."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    three = tuple(o for o in RUN if not o.startswith("budget.generations=")) + ("budget.generations=3",)
    run_cli(*three, "workers.engine=gymnasium", f"hydra.run.dir={whole}")
    run_cli(*RUN, "workers.engine=gymnasium", f"hydra.run.dir={split}")  # 2 generations
    run_cli("budget.generations=3", "workers.engine=auto", f"resume={split}")
    assert json.loads((split / "summary.json").read_text())["engine"] == "mujoco"
    _same_rows(_rows(whole), _rows(split))
    assert len(_rows(split)) == 3


@pytest.mark.slow
def test_an_mlp_with_action_bins_gives_the_same_rows_on_both_engines(tmp_path):
    """Salimans et al.'s policy on Hopper (a 64-64 tanh MLP, 10 action bins): the batched actor's matmuls give
    the per-episode actor's actions, so the rows are the same, and runs of the two engines pool."""
    mlp = ("policy=mlp", "policy.action_bins=10")
    run_cli(*RUN, *mlp, "workers.engine=gymnasium", f"hydra.run.dir={tmp_path / 'gymnasium'}")
    run_cli(*RUN, *mlp, "workers.engine=mujoco", f"hydra.run.dir={tmp_path / 'mujoco'}")
    _same_rows(_rows(tmp_path / "gymnasium"), _rows(tmp_path / "mujoco"))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["resume=DIR", "resume=auto"])
def test_a_run_of_the_removed_envpool_engine_cannot_be_continued_on_another(tmp_path, how):
    """A shipped envpool run (other initial states): neither resume=DIR with another engine nor resume=auto on its
    folder continues it; nothing in the folder changes."""
    import shutil

    from tests.conftest import ROOT

    run = tmp_path / "envpool_run"
    shutil.copytree(ROOT / "results" / "paper" / "engines_halfcheetah" / "es_envpool_seed0", run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    args = (
        (f"resume={run}", "workers.engine=mujoco")
        if how == "resume=DIR"
        else ("env=HalfCheetah", f"hydra.run.dir={run}", "resume=auto", "wandb.mode=disabled")
    )
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2 and "ran on workers.engine=envpool, which was removed" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
