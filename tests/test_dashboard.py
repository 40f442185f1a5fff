"""python -m harness.dashboard: the W&B workspace (offline description, the library's objects) and
the import of run folders as offline W&B runs. No account and no network: W&B runs offline."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from harness import dashboard
from harness.tracking import wandb_init_args
from tests.conftest import FAST, ROOT, run_cli
from tests.wandb_records import exit_code, history, metric_definitions, run_config, run_info, run_summary

ws = pytest.importorskip("wandb_workspaces.workspaces")
wr = pytest.importorskip("wandb_workspaces.reports.v2")
from wandb_workspaces.workspaces import internal  # noqa: E402


def dashboard_cli(*args, check=True):
    """``python -m harness.dashboard *args`` as a user runs it, W&B offline whatever the shell says."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.dashboard", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


#: (section, panel title, x, y) the description must hold: the learning curves and each
#: algorithm's health signals.
EXPECTED_PANELS = {
    ("Learning curves", "eval_return vs timesteps", "timesteps", ("eval_return",)),
    ("Learning curves", "eval_return vs training time (train_time_s)", "train_time_s", ("eval_return",)),
    ("Learning curves", "eval_return vs epochs", "epoch", ("eval_return",)),
    ("ES family health (es, vo, ns_es, nsr_es, nsra_es)", "grad_norm", "timesteps", ("grad_norm",)),
    ("ES family health (es, vo, ns_es, nsr_es, nsra_es)", "update_ratio", "timesteps", ("update_ratio",)),
    ("VO health (vo)", "sigma: mean, min, max", "timesteps", ("sigma_mean", "sigma_min", "sigma_max")),
    ("Novelty search health (ns_es, nsr_es, nsra_es)", "archive_size", "timesteps", ("archive_size",)),
    ("Novelty search health (ns_es, nsr_es, nsra_es)", "novelty_mean", "timesteps", ("novelty_mean",)),
    ("Novelty search health (ns_es, nsr_es, nsra_es)", "best_return", "timesteps", ("best_return",)),
    ("Novelty search health (ns_es, nsr_es, nsra_es)", "reward_weight (nsra_es)", "timesteps", ("reward_weight",)),
    ("TRPO health (trpo)", "kl_divergence", "timesteps", ("kl_divergence",)),
    ("TRPO health (trpo)", "line_search_success", "timesteps", ("line_search_success",)),
    ("TRPO health (trpo)", "explained_variance", "timesteps", ("explained_variance",)),
}


@pytest.mark.slow
def test_offline_workspace_description_lists_the_panels_and_the_filters(tmp_path):
    out = tmp_path / "ws.json"
    proc = dashboard_cli(
        "workspace",
        "--project",
        "harness",
        "--env",
        "HalfCheetah",
        "--group",
        "tradeoff_halfcheetah",
        "--out",
        str(out),
    )
    assert f"description written to {out}" in proc.stdout
    view = json.loads(out.read_text())
    assert view["project"] == "harness" and view["entity"] == ""
    section = view["spec"]["section"]
    sections = section["panelBankConfig"]["sections"]
    assert [s["name"] for s in sections] == [s.name for s in dashboard.SECTIONS]
    panels = {
        (s["name"], p["config"]["chartTitle"], p["config"]["xAxis"], tuple(p["config"]["metrics"]))
        for s in sections
        for p in s["panels"]
    }
    assert EXPECTED_PANELS <= panels
    assert all(p["viewType"] == "Run History Line Plot" for s in sections for p in s["panels"])
    # mean and standard error over the runs of each group
    assert {(p["config"]["groupAgg"], p["config"]["groupArea"]) for s in sections for p in s["panels"]} == {
        ("mean", "stderr")
    }
    (runset,) = section["runSets"]
    assert runset["filters"]["filterFormat"] == "filterV2"
    filters = [(f["key"]["section"], f["key"]["name"], f["op"], f["value"]) for f in runset["filters"]["filters"]]
    assert filters == [
        ("config", "env.value.name", "IN", ["HalfCheetah"]),
        ("run", "group", "IN", ["tradeoff_halfcheetah"]),
    ]
    assert runset["filters"]["filters"][1]["connector"] == "AND"
    # one environment shown: grouped by algorithm alone
    assert runset["grouping"] == [{"section": "config", "name": "algo.value.name"}]
    assert section["settings"]["xAxis"] == "timesteps"


