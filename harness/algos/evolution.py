"""Drives any ask/tell :class:`~harness.algos.base.Strategy` on rollout workers.

One epoch is one generation: ask, run the population's episodes on the workers with
observation normalization frozen, merge the episodes' observation statistics (in task
order, so the numbers do not depend on the worker count), tell.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness import seeding
from harness.algos.base import EpochResult, Strategy
from harness.policies import Policy, RunningStat, make_policy
from harness.workers import Chunk, EpisodeTask


class EvolutionTrainer:
    """:class:`~harness.algos.base.Trainer` for the ES family.

    :param strategy: the search distribution. :param policy: the policy structure.
    :param backend: a worker backend (``evaluate(chunk) -> results``).
    :param seed: the run seed; generation ``g`` asks with stream ``(STRATEGY, g)`` and
        seeds its episodes from ``(TRAIN_ENV, g)``.
    :param obs_norm: gather observation statistics on training rollouts and normalize with them.
    """

    def __init__(self, strategy: Strategy, policy: Policy, backend, seed: int, obs_norm: bool = True,
                 meta: dict | None = None) -> None:
        self.strategy = strategy
        self.policy = policy
        self.backend = backend
        self.seed = int(seed)
        self.obs_norm = bool(obs_norm)
        self.meta = meta or {}
        init_params = policy.init_params(seeding.generator(seed, seeding.POLICY_INIT))
        self.state = strategy.init(init_params)
        self.obs_stat = RunningStat.zeros(policy.obs_dim)

    def normalizer(self) -> tuple[np.ndarray, np.ndarray]:
        """Frozen ``(mean, std)`` for this generation's rollouts."""
        if not self.obs_norm:
            return np.zeros(self.policy.obs_dim), np.ones(self.policy.obs_dim)
        return self.obs_stat.normalizer()

    def train_epoch(self, epoch: int) -> EpochResult:
        gen = self.state.generation
        population = self.strategy.ask(self.state, seeding.generator(self.seed, seeding.STRATEGY, gen))
        seeds = seeding.env_seeds(self.seed, seeding.TRAIN_ENV, gen, len(population.noise_offsets))
        mean, std = self.normalizer()
        chunk = Chunk(population.center, population.sigma, mean, std, population.tasks(seeds), self.obs_norm)
        results = self.backend.evaluate(chunk)
        returns = np.array([r.episode_return for r in results]).reshape(population.fitness_shape)
        lengths = np.array([r.length for r in results])
        self.state, metrics = self.strategy.tell(self.state, population, returns)
        if self.obs_norm:
            for r in results:
                self.obs_stat = self.obs_stat.merge(r.obs_stat)
        metrics["episode_length_mean"] = float(lengths.mean())
        return EpochResult(int(lengths.sum()), len(results), returns.ravel(), metrics)

    def evaluate(self, epoch: int, n_episodes: int) -> np.ndarray:
        seeds = seeding.env_seeds(self.seed, seeding.EVAL_ENV, epoch, n_episodes)
        mean, std = self.normalizer()
        tasks = tuple(EpisodeTask(0, 0, int(s)) for s in seeds)
        results = self.backend.evaluate(Chunk(self.state.params, 0.0, mean, std, tasks, False))
        return np.array([r.episode_return for r in results])

    def save(self, run_dir: Path) -> Path:
        """Write ``policy.npz``: ``params`` (d,), ``obs_mean``/``obs_std`` (obs_dim,) as used
        by the policy, the raw statistics ``obs_count``/``obs_m2``, the optimizer state
        ``opt_m``/``opt_v``/``opt_t``, ``generation``, and ``meta`` (JSON: env, policy config)."""
        mean, std = self.normalizer()
        opt = getattr(self.state, "opt", None)
        path = Path(run_dir) / "policy.npz"
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp, params=self.state.params, obs_mean=mean, obs_std=std,
            obs_count=self.obs_stat.count, obs_m2=self.obs_stat.m2, generation=self.state.generation,
            opt_m=getattr(opt, "m", np.zeros(0)), opt_v=getattr(opt, "v", np.zeros(0)), opt_t=getattr(opt, "t", 0),
            meta=json.dumps(self.meta),
        )
        tmp.replace(path)
        return path

    def close(self) -> None:
        self.backend.close()


def load_policy(path: str | Path) -> tuple[Policy, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Reload a saved ``policy.npz``: ``(policy, params, obs_mean, obs_std, meta)``.

    Run it with :func:`harness.workers.rollout.run_episode` on ``make_env(meta["env"]["id"])``.
    """
    from harness.envs import make_env

    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        params, mean, std = z["params"], z["obs_mean"], z["obs_std"]
    env = make_env(meta["env"]["id"], meta["env"].get("kwargs"))
    space = env.action_space
    policy = make_policy(meta["policy"], env.observation_space.shape[0], space.low, space.high)
    env.close()
    return policy, params, mean, std, meta
