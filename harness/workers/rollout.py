"""What a worker runs: objectives that turn a parameter vector into an :class:`EpisodeResult`,
one episode at a time, each named by an :class:`EpisodeSpec` (the worker itself, and the
``mujoco`` engine that runs a batch at once, are :mod:`harness.workers.worker`).

Two kinds of objective (``env.kind`` in the config):

* :class:`EnvObjective` (``gym``): one episode of a numpy policy in a Gymnasium environment;
* :class:`FunctionObjective` (``function``): a landscape with no simulator, where the fitness of a
  parameter vector is ``-loss(params)`` and one "episode" is one function evaluation
  (length 1), so runner, trainers and tracking are the same for both.

A worker keeps its objective and noise table alive across generations. It receives the centres'
parameters once per chunk and, per episode, a centre index, a noise offset, a sign and an
environment seed, and forms the episode's parameters with the run's search distribution
(:meth:`~harness.es.distributions.Distribution.perturb`);
it sends back the return, the length, the episode's observation statistics and, when the
environment declares them, its behaviour characterization and success flag. Everything random
comes from the seed it is handed, never from which worker it is, so an episode lost with its
worker can be re-run elsewhere with the same result. An exception raised by the environment
becomes an :class:`EpisodeError` naming the episode (:func:`describe_episode`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from gymnasium import Wrapper
from gymnasium.wrappers import OrderEnforcing, TimeLimit

from harness.envs import make_env
from harness.envs.behaviour import behaviour as characterize
from harness.envs.landscapes import get_landscape
from harness.es.distributions import Distribution
from harness.es.noise import NoiseTable
from harness.policies import Policy, RunningStat, make_policy
from harness.shm import ArrayRef, Attachments


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode: parameters ``centers[center] + (sign * sigma) * noise[offset : offset + d]``
    (the distribution's :meth:`~harness.es.distributions.Distribution.perturb`).

    ``sign = 0`` (and any offset) evaluates the centre itself.

    ``params`` (shape ``(d,)`` float64), when given, are the episode's parameters themselves, already
    formed by the coordinator (``workers.ship=vectors``, :func:`with_vectors`): the worker runs them and
    reads no noise. ``None`` (the default, ``workers.ship=seeds``): the worker forms them from the
    centre, the offset and the sign.
    """

    offset: int
    sign: int
    env_seed: int
    center: int = 0
    params: np.ndarray | None = field(default=None, compare=False, repr=False)


class EpisodeError(RuntimeError):
    """An environment (or landscape) raised a Python exception inside an episode.

    Deterministic, since an episode is a pure function of its task: it is never retried. The
    message names the environment id, the episode seed and the perturbation (see
    :func:`describe_episode`); the original exception is the ``__cause__`` (in a worker
    process, a copy of its traceback is).
    """

    @classmethod
    def of(cls, env_id: str, task: EpisodeSpec, exc: BaseException) -> EpisodeError:
        """The error for ``exc`` raised in episode ``task`` of environment ``env_id``: its type and
        message, the episode (:func:`describe_episode`) and that it is not retried. The caller chains ``exc``."""
        return cls(
            f"{type(exc).__name__}: {exc} (in {describe_episode(env_id, task)}; "
            "an exception raised by the environment is not retried)"
        )


def describe_episode(env_id: str, task: EpisodeSpec) -> str:
    """``"environment Hopper-v5, episode seed 12, perturbation noise offset 345, sign -1"``
    (``"unperturbed parameters"`` for ``sign = 0``): enough to re-run that one episode."""
    what = (
        "unperturbed parameters" if task.sign == 0 else f"perturbation noise offset {task.offset}, sign {task.sign:+d}"
    )
    if task.center:
        what = f"centre {task.center}, {what}"
    return f"environment {env_id}, episode seed {task.env_seed}, {what}"


@dataclass(frozen=True)
class Chunk:
    """Episodes that share centres, sigma and normalization: what one worker call receives.

    :param centers: shape ``(k, d)`` float64 (:attr:`harness.es.population.Population.centers`).
    :param sigma: a Python float or shape ``(d,)``.
    :param obs_mean, obs_std: frozen normalization, shape ``(obs_dim,)``.
    :param collect_obs_stats: return per-episode observation statistics (training rollouts).
    """

    centers: np.ndarray
    sigma: float | np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    episodes: tuple[EpisodeSpec, ...]
    collect_obs_stats: bool


#: The fields of a :class:`Chunk` that are arrays: a backend may send them by reference (shared
#: memory, Ray's object store) and :func:`resolve_chunk` reads them back.
CHUNK_ARRAYS = ("centers", "sigma", "obs_mean", "obs_std")


