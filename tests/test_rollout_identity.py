"""The harness's rollout path returns what a plain Gymnasium loop returns, bit for bit.

The rollout path steps past wrappers that add nothing (:func:`harness.workers.rollout.direct_step`)
and computes actions from preallocated buffers (:meth:`harness.policies.Policy.actor`), for
speed (issue #9). Here an episode of :class:`~harness.workers.rollout.EnvObjective` (make_env,
run_episode) and the same episode of ``gymnasium.make(id)`` with every default wrapper, stepped
by a plain numpy policy written out below, must give the same return, length, termination,
observations and observation statistics: with a time limit (HalfCheetah) and with termination
(Hopper), for the linear and the MLP policy.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

from harness.envs import make_env
from harness.policies import MLPPolicy, RunningStat
from harness.workers.rollout import EnvObjective, direct_step, run_episode

MAX_STEPS = 60
SEEDS = (3, 11, 2024)


def plain_episode(env_id: str, params: np.ndarray, shapes, mean, std, obs_clip: float, seed: int) -> dict:
    """One episode of ``gymnasium.make(env_id)`` with the policy written out as numpy."""
    with warnings.catch_warnings():  # the passive env checker's notes are not what is tested here
        warnings.simplefilter("ignore")
        return _plain_episode(env_id, params, shapes, mean, std, obs_clip, seed)


def _plain_episode(env_id, params, shapes, mean, std, obs_clip, seed) -> dict:
    env = gym.make(env_id, max_episode_steps=MAX_STEPS)  # default wrappers, env checker included
    layers, i = [], 0
    for out, inp in shapes:
        layers.append((params[i : i + out * inp].reshape(out, inp), params[i + out * inp : i + out * inp + out]))
        i += out * inp + out
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    obs, _ = env.reset(seed=seed)
    seen, total, length = [], 0.0, 0
    while True:
        seen.append(obs)
        x = np.clip((obs - mean) / std, -obs_clip, obs_clip)
        for k, (w, b) in enumerate(layers):
            x = w @ x + b
            if k < len(layers) - 1:
                x = np.tanh(x)
        obs, reward, terminated, truncated, _ = env.step(np.clip(x, low, high))
        total += float(reward)
        length += 1
        if terminated or truncated:
            break
    env.close()
    return {
        "return": total,
        "length": length,
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "observations": np.asarray(seen),
        "last": obs,
    }


def harness_episodes(env_id: str, policy_name: str, seeds, rng: np.random.Generator):
    """Episodes through EnvObjective.run, the observations the policy was given, and what produced them."""
    task = EnvObjective(
        {"id": env_id, "kwargs": {}, "max_episode_steps": MAX_STEPS, "bc": None},
        {"name": policy_name, "hidden_sizes": [16, 8], "obs_clip": 5.0},
    )
    seen: list[list[np.ndarray]] = []
    actor = task.policy.actor

    def recording_actor(layers, mean, std):
        act, episode = actor(layers, mean, std), []
        seen.append(episode)

        def record(obs):
            episode.append(obs.copy())
            return act(obs)

        return record

    task.policy.actor = recording_actor
    params = task.init_params(rng) + 0.5 * rng.standard_normal(task.num_params)
    mean = 0.1 * rng.standard_normal(task.obs_dim)
    std = 0.5 + rng.random(task.obs_dim)
    results = [task.run(params, mean, std, seed, collect_obs=True) for seed in seeds]
    task.close()
    return results, [np.asarray(s) for s in seen], params, task.policy, mean, std


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
@pytest.mark.parametrize("policy_name", ["linear", "mlp"])
def test_harness_episode_equals_plain_gymnasium_episode(env_id, policy_name):
    rng = np.random.default_rng(7)
    results, seen, params, policy, mean, std = harness_episodes(env_id, policy_name, SEEDS, rng)
    for seed, r, obs in zip(SEEDS, results, seen):
        plain = plain_episode(env_id, params, policy.shapes, mean, std, policy.obs_clip, seed)
        assert r.episode_return == plain["return"]  # exactly: same floats, same order of addition
        assert (r.length, r.terminated) == (plain["length"], plain["terminated"])
        np.testing.assert_array_equal(obs, plain["observations"])
        expected = RunningStat.from_batch(plain["observations"])
        assert r.obs_stat.count == expected.count
        np.testing.assert_array_equal(r.obs_stat.mean, expected.mean)
        np.testing.assert_array_equal(r.obs_stat.m2, expected.m2)
    lengths = [r.length for r in results]
    if env_id == "HalfCheetah-v5":  # never terminates: every episode is cut by the time limit
        assert lengths == [MAX_STEPS] * len(SEEDS) and not any(r.terminated for r in results)
    else:  # Hopper falls: termination before the limit is what is compared
        assert any(r.terminated and r.length < MAX_STEPS for r in results)


def test_the_comparison_notices_a_different_seed():
    """The check above can fail: the same policy from another seed gives another episode."""
    rng = np.random.default_rng(7)
    (r,), (obs,), params, policy, mean, std = harness_episodes("HalfCheetah-v5", "linear", (3,), rng)
    other = plain_episode("HalfCheetah-v5", params, policy.shapes, mean, std, policy.obs_clip, seed=4)
    assert r.episode_return != other["return"]
    assert not np.array_equal(obs, other["observations"])


def test_actor_equals_act_bit_for_bit():
    """Policy.actor (buffers, out=) gives Policy.act's numbers, NaN and signed zeros included,
    and a new array each call."""
    rng = np.random.default_rng(0)
    policy = MLPPolicy(5, -np.ones(3), np.zeros(3), obs_clip=0.5, hidden_sizes=(4,))
    params = rng.standard_normal(policy.num_params)
    layers = policy.unflatten(params)
    mean, std = rng.standard_normal(5), 0.5 + rng.random(5)
    act = policy.actor(layers, mean, std)
    observations = [rng.standard_normal(5) * 3 for _ in range(50)]
    observations += [
        np.array([np.nan, 0.0, -0.0, np.inf, -np.inf]),
        mean.copy(),
        -np.zeros(5),
        rng.standard_normal(5).astype(np.float32),
    ]
    previous = None
    for obs in observations:
        expected, got = policy.act(layers, obs, mean, std), act(obs)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
        assert got is not previous
        previous = got


def test_direct_step_skips_only_wrappers_that_add_nothing():
    env = make_env("HalfCheetah-v5", max_episode_steps=25)
    step, limit = direct_step(env)
    assert (step, limit) == (env.unwrapped.step, 25)
    wrapped = gym.wrappers.TransformReward(env, lambda r: 2 * r)  # changes what step returns
    step, limit = direct_step(wrapped)
    assert (step, limit) == (wrapped.step, None)
    # and run_episode then goes through it: the doubled reward is the return
    task = EnvObjective({"id": "HalfCheetah-v5", "max_episode_steps": 25}, {"name": "linear"})
    policy = task.policy
    task.close()
    params = np.random.default_rng(1).standard_normal(policy.num_params)
    mean, std = np.zeros(policy.obs_dim), np.ones(policy.obs_dim)
    once = run_episode(env, policy, params, mean, std, 5, False).episode_return
    twice = run_episode(wrapped, policy, params, mean, std, 5, False).episode_return
    assert twice == pytest.approx(2 * once) and twice != once
    env.close()
