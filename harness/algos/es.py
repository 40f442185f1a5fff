"""OpenAI-ES (Salimans et al. 2017) in the registry: its config check and its trainer. The
strategy itself is :class:`harness.es.strategies.openai_es.OpenAIES`."""

from __future__ import annotations

from omegaconf import OmegaConf

from harness.algos.evolution import build_trainer, make_optimizer_from, train_reward_shift
from harness.config import ConfigError, boolean, is_int, is_number, positive, require
from harness.envs import check_reports_success, make_env
from harness.envs.behaviour import BEHAVIOURS, behaviour
from harness.es.distributions import DISTRIBUTIONS, make_distribution
from harness.es.optimizers import OPTIMIZERS
from harness.es.strategies.openai_es import OpenAIES, OpenAIESConfig
from harness.workers.rollout import check_spaces

#: the config dataclasses that declare this algorithm's ``algo.*`` keys (the registry's contract test)
CONFIGS = (OpenAIESConfig,)


def strategy_config(cls, algo):
    """The strategy's config dataclass ``cls`` (e.g. :class:`OpenAIESConfig`) from ``algo``.

    :raises ConfigError: naming the key, from the dataclass's own checks.
    """
    try:
        return cls.from_algo(algo)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def validate(cfg, needs_bc: bool = False) -> None:
    """Check ``cfg.algo`` for OpenAI-ES, and that the environment can be made (and, with
    ``needs_bc``, give its ``env.bc``: the novelty family's check; ES itself only warns at run
    time that it writes no BCs). :raises ConfigError: naming the key."""
    algo = cfg.algo
    strategy_config(OpenAIESConfig, algo)
    if "train_survival_bonus" in algo:
        boolean(algo, "train_survival_bonus")
    positive(algo, "learning_rate")
    require(
        is_int(algo.noise_table_size, 1),
        f"algo.noise_table_size must be a positive integer, got {algo.noise_table_size!r}",
    )
    if "noise" in algo:
        require(
            algo.noise in DISTRIBUTIONS, f"algo.noise must be one of {', '.join(DISTRIBUTIONS)}, got {algo.noise!r}"
        )
        try:
            distribution = make_distribution(algo.noise, algo.get("noise_df"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        require(
            distribution.second_order or not (algo.get("curvature") or algo.get("precondition")),
            f"algo.curvature and algo.precondition need a noise with a second-order score; algo.noise="
            f"{algo.noise} has none (its density has a kink at 0): use gaussian or student_t",
        )
    jump = algo.get("jump_every", 0)
    require(is_int(jump, 0), f"algo.jump_every must be an integer >= 0 (0: no jumps), got {jump!r}")
    if jump:
        episodes = algo.get("jump_reeval_episodes")
        require(
            is_int(episodes, 1),
            f"algo.jump_reeval_episodes must be an integer >= 1 (episodes re-evaluating the "
            f"candidate and the centre), got {episodes!r}",
        )
    require(
        algo.optimizer in OPTIMIZERS, f"algo.optimizer must be one of {', '.join(OPTIMIZERS)}, got {algo.optimizer!r}"
    )
    validate_optimizer(algo)
    validate_task(cfg, needs_bc)


def validate_task(cfg, needs_bc: bool = False) -> None:
    """What every ES-family algorithm (and CMA-ES) needs of the policy and the environment: a numpy
    policy, an environment that can be made with flat Box spaces, its survival bonus if training
    leaves it out, its success flag if declared, and (``needs_bc``) its behaviour characterization.

    :raises ConfigError: naming the key."""
    algo = cfg.algo
    require(cfg.policy.name in ("linear", "mlp"), f"policy.name must be linear or mlp, got {cfg.policy.name!r}")
    positive(cfg.policy, "obs_clip")
    boolean(cfg.policy, "obs_norm")
    boolean(cfg.policy, "virtual_batch_norm")
    bins = cfg.policy.get("action_bins")
    require(
        bins is None or (is_int(bins, 0) and bins != 1),
        f"policy.action_bins must be 0 or null (continuous actions) or an integer >= 2 (values per action "
        f"component), got {bins!r}",
    )
    if cfg.policy.get("virtual_batch_norm"):
        require(
            cfg.policy.name == "mlp",
            f"policy.virtual_batch_norm=true needs policy=mlp: the {cfg.policy.name} "
            "policy has no hidden layer to normalize",
        )
        size = cfg.policy.get("reference_batch_size")
        require(is_int(size, 2), f"policy.reference_batch_size must be an integer >= 2 (observations), got {size!r}")
        keep = cfg.policy.get("reference_keep_probability")
        require(is_number(keep) and 0 < keep <= 1, f"policy.reference_keep_probability must be in (0, 1], got {keep!r}")
    if cfg.env.get("kind", "gym") == "gym":
        kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True) if cfg.env.get("kwargs") else None
        try:
            env = make_env(cfg.env.id, kwargs, cfg.env.get("max_episode_steps"))
        except Exception as exc:  # noqa: BLE001 - a wrong kwarg, a missing asset: the user's to fix, before any worker
            raise ConfigError(
                f"env.id={cfg.env.id} with env.kwargs={kwargs}: making the environment failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            check_spaces(env)
            if cfg.policy.get("action_bins"):
                import numpy as np

                space = env.action_space
                require(
                    bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))),
                    f"policy.action_bins={cfg.policy.action_bins} maps actions to evenly spaced values between "
                    f"the action space's bounds, but {cfg.env.id}'s are unbounded ({space})",
                )
            if not algo.get("train_survival_bonus", True):
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
    prefix = f"algo.optimizer_kwargs.{algo.optimizer}"
    try:
        make_optimizer_from(algo)
    except TypeError as exc:
        raise ConfigError(f"{prefix}: {exc}".replace("__init__()", algo.optimizer)) from None
    except ValueError as exc:  # a value out of range, named by the optimizer's own check
        raise ConfigError(f"{prefix}.{exc}") from None


def make_trainer(cfg):
    """Build the noise table, the strategy, the workers and the :class:`EvolutionTrainer`."""
    config = strategy_config(OpenAIESConfig, cfg.algo)
    return build_trainer(cfg, lambda d, noise, opt: OpenAIES(d, noise, opt, config))
