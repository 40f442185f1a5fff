"""VO: variational optimization with a learned sigma.

Staines & Barber 2012, "Variational Optimization" (arXiv 1212.4507); Sehnke et al. 2010,
"Parameter-exploring policy gradients" (PGPE). For the search distribution
``p = N(mu, diag(sigma^2))`` the expected fitness ``J(mu, sigma) = E_p[F]`` is smooth in both
``mu`` and ``sigma`` even where ``F`` is not, and ``max F >= J``: VO ascends ``J`` in both.
ES is VO with ``sigma`` fixed.

Both gradients come from the same mirrored samples ``x = mu +- sigma * eps`` with the
score-function estimator; with centered-rank utilities ``u+``, ``u-`` of a pair (so the
baseline is 0):

* ``mu``: ES's step, unchanged (:meth:`OpenAIESBase.step_mean`: the starter's
  ``g = 1/n sum (u+ - u-) eps`` minus weight decay, through any harness optimizer);
* ``sigma``: per parameter, ``s_i = 1/m sum_j (u_j+ + u_j-)/2 * (eps_ji^2 - 1)``, the
  estimate of ``dJ/dlog sigma_i`` (``E[u (eps_i^2 - 1)]``; ``dJ/dsigma_i`` is that over
  ``sigma_i``). With one shared sigma, ``s`` is the mean of the ``s_i`` over parameters:
  ``dJ/dlog sigma / d``, so ``sigma_learning_rate`` means the same per parameter in both modes.

  ``sigma_param: log`` steps in log space, ``sigma <- sigma * exp(lr_sigma * s)``;
  ``linear`` in sigma space, ``sigma <- sigma + lr_sigma * s / sigma`` (plain gradient ascent).

Safeguards the reference implementations found necessary, applied in this order:

1. the relative change of sigma per epoch is capped at ``sigma_max_change`` (0.2): estool's
   PEPG ``sigma_max_change`` ("for stability, don't let sigma move more than 20%"), evosax's
   PGPE ``sigma_max_change`` and evotorch's PGPE ``stdev_max_change``, all 0.2;
2. sigma is kept in ``[sigma_min, sigma_max]``: evotorch's ``stdev_min``/``stdev_max``
   bounds, and evosax's / estool's ``sigma_limit`` (a floor of 0.01 there). A floor keeps the
   ``1/sigma`` of the estimators finite; a ceiling stops sigma from blowing up on a flat
   landscape where the ranks are noise.

The mu optimizer is any of ``adam``, ``sgd`` or ``clipup`` (evotorch's PGPE default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.es import checks
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.strategies.base import Metrics
from harness.es.strategies.openai_es import ESState, OpenAIESBase, OpenAIESConfig

SIGMA_PARAMS = ("log", "linear")
SIGMA_MODES = ("shared", "per_param")


@dataclass(frozen=True, kw_only=True)
class VOState(ESState):
    """ES's state plus ``sigma``: shape ``()`` (``shared``) or ``(d,)`` (``per_param``), float64."""

    sigma: np.ndarray


@dataclass(frozen=True, kw_only=True)
class VOConfig(OpenAIESConfig):
    """VO's hyperparameters: OpenAI-ES's (``sigma`` is the initial sigma) plus the sigma update's,
    each declared once (defaults and comments in ``conf/algo/vo.yaml``).

    :param sigma_learning_rate: step size of the sigma update, >= 0 (0 freezes sigma: the ablation
        "VO without its sigma step", whose rows are ES's).
    :param sigma_param: ``log`` or ``linear`` (module docstring).
    :param sigma_mode: ``shared`` (one sigma) or ``per_param`` (one per parameter).
    :param sigma_max_change: cap on ``|sigma_new / sigma - 1|`` per epoch, in ``(0, 1)``.
    :param sigma_min, sigma_max: bounds, ``0 < sigma_min <= sigma <= sigma_max``.
    ``antithetic`` must be true: the sigma estimator pairs ``u+`` and ``u-``.
    :raises ValueError: naming the key, for a value of the wrong type or out of range.
    """

    sigma_learning_rate: float
    sigma_param: str
    sigma_mode: str
    sigma_max_change: float
    sigma_min: float
    sigma_max: float

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.check(
            self.antithetic is True,
            "algo.antithetic must be true for VO: the sigma estimator averages the utilities of each mirrored pair",
        )
        lr = self.sigma_learning_rate
        checks.check(
            checks.is_number(lr) and 0 <= lr < float("inf"),
            f"algo.sigma_learning_rate must be a finite number >= 0 (0: sigma stays at its initial value, "
            f"VO's update is ES's), got {lr!r}",
        )
        checks.one_of("algo.sigma_param", self.sigma_param, SIGMA_PARAMS)
        checks.one_of("algo.sigma_mode", self.sigma_mode, SIGMA_MODES)
        checks.in_range("algo.sigma_max_change", self.sigma_max_change, 0, 1, "()")
        checks.positive("algo.sigma_min", self.sigma_min)
        checks.positive("algo.sigma_max", self.sigma_max)
        checks.check(
            self.sigma_min <= self.sigma_max,
            f"algo.sigma_min ({self.sigma_min}) must not exceed algo.sigma_max ({self.sigma_max})",
        )
        checks.check(
            self.sigma_min <= self.sigma <= self.sigma_max,
            f"the initial algo.sigma ({self.sigma}) must lie in [algo.sigma_min, algo.sigma_max] "
            f"= [{self.sigma_min}, {self.sigma_max}]",
        )


