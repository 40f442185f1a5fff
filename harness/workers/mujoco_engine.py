"""The ``mujoco`` rollout engine (``workers.engine=mujoco``): a worker's piece of episodes stepped
as one batch by MuJoCo's own batched stepper, on the same ``mujoco`` build as Gymnasium, with every
member's action computed in one batched array operation and the task's observations, rewards and
terminations computed in NumPy for the whole batch.

What a worker does with a piece of ``B`` episodes (:meth:`MujocoObjective.run_batch`):

1. It resets its own Gymnasium environment (``gymnasium.make(id)``, the ``gymnasium`` engine's)
   once per episode, with the episode's ``env_seed``, and copies the whole integration state
   (``mjSTATE_INTEGRATION``: time, ``qpos``, ``qvel``, controls, and the constraint solver's warm
   start ``qacc_warmstart``) into one row of a :class:`mujoco.batch.Batch`. The initial state and
   the first observation are therefore Gymnasium's own, bit for bit, for the same seed; both
   members of a mirrored pair carry the same seed, so they start from the same state.
2. Each environment step, it computes the actions of the episodes still running
   (:class:`~harness.policies.BatchActor`), writes them to
   the rows' controls and advances those rows by ``frame_skip`` calls to ``mj_step`` in one call
   (``Batch.step(ids, nstep=frame_skip)``, one thread, the GIL released). An ended episode is not
   stepped again: it costs nothing more, and ``timesteps`` counts real steps only.
3. It computes the step's observations, rewards and terminations for those rows in NumPy from the
   batch's state rows (``qpos``, ``qvel``) and the derived fields the task reads (bound from the
   batch: ``site_xpos`` and ``qfrc_constraint`` for InvertedDoublePendulum, ``xpos``, ``xipos``,
   ``cinert``, ``cvel``, ``qfrc_actuator`` for Ant and Humanoid; one substep behind the state, as
   after ``mj_step``, as Gymnasium reads them), with Gymnasium v5's formulas and operation order
   (:class:`Task` and its subclasses). Ant's and Humanoid's external contact forces ``cfrc_ext``
   come from ``mj_rnePostConstraint`` run, as Gymnasium runs it after every step, on a copy of the
   row's ``MjData`` (a persistent batch keeps one per row): about 10-14 us per episode and step,
   4-6% of their physics.
4. It yields each episode's :class:`~harness.workers.rollout.EpisodeResult` in the piece's order,
   as soon as it and every episode before it have ended; its observation statistics are computed
   as the ``gymnasium`` engine's are (:meth:`RunningStat.from_batch` over the same observations),
   from a buffer of ``max_episode_steps x B x obs_dim`` float64 (touched only as far as the longest
   episode of the piece runs).

Why :mod:`mujoco.batch` and not :mod:`mujoco.rollout` (measured here with MuJoCo 4.0.1, both from
the ``mujoco`` package): ``rollout.Rollout.rollout`` takes an initial state in
``mjSTATE_FULLPHYSICS``, which leaves out the solver's warm start, and starts every call from the
``initial_warmstart`` it is given, or from zero. Gymnasium carries ``qacc_warmstart`` from one
step to the next in its ``MjData``; a closed loop of one ``rollout`` call per environment step
(``nstep=frame_skip``) restarts it from zero each step, so the constraint solver stops at another
point within its tolerance and the trajectories part at rounding level from the first steps with
contacts (open loop, the same actions from the same state: HalfCheetah 7e-14 after 200 steps,
Walker2d 1e-13, Humanoid 1e-7 after 26 steps, Ant 1.2 after 200, i.e. chaos). Passing each
episode's true warm start as ``initial_warmstart`` makes ``rollout`` bit-exact on every task, but
``rollout`` returns the warm start only in the one ``MjData`` it ends with, so that means one call
per episode per step (28.8k steps/s on HalfCheetah with 16 episodes, below raw ``mj_step``'s
32k). ``mujoco.batch.Batch`` keeps each simulation's full integration state, warm start included,
in its rows, steps any subset of them in one call, and exposes the derived fields: bit-identical
to Gymnasium's ``MjData`` on all eight tasks over 200 open-loop steps, and as fast as the
closed-loop ``rollout`` (both 37-39k steps/s, HalfCheetah, 16-64 episodes, one core). Neither is
faster than raw ``mj_step`` from Python on the same actions from the same states (a bare batch
0.95-1.01x, CPU time, alternating runs): the Python cost of one ``mj_step(nstep=frame_skip)`` call
is small beside the physics. All these speeds were measured on a busy machine (2 cores shared with
training runs).

With the same seeds and the same parameters this engine gives the ``gymnasium`` engine's returns,
lengths, terminations, observation statistics and behaviour characterizations, bit for bit on the
machines tested (``tests/test_mujoco_engine.py``); the batched actor's ``np.matmul`` is the one
place where a CPU's BLAS could round differently from the per-episode actor's.

What this engine cannot do, and says so before any worker starts (:func:`engine_problem`): tasks
other than :data:`TASKS`, environment ``kwargs`` other than those the task's NumPy code reads
(:attr:`Task.kwargs`), ``env.success``, and a ``mujoco`` package without :mod:`mujoco.batch`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence

import numpy as np

from harness.envs.behaviour import behaviour_of_qpos
from harness.policies import BatchActor, RunningStat
from harness.workers.rollout import (
    INSTABILITY_WARNINGS,
    EnvObjective,
    EpisodeResult,
    NonFiniteError,
    UnstableSimulationError,
    direct_step,
    first_non_finite,
)

#: The smallest piece of episodes the schedulers hand a ``mujoco`` worker (the last piece of a chunk
#: may be smaller): the batch's Python cost per environment step is paid once for all its episodes.
MIN_BATCH = 16


def mujoco_batch_available() -> bool:
    """Whether :mod:`mujoco.batch` (MuJoCo's batched stepper, in the ``mujoco`` package since 4.0)
    can be imported here."""
    try:
        return importlib.util.find_spec("mujoco.batch") is not None
    except ImportError:  # no mujoco at all
        return False


# -- tasks -------------------------------------------------------------------------------------------


class Task:
    """One Gymnasium v5 MuJoCo task's observation, reward and termination, computed in NumPy for a
    batch of rows as the task's ``step`` computes them for one environment (the same formulas, in
    the same order of floating-point operations).

    Its parameters are read from the Gymnasium environment, so that the ``env.kwargs`` listed in
    :attr:`kwargs` mean what they mean there. ``rows`` below is a ``slice`` or a sorted integer
    array of batch rows; arrays indexed by it have the rows first.

    :param env: the task's Gymnasium environment (``env.unwrapped`` is read).
    """

    #: the ``env.kwargs`` (constructor arguments of the Gymnasium class) this code reads
    kwargs: tuple[str, ...] = ("reset_noise_scale",)
    #: the derived ``MjData`` fields bound from the batch (one substep behind the state, as after ``mj_step``)
    derived: tuple[str, ...] = ()
    #: whether it reads ``cfrc_ext``, which only ``mj_rnePostConstraint`` computes (a persistent batch)
    contact_forces: bool = False

    def __init__(self, env) -> None:
        self.env = env.unwrapped
        self.dt = self.env.dt
        self.model = self.env.model
        self.fields: dict[str, np.ndarray] = {}

    def bind(self, batch, n: int) -> None:
        """Bind the batch's arrays this task reads; ``n`` rows."""
        self.qpos, self.qvel = batch.bind("qpos"), batch.bind("qvel")
        self.fields = {name: batch.bind(name) for name in self.derived}

    def reset(self, row: int, data) -> None:
        """Row ``row`` was reset to the Gymnasium environment's state ``data`` (its ``MjData`` after
        ``env.reset``): keep what the first step compares against."""

    def before(self, rows):
        """What the step's reward needs from before the step (e.g. the x position)."""
        return None

    def after(
        self, rows, actions: np.ndarray, before, cfrc_ext: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(obs (n, obs_dim), reward (n,), terminated (n,) bool)`` of the rows just stepped with
        ``actions`` (``(n, act_dim)`` float64)."""
        raise NotImplementedError

    def ctrl_cost(self, weight: float, actions: np.ndarray) -> np.ndarray:
        """``weight * np.sum(np.square(action))`` per row."""
        return weight * np.sum(np.square(actions), axis=1)


class _Planar(Task):
    """HalfCheetah, Hopper, Walker2d, Swimmer: forward reward from the change of ``qpos[0]``,
    observation ``qpos[skip:]`` and ``qvel`` (clipped to +-10 where ``clip_velocity``)."""

    kwargs = (
        "forward_reward_weight",
        "ctrl_cost_weight",
        "reset_noise_scale",
        "exclude_current_positions_from_observation",
    )
    skipped = 1  # leading qpos entries the observation leaves out
    clip_velocity = False

    def __init__(self, env) -> None:
        super().__init__(env)
        e = self.env
        self.skip = self.skipped if e._exclude_current_positions_from_observation else 0
        self.forward_weight, self.ctrl_weight = e._forward_reward_weight, e._ctrl_cost_weight

    def before(self, rows):
        return self.qpos[rows, 0].copy()

    def observe(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        velocity = np.clip(qvel, -10, 10) if self.clip_velocity else qvel
        return np.concatenate((qpos[:, self.skip :], velocity), axis=1)

    def after(self, rows, actions, before, cfrc_ext):
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        x_velocity = (qpos[:, 0] - before) / self.dt
        forward = self.forward_weight * x_velocity
        healthy, terminated = self.health(qpos, qvel)
        rewards = forward if healthy is None else forward + healthy
        return self.observe(qpos, qvel), rewards - self.ctrl_cost(self.ctrl_weight, actions), terminated

    def health(self, qpos, qvel) -> tuple[np.ndarray | None, np.ndarray]:
        """``(healthy reward or None, terminated)`` per row."""
        return None, np.zeros(len(qpos), dtype=bool)


class HalfCheetah(_Planar):
    """``HalfCheetah-v5``: no termination."""


class Swimmer(_Planar):
    """``Swimmer-v5``: the observation leaves out x and y; the reward uses the x velocity."""

    skipped = 2


class _Hopping(_Planar):
    """Hopper and Walker2d: a healthy reward and a termination when unhealthy."""

    kwargs = _Planar.kwargs + ("healthy_reward", "terminate_when_unhealthy", "healthy_z_range", "healthy_angle_range")
    clip_velocity = True

    def __init__(self, env) -> None:
        super().__init__(env)
        e = self.env
        self.healthy_reward, self.terminate = e._healthy_reward, e._terminate_when_unhealthy
        self.z_range, self.angle_range = e._healthy_z_range, e._healthy_angle_range

    def healthy(self, qpos, qvel) -> np.ndarray:
        (min_z, max_z), (min_angle, max_angle) = self.z_range, self.angle_range
        z, angle = qpos[:, 1], qpos[:, 2]
        return (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)

    def health(self, qpos, qvel):
        healthy = self.healthy(qpos, qvel)
        return healthy * self.healthy_reward, ~healthy & bool(self.terminate)


class Hopper(_Hopping):
    """``Hopper-v5``: healthy also needs every ``state_vector()[2:]`` entry inside ``healthy_state_range``."""

    kwargs = _Hopping.kwargs + ("healthy_state_range",)

    def healthy(self, qpos, qvel):
        """Walker2d's test (``qpos[1]`` and ``qpos[2]`` strictly inside ``healthy_z_range`` and
        ``healthy_angle_range``) and every ``state_vector()[2:]`` entry (``qpos`` then ``qvel``, the first two
        left out) strictly inside ``healthy_state_range``; shape ``(n,)`` bool."""
        min_state, max_state = self.env._healthy_state_range
        state = np.concatenate((qpos, qvel), axis=1)[:, 2:]
        return super().healthy(qpos, qvel) & np.all((min_state < state) & (state < max_state), axis=1)


class Walker2d(_Hopping):
    """``Walker2d-v5``."""


class InvertedPendulum(Task):
    """``InvertedPendulum-v5``: reward 1 per step until the pole leaves +-0.2 rad (or a value is not finite)."""

    def after(self, rows, actions, before, cfrc_ext):
        """``(obs (n, obs_dim), reward (n,), terminated (n,) bool)``: the observation is ``qpos`` then
        ``qvel``; terminated when one of them is not finite or ``|qpos[1]| > 0.2``; reward 1.0 per row not
        terminated, 0.0 on the terminating step."""
        obs = np.concatenate((self.qpos[rows], self.qvel[rows]), axis=1)
        terminated = ~np.all(np.isfinite(obs), axis=1) | (np.abs(obs[:, 1]) > 0.2)
        return obs, (~terminated).astype(np.float64), terminated


class InvertedDoublePendulum(Task):
    """``InvertedDoublePendulum-v5``: the observation ends with the slider's constraint force
    (``qfrc_constraint[0]``, clipped to +-10) and the reward is computed from the pole tip's site
    position (``site_xpos[0]``), both bound from the batch."""

    kwargs = ("healthy_reward", "reset_noise_scale")
    derived = ("site_xpos", "qfrc_constraint")

    def after(self, rows, actions, before, cfrc_ext):
        """``(obs (n, obs_dim), reward (n,), terminated (n,) bool)``: the observation is ``qpos[:1]``,
        ``sin`` and ``cos`` of ``qpos[1:]``, ``qvel`` and ``qfrc_constraint[:1]`` (both clipped to +-10);
        terminated when the tip's height ``site_xpos[0, 2] <= 1``; reward ``healthy_reward`` (0 on the
        terminating step) minus ``0.01 x^2 + (y - 2)^2`` (tip position) and ``1e-3 v1^2 + 5e-3 v2^2``
        (``qvel[1]``, ``qvel[2]``)."""
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        tip = self.fields["site_xpos"][rows, 0]
        x, y = tip[:, 0], tip[:, 2]
        obs = np.concatenate(
            (
                qpos[:, :1],
                np.sin(qpos[:, 1:]),
                np.cos(qpos[:, 1:]),
                np.clip(qvel, -10, 10),
                np.clip(self.fields["qfrc_constraint"][rows], -10, 10)[:, :1],
            ),
            axis=1,
        )
        terminated = y <= 1
        v1, v2 = qvel[:, 1], qvel[:, 2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive_bonus = self.env._healthy_reward * (~terminated).astype(np.int64)
        return obs, alive_bonus - dist_penalty - vel_penalty, terminated


class Ant(Task):
    """``Ant-v5``: forward reward from the main body's ``xpos`` (derived, bound), contact cost and
    observation from the external contact forces ``cfrc_ext`` clipped to ``contact_force_range``."""

    kwargs = (
        "forward_reward_weight",
        "ctrl_cost_weight",
        "contact_cost_weight",
        "healthy_reward",
        "main_body",
        "terminate_when_unhealthy",
        "healthy_z_range",
        "contact_force_range",
        "reset_noise_scale",
        "exclude_current_positions_from_observation",
        "include_cfrc_ext_in_observation",
    )
    derived = ("xpos",)
    contact_forces = True

    def __init__(self, env) -> None:
        super().__init__(env)
        e = self.env
        self.body = e.data.body(e._main_body).id
        self.skip = 2 if e._exclude_current_positions_from_observation else 0
        self.xy = np.zeros((0, 2))

    def bind(self, batch, n):
        """Bind the batch's arrays (:meth:`Task.bind`); the per-row ``(x, y)`` store is replaced by zeros
        for ``n`` rows when it is smaller."""
        super().bind(batch, n)
        if len(self.xy) < n:
            self.xy = np.zeros((n, 2))

    def reset(self, row, data):
        """Keep the main body's ``(x, y)`` after the reset (``data.xpos``): the first step's velocity starts there."""
        self.xy[row] = data.xpos[self.body, :2]

    def before(self, rows):
        """The rows' main-body ``(x, y)`` before the step, shape ``(n, 2)`` (a copy)."""
        return self.xy[rows].copy()

    def after(self, rows, actions, before, cfrc_ext):
        """``(obs (n, obs_dim), reward (n,), terminated (n,) bool)``, and the rows' new ``(x, y)`` kept.
        Reward: ``forward_reward_weight`` times the main body's x velocity, plus ``healthy_reward`` where
        healthy, minus the control cost and ``contact_cost_weight`` times the sum of squares of ``cfrc_ext``
        clipped to ``contact_force_range``. Healthy: ``qpos`` and ``qvel`` finite and ``qpos[2]`` in
        ``healthy_z_range`` (bounds included); terminated where unhealthy if ``terminate_when_unhealthy``.
        The observation is ``qpos[skip:]``, ``qvel`` and, with ``include_cfrc_ext_in_observation``, the
        clipped ``cfrc_ext[1:]`` flattened."""
        e = self.env
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        xy = self.fields["xpos"][rows, self.body, :2]
        self.xy[rows] = xy
        x_velocity = ((xy - before) / self.dt)[:, 0]
        forward = x_velocity * e._forward_reward_weight
        state = np.concatenate((qpos, qvel), axis=1)
        min_z, max_z = e._healthy_z_range
        healthy = np.all(np.isfinite(state), axis=1) & (min_z <= qpos[:, 2]) & (qpos[:, 2] <= max_z)
        forces = np.clip(cfrc_ext, *e._contact_force_range)
        contact_cost = e._contact_cost_weight * np.sum(np.square(forces).reshape(len(forces), -1), axis=1)
        costs = self.ctrl_cost(e._ctrl_cost_weight, actions) + contact_cost
        reward = forward + healthy * e._healthy_reward - costs
        parts = [qpos[:, self.skip :], qvel]
        if e._include_cfrc_ext_in_observation:
            parts.append(forces[:, 1:].reshape(len(forces), -1))
        return np.concatenate(parts, axis=1), reward, ~healthy & bool(e._terminate_when_unhealthy)


