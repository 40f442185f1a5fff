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
2010, PGPE). Every distribution here is scaled to unit variance, so ``sigma`` is the standard
deviation of a perturbation whatever its shape, and each uses its own score function: the
estimate of the smoothed objective's gradient ``grad J(mu) = E[F(mu + sigma eps) s(eps)] / sigma``
is unbiased for it (the Gaussian formula ``E[F eps] / sigma`` on other noise is not: on
``F(x) = x^4`` it is off by the noise's fourth moment, 6 for Laplace against the Gaussian's 3).

* :class:`Laplace` (``algo.noise=laplace``): ``f(e) = exp(-sqrt(2)|e|) / sqrt(2)``, heavier tails;
  mean score ``sqrt(2) sign(eps)``, log-sigma score ``sqrt(2)|eps| - 1``.
* :class:`StudentT` (``algo.noise=student_t``, ``algo.noise_df = nu > 2``): a Student-t of ``nu``
  degrees of freedom scaled by ``sqrt((nu - 2) / nu)``; mean score
  ``(nu + 1) eps / (nu - 2 + eps^2)``, log-sigma score ``(nu + 1) eps^2 / (nu - 2 + eps^2) - 1``.
  Its scores are bounded: an outlier perturbation weighs little.

A new distribution is one subclass here and a name in :data:`DISTRIBUTIONS`: workers, noise
table and estimators call these methods and never assume the Gaussian.

