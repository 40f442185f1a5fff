"""Algorithm registry: ``algo.name`` in the config -> the module that builds its trainer.

Each module exposes ``validate(cfg)`` (raising :class:`harness.config.ConfigError`) and
``make_trainer(cfg) -> Trainer``. A new algorithm is a module here, a line below and a
``conf/algo/<name>.yaml``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import ConfigError

ALGOS = {
    "cma_es": "harness.algos.cma_es",
    "es": "harness.algos.es",
    "guided_es": "harness.algos.guided_es",
    "netes": "harness.algos.netes",
    "ns_es": "harness.algos.novelty",
    "nsr_es": "harness.algos.novelty",
    "nsra_es": "harness.algos.novelty",
    "trpo": "harness.algos.trpo",
    "vo": "harness.algos.vo",
}


def get_algo(name: str) -> ModuleType:
    """The module of algorithm ``name``.

    :raises harness.config.ConfigError: for an unknown name.
    """
    if name not in ALGOS:
        raise ConfigError(f"unknown algo.name {name!r}; available: {', '.join(sorted(ALGOS))}")
    return importlib.import_module(ALGOS[name])
