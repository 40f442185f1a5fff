"""NetES (Adjodah et al. 2019) in the registry: its config check and its trainer. The strategy,
its formulas and sources are :class:`harness.es.strategies.netes.NetES`."""

from __future__ import annotations

from harness import seeding
from harness.algos import es
from harness.algos.evolution import build_trainer
from harness.config import ConfigError, require
from harness.es.strategies.netes import NetES, NetESConfig, make_graph

#: the config dataclasses that declare this algorithm's ``algo.*`` keys
CONFIGS = (NetESConfig,)


def validate(cfg) -> None:
    """ES's keys, then the graph's (an Erdos-Renyi graph is drawn here, so that a ``p`` too low to
    connect the agents is refused before any worker starts). :raises ConfigError: naming the key."""
    es.validate(cfg)
    config = es.strategy_config(NetESConfig, cfg.algo)
    require(
        not cfg.algo.get("jump_every"),
        "algo.jump_every is ES's and VO's: netes broadcasts instead (algo.broadcast_every); leave it 0",
    )
    try:
        make_graph(config, seeding.generator(cfg.seed, seeding.TOPOLOGY))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def make_trainer(cfg):
    """Build the noise table, the :class:`NetES` strategy (its graph from the stream ``TOPOLOGY``),
    the workers and the trainer."""
    config = es.strategy_config(NetESConfig, cfg.algo)
    return build_trainer(
        cfg, lambda d, noise, opt: NetES(d, noise, opt, config, seeding.generator(cfg.seed, seeding.TOPOLOGY))
    )
