"""The rollout engines (``workers.engine``): which there are, what each refuses, the smallest piece
of episodes each wants, and the objective a worker builds for each.

* ``gymnasium``: one episode after another in ``gymnasium.make(id)`` (:mod:`harness.workers.rollout`);
* ``mujoco``: a piece's episodes batched by MuJoCo's own batched stepper, Gymnasium's MuJoCo build,
  bit for bit Gymnasium's trajectories (:mod:`harness.workers.mujoco_engine`);
* ``auto`` (the default): ``mujoco`` for the tasks it serves, ``gymnasium`` for the rest
  (:func:`resolve_engine`).

Both engines give a run the same rows (``tests/test_mujoco_engine.py``), so the engine is, like the
backend, how a run is computed and not what: a resume may change it and the report pools the runs
of both. The ``envpool`` engine (EnvPool's own C++ MuJoCo, other initial states and rounding) was
removed by issue 31 (:data:`REMOVED`); its shipped runs stay labelled ``engine=envpool`` in the report
and are never pooled with the others (:data:`GYMNASIUM_TRAJECTORIES`).
"""

from __future__ import annotations

import difflib

#: The engines a worker can step on (``make bench`` times each).
ENGINES = ("gymnasium", "mujoco")
#: What ``workers.engine`` may say: an engine, or ``auto`` (:func:`resolve_engine`).
CHOICES = ("auto", *ENGINES)

#: Engines whose episodes are Gymnasium's own, bit for bit on one machine: their runs are one
#: configuration (the report pools them; a resume may move a run from one to another).
GYMNASIUM_TRAJECTORIES = CHOICES

#: Engines that existed and are gone, with what to use instead (a run that used one cannot be resumed).
REMOVED = {
    "envpool": "workers.engine=envpool was removed (issue 31): the mujoco engine serves every task it served, "
    "faster, with Gymnasium's own trajectories; use workers.engine=mujoco or auto. Its shipped runs "
    "(results/paper/engines_halfcheetah) stay in the report, labelled engine=envpool, but cannot be resumed",
}


def engine_problem(engine: str, env_cfg: dict) -> str | None:
    """Why ``env_cfg`` cannot run on ``engine``, as a message naming the key, or ``None``
    (``auto`` runs anything: it falls back to ``gymnasium``)."""
    if engine in REMOVED:
        return REMOVED[engine]
    if engine not in CHOICES:
        close = difflib.get_close_matches(str(engine).lower(), CHOICES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"workers.engine must be one of {', '.join(CHOICES)}, got {'null' if engine is None else repr(engine)}{hint}"
    if engine == "mujoco":
        from harness.workers.mujoco_engine import engine_problem as mujoco_problem

        return mujoco_problem(env_cfg)
    return None


def resolve_engine(engine: str, env_cfg: dict, rollout_workers: bool = True) -> str:
    """The engine a run of ``env_cfg`` with ``workers.engine=engine`` steps its episodes on.

    ``auto`` is ``mujoco`` where that engine serves the task (:func:`engine_problem`), the faster
    of the two on every task it serves (``make bench``), and ``gymnasium`` elsewhere; an algorithm
    without rollout workers (``rollout_workers=False``: TRPO, which steps SB3's own vector
    environments) is always ``gymnasium``. Any other value is returned as it is.
    """
    if not rollout_workers:
        return "gymnasium"
    if engine != "auto":
        return engine
    return "mujoco" if engine_problem("mujoco", env_cfg) is None else "gymnasium"


def min_batch(engine: str) -> int:
    """The fewest episodes a scheduler should hand one worker of ``engine`` at a time (the last piece
    of a chunk may be smaller): 1 for ``gymnasium``, the engine's ``MIN_BATCH`` for ``mujoco``."""
    if engine == "mujoco":
        from harness.workers.mujoco_engine import MIN_BATCH

        return MIN_BATCH
    return 1


def make_engine_objective(engine: str, env_cfg: dict, policy_cfg: dict):
    """The objective a worker of ``engine`` (``auto`` resolved here: :func:`resolve_engine`) runs its
    chunks with.

    :raises ValueError: if ``env_cfg`` cannot run on ``engine`` (:func:`engine_problem`).
    """
    engine = resolve_engine(engine, env_cfg)
    if engine == "mujoco":
        from harness.workers.mujoco_engine import MujocoObjective

        return MujocoObjective(env_cfg, policy_cfg)
    if engine != "gymnasium":
        raise ValueError(engine_problem(engine, env_cfg))
    from harness.workers.rollout import make_objective

    return make_objective(env_cfg, policy_cfg)
