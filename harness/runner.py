"""The epoch loop shared by every algorithm: budget, timing, evaluation, tracking, final save.

A run directory always ends consistent: ``config.yaml`` from the start, ``metrics.csv``
up to the last finished epoch, and ``summary.json`` whose ``status`` says how the run
ended (``completed``, ``interrupted`` on Ctrl-C or SIGTERM, ``failed`` with the error), plus
the final policy (``policy.npz``, or the trainer's own format) whenever there is one to save.

The first SIGINT (Ctrl-C) or SIGTERM asks the run to stop after the current epoch, so the
saved policy is the one of the last ``metrics.csv`` row; a second one aborts at once (the
summary then still says ``interrupted``, and the policy may be one update ahead).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from harness.machine import MachineUsage, merge_machine
from harness.tracking import (
    BEHAVIOURS_FILE,
    EPOCH_LOGGER,
    BehaviourCSV,
    MetricsCSV,
    Progress,
    WandbLogger,
    read_rows,
    write_json,
    write_text,
)
from harness.wandb_files import logged_epochs

log = logging.getLogger(__name__)
#: the folder of a run's evaluation videos (``eval.video_every``)
VIDEO_DIR = "videos"
epoch_log = logging.getLogger(EPOCH_LOGGER)


@dataclass(frozen=True)
class Budget:
    """Stop at whichever limit is reached first; 0 or ``None`` means no limit on that axis.

    Limits are checked at the end of every epoch (an epoch is never cut short), so a run ends
    with at least ``timesteps`` steps: the last epoch may overshoot by up to one epoch's steps
    (``summary.json`` records ``budget_overshoot_timesteps``).
    """

    timesteps: int | None = None
    generations: int | None = None
    wall_time_s: float | None = None

    def describe(self) -> str:
        """The limits in words, e.g. ``"5,000,000 timesteps or 100 epochs"``."""
        parts = [
            f"{self.timesteps:,} timesteps" if self.timesteps else "",
            f"{self.generations:,} epoch{'s' if self.generations != 1 else ''}" if self.generations else "",
            f"{self.wall_time_s:g} s" if self.wall_time_s else "",
        ]
        return " or ".join(p for p in parts if p) or "no limit"

    def exhausted(self, epoch: int, timesteps: int, wall_time_s: float) -> str | None:
        """The key of the limit reached (e.g. ``"budget.timesteps"``), or ``None``."""
        if self.timesteps and timesteps >= self.timesteps:
            return "budget.timesteps"
        if self.generations and epoch >= self.generations:
            return "budget.generations"
        if self.wall_time_s and wall_time_s >= self.wall_time_s:
            return "budget.wall_time_s"
        return None


class StopRequest:
    """SIGINT/SIGTERM handler: the first signal sets :attr:`signal`; a second raises
    ``KeyboardInterrupt`` (abort now). Installed only in the main thread, restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict = {}

    def __call__(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        log.warning("%s received: stopping after this epoch (send it again to stop at once)", self.signal)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


#: Files that make a folder a run directory: a new run refuses to start in a folder holding one.
RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "checkpoint")
CHECKPOINT_DIR = "checkpoint"


class RunDirError(RuntimeError):
    """A run directory that cannot be used: it holds a run and ``resume`` is not set, or
    ``resume`` points at a folder without a run."""


def holds_run(run_dir: Path) -> list[str]:
    """The :data:`RUN_FILES` present in ``run_dir`` (empty: no run there)."""
    return [f for f in RUN_FILES if (Path(run_dir) / f).exists()]


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """:raises RunDirError: if a new run would overwrite a run, or a resume finds none."""
    found = holds_run(run_dir)
    if found and not resume:
        raise RunDirError(
            f"{run_dir} already holds a run ({', '.join(found)}); nothing was changed. "
            f"Continue it with resume={run_dir}, or choose another hydra.run.dir"
        )
    if resume and "config.yaml" not in found:
        raise RunDirError(f"resume: {run_dir} holds no run to continue (no config.yaml)")


