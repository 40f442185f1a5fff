"""Drives any ask/tell :class:`~harness.es.strategies.base.Strategy` on rollout workers.

One epoch is one generation: ask, run the population's episodes on the workers with
observation normalization frozen, merge the episodes' observation statistics (in task
order, so the numbers do not depend on the worker count), tell.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from harness import seeding
from harness.algos.base import EpochResult, Evaluation
from harness.envs import make_env
from harness.envs.behaviour import behaviour
from harness.es.distributions import make_distribution
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer, make_optimizer
from harness.es.population import Population
from harness.es.strategies.base import Strategy
from harness.policies import Policy, RunningStat, collect_reference_batch, make_policy
from harness.shm import shared_noise_table
from harness.workers import Chunk, EpisodeSpec, WorkerSpec, make_backend
from harness.workers.rollout import SHIP_MODES, EnvObjective, make_objective, with_vectors

log = logging.getLogger(__name__)


class EvolutionTrainer:
    """:class:`~harness.algos.base.Trainer` for the ES family.

    :param strategy: the search distribution.
    :param init_params: ``init_params(*index) -> (d,)`` initial parameters drawn from the
        stream ``(POLICY_INIT, *index)``; a single search distribution starts at ``init_params()``.
    :param obs_dim: observation size (0 for a task with no observations).
    :param backend: a worker backend (``evaluate(chunk) -> results``).
    :param seed: the run seed; generation ``g`` asks with stream ``(STRATEGY, g)`` and
        seeds its episodes from ``(TRAIN_ENV, g)``.
    :param obs_norm: gather observation statistics on training rollouts and normalize with them.
    :param jump_every: every this many generations (0: never), after the update, jump to the
        generation's best perturbed point if it beats the updated centre when both are re-evaluated
        on the same ``jump_reeval_episodes`` fresh episodes (seeds ``(JUMP_ENV, generation)``); the
        optimizer state is kept. Those episodes count as training timesteps. Logged as ``jumped``
        (0 or 1), ``jump_candidate_return`` and ``jump_center_return``.
    :param ship: ``workers.ship`` (:data:`~harness.workers.rollout.SHIP_MODES`): ``seeds`` sends the
        workers noise offsets and signs; ``vectors`` forms every episode's parameters here and sends them
        (:func:`~harness.workers.rollout.with_vectors`), a measurement of the shared-seed trick with the
        same rows.
    """

    def __init__(
        self,
        strategy: Strategy,
        init_params: Callable[..., np.ndarray],
        obs_dim: int,
        backend,
        seed: int,
        obs_norm: bool = True,
        meta: dict | None = None,
        jump_every: int = 0,
        jump_reeval_episodes: int = 0,
        ship: str = "seeds",
    ) -> None:
        self.strategy = strategy
        self.backend = backend
        self.seed = int(seed)
        self.obs_dim = int(obs_dim)
        self.obs_norm = bool(obs_norm) and self.obs_dim > 0
        self.meta = meta or {}
        # ARS's shift (algo.train_survival_bonus=false): subtracted per step from training fitness only
        self.reward_shift = float(self.meta.get("train_reward_shift", 0.0))
        self.state = strategy.init(init_params())
        self.obs_stat = RunningStat.zeros(self.obs_dim)
        self._noticed: set[str] = set()  # the strategy's notices already logged
        # policy.virtual_batch_norm: the reference batch the workers' policies normalize with (build_trainer)
        self.reference_batch: np.ndarray | None = None
        self.rollout_hooks: list[Callable[[Chunk, list, float], None]] = []  # see run_on_workers
        self._rollout_s, self._traffic = 0.0, (0, 0)  # since the last epoch_costs()
        self.jump_every, self.jump_reeval_episodes = int(jump_every), int(jump_reeval_episodes)
        if ship not in SHIP_MODES:
            raise ValueError(f"workers.ship must be one of {', '.join(SHIP_MODES)}, got {ship!r}")
        self.ship = ship

    def normalizer(self, obs_stat: RunningStat | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frozen ``(mean, std)`` for this generation's rollouts (of ``obs_stat``, default the trainer's)."""
        if not self.obs_norm:
            return np.zeros(self.obs_dim), np.ones(self.obs_dim)
        return (obs_stat or self.obs_stat).normalizer()

    def rollouts(self, population: Population, generation: int, obs_stat: RunningStat | None = None) -> list:
        """Run ``population``'s episodes on the workers, seeded from ``(TRAIN_ENV, generation)``;
        :class:`~harness.workers.EpisodeResult` s in fitness order (row-major ``fitness_shape``)."""
        seeds = seeding.env_seeds(self.seed, seeding.TRAIN_ENV, generation, len(population.noise_offsets))
        mean, std = self.normalizer(obs_stat)
        chunk = Chunk(population.centers, population.sigma, mean, std, episode_specs(population, seeds), self.obs_norm)
        return self.run_on_workers(chunk)

    def run_on_workers(self, chunk: Chunk) -> list:
        """``backend.evaluate(chunk)``, the one door to the workers: each of ``rollout_hooks`` is then
        called with ``(chunk, results, seconds)`` (e.g. ``harness.bench`` times the rollouts so). With
        ``ship="vectors"`` the episodes' parameters are formed first (not counted in ``seconds``: the
        coordinator's time)."""
        if self.ship == "vectors":
            noise = self.noise_table
            chunk = with_vectors(chunk, noise, noise.distribution)
        start = time.perf_counter()
        results = self.backend.evaluate(chunk)
        seconds = time.perf_counter() - start
        self._rollout_s += seconds
        for hook in self.rollout_hooks:
            hook(chunk, results, seconds)
        return results

    def epoch_costs(self) -> dict[str, float]:
        """What the workers cost since the last call (the runner calls it before and after each
        :meth:`train_epoch`, so an epoch's row leaves its evaluation out): ``rollout_time_s``, seconds in
        :meth:`run_on_workers`; ``bytes_sent`` and ``bytes_received``, the backend's traffic with its workers
        (its ``bytes_sent`` / ``bytes_received`` counters; NaN for a backend without them). The
        :data:`harness.tracking.EPOCH_COST_COLUMNS`, for issue 32's model of a generation's cost."""
        sent, received = (getattr(self.backend, k, None) for k in ("bytes_sent", "bytes_received"))
        traffic = (math.nan, math.nan)
        if sent is not None and received is not None:
            traffic = (float(sent - self._traffic[0]), float(received - self._traffic[1]))
            self._traffic = (sent, received)
        costs = {"rollout_time_s": self._rollout_s, "bytes_sent": traffic[0], "bytes_received": traffic[1]}
        self._rollout_s = 0.0
        return costs

    def log_notices(self, metrics: dict) -> None:
        """Log each distinct notice of the strategy about an update (:meth:`Strategy.notices`) once."""
        for notice in self.strategy.notices(metrics):
            if notice not in self._noticed:
                self._noticed.add(notice)
                log.warning(notice)

    def merge_obs_stats(self, obs_stat: RunningStat, results) -> RunningStat:
        """``obs_stat`` merged with the episodes' statistics, in task order (so the numbers
        do not depend on how episodes were spread over workers)."""
        if self.obs_norm:
            for r in results:
                obs_stat = obs_stat.merge(r.obs_stat)
        return obs_stat

    def train_epoch(self, epoch: int) -> EpochResult:
        """One generation ``g`` (the strategy state's count; ``epoch`` is not read): ask with the stream
        ``(STRATEGY, g)``, run the population's episodes (:meth:`rollouts`), fitness from their returns
        (:func:`fitness_and_unstable`: ``reward_shift`` taken off, unstable episodes ranked last), tell, merge the
        episodes' observation statistics for the next generation and, every ``jump_every`` generations,
        :meth:`jump_to_best`. The result's returns are the environment's own, the jump's episodes included;
        metrics add ``episode_length_mean`` and ``unstable_episodes``."""
        gen = self.state.generation
        population = self.strategy.ask(self.state, seeding.generator(self.seed, seeding.STRATEGY, gen))
        results = self.rollouts(population, gen)
        fitness, unstable = fitness_and_unstable(results, population.fitness_shape, self.reward_shift)
        lengths = np.array([r.length for r in results])
        self.state, metrics = self.strategy.tell(self.state, population, fitness)
        self.log_notices(metrics)
        self.obs_stat = self.merge_obs_stats(self.obs_stat, results)
        metrics.update(episode_length_mean=float(lengths.mean()), unstable_episodes=unstable)
        returns = np.array([r.episode_return for r in results])
        steps, episodes = int(lengths.sum()), len(results)
        if self.jump_every:  # the columns are in every row (empty between jumps): metrics.csv keeps its header's
            metrics.update(jumped=float("nan"), jump_candidate_return=float("nan"), jump_center_return=float("nan"))
        if self.jump_every and (gen + 1) % self.jump_every == 0:
            jump_steps, jump_returns = self.jump_to_best(population, fitness, gen, metrics)
            steps, episodes = steps + jump_steps, episodes + len(jump_returns)
            returns = np.concatenate([returns, jump_returns])
        return EpochResult(steps, episodes, returns, metrics)

    def jump_to_best(
        self, population: Population, fitness: np.ndarray, generation: int, metrics: dict
    ) -> tuple[int, np.ndarray]:
        """Move the centre to the generation's best perturbed point if, on the same fresh
        ``jump_reeval_episodes`` episodes (common random numbers), its mean return beats the updated
        centre's: one lucky episode does not win. Adds ``jumped``, ``jump_candidate_return`` and
        ``jump_center_return`` to ``metrics``.

        :param fitness: the generation's training fitness, shape ``population.fitness_shape``.
        :returns: the re-evaluation's timesteps and returns (shape ``(2 * jump_reeval_episodes,)``).
        """
        best = int(np.argmax(np.asarray(fitness).ravel()))  # the first of equals: fitness order
        member = population.members()[best]
        noise = self.strategy.noise
        center = population.centers[member.center]
        candidate = noise.distribution.perturb(
            center, population.sigma, noise.get(member.offset, center.size), member.sign
        )
        seeds = seeding.env_seeds(self.seed, seeding.JUMP_ENV, generation, self.jump_reeval_episodes)
        tried = self.run_params(candidate, seeds)
        kept = self.run_params(self.state.params, seeds)
        cand_return = float(np.mean([r.episode_return for r in tried]))
        center_return = float(np.mean([r.episode_return for r in kept]))
        jumped = cand_return > center_return
        if jumped:
            self.state = dataclasses.replace(self.state, params=np.array(candidate, dtype=np.float64))
        metrics.update(jumped=int(jumped), jump_candidate_return=cand_return, jump_center_return=center_return)
        episodes = tried + kept
        return sum(r.length for r in episodes), np.array([r.episode_return for r in episodes])

    def run_params(self, params: np.ndarray, seeds: np.ndarray, obs_stat: RunningStat | None = None) -> list:
        """Episodes of ``params`` itself, one per seed, with frozen statistics; results in seed order."""
        mean, std = self.normalizer(obs_stat)
        episodes = tuple(EpisodeSpec(0, 0, int(s)) for s in seeds)
        return self.run_on_workers(Chunk(np.asarray(params)[None, :], 0.0, mean, std, episodes, False))

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """``n_episodes`` episodes of :meth:`Strategy.evaluation_params` itself (no perturbation) with the
        frozen observation statistics, seeded from ``(EVAL_ENV, epoch)``; no statistic is updated."""
        seeds = seeding.env_seeds(self.seed, seeding.EVAL_ENV, epoch, n_episodes)
        return Evaluation.from_results(self.run_params(self.strategy.evaluation_params(self.state), seeds))

    def save(self, run_dir: Path) -> Path:
        """Write ``policy.npz``: ``params`` (d,), ``obs_mean``/``obs_std`` (obs_dim,) as used
        by the policy, the raw statistics ``obs_count``/``obs_m2``, every other field of the
        strategy state flattened (``generation``, the optimizer's ``opt_m``/``opt_v``/``opt_t``,
        VO's ``sigma``, ...), and ``meta`` (JSON: env, policy config)."""
        arrays = policy_file_arrays(
            state_arrays(self.state),
            self.strategy.evaluation_params(self.state),
            self.obs_stat,
            self.normalizer(),
            self.meta,
            self.policy_arrays(),
        )
        return write_npz(Path(run_dir) / POLICY_FILE, arrays)

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Everything training continues from: the strategy state and the observation statistics.
        (Every random stream is derived from the seed and the generation, so no generator state.)"""
        return {**state_arrays(self.state, "state_"), **running_stat_arrays(self.obs_stat, "obs_")}

    def policy_arrays(self) -> dict[str, np.ndarray]:
        """What the policy needs besides its parameters: the reference batch of virtual batch
        normalization (``vbn_reference_batch``, ``(batch, obs_dim)``) if it has one."""
        return {} if self.reference_batch is None else {"vbn_reference_batch": self.reference_batch}

    def save_checkpoint(self, folder: Path) -> None:
        """Write ``trainer.npz`` (:meth:`checkpoint_arrays` and :meth:`policy_arrays`) into ``folder``."""
        np.savez(Path(folder) / "trainer.npz", **self.checkpoint_arrays(), **self.policy_arrays())

    def load_checkpoint(self, folder: Path) -> None:
        """Continue from :meth:`save_checkpoint`'s files: the next epoch is the one after it.

        :raises RuntimeError: if the checkpoint's VBN reference batch is not the one this run's
            workers were given (it is collected again from the seed: another MuJoCo build may
            simulate the random policy differently, and the run would no longer be the same)."""
        with np.load(Path(folder) / "trainer.npz") as z:
            arrays = dict(z)
        saved = arrays.pop("vbn_reference_batch", None)
        if self.reference_batch is not None and not (saved is not None and np.array_equal(saved, self.reference_batch)):
            raise RuntimeError(
                f"{folder}: the checkpoint's reference batch for virtual batch normalization differs "
                "from the one collected again from the seed for this resume (another machine or MuJoCo "
                "version?); the run cannot continue as the same run: start a new one"
            )
        self.restore(arrays)

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the strategy state (``state_*`` arrays; a field absent keeps its current value) and the
        observation statistics (``obs_*``) from :meth:`checkpoint_arrays`' arrays.

        :raises KeyError: if an ``obs_*`` array is missing.
        """
        self.state = state_from_arrays(self.state, arrays, "state_")
        self.obs_stat = running_stat_from_arrays(arrays, "obs_")

    def close(self) -> None:
        """Stop the workers and release the shared noise table."""
        try:
            self.backend.close()
        finally:
            noise = getattr(self, "noise_table", None) or getattr(self.strategy, "noise", None)
            if noise is not None:
                noise.close()


