"""Fitness shaping. Returns are maximised throughout the harness."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


FITNESS_SHAPINGS = ("centered_ranks", "none")


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Centered-rank transform of Salimans et al. 2017 (Sec. 2.1; starter ``compute_centered_ranks``).

    Each entry is replaced by its rank over all of ``x`` scaled to ``[-0.5, 0.5]``: the
    worst gets -0.5, the best +0.5. Ties share their average rank, so the result does
    not depend on the order of tied entries.

    :param x: fitness of any shape (e.g. ``(m, 2)`` antithetic pairs), finite.
    :returns: float64 array of the same shape, summing to zero.
    :raises ValueError: for fewer than two entries.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        raise ValueError(f"centered ranks need at least two values, got {x.size}")
    ranks = rankdata(x.ravel(), method="average") - 1.0  # 0 .. n-1
    return (ranks / (x.size - 1) - 0.5).reshape(x.shape)


def shape_fitness(x: np.ndarray, method: str) -> np.ndarray:
    """Apply the fitness shaping ``method`` (``"centered_ranks"`` or ``"none"``).

    :raises ValueError: for an unknown method.
    """
    if method == "centered_ranks":
        return centered_ranks(x)
    if method == "none":
        return np.asarray(x, dtype=np.float64)
    raise ValueError(f"unknown fitness shaping {method!r}; choose centered_ranks or none")
