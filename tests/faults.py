"""What the fault tests of every rollout backend share (tests/test_worker_faults.py,
tests/test_ray_backend.py): a chunk of episodes of ``tests.envs:Faulty-v0``, which misbehaves on
one episode seed, and its results when nothing goes wrong."""

import time

import numpy as np
import pytest

from harness.workers import Chunk, EpisodeSpec, WorkerSpec, make_backend

ENV_ID = "tests.envs:Faulty-v0"
FAULT_SEED = 104
# Every task has its own seed and offset, so a message naming one names exactly one task.
TASKS = tuple(EpisodeSpec(10 + i, (1, -1)[i % 2], 100 + i) for i in range(12))
FAULTY = TASKS[4]  # seed 104: offset 14, sign +1
NOISE = np.random.SeedSequence(0, spawn_key=(0,))


def faulty_args(**kwargs) -> WorkerSpec:
    """The :class:`WorkerSpec` of a FaultyEnv with ``kwargs`` and a linear policy (3 parameters)."""
    env_cfg = {"id": ENV_ID, "kwargs": kwargs, "max_episode_steps": None}
    return WorkerSpec(env_cfg, {"name": "linear"}, (NOISE.entropy, NOISE.spawn_key), 1000)


def faulty_chunk(tasks=TASKS) -> Chunk:
    return Chunk(np.array([[0.3, -0.2, 0.1]]), 0.5, np.zeros(2), np.ones(2), tuple(tasks), True)


def numbers(results) -> list[tuple]:
    """Everything an episode result carries, as comparable tuples."""
    return [
        (r.episode_return, r.length, r.terminated, r.obs_stat.count, *r.obs_stat.mean, *r.obs_stat.m2) for r in results
    ]


def evaluate_until_it_fails(kind: str, n: int, marker, fault: str, error: type, **backend_kwargs) -> tuple:
    """Evaluate :func:`faulty_chunk` on ``n`` workers of backend ``kind`` whose environment causes
    ``fault`` on :data:`FAULT_SEED` (a hang lasts 60 s), appending to ``marker``.

    :returns: ``(the error, seconds until it was raised)``; the test fails unless it is an ``error``.
    """
    extra = {"hang_s": 60} if fault == "hang" else {}
    backend = make_backend(
        kind, n, faulty_args(fault=fault, seed=FAULT_SEED, marker=str(marker), **extra), **backend_kwargs
    )
    try:
        start = time.monotonic()
        with pytest.raises(error) as info:
            backend.evaluate(faulty_chunk())
        return info.value, time.monotonic() - start
    finally:
        backend.close()


def marker_lines(path) -> list[str]:
    """The lines a FaultyEnv appended to its ``marker`` file: one per fault it caused."""
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="module")
def expected():
    """The chunk's results without any fault (in-process)."""
    backend = make_backend("serial", 1, faulty_args(fault="exit", seed=-1))
    try:
        result = numbers(backend.evaluate(faulty_chunk()))
    finally:
        backend.close()
    assert len({n[1] for n in result}) > 1, "episodes of different lengths make a stronger test"
    return result
