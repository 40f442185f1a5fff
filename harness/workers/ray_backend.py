"""The ``ray`` backend: rollout workers as Ray actors, on a local Ray instance started for the run
(``workers.ray_address: null``) or on an existing cluster (``"auto"``, ``"ray://host:port"``).

Protocol. The same as the ``process`` backend's, with Ray's object store in place of POSIX shared
memory:

* the coordinator's noise table goes into the object store once (``ray.put``); each actor gets
  its reference and reads the table in place, a read-only zero-copy view, so a node holds one
  copy in its object store however many actors it runs (Ray copies it to another node once, for
  that node's first actor). The driver keeps its own copy as well, so the driver's machine holds
  two: the strategy samples offsets from it, and a view into the object store would not outlive
  the Ray instance, which ``close`` may stop before the trainer is done with the table;
* each ``evaluate`` call puts the chunk's centres, sigma and normalization into the object store
  once; the tasks are cut into pieces that shrink towards the end (``split_episodes``), each sent
  as that reference plus the piece's offsets, signs, seeds and centre indices (a ``(k, 4)``
  int64 array; with ``workers.ship=vectors`` also the episodes' parameters, a ``(k, d)`` float64
  array), and handed out as actors become free (``ray.wait``), so that episodes of uneven
  length balance out;
* an actor returns its piece's :class:`~harness.workers.rollout.EpisodeResult` s and the log
  records its process emitted meanwhile. Results are put back in task order, so they depend
  neither on the number of actors nor on faults, and ``metrics.csv`` is the ``process``
  backend's, row for row, for the same seed.

Faults, as in the ``process`` backend (:mod:`harness.workers`), but known per piece rather than
per episode (an actor reports when its piece ends, not as each episode begins):

* an actor that dies (killed, out of memory, a segfault in the simulator, ``ray.kill``), or whose
  piece outlives its deadline (``workers.episode_timeout_s`` times the piece's episodes, counted
  from when the piece was sent; it is then killed with ``ray.kill``), is replaced by a new actor.
  The episodes of its piece are re-run; if the piece held more than one, one at a time, so that
  an episode that fails again is known and named, and from then on the timeout is per episode.
  Each retry is logged as a warning naming the actor, what happened and the tasks re-run;
* a task that fails ``max_retries + 1`` times stops the run with a
  :class:`~harness.workers.WorkerError` naming the environment id, the episode seed and the
  perturbation (:func:`~harness.workers.rollout.describe_episode`); with ``max_retries = 0`` a
  piece of several episodes is not split, and the error names the piece's tasks. Actors that die
  before they are ready are limited the same way; one whose set-up raises stops the run at once.
  An actor that dies while idle is noticed when it is sent a piece, which then counts as failed;
* a Python exception raised by the environment is not retried: it stops the run as an
  :class:`~harness.workers.rollout.EpisodeError` naming the episode, the actor's traceback
  chained as a :class:`~harness.workers.RemoteTraceback`;
* an actor's log records at or above the driver's root level are re-emitted by the driver's
  loggers of the same names, so they reach ``harness.log`` and the console. Worker stdout and
  stderr are not forwarded (``log_to_driver=False``: Ray would prefix and print every line);
  Ray's own messages below ERROR are silenced on the driver, but a worker dying unexpectedly is
  still reported by the raylet on stderr.

Start-up and shutdown. Ray is imported only when this backend is chosen. With no address, a new
local instance is started (``address="local"``: never an instance found through ``RAY_ADDRESS``
or ``/tmp/ray``) with ``num_cpus = n`` and no dashboard; if this process is already connected to
Ray (a notebook, the tests), that connection is used. Actors take one CPU each and run with one
BLAS/OpenMP thread. They import this checkout's ``harness`` (its parent folder, and the current
folder, are put on their ``PYTHONPATH``); when connecting to a cluster the ``harness`` package
is also uploaded (the job's ``py_modules``), so nodes need the project's dependencies installed
but not its code. Nothing else is uploaded. ``close`` kills the actors and stops the local
instance if this backend started it, never a cluster it connected to.

Signals. ``ray.init`` replaces the driver's SIGTERM handler: the runner's is put back. The local
instance's processes (GCS, raylet, helpers) start in the driver's process group with SIGINT
(Ray's doing) and SIGTERM (ours, :func:`_sigterm_blocked`) blocked, and actors run in process
groups of their own, so Ctrl-C or a scheduler's SIGTERM to the whole group reach the driver
alone, and the run stops after the current epoch as ``interrupted``, as with ``process``
(otherwise the GCS would die mid-epoch, and Ray ends a driver whose GCS is gone, with no
``summary.json``). The cost: ``ray.shutdown`` waits 1 s for each of them to exit on SIGTERM
before it kills them, a few seconds at the end of a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import os
import pickle
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import harness
from harness.es.noise import NoiseTable
from harness.workers.rollout import CHUNK_ARRAYS, Chunk, EpisodeError, EpisodeSpec, describe_episode
from harness.workers.scheduler import Piece, PieceScheduler, RemoteTraceback, WorkerError, emit
from harness.workers.worker import RolloutWorker, WorkerSpec, open_noise

log = logging.getLogger("harness.workers")

# Longest a single ray.wait blocks, so that a second Ctrl-C (KeyboardInterrupt) is seen promptly.
_POLL_S = 1.0
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# ---------------------------------------------------------------------------------------------
# Actor side.


class _ListQueue:
    """What :class:`logging.handlers.QueueHandler` needs of a queue: records (already formatted,
    picklable) are kept until the actor's next reply carries them to the driver."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []
        self.lock = threading.Lock()

    def put_nowait(self, record: logging.LogRecord) -> None:
        with self.lock:
            self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self.lock:
            records, self.records = self.records, []
        return records


