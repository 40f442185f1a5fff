"""The rollout engines (``workers.engine``): which there are, what each refuses, the smallest piece
of episodes each wants, and the objective a worker builds for each.

* ``gymnasium``: one episode after another in ``gymnasium.make(id)`` (:mod:`harness.workers.rollout`);
* ``envpool``: a piece's episodes batched in one EnvPool instance, EnvPool's own MuJoCo build
  (:mod:`harness.workers.envpool_engine`);
* ``mujoco``: a piece's episodes batched by MuJoCo's own batched stepper, Gymnasium's MuJoCo build,
  bit for bit Gymnasium's trajectories (:mod:`harness.workers.mujoco_engine`).

A batched engine's module is imported only when it is asked about (envpool's wheel is optional).
"""

from __future__ import annotations

ENGINES = ("gymnasium", "envpool", "mujoco")


def engine_problem(engine: str, env_cfg: dict) -> str | None:
    """Why ``env_cfg`` cannot run on ``engine``, as a message naming the key, or ``None``."""
    if engine not in ENGINES:
        return f"workers.engine must be one of {', '.join(ENGINES)}, got {engine!r}"
    if engine == "envpool":
        from harness.workers.envpool_engine import envpool_problem

        return envpool_problem(env_cfg)
    if engine == "mujoco":
        from harness.workers.mujoco_engine import engine_problem as mujoco_problem

        return mujoco_problem(env_cfg)
    return None


def min_batch(engine: str) -> int:
    """The fewest episodes a scheduler should hand one worker of ``engine`` at a time (the last piece
    of a chunk may be smaller): 1 for ``gymnasium``, the engine's ``MIN_BATCH`` for a batched one."""
    if engine == "envpool":
        from harness.workers.envpool_engine import MIN_BATCH

        return MIN_BATCH
    if engine == "mujoco":
        from harness.workers.mujoco_engine import MIN_BATCH

        return MIN_BATCH
    return 1


def make_engine_objective(engine: str, env_cfg: dict, policy_cfg: dict):
    """The objective a worker of ``engine`` runs its chunks with.

    :raises ValueError: if ``env_cfg`` cannot run on ``engine`` (:func:`engine_problem`).
    """
    if engine == "envpool":
        from harness.workers.envpool_engine import EnvPoolObjective

        return EnvPoolObjective(env_cfg, policy_cfg)
    if engine == "mujoco":
        from harness.workers.mujoco_engine import MujocoObjective

        return MujocoObjective(env_cfg, policy_cfg)
    if engine != "gymnasium":
        raise ValueError(engine_problem(engine, env_cfg))
    from harness.workers.rollout import make_objective

    return make_objective(env_cfg, policy_cfg)
