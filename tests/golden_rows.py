"""Golden rows: short real runs of every algorithm, whose ``metrics.csv`` and ``behaviours.csv``
rows (wall-clock columns left out) were recorded before a refactor, so that a refactor can show it
changed no number (``tests/test_golden_rows.py`` replays them).

    python -m tests.golden_rows            # check: replay every case against tests/data/golden_rows.json
    python -m tests.golden_rows --record   # (re)record them: only for a change meant to alter numbers
    python -m tests.golden_rows --record-new   # record only the cases the file lacks (a new algorithm)

The runs are in-process (``workers.backend=serial``, identical rows to ``process`` and ``ray``,
tests/test_ray_backend.py) with short episodes, so the whole set takes about a minute. Identical
rows are promised on one machine: MuJoCo and BLAS may round differently on another CPU, where
``--record`` makes a new baseline from a commit known to be right.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.tracking import COST_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden_rows.json"
#: ``{algo: {"cpu_model", "cpus", ...}}``: the CPU an algorithm's rows were recorded on, where its rows
#: depend on it (TRPO's float32 PyTorch kernels; tests/test_golden_rows.py).
HOST = ROOT / "tests" / "data" / "golden_rows_host.json"

# eval.at_start=false: the rows were recorded before the step-0 evaluation existed; that it changes no later
# row is tests/test_algorithms.py's to show
COMMON = (
    "wandb.mode=disabled",
    "progress=false",
    "workers.backend=serial",
    "eval.episodes=2",
    "eval.every_timesteps=0",
    "eval.at_start=false",
)
ES_FAMILY = ("algo.noise_table_size=1000000", "algo.population_size=6", "budget.generations=3", "budget.timesteps=0")
NOVELTY = ("algo.meta_population_size=2", "algo.bc_episodes=2", "algo.k=3")
SHORT = {
    "HalfCheetah": ("env.max_episode_steps=40",),
    "Hopper": ("env.max_episode_steps=40",),
    "deceptive_point_maze": ("env.max_episode_steps=40",),
    "toy_2d": ("algo.sigma=0.5",),
}
ALGOS = {
    "es": ES_FAMILY,
    "vo": (*ES_FAMILY, "algo.sigma_mode=per_param"),
    "ns_es": (*ES_FAMILY, *NOVELTY),
    "nsr_es": (*ES_FAMILY, *NOVELTY),
    "nsra_es": (*ES_FAMILY, *NOVELTY, "algo.stagnation_epochs=1"),
    "cma_es": ("algo.noise_table_size=1000000", "algo.population_size=6", "budget.generations=3", "budget.timesteps=0"),
    "guided_es": ES_FAMILY,
    "netes": (*ES_FAMILY, "algo.population_size=8"),
    "trpo": (
        "algo.n_envs=2",
        "algo.n_steps=32",
        "algo.batch_size=16",
        "algo.n_critic_updates=2",
        "budget.generations=2",
        "budget.timesteps=0",
    ),
}
SEEDS = (0, 1)


def cases() -> dict[str, tuple[str, ...]]:
    """``{name: overrides}``: every algorithm on HalfCheetah, Hopper and the point maze, ES and VO
    on toy_2d too (a landscape has no simulator for TRPO, and declares no ``env.bc`` for the
    novelty family), seeds 0 and 1."""
    out = {}
    for algo, extra in ALGOS.items():
        for env, short in SHORT.items():
            if env == "toy_2d" and algo not in ("es", "vo"):
                continue
            for seed in SEEDS:
                out[f"{algo}_{env}_seed{seed}"] = (
                    f"algo={algo}",
                    f"env={env}",
                    f"seed={seed}",
                    *COMMON,
                    *extra,
                    *short,
                )
    return out


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [
            {k: v for k, v in row.items() if k not in COST_COLUMNS} for row in csv.DictReader(f)
        ]  # not what it cost


def run_case(overrides: tuple[str, ...], run_dir: Path) -> dict:
    """One run in this process; ``{"metrics": rows, "behaviours": rows}`` without wall-clock columns.

    :raises RuntimeError: if the run does not complete.
    """
    from harness.algos import get_algo
    from harness.config import resolved_config, validate
    from harness.runner import Runner

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    validate(cfg)
    data = resolved_config(cfg)
    algo = get_algo(data["algo"]["name"])
    summary = Runner(data, run_dir, lambda c: algo.make_trainer(OmegaConf.create(c))).run()
    if summary["status"] != "completed":
        raise RuntimeError(f"{' '.join(overrides)}: {summary['status']}")
    return {"metrics": _rows(run_dir / "metrics.csv"), "behaviours": _rows(run_dir / "behaviours.csv")}


def replay(names=None) -> dict[str, dict]:
    """The rows of the cases ``names`` (default all), run now."""
    todo = cases()
    with tempfile.TemporaryDirectory() as tmp:
        return {name: run_case(todo[name], Path(tmp) / name) for name in (names or todo)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.golden_rows", description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true", help=f"write the rows into {GOLDEN.relative_to(ROOT)}")
    p.add_argument(
        "--record-new", action="store_true", help="record only the cases the file lacks, keeping every recorded row"
    )
    args = p.parse_args(argv)
    if args.record_new:
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        new = [name for name in cases() if name not in golden]
        golden.update(replay(new) if new else {})
        GOLDEN.write_text(json.dumps(golden, indent=0, sort_keys=True) + "\n")
        print(f"recorded {len(new)} new runs into {GOLDEN}: {', '.join(new) or 'none'}")
        return 0
    rows = replay()
    if args.record:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(rows, indent=0, sort_keys=True) + "\n")
        from harness.machine import machine_identity

        here = machine_identity()
        HOST.write_text(
            json.dumps(
                {"trpo": {"cpu_model": here["cpu_model"], "cpus": here["cpus"], "torch": here["packages"]["torch"]}},
                indent=1,
            )
            + "\n"
        )
        print(f"recorded {len(rows)} runs into {GOLDEN}")
        return 0
    golden = json.loads(GOLDEN.read_text())
    differ = sorted(name for name in golden if rows.get(name) != golden[name])
    print(
        f"{len(golden) - len(differ)} of {len(golden)} runs give the recorded rows"
        + (f"; these differ: {', '.join(differ)}" if differ else "")
    )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
