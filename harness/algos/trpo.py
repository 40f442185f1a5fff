"""TRPO baseline: sb3-contrib's ``TRPO`` driven one policy iteration per epoch by the Runner.

Trust Region Policy Optimization, Schulman, Levine, Moritz, Jordan & Abbeel 2015
(arXiv 1502.05477): maximise the surrogate ``E[ratio * A]`` subject to
``KL(pi_old || pi) <= target_kl``, with the natural-gradient direction from conjugate
gradient on Fisher-vector products and a backtracking line search; the value function is
fitted separately (Adam, ``n_critic_updates`` epochs of minibatches). Implementation:
``sb3_contrib.TRPO`` (``train()``), which we do not re-implement: :class:`TRPOTrainer`
calls SB3's own ``_setup_learn`` once, then per epoch ``collect_rollouts`` and ``train``,
exactly the body of ``OnPolicyAlgorithm.learn``'s loop.

Design (see also ``conf/algo/trpo.yaml``):

* **Batch vs processes.** ``algo.n_envs`` environments (a hyperparameter: the batch of
  one iteration is ``n_steps * n_envs`` steps) run on ``min(workers.n, n_envs)``
  processes: one process (``workers.n=1`` or ``workers.backend=serial``) is an in-process
  ``DummyVecEnv``; more is :class:`GroupedSubprocVecEnv`, contiguous groups of
  environments, each group a ``DummyVecEnv`` in its own process. The numbers of a run
  therefore do not depend on ``workers.n`` (tested), like ES. SB3's ``SubprocVecEnv``
  is not used because it returns float64 rewards where ``DummyVecEnv`` returns float32,
  which changes ``VecNormalize``'s reward statistics in the last bits.
* **Seeds.** Everything derives from ``cfg.seed`` through the ``TRPO`` stream:
  ``(TRPO, 0)`` gives SB3's ``seed=`` (torch initialisation and action sampling, Python
  and NumPy global RNGs), ``(TRPO, 1)`` the training environments' base seed (environment
  ``i`` first resets with ``base + i``, SB3's convention). Evaluation episode ``k`` at
  epoch ``e`` resets with ``env_seeds(seed, EVAL_ENV, e, n)[k]``.
* **Threads.** The learner sets ``torch.set_num_threads(algo.torch_threads)`` (default
  1): a 64-64 MLP on a few thousand samples gains little from intra-op threads, the
  cores are better left to the environment processes, and a fixed thread count keeps
  float reductions, hence runs, reproducible. Environment processes start with
  ``OMP_NUM_THREADS=1`` (they never run torch).
* **Evaluation** runs the deterministic policy (the Gaussian's mean, clipped to the
  action bounds) on a separate one-environment ``VecNormalize(training=False,
  norm_reward=False)`` whose observation statistics are copied from training before each
  evaluation; no statistic and no random generator of training is touched.
* **Returns** come from SB3's ``Monitor`` wrapper, below ``VecNormalize``: raw rewards.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import yaml
from omegaconf import OmegaConf
from sb3_contrib import TRPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from harness import seeding
from harness.algos.base import EpochResult, Evaluation
from harness.config import ConfigError, require
from harness.envs import check_reports_success, make_env
from harness.es import checks
from harness.workers.rollout import UnstableSimulationError, instability
from harness.workers.vec_env import GroupedSubprocVecEnv

log = logging.getLogger(__name__)

USES_POLICY = False  # the networks are algo.net_arch, not the policy group
USES_ROLLOUT_WORKERS = False  # it steps SB3's own vector environments: workers.engine=auto is gymnasium
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")
DEVICES = ("cpu", "cuda", "auto")
# metrics.csv column -> key SB3's TRPO.train() records in its logger
HEALTH_SIGNALS = {
    "kl_divergence": "train/kl_divergence_loss",  # mean KL(old || new) of the accepted step; 0 if rejected
    "line_search_success": "train/is_line_search_success",  # 1 if the line search found a step, else 0
    "explained_variance": "train/explained_variance",  # of the critic's values before this update's fit
    "value_loss": "train/value_loss",  # mean MSE of the critic over its minibatch updates
    "policy_objective": "train/policy_objective",  # surrogate E[ratio * normalized advantage] after the step
    "std": "train/std",  # mean standard deviation of the Gaussian policy (after the step)
}


# --------------------------------------------------------------------------- environments


class FailOnInstability(gym.Wrapper):
    """Raises :class:`~harness.workers.rollout.UnstableSimulationError` at the end of an episode
    during which MuJoCo reported an unstable simulation (``env.on_unstable=fail``; checked once
    per episode, from MuJoCo's warning counters, so no per-step cost beyond this layer)."""

    def step(self, action):
        """Step the environment; at an episode's end (terminated or truncated), read MuJoCo's warning
        counters since the reset.

        :raises UnstableSimulationError: if they show an instability, naming the environment.
        """
        out = self.env.step(action)
        if out[2] or out[3]:
            unstable = instability(self.env)
            if unstable:
                spec = self.env.spec
                raise UnstableSimulationError(
                    f"MuJoCo reported an unstable simulation ({unstable}) in environment "
                    f"{spec.id if spec else type(self.env.unwrapped).__name__} and reset its state mid-episode; "
                    "env.on_unstable=fail stops here"
                )
        return out


def make_monitored_env(env_cfg: dict):
    """``harness.envs.make_env`` from an ``env`` config dict, wrapped in SB3's ``Monitor``
    (whose ``info["episode"]["r"]`` is the raw, undiscounted return) over
    :class:`FailOnInstability`. Module-level so that it pickles into environment processes."""
    return Monitor(FailOnInstability(make_env(env_cfg["id"], env_cfg.get("kwargs"), env_cfg.get("max_episode_steps"))))


def make_vec_env(env_cfg: dict, n_envs: int, n_processes: int):
    """``n_envs`` monitored environments on ``n_processes`` processes (1: in this process)."""
    fns = [functools.partial(make_monitored_env, env_cfg) for _ in range(n_envs)]
    return DummyVecEnv(fns) if n_processes <= 1 else GroupedSubprocVecEnv(fns, n_processes)


def _make_eval_env(env_cfg: dict, normalize: dict | None):
    """One in-process environment, with frozen observation normalization when ``normalize``."""
    venv = make_vec_env(env_cfg, 1, 1)
    if normalize and normalize["obs"]:
        venv = VecNormalize(venv, training=False, norm_obs=True, norm_reward=False, clip_obs=normalize["clip_obs"])
    return venv


def evaluate_policy(model, eval_env, env_seeds: np.ndarray, success: bool = False) -> Evaluation:
    """Undiscounted returns of the deterministic policy, one episode per seed, shape ``(n,)``,
    and with ``success`` whether each episode's last step had ``info["success"]``.

    ``eval_env`` is a one-environment VecEnv (``VecNormalize`` in eval mode or not); each
    episode starts with ``reset(seed=env_seeds[k])``. Deterministic actions use no random
    generator, so evaluation leaves training's streams alone.
    """
    returns = np.empty(len(env_seeds), dtype=np.float64)
    succeeded = np.zeros(len(env_seeds), dtype=bool)
    for k, s in enumerate(env_seeds):
        eval_env.seed(int(s))
        obs = eval_env.reset()
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, dones, infos = eval_env.step(action)
            if dones[0]:
                returns[k] = float(infos[0]["episode"]["r"])  # Monitor: raw rewards
                succeeded[k] = bool(infos[0].get("success", False))  # the last step's info, before the auto-reset
                break
    return Evaluation(returns, succeeded if success else None)


# --------------------------------------------------------------------------- trainer


class EpisodeCollector(BaseCallback):
    """Collects the raw return (``Monitor``'s ``info["episode"]["r"]``) of every episode
    finished during a rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            ep = info.get("episode")
            if ep is not None:
                self.returns.append(float(ep["r"]))
        return True


class TRPOTrainer:
    """:class:`~harness.algos.base.Trainer` over an ``sb3_contrib.TRPO`` model.

    :param model: a TRPO model whose ``env`` is the training VecEnv (maybe ``VecNormalize``).
    :param eval_env: a one-environment VecEnv for :meth:`evaluate` (see :func:`_make_eval_env`).
    :param seed: the run seed (evaluation seeds derive from it).
    :param total_timesteps: the run's timestep budget, only for SB3's progress-remaining
        schedules (``None``: no limit, progress stays at 1).
    :param success: the environment reports ``info["success"]``; evaluations then say which
        episodes ended with it (``eval_success``).
    """

    def __init__(self, model, eval_env, seed: int, total_timesteps: int | None = None, success: bool = False) -> None:
        self.model = model
        self.eval_env = eval_env
        self.seed = int(seed)
        self.success = bool(success)
        self.total_timesteps = int(total_timesteps) if total_timesteps else None
        # A logger without outputs: we read the values train() records, then clear them.
        model.set_logger(Logger(folder=None, output_formats=[]))
        self._episodes = EpisodeCollector()
        # What OnPolicyAlgorithm.learn does before its loop: reset the envs, init the callback.
        _, self._callback = model._setup_learn(self.total_timesteps or 1, self._episodes, True, "TRPO", False)
        self._callback.on_training_start(locals(), globals())

    @property
    def steps_per_epoch(self) -> int:
        """``n_steps * n_envs``: environment steps per policy iteration."""
        return self.model.n_steps * self.model.n_envs

    def train_epoch(self, epoch: int) -> EpochResult:
        """One policy iteration: a rollout of ``n_steps * n_envs`` steps, then one ``train()``."""
        model = self.model
        self._episodes.returns = []
        done = model.collect_rollouts(model.env, self._callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        assert done, "collect_rollouts stopped early (no callback stops it here)"
        if self.total_timesteps:
            model._update_current_progress_remaining(model.num_timesteps, self.total_timesteps)
        model.train()
        values = model.logger.name_to_value
        metrics = {col: float(values[key]) if key in values else math.nan for col, key in HEALTH_SIGNALS.items()}
        model.logger.dump(step=model.num_timesteps)  # no outputs: just clears this iteration's values
        returns = np.asarray(self._episodes.returns, dtype=np.float64)
        return EpochResult(timesteps=self.steps_per_epoch, episodes=len(returns), returns=returns, metrics=metrics)

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """``n_episodes`` deterministic episodes with the current observation statistics frozen;
        seeds ``env_seeds(seed, EVAL_ENV, epoch, n)``."""
        train_env = self.model.get_env()
        if isinstance(self.eval_env, VecNormalize) and isinstance(train_env, VecNormalize):
            self.eval_env.obs_rms = copy.deepcopy(train_env.obs_rms)
        seeds = seeding.env_seeds(self.seed, seeding.EVAL_ENV, epoch, n_episodes)
        return evaluate_policy(self.model, self.eval_env, seeds, self.success)

    def save(self, run_dir: Path) -> Path:
        """Write ``model.zip`` (SB3 format) and, with normalization, ``vecnormalize.pkl``
        (SB3's pickle of the running statistics). Returns the model's path; :func:`load` reads both."""
        run_dir = Path(run_dir)
        path = run_dir / MODEL_FILE
        self.model.save(path)
        train_env = self.model.get_env()
        if isinstance(train_env, VecNormalize):
            train_env.save(str(run_dir / VECNORMALIZE_FILE))
        return path

    def save_checkpoint(self, folder: Path) -> None:
        """Write what training continues from into ``folder``: ``model.zip`` (SB3: policy, value
        network and the critic's Adam state), ``vecnormalize.pkl`` (SB3's running statistics),
        ``rng.pt`` (torch, NumPy and Python generator states) and ``counters.json``.

        Not saved: the training environments' own state in the middle of their episodes (MuJoCo
        state, time-limit counters, the Monitor's running returns, VecNormalize's running
        discounted returns). :meth:`load_checkpoint` restarts those episodes, so a resumed TRPO
        run continues from the same parameters, statistics and generators but not bit-identically.
        """
        folder = Path(folder)
        self.model.save(folder / MODEL_FILE)
        env = self.model.get_env()
        if isinstance(env, VecNormalize):
            env.save(str(folder / VECNORMALIZE_FILE))
        torch.save(
            {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
            folder / "rng.pt",
        )
        counters = {"num_timesteps": self.model.num_timesteps, "n_updates": self.model._n_updates}
        (folder / "counters.json").write_text(json.dumps(counters))

    def load_checkpoint(self, folder: Path) -> None:
        """Continue from :meth:`save_checkpoint`'s files; the training environments start new
        episodes, seeded from the stream ``(TRPO, 2, num_timesteps)``."""
        folder = Path(folder)
        model = self.model
        model.set_parameters(str(folder / MODEL_FILE), exact_match=True, device=model.device)
        env = model.get_env()
        if isinstance(env, VecNormalize):
            saved = VecNormalize.load(str(folder / VECNORMALIZE_FILE), env.venv)
            env.obs_rms, env.ret_rms = saved.obs_rms, saved.ret_rms
        counters = json.loads((folder / "counters.json").read_text())
        model.num_timesteps, model._n_updates = counters["num_timesteps"], counters["n_updates"]
        env.seed(int(seeding.env_seeds(self.seed, seeding.TRPO, (2, model.num_timesteps), 1)[0]))
        model._last_obs = env.reset()
        model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
        rng = torch.load(folder / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])

    def close(self) -> None:
        """Close the training vector environment (and its processes) and the evaluation environment."""
        env = self.model.get_env()
        if env is not None:
            env.close()
        self.eval_env.close()


class TRPOPolicy:
    """A saved TRPO policy, frozen, for evaluation: the result of :func:`load`.

    :param model: the loaded ``sb3_contrib.TRPO``. :param eval_env: as in :class:`TRPOTrainer`.
    :param seed: the run seed, for evaluation seeds.
    """

    def __init__(self, model, eval_env, seed: int) -> None:
        self.model = model
        self.eval_env = eval_env
        self.seed = int(seed)

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """As :meth:`TRPOTrainer.evaluate`: the same seeds give the same returns."""
        seeds = seeding.env_seeds(self.seed, seeding.EVAL_ENV, epoch, n_episodes)
        return evaluate_policy(self.model, self.eval_env, seeds)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action for one raw observation, shape ``(obs_dim,)`` -> ``(act_dim,)``."""
        obs = np.asarray(obs)[None]
        if isinstance(self.eval_env, VecNormalize):
            obs = self.eval_env.normalize_obs(obs)
        return self.model.predict(obs, deterministic=True)[0][0]

    def close(self) -> None:
        """Close the evaluation environment."""
        self.eval_env.close()


def load(run_dir: str | Path) -> TRPOPolicy:
    """Reload a finished (or interrupted) TRPO run for evaluation.

    Reads ``run_dir/config.yaml`` (the environment and seed), ``model.zip`` and, if
    present, ``vecnormalize.pkl`` (set to ``training=False, norm_reward=False``)::

        policy = load("results/trpo/HalfCheetah/<run>")
        returns = policy.evaluate(epoch=0, n_episodes=10).returns   # shape (10,)

    :raises FileNotFoundError: if ``model.zip`` or ``config.yaml`` is missing.
    """
    run_dir = Path(run_dir)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    model = TRPO.load(run_dir / MODEL_FILE, device="cpu")
    eval_env = make_vec_env(cfg["env"], 1, 1)
    if (run_dir / VECNORMALIZE_FILE).exists():
        eval_env = VecNormalize.load(str(run_dir / VECNORMALIZE_FILE), eval_env)
        eval_env.training = False
        eval_env.norm_reward = False
    return TRPOPolicy(model, eval_env, cfg["seed"])


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class TRPOConfig:
    """TRPO's hyperparameters (sb3-contrib's ``TRPO`` and SB3's ``VecNormalize`` and ``MlpPolicy``), each
    declared once: its type and range here, checked when the config is made; its default and comment in
    ``conf/algo/trpo.yaml``, per environment in ``conf/algo/trpo_env/`` (a test holds the YAML and these
    fields to the same keys). Field names are the ``algo.*`` keys.

    :raises ValueError: naming the key, for a value of the wrong type or out of range.
    """

    n_envs: int
    n_steps: int
    target_kl: float
    cg_max_steps: int
    cg_damping: float
    line_search_shrinking_factor: float
    line_search_max_iter: int
    sub_sampling_factor: int
    normalize_advantage: bool
    gamma: float
    gae_lambda: float
    learning_rate: float
    n_critic_updates: int
    batch_size: int
    normalize: dict  # {obs: bool, reward: bool, clip_obs: float, clip_reward: float}
    net_arch: dict  # {pi: [sizes], vf: [sizes]}
    activation: str
    ortho_init: bool
    log_std_init: float
    torch_threads: int
    device: str

    def __post_init__(self) -> None:
        for key in (
            "n_envs",
            "n_steps",
            "batch_size",
            "n_critic_updates",
            "cg_max_steps",
            "line_search_max_iter",
            "sub_sampling_factor",
            "torch_threads",
        ):
            checks.check(
                checks.is_int(getattr(self, key), 1),
                f"algo.{key} must be a positive integer, got {getattr(self, key)!r}",
            )
        batch = self.n_steps * self.n_envs
        checks.check(
            batch > 1,
            f"algo.n_steps * algo.n_envs must be > 1 (advantages are normalized over the batch), "
            f"got {self.n_steps} * {self.n_envs}",
        )
        # the policy step uses every sub_sampling_factor-th sample: ceil(batch / k) of them; advantages
        # normalized over a single sample are 0/0 = NaN (sb3-contrib's TRPO.train)
        checks.boolean("algo.normalize_advantage", self.normalize_advantage)
        policy_samples = -(-batch // self.sub_sampling_factor)
        checks.check(
            policy_samples > 1 or not self.normalize_advantage,
            f"algo.sub_sampling_factor={self.sub_sampling_factor} leaves {policy_samples} sample of the "
            f"{batch}-step batch (algo.n_steps * algo.n_envs) for the policy step, whose normalized "
            f"advantages would be NaN; use a factor below {batch} or a larger batch",
        )
        checks.positive("algo.learning_rate", self.learning_rate)
        checks.positive("algo.target_kl", self.target_kl)
        checks.in_range("algo.gamma", self.gamma, 0, 1, "(]")
        checks.in_range("algo.gae_lambda", self.gae_lambda, 0, 1, "[]")
        checks.check(
            checks.is_number(self.cg_damping) and self.cg_damping >= 0,
            f"algo.cg_damping must be >= 0, got {self.cg_damping!r}",
        )
        checks.in_range("algo.line_search_shrinking_factor", self.line_search_shrinking_factor, 0, 1, "()")
        norm = self.normalize
        checks.check(
            isinstance(norm, dict) and set(norm) == {"obs", "reward", "clip_obs", "clip_reward"},
            f"algo.normalize must be a mapping with the keys obs, reward, clip_obs and clip_reward, got {norm!r}",
        )
        for key in ("obs", "reward"):
            checks.boolean(f"algo.normalize.{key}", norm[key])
        for key in ("clip_obs", "clip_reward"):
            checks.positive(f"algo.normalize.{key}", norm[key])
        net = self.net_arch
        checks.check(
            isinstance(net, dict) and set(net) == {"pi", "vf"},
            f"algo.net_arch must be a mapping with exactly the keys pi and vf (hidden sizes of the policy and "
            f"value networks, e.g. {{pi: [64, 64], vf: [64, 64]}}), got {net!r}",
        )
        for key, sizes in net.items():
            checks.check(
                isinstance(sizes, list) and all(checks.is_int(v, 1) for v in sizes),
                f"algo.net_arch.{key} must be a list of positive integers (hidden layer sizes), got {sizes!r}",
            )
        checks.one_of("algo.activation", self.activation, ACTIVATIONS)
        checks.boolean("algo.ortho_init", self.ortho_init)
        checks.check(
            checks.is_number(self.log_std_init), f"algo.log_std_init must be a number, got {self.log_std_init!r}"
        )
        checks.one_of("algo.device", self.device, DEVICES)

    @classmethod
    def from_algo(cls, algo):
        """The config from the ``algo`` section of a run config (a mapping or DictConfig); nested
        mappings become plain dicts and lists.

        :raises ValueError: naming a missing key, or (from the checks) a bad value.
        """
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in algo]
        checks.check(not missing, f"algo.{', algo.'.join(missing)} missing from the config")
        plain = {f.name: algo[f.name] for f in dataclasses.fields(cls)}
        return cls(
            **{k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in plain.items()}
        )


#: the config dataclass that declares this algorithm's ``algo.*`` keys
CONFIGS = (TRPOConfig,)


def validate(cfg) -> None:
    """Check ``cfg.algo`` for TRPO (:class:`TRPOConfig`) and what TRPO needs of the environment and the
    workers. :raises ConfigError: naming the key."""
    try:
        config = TRPOConfig.from_algo(cfg.algo)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    require(
        cfg.env.get("on_unstable", "fail") == "fail",
        f"env.on_unstable={cfg.env.get('on_unstable')} is for the ES family (it ranks unstable episodes "
        "last in a population); TRPO supports env.on_unstable=fail only",
    )
    require(
        cfg.workers.backend != "ray",
        "workers.backend=ray runs the ES family's rollout workers; TRPO runs its "
        "environments in processes of its own: use workers.backend=process or serial",
    )
    require(
        cfg.workers.engine in ("auto", "gymnasium"),
        f"workers.engine={cfg.workers.engine} batches the ES family's rollout workers; TRPO steps its "
        "own SB3 vector environments: use workers.engine=auto or gymnasium",
    )
    kind = cfg.env.get("kind", "gym")
    require(
        kind == "gym",
        f"algo=trpo needs an environment to act in, but env={cfg.env.name} is a function "
        f"landscape (env.kind={kind}) with no observations or actions; use an ES-family "
        f"algorithm (algo=es, algo=vo) there",
    )
    require(
        config.device != "cuda" or torch.cuda.is_available(),
        "algo.device=cuda but torch sees no CUDA device on this machine (torch.cuda.is_available() is False); "
        "use algo.device=cpu (or auto)",
    )
    if cfg.env.get("success"):
        kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True) if cfg.env.get("kwargs") else None
        try:
            env = make_env(cfg.env.id, kwargs, cfg.env.get("max_episode_steps"))
        except Exception as exc:  # noqa: BLE001 - as ES's check: the user's to fix, before anything starts
            raise ConfigError(
                f"env.id={cfg.env.id} with env.kwargs={kwargs}: making the environment failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            check_reports_success(env)
        except ValueError as exc:
            raise ConfigError(f"env.id={cfg.env.id}: {exc}") from None
        finally:
            env.close()


def resolve_config(data: dict) -> dict:
    """Record the device that will run: ``device: auto`` becomes ``cuda`` or ``cpu`` (SB3's rule)."""
    if data["algo"]["device"] == "auto":
        data["algo"]["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return data


def n_processes(cfg) -> int:
    """Environment processes: ``min(workers.n, algo.n_envs)``; 1 with ``workers.backend=serial``."""
    if cfg.workers.backend == "serial" or not cfg.workers.n:
        return 1
    return max(1, min(int(cfg.workers.n), int(cfg.algo.n_envs)))


def make_trainer(cfg) -> TRPOTrainer:
    """Build the training and evaluation environments, the ``sb3_contrib.TRPO`` model and the
    :class:`TRPOTrainer`. Sets ``torch.set_num_threads(algo.torch_threads)`` for this process."""
    algo = OmegaConf.to_container(cfg.algo, resolve=True)
    env_cfg = OmegaConf.to_container(cfg.env, resolve=True)
    torch.set_num_threads(algo["torch_threads"])
    sb3_seed = int(seeding.seed_sequence(cfg.seed, seeding.TRPO, 0).generate_state(1)[0])
    env_base_seed = int(seeding.env_seeds(cfg.seed, seeding.TRPO, 1, 1)[0])
    procs = n_processes(cfg)
    if cfg.workers.n and cfg.workers.backend != "serial" and cfg.workers.n > algo["n_envs"]:
        log.info(
            "TRPO runs algo.n_envs=%d environments: using %d processes of workers.n=%d",
            algo["n_envs"],
            procs,
            cfg.workers.n,
        )

    norm = algo["normalize"]
    venv = make_vec_env(env_cfg, algo["n_envs"], procs)
    try:
        if norm["obs"] or norm["reward"]:
            venv = VecNormalize(
                venv,
                norm_obs=norm["obs"],
                norm_reward=norm["reward"],
                clip_obs=norm["clip_obs"],
                clip_reward=norm["clip_reward"],
                gamma=algo["gamma"],
            )
        activation = {
            "tanh": torch.nn.Tanh,
            "relu": torch.nn.ReLU,
            "elu": torch.nn.ELU,
            "leaky_relu": torch.nn.LeakyReLU,
        }[algo["activation"]]
        policy_kwargs = dict(
            net_arch=dict(algo["net_arch"]),
            activation_fn=activation,
            ortho_init=algo["ortho_init"],
            log_std_init=float(algo["log_std_init"]),
        )
        model = TRPO(
            "MlpPolicy",
            venv,
            learning_rate=algo["learning_rate"],
            n_steps=algo["n_steps"],
            batch_size=algo["batch_size"],
            gamma=algo["gamma"],
            cg_max_steps=algo["cg_max_steps"],
            cg_damping=algo["cg_damping"],
            line_search_shrinking_factor=algo["line_search_shrinking_factor"],
            line_search_max_iter=algo["line_search_max_iter"],
            n_critic_updates=algo["n_critic_updates"],
            gae_lambda=algo["gae_lambda"],
            normalize_advantage=algo["normalize_advantage"],
            target_kl=algo["target_kl"],
            sub_sampling_factor=algo["sub_sampling_factor"],
            policy_kwargs=policy_kwargs,
            seed=sb3_seed,
            device=algo["device"],
            verbose=0,
        )
        venv.seed(env_base_seed)  # replaces the seeds SB3 derived from sb3_seed
        eval_env = _make_eval_env(env_cfg, norm if norm["obs"] else None)
        return TRPOTrainer(model, eval_env, cfg.seed, cfg.budget.get("timesteps"), bool(env_cfg.get("success")))
    except BaseException:
        venv.close()
        raise