#: ``errno`` values with which ``flock`` says the file system has no locks (some network file
#: systems), rather than that another process holds one.
NO_LOCKS_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOLCK", "ENOSYS", "EOPNOTSUPP", "ENOTSUP") if hasattr(errno, name)
)


class RunLock:
    """An exclusive lock on a run directory (``fcntl.flock`` on ``run_dir/.lock``), held while a
    run writes there, so that a second process (a new run or a ``resume``) cannot write into a
    run that is still going. The operating system drops the lock when its process dies, even by
    SIGKILL, so a killed run can be resumed at once. The file keeps the holder's pid.

    On a file system without ``flock`` (:data:`NO_LOCKS_ERRNOS`) the run goes on unlocked, with
    a warning: nothing then stops a second process from writing into the same folder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._file = None
        self.locked = False  # False on a file system without locks

    def acquire(self) -> None:
        """:raises RunDirError: if another live process holds the lock (naming its pid)."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.locked = True
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise RunDirError(
                f"{self.path.parent} is in use by a running harness process (pid {holder}); "
                "nothing was changed. Wait for it to end (or stop it), then resume"
            ) from None
        except OSError as e:
            if e.errno not in NO_LOCKS_ERRNOS:
                f.close()
                raise
            log.warning(
                "%s: the file system does not support locks (%s); the run goes on unlocked, so do not "
                "start or resume another run in this folder while it runs",
                self.path.parent,
                e.strerror,
            )
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        """Unlock and close the lock file (it stays on disk, holding the last pid); a no-op unless acquired, so
        calling it twice is harmless."""
        if self._file is not None:
            import fcntl

            if self.locked:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file, self.locked = None, False