class RolloutActor:
    """The body of a rollout actor (made remote with ``ray.remote`` by :class:`RayBackend`): one
    :class:`RolloutWorker` over the noise table in the object store.

    Replies are tuples, never exceptions, so that the driver tells an environment's error from a
    dead actor: ``ready()`` -> ``("ready", pid, records)`` | ``("fatal", traceback, records)``;
    ``run(...)`` -> ``("results", [EpisodeResult], records)`` |
    ``("episode_error", message, traceback, records)``.
    """

    def __init__(self, spec: WorkerSpec, noise: np.ndarray, log_level: int) -> None:
        if threading.current_thread() is threading.main_thread():
            # the driver handles Ctrl-C and SIGTERM and ends us (we have our own process group:
            # this only guards against a signal sent to us by name)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._queue = _ListQueue()
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(logging.handlers.QueueHandler(self._queue))
        root.setLevel(log_level)
        self.worker: RolloutWorker | None = None
        self.error: str | None = None
        try:
            self.worker = RolloutWorker(spec.with_noise(noise))
        except BaseException:  # noqa: BLE001 - kept and reported on the first call, as the process backend does
            self.error = traceback.format_exc()

    def ready(self) -> tuple:
        """``("ready", pid, records)``, or ``("fatal", traceback, records)`` if building the worker raised;
        ``records`` are the log records queued since the last reply."""
        if self.error is not None:
            return "fatal", self.error, self._queue.take()
        return "ready", os.getpid(), self._queue.take()

    def run(self, arrays: dict, tasks: np.ndarray, params: np.ndarray | None = None) -> tuple:
        """The episodes ``tasks`` (rows: offset, sign, env seed, centre index) with the chunk's
        ``arrays`` (centres, sigma, normalization, ``collect_obs_stats``), read in place from the
        object store; ``params``, shape ``(len(tasks), d)``: each episode's parameters
        (``workers.ship=vectors``), or ``None``."""
        episodes = [EpisodeSpec(int(o), int(s), int(e), int(c)) for o, s, e, c in tasks]
        if params is not None:
            episodes = [dataclasses.replace(e, params=p) for e, p in zip(episodes, params)]
        chunk = Chunk(episodes=tuple(episodes), **arrays)
        try:
            results = self.worker.run(chunk)
        except EpisodeError as exc:
            cause = exc.__cause__ or exc
            return "episode_error", str(exc), "".join(traceback.format_exception(cause)), self._queue.take()
        return "results", results, self._queue.take()


# ---------------------------------------------------------------------------------------------
# Driver side.

# Seconds to wait for a TCP connection to the cluster before saying it cannot be reached (Ray
# itself retries an unreachable address for minutes, printing only its C++ warnings).
_CONNECT_TIMEOUT_S = 10.0


def _cluster_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` that ``ray.init(address)`` will connect to, when it can be told without
    Ray: ``host:port`` (the GCS), ``ray://host:port`` (Ray Client), ``auto`` (``RAY_ADDRESS``,
    else the latest cluster started on this machine, as Ray resolves it); ``None`` otherwise."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            latest = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
            with contextlib.suppress(OSError):
                address = latest.read_text().strip()
    address = address.removeprefix("ray://")
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _check_reachable(address: str) -> None:
    """:raises WorkerError: if nothing answers at the cluster's address within ``_CONNECT_TIMEOUT_S``."""
    import socket

    endpoint = _cluster_endpoint(address)
    if endpoint is None:
        return  # let Ray say what it makes of it
    try:
        socket.create_connection(endpoint, timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise WorkerError(
            f"cannot reach the Ray cluster of workers.ray_address={address!r} at "
            f"{endpoint[0]}:{endpoint[1]} ({exc or type(exc).__name__}); start one with `ray start "
            "--head`, or set workers.ray_address=null for a local Ray instance of the run's own"
        ) from None


