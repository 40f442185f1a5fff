"""Hydra launchers: a ``-m`` sweep run side by side by joblib, and through submitit (its local
executor stands in for SLURM); the shipped SLURM config (conf/hydra/launcher/slurm.yaml) composes
and gives sbatch the options it documents."""

import json

import pytest
from hydra import compose, initialize_config_dir

from harness.tracking import COST_COLUMNS
from tests.conftest import CONF, FAST, read_metrics, run_cli
from tests.wandb_records import history

# Two generations of 8 short InvertedPendulum episodes, one rollout worker per job, W&B offline.
# seed=-1 is refused as a config error: a failed job among good ones, started first.
TINY = (
    "env=InvertedPendulum",
    "budget.generations=2",
    *FAST,
    "algo.population_size=8",
    "eval.episodes=2",
    "wandb.mode=offline",
    "workers.n=1",
)
SEEDS = "seed=-1,0,1"


def _complete_runs(sweep) -> dict[str, int]:
    """Check that ``sweep`` holds exactly the two good jobs' run directories, each complete (a
    completed summary, two metrics rows, config, policy, checkpoint, its own harness.log and one
    offline W&B run with the same two epochs); return ``{run name: pid that ran it}``."""
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in runs] == ["es_InvertedPendulum_seed0_1", "es_InvertedPendulum_seed1_2"]
    pids = {}
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs"] == 2, summary
        assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2]
        assert "workers:\n  n: 1" in (run / "config.yaml").read_text()
        assert (run / "policy.npz").is_file() and (run / "checkpoint" / "latest").is_file()
        log = (run / "harness.log").read_text()
        # each job logs to its own file: a handler left from another job in the same process would add lines
        assert log.count("| timesteps ") == 2 and "epoch 2 |" in log, log
        (wandb_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
        assert [h["epoch"] for h in history(wandb_file)] == [1, 2]
        pids[run.name] = int((run / ".lock").read_text())  # RunLock writes the pid of the process that ran it
    return pids


def _refused_job_reported(proc, output: str) -> None:
    """The sweep ran its other jobs, ``output`` says why the seed=-1 job did not run, and the sweep's
    exit code says that one of its jobs failed."""
    assert proc.returncode == 1, proc.stderr
    assert "seed must be a non-negative integer, got -1" in output
    assert "the sweep goes on" in output


@pytest.mark.slow
def test_joblib_runs_the_jobs_of_a_sweep_side_by_side_each_with_its_rollout_pool(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", SEEDS, *TINY, f"hydra.sweep.dir={sweep}", check=False
    )
    _refused_job_reported(proc, proc.stderr)
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    pids = _complete_runs(sweep)
    # in two loky worker processes at once (the basic launcher runs every job in one process), each of
    # which spawned its own rollout worker
    assert len(set(pids.values())) == 2
    # the launcher changes where a job runs, not what it computes
    single = tmp_path / "single"
    run_cli("seed=0", *TINY, "wandb.mode=disabled", f"hydra.run.dir={single}")
    drop_wall = [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(single)]
    assert [
        {k: v for k, v in r.items() if k not in COST_COLUMNS}
        for r in read_metrics(sweep / "es_InvertedPendulum_seed0_1")
    ] == drop_wall


@pytest.mark.slow
def test_submitit_runs_the_jobs_of_a_sweep_as_separate_processes(tmp_path):
    # what hydra/launcher=slurm does on a cluster, with submitit's local executor for sbatch
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        SEEDS,
        *TINY,
        f"hydra.sweep.dir={sweep}",
        check=False,
    )
    # the jobs' own console output goes to submitit's log files
    job_logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.*"))
    _refused_job_reported(proc, job_logs)
    assert "Traceback" not in proc.stderr + job_logs  # the refused job's removed folder broke no later log call
    assert len(set(_complete_runs(sweep).values())) == 2


def _compose_hydra(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_the_slurm_config_extends_the_submitit_slurm_launcher():
    launcher = _compose_hydra("hydra/launcher=slurm").hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert {
        k: launcher[k]
        for k in (
            "partition",
            "account",
            "timeout_min",
            "signal_delay_s",
            "cpus_per_task",
            "mem_gb",
            "nodes",
            "tasks_per_node",
            "gpus_per_node",
            "array_parallelism",
            "max_num_timeout",
        )
    } == {
        "partition": None,
        "account": None,
        "timeout_min": 240,
        "signal_delay_s": 120,
        "cpus_per_task": 8,
        "mem_gb": 4,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": None,
        "array_parallelism": 64,
        "max_num_timeout": 0,
    }
    # the plugin's own keys are still there, and the job config is untouched (workers.n: every CPU of the job)
    cfg = _compose_hydra("hydra/launcher=slurm", "hydra.launcher.partition=cpu")
    assert cfg.hydra.launcher.partition == "cpu" and cfg.hydra.launcher.stderr_to_stdout is False
    assert cfg.workers.n is None


class _Submitted(Exception):
    pass


def test_the_slurm_config_gives_sbatch_the_documented_options(tmp_path, monkeypatch):
    """The launcher's own path from config to sbatch script, with no cluster: SLURM's srun
    detection is faked and the submission stops before sbatch would be called."""
    import submitit
    from hydra.utils import instantiate

    cfg = _compose_hydra("hydra/launcher=slurm", "hydra.launcher.partition=cpu", f"hydra.sweep.dir={tmp_path}")
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is here"
    scripts = []

    def submit(executor, fn, *job_args):
        scripts.append(executor._executor._make_submission_file_text("<command>", "<uid>"))
        raise _Submitted

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", submit)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg
    with pytest.raises(_Submitted):
        launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)
    options = {line for line in scripts[0].splitlines() if line.startswith("#SBATCH")}
    assert {
        "#SBATCH --partition=cpu",
        "#SBATCH --time=240",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=4GB",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=harness",
        f"#SBATCH --output={tmp_path}/.submitit/%j/%j_0_log.out",
    } <= options
    assert not any("gpu" in line or "account" in line for line in options)
