"""The interfaces the runner and the ES family share.

* :class:`Strategy`: a pure ask/tell search distribution (evosax style). ``ask`` turns a
  state and a generator into a :class:`Population`; ``tell`` turns fitness into a new
  state. No I/O, no globals; **fitness is maximised**.
* :class:`Trainer`: what the runner drives, one epoch at a time. Every algorithm, ES
  family or TRPO, is a trainer, so every run writes the same metrics.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from harness.es_core.shaping import shape_fitness
from harness.workers.rollout import EpisodeTask


@dataclass(frozen=True)
class Population:
    """Perturbations of ``center`` named by noise-table offsets.

    With ``antithetic`` the population is ``m`` mirrored pairs ``center +- sigma * eps_j``
    and its fitness has shape ``(m, 2)`` (column 0: ``+eps``); otherwise ``m`` members
    ``center + sigma * eps_j`` and fitness of shape ``(m,)``.

    :param center: shape ``(d,)`` float64. :param sigma: scalar or ``(d,)``.
    :param noise_offsets: shape ``(m,)`` int64.
    """

    center: np.ndarray
    sigma: float | np.ndarray
    noise_offsets: np.ndarray
    antithetic: bool

    @property
    def fitness_shape(self) -> tuple[int, ...]:
        m = len(self.noise_offsets)
        return (m, 2) if self.antithetic else (m,)

    @property
    def size(self) -> int:
        """Number of episodes (both members of a pair counted)."""
        return int(np.prod(self.fitness_shape))

    def tasks(self, env_seeds: np.ndarray) -> tuple[EpisodeTask, ...]:
        """Episode tasks in fitness order (row-major over ``fitness_shape``).

        :param env_seeds: one per offset, shape ``(m,)``; both members of a mirrored pair
            share their seed (common random numbers lower the variance of ``F+ - F-``).
        """
        signs = (1, -1) if self.antithetic else (1,)
        return tuple(
            EpisodeTask(int(off), s, int(seed)) for off, seed in zip(self.noise_offsets, env_seeds) for s in signs
        )


@dataclass(frozen=True)
class StrategyState:
    """The search distribution's mean ``params`` (shape ``(d,)`` float64) and generation count."""

    params: np.ndarray
    generation: int = 0


def check_fitness(fitness: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``fitness`` as float64 after checking its shape and finiteness.

    :raises ValueError: on a shape mismatch or a non-finite value (NaN/inf return).
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    if fitness.shape != shape:
        raise ValueError(f"fitness must have shape {shape}, got {fitness.shape}")
    if not np.all(np.isfinite(fitness)):
        bad = int((~np.isfinite(fitness)).sum())
        raise ValueError(f"{bad} of {fitness.size} episode returns are not finite (NaN or inf); "
                         "the environment or policy diverged")
    return fitness


def check_finite_state(state, prefix: str = "") -> None:
    """:raises FloatingPointError: naming the first field of ``state`` (parameters, sigma,
    optimizer moments) holding a NaN or infinite value after an update."""
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if dataclasses.is_dataclass(value):
            check_finite_state(value, f"{prefix}{f.name}.")
        elif isinstance(value, (np.ndarray, float)) and not np.all(np.isfinite(value)):
            raise FloatingPointError(f"the update made {prefix}{f.name} non-finite (NaN or inf); the run stops before "
                                     "using it (too large a learning rate, or a diverging environment?)")


class Strategy(ABC):
    """Ask/tell base class. ``tell`` owns the shared path: it checks the fitness shape and
    finiteness, shapes the fitness, calls the strategy's own :meth:`update`, and bumps the
    generation counter. Subclasses implement :meth:`init`, :meth:`ask` and :meth:`update`."""

    def __init__(self, num_params: int, fitness_shaping: str = "centered_ranks") -> None:
        self.num_params = int(num_params)
        self.fitness_shaping = fitness_shaping

    @abstractmethod
    def init(self, params: np.ndarray) -> StrategyState:
        """The initial state around ``params`` (shape ``(d,)``)."""

    @abstractmethod
    def ask(self, state: StrategyState, rng: np.random.Generator) -> Population:
        """The population to evaluate this generation. Uses only ``rng`` for randomness."""

    @abstractmethod
    def update(self, state: StrategyState, population: Population, shaped: np.ndarray) -> tuple[StrategyState, dict]:
        """New state from shaped fitness; returns it with scalar metrics for logging."""

    def tell(self, state: StrategyState, population: Population, fitness: np.ndarray) -> tuple[StrategyState, dict]:
        """Update ``state`` with the raw ``fitness`` (episode returns) of ``population``.

        :param fitness: shape ``population.fitness_shape``, higher is better.
        :raises ValueError: on a shape mismatch or a non-finite value (NaN/inf return).
        """
        fitness = check_fitness(fitness, population.fitness_shape)
        new_state, metrics = self.update(state, population, shape_fitness(fitness, self.fitness_shaping))
        check_finite_state(new_state)
        return dataclasses.replace(new_state, generation=state.generation + 1), metrics


@dataclass
class EpochResult:
    """What one epoch of training did.

    ``timesteps`` and ``episodes`` count environment steps and finished episodes of
    training rollouts in this epoch; ``returns`` has one entry per finished episode.
    ``behaviours`` are behaviour characterizations the algorithm wants kept in the run
    directory (the novelty family: the BC it archived this epoch), as
    ``(source, agent, bcs)`` with ``bcs`` of shape ``(k, bc_dim)``.
    """

    timesteps: int
    episodes: int
    returns: np.ndarray
    metrics: dict = field(default_factory=dict)
    behaviours: list[tuple[str, int | None, np.ndarray]] = field(default_factory=list)


@dataclass
class Evaluation:
    """Episodes of the current deterministic (unperturbed) policy.

    :ivar returns: shape ``(n,)`` float64, one return per episode.
    :ivar success: shape ``(n,)`` bool, whether each episode ended with ``info["success"]``,
        or ``None`` when the environment reports no success.
    :ivar bcs: shape ``(n, bc_dim)`` float64 behaviour characterizations, or ``None``.
    :ivar agent: the meta-population member evaluated (novelty family), else ``None``.
    """

    returns: np.ndarray
    success: np.ndarray | None = None
    bcs: np.ndarray | None = None
    agent: int | None = None

    @classmethod
    def from_results(cls, results, agent: int | None = None) -> "Evaluation":
        """From :class:`~harness.workers.rollout.EpisodeResult` s (fields left ``None`` when they are)."""
        returns = np.array([r.episode_return for r in results], dtype=np.float64)
        success = None if not results or results[0].success is None else np.array([r.success for r in results])
        bcs = None if not results or results[0].bc is None else np.stack([r.bc for r in results])
        return cls(returns, success, bcs, agent)


class Trainer(Protocol):
    """One algorithm, advanced one epoch at a time by :class:`harness.runner.Runner`."""

    def train_epoch(self, epoch: int) -> EpochResult:
        """Run epoch number ``epoch`` (1-based): collect experience and update once."""

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """``n_episodes`` episodes of the current deterministic policy; no statistic is updated."""

    def save(self, run_dir: Path) -> Path:
        """Write the final policy into ``run_dir``; returns its path."""

    def close(self) -> None:
        """Release workers and environments."""
