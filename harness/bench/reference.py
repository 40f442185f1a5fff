"""The limit and the plain reference of :mod:`harness.bench`: a plain ``gymnasium.make`` loop with the
policy written out in NumPy, and raw ``mujoco.mj_step`` replaying its actions and a bare
``mujoco.batch.Batch`` replaying them together (the ``mujoco`` engine's limit); one process, one core."""

from __future__ import annotations

import time
import warnings

import numpy as np

from harness.envs import check_env_id
from harness.policies import make_policy


def plain_reference(env_cfg: dict, policy_cfg: dict, episodes: list[tuple], seconds: float) -> dict:
    """Steps per second of the plain Gymnasium loop over ``episodes`` (in order, whole episodes,
    resets included, until ``seconds`` have passed; at least 2), then of raw MuJoCo stepping
    replaying their actions (resets not timed), then of a bare MuJoCo batch replaying them all together where the
    ``mujoco`` engine serves the task (:func:`batch_replay`; ``batch_steps_per_s`` is ``None``
    otherwise).

    :param episodes: ``(params, obs_mean, obs_std, seed, harness_return)`` per episode: what the
        harness ran and the return it got, which the plain loop should get too.
    """
    import gymnasium as gym

    steps_cap = env_cfg.get("max_episode_steps")
    extra = {} if steps_cap is None else {"max_episode_steps": int(steps_cap)}
    check_env_id(env_cfg["id"])  # imports the module of a "module:Name-v0" id
    with warnings.catch_warnings():  # the passive env checker's notes, once
        warnings.simplefilter("ignore")
        plain = gym.make(env_cfg["id"], **(env_cfg.get("kwargs") or {}), **extra)
        plain.reset(seed=0)
    space = plain.action_space
    shapes = make_policy(policy_cfg, plain.observation_space.shape[0], space.low, space.high).shapes
    low, high, obs_clip = space.low.astype(np.float64), space.high.astype(np.float64), float(policy_cfg["obs_clip"])
    done, steps, same = [], 0, 0
    start = time.perf_counter()
    for params, mean, std, seed, harness_return in episodes:
        if time.perf_counter() - start >= seconds and len(done) >= 2:
            break
        layers, i = [], 0
        for out, inp in shapes:
            layers.append((params[i : i + out * inp].reshape(out, inp), params[i + out * inp : i + out * inp + out]))
            i += out * inp + out
        obs, _ = plain.reset(seed=int(seed))
        seen, actions, total = [obs], [], 0.0
        while True:
            x = np.clip((obs - mean) / std, -obs_clip, obs_clip)
            for k, (w, b) in enumerate(layers):
                x = w @ x + b
                if k < len(layers) - 1:
                    x = np.tanh(x)
            action = np.clip(x, low, high)
            actions.append(action)
            obs, reward, terminated, truncated, _ = plain.step(action)
            total += float(reward)
            if terminated or truncated:
                break
            seen.append(obs)
        batch = np.asarray(seen)
        batch.mean(axis=0), batch.var(axis=0)  # the episode's observation statistics, as training gathers them
        done.append((int(seed), actions, plain.unwrapped.data.qpos.copy()))
        steps += len(actions)
        same += total == harness_return
    plain_seconds = time.perf_counter() - start
    raw = _raw_replay(plain.unwrapped, done)
    plain.close()
    batch = batch_replay(env_cfg, policy_cfg, done)
    return {
        "env_id": env_cfg["id"],
        "frame_skip": raw["frame_skip"],
        "episodes": len(done),
        "steps": steps,
        "episode_length_mean": steps / len(done),
        "plain_seconds": plain_seconds,
        "plain_steps_per_s": steps / plain_seconds,
        "raw_seconds": raw["seconds"],
        "raw_steps_per_s": steps / raw["seconds"],
        "raw_replay_identical": raw["identical"],
        "returns_identical_to_harness": same,
        "batch_steps_per_s": None if batch is None else batch["steps"] / batch["seconds"],
        "batch_envs": None if batch is None else batch["envs"],
        "batch_replay_identical": None if batch is None else batch["identical"],
    }


def batch_replay(env_cfg: dict, policy_cfg: dict, episodes: list[tuple]) -> dict | None:
    """Time a bare :class:`mujoco.batch.Batch` (the ``mujoco`` engine's, one thread, one row per
    episode, each row reset by Gymnasium with the episode's seed) stepping the recorded ``episodes``
    ``(seed, actions, final qpos)`` together, each row for as many steps as it has actions: the
    engine's simulation alone, without the policy, the task's NumPy or the harness, as
    :func:`_raw_replay` is the ``gymnasium`` engine's. Resets are not timed.

    :returns: ``{"envs", "steps", "seconds", "identical"}`` (``identical``: every row ended in its
        episode's final ``qpos``, bit for bit), or ``None`` where the engine cannot run the task.
    """
    from harness.workers.engines import engine_problem
    from harness.workers.mujoco_engine import MujocoObjective

    if engine_problem("mujoco", env_cfg) is not None:
        return None
    objective = MujocoObjective(env_cfg, policy_cfg)
    try:
        lengths = np.array([len(actions) for _, actions, _ in episodes])
        acts = np.zeros((len(episodes), int(lengths.max()), len(episodes[0][1][0])))
        for i, (_, actions, _) in enumerate(episodes):
            acts[i, : len(actions)] = actions
        batch = objective.batch(len(episodes))
        objective.reset_rows(batch, [seed for seed, _, _ in episodes])
        ctrl, fs = batch.bind("ctrl"), objective.frame_skip
        ids = np.arange(len(episodes), dtype=np.int32)
        start = time.perf_counter()
        for t in range(acts.shape[1]):
            live = ids[lengths > t]
            ctrl[live] = acts[live, t]
            batch.step(live, nstep=fs)
        seconds = time.perf_counter() - start
        qpos = batch.bind("qpos")
        identical = all(np.array_equal(qpos[i], final) for i, (_, _, final) in enumerate(episodes))
    finally:
        objective.close()
    return {"envs": len(episodes), "steps": int(lengths.sum()), "seconds": seconds, "identical": identical}


def _raw_replay(env, episodes) -> dict:
    """Time ``mj_step`` alone over the recorded episodes ``(seed, actions, final qpos)`` of the
    unwrapped MuJoCo env ``env``; ``identical``: every replay ended where its episode did."""
    import mujoco

    model, data, frame_skip = env.model, env.data, int(env.frame_skip)
    seconds, identical = 0.0, True
    for seed, actions, final_qpos in episodes:
        env.reset(seed=seed)
        ctrl, step = data.ctrl, mujoco.mj_step
        start = time.perf_counter()
        for a in actions:
            ctrl[:] = a
            step(model, data, frame_skip)
        seconds += time.perf_counter() - start
        identical = identical and bool(np.array_equal(data.qpos, final_qpos))
    return {"frame_skip": frame_skip, "seconds": seconds, "identical": identical}
