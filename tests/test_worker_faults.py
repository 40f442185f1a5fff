"""Worker faults lose nothing: a worker that dies or hangs is replaced and its episodes re-run with
the same numbers; an episode that keeps failing, or whose environment raises, stops the run with a
message naming it; workers' log records reach the parent's logging.

Real worker processes on ``tests.envs:Faulty-v0``, which misbehaves on one episode seed.
"""

import json
import logging
import re

import pytest

from harness import seeding
from harness.config import ConfigError, validate
from harness.workers import EpisodeError, EpisodeSpec, RemoteTraceback, WorkerError, make_backend
from tests.conftest import FAST, read_metrics, run_cli
from tests.faults import (  # noqa: F401 (fixture)
    ENV_ID,
    FAULT_SEED,
    FAULTY,
    evaluate_until_it_fails,
    expected,
    faulty_args,
    faulty_chunk,
    marker_lines,
    numbers,
)


# With 2 workers the other one takes over the episodes; with 1, they wait for the replacement.
@pytest.mark.slow
@pytest.mark.parametrize("fault,reason,n", [("exit", "exited with code 3", 2), ("kill", "killed by signal SIGKILL", 1)])
def test_a_worker_that_dies_mid_epoch_is_replaced_and_the_results_are_unchanged(
    tmp_path, caplog, expected, fault, reason, n
):
    marker = tmp_path / "faults"
    backend = make_backend("process", n, faulty_args(fault=fault, seed=FAULT_SEED, marker=str(marker), once=True))
    try:
        before = set(backend.pids)
        with caplog.at_level(logging.WARNING, logger="harness.workers"):
            results = backend.evaluate(faulty_chunk())
        assert numbers(results) == expected
        assert len(marker_lines(marker)) == 1  # the fault did happen, once
        assert len(set(backend.pids) - before) == 1  # one worker was replaced
        warnings = [r.getMessage() for r in caplog.records if r.name == "harness.workers"]
        assert len(warnings) == 1 and reason in warnings[0] and f"episode seed {FAULT_SEED}" in warnings[0]
        assert "re-running" in warnings[0]
        assert numbers(backend.evaluate(faulty_chunk())) == expected  # and the replacement works
    finally:
        backend.close()


@pytest.mark.slow
def test_an_episode_that_always_kills_its_worker_stops_with_a_message_naming_it(tmp_path):
    marker = tmp_path / "faults"
    backend = make_backend("process", 2, faulty_args(fault="kill", seed=FAULT_SEED, marker=str(marker)), max_retries=1)
    try:
        with pytest.raises(WorkerError) as info:
            backend.evaluate(faulty_chunk())
    finally:
        backend.close()
    message = str(info.value)
    assert (
        f"environment {ENV_ID}, episode seed {FAULT_SEED}, perturbation noise offset {FAULTY.offset}, "
        f"sign {FAULTY.sign:+d}"
    ) in message
    assert "after 2 attempts (workers.max_retries=1)" in message and "killed by signal SIGKILL" in message
    assert len(marker_lines(marker)) == 2  # the first attempt and one retry


@pytest.mark.slow
def test_a_failing_episode_stops_a_real_run_and_keeps_the_finished_epochs(tmp_path):
    # population 4 = 2 mirrored pairs; generation 1 (the second epoch) is the first to meet this seed
    seed = int(seeding.env_seeds(0, seeding.TRAIN_ENV, 1, 2)[0])
    assert seed not in seeding.env_seeds(0, seeding.TRAIN_ENV, 0, 2)
    assert seed not in seeding.env_seeds(0, seeding.EVAL_ENV, 1, 2)
    run_dir = tmp_path / "run"
    proc = run_cli(
        f"env.id={ENV_ID}",
        "+env.kwargs.fault=kill",
        f"+env.kwargs.seed={seed}",
        "env.bc=null",
        "algo.population_size=4",
        "eval.episodes=2",
        "workers.n=2",
        "workers.max_retries=1",
        "budget.generations=3",
        f"hydra.run.dir={run_dir}",
        *FAST,
        check=False,
    )
    assert proc.returncode != 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 1
    error = summary["error"]
    assert error.startswith("WorkerError: giving up on the episode in ")
    assert re.search(
        rf"environment {re.escape(ENV_ID)}, episode seed {seed}, perturbation noise offset \d+, "
        r"sign [+-]1 after 2 attempts",
        error,
    ), error
    assert error.split(": ", 1)[1] in proc.stderr
    assert [r["epoch"] for r in read_metrics(run_dir)] == ["1"]
    assert (run_dir / "policy.npz").exists()
    log_text = (run_dir / "harness.log").read_text()  # the retry, logged before the run stopped
    assert "was killed by signal SIGKILL in task" in log_text and f"episode seed {seed}" in log_text