def resolve_chunk(chunk: Chunk, attachments: Attachments) -> Chunk:
    """``chunk`` with its arrays read from shared memory where a backend sent
    :class:`~harness.shm.ArrayRef` s in their place (read-only views, no copy)."""
    refs = {k: getattr(chunk, k) for k in CHUNK_ARRAYS if isinstance(getattr(chunk, k), ArrayRef)}
    if not refs:
        return chunk
    attachments.forget({r.name for r in refs.values()})
    return dataclasses.replace(chunk, **{k: attachments.array(r) for k, r in refs.items()})


def member_params(chunk: Chunk, task: EpisodeSpec, noise: NoiseTable, distribution: Distribution) -> np.ndarray:
    """The parameters episode ``task`` of ``chunk`` runs, shape ``(d,)``: its centre perturbed by
    ``distribution`` with the noise at its offset (the centre itself for ``sign = 0``), or the
    ``params`` it carries (``workers.ship=vectors``)."""
    if task.params is not None:
        return task.params
    center = chunk.centers[task.center]
    if task.sign == 0:
        return center
    return distribution.perturb(center, chunk.sigma, noise.get(task.offset, center.size), task.sign)


#: ``workers.ship``: what names an episode's parameters on the way to a worker. ``seeds``: a noise-table
#: offset and a sign (Salimans et al. 2017, Sec. 2.1: "workers ... only need to communicate scalars");
#: ``vectors``: the parameter vector itself, 8 d bytes an episode (:func:`with_vectors`), a measurement of
#: what the shared-seed trick saves (issue 32). Both give the same episodes, so the same rows.
SHIP_MODES = ("seeds", "vectors")


def with_vectors(chunk: Chunk, noise: NoiseTable, distribution: Distribution) -> Chunk:
    """``chunk`` with every episode carrying its parameters (``EpisodeSpec.params``, shape ``(d,)``
    float64), formed here as a worker would form them (:func:`member_params`), so that the workers
    receive full vectors instead of noise offsets: ``workers.ship=vectors``. The centres still travel
    with the chunk (once per worker call), as with ``seeds``. The episodes, and so the rows, are the
    same bit for bit; only the bytes and the time to form and send them differ."""
    episodes = tuple(
        dataclasses.replace(e, params=np.array(member_params(chunk, e, noise, distribution), dtype=np.float64))
        for e in chunk.episodes
    )
    return dataclasses.replace(chunk, episodes=episodes)


@dataclass(frozen=True)
class EpisodeResult:
    """One episode's outcome.

    :ivar episode_return: sum of rewards (for a :class:`FunctionObjective`, ``-loss``).
    :ivar length: timesteps (1 for a function evaluation).
    :ivar terminated: ended by termination, not truncation.
    :ivar obs_stat: the episode's observation statistics (``None`` unless collected).
    :ivar bc: behaviour characterization at the episode's end, shape ``(k,)`` float64, or
        ``None`` when the environment declares none (``env.bc``).
    :ivar success: ``info["success"]`` at the last step, or ``None`` when the environment
        reports none (``env.success``).
    :ivar unstable: the MuJoCo instability warnings raised during the episode (e.g.
        ``"BADQACC x1"``: MuJoCo then resets the state and the episode goes on with a finite
        but meaningless return), or ``None``; see ``env.on_unstable``.
    """

    episode_return: float
    length: int
    terminated: bool
    obs_stat: RunningStat | None
    bc: np.ndarray | None = None
    success: bool | None = None
    unstable: str | None = None


class NonFiniteError(ValueError):
    """An episode produced a NaN or infinite observation, reward or action."""


class UnstableSimulationError(RuntimeError):
    """MuJoCo reported an unstable simulation during an episode (``env.on_unstable=fail``)."""


#: MuJoCo's warnings that mean the simulation blew up (mjtWarning names without ``mjWARN_``).
INSTABILITY_WARNINGS = ("BADQPOS", "BADQVEL", "BADQACC", "BADCTRL")
ON_UNSTABLE = ("fail", "rank_last")


_warning_indices: tuple[tuple[str, int], ...] | None = None


