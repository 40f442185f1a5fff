"""How fast the harness trains, against a plain Gymnasium loop and raw MuJoCo: ``python -m harness.bench``.

ES's case rests on wall-clock time (issue #9), so this measures, in one run on one machine:

* **limit**: raw ``mujoco.mj_step(model, data, nstep=frame_skip)`` on one core, replaying the
  actions of the plain loop's episodes from the same start states (the physics of the same
  trajectories, with nothing around it but a Python loop; resets not timed);
* **plain**: a single-process ``gymnasium.make(id)`` loop (its default wrappers) with the policy
  written out in NumPy, over the harness's own episodes (the parameters, frozen observation
  normalization and seeds of the last timed epoch of the run with the fewest workers), so that
  both step through the same states; its returns are compared with the harness's;
* **harness**: real ES runs through :class:`harness.runner.Runner` (the shipped config apart
  from the population, the budget and the keys below), for each backend, environment, policy
  and ``workers.n``: training timesteps per second, evaluation excluded and included, in
  total and per worker, and the scaling efficiency ``throughput(n) / (n * throughput(1))``;
* the **coordinator overhead**: the share of an epoch (evaluation excluded, the runner's
  metrics row and checkpoint included) spent outside the backend's ``evaluate``, at
  populations 256 and 1024;
* the **bytes exchanged** with the workers per epoch, against the parameter count (the
  ``process`` backend: pickled messages through the worker pipes, counted in the
  coordinator; another backend: its ``bytes_sent``/``bytes_received`` counters if it has them);
* **peak memory**: the coordinator's and each worker's peak RSS (``VmHWM``), and at the end of
  the run their PSS and USS (``/proc/<pid>/smaps_rollup``), which count pages shared between
  processes (e.g. a noise table in shared memory) once and not at all.

The first ``--warmup-epochs`` epochs of each run are not timed. Every harness run is a fresh
process (``--child``), so that its peak memory is its own. A backend that is not available
(not installed, or not in this checkout) is skipped with a note. Results go to
``OUT_DIR/bench.json`` and ``OUT_DIR/bench.md``. No test times anything; ``--quick`` is a
smoke run of every code path in a few seconds (its numbers mean nothing).

Usage: ``python -m harness.bench [--envs HalfCheetah Humanoid] [--policies linear mlp]
[--workers 1 2] [--backends process ray] [--seconds 10] [--overhead-populations 256 1024]
[--quick] [--out-dir results/bench]``
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CONF = Path(__file__).resolve().parents[1] / "conf"
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Targets of issue #9, checked (never asserted) at the end of the report.
TARGET_PER_WORKER_VS_PLAIN = 1.0
TARGET_SCALING = 0.9
TARGET_OVERHEAD = 0.03
TARGET_OVERHEAD_POPULATION = 1024


def compose_config(env: str, policy: str, overrides: list[str] = ()):
    """The run config the CLI would compose for ``env=<env> policy=<policy> *overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"env={env}", f"policy={policy}", *overrides])


# ---------------------------------------------------------------------------------------------
# Limit and plain reference: one process, one core.


def plain_reference(env_cfg: dict, policy_cfg: dict, episodes: list[tuple], seconds: float) -> dict:
    """Steps per second of the plain Gymnasium loop over ``episodes`` (in order, whole episodes,
    resets included, until ``seconds`` have passed; at least 2), then of raw MuJoCo stepping
    replaying their actions (resets not timed).

    :param episodes: ``(params, obs_mean, obs_std, seed, harness_return)`` per episode: what the
        harness ran and the return it got, which the plain loop should get too.
    """
    import gymnasium as gym

    from harness.envs import check_env_id
    from harness.policies import make_policy

    steps_cap = env_cfg.get("max_episode_steps")
    extra = {} if steps_cap is None else {"max_episode_steps": int(steps_cap)}
    check_env_id(env_cfg["id"])  # imports the module of a "module:Name-v0" id
    with warnings.catch_warnings():  # the passive env checker's notes, once
        warnings.simplefilter("ignore")
        plain = gym.make(env_cfg["id"], **(env_cfg.get("kwargs") or {}), **extra)
        plain.reset(seed=0)
    space = plain.action_space
    shapes = make_policy(policy_cfg, plain.observation_space.shape[0], space.low, space.high).shapes
    low, high, obs_clip = space.low.astype(np.float64), space.high.astype(np.float64), float(policy_cfg["obs_clip"])
    done, steps, same = [], 0, 0
    start = time.perf_counter()
    for params, mean, std, seed, harness_return in episodes:
        if time.perf_counter() - start >= seconds and len(done) >= 2:
            break
        layers, i = [], 0
        for out, inp in shapes:
            layers.append((params[i : i + out * inp].reshape(out, inp), params[i + out * inp : i + out * inp + out]))
            i += out * inp + out
        obs, _ = plain.reset(seed=int(seed))
        seen, actions, total = [obs], [], 0.0
        while True:
            x = np.clip((obs - mean) / std, -obs_clip, obs_clip)
            for k, (w, b) in enumerate(layers):
                x = w @ x + b
                if k < len(layers) - 1:
                    x = np.tanh(x)
            action = np.clip(x, low, high)
            actions.append(action)
            obs, reward, terminated, truncated, _ = plain.step(action)
            total += float(reward)
            if terminated or truncated:
                break
            seen.append(obs)
        batch = np.asarray(seen)
        batch.mean(axis=0), batch.var(axis=0)  # the episode's observation statistics, as training gathers them
        done.append((int(seed), actions, plain.unwrapped.data.qpos.copy()))
        steps += len(actions)
        same += total == harness_return
    plain_seconds = time.perf_counter() - start
    raw = _raw_replay(plain.unwrapped, done)
    plain.close()
    return {"env_id": env_cfg["id"], "frame_skip": raw["frame_skip"], "episodes": len(done), "steps": steps,
            "episode_length_mean": steps / len(done), "plain_seconds": plain_seconds,
            "plain_steps_per_s": steps / plain_seconds, "raw_seconds": raw["seconds"],
            "raw_steps_per_s": steps / raw["seconds"], "raw_replay_identical": raw["identical"],
            "returns_identical_to_harness": same}


