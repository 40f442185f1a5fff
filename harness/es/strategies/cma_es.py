"""CMA-ES, the classic evolution strategy, through pycma (the ``cma`` package): Hansen & Ostermeier
2001, "Completely Derandomized Self-Adaptation in Evolution Strategies"; Hansen 2016, "The CMA
Evolution Strategy: A Tutorial" (arXiv 1604.00772). ``diagonal`` is sep-CMA-ES (Ros & Hansen
2008, "A Simple Modification in CMA-ES Achieving Linear Time and Space Complexity"): only the
covariance's diagonal is adapted, for policies with many parameters.

pycma samples and updates; the harness evaluates. Each generation's ``lambda`` sampled parameter
vectors are the centres of a :class:`~harness.es.population.Population` with ``sigma = 0``, so
the workers evaluate each vector itself, noise-free, with the harness's observation normalization.
Fitness is maximised here and handed to pycma (a minimiser) negated; pycma ranks it itself.

Randomness: pycma draws its normal samples through its ``randn`` option, which here reads the
generator the harness hands to ``ask`` (the stream ``(STRATEGY, generation)`` of the run seed):
no global RNG, and a resumed run draws what an uninterrupted one does. The pycma object is the
strategy's state, pickled into ``CMAState.es`` (bytes as a uint8 array), so a checkpoint holds it.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.es import checks
from harness.es.population import Population
from harness.es.strategies.base import Metrics, Strategy, StrategyState

if TYPE_CHECKING:
    import cma  # untyped (no stubs): its names are Any to the type checker


@dataclass(frozen=True, kw_only=True)
class CMAESConfig:
    """CMA-ES's hyperparameters; defaults and comments in ``conf/algo/cma_es.yaml``.

    :param population_size: ``lambda``, parameter vectors per generation, >= 2.
    :param sigma: the initial step size (parameter units), > 0.
    :param diagonal: sep-CMA-ES (diagonal covariance: linear time and memory in the dimension).
    :raises ValueError: naming the key.
    """

    population_size: int
    sigma: float
    diagonal: bool

    def __post_init__(self) -> None:
        checks.integer("algo.population_size", self.population_size, 2, "parameter vectors per generation")
        checks.positive("algo.sigma", self.sigma)
        checks.boolean("algo.diagonal", self.diagonal)

    @classmethod
    def from_algo(cls, algo: Mapping[str, Any]) -> CMAESConfig:
        """The config from a run config's ``algo`` section: its keys named like this class's fields;
        other keys are ignored.

        :raises ValueError: naming a missing key, or (from the checks) a bad value.
        """
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in algo]
        checks.check(not missing, f"algo.{', algo.'.join(missing)} missing from the config")
        return cls(**{f.name: algo[f.name] for f in dataclasses.fields(cls)})


class _Randn:
    """pycma's ``randn(lam, N)``, drawn from the generator the strategy sets before each ``ask``."""

    def __init__(self) -> None:
        self.rng: np.random.Generator | None = None

    def __call__(self, *shape: int) -> np.ndarray:
        if self.rng is None:
            raise RuntimeError("CMA-ES sampled outside ask(): no generator set")
        return self.rng.standard_normal(shape)


@dataclass(frozen=True, kw_only=True)
class CMAState(StrategyState):
    """The distribution's mean ``params`` (shape ``(d,)``), the generation, and pycma's object
    pickled (``es``, uint8 array)."""

    es: np.ndarray


class CMAES(Strategy[CMAState]):
    """CMA-ES through pycma (module docstring); fitness maximised.

    :param num_params: ``d``. :param config: :class:`CMAESConfig`.
    :raises ImportError: if pycma (``cma``) is not installed.
    """

    def __init__(self, num_params: int, config: CMAESConfig) -> None:
        super().__init__(num_params, "none")  # pycma ranks the fitness itself
        import cma  # here, not at module import: optional, and the core loads numpy alone

        self._cma = cma
        self.config = config
        # (generation, pycma after ask, solutions)
        self._asked: tuple[int, cma.CMAEvolutionStrategy, np.ndarray] | None = None

    def init(self, params: np.ndarray) -> CMAState:
        """pycma's ``CMAEvolutionStrategy`` at mean ``params`` (shape ``(d,)``) with step size
        ``algo.sigma`` and ``lambda = algo.population_size``, pickled into the state: pycma's own stopping
        criteria are switched off and its normal draws go through the generator given to :meth:`ask`."""
        params = np.asarray(params, dtype=np.float64)
        randn = _Randn()
        opts = {
            "popsize": int(self.config.population_size),
            "CMA_diagonal": bool(self.config.diagonal),
            "randn": randn,
            "verbose": -9,
            "maxiter": np.inf,
            "tolfun": 0,
            "tolx": 0,
            "tolstagnation": np.inf,
            "tolflatfitness": np.inf,
            "seed": 1,
        }  # no draws through pycma's own seeding: randn is ours
        es = self._cma.CMAEvolutionStrategy(params, float(self.config.sigma), opts)
        return CMAState(params=params, generation=0, es=_dump(es))

    def ask(self, state: CMAState, rng: np.random.Generator) -> Population:
        """pycma's ``lambda`` samples, drawn from ``rng`` alone, as the ``(lambda, d)`` centres of a
        ``sigma = 0`` population (each member a sample itself, fitness shape ``(lambda,)``). The unpickled
        pycma object waits in the strategy for :meth:`update` of the same generation."""
        es = pickle.loads(state.es.tobytes())
        es.opts["randn"].rng = rng
        es.sm.randn = es.opts["randn"]  # the sampler keeps its own reference to randn
        solutions = np.asarray(es.ask(), dtype=np.float64)
        es.opts["randn"].rng = None
        self._asked = (state.generation, es, solutions)
        lam = len(solutions)
        return Population(solutions, 0.0, np.zeros(lam, dtype=np.int64), False, center_index=np.arange(lam))

    def update(self, state: CMAState, population: Population, fitness: np.ndarray) -> tuple[CMAState, Metrics]:
        """pycma's ``tell`` with the negated fitness (unshaped, shape ``(lambda,)``: pycma minimises and
        ranks), then the state at pycma's new mean with its object pickled again. Metrics: ``param_norm``,
        ``update_ratio``, ``sigma`` (pycma's step size) and ``std_min``/``std_max`` (``sigma * sqrt`` of the
        covariance's diagonal).

        :raises RuntimeError: unless :meth:`ask` was called for this state's generation (and not told yet).
        """
        if self._asked is None or self._asked[0] != state.generation:
            raise RuntimeError("CMA-ES: tell() without the matching ask() of this generation")
        _, es, solutions = self._asked
        self._asked = None
        es.tell(list(solutions), list(-np.asarray(fitness, dtype=np.float64)))  # pycma minimises
        mean = np.asarray(es.mean, dtype=np.float64).copy()
        old_norm = float(np.linalg.norm(state.params))
        stds = float(es.sigma) * np.asarray(es.sm.variances, dtype=np.float64) ** 0.5
        metrics = {
            "param_norm": float(np.linalg.norm(mean)),
            "update_ratio": float(np.linalg.norm(mean - state.params) / old_norm) if old_norm > 0 else float("nan"),
            "sigma": float(es.sigma),
            "std_min": float(stds.min()),
            "std_max": float(stds.max()),
        }
        return dataclasses.replace(state, params=mean, es=_dump(es)), metrics


def _dump(es: cma.CMAEvolutionStrategy) -> np.ndarray:
    """pycma's object pickled, as a uint8 array (:class:`CMAState`'s ``es``)."""
    return np.frombuffer(pickle.dumps(es), dtype=np.uint8).copy()
