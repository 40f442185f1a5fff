"""OpenAI-ES: Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution Strategies as a
Scalable Alternative to Reinforcement Learning" (arXiv 1703.03864), Algorithm 2.

Per generation: draw ``m`` offsets into the shared noise table, evaluate the ``n = 2m``
mirrored episodes ``theta +- sigma eps_j``, replace returns by centered ranks ``u``, and take
an optimizer step on

    g - weight_decay * theta,   g = 1/n sum_j (u_j+ - u_j-) eps_j

exactly as the OpenAI starter (``es_distributed/es.py``: ``g /= returns_n2.size`` then
``optimizer.update(-g + l2coeff * theta)``, a minimiser). ``g`` is ``sigma`` times the
estimate of the smoothed objective's gradient (Salimans et al. Eq. 2, which divides by
``sigma``); the starter never divides by ``sigma``, and the paper's L2 coefficient 0.005 is
relative to this ``g``. So ``algo.weight_decay`` is the paper's coefficient, and an SGD
learning rate means what it means in the starter. Adam only sees the ratio of the two terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness.algos.base import Population, Strategy, StrategyState
from harness.es_core.gradient import antithetic_gradient, vanilla_gradient
from harness.es_core.noise import NoiseTable
from harness.es_core.optimizers import OptState, Optimizer


@dataclass(frozen=True)
class ESState(StrategyState):
    """Mean parameters, generation count and the optimizer's state."""

    opt: OptState | None = None


class OpenAIES(Strategy):
    """Fixed-sigma Gaussian ES with mirrored sampling, fitness maximised.

    :param noise: the shared :class:`NoiseTable`.
    :param population_size: episodes per generation, both members of a pair counted
        (even when ``antithetic``).
    :param sigma: perturbation scale (parameter units).
    :param optimizer: from :func:`harness.es_core.make_optimizer`.
    :param weight_decay: L2 coefficient relative to the starter's ``g`` (module docstring);
        Salimans et al. used 0.005.
    :raises ValueError: for a population below 2, odd with ``antithetic``, or ``sigma <= 0``.
    """

    def __init__(self, num_params: int, noise: NoiseTable, population_size: int, sigma: float,
                 optimizer: Optimizer, weight_decay: float = 0.0, antithetic: bool = True,
                 fitness_shaping: str = "centered_ranks") -> None:
        super().__init__(num_params, fitness_shaping)
        if population_size < 2:
            raise ValueError(f"algo.population_size must be at least 2, got {population_size}")
        if antithetic and population_size % 2:
            raise ValueError(f"algo.population_size must be even with antithetic sampling, got {population_size}")
        if not sigma > 0:
            raise ValueError(f"algo.sigma must be positive, got {sigma}")
        self.noise = noise
        self.population_size = int(population_size)
        self.sigma = float(sigma)
        self.optimizer = optimizer
        self.weight_decay = float(weight_decay)
        self.antithetic = bool(antithetic)

    def init(self, params: np.ndarray) -> ESState:
        params = np.asarray(params, dtype=np.float64)
        return ESState(params=params, generation=0, opt=self.optimizer.init(params.size))

    def ask(self, state: ESState, rng: np.random.Generator) -> Population:
        m = self.population_size // 2 if self.antithetic else self.population_size
        offsets = self.noise.sample_offsets(rng, self.num_params, m)
        return Population(state.params, self.sigma, offsets, self.antithetic)

    def gradient(self, population: Population, shaped: np.ndarray) -> np.ndarray:
        """Estimate of the smoothed objective's gradient ``grad J`` (Salimans et al. Eq. 2), shape ``(d,)``."""
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64, reuse=True)
        if population.antithetic:
            return antithetic_gradient(shaped, eps, population.sigma)
        return vanilla_gradient(shaped, eps, population.sigma)

    def step_mean(self, state: ESState, population: Population, shaped: np.ndarray) -> tuple[ESState, dict]:
        """The mean's update, shared by the ES family: an optimizer step on the starter's
        ``g = sigma * grad J`` minus ``weight_decay * params`` (module docstring)."""
        grad = self.gradient(population, shaped)
        g = np.asarray(population.sigma) * grad  # the starter's g: 1/n sum (u+ - u-) eps
        delta, opt = self.optimizer.step(state.opt, g - self.weight_decay * state.params)
        params = state.params + delta
        param_norm = float(np.linalg.norm(state.params))
        metrics = {
            "grad_norm": float(np.linalg.norm(grad)),
            "param_norm": float(np.linalg.norm(params)),
            "update_ratio": float(np.linalg.norm(delta) / param_norm) if param_norm > 0 else float("nan"),
        }
        return dataclasses.replace(state, params=params, opt=opt), metrics

    def update(self, state: ESState, population: Population, shaped: np.ndarray) -> tuple[ESState, dict]:
        return self.step_mean(state, population, shaped)


