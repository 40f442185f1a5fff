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

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from harness.tracking import (BEHAVIOURS_FILE, EPOCH_LOGGER, BehaviourCSV, MetricsCSV, Progress, WandbLogger,
                              write_json)

log = logging.getLogger(__name__)
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

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Runner:
    """Drives a :class:`~harness.algos.base.Trainer` under a budget and records every epoch.

    :param cfg: the resolved run config as a plain dict (``workers.n`` filled in).
    :param run_dir: the run directory (created if missing).
    :param trainer_factory: ``cfg -> Trainer``; called after ``config.yaml`` is written.
    """

    def __init__(self, cfg: dict, run_dir: str | Path, trainer_factory) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.trainer_factory = trainer_factory
        self.budget = Budget(**{k: cfg["budget"].get(k) for k in ("timesteps", "generations", "wall_time_s")})

    def run(self) -> dict:
        """Train until the budget is spent; returns the summary also written to ``summary.json``.

        Re-raises whatever stopped the run abnormally, after writing the summary.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.cfg, sort_keys=False))
        t_setup = time.perf_counter()
        summary: dict = {"status": "failed", "stop_reason": None, "run_dir": str(self.run_dir),
                         "algo": self.cfg["algo"]["name"], "env": self.cfg["env"]["id"], "seed": self.cfg["seed"],
                         "epochs": 0, "timesteps": 0, "episodes": 0, "wall_time_s": 0.0,
                         "eval_return": None, "best_eval_return": None}
        metrics = MetricsCSV(self.run_dir / "metrics.csv")
        behaviours = BehaviourCSV(self.run_dir / BEHAVIOURS_FILE)
        wandb = trainer = progress = None
        exit_code = 1
        stop = StopRequest()
        try:
            with stop:
                trainer = self.trainer_factory(self.cfg)
                wandb = WandbLogger(self.cfg, self.run_dir)
                progress = Progress(self.cfg["budget"], self.cfg.get("progress", True))
                summary["setup_time_s"] = time.perf_counter() - t_setup
                self._loop(trainer, metrics, behaviours, wandb, progress, summary, stop)
            summary["status"] = "interrupted" if stop.signal else "completed"
            exit_code = 0
        except KeyboardInterrupt:
            summary["status"] = "interrupted"
            log.warning("interrupted: the run directory keeps every finished epoch")
            raise
        except BaseException as exc:
            summary["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if progress is not None:
                progress.close()
            metrics.close()
            behaviours.close()
            if trainer is not None:
                if summary["epochs"] > 0:
                    summary["policy"] = str(trainer.save(self.run_dir))
                trainer.close()
            write_json(self.run_dir / "summary.json", summary)
            if wandb is not None:
                wandb.summary(summary)
                wandb.finish(exit_code)
        return summary

    def _loop(self, trainer, metrics: MetricsCSV, behaviours: BehaviourCSV, wandb: WandbLogger, progress: Progress,
              summary: dict, stop_request: StopRequest) -> None:
        eval_cfg = self.cfg["eval"]
        reports_success = bool(self.cfg["env"].get("success", False))
        timesteps = episodes = epoch = 0
        last_eval = 0  # timesteps at the last evaluation
        start = time.perf_counter()
        while True:
            epoch += 1
            result = trainer.train_epoch(epoch)
            timesteps += result.timesteps
            episodes += result.episodes
            wall = time.perf_counter() - start
            stop = self.budget.exhausted(epoch, timesteps, wall)
            for source, agent, bcs in result.behaviours:
                behaviours.log(epoch, timesteps, source, agent, bcs)
            eval_return = eval_std = eval_success = math.nan
            if stop or timesteps - last_eval >= eval_cfg["every_timesteps"]:
                last_eval = timesteps
                ev = trainer.evaluate(epoch, eval_cfg["episodes"])
                eval_return, eval_std = float(ev.returns.mean()), float(ev.returns.std())
                if ev.success is not None:
                    eval_success = float(np.mean(ev.success))
                if ev.bcs is not None:
                    behaviours.log(epoch, timesteps, "eval", ev.agent, ev.bcs)
                wall = time.perf_counter() - start
                stop = self.budget.exhausted(epoch, timesteps, wall)
            returns = np.asarray(result.returns, dtype=np.float64)
            row = {
                "epoch": epoch, "timesteps": timesteps, "episodes": episodes, "wall_time_s": wall,
                "return_mean": _stat(returns, np.mean), "return_std": _stat(returns, np.std),
                "return_min": _stat(returns, np.min), "return_max": _stat(returns, np.max),
                "eval_return": eval_return, "eval_return_std": eval_std,
                **({"eval_success": eval_success} if reports_success else {}), **result.metrics,
            }
            metrics.log(row)
            wandb.log(row)
            progress.update(row, result.timesteps)
            summary.update(epochs=epoch, timesteps=timesteps, episodes=episodes, wall_time_s=wall)
            if not math.isnan(eval_return):
                summary["eval_return"] = eval_return
                best = summary["best_eval_return"]
                summary["best_eval_return"] = eval_return if best is None else max(best, eval_return)
            # every epoch in harness.log; on the console only when there is no progress bar (Progress)
            epoch_log.info("epoch %d | timesteps %d | return %.1f | eval %s | %.1f s", epoch, timesteps,
                           row["return_mean"], "-" if math.isnan(eval_return) else f"{eval_return:.1f}", wall)
            if stop_request.signal and not stop:
                stop = stop_request.signal
            if stop:
                summary["stop_reason"] = stop
                if stop == "budget.timesteps":
                    # the budget is checked at the end of an epoch, so the last epoch may pass it
                    summary["budget_overshoot_timesteps"] = timesteps - self.budget.timesteps
                return


def _stat(x: np.ndarray, fn) -> float:
    return float(fn(x)) if x.size else math.nan
