"""``python -m harness.bench --quick`` runs every part of the benchmark and writes its files.

A smoke test: its numbers mean nothing and none is checked (speed is never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.workers.mujoco_engine import mujoco_batch_available
from tests.conftest import ROOT


@pytest.mark.slow
def test_quick_bench_writes_json_and_markdown(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.bench", "--quick", "--backends", "process", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "bench.json").read_text())
    (ref,) = results["reference"]  # the plain loop and raw MuJoCo on the harness run's own episodes
    assert ref["backend"] == "process" and ref["episodes"] >= 2
    assert ref["returns_identical_to_harness"] == ref["episodes"] and ref["raw_replay_identical"]
    assert ref["raw_steps_per_s"] > 0 and ref["plain_steps_per_s"] > 0
    if mujoco_batch_available():  # the mujoco engine's limit: a bare batch replaying them together, bit for bit
        assert ref["batch_envs"] == ref["episodes"] and ref["batch_steps_per_s"] > 0 and ref["batch_replay_identical"]
    (run,) = results["runs"]
    assert "error" not in run, run.get("stderr")
    assert run["backend"] == "process" and run["timed_epochs"] >= 1 and run["steps_per_s_excl_eval"] > 0
    assert run["bytes_sent_per_epoch"] > 0 and run["bytes_received_per_epoch"] > 0
    assert len(run["memory"]["workers"]) == 1 or not run["memory"]["worker_pids_known"]
    assert results["skipped"] == []
    md = (tmp_path / "bench.md").read_text()
    assert "| HalfCheetah | linear | process | 1 |" in md


@pytest.mark.slow
def test_bad_flags_are_refused_before_anything_runs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for flags, what in (
        (["--envs", "Nope"], "--envs: invalid choice: 'Nope'"),
        (["--backends", "nosuch"], "--backends: invalid choice: 'nosuch'"),
        (["--workers", "0"], "must be a positive integer"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "harness.bench", "--quick", *flags, "--out-dir", str(tmp_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 2 and what in proc.stderr, proc.stderr
    assert not (tmp_path / "bench.json").exists()


def test_quick_keeps_every_flag_given_and_refuses_abbreviations():
    """``--quick`` fills in only what was not given, which it tells by the flags' full names: an abbreviation
    (``--pop 16``) would be overwritten in silence, so it is refused."""
    from harness.bench.cli import parse_args

    assert parse_args(["--quick", "--population", "16"]).population == 16
    assert parse_args(["--quick"]).population == 8
    with pytest.raises(SystemExit):
        parse_args(["--quick", "--pop", "16"])
