"""Shared ES mathematics: noise table, fitness shaping, optimizers, gradient estimators."""

from harness.es_core.gradient import antithetic_gradient, vanilla_gradient
from harness.es_core.noise import NoiseTable
from harness.es_core.optimizers import Adam, ClipUp, Optimizer, SGDMomentum, make_optimizer
from harness.es_core.shaping import centered_ranks, shape_fitness

__all__ = [
    "NoiseTable",
    "antithetic_gradient",
    "vanilla_gradient",
    "centered_ranks",
    "shape_fitness",
    "Optimizer",
    "Adam",
    "SGDMomentum",
    "ClipUp",
    "make_optimizer",
]
