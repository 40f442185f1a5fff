"""One harness run of :mod:`harness.bench`, in a fresh process (``--child``), driven by the real
:class:`~harness.runner.Runner`: the trainer's rollout hook times the rollouts, the backend's byte
counters give the traffic, and ``/proc`` the memory while the workers are alive."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from harness.algos import get_algo
from harness.bench.memory import memory_of
from harness.bench.reference import plain_reference
from harness.config import resolved_config, validate
from harness.runner import Runner
from harness.workers import BACKENDS, split_episodes
from harness.workers.engines import ENGINES, min_batch
from harness.workers.mujoco_engine import mujoco_batch_available
from harness.workers.rollout import member_params

CONF = Path(__file__).resolve().parents[2] / "conf"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def compose_config(env: str, policy: str, overrides: list[str] = ()):
    """The run config the CLI would compose for ``env=<env> policy=<policy> *overrides``."""
    from hydra import compose, initialize_config_dir  # Hydra's composition API: only where a config is made

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"env={env}", f"policy={policy}", *overrides])


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One harness run: what runs, and how long it is timed (after ``warmup_epochs``: at least
    ``min_epochs`` epochs and ``seconds`` seconds, at most ``max_epochs`` epochs)."""

    backend: str
    env: str
    policy: str
    workers: int
    population: int
    warmup_epochs: int
    min_epochs: int
    seconds: float
    max_epochs: int
    seed: int
    overrides: tuple[str, ...] = ()
    reference_seconds: float = 0.0  # > 0: after the run, the plain loop and raw MuJoCo on its last epoch's episodes
    engine: str = "gymnasium"  # workers.engine
    ship: str = "seeds"  # workers.ship: noise offsets, or full parameter vectors (issue 32's measurement)

    @property
    def key(self) -> tuple:
        """The cell this run measures, ``(backend, engine, env, policy, workers, population, ship)``: one run per
        cell."""
        return self.backend, self.engine, self.env, self.policy, self.workers, self.population, self.ship


def traffic(backend) -> tuple[int, int] | None:
    """``(sent, received)`` bytes so far between the coordinator and the workers (the backend's own
    counters), or ``None`` for a backend that cannot say."""
    if hasattr(backend, "bytes_sent") and hasattr(backend, "bytes_received"):
        return int(backend.bytes_sent), int(backend.bytes_received)
    return None


class Probe:
    """Stands between the Runner and the trainer: times every epoch, its rollouts (through the
    trainer's ``rollout_hooks``) and its evaluation, counts the bytes exchanged, and reads memory while
    the workers are alive."""

    def __init__(self, spec: RunSpec, env_cfg: dict, policy_cfg: dict, noise_bytes: int) -> None:
        self.spec = spec
        self.env_cfg, self.policy_cfg, self.noise_bytes = env_cfg, policy_cfg, noise_bytes
        self.epochs: list[dict] = []
        self.end: float | None = None
        self.memory: dict | None = None
        self.reference: dict | None = None
        self.rollout_s = 0.0  # seconds in the workers since the current epoch began
        self.lengths: list[int] = []  # the lengths of the episodes run since the current epoch began
        self.calls = 0  # calls to the workers since the current epoch began
        self.last_rollouts: tuple | None = None  # (chunk, results) of the last call to the workers
        self.last_train: tuple | None = None  # the same, of the last training epoch
        self.num_params = 0

    def wrap(self, trainer):
        """``trainer`` (an :class:`~harness.algos.evolution.EvolutionTrainer`), timed."""
        trainer.rollout_hooks.append(self._rollouts)
        self.num_params = int(np.asarray(trainer.state.params).size)
        return TimedTrainer(trainer, self)

    def _rollouts(self, chunk, results, seconds: float) -> None:
        self.rollout_s += seconds
        self.lengths.extend(int(r.length) for r in results)
        self.calls += 1
        self.last_rollouts = chunk, results