def test_the_workspace_is_made_of_the_librarys_objects_and_reads_back():
    built = dashboard.build_workspace("harness", None, envs=("Hopper",), groups=("Hopper", "paper"))
    assert isinstance(built, ws.Workspace)
    assert all(isinstance(s, ws.Section) for s in built.sections)
    plots = [p for s in built.sections for p in s.panels]
    assert plots and all(isinstance(p, wr.LinePlot) for p in plots)
    assert {(p.x, tuple(p.y)) for p in plots} >= {
        ("timesteps", ("eval_return",)),
        ("train_time_s", ("eval_return",)),
        ("epoch", ("eval_return",)),
    }
    assert [g.name for g in built.runset_settings.groupby] == ["algo.name"]
    assert all(isinstance(g, ws.Config) for g in built.runset_settings.groupby)
    assert built.runset_settings.filters == (
        "Config(\"env.value.name\") in ['Hopper'] and Metric(\"Group\") in ['Hopper', 'paper']"
    )
    # the description is the library's View model: it validates and rebuilds the same workspace
    description = dashboard.workspace_description(built)
    back = ws.Workspace._from_model(internal.View.model_validate(description))
    assert [s.name for s in back.sections] == [s.name for s in built.sections]
    assert _plots(back) == _plots(built)
    assert back.runset_settings.filters == built.runset_settings.filters
    assert back.settings.x_axis == "timesteps"


def _plots(workspace):
    """``[[(title, x, [y, ...]), ...] per section]``, with names whether a metric is a str or, read
    back, a ``wr.Metric``."""

    def name(m):
        return m if isinstance(m, str) else m.name

    return [[(p.title, name(p.x), [name(y) for y in p.y]) for p in s.panels] for s in workspace.sections]


def test_without_an_environment_filter_curves_are_grouped_by_environment_then_algorithm():
    built = dashboard.build_workspace()
    assert [g.name for g in built.runset_settings.groupby] == ["env.name", "algo.name"]
    assert built.runset_settings.filters == ""
    spec = dashboard.workspace_description(built)["spec"]["section"]["runSets"][0]
    assert spec["grouping"] == [
        {"section": "config", "name": "env.value.name"},
        {"section": "config", "name": "algo.value.name"},
    ]
    assert spec["filters"]["filters"] == []


@pytest.mark.slow
def test_help_documents_both_commands_with_examples():
    out = dashboard_cli("--help").stdout
    assert "workspace" in out and "import" in out and "examples:" in out
    assert "python -m harness.dashboard import results/paper" in out
    for command in ("workspace", "import"):
        sub = dashboard_cli(command, "--help").stdout
        assert "--project" in sub and "--mode" in sub and "examples:" in sub


# ---------------------------------------------------------------------------------------- import


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder: one tiny real ES run made with W&B disabled, a folder whose config.yaml
    is not a run's, and a run folder without summary.json."""
    root = tmp_path_factory.mktemp("results")
    run_cli(
        "algo=es",
        "env=InvertedPendulum",
        "budget.generations=3",
        "workers.n=1",
        *FAST,
        "algo.population_size=8",
        "eval.episodes=2",
        f"hydra.run.dir={root / 'es' / 'run0'}",
    )
    (root / "notes").mkdir()
    (root / "notes" / "config.yaml").write_text("title: not a run\n")
    killed = root / "es" / "killed"
    killed.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        shutil.copy(root / "es" / "run0" / name, killed / name)
    return root


