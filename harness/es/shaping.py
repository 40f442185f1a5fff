"""Fitness shaping. Returns are maximised throughout the harness."""

from __future__ import annotations

import numpy as np

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
    ranks = average_ranks(x.ravel()) - 1.0  # 0 .. n-1
    return (ranks / (x.size - 1) - 0.5).reshape(x.shape)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks ``1 .. n`` of the 1-d ``x``, ties given the mean of the ranks they span: the same
    float64 values as ``scipy.stats.rankdata(x, method="average")`` (whose algorithm this is),
    without importing scipy.stats (1.7 s), so that the ES core loads numpy alone.

    :param x: shape ``(n,)``. :returns: float64, shape ``(n,)``; exact halves or integers.
    """
    x = np.asarray(x)
    sorter = np.argsort(x, kind="mergesort")
    inverse = np.empty(sorter.size, dtype=np.intp)
    inverse[sorter] = np.arange(sorter.size, dtype=np.intp)
    ordered = x[sorter]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # where each run of ties begins
    dense = first.cumsum()[inverse]  # 1-based index of each entry's run
    bounds = np.r_[np.nonzero(first)[0], len(first)]  # runs' start positions, then n
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def shape_fitness(x: np.ndarray, method: str) -> np.ndarray:
    """Apply the fitness shaping ``method`` (``"centered_ranks"`` or ``"none"``).

    :raises ValueError: for an unknown method.
    """
    if method == "centered_ranks":
        return centered_ranks(x)
    if method == "none":
        return np.asarray(x, dtype=np.float64)
    raise ValueError(f"unknown fitness shaping {method!r}; choose centered_ranks or none")
