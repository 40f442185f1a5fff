"""Shared helpers: compose configs like the CLI does, and run the real CLI in a subprocess."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Small, fast, still real: short episodes and a small noise table; no step-0 evaluation (eval.at_start: that
# every algorithm writes it, and that it changes no later row, is tests/test_algorithms.py's contract test).
FAST = (
    "wandb.mode=disabled",
    "algo.noise_table_size=1000000",
    "progress=false",
    "eval.every_timesteps=0",
    "eval.at_start=false",
)


@pytest.fixture
def make_cfg():
    """``make_cfg("algo.sigma=0", ...)`` -> the composed DictConfig the CLI would see."""

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=False)

    return _compose


def run_cli(
    *args: str, cwd: Path | None = None, check: bool = True, env_vars: dict | None = None
) -> subprocess.CompletedProcess:
    """``python -m harness *args`` as a user would run it, from ``cwd`` (default: repo root).

    :param env_vars: environment variables to set (``None`` values: to remove) on top of this
        process's environment with ``WANDB_SILENT=true``.
    """
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    for key, value in (env_vars or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"harness exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def read_metrics(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def drawn(monkeypatch):
    """The figures the report saves, by file stem: matplotlib's ``Figure.savefig`` wrapped to keep each
    figure (closing a figure leaves its artists readable)."""
    import matplotlib.figure

    figs = {}
    original = matplotlib.figure.Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        figs[Path(fname).stem] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return figs


#: calls that start real runs, report builds or worker processes: a test making one must be marked ``slow``
_SLOW_CALLS = (
    "run_cli(",
    "_start(",
    "run_case(",
    "replay(",
    "build_report(",
    "subprocess.",
    "make_backend(",
    "evaluate_until_it_fails(",
    "_run(",
    "_run_table(",
    "toy.run_",
    "run_es(",
    "run_vo(",
    "paper.main(",
    "_expand(",
    "dashboard_cli(",
    ".Process(",
    "make_vec_env(",
    "make_trainer(",
    "Runner(",
)


def _unmarked_slow_call(item) -> str | None:
    """The first of :data:`_SLOW_CALLS` in ``item``'s body or its fixtures' (a module fixture that
    trains a run makes each of its tests slow), if ``item`` is not marked ``slow``; else ``None``."""
    import inspect

    function = getattr(item, "function", None)
    if function is None or item.get_closest_marker("slow") is not None:
        return None
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}) or {}
    for fixture_defs in defs.values():
        for fixture in fixture_defs:
            if not getattr(fixture.func, "__module__", "").startswith("tests"):  # pytest's own (capsys: "_start(")
                continue
            try:
                source += inspect.getsource(fixture.func)
            except (OSError, TypeError):
                pass
    return next((call for call in _SLOW_CALLS if _calls(source, call)), None)


def _calls(source: str, call: str) -> bool:
    """``source`` makes ``call``; one that starts with ``_`` (a helper, ``_run(``) not as the tail of a longer
    name (``read_run(``, ``evaluated_by_run(``: readers, not runs)."""
    if not call.startswith("_"):
        return call in source
    import re

    return re.search(r"(?<![A-Za-z0-9])" + re.escape(call), source) is not None


def pytest_collection_modifyitems(config, items):
    """``slow`` is applied explicitly (``@pytest.mark.slow``, or ``pytestmark`` for a whole module),
    so that ``pytest -m "not slow"`` (``make test-fast``) is the fast inner loop: hand-checked units,
    configs, small arrays. A test that starts a real run, a report build, the CLI or worker processes
    (:data:`_SLOW_CALLS`) without the mark stops the collection, naming the test and the call."""
    unmarked = [(item.nodeid, call) for item in items if (call := _unmarked_slow_call(item))]
    if unmarked:
        raise pytest.UsageError(
            "mark these tests @pytest.mark.slow (they start real runs or processes): "
            + "; ".join(f"{nodeid} calls {call}" for nodeid, call in unmarked)
        )
