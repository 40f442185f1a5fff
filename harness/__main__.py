"""Entry point: ``python -m harness algo=es env=HalfCheetah [key=value ...]`` (``-m`` to sweep).

Compose (Hydra) -> check the command line and the run directory -> build the trainer -> run;
or, with ``resume=...``, the saved config of a run -> continue it. What a user sees on a bad
config, a refused folder or a failed run (one line, exit code 2 or 1) is decided here; the
algorithms and the epoch loop live in :mod:`harness.algos` and :mod:`harness.runner`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

# Quiet by default, whatever starts the program (make, a shell, a cluster script): no W&B banners
# and run summaries (WANDB_SILENT=false brings them back), and no PyOpenGL start-up notice, which
# Gymnasium's MuJoCo renderer triggers at import when MUJOCO_GL=egl/osmesa though no run renders.
os.environ.setdefault("WANDB_SILENT", "true")
logging.getLogger("OpenGL").setLevel(logging.WARNING)
try:  # MuJoCo reads MUJOCO_GL at import (harness.envs imports it): a bad value is a one-line error, not a traceback
    import mujoco  # noqa: F401
except RuntimeError as exc:
    if "MUJOCO_GL" not in str(exc):
        raise
    print(
        f"error: {exc}; training renders nothing: unset it, or use egl or osmesa (no display) or glfw", file=sys.stderr
    )
    sys.exit(2)

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from omegaconf.errors import InterpolationKeyError  # noqa: E402

from harness import sweep  # noqa: E402
from harness.algos import get_algo  # noqa: E402
from harness.config import (  # noqa: E402
    ConfigError,
    _leaf_keys,
    apply_per_algo,
    check_experiment_keys,
    check_group_choices,
    check_known_keys,
    coerce_integral_floats,
    flatten,
    not_a_setting,
    resolved_config,
    uses_policy,
    validate,
)
from harness.help import choices as help_choices  # noqa: E402
from harness.help import group_files, help_text  # noqa: E402
from harness.runner import Budget, Checkpoints, RunDirError, Runner, check_run_dir, describe_run_dir, holds_run  # noqa: E402
from harness.sweep import record_failed_job  # noqa: E402
from harness.workers.engines import REMOVED as REMOVED_ENGINES  # noqa: E402

log = logging.getLogger("harness")


#: What a resume may change: how long and where it runs, not what it computes (the rollout engines
#: give the same rows, so ``workers.engine`` is one of these: :mod:`harness.workers.engines`).
RESUMABLE_KEYS = ("budget.", "workers.", "progress", "wandb.mode", "eval.video_every")


def resumable(key: str) -> bool:
    """Whether a resume may change ``key`` (a dotted config key)."""
    return key.startswith(RESUMABLE_KEYS)


def check_engine_resumable(run_dir: Path, saved: dict) -> None:
    """:raises ConfigError: if the run saved in ``run_dir`` (its ``config.yaml``, ``saved``) ran on a removed
    engine, whose trajectories no engine of today continues (envpool: other initial states)."""
    engine = (saved.get("workers") or {}).get("engine")
    if engine in REMOVED_ENGINES:
        raise ConfigError(
            f"{run_dir} ran on workers.engine={engine}, which was removed, and no engine of today steps its "
            "trajectories (other initial states): it cannot be continued; start a new run"
        )


#: Overrides that say how to resume, not what: not applied to the saved config.
RESUME_ONLY_KEYS = ("resume", "hydra.")


def resumed_config(run_dir: Path, overrides: list[str], defaults: dict | None = None) -> DictConfig:
    """The saved ``config.yaml`` of the run in ``run_dir`` with the command line's
    ``budget.*``, ``workers.*``, ``progress`` and ``wandb.mode`` overrides applied.

    A run made by an older version of the harness may lack keys the code has now. Each one takes
    the value the command line gives it, or else today's default from ``defaults`` (flattened
    keys, :func:`saved_defaults`), and a warning names it, so that the run continues with
    settings that are written down (into its ``config.yaml``).

    :raises ConfigError: for any other override that differs from the saved config.
    """
    saved = OmegaConf.create(yaml.safe_load((run_dir / "config.yaml").read_text()))
    check_engine_resumable(run_dir, OmegaConf.to_container(saved))
    missing = missing_keys(OmegaConf.to_container(saved), defaults or {})
    allowed, given = [], {}
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key.startswith(RESUME_ONLY_KEYS):
            continue
        if resumable(key):
            allowed.append(f"{key}={value}")
            continue
        if key in missing:  # a key this run's version did not have: the command line may set it
            given[key] = value
            continue
        name = f"{key}.name" if key in ("algo", "env", "policy") else key
        if str(OmegaConf.select(saved, name)) != value:
            raise ConfigError(
                f"resume continues the run saved in {run_dir}; {o} differs from its config.yaml "
                f"({name}: {OmegaConf.select(saved, name)}). Only budget.*, workers.*, "
                f"progress, wandb.mode and eval.video_every may change when resuming"
            )
    filled = [f"{k}={v}" for k, v in given.items()]
    taken = {k: v for k, v in missing.items() if k not in given}
    if missing:
        log.warning(
            "%s was made by an older version of the harness: its config.yaml lacks %s. The run continues with %s",
            run_dir,
            ", ".join(sorted(missing)),
            "; ".join(
                [
                    *(f"{k}={v!r} (today's default; pass {k}=VALUE to choose)" for k, v in sorted(taken.items())),
                    *(f"{k}={v} (from the command line)" for k, v in sorted(given.items())),
                ]
            ),
        )
    extra = OmegaConf.create(_unflatten(taken))
    return OmegaConf.merge(saved, extra, OmegaConf.from_dotlist(allowed + filled))


def missing_keys(saved: dict, defaults: dict) -> dict:
    """The flattened keys of ``defaults`` that the (nested) config ``saved`` lacks, with their default
    values; Hydra's own keys and lookup tables (``*_of``) apart."""
    have = flatten(saved)
    return {
        k: v
        for k, v in defaults.items()
        if k not in have
        and not k.startswith("hydra.")
        and not any(part.endswith("_of") for part in k.split(".")[:-1])
        and not any(k.startswith(f"{h}.") for h in have)
    }  # a value saved where a section is now


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def saved_defaults(run_dir: Path) -> dict:
    """Today's defaults for the run saved in ``run_dir``: the config composed from its saved group
    choices (algorithm, environment, policy), resolved and flattened; ``{}`` if that cannot be
    composed (a group that no longer exists: the run's own config is then all there is)."""
    from hydra import compose

    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    choices = [
        f"{group}={saved[group]['name']}"
        for group in ("algo", "env", "policy")
        if isinstance(saved.get(group), dict) and saved[group].get("name")
    ]
    try:
        cfg = compose("config", overrides=choices)
        data = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an old group name, a custom env: no defaults to offer
        return {}
    if not uses_policy(cfg):  # a run that reads no policy saved none (resolved_config)
        data.pop("policy", None)
    return flatten(data)


