"""Search distributions: what a noise table holds, how a member's parameters are formed from it,
and the score functions the gradient estimators weigh the fitness with.

A member of a population is ``x = center + sign * sigma * eps``, where ``eps`` is a row of the
noise table (``eps = noise[offset : offset + d]``) and ``sign`` is +1 or -1 (mirrored sampling,
Salimans et al. 2017 Sec. 2.1), or 0 for the centre itself. For a location-scale family
``p(x) = prod_i f((x_i - mu_i) / sigma) / sigma`` the score functions at such a member are

* ``d log p / d mu = -f'(eps) / f(eps) / sigma``: :meth:`Distribution.mean_score` returns
  ``sigma`` times it (the starter's ``g`` carries no ``1/sigma``; :mod:`harness.es.gradient`
  divides);
* ``d log p / d log sigma = -1 - eps f'(eps) / f(eps)``: :meth:`Distribution.log_sigma_score`.

For the Gaussian, ``f'(e) / f(e) = -e``: the mean score is ``eps`` and the log-sigma score
``eps^2 - 1`` (Wierstra et al. 2014, "Natural Evolution Strategies", Sec. 3; Sehnke et al.
2010, PGPE). A new distribution is one subclass here and a name in :data:`DISTRIBUTIONS`:
workers, noise table and estimators call these methods and never assume the Gaussian.

Every function here is numpy-only and pure (``log_sigma_score`` may write into ``out``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Distribution(ABC):
    """A zero-mean, unit-variance location-scale noise distribution (module docstring)."""

    #: the name ``algo.noise`` would use
    name: str = ""

    @abstractmethod
    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Draw a noise table into ``out`` (1-d float32, written in place) from ``rng``."""

    def perturb(self, center: np.ndarray, sigma, eps: np.ndarray, sign: int) -> np.ndarray:
        """A member's parameters ``center + (sign * sigma) * eps``, shape ``(d,)``.

        :param center: shape ``(d,)`` float64. :param sigma: a Python float or shape ``(d,)``.
        :param eps: the member's noise, shape ``(d,)`` float32 (a table row).
        :param sign: +1 or -1; 0 returns ``center`` itself (no copy).

        The order of the operations is part of the contract: with a Python-float ``sigma`` the
        product ``(sign * sigma) * eps`` is float32 (NumPy's weak Python scalars, NEP 50), and
        every worker, the bench and the landscape figures form members with this one method, so
        a member's parameters are the same bits wherever it is evaluated.
        """
        if sign == 0:
            return center
        return center + (sign * sigma) * eps

    def mean_score(self, eps: np.ndarray) -> np.ndarray:
        """``sigma * d log p / d mu`` at the members ``eps`` (shape ``(m, d)``), same shape.
        The Gaussian's is ``eps`` itself (returned, not copied)."""
        return eps

    def log_sigma_score(self, eps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``d log p / d log sigma`` per coordinate at the members ``eps`` (shape ``(m, d)``):
        ``eps^2 - 1`` for the Gaussian. ``out`` (e.g. ``eps`` itself) receives it in place."""
        out = np.multiply(eps, eps, out=out)
        out -= 1.0
        return out


class Gaussian(Distribution):
    """Standard normal noise: Salimans et al. 2017 (Eq. 2) and every reference implementation."""

    name = "gaussian"

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        rng.standard_normal(out=out, dtype=np.float32)

    def __eq__(self, other) -> bool:
        return type(other) is Gaussian

    def __hash__(self) -> int:
        return hash(Gaussian)

    def __repr__(self) -> str:
        return "Gaussian()"


#: ``algo.noise`` name -> distribution class
DISTRIBUTIONS: dict[str, type[Distribution]] = {"gaussian": Gaussian}


def make_distribution(name: str = "gaussian") -> Distribution:
    """The distribution ``name``. :raises ValueError: for an unknown name, listing the known ones."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {name!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    return DISTRIBUTIONS[name]()