class Humanoid(Task):
    """``Humanoid-v5``: forward reward from the mass centre (``xipos``, derived, bound), contact cost
    from ``cfrc_ext``; observation ``qpos[2:]``, ``qvel``, ``cinert[1:]``, ``cvel[1:]``,
    ``qfrc_actuator[6:]``, ``cfrc_ext[1:]`` (each as the ``include_*`` kwargs say)."""

    kwargs = (
        "forward_reward_weight",
        "ctrl_cost_weight",
        "contact_cost_weight",
        "contact_cost_range",
        "healthy_reward",
        "terminate_when_unhealthy",
        "healthy_z_range",
        "reset_noise_scale",
        "exclude_current_positions_from_observation",
        "include_cinert_in_observation",
        "include_cvel_in_observation",
        "include_qfrc_actuator_in_observation",
        "include_cfrc_ext_in_observation",
    )
    derived = ("xipos", "cinert", "cvel", "qfrc_actuator")
    contact_forces = True

    def __init__(self, env) -> None:
        super().__init__(env)
        e = self.env
        self.mass = np.expand_dims(self.model.body_mass, axis=1)
        self.total_mass = np.sum(self.mass)
        self.skip = 2 if e._exclude_current_positions_from_observation else 0
        self.xy = np.zeros((0, 2))

    def bind(self, batch, n):
        """Bind the batch's arrays (:meth:`Task.bind`); the per-row ``(x, y)`` store is replaced by zeros
        for ``n`` rows when it is smaller."""
        super().bind(batch, n)
        if len(self.xy) < n:
            self.xy = np.zeros((n, 2))

    def mass_center(self, xipos: np.ndarray) -> np.ndarray:
        """Gymnasium's ``mass_center`` per row: ``(sum(mass * xipos) / sum(mass))[:2]``, ``xipos`` (n, nbody, 3)."""
        return (np.sum(self.mass * xipos, axis=1) / self.total_mass)[:, 0:2]

    def reset(self, row, data):
        """Keep the mass centre's ``(x, y)`` after the reset (from ``data.xipos``): the first step's velocity
        starts there."""
        self.xy[row] = self.mass_center(data.xipos[None])[0]

    def before(self, rows):
        """The rows' mass-centre ``(x, y)`` before the step, shape ``(n, 2)`` (a copy)."""
        return self.xy[rows].copy()

    def after(self, rows, actions, before, cfrc_ext):
        """``(obs (n, obs_dim), reward (n,), terminated (n,) bool)``, and the rows' new ``(x, y)`` kept.
        Reward: ``forward_reward_weight`` times the mass centre's x velocity, plus ``healthy_reward`` where
        healthy, minus the control cost and the contact cost (``contact_cost_weight`` times the sum of squares
        of ``cfrc_ext``, clipped to ``contact_cost_range``). Healthy: ``qpos[2]`` strictly inside
        ``healthy_z_range``; terminated where unhealthy if ``terminate_when_unhealthy``. Observation as the
        class docstring says."""
        e, f = self.env, self.fields
        n = len(actions)
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        xy = self.mass_center(f["xipos"][rows])
        self.xy[rows] = xy
        x_velocity = ((xy - before) / self.dt)[:, 0]
        forward = e._forward_reward_weight * x_velocity
        min_z, max_z = e._healthy_z_range
        healthy = (min_z < qpos[:, 2]) & (qpos[:, 2] < max_z)
        contact_cost = e._contact_cost_weight * np.sum(np.square(cfrc_ext).reshape(n, -1), axis=1)
        contact_cost = np.clip(contact_cost, *e._contact_cost_range)
        costs = self.ctrl_cost(e._ctrl_cost_weight, actions) + contact_cost
        reward = forward + healthy * e._healthy_reward - costs
        parts = [qpos[:, self.skip :], qvel]
        if e._include_cinert_in_observation:
            parts.append(f["cinert"][rows, 1:].reshape(n, -1))
        if e._include_cvel_in_observation:
            parts.append(f["cvel"][rows, 1:].reshape(n, -1))
        if e._include_qfrc_actuator_in_observation:
            parts.append(f["qfrc_actuator"][rows, 6:])
        if e._include_cfrc_ext_in_observation:
            parts.append(cfrc_ext[:, 1:].reshape(n, -1))
        return np.concatenate(parts, axis=1), reward, ~healthy & bool(e._terminate_when_unhealthy)


