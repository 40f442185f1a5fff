"""OpenAI-ES: Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution Strategies as a
Scalable Alternative to Reinforcement Learning" (arXiv 1703.03864), Algorithm 2.

Per generation: draw ``m`` offsets into the shared noise table, evaluate the ``n = 2m``
mirrored episodes ``theta +- sigma eps_j``, replace returns by centered ranks ``u``, and take
an optimizer step on

    g - weight_decay * theta,   g = 1/n sum_j (u_j+ - u_j-) eps_j

exactly as the OpenAI starter (``es_distributed/es.py``: ``g /= returns_n2.size`` then
``optimizer.update(-g + l2coeff * theta)``, a minimiser). ``g`` is ``sigma`` times the
estimate of the smoothed objective's gradient (Salimans et al. Eq. 2, which divides by
``sigma``); the starter never divides by ``sigma``, and the paper's L2 coefficient 0.005 is
relative to this ``g``. So ``algo.weight_decay`` is the paper's coefficient, and an SGD
learning rate means what it means in the starter. Adam only sees the ratio of the two terms.

Curvature (``algo.curvature``, ``algo.precondition``), from the same samples, no extra episode:
by Stein's identity applied twice, ``E[F(mu + sigma eps) psi(eps_i)] = sigma^2 E[d^2F/dx_i^2]``
with ``psi = f''/f`` of the noise density (``eps_i^2 - 1`` for the Gaussian), so

    h_i = 1/(m sigma^2) sum_j (ubar_j - mean(ubar)) psi(eps_ji),   ubar_j = (u_j+ + u_j-) / 2

estimates the diagonal of the (shaped, smoothed) objective's Hessian; the mirrored pair's mean keeps
the even part of ``F``, which is all ``psi`` sees, and the baseline only lowers the variance. It is
logged as ``curvature_mean``/``_min``/``_max``. ``algo.precondition=true`` then steps on
``grad J / max(|h|, floor)`` (a diagonal Newton step in parameter units, with ``|h|`` as in
saddle-free Newton, Dauphin et al. 2014, so that a direction of positive curvature is not climbed
backwards), ``floor = algo.curvature_floor * max |h|``, which bounds the step ratio between
coordinates and keeps it finite; a zero estimate leaves the gradient as it is. The optimizer
receives that step in place of the starter's ``g`` (``learning_rate`` 1 with ``sgd`` and momentum
0 is a full Newton step; Adam would undo most of the scaling, being per-coordinate itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from harness.es import checks
from harness.es.distributions import Distribution
from harness.es.gradient import antithetic_gradient, vanilla_gradient
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.shaping import FITNESS_SHAPINGS
from harness.es.strategies.base import Metrics, S, Strategy, StrategyState


@dataclass(frozen=True, kw_only=True)
class ESState(StrategyState):
    """Mean parameters, generation count and the optimizer's state."""

    opt: object  # the optimizer's own state (e.g. AdamState)


#: the state of a strategy that takes ES's mean step (:meth:`OpenAIESBase.step_mean`): an :class:`ESState`
E = TypeVar("E", bound=ESState)


#: a config class: :meth:`OpenAIESConfig.from_algo` of a subclass makes that subclass
C = TypeVar("C", bound="OpenAIESConfig")


@dataclass(frozen=True, kw_only=True)
class OpenAIESConfig:
    """OpenAI-ES's hyperparameters, each declared once: its type and range here, checked when the
    config is made; its default and comment in ``conf/algo/es.yaml`` (a test holds the two to the
    same keys). Field names are the ``algo.*`` keys.

    :param population_size: episodes per generation, both members of a pair counted (even with
        ``antithetic``), >= 2.
    :param sigma: perturbation scale (parameter units), > 0.
    :param weight_decay: L2 coefficient relative to the starter's ``g`` (module docstring), >= 0;
        Salimans et al. used 0.005.
    :param antithetic: mirrored sampling.
    :param fitness_shaping: ``centered_ranks`` or ``none``.
    :param curvature: estimate the diagonal curvature every generation and log it (module docstring).
    :param precondition: step on the gradient divided by the curvature's magnitude (implies the estimate).
    :param curvature_floor: the floor of ``|h|``, relative to its largest entry, in ``(0, 1]``.
    :raises ValueError: naming the key, for a value of the wrong type or out of range.
    """

    population_size: int
    sigma: float
    weight_decay: float
    antithetic: bool
    fitness_shaping: str
    curvature: bool
    precondition: bool
    curvature_floor: float

    def __post_init__(self) -> None:
        pop = self.population_size
        checks.integer("algo.population_size", pop, 2)
        checks.boolean("algo.antithetic", self.antithetic)
        checks.check(
            not (self.antithetic and pop % 2),
            f"algo.population_size must be even with antithetic sampling (pairs +eps, -eps), got {pop}",
        )
        checks.positive("algo.sigma", self.sigma)
        checks.check(
            checks.is_number(self.weight_decay) and self.weight_decay >= 0,
            f"algo.weight_decay must be a number >= 0, got {self.weight_decay!r}",
        )
        checks.one_of("algo.fitness_shaping", self.fitness_shaping, FITNESS_SHAPINGS)
        checks.boolean("algo.curvature", self.curvature)
        checks.boolean("algo.precondition", self.precondition)
        checks.in_range("algo.curvature_floor", self.curvature_floor, 0, 1, "(]")

    @classmethod
    def from_algo(cls: type[C], algo: Mapping[str, Any]) -> C:
        """The config from the ``algo`` section of a run config (any mapping, e.g. a DictConfig):
        its keys named like this class's fields; other keys are left to the trainer.

        :raises ValueError: naming a missing key, or (from the checks) a bad value.
        """
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in algo]
        checks.check(not missing, f"algo.{', algo.'.join(missing)} missing from the config")
        return cls(**{f.name: algo[f.name] for f in dataclasses.fields(cls)})