POLICY_FILE = "policy.npz"


def policy_file_arrays(
    state: dict[str, np.ndarray],
    params: np.ndarray,
    obs_stat: RunningStat,
    normalizer: tuple[np.ndarray, np.ndarray],
    meta: dict,
    extra: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The arrays of ``policy.npz`` (:meth:`EvolutionTrainer.save`): the strategy state ``state``
    (:func:`state_arrays`) with ``params`` (d,), the evaluated parameters, in place of its own
    (a multi-agent state's ``(k, d)`` kept as ``agents_params``), the frozen ``obs_mean``/``obs_std``
    of ``normalizer``, the raw statistics ``obs_count``/``obs_m2``, ``extra`` (the policy's own arrays,
    :meth:`EvolutionTrainer.policy_arrays`) and ``meta`` as JSON. Also what
    :func:`policy_from_checkpoint` rebuilds, so the two cannot drift apart."""
    arrays = dict(state)
    params = np.asarray(params)
    if arrays["params"].shape != params.shape:  # several agents: all of them apart, the evaluated one as params
        arrays["agents_params"] = arrays["params"]
    arrays["params"] = params
    mean, std = normalizer
    return {
        **arrays,
        **extra,
        "obs_mean": mean,
        "obs_std": std,
        "obs_count": np.asarray(obs_stat.count),
        "obs_m2": obs_stat.m2,
        "meta": np.asarray(json.dumps(meta)),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` to ``path`` through a temporary file, so that ``path`` is never half written."""
    path = Path(path)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def policy_from_checkpoint(run_dir: str | Path, folder: str | Path) -> dict[str, np.ndarray]:
    """The arrays :meth:`EvolutionTrainer.save` would have written as ``policy.npz`` had the run
    ended at the checkpoint ``folder`` (a ``checkpoint/epoch_<N>/`` of the ES-family run in
    ``run_dir``): the evaluated parameters (NetES: the best agent; the novelty family: the best
    policy so far, with its own observation statistics, ``meta["agent"]`` naming its agent), the
    frozen normalization, the strategy state and ``meta`` rebuilt from ``run_dir/config.yaml``. For a
    run whose ``policy.npz`` was lost (not shipped) or never written (killed): its latest
    checkpoint is its final state.

    :raises FileNotFoundError: if ``folder`` has no ``trainer.npz`` (not an ES-family checkpoint).
    """
    import yaml

    cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    with np.load(Path(folder) / "trainer.npz") as z:
        arrays = dict(z)
    extra = {k: arrays[k] for k in ("vbn_reference_batch",) if k in arrays}
    meta = {"algo": cfg["algo"]["name"], "env": cfg["env"], "seed": cfg["seed"], "policy": cfg.get("policy") or {}}
    if "agent0_params" in arrays:  # the novelty family: its best policy so far (agent 0 before any)
        prefix = "best_" if "best_agent" in arrays else "agent0_"
        state = {
            k[len(prefix) :]: v
            for k, v in arrays.items()
            if k.startswith(prefix)
            and not k.startswith(f"{prefix}obs_")
            and k not in (f"{prefix}return", f"{prefix}bc", "best_agent")
        }
        obs_stat = running_stat_from_arrays(arrays, f"{prefix}obs_")
        agent = int(arrays.get("best_agent", 0))
    else:
        state = {k[len("state_") :]: v for k, v in arrays.items() if k.startswith("state_")}
        obs_stat = running_stat_from_arrays(arrays, "obs_")
        agent = None
    params = state["params"]
    if params.ndim == 2:  # NetES: every agent's parameters; the evaluated one is the best of the last generation
        params = params[int(state["best"])]
    if cfg["env"].get("kind", "gym") == "gym":
        meta["train_reward_shift"] = train_reward_shift(cfg["env"], bool(cfg["algo"].get("train_survival_bonus", True)))
    if agent is not None:
        meta["agent"] = agent
    obs_norm = bool(meta["policy"].get("obs_norm", True)) and obs_stat.mean.size > 0
    normalizer = obs_stat.normalizer() if obs_norm else (np.zeros(obs_stat.mean.size), np.ones(obs_stat.mean.size))
    return policy_file_arrays(state, params, obs_stat, normalizer, meta, extra)


def episode_specs(population: Population, env_seeds: np.ndarray) -> tuple[EpisodeSpec, ...]:
    """The episodes of ``population``'s members, in fitness order (row-major over ``fitness_shape``).

    :param env_seeds: one per noise offset, shape ``(m,)``; both members of a mirrored pair share
        their seed (common random numbers lower the variance of ``F+ - F-``).
    """
    seeds = np.repeat(np.asarray(env_seeds), len(population.signs))
    return tuple(EpisodeSpec(m.offset, m.sign, int(seed), m.center) for m, seed in zip(population.members(), seeds))


def fitness_and_unstable(results, shape: tuple[int, ...], reward_shift: float = 0.0) -> tuple[np.ndarray, int]:
    """The episodes' returns as fitness of shape ``shape``, and how many episodes MuJoCo found
    unstable. Unstable episodes can only be here with ``env.on_unstable=rank_last``: their
    return is meaningless (MuJoCo reset the state mid-episode), so they are ranked below every
    stable episode (fitness = the lowest stable return minus 1; 0 if none is stable).

    :param reward_shift: subtracted from every step's reward, i.e. ``reward_shift * length`` from
        each return (:func:`train_reward_shift`: ARS's removal of the survival bonus). Fitness
        only: the returns the run reports are the environment's own.
    """
    returns = np.array([r.episode_return - reward_shift * r.length for r in results], dtype=np.float64)
    unstable = np.array([r.unstable is not None for r in results], dtype=bool)
    if unstable.any():
        floor = returns[~unstable].min() - 1.0 if (~unstable).any() else 0.0
        returns = np.where(unstable, floor, returns)
    return returns.reshape(shape), int(unstable.sum())


def running_stat_arrays(stat: RunningStat, prefix: str) -> dict[str, np.ndarray]:
    """A :class:`RunningStat` as arrays ``{prefix}count``, ``{prefix}mean``, ``{prefix}m2``."""
    return {f"{prefix}count": np.asarray(stat.count), f"{prefix}mean": stat.mean, f"{prefix}m2": stat.m2}


def running_stat_from_arrays(arrays: dict, prefix: str) -> RunningStat:
    """The inverse of :func:`running_stat_arrays`."""
    return RunningStat(
        float(arrays[f"{prefix}count"]), np.array(arrays[f"{prefix}mean"]), np.array(arrays[f"{prefix}m2"])
    )


def state_from_arrays(template, arrays: dict, prefix: str = ""):
    """The inverse of :func:`state_arrays`: a state of ``template``'s type with every field
    read from ``arrays`` (ints and floats as Python numbers; fields absent stay as in ``template``)."""
    values = {}
    for f in dataclasses.fields(template):
        current = getattr(template, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(current):
            values[f.name] = state_from_arrays(current, arrays, f"{key}_")
        elif key in arrays:
            v = arrays[key]
            values[f.name] = (
                int(v) if isinstance(current, int) else float(v) if isinstance(current, float) else np.array(v)
            )
        else:
            values[f.name] = current
    return dataclasses.replace(template, **values)


def state_arrays(state, prefix: str = "") -> dict[str, np.ndarray]:
    """The fields of a (nested) state dataclass as flat arrays: ``ESState`` ->
    ``{"params", "generation", "opt_m", "opt_v", "opt_t"}``; ``None`` fields are left out."""
    out = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            out.update(state_arrays(value, f"{prefix}{f.name}_"))
        else:
            out[f"{prefix}{f.name}"] = np.asarray(value)
    return out


def task_setup(cfg, require_bc: bool = False) -> tuple[dict, dict, int, int, Callable[..., np.ndarray]]:
    """``(env_cfg, policy_cfg, num_params, obs_dim, init_params)`` of the run's task;
    ``init_params(*index)`` gives initial parameters from the stream ``(POLICY_INIT, *index)``.
    With ``policy.virtual_batch_norm``, ``policy_cfg["reference_batch"]`` holds the reference batch
    (:func:`reference_batch`), which the workers' policies normalize with.

    The environment's behaviour characterization (``env.bc``) is tried once here. If the env
    cannot give it (e.g. a custom env id under the HalfCheetah config's ``com_x``), a run that
    needs BCs (``require_bc``: the novelty family) stops with the reason; any other run warns
    and goes on without BCs (``env_cfg["bc"]`` set to ``None``).

    :raises ValueError: if ``require_bc`` and the env cannot give its BC.
    """
    env_cfg = OmegaConf.to_container(cfg.env, resolve=True)
    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True) if "policy" in cfg else {}  # none: a function task
    if policy_cfg.get("virtual_batch_norm") and env_cfg.get("kind", "gym") == "gym":
        policy_cfg["reference_batch"] = reference_batch(env_cfg, policy_cfg, cfg.seed)
    task = make_objective(env_cfg, policy_cfg)
    if isinstance(task, EnvObjective) and task.bc is not None:
        try:
            task.env.reset(seed=0)
            behaviour(task.env, task.bc)
        except ValueError as exc:
            if require_bc:
                task.close()
                raise ValueError(f"env.bc={task.bc}: {exc}") from None
            log.warning(
                "env.bc=%s cannot be computed here (%s); this run records no behaviour characterizations", task.bc, exc
            )
            env_cfg["bc"] = None
    task.close()  # only its sizes and initialisation are used here

    def init_params(*index: int) -> np.ndarray:
        return task.init_params(seeding.generator(cfg.seed, seeding.POLICY_INIT, *index))

    return env_cfg, policy_cfg, task.num_params, task.obs_dim, init_params


def reference_batch(env_cfg: dict, policy_cfg: dict, seed: int) -> np.ndarray:
    """The reference batch of virtual batch normalization (:class:`~harness.policies.VBNMLPPolicy`):
    ``policy.reference_batch_size`` observations of a uniformly random policy, each step's kept with
    probability ``policy.reference_keep_probability``, collected once at the start of the run. The
    actions and the choice come from the stream ``(REFERENCE_BATCH, 0)``, episode ``i`` starts from
    the seed ``(REFERENCE_BATCH, 1, i)``: the same run seed gives the same batch.

    :returns: shape ``(policy.reference_batch_size, obs_dim)`` float64.
    """
    env = make_env(env_cfg["id"], env_cfg.get("kwargs"), env_cfg.get("max_episode_steps"))
    try:
        seeds = (int(seeding.env_seeds(seed, seeding.REFERENCE_BATCH, (1, i), 1)[0]) for i in itertools.count())
        return collect_reference_batch(
            env,
            int(policy_cfg.get("reference_batch_size", 128)),
            seeding.generator(seed, seeding.REFERENCE_BATCH, 0),
            seeds,
            float(policy_cfg.get("reference_keep_probability", 0.01)),
        )
    finally:
        env.close()


def train_reward_shift(env_cfg: dict, survival_bonus: bool = True, env=None) -> float:
    """The per-step reward the ES family's training fitness leaves out: 0 if ``survival_bonus``
    (``algo.train_survival_bonus``) is true, else the environment's survival bonus
    (``healthy_reward``: 1 for Hopper-, Walker2d- and Ant-v5, 5 for Humanoid-v5).

    Mania et al. 2018 (ARS, Sec. 3 and their code's ``shift``) subtract it from every training
    reward, so that a policy is not ranked up for standing still to collect it; evaluation, and
    every return the run reports, keep the environment's own reward.

    :param env: the environment made from ``env_cfg`` (made here if ``None``).
    :raises ValueError: if the environment has no survival bonus to leave out.
    """
    if survival_bonus:
        return 0.0
    own = env is None
    env = make_env(env_cfg["id"], env_cfg.get("kwargs"), env_cfg.get("max_episode_steps")) if own else env
    try:
        bonus = getattr(env.unwrapped, "_healthy_reward", None)
    finally:
        if own:
            env.close()
    if bonus is None:
        raise ValueError(
            f"algo.train_survival_bonus=false: {env_cfg['id']} has no survival bonus (healthy_reward) "
            "to leave out of training"
        )
    return float(bonus)


def make_optimizer_from(algo) -> Optimizer:
    """The optimizer ``algo.optimizer`` with ``algo.learning_rate`` and its ``algo.optimizer_kwargs``."""
    given = algo.get("optimizer_kwargs")
    kwargs = (OmegaConf.to_container(given, resolve=True) if given else {}).get(algo.optimizer) or {}
    return make_optimizer(algo.optimizer, algo.learning_rate, **kwargs)


def build_trainer(
    cfg, make_strategy, trainer_cls=None, require_bc: bool = False, mean_optimizer: bool = True, **trainer_kwargs
):
    """What every ES-family ``make_trainer`` shares: the task's sizes, the noise table, the
    optimizer, the strategy (``make_strategy(num_params, noise, optimizer)``), the workers and
    the trainer (``trainer_cls``, default :class:`EvolutionTrainer`; ``trainer_kwargs`` go to it).
    ``require_bc``: the trainer needs behaviour characterizations (:func:`task_setup`).
    ``mean_optimizer``: false for a strategy that steps its mean itself (CMA-ES): ``optimizer`` is
    then ``None``, whatever ``algo.optimizer`` a recipe sets for every algorithm it runs."""
    env_cfg, policy_cfg, num_params, obs_dim, init_params = task_setup(cfg, require_bc)
    noise_seq = seeding.seed_sequence(cfg.seed, seeding.NOISE_TABLE)
    distribution = make_distribution(cfg.algo.get("noise", "gaussian"), cfg.algo.get("noise_df"))
    # one table on the machine: the workers read this one (in shared memory for ``process``, in
    # Ray's object store for ``ray``, this very array for ``serial``)
    if cfg.workers.backend == "process":
        noise = shared_noise_table(noise_seq, cfg.algo.noise_table_size, distribution)
    else:
        noise = NoiseTable(noise_seq, cfg.algo.noise_table_size, distribution=distribution)
    strategy = make_strategy(num_params, noise, make_optimizer_from(cfg.algo) if mean_optimizer else None)
    try:
        spec = WorkerSpec(env_cfg, policy_cfg, noise, engine=cfg.workers.engine)
        backend = make_backend(
            cfg.workers.backend,
            cfg.workers.n,
            spec,
            cfg.workers.get("max_retries", 2),
            cfg.workers.get("episode_timeout_s"),
            cfg.workers.get("ray_address"),
        )
    except BaseException:
        noise.close()
        raise
    # the reference batch goes to policy.npz as an array (policy_arrays), not into the JSON meta
    meta = {
        "algo": cfg.algo.name,
        "env": env_cfg,
        "seed": cfg.seed,
        "policy": {k: v for k, v in policy_cfg.items() if k != "reference_batch"},
    }
    if cfg.algo.get("jump_every"):
        trainer_kwargs.update(jump_every=cfg.algo.jump_every, jump_reeval_episodes=cfg.algo.jump_reeval_episodes)
    if env_cfg.get("kind", "gym") == "gym":
        meta["train_reward_shift"] = train_reward_shift(env_cfg, bool(cfg.algo.get("train_survival_bonus", True)))
    obs_norm = bool(policy_cfg.get("obs_norm", True))
    trainer_cls = trainer_cls or EvolutionTrainer
    try:
        trainer = trainer_cls(
            strategy, init_params, obs_dim, backend, cfg.seed, obs_norm, meta, ship=cfg.workers.ship, **trainer_kwargs
        )
        trainer.reference_batch = policy_cfg.get("reference_batch")
        trainer.noise_table = noise  # released by close(), also for a strategy that keeps no table (CMA-ES)
        return trainer
    except BaseException:
        backend.close()
        noise.close()
        raise


def load_policy(path: str | Path) -> tuple[Policy, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Reload a saved ``policy.npz`` (or the run folder holding it): ``(policy, params, obs_mean,
    obs_std, meta)``.

    Run it with :func:`harness.workers.rollout.run_episode` on ``make_env(meta["env"]["id"])``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / POLICY_FILE
    with np.load(path) as z:
        return policy_from_arrays(dict(z))


def policy_from_arrays(arrays: dict[str, np.ndarray]) -> tuple[Policy, np.ndarray, np.ndarray, np.ndarray, dict]:
    """:func:`load_policy` from the arrays of a ``policy.npz`` (or :func:`policy_from_checkpoint`'s)."""
    meta = json.loads(str(arrays["meta"]))
    params, mean, std = arrays["params"], arrays["obs_mean"], arrays["obs_std"]
    policy_cfg = dict(meta["policy"])
    if "vbn_reference_batch" in arrays:
        policy_cfg["reference_batch"] = arrays["vbn_reference_batch"]
    env = make_env(meta["env"]["id"], meta["env"].get("kwargs"))
    space = env.action_space
    policy = make_policy(policy_cfg, env.observation_space.shape[0], space.low, space.high)
    env.close()
    return policy, params, mean, std, meta