class VO(OpenAIESBase[VOState]):
    """A search distribution with learned sigma, mirrored sampling, fitness maximised (Gaussian
    with the default noise table: the module docstring's formulas). ES's mean step
    (:meth:`OpenAIESBase.step_mean`) plus the sigma step.

    :param config: the hyperparameters (:class:`VOConfig`). Other parameters as :class:`OpenAIESBase`.
    """

    def __init__(self, num_params: int, noise: NoiseTable, optimizer: Optimizer[Any], config: VOConfig) -> None:
        super().__init__(num_params, noise, optimizer, config)
        self.config: VOConfig = config

    def init(self, params: np.ndarray) -> VOState:
        """The state at ``params`` (shape ``(d,)``) with a fresh optimizer state and ``sigma`` at
        ``algo.sigma``, shape ``()`` (``shared``) or ``(d,)`` (``per_param``)."""
        params = np.asarray(params, dtype=np.float64)
        shape = () if self.config.sigma_mode == "shared" else params.shape
        return VOState(
            params=params,
            generation=0,
            opt=self.optimizer.init(params.size),
            sigma=np.full(shape, float(self.config.sigma)),
        )

    def ask(self, state: VOState, rng: np.random.Generator) -> Population:
        """``population_size / 2`` mirrored pairs around the mean at the state's ``sigma`` (a float when
        shared), their noise-table offsets drawn from ``rng``."""
        offsets = self.noise.sample_offsets(rng, self.num_params, self.config.population_size // 2)
        sigma = float(state.sigma) if state.sigma.ndim == 0 else state.sigma
        return Population.around(state.params, sigma, offsets, True)

    def sigma_gradient(self, population: Population, shaped: np.ndarray) -> np.ndarray:
        """The estimate ``s`` of ``dJ/dlog sigma`` (per parameter, shape ``(d,)``) or of
        ``dJ/dlog sigma / d`` (shared, shape ``()``); see the module docstring.

        :param shaped: utilities of the mirrored pairs, shape ``(m, 2)``.
        """
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64, reuse=True)
        pair_mean = shaped.mean(axis=1)  # (u+ + u-) / 2, shape (m,)
        # in place: a buffer of the noise table's, free until its next batch
        score = self.distribution.log_sigma_score(eps, out=eps)
        s = pair_mean @ score / len(pair_mean)
        return np.asarray(s.mean()) if self.config.sigma_mode == "shared" else s

    def new_sigma(self, sigma: np.ndarray, s: np.ndarray) -> np.ndarray:
        """One sigma step from the estimate ``s``, then the change cap, then the bounds."""
        c = self.config
        lr, max_change = float(c.sigma_learning_rate), float(c.sigma_max_change)
        if c.sigma_param == "log":
            proposed = sigma * np.exp(lr * s)
        else:
            proposed = sigma + lr * s / sigma
        capped = np.clip(proposed, sigma * (1 - max_change), sigma * (1 + max_change))
        return np.clip(capped, float(c.sigma_min), float(c.sigma_max))

    def update(self, state: VOState, population: Population, shaped: np.ndarray) -> tuple[VOState, Metrics]:
        """ES's mean step (:meth:`OpenAIESBase.step_mean`) at the current ``sigma``, then :meth:`new_sigma`
        from :meth:`sigma_gradient` of the same samples. Adds ``sigma_mean``, ``sigma_min``, ``sigma_max`` and
        ``sigma_at_bound`` (the fraction of sigmas at ``algo.sigma_min`` or ``algo.sigma_max``) to the metrics."""
        new_state, metrics = self.step_mean(state, population, shaped)
        sigma = self.new_sigma(state.sigma, self.sigma_gradient(population, shaped))
        at_bound = (sigma <= float(self.config.sigma_min)) | (sigma >= float(self.config.sigma_max))
        metrics.update(
            sigma_mean=float(sigma.mean()),
            sigma_min=float(sigma.min()),
            sigma_max=float(sigma.max()),
            sigma_at_bound=float(np.mean(at_bound)),
        )
        return dataclasses.replace(new_state, sigma=sigma), metrics

    def notices(self, metrics: Metrics) -> list[str]:
        """A sigma held at a bound (``sigma_min``/``sigma_max`` of the update's metrics at
        ``algo.sigma_min``/``algo.sigma_max``): a fact the run's log should state once."""
        low, high = float(self.config.sigma_min), float(self.config.sigma_max)
        return [
            f"VO: sigma reached algo.{name}={bound:g}; it is held there (further hits are not logged)"
            for name, bound, hit in (
                ("sigma_min", low, metrics["sigma_min"] <= low),
                ("sigma_max", high, metrics["sigma_max"] >= high),
            )
            if hit
        ]
