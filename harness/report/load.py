"""Find run directories and read them into tidy pandas DataFrames.

A run directory is any folder below the results root holding both ``metrics.csv`` and ``config.yaml``
(written by :class:`harness.runner.Runner`; column contract in :mod:`harness.tracking`). Folders
named ``wandb``, ``__pycache__`` or starting with ``.`` are not searched. A malformed run (unreadable
YAML, missing config keys or metrics columns, non-numeric values, epochs out of order) is skipped with
a warning and recorded in :attr:`Loaded.skipped`; it never stops the report.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import harness.envs  # noqa: F401  (registers the deceptive tasks with Gymnasium, whose defaults a config is read against)
from harness.config import flatten, not_a_setting
from harness.machine import machine_label
from harness.tracking import REQUIRED_COLUMNS
from harness.workers.engines import GYMNASIUM_TRAJECTORIES

log = logging.getLogger(__name__)

RUN_COLUMNS = ("run", "algo", "env", "env_id", "seed", "workers_n", "workers_backend", "engine", "status", "run_dir")
_PRUNE = {"wandb", "__pycache__", "node_modules"}
# config keys that legitimately differ between runs of one experiment (a key ending in "." covers its subtree)
_NOT_IN_RUN_KEY = ("workers.", "wandb.", "progress", "hydra.")
# ... and between the seeds pooled in one (env, algo) group
_IGNORED_CONFIG_KEYS = ("seed", *_NOT_IN_RUN_KEY)
# keys that say how a run was launched or described, not what it computed (never a reason to split a group)
_NOT_A_SETTING = ("resume", "algo.hparams_source")
# keys under an ignored prefix that do change what a run computes: the rollout engine, where its
# trajectories are not Gymnasium's (the removed envpool engine: its initial states and rounding are its
# own), so its runs are never pooled with the others'; the gymnasium and mujoco engines give the same rows
# (harness.workers.engines.GYMNASIUM_TRAJECTORIES) and are one value here (_engine_key)
_COMPUTED = ("workers.engine",)
# env.* keys that add measurements or handle failures without changing the task (see label_environments):
# env.on_unstable only decides what happens when the simulator blows up (a run under "fail" met no such
# episode, or it failed), and runs made before the key existed have none
ENV_MEASUREMENT_KEYS = ("env.bc", "env.success", "env.on_unstable")


class MalformedRun(ValueError):
    """A run directory that cannot be read; the message says why."""


@dataclass
class Loaded:
    """What :func:`load_runs` found.

    :ivar metrics: one row per (run, epoch): :data:`RUN_COLUMNS` then every ``metrics.csv`` column;
        ``eval_return`` is NaN on epochs that were not evaluated.
    :ivar runs: one row per run: :data:`RUN_COLUMNS` plus ``epochs, timesteps, wall_time_s, train_time_s``
        (last row; ``train_time_s`` is ``wall_time_s`` where ``train_time_logged`` is False: a run from before
        the column existed), ``busy``, ``cpu_share``, ``others_share``, ``machine`` (:func:`machine_share`), ``n_evals``,
        ``eval_every_timesteps``, ``eval_every_epochs`` (:func:`eval_spacing`), ``first_eval_return``,
        ``final_eval_return`` (first and last evaluated values, NaN if none), ``best_eval_return``, and for environments that report success ``final_eval_success``,
        ``best_eval_success`` (last and highest evaluated ``eval_success``; NaN otherwise), ``mtime``
        (POSIX seconds: the newer modification time of ``summary.json`` and ``metrics.csv``), and from
        :func:`mark_counted` ``learning``, ``wall_clock`` (bool: counted in those statistics) and ``note``.
        ``env`` is the environment label of :func:`label_environments` (``env.name`` unless that name
        covers several environments), in ``metrics`` too.
    :ivar skipped: ``(run_dir, reason)`` for every run directory left out.
    :ivar configs: run id -> the run's flattened config (``{"algo.name": "es", ...}``).
    """

    metrics: pd.DataFrame
    runs: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    configs: dict[str, dict] = field(default_factory=dict)


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder at any depth below ``root`` (``root`` included) holding ``config.yaml`` (with
    ``metrics.csv`` or ``summary.json``, or alone: a run killed before its first epoch;
    :func:`load_runs` ignores a lone ``config.yaml`` that is not a run's).

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
        if "config.yaml" in filenames:
            found.append(Path(dirpath))  # a run that failed before its first epoch has no metrics.csv
    return found


def read_metrics_csv(path: str | Path) -> pd.DataFrame:
    """``metrics.csv`` as float columns (every column: the :data:`~harness.tracking.REQUIRED_COLUMNS` and
    whatever an algorithm adds, e.g. ``sigma_mean`` or ``archive_size``; a non-numeric cell in an added
    column becomes NaN), without the rows a hard kill can leave half-written.

    :class:`~harness.tracking.MetricsCSV` writes each row whole, newline included, and flushes it, so a
    kill mid-write can only damage the *last* line. Rule: a last line without its line terminator
    was cut short and is dropped, even when it parses (its last number may be truncated: ``0.0041``
    cut to ``0.00``); so is any row with fewer cells than the header or without ``epoch``,
    ``timesteps`` or ``wall_time_s``. Each drop is logged as a warning.

    :returns: rows as float64, in file order, index 0..n-1 (possibly no row).
    :raises MalformedRun: unreadable file, a required column missing, or non-numeric required values.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedRun("metrics.csv unreadable: " + " ".join(str(exc).split())) from exc
    if text and not text.endswith(("\n", "\r")) and ("\n" in text or "\r" in text):
        lines = text.splitlines(keepends=True)
        log.warning("%s: dropping the last line, cut short by a kill mid-write: %r", path, lines[-1])
        text = "".join(lines[:-1])
    if not text.strip():
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS), dtype=np.float64)
    plain = _parse_plain(text)
    if plain is not None:  # a healthy file, as the tracker writes it: the same frame, without pandas' parser
        return pd.DataFrame(plain[1], columns=plain[0])
    cells = [len(row) for row in csv.reader(io.StringIO(text)) if row]
    try:
        metrics = pd.read_csv(io.StringIO(text), float_precision="round_trip")  # as Python's float()
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MalformedRun("metrics.csv unreadable: " + " ".join(str(exc).split())) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in metrics.columns]
    if missing:
        raise MalformedRun(f"metrics.csv lacks columns {missing}")
    for col in metrics.columns:
        if pd.api.types.is_numeric_dtype(metrics[col].dtype):
            continue  # parsed as numbers already (every column of a healthy file): made float64 below, at once
        converted = pd.to_numeric(metrics[col], errors="coerce")
        bad = converted.isna() & metrics[col].notna()
        if bad.any() and col in REQUIRED_COLUMNS:
            raise MalformedRun(f"metrics.csv column {col!r} has non-numeric values, e.g. {metrics[col][bad].iloc[0]!r}")
        metrics[col] = converted
    metrics = metrics.astype(np.float64)
    short = np.asarray(cells[1 : len(metrics) + 1]) < cells[0] if len(cells) > 1 else np.zeros(len(metrics), bool)
    incomplete = short | metrics[["epoch", "timesteps", "wall_time_s"]].isna().any(axis=1).to_numpy()
    if incomplete.any():
        log.warning("%s: ignoring %d incomplete metrics row(s)", path, int(incomplete.sum()))
        metrics = metrics[~incomplete]
    return metrics.reset_index(drop=True)