class OpenAIESBase(Strategy[S]):
    """What the OpenAI-ES family shares, generic over a strategy's state class ``S``: the noise
    table and its distribution, the optimizer, the hyperparameters, and ES's gradient estimate,
    mean step and curvature estimate. :class:`OpenAIES` is this base over :class:`ESState`; VO,
    guided ES and NetES are it over their own states, each with its own ``init``, ``ask`` and
    ``update``.

    :param noise: the shared :class:`NoiseTable`; its distribution (Gaussian by default) is the
        search distribution's, and gives the gradient's score function.
    :param optimizer: from :func:`harness.es.optimizers.make_optimizer`.
    :param config: the hyperparameters (:class:`OpenAIESConfig` or a subclass).
    """

    def __init__(self, num_params: int, noise: NoiseTable, optimizer: Optimizer[Any], config: OpenAIESConfig) -> None:
        super().__init__(num_params, config.fitness_shaping)
        self.config = config
        self.noise = noise
        self.distribution: Distribution = noise.distribution
        self.optimizer = optimizer
        if (config.curvature or config.precondition) and not self.distribution.second_order:
            raise ValueError(
                f"algo.curvature and algo.precondition need a noise with a second-order score; "
                f"algo.noise={self.distribution.name} has none (its density has a kink)"
            )

    def gradient(self, population: Population, shaped: np.ndarray) -> np.ndarray:
        """Estimate of the smoothed objective's gradient ``grad J`` (Salimans et al. Eq. 2), shape ``(d,)``."""
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64, reuse=True)
        score = self.distribution.mean_score(eps)
        if population.antithetic:
            return antithetic_gradient(shaped, score, population.sigma)
        return vanilla_gradient(shaped, score, population.sigma)

    def step_mean(self, state: E, population: Population, shaped: np.ndarray) -> tuple[E, Metrics]:
        """The mean's update, shared by the ES family: an optimizer step on the starter's
        ``g = sigma * grad J`` minus ``weight_decay * params`` (module docstring)."""
        c = self.config
        grad = self.gradient(population, shaped)
        h = self.curvature(population, shaped) if c.curvature or c.precondition else None
        if c.precondition and h is not None and np.max(np.abs(h)) > 0:
            g = grad / np.maximum(np.abs(h), float(c.curvature_floor) * np.max(np.abs(h)))  # diagonal Newton step
        else:
            g = np.asarray(population.sigma) * grad  # the starter's g: 1/n sum (u+ - u-) eps
        delta, opt = self.optimizer.step(state.opt, g - float(c.weight_decay) * state.params)
        params = state.params + delta
        param_norm = float(np.linalg.norm(state.params))
        metrics = {
            "grad_norm": float(np.linalg.norm(grad)),
            "param_norm": float(np.linalg.norm(params)),
            "update_ratio": float(np.linalg.norm(delta) / param_norm) if param_norm > 0 else float("nan"),
        }
        if h is not None:
            metrics.update(curvature_mean=float(h.mean()), curvature_min=float(h.min()), curvature_max=float(h.max()))
        return dataclasses.replace(state, params=params, opt=opt), metrics

    def curvature(self, population: Population, shaped: np.ndarray) -> np.ndarray:
        """The estimate ``h`` of the diagonal of the shaped objective's Hessian (module docstring),
        shape ``(d,)`` float64, from the generation's own samples.

        :param shaped: utilities, shape ``population.fitness_shape``.
        """
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64, reuse=True)
        u = shaped.mean(axis=1) if population.antithetic else np.asarray(shaped, dtype=np.float64)
        u = u - u.mean()
        sigma2 = np.asarray(population.sigma, dtype=np.float64) ** 2
        return (u @ self.distribution.hess_score(eps)) / (len(u) * sigma2)


class OpenAIES(OpenAIESBase[ESState]):
    """Fixed-sigma ES with mirrored sampling, fitness maximised. Parameters as :class:`OpenAIESBase`."""

    def init(self, params: np.ndarray) -> ESState:
        """The state at ``params`` (shape ``(d,)``, as float64) with a fresh optimizer state."""
        params = np.asarray(params, dtype=np.float64)
        return ESState(params=params, generation=0, opt=self.optimizer.init(params.size))

    def ask(self, state: ESState, rng: np.random.Generator) -> Population:
        """``population_size / 2`` mirrored pairs (``population_size`` single members without ``antithetic``)
        around the mean at ``algo.sigma``, their noise-table offsets drawn from ``rng``."""
        c = self.config
        m = c.population_size // 2 if c.antithetic else c.population_size
        offsets = self.noise.sample_offsets(rng, self.num_params, m)
        return Population.around(state.params, float(c.sigma), offsets, c.antithetic)

    def update(self, state: ESState, population: Population, shaped: np.ndarray) -> tuple[ESState, Metrics]:
        """ES's mean step, :meth:`OpenAIESBase.step_mean` (Salimans et al. 2017, Algorithm 2)."""
        return self.step_mean(state, population, shaped)
