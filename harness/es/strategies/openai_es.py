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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness.es.distributions import Distribution
from harness.es.gradient import antithetic_gradient, vanilla_gradient
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.strategies.base import Strategy, StrategyState


@dataclass(frozen=True)
class ESState(StrategyState):
    """Mean parameters, generation count and the optimizer's state."""

    opt: object = None  # the optimizer's own state (e.g. AdamState)


class OpenAIES(Strategy):
    """Fixed-sigma ES with mirrored sampling, fitness maximised.

    :param noise: the shared :class:`NoiseTable`; its distribution (Gaussian by default) is the
        search distribution's, and gives the gradient's score function.
    :param population_size: episodes per generation, both members of a pair counted
        (even when ``antithetic``).
    :param sigma: perturbation scale (parameter units).
    :param optimizer: from :func:`harness.es.optimizers.make_optimizer`.
    :param weight_decay: L2 coefficient relative to the starter's ``g`` (module docstring);
        Salimans et al. used 0.005.
    :raises ValueError: for a population below 2, odd with ``antithetic``, or ``sigma <= 0``.
    """

    def __init__(self, num_params: int, noise: NoiseTable, population_size: int, sigma: float,
                 optimizer: Optimizer, weight_decay: float = 0.0, antithetic: bool = True,
                 fitness_shaping: str = "centered_ranks") -> None:
        super().__init__(num_params, fitness_shaping)
        if population_size < 2:
            raise ValueError(f"algo.population_size must be at least 2, got {population_size}")
        if antithetic and population_size % 2:
            raise ValueError(f"algo.population_size must be even with antithetic sampling, got {population_size}")
        if not sigma > 0:
            raise ValueError(f"algo.sigma must be positive, got {sigma}")
        self.noise = noise
        self.distribution: Distribution = noise.distribution
        self.population_size = int(population_size)
        self.sigma = float(sigma)
        self.optimizer = optimizer
        self.weight_decay = float(weight_decay)
        self.antithetic = bool(antithetic)

    def init(self, params: np.ndarray) -> ESState:
        params = np.asarray(params, dtype=np.float64)
        return ESState(params=params, generation=0, opt=self.optimizer.init(params.size))

    def ask(self, state: ESState, rng: np.random.Generator) -> Population:
        m = self.population_size // 2 if self.antithetic else self.population_size
        offsets = self.noise.sample_offsets(rng, self.num_params, m)
        return Population.around(state.params, self.sigma, offsets, self.antithetic)

    def gradient(self, population: Population, shaped: np.ndarray) -> np.ndarray:
        """Estimate of the smoothed objective's gradient ``grad J`` (Salimans et al. Eq. 2), shape ``(d,)``."""
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64, reuse=True)
        score = self.distribution.mean_score(eps)
        if population.antithetic:
            return antithetic_gradient(shaped, score, population.sigma)
        return vanilla_gradient(shaped, score, population.sigma)

    def step_mean(self, state: ESState, population: Population, shaped: np.ndarray) -> tuple[ESState, dict]:
        """The mean's update, shared by the ES family: an optimizer step on the starter's
        ``g = sigma * grad J`` minus ``weight_decay * params`` (module docstring)."""
        grad = self.gradient(population, shaped)
        g = np.asarray(population.sigma) * grad  # the starter's g: 1/n sum (u+ - u-) eps
        delta, opt = self.optimizer.step(state.opt, g - self.weight_decay * state.params)
        params = state.params + delta
        param_norm = float(np.linalg.norm(state.params))
        metrics = {
            "grad_norm": float(np.linalg.norm(grad)),
            "param_norm": float(np.linalg.norm(params)),
            "update_ratio": float(np.linalg.norm(delta) / param_norm) if param_norm > 0 else float("nan"),
        }
        return dataclasses.replace(state, params=params, opt=opt), metrics

    def update(self, state: ESState, population: Population, shaped: np.ndarray) -> tuple[ESState, dict]:
        return self.step_mean(state, population, shaped)
