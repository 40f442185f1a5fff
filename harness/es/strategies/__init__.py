"""Ask/tell strategies of the ES family, each a :class:`~harness.es.strategies.base.Strategy`:
a new variation is one module here (and, to run it from the command line, a trainer entry in
:mod:`harness.algos` and a ``conf/algo/*.yaml``)."""

from harness.es.strategies.base import Strategy, StrategyState, check_finite_state, check_fitness
from harness.es.strategies.openai_es import ESState, OpenAIES, OpenAIESBase, OpenAIESConfig
from harness.es.strategies.vo import VO, VOConfig, VOState

__all__ = [
    "Strategy",
    "StrategyState",
    "check_finite_state",
    "check_fitness",
    "OpenAIES",
    "OpenAIESBase",
    "OpenAIESConfig",
    "ESState",
    "VO",
    "VOConfig",
    "VOState",
]
