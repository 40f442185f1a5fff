"""Rollout workers behind one ``evaluate`` call: ``serial`` (in-process) and ``process``
(a pool of spawned processes, each keeping its environment and noise table alive)."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Sequence

from harness.workers.rollout import Chunk, EpisodeResult, EpisodeTask, RolloutWorker

__all__ = ["Chunk", "EpisodeResult", "EpisodeTask", "RolloutWorker", "WorkerError", "make_backend", "default_num_workers"]

BACKENDS = ("serial", "process")
# Rollout workers are single-threaded: BLAS threads would only fight over the cores.
_WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class WorkerError(RuntimeError):
    """A rollout worker died (killed, out of memory, crashed in native code)."""


def default_num_workers() -> int:
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def split_tasks(tasks: Sequence[EpisodeTask], n_chunks: int) -> list[tuple[EpisodeTask, ...]]:
    """Contiguous chunks of ``tasks`` in order, at most ``n_chunks`` of them."""
    size = max(1, math.ceil(len(tasks) / max(1, n_chunks)))
    return [tuple(tasks[i : i + size]) for i in range(0, len(tasks), size)]


@contextlib.contextmanager
def single_threaded_children():
    """Within the block, processes started (spawned) get one BLAS/OpenMP thread each:
    rollout workers only step environments, and extra threads would fight over the cores.
    The parent's environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _WORKER_THREAD_VARS}
    os.environ.update({k: "1" for k in _WORKER_THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class SerialBackend:
    """Runs every episode in this process: for debugging and tests."""

    n = 1

    def __init__(self, worker_args: tuple) -> None:
        self.worker = RolloutWorker(*worker_args)

    def evaluate(self, chunk: Chunk) -> list[EpisodeResult]:
        """Run every task of ``chunk``; results in task order."""
        return self.worker.run(chunk)

    def close(self) -> None:
        self.worker.close()


_WORKER: RolloutWorker | None = None


def _init_worker(worker_args: tuple) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts us down
    _WORKER = RolloutWorker(*worker_args)


def _run_chunk(chunk: Chunk) -> list[EpisodeResult]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(chunk)


def _ready() -> int:
    time.sleep(0.01)  # so that one worker cannot answer every warm-up call by itself
    return os.getpid()


class ProcessBackend:
    """A pool of ``n`` spawned processes. Tasks are cut into a few chunks per worker so that
    episodes of uneven length balance out; results always come back in task order, so they
    do not depend on ``n``.

    :raises WorkerError: from ``evaluate`` if a worker process dies.
    """

    chunks_per_worker = 4

    def __init__(self, worker_args: tuple, n: int) -> None:
        self.n = int(n)
        try:
            with single_threaded_children():
                self.pool = ProcessPoolExecutor(
                    self.n, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(worker_args,)
                )
                # Wait until every worker has started (and ignores SIGINT), so that set-up
                # errors surface here and start-up time is not billed to the first epoch.
                started: set[int] = set()
                while len(started) < self.n:
                    started |= set(self._call(lambda: [self.pool.submit(_ready) for _ in range(self.n)]))
        except BaseException:
            self.close()
            raise

    def _call(self, submit) -> list:
        try:
            return [f.result() for f in submit()]
        except BrokenProcessPool as exc:
            raise WorkerError(
                "a rollout worker process died (killed, out of memory, or crashed in native code); "
                "the run stops here and what it wrote so far is kept"
            ) from exc

    def evaluate(self, chunk: Chunk) -> list[EpisodeResult]:
        """Run every task of ``chunk`` on the pool; results in task order."""
        parts = split_tasks(chunk.tasks, self.n * self.chunks_per_worker)

        def submit():
            return [self.pool.submit(_run_chunk, Chunk(**{**chunk.__dict__, "tasks": p})) for p in parts]

        return [r for part in self._call(submit) for r in part]

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def make_backend(name: str, n: int | None, worker_args: tuple):
    """``serial`` or ``process`` with ``n`` workers (``None``: one per CPU).

    :raises ValueError: for an unknown backend.
    """
    if name == "serial":
        return SerialBackend(worker_args)
    if name == "process":
        return ProcessBackend(worker_args, n or default_num_workers())
    raise ValueError(f"unknown workers.backend {name!r}; choose one of {', '.join(BACKENDS)}")
