"""NaN returns and interrupts end a run cleanly, every finished epoch kept; a dead worker is replaced."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.tracking import COST_COLUMNS, read_rows
from harness.workers import Chunk, EpisodeSpec, WorkerSpec, make_backend
from tests.conftest import FAST, ROOT, read_metrics, run_cli

# env.bc=null: the default env group (HalfCheetah) asks for a centre-of-mass BC, which a non-MuJoCo env cannot give
NAN_ENV = (
    "env.id=tests.envs:NanReward-v0",
    "env.bc=null",
    "algo.population_size=4",
    "eval.episodes=2",
    "workers.backend=serial",
)


@pytest.mark.slow
def test_nan_returns_fail_the_run_but_keep_finished_epochs(tmp_path):
    # generation 1 and its evaluation take 6 resets; the 8th episode (in generation 2) is NaN
    proc = run_cli(
        *NAN_ENV,
        "+env.kwargs.nan_after_resets=8",
        "budget.generations=5",
        f"hydra.run.dir={tmp_path}",
        *FAST,
        check=False,
    )
    assert proc.returncode != 0
    assert "not finite" in proc.stderr
    assert f"continue from the last finished epoch with resume={tmp_path}" in proc.stderr
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == ["1"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 1
    assert "not finite" in summary["error"]
    assert (tmp_path / "policy.npz").exists()


@pytest.mark.slow
def test_custom_env_module_syntax_runs(tmp_path):
    run_cli(*NAN_ENV, "budget.generations=2", f"hydra.run.dir={tmp_path}", *FAST)
    assert len(read_metrics(tmp_path)) == 2


@pytest.mark.slow
def test_a_custom_env_under_a_config_asking_for_a_bc_it_cannot_give_runs_without_bcs(tmp_path):
    # the HalfCheetah env group asks for com_x; a non-MuJoCo env cannot give it: ES warns and goes on
    args = [a for a in NAN_ENV if a != "env.bc=null"]
    run_cli(*args, "budget.generations=2", f"hydra.run.dir={tmp_path}", *FAST)
    assert len(read_metrics(tmp_path)) == 2
    assert "env.bc=com_x cannot be computed here" in (tmp_path / "harness.log").read_text()
    assert not (tmp_path / "behaviours.csv").exists()
    # a novelty algorithm needs the BC: a config error, before any worker starts or a run folder exists
    proc = run_cli("algo=ns_es", *args, "budget.generations=1", f"hydra.run.dir={tmp_path / 'ns'}", *FAST, check=False)
    assert proc.returncode == 2 and "error: invalid config:" in proc.stderr
    assert "env.bc=com_x" in proc.stderr and "no MuJoCo model" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and not (tmp_path / "ns").exists()


@pytest.mark.slow
def test_a_worker_killed_between_epochs_is_replaced(caplog):
    """Killed while idle, it held no episode: the next call starts a new one and loses nothing
    (tests/test_worker_faults.py covers deaths in the middle of an epoch)."""
    env_cfg = {"id": "InvertedPendulum-v5", "kwargs": {}, "max_episode_steps": None}
    noise_seq = np.random.SeedSequence(0, spawn_key=(0,))
    spec = WorkerSpec(env_cfg, {"name": "linear"}, (noise_seq.entropy, noise_seq.spawn_key), 1000)
    backend = make_backend("process", 2, spec)
    try:
        tasks = tuple(EpisodeSpec(i, 1, i) for i in range(4))
        chunk = Chunk(np.zeros((1, 5)), 0.1, np.zeros(4), np.ones(4), tasks, False)
        first = [r.episode_return for r in backend.evaluate(chunk)]
        assert len(first) == 4
        victim = backend.pids[0]
        os.kill(victim, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="harness.workers"):
            assert [r.episode_return for r in backend.evaluate(chunk)] == first
        assert victim not in backend.pids and len(backend.pids) == 2
        # it dies while idle or, the kill being asynchronous, before taking up the chunk it was sent:
        # either way no episode is blamed (no retry used up)
        [warning] = [r.getMessage() for r in caplog.records]
        assert f"pid {victim}) was killed by signal SIGKILL" in warning and "starting a new one" in warning
        assert "re-running" not in warning
    finally:
        backend.close()


@pytest.mark.slow
@pytest.mark.parametrize("signum,group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_stop_signal_ends_the_run_after_the_current_epoch(tmp_path, signum, group):
    """Ctrl-C in a terminal signals the whole process group; a scheduler's SIGTERM only the main process."""
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "env=InvertedPendulum",
            "budget.generations=100000",
            "workers.n=2",
            "algo.population_size=8",
            "eval.episodes=2",
            f"hydra.run.dir={tmp_path}",
            *FAST,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_rows(tmp_path)) < 2:
            time.sleep(0.2)
        assert len(_rows(tmp_path)) >= 2, "the run produced no epochs"
        workers = _children(proc.pid)
        assert workers, "no worker processes found"
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, stderr  # 130 for SIGINT, 143 for SIGTERM
    assert "Traceback" not in stderr
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if os.path.exists(f"/proc/{p}")], "worker processes outlived the run"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    rows = read_metrics(tmp_path)
    assert summary["epochs"] == len(rows) >= 2
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["eval_return"] for r in rows)
    assert summary["stop_reason"] == signal.Signals(signum).name
    with np.load(tmp_path / "policy.npz") as z:
        assert int(z["generation"]) == len(rows)  # the saved policy is the last row's


def _rows(run_dir):
    path = run_dir / "metrics.csv"
    return path.read_text().splitlines()[1:] if path.exists() else []


def _children(pid):
    """PIDs of the rollout workers (spawned children) of ``pid``, from /proc."""
    out = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and b"spawn_main" in open(f"/proc/{stat}/cmdline", "rb").read():
                out.append(int(stat))
    return out


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only; skipped where the machine does not allow mounting)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk):
    """Write zeros to ``disk/filler`` until the disk is full, to the last page."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for size in (64 * 1024, 4096, 1):
            try:
                while True:
                    f.write(bytes(size))
            except OSError:
                pass


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_gives_one_message_saying_what_is_on_disk(small_disk, tmp_path):
    """Issue 19, item 11: the disk fills after a few epochs. Every write fails from then on (the
    checkpoint, the policy, summary.json, the log): the message says what the folder holds, the
    workers and the shared noise table are released (no resource_tracker warning), and once there is
    room again, the run resumes to the rows of a run that never failed."""
    args = (
        "algo.population_size=8",
        "eval.episodes=1",
        "env.max_episode_steps=100",
        "workers.n=2",
        "budget.generations=30",
        *FAST,
    )
    run_dir = small_disk / "run"
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_rows(run_dir)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        _fill(small_disk)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "leaked shared_memory" not in stderr, stderr
    assert "error: OSError: [Errno 28] No space left on device" in stderr
    rows = len(read_rows(run_dir / "metrics.csv"))  # complete rows (the last may be cut short by the full disk)
    assert 3 <= rows < 30
    line = next(s for s in stderr.splitlines() if s.startswith(f"run directory: {run_dir}: "))
    assert f"metrics.csv holds epochs 1-{rows}" in line and "summary.json could not be written" in line, line

    (small_disk / "filler").unlink()
    run_cli(f"resume={run_dir}", "wandb.mode=disabled")
    reference = tmp_path / "reference"
    run_cli(*args, f"hydra.run.dir={reference}")
    drop_time = lambda d: [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(d)]  # noqa: E731
    assert drop_time(run_dir) == drop_time(reference)
