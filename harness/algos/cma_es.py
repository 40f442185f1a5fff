"""CMA-ES (pycma) in the registry: its config check and its trainer. The strategy, its sources and
how it draws its samples from the run's seed are :class:`harness.es.strategies.cma_es.CMAES`."""

from __future__ import annotations

import importlib.util

from harness.algos import es
from harness.algos.evolution import build_trainer
from harness.config import boolean, is_int, require
from harness.es.strategies.cma_es import CMAES, CMAESConfig

#: the config dataclasses that declare this algorithm's ``algo.*`` keys
CONFIGS = (CMAESConfig,)


def validate(cfg) -> None:
    """CMA-ES's keys, the noise table's size (each sampled vector is evaluated as it is: the table
    only has to be as long as the policy), and the task. :raises ConfigError: naming the key."""
    algo = cfg.algo
    require(
        importlib.util.find_spec("cma") is not None,
        "algo=cma_es needs pycma: pip install cma (make install installs it)",
    )
    es.strategy_config(CMAESConfig, algo)
    require(
        is_int(algo.noise_table_size, 1),
        f"algo.noise_table_size must be a positive integer, got {algo.noise_table_size!r}",
    )
    if "train_survival_bonus" in algo:
        boolean(algo, "train_survival_bonus")
    es.validate_task(cfg)


def make_trainer(cfg):
    """Build the (small) noise table, the :class:`CMAES` strategy, the workers and the trainer."""
    config = es.strategy_config(CMAESConfig, cfg.algo)
    return build_trainer(cfg, lambda d, noise, opt: CMAES(d, config), mean_optimizer=False)