def _raw_replay(env, episodes) -> dict:
    """Time ``mj_step`` alone over the recorded episodes ``(seed, actions, final qpos)`` of the
    unwrapped MuJoCo env ``env``; ``identical``: every replay ended where its episode did."""
    import mujoco

    model, data, frame_skip = env.model, env.data, int(env.frame_skip)
    seconds, identical = 0.0, True
    for seed, actions, final_qpos in episodes:
        env.reset(seed=seed)
        ctrl, step = data.ctrl, mujoco.mj_step
        start = time.perf_counter()
        for a in actions:
            ctrl[:] = a
            step(model, data, frame_skip)
        seconds += time.perf_counter() - start
        identical = identical and bool(np.array_equal(data.qpos, final_qpos))
    return {"frame_skip": frame_skip, "seconds": seconds, "identical": identical}


# ---------------------------------------------------------------------------------------------
# Harness runs: each in a fresh process (``--child``), driven by the real Runner.


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

    @property
    def key(self) -> tuple:
        return self.backend, self.env, self.policy, self.workers, self.population


class _PipeCounter:
    """Bytes through every ``multiprocessing`` pipe of this process (pickled messages, as
    written and read), counted by wrapping ``Connection._send_bytes``/``_recv_bytes``. In a
    ``--child`` coordinator those pipes are exactly the ``process`` backend's worker pipes."""

    sent = 0
    received = 0

    @classmethod
    def install(cls) -> None:
        from multiprocessing import connection

        send, recv = connection.Connection._send_bytes, connection.Connection._recv_bytes

        def _send_bytes(self, buf):
            cls.sent += memoryview(buf).nbytes
            return send(self, buf)

        def _recv_bytes(self, maxsize=None):
            buf = recv(self, maxsize)
            cls.received += buf.getbuffer().nbytes
            return buf

        connection.Connection._send_bytes, connection.Connection._recv_bytes = _send_bytes, _recv_bytes


def _traffic(backend, name: str) -> tuple[int, int] | None:
    """``(sent, received)`` bytes so far between the coordinator and the workers, or ``None``
    when this backend cannot say."""
    if hasattr(backend, "bytes_sent") and hasattr(backend, "bytes_received"):
        return int(backend.bytes_sent), int(backend.bytes_received)
    if name == "process":
        return _PipeCounter.sent, _PipeCounter.received
    if name == "serial":
        return 0, 0
    return None


