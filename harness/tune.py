"""Hyperparameter search with Optuna over real harness runs: ``python -m harness.tune tuning/<recipe>.yaml``.

A tuning recipe (``tuning/*.yaml``, see ``tuning/README.md``) names an algorithm and an
environment, the overrides every run shares (budget, evaluation), the tuning seeds, the search
space and the number of trials. Each trial samples a point of the space and trains one run per
tuning seed (``python -m harness ...`` in a child process, so a trial is exactly what a user's
run would be); its value is the **objective**: the mean over the trial's seeds of each run's
mean ``eval_return`` over its last ``objective.last_evals`` evaluations (the last few, not the
last one alone: one evaluation of a few episodes is noisy). Optuna maximises it.

- **Sampler**: TPE (``optuna.samplers.TPESampler``), seeded from the recipe, so the same recipe
  proposes the same first trials.
- **Pruning**: after each seed the running mean is reported; ``optuna.pruners.MedianPruner``
  stops a trial whose first seeds fall below the median of earlier trials at the same point
  (rl-baselines3-zoo prunes on intermediate evaluations the same way).
- **Resumable, and shared by several processes**: the study lives in ``<study dir>/optuna.db``
  (SQLite), and each run's folder is named after its trial and seed (``trial<N>_seed<S>``) with
  ``resume=auto``, so a study stopped at any moment continues with the same command, and the same
  command in another shell (or on another machine sharing the folder) works on the same study
  beside it, as Optuna's distributed optimization does (rl-baselines3-zoo's ``--storage``).
  A process beats a heartbeat for the trial it runs (Optuna's ``heartbeat_interval``, every
  ``--heartbeat`` seconds); a ``RUNNING`` trial whose heartbeat is older than ``GRACE`` beats was
  left by a killed process: any process of the study fails it and queues its parameters again
  (``RetryHeartbeatStaleTrialCallback``), and the retry trains in the killed trial's run folders, so its runs
  continue from their last checkpoints. A running trial of another process is never touched.
- **Budget**: ``trials`` counts the trials that are done (completed or pruned): a failed or killed
  trial does not use it up. A process stops when the study has that many, and meanwhile waits for the
  trials other processes run rather than start more than are needed.
- **Output**: ``<study dir>/trials.csv`` (every trial: number, state, value, per-seed values,
  parameters) and ``best.yaml``, the best trial's values in the form of a
  ``conf/algo/es_env/<Env>.yaml`` file, with the study as their source.

Tuning seeds should not be the seeds of the experiments that report results (the recipes here
use 100 and up), or the reported numbers are selected on their own noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPACE_TYPES = ("float", "int", "categorical")
#: a running trial whose heartbeat is older than this many heartbeat intervals was left by a killed process
GRACE = 3


class RecipeError(ValueError):
    """A tuning recipe that cannot be run (missing or malformed key), with the key named."""


class RunRefused(Exception):
    """The harness refused a trial's run before it started (exit code 2: a config error; or Hydra
    could not compose it, e.g. a key of the space that no longer exists): every trial would fail
    alike, so the study stops instead of going on."""


@dataclass(frozen=True)
class Recipe:
    """A tuning recipe (``tuning/*.yaml``).

    :ivar study: the study's name (its folder under ``--out``, and the Optuna study name).
    :ivar algo, env: the harness's ``algo=`` and ``env=`` choices.
    :ivar overrides: Hydra overrides every run shares (``budget.timesteps=2000000``, ...).
    :ivar seeds: the tuning seeds; each trial trains one run per seed.
    :ivar space: ``{override key: {type: float|int|categorical, low, high, log, choices}}``.
    :ivar trials: trials to reach (counting those already in the study).
    :ivar last_evals: the objective's number of last evaluations averaged per run.
    :ivar sampler_seed: the TPE sampler's seed.
    :ivar startup_trials: trials before the pruner may prune.
    """

    study: str
    algo: str
    env: str
    seeds: tuple[int, ...]
    space: dict
    trials: int
    overrides: tuple[str, ...] = ()
    last_evals: int = 3
    sampler_seed: int = 0
    startup_trials: int = 5
    source: Path | None = field(default=None, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """:raises RecipeError: naming the key that is missing or malformed."""
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"tuning recipe {path} does not exist (the recipes are in tuning/)")
        data = yaml.safe_load(path.read_text()) or {}
        known = {"study", "algo", "env", "seeds", "space", "trials", "overrides", "objective", "sampler", "pruner"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for key in ("study", "algo", "env", "seeds", "space", "trials"):
            if key not in data:
                raise RecipeError(f"{path}: missing key {key!r}")
        seeds = data["seeds"]
        if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
            raise RecipeError(f"{path}: seeds must be a non-empty list of integers >= 0, got {seeds!r}")
        if not (isinstance(data["trials"], int) and data["trials"] >= 1):
            raise RecipeError(f"{path}: trials must be an integer >= 1, got {data['trials']!r}")
        space = data["space"]
        if not (isinstance(space, dict) and space):
            raise RecipeError(f"{path}: space must map override keys to distributions")
        for key, spec in space.items():
            _check_distribution(path, key, spec)
        objective = data.get("objective") or {}
        last = objective.get("last_evals", 3)
        if not (isinstance(last, int) and last >= 1):
            raise RecipeError(f"{path}: objective.last_evals must be an integer >= 1, got {last!r}")
        overrides = data.get("overrides") or []
        if not all(isinstance(o, str) and "=" in o for o in overrides):
            raise RecipeError(f"{path}: overrides must be a list of key=value strings, got {overrides!r}")
        return cls(
            study=str(data["study"]),
            algo=str(data["algo"]),
            env=str(data["env"]),
            seeds=tuple(seeds),
            space=dict(space),
            trials=int(data["trials"]),
            overrides=tuple(overrides),
            last_evals=last,
            sampler_seed=int((data.get("sampler") or {}).get("seed", 0)),
            startup_trials=int((data.get("pruner") or {}).get("startup_trials", 5)),
            source=path,
        )


def _check_distribution(path: Path, key: str, spec) -> None:
    if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
        raise RecipeError(f"{path}: space.{key} needs type: one of {', '.join(SPACE_TYPES)}, got {spec!r}")
    if spec["type"] == "categorical":
        if not (isinstance(spec.get("choices"), list) and spec["choices"]):
            raise RecipeError(f"{path}: space.{key} (categorical) needs a non-empty list of choices")
    elif not (
        isinstance(spec.get("low"), (int, float))
        and isinstance(spec.get("high"), (int, float))
        and spec["low"] < spec["high"]
    ):
        raise RecipeError(f"{path}: space.{key} ({spec['type']}) needs numbers low < high, got {spec!r}")


def suggest(trial, space: dict) -> dict:
    """One point of ``space`` from an Optuna ``trial``: ``{override key: value}``."""
    params = {}
    for key, spec in space.items():
        if spec["type"] == "float":
            params[key] = trial.suggest_float(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))
        elif spec["type"] == "int":
            params[key] = trial.suggest_int(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))
        else:
            params[key] = trial.suggest_categorical(key, spec["choices"])
    return params


def _override(key: str, value) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    return f"{key}={value}"


def trial_origin(trial) -> int:
    """The number of the trial whose runs ``trial`` (a ``FrozenTrial``) trains: its own, or for a retry of a killed trial
    (``RetryHeartbeatStaleTrialCallback``) the first trial of those parameters, whose runs it continues."""
    origin = retry_of(trial)
    return trial.number if origin is None else origin


def retry_of(trial) -> int | None:
    """The first trial of the killed ones ``trial`` retries, or ``None`` if it retries none."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def run_name(origin: int, seed: int) -> str:
    """The run folder of trial ``origin`` (see ``trial_origin``) and ``seed``; no other trial's."""
    return f"trial{origin}_seed{seed}"


def run_value(run_dir: Path, last_evals: int) -> float:
    """The mean ``eval_return`` of the last ``last_evals`` evaluations of the run in ``run_dir``.

    :raises RuntimeError: if the run did not complete or has no evaluation.
    """
    import pandas as pd

    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    if summary.get("status") != "completed":
        raise RuntimeError(f"run {run_dir} did not complete (status {summary.get('status')!r}: {summary.get('error')})")
    evals = pd.read_csv(run_dir / "metrics.csv")["eval_return"].dropna().to_numpy()
    if evals.size == 0:
        raise RuntimeError(f"run {run_dir} has no evaluation")
    return float(evals[-last_evals:].mean())


def train(recipe: Recipe, params: dict, seed: int, run_dir: Path, extra: list[str]) -> Path:
    """Train (or finish, or read back) the run of ``params`` and ``seed`` in ``run_dir``; its folder."""
    runs_dir = run_dir.parent
    cmd = [
        sys.executable,
        "-m",
        "harness",
        f"algo={recipe.algo}",
        f"env={recipe.env}",
        f"seed={seed}",
        *recipe.overrides,
        *(_override(k, v) for k, v in params.items()),
        *extra,
        "resume=auto",
        "progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    (runs_dir / f"{run_dir.name}.log").write_text(" ".join(cmd) + "\n" + proc.stdout)
    if proc.returncode != 0 and (proc.returncode == 2 or not (run_dir / "summary.json").exists()):
        # refused before it started (exit 2), or Hydra could not compose it: the same for every trial
        raise RunRefused(
            f"{' '.join(cmd)} was refused: {' | '.join(proc.stdout.strip().splitlines()[-3:])}; "
            "the study stops here (fix the recipe, then run the same command to continue)"
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stdout.strip().splitlines()[-1:]}")
    return run_dir


def make_study(recipe: Recipe, study_dir: Path, heartbeat_s: int):
    """The study (created if new) in ``study_dir/optuna.db``, with a heartbeat every ``heartbeat_s``
    seconds for the trial this process runs; a trial without one for ``GRACE * heartbeat_s`` seconds is
    failed and queued again (by whichever process of the study looks first)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    study_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(
            f"sqlite:///{(study_dir / 'optuna.db').resolve()}",
            heartbeat_interval=heartbeat_s,
            grace_period=GRACE * heartbeat_s,
            # processes of one study write in turn: wait up to a minute for SQLite's lock
            # (its default, 5 s, could fail a heartbeat, whose thread then stops for good)
            engine_kwargs={"connect_args": {"timeout": 60}},
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=None),
        )
    return optuna.create_study(
        study_name=recipe.study,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=sampler(recipe, 0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=recipe.startup_trials, n_warmup_steps=0),
    )


def sampler(recipe: Recipe, n_trials: int):
    """TPE seeded with the recipe's seed plus the number of trials the study holds: the same recipe
    proposes the same trials, while a restarted study, or a second process on it, does not propose
    its first points again (TPE draws its startup trials from its seed alone)."""
    import optuna

    return optuna.samplers.TPESampler(seed=recipe.sampler_seed + n_trials)


def load_study_read_only(recipe: Recipe, study_dir: Path):
    """The study in ``study_dir`` opened read-only (SQLite ``mode=ro``: nothing can write to it), or
    ``None`` if there is none yet."""
    import optuna
    from optuna.storages import RDBStorage

    db = study_dir / "optuna.db"
    if not db.is_file():
        return None
    storage = RDBStorage(
        f"sqlite:///file:{db.resolve()}?mode=ro&uri=true", skip_table_creation=True, skip_compatibility_check=True
    )
    try:
        return optuna.load_study(study_name=recipe.study, storage=storage)
    except KeyError:
        return None


def objective_fn(recipe: Recipe, runs_dir: Path, extra: list[str]):
    """The Optuna objective of ``recipe``: a trial suggests a point of ``recipe.space``, then trains one run per
    seed of ``recipe.seeds`` in turn, into ``runs_dir / trial<origin>_seed<seed>`` (:func:`run_name`, the folder of
    the trial it retries, if any), with ``extra`` overrides. Its value is the mean over seeds of :func:`run_value`;
    the running mean is reported after each seed, and the trial is pruned (``optuna.TrialPruned``) when Optuna
    says so and seeds remain. The user attributes ``extra_overrides``, ``runs`` and ``seed_values`` are kept.

    The objective lets through ``RuntimeError`` from :func:`train` or :func:`run_value` (a run failed, did not
    complete or has no evaluation), which fails the trial in :func:`optimize`, and :class:`RunRefused` (a run
    refused before it started), which stops the study.
    """
    import optuna

    def objective(trial) -> float:
        params = suggest(trial, recipe.space)
        trial.set_user_attr("extra_overrides", list(extra))  # best.yaml says what the runs were given
        origin = trial_origin(trial.study.get_trials(deepcopy=False)[trial.number])  # as stored, retry marks too
        folders = [run_name(origin, seed) for seed in recipe.seeds]
        trial.set_user_attr("runs", folders)
        values = []
        for i, (seed, folder) in enumerate(zip(recipe.seeds, folders)):
            values.append(run_value(train(recipe, params, seed, runs_dir / folder, extra), recipe.last_evals))
            trial.set_user_attr("seed_values", values)
            mean = float(sum(values) / len(values))
            trial.report(mean, i)
            if i + 1 < len(recipe.seeds) and trial.should_prune():
                raise optuna.TrialPruned(f"mean {mean:.1f} after {i + 1} seed(s) below the median")
        return float(sum(values) / len(values))

    return objective


def budget_text(overrides: list[str]) -> str:
    """The budget ``overrides`` give a run (the last of each key wins), e.g. ``"budget.timesteps=2000000"``
    or ``"budget.timesteps=0 budget.generations=2"``; the keys they leave out are the config's."""
    budget: dict[str, str] = {}
    for o in overrides:
        key, sep, value = o.lstrip("+").partition("=")
        if sep and key.startswith("budget."):
            budget[key] = value
    return " ".join(f"{k}={v}" for k, v in budget.items()) or "the config's budget"


def write_outputs(recipe: Recipe, study, study_dir: Path) -> Path | None:
    """``trials.csv`` and, once a trial completed, ``best.yaml``; the latter's path or ``None``."""
    import optuna

    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "seed_values": json.dumps(t.user_attrs.get("seed_values", [])),
                "runs": json.dumps(t.user_attrs.get("runs", [])),
                "retry_of": retry_of(t),
                **t.params,
            }
        )
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in frame.columns:  # 4, not 4.0, where another trial has no value (retry_of, parameters)
        values = [row[column] for row in rows if row.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = pd.array([row.get(column) for row in rows], dtype="Int64")
    frame.to_csv(study_dir / "trials.csv", index=False)
    done = list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if not done:
        return None
    best = max(done, key=lambda t: t.value)
    source = (
        f"Optuna study {recipe.study} ({recipe.source}): best of {len(done)} completed trials "
        f"(trial {best.number}), objective {best.value:.1f} = mean over seeds {list(recipe.seeds)} of the "
        f"mean eval_return of the last {recipe.last_evals} evaluations at "
        f"{budget_text([*recipe.overrides, *best.user_attrs.get('extra_overrides', [])])}"
    )
    lines = [f"# {source}", f"hparams_source: {json.dumps(source)}"]
    env_lines = []
    for key, value in best.params.items():
        group, _, name = key.partition(".")
        text = json.dumps(value) if not isinstance(value, float) else f"{value:.4g}"
        (lines if group == "algo" else env_lines).append(f"{name}: {text}" if group == "algo" else f"{key}={text}")
    if env_lines:
        lines.append(f"# not algo keys (set them in the recipe or conf/env): {' '.join(env_lines)}")
    path = study_dir / "best.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, options and Hydra overrides in any order (``parse_intermixed_args``).

    :raises SystemExit: with status 2 (argparse) for a bad argument.
    """
    p = argparse.ArgumentParser(
        prog="python -m harness.tune",
        description="Tune an algorithm's hyperparameters on one environment with Optuna over real harness runs "
        "(TPE sampler, median pruning after each seed, SQLite storage: run the same command again to "
        "continue a stopped study).",
        epilog="example: python -m harness.tune tuning/es_Hopper.yaml --trials 30\n"
        "         python -m harness.tune tuning/es_Hopper.yaml --show   (the trials so far, no training)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", help="a tuning recipe, e.g. tuning/es_Hopper.yaml")
    p.add_argument("--out", default="results/tuning", help="the study goes into OUT/<study> (default: %(default)s)")
    p.add_argument("--trials", type=int, default=None, help="trials to reach in all (default: the recipe's)")
    p.add_argument(
        "--show",
        action="store_true",
        help="write trials.csv and best.yaml and print them; no training, the study is only read",
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        metavar="S",
        help=f"seconds between the heartbeats of a running trial; one without a heartbeat for {GRACE} x S "
        "seconds was killed, and is failed and run again (default: %(default)s)",
    )
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, e.g. workers.n=2")
    return p.parse_intermixed_args(argv)  # overrides may come before or after the options


def main(argv=None) -> int:
    """``python -m harness.tune RECIPE``: with ``--show``, read the study as it is (no training); otherwise run
    trials until ``--trials`` (default: the recipe's) are done (:func:`optimize`). Then write ``trials.csv`` and
    ``best.yaml`` and print the best. Returns 0; 2 for a bad recipe, ``--heartbeat`` below 1 or a run refused;
    1 when this process's trials keep failing."""
    args = parse_args(argv)
    try:
        recipe = Recipe.load(args.recipe)
        if args.heartbeat < 1:
            raise RecipeError(f"--heartbeat must be at least 1 second, got {args.heartbeat}")
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_dir = Path(args.out) / recipe.study
    target = args.trials if args.trials is not None else recipe.trials
    if args.show:
        study = load_study_read_only(recipe, study_dir)
        if study is None:
            print(f"no study {recipe.study} in {study_dir} yet")
            return 0
    else:
        study = make_study(recipe, study_dir, args.heartbeat)
        code = optimize(recipe, study, study_dir, target, list(args.overrides), args.heartbeat)
        if code:
            return code
    best = write_outputs(recipe, study, study_dir)
    print(
        f"study {study_dir}: {len(done_trials(study))} done (completed or pruned) of {target} trials to reach, "
        f"{len(study.trials)} in all (trials.csv)"
    )
    if best is None:
        print("no completed trial yet")
    else:
        print(f"best ({best}):\n{best.read_text()}", end="")
    return 0


def done_trials(study) -> list:
    """The trials that count towards ``trials``: completed or pruned (not failed, killed or running)."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def optimize(recipe: Recipe, study, study_dir: Path, target: int, extra: list[str], heartbeat_s: int) -> int:
    """Run trials until the study holds ``target`` done ones, beside any other process on it; 0, or
    2 when a run was refused, 1 when this process's trials keep failing."""
    import optuna
    from optuna.trial import TrialState

    runs_dir = study_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    objective = objective_fn(recipe, runs_dir, extra)
    ran = []  # the trials this process ran, in order

    def report(study, trial) -> None:
        ran.append(trial)
        print(
            f"trial {trial.number}: {trial.state.name} value={trial.value} params={trial.params} "
            f"seeds={trial.user_attrs.get('seed_values')}",
            flush=True,
        )
        write_outputs(recipe, study, study_dir)

    waiting_said = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # killed trials: failed and queued again
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        done = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
        if done >= target:
            return 0
        if done + states.count(TrialState.RUNNING) >= target and TrialState.WAITING not in states:
            # the rest runs in other processes (or in a killed one, failed once its heartbeat is old)
            if not waiting_said:
                running = [t.number for t in trials if t.state == TrialState.RUNNING]
                print(
                    f"{done} of {target} trials done; waiting for trial(s) {running}, running in another process "
                    f"(a killed one is run again here after {GRACE * heartbeat_s} s without a heartbeat)",
                    flush=True,
                )
                waiting_said = True
            time.sleep(heartbeat_s)
            continue
        waiting_said = False
        if sum(t.state == TrialState.FAIL for t in ran) >= target:
            last = ran[-1]
            print(
                f"error: {target} trials failed in this process, the last ({last.number}) with "
                f"{last.system_attrs.get('fail_reason', 'no reason given')}; see {runs_dir}/*.log",
                file=sys.stderr,
            )
            return 1
        study.sampler = sampler(recipe, len(trials))
        try:
            study.optimize(objective, n_trials=1, catch=(RuntimeError,), callbacks=[report])
        except RunRefused as exc:
            write_outputs(recipe, study, study_dir)
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
