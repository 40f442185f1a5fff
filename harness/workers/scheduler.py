"""The piece scheduler the ``process`` and ``ray`` backends share.

An ``evaluate`` call cuts the chunk's tasks into pieces that shrink towards the end
(:func:`split_episodes`), hands a piece to each ready, idle worker, and waits for something to happen
(a result, a death, a deadline) until every task has its result; results are put back in task
order, so they depend neither on the number of workers nor on faults. A worker lost with a piece
is blamed: the failures of each task are counted (:meth:`Job.blame`), its tasks queued again, and
a task that failed ``max_retries + 1`` times stops the run (:class:`WorkerError`). What a backend
knows of a death differs, so each says which tasks to blame and how to re-queue them:

* ``process`` (:mod:`harness.workers.process`) knows which episode of its piece a worker was
  running, so it blames that episode alone and re-runs it alone;
* ``ray`` (:mod:`harness.workers.ray_backend`) learns only when a piece ends, so it blames every
  task of the piece and re-runs them one at a time.

A backend subclasses :class:`PieceScheduler` and provides the hooks :meth:`~PieceScheduler._start`,
:meth:`~PieceScheduler._publish`, :meth:`~PieceScheduler._send`, :meth:`~PieceScheduler._pump` and
:meth:`~PieceScheduler._discard`; its worker records have ``slot``, ``ready`` and ``piece``.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.machine import default_num_workers  # noqa: F401  (re-exported by harness.workers)
from harness.workers.rollout import Chunk, EpisodeResult, EpisodeSpec

T = TypeVar("T")  # a task: an EpisodeSpec, or anything a caller cuts the same way (harness.bench.simulate)


class WorkerError(RuntimeError):
    """A rollout worker failed: it died (killed, out of memory, crashed in native code) or timed
    out on the same episode more than ``max_retries`` times, could not start, or raised outside
    an episode."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker; chained as the ``__cause__``
    of the error raised in the coordinator, so that it is printed with it."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def split_episodes(tasks: Sequence[T], n_workers: int, min_size: int = 1) -> list[tuple[T, ...]]:
    """Contiguous pieces of ``tasks``, in order, shrinking towards the end: each is
    ``ceil(remaining / (2 n_workers))`` tasks long (guided self-scheduling, Polychronopoulos and
    Kuck 1987). The first pieces keep every worker busy for few messages; the last, a task or
    two each, even out the finish when episodes differ in length (Humanoid's last from 17 to
    1000 steps), where equal pieces leave workers idle at the end of each generation.
    ``n_workers * (2 ln(len(tasks) / n_workers) + 2)`` pieces or so. No piece but the last is
    shorter than ``min_size`` (a batched engine's smallest worthwhile batch), or than an equal share,
    ``ceil(len(tasks) / n_workers)``, where that is smaller: a population too small to give every
    worker ``min_size`` episodes is shared out rather than left to one worker (Salimans et al.'s 20
    episodes on 2 workers of the mujoco engine: two pieces of 10, not 16 and 4)."""
    min_size = min(min_size, math.ceil(len(tasks) / max(1, n_workers)))
    pieces, start, divisor = [], 0, 2 * max(1, n_workers)
    while start < len(tasks):
        size = max(math.ceil((len(tasks) - start) / divisor), min_size)
        pieces.append(tuple(tasks[start : start + size]))
        start += size
    return pieces


@dataclass
class Piece:
    """Consecutive tasks of the chunk being evaluated, ``start`` the index of the first."""

    start: int
    episodes: tuple[EpisodeSpec, ...]

    @property
    def span(self) -> str:
        """``"task 7"`` or ``"tasks 7-12"``."""
        end = self.start + len(self.episodes) - 1
        return f"task {self.start}" if end == self.start else f"tasks {self.start}-{end}"