class _TimedBackend:
    """The trainer's backend, adding up the seconds spent in ``evaluate`` (the rollouts)."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.seconds = 0.0
        self.last: tuple | None = None  # (chunk, results) of the last call

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def evaluate(self, chunk):
        start = time.perf_counter()
        try:
            results = self._backend.evaluate(chunk)
        finally:
            self.seconds += time.perf_counter() - start
        self.last = chunk, results
        return results


class _Probe:
    """Stands between the Runner and the trainer: times every epoch, its rollouts and its
    evaluation, counts the bytes exchanged, and reads memory while the workers are alive."""

    def __init__(self, spec: RunSpec, env_cfg: dict, policy_cfg: dict, noise_bytes: int) -> None:
        self.spec, self.backend_name = spec, spec.backend
        self.env_cfg, self.policy_cfg, self.noise_bytes = env_cfg, policy_cfg, noise_bytes
        self.epochs: list[dict] = []
        self.end: float | None = None
        self.memory: dict | None = None
        self.reference: dict | None = None
        self.last_train: tuple | None = None  # (chunk, results) of the last training epoch
        self.num_params = 0
        self.trainer = None

    def wrap(self, trainer):
        self.trainer = trainer
        trainer.backend = _TimedBackend(trainer.backend)
        self.num_params = int(np.asarray(trainer.state.params).size)
        return _TimedTrainer(trainer, self)


class _TimedTrainer:
    def __init__(self, trainer, probe: _Probe) -> None:
        self._trainer, self._probe = trainer, probe

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def train_epoch(self, epoch: int):
        backend, name = self._trainer.backend, self._probe.backend_name
        backend.seconds = 0.0
        before = _traffic(backend._backend, name)
        start = time.perf_counter()
        result = self._trainer.train_epoch(epoch)
        seconds = time.perf_counter() - start
        after = _traffic(backend._backend, name)
        self._probe.last_train = backend.last
        self._probe.epochs.append({
            "epoch": epoch, "start": start, "train_s": seconds, "rollout_s": backend.seconds,
            "timesteps": int(result.timesteps), "episodes": int(result.episodes),
            "bytes_sent": None if before is None else after[0] - before[0],
            "bytes_received": None if before is None else after[1] - before[1],
            "eval_s": 0.0})
        return result

    def evaluate(self, epoch: int, n_episodes: int):
        start = time.perf_counter()
        try:
            return self._trainer.evaluate(epoch, n_episodes)
        finally:
            self._probe.epochs[-1]["eval_s"] += time.perf_counter() - start

    def save(self, run_dir):
        # the runner saves the policy once, after its last epoch and before closing the workers
        self._probe.end = time.perf_counter()
        probe = self._probe
        probe.memory = _memory(self._trainer.backend._backend, probe.noise_bytes)
        if probe.spec.reference_seconds > 0 and probe.last_train is not None:
            probe.reference = plain_reference(probe.env_cfg, probe.policy_cfg, self._episodes(*probe.last_train),
                                              probe.spec.reference_seconds)
        return self._trainer.save(run_dir)

    def _episodes(self, chunk, results) -> list[tuple]:
        """``(params, obs_mean, obs_std, seed, return)`` of the episodes of ``chunk``: the
        parameters as :meth:`harness.workers.rollout.RolloutWorker.episodes` computes them."""
        from harness.workers.rollout import member_params

        noise = self._trainer.strategy.noise
        out = []
        for task, result in zip(chunk.tasks, results):
            params = member_params(chunk, task, noise, noise.distribution)
            out.append((params, chunk.obs_mean, chunk.obs_std, task.env_seed, result.episode_return))
        return out


class _BenchBudget:
    """The runner's budget for a bench run: stop once the timed epochs (after the warm-up)
    number at least ``min_epochs`` and last at least ``seconds``, or number ``max_epochs``."""

    timesteps = None

    def __init__(self, probe: _Probe, spec: RunSpec) -> None:
        self.probe, self.spec = probe, spec

    def exhausted(self, epoch: int, timesteps: int, wall_time_s: float) -> str | None:
        timed = epoch - self.spec.warmup_epochs
        if timed >= self.spec.max_epochs:
            return "bench.max_epochs"
        if timed < self.spec.min_epochs:
            return None
        elapsed = time.perf_counter() - self.probe.epochs[self.spec.warmup_epochs]["start"]
        return "bench.seconds" if elapsed >= self.spec.seconds else None


def _kib(text: str, key: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return None


def process_memory(pid: int) -> dict | None:
    """MiB of process ``pid``: ``peak_rss`` (VmHWM), and now ``rss``, ``pss`` (shared pages split
    between the processes sharing them), ``uss`` (pages of this process alone); ``None`` where
    ``/proc`` cannot tell (not Linux, or the process is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {"peak_rss": _kib(status, "VmHWM"), "rss": _kib(status, "VmRSS"), "pss": None, "uss": None}
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        out["pss"] = _kib(rollup, "Pss")
        clean, dirty = _kib(rollup, "Private_Clean"), _kib(rollup, "Private_Dirty")
        out["uss"] = None if clean is None or dirty is None else clean + dirty
    except OSError:
        pass
    return {k: None if v is None else v / 1024 for k, v in out.items()}


def private_in_large_mappings(pid: int, nbytes: int) -> float | None:
    """MiB of private (unshared) pages of process ``pid`` in memory mappings of at least 90% of
    ``nbytes``: about ``k * nbytes`` when the process holds ``k`` copies of an ``nbytes`` array of
    its own (NumPy maps arrays that large on their own), about 0 when it maps one shared with
    other processes. ``None`` where ``/proc/<pid>/smaps`` cannot tell."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    total = size = 0.0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Size":
            size = float(rest.split()[0]) * 1024
        elif key in ("Private_Clean", "Private_Dirty") and size >= 0.9 * nbytes:
            total += float(rest.split()[0]) * 1024
    return total / 2**20


def _memory(backend, noise_bytes: int) -> dict:
    pids = list(getattr(backend, "pids", None) or [])
    workers = []
    for pid in pids:
        m = process_memory(pid)
        if m is not None:
            m["private_in_table_sized_mappings"] = private_in_large_mappings(pid, noise_bytes)
            workers.append(m)
    coordinator = process_memory(os.getpid())
    if coordinator is not None:
        coordinator["private_in_table_sized_mappings"] = private_in_large_mappings(os.getpid(), noise_bytes)
    return {"coordinator": coordinator,
            "coordinator_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers": workers, "worker_pids_known": bool(pids)}


def run_child(spec: RunSpec) -> dict:
    """One harness run as described by ``spec``, in this process; its measurements."""
    from omegaconf import OmegaConf

    from harness.__main__ import resolved_config
    from harness.algos import get_algo
    from harness.config import validate
    from harness.runner import Runner

    if spec.backend == "process":
        _PipeCounter.install()
    cfg = compose_config(spec.env, spec.policy, [
        f"workers.backend={spec.backend}", f"workers.n={spec.workers}", f"algo.population_size={spec.population}",
        "budget.timesteps=0", f"budget.generations={spec.warmup_epochs + spec.max_epochs}", "budget.wall_time_s=0",
        "wandb.mode=disabled", "progress=false", f"seed={spec.seed}", *spec.overrides])
    validate(cfg)
    data = resolved_config(cfg)
    algo = get_algo("es")
    probe = _Probe(spec, data["env"], data["policy"], int(data["algo"]["noise_table_size"]) * 4)  # float32 table
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as run_dir:
        runner = Runner(data, run_dir, lambda c: probe.wrap(algo.make_trainer(OmegaConf.create(c))))
        runner.budget = _BenchBudget(probe, spec)
        started = time.perf_counter()
        summary = runner.run()
        total_s = time.perf_counter() - started
    out = {**dataclasses.asdict(spec), "num_params": probe.num_params, "noise_table_mib": probe.noise_bytes / 2**20,
           "setup_s": summary.get("setup_time_s"), "run_s": total_s, "status": summary["status"],
           "children_maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
           "memory": probe.memory, "reference": probe.reference, "epochs": probe.epochs}
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
        "timed_epochs": len(timed), "timed_timesteps": steps, "timed_episodes": sum(e["episodes"] for e in timed),
        "episode_length_mean": steps / max(1, sum(e["episodes"] for e in timed)),
        "wall_s": wall, "eval_s": evals, "train_s": train, "rollout_s": rollout,
        "steps_per_s_excl_eval": steps / excl, "steps_per_s_incl_eval": steps / wall,
        "per_worker_excl_eval": steps / excl / workers, "per_worker_incl_eval": steps / wall / workers,
        "epoch_s_excl_eval": excl / len(timed),
        # the share of an epoch (evaluation excluded) not spent waiting for rollouts
        "overhead": 1.0 - rollout / excl, "overhead_trainer": (train - rollout) / excl,
        "overhead_runner": (excl - train) / excl,
        "bytes_sent_per_epoch": np.mean([e["bytes_sent"] for e in traffic]) if traffic else None,
        "bytes_received_per_epoch": np.mean([e["bytes_received"] for e in traffic]) if traffic else None,
    }


def spawn_child(spec: RunSpec) -> dict:
    """:func:`run_child` in a fresh ``python -m harness.bench --child`` process."""
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        out = Path(tmp) / "run.json"
        env = {**os.environ, "WANDB_SILENT": "true", **{k: os.environ.get(k, "1") for k in _THREAD_VARS}}
        proc = subprocess.run([sys.executable, "-m", "harness.bench", "--child", json.dumps(dataclasses.asdict(spec)),
                               "--child-out", str(out)], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {**dataclasses.asdict(spec), "error": f"exit code {proc.returncode}: {tail}",
                    "stderr": proc.stderr[-4000:]}
        return json.loads(out.read_text())


def backend_unavailable(name: str) -> str | None:
    """Why ``workers.backend=<name>`` cannot run here, or ``None``."""
    from harness.workers import BACKENDS

    if name == "ray" and importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    if name not in BACKENDS:
        return f"not a workers.backend of this checkout (harness.workers.BACKENDS: {', '.join(BACKENDS)})"
    return None


# ---------------------------------------------------------------------------------------------
# Derived numbers, targets and the report.


def derive(results: dict) -> None:
    """Add to each run its ratios to the plain loop and raw MuJoCo and its scaling efficiency,
    and the list of targets with what was measured."""
    refs = {(r["backend"], r["env"], r["policy"]): r for r in results["reference"]}
    runs = [r for r in results["runs"] if "error" not in r]
    base = {}
    for r in runs:
        if r["workers"] == 1:
            base[(r["backend"], r["env"], r["policy"], r["population"])] = r["steps_per_s_excl_eval"]
    for r in runs:
        ref = refs.get((r["backend"], r["env"], r["policy"]))
        r["per_worker_vs_plain"] = r["per_worker_excl_eval"] / ref["plain_steps_per_s"] if ref else None
        r["per_worker_vs_raw"] = r["per_worker_excl_eval"] / ref["raw_steps_per_s"] if ref else None
        one = base.get((r["backend"], r["env"], r["policy"], r["population"]))
        r["scaling_efficiency"] = r["steps_per_s_excl_eval"] / (r["workers"] * one) if one else None
    targets = []

    def add(name, measured, ok, what, unit):
        targets.append({"target": name, "measured": measured, "unit": unit, "met": bool(ok), "where": what})

    for r in runs:
        where = f"{r['env']} {r['policy']} {r['backend']} n={r['workers']} pop={r['population']}"
        if r["workers"] == 1 and r["per_worker_vs_plain"] is not None:
            add(f"per-worker throughput >= {TARGET_PER_WORKER_VS_PLAIN:g}x the plain loop", r["per_worker_vs_plain"],
                r["per_worker_vs_plain"] >= TARGET_PER_WORKER_VS_PLAIN, where, "x")
        if r["workers"] == 2 and r["scaling_efficiency"] is not None:
            add(f"scaling efficiency 1 -> 2 workers >= {TARGET_SCALING:g}", r["scaling_efficiency"],
                r["scaling_efficiency"] >= TARGET_SCALING, where, "")
        if r["population"] == TARGET_OVERHEAD_POPULATION:
            add(f"coordinator overhead < {TARGET_OVERHEAD:.0%} at population {TARGET_OVERHEAD_POPULATION}",
                r["overhead"], r["overhead"] < TARGET_OVERHEAD, where, "%")
    # bytes per epoch against the parameter count: the same env, backend, workers.n and population
    # with the other policy (the throughput runs at the largest workers.n)
    population, n_max = results["settings"]["population"], max(results["settings"]["workers"])
    for backend in sorted({r["backend"] for r in runs}):
        for env in sorted({r["env"] for r in runs}):
            rs = [r for r in runs if r.get("bytes_sent_per_epoch") is not None
                  and (r["backend"], r["env"], r["workers"], r["population"]) == (backend, env, n_max, population)]
            if len(rs) < 2:
                continue
            lo, hi = min(rs, key=lambda r: r["num_params"]), max(rs, key=lambda r: r["num_params"])
            if lo["num_params"] == hi["num_params"]:
                continue
            ratio = _bytes(hi) / _bytes(lo)
            add(f"bytes per epoch independent of the parameter count (bytes ratio ~1 for "
                f"{hi['num_params'] / lo['num_params']:.0f}x the parameters)", ratio, ratio < 1.1,
                f"{env} {lo['policy']} -> {hi['policy']} {backend} n={n_max} pop={population}", "x")
    # one noise table in memory: no worker holds a private copy of it (the worst worker, per backend)
    for backend in sorted({r["backend"] for r in runs}):
        copies = [(w["private_in_table_sized_mappings"] / r["noise_table_mib"], r)
                  for r in runs if r["backend"] == backend and r["workers"] >= 2
                  for w in (r.get("memory") or {}).get("workers", [])
                  if w.get("private_in_table_sized_mappings") is not None]
        if copies:
            worst, r = max(copies, key=lambda c: c[0])
            add("one noise table in memory (a worker's private memory in table-sized mappings, in tables, < 0.5)",
                worst, worst < 0.5, f"{backend}, the worst worker of the runs with workers.n >= 2 ({r['env']} "
                f"{r['policy']} n={r['workers']} pop={r['population']})", "")
    results["targets"] = targets


def _bytes(r: dict) -> float:
    return r["bytes_sent_per_epoch"] + r["bytes_received_per_epoch"]


def _f(x, fmt="{:,.0f}", none="n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def markdown(results: dict) -> str:
    m = results["machine"]
    s = results["settings"]
    lines = [
        "# Harness throughput (`python -m harness.bench`)", "",
        f"{m['started']}, {m['cpu']}, {m['cpus_usable']} usable CPUs; Python {m['python']}, NumPy {m['numpy']}, "
        f"MuJoCo {m['mujoco']}, Gymnasium {m['gymnasium']}; commit {m['commit']}. Load average before "
        f"{m['loadavg_before']}, after {m['loadavg_after']} (other jobs on the machine slow every number). "
        f"Bench time {results['seconds']:.0f} s.", "",
        f"Settings: envs {', '.join(s['envs'])}; policies {', '.join(s['policies'])}; workers.n {s['workers']}; "
        f"backends {', '.join(s['backends'])}; population {s['population']} (throughput), "
        f"{s['overhead_populations']} (overhead); {s['warmup_epochs']} warm-up epoch(s) untimed, then at least "
        f"{s['min_epochs']} epoch(s) and {s['seconds']:g} s; eval as configured (eval.every_timesteps, eval.episodes)"
        + (f"; overrides {' '.join(s['overrides'])}" if s["overrides"] else "") + ".", ""]
    for note in results["skipped"]:
        lines.append(f"**Skipped: backend `{note['backend']}`**: {note['reason']}.")
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"**Failed: {r['env']} {r['policy']} `{r['backend']}` n={r['workers']} "
                         f"pop={r['population']}**: {r['error']}")
    lines += ["", "## Limit and plain reference (one process, one core)", "",
              "The episodes of the last timed epoch of the harness run with the fewest workers (its parameters, "
              "frozen normalization and seeds), as many as fit in the reference seconds. Plain: `gymnasium.make(id)` "
              "with its default wrappers and the policy written out in NumPy, resets timed; its returns should equal "
              "the harness's. Raw MuJoCo: `mj_step(nstep=frame_skip)` replaying the plain loop's actions from the "
              "same start states, resets not timed; each replay should end in the same state.", "",
              "| env | policy | backend | params | frame skip | episodes | raw MuJoCo steps/s | plain loop steps/s | "
              "plain / raw | mean episode length | returns as the harness's | replay identical |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results["reference"]:
        lines.append(f"| {r['env']} | {r['policy']} | {r['backend']} | {r['num_params']:,} | {r['frame_skip']} | "
                     f"{r['episodes']} | {_f(r['raw_steps_per_s'])} | {_f(r['plain_steps_per_s'])} | "
                     f"{r['plain_steps_per_s'] / r['raw_steps_per_s']:.2f} | {r['episode_length_mean']:.0f} | "
                     f"{r['returns_identical_to_harness']}/{r['episodes']} | "
                     f"{'yes' if r['raw_replay_identical'] else 'NO'} |")
    runs = [r for r in results["runs"] if "error" not in r]
    lines += ["", "## Harness: training throughput end to end through the runner", "",
              "Timesteps per second of training episodes over the timed epochs' wall time, with and without the "
              "time spent evaluating; per worker = total / workers.n; x plain and x raw compare the per-worker "
              "figure (evaluation excluded) with the table above; scaling = throughput(n) / (n x throughput(1)).", "",
              "| env | policy | backend | workers | population | epochs | total, eval excl. | total, eval incl. | "
              "per worker, eval excl. | per worker, eval incl. | x plain | x raw | scaling | mean episode length |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        if r["population"] != s["population"]:
            continue
        lines.append(f"| {r['env']} | {r['policy']} | {r['backend']} | {r['workers']} | {r['population']} | "
                     f"{r['timed_epochs']} | {_f(r['steps_per_s_excl_eval'])} | {_f(r['steps_per_s_incl_eval'])} | "
                     f"{_f(r['per_worker_excl_eval'])} | {_f(r['per_worker_incl_eval'])} | "
                     f"{_f(r['per_worker_vs_plain'], '{:.2f}')} | {_f(r['per_worker_vs_raw'], '{:.2f}')} | "
                     f"{_f(r['scaling_efficiency'], '{:.2f}')} | {r['episode_length_mean']:.0f} |")
    lines += ["", "## Coordinator overhead", "",
              "Share of an epoch (evaluation excluded) outside the backend's `evaluate`: the trainer's own work "
              "(ask, tell, merging observation statistics) and the runner's (metrics row, checkpoint).", "",
              "| env | policy | backend | workers | population | epoch s | trainer outside rollouts | runner | "
              "overhead |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["policy"], r["workers"], r["population"])):
        lines.append(f"| {r['env']} | {r['policy']} | {r['backend']} | {r['workers']} | {r['population']} | "
                     f"{r['epoch_s_excl_eval']:.2f} | {r['overhead_trainer']:.2%} | {r['overhead_runner']:.2%} | "
                     f"{r['overhead']:.2%} |")
    lines += ["", "## Bytes exchanged with the workers per training epoch", "",
              "`process`: pickled messages through the worker pipes as counted in the coordinator (data placed in "
              "shared memory is not a message and is not counted); other backends: their own counters if any.", "",
              "| env | policy | backend | workers | population | params | sent / epoch | received / epoch | "
              "sent bytes / param | bytes / episode |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["workers"], r["population"], r["num_params"])):
        sent, recv = r.get("bytes_sent_per_epoch"), r.get("bytes_received_per_epoch")
        per_episode = None if sent is None else (sent + recv) * r["timed_epochs"] / max(1, r["timed_episodes"])
        lines.append(f"| {r['env']} | {r['policy']} | {r['backend']} | {r['workers']} | {r['population']} | "
                     f"{r['num_params']:,} | {_f(sent)} | {_f(recv)} | "
                     f"{_f(None if sent is None else sent / r['num_params'], '{:.1f}')} | {_f(per_episode)} |")
    lines += ["", "## Memory (MiB)", "",
              "Peak RSS (`VmHWM`) counts shared pages in every process that maps them; PSS splits them between "
              "those processes and USS leaves them out (both read from `/proc/<pid>/smaps_rollup` after the last "
              "epoch, workers alive). Private table copies: a worker's private memory in mappings at least as large "
              "as the noise table, in tables (the largest over workers; about 1 for a copy of its own, about 0 for "
              "a table shared with the others).", "",
              "| env | policy | backend | workers | population | noise table | coordinator peak RSS | "
              "coordinator PSS | worker peak RSS (max) | worker PSS (mean) | worker USS (mean) | total PSS | "
              "private table copies per worker |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["policy"], r["workers"], r["population"])):
        mem = r.get("memory") or {}
        coord, ws = mem.get("coordinator") or {}, mem.get("workers") or []

        def agg(key, fn):
            vals = [w[key] for w in ws if w.get(key) is not None]
            return fn(vals) if vals else None

        pss_w = agg("pss", sum)
        private = agg("private_in_table_sized_mappings", max)
        copies = None if private is None else private / r["noise_table_mib"]
        total = None if pss_w is None or coord.get("pss") is None else pss_w + coord["pss"]
        lines.append(f"| {r['env']} | {r['policy']} | {r['backend']} | {r['workers']} | {r['population']} | "
                     f"{r['noise_table_mib']:.0f} | {_f(coord.get('peak_rss'))} | {_f(coord.get('pss'))} | "
                     f"{_f(agg('peak_rss', max))} | {_f(agg('pss', np.mean))} | {_f(agg('uss', np.mean))} | "
                     f"{_f(total)} | {_f(copies, '{:.2f}')} |")
    lines += ["", "## Targets (issue #9; measured, never asserted)", "", "| target | where | measured | met |",
              "|---|---|---:|---|"]
    for t in results["targets"]:
        value, unit = t["measured"], t["unit"]
        shown = f"{value:.2%}" if unit == "%" else f"{value:.2f}{unit}"
        lines.append(f"| {t['target']} | {t['where']} | {shown} | {'yes' if t['met'] else 'no'} |")
    lines += ["", "Per-worker gap to raw MuJoCo: the `x raw` column (1.00 would be no overhead at all).", ""]
    return "\n".join(lines)


def machine_info() -> dict:
    import gymnasium
    import mujoco

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    from harness.workers import default_num_workers

    return {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu, "cpus": os.cpu_count(),
            "cpus_usable": default_num_workers(), "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "mujoco": mujoco.__version__, "gymnasium": gymnasium.__version__,
            "commit": commit, "thread_vars": {k: os.environ.get(k) for k in _THREAD_VARS},
            "loadavg_before": _loadavg(), "loadavg_after": None}


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _even_int(text: str) -> int:
    value = _positive_int(text)
    if value < 2 or value % 2:
        raise argparse.ArgumentTypeError(f"must be an even integer >= 2 (mirrored pairs), got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    from harness.workers import default_num_workers

    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n\n")[0],
                                epilog="Writes OUT_DIR/bench.json and OUT_DIR/bench.md. See the module docstring.")
    envs = sorted(f.stem for f in (CONF / "env").glob("*.yaml"))
    p.add_argument("--envs", nargs="+", default=["HalfCheetah", "Humanoid"], choices=envs, metavar="ENV",
                   help=f"config names under conf/env: {', '.join(envs)}")
    p.add_argument("--policies", nargs="+", default=["linear", "mlp"], choices=["linear", "mlp"])
    p.add_argument("--workers", type=_positive_int, nargs="+", default=sorted({1, 2, default_num_workers()}),
                   help="workers.n values (default: 1, 2 and the CPU count)")
    p.add_argument("--backends", nargs="+", default=["process", "ray"], choices=["process", "ray", "serial"],
                   help="workers.backend values; one not available here (ray not installed) is skipped with a note")
    p.add_argument("--population", type=_even_int, default=None,
                   help="algo.population_size of the throughput runs (default: the config's)")
    p.add_argument("--overhead-populations", type=_even_int, nargs="*", default=[256, 1024],
                   help="populations of the coordinator-overhead runs (at the largest workers.n)")
    p.add_argument("--seconds", type=_seconds, default=10.0, help="timed seconds per throughput run (at least)")
    p.add_argument("--min-epochs", type=_positive_int, default=2, help="timed epochs per throughput run (at least)")
    p.add_argument("--overhead-epochs", type=_positive_int, default=1, help="timed epochs per overhead run")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs at the start of every run")
    p.add_argument("--reference-seconds", type=_seconds, default=5.0,
                   help="seconds of the plain loop per backend, env and policy (the raw replay takes less)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--override", dest="overrides", action="append", default=[],
                   help="an extra config override for every harness run, e.g. env.max_episode_steps=100 (repeatable)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: HalfCheetah, linear, 1 worker, population 8, 100-step episodes, a small noise "
                        "table, no separate overhead runs, a fraction of a second per measurement (flags given explicitly win)")
    p.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup_epochs < 0:
        p.error("--warmup-epochs must be >= 0")
    if args.quick:  # its settings, except where a flag was given explicitly
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (sys.argv[1:] if argv is None else argv)
                 if a.startswith("--")}
        quick = {"envs": ["HalfCheetah"], "policies": ["linear"], "workers": [1], "population": 8,
                 "overhead_populations": [], "seconds": 0.0, "min_epochs": 1, "reference_seconds": 0.2}
        for key, value in quick.items():
            if key not in given:
                setattr(args, key, value)
        args.overrides = ["env.max_episode_steps=100", "algo.noise_table_size=1000000", *args.overrides]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        spec["overrides"] = tuple(spec["overrides"])
        args.child_out.write_text(json.dumps(run_child(RunSpec(**spec)), default=float) + "\n")
        return
    started = time.perf_counter()
    if args.population is None:
        args.population = int(compose_config(args.envs[0], args.policies[0]).algo.population_size)
    settings = {k: v for k, v in vars(args).items() if not k.startswith("child")}
    results = {"machine": machine_info(), "settings": {**settings, "out_dir": str(args.out_dir)},
               "reference": [], "runs": [], "skipped": []}
    specs: dict[tuple, RunSpec] = {}
    for backend in args.backends:
        reason = backend_unavailable(backend)
        if reason:
            results["skipped"].append({"backend": backend, "reason": reason})
            print(f"backend {backend}: skipped ({reason})", flush=True)
            continue
        for env in args.envs:
            for policy in args.policies:
                common = dict(backend=backend, env=env, policy=policy, warmup_epochs=args.warmup_epochs,
                              seed=args.seed, overrides=tuple(args.overrides))
                for n in args.workers:
                    # the plain loop and raw MuJoCo replay the episodes of the run with the fewest workers
                    # (a run's episodes do not depend on workers.n)
                    spec = RunSpec(workers=n, population=args.population, min_epochs=args.min_epochs,
                                   seconds=args.seconds, max_epochs=1000, **common,
                                   reference_seconds=args.reference_seconds if n == min(args.workers) else 0.0)
                    specs[spec.key] = spec
                for pop in args.overhead_populations:
                    spec = RunSpec(workers=max(args.workers), population=pop, min_epochs=args.overhead_epochs,
                                   seconds=0.0, max_epochs=1000, **common)
                    old = specs.get(spec.key)
                    if old:  # a throughput run at that population: time it as much as both ask
                        spec = dataclasses.replace(old, min_epochs=max(old.min_epochs, spec.min_epochs))
                    specs[spec.key] = spec
    for spec in specs.values():
        r = spawn_child(spec)
        results["runs"].append(r)
        head = f"{spec.env:>12} {spec.policy:>6} {spec.backend:>8} n={spec.workers} pop={spec.population:<5}"
        if "error" in r:
            print(f"{head}: FAILED {r['error']}", flush=True)
        else:
            print(f"{head}: {r['steps_per_s_excl_eval']:9,.0f} steps/s (eval excl.), "
                  f"{r['per_worker_excl_eval']:9,.0f} per worker, overhead {r['overhead']:.1%}", flush=True)
            ref = r.get("reference")
            if ref:
                results["reference"].append({"backend": spec.backend, "env": spec.env, "policy": spec.policy,
                                             "num_params": r["num_params"], **ref})
                print(f"{head}  same episodes: plain Gymnasium loop {ref['plain_steps_per_s']:9,.0f} steps/s, "
                      f"raw MuJoCo {ref['raw_steps_per_s']:9,.0f} steps/s", flush=True)
    results["seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_after"] = _loadavg()
    derive(results)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    (args.out_dir / "bench.md").write_text(markdown(results))
    print(f"written: {args.out_dir / 'bench.json'}, {args.out_dir / 'bench.md'}")
    failed = sum("error" in r for r in results["runs"])
    if failed or not results["runs"]:
        sys.exit(f"{failed} of {len(results['runs'])} runs failed" if failed else "nothing was measured")


if __name__ == "__main__":
    main()
