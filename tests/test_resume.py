"""Lose nothing: checkpoints every epoch, resume after SIGKILL or Ctrl-C to exactly the rows and
parameters of an uninterrupted run, and never overwrite a run directory."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from harness.tracking import COST_COLUMNS, keep_rows
from tests.conftest import FAST, ROOT, read_metrics, run_cli

HOPPER = ("env=Hopper", "env.max_episode_steps=100", "algo.population_size=8", "eval.episodes=2", "workers.n=2", *FAST)
# the killed runs and their reference: 40 episodes a generation, so that a generation lasts about 0.1 s
# (8 episodes took 24 ms on an AMD EPYC, less than the time from seeing a row to the signal's arrival:
# the run could finish its 6 generations before a signal sent after its 3rd row was handled)
KILLED = (*(a for a in HOPPER if not a.startswith("algo.population_size=")), "algo.population_size=40")


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


def _same_arrays(a, b, keys):
    with np.load(a) as za, np.load(b) as zb:
        for k in keys:
            np.testing.assert_array_equal(za[k], zb[k], err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted ES runs of 6 generations, for comparison."""
    root = tmp_path_factory.mktemp("reference")
    run_cli(*KILLED, "budget.generations=6", f"hydra.run.dir={root / 'es'}")
    return root


def _start(run_dir, *args):
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_rows(run_dir, n, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "metrics.csv").exists() and len(read_metrics(run_dir)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {n} rows: {proc.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError(f"no {n} rows within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("how,after", [("SIGKILL", 2), ("SIGKILL", 4), ("SIGINT", 3)])
def test_a_killed_run_resumes_to_the_uninterrupted_rows_and_parameters(reference, tmp_path, how, after):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, *KILLED, "budget.generations=6")
    _wait_for_rows(run_dir, after, proc)
    if how == "SIGKILL":  # the whole process group: the run and its workers, mid-epoch or mid-write
        os.killpg(proc.pid, signal.SIGKILL)
    else:  # Ctrl-C: the run stops after the current epoch
        os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    assert len(read_metrics(run_dir)) < 6
    run_cli(f"resume={run_dir}", "wandb.mode=disabled")
    assert _rows(run_dir) == _rows(reference / "es")
    _same_arrays(run_dir / "policy.npz", reference / "es" / "policy.npz", ("params", "opt_m", "opt_v", "obs_m2"))
    summary = yaml.safe_load((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 6 and summary["resumed_from_epoch"] >= 1


# every algorithm's SIGKILL-and-resume is tests/test_algorithms.py's; a larger budget, for the two
# states that are more than a mean: VO's per-parameter sigma and NSRA-ES's meta-population with its weight
@pytest.mark.slow
@pytest.mark.parametrize(
    "algo,extra",
    [
        ("vo", ("algo.sigma_mode=per_param",)),
        ("nsra_es", ("algo.meta_population_size=2", "algo.bc_episodes=1", "algo.stagnation_epochs=1")),
    ],
)
def test_resume_with_a_larger_budget_continues_exactly(tmp_path, algo, extra):
    common = (f"algo={algo}", *HOPPER, *extra)
    run_cli(*common, "budget.generations=5", f"hydra.run.dir={tmp_path / 'whole'}")
    run_cli(*common, "budget.generations=2", f"hydra.run.dir={tmp_path / 'parts'}")
    run_cli(f"resume={tmp_path / 'parts'}", "budget.generations=5")
    assert _rows(tmp_path / "parts") == _rows(tmp_path / "whole")
    assert (tmp_path / "parts" / "behaviours.csv").read_text() == (tmp_path / "whole" / "behaviours.csv").read_text()
    _same_arrays(tmp_path / "parts" / "policy.npz", tmp_path / "whole" / "policy.npz", ("params",))
    if algo == "vo":
        _same_arrays(tmp_path / "parts" / "policy.npz", tmp_path / "whole" / "policy.npz", ("sigma",))
    else:
        _same_arrays(
            tmp_path / "parts" / "meta_population.npz",
            tmp_path / "whole" / "meta_population.npz",
            ("archive", "reward_weight", "agent0_params", "agent1_opt_v"),
        )


@pytest.mark.slow
def test_trpo_resumes_from_its_checkpoint(tmp_path):
    import torch

    from harness.algos import trpo

    tiny = (
        "algo=trpo",
        "env=HalfCheetah",
        "env.max_episode_steps=100",
        "algo.n_steps=256",
        "eval.episodes=1",
        "eval.every_timesteps=0",
        "wandb.mode=disabled",
        "progress=false",
        "workers.n=1",
        "eval.at_start=false",
    )
    run_dir = tmp_path / "run"
    run_cli(*tiny, "budget.generations=2", f"hydra.run.dir={run_dir}")
    checkpoint = tmp_path / "epoch_2"  # a copy: the resumed run replaces its checkpoints
    shutil.copytree(run_dir / "checkpoint" / "epoch_0000002", checkpoint)
    saved = torch.load(checkpoint / "rng.pt", weights_only=False)
    run_cli(f"resume={run_dir}", "budget.generations=4")
    assert sorted(p.name for p in (run_dir / "checkpoint").iterdir()) == ["epoch_0000004", "latest"]
    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["timesteps"]) for r in rows] == [512, 1024, 1536, 2048]
    # the restored state is the saved one: reload the epoch-2 checkpoint into a fresh trainer
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[o for o in tiny if not o.startswith("hydra")])
    trainer = trpo.make_trainer(cfg)
    try:
        trainer.load_checkpoint(checkpoint)
        assert trainer.model.num_timesteps == 1024
        assert torch.equal(torch.get_rng_state(), saved["torch"])
        reference = trpo.TRPO.load(checkpoint / "model.zip", device="cpu")
        for a, b in zip(trainer.model.policy.parameters(), reference.policy.parameters()):
            assert torch.equal(a, b)
    finally:
        trainer.close()


def _digests(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_second_run_in_the_same_directory_is_refused_and_changes_nothing(reference, tmp_path):
    run_dir = tmp_path / "run"
    run_cli(*HOPPER, "budget.generations=1", f"hydra.run.dir={run_dir}")
    before = _digests(run_dir)
    proc = run_cli(*HOPPER, "budget.generations=2", "seed=3", f"hydra.run.dir={run_dir}", check=False)
    assert proc.returncode == 2
    assert f"{run_dir} already holds a run" in proc.stderr and f"resume={run_dir}" in proc.stderr
    assert _digests(run_dir) == before


@pytest.mark.slow
def test_resume_refuses_to_change_what_the_run_computes(tmp_path):
    run_dir = tmp_path / "run"
    run_cli(*HOPPER, "budget.generations=1", f"hydra.run.dir={run_dir}")
    proc = run_cli(f"resume={run_dir}", "algo.sigma=0.5", check=False)
    assert proc.returncode == 2
    assert "algo.sigma=0.5 differs from its config.yaml" in proc.stderr
    proc = run_cli(f"resume={tmp_path / 'nothing'}", check=False)
    assert proc.returncode == 2 and "holds no run to continue" in proc.stderr


@pytest.mark.slow
def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    """Issue 19, item 8: with its budget spent, a resume (either form) touches no file: not
    summary.json, not policy.npz, not the log, no W&B segment."""
    run_dir = tmp_path / "run"
    run_cli(
        *HOPPER[: -len(FAST)],
        "budget.generations=2",
        "algo.noise_table_size=1000000",
        "progress=false",
        "eval.every_timesteps=0",
        "eval.at_start=false",
        "wandb.mode=offline",
        f"hydra.run.dir={run_dir}",
        env_vars={"WANDB_DIR": str(tmp_path / "wandb_home")},
    )
    before = _digests(run_dir)
    for args in ((f"resume={run_dir}",), ("resume=true", f"hydra.run.dir={run_dir}")):
        proc = run_cli(*args, env_vars={"WANDB_DIR": str(tmp_path / "wandb_home")})
        assert "completed its budget; nothing to do" in proc.stdout
        assert _digests(run_dir) == before
    run_cli(f"resume={run_dir}", "budget.generations=3", "wandb.mode=disabled")  # a larger budget continues it
    assert len(read_metrics(run_dir)) == 3


@pytest.mark.slow
def test_resume_true_with_hydra_run_dir_the_readmes_form_continues_the_run(tmp_path):
    run_dir = tmp_path / "run"
    run_cli(*HOPPER, "budget.generations=2", f"hydra.run.dir={run_dir}")
    run_cli("resume=true", f"hydra.run.dir={run_dir}", "budget.generations=3")
    assert [r["epoch"] for r in read_metrics(run_dir)] == ["1", "2", "3"]
    proc = run_cli("resume=true", check=False)  # without the folder: one line saying what to add
    assert proc.returncode == 2 and "add hydra.run.dir=DIR" in proc.stderr


def test_keep_rows_drops_later_epochs_and_a_half_written_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,timesteps\n1,10\n2,20\n3,30\n4,4")  # epoch 4 was cut mid-write
    assert keep_rows(path, 2) == ["epoch", "timesteps"]
    assert path.read_text() == "epoch,timesteps\n1,10\n2,20\n"
    assert keep_rows(tmp_path / "absent.csv", 3) is None


@pytest.mark.slow
def test_a_run_still_going_cannot_be_resumed_or_overwritten_by_another_process(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, *HOPPER, "budget.generations=200")
    try:
        _wait_for_rows(run_dir, 2, proc)
        for args in ((f"resume={run_dir}",), (*HOPPER, f"hydra.run.dir={run_dir}")):
            other = run_cli(*args, check=False)
            assert other.returncode == 2
            assert "in use by a running harness process" in other.stderr or "already holds a run" in other.stderr
        assert f"pid {proc.pid}" in run_cli(f"resume={run_dir}", check=False).stderr
        rows = len(read_metrics(run_dir))
        _wait_for_rows(run_dir, rows + 1, proc)  # the first run goes on, its rows untouched
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    epochs = [int(r["epoch"]) for r in read_metrics(run_dir)]
    assert epochs == list(range(1, len(epochs) + 1))


def test_run_lock_refuses_a_second_holder_and_goes_on_unlocked_where_the_file_system_has_no_locks(
    tmp_path, monkeypatch, caplog
):
    import errno
    import fcntl

    from harness.runner import RunDirError, RunLock

    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    unlocked = RunLock(tmp_path)
    unlocked.acquire()  # an NFS mount without lockd: warn and go on
    assert not unlocked.locked and "does not support locks" in caplog.text
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    unlocked.release()

    def bad_descriptor(fd, operation):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(fcntl, "flock", bad_descriptor)
    with pytest.raises(OSError, match="Bad file descriptor"):  # any other error is not hidden
        RunLock(tmp_path).acquire()


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["es", "trpo"])
def test_sigterm_to_the_process_group_interrupts_cleanly(tmp_path, algo):
    """What a scheduler (Slurm's scancel, docker stop) does: SIGTERM to every process of the job."""
    run_dir = tmp_path / "run"
    args = (
        (*HOPPER, "budget.generations=200")
        if algo == "es"
        else (
            "algo=trpo",
            "env=Hopper",
            "algo.n_steps=256",
            "workers.n=2",
            "wandb.mode=disabled",
            "progress=false",
            "eval.every_timesteps=0",
            "eval.episodes=1",
            "budget.generations=200",
        )
    )
    proc = _start(run_dir, *args)
    _wait_for_rows(run_dir, 2, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 143
    summary = yaml.safe_load((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "SIGTERM"
    assert "re-running" not in (run_dir / "harness.log").read_text()  # no worker took the signal as a fault


@pytest.mark.slow
def test_a_failed_job_does_not_cancel_the_rest_of_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "algo.sigma=-1,0.03", *HOPPER, "budget.generations=1", f"hydra.sweep.dir={sweep}", check=False)
    assert "algo.sigma must be a positive finite number" in proc.stderr
    assert "the sweep goes on" in proc.stderr
    assert len(list(sweep.glob("*/metrics.csv"))) == 1  # the good job ran
    # and at its end the sweep names the failed job and exits with 1, for scripts and CI
    assert proc.returncode == 1
    assert "1 job(s) of the sweep failed" in proc.stderr
    assert "job 0: exit code 2 as a single run (no run folder): invalid config: algo.sigma must be" in proc.stderr
    num, code, folder, reason = (sweep / "failed_jobs.tsv").read_text().rstrip("\n").split("\t")
    assert (num, code, folder) == ("0", "2", "-") and not (sweep / "0").exists()  # a refused job leaves no folder
    assert reason.startswith("invalid config: algo.sigma must be a positive finite number")


@pytest.mark.slow
def test_a_run_of_an_older_version_resumes_naming_the_keys_it_lacks(tmp_path):
    """Issue 19, item 9: a saved config.yaml without a key the code has now (made by an older version)
    is no OmegaConf traceback: the key takes today's default, or the command line's value, and the
    warning names it; resume=auto accepts the run when today's default is what it asks."""
    run = tmp_path / "run"
    common = ("algo=vo", *HOPPER)
    run_cli(*common, "budget.generations=2", f"hydra.run.dir={run}")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    del cfg["algo"]["sigma_max_change"], cfg["eval"]["every_timesteps"]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_cli(f"resume={run}", "budget.generations=3", "eval.every_timesteps=0", "wandb.mode=disabled")
    out = proc.stdout + proc.stderr
    assert "lacks algo.sigma_max_change, eval.every_timesteps" in out and "Traceback" not in out
    assert (
        "algo.sigma_max_change=0.2 (today's default" in out and "eval.every_timesteps=0 (from the command line)" in out
    )
    assert len(read_metrics(run)) == 3
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["algo"]["sigma_max_change"] == 0.2 and saved["eval"]["every_timesteps"] == 0
    del saved["algo"]["sigma_max_change"]  # and once more, older still, under resume=auto with a larger budget
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    proc = run_cli(*common, "budget.generations=4", "resume=auto", f"hydra.run.dir={run}")
    assert len(read_metrics(run)) == 4, proc.stdout + proc.stderr


@pytest.mark.slow
def test_after_a_sigkill_the_resumed_wandb_run_holds_every_epoch_of_metrics_csv(tmp_path):
    """Issue 19, item 7: W&B's writer dies with the run (its file may hold the header alone); the resume
    logs the rows W&B lacks from metrics.csv, so the offline files, read back, hold every epoch once the
    run ends, and the rows are an uninterrupted run's."""
    from harness.wandb_files import history, run_files

    offline = (
        *HOPPER[: -len(FAST)],
        "algo.noise_table_size=1000000",
        "progress=false",
        "eval.every_timesteps=0",
        "eval.at_start=false",
        "wandb.mode=offline",
        "budget.generations=30",
    )
    run_dir = tmp_path / "run"
    proc = _start(run_dir, *offline)
    _wait_for_rows(run_dir, 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert len(read_metrics(run_dir)) < 30, "the kill came after the run ended: nothing was tested"
    run_cli("resume=true", f"hydra.run.dir={run_dir}")
    rows = read_metrics(run_dir)
    [run_id] = {p.parent.name.rsplit("-", 1)[1] for p in (run_dir / "wandb").glob("offline-run-*/run-*.wandb")}
    logged = [r for path in run_files(run_dir, run_id) for r in history(path) if "epoch" in r]
    assert {r["epoch"] for r in logged} == {int(r["epoch"]) for r in rows} == set(range(1, 31))
    by_epoch = {r["epoch"]: r for r in logged}
    for r in rows:  # the values W&B holds are metrics.csv's
        assert by_epoch[int(r["epoch"])]["timesteps"] == int(r["timesteps"])
        assert by_epoch[int(r["epoch"])]["return_mean"] == float(r["return_mean"])
    whole = [o for o in offline if not o.startswith("wandb.mode=")]
    run_cli(*whole, "wandb.mode=disabled", f"hydra.run.dir={tmp_path / 'whole'}")
    assert _rows(run_dir) == _rows(tmp_path / "whole")