def settings_differ(saved: dict, data: dict, defaults: dict | None = None) -> list[str]:
    """The keys (``"algo.sigma: 0.02 -> 0.03"``) in which the config ``data`` differs from a run's
    saved ``config.yaml`` ``saved``, apart from what a resume may change (:data:`RESUMABLE_KEYS`),
    ``resume`` itself, ``algo.hparams_source`` (a note on where the values came from) and keys that
    are no setting of their own (:func:`harness.config.not_a_setting`: ``per_algo.*``, lookup tables).

    :param defaults: today's defaults (flattened): a key the saved run lacks (an older version) counts
        as its default there, so a key added since does not refuse a run that asks its default.
    """
    a, b = flatten(saved), flatten(data)
    a.update({k: v for k, v in (defaults or {}).items() if k not in a and k in b})
    ignored = ("resume", "algo.hparams_source")  # where the values came from is not a setting
    return [
        f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}"
        for k in sorted(set(a) | set(b))
        if not resumable(k) and not k.startswith(ignored) and not not_a_setting(k) and a.get(k) != b.get(k)
    ]


def auto_resume(run_dir: Path, data: dict) -> str:
    """What ``resume=auto`` does with a job whose run directory ``run_dir`` already holds a run:
    ``"skip"`` if that run completed and its budget is still spent under ``data``'s budget,
    ``"resume"`` otherwise (killed, interrupted, failed, or given a larger budget).

    :raises ConfigError: if the run there was made with other settings than ``data``'s (apart
        from budget, workers, progress and wandb.mode), naming them.
    """
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    check_engine_resumable(run_dir, saved)
    differ = settings_differ(saved, data, missing_keys(saved, saved_defaults(run_dir)))
    if differ:
        raise ConfigError(
            f"resume=auto: {run_dir} holds a run with other settings ({'; '.join(differ[:5])}"
            f"{'; ...' if len(differ) > 5 else ''}); move it away or choose another folder"
        )
    return "skip" if budget_spent(run_dir, data) else "resume"