def instability(env) -> str | None:
    """The MuJoCo instability warnings counted since the last reset, e.g. ``"BADQVEL x2"``, or
    ``None`` (also for an environment without MuJoCo data). ``reset`` clears MuJoCo's counters
    (``mj_resetData``), so at an episode's end they describe that episode alone."""
    global _warning_indices
    data = getattr(getattr(env, "unwrapped", env), "data", None)
    warnings = getattr(data, "warning", None)
    if warnings is None:
        return None
    if _warning_indices is None:  # looked up once per process, not once per episode
        import mujoco

        _warning_indices = tuple(
            (name, int(getattr(mujoco.mjtWarning, f"mjWARN_{name}"))) for name in INSTABILITY_WARNINGS
        )
    fired = []
    for name, index in _warning_indices:
        n = warnings[index].number
        if n:
            fired.append(f"{name} x{n}")
    return ", ".join(fired) or None


def direct_step(env):
    """``(step, max_episode_steps)``: the innermost environment's ``step`` and the
    ``TimeLimit``'s limit (``None`` without one) when the only wrappers of ``env`` are a
    ``TimeLimit`` and ``OrderEnforcing``, as ``make_env`` builds a MuJoCo task; ``(env.step,
    None)`` for any other wrapper, which then steps as usual. Each wrapper layer costs a few
    Python calls a step and adds nothing once ``env.reset`` has been called through them:
    ``OrderEnforcing`` only checks that, and ``TimeLimit`` only sets ``truncated`` when its
    count of steps since the reset reaches the limit, which :func:`run_episode` does itself.
    """
    limit, inner = None, env
    while isinstance(inner, Wrapper):
        kind = type(inner)
        if kind is TimeLimit and limit is None and isinstance(getattr(inner, "_max_episode_steps", None), int):
            limit = inner._max_episode_steps
        elif kind is not OrderEnforcing:
            return env.step, None
        inner = inner.env
    return inner.step, limit


def first_non_finite(env, policy: Policy, layers, mean, std, seed: int) -> str:
    """Replay an episode (episodes are deterministic) checking every step; where it first
    produced a non-finite value, e.g. ``"reward nan at step 7"``. Only called after an episode
    was found non-finite, so the normal path pays no per-step check."""
    obs, _ = env.reset(seed=int(seed))
    if not np.all(np.isfinite(obs)):
        return "observation not finite at reset"
    step = 0
    while True:
        action = policy.act(layers, obs, mean, std)
        if not np.all(np.isfinite(action)):
            return f"action not finite at step {step + 1} (from a finite observation: non-finite parameters?)"
        obs, reward, terminated, truncated, _ = env.step(action)
        step += 1
        if not np.isfinite(reward):
            return f"reward {reward} at step {step}"
        if not np.all(np.isfinite(obs)):
            return f"observation not finite at step {step}"
        if terminated or truncated:
            return "a non-finite value that did not come back on replay"


def run_episode(
    env,
    policy: Policy,
    params: np.ndarray,
    mean,
    std,
    seed: int,
    collect_obs: bool,
    bc: str | None = None,
    success: bool = False,
) -> EpisodeResult:
    """Roll out ``policy`` with ``params`` for one episode from ``env.reset(seed=seed)``.

    The episode ends on termination or on the environment's own truncation (TimeLimit). It
    steps past the wrappers that add nothing (:func:`direct_step`) and computes actions with
    :meth:`Policy.actor`: the return, length, observations and statistics are, bit for bit,
    those of ``env.step`` with :meth:`Policy.act` (``tests/test_rollout_identity.py``).
    :param bc: the behaviour characterization to compute at the end
        (:func:`harness.envs.behaviour.behaviour`), or ``None``.
    :param success: read ``info["success"]`` at the last step.
    :raises NonFiniteError: if the return or the last observation is NaN or infinite, naming
        the step where the first non-finite value appeared (:func:`first_non_finite`).
    """
    act = policy.actor(policy.layers(params, mean, std), mean, std)
    step, limit = direct_step(env)
    obs, _ = env.reset(seed=int(seed))
    observations = [obs] if collect_obs else None
    append = observations.append if collect_obs else None
    total, length = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = step(act(obs))
        total += float(reward)
        length += 1
        if terminated or truncated or length == limit:  # limit: the TimeLimit's truncation (direct_step)
            break
        if append is not None:
            append(obs)
    # NaN and inf propagate into the return and (through the policy) into the observations:
    # checking the end is enough to know, the replay says where
    if not (np.isfinite(total) and np.all(np.isfinite(obs))):
        raise NonFiniteError(
            "the episode is not finite: "
            f"{first_non_finite(env, policy, policy.layers(params, mean, std), mean, std, seed)}"
        )
    stat = RunningStat.from_batch(np.asarray(observations)) if collect_obs else None
    behaviour = characterize(env, bc) if bc is not None else None
    return EpisodeResult(
        total,
        length,
        bool(terminated),
        stat,
        behaviour,
        bool(info.get("success", False)) if success else None,
        instability(env),
    )