@pytest.mark.slow
def test_a_hanging_episode_is_killed_retried_then_stops_with_a_timeout(tmp_path):
    marker = tmp_path / "faults"
    error, seconds = evaluate_until_it_fails(
        "process", 1, marker, "hang", WorkerError, max_retries=1, episode_timeout_s=1.0
    )
    assert re.search(r"episode timeout \(workers.episode_timeout_s=1 s\)", str(error)) and seconds < 30
    assert f"episode seed {FAULT_SEED}, perturbation noise offset {FAULTY.offset}, sign +1" in str(error)
    assert len(marker_lines(marker)) == 2


@pytest.mark.slow
def test_an_exception_in_the_environment_fails_at_once_naming_the_episode(tmp_path):
    marker = tmp_path / "faults"
    error, _ = evaluate_until_it_fails("process", 2, marker, "raise", EpisodeError, max_retries=2)
    assert str(error).startswith(
        f"ValueError: bad episode seed {FAULT_SEED} (in environment {ENV_ID}, "
        f"episode seed {FAULT_SEED}, perturbation noise offset 14, sign +1"
    )
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "tests/envs.py" in str(error.__cause__) and "ValueError" in str(error.__cause__)
    assert len(marker_lines(marker)) == 1  # not retried


@pytest.mark.slow
def test_the_serial_backend_names_the_episode_too(tmp_path):
    backend = make_backend("serial", 1, faulty_args(fault="raise", seed=FAULT_SEED))
    try:
        with pytest.raises(EpisodeError, match=rf"episode seed {FAULT_SEED}, unperturbed parameters") as info:
            backend.evaluate(faulty_chunk([EpisodeSpec(0, 0, 103), EpisodeSpec(0, 0, FAULT_SEED)]))
    finally:
        backend.close()
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.slow
def test_a_warning_logged_in_a_worker_reaches_the_parents_log(caplog, expected):
    backend = make_backend("process", 1, faulty_args(fault="log", seed=FAULT_SEED))
    try:
        with caplog.at_level(logging.WARNING):
            assert numbers(backend.evaluate(faulty_chunk())) == expected
    finally:
        backend.close()
    records = [r for r in caplog.records if r.name == "tests.envs"]
    assert [r.getMessage() for r in records] == [f"FaultyEnv saw seed {FAULT_SEED}"]
    assert records[0].levelno == logging.WARNING and records[0].processName == "rollout-worker-0"


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_reported_with_its_error():
    with pytest.raises(
        WorkerError,
        match=r"rollout worker 0 \(pid \d+\) could not start \(environment "
        rf"{ENV_ID}\): TypeError: .*unexpected keyword argument 'bogus'",
    ) as info:
        make_backend("process", 1, faulty_args(bogus=1))
    assert isinstance(info.value.__cause__, RemoteTraceback)  # the worker's traceback


@pytest.mark.parametrize(
    "override,match",
    [
        ("workers.max_retries=-1", "workers.max_retries must be an integer >= 0"),
        ("workers.max_retries=1.5", "workers.max_retries must be an integer >= 0"),
        ("workers.max_retries=true", "workers.max_retries must be an integer >= 0"),
        ("workers.max_retries=0", None),
        ("workers.episode_timeout_s=0", "workers.episode_timeout_s must be a positive number of seconds or null"),
        ("workers.episode_timeout_s=-3", "workers.episode_timeout_s must be a positive number of seconds or null"),
        ("workers.episode_timeout_s=soon", "workers.episode_timeout_s must be a positive number of seconds or null"),
        ("workers.episode_timeout_s=inf", "workers.episode_timeout_s must be a positive number of seconds or null"),
        ("workers.episode_timeout_s=0.5", None),
    ],
)
def test_bad_fault_settings_are_rejected(make_cfg, override, match):
    cfg = make_cfg(override)
    if match is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


@pytest.mark.slow
def test_more_workers_than_cpus_is_said(monkeypatch, caplog):
    """Issue 19, item 14: workers.n above the CPU count shares cores; the run says so once."""
    import harness.workers.process

    monkeypatch.setattr(harness.workers.process, "default_num_workers", lambda: 1)
    with caplog.at_level(logging.WARNING, logger="harness.workers"):
        backend = make_backend("process", 2, faulty_args(fault="exit", seed=-1))
        backend.close()
    assert "workers.n=2 worker processes on the 1 CPUs" in caplog.text
