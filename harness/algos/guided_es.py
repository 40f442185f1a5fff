"""Guided ES (Maheswaranathan et al. 2018) in the registry: its config check and its trainer. The
strategy, its formulas and how its sigma relates to OpenAI-ES's are
:class:`harness.es.strategies.guided_es.GuidedES`."""

from __future__ import annotations

from harness.algos import es
from harness.algos.evolution import build_trainer
from harness.config import require
from harness.es.strategies.guided_es import GuidedES, GuidedESConfig

#: the config dataclasses that declare this algorithm's ``algo.*`` keys
CONFIGS = (GuidedESConfig,)


def validate(cfg) -> None:
    """ES's keys, then the subspace's. :raises ConfigError: naming the key."""
    es.validate(cfg)
    es.strategy_config(GuidedESConfig, cfg.algo)
    require(not cfg.algo.get("jump_every"), "algo.jump_every is ES's and VO's; leave it 0 for guided_es")


def make_trainer(cfg):
    """Build the noise table, the :class:`GuidedES` strategy, the workers and the trainer."""
    config = es.strategy_config(GuidedESConfig, cfg.algo)
    return build_trainer(cfg, lambda d, noise, opt: GuidedES(d, noise, opt, config))
