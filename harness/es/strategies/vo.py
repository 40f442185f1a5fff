"""VO: variational optimization with a learned sigma.

Staines & Barber 2012, "Variational Optimization" (arXiv 1212.4507); Sehnke et al. 2010,
"Parameter-exploring policy gradients" (PGPE). For the search distribution
``p = N(mu, diag(sigma^2))`` the expected fitness ``J(mu, sigma) = E_p[F]`` is smooth in both
``mu`` and ``sigma`` even where ``F`` is not, and ``max F >= J``: VO ascends ``J`` in both.
ES is VO with ``sigma`` fixed.

Both gradients come from the same mirrored samples ``x = mu +- sigma * eps`` with the
score-function estimator; with centered-rank utilities ``u+``, ``u-`` of a pair (so the
baseline is 0):

* ``mu``: ES's step, unchanged (:meth:`OpenAIES.step_mean`: the starter's
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

import numpy as np

from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.strategies.openai_es import ESState, OpenAIES

SIGMA_PARAMS = ("log", "linear")
SIGMA_MODES = ("shared", "per_param")


@dataclass(frozen=True)
class VOState(ESState):
    """ES's state plus ``sigma``: shape ``()`` (``shared``) or ``(d,)`` (``per_param``), float64."""

    sigma: np.ndarray | None = None


class VO(OpenAIES):
    """Gaussian search distribution with learned sigma, mirrored sampling, fitness maximised.

    :param sigma: the initial sigma (parameter units).
    :param sigma_learning_rate: step size of the sigma update (> 0).
    :param sigma_param: ``log`` or ``linear`` (module docstring).
    :param sigma_mode: ``shared`` (one sigma) or ``per_param`` (one per parameter).
    :param sigma_max_change: cap on ``|sigma_new / sigma - 1|`` per epoch, in ``(0, 1)``.
    :param sigma_min, sigma_max: bounds, ``0 < sigma_min <= sigma <= sigma_max``.
    Other parameters as :class:`OpenAIES` (always antithetic: the sigma estimator pairs ``u+`` and ``u-``).
    :raises ValueError: for a parameter outside its range.
    """

    def __init__(self, num_params: int, noise: NoiseTable, population_size: int, sigma: float,
                 optimizer: Optimizer, sigma_learning_rate: float, sigma_param: str = "log",
                 sigma_mode: str = "shared", sigma_max_change: float = 0.2, sigma_min: float = 1e-3,
                 sigma_max: float = 1.0, weight_decay: float = 0.0, fitness_shaping: str = "centered_ranks") -> None:
        super().__init__(num_params, noise, population_size, sigma, optimizer, weight_decay, True, fitness_shaping)
        if not sigma_learning_rate > 0:
            raise ValueError(f"algo.sigma_learning_rate must be positive, got {sigma_learning_rate}")
        if sigma_param not in SIGMA_PARAMS:
            raise ValueError(f"algo.sigma_param must be one of {', '.join(SIGMA_PARAMS)}, got {sigma_param!r}")
        if sigma_mode not in SIGMA_MODES:
            raise ValueError(f"algo.sigma_mode must be one of {', '.join(SIGMA_MODES)}, got {sigma_mode!r}")
        if not 0 < sigma_max_change < 1:
            raise ValueError(f"algo.sigma_max_change must be in (0, 1), got {sigma_max_change}")
        if not 0 < sigma_min <= sigma <= sigma_max:
            raise ValueError(f"need 0 < algo.sigma_min <= algo.sigma <= algo.sigma_max, "
                             f"got {sigma_min}, {sigma}, {sigma_max}")
        self.sigma_learning_rate = float(sigma_learning_rate)
        self.sigma_param = sigma_param
        self.sigma_mode = sigma_mode
        self.sigma_max_change = float(sigma_max_change)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def init(self, params: np.ndarray) -> VOState:
        params = np.asarray(params, dtype=np.float64)
        shape = () if self.sigma_mode == "shared" else params.shape
        return VOState(params=params, generation=0, opt=self.optimizer.init(params.size),
                       sigma=np.full(shape, self.sigma))

    def ask(self, state: VOState, rng: np.random.Generator) -> Population:
        offsets = self.noise.sample_offsets(rng, self.num_params, self.population_size // 2)
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
        return np.asarray(s.mean()) if self.sigma_mode == "shared" else s

    def new_sigma(self, sigma: np.ndarray, s: np.ndarray) -> np.ndarray:
        """One sigma step from the estimate ``s``, then the change cap, then the bounds."""
        if self.sigma_param == "log":
            proposed = sigma * np.exp(self.sigma_learning_rate * s)
        else:
            proposed = sigma + self.sigma_learning_rate * s / sigma
        capped = np.clip(proposed, sigma * (1 - self.sigma_max_change), sigma * (1 + self.sigma_max_change))
        return np.clip(capped, self.sigma_min, self.sigma_max)

    def update(self, state: VOState, population: Population, shaped: np.ndarray) -> tuple[VOState, dict]:
        new_state, metrics = self.step_mean(state, population, shaped)
        sigma = self.new_sigma(state.sigma, self.sigma_gradient(population, shaped))
        at_bound = (sigma <= self.sigma_min) | (sigma >= self.sigma_max)
        metrics.update(sigma_mean=float(sigma.mean()), sigma_min=float(sigma.min()), sigma_max=float(sigma.max()),
                       sigma_at_bound=float(np.mean(at_bound)))
        return dataclasses.replace(new_state, sigma=sigma), metrics

    def notices(self, metrics: dict) -> list[str]:
        """A sigma held at a bound (``sigma_min``/``sigma_max`` of the update's metrics at
        ``algo.sigma_min``/``algo.sigma_max``): a fact the run's log should state once."""
        return [f"VO: sigma reached algo.{name}={bound:g}; it is held there (further hits are not logged)"
                for name, bound, hit in (("sigma_min", self.sigma_min, metrics["sigma_min"] <= self.sigma_min),
                                         ("sigma_max", self.sigma_max, metrics["sigma_max"] >= self.sigma_max))
                if hit]
