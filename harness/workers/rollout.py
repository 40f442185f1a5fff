"""One episode of a numpy policy, and the worker that runs batches of them.

A worker keeps its environment, policy structure and noise table alive across
generations. It receives the centre parameters once per chunk and, per episode, a
noise offset, a sign and an environment seed; it sends back the return, the length
and the episode's observation statistics. Everything random comes from the seed it
is handed, never from which worker it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.envs import make_env
from harness.es_core.noise import NoiseTable
from harness.policies import Policy, RunningStat, make_policy


@dataclass(frozen=True)
class EpisodeTask:
    """One episode: parameters ``center + sign * sigma * noise[offset : offset + d]``.

    ``sign = 0`` (and any offset) evaluates ``center`` itself.
    """

    offset: int
    sign: int
    env_seed: int


@dataclass(frozen=True)
class Chunk:
    """Episodes that share parameters and normalization: what one worker call receives.

    :param center: shape ``(d,)`` float64. :param sigma: scalar or ``(d,)``.
    :param obs_mean, obs_std: frozen normalization, shape ``(obs_dim,)``.
    :param collect_obs_stats: return per-episode observation statistics (training rollouts).
    """

    center: np.ndarray
    sigma: float | np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    tasks: tuple[EpisodeTask, ...]
    collect_obs_stats: bool


@dataclass(frozen=True)
class EpisodeResult:
    """Episode return (sum of rewards), length (timesteps), whether it ended by termination
    (not truncation), and its observation statistics (``None`` unless collected)."""

    episode_return: float
    length: int
    terminated: bool
    obs_stat: RunningStat | None


def run_episode(env, policy: Policy, params: np.ndarray, mean, std, seed: int, collect_obs: bool) -> EpisodeResult:
    """Roll out ``policy`` with ``params`` for one episode from ``env.reset(seed=seed)``.

    The episode ends on termination or on the environment's own truncation (TimeLimit).
    """
    layers = policy.unflatten(params)
    obs, _ = env.reset(seed=int(seed))
    observations = [obs] if collect_obs else None
    total, length = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy.act(layers, obs, mean, std))
        total += float(reward)
        length += 1
        if terminated or truncated:
            break
        if collect_obs:
            observations.append(obs)
    stat = RunningStat.from_batch(np.asarray(observations)) if collect_obs else None
    return EpisodeResult(total, length, bool(terminated), stat)


class RolloutWorker:
    """Runs :class:`Chunk` s. Built once per process (or once, in-process, for ``serial``).

    :param env_cfg: ``{"id", "kwargs", "max_episode_steps"}``. :param policy_cfg: see :func:`make_policy`.
    :param noise_seed: ``(entropy, spawn_key)`` of the noise-table SeedSequence; ``noise_size`` its length.
    """

    def __init__(self, env_cfg: dict, policy_cfg: dict, noise_seed: tuple, noise_size: int) -> None:
        self.env = make_env(env_cfg["id"], env_cfg.get("kwargs"), env_cfg.get("max_episode_steps"))
        space = self.env.action_space
        self.policy = make_policy(policy_cfg, self.env.observation_space.shape[0], space.low, space.high)
        entropy, spawn_key = noise_seed
        self.noise = NoiseTable(np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key)), noise_size)

    def run(self, chunk: Chunk) -> list[EpisodeResult]:
        results = []
        d = chunk.center.size
        for task in chunk.tasks:
            params = chunk.center
            if task.sign != 0:
                params = chunk.center + task.sign * chunk.sigma * self.noise.get(task.offset, d)
            results.append(
                run_episode(self.env, self.policy, params, chunk.obs_mean, chunk.obs_std, task.env_seed, chunk.collect_obs_stats)
            )
        return results

    def close(self) -> None:
        self.env.close()
