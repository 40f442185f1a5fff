"""A generation's population: the one contract between a strategy and the workers.

A strategy's ``ask`` names every member by the centre it perturbs, a noise-table offset and a
sign; the workers form the member's parameters with the run's
:class:`~harness.es.distributions.Distribution` (``perturb``) and return one fitness per member.
No parameter vector crosses the contract but the centres (Salimans et al. 2017, Sec. 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Member:
    """One member: ``centers[center] + (sign * sigma) * noise[offset : offset + d]``; ``sign = 0``
    is the centre itself."""

    center: int
    offset: int
    sign: int


@dataclass(frozen=True)
class Population:
    """Perturbations of one or several centres, named by noise-table offsets.

    With ``antithetic`` the population is ``m`` mirrored pairs ``c_j +- sigma * eps_j`` and its
    fitness has shape ``(m, 2)`` (column 0: ``+eps``); otherwise ``m`` members
    ``c_j + sigma * eps_j`` and fitness of shape ``(m,)``. ``c_j`` is ``centers[center_index[j]]``.

    :param centers: shape ``(k, d)`` float64, ``k >= 1`` (one per agent of a multi-agent ES).
    :param sigma: a Python float or shape ``(d,)``, shared by every centre.
    :param noise_offsets: shape ``(m,)`` int64.
    :param center_index: shape ``(m,)``, which centre each perturbation is around; ``None``:
        all around centre 0.
    :raises ValueError: for centres that are not ``(k, d)`` or a ``center_index`` of another length
        or outside ``[0, k)``.
    """

    centers: np.ndarray
    sigma: float | np.ndarray
    noise_offsets: np.ndarray
    antithetic: bool
    center_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.centers) != 2 or len(self.centers) < 1:
            raise ValueError(f"centers must have shape (k, d) with k >= 1, got {np.shape(self.centers)}")
        if self.center_index is not None:
            index = np.asarray(self.center_index)
            if index.shape != np.shape(self.noise_offsets) or (
                index.size and not 0 <= index.min() <= index.max() < len(self.centers)
            ):
                raise ValueError(
                    f"center_index must have shape {np.shape(self.noise_offsets)} with values in "
                    f"[0, {len(self.centers)}), got {index.shape}"
                )

    @classmethod
    def around(
        cls, center: np.ndarray, sigma: float | np.ndarray, noise_offsets: np.ndarray, antithetic: bool
    ) -> Population:
        """Perturbations of the one centre ``center`` (shape ``(d,)``)."""
        return cls(np.asarray(center)[None, :], sigma, noise_offsets, antithetic)

    @property
    def center(self) -> np.ndarray:
        """The centre, shape ``(d,)``, of a one-centre population.

        :raises ValueError: if there are several centres.
        """
        if len(self.centers) != 1:
            raise ValueError(f"this population has {len(self.centers)} centres; index centers instead")
        return self.centers[0]

    @property
    def signs(self) -> tuple[int, ...]:
        """``(1, -1)`` with mirrored sampling, else ``(1,)``: the fitness's columns."""
        return (1, -1) if self.antithetic else (1,)

    @property
    def fitness_shape(self) -> tuple[int, ...]:
        """``(m, 2)`` with mirrored sampling, else ``(m,)``, ``m = len(noise_offsets)``."""
        m = len(self.noise_offsets)
        return (m, 2) if self.antithetic else (m,)

    @property
    def size(self) -> int:
        """Number of members (both members of a pair counted)."""
        return int(np.prod(self.fitness_shape))

    def members(self) -> tuple[Member, ...]:
        """Every member in fitness order (row-major over ``fitness_shape``)."""
        index = np.zeros(len(self.noise_offsets), np.int64) if self.center_index is None else self.center_index
        return tuple(Member(int(c), int(off), s) for c, off in zip(index, self.noise_offsets) for s in self.signs)
