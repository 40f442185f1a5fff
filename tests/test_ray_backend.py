"""``workers.backend=ray``: the same numbers as ``process`` for every ES-family algorithm, faults
handled the same way, a bad ``workers.ray_address`` refused before anything starts.

The CLI runs start their own local Ray instance, as a user's run does; the other tests share one
instance for the module (each start costs seconds on 2 cores).
"""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from omegaconf import OmegaConf

from harness.config import ConfigError, validate
from harness.tracking import COST_COLUMNS
from harness.workers import EpisodeError, RemoteTraceback, WorkerError, make_backend
from tests.conftest import FAST, ROOT, read_metrics, run_cli
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

pytestmark = pytest.mark.slow  # every test here starts a Ray cluster

ray = pytest.importorskip("ray")

# Small real runs: Hopper-v5 (a behaviour characterization for the novelty family) with short
# episodes of a linear policy.
TINY = (
    "env=Hopper",
    "env.max_episode_steps=50",
    "algo.population_size=6",
    "eval.episodes=2",
    "budget.generations=2",
    "workers.n=2",
    "seed=5",
    *FAST,
)
NOVELTY = ("algo.meta_population_size=2", "algo.bc_episodes=2", "algo.k=2")


def _without_wall_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in rows]


def test_a_cli_run_gives_the_process_backends_metrics_quietly(tmp_path):
    rows = {}
    for backend in ("process", "ray"):
        proc = run_cli("algo=es", *TINY, f"workers.backend={backend}", f"hydra.run.dir={tmp_path / backend}")
        rows[backend] = _without_wall_time(read_metrics(tmp_path / backend))
        if backend == "ray":  # no Ray banner, warning or worker output on the console
            assert "ray" not in proc.stderr.lower(), proc.stderr
            assert "(pid=" not in proc.stdout + proc.stderr
    assert len(rows["ray"]) == 2 and rows["ray"] == rows["process"]


