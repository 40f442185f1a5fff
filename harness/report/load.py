"""Find run directories and read them into tidy pandas DataFrames.

A run directory is any folder below the results root holding both ``metrics.csv`` and ``config.yaml``
(written by :class:`harness.runner.Runner`; column contract in :mod:`harness.tracking`). Folders
named ``wandb``, ``__pycache__`` or starting with ``.`` are not searched. A malformed run (unreadable
YAML, missing config keys or metrics columns, non-numeric values, epochs out of order) is skipped with
a warning and recorded in :attr:`Loaded.skipped`; it never stops the report.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from harness.tracking import REQUIRED_COLUMNS

log = logging.getLogger(__name__)

RUN_COLUMNS = ("run", "algo", "env", "env_id", "seed", "workers_n", "workers_backend", "status", "run_dir")
_PRUNE = {"wandb", "__pycache__", "node_modules"}
# config keys that legitimately differ between the seeds of one group
_IGNORED_CONFIG_KEYS = ("seed", "wandb.", "progress", "hydra.")


class MalformedRun(ValueError):
    """A run directory that cannot be read; the message says why."""


@dataclass
class Loaded:
    """What :func:`load_runs` found.

    :ivar metrics: one row per (run, epoch): :data:`RUN_COLUMNS` then every ``metrics.csv`` column;
        ``eval_return`` is NaN on epochs that were not evaluated.
    :ivar runs: one row per run: :data:`RUN_COLUMNS` plus ``epochs, timesteps, wall_time_s`` (last row),
        ``n_evals``, ``first_eval_return``, ``final_eval_return`` (first and last evaluated values, NaN if
        none), ``best_eval_return``, and for environments that report success ``final_eval_success``,
        ``best_eval_success`` (last and highest evaluated ``eval_success``; NaN otherwise).
    :ivar skipped: ``(run_dir, reason)`` for every run directory left out.
    :ivar configs: run id -> the run's flattened config (``{"algo.name": "es", ...}``).
    """

    metrics: pd.DataFrame
    runs: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    configs: dict[str, dict] = field(default_factory=dict)


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder at any depth below ``root`` (``root`` included) holding ``config.yaml`` and
    ``metrics.csv`` or ``summary.json``.

    Symbolic links to folders are followed (a comparison is often assembled from links to
    runs kept elsewhere); a folder reached twice is read once.

    :raises FileNotFoundError: if ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link cycle, or a second link to the same run
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if d not in _PRUNE and not d.startswith("."))
        if "config.yaml" in filenames and ("metrics.csv" in filenames or "summary.json" in filenames):
            found.append(Path(dirpath))  # a run that failed before its first epoch has no metrics.csv
    return found


def flatten(cfg: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept as values)."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_run(run_dir: str | Path, run_id: str | None = None) -> tuple[dict, pd.DataFrame, dict]:
    """Read one run directory.

    ``workers_n`` is the number of rollout processes: ``workers.n``, or 1 for ``workers.backend=serial``.

    :returns: ``(info, metrics, flat_config)``: ``info`` has the keys of :data:`RUN_COLUMNS`;
        ``metrics`` the ``metrics.csv`` rows as floats, sorted by epoch (possibly empty).
    :raises MalformedRun: with the reason, for anything that makes the run unusable.
    """
    run_dir = Path(run_dir)
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MalformedRun("config.yaml unreadable: " + " ".join(str(exc).split())) from exc
    if not isinstance(cfg, dict):
        raise MalformedRun("config.yaml is not a mapping")
    flat = flatten(cfg)
    missing = [k for k in ("algo.name", "env.name", "seed") if flat.get(k) is None]
    if missing:
        raise MalformedRun(f"config.yaml lacks {missing}")
    workers, backend = flat.get("workers.n"), flat.get("workers.backend")
    if backend == "serial":
        workers = 1  # the serial backend runs every episode in-process, whatever workers.n says
    try:
        workers = int(workers) if workers is not None else None
        seed = int(flat["seed"])
    except (TypeError, ValueError) as exc:
        raise MalformedRun(f"config.yaml: seed / workers.n not integers ({exc})") from exc

    try:
        metrics = pd.read_csv(run_dir / "metrics.csv")
    except pd.errors.EmptyDataError:
        metrics = pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise MalformedRun("metrics.csv unreadable: " + " ".join(str(exc).split())) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in metrics.columns]
    if missing:
        raise MalformedRun(f"metrics.csv lacks columns {missing}")
    for col in metrics.columns:
        converted = pd.to_numeric(metrics[col], errors="coerce")
        bad = converted.isna() & metrics[col].notna()
        if bad.any() and col in REQUIRED_COLUMNS:
            raise MalformedRun(f"metrics.csv column {col!r} has non-numeric values, e.g. {metrics[col][bad].iloc[0]!r}")
        metrics[col] = converted.astype(np.float64)
    # a row cut short by a hard kill mid-write lacks its tail: drop it, keep the run
    incomplete = metrics[["epoch", "timesteps", "wall_time_s"]].isna().any(axis=1)
    if incomplete.any():
        log.warning("%s: ignoring %d incomplete metrics row(s)", run_dir, int(incomplete.sum()))
        metrics = metrics[~incomplete]
    metrics = metrics.reset_index(drop=True)
    for col in ("epoch", "timesteps", "wall_time_s"):
        if (np.diff(metrics[col].to_numpy()) <= 0).any():
            raise MalformedRun(f"metrics.csv column {col!r} is not strictly increasing")

    status = "unknown"
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        try:
            status = str(json.loads(summary_path.read_text()).get("status", "unknown"))
        except (OSError, ValueError, AttributeError):
            status = "unknown"
    info = {"run": run_id or str(run_dir), "algo": str(flat["algo.name"]), "env": str(flat["env.name"]),
            "env_id": str(flat.get("env.id", flat["env.name"])), "seed": seed, "workers_n": workers,
            "workers_backend": None if backend is None else str(backend), "status": status, "run_dir": str(run_dir)}
    return info, metrics, flat


def load_runs(root: str | Path) -> Loaded:
    """Read every run directory below ``root`` (see :func:`find_run_dirs`).

    A run folder with ``config.yaml`` and ``summary.json`` but no ``metrics.csv`` (it failed
    before its first epoch) is skipped with the reason and the summary's error.

    Runs without any metrics row are skipped (reason ``"no metrics rows"``); interrupted, failed and
    unfinished runs (``status`` ``interrupted``, ``failed``, ``unknown`` when ``summary.json`` is missing)
    are kept with their status. Logs a warning for every skipped run.
    """
    root = Path(root)
    frames, infos, skipped, configs = [], [], [], {}
    for run_dir in find_run_dirs(root):
        run_id = str(run_dir.relative_to(root)) if run_dir != root else "."
        if not (run_dir / "metrics.csv").exists():
            reason = "no metrics.csv (ended before its first epoch)"
            try:
                error = json.loads((run_dir / "summary.json").read_text()).get("error")
            except (OSError, ValueError):
                error = None
            reason += f": {error}" if error else ""
            log.warning("skipping %s: %s", run_dir, reason)
            skipped.append((str(run_dir), reason))
            continue
        try:
            info, metrics, flat = read_run(run_dir, run_id)
        except MalformedRun as exc:
            log.warning("skipping %s: %s", run_dir, exc)
            skipped.append((str(run_dir), str(exc)))
            continue
        if metrics.empty:
            log.warning("skipping %s: no metrics rows", run_dir)
            skipped.append((str(run_dir), "no metrics rows"))
            continue
        configs[run_id] = flat
        frames.append(metrics.assign(**info)[list(RUN_COLUMNS) + list(metrics.columns)])
        evaluated = metrics["eval_return"].dropna()
        success = metrics["eval_success"].dropna() if "eval_success" in metrics else pd.Series(dtype=float)
        last = metrics.iloc[-1]
        infos.append({**info, "epochs": int(last["epoch"]), "timesteps": float(last["timesteps"]),
                      "wall_time_s": float(last["wall_time_s"]), "n_evals": int(evaluated.size),
                      "first_eval_return": float(evaluated.iloc[0]) if evaluated.size else math.nan,
                      "final_eval_return": float(evaluated.iloc[-1]) if evaluated.size else math.nan,
                      "best_eval_return": float(evaluated.max()) if evaluated.size else math.nan,
                      "final_eval_success": float(success.iloc[-1]) if success.size else math.nan,
                      "best_eval_success": float(success.max()) if success.size else math.nan})
    run_cols = [*RUN_COLUMNS, "epochs", "timesteps", "wall_time_s", "n_evals", "first_eval_return",
                "final_eval_return", "best_eval_return", "final_eval_success", "best_eval_success"]
    runs = pd.DataFrame(infos, columns=run_cols)
    if not runs.empty:
        runs["workers_n"] = runs["workers_n"].astype("Int64")
        runs = runs.sort_values(["env", "algo", "workers_n", "seed", "run"]).reset_index(drop=True)
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*RUN_COLUMNS, *REQUIRED_COLUMNS])
    if not metrics.empty:
        metrics["workers_n"] = metrics["workers_n"].astype("Int64")
    _warn_pooled_differences(runs, configs)
    return Loaded(metrics=metrics, runs=runs, skipped=skipped, configs=configs)


def config_differences(run_ids: list[str], configs: dict[str, dict]) -> list[str]:
    """Config keys (other than seed, W&B, progress) whose values differ between the given runs."""
    keys = set().union(*(configs[r].keys() for r in run_ids)) if run_ids else set()
    return sorted(k for k in keys if not k.startswith(_IGNORED_CONFIG_KEYS)
                  and len({repr(configs[r].get(k)) for r in run_ids}) > 1)


def _warn_pooled_differences(runs: pd.DataFrame, configs: dict[str, dict]) -> None:
    if runs.empty:
        return
    for (env, algo, n), group in runs.groupby(["env", "algo", "workers_n"], dropna=False):
        diff = config_differences(list(group["run"]), configs)
        if diff:
            log.warning("%s/%s workers.n=%s: pooling %d runs whose configs differ in %s",
                        algo, env, n, len(group), ", ".join(diff))
