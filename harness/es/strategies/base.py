"""The ask/tell interface every ES-family strategy implements (evosax style).

``ask`` turns a state and a generator into a :class:`~harness.es.population.Population`;
``tell`` turns the population's fitness into a new state. **Fitness is maximised.** A strategy
holds hyperparameters only; everything that changes from one generation to the next is in its
state, a frozen dataclass of arrays (so it is checkpointed, compared and tested as a value), and
the only randomness is the generator handed to ``ask``. A strategy does no I/O: what a user
should know about an update (a bound reached, a step rejected) comes back in its metrics.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from harness.es.population import Population
from harness.es.shaping import shape_fitness

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class StrategyState:
    """The search distribution's mean ``params`` (shape ``(d,)`` float64) and generation count."""

    params: np.ndarray
    generation: int = 0


#: a strategy's own state type: each strategy reads and returns states of one class
S = TypeVar("S", bound=StrategyState)

#: what an update reports for the log: scalar metrics by name
Metrics = dict[str, float]


def check_fitness(fitness: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``fitness`` as float64 after checking its shape and finiteness.

    :raises ValueError: on a shape mismatch or a non-finite value (NaN/inf return).
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    if fitness.shape != shape:
        raise ValueError(f"fitness must have shape {shape}, got {fitness.shape}")
    if not np.all(np.isfinite(fitness)):
        bad = int((~np.isfinite(fitness)).sum())
        raise ValueError(
            f"{bad} of {fitness.size} episode returns are not finite (NaN or inf); the environment or policy diverged"
        )
    return fitness


def check_finite_state(state: DataclassInstance, prefix: str = "") -> None:
    """:raises FloatingPointError: naming the first field of ``state`` (parameters, sigma,
    optimizer moments) holding a NaN or infinite value after an update."""
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_finite_state(value, f"{prefix}{f.name}.")
        elif isinstance(value, (np.ndarray, float)) and not np.all(np.isfinite(value)):
            raise FloatingPointError(
                f"the update made {prefix}{f.name} non-finite (NaN or inf); the run stops before "
                "using it (too large a learning rate, or a diverging environment?)"
            )


class Strategy(ABC, Generic[S]):
    """Ask/tell base class, generic over the strategy's state class ``S`` (a
    :class:`StrategyState`): ``init`` makes an ``S`` and the other methods take and return one.
    ``tell`` owns the shared path: it checks the fitness shape and finiteness, shapes the fitness,
    calls the strategy's own :meth:`update`, and bumps the generation counter. Subclasses
    implement :meth:`init`, :meth:`ask` and :meth:`update`."""

    def __init__(self, num_params: int, fitness_shaping: str = "centered_ranks") -> None:
        self.num_params = int(num_params)
        self.fitness_shaping = fitness_shaping

    @abstractmethod
    def init(self, params: np.ndarray) -> S:
        """The initial state around ``params`` (shape ``(d,)``)."""

    @abstractmethod
    def ask(self, state: S, rng: np.random.Generator) -> Population:
        """The population to evaluate this generation. Uses only ``rng`` for randomness."""

    @abstractmethod
    def update(self, state: S, population: Population, shaped: np.ndarray) -> tuple[S, Metrics]:
        """New state from shaped fitness; returns it with scalar metrics for logging."""

    def evaluation_params(self, state: S) -> np.ndarray:
        """The parameters an evaluation runs, shape ``(d,)``: the mean (a multi-agent strategy picks
        one agent)."""
        return state.params

    def notices(self, metrics: Metrics) -> list[str]:
        """Facts about an update worth one line in the run's log (e.g. VO's sigma held at a
        bound), from the ``metrics`` it returned; the trainer logs each distinct one once."""
        return []

    def tell(self, state: S, population: Population, fitness: np.ndarray) -> tuple[S, Metrics]:
        """Update ``state`` with the raw ``fitness`` (episode returns) of ``population``.

        :param fitness: shape ``population.fitness_shape``, higher is better.
        :raises ValueError: on a shape mismatch or a non-finite value (NaN/inf return).
        """
        fitness = check_fitness(fitness, population.fitness_shape)
        new_state, metrics = self.update(state, population, shape_fitness(fitness, self.fitness_shaping))
        check_finite_state(new_state)
        return dataclasses.replace(new_state, generation=state.generation + 1), metrics