@dataclass
class Job:
    """The state of one ``evaluate`` call.

    :param payload: the chunk as the backend's workers receive it (:meth:`PieceScheduler._publish`).
    :param results: one slot per task, in task order.
    :param queue: the pieces not handed out yet, the next one first.
    """

    payload: object
    results: list
    queue: collections.deque
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # task index -> count
    reasons: dict[int, list[str]] = dataclasses.field(default_factory=dict)  # task index -> what went wrong
    remaining: int = 0

    def store(self, start: int, results: list[EpisodeResult]) -> None:
        """The results of tasks ``start``, ``start + 1``, ..."""
        self.results[start : start + len(results)] = results
        self.remaining -= len(results)

    def blame(self, indices: Sequence[int], reason: str) -> int:
        """Count a failure, for ``reason``, against each task of ``indices``; the most attempts any
        of them has now had."""
        for i in indices:
            self.failures[i] += 1
            self.reasons.setdefault(i, []).append(reason)
        return max(self.failures[i] for i in indices)

    def reasons_of(self, index: int) -> str:
        """What went wrong with task ``index``, each distinct reason once, in order."""
        return "; ".join(dict.fromkeys(self.reasons[index]))


def emit(record: logging.LogRecord) -> None:
    """Re-emit a worker's log record through this process's logger of the same name (its handlers
    and its ancestors': ``harness.log`` and the console), if that logger is enabled for its level."""
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


class PieceScheduler:
    """``evaluate`` on ``n`` workers, fed piece by piece (the module docstring). Subclasses set
    ``n`` and ``workers`` (one record or ``None`` per slot) and provide the hooks below."""

    n: int
    workers: list
    min_piece: int = 1  # the fewest episodes a piece holds, but a chunk's last (WorkerSpec.min_piece)
    _job: Job | None = None

    def evaluate(self, chunk: Chunk) -> list[EpisodeResult]:
        """Run every task of ``chunk`` on the workers; results in task order."""
        queue, start = collections.deque(), 0
        for part in split_episodes(chunk.episodes, self.n, self.min_piece):
            queue.append(Piece(start, part))
            start += len(part)
        for slot, w in enumerate(self.workers):
            if w is None:  # discarded when a previous call failed
                self._start(slot)
        job = self._job = Job(self._publish(chunk), [None] * len(chunk.episodes), queue, remaining=len(chunk.episodes))
        try:
            while job.remaining:
                self._dispatch()
                self._pump()
        except BaseException:
            # The run stops (or the caller gives up on this chunk): busy workers would finish pieces
            # nobody reads before taking the next call's, and an idle pool is what that call expects.
            for w in self.workers:
                if w is not None and w.piece is not None:
                    self._discard(w)
                    self.workers[w.slot] = None  # replaced at the next call
            raise
        finally:
            self._job = None
        return job.results

    def _start_all(self) -> None:
        """Start a worker in every slot and wait until each is ready, so that set-up errors surface in
        the constructor and start-up time is not billed to the first epoch. On failure, :meth:`close` first."""
        try:
            for slot in range(self.n):
                self._start(slot)
            while not all(w is not None and w.ready for w in self.workers):
                self._pump()
        except BaseException:
            self.close()
            raise

    def _dispatch(self) -> None:
        """Hand queued pieces to idle, ready workers."""
        job = self._job
        for w in self.workers:
            if not job.queue:
                return
            if w is None or not w.ready or w.piece is not None:
                continue
            self._send(w, job.queue.popleft())

    # -- the backend's hooks ------------------------------------------------------------------

    def _start(self, slot: int) -> None:
        """Start a worker in ``slot`` (``workers[slot]``), not ready yet."""
        raise NotImplementedError

    def _publish(self, chunk: Chunk) -> object:
        """``chunk`` as the workers receive it (its arrays in shared memory, in an object store, ...)."""
        raise NotImplementedError

    def _send(self, worker, piece: Piece) -> None:
        """Hand ``piece`` of the current job to the idle, ready ``worker``."""
        raise NotImplementedError

    def _pump(self) -> None:
        """Wait for something to happen (a message, a death, a deadline) and handle it: store
        results in the job, blame and re-queue what a lost worker held, start its replacement."""
        raise NotImplementedError

    def _discard(self, worker) -> None:
        """Stop ``worker`` (if it still runs) and release what it holds; its slot is the caller's to fill."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop every worker and release what the backend holds; idempotent."""
        raise NotImplementedError