Every function here is numpy-only and pure (``log_sigma_score`` may write into ``out``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Distribution(ABC):
    """A zero-mean, unit-variance location-scale noise distribution (module docstring)."""

    #: the name ``algo.noise`` would use
    name: str = ""
    #: whether :meth:`hess_score` exists (the density is twice differentiable)
    second_order: bool = True

    @abstractmethod
    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Draw a noise table into ``out`` (1-d float32, written in place) from ``rng``."""

    def perturb(self, center: np.ndarray, sigma: float | np.ndarray, eps: np.ndarray, sign: int) -> np.ndarray:
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

    def __eq__(self, other: object) -> bool:  # a distribution is its class and its parameters (a picklable value)
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v:g}' for k, v in sorted(vars(self).items()))})"

    def hess_score(self, eps: np.ndarray) -> np.ndarray:
        """``f''(eps) / f(eps)`` per coordinate (shape as ``eps``): ``E[F(mu + sigma eps) f''/f(eps)]
        = sigma^2 E[d^2 F / dx_i^2]`` (Stein's identity twice), the curvature estimator's weight.
        ``eps^2 - 1`` for the Gaussian.

        :raises ValueError: for a distribution without one (:attr:`second_order` false).
        """
        return eps * eps - 1.0


class Gaussian(Distribution):
    """Standard normal noise: Salimans et al. 2017 (Eq. 2) and every reference implementation."""

    name = "gaussian"

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Draw standard normal entries into ``out`` (1-d float32, in place) from ``rng``, directly in float32."""
        rng.standard_normal(out=out, dtype=np.float32)


_CHUNK = 1 << 20  # entries drawn at a time where NumPy draws float64 only (no temporary of the whole table)


class Laplace(Distribution):
    """Unit-variance Laplace noise (scale ``1/sqrt(2)``): heavier tails than the Gaussian, the same
    variance. Scores in the module docstring."""

    name = "laplace"
    SCALE = 1.0 / np.sqrt(2.0)
    second_order = False  # the density has a kink at 0: f'' is a point mass there

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Draw Laplace entries of scale ``1/sqrt(2)`` (unit variance) into ``out`` (1-d float32, in place)
        from ``rng``, ``2**20`` at a time: NumPy draws them in float64 only."""
        for start in range(0, out.size, _CHUNK):
            part = out[start : start + _CHUNK]
            part[...] = rng.laplace(0.0, self.SCALE, size=part.size)

    def mean_score(self, eps: np.ndarray) -> np.ndarray:
        """``sqrt(2) sign(eps)``, same shape as ``eps`` (0 where ``eps`` is 0)."""
        return np.sqrt(2.0) * np.sign(eps)

    def log_sigma_score(self, eps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``sqrt(2)|eps| - 1`` per coordinate, same shape as ``eps``; written into ``out`` if given."""
        out = np.abs(eps, out=out)
        out *= np.sqrt(2.0)
        out -= 1.0
        return out

    def hess_score(self, eps: np.ndarray) -> np.ndarray:
        """None exists: the density has a kink at 0 (:attr:`second_order` is false).

        :raises ValueError: always, naming the noises that have one.
        """
        raise ValueError(
            "algo.noise=laplace has no second-order score (its density has a kink at 0): "
            "curvature needs gaussian or student_t noise"
        )


class StudentT(Distribution):
    """Student-t noise of ``df`` degrees of freedom scaled to unit variance (``df > 2``). Scores in
    the module docstring.

    :raises ValueError: for ``df <= 2`` (no finite variance) or a non-number (``None`` too:
        ``algo.noise_df`` left unset).
    """

    name = "student_t"

    def __init__(self, df: float | None) -> None:
        if isinstance(df, bool) or not isinstance(df, (int, float, np.integer, np.floating)) or not 2 < df < np.inf:
            raise ValueError(
                f"algo.noise_df must be a finite number > 2 (the Student-t's variance is finite only then), got {df!r}"
            )
        self.df = float(df)

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Draw Student-t entries of ``df`` degrees of freedom times ``sqrt((df - 2) / df)`` (unit variance)
        into ``out`` (1-d float32, in place) from ``rng``, ``2**20`` at a time."""
        scale = np.sqrt((self.df - 2.0) / self.df)
        for start in range(0, out.size, _CHUNK):
            part = out[start : start + _CHUNK]
            part[...] = rng.standard_t(self.df, size=part.size) * scale

    def mean_score(self, eps: np.ndarray) -> np.ndarray:
        """``(df + 1) eps / (df - 2 + eps^2)``, same shape as ``eps``: bounded, so an outlier weighs little."""
        return (self.df + 1.0) * eps / (self.df - 2.0 + eps * eps)

    def log_sigma_score(self, eps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(df + 1) eps^2 / (df - 2 + eps^2) - 1`` per coordinate, same shape as ``eps``; computed in a
        new array, then copied into ``out`` if given."""
        sq = eps * eps
        score = (self.df + 1.0) * sq / (self.df - 2.0 + sq) - 1.0
        if out is None:
            return score
        out[...] = score
        return out

    def hess_score(self, eps: np.ndarray) -> np.ndarray:
        """``f''(eps) / f(eps)`` of the scaled Student-t: ``(4 a^2 eps^2 - 2 a (c - eps^2)) / (c + eps^2)^2``
        with ``c = df - 2``, ``a = (df + 1) / 2``; same shape as ``eps``."""
        # f(e) ~ (1 + e^2 / c)^(-a), c = nu - 2, a = (nu + 1) / 2: f'/f = -2a e / (c + e^2) and
        # f''/f = (f'/f)' + (f'/f)^2 = (4 a^2 e^2 - 2a (c - e^2)) / (c + e^2)^2
        c, a = self.df - 2.0, (self.df + 1.0) / 2.0
        sq = eps * eps
        return (4.0 * a * a * sq - 2.0 * a * (c - sq)) / (c + sq) ** 2


#: ``algo.noise`` name -> distribution class
DISTRIBUTIONS: dict[str, type[Distribution]] = {"gaussian": Gaussian, "laplace": Laplace, "student_t": StudentT}


def make_distribution(name: str = "gaussian", df: float | None = None) -> Distribution:
    """The distribution ``name`` (``algo.noise``); ``df`` (``algo.noise_df``) is the Student-t's.

    :raises ValueError: for an unknown name, listing the known ones, or a bad ``df``.
    """
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {name!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    return StudentT(df) if name == "student_t" else DISTRIBUTIONS[name]()