class Checkpoints:
    """``run_dir/checkpoint/``: the full state after an epoch, written atomically.

    Each checkpoint is a folder ``epoch_<N>/`` (the trainer's files and ``runner.json``) written
    completely before the file ``latest`` is replaced (``os.replace``) to name it; older folders
    are removed afterwards. A crash at any moment leaves ``latest`` naming a complete checkpoint.
    """

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(run_dir) / CHECKPOINT_DIR

    def latest(self) -> Path | None:
        """The folder of the latest complete checkpoint, or ``None``."""
        pointer = self.root / "latest"
        if not pointer.exists():
            return None
        folder = self.root / pointer.read_text().strip()
        return folder if (folder / "runner.json").exists() else None

    @staticmethod
    def epoch(folder: Path) -> int:
        """The epoch whose state the checkpoint ``folder`` holds (its ``runner.json``)."""
        return int(json.loads((Path(folder) / "runner.json").read_text())["epoch"])

    def find(self, epoch: int | None = None) -> Path:
        """The complete checkpoint of ``epoch`` (``None``: the latest). Only the latest is kept.

        :raises FileNotFoundError: naming the checkpoints there are.
        """
        latest = self.latest()
        if latest is not None and (epoch is None or self.epoch(latest) == epoch):
            return latest
        have = f"the latest is epoch {self.epoch(latest)}" if latest is not None else "it has none"
        raise FileNotFoundError(
            f"{self.root.parent}: no checkpoint of {'any epoch' if epoch is None else f'epoch {epoch}'}"
            f" (a run keeps only its latest checkpoint; {have})"
        )

    def latest_epoch(self) -> int | None:
        """The epoch of the latest complete checkpoint (its ``runner.json``), or ``None``."""
        folder = self.latest()
        return None if folder is None else self.epoch(folder)

    def write(self, epoch: int, trainer, runner_state: dict) -> None:
        """Write the checkpoint of ``epoch``: ``trainer.save_checkpoint(folder)`` and ``runner.json``."""
        import shutil

        folder = self.root / f"epoch_{epoch:07d}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        trainer.save_checkpoint(folder)
        write_json(folder / "runner.json", runner_state)
        tmp = self.root / "latest.tmp"
        tmp.write_text(folder.name + "\n")
        os.replace(tmp, self.root / "latest")
        for old in self.root.glob("epoch_*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)


def _workers_text(workers: dict) -> str:
    """``"2 process workers (mujoco engine)"``, ``"on the serial backend (no worker processes, gymnasium
    engine)"``, ``"ray workers (one per CPU) (gymnasium engine)"``: always the engine, which ``auto`` chose."""
    backend, n = workers.get("backend", "process"), workers.get("n")
    engine = workers.get("engine", "gymnasium")
    if backend == "serial":
        return f"on the serial backend (no worker processes, {engine} engine)"
    return (f"{n} {backend} workers" if n else f"{backend} workers (one per CPU)") + f" ({engine} engine)"


def describe_run_dir(run_dir: Path, summary_written: bool = True) -> str:
    """What a run directory holds after a failure, in one line for the user, e.g.
    ``"metrics.csv holds epochs 1-5, the last checkpoint is epoch 5, summary.json says failed"``.

    :param summary_written: whether the run wrote ``summary.json`` as it ended; if not, a
        ``summary.json`` on disk is an earlier one (of the run before a resume) and is named so.
    """
    run_dir = Path(run_dir)
    epochs = [row["epoch"] for row in read_rows(run_dir / "metrics.csv")]
    parts = [
        f"metrics.csv holds epochs {epochs[0]}-{epochs[-1]}"
        if len(epochs) > 1
        else f"metrics.csv holds epoch {epochs[0]}"
        if epochs
        else "metrics.csv holds no epoch"
    ]
    epoch = Checkpoints(run_dir).latest_epoch()
    parts.append("there is no checkpoint" if epoch is None else f"the last checkpoint is epoch {epoch}")
    path = run_dir / "summary.json"
    try:
        status = json.loads(path.read_text()).get("status") if path.exists() else None
    except (OSError, ValueError):
        status = "?"
    if summary_written:
        parts.append(f"summary.json says {status}")
    else:
        parts.append("summary.json could not be written" + (f" (the one there is older: {status})" if status else ""))
    return ", ".join(parts)


class Cleanup:
    """Runs the steps that end a run one after the other, each even if an earlier one failed.

    A failure is logged and kept (``failed``: ``(what, "Type: message")`` pairs, in order);
    :meth:`raise_first` raises the first one once every step has run, unless an exception is
    already on its way out (the run's own error is the one to report).
    """

    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []
        self._first: BaseException | None = None

    def __call__(self, step, what: str | None = None) -> bool:
        """Run ``step``; whether it succeeded."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - every step must run; the first failure is raised later
            what = what or getattr(step, "__qualname__", "cleanup")
            log.error("could not finish the run cleanly (%s): %s: %s", what, type(exc).__name__, exc)
            self.failed.append((what, f"{type(exc).__name__}: {exc}"))
            self._first = self._first or exc
            return False
        return True

    def raise_first(self) -> None:
        """Raise the first failed step's exception, unless an exception is already being handled (the run's own
        error is the one reported then); a no-op when every step succeeded."""
        if self._first is not None and sys.exc_info()[1] is None:
            raise self._first


class Runner:
    """Drives a :class:`~harness.algos.base.Trainer` under a budget and records every epoch.

    After every epoch the row goes to ``metrics.csv`` first, then the full state to
    ``checkpoint/`` (:class:`Checkpoints`), so a run killed at any moment resumes from its last
    checkpoint with ``resume=True``: rows after that checkpoint (at most one, maybe half-written)
    are dropped from ``metrics.csv`` and ``behaviours.csv`` and recomputed.

    :param cfg: the resolved run config as a plain dict (``workers.n`` filled in).
    :param run_dir: the run directory (created if missing).
    :param trainer_factory: ``cfg -> Trainer``; called after ``config.yaml`` is written.
    :param resume: continue the run in ``run_dir`` from its latest checkpoint (from scratch if it
        has none yet).
    :param files: extra text files (name -> content) written into ``run_dir`` once the run holds
        it (e.g. ``overrides.yaml``).
    """

    def __init__(
        self, cfg: dict, run_dir: str | Path, trainer_factory, resume: bool = False, files: dict[str, str] | None = None
    ) -> None:
        self.cfg = plain(cfg)
        self.run_dir = Path(run_dir)
        self.trainer_factory = trainer_factory
        self.resume = bool(resume)
        self.files = files or {}
        self.budget = Budget(**{k: cfg["budget"].get(k) for k in ("timesteps", "generations", "wall_time_s")})
        self.checkpoints = Checkpoints(self.run_dir)
        self.summary_written = False  # whether run() wrote summary.json (a full disk may refuse it)
        self._no_video = False  # eval.video_every found that this machine cannot render

    def run(self) -> dict:
        """Train until the budget is spent; returns the summary also written to ``summary.json``.

        Re-raises whatever stopped the run abnormally, after writing the summary.
        :raises RunDirError: before touching anything, if ``run_dir`` holds a run and ``resume``
            is not set, or another process is running in it (:class:`RunLock`).
        """
        lock = RunLock(self.run_dir)
        lock.acquire()
        try:
            check_run_dir(self.run_dir, self.resume)
            for name, text in self.files.items():
                write_text(self.run_dir / name, text)
            return self._run()
        finally:
            lock.release()

    def _run(self) -> dict:
        write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg, sort_keys=False))
        t_setup = time.perf_counter()
        usage = MachineUsage(self.cfg.get("workers", {}).get("n"), self.cfg.get("workers", {}).get("backend"))
        checkpoint = self.checkpoints.latest() if self.resume else None
        state = json.loads((checkpoint / "runner.json").read_text()) if checkpoint else None
        summary: dict = (
            state["summary"]
            if state
            else {
                "status": "failed",
                "stop_reason": None,
                "run_dir": str(self.run_dir),
                "algo": self.cfg["algo"]["name"],
                "env": self.cfg["env"]["id"],
                "seed": self.cfg["seed"],
                "epochs": 0,
                "timesteps": 0,
                "episodes": 0,
                "wall_time_s": 0.0,
                "train_time_s": 0.0,
                "eval_time_s": 0.0,
                "eval_return": None,
                "best_eval_return": None,
            }
        )
        summary.update(status="failed", stop_reason=None)
        # the rollout engine this part of the run stepped on (the engines give the same rows, so a resume
        # may change it: harness.workers.engines); "auto" where the config was not resolved (resolved_config)
        summary["engine"] = self.cfg.get("workers", {}).get("engine", "gymnasium")
        summary.pop("error", None)
        if self.resume:
            summary["resumed_from_epoch"] = state["epoch"] if state else 0
        # resuming: keep the rows up to the checkpoint's epoch; with no checkpoint yet, none (not even a
        # step-0 row, which the run evaluates again)
        epochs_kept = state["epoch"] if state else -1
        metrics = MetricsCSV(self.run_dir / "metrics.csv", keep_epochs=epochs_kept if self.resume else None)
        behaviours = BehaviourCSV(self.run_dir / BEHAVIOURS_FILE, keep_epochs=epochs_kept if self.resume else None)
        wandb = trainer = progress = None
        exit_code = 1
        stop = StopRequest()
        try:
            with stop:
                log.info(
                    "%s %s on %s, seed %s, until %s: starting %s",
                    "resuming" if checkpoint else "run",
                    self.cfg["algo"]["name"],
                    self.cfg["env"]["id"],
                    self.cfg["seed"],
                    self.budget.describe(),
                    _workers_text(self.cfg.get("workers", {})),
                )
                trainer = self.trainer_factory(self.cfg)
                if checkpoint:
                    trainer.load_checkpoint(checkpoint)
                    log.info(
                        "resumed %s after epoch %d (%d timesteps)", self.run_dir, state["epoch"], state["timesteps"]
                    )
                wandb = WandbLogger(self.cfg, self.run_dir, run_id=state.get("wandb_id") if state else None)
                if state:
                    self._complete_wandb_history(wandb, epochs_kept)
                progress = Progress(self.cfg["budget"], self.cfg.get("progress", True))
                if state:
                    progress.resume(state)
                summary["setup_time_s"] = time.perf_counter() - t_setup
                log.info("set up in %.1f s; run directory %s", summary["setup_time_s"], self.run_dir)
                self._loop(trainer, metrics, behaviours, wandb, progress, summary, stop, state)
            summary["status"] = "interrupted" if stop.signal else "completed"
            exit_code = 0
        except KeyboardInterrupt:
            summary["status"] = "interrupted"
            summary["stop_reason"] = stop.signal or "SIGINT"
            log.warning("interrupted: the run directory keeps every finished epoch")
            raise
        except BaseException as exc:
            summary["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            # Every step runs even when one before it fails (a full disk fails them all): the workers are
            # always joined and the shared noise table released, and the first failure is raised.
            cleanup = Cleanup()
            if progress is not None:
                cleanup(progress.close)
            cleanup(metrics.close)
            cleanup(behaviours.close)
            if trainer is not None:
                if summary["epochs"] > 0:
                    cleanup(lambda: summary.__setitem__("policy", str(trainer.save(self.run_dir))), "policy")
                cleanup(trainer.close)  # joins the worker processes, whose CPU time the usage then counts
            summary["machine"] = merge_machine(summary.get("machine"), usage.stop())
            if cleanup.failed and "error" not in summary:  # the run itself went well, its ending did not
                summary.update(status="failed", error=f"{cleanup.failed[0][0]}: {cleanup.failed[0][1]}")
            self.summary_written = cleanup(lambda: write_json(self.run_dir / "summary.json", summary), "summary.json")
            if wandb is not None:
                cleanup(lambda: wandb.summary(summary))
                cleanup(lambda: wandb.finish(exit_code))
            cleanup.raise_first()
        return summary

    def _complete_wandb_history(self, wandb: WandbLogger, epochs_kept: int) -> None:
        """Log to the resumed W&B run every row of ``metrics.csv`` (up to the checkpoint's epoch) that
        its local files do not hold: a SIGKILL can take W&B's writer before it wrote what it was given
        (:mod:`harness.wandb_files`), while ``metrics.csv`` is flushed row by row."""
        if wandb.run is None:
            return
        held = logged_epochs(self.run_dir, wandb.run_id)
        missing = [
            row
            for row in read_rows(self.run_dir / "metrics.csv")
            if row["epoch"] not in held and row["epoch"] <= epochs_kept
        ]
        for row in missing:
            wandb.log(row)
        if missing:
            log.info(
                "W&B run %s lacked %d of the %d epochs in metrics.csv (lost when the run was killed); "
                "logged them again from metrics.csv",
                wandb.run_id,
                len(missing),
                epochs_kept,
            )

    def _video(self, trainer, epoch: int, index: int, last: bool, videos: dict[int, Path]) -> None:
        """``eval.video_every``: after the ``index``-th evaluation (0: the first; every ``video_every``-th and
        the ``last`` one), one episode of the evaluated policy, from the seed of its evaluation's first
        episode (so its return is that episode's), rendered through Gymnasium to :func:`_video_path`; the
        path goes into ``videos`` for W&B. Nothing is drawn from the run's streams: no number changes. A
        machine that cannot render gets one warning, and the run goes on without videos."""
        every = self.cfg["eval"].get("video_every", 0)
        if not every or self._no_video or not (index % every == 0 or last):
            return
        import tempfile

        from harness import replay

        path = _video_path(self.run_dir, epoch)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                policy = replay.policy_of_trainer(trainer, self.cfg, epoch, scratch)
                try:
                    episode_return, length, _ = replay.record_episode(policy, int(policy.eval_seeds(1)[0]), path)
                finally:
                    policy.close()
        except replay.RenderError as exc:
            self._no_video = True
            log.warning("eval.video_every: %s; this run goes on without videos", exc)
            return
        except Exception as exc:  # noqa: BLE001 - a video is an extra: its failure must not cost the run
            log.warning(
                "eval.video_every: the video of epoch %d failed (%s: %s); training goes on",
                epoch,
                type(exc).__name__,
                exc,
            )
            path.unlink(missing_ok=True)
            return
        videos[epoch] = path
        log.info(
            "epoch %d: video of an evaluation episode (return %.1f, %d steps) in %s",
            epoch,
            episode_return,
            length,
            path,
        )

    def _loop(
        self,
        trainer,
        metrics: MetricsCSV,
        behaviours: BehaviourCSV,
        wandb: WandbLogger,
        progress: Progress,
        summary: dict,
        stop_request: StopRequest,
        state: dict | None = None,
    ) -> None:
        eval_cfg = self.cfg["eval"]
        reports_success = bool(self.cfg["env"].get("success", False))
        state = state or {"epoch": 0, "timesteps": 0, "episodes": 0, "last_eval": 0, "wall_time_s": 0.0}
        epoch, timesteps, episodes = state["epoch"], state["timesteps"], state["episodes"]
        eval_time = state.get("eval_time_s", 0.0)  # seconds spent evaluating, summed over the run
        last_eval = state["last_eval"]  # timesteps at the last evaluation
        elapsed_before = state["wall_time_s"]  # wall_time_s counts on from the checkpoint
        start = time.perf_counter()
        stop = self.budget.exhausted(epoch, timesteps, elapsed_before) if epoch else None
        if stop:  # a resumed run whose budget was already spent: nothing to do
            summary["stop_reason"] = stop
            log.info(
                "%s: %s already reached at epoch %d; nothing to do (raise the budget to continue)",
                self.run_dir,
                stop,
                epoch,
            )
            return
        initial_row = None  # the step-0 evaluation, written just before epoch 1's row, with its columns
        evaluations = state.get("evaluations", 0)  # evaluations made so far (eval.video_every counts them)
        videos: dict[int, Path] = {}  # epoch -> its evaluation's video, logged to W&B with the epoch's row
        # (a config saved before eval.at_start existed has no step-0 evaluation)
        if epoch == 0 and eval_cfg.get("at_start", False):
            t_eval = time.perf_counter()
            ev = trainer.evaluate(0, eval_cfg["episodes"])
            if ev.bcs is not None:
                behaviours.log(0, 0, "eval", ev.agent, ev.bcs)
            self._video(trainer, 0, evaluations, False, videos)
            evaluations += 1
            eval_time += time.perf_counter() - t_eval
            initial_row = {
                "epoch": 0,
                "timesteps": 0,
                "episodes": 0,
                "wall_time_s": eval_time,
                "train_time_s": 0.0,
                "eval_time_s": eval_time,
                **_eval_columns(ev, reports_success),
            }
            _keep_eval(summary, initial_row["eval_return"])
            epoch_log.info("epoch 0 (untrained policy) | eval %.1f | %.1f s", initial_row["eval_return"], eval_time)
        epoch_costs = getattr(trainer, "epoch_costs", None)  # the ES family's (EvolutionTrainer.epoch_costs)
        while True:
            epoch += 1
            if epoch_costs is not None:
                epoch_costs()  # from here: this epoch's rollouts, not the last evaluation's
            result = trainer.train_epoch(epoch)
            costs = epoch_costs() if epoch_costs is not None else {}
            timesteps += result.timesteps
            episodes += result.episodes
            wall = elapsed_before + time.perf_counter() - start
            stop = self.budget.exhausted(epoch, timesteps, wall)
            for source, agent, bcs in result.behaviours:
                behaviours.log(epoch, timesteps, source, agent, bcs)
            evaluated = _eval_columns(None, reports_success)
            if stop or timesteps - last_eval >= eval_cfg["every_timesteps"]:
                last_eval = timesteps
                t_eval = time.perf_counter()
                ev = trainer.evaluate(epoch, eval_cfg["episodes"])
                evaluated = _eval_columns(ev, reports_success)
                if ev.bcs is not None:
                    behaviours.log(epoch, timesteps, "eval", ev.agent, ev.bcs)
                self._video(trainer, epoch, evaluations, bool(stop), videos)
                evaluations += 1
                now = time.perf_counter()
                eval_time += now - t_eval
                wall = elapsed_before + now - start
                stop = self.budget.exhausted(epoch, timesteps, wall)
            returns = np.asarray(result.returns, dtype=np.float64)
            row = {
                "epoch": epoch,
                "timesteps": timesteps,
                "episodes": episodes,
                "wall_time_s": wall,
                "train_time_s": wall - eval_time,
                "eval_time_s": eval_time,
                **costs,
                "return_mean": _stat(returns, np.mean),
                "return_std": _stat(returns, np.std),
                "return_min": _stat(returns, np.min),
                "return_max": _stat(returns, np.max),
                **evaluated,
                **result.metrics,
            }
            if initial_row is not None:  # the step-0 row takes epoch 1's columns (empty where it has none)
                initial_row = {k: initial_row.get(k, math.nan) for k in row}
                metrics.log(initial_row)
                wandb.log(initial_row, videos.pop(0, None))
                initial_row = None
            metrics.log(row)
            wandb.log(row, videos.pop(epoch, None))
            progress.update(row, result.timesteps)
            summary.update(
                epochs=epoch,
                timesteps=timesteps,
                episodes=episodes,
                wall_time_s=wall,
                train_time_s=wall - eval_time,
                eval_time_s=eval_time,
            )
            _keep_eval(summary, row["eval_return"])
            # after the row, so that a crash between the two only loses a row that resume recomputes
            self.checkpoints.write(
                epoch,
                trainer,
                {
                    "epoch": epoch,
                    "timesteps": timesteps,
                    "episodes": episodes,
                    "last_eval": last_eval,
                    "wall_time_s": wall,
                    "eval_time_s": eval_time,
                    "summary": summary,
                    "wandb_id": wandb.run_id,
                    "evaluations": evaluations,
                },
            )
            # every epoch in harness.log; on the console only when there is no progress bar (Progress)
            epoch_log.info(
                "epoch %d | timesteps %d | return %.1f | eval %s | %.1f s",
                epoch,
                timesteps,
                row["return_mean"],
                "-" if math.isnan(row["eval_return"]) else f"{row['eval_return']:.1f}",
                wall,
            )
            if stop_request.signal and not stop:
                stop = stop_request.signal
            if stop:
                summary["stop_reason"] = stop
                if stop == "budget.timesteps":
                    # the budget is checked at the end of an epoch, so the last epoch may pass it
                    summary["budget_overshoot_timesteps"] = timesteps - self.budget.timesteps
                return


def _video_path(run_dir: Path, epoch: int) -> Path:
    """Where ``eval.video_every`` writes the video of epoch ``epoch``'s evaluation."""
    return Path(run_dir) / VIDEO_DIR / f"epoch_{epoch:07d}.mp4"


def plain(value):
    """``value`` with NumPy scalars (e.g. a seed drawn as ``np.int64``) turned into Python ones,
    recursively through dicts and lists, so that YAML, JSON and OmegaConf take the config."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _eval_columns(ev, reports_success: bool) -> dict:
    """A metrics row's evaluation columns from an :class:`~harness.algos.base.Evaluation`
    (``None``: not evaluated at this epoch, every column NaN)."""
    if ev is None:
        columns = {"eval_return": math.nan, "eval_return_std": math.nan, "eval_success": math.nan}
    else:
        columns = {
            "eval_return": float(ev.returns.mean()),
            "eval_return_std": float(ev.returns.std()),
            "eval_success": math.nan if ev.success is None else float(np.mean(ev.success)),
        }
    if not reports_success:
        del columns["eval_success"]
    return columns


def _keep_eval(summary: dict, eval_return: float) -> None:
    """Record an evaluation's mean return in the summary (the latest and the best so far)."""
    if not math.isnan(eval_return):
        summary["eval_return"] = eval_return
        best = summary["best_eval_return"]
        summary["best_eval_return"] = eval_return if best is None else max(best, eval_return)


def _stat(x: np.ndarray, fn) -> float:
    return float(fn(x)) if x.size else math.nan
