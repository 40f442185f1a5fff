"""Rollout throughput against the number of workers: ``python -m harness.bench``.

Times a few ES generations per worker count (after start-up) and prints timesteps per
second and seconds per generation, with the speed-up over one worker. Speed lives
here, never in the tests.

Usage: ``python -m harness.bench [--env HalfCheetah] [--workers 1 2] [--generations 3]
[--population 40] [--out results/bench.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from harness.algos import get_algo
from harness.config import validate
from harness.workers import default_num_workers

CONF = Path(__file__).resolve().parents[1] / "conf"


def measure(env: str, n: int, generations: int, population: int, policy: str) -> dict:
    """Seconds and timesteps of ``generations`` ES generations on ``n`` process workers."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"env={env}", f"workers.n={n}", f"algo.population_size={population}",
                                           f"policy={policy}", "wandb.mode=disabled"])
    validate(cfg)
    trainer = get_algo("es").make_trainer(cfg)
    try:
        trainer.train_epoch(1)  # warm-up: imports, first env resets
        steps, start = 0, time.perf_counter()
        for g in range(generations):
            steps += trainer.train_epoch(g + 2).timesteps
        seconds = time.perf_counter() - start
    finally:
        trainer.close()
    return {"env": env, "workers": n, "generations": generations, "timesteps": steps, "seconds": seconds,
            "timesteps_per_s": steps / seconds, "seconds_per_generation": seconds / generations}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _even_int(text: str) -> int:
    value = _positive_int(text)
    if value < 2 or value % 2:
        raise argparse.ArgumentTypeError(f"must be an even integer >= 2 (mirrored pairs), got {text}")
    return value


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="HalfCheetah", help="config name under conf/env")
    p.add_argument("--workers", type=_positive_int, nargs="+", default=sorted({1, default_num_workers()}))
    p.add_argument("--generations", type=_positive_int, default=3, help="timed generations per worker count")
    p.add_argument("--population", type=_even_int, default=40, help="episodes per generation")
    p.add_argument("--policy", default="linear", choices=["linear", "mlp"])
    p.add_argument("--out", type=Path, default=Path("results/bench.json"))
    args = p.parse_args(argv)
    rows = [measure(args.env, n, args.generations, args.population, args.policy) for n in args.workers]
    base = rows[0]["timesteps_per_s"]
    print(f"{'workers':>7} {'timesteps/s':>12} {'s/generation':>13} {'speed-up':>9}")
    for r in rows:
        r["speedup"] = r["timesteps_per_s"] / base
        print(f"{r['workers']:>7} {r['timesteps_per_s']:>12.0f} {r['seconds_per_generation']:>13.2f} {r['speedup']:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
