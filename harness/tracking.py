"""Where a run's numbers go: ``metrics.csv`` (one flushed row per epoch), Weights & Biases
(parent process only; offline by default) and a progress bar.

The metrics contract, shared by every algorithm (see README):

=============== ==================================================================
``epoch``        count of updates (ES: generations; TRPO: policy iterations); the row of
                 epoch 0 (``eval.at_start``) is the untrained policy's evaluation, at
                 ``timesteps`` 0, with the training columns empty
``timesteps``    cumulative environment steps of training rollouts
``episodes``     cumulative finished training episodes
``wall_time_s``  seconds since the run's first epoch began (evaluation included)
``train_time_s`` ``wall_time_s`` minus the evaluations: seconds spent training (rollouts,
                 updates, logging, checkpoints); the report's wall-clock axis
``eval_time_s``  seconds spent in evaluations so far (``train_time_s + eval_time_s
                 = wall_time_s``)
``return_mean``  mean return of this epoch's training episodes (``return_max`` etc.)
``eval_return``  mean return of the unperturbed/deterministic policy over
                 ``eval.episodes`` episodes with frozen statistics, every
                 ``eval.every_timesteps`` (empty when not evaluated at that epoch)
=============== ==================================================================

The ES family adds what each epoch's training cost (:data:`EPOCH_COST_COLUMNS`): ``rollout_time_s``, seconds
in the workers' training rollouts, and ``bytes_sent`` / ``bytes_received``, the backend's traffic with them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
from pathlib import Path

X_AXES = ("epoch", "timesteps", "wall_time_s", "train_time_s")
#: The columns that measure time, which differ between two runs of the same config and seed.
TIME_COLUMNS = ("wall_time_s", "train_time_s", "eval_time_s")
#: What an epoch's training cost, beside its time (ES family, :meth:`harness.algos.evolution.EvolutionTrainer.epoch_costs`):
#: seconds in the workers' rollouts (the rest of ``train_time_s``'s increase is the coordinator's serial part:
#: sampling, shaping, the update, observation statistics) and the bytes the backend sent to and received from its
#: workers (0 on the serial backend). They depend on the machine, the backend and ``workers.n``.
EPOCH_COST_COLUMNS = ("rollout_time_s", "bytes_sent", "bytes_received")
#: Every column that measures what a run cost rather than what it learned: two runs of one config and seed agree
#: on every other column, whatever their machine load, backend or worker count.
COST_COLUMNS = (*TIME_COLUMNS, *EPOCH_COST_COLUMNS)
REQUIRED_COLUMNS = ("epoch", "timesteps", "episodes", "wall_time_s", "return_mean", "return_max", "eval_return")


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename), so a crash never leaves half a file."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def keep_rows(path: Path, keep_epochs: int) -> list[str] | None:
    """Rewrite the CSV ``path`` (first column ``epoch``) keeping its header and the complete rows
    of epochs ``<= keep_epochs``, atomically; a half-written last line (a crash mid-write) and
    rows of later epochs go. Returns the header's columns, or ``None`` if there is no file."""
    path = Path(path)
    if not path.exists():
        return None
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    header = next(csv.reader([lines[0]]))
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.endswith("\n"):
            break  # the last line, cut short
        fields = next(csv.reader([line]))
        if len(fields) != len(header) or not fields[0].isdigit() or int(fields[0]) > keep_epochs:
            continue
        kept.append(line)
    write_text(path, "".join(kept))
    return header


def read_rows(path: Path) -> list[dict]:
    """The complete rows of a ``metrics.csv`` as they were logged: integers as ``int``, other
    numbers as ``float``, an empty cell as NaN, text as it is; ``[]`` without a file."""
    path = Path(path)
    if not path.exists():
        return []

    def value(cell: str):
        if cell == "":
            return math.nan
        try:
            return int(cell)
        except ValueError:
            try:
                return float(cell)
            except ValueError:
                return cell

    with open(path, newline="") as f:
        return [
            {k: value(v) for k, v in row.items()}
            for row in csv.DictReader(f)
            if None not in row.values() and row.get("epoch", "").isdigit()
        ]