#: The Gymnasium tasks this engine serves, each with the NumPy code of its step (``tests/test_mujoco_engine.py``
#: holds each equal to ``gymnasium.make(id)``).
TASKS: dict[str, type[Task]] = {
    "HalfCheetah-v5": HalfCheetah,
    "Hopper-v5": Hopper,
    "Walker2d-v5": Walker2d,
    "Swimmer-v5": Swimmer,
    "InvertedPendulum-v5": InvertedPendulum,
    "InvertedDoublePendulum-v5": InvertedDoublePendulum,
    "Ant-v5": Ant,
    "Humanoid-v5": Humanoid,
}


def engine_problem(env_cfg: dict) -> str | None:
    """Why ``env_cfg`` cannot run on the ``mujoco`` engine, as a message naming the key, or ``None``."""
    if env_cfg.get("kind", "gym") != "gym":
        return (
            f"workers.engine=mujoco steps MuJoCo tasks; env.kind={env_cfg.get('kind')!r} has no simulator to "
            "batch; use workers.engine=gymnasium"
        )
    env_id = str(env_cfg.get("id"))
    if env_id not in TASKS:
        return (
            f"workers.engine=mujoco does not serve {env_id}: it serves {', '.join(TASKS)}, the tasks whose "
            "observations, rewards and terminations it computes (harness/workers/mujoco_engine.py); use "
            "workers.engine=gymnasium"
        )
    extra = sorted(set(env_cfg.get("kwargs") or {}) - set(TASKS[env_id].kwargs))
    if extra:
        return (
            f"workers.engine=mujoco computes {env_id}'s step from the kwargs {', '.join(TASKS[env_id].kwargs)}; "
            f"env.kwargs has {', '.join(extra)}, which it does not read; use workers.engine=gymnasium"
        )
    if env_cfg.get("success"):
        return "workers.engine=mujoco cannot read info['success'] (env.success=true); use workers.engine=gymnasium"
    if not mujoco_batch_available():
        return (
            "workers.engine=mujoco needs mujoco.batch, MuJoCo's batched stepper (the mujoco package >= 4.0), "
            "which this Python's mujoco does not have; use workers.engine=gymnasium"
        )
    return None


