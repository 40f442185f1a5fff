"""``python -m harness.dashboard``: a Weights & Biases dashboard for the harness's runs.

Two commands (``--help`` for every option):

``workspace``
    Builds a W&B workspace (``wandb-workspaces``) for a project: learning curves (``eval_return``
    against ``timesteps``, ``train_time_s`` and ``epoch``) and each algorithm's health signals,
    with the runs grouped by algorithm (config ``algo.name``) and filtered by environment (config
    ``env.name``) and experiment group (the W&B group, ``wandb.group``). Offline (the default) it
    writes the workspace's description, the library's own ``View`` model dumped to JSON, to a file;
    online it saves the workspace to W&B (an account is needed).
``import``
    Turns run folders (``config.yaml`` + ``metrics.csv`` + ``summary.json``, e.g. runs made with
    ``wandb.mode=disabled``) into offline W&B runs with the grouping a live run gets (the same
    :func:`harness.tracking.wandb_init_args`), every ``metrics.csv`` row and the summary, so that
    ``wandb sync`` uploads them and the workspace shows them without training.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.report.load import MalformedRun, _is_run_config, find_run_dirs, read_run
from harness.tracking import WandbLogger

# ---------------------------------------------------------------------------------------- workspace


@dataclass(frozen=True)
class PanelSpec:
    """A line plot: ``y`` (one or more ``metrics.csv`` columns) against the column ``x``."""

    title: str
    y: tuple[str, ...]
    x: str = "timesteps"


@dataclass(frozen=True)
class SectionSpec:
    """A workspace section: its ``name``, its ``panels`` in order, and whether it starts open (``is_open``)."""

    name: str
    panels: tuple[PanelSpec, ...]
    is_open: bool = True


#: The workspace's sections, in order. Columns as :mod:`harness.tracking` and the algorithms
#: write them (README, "What a run writes"); a panel shows the runs that logged its columns.
SECTIONS = (
    SectionSpec(
        "Learning curves",
        (
            PanelSpec("eval_return vs timesteps", ("eval_return",), "timesteps"),
            PanelSpec("eval_return vs training time (train_time_s)", ("eval_return",), "train_time_s"),
            PanelSpec("eval_return vs epochs", ("eval_return",), "epoch"),
            PanelSpec("training return (return_mean) vs timesteps", ("return_mean",), "timesteps"),
            PanelSpec("eval_success (mazes) vs timesteps", ("eval_success",), "timesteps"),
        ),
    ),
    SectionSpec(
        "ES family health (es, vo, ns_es, nsr_es, nsra_es)",
        (
            PanelSpec("grad_norm", ("grad_norm",)),
            PanelSpec("update_ratio", ("update_ratio",)),
            PanelSpec("param_norm", ("param_norm",)),
        ),
    ),
    SectionSpec(
        "VO health (vo)",
        (
            PanelSpec("sigma: mean, min, max", ("sigma_mean", "sigma_min", "sigma_max")),
            PanelSpec("sigma_at_bound", ("sigma_at_bound",)),
        ),
    ),
    SectionSpec(
        "Novelty search health (ns_es, nsr_es, nsra_es)",
        (
            PanelSpec("archive_size", ("archive_size",)),
            PanelSpec("novelty_mean", ("novelty_mean",)),
            PanelSpec("best_return", ("best_return",)),
            PanelSpec("reward_weight (nsra_es)", ("reward_weight",)),
        ),
    ),
    SectionSpec(
        "TRPO health (trpo)",
        (
            PanelSpec("kl_divergence", ("kl_divergence",)),
            PanelSpec("line_search_success", ("line_search_success",)),
            PanelSpec("explained_variance", ("explained_variance",)),
            PanelSpec("value_loss", ("value_loss",)),
            PanelSpec("policy_objective", ("policy_objective",)),
            PanelSpec("std", ("std",)),
        ),
    ),
)

#: Runs or groups each panel shows (the library's default is 10).
MAX_RUNS = 100

#: W&B keeps a nested config ({"env": {"name": ...}}) as env.value.name; the library inserts the
#: ".value" itself for groupby keys (expr.groupby_str_to_key) but not in filters, so it is written
#: out there, as a filter made in the W&B UI stores it.
ENV_FILTER_KEY = "env.value.name"


def runset_filter(envs=(), groups=()):
    """The runset's filter as ``wandb_workspaces`` expressions: ``env.name`` in ``envs`` and the
    W&B group in ``groups`` (either left out when empty); ``None`` when both are empty."""
    import wandb_workspaces.workspaces as ws

    items = []
    if envs:
        items.append(ws.Config(ENV_FILTER_KEY).isin(list(envs)))
    if groups:
        items.append(ws.Metric("Group").isin(list(groups)))
    if not items:
        return None
    return items[0] if len(items) == 1 else ws.And(*items)


def build_workspace(project: str = "harness", entity: str | None = None, envs=(), groups=(), name: str | None = None):
    """The workspace, a ``wandb_workspaces.workspaces.Workspace``: :data:`SECTIONS` of line plots
    with the mean and standard error over each group's runs; runs grouped by ``algo.name`` (by
    ``env.name`` first unless ``envs`` names one environment, so that no curve pools environments);
    filtered by ``envs`` (config ``env.name``) and ``groups`` (W&B group); x-axis ``timesteps``.

    :param entity: the W&B entity; ``None`` is kept as ``""`` (an offline description; ``save``
        needs one).
    """
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections = [
        ws.Section(
            name=s.name,
            is_open=s.is_open,
            panel_settings=ws.SectionPanelSettings(x_axis="timesteps"),
            panels=[
                wr.LinePlot(title=p.title, x=p.x, y=list(p.y), groupby_aggfunc="mean", groupby_rangefunc="stderr")
                for p in s.panels
            ],
        )
        for s in SECTIONS
    ]
    groupby = ([] if len(envs) == 1 else [ws.Config("env.name")]) + [ws.Config("algo.name")]
    filters = runset_filter(envs, groups)
    if name is None:
        scope = [", ".join(envs) if envs else "all environments"]
        if groups:
            scope.append("group " + ", ".join(groups))
        name = f"harness: ES family vs TRPO ({'; '.join(scope)})"
    return ws.Workspace(
        entity=entity or "",
        project=project,
        name=name,
        sections=sections,
        # max_runs: runs (or groups) a panel shows, 10 by default: every seed of every algorithm here
        settings=ws.WorkspaceSettings(x_axis="timesteps", max_runs=MAX_RUNS),
        runset_settings=ws.RunsetSettings(groupby=groupby, **({"filters": filters} if filters is not None else {})),
    )


def workspace_description(workspace) -> dict:
    """The workspace as the library models it for W&B (``internal.View``, which ``save`` sends),
    dumped to plain JSON types; ``View.model_validate`` reads it back."""
    return workspace._to_model().model_dump(mode="json", by_alias=True, exclude_none=True)


def cmd_workspace(args) -> int:
    """The ``workspace`` command: :func:`build_workspace` for ``args``. Offline, write its description to
    ``--out`` (default :data:`DEFAULT_WORKSPACE_FILE`) and say what it holds; online, write the description only if
    ``--out`` is given, and save the workspace to W&B (entity: ``--entity``, else the account's default).
    Returns 0, or 1 with one ``error:`` line when building or saving it online failed."""
    envs, groups = tuple(args.env or ()), tuple(args.group or ())
    if args.mode == "online":
        import wandb

        try:
            entity = args.entity or wandb.Api().default_entity
            workspace = build_workspace(args.project, entity, envs, groups, args.name)
            if args.out:
                _write_description(workspace, Path(args.out))
                print(f"description written to {args.out}")
            workspace.save()
        except Exception as exc:  # noqa: BLE001 - no account, no network, no such entity or project: one line, not a traceback
            print(f"error: the workspace was not saved to W&B: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print(f"workspace saved: {workspace.url}")
        return 0
    workspace = build_workspace(args.project, args.entity, envs, groups, args.name)
    out = Path(args.out or DEFAULT_WORKSPACE_FILE)
    _write_description(workspace, out)
    n_panels = sum(len(s.panels) for s in workspace.sections)
    grouped = ", ".join("config " + g.name for g in workspace.runset_settings.groupby)
    print(
        f"workspace {workspace.name!r} for project {args.project!r}: {len(workspace.sections)} sections, "
        f"{n_panels} panels; runs grouped by {grouped}; filter: {workspace.runset_settings.filters or 'none'}"
    )
    print(f"offline: nothing was sent to W&B; description written to {out}")
    print("to save it to W&B instead (after `wandb login`): the same command with --mode online")
    return 0


DEFAULT_WORKSPACE_FILE = "results/wandb_workspace.json"


def _write_description(workspace, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(workspace_description(workspace), indent=2) + "\n")
    os.replace(tmp, out)


# ------------------------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What :func:`import_runs` did: ``(run_dir, offline run dir)`` for each run imported,
    ``(run_dir, reason)`` for each folder skipped."""

    imported: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def import_run_id(run_dir: Path) -> str:
    """The W&B run id of the import of ``run_dir``: ``h`` and 15 hex digits of a SHA-256 of its
    ``config.yaml`` and the header and first row of its ``metrics.csv``. The same run gives the same
    id wherever its folder lies (a copy, a moved results tree) and however many epochs it has since
    added (a resume keeps the first row); two runs differ at least in the first row's time columns."""
    h = hashlib.sha256((run_dir / "config.yaml").read_bytes())
    with open(run_dir / "metrics.csv", "rb") as f:
        h.update(b"\0" + f.readline() + f.readline())
    return "h" + h.hexdigest()[:15]


_RUN_DIR_RE = re.compile(r"^(offline-)?run-\d{8}_\d{6}-(?P<id>.+)$")


def wandb_run_dirs(wandb_dir: Path) -> dict[str, list[Path]]:
    """W&B run folders (``offline-run-<time>-<id>``, ``run-<time>-<id>``) in ``wandb_dir``, by id."""
    found: dict[str, list[Path]] = {}
    if wandb_dir.is_dir():
        for p in sorted(wandb_dir.iterdir()):
            m = _RUN_DIR_RE.match(p.name)
            if m and p.is_dir():
                found.setdefault(m["id"], []).append(p)
    return found


def parse_metrics_rows(path: Path) -> list[dict]:
    """``metrics.csv`` rows as a live run logged them: ints where the file has an integer, floats
    otherwise, an empty cell (NaN, not logged) left out. The rules of
    :func:`harness.report.load.read_metrics_csv` for what a kill can leave: a last line without its
    line terminator and rows with fewer cells than the header are dropped."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")):
        text = "".join(lines[:-1])
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    rows = []
    for cells in reader:
        if len(cells) < len(header):
            continue
        rows.append({k: _cell(v) for k, v in zip(header, cells) if v != ""})
    return rows


def _cell(text: str):
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


class _Busy(Exception):
    pass


class _ReadLock:
    """A shared ``flock`` on ``run_dir/.lock`` (when the file exists; none is created) for the time
    a run folder is read: fails at once if a harness process is running there (it holds the lock
    exclusively), and a run started meanwhile refuses the folder until the import is done."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.file = None

    def __enter__(self):
        if self.path.exists():
            self.file = open(self.path)
            try:
                fcntl.flock(self.file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                self.file.close()
                raise _Busy from None
            except OSError:  # a file system without locks: nothing to learn from it
                pass
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()  # drops the lock


def import_runs(
    results_dir: str | Path,
    out: str | Path | None = None,
    project: str | None = None,
    entity: str | None = None,
    mode: str = "offline",
    force: bool = False,
    echo=print,
) -> ImportResult:
    """Turn every run folder below ``results_dir`` into a W&B run, as a live run would have made it.

    Each run is initialised with :func:`harness.tracking.wandb_init_args` (project, group, job
    type, name, tags, the whole config), declares the same x-axes (:func:`harness.tracking.define_axes`),
    logs every ``metrics.csv`` row in order (NaN cells left out, as live) and the summary
    (``summary.json``'s scalars), and finishes with exit code 0 if the run ``completed`` or was
    ``interrupted`` (stopped after an epoch) and 1 if it ``failed``. Its id is
    :func:`import_run_id`.

    Where: ``<run folder>/wandb/`` (where a live run keeps its W&B run), or ``<out>/wandb/``.

    Skipped, with the reason: folders that are not harness runs, runs without ``metrics.csv``,
    ``summary.json`` or any row, malformed runs (:func:`harness.report.load.read_run`), runs a
    harness process is running in, runs that have their own W&B run in ``<run folder>/wandb/``
    (upload that one with ``wandb sync``), and runs already imported (the same id in
    ``<run folder>/wandb/`` or ``<out>/wandb/``): with ``force`` the earlier import is deleted and
    the run imported again.

    :param project: ``None``: each run's ``wandb.project`` (``harness`` unless the run set another).
    :param mode: ``offline`` (no account, no network) or ``online`` (straight to W&B). Either way
        the run is started with ``resume="never"``: online, W&B refuses an id it already has.
    :raises FileNotFoundError: if ``results_dir`` is not a directory.
    """
    results_dir = Path(results_dir)
    result = ImportResult()

    def skip(run_dir: Path, reason: str) -> None:
        result.skipped.append((run_dir, reason))
        echo(f"skipped {run_dir}: {reason}")

    for run_dir in find_run_dirs(results_dir):
        if not _is_run_config(run_dir / "config.yaml"):
            skip(run_dir, "config.yaml is not a harness run's (it lacks algo.name, env.name or seed)")
            continue
        missing = [f for f in ("metrics.csv", "summary.json") if not (run_dir / f).exists()]
        if missing:
            why = {
                "metrics.csv": "ended or was killed before its first epoch",
                "summary.json": "still running, or killed (resume=DIR finishes it)",
            }
            skip(run_dir, "no " + " and no ".join(missing) + f": {why[missing[0]]}")
            continue
        try:
            with _ReadLock(run_dir):
                reason = _import_one(run_dir, out, project, entity, mode, force, result, echo)
        except _Busy:
            reason = "a harness process is running in it (it holds run_dir/.lock)"
        if reason:
            skip(run_dir, reason)
    return result


def _import_one(run_dir: Path, out, project, entity, mode, force, result: ImportResult, echo) -> str | None:
    """Import one run folder (:func:`import_runs`); the reason it was skipped, or ``None``."""
    try:
        _, metrics, _ = read_run(run_dir)
    except MalformedRun as exc:
        return f"malformed: {exc}"
    rows = parse_metrics_rows(run_dir / "metrics.csv")
    if not rows:
        return "no metrics rows"
    if len(rows) != len(metrics):
        return f"metrics.csv: {len(rows)} rows parsed, {len(metrics)} usable; not imported"
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        return "summary.json unreadable: " + " ".join(str(exc).split())
    if not isinstance(summary, dict):
        return "summary.json is not a mapping"
    run_id = import_run_id(run_dir)
    own = {i: d for i, d in wandb_run_dirs(run_dir / "wandb").items() if i != run_id}
    if own:
        dirs = " ".join(str(d) for ds in own.values() for d in ds)
        return f"it has its own W&B run ({', '.join(own)}): upload that with `wandb sync {dirs}`"
    wandb_root = Path(out) if out is not None else run_dir
    # an earlier import of this run, into its folder or into OUT
    earlier = [
        d for root in dict.fromkeys((run_dir, wandb_root)) for d in wandb_run_dirs(root / "wandb").get(run_id, [])
    ]
    if earlier and not force:
        return f"already imported as {', '.join(map(str, earlier))} (W&B id {run_id}); --force replaces it"
    for d in earlier:
        shutil.rmtree(d)
        echo(f"removed the earlier import {d}")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    wandb_root.mkdir(parents=True, exist_ok=True)
    # resume="never": an import is never the continuation of another W&B run
    logger = WandbLogger(cfg, wandb_root, run_id=run_id, resume="never", mode=mode, project=project, entity=entity)
    exit_code = 1
    try:
        where = Path(logger.run.dir).parent  # .../wandb/offline-run-<time>-<id>/files -> its run folder
        for row in rows:
            logger.log(row)
        logger.summary(summary)
        exit_code = 0 if summary.get("status") in ("completed", "interrupted") else 1
    finally:
        logger.finish(exit_code)
    result.imported.append((run_dir, where))
    echo(f"imported {run_dir} -> {where} ({len(rows)} rows, W&B id {run_id})")
    return None


def cmd_import(args) -> int:
    """The ``import`` command: :func:`import_runs` of RESULTS_DIR with ``args``' options, then a summary line
    (and, offline, the ``wandb sync`` command). Returns 0; 2 when RESULTS_DIR is missing; 1 when W&B refused a
    run (the import stops there) or no run folder was found."""
    try:
        result = import_runs(
            args.results_dir, out=args.out, project=args.project, entity=args.entity, mode=args.mode, force=args.force
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - W&B refused (online: no account, no network, an id it has): one line
        print(f"error: import stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    n_runs = len(result.imported) + len(result.skipped)
    if n_runs == 0:
        print(f"error: no run folder (config.yaml) below {args.results_dir}", file=sys.stderr)
        return 1
    print(f"{len(result.imported)} run(s) imported, {len(result.skipped)} skipped")
    if result.imported and args.mode == "offline":
        roots = sorted({str(d.parent) for _, d in result.imported})
        print("offline runs written to: " + ", ".join(roots))
        print("upload them (after `wandb login`): wandb sync " + " ".join(str(d) for _, d in result.imported))
    return 0


# ----------------------------------------------------------------------------------------------- CLI

EPILOG = """\
examples:
  # the workspace's description (offline: written to a file, nothing sent)
  python -m harness.dashboard workspace --project harness
  python -m harness.dashboard workspace --env HalfCheetah --group tradeoff_halfcheetah --out ws.json
  # save it to W&B (after `wandb login`)
  python -m harness.dashboard workspace --mode online --entity my-team --env HalfCheetah

  # run folders -> offline W&B runs (into each run folder's wandb/), then upload them
  python -m harness.dashboard import results/paper
  wandb sync $(find results/paper -type d -name 'offline-run-*')
"""


def _wrap(text: str) -> str:
    """A description paragraph wrapped for the terminal (the raw formatter keeps the epilog's lines)."""
    import textwrap

    return textwrap.fill(text, width=min(100, shutil.get_terminal_size().columns - 2))


def parser() -> argparse.ArgumentParser:
    """The command line: the ``workspace`` and ``import`` subcommands with their options, each setting
    ``func`` to :func:`cmd_workspace` or :func:`cmd_import`."""
    p = argparse.ArgumentParser(
        prog="python -m harness.dashboard",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_wrap(
            "A Weights & Biases dashboard for the harness's runs: `workspace` builds the W&B "
            "workspace (learning curves and each algorithm's health signals, runs grouped by "
            "algorithm, filtered by environment and experiment group); `import` turns run folders "
            "into offline W&B runs grouped as a live run is, for `wandb sync`."
        ),
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{workspace,import}")

    w = sub.add_parser(
        "workspace",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="build the W&B workspace: offline, write its description to a file; online, save it",
        description=_wrap(
            "Build the W&B workspace for a project with wandb-workspaces: sections of line plots "
            "(eval_return against timesteps, train_time_s and epoch; ES family: grad_norm, "
            "update_ratio, param_norm; VO: sigma_mean/min/max, sigma_at_bound; novelty family: "
            "archive_size, novelty_mean, best_return, reward_weight; TRPO: kl_divergence, "
            "line_search_success, explained_variance, value_loss, policy_objective, std), runs "
            "grouped by config algo.name (and env.name unless one --env is given), mean and "
            "standard error over each group. Offline the workspace's description (the "
            "library's View model as JSON) is written to --out; online it is saved to W&B."
        ),
        epilog=EPILOG,
    )
    w.add_argument("--project", default="harness", help="W&B project (default: harness, as wandb.project)")
    w.add_argument("--entity", default=None, help="W&B entity (team or user); online default: your default entity")
    w.add_argument(
        "--mode",
        choices=("offline", "online"),
        default="offline",
        help="offline (default): write the description to --out, no account needed; "
        "online: save the workspace to W&B (needs `wandb login`)",
    )
    w.add_argument(
        "--out",
        default=None,
        help=f"the description file (JSON; default {DEFAULT_WORKSPACE_FILE}; online: only if given)",
    )
    w.add_argument(
        "--env",
        action="append",
        metavar="NAME",
        help="show only runs of this environment (config env.name, e.g. HalfCheetah); repeatable",
    )
    w.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="show only runs of this W&B group (wandb.group: the env by default, the "
        "experiment's name for a named sweep); repeatable",
    )
    w.add_argument("--name", default=None, help="the workspace's name (default: says what it shows)")
    w.set_defaults(func=cmd_workspace)

    i = sub.add_parser(
        "import",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="turn run folders into offline W&B runs grouped as live runs are",
        description=_wrap(
            "Turn every run folder below RESULTS_DIR (config.yaml + metrics.csv + summary.json, "
            "any depth) into a W&B run with the same project, group, job_type, name, tags, "
            "config and x-axes as a live run, every metrics.csv row and the summary. The W&B id "
            "is derived from the run (config.yaml and the first metrics row), so importing a "
            "run again is refused (--force replaces the earlier import). Runs that have their "
            "own W&B run (made with wandb.mode=offline/online) and folders that are not runs are "
            "skipped with the reason."
        ),
        epilog=EPILOG,
    )
    i.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder of run folders, e.g. results/paper")
    i.add_argument(
        "--project",
        default=None,
        help="W&B project (default: each run's wandb.project, harness unless the run set another)",
    )
    i.add_argument("--entity", default=None, help="W&B entity (default: each run's wandb.entity)")
    i.add_argument(
        "--mode",
        choices=("offline", "online"),
        default="offline",
        help="offline (default): write offline runs for `wandb sync`; online: log straight to W&B",
    )
    i.add_argument(
        "--out",
        default=None,
        help="write the runs under OUT/wandb/ (default: each run folder's own wandb/, where a "
        "live run keeps its W&B run)",
    )
    i.add_argument("--force", action="store_true", help="replace an earlier import of a run")
    i.set_defaults(func=cmd_import)
    return p


def main(argv=None) -> int:
    """``python -m harness.dashboard``: W&B kept quiet (unless ``WANDB_SILENT`` is set), ``argv`` parsed, the
    subcommand run; its exit status."""
    # quiet, as `python -m harness` is: no W&B banners (WANDB_SILENT=false brings them back)
    os.environ.setdefault("WANDB_SILENT", "true")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