def budget_spent(run_dir: Path, data: dict) -> bool:
    """Whether the run in ``run_dir`` completed and has nothing left to do under ``data``'s budget
    (a resume of it would change nothing: it is not started at all)."""
    import json

    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:  # a summary cut short: the run did not end cleanly, resume it
        return False
    if summary.get("status") != "completed":
        return False
    budget = Budget(**{k: data["budget"].get(k) for k in ("timesteps", "generations", "wall_time_s")})
    return (
        budget.exhausted(summary.get("epochs", 0), summary.get("timesteps", 0), summary.get("wall_time_s", 0.0))
        is not None
    )


def reference_config(experiment: bool = True) -> DictConfig:
    """The config composed from this job's group choices (and experiment, unless ``experiment``
    is false) without any other override: what the harness declares, against which the command
    line is checked."""
    from hydra import compose

    primary = {"algo", "env", "policy"}  # the groups of conf/config.yaml's defaults list
    choices = [
        f"{'' if group in primary else '+'}{group}={choice}"
        for group, choice in HydraConfig.get().runtime.choices.items()
        if choice is not None
        and not group.startswith("hydra")
        and "/" not in group
        and "@" not in group
        and (experiment or group != "experiment")
    ]
    return compose("config", overrides=choices)


def _all_algo_keys() -> set[str]:
    """The ``algo.*`` leaf keys of every algorithm config in ``conf/algo/``."""
    names = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "conf" / "algo").glob("*.yaml"))
    return {key for name in names for key in _algo_keys(name)}


def _algo_keys(name: str) -> set[str]:
    """The ``algo.*`` leaf keys of ``conf/algo/<name>.yaml`` (composed, parents included)."""
    from hydra import compose

    return {key for key in _leaf_keys(compose("config", overrides=[f"algo={name}"])) if key.startswith("algo.")}


def check_command_line(cfg: DictConfig, reference: DictConfig) -> None:
    """The checks that need Hydra's view of the command line: no key that nothing reads, whether
    on the command line (:func:`harness.config.check_known_keys`) or in an experiment file
    (:func:`harness.config.check_experiment_keys`), and no group choice the run ignores.
    :raises ConfigError:"""
    check_known_keys(cfg, reference)
    experiment = HydraConfig.get().runtime.choices.get("experiment")
    if experiment:
        check_experiment_keys(experiment, reference, reference_config(experiment=False), _all_algo_keys)
    check_group_choices(cfg, list(HydraConfig.get().overrides.task))


def _job_failed(code: int, reason: str, run_dir: Path | None) -> None:
    """End a job that could not run or failed: exit with ``code`` from a single run; in a sweep
    (``-m``) go on with the next job instead, as one bad seed or setting should not cancel the
    rest of a sweep, and record ``reason`` and ``run_dir`` (``None``: the job left no folder) in
    the sweep's ``failed_jobs.tsv`` (:mod:`harness.sweep`). Ctrl-C still ends a sweep."""
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        record_failed_job(hydra_cfg.sweep.dir, hydra_cfg.job.num, code, run_dir, reason)
        print(
            f"job {hydra_cfg.job.num} of the sweep failed (exit code {code} for a single run); the sweep goes on "
            "and exits with 1 at its end",
            file=sys.stderr,
        )
        return None
    sys.exit(code)


def _log_to_files(message: str, exc_info) -> None:
    """An ERROR record with its traceback for the job's log files only (``harness.log``): the
    console gets the one-line error instead."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, (), exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _move_log_files(old_dir: Path, new_dir: Path) -> None:
    """Point the job's log file handlers from ``old_dir`` to the same file name in ``new_dir``
    (appending), e.g. to a resumed run's own ``harness.log``."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == old_dir.resolve():
            handler.close()
            handler.baseFilename = str((new_dir / Path(handler.baseFilename).name).resolve())
            handler.mode = "a"


def _remove_unused_run_dir(run_dir: Path) -> None:
    """Remove the run directory Hydra made for a job that never started, if it holds nothing but
    Hydra's own files (``.hydra/`` and the job log): a rejected config leaves no run behind."""
    if not run_dir.is_dir():
        return
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log"}
    if {p.name for p in run_dir.iterdir()} <= hydra_files:
        # close the job log before its folder goes, and detach it: a launcher that logs after the
        # job (submitit: "Job completed successfully") would otherwise reopen it there and fail
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
                handler.close()
                root.removeHandler(handler)
        shutil.rmtree(run_dir, ignore_errors=True)
        # and the parents Hydra made for it under results/ (results/<algo>/<env>/) if that left them empty
        results = (Path.cwd() / "results").resolve()
        for parent in list(run_dir.resolve().parents)[:2]:
            if results not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