def validate(cfg, needs_bc: bool = False) -> None:
    """Check ``cfg.algo`` for OpenAI-ES, and that the environment can be made (and, with
    ``needs_bc``, give its ``env.bc``: the novelty family's check; ES itself only warns at run
    time that it writes no BCs). :raises ConfigError: naming the key."""
    from harness.config import ConfigError, boolean, is_int, is_number, positive, require
    from harness.es_core.optimizers import OPTIMIZERS
    from harness.es_core.shaping import FITNESS_SHAPINGS

    algo = cfg.algo
    pop = algo.population_size
    require(is_int(pop, 2), f"algo.population_size must be an integer >= 2, got {pop!r}")
    boolean(algo, "antithetic")
    if "train_survival_bonus" in algo:
        boolean(algo, "train_survival_bonus")
    require(not (algo.antithetic and pop % 2),
            f"algo.population_size must be even with antithetic sampling (pairs +eps, -eps), got {pop}")
    positive(algo, "sigma")
    positive(algo, "learning_rate")
    require(is_int(algo.noise_table_size, 1), f"algo.noise_table_size must be a positive integer, got {algo.noise_table_size!r}")
    require(is_number(algo.weight_decay) and algo.weight_decay >= 0,
            f"algo.weight_decay must be a number >= 0, got {algo.weight_decay!r}")
    require(algo.optimizer in OPTIMIZERS, f"algo.optimizer must be one of {', '.join(OPTIMIZERS)}, got {algo.optimizer!r}")
    validate_optimizer(algo)
    require(algo.fitness_shaping in FITNESS_SHAPINGS,
            f"algo.fitness_shaping must be one of {', '.join(FITNESS_SHAPINGS)}, got {algo.fitness_shaping!r}")
    require(cfg.policy.name in ("linear", "mlp"), f"policy.name must be linear or mlp, got {cfg.policy.name!r}")
    positive(cfg.policy, "obs_clip")
    boolean(cfg.policy, "obs_norm")
    if cfg.env.get("kind", "gym") == "gym":
        from omegaconf import OmegaConf

        from harness.envs import check_reports_success, make_env
        from harness.envs.behaviour import BEHAVIOURS, behaviour
        from harness.workers.rollout import check_spaces

        kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True) if cfg.env.get("kwargs") else None
        try:
            env = make_env(cfg.env.id, kwargs, cfg.env.get("max_episode_steps"))
        except Exception as exc:  # a wrong kwarg, a missing asset: the user's to fix, before any worker
            raise ConfigError(f"env.id={cfg.env.id} with env.kwargs={kwargs}: making the environment failed: "
                              f"{type(exc).__name__}: {exc}") from None
        try:
            check_spaces(env)
            if not algo.get("train_survival_bonus", True):
                from harness.algos.evolution import train_reward_shift

                train_reward_shift(OmegaConf.to_container(cfg.env, resolve=True), False, env)
            if cfg.env.get("success"):
                check_reports_success(env)
            if needs_bc and cfg.env.get("bc") in BEHAVIOURS:  # an unknown name is refused elsewhere, with the list
                env.reset(seed=0)
                try:
                    behaviour(env, cfg.env.bc)  # e.g. final_xy on an env that is not a maze
                except ValueError as exc:
                    raise ValueError(f"env.bc={cfg.env.bc}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"env.id={cfg.env.id}: {exc}") from None
        finally:
            env.close()


def validate_optimizer(algo) -> None:
    """Check ``algo.optimizer_kwargs[algo.optimizer]`` by building the optimizer.

    :raises ConfigError: for an unknown key or a value out of range, naming the key.
    """
    from harness.algos.evolution import make_optimizer_from
    from harness.config import ConfigError, is_number, require

    prefix = f"algo.optimizer_kwargs.{algo.optimizer}"
    try:
        opt = make_optimizer_from(algo)
    except TypeError as exc:
        raise ConfigError(f"{prefix}: {exc}".replace("__init__()", algo.optimizer)) from None
    for key in ("momentum", "beta1", "beta2"):
        value = getattr(opt, key, 0.0)
        require(is_number(value) and 0 <= value < 1, f"{prefix}.{key} must be in [0, 1), got {value!r}")
    speed = getattr(opt, "max_speed", None)
    require(speed is None or (is_number(speed) and speed > 0),
            f"{prefix}.max_speed must be positive or null (2 * algo.learning_rate), got {speed!r}")


def make_trainer(cfg):
    """Build the noise table, the strategy, the workers and the :class:`EvolutionTrainer`."""
    from harness.algos.evolution import build_trainer

    algo = cfg.algo
    return build_trainer(cfg, lambda d, noise, opt: OpenAIES(d, noise, algo.population_size, algo.sigma, opt,
                                                             algo.weight_decay, algo.antithetic, algo.fitness_shaping))