class MetricsCSV:
    """``metrics.csv`` with the columns of the first row, flushed after every row.

    :param keep_epochs: resuming: keep the file's rows up to this epoch (:func:`keep_rows`) and
        append after them with the same columns; ``None``: a new file.
    :raises ValueError: from :meth:`log` if a row lacks a required column or its columns differ
        from the file's.
    """

    def __init__(self, path: Path, keep_epochs: int | None = None) -> None:
        self.path = Path(path)
        self._file = None
        self._writer = None
        self._columns = keep_rows(self.path, keep_epochs) if keep_epochs is not None else None

    def log(self, row: dict) -> None:
        """Append ``row`` (floats written with ``repr``, NaN as an empty cell) and flush. The first row fixes the
        columns and writes the header (resuming: it must have the kept file's columns, which it appends to);
        a later row may leave a column out (an empty cell) but not add one.

        :raises ValueError: if the row lacks a column of ``REQUIRED_COLUMNS``, has a column the file has not, or,
            resuming, its columns differ from the file's.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"metrics row lacks required columns {missing}")
        if self._writer is None:
            if self._columns is not None:
                if list(row) != self._columns:
                    raise ValueError(
                        f"the resumed run's metrics columns {list(row)} differ from {self.path}'s {self._columns}"
                    )
                self._file = open(self.path, "a", newline="")
                self._writer = csv.DictWriter(
                    self._file, fieldnames=self._columns, extrasaction="raise", lineterminator="\n"
                )
            else:
                self._file = open(self.path, "w", newline="")
                self._writer = csv.DictWriter(
                    self._file, fieldnames=list(row), extrasaction="raise", lineterminator="\n"
                )
                self._writer.writeheader()
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        """Close the file, if open; idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


BEHAVIOURS_FILE = "behaviours.csv"