def _spawnable_start_method() -> None:
    """Make the processes this job spawns able to start under Hydra's joblib launcher.

    ``hydra/launcher=joblib`` runs each job in a loky worker process, whose default
    multiprocessing start method is ``"loky"``. A child started with ``spawn`` (the rollout
    workers, TRPO's environment processes) is sent that name and sets it before anything is
    imported, where loky's context is not registered: it dies with "cannot find context for
    'loky'" (Hydra issue #1320). Our pools ask for ``spawn`` by name and never use the default,
    so resetting it in the job's process changes nothing else.
    """
    import multiprocessing as mp

    if mp.get_start_method(allow_none=True) in ("loky", "loky_init_main"):
        mp.set_start_method("spawn", force=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One job (a run, or one job of a ``-m`` sweep) from Hydra's composed ``cfg``: check the config and the run
    directory (with ``resume=``: load the saved run instead), run it with :class:`~harness.runner.Runner` and print
    where it went and its final ``eval_return``.

    Returns that ``eval_return`` (the job's value for a Hydra sweeper), or ``None`` when there was nothing to run
    (``resume`` of a run that completed its budget, ``resume=auto`` of a completed run) or a job of a sweep failed
    (:func:`_job_failed` records it and the sweep goes on). A single run exits with 2 on a bad config or run
    directory, 1 when the run failed, and 130 (Ctrl-C) or 143 (SIGTERM) when interrupted; Ctrl-C ends a sweep too.
    """
    _spawnable_start_method()
    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir, resume = hydra_dir, cfg.get("resume") not in (None, False)
    auto = cfg.get("resume") == "auto"  # continue the run in the job's folder if there is one, else start it
    resume = resume and not auto
    try:
        if resume:
            given = [*HydraConfig.get().overrides.task, *HydraConfig.get().overrides.hydra]  # Hydra keeps hydra.* apart
            if cfg.resume is True and not any(o.lstrip("+").startswith("hydra.run.dir=") for o in given):
                raise ConfigError(
                    "resume=true continues the run in hydra.run.dir: add hydra.run.dir=DIR, or write resume=DIR"
                )
            run_dir = hydra_dir if cfg.resume is True else Path(str(cfg.resume))
            check_run_dir(run_dir, resume=True)
            cfg = resumed_config(run_dir, list(HydraConfig.get().overrides.task), saved_defaults(run_dir))
            validate(cfg)
            if budget_spent(run_dir, resolved_config(cfg)):  # nothing to do: touch nothing, not even the log
                _remove_unused_run_dir(hydra_dir)
                print(f"resume: {run_dir} completed its budget; nothing to do (a larger budget.* continues it)")
                return None
        else:
            reference = reference_config()
            cfg = apply_per_algo(coerce_integral_floats(cfg, reference), _algo_keys)
            validate(cfg)
            check_command_line(cfg, reference)
            if auto and holds_run(run_dir):
                if auto_resume(run_dir, resolved_config(cfg)) == "skip":
                    print(f"resume=auto: {run_dir} holds this run, completed; skipped")
                    return None
                resume = True
                log.info("resume=auto: continuing the run in %s", run_dir)
            check_run_dir(run_dir, resume=resume)
        data = resolved_config(cfg)  # every key, also those no check reads (a recipe's recipe.variant)
    except InterpolationKeyError as exc:  # e.g. a recipe's lookup table without this task: budget.timesteps_of.es.Ant
        exc = ConfigError(
            f"{str(exc).splitlines()[0]}: a lookup table (<key>_of) has no entry for this choice of "
            "env or algo; set the key itself on the command line, or add the entry"
        )
        print(f"error: invalid config: {exc}", file=sys.stderr)
        _remove_unused_run_dir(hydra_dir)
        return _job_failed(2, f"invalid config: {exc}", hydra_dir if hydra_dir.exists() else None)
    except (ConfigError, RunDirError) as exc:
        kind = "invalid config" if isinstance(exc, ConfigError) else "run directory"
        print(f"error: {kind}: {exc}", file=sys.stderr)
        _remove_unused_run_dir(hydra_dir)
        return _job_failed(2, f"{kind}: {exc}", hydra_dir if hydra_dir.exists() else None)
    if run_dir != hydra_dir:  # resume=DIR: the run's log is DIR's harness.log, Hydra's fresh folder goes
        _move_log_files(hydra_dir, run_dir)
        _remove_unused_run_dir(hydra_dir)
    files = (
        {}
        if resume
        else {"overrides.yaml": yaml.safe_dump(list(HydraConfig.get().overrides.task), default_flow_style=False)}
    )
    algo = get_algo(data["algo"]["name"])
    runner = Runner(data, run_dir, lambda c: algo.make_trainer(OmegaConf.create(c)), resume, files)
    try:
        summary = runner.run()
    except RunDirError as exc:  # another process holds the run directory: nothing was touched
        print(f"error: run directory: {exc}", file=sys.stderr)
        return _job_failed(2, f"run directory: {exc}", run_dir)
    except KeyboardInterrupt:
        print(f"interrupted; run directory: {run_dir} (continue it with resume={run_dir})", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the run failed: summary.json says so; the traceback goes to harness.log
        _log_to_files("the run failed", sys.exc_info())
        again = (
            f"continue from the last finished epoch with resume={run_dir}"
            if Checkpoints(run_dir).latest()
            else f"no epoch finished: resume={run_dir} starts it again from the beginning"
        )
        logged = not any(getattr(h, "failed", False) for h in logging.getLogger().handlers)
        where = f"traceback in {run_dir / 'harness.log'}" if logged else "harness.log could not be written either"
        print(
            f"error: {type(exc).__name__}: {exc}\nrun directory: {run_dir}: "
            f"{describe_run_dir(run_dir, runner.summary_written)}; {where}; {again}",
            file=sys.stderr,
        )
        return _job_failed(1, f"{type(exc).__name__}: {exc}", run_dir)
    print(f"run directory: {run_dir}")
    if summary["status"] == "interrupted":
        reason = summary["stop_reason"]
        print(
            f"interrupted ({reason}) after {summary['epochs']} epochs; continue it with resume={run_dir}",
            file=sys.stderr,
        )
        sys.exit(143 if reason == "SIGTERM" else 130)  # 128 + the signal; also ends a multirun sweep
    print(
        f"final eval_return: {summary['eval_return']:.2f} after {summary['timesteps']} timesteps, "
        f"{summary['epochs']} epochs, {summary['wall_time_s']:.1f} s"
    )
    return summary["eval_return"]


def output_problem(argv: list[str]) -> str | None:
    """Why the folders a command would write cannot be made, before Hydra tries (its error is a
    traceback): ``hydra.run.dir`` / ``hydra.sweep.dir`` as given (their fixed part before any
    ``${...}``), else ``results/``. ``None`` when the nearest existing folder is a writable folder."""
    keys = ("hydra.sweep.dir=",) if {"-m", "--multirun"} & set(argv) else ("hydra.run.dir=",)
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(keys)]
    target = Path((given[-1] if given else "results").split("${")[0] or ".")
    existing = target.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot make the run folder {target}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"cannot make the run folder {target}: {existing} is not writable (choose another with hydra.run.dir=DIR)"
        )
    try:  # permissions do not say everything (root, /proc, a read-only mount): make a folder there, and remove it
        os.rmdir(tempfile.mkdtemp(prefix=".harness-probe-", dir=existing))
    except OSError as exc:
        return (
            f"cannot make the run folder {target}: {existing} does not take new folders ({exc.strerror}); "
            "choose another with hydra.run.dir=DIR"
        )
    return None


def integral_seeds(argv: list[str]) -> list[str]:
    """``argv`` with ``seed=1e3`` written ``seed=1000``, also in a sweep list (``seed=0,1e3``).

    YAML reads ``1e3`` as the float 1000.0, and Hydra names the run folder from the override
    (``..._seed1000.0``) before the harness sees the config (where the seed becomes 1000): the folder
    would not be the one a later ``seed=1000`` looks for (``resume=auto``). Anything else (``1.5``,
    ``range(...)``, a word) is left for validation to name. The value is read exactly (``Decimal``), not
    through a float, which would run 9007199254740993 as 9007199254740992, another run's seed."""

    def integral(text: str) -> str:
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            return text
        if not value.is_finite() or value != value.to_integral_value():
            return text
        return str(int(value))

    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "seed" and "(" not in value:
            arg = f"{key}=" + ",".join(integral(v) for v in value.split(","))
        out.append(arg)
    return out


def _yaml_keys(path: Path, prefix: str = "") -> set[str]:
    """The leaf keys a config file sets (``defaults`` and ``hydra`` left out), with ``prefix``."""
    data = yaml.safe_load(path.read_text()) or {}
    return set(flatten({k: v for k, v in data.items() if k not in ("defaults", "hydra")}, prefix))


def unknown_override_problem(argv: list[str]) -> str | None:
    """A key no config declares, given without ``+`` (``algo.sigmaa=0.1``), makes Hydra print seven
    lines ending in advice to add it with ``+``: said here in one line, with the closest key that
    exists, before Hydra starts. The files of the chosen groups are read first (cheap); only a key
    they lack is looked up in the composed config (an experiment file, an interpolation). Keys under
    ``env.kwargs`` (``gymnasium.make``'s, free-form) are left to Hydra, whose ``+`` advice is right there."""
    import difflib

    from hydra import compose, initialize_config_dir

    overrides = [a for a in argv if "=" in a and not a.startswith(("-", "+", "~", "hydra."))]
    keys = [a.split("=", 1)[0] for a in overrides]
    keys = [k for k in keys if "." in k and not k.startswith(("env.kwargs.", "per_algo."))]
    if not keys:
        return None
    chosen = {group: value.split(",")[0] for group, value in help_choices(argv).items()}
    conf = Path(__file__).resolve().parent.parent / "conf"
    known = _yaml_keys(conf / "config.yaml")
    for group in ("algo", "env", "policy"):
        for path in group_files(group, chosen[group]):
            known |= _yaml_keys(path, f"{group}.")
    for path in (conf / "algo").glob(f"*_env/{chosen['env']}.yaml"):
        known |= _yaml_keys(path, "algo.")
    suspects = [k for k in keys if k not in known and not any(k.startswith(f"{leaf}.") for leaf in known)]
    if not suspects:
        return None
    group_overrides = [
        f"{'+' if g == 'experiment' else ''}{g}={v}" for g, v in chosen.items() if g != "experiment" or v
    ]
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("config", overrides=group_overrides)
    except Exception:  # noqa: BLE001 - a bad group choice: Hydra says it better, with the options
        return None
    known = _leaf_keys(cfg)
    for key in suspects:
        if key in known or OmegaConf.select(cfg, key, default="<absent>") != "<absent>":
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return (
            f"invalid config: unknown key {key}: no part of the harness reads it{hint} "
            "(see `python -m harness --cfg job` for every key)"
        )
    return None


def cross_algorithm_override_problem(argv: list[str]) -> str | None:
    """A sweep across algorithms (``-m algo=es,trpo``) with ``algo.<key>=V`` that only some of them
    have fails in Hydra, for the jobs of the others, with advice (``+``) that is wrong here. Said
    before Hydra starts, with the per-algorithm form that works (``+per_algo.es.<key>=V``)."""
    if not {"-m", "--multirun"} & set(argv):
        return None
    choices = [a.split("=", 1)[1] for a in argv if a.startswith("algo=")]
    names = [n.strip() for n in choices[-1].split(",")] if choices and "," in choices[-1] else []
    if len(names) < 2:
        return None
    keys_of = {}
    for name in names:
        merged: dict = {}
        for path in group_files("algo", name):
            merged.update(
                flatten({k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k != "defaults"})
            )
        keys_of[name] = set(merged)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not (sep and key.startswith("algo.")):
            continue
        leaf = key[len("algo.") :]
        having = [n for n in names if leaf in keys_of[n]]
        if having and len(having) < len(names):
            lacking = [n for n in names if n not in having]
            return (
                f"{key} is not a key of {', '.join(lacking)} (jobs of this sweep); set it for "
                f"{', '.join(having)} alone with " + " ".join(f"+per_algo.{n}.{leaf}={value}" for n in having)
            )
    return None


if __name__ == "__main__":
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print(help_text(sys.argv[1:]), end="")
        sys.exit(0)
    problem = (
        output_problem(sys.argv[1:])
        or cross_algorithm_override_problem(sys.argv[1:])
        or unknown_override_problem(sys.argv[1:])
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    sys.argv[1:] = integral_seeds(sys.argv[1:])
    main()
    if sweep.failed_jobs:  # a -m sweep in which some jobs failed (it went on with the others)
        sys.exit(1)