def _offline_runs(folder):
    return sorted((folder / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_import_makes_offline_runs_grouped_as_live_runs_with_every_row(results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results, root)
    run_dir = root / "es" / "run0"
    proc = dashboard_cli("import", str(root))
    out = proc.stdout
    (offline,) = _offline_runs(run_dir)
    assert f"imported {run_dir} -> {offline} (3 rows" in out
    assert f"skipped {root / 'notes'}: config.yaml is not a harness run's" in out
    assert f"skipped {root / 'es' / 'killed'}: no summary.json" in out
    assert "1 run(s) imported, 2 skipped" in out
    assert f"offline runs written to: {run_dir / 'wandb'}" in out and f"wandb sync {offline}" in out

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = wandb_init_args(cfg, run_dir)  # what a live run of this config would be given
    (wandb_file,) = offline.glob("run-*.wandb")
    info = run_info(wandb_file)
    assert info["id"] == dashboard.import_run_id(run_dir)
    assert {k: info[k] for k in ("project", "group", "job_type", "name", "tags")} == {
        k: expected[k] for k in ("project", "group", "job_type", "name", "tags")
    }
    assert info["group"] == "InvertedPendulum" and info["job_type"] == "es"
    assert info["name"] == "es-InvertedPendulum-s0" and info["project"] == "harness"
    logged_cfg = run_config(wandb_file)
    assert logged_cfg == cfg  # the whole config
    assert (logged_cfg["algo"]["name"], logged_cfg["env"]["name"], logged_cfg["seed"]) == ("es", "InvertedPendulum", 0)
    # the x-axes a live run declares (tests/test_runs.py checks the live run's)
    assert metric_definitions(wandb_file) == {
        "epoch": "",
        "timesteps": "",
        "wall_time_s": "",
        "train_time_s": "",
        "*": "timesteps",
    }
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    logged = history(wandb_file)
    assert len(logged) == len(rows) == 3
    for h, r in zip(logged, rows):  # every column of every row; empty cells (NaN) not logged
        assert {k: v for k, v in h.items() if not k.startswith("_")} == {
            k: pytest.approx(float(v)) for k, v in r.items() if v != ""
        }
    summary = json.loads((run_dir / "summary.json").read_text())
    logged_summary = run_summary(wandb_file)
    assert logged_summary["status"] == "completed" and logged_summary["epochs"] == summary["epochs"] == 3
    assert exit_code(wandb_file) == 0


@pytest.mark.slow
def test_importing_twice_does_not_duplicate_and_force_replaces(results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results, root)
    shutil.rmtree(root / "notes")
    run_dir = root / "es" / "run0"
    dashboard_cli("import", str(root))
    (first,) = _offline_runs(run_dir)
    again = dashboard_cli("import", str(root)).stdout
    assert f"skipped {run_dir}: already imported as {first}" in again and "0 run(s) imported" in again
    assert _offline_runs(run_dir) == [first]
    # the same run elsewhere (a copy of the results) gets the same W&B id
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("wandb"))
    assert dashboard.import_run_id(copy) == dashboard.import_run_id(run_dir) == first.name.rsplit("-", 1)[1]
    forced = dashboard_cli("import", str(root), "--force").stdout
    assert f"removed the earlier import {first}" in forced and "1 run(s) imported" in forced
    (second,) = _offline_runs(run_dir)
    assert second.name.endswith(first.name.rsplit("-", 1)[1])


@pytest.mark.slow
def test_import_into_one_folder_skips_runs_with_their_own_wandb_run_or_running(results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results, root, ignore=shutil.ignore_patterns("notes", "killed"))
    run_dir = root / "es" / "run0"
    logged_live = root / "es" / "live"
    shutil.copytree(run_dir, logged_live)
    (logged_live / "wandb" / "offline-run-20260101_000000-abc123").mkdir(parents=True)
    out = tmp_path / "wandb_runs"
    with open(run_dir / ".lock") as lock:  # a harness process running there holds this lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = dashboard_cli("import", str(root), "--out", str(out)).stdout
    assert f"skipped {run_dir}: a harness process is running in it" in busy
    assert f"skipped {logged_live}: it has its own W&B run (abc123)" in busy
    assert not out.exists() or not _offline_runs(out)
    done = dashboard_cli("import", str(root), "--out", str(out)).stdout
    (offline,) = _offline_runs(out)
    assert f"imported {run_dir} -> {offline}" in done
    assert not (run_dir / "wandb").exists()  # --out: the run folder is left as it was


@pytest.mark.slow
def test_import_of_a_folder_without_runs_fails_with_a_message(tmp_path):
    proc = dashboard_cli("import", str(tmp_path), check=False)
    assert proc.returncode == 1 and "no run folder" in proc.stderr
    proc = dashboard_cli("import", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