class BehaviourCSV:
    """``behaviours.csv``: behaviour characterizations (BCs) kept so that a figure can show
    where the agents went. One row per BC, flushed as written; created on the first BC.

    Columns: ``epoch``, ``timesteps`` (of the ``metrics.csv`` row it belongs to), ``source``
    (``eval``: an evaluation episode; ``archive``: a BC the novelty family added to its
    archive, the mean over its episodes), ``agent`` (meta-population index, empty for
    single-agent algorithms), ``episode`` (index within the evaluation), ``bc_0`` ... ``bc_{k-1}``.
    """

    def __init__(self, path: Path, keep_epochs: int | None = None) -> None:
        self.path = Path(path)
        self._file = None
        self._writer = None
        self._dim = None
        self._header = keep_rows(self.path, keep_epochs) if keep_epochs is not None else None

    def log(self, epoch: int, timesteps: int, source: str, agent: int | None, bcs) -> None:
        """Append ``bcs`` (shape ``(n, k)``). :raises ValueError: if ``k`` changes within a run."""
        import numpy as np

        bcs = np.atleast_2d(np.asarray(bcs, dtype=np.float64))
        if self._writer is None:
            if self._header is not None:  # resuming: append to the kept rows
                self._dim = len(self._header) - 5
                self._file = open(self.path, "a", newline="")
                self._writer = csv.writer(self._file, lineterminator="\n")
            else:
                self._dim = bcs.shape[1]
                self._file = open(self.path, "w", newline="")
                self._writer = csv.writer(self._file, lineterminator="\n")
                self._writer.writerow(
                    ["epoch", "timesteps", "source", "agent", "episode", *(f"bc_{i}" for i in range(self._dim))]
                )
        if bcs.shape[1] != self._dim:
            raise ValueError(f"behaviour characterizations changed size from {self._dim} to {bcs.shape[1]}")
        for i, bc in enumerate(bcs):
            self._writer.writerow(
                [
                    epoch,
                    timesteps,
                    source,
                    "" if agent is None else agent,
                    i if source == "eval" else "",
                    *map(repr, map(float, bc)),
                ]
            )
        self._file.flush()

    def close(self) -> None:
        """Close the file, if open; idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _fmt(v):
    """Floats with full precision (repr), NaN as an empty cell."""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def wandb_init_args(
    cfg: dict,
    run_dir: Path,
    run_id: str | None = None,
    resume: str | None = None,
    mode: str | None = None,
    project: str | None = None,
    entity: str | None = None,
) -> dict:
    """The keyword arguments of ``wandb.init`` for the harness run of config ``cfg``: the one
    place that decides how a run appears in W&B, used by a live run (:class:`WandbLogger`) and by
    ``python -m harness.dashboard import`` (:mod:`harness.dashboard`), so that both group alike.

    ``project``/``entity``: ``wandb.project`` (default ``harness``) and ``wandb.entity``;
    ``group``: ``wandb.group`` (default: the env; an experiment's name for a named sweep);
    ``job_type``: the algorithm; ``name``: ``<algo>-<env>-s<seed>``; ``tags``: the algorithm, the
    env id and ``wandb.tags``; ``config``: the whole resolved config, so the UI can group and filter
    by ``algo.name``, ``env.name`` and ``seed``. The run's files go to ``run_dir/wandb/``.

    :param mode: ``offline``/``online``; ``None``: ``wandb.mode``.
    :param project: ``None``: ``wandb.project``, else this project (the same for ``entity``).
    """
    w = cfg["wandb"]
    return dict(
        id=run_id,
        resume=resume,
        project=project or w.get("project") or "harness",
        entity=entity or w.get("entity"),
        group=w.get("group"),
        job_type=cfg["algo"]["name"],
        name=f"{cfg['algo']['name']}-{cfg['env']['name']}-s{cfg['seed']}",
        tags=[cfg["algo"]["name"], cfg["env"]["id"], *(w.get("tags") or [])],
        config=cfg,
        dir=str(run_dir),
        mode=mode or w["mode"],
    )


def define_axes(run) -> None:
    """Declare :data:`X_AXES` as x-axes of the W&B ``run``; every other metric plots against
    ``timesteps`` by default."""
    for x in X_AXES:
        run.define_metric(x)
    run.define_metric("*", step_metric="timesteps")


#: the W&B key of ``eval.video_every``'s videos
VIDEO_KEY = "eval/video"


class WandbLogger:
    """One W&B run per harness run, initialised in the parent process only, with
    :func:`wandb_init_args`.

    ``epoch``, ``timesteps``, ``wall_time_s`` and ``train_time_s`` are declared as x-axes with
    ``define_metric`` (:func:`define_axes`); every other metric plots against ``timesteps`` by
    default. ``mode="disabled"`` makes every call a no-op; ``offline`` needs no account
    (``wandb sync <run_dir>/wandb/offline-run-*`` uploads later).

    :param run_id: the W&B run's id; set, a resumed harness run continues its W&B run
        (``resume="allow"``), unless ``resume`` says otherwise.
    :param init: more :func:`wandb_init_args` keywords (``mode``, ``project``, ``entity``).
    """

    def __init__(self, cfg: dict, run_dir: Path, run_id: str | None = None, resume: str | None = None, **init) -> None:
        self.run = None
        if (init.get("mode") or cfg["wandb"]["mode"]) == "disabled":
            return
        import wandb

        resume = resume or ("allow" if run_id else None)  # a resumed harness run continues its W&B run
        self.run = wandb.init(**wandb_init_args(cfg, run_dir, run_id=run_id, resume=resume, **init))
        define_axes(self.run)

    @property
    def run_id(self) -> str | None:
        """The W&B run's id (kept in checkpoints so that a resume continues the same W&B run)."""
        return None if self.run is None else self.run.id

    def log(self, row: dict, video: Path | None = None) -> None:
        """Log a ``metrics.csv`` row (NaN cells left out) and, with ``video`` (an MP4 of this row's
        evaluation, ``eval.video_every``), that video as ``eval/video`` (``wandb.Video``) in the same step."""
        if self.run is not None:
            data = {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            if video is not None:
                import wandb

                data[VIDEO_KEY] = wandb.Video(str(video), format="mp4")
            self.run.log(data)

    def summary(self, data: dict) -> None:
        """Update the W&B run's summary with ``data``'s int, float and str values (others are left out); a
        no-op when disabled."""
        if self.run is not None:
            self.run.summary.update({k: v for k, v in data.items() if isinstance(v, (int, float, str))})

    def finish(self, exit_code: int = 0) -> None:
        """Finish the W&B run with ``exit_code`` (0: success); a no-op when disabled or already finished."""
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None


class RunLogHandler(logging.FileHandler):
    """The handler of a run's ``harness.log`` (``conf/config.yaml``, ``hydra.job_logging``): a
    :class:`logging.FileHandler` that, when the file cannot be written (a full disk, a folder gone),
    says so once on stderr and writes no more, instead of printing a traceback for every record.
    ``failed`` tells whether that happened (the log then lacks the records from there on)."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` as a :class:`logging.FileHandler` does, unless writing has already failed."""
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """At the first failure to write, set :attr:`failed` and say so once on stderr; no traceback, and no
        record is written after it."""
        if not self.failed:
            self.failed = True
            sys.stderr.write(
                f"warning: cannot write {self.baseFilename} ({sys.exc_info()[1]}); the log goes to the "
                "console only from here on\n"
            )


EPOCH_LOGGER = "harness.epochs"


class _NotEpochLines(logging.Filter):
    """Drops the per-epoch log lines (:data:`EPOCH_LOGGER`) from a console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(EPOCH_LOGGER)


class _FewEpochLines(logging.Filter):
    """Lets a per-epoch log line (:data:`EPOCH_LOGGER`) through to a console handler at most once
    every ``interval_s`` seconds (the first always): a 2-second toy run of 300 epochs prints a few
    lines, a 5-second MuJoCo epoch every one. ``harness.log`` keeps every line."""

    def __init__(self, interval_s: float = 1.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.last = -math.inf
        self._shown: logging.LogRecord | None = None  # one filter on several handlers: one decision per record

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(EPOCH_LOGGER) or record is self._shown:
            return True
        if record.created - self.last < self.interval_s:
            return False
        self.last, self._shown = record.created, record
        return True


class Progress:
    """A tqdm bar over the budget (timesteps if set, else epochs); silent when not on a terminal.

    While a bar is shown, the per-epoch log lines (logger :data:`EPOCH_LOGGER`) are kept off the
    console handlers, which would break the bar; without a bar one line a second at most reaches
    the console. Log files (``harness.log``) get every line.
    """

    def __init__(self, budget: dict, enabled: bool = True, file=None) -> None:
        from tqdm.auto import tqdm

        self.by_steps = bool(budget.get("timesteps"))
        total = budget.get("timesteps") if self.by_steps else (budget.get("generations") or None)
        self.bar = tqdm(
            total=total,
            unit="step" if self.by_steps else "epoch",
            unit_scale=self.by_steps,
            disable=None if enabled else True,
            dynamic_ncols=True,
            file=file,
        )
        self._filtered: list[logging.Handler] = []
        # with a bar, no epoch line on the console (it would break the bar); without one, a few
        self._filter = _NotEpochLines() if not self.bar.disable else _FewEpochLines()
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.addFilter(self._filter)
                self._filtered.append(handler)

    def resume(self, state: dict) -> None:
        """Start the bar where a resumed run's checkpoint left it."""
        self.bar.update(state["timesteps"] if self.by_steps else state["epoch"])

    def update(self, row: dict, steps: int) -> None:
        """Advance the bar by ``steps`` timesteps (or by one epoch) and show ``row``'s epoch, ``return_mean`` and,
        when it was evaluated, ``eval_return``."""
        post = {"epoch": row["epoch"], "return": f"{row['return_mean']:.1f}"}
        if not math.isnan(row["eval_return"]):
            post["eval"] = f"{row['eval_return']:.1f}"
        self.bar.set_postfix(post, refresh=False)  # shown by the update's refresh
        self.bar.update(steps if self.by_steps else 1)

    def close(self) -> None:
        """Close the bar and take the per-epoch log filter off the console handlers."""
        self.bar.close()
        for handler in self._filtered:
            handler.removeFilter(self._filter)
        self._filtered = []
