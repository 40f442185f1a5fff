"""The ES family's core, numpy only: it imports nothing else of the harness and loads no
simulator, so a strategy can be used, tested and read on its own.

* :mod:`~harness.es.population`: a generation's members, named by centre, noise offset and sign:
  the one contract between strategies and rollout workers;
* :mod:`~harness.es.distributions`: what the noise table holds, how a member's parameters are
  formed, the score functions the estimators use;
* :mod:`~harness.es.noise`, :mod:`~harness.es.shaping`, :mod:`~harness.es.gradient`,
  :mod:`~harness.es.optimizers` (each owning its state);
* :mod:`~harness.es.strategies`: ask/tell strategies (OpenAI-ES and VO exported here; CMA-ES through pycma,
  guided ES and NetES in their own modules, imported by their trainers in :mod:`harness.algos`);
* :mod:`~harness.es.novelty`: archive, novelty and scores of the novelty family (loads scipy's
  KD-tree, so it is not imported here).

Trainers that run strategies on workers are in :mod:`harness.algos`.
"""

from harness.es.distributions import DISTRIBUTIONS, Distribution, Gaussian, Laplace, StudentT, make_distribution
from harness.es.gradient import antithetic_gradient, vanilla_gradient
from harness.es.noise import NoiseTable
from harness.es.optimizers import OPTIMIZERS, Adam, ClipUp, Nesterov, Optimizer, SGDMomentum, make_optimizer
from harness.es.population import Member, Population
from harness.es.shaping import FITNESS_SHAPINGS, centered_ranks, shape_fitness
from harness.es.strategies import VO, ESState, OpenAIES, OpenAIESConfig, Strategy, StrategyState, VOConfig, VOState

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "Gaussian",
    "Laplace",
    "StudentT",
    "make_distribution",
    "antithetic_gradient",
    "vanilla_gradient",
    "NoiseTable",
    "OPTIMIZERS",
    "Optimizer",
    "Adam",
    "SGDMomentum",
    "Nesterov",
    "ClipUp",
    "make_optimizer",
    "Member",
    "Population",
    "FITNESS_SHAPINGS",
    "centered_ranks",
    "shape_fitness",
    "Strategy",
    "StrategyState",
    "OpenAIES",
    "OpenAIESConfig",
    "ESState",
    "VO",
    "VOConfig",
    "VOState",
]