class TimedTrainer:
    """A trainer that records, in its :class:`Probe`, each epoch's times and traffic."""

    def __init__(self, trainer, probe: Probe) -> None:
        self._trainer, self._probe = trainer, probe

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def train_epoch(self, epoch: int):
        """The trainer's epoch, recorded in the probe: its seconds, the seconds inside the workers
        (``rollout_hooks``), timesteps, episodes and bytes exchanged (``None`` for a backend without counters); its
        chunk and results are kept for the reference."""
        probe, backend = self._probe, self._trainer.backend
        probe.rollout_s, probe.lengths, probe.calls = 0.0, [], 0
        before = traffic(backend)
        start = time.perf_counter()
        result = self._trainer.train_epoch(epoch)
        seconds = time.perf_counter() - start
        after = traffic(backend)
        probe.last_train = probe.last_rollouts
        probe.epochs.append(
            {
                "epoch": epoch,
                "start": start,
                "train_s": seconds,
                "rollout_s": probe.rollout_s,
                "worker_calls": probe.calls,
                "episode_lengths": probe.lengths,
                "timesteps": int(result.timesteps),
                "episodes": int(result.episodes),
                "bytes_sent": None if before is None else after[0] - before[0],
                "bytes_received": None if before is None else after[1] - before[1],
                "eval_s": 0.0,
            }
        )
        return result

    def evaluate(self, epoch: int, n_episodes: int):
        """The trainer's evaluation; its seconds are added to the current epoch's ``eval_s``."""
        start = time.perf_counter()
        try:
            return self._trainer.evaluate(epoch, n_episodes)
        finally:
            self._probe.epochs[-1]["eval_s"] += time.perf_counter() - start

    def save(self, run_dir):
        """Note the run's end and the workers' memory (the runner saves once, after its last epoch, workers
        still alive) and, with ``reference_seconds > 0``, time the plain loop and raw MuJoCo on the last training
        epoch's episodes (:func:`plain_reference`); then the trainer's own save."""
        # the runner saves the policy once, after its last epoch and before closing the workers
        probe = self._probe
        probe.end = time.perf_counter()
        probe.memory = memory_of(list(getattr(self._trainer.backend, "pids", None) or []), probe.noise_bytes)
        if probe.spec.reference_seconds > 0 and probe.last_train is not None:
            probe.reference = plain_reference(
                probe.env_cfg, probe.policy_cfg, self._episodes(*probe.last_train), probe.spec.reference_seconds
            )
        return self._trainer.save(run_dir)

    def _episodes(self, chunk, results) -> list[tuple]:
        """``(params, obs_mean, obs_std, seed, return)`` of the episodes of ``chunk``: the
        parameters as :meth:`harness.workers.rollout.RolloutWorker.episodes` computes them."""
        noise = self._trainer.strategy.noise
        out = []
        for episode, result in zip(chunk.episodes, results):
            params = member_params(chunk, episode, noise, noise.distribution)
            out.append((params, chunk.obs_mean, chunk.obs_std, episode.env_seed, result.episode_return))
        return out


class BenchBudget:
    """The runner's budget for a bench run: stop once the timed epochs (after the warm-up)
    number at least ``min_epochs`` and last at least ``seconds``, or number ``max_epochs``."""

    timesteps = None

    def __init__(self, probe: Probe, spec: RunSpec) -> None:
        self.probe, self.spec = probe, spec

    def describe(self) -> str:
        """The budget in words for the run's log: the warm-up epochs, then the bench's timing."""
        return f"{self.spec.warmup_epochs} warm-up epochs, then the bench's timing"

    def exhausted(self, epoch: int, timesteps: int, wall_time_s: float) -> str | None:
        """``"bench.max_epochs"`` once ``max_epochs`` epochs after the warm-up are done; ``"bench.seconds"``
        once at least ``min_epochs`` are and ``seconds`` have passed since the first timed epoch began; else ``None``
        (``timesteps`` and ``wall_time_s`` are not read)."""
        timed = epoch - self.spec.warmup_epochs
        if timed >= self.spec.max_epochs:
            return "bench.max_epochs"
        if timed < self.spec.min_epochs:
            return None
        elapsed = time.perf_counter() - self.probe.epochs[self.spec.warmup_epochs]["start"]
        return "bench.seconds" if elapsed >= self.spec.seconds else None


