"""Guided ES: Maheswaranathan, Metz, Tucker, Choi & Sohl-Dickstein 2018, "Guided evolutionary
strategies: augmenting random search with surrogate gradients" (arXiv 1806.10230), Algorithm 1,
with the subspace of the last ``k`` updates as the guiding subspace ("sample around the point a
bit in the direction of movement").

Perturbations are drawn from ``N(0, Sigma)`` with

    Sigma = alpha / n * I_n + (1 - alpha) / k * U U^T,

``U`` (``n x k``, orthonormal) a basis of the last ``k`` updates of the mean (QR), ``alpha`` in
``[0, 1]``: ``eps = sqrt(alpha / n) z + sqrt((1 - alpha) / k) U z_k`` with ``z`` a noise-table row
and ``z_k ~ N(0, I_k)`` from the generation's generator. Until an update exists, ``alpha`` is 1.
The estimator is the paper's antithetic one, which estimates ``Sigma``-weighted gradient (biased
toward the subspace, with lower variance there: the trade-off ``alpha`` sets), in the OpenAI
starter's units (:mod:`~harness.es.strategies.openai_es`)::

    g = sqrt(n) / (2m) sum_j (u_j+ - u_j-) eps_j

**Sigma.** ``tr Sigma = 1``, so a perturbation ``sigma eps`` has expected squared norm
``sigma^2``, where OpenAI-ES's ``sigma eps`` (``eps ~ N(0, I_n)``) has ``n sigma^2``: guided ES's
``sigma`` is OpenAI-ES's times ``sqrt(n)`` for perturbations of the same size. With ``alpha = 1``
and that ``sigma`` the sampling and ``g`` are OpenAI-ES's (up to floating-point rounding: the
members are formed here, not in the workers).

The members are explicit parameter vectors (``2m`` centres with ``sigma = 0`` in the
:class:`~harness.es.population.Population`, each evaluated as it is), since a mixture of table
noise and subspace noise is not one table offset; ``eps`` is recovered from them in ``update``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.es import checks
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.strategies.base import Metrics
from harness.es.strategies.openai_es import ESState, OpenAIESBase, OpenAIESConfig


@dataclass(frozen=True, kw_only=True)
class GuidedESConfig(OpenAIESConfig):
    """OpenAI-ES's keys (``sigma`` as the module docstring says) plus ``guided``: ``{k, alpha}``,
    ``k >= 1`` updates spanning the subspace, ``alpha`` in ``[0, 1]`` (1: no guidance). Defaults in
    ``conf/algo/guided_es.yaml``. :raises ValueError: naming the key."""

    guided: Mapping[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.check(self.antithetic is True, "algo.antithetic must be true for guided_es (mirrored pairs)")
        checks.check(
            isinstance(self.guided, Mapping) and {"k", "alpha"} <= set(self.guided),
            f"algo.guided must hold k and alpha, got {self.guided!r}",
        )
        checks.integer("algo.guided.k", self.guided["k"], 1, "past updates spanning the subspace")
        checks.in_range("algo.guided.alpha", self.guided["alpha"], 0, 1, "[]")
        checks.check(
            not self.curvature and not self.precondition,
            "algo.curvature and algo.precondition are OpenAI-ES's and VO's, not guided_es'",
        )
        object.__setattr__(self, "guided", {"k": int(self.guided["k"]), "alpha": float(self.guided["alpha"])})


@dataclass(frozen=True, kw_only=True)
class GuidedState(ESState):
    """ES's state plus the last ``k`` updates (``history``, shape ``(k, d)``, newest last) and how
    many of them exist yet (``filled``)."""

    history: np.ndarray
    filled: int = 0


class GuidedES(OpenAIESBase[GuidedState]):
    """Guided ES (module docstring). Parameters as :class:`OpenAIESBase`, with :class:`GuidedESConfig`."""

    def __init__(self, num_params: int, noise: NoiseTable, optimizer: Optimizer[Any], config: GuidedESConfig) -> None:
        super().__init__(num_params, noise, optimizer, config)
        self.config: GuidedESConfig = config

    def init(self, params: np.ndarray) -> GuidedState:
        """The state at ``params`` (shape ``(d,)``): a fresh optimizer state and an empty history (zeros,
        shape ``(k, d)``, ``filled = 0``)."""
        params = np.asarray(params, dtype=np.float64)
        return GuidedState(
            params=params,
            generation=0,
            opt=self.optimizer.init(params.size),
            history=np.zeros((self.config.guided["k"], params.size)),
            filled=0,
        )

    def basis(self, state: GuidedState) -> np.ndarray:
        """``U``: an orthonormal basis of the last updates, shape ``(d, r)``, ``r <= k`` (``r = 0``
        before the first update, or when every update was zero)."""
        recent = state.history[len(state.history) - state.filled :]
        if not len(recent):
            return np.zeros((self.num_params, 0))
        q, r = np.linalg.qr(recent.T)
        keep = np.abs(np.diag(r)) > 1e-12 * max(1.0, float(np.abs(r).max()))
        return q[:, keep]

    def ask(self, state: GuidedState, rng: np.random.Generator) -> Population:
        """``m = population_size / 2`` mirrored pairs as explicit members ``params +- sigma * eps``: the
        ``(2m, d)`` centres of a ``sigma = 0`` population, in fitness order (``+eps``, ``-eps`` of each pair).
        ``eps`` mixes noise-table rows and, once :meth:`basis` is not empty, ``rng``'s draws in the guiding
        subspace (module docstring)."""
        n, m = self.num_params, self.config.population_size // 2
        offsets = self.noise.sample_offsets(rng, n, m)
        z = self.noise.batch(offsets, n, np.float64)
        u = self.basis(state)
        alpha = self.config.guided["alpha"] if u.shape[1] else 1.0
        eps = np.sqrt(alpha / n) * z
        if u.shape[1]:
            eps += np.sqrt((1.0 - alpha) / u.shape[1]) * (rng.standard_normal((m, u.shape[1])) @ u.T)
        sigma = float(self.config.sigma)
        members = np.empty((2 * m, n))
        members[0::2] = state.params + sigma * eps  # fitness order: +eps, -eps of each pair
        members[1::2] = state.params - sigma * eps
        return Population(members, 0.0, np.zeros(2 * m, dtype=np.int64), False, center_index=np.arange(2 * m))

    def direction(self, state: GuidedState, population: Population, shaped: np.ndarray) -> np.ndarray:
        """``g = sqrt(n) / (2m) sum_j (u_j+ - u_j-) eps_j`` (module docstring), shape ``(d,)``. For a smooth
        ``F`` and raw fitness, ``F+ - F- = 2 sigma eps . grad F`` to first order, so ``E[g] = sqrt(n)
        sigma Sigma grad F``: the gradient weighted towards the guiding subspace.

        :param shaped: utilities in fitness order, shape ``(2m,)`` (``+eps``, ``-eps`` of each pair).
        """
        u = np.asarray(shaped, dtype=np.float64).reshape(-1, 2)
        eps = (population.centers[0::2] - state.params) / float(self.config.sigma)
        return np.sqrt(self.num_params) * ((u[:, 0] - u[:, 1]) @ eps) / u.size

    def update(self, state: GuidedState, population: Population, shaped: np.ndarray) -> tuple[GuidedState, Metrics]:
        """An optimizer step on :meth:`direction` minus ``weight_decay * params``; the step enters the
        history and the oldest leaves it. Metrics: ``grad_norm`` (``||g|| sqrt(n) / sigma``: OpenAI-ES's
        ``grad_norm`` when ``alpha = 1``, module docstring), ``param_norm``, ``update_ratio`` and ``subspace_dim`` (the
        rank of the basis this generation was sampled with)."""
        c, n = self.config, self.num_params
        sigma = float(c.sigma)
        g = self.direction(state, population, shaped)
        delta, opt = self.optimizer.step(state.opt, g - float(c.weight_decay) * state.params)
        params = state.params + delta
        history = np.vstack([state.history[1:], delta[None, :]])
        param_norm = float(np.linalg.norm(state.params))
        metrics = {
            "grad_norm": float(np.linalg.norm(g) * np.sqrt(n) / sigma),  # of the estimate of grad J, as OpenAI-ES's
            "param_norm": float(np.linalg.norm(params)),
            "update_ratio": float(np.linalg.norm(delta) / param_norm) if param_norm > 0 else float("nan"),
            "subspace_dim": int(self.basis(state).shape[1]),
        }
        return dataclasses.replace(
            state, params=params, opt=opt, history=history, filled=min(state.filled + 1, len(history))
        ), metrics
