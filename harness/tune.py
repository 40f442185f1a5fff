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
- **Resumable**: the study lives in ``<study dir>/optuna.db`` (SQLite), and each run's folder is
  named after its parameters and seed with ``resume=auto``, so a study stopped at any moment
  continues with the same command: completed runs are read back, killed runs continue from
  their last checkpoint, and a trial left ``RUNNING`` by a killed process is failed and its
  parameters asked again.
- **Output**: ``<study dir>/trials.csv`` (every trial: number, state, value, per-seed values,
  parameters) and ``best.yaml``, the best trial's values in the form of a
  ``conf/algo/es_env/<Env>.yaml`` file, with the study as their source.

Tuning seeds should not be the seeds of the experiments that report results (the recipes here
use 100 and up), or the reported numbers are selected on their own noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPACE_TYPES = ("float", "int", "categorical")


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
    def load(cls, path: str | Path) -> "Recipe":
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
        return cls(study=str(data["study"]), algo=str(data["algo"]), env=str(data["env"]), seeds=tuple(seeds),
                   space=dict(space), trials=int(data["trials"]), overrides=tuple(overrides), last_evals=last,
                   sampler_seed=int((data.get("sampler") or {}).get("seed", 0)),
                   startup_trials=int((data.get("pruner") or {}).get("startup_trials", 5)), source=path)


def _check_distribution(path: Path, key: str, spec) -> None:
    if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
        raise RecipeError(f"{path}: space.{key} needs type: one of {', '.join(SPACE_TYPES)}, got {spec!r}")
    if spec["type"] == "categorical":
        if not (isinstance(spec.get("choices"), list) and spec["choices"]):
            raise RecipeError(f"{path}: space.{key} (categorical) needs a non-empty list of choices")
    elif not (isinstance(spec.get("low"), (int, float)) and isinstance(spec.get("high"), (int, float))
              and spec["low"] < spec["high"]):
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


def run_name(params: dict, seed: int) -> str:
    """A run folder named after the parameters and the seed (stable across restarts)."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return f"p{digest}_seed{seed}"


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


def train(recipe: Recipe, params: dict, seed: int, runs_dir: Path, extra: list[str]) -> Path:
    """Train (or finish, or read back) the run of ``params`` and ``seed``; its folder."""
    run_dir = runs_dir / run_name(params, seed)
    cmd = [sys.executable, "-m", "harness", f"algo={recipe.algo}", f"env={recipe.env}", f"seed={seed}",
           *recipe.overrides, *(_override(k, v) for k, v in params.items()), *extra,
           "resume=auto", "progress=false", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (runs_dir / f"{run_dir.name}.log").write_text(" ".join(cmd) + "\n" + proc.stdout)
    if proc.returncode != 0 and (proc.returncode == 2 or not (run_dir / "summary.json").exists()):
        # refused before it started (exit 2), or Hydra could not compose it: the same for every trial
        raise RunRefused(f"{' '.join(cmd)} was refused: {' | '.join(proc.stdout.strip().splitlines()[-3:])}; "
                         "the study stops here (fix the recipe, then run the same command to continue)")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stdout.strip().splitlines()[-1:]}")
    return run_dir


def make_study(recipe: Recipe, study_dir: Path):
    import optuna

    study_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(study_dir / 'optuna.db').resolve()}"
    study = optuna.create_study(
        study_name=recipe.study, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=recipe.sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=recipe.startup_trials, n_warmup_steps=0))
    # a trial left RUNNING by a killed process: fail it and ask its parameters again (its runs
    # continue from their checkpoints, as their folders are named after the parameters)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    return study


def objective_fn(recipe: Recipe, runs_dir: Path, extra: list[str]):
    import optuna

    def objective(trial) -> float:
        params = suggest(trial, recipe.space)
        trial.set_user_attr("extra_overrides", list(extra))  # best.yaml says what the runs were given
        values = []
        for i, seed in enumerate(recipe.seeds):
            values.append(run_value(train(recipe, params, seed, runs_dir, extra), recipe.last_evals))
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
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "seed_values": json.dumps(t.user_attrs.get("seed_values", [])), **t.params})
    import pandas as pd

    pd.DataFrame(rows).to_csv(study_dir / "trials.csv", index=False)
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if not done:
        return None
    best = max(done, key=lambda t: t.value)
    source = (f"Optuna study {recipe.study} ({recipe.source}): best of {len(done)} completed trials "
              f"(trial {best.number}), objective {best.value:.1f} = mean over seeds {list(recipe.seeds)} of the "
              f"mean eval_return of the last {recipe.last_evals} evaluations at "
              f"{budget_text([*recipe.overrides, *best.user_attrs.get('extra_overrides', [])])}")
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
    p = argparse.ArgumentParser(
        prog="python -m harness.tune",
        description="Tune an algorithm's hyperparameters on one environment with Optuna over real harness runs "
                    "(TPE sampler, median pruning after each seed, SQLite storage: run the same command again to "
                    "continue a stopped study).",
        epilog="example: python -m harness.tune tuning/es_Hopper.yaml --trials 30\n"
               "         python -m harness.tune tuning/es_Hopper.yaml --show   (the trials so far, no training)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="a tuning recipe, e.g. tuning/es_Hopper.yaml")
    p.add_argument("--out", default="results/tuning", help="the study goes into OUT/<study> (default: %(default)s)")
    p.add_argument("--trials", type=int, default=None, help="trials to reach in all (default: the recipe's)")
    p.add_argument("--show", action="store_true", help="write trials.csv and best.yaml and print them; no training")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, e.g. workers.n=2")
    return p.parse_intermixed_args(argv)  # overrides may come before or after the options


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        recipe = Recipe.load(args.recipe)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_dir = Path(args.out) / recipe.study
    study = make_study(recipe, study_dir)
    target = args.trials if args.trials is not None else recipe.trials
    runs_dir = study_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.show:
        objective = objective_fn(recipe, runs_dir, list(args.overrides))
        while len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]) < target:
            try:
                study.optimize(objective, n_trials=1, catch=(RuntimeError,))
            except RunRefused as exc:
                write_outputs(recipe, study, study_dir)
                print(f"error: {exc}", file=sys.stderr)
                return 2
            t = max((t for t in study.get_trials(deepcopy=False) if t.state.is_finished()),
                    key=lambda t: t.datetime_complete)  # the one just run (an enqueued trial may follow it)
            print(f"trial {t.number}: {t.state.name} value={t.value} params={t.params} "
                  f"seeds={t.user_attrs.get('seed_values')}", flush=True)
            write_outputs(recipe, study, study_dir)
    best = write_outputs(recipe, study, study_dir)
    print(f"study {study_dir}: {len(study.trials)} trials (trials.csv)")
    if best is None:
        print("no completed trial yet")
    else:
        print(f"best ({best}):\n{best.read_text()}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