def test_sigterm_to_the_process_group_interrupts_a_ray_run_cleanly(tmp_path):
    """A scheduler's SIGTERM to the whole job must not take the local Ray instance down mid-epoch."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "algo=es",
            "env=Hopper",
            "env.max_episode_steps=200",
            "algo.population_size=60",
            "eval.episodes=2",
            "workers.n=2",
            "workers.backend=ray",
            "budget.generations=500",
            *FAST,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ((run_dir / "metrics.csv").exists() and len(read_metrics(run_dir)) >= 2):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no 2 rows within 300 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read()
    assert proc.returncode == 143, stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "SIGTERM"
    assert "re-running" not in (run_dir / "harness.log").read_text()  # no actor took the signal as a fault


@pytest.mark.parametrize(
    "override,match",
    [
        ("workers.ray_address=5", "workers.ray_address must be null"),
        ("workers.ray_address=''", "workers.ray_address must be null"),
    ],
)
def test_a_bad_ray_address_is_a_config_error(tmp_path, override, match):
    proc = run_cli("workers.backend=ray", override, *FAST, f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and match in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_ray_settings_are_validated(make_cfg):
    validate(make_cfg("workers.backend=ray", "workers.ray_address=auto"))
    validate(make_cfg("workers.backend=ray", "workers.ray_address=ray://head:10001"))
    with pytest.raises(ConfigError, match="workers.ray_address must be null"):
        validate(make_cfg("workers.backend=ray", "workers.ray_address=[1]"))
    with pytest.raises(ConfigError, match="TRPO runs its environments in processes of its own"):
        validate(make_cfg("algo=trpo", "env=Hopper", "workers.backend=ray"))


def test_other_backends_never_import_ray():
    code = (
        "import sys; from harness.workers import WorkerSpec, make_backend; "
        "import harness.algos.evolution, harness.config; "
        "b = make_backend('process', 1, WorkerSpec({'id': 'tests.envs:Faulty-v0', 'kwargs': {}, "
        "'max_episode_steps': None}, {'name': 'linear'}, (0, (0,)), 1000)); b.close(); "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


# -- one Ray instance for the rest of the module ------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance():
    previous = signal.getsignal(signal.SIGTERM)  # ray.init replaces it
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    signal.signal(signal.SIGTERM, previous)
    yield
    ray.shutdown()


def _run(tmp_path, name: str, *overrides: str) -> list[dict]:
    """A run in this process (the module's Ray instance for ``ray``); its metrics rows without wall time."""
    from hydra import compose, initialize_config_dir

    from harness.algos import get_algo
    from harness.config import resolved_config
    from harness.runner import Runner
    from tests.conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    validate(cfg)
    data = resolved_config(cfg)
    algo = get_algo(data["algo"]["name"])
    summary = Runner(data, tmp_path / name, lambda c: algo.make_trainer(OmegaConf.create(c))).run()
    assert summary["status"] == "completed"
    return _without_wall_time(read_metrics(tmp_path / name))


@pytest.mark.parametrize(
    "algo,extra",
    [
        ("vo", ("algo.sigma_mode=per_param",)),  # sigma a vector: it too travels through the object store
        ("ns_es", NOVELTY),
        ("nsr_es", NOVELTY),
        ("nsra_es", (*NOVELTY, "algo.stagnation_epochs=1")),
    ],
)
def test_every_es_family_algorithm_gives_the_same_rows_on_ray(ray_instance, tmp_path, algo, extra):
    overrides = (f"algo={algo}", *TINY, *extra)
    process = _run(tmp_path, "process", *overrides, "workers.backend=process")
    on_ray = _run(tmp_path, "ray", *overrides, "workers.backend=ray")
    assert len(on_ray) == 2 and on_ray == process


def test_full_vectors_travel_to_the_actors_with_the_same_rows(ray_instance, tmp_path):
    """Issue 32, item 2, on Ray: workers.ship=vectors sends each piece's parameters as a (k, d) array; the
    rows are the process backend's, and the driver counts 8 d bytes more per training episode."""
    overrides = ("algo=es", *TINY)
    process = _run(tmp_path, "process", *overrides, "workers.backend=process")
    on_ray = _run(tmp_path, "ray", *overrides, "workers.backend=ray", "workers.ship=vectors")
    assert len(on_ray) == 2 and on_ray == process
    with np.load(tmp_path / "ray" / "policy.npz") as f:
        d = int(f["params"].size)
    plain = _run(tmp_path, "ray_seeds", *overrides, "workers.backend=ray")
    assert plain == process
    for s, v in zip(read_metrics(tmp_path / "ray_seeds"), read_metrics(tmp_path / "ray")):
        if s["bytes_sent"]:  # the step-0 row has no training traffic
            assert float(v["bytes_sent"]) - float(s["bytes_sent"]) >= 8 * d * 6  # population 6


def test_actors_import_this_checkouts_harness(ray_instance):
    import harness
    from harness.workers.ray_backend import runtime_env

    def where():
        import harness as h

        return h.__file__, os.environ.get("OMP_NUM_THREADS")

    remote = ray.remote(where).options(runtime_env=runtime_env())
    assert ray.get(remote.remote()) == (harness.__file__, "1")


def test_an_actor_killed_mid_epoch_is_replaced_and_the_results_are_unchanged(ray_instance, tmp_path, caplog, expected):
    marker = tmp_path / "faults"
    backend = make_backend("ray", 2, faulty_args(fault="kill", seed=FAULT_SEED, marker=str(marker), once=True))
    try:
        with caplog.at_level(logging.WARNING, logger="harness.workers"):
            assert numbers(backend.evaluate(faulty_chunk())) == expected
        assert len(marker_lines(marker)) == 1  # the fault did happen, once
        warnings = [r.getMessage() for r in caplog.records if r.name == "harness.workers"]
        assert len(warnings) == 1 and "died" in warnings[0] and "re-running" in warnings[0], warnings
        assert "episode seeds 103, 104, 105" in warnings[0]  # the piece it was running: tasks 3-5
        assert numbers(backend.evaluate(faulty_chunk())) == expected  # and the replacement works
        # an actor killed from outside (ray.kill) between calls: its next piece is re-run elsewhere
        ray.kill(backend.actors[0].handle)
        assert numbers(backend.evaluate(faulty_chunk())) == expected
    finally:
        backend.close()
        backend.close()  # idempotent


def test_a_hanging_episode_is_killed_retried_then_stops_naming_it(ray_instance, tmp_path):
    marker = tmp_path / "faults"
    error, seconds = evaluate_until_it_fails(
        "ray", 1, marker, "hang", WorkerError, max_retries=1, episode_timeout_s=1.0
    )
    message = str(error)
    assert re.search(r"episode timeout \(workers.episode_timeout_s=1 s", message) and seconds < 60
    assert (
        f"giving up on the episode in environment {ENV_ID}, episode seed {FAULT_SEED}, perturbation noise "
        f"offset {FAULTY.offset}, sign +1 after 2 attempts (workers.max_retries=1)"
    ) in message
    assert len(marker_lines(marker)) == 2  # in its piece, then alone


def test_an_exception_in_the_environment_fails_at_once_naming_the_episode(ray_instance, tmp_path, caplog):
    marker = tmp_path / "faults"
    error, _ = evaluate_until_it_fails("ray", 1, marker, "raise", EpisodeError, max_retries=2)
    assert str(error).startswith(
        f"ValueError: bad episode seed {FAULT_SEED} (in environment {ENV_ID}, "
        f"episode seed {FAULT_SEED}, perturbation noise offset 14, sign +1"
    )
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "tests/envs.py" in str(error.__cause__)
    assert len(marker_lines(marker)) == 1  # not retried


def test_a_warning_logged_in_an_actor_reaches_the_drivers_log(ray_instance, caplog, expected):
    backend = make_backend("ray", 1, faulty_args(fault="log", seed=FAULT_SEED))
    try:
        with caplog.at_level(logging.WARNING):
            assert numbers(backend.evaluate(faulty_chunk())) == expected
    finally:
        backend.close()
    records = [r for r in caplog.records if r.name == "tests.envs"]
    assert [r.getMessage() for r in records] == [f"FaultyEnv saw seed {FAULT_SEED}"]


def test_an_actor_that_cannot_start_is_reported_with_its_error(ray_instance):
    with pytest.raises(
        WorkerError,
        match=r"rollout actor 0 could not start \(environment "
        rf"{ENV_ID}\): TypeError: .*unexpected keyword argument 'bogus'",
    ) as info:
        make_backend("ray", 1, faulty_args(bogus=1))
    assert isinstance(info.value.__cause__, RemoteTraceback)


def test_an_unreachable_cluster_is_said_at_once(tmp_path):
    """Ray itself would retry an address where nothing answers for minutes, printing only C++ warnings."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli(
        "workers.backend=ray",
        f"workers.ray_address=127.0.0.1:{port}",
        "env=Hopper",
        *FAST,
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert proc.returncode == 1
    assert f"cannot reach the Ray cluster of workers.ray_address='127.0.0.1:{port}'" in proc.stderr, proc.stderr
    # no epoch ran, so the hint does not speak of a last finished epoch
    assert f"no epoch finished: resume={tmp_path / 'run'} starts it again from the beginning" in proc.stderr
