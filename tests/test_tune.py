"""The Optuna tuning driver (harness/tune.py) held as a user holds it: several processes on one study,
a killed process and its rerun, ``--show`` beside a study, and what ``trials.csv`` writes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from harness import tune
from tests.conftest import ROOT

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}


def _recipe(tmp_path, trials: int, seeds=(100,)):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "study": "tiny",
                "algo": "es",
                "env": "InvertedPendulum",
                "seeds": list(seeds),
                "trials": trials,
                "overrides": [
                    "budget.generations=4",
                    "budget.timesteps=0",
                    "eval.episodes=2",
                    "eval.every_timesteps=0",
                    "workers.n=1",
                    "algo.noise_table_size=1000000",
                    "wandb.mode=disabled",
                ],
                "objective": {"last_evals": 1},
                "space": {
                    "algo.sigma": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
                    "algo.population_size": {"type": "categorical", "choices": [4, 8]},
                },
            }
        )
    )
    return recipe


def _tune(recipe, out, *args):
    # --heartbeat 3: a trial whose process stopped beating is failed (and queued again) 9 s later
    return [sys.executable, "-m", "harness.tune", str(recipe), "--out", str(out), "--heartbeat", "3", *args]


def _wait_for(path, proc, seconds=300):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _trial_runs(study_dir):
    trials = pd.read_csv(study_dir / "trials.csv")
    return trials, {row.number: json.loads(row.runs) for row in trials.itertuples()}


@pytest.mark.slow
def test_two_processes_share_one_study_without_failing_each_others_trials(tmp_path):
    recipe, out = _recipe(tmp_path, trials=3), tmp_path / "out"
    first = subprocess.Popen(
        _tune(recipe, out), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for(out / "tiny" / "runs", first)
    while not any((out / "tiny" / "runs").iterdir()):  # the first process's trial 0 is running
        assert first.poll() is None
        time.sleep(0.05)
    second = subprocess.run(
        _tune(recipe, out), cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=600
    )
    first_out = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_out
    assert second.returncode == 0, second.stdout + second.stderr
    trials, runs = _trial_runs(out / "tiny")
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}, trials  # no process failed another's trial
    assert (trials["state"] != "RUNNING").all() and len(trials) >= 3
    # each trial trained its own run folder (one seed) with its own log, none shared
    folders = [f for number in runs for f in runs[number]]
    assert len(folders) == len(set(folders)) == len(trials)
    for folder in folders:
        assert json.loads((out / "tiny" / "runs" / folder / "summary.json").read_text())["status"] == "completed"
        assert (out / "tiny" / "runs" / f"{folder}.log").read_text().startswith(sys.executable)
    # both processes say how the study ended
    assert "3 done" in first_out and "3 done" in second.stdout


@pytest.mark.slow
def test_a_killed_trial_is_run_again_and_the_rerun_reaches_the_trials_done(tmp_path):
    recipe, out = _recipe(tmp_path, trials=2), tmp_path / "out"
    proc = subprocess.Popen(
        _tune(recipe, out),
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs = out / "tiny" / "runs"
    _wait_for(runs, proc)
    deadline = time.monotonic() + 300
    while not list(runs.glob("*/metrics.csv")):  # trial 0's run has trained an epoch
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the same command, at once: the killed trial is told from a running one by its heartbeat, failed once that
    # is 9 s old, and asked again; its run continues in the killed trial's folder
    rerun = subprocess.run(
        _tune(recipe, out), cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    trials, trial_runs = _trial_runs(out / "tiny")
    done = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    assert len(done) == 2, trials
    assert list(trials[trials["state"] == "FAIL"]["number"]) == [0]
    retried = trials[trials["retry_of"] == 0]
    assert len(retried) == 1 and retried.iloc[0]["state"] in ("COMPLETE", "PRUNED")
    assert trial_runs[int(retried.iloc[0]["number"])] == trial_runs[0]  # the same run folder, continued
    summary = json.loads((runs / trial_runs[0][0] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] >= 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_show_changes_nothing_in_the_storage(tmp_path):
    import optuna

    recipe = tune.Recipe.load(_recipe(tmp_path, trials=2))
    study_dir = tmp_path / "out" / "tiny"
    study = tune.make_study(recipe, study_dir, heartbeat_s=2)
    done = study.ask()
    study.tell(done, 1.0)
    running = study.ask()  # a trial another process is running (no heartbeat recorded: an older harness's)
    db = study_dir / "optuna.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert tune.main([str(recipe.source), "--out", str(tmp_path / "out"), "--show"]) == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    states = [t.state for t in optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING] and running.number == 1
    # on a study that does not exist yet it says so and creates nothing
    assert tune.main([str(recipe.source), "--out", str(tmp_path / "none"), "--show"]) == 0
    assert not (tmp_path / "none").exists()


def test_trials_csv_keeps_integer_parameters_integers_when_a_trial_lacks_them(tmp_path):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    recipe = tune.Recipe.load(_recipe(tmp_path, trials=2))
    study = optuna.create_study(direction="maximize")
    dists = {
        "algo.population_size": IntDistribution(4, 80),
        "algo.sigma": FloatDistribution(0.01, 0.1),
        "algo.noise": CategoricalDistribution(["gaussian", "laplace"]),
    }
    study.add_trial(
        optuna.create_trial(
            params={"algo.population_size": 4, "algo.sigma": 0.02, "algo.noise": "gaussian"},
            distributions=dists,
            value=1.0,
        )
    )
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.FAIL))  # failed before it sampled anything
    tune.write_outputs(recipe, study, tmp_path)
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(",")))
    assert first["algo.population_size"] == "4" and first["algo.sigma"] == "0.02"
    assert rows[2].endswith(",,,")  # the failed trial's parameters are empty, not NaN


def test_a_process_whose_trials_keep_failing_stops_after_trials_failures(tmp_path, monkeypatch, capsys):
    """Failed trials do not count towards ``trials`` (only done ones do), so a run that always fails would
    otherwise be tried for ever: the process gives up once as many of its own trials failed."""

    def train(recipe, params, seed, run_dir, extra):
        raise RuntimeError(f"run {run_dir} did not complete (status 'failed': the simulator went unstable)")

    monkeypatch.setattr(tune, "train", train)
    recipe = _recipe(tmp_path, trials=2)
    assert tune.main([str(recipe), "--out", str(tmp_path / "out"), "--heartbeat", "1"]) == 1
    assert "2 trials failed in this process" in capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "out" / "tiny" / "trials.csv")["state"]) == ["FAIL", "FAIL"]
