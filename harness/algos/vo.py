"""VO (variational optimization with a learned sigma) in the registry: its config check and
its trainer. The strategy, with its formulas and sources, is :class:`harness.es.strategies.vo.VO`."""

from __future__ import annotations

from harness.algos import es
from harness.algos.evolution import build_trainer
from harness.config import is_number, positive, require
from harness.es.strategies.vo import SIGMA_MODES, SIGMA_PARAMS, VO


def validate(cfg) -> None:
    """Check ``cfg.algo`` for VO: ES's keys, then the sigma update's. :raises ConfigError: naming the key."""
    es.validate(cfg)
    algo = cfg.algo
    require(algo.antithetic is True, "algo.antithetic must be true for VO: the sigma estimator averages the "
                                     "utilities of each mirrored pair")
    positive(algo, "sigma_learning_rate")
    require(algo.sigma_param in SIGMA_PARAMS,
            f"algo.sigma_param must be one of {', '.join(SIGMA_PARAMS)}, got {algo.sigma_param!r}")
    require(algo.sigma_mode in SIGMA_MODES,
            f"algo.sigma_mode must be one of {', '.join(SIGMA_MODES)}, got {algo.sigma_mode!r}")
    change = algo.sigma_max_change
    require(is_number(change) and 0 < change < 1, f"algo.sigma_max_change must be in (0, 1), got {change!r}")
    positive(algo, "sigma_min")
    positive(algo, "sigma_max")
    require(algo.sigma_min <= algo.sigma_max,
            f"algo.sigma_min ({algo.sigma_min}) must not exceed algo.sigma_max ({algo.sigma_max})")
    require(algo.sigma_min <= algo.sigma <= algo.sigma_max,
            f"the initial algo.sigma ({algo.sigma}) must lie in [algo.sigma_min, algo.sigma_max] "
            f"= [{algo.sigma_min}, {algo.sigma_max}]")


def make_trainer(cfg):
    """Build the noise table, the :class:`VO` strategy, the workers and the trainer."""
    a = cfg.algo
    return build_trainer(cfg, lambda d, noise, opt: VO(
        d, noise, a.population_size, a.sigma, opt, a.sigma_learning_rate, a.sigma_param, a.sigma_mode,
        a.sigma_max_change, a.sigma_min, a.sigma_max, a.weight_decay, a.fitness_shaping))
