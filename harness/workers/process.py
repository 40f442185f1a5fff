"""The ``process`` backend: spawned worker processes, each keeping its environment and noise
table alive, fed pieces of each chunk by the shared scheduler (:mod:`harness.workers.scheduler`).

Faults. An episode is a pure function of (parameters, noise offset, sign, environment seed),
so an episode lost with its worker can be re-run and gives the same numbers. The ``process``
backend therefore loses nothing to a worker fault:

* a worker process that dies (killed, out of memory, a segfault in the simulator, ``os._exit``)
  or whose episode runs longer than ``episode_timeout_s`` seconds (counted from when the worker
  begins that episode; it is then killed) is replaced by a fresh process. The episode it was
  running is re-run alone, the unfinished rest of its chunk goes back to the queue, and the
  results it had sent are kept. Each retry is logged as a warning naming the worker, its exit
  code or signal, the episode and the chunk re-run.
* an episode that fails ``max_retries + 1`` times (its first attempt and ``max_retries``
  re-runs) stops the run with a :class:`WorkerError` naming the environment id, the episode
  seed and the perturbation (see :func:`~harness.workers.rollout.describe_episode`). Deaths
  no episode can be blamed for (at start-up, while idle) are limited the same way.
* a Python exception raised by the environment is deterministic, so it is not retried: it
  stops the run at once as an :class:`~harness.workers.rollout.EpisodeError` naming the
  episode, the worker's traceback chained (``serial`` raises the same error; it neither
  retries nor enforces a timeout).
* log records of the workers (MuJoCo warnings routed by :mod:`harness.envs`, our own), at or
  above the parent's root level, are re-emitted by the parent's loggers of the same names, so
  they reach ``harness.log`` and the console.

Why our own processes, one pipe each, rather than ``concurrent.futures.ProcessPoolExecutor``:

* one dead worker breaks an executor as a whole (``BrokenProcessPool``): every worker must be
  restarted and every unfinished chunk re-run, and the executor does not say which process
  died, with which exit code, or which chunk it held;
* a running future cannot be cancelled, so a stuck worker cannot be killed through the
  executor's API (only through its private process table);
* a worker here publishes, in a small shared array, which episode of its chunk it is running
  and since when, so the parent knows which episode was running when the worker died or
  stalled: that episode is the one blamed, retried alone and named in the error, and the
  timeout is per episode. Results travel in batches (one per ``_RESULTS_EVERY_S`` seconds of
  work and one at the end of a chunk), so that knowing this costs no message per episode;
  finished episodes whose batch was not sent yet are re-run, without blame;
* the same pipe carries the worker's log records. A pipe per worker cannot be left locked by a
  worker killed in the middle of a write, unlike a shared ``multiprocessing.Queue`` (whose
  write lock that worker would hold forever, silencing every other worker).

Results come back in task order, whichever worker ran which episode, so they depend neither
on the number of workers nor on faults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler

import numpy as np

from harness.es.noise import NoiseTable
from harness.shm import SharedBlock, share_noise_table
from harness.workers.rollout import CHUNK_ARRAYS, Chunk, EpisodeError, describe_episode
from harness.workers.scheduler import Piece, PieceScheduler, RemoteTraceback, WorkerError, default_num_workers, emit
from harness.workers.worker import RolloutWorker, WorkerSpec, open_noise

log = logging.getLogger("harness.workers")

# Rollout workers are single-threaded: BLAS threads would only fight over the cores.
_WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Seconds a worker may take to exit after being asked to, before it is killed.
_CLOSE_GRACE_S = 5.0
# A worker sends the results it has at most this often (seconds of work), and at the end of a
# chunk. Each message wakes the parent, which on a busy machine takes a core from a worker: one
# message per episode cost ~35 us an episode (3x the time of 1000 sphere evaluations), one per
# 50 ms still ~2% of a short-episode HalfCheetah chunk. A death loses at most this much
# finished work (re-run, same numbers); blame and timeouts use the shared progress array.
_RESULTS_EVERY_S = 1.0
# Fields of a worker's shared progress array (float64): the index in its chunk of the episode it
# is running (-1: none begun yet, the chunk's length: all ended), and time.monotonic() when that
# episode began (CLOCK_MONOTONIC is system-wide, so the parent can compare it with its own clock),
# and how many episodes that clock is for (1; a batched engine: every episode of the chunk not yet out).
_RUNNING, _SINCE, _COVERS = 0, 1, 2


@contextlib.contextmanager
def single_threaded_children():
    """Within the block, processes started (spawned) get one BLAS/OpenMP thread each:
    rollout workers only step environments, and extra threads would fight over the cores.
    The parent's environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _WORKER_THREAD_VARS}
    os.environ.update(dict.fromkeys(_WORKER_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------
# Worker process side.
#
# Parent -> worker: ("run", chunk) | ("close", None).
# Worker -> parent:
#   ("ready", pid)                   once its RolloutWorker is built;
#   ("results", i, [EpisodeResult])  results of episodes i, i + 1, ... of the chunk (see _RESULTS_EVERY_S);
#   ("episode_error", message, tb)   if the environment raised (it then drops the chunk);
#   ("fatal", tb)                    on any other exception (it then exits);
#   ("log", LogRecord)               whenever something logs at or above the parent's level.


class _PipeQueue:
    """What :class:`logging.handlers.QueueHandler` needs of a queue: ``put_nowait`` sends the
    (already formatted, picklable) record to the parent."""

    def __init__(self, send) -> None:
        self.send = send

    def put_nowait(self, record: logging.LogRecord) -> None:
        self.send(("log", record))


def _worker_main(conn, progress, spec: WorkerSpec, log_level: int) -> None:
    """Body of a worker process: build a :class:`RolloutWorker`, then run chunks until told
    to close or until the parent goes away, publishing in ``progress`` (shared, float64,
    fields ``_RUNNING`` and ``_SINCE``) which episode it is running and since when."""
    # the parent handles Ctrl-C and SIGTERM (a scheduler stopping the job's process group) and
    # shuts us down; it kills us (SIGKILL) if we do not go when asked
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lock = threading.Lock()  # a library thread may log while the main thread sends a result

    def send(message) -> None:
        with lock:
            conn.send(message)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(_PipeQueue(send)))
    root.setLevel(log_level)
    try:
        worker = RolloutWorker(spec)
    except BaseException:  # noqa: BLE001 - the worker's start failed, whatever the cause: told to the parent, which names it
        send(("fatal", traceback.format_exc()))
        return
    try:
        send(("ready", os.getpid()))
        while True:
            try:
                command, chunk = conn.recv()
            except EOFError:  # the parent went away
                return
            if command == "close":
                return
            batch, first, sent_at = [], 0, time.monotonic()
            # a batched engine runs the piece's episodes together: its next result may take as long as
            # every episode not yet out, one after another, so the timeout covers all of them
            batched = getattr(worker.objective, "batched", False)
            # (used within this iteration only, so binding the loop's chunk late is what is meant)
            covers = (lambda done: len(chunk.episodes) - done) if batched else (lambda done: 1)  # noqa: B023
            progress[_SINCE], progress[_RUNNING], progress[_COVERS] = sent_at, 0, covers(0)
            try:
                for i, result in enumerate(worker.episodes(chunk)):
                    now = time.monotonic()
                    progress[_COVERS] = max(covers(i + 1), 1)
                    progress[_SINCE], progress[_RUNNING] = now, i + 1  # episode i + 1 begins (if any)
                    batch.append(result)
                    if now - sent_at >= _RESULTS_EVERY_S or i + 1 == len(chunk.episodes):
                        send(("results", first, batch))
                        batch, first, sent_at = [], i + 1, now
            except EpisodeError as exc:
                cause = exc.__cause__ or exc
                send(("episode_error", str(exc), "".join(traceback.format_exception(cause))))
    except BaseException:  # noqa: BLE001 - anything that ends the worker is told to the parent (a fault loses no episode)
        with contextlib.suppress(OSError):
            send(("fatal", traceback.format_exc()))
    finally:
        worker.close()


# ---------------------------------------------------------------------------------------------
# Parent side.


@dataclass
class _Worker:
    """One worker process as the parent sees it."""

    slot: int
    process: mp.process.BaseProcess
    conn: mp.connection.Connection
    progress: object  # shared float64 array, see _RUNNING and _SINCE
    ready: bool = False
    piece: Piece | None = None  # what it is running, None when idle
    done: int = 0  # episodes of ``piece`` whose results arrived (always its first ones)

    @property
    def name(self) -> str:
        return f"rollout worker {self.slot} (pid {self.process.pid})"


class ProcessBackend(PieceScheduler):
    """``n`` spawned worker processes. Tasks are cut into pieces that shrink towards the end
    (:func:`split_episodes`), handed to workers as they become free, so that episodes of uneven
    length balance out; results always come back in task order, so they
    depend neither on ``n`` nor on faults (see the module docstring for what happens on one).

    :param max_retries: re-runs allowed per episode whose worker died or timed out (>= 0); also
        the number of worker deaths in a row that no episode can be blamed for (at start-up, while
        idle) before the backend gives up.
    :param episode_timeout_s: seconds one episode may run before its worker is killed, from
        when the worker begins it (for the first episode of a chunk, from when the chunk is
        sent); ``None``: no timeout. A batched engine (``workers.engine=mujoco``) runs a piece's
        episodes together, so its next result may wait for all of them: its clock allows
        ``episode_timeout_s`` times the piece's episodes not yet returned (as Ray's deadline does).
    :raises WorkerError: from the constructor if a worker cannot start; from ``evaluate`` when
        an episode has failed ``max_retries + 1`` times, when more than ``max_retries`` workers
        died in a row with no episode to blame, or when a worker raised outside an episode.
    :raises EpisodeError: from ``evaluate`` if the environment raises (not retried).
    """

    def __init__(self, spec: WorkerSpec, n: int, max_retries: int = 2, episode_timeout_s: float | None = None) -> None:
        self.n = int(n)
        self.min_piece = spec.min_piece
        # Bytes of the pickled messages through the worker pipes, running totals (read by harness.bench);
        # what travels in shared memory (the noise table, each chunk's arrays) is not a message.
        self.bytes_sent = self.bytes_received = 0
        cpus = default_num_workers()
        if self.n > cpus:
            log.warning(
                "workers.n=%d worker processes on the %d CPUs this process may use: they share cores, so "
                "wall-clock numbers suffer (rows do not); workers.n=null uses every CPU",
                self.n,
                cpus,
            )
        # One noise table on the machine: the workers map the coordinator's (or, given only its
        # seed, one this backend draws) from shared memory; each chunk's arrays travel the same
        # way (_publish), so the pipes carry offsets, seeds and results only.
        self._own_noise: NoiseTable | None = None
        self._block: SharedBlock | None = None
        noise = spec.noise
        if not isinstance(noise, NoiseTable):  # (entropy, spawn_key), size
            noise = self._own_noise = open_noise(noise, spec.noise_size, spec.distribution, shared=True)
        self.spec = spec.with_noise(share_noise_table(noise))
        self.env_id = str(spec.env.get("id"))
        self.max_retries = int(max_retries)
        self.episode_timeout_s = None if episode_timeout_s is None else float(episode_timeout_s)
        self._ctx = mp.get_context("spawn")
        # Workers log what the parent would: records below its level are not even sent.
        self._log_level = logging.getLogger().getEffectiveLevel()
        # Worker deaths that no episode can be blamed for (at start-up, while idle, before taking
        # up a chunk), since the last episode that ended: they too are limited by max_retries.
        self._unblamed_deaths = 0
        self.workers: list[_Worker | None] = [None] * self.n
        self._start_all()

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (they change when a worker is replaced)."""
        return [w.process.pid for w in self.workers if w is not None]

    def close(self) -> None:
        """Ask idle workers to exit, kill busy or unresponsive ones, re-emit the log records
        they sent on the way out, and release the shared memory. Idempotent."""
        try:
            self._close_workers()
        finally:
            for shared in (getattr(self, "_block", None), getattr(self, "_own_noise", None)):
                if shared is not None:
                    shared.close()
            self._block = self._own_noise = None

    def _close_workers(self) -> None:
        workers = [w for w in getattr(self, "workers", []) if w is not None]
        self.workers = [None] * getattr(self, "n", 0)
        for w in workers:
            if w.piece is None:
                with contextlib.suppress(OSError):
                    self._post(w, ("close", None))
            else:
                w.process.kill()
        deadline = time.monotonic() + _CLOSE_GRACE_S
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.exitcode is None:
                log.warning("%s did not exit within %.0f s of being asked to: killing it", w.name, _CLOSE_GRACE_S)
                w.process.kill()
                w.process.join()
            with contextlib.suppress(OSError, EOFError):
                while w.conn.poll():
                    message = self._receive(w)
                    if message[0] == "log":
                        emit(message[1])
            w.conn.close()

    # -- internals ---------------------------------------------------------------------------

    def _publish(self, chunk: Chunk) -> Chunk:
        """``chunk`` with its arrays (centres, sigma, normalization) copied into a shared block
        and replaced by :class:`~harness.shm.ArrayRef` s, which workers read in place. The block
        is reused by the next call (every worker is idle or gone between calls) and replaced by a
        larger one when needed."""
        arrays = {k: np.asarray(getattr(chunk, k)) for k in CHUNK_ARRAYS if np.ndim(getattr(chunk, k)) > 0}
        sizes = [-(-a.nbytes // 64) * 64 for a in arrays.values()]  # 64-byte aligned
        if self._block is None or self._block.nbytes < sum(sizes):
            if self._block is not None:
                self._block.close()
            self._block = SharedBlock(sum(sizes))
        refs, offset = {}, 0
        for (key, a), size in zip(arrays.items(), sizes):
            self._block.array(a.shape, a.dtype, offset)[...] = a
            refs[key] = self._block.ref(a.shape, a.dtype, offset)
            offset += size
        return dataclasses.replace(chunk, **refs)

    def _start(self, slot: int) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        progress = self._ctx.RawArray("d", 3)  # no lock: one writer, and the parent reads single floats
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_end, progress, self.spec, self._log_level),
            name=f"rollout-worker-{slot}",
            daemon=True,
        )
        with single_threaded_children():
            process.start()
        child_end.close()  # so that the parent sees EOF when the worker dies
        self.workers[slot] = _Worker(slot, process, parent_end, progress)

    def _send(self, w: _Worker, piece: Piece) -> None:
        w.progress[_SINCE], w.progress[_RUNNING] = time.monotonic(), -1  # it is idle: no race
        w.progress[_COVERS] = len(piece.episodes) if self.spec.engine != "gymnasium" else 1
        w.piece, w.done = piece, 0
        try:
            self._post(w, ("run", dataclasses.replace(self._job.payload, episodes=piece.episodes)))
        except OSError:  # it died while idle
            self._lost(w, self._exit_reason(w))

    def _pump(self) -> None:
        """Wait for something to happen (a message, a worker's death, an episode's deadline)
        and handle it."""
        live = [w for w in self.workers if w is not None]
        deadlines = [d for d in map(self._deadline, live) if d is not None]
        timeout = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
        ready = set(mp.connection.wait([w.conn for w in live] + [w.process.sentinel for w in live], timeout))
        for w in live:
            if w.conn in ready or w.process.sentinel in ready:
                # read everything it sent before it went, then notice that it is gone
                if not self._drain(w) or w.process.sentinel in ready:
                    self._lost(w, self._exit_reason(w))
        now = time.monotonic()
        for w in live:
            deadline = self._deadline(w)
            if self.workers[w.slot] is w and deadline is not None and now >= deadline:
                w.process.kill()
                w.process.join(_CLOSE_GRACE_S)
                self._drain(w)  # results it sent before the kill
                self._lost(
                    w,
                    f"hit the episode timeout (workers.episode_timeout_s={self.episode_timeout_s:g} s) and was killed",
                )

    def _deadline(self, w: _Worker) -> float | None:
        """When the episode ``w`` is running times out (``time.monotonic()``), if it has a timeout."""
        if self.episode_timeout_s is None or w.piece is None:
            return None
        return w.progress[_SINCE] + self.episode_timeout_s * max(w.progress[_COVERS], 1.0)

    def _drain(self, w: _Worker) -> bool:
        """Handle every message ``w`` has sent; ``False`` once its pipe is closed (it died)."""
        try:
            while w.conn.poll():
                self._handle(w, self._receive(w))
        except (EOFError, OSError):
            return False
        return True

    def _post(self, w: _Worker, message: tuple) -> None:
        """``w.conn.send(message)``, pickled here so that ``bytes_sent`` counts it."""
        data = ForkingPickler.dumps(message)
        w.conn.send_bytes(data)
        self.bytes_sent += len(data)

    def _receive(self, w: _Worker) -> tuple:
        """``w.conn.recv()``, unpickled here so that ``bytes_received`` counts it."""
        data = w.conn.recv_bytes()
        self.bytes_received += len(data)
        return ForkingPickler.loads(data)

    def _handle(self, w: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            emit(message[1])
        elif kind == "results":
            _, first, batch = message
            self._job.store(w.piece.start + first, batch)
            self._unblamed_deaths = 0
            w.done = first + len(batch)
            if w.done == len(w.piece.episodes):
                w.piece = None
        elif kind == "ready":
            w.ready = True
        elif kind == "episode_error":
            _, text, tb = message
            w.piece = None  # the worker dropped the chunk and waits for more
            raise EpisodeError(text) from RemoteTraceback(tb)
        elif kind == "fatal":
            tb = message[1]
            last = tb.strip().splitlines()[-1] if tb.strip() else "unknown error"
            self._discard(w)
            self.workers[w.slot] = None
            what = "could not start" if not w.ready else "failed outside an episode"
            raise WorkerError(f"{w.name} {what} (environment {self.env_id}): {last}") from RemoteTraceback(tb)
        else:  # pragma: no cover - a bug in this module
            raise WorkerError(f"{w.name} sent an unknown message {kind!r}")

    def _lost(self, w: _Worker, reason: str) -> None:
        """``w`` is gone (died, or killed by us): blame the episode it was running, queue what it
        had not finished, start a replacement. :raises WorkerError: when retries run out."""
        if self.workers[w.slot] is not w:
            return  # already handled
        self._discard(w)
        self.workers[w.slot] = None
        job, piece, done = self._job, w.piece, w.done
        # Which episode it was running, read now that it is dead (final): -1 none begun yet,
        # len(piece.episodes) all ended. Results of ended episodes may have died with it (unsent).
        running = -1 if piece is None else int(w.progress[_RUNNING])
        if piece is None or not 0 <= running < len(piece.episodes):
            # No episode to blame: it died starting, idle, before taking up the chunk it was sent
            # (a kill is asynchronous: the pipe may accept a chunk for a dying process), or after
            # its last episode. Deaths like these count too, until an episode ends somewhere.
            if piece is not None:
                job.queue.appendleft(Piece(piece.start + done, piece.episodes[done:]))
            self._unblamed_deaths += 1
            when = (
                "while starting"
                if not w.ready
                else "while idle"
                if piece is None
                else "before taking up a chunk"
                if running < 0
                else "after its last episode"
            )
            if self._unblamed_deaths > self.max_retries:
                raise WorkerError(
                    f"{w.name} {reason} {when}: {self._unblamed_deaths} rollout workers in a row died "
                    f"with no episode ended in between (workers.max_retries={self.max_retries}; "
                    f"environment {self.env_id})"
                )
            log.warning(
                "%s %s %s; starting a new one%s",
                w.name,
                reason,
                when,
                ""
                if piece is None
                else f" (its unfinished tasks {piece.start + done}-{piece.start + len(piece.episodes) - 1} are re-run)",
            )
            self._start(w.slot)
            return
        index = piece.start + running  # the episode that was running
        task = piece.episodes[running]
        attempts = job.blame([index], reason)
        if attempts > self.max_retries:
            raise WorkerError(
                f"giving up on the episode in {describe_episode(self.env_id, task)} after {attempts} attempts "
                f"(workers.max_retries={self.max_retries}): the rollout worker running it {job.reasons_of(index)}. "
                "The run stops here and what it wrote so far is kept"
            )
        # Queued first: the suspect episode alone (so that a second failure is its own), then
        # the episodes that ended but whose results were lost, then the rest of the chunk.
        for first, tasks in ((running + 1, piece.episodes[running + 1 :]), (done, piece.episodes[done:running])):
            if tasks:
                job.queue.appendleft(Piece(piece.start + first, tasks))
        job.queue.appendleft(Piece(index, (task,)))
        others = len(piece.episodes) - done - 1
        log.warning(
            "%s %s in task %d (%s); re-running it alone (retry %d of %d)%s; starting a new worker",
            w.name,
            reason,
            index,
            describe_episode(self.env_id, task),
            attempts,
            self.max_retries,
            f" and the {others} other unfinished tasks of its chunk (tasks {piece.start}-"
            f"{piece.start + len(piece.episodes) - 1})"
            if others
            else "",
        )
        self._start(w.slot)

    def _discard(self, w: _Worker) -> None:
        """Kill ``w`` (if still running) and release its pipe; its slot is the caller's to fill."""
        if w.process.exitcode is None:
            w.process.kill()
        w.process.join(_CLOSE_GRACE_S)
        with contextlib.suppress(OSError):
            w.conn.close()

    @staticmethod
    def _exit_reason(w: _Worker) -> str:
        """``"was killed by signal SIGKILL"``, ``"exited with code 1"``, ... once ``w`` is gone."""
        w.process.join(_CLOSE_GRACE_S)
        code = w.process.exitcode
        if code is None:
            return "closed its pipe but did not exit"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by signal {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with code {code}"