def run_child(spec: RunSpec) -> dict:
    """One harness run as described by ``spec``, in this process; its measurements."""
    cfg = compose_config(
        spec.env,
        spec.policy,
        [
            f"workers.backend={spec.backend}",
            f"workers.n={spec.workers}",
            f"algo.population_size={spec.population}",
            "budget.timesteps=0",
            f"budget.generations={spec.warmup_epochs + spec.max_epochs}",
            "budget.wall_time_s=0",
            "wandb.mode=disabled",
            "progress=false",
            f"seed={spec.seed}",
            f"workers.engine={spec.engine}",
            f"workers.ship={spec.ship}",
            "eval.at_start=false",  # the bench times training epochs; a step-0 evaluation belongs to no epoch
            "env.bc=null",  # no behaviour characterizations: no engine pays for one
            *spec.overrides,
        ],
    )
    validate(cfg)
    data = resolved_config(cfg)
    algo = get_algo("es")
    probe = Probe(spec, data["env"], data["policy"], int(data["algo"]["noise_table_size"]) * 4)  # float32 table
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as run_dir:
        runner = Runner(data, run_dir, lambda c: probe.wrap(algo.make_trainer(OmegaConf.create(c))))
        runner.budget = BenchBudget(probe, spec)
        started = time.perf_counter()
        summary = runner.run()
        total_s = time.perf_counter() - started
    out = {
        **dataclasses.asdict(spec),
        "num_params": probe.num_params,
        "noise_table_mib": probe.noise_bytes / 2**20,
        "setup_s": summary.get("setup_time_s"),
        "run_s": total_s,
        "status": summary["status"],
        "children_maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "memory": probe.memory,
        "reference": probe.reference,
        "epochs": probe.epochs,
        # the pieces of one generation's episodes the scheduler hands the workers: a batched engine's batches
        "batch_sizes": [len(p) for p in split_episodes(range(spec.population), spec.workers, min_batch(spec.engine))],
    }
    out.update(summarize_epochs(probe.epochs, probe.end, spec.warmup_epochs, spec.workers))
    return out


def summarize_epochs(epochs: list[dict], end: float, warmup: int, workers: int) -> dict:
    """Throughput, overhead and traffic of the timed epochs (after ``warmup``). An epoch's wall
    time runs from its start to the next epoch's (to ``end`` for the last), so it holds the
    runner's metrics row and checkpoint and, when there was one, the evaluation."""
    for e, nxt in zip(epochs, epochs[1:] + [None]):
        e["wall_s"] = (nxt["start"] if nxt else end) - e["start"]
    timed = epochs[warmup:]
    steps = sum(e["timesteps"] for e in timed)
    wall = sum(e["wall_s"] for e in timed)
    evals = sum(e["eval_s"] for e in timed)
    train = sum(e["train_s"] for e in timed)
    rollout = sum(e["rollout_s"] for e in timed)
    excl = wall - evals
    traffic = [e for e in timed if e["bytes_sent"] is not None]
    return {
        "timed_epochs": len(timed),
        "timed_timesteps": steps,
        "timed_episodes": sum(e["episodes"] for e in timed),
        "episode_length_mean": steps / max(1, sum(e["episodes"] for e in timed)),
        "wall_s": wall,
        "eval_s": evals,
        "train_s": train,
        "rollout_s": rollout,
        "steps_per_s_excl_eval": steps / excl,
        "steps_per_s_incl_eval": steps / wall,
        "per_worker_excl_eval": steps / excl / workers,
        "per_worker_incl_eval": steps / wall / workers,
        "epoch_s_excl_eval": excl / len(timed),
        # the share of an epoch (evaluation excluded) not spent waiting for rollouts
        "overhead": 1.0 - rollout / excl,
        "overhead_trainer": (train - rollout) / excl,
        "overhead_runner": (excl - train) / excl,
        "bytes_sent_per_epoch": np.mean([e["bytes_sent"] for e in traffic]) if traffic else None,
        "bytes_received_per_epoch": np.mean([e["bytes_received"] for e in traffic]) if traffic else None,
    }


def spawn_child(spec: RunSpec) -> dict:
    """:func:`run_child` in a fresh ``python -m harness.bench --child`` process."""
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        out = Path(tmp) / "run.json"
        env = {**os.environ, "WANDB_SILENT": "true", **{k: os.environ.get(k, "1") for k in THREAD_VARS}}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.bench",
                "--child",
                json.dumps(dataclasses.asdict(spec)),
                "--child-out",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {
                **dataclasses.asdict(spec),
                "error": f"exit code {proc.returncode}: {tail}",
                "stderr": proc.stderr[-4000:],
            }
        return json.loads(out.read_text())


def engine_unavailable(name: str) -> str | None:
    """Why ``workers.engine=<name>`` cannot run here, or ``None``."""
    if name not in ENGINES:
        return f"not a workers.engine of this checkout ({', '.join(ENGINES)})"
    if name == "mujoco" and not mujoco_batch_available():
        return "this mujoco has no mujoco.batch (MuJoCo >= 4.0)"
    return None


def backend_unavailable(name: str) -> str | None:
    """Why ``workers.backend=<name>`` cannot run here, or ``None``."""
    if name == "ray" and importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    if name not in BACKENDS:
        return f"not a workers.backend of this checkout (harness.workers.BACKENDS: {', '.join(BACKENDS)})"
    return None