# -- the objective -----------------------------------------------------------------------------------


class MujocoObjective(EnvObjective):
    """Batches of episodes of a numpy policy (``policy_cfg``) in the Gymnasium task ``env_cfg["id"]``
    (one of :data:`TASKS`), stepped by :class:`mujoco.batch.Batch`.

    The Gymnasium environment of :class:`~harness.workers.rollout.EnvObjective` gives the spaces,
    the model, every episode's initial state (its own ``reset``) and the task's parameters.

    :raises ValueError: if the task cannot run on this engine (:func:`engine_problem`).
    """

    batched = True

    def __init__(self, env_cfg: dict, policy_cfg: dict) -> None:
        problem = engine_problem(env_cfg)
        if problem:
            raise ValueError(problem)
        import mujoco

        super().__init__(env_cfg, policy_cfg)
        self._mujoco = mujoco
        self.env_id = str(env_cfg["id"])
        limit = direct_step(self.env)[1]
        self.max_episode_steps = int(limit or env_cfg.get("max_episode_steps") or self.env.spec.max_episode_steps)
        self.task = TASKS[self.env_id](self.env)
        unwrapped = self.env.unwrapped
        self.model, self.frame_skip = unwrapped.model, int(unwrapped.frame_skip)
        self.state_spec = int(mujoco.mjtState.mjSTATE_INTEGRATION)
        self._row = np.empty(mujoco.mj_stateSize(self.model, self.state_spec))
        self._warnings = [int(getattr(mujoco.mjtWarning, f"mjWARN_{name}")) for name in INSTABILITY_WARNINGS]
        self._batch = None
        self._scratch = mujoco.MjData(self.model) if self.task.contact_forces else None

    def batch(self, n: int):
        """A :class:`mujoco.batch.Batch` of at least ``n`` rows on the calling thread, kept for the
        next piece (persistent, one ``MjData`` per row, where the task needs ``cfrc_ext``)."""
        if self._batch is None or self._batch.nsim < n:
            from mujoco.batch import Batch

            self._batch = Batch(self.model, nsim=n, nthread=1, persistent=self.task.contact_forces)
            self._ctrl = self._batch.bind("ctrl")
        self.task.bind(self._batch, n)
        return self._batch

    def reset_rows(self, batch, seeds: Sequence[int]) -> np.ndarray:
        """Reset the Gymnasium environment with each seed in turn and copy its state into rows
        ``0 .. len(seeds) - 1``; the reset observations, shape ``(len(seeds), obs_dim)``."""
        mujoco, env = self._mujoco, self.env
        data = env.unwrapped.data
        obs = np.empty((len(seeds), self.obs_dim))
        for row, seed in enumerate(seeds):
            obs[row], _ = env.reset(seed=int(seed))
            mujoco.mj_getState(self.model, data, self._row, self.state_spec)
            batch.state[row] = self._row
            self.task.reset(row, data)
        batch.warning[: len(seeds)] = 0  # counted per episode, as mj_resetData clears them
        return obs

    def contact_forces(self, batch, rows: np.ndarray) -> np.ndarray:
        """``cfrc_ext`` of each row after its last step, shape ``(len(rows), nbody, 6)``: Gymnasium
        runs ``mj_rnePostConstraint`` after ``mj_step``; here it runs on a copy of the row's ``MjData``."""
        mujoco, model, scratch = self._mujoco, self.model, self._scratch
        out = np.empty((len(rows), model.nbody, 6))
        for k, row in enumerate(rows):
            batch.get_data(int(row), scratch)
            mujoco.mj_rnePostConstraint(model, scratch)
            out[k] = scratch.cfrc_ext
        return out

    def step(self, batch, rows, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``rows`` (a ``slice`` of every row of ``batch``, or a sorted int32 array) by one
        environment step with ``actions`` (``(n, act_dim)`` float64: each row's controls for the
        ``frame_skip`` substeps); ``(obs (n, obs_dim), reward (n,), terminated (n,) bool)``."""
        task = self.task
        self._ctrl[rows] = actions
        before = task.before(rows)
        ids = None if isinstance(rows, slice) else rows
        batch.step(ids, nstep=self.frame_skip)
        forces = None
        if task.contact_forces:
            forces = self.contact_forces(batch, range(batch.nsim)[rows] if ids is None else ids)
        return task.after(rows, actions, before, forces)

    def unstable(self, batch, row: int) -> str | None:
        """The instability warnings of row ``row``'s episode, e.g. ``"BADQVEL x1"``, or ``None``: as
        :func:`~harness.workers.rollout.instability` names them."""
        counts = batch.warning[row, self._warnings, 1]
        fired = [f"{name} x{c}" for name, c in zip(INSTABILITY_WARNINGS, counts) if c]
        return ", ".join(fired) or None

    def run_batch(
        self, params: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray, seeds: Sequence[int], collect_obs: bool
    ) -> Iterator[EpisodeResult]:
        """One episode per member, ``params[i]`` from the reset of the Gymnasium environment with
        ``seeds[i]``; results in that order, each as soon as it and those before it have ended.

        The observation statistics of an episode (``collect_obs``) cover the observations the
        ``gymnasium`` engine's do (the reset's and every one after a step but the last), computed
        by :meth:`RunningStat.from_batch` as there.

        :raises NonFiniteError: when the next result to yield has a NaN or infinite return or last
            observation, naming the step (replayed on Gymnasium, as the ``gymnasium`` engine does).
        :raises UnstableSimulationError: with ``env.on_unstable=fail``, when the next result's
            episode had MuJoCo instability warnings.
        """
        n = len(params)
        layers = [self.policy.layers(p, mean, std) for p in params]
        batch = self.batch(n)
        obs = self.reset_rows(batch, seeds)
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        terminated = np.zeros(n, dtype=bool)
        running = np.ones(n, dtype=bool)
        seen = np.empty((self.max_episode_steps, n, self.obs_dim)) if collect_obs else None
        if collect_obs:
            seen[0] = obs
        everything = batch.nsim == n  # step with ids=None and slice rows while every row runs
        live = np.arange(n, dtype=np.int32)
        rows = slice(0, n) if everything else live
        # the actor holds the layers of the rows in `acting` (a superset of the running rows), rebuilt when
        # half of them have ended: stacking layers costs O(members x parameters), so rebuilding at every
        # end would cost O(B^2 x parameters) a piece (an MLP's copies dominated short Humanoid episodes)
        actor, acting, among = BatchActor(self.policy, layers, mean, std), live, None
        emitted, t = 0, 0
        while emitted < n:
            actions = actor(obs[rows]) if among is None else actor(obs[acting])[among]
            step_obs, reward, term = self.step(batch, rows, actions)
            t += 1
            returns[rows] += reward
            lengths[rows] = t
            obs[rows] = step_obs
            done = term | (t >= self.max_episode_steps)
            if collect_obs and not done.all():  # every observation but an episode's last
                seen[t, live[~done]] = step_obs[~done]
            if done.any():
                ended = live[done]
                running[ended] = False
                terminated[ended] = term[done]
                live = live[~done]
                rows = live
                if live.size and 2 * live.size <= acting.size:
                    actor, acting = BatchActor(self.policy, [layers[i] for i in live], mean, std), live
                among = None if acting.size == live.size else np.searchsorted(acting, live)
            while emitted < n and not running[emitted]:
                i = emitted
                emitted += 1
                yield self.result(
                    batch,
                    i,
                    returns[i],
                    int(lengths[i]),
                    bool(terminated[i]),
                    obs[i],
                    seen[: lengths[i], i] if collect_obs else None,
                    layers[i],
                    mean,
                    std,
                    seeds[i],
                )

    def result(
        self,
        batch,
        row: int,
        total: float,
        length: int,
        terminated: bool,
        last_obs: np.ndarray,
        observations: np.ndarray | None,
        layers,
        mean,
        std,
        seed: int,
    ) -> EpisodeResult:
        """Row ``row``'s :class:`EpisodeResult`, checked as :meth:`EnvObjective.run` checks one."""
        if not (np.isfinite(total) and np.all(np.isfinite(last_obs))):
            raise NonFiniteError(
                f"the episode is not finite: {first_non_finite(self.env, self.policy, layers, mean, std, seed)}"
            )
        stat = RunningStat.from_batch(np.ascontiguousarray(observations)) if observations is not None else None
        behaviour = None
        if self.bc is not None:
            behaviour = behaviour_of_qpos(self.env, self.bc, self.task.qpos[row].copy())
        unstable = self.unstable(batch, row)
        if unstable and self.on_unstable == "fail":
            raise UnstableSimulationError(
                f"MuJoCo reported an unstable simulation ({unstable}) and reset its state mid-episode, "
                "so the return means nothing; env.on_unstable=fail stops here (rank_last would rank such "
                "episodes below every stable one)"
            )
        return EpisodeResult(float(total), length, terminated, stat, behaviour, None, unstable)

    def run(self, params: np.ndarray, mean: np.ndarray, std: np.ndarray, seed: int, collect_obs: bool) -> EpisodeResult:
        """One episode alone (a batch of one)."""
        return list(self.run_batch([params], mean, std, [seed], collect_obs))[0]
