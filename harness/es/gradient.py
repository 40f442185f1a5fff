"""Monte Carlo estimators of the gradient of the Gaussian-smoothed objective.

For ``J(theta) = E_{eps ~ N(0, I)} F(theta + sigma * eps)``,
``grad J = E[F(theta + sigma * eps) * eps] / sigma`` (Salimans et al. 2017, Eq. 2).
"""

from __future__ import annotations

import numpy as np


def antithetic_gradient(returns_n2: np.ndarray, noise_m_d: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Mirrored-sampling estimate of ``grad J`` (Salimans et al. 2017, Sec. 2.1).

    With ``m`` pairs ``(+eps_j, -eps_j)`` and ``n = 2m`` episodes,
    ``g = 1 / (n sigma) * sum_j (F_j+ - F_j-) eps_j``.

    :param returns_n2: (shaped) fitness, shape ``(m, 2)``: column 0 for ``+eps``, column 1 for ``-eps``.
    :param noise_m_d: the ``m`` unit perturbations ``eps_j``, shape ``(m, d)``.
    :param sigma: scalar, or shape ``(d,)`` for a per-parameter scale.
    :returns: float64 array, shape ``(d,)``, the ascent direction of ``J``.
    """
    returns_n2 = np.asarray(returns_n2, dtype=np.float64)
    if returns_n2.ndim != 2 or returns_n2.shape[1] != 2 or returns_n2.shape[0] != noise_m_d.shape[0]:
        raise ValueError(f"returns_n2 must be (m, 2) with m={noise_m_d.shape[0]}, got {returns_n2.shape}")
    diff = returns_n2[:, 0] - returns_n2[:, 1]
    return (diff @ np.asarray(noise_m_d, dtype=np.float64)) / (returns_n2.size * np.asarray(sigma, dtype=np.float64))


def vanilla_gradient(returns_n: np.ndarray, noise_n_d: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Plain estimate ``g = 1 / (n sigma) * sum_i F_i eps_i`` (Salimans et al. 2017, Eq. 2).

    :param returns_n: (shaped) fitness, shape ``(n,)``; subtract a baseline (e.g. centered ranks) first.
    :param noise_n_d: the unit perturbations, shape ``(n, d)``.
    :returns: float64 array, shape ``(d,)``.
    """
    returns_n = np.asarray(returns_n, dtype=np.float64)
    if returns_n.ndim != 1 or returns_n.shape[0] != noise_n_d.shape[0]:
        raise ValueError(f"returns_n must be (n,) with n={noise_n_d.shape[0]}, got {returns_n.shape}")
    return (returns_n @ np.asarray(noise_n_d, dtype=np.float64)) / (
        returns_n.size * np.asarray(sigma, dtype=np.float64)
    )
