"""VO (variational optimization with a learned sigma) in the registry: its config check and
its trainer. The strategy, with its formulas and sources, is :class:`harness.es.strategies.vo.VO`."""

from __future__ import annotations

from harness.algos import es
from harness.algos.evolution import build_trainer
from harness.es.strategies.vo import VO, VOConfig

#: the config dataclasses that declare this algorithm's ``algo.*`` keys
CONFIGS = (VOConfig,)


def validate(cfg) -> None:
    """Check ``cfg.algo`` for VO: ES's keys, then the sigma update's (:class:`VOConfig`).

    :raises ConfigError: naming the key."""
    es.validate(cfg)
    es.strategy_config(VOConfig, cfg.algo)


def make_trainer(cfg):
    """Build the noise table, the :class:`VO` strategy, the workers and the trainer."""
    config = es.strategy_config(VOConfig, cfg.algo)
    return build_trainer(cfg, lambda d, noise, opt: VO(d, noise, opt, config))
