"""Behaviour characterizations (BC): a short vector describing how an episode ended.

Novelty search scores a policy by how far its BC lies from the BCs in an archive (Conti et
al. 2018, arXiv 1712.06560; uber-research/deep-neuroevolution es_distributed/nses.py, whose
Humanoid BC is the final (x, y) of the mass-weighted centre of mass). :func:`behaviour` is
called once, at the end of an episode, on the environment as ``harness.envs.make_env``
returned it (the outermost wrapper); it reads the simulator and never steps it.

- ``com_x`` (1,): final x of the whole robot's centre of mass, metres; planar robots
  (HalfCheetah, Hopper, Walker2d, Swimmer);
- ``com_xy`` (2,): final (x, y) of the same; 3-D robots (Ant, Humanoid, HumanoidTrap);
- ``final_xy`` (2,): the agent's final (x, y) in a maze, metres: the last ``achieved_goal``
  kept by :class:`harness.envs.deceptive.FlatGoalObservation`.
"""

from __future__ import annotations

import weakref

import numpy as np

BEHAVIOURS = ("com_x", "com_xy", "final_xy")
_DIMS = {"com_x": 1, "com_xy": 2, "final_xy": 2}
# One scratch MjData per environment: allocating one costs ~0.5 ms (its arena), the kinematics
# ~1 us. Keyed by the unwrapped env, not the model: an MjData refers to its model, so a
# model-keyed weak dictionary would never let go.
_scratch_data: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def behaviour_dim(name: str) -> int:
    """Length of the BC vector ``name``.

    :raises ValueError: if ``name`` is not in :data:`BEHAVIOURS`.
    """
    _check_name(name)
    return _DIMS[name]


def behaviour(env, name: str) -> np.ndarray:
    """The BC ``name`` of ``env``'s current state, shape ``(behaviour_dim(name),)``, float64.

    :raises ValueError: if ``name`` is unknown, or ``env`` cannot give it (no MuJoCo model for
        ``com_*``; no :class:`~harness.envs.deceptive.FlatGoalObservation`, or no reset yet,
        for ``final_xy``).
    """
    _check_name(name)
    if name == "final_xy":
        return final_xy(env)
    com = centre_of_mass(env)
    return com[:1].copy() if name == "com_x" else com[:2].copy()


def centre_of_mass(env) -> np.ndarray:
    """(x, y, z) of the mass-weighted centre of mass of every body, metres, float64 (3,).

    Computed from the current ``qpos`` on a scratch ``MjData``: after ``mj_step`` the env's own
    ``data.xipos`` and ``data.subtree_com`` still describe the state *before* the last
    integration (mj_step computes positions first, then integrates), one physics substep
    behind ``qpos``. Equals sum(mass * xipos) / sum(mass) after ``mj_forward``
    (``subtree_com[0]``: the world body's subtree is the whole model; world-body geoms such as
    floors and walls have no mass). A few microseconds once the scratch data exists.

    :raises ValueError: if ``env.unwrapped`` has no MuJoCo ``model`` and ``data``.
    """
    import mujoco

    model, data = getattr(env.unwrapped, "model", None), getattr(env.unwrapped, "data", None)
    if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
        raise ValueError(f"{_env_name(env)} has no MuJoCo model/data, so no centre of mass (com_x, com_xy)")
    return _centre_of_mass(env, model, data.qpos, data)


def behaviour_of_qpos(env, name: str, qpos: np.ndarray) -> np.ndarray:
    """The BC ``name`` (``com_x`` or ``com_xy``) of ``env``'s model in the joint positions ``qpos``
    (shape ``(model.nq,)``), shape ``(behaviour_dim(name),)`` float64: for a simulator that is not
    ``env`` itself but simulates its model (the ``mujoco`` engine, :mod:`harness.workers.mujoco_engine`).

    :raises ValueError: for ``final_xy`` or an unknown name, or if ``env`` has no MuJoCo model.
    """
    import mujoco

    _check_name(name)
    model, data = getattr(env.unwrapped, "model", None), getattr(env.unwrapped, "data", None)
    if name == "final_xy" or not isinstance(model, mujoco.MjModel):
        raise ValueError(f"{_env_name(env)}: no {name} from joint positions alone")
    com = _centre_of_mass(env, model, np.asarray(qpos, dtype=np.float64), data)
    return com[:1].copy() if name == "com_x" else com[:2].copy()


def _centre_of_mass(env, model, qpos: np.ndarray, data) -> np.ndarray:
    """:func:`centre_of_mass` for the joint positions ``qpos`` (mocap bodies where ``data`` has them)."""
    import mujoco

    scratch = _scratch(env.unwrapped, model)
    scratch.qpos[:] = qpos
    scratch.mocap_pos[:] = data.mocap_pos
    scratch.mocap_quat[:] = data.mocap_quat
    mujoco.mj_kinematics(model, scratch)
    mujoco.mj_comPos(model, scratch)
    return np.array(scratch.subtree_com[0], dtype=np.float64)


def _scratch(owner, model):
    cached = _scratch_data.get(owner)
    if cached is None or cached[0] is not model:
        import mujoco

        cached = _scratch_data[owner] = (model, mujoco.MjData(model))
    return cached[1]


def final_xy(env) -> np.ndarray:
    """The agent's (x, y) after the latest reset or step, metres, float64 (2,).

    :raises ValueError: if no wrapper of ``env`` keeps ``last_achieved_goal`` (only goal-based
        mazes do), or the env has not been reset yet.
    """
    try:
        xy = env.get_wrapper_attr("last_achieved_goal")
    except AttributeError:
        raise ValueError(f"{_env_name(env)} is not a maze (no FlatGoalObservation wrapper), so no final_xy") from None
    if xy is None:
        raise ValueError(f"{_env_name(env)} has not been reset yet, so no final_xy")
    return np.array(xy, dtype=np.float64).reshape(2)


def _check_name(name: str) -> None:
    if name not in _DIMS:
        raise ValueError(f"unknown behaviour characterization {name!r}; choose one of {', '.join(BEHAVIOURS)}")


def _env_name(env) -> str:
    spec = getattr(env, "spec", None)
    return f"environment {spec.id!r}" if spec is not None else f"environment {type(env).__name__}"
