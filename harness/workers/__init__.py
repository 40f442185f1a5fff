"""Rollout workers behind one ``evaluate(chunk) -> results`` call, results in task order:

* ``serial`` (:mod:`harness.workers.serial`): in the coordinator's process, for debugging and tests;
* ``process`` (:mod:`harness.workers.process`): spawned processes, each keeping its environment and
  the noise table (shared memory) alive;
* ``ray`` (:mod:`harness.workers.ray_backend`): Ray actors, locally or on a cluster.

``process`` and ``ray`` share one piece scheduler (:mod:`harness.workers.scheduler`): pieces of a
chunk handed out as workers become free, a lost worker's tasks blamed and re-run, the run stopped
with a :class:`WorkerError` when an episode keeps failing. Episodes are pure functions of their
task (:mod:`harness.workers.rollout`), so the rows are the same for every backend and worker count,
faults or not.

This package only re-exports: each backend is its own module.
"""

from __future__ import annotations

from harness.workers.process import ProcessBackend, single_threaded_children
from harness.workers.rollout import Chunk, EpisodeError, EpisodeResult, EpisodeSpec
from harness.workers.scheduler import RemoteTraceback, WorkerError, default_num_workers, split_episodes
from harness.workers.serial import SerialBackend
from harness.workers.worker import RolloutWorker, WorkerSpec

__all__ = [
    "BACKENDS",
    "Chunk",
    "EpisodeError",
    "EpisodeResult",
    "EpisodeSpec",
    "ProcessBackend",
    "RemoteTraceback",
    "RolloutWorker",
    "SerialBackend",
    "WorkerError",
    "WorkerSpec",
    "default_num_workers",
    "make_backend",
    "single_threaded_children",
    "split_episodes",
]

BACKENDS = ("serial", "process", "ray")


def make_backend(
    name: str,
    n: int | None,
    spec: WorkerSpec,
    max_retries: int = 2,
    episode_timeout_s: float | None = None,
    ray_address: str | None = None,
):
    """``serial``, ``process`` or ``ray`` with ``n`` workers (``None``: one per CPU), each built
    from ``spec``.

    :param max_retries, episode_timeout_s: see :class:`ProcessBackend` (``serial`` neither
        retries nor enforces a timeout).
    :param ray_address: ``ray`` only: ``None`` starts a local Ray instance, otherwise the
        cluster to connect to (:class:`~harness.workers.ray_backend.RayBackend`).
    :raises ValueError: for an unknown backend.
    """
    if name == "serial":
        return SerialBackend(spec, episode_timeout_s)
    if name == "process":
        return ProcessBackend(spec, n or default_num_workers(), max_retries, episode_timeout_s)
    if name == "ray":  # imported here, on purpose: Ray is optional and heavy, and only this backend needs it
        from harness.workers.ray_backend import RayBackend

        return RayBackend(spec, n or default_num_workers(), ray_address, max_retries, episode_timeout_s)
    raise ValueError(f"unknown workers.backend {name!r}; choose one of {', '.join(BACKENDS)}")
