"""Toy landscapes: tasks with no simulator, ``env.kind: function``.

The fitness of a parameter vector is ``-loss(x)`` (the harness maximises fitness; the
landscapes are written as losses to minimise, as in the variational-optimization
literature). One function evaluation counts as one timestep; an evaluation is the loss at
the search distribution's mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Landscape:
    """A loss over ``R^dim``.

    :ivar loss: ``x`` of shape ``(..., dim)`` -> loss of shape ``(...)`` float64 (vectorised).
    :ivar init: the default starting point, shape ``(dim,)``.
    :ivar bounds: ``(low, high)`` per dimension, the region the figures draw.
    """

    name: str
    dim: int
    loss: Callable[[np.ndarray], np.ndarray]
    init: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    description: str = ""


def _sphere(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sum(x * x, axis=-1)


LANDSCAPES: dict[str, Landscape] = {
    "sphere": Landscape("sphere", 2, _sphere, (1.0, -1.0), ((-2.0, 2.0), (-2.0, 2.0)),
                        "||x||^2: a bowl, minimum 0 at the origin (sanity checks)"),
}


def get_landscape(name: str) -> Landscape:
    """The landscape called ``name``.

    :raises ValueError: for an unknown name, listing the known ones.
    """
    if name not in LANDSCAPES:
        raise ValueError(f"unknown landscape {name!r}; available: {', '.join(sorted(LANDSCAPES))}")
    return LANDSCAPES[name]