def check_spaces(env) -> None:
    """:raises ValueError: unless ``env`` has flat ``Box`` observation and action spaces, which the
    ES family's numpy policies need (they normalize a vector and clip actions to the box)."""
    import gymnasium as gym

    spec = getattr(env, "spec", None)
    name = spec.id if spec is not None else type(env.unwrapped).__name__
    for what, space in (("action", env.action_space), ("observation", env.observation_space)):
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ValueError(
                f"environment {name} has a {space} {what} space; the ES family's numpy policies need a "
                f"flat Box (continuous vector) {what} space"
            )


class EnvObjective:
    """Episodes of a numpy policy (``policy_cfg``) in the Gymnasium environment ``env_cfg``.

    :param env_cfg: ``{"id", "kwargs", "max_episode_steps", "bc", "success", "on_unstable"}``.
    :param policy_cfg: see :func:`harness.policies.make_policy`.
    """

    def __init__(self, env_cfg: dict, policy_cfg: dict) -> None:
        self.env = make_env(env_cfg["id"], env_cfg.get("kwargs"), env_cfg.get("max_episode_steps"))
        check_spaces(self.env)
        space = self.env.action_space
        self.policy = make_policy(policy_cfg, self.env.observation_space.shape[0], space.low, space.high)
        self.bc = env_cfg.get("bc")
        self.success = bool(env_cfg.get("success", False))
        self.on_unstable = env_cfg.get("on_unstable", "fail")
        self.num_params = self.policy.num_params
        self.obs_dim = self.policy.obs_dim

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """The policy's initial parameters, shape ``(num_params,)`` float64."""
        return self.policy.init_params(rng)

    def run(self, params: np.ndarray, mean: np.ndarray, std: np.ndarray, seed: int, collect_obs: bool) -> EpisodeResult:
        """One episode. :raises UnstableSimulationError: with ``env.on_unstable=fail``, if MuJoCo
        reported an instability; :raises NonFiniteError: see :func:`run_episode`."""
        result = run_episode(self.env, self.policy, params, mean, std, seed, collect_obs, self.bc, self.success)
        if result.unstable and self.on_unstable == "fail":
            raise UnstableSimulationError(
                f"MuJoCo reported an unstable simulation ({result.unstable}) and reset its state mid-episode, "
                "so the return means nothing; env.on_unstable=fail stops here (rank_last would rank such "
                "episodes below every stable one)"
            )
        return result

    def close(self) -> None:
        """Close the Gymnasium environment."""
        self.env.close()


class FunctionObjective:
    """A landscape with no simulator (:mod:`harness.envs.landscapes`): the return of a
    parameter vector is ``-loss(params)`` (fitness is maximised), its length 1 timestep, and
    its behaviour characterization the point itself. Deterministic: seeds are ignored.

    :param env_cfg: ``{"id": landscape name, "init": starting point (list of d floats) or null}``.
    """

    obs_dim = 0

    def __init__(self, env_cfg: dict) -> None:
        self.landscape = get_landscape(env_cfg["id"])
        self.num_params = self.landscape.dim
        init = env_cfg.get("init")
        self.init = np.asarray(self.landscape.init if init is None else init, dtype=np.float64)

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """The configured starting point, shape ``(d,)`` float64 (``rng`` unused)."""
        return self.init.copy()

    def run(self, params: np.ndarray, mean, std, seed: int, collect_obs: bool) -> EpisodeResult:
        """One evaluation: return ``-loss(params)``, length 1, terminated, no observation statistics, and
        the point itself (a float64 copy) as the behaviour characterization; ``mean``, ``std``, ``seed`` and
        ``collect_obs`` are ignored."""
        value = -float(self.landscape.loss(np.asarray(params, dtype=np.float64)))
        return EpisodeResult(value, 1, True, None, np.array(params, dtype=np.float64), None)

    def close(self) -> None:
        """Nothing to release."""
        pass


ENV_KINDS = ("gym", "function")


def make_objective(env_cfg: dict, policy_cfg: dict) -> EnvObjective | FunctionObjective:
    """The task ``env_cfg["kind"]`` names (default ``gym``).

    :raises ValueError: for an unknown kind.
    """
    kind = env_cfg.get("kind", "gym")
    if kind == "gym":
        return EnvObjective(env_cfg, policy_cfg)
    if kind == "function":
        return FunctionObjective(env_cfg)
    raise ValueError(f"unknown env.kind {kind!r}; choose one of {', '.join(ENV_KINDS)}")