@dataclass
class _Actor:
    """One actor as the driver sees it."""

    slot: int
    handle: object
    pending: object  # ObjectRef of its ready() call until it is ready, then of its run() call while busy
    pid: int | None = None
    piece: Piece | None = None  # what it is running, None when idle (or starting)
    deadline: float | None = None  # time.monotonic() when its piece times out

    @property
    def ready(self) -> bool:
        return self.pid is not None

    @property
    def name(self) -> str:
        return f"rollout actor {self.slot}" + (f" (pid {self.pid})" if self.pid else "")


def _short_death(exc: BaseException) -> str:
    """What Ray says about an actor's death, in one line: ``"died (its worker process has died.
    Worker exit type: SYSTEM_ERROR ...)"``, without its list of common causes."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = next(
        (ln for ln in reversed(lines) if ln.startswith("The actor is dead because")),
        lines[-1] if lines else type(exc).__name__,
    )
    detail = detail.removeprefix("The actor is dead because ").split(" Some common causes")[0].rstrip(".")
    return f"died ({detail})"


@contextlib.contextmanager
def _sigterm_blocked():
    """Within the block, SIGTERM is blocked in this thread and so in the processes it starts (a
    signal mask survives fork and exec); it is delivered, if it came meanwhile, on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _package() -> Path:
    """The folder of the ``harness`` package this process runs."""
    return Path(harness.__file__).resolve().parent


def runtime_env() -> dict:
    """The actors' runtime environment: one BLAS/OpenMP thread, and this checkout's ``harness``
    (and the current folder, for ``env.id=module:Name`` environments) importable."""
    paths = list(dict.fromkeys([str(_package().parent), os.getcwd()]))
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths), **dict.fromkeys(_THREAD_VARS, "1")}}


