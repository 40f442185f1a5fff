"""The command ``python -m harness.bench``: its arguments, and the runs it makes and reports."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

import harness.bench
from harness.bench.probe import (
    CONF,
    RunSpec,
    backend_unavailable,
    compose_config,
    engine_unavailable,
    run_child,
    spawn_child,
)
from harness.bench.report import backend_label, derive, loadavg, machine_info, markdown
from harness.workers import default_num_workers
from harness.workers.engines import ENGINES, engine_problem


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


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``argv``: default ``sys.argv[1:]``). ``--quick`` sets a smoke run's value of every
    option not given explicitly, and puts short episodes and a small noise table before ``--override`` s.

    :raises SystemExit: with status 2 (argparse) for a bad argument, ``--warmup-epochs`` below 0 included.
    """
    p = argparse.ArgumentParser(
        prog="python -m harness.bench",
        description=harness.bench.__doc__.split("\n\n")[0],
        epilog="Writes OUT_DIR/bench.json and OUT_DIR/bench.md. See the module docstring.",
        allow_abbrev=False,  # --quick tells given flags by their full names: "--pop 16" would be lost to it
    )
    envs = sorted(f.stem for f in (CONF / "env").glob("*.yaml"))
    p.add_argument(
        "--envs",
        nargs="+",
        default=["HalfCheetah", "Humanoid"],
        choices=envs,
        metavar="ENV",
        help=f"config names under conf/env: {', '.join(envs)}",
    )
    p.add_argument("--policies", nargs="+", default=["linear", "mlp"], choices=["linear", "mlp"])
    p.add_argument(
        "--workers",
        type=_positive_int,
        nargs="+",
        default=sorted({1, 2, default_num_workers()}),
        help="workers.n values (default: 1, 2 and the CPU count)",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        default=["process", "ray"],
        choices=["process", "ray", "serial"],
        help="workers.backend values; one not available here (ray not installed) is skipped with a note",
    )
    p.add_argument(
        "--engines",
        nargs="+",
        default=list(ENGINES),
        choices=list(ENGINES),
        help="workers.engine values (each timed on every cell); one not available here is skipped with a note",
    )
    p.add_argument(
        "--population",
        type=_even_int,
        default=None,
        help="algo.population_size of the throughput runs (default: the config's)",
    )
    p.add_argument(
        "--overhead-populations",
        type=_even_int,
        nargs="*",
        default=[256, 1024],
        help="populations of the coordinator-overhead runs (at the largest workers.n)",
    )
    p.add_argument("--seconds", type=_seconds, default=10.0, help="timed seconds per throughput run (at least)")
    p.add_argument("--min-epochs", type=_positive_int, default=2, help="timed epochs per throughput run (at least)")
    p.add_argument("--overhead-epochs", type=_positive_int, default=1, help="timed epochs per overhead run")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs at the start of every run")
    p.add_argument(
        "--reference-seconds",
        type=_seconds,
        default=5.0,
        help="seconds of the plain loop per backend, env and policy (the raw replay takes less)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--override",
        dest="overrides",
        action="append",
        default=[],
        help="an extra config override for every harness run, e.g. env.max_episode_steps=100 (repeatable)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: HalfCheetah, linear, 1 worker, population 8, 100-step episodes, a small noise "
        "table, no separate overhead runs, a fraction of a second per measurement (flags given explicitly win)",
    )
    p.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup_epochs < 0:
        p.error("--warmup-epochs must be >= 0")
    if args.quick:  # its settings, except where a flag was given explicitly
        given = {
            a.split("=")[0].lstrip("-").replace("-", "_")
            for a in (sys.argv[1:] if argv is None else argv)
            if a.startswith("--")
        }
        quick = {
            "envs": ["HalfCheetah"],
            "policies": ["linear"],
            "workers": [1],
            "population": 8,
            "engines": ["gymnasium"],
            "overhead_populations": [],
            "seconds": 0.0,
            "min_epochs": 1,
            "reference_seconds": 0.2,
        }
        for key, value in quick.items():
            if key not in given:
                setattr(args, key, value)
        args.overrides = ["env.max_episode_steps=100", "algo.noise_table_size=1000000", *args.overrides]
    return args


def engine_refuses(engine: str, env: str) -> str | None:
    """Why ``workers.engine=<engine>`` refuses ``env=<env>`` with the bench's settings (no behaviour
    characterization), or ``None``."""
    cfg = compose_config(env, "linear", ["env.bc=null"])
    return engine_problem(engine, OmegaConf.to_container(cfg.env, resolve=True))