def _parse_plain(text: str) -> tuple[list[str], np.ndarray] | None:
    """``(columns, rows as a float64 array)`` of a ``metrics.csv`` as the tracker writes it: unquoted (and no
    ``_`` in a cell: Python's ``float`` reads ``1_000``, pandas does not), every row
    with the header's number of cells, every cell a number or empty (NaN), the required columns present and
    ``epoch``, ``timesteps`` and ``wall_time_s`` filled in every row, header names distinct. ``None`` for
    anything else, which :func:`read_metrics_csv` reads with pandas (and its warnings and errors): the two give
    the same frame for a file this accepts (``tests/test_report_scale.py``). A sweep's thousands of files are read
    several times faster this way."""
    body = text.find("\n")
    if '"' in text or "_" in text[body:]:
        return None
    lines = text.splitlines()
    header = lines[0].split(",")
    if len(set(header)) != len(header) or any(c not in header for c in REQUIRED_COLUMNS):
        return None
    rows = [line for line in lines[1:] if line]
    if any(line.count(",") != len(header) - 1 for line in rows):
        return None
    body = ",".join(rows).replace(",,", ",nan,").replace(",,", ",nan,")  # an empty cell is NaN (twice: ",,,")
    body = ("nan" if body.startswith(",") else "") + body + ("nan" if body.endswith(",") else "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns, and stops, at a cell that is not a number
        try:
            values = np.fromstring(body, dtype=np.float64, sep=",") if rows else np.empty(0)
        except (ValueError, DeprecationWarning):
            return None
    if values.size != len(rows) * len(header):
        return None
    values = values.reshape(len(rows), len(header))
    if np.isnan(values[:, [header.index(c) for c in ("epoch", "timesteps", "wall_time_s")]]).any():
        return None
    return header, values


def read_run(
    run_dir: str | Path, run_id: str | None = None, summary: dict | None = None
) -> tuple[dict, pd.DataFrame, dict]:
    """Read one run directory.

    ``workers_n`` is the number of rollout processes: ``workers.n``, or 1 for ``workers.backend=serial``.
    ``summary``: the run's :func:`read_summary`, when the caller has read it already (read here otherwise).

    :returns: ``(info, metrics, flat_config)``: ``info`` has the keys of :data:`RUN_COLUMNS`;
        ``metrics`` the ``metrics.csv`` rows as floats, sorted by epoch (possibly empty).
    :raises MalformedRun: with the reason, for anything that makes the run unusable.
    """
    run_dir = Path(run_dir)
    try:
        cfg = _yaml((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MalformedRun("config.yaml unreadable: " + " ".join(str(exc).split())) from exc
    if not isinstance(cfg, dict):
        raise MalformedRun("config.yaml is not a mapping")
    flat = flatten(cfg)
    # runs from before the key existed ran on Gymnasium; the engines of Gymnasium's trajectories are one
    # configuration (the engine that ran, a speed, is the ``engine`` column)
    engine = str(flat.get("workers.engine", "gymnasium"))
    flat["workers.engine"] = _engine_key(engine)
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

    metrics = read_metrics_csv(run_dir / "metrics.csv")
    for col in ("epoch", "timesteps", "wall_time_s", "train_time_s"):
        if col in metrics and (np.diff(metrics[col].to_numpy()) <= 0).any():
            raise MalformedRun(f"metrics.csv column {col!r} is not strictly increasing")

    summary = read_summary(run_dir) if summary is None else summary
    engine = str(summary.get("engine", engine))  # the engine of its last part
    info = {
        "run": run_id or str(run_dir),
        "algo": str(flat["algo.name"]),
        "env": str(flat["env.name"]),
        "env_id": str(flat.get("env.id", flat["env.name"])),
        "seed": seed,
        "workers_n": workers,
        "workers_backend": None if backend is None else str(backend),
        "engine": engine,
        "status": str(summary.get("status", "unknown")),
        "run_dir": str(run_dir),
    }
    return info, metrics, flat


def read_summary(run_dir: str | Path) -> dict:
    """``summary.json`` of a run as a dict; ``{}`` when it is missing (a run killed hard or still running) or
    unreadable. The runner writes it whole (a temporary file renamed), so an unreadable one was damaged
    afterwards: that is logged as a warning, since the run's status, machine and ``busy`` flag are then
    unknown and it counts as a run that was not busy."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        summary = exc
    if not isinstance(summary, dict):
        why = " ".join(str(summary).split()) if isinstance(summary, Exception) else "not a JSON object"
        log.warning("%s unreadable (%s): the run's status, machine and busy flag are unknown", path, why)
        return {}
    return summary


def machine_share(summary: dict) -> dict:
    """What ``summary.json``'s ``machine`` (:mod:`harness.machine`) says about the machine during the run:
    ``busy`` (True: other processes used more than a tenth of the CPUs; False; None: unknown, i.e. no
    ``machine`` record, an older run, or one that could not tell, e.g. under Ray), ``cpu_share`` and
    ``others_share`` (NaN when unknown), and ``machine``: which machine it was
    (:func:`harness.machine.machine_label` of ``machine.host``, e.g. ``"AMD EPYC x2"``; ``"mixed"`` for a
    run resumed on another machine; :data:`UNRECORDED_MACHINE` for a run from before ``host`` was
    recorded)."""
    machine = summary.get("machine")
    if not isinstance(machine, dict):
        return {"busy": None, "cpu_share": math.nan, "others_share": math.nan, "machine": UNRECORDED_MACHINE}
    busy = machine.get("busy")

    def number(key):
        v = machine.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

    return {
        "busy": busy if isinstance(busy, bool) else None,
        "cpu_share": number("cpu_share"),
        "others_share": number("others_share"),
        "machine": machine_label(machine.get("host")) or UNRECORDED_MACHINE,
    }


#: The ``machine`` of a run whose ``summary.json`` does not name its machine (written before
#: ``machine.host`` existed): its wall time is comparable only by what its part's README says.
UNRECORDED_MACHINE = "unrecorded"


def eval_spacing(metrics: pd.DataFrame, column: str = "timesteps") -> float:
    """A run's evaluation resolution: the median of ``column`` (training steps by default) between its
    consecutive evaluated rows; NaN with fewer than two evaluations. A time to threshold is read at the
    evaluated rows only, so it is only as fine as this."""
    return _spacing(metrics.loc[metrics["eval_return"].notna(), column].to_numpy(dtype=np.float64))


def load_runs(
    root: str | Path, include_busy: bool = False, ignore: tuple[str, ...] = (), group_by: tuple[str, ...] | None = None
) -> Loaded:
    """Read every run directory below ``root`` (see :func:`find_run_dirs`).

    Runs of one algorithm whose settings differ are separate groups (:func:`label_algorithms`), so
    that only seeds of one configuration are pooled; ``ignore`` and ``group_by`` say otherwise
    (there).

    A run folder with ``config.yaml`` and ``summary.json`` but no ``metrics.csv`` is skipped with the
    reason: it failed before its first epoch (with the summary's error), or, when the summary says it
    completed or ran epochs, its ``metrics.csv`` was deleted or moved; so is a run folder with only
    ``config.yaml`` (killed before its first epoch, or not started).

    Runs without any metrics row are skipped (reason ``"no metrics rows"``); interrupted, failed and
    unfinished runs (``status`` ``interrupted``, ``failed``, ``unknown`` when ``summary.json`` is missing)
    are kept with their status. Logs a warning for every skipped run. Environments are labelled by
    :func:`label_environments`, and which runs count in which statistic is decided by
    :func:`mark_counted` (``include_busy``: see there).

    ``train_time_s`` (training time, evaluation excluded) is a column of ``metrics`` for every run: a run
    whose ``metrics.csv`` lacks it (older runs) gets its ``wall_time_s`` there, and ``train_time_logged``
    False in ``runs``.
    """
    root = Path(root)
    tables: list[tuple[tuple[str, ...], np.ndarray]] = []  # each run's metrics.csv: (columns, rows)
    infos, skipped, configs = [], [], {}
    for found in _read_all(find_run_dirs(root), root):
        if found is None:
            continue
        if len(found) == 2:
            log.warning("skipping %s: %s", *found)
            skipped.append(found)
            continue
        info, table, flat = found
        infos.append(info)
        tables.append(table)
        configs[info["run"]] = flat
    runs = pd.DataFrame(infos, columns=[*RUN_COLUMNS, *_RUN_STATS])
    metrics = _metrics_frame(infos, tables)
    if not runs.empty:
        runs["workers_n"] = runs["workers_n"].astype("Int64")
        metrics["workers_n"] = metrics["workers_n"].astype("Int64")
        runs = label_environments(runs, configs)
        runs = label_algorithms(runs, configs, ignore, group_by)
        metrics["env"] = metrics["run"].map(dict(zip(runs["run"], runs["env"])))
        metrics["algo"] = metrics["run"].map(dict(zip(runs["run"], runs["algo"])))
        runs = runs.sort_values(["env", "algo", "workers_n", "seed", "run"]).reset_index(drop=True)
    _warn_unknown_keys(configs, ignore, "--ignore")
    _warn_unknown_keys(configs, group_by or (), "--group-by")
    runs = mark_counted(runs, configs, include_busy=include_busy)
    _warn_pooled_differences(runs, configs)
    return Loaded(metrics=metrics, runs=runs, skipped=skipped, configs=configs)


def _read_found(run_dir: Path, root: Path):
    """One folder of :func:`find_run_dirs` for :func:`load_runs`: ``None`` (a ``config.yaml`` that is not a
    run's), ``(run_dir, reason)`` for a run left out, or ``(runs row, (metrics columns, rows), flat config)``.
    It may run in a worker process, so it leaves the skips to :func:`load_runs` to log, in order; the warnings
    of :func:`read_metrics_csv` (a line cut short) and of renamed columns are logged where it runs."""
    run_id = str(run_dir.relative_to(root)) if run_dir != root else "."
    if not (run_dir / "metrics.csv").exists():
        if (run_dir / "summary.json").exists():
            try:
                summary = json.loads((run_dir / "summary.json").read_text())
                summary = summary if isinstance(summary, dict) else {}
            except (OSError, ValueError):
                summary = {}
            if summary.get("status") == "completed" or (summary.get("epochs") or 0) > 0:
                # the run wrote rows: the file went afterwards
                epochs = f" after {summary['epochs']} epochs" if summary.get("epochs") else ""
                reason = (
                    f"no metrics.csv, although summary.json says the run {summary.get('status')}{epochs}: "
                    "metrics.csv was deleted or moved"
                )
            else:
                reason = "no metrics.csv (ended before its first epoch)"
                reason += f": {summary['error']}" if summary.get("error") else ""
        elif _is_run_config(run_dir / "config.yaml"):
            reason = "only config.yaml: no metrics.csv, no summary.json (killed before its first epoch, or not started)"
        else:
            return None  # some other config.yaml, not a run's
        return (str(run_dir), reason)
    summary = read_summary(run_dir)  # once: read_run's engine and status, and the machine share below
    try:
        info, metrics, flat = read_run(run_dir, run_id, summary)
    except MalformedRun as exc:
        return (str(run_dir), str(exc))
    if metrics.empty:
        return (str(run_dir), "no metrics rows")
    clash = [c for c in metrics.columns if c in RUN_COLUMNS]
    if clash:  # an algorithm's own column named like a run column: keep it, renamed
        log.warning("%s: metrics.csv columns %s renamed to %s", run_dir, clash, [f"{c}_logged" for c in clash])
        metrics = metrics.rename(columns={c: f"{c}_logged" for c in clash})
    columns = tuple(metrics.columns)
    rows = metrics.to_numpy(dtype=np.float64)
    col = {c: rows[:, k] for k, c in enumerate(columns)}
    logged = "train_time_s" in col and not np.isnan(col["train_time_s"]).any()
    if not logged:
        col["train_time_s"] = col["wall_time_s"]
        if "train_time_s" in columns:
            rows[:, columns.index("train_time_s")] = col["train_time_s"]
        else:
            columns, rows = (*columns, "train_time_s"), np.column_stack([rows, col["train_time_s"]])
    at_eval = ~np.isnan(col["eval_return"])  # the evaluated rows
    evaluated = col["eval_return"][at_eval]
    success = col["eval_success"][~np.isnan(col["eval_success"])] if "eval_success" in col else np.empty(0)
    written = [f.stat().st_mtime for f in (run_dir / "summary.json", run_dir / "metrics.csv") if f.exists()]
    stats = {
        **info,
        "epochs": int(col["epoch"][-1]),
        "timesteps": float(col["timesteps"][-1]),
        "wall_time_s": float(col["wall_time_s"][-1]),
        "train_time_s": float(col["train_time_s"][-1]),
        "train_time_logged": logged,
        **machine_share(summary),
        "n_evals": int(evaluated.size),
        "eval_every_timesteps": _spacing(col["timesteps"][at_eval]),
        "eval_every_epochs": _spacing(col["epoch"][at_eval]),
        "first_eval_return": float(evaluated[0]) if evaluated.size else math.nan,
        "final_eval_return": float(evaluated[-1]) if evaluated.size else math.nan,
        "best_eval_return": float(evaluated.max()) if evaluated.size else math.nan,
        "final_eval_success": float(success[-1]) if success.size else math.nan,
        "best_eval_success": float(success.max()) if success.size else math.nan,
        "mtime": max(written),
    }
    return stats, (columns, rows), flat


#: A results tree of more run folders than this is read by a pool of processes, one per CPU (a sweep's thousands
#: of config.yaml and metrics.csv files); a smaller one in this process.
PARALLEL_RUNS = 400


def _read_all(run_dirs: list[Path], root: Path) -> list:
    """:func:`_read_found` of every folder, in order: in this process, or, beyond :data:`PARALLEL_RUNS` folders
    on a machine of several CPUs, in a pool of processes (the same answers: each folder is read on its own)."""
    workers = min(os.cpu_count() or 1, 8)
    if len(run_dirs) <= PARALLEL_RUNS or workers < 2:
        return [_read_found(d, root) for d in run_dirs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_read_found, run_dirs, [root] * len(run_dirs), chunksize=64))


def _warn_unknown_keys(configs: dict[str, dict], keys: tuple[str, ...], flag: str) -> None:
    """Warn of each of ``keys`` (``--ignore`` / ``--group-by``) that no run's config has (a key ending in ``.``:
    no key below it), with the closest existing keys: a misspelt key changes nothing, silently otherwise."""
    if not configs:
        return
    known = sorted({k for flat in configs.values() for k in flat})
    for key in keys:
        found = any(k.startswith(key) for k in known) if key.endswith(".") else key in known
        if not found:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            log.warning("%s %s: no run has this setting, so it changes nothing%s", flag, key, hint)


def _spacing(x: np.ndarray) -> float:
    """The median step between consecutive positions ``x`` of a run's evaluated rows (:func:`eval_spacing`);
    NaN with fewer than two."""
    return float(np.median(np.diff(x))) if x.size >= 2 else math.nan


def _metrics_frame(infos: list[dict], tables: list[tuple[tuple[str, ...], np.ndarray]]) -> pd.DataFrame:
    """:attr:`Loaded.metrics` from each run's :data:`RUN_COLUMNS` values (``infos``) and ``metrics.csv`` rows
    (``tables``, in the same order): the runs' rows in order, :data:`RUN_COLUMNS` first, then the union of the
    runs' columns in the order they first appear (NaN where a run lacks one), as ``pd.concat`` of one frame per
    run would give, built at once: runs with the same columns are stacked as one array, and the run columns
    are repeated per row (a sweep's thousands of runs, not thousands of frames)."""
    if not tables:
        return pd.DataFrame(columns=[*RUN_COLUMNS, *REQUIRED_COLUMNS])
    by_columns: dict[tuple[str, ...], list[int]] = {}
    for i, (columns, _) in enumerate(tables):
        by_columns.setdefault(columns, []).append(i)
    parts = [
        pd.DataFrame(np.concatenate([tables[i][1] for i in runs]), columns=list(columns))
        for columns, runs in by_columns.items()
    ]
    metrics = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    lengths = np.array([len(rows) for _, rows in tables])
    if len(parts) > 1:  # back into run order
        owner = np.concatenate([np.repeat(runs, lengths[runs]) for runs in by_columns.values()])
        metrics = metrics.iloc[np.argsort(owner, kind="stable")].reset_index(drop=True)
    run_columns = {}
    for c in RUN_COLUMNS:
        values = [info[c] for info in infos]
        kind = np.int64 if c == "seed" else object
        run_columns[c] = np.repeat(np.array(values, dtype=kind), lengths)
    return pd.concat([pd.DataFrame(run_columns), metrics], axis=1)


_RUN_STATS = (
    "epochs",
    "timesteps",
    "wall_time_s",
    "train_time_s",
    "train_time_logged",
    "busy",
    "cpu_share",
    "others_share",
    "machine",
    "n_evals",
    "eval_every_timesteps",
    "eval_every_epochs",
    "first_eval_return",
    "final_eval_return",
    "best_eval_return",
    "final_eval_success",
    "best_eval_success",
    "mtime",
)


def _yaml(text: str):
    """``yaml.safe_load`` through libyaml's C parser when PyYAML has it (the same values, several times faster:
    a sweep's thousands of ``config.yaml``)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _is_run_config(path: Path) -> bool:
    try:
        flat = flatten(_yaml(path.read_text()) or {})
    except (OSError, yaml.YAMLError, AttributeError):
        return False
    return all(flat.get(k) is not None for k in ("algo.name", "env.name", "seed"))


def _engine_key(engine: str) -> str:
    """What a run's ``workers.engine`` means for pooling: ``gymnasium`` for every engine that steps
    Gymnasium's own trajectories (``auto``, ``gymnasium``, ``mujoco``: the same rows,
    ``tests/test_mujoco_engine.py``), the engine itself otherwise (``envpool``)."""
    return "gymnasium" if engine in GYMNASIUM_TRAJECTORIES else engine


@functools.cache
def _ignored(key: str, ignored: tuple[str, ...]) -> bool:
    """``key`` is one of ``ignored``, or below one that ends with a dot (``"wandb."``), or no setting of
    its own (:func:`harness.config.not_a_setting`: ``per_algo.*``, lookup tables); a key of
    :data:`_COMPUTED` never (not even when named: runs of two engines are never pooled)."""
    if key in _COMPUTED:
        return False
    return not_a_setting(key) or any(key.startswith(i) if i.endswith(".") else key == i for i in ignored)


@functools.cache
def _registered_defaults(env_id: str) -> tuple:
    import gymnasium as gym

    try:
        spec = gym.spec(env_id)
    except Exception:  # noqa: BLE001 - not registered here (e.g. "module:Name-v0" from a module not imported)
        return ()
    out = flatten({"env": {"kwargs": dict(spec.kwargs)}})
    if spec.max_episode_steps is not None:
        out["env.max_episode_steps"] = spec.max_episode_steps
    return tuple(out.items())


def registered_defaults(env_id) -> dict:
    """The ``env.kwargs.*`` and ``env.max_episode_steps`` that Gymnasium's registration of
    ``env_id`` supplies when a config leaves them out, as flattened config keys; ``{}`` for an id
    not registered in this process. A run that writes a default out (``reward_type=progress``) is
    then the same environment as one that leaves it to the registration."""
    return dict(_registered_defaults(str(env_id))) if env_id else {}


def label_environments(runs: pd.DataFrame, configs: dict[str, dict]) -> pd.DataFrame:
    """Make ``env`` name one environment: runs are pooled only when their task is the same.

    Rule: the environment of a run is its ``env.*`` config (``env.id``, ``env.kwargs.*``,
    ``env.max_episode_steps``, ...) apart from :data:`ENV_MEASUREMENT_KEYS`, which only add
    measurements; a key set to null counts as absent, and one left out counts as the value the
    id's Gymnasium registration gives it (:func:`registered_defaults`). When runs sharing an
    ``env.name`` differ in it (e.g. HalfCheetah with ``max_episode_steps=100`` next to full-length
    runs), each variant becomes its own environment, labelled ``name[key=value, ...]`` with the
    keys that differ, and a warning says so; statistics are never pooled across them. Otherwise ``env`` stays ``env.name``.

    :param runs: one row per run with ``run`` and ``env`` (= ``env.name``) columns.
    :returns: a copy with ``env`` relabelled where needed.
    """
    runs = runs.copy()
    task = {}
    for r in runs["run"]:
        env = {
            k: v
            for k, v in configs[r].items()
            if k.startswith("env.") and v is not None and k != "env.name" and k not in ENV_MEASUREMENT_KEYS
        }
        env = {**registered_defaults(configs[r].get("env.id")), **env}
        task[r] = tuple(sorted((k, repr(v)) for k, v in env.items()))
    labels = {}
    for name, g in runs.groupby("env", sort=True):
        variants = sorted({task[r] for r in g["run"]})
        if len(variants) == 1:
            continue
        dicts = [dict(v) for v in variants]
        differ = sorted(k for k in set().union(*dicts) if len({d.get(k) for d in dicts}) > 1)
        names = {
            v: f"{name}[" + ", ".join(f"{k[4:]}={_short(d.get(k, 'null').strip(chr(39)))}" for k in differ) + "]"
            for v, d in zip(variants, dicts)
        }
        log.warning(
            "env.name %s covers %d different environments (they differ in %s): reported separately as %s",
            name,
            len(variants),
            ", ".join(differ),
            ", ".join(sorted(names.values())),
        )
        labels.update({r: names[task[r]] for r in g["run"]})
    runs["env"] = [labels.get(r, e) for r, e in zip(runs["run"], runs["env"])]
    return runs


def label_algorithms(
    runs: pd.DataFrame, configs: dict[str, dict], ignore: tuple[str, ...] = (), group_by: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Make ``algo`` name one configuration per environment: runs are pooled as seeds only when
    every setting but the seed is the same.

    Rule: within one (``env``, ``algo.name``), runs whose flattened configs differ in any key other
    than the seed, ``workers.*``, ``wandb.*``, ``hydra.*``, ``progress``, ``resume``,
    ``algo.hparams_source`` and the ``env.*`` keys (:func:`label_environments` has split those) are
    separate groups, labelled ``name[key=value, ...]`` with the keys that differ (``algo.`` left
    out: ``es[population_size=20]``), and a warning says so. A key that some runs of the group lack
    is not compared: it was added to the harness after they ran, and they ran with what is now its
    default (it is listed among the pooled differences).

    :param ignore: keys (a key ending in ``.`` covers its subtree) to pool across on purpose
        (``--ignore budget.``); the report then warns that it pools them.
    :param group_by: if given, only these keys split a group (``--group-by algo.population_size``);
        every other difference is pooled, with the warning.
    :returns: a copy with ``algo`` relabelled where needed.
    """
    runs = runs.copy()
    skip = (*_IGNORED_CONFIG_KEYS, *_NOT_A_SETTING, "env.", *ignore)
    settings = {}
    for r in runs["run"]:
        flat = configs[r]
        keys = [k for k in flat if (k in group_by if group_by is not None else not _ignored(k, skip))]
        settings[r] = {k: repr(flat[k]) for k in keys if flat[k] is not None}
    labels = {}
    for (env, name), g in runs.groupby(["env", "algo"], sort=True):
        dicts = [settings[r] for r in g["run"]]
        shared = set.intersection(*(set(d) for d in dicts))
        differ = sorted(k for k in shared if len({d[k] for d in dicts}) > 1)
        if not differ:
            continue
        named = [k for k in differ if k.startswith("recipe.")]
        if named:  # a recipe's selector (recipe.variant) names its settings: the label is it, plus any key
            # that still differs between runs of one variant (e.g. policy.name: plain on linear and on mlp)
            by_variant: dict[tuple, list[dict]] = {}
            for d in dicts:
                by_variant.setdefault(tuple(d[k] for k in named), []).append(d)
            differ = named + [
                k for k in differ if k not in named and any(len({d[k] for d in ds}) > 1 for ds in by_variant.values())
            ]

        def label(d: dict, differ=differ, name=name) -> str:  # bound now: called in this iteration
            parts = [
                f"{k.split('.', 1)[1] if k.startswith(('algo.', 'recipe.', 'workers.')) else k}="
                f"{_short(d[k].strip(chr(39)))}"
                for k in differ
            ]
            return f"{name}[{', '.join(parts)}]"

        names = {r: label(d) for r, d in zip(g["run"], dicts)}
        never = [k for k in differ if k in _COMPUTED]
        log.warning(
            "%s on %s: runs differ in %s: reported as %d groups (%s); %s",
            name,
            env,
            ", ".join(differ),
            len(set(names.values())),
            ", ".join(sorted(set(names.values()))),
            f"{', '.join(never)} is never pooled (the engines' rows differ)" if never else "--ignore KEY pools them",
        )
        labels.update(names)
    runs["algo"] = [labels.get(r, a) for r, a in zip(runs["run"], runs["algo"])]
    # a run off the default engine says so even alone (beside gymnasium runs the rule above has split it)
    runs["algo"] = [
        a
        if configs[r].get("workers.engine", "gymnasium") == "gymnasium" or "engine=" in a
        else f"{a}[engine={configs[r]['workers.engine']}]"
        for r, a in zip(runs["run"], runs["algo"])
    ]
    return runs


def _short(value: str, limit: int = 24) -> str:
    """A config value for a label: itself, or ``#`` and a hash of it when longer than ``limit``
    (a maze map or an XML path would make the label unreadable)."""
    import hashlib

    return value if len(value) <= limit else f"#{hashlib.sha1(value.encode()).hexdigest()[:6]}"


def run_key(flat: dict) -> tuple:
    """What makes two runs the same experiment: the flattened config without :data:`_NOT_IN_RUN_KEY`
    (the seed, the algorithm and the environment *are* part of it)."""
    return tuple(sorted((k, repr(v)) for k, v in flat.items() if not _ignored(k, _NOT_IN_RUN_KEY)))


def mark_counted(runs: pd.DataFrame, configs: dict[str, dict], include_busy: bool = False) -> pd.DataFrame:
    """Decide which runs each statistic counts, so that every seed counts once.

    Two runs are *the same seed* when :func:`run_key` of their configs is equal (algorithm,
    environment, seed and every setting, apart from ``workers.*``, ``wandb.*``, ``progress`` and
    ``hydra.*``). Among the runs of one seed the preferred one is the latest completed run: status
    ``completed`` first, then the newest ``mtime`` (modification time of ``summary.json`` or
    ``metrics.csv``, whichever is newer), then the run id that sorts last.

    * ``wall_clock``: counted in wall-clock statistics, grouped by (env, algo, workers_n): the
      preferred run of each (seed, ``workers_n``, ``engine``). Others are *duplicates* and count nowhere.
      The engines give the same rows at different speeds, so a wall-clock group keeps the runs of one
      engine, the one most of its runs ran on (``mujoco`` on a tie); the others are left out of it, with a
      note, and still count in the learning statistics.
    * ``learning``: counted in learning statistics (returns against epochs and timesteps, final
      returns, thresholds), grouped by (env, algo): the preferred run of each seed over all
      ``workers_n`` (a run's numbers do not depend on ``workers.n``; only its wall-clock time does).
    * Then in every group that has a completed run, runs that did not complete (``interrupted``,
      ``failed``, ``unknown`` = no ``summary.json``: killed or still running) are left out: their last
      return is not a final return, a threshold they did not reach before stopping is not "never
      reached", and their shorter curve would cut every aggregate short. A group without any
      completed run keeps all of them (the tables count them in ``n_not_completed``).
    * A run that was never evaluated (``n_evals`` 0) has no curve: it counts nowhere, with a note
      (not as a run that "never reached" a threshold).
    * Last, a run whose ``summary.json`` says the machine was busy (``machine.busy`` true: other
      processes used more than a tenth of the CPUs, :mod:`harness.machine`) is left out of the
      wall-clock statistics, whose seconds it would inflate, unless ``include_busy``; it still counts in
      the learning statistics (its returns against epochs and steps do not depend on the machine). A
      run with an unknown share (``busy`` None) counts.

    :param runs: one row per run (:attr:`Loaded.runs` columns before marking; without a ``busy`` column
        no run is busy).
    :returns: a copy with boolean ``learning``, ``wall_clock`` and a ``note`` saying why a run is not
        counted everywhere ("" when it is). Warns for duplicates and for left-out runs (busy runs: info).
    """
    runs = runs.copy()
    if runs.empty:
        for col, dtype in (("learning", bool), ("wall_clock", bool), ("note", object)):
            runs[col] = pd.Series(dtype=dtype)
        return runs
    runs["key_"] = [run_key(configs[r]) for r in runs["run"]]
    runs["n_"] = runs["workers_n"].astype(object).where(runs["workers_n"].notna(), None)
    runs["done_"] = runs["status"] == "completed"
    engines = runs["engine"] if "engine" in runs else pd.Series("gymnasium", index=runs.index)
    runs["engine_"] = engines.fillna("gymnasium").astype(str)
    wall_pick, seed_pick = {}, {}  # (key, workers_n, engine) -> run, key -> run: the first in order of preference
    for r in runs.sort_values(["done_", "mtime", "run"], ascending=False, kind="stable").itertuples():
        wall_pick.setdefault((r.key_, r.n_, r.engine_), r.run)
        seed_pick.setdefault(r.key_, r.run)
    runs["wall_clock"] = runs["run"].isin(set(wall_pick.values()))
    runs["learning"] = runs["run"].isin(set(seed_pick.values()))
    notes = {}
    for r in runs.itertuples():
        if not r.wall_clock:
            notes[r.run] = f"duplicate of {wall_pick[(r.key_, r.n_, r.engine_)]} (same config and seed): not counted"
        elif not r.learning:
            notes[r.run] = (
                f"same config and seed as {seed_pick[r.key_]}: counted in wall-clock statistics "
                f"(workers.n={r.workers_n}) only"
            )
    left_out: dict[str, list[str]] = {}
    for flag, keys, what in (
        ("learning", ["env", "algo"], "learning"),
        ("wall_clock", ["env", "algo", "workers_n"], "wall-clock"),
    ):
        counted = runs[runs[flag]]
        has_done = counted.groupby(keys, dropna=False)["done_"].transform("any")
        drop = counted.index[has_done & ~counted["done_"]]
        runs.loc[drop, flag] = False
        for i in drop:
            left_out.setdefault(runs.at[i, "run"], []).append(what)
    for r in runs[runs["run"].isin(left_out)].itertuples():  # (a duplicate is never counted, so never here)
        notes[r.run] = (
            f"{r.status}, not completed: left out of the {' and '.join(left_out[r.run])} statistics "
            "(its group there has completed runs)"
        )
    if "n_evals" in runs:  # no evaluation, no curve: not a run that "never reached" a threshold
        for i in runs.index[(runs["n_evals"] == 0) & (runs["learning"] | runs["wall_clock"])]:
            runs.loc[i, ["learning", "wall_clock"]] = False
            run = runs.at[i, "run"]
            note = "no evaluation (eval_return never logged): no curve, left out of every statistic"
            notes[run] = f"{notes[run]}; {note}" if run in notes else note
    busy = runs["busy"].map(lambda v: v is True) if "busy" in runs else pd.Series(False, index=runs.index)
    if not include_busy:
        for i in runs.index[busy & runs["wall_clock"]]:
            runs.at[i, "wall_clock"] = False
            share = runs.at[i, "others_share"] if "others_share" in runs else math.nan
            what = "busy machine" + ("" if pd.isna(share) else f" (other processes used {share:.0%} of the CPUs)")
            note = f"{what}: left out of the wall-clock statistics (--include-busy counts it)"
            run = runs.at[i, "run"]
            notes[run] = f"{notes[run]}; {note}" if run in notes else note
    for _, g in runs[runs["wall_clock"]].groupby(["env", "algo", "workers_n"], dropna=False):
        counts = g["engine_"].value_counts()
        if len(counts) < 2:
            continue
        kept = max(counts.index, key=lambda e: (counts[e], e == "mujoco"))
        for i in g.index[g["engine_"] != kept]:
            runs.at[i, "wall_clock"] = False
            run = runs.at[i, "run"]
            note = (
                f"ran on the {runs.at[i, 'engine_']} engine, its wall-clock group on the {kept} engine (the same "
                "rows at another speed): left out of the wall-clock statistics"
            )
            notes[run] = f"{notes[run]}; {note}" if run in notes else note
    runs["note"] = runs["run"].map(notes).fillna("")
    for r in runs[runs["note"] != ""].itertuples():
        (log.info if r.wall_clock or r.note.startswith("busy machine") else log.warning)("%s: %s", r.run, r.note)
    return runs.drop(columns=["key_", "n_", "done_", "engine_"])


def config_differences(run_ids: list[str], configs: dict[str, dict]) -> list[str]:
    """Config keys (other than seed, ``workers.*``, W&B, progress, Hydra) whose values differ between
    the given runs."""
    keys = set().union(*(configs[r].keys() for r in run_ids)) if run_ids else set()
    return sorted(
        k
        for k in keys
        if not _ignored(k, (*_IGNORED_CONFIG_KEYS, *_NOT_A_SETTING))
        and len({repr(configs[r].get(k)) for r in run_ids}) > 1
    )


def _warn_pooled_differences(runs: pd.DataFrame, configs: dict[str, dict]) -> None:
    """Say which settings a pooled group's runs do not share: a warning for values that differ, a note
    for keys that only some runs record (a config written before the key existed says nothing of it)."""
    if runs.empty:
        return
    for (env, algo), group in runs[runs["learning"]].groupby(["env", "algo"]):
        ids = list(group["run"])
        diff = config_differences(ids, configs)
        absent = [k for k in diff if any(k not in configs[r] for r in ids)]
        differ = [k for k in diff if k not in absent]
        if differ:
            log.warning("%s/%s: pooling %d runs whose configs differ in %s", algo, env, len(group), ", ".join(differ))
        if absent:
            log.info(
                "%s/%s: pooling %d runs, some of whose configs lack %s (written by an older version of the "
                "harness, before those keys existed)",
                algo,
                env,
                len(group),
                ", ".join(absent),
            )