class RayBackend(PieceScheduler):
    """``n`` Ray actors (see the module docstring for the protocol and for what happens on a fault).

    :param spec: what every actor is built from; its ``noise`` the coordinator's
        :class:`NoiseTable`, or ``(entropy, spawn_key)`` with ``noise_size`` for a table this
        backend draws.
    :param address: ``None``: start a local Ray instance (``num_cpus = n``) unless this process is
        already connected to one; otherwise what ``ray.init(address=...)`` takes (``"auto"``,
        ``"ray://host:port"``).
    :param max_retries: re-runs allowed per task whose actor died or timed out (>= 0); also the
        number of actors in a row that may die before they are ready.
    :param episode_timeout_s: seconds one episode may run (a piece of ``k`` episodes: ``k`` times
        that, from when it is sent); ``None``: no timeout.
    :raises WorkerError: from the constructor if an actor cannot start; from ``evaluate`` when a
        task has failed ``max_retries + 1`` times, or an actor raised outside an episode.
    :raises EpisodeError: from ``evaluate`` if the environment raises (not retried).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        n: int,
        address: str | None = None,
        max_retries: int = 2,
        episode_timeout_s: float | None = None,
    ) -> None:
        import ray

        self._ray = ray
        self.n = int(n)
        self.min_piece = spec.min_piece
        self.max_retries = int(max_retries)
        self.episode_timeout_s = None if episode_timeout_s is None else float(episode_timeout_s)
        self.env_id = str(spec.env.get("id"))
        self._log_level = logging.getLogger().getEffectiveLevel()
        self._owns_ray = False
        self._unready_deaths = 0
        # Bytes of the messages between driver and actors, running totals (read by harness.bench):
        # sent = each piece's task array and object reference; received = each reply, pickled.
        # The per-call object of centres, sigma and normalization is counted apart, in
        # bytes_broadcast: Ray moves it once per node, and not at all to actors on the driver's node.
        self.bytes_sent = self.bytes_received = self.bytes_broadcast = 0
        self.workers: list[_Actor | None] = [None] * self.n
        try:
            self._connect(address)
            if isinstance(spec.noise, NoiseTable):
                noise_ref = ray.put(spec.noise.noise)
            else:  # (entropy, spawn_key), size: drawn here, only the object store keeps it
                table = open_noise(spec.noise, spec.noise_size, spec.distribution)
                noise_ref = ray.put(table.noise)
                del table
            self._noise_ref = noise_ref
            # the table travels apart: Ray resolves an object reference only as a top-level argument
            self._spec = spec.with_noise(None)
            self._remote = ray.remote(RolloutActor).options(
                num_cpus=1, max_restarts=0, max_task_retries=0, runtime_env=runtime_env()
            )
            self._start_all()
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """Process ids of the current actors (they change when an actor is replaced)."""
        return [a.pid for a in self.workers if a is not None and a.pid is not None]

    @property
    def actors(self) -> list[_Actor | None]:
        """The actors by slot (``None``: an empty slot, filled at the next call)."""
        return self.workers

    def _publish(self, chunk: Chunk) -> object:
        """The chunk's centres, sigma, normalization and ``collect_obs_stats`` put into the object store
        once per call, whatever the number of actors and pieces: their ``ObjectRef``."""
        arrays = {k: getattr(chunk, k) for k in CHUNK_ARRAYS}
        arrays["collect_obs_stats"] = chunk.collect_obs_stats
        self.bytes_broadcast += sum(np.asarray(v).nbytes for v in arrays.values())
        return self._ray.put(arrays)

    def close(self) -> None:
        """Kill the actors and, if this backend started it, stop the local Ray instance. Idempotent."""
        for a in getattr(self, "workers", []):
            if a is not None:
                self._discard(a)
        self._noise_ref = None
        if getattr(self, "_owns_ray", False):
            self._owns_ray = False
            self._ray.shutdown()

    # -- internals ---------------------------------------------------------------------------

    def _connect(self, address: str | None) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        # ray.init installs its own SIGTERM handler (sys.exit); the runner's must stay
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        try:
            if address is None:
                # its processes start in our process group: with SIGTERM blocked, so that a
                # SIGTERM to the group is the driver's alone (see "Signals" above)
                with _sigterm_blocked():
                    ray.init(
                        address="local",
                        num_cpus=self.n,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
            else:
                _check_reachable(address)
                try:  # the harness package for nodes without this checkout: only a job-level option
                    ray.init(
                        address=address,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        runtime_env={"py_modules": [str(_package())]},
                    )
                except ConnectionError as exc:
                    raise WorkerError(
                        f"cannot connect to the Ray cluster at workers.ray_address={address!r} "
                        f"({exc}); start one with `ray start --head` (if it uses token authentication, "
                        "as `ray start` does by default since Ray 2.59, export RAY_AUTH_MODE=token "
                        "here too), or set workers.ray_address=null for a local Ray instance of the "
                        "run's own"
                    ) from exc
        finally:
            if main and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self._owns_ray = address is None
        if address is not None:
            cpus = ray.cluster_resources().get("CPU", 0)
            if cpus < self.n:
                log.warning(
                    "the Ray cluster at %s has %g CPUs for workers.n=%d actors of one CPU each: the rest "
                    "wait until CPUs free up",
                    address,
                    cpus,
                    self.n,
                )

    def _start(self, slot: int) -> None:
        handle = self._remote.remote(self._spec, self._noise_ref, self._log_level)
        self.workers[slot] = _Actor(slot, handle, handle.ready.remote())

    def _discard(self, a: _Actor) -> None:
        """Kill ``a``; its slot is empty until the next :meth:`_start`."""
        with contextlib.suppress(Exception):
            self._ray.kill(a.handle)
        if self.workers[a.slot] is a:
            self.workers[a.slot] = None

    def _send(self, a: _Actor, piece: Piece) -> None:
        job = self._job
        tasks = np.array([(t.offset, t.sign, t.env_seed, t.center) for t in piece.episodes], dtype=np.int64)
        # workers.ship=vectors: each episode's parameters go with its piece, as one (k, d) array
        params = None if piece.episodes[0].params is None else np.stack([t.params for t in piece.episodes])
        a.piece, a.pending = piece, a.handle.run.remote(job.payload, tasks, params)
        self.bytes_sent += tasks.nbytes + len(job.payload.binary()) + (0 if params is None else params.nbytes)
        a.deadline = (
            None if self.episode_timeout_s is None else time.monotonic() + self.episode_timeout_s * len(piece.episodes)
        )

    def _pump(self) -> None:
        """Wait for a reply (or an actor's death, or a deadline) and handle it."""
        live = [a for a in self.workers if a is not None and a.pending is not None]
        deadlines = [a.deadline for a in live if a.deadline is not None]
        timeout = _POLL_S if not deadlines else min(_POLL_S, max(0.0, min(deadlines) - time.monotonic()))
        done, _ = self._ray.wait([a.pending for a in live], num_returns=1, timeout=timeout)
        for a in live:
            if a.pending in done:
                self._reply(a)
        now = time.monotonic()
        for a in live:
            if self.workers[a.slot] is a and a.deadline is not None and now >= a.deadline:
                self._discard(a)
                self._lost(
                    a,
                    f"hit the episode timeout (workers.episode_timeout_s={self.episode_timeout_s:g} s, "
                    f"{len(a.piece.episodes)} episode(s)) and was killed",
                )

    def _reply(self, a: _Actor) -> None:
        ray = self._ray
        ref, a.pending = a.pending, None
        try:
            reply = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            if exc.actor_init_failed:  # e.g. harness not importable in the actor
                self._discard(a)
                raise WorkerError(f"{a.name} could not start (environment {self.env_id}): {exc}") from None
            self._discard(a)
            self._lost(a, _short_death(exc))
            return
        except ray.exceptions.RayTaskError as exc:  # a bug in RolloutActor
            self._discard(a)
            raise WorkerError(f"{a.name} failed outside an episode (environment {self.env_id}): {exc}") from None
        except ray.exceptions.RayError as exc:  # e.g. its runtime environment could not be set up
            self._discard(a)
            raise WorkerError(f"{a.name} could not start (environment {self.env_id}): {exc}") from None
        self.bytes_received += len(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        kind, *body, records = reply
        for record in records:
            emit(record)
        if kind == "ready":
            a.pid = body[0]
        elif kind == "fatal":
            tb = body[0]
            self._discard(a)
            raise WorkerError(
                f"{a.name} could not start (environment {self.env_id}): {tb.strip().splitlines()[-1]}"
            ) from RemoteTraceback(tb)
        elif kind == "results":
            self._job.store(a.piece.start, body[0])
            self._unready_deaths = 0
            a.piece = a.deadline = None
        elif kind == "episode_error":
            text, tb = body
            a.piece = a.deadline = None  # it dropped the piece and waits for more
            raise EpisodeError(text) from RemoteTraceback(tb)
        else:  # pragma: no cover - a bug in this module
            raise WorkerError(f"{a.name} sent an unknown reply {kind!r}")

    def _lost(self, a: _Actor, reason: str) -> None:
        """``a`` is gone (died, or killed by us): count a failure against every task of its piece,
        queue them again (one at a time), start a replacement.
        :raises WorkerError: when retries run out."""
        piece = a.piece
        if piece is None:  # died before it was ready
            self._unready_deaths += 1
            if self._unready_deaths > self.max_retries:
                raise WorkerError(
                    f"{a.name} {reason} while starting: {self._unready_deaths} rollout actors in a row "
                    f"died before they were ready (workers.max_retries={self.max_retries}; "
                    f"environment {self.env_id})"
                )
            log.warning("%s %s while starting; starting a new one", a.name, reason)
            self._start(a.slot)
            return
        job = self._job
        indices = range(piece.start, piece.start + len(piece.episodes))
        attempts = job.blame(indices, reason)
        if attempts > self.max_retries:
            worst = next(i for i in indices if job.failures[i] == attempts)
            reasons = job.reasons_of(worst)
            if len(piece.episodes) == 1:
                what = f"the episode in {describe_episode(self.env_id, piece.episodes[0])}"
            else:
                what = f"one of the {len(piece.episodes)} episodes of {piece.span} ({self._seeds(piece)})"
            raise WorkerError(
                f"giving up on {what} after {attempts} attempts (workers.max_retries={self.max_retries}):"
                f" the rollout actor running it {reasons}. The run stops here and what it wrote so far "
                "is kept"
            )
        for k in reversed(range(len(piece.episodes))):  # queued first, one episode each
            job.queue.appendleft(Piece(piece.start + k, (piece.episodes[k],)))
        if len(piece.episodes) == 1:
            log.warning(
                "%s %s in task %d (%s); re-running it (retry %d of %d); starting a new actor",
                a.name,
                reason,
                piece.start,
                describe_episode(self.env_id, piece.episodes[0]),
                attempts,
                self.max_retries,
            )
        else:
            log.warning(
                "%s %s while running %s (%s); re-running them one at a time (retry %d of %d); starting a new actor",
                a.name,
                reason,
                piece.span,
                self._seeds(piece),
                attempts,
                self.max_retries,
            )
        self._start(a.slot)

    def _seeds(self, piece: Piece, most: int = 6) -> str:
        """``"environment Hopper-v5, episode seeds 12, 13, 14"`` for a piece of several episodes."""
        seeds = [str(t.env_seed) for t in piece.episodes]
        if len(seeds) > most:
            seeds = seeds[: most - 1] + ["...", seeds[-1]]
        return f"environment {self.env_id}, episode seeds {', '.join(seeds)}"