def main(argv=None) -> None:
    """``python -m harness.bench``. With ``--child``: one run (:func:`run_child`) in this process, its
    measurements written as JSON to ``--child-out``. Otherwise one fresh process (:func:`spawn_child`) per
    backend, engine, env, policy and ``workers.n`` (and per overhead population at the largest ``workers.n``), a
    line printed for each, then ``bench.json`` and ``bench.md`` in ``--out-dir``; a backend, engine or env that
    cannot run here is skipped with a note.

    :raises SystemExit: with a message (status 1) when a run failed or nothing was measured.
    """
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        spec["overrides"] = tuple(spec["overrides"])
        args.child_out.write_text(json.dumps(run_child(RunSpec(**spec)), default=float) + "\n")
        return
    started = time.perf_counter()
    if args.population is None:
        args.population = int(compose_config(args.envs[0], args.policies[0]).algo.population_size)
    settings = {k: v for k, v in vars(args).items() if not k.startswith("child")}
    results = {
        "machine": machine_info(),
        "settings": {**settings, "out_dir": str(args.out_dir)},
        "reference": [],
        "runs": [],
        "skipped": [],
    }
    specs: dict[tuple, RunSpec] = {}
    engines = []
    for engine in args.engines:
        reason = engine_unavailable(engine)
        if reason:
            results["skipped"].append({"backend": f"engine {engine}", "reason": reason})
            print(f"engine {engine}: skipped ({reason})", flush=True)
        else:
            engines.append(engine)
    for backend in args.backends:
        reason = backend_unavailable(backend)
        if reason:
            results["skipped"].append({"backend": backend, "reason": reason})
            print(f"backend {backend}: skipped ({reason})", flush=True)
            continue
        for engine in engines:
            for env in args.envs:
                refused = engine_refuses(engine, env)
                if refused:
                    results["skipped"].append(
                        {"backend": f"{backend_label(backend, engine)} on {env}", "reason": refused}
                    )
                    print(f"{backend_label(backend, engine)} on {env}: skipped ({refused})", flush=True)
                    continue
                for policy in args.policies:
                    common = dict(
                        backend=backend,
                        env=env,
                        policy=policy,
                        warmup_epochs=args.warmup_epochs,
                        seed=args.seed,
                        overrides=tuple(args.overrides),
                        engine=engine,
                    )
                    for n in args.workers:
                        # the plain loop and raw MuJoCo replay the episodes of the run with the fewest workers
                        # (a run's episodes do not depend on workers.n)
                        spec = RunSpec(
                            workers=n,
                            population=args.population,
                            min_epochs=args.min_epochs,
                            seconds=args.seconds,
                            max_epochs=1000,
                            **common,
                            reference_seconds=args.reference_seconds
                            if n == min(args.workers) and engine == "gymnasium"
                            else 0.0,
                        )
                        specs[spec.key] = spec
                    for pop in args.overhead_populations:
                        spec = RunSpec(
                            workers=max(args.workers),
                            population=pop,
                            min_epochs=args.overhead_epochs,
                            seconds=0.0,
                            max_epochs=1000,
                            **common,
                        )
                        old = specs.get(spec.key)
                        if old:  # a throughput run at that population: time it as much as both ask
                            spec = dataclasses.replace(old, min_epochs=max(old.min_epochs, spec.min_epochs))
                        specs[spec.key] = spec
    for spec in specs.values():
        r = spawn_child(spec)
        results["runs"].append(r)
        head = (
            f"{spec.env:>12} {spec.policy:>6} {backend_label(spec.backend, spec.engine):>16} n={spec.workers} "
            f"pop={spec.population:<5}"
        )
        if "error" in r:
            print(f"{head}: FAILED {r['error']}", flush=True)
        else:
            print(
                f"{head}: {r['steps_per_s_excl_eval']:9,.0f} steps/s (eval excl.), "
                f"{r['per_worker_excl_eval']:9,.0f} per worker, overhead {r['overhead']:.1%}",
                flush=True,
            )
            ref = r.get("reference")
            if ref:
                results["reference"].append(
                    {
                        "backend": spec.backend,
                        "env": spec.env,
                        "policy": spec.policy,
                        "num_params": r["num_params"],
                        **ref,
                    }
                )
                batch = ""
                if ref.get("batch_steps_per_s") is not None:
                    batch = f", bare MuJoCo batch of {ref['batch_envs']} {ref['batch_steps_per_s']:9,.0f} steps/s"
                print(
                    f"{head}  same episodes: plain Gymnasium loop {ref['plain_steps_per_s']:9,.0f} steps/s, "
                    f"raw MuJoCo {ref['raw_steps_per_s']:9,.0f} steps/s{batch}",
                    flush=True,
                )
    results["seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_after"] = loadavg()
    derive(results)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    (args.out_dir / "bench.md").write_text(markdown(results))
    print(f"written: {args.out_dir / 'bench.json'}, {args.out_dir / 'bench.md'}")
    failed = sum("error" in r for r in results["runs"])
    if failed or not results["runs"]:
        sys.exit(f"{failed} of {len(results['runs'])} runs failed" if failed else "nothing was measured")


if __name__ == "__main__":
    main()
