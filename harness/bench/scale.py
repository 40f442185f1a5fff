"""Wall time at scale (issue 32): measure what a generation costs here, on 1 and 2 workers, then simulate
it up to 1,440 workers (:mod:`harness.bench.simulate`).

``python -m harness.bench.scale measure --out-dir DIR`` writes ``DIR/measured.json``:

* **ES generations**, real harness runs (:func:`harness.bench.probe.run_child`, one fresh process each) for
  every backend (``process``, ``ray``), ``workers.n`` (1, 2), ``workers.ship`` (``seeds``: noise offsets,
  Salimans et al.'s shared-seed trick; ``vectors``: full parameter vectors) and size: HalfCheetah with the
  linear policy (102 parameters), Humanoid with a 64-64 tanh MLP (27k) and with the paper's 256-256 (157k).
  Each records, per generation: its wall time, the seconds in the workers' calls, the coordinator's rest, the
  bytes each way, the episodes' lengths and the calls to the workers;
* **backend overhead**: the same HalfCheetah cells with one-step episodes, where the rollout time is the
  backend's own (dispatch, pickling, collecting, one reset per episode);
* **the coordinator's serial part** against population size and parameter count: every size with one-step
  episodes at populations 40 and 400, one process worker;
* **TRPO iterations**: rl-baselines3-zoo's HalfCheetah TRPO (``n_envs`` 2, ``n_steps`` 1024) in this process,
  with one environment process: seconds sampling its batch and seconds in ``train()`` (the serial update).

Measure on an idle machine: every number here is a wall-clock time. ``--quick`` is a smoke run of every code
path (short episodes, few generations; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.bench.probe import RunSpec, backend_unavailable, spawn_child
from harness.bench.report import loadavg, machine_info

#: The sizes measured: (label, env, policy, overrides).
SIZES = (
    ("HalfCheetah linear", "HalfCheetah", "linear", ()),
    ("HalfCheetah MLP 64-64", "HalfCheetah", "mlp", ("policy.hidden_sizes=[64,64]",)),  # the Table 1 recipe's ES
    ("Humanoid MLP 64-64", "Humanoid", "mlp", ("policy.hidden_sizes=[64,64]",)),
    ("Humanoid MLP 256-256", "Humanoid", "mlp", ("policy.hidden_sizes=[256,256]",)),
)
SHIPS = ("seeds", "vectors")


def es_specs(
    backends,
    workers,
    population: int,
    seconds: float,
    min_epochs: int,
    extra: tuple[str, ...] = (),
    coordinator_populations: tuple[int, ...] = (40, 400),
    sizes: tuple[str, ...] | None = None,
    overhead: bool = True,
    ray_address: str | None = None,
    local: bool = True,
) -> list[tuple[str, RunSpec]]:
    """``(kind, spec)`` of every ES measurement. ``kind``:

    * ``"warmup"``: first, HalfCheetah linear on one process worker, not read (see the comment below);
    * ``"generation"``: every size, ship mode, backend and worker count, at ``population``;
    * ``"overhead"``: HalfCheetah linear with one-step episodes, every backend and worker count: the
      rollout time is then the backend's own;
    * ``"coordinator"``: every size with one-step episodes at each of ``coordinator_populations``, one process
      worker: the coordinator's serial seconds against population size and parameter count.

    ``sizes``: the :data:`SIZES` labels to measure (``None``: all); ``overhead``: include the overhead cells;
    ``ray_address``: also every size and ship mode on two Ray actors of that cluster (``"cluster"`` cells, e.g. a
    local two-node cluster of ``ray start``, one CPU a node); ``local``: the cells of this machine's own backends
    (``generation``, ``overhead``, ``coordinator``).
    """
    chosen = [s for s in SIZES if sizes is None or s[0] in sizes]
    one_step = ("env.max_episode_steps=1",)

    def spec(
        backend: str, n: int, pop: int, env: str, policy: str, overrides=(), ship: str = "seeds", last=()
    ) -> RunSpec:
        """One cell, timed alike: ``overrides``, then the caller's ``extra``, then ``last``."""
        return RunSpec(
            backend=backend,
            workers=n,
            population=pop,
            env=env,
            policy=policy,
            ship=ship,
            overrides=(*overrides, *extra, *last),
            warmup_epochs=1,
            min_epochs=min_epochs,
            seconds=seconds,
            max_epochs=50,
            seed=0,
            engine="gymnasium",
        )

    # The first run of a pass measured 15-30% slower than its twin in three passes on this machine (whatever
    # the cell): a run nobody reads goes first.
    out: list[tuple[str, RunSpec]] = [("warmup", spec("process", 1, population, "HalfCheetah", "linear"))]
    for backend in backends if local else ():
        for n in workers:
            for _label, env, policy, overrides in chosen:
                for ship in SHIPS:
                    out.append(("generation", spec(backend, n, population, env, policy, overrides, ship)))
            if overhead:
                out.append(("overhead", spec(backend, n, population, "HalfCheetah", "linear", one_step)))
    if ray_address:
        for _label, env, policy, overrides in chosen:
            for ship in SHIPS:
                address = (f"workers.ray_address={ray_address}",)
                out.append(("cluster", spec("ray", 2, population, env, policy, overrides, ship, last=address)))
    for _label, env, policy, overrides in chosen if local else ():
        for pop in coordinator_populations:
            out.append(("coordinator", spec("process", 1, pop, env, policy, (*overrides, *one_step))))
    return out


def size_label(spec: RunSpec) -> str:
    """The :data:`SIZES` label of ``spec``."""
    for label, env, policy, overrides in SIZES:
        if (spec.env, spec.policy) == (env, policy) and all(o in spec.overrides for o in overrides):
            return label
    return f"{spec.env} {spec.policy}"


def measure_trpo(iterations: int, quick: bool) -> dict:
    """Seconds per TRPO iteration of rl-baselines3-zoo's HalfCheetah settings, split into sampling (the batch
    of ``n_steps * n_envs`` steps, one environment process, torch on one thread) and the update
    (``model.train()``), over ``iterations`` iterations after one untimed."""
    from omegaconf import OmegaConf

    from harness.algos import get_algo
    from harness.bench.probe import compose_config
    from harness.config import resolved_config, validate

    overrides = ["algo=trpo", "workers.n=1", "workers.backend=serial", "wandb.mode=disabled", "progress=false"]
    if quick:
        overrides += ["env.max_episode_steps=100", "algo.n_steps=64", "algo.batch_size=32"]
    cfg = compose_config("HalfCheetah", "linear", overrides)
    validate(cfg)
    data = resolved_config(cfg)
    trainer = get_algo("trpo").make_trainer(OmegaConf.create(data))
    model, update_s = trainer.model, []
    train = model.train

    def timed_train():
        start = time.perf_counter()
        train()
        update_s.append(time.perf_counter() - start)

    model.train = timed_train
    epochs = []
    try:
        for i in range(iterations + 1):
            start = time.perf_counter()
            trainer.train_epoch(i)
            epochs.append(time.perf_counter() - start)
    finally:
        trainer.close()
    batch = int(model.n_steps * model.n_envs)
    sample = [e - u for e, u in zip(epochs[1:], update_s[1:])]
    return {
        "settings": data["algo"].get("hparams_source"),
        "n_envs": int(model.n_envs),
        "n_steps": int(model.n_steps),
        "batch_steps": batch,
        "num_params": int(sum(p.numel() for p in model.policy.parameters())),
        "obs_dim": int(model.observation_space.shape[0]),
        "act_dim": int(model.action_space.shape[0]),
        "iteration_s": epochs[1:],
        "sample_s": sample,
        "update_s": update_s[1:],
    }


def measure(args) -> dict:
    """Every measurement (module docstring), printed as it ends; the ``measured.json`` dict."""
    extra = ("env.max_episode_steps=100", "algo.noise_table_size=1000000") if args.quick else ()
    backends = [b for b in args.backends if not backend_unavailable(b)]
    out = {"machine": machine_info(), "settings": {k: str(v) for k, v in vars(args).items()}, "es": [], "trpo": None}
    specs = es_specs(
        backends,
        args.workers,
        args.population,
        args.seconds,
        args.min_epochs,
        extra,
        sizes=args.sizes,
        overhead=not args.no_overhead,
        ray_address=args.ray_cluster,
        local=not args.no_local,
    )
    for kind, spec in specs:
        r = spawn_child(spec)
        r.update(kind=kind, size=size_label(spec))
        out["es"].append(r)
        head = f"{kind:>10} {r['size']:>22} {spec.backend:>7} n={spec.workers} {spec.ship:>7}"
        if "error" in r:
            print(f"{head}: FAILED {r['error']}", flush=True)
        else:
            print(
                f"{head}: {r['epoch_s_excl_eval']:.3f} s a generation, rollout {r['rollout_s'] / r['timed_epochs']:.3f}"
                f" s, {r['bytes_sent_per_epoch'] or 0:,.0f} B out, {r['bytes_received_per_epoch'] or 0:,.0f} B in",
                flush=True,
            )
    if not args.no_trpo:
        out["trpo"] = measure_trpo(2 if args.quick else args.trpo_iterations, args.quick)
        t = out["trpo"]
        print(f"TRPO HalfCheetah: sampling {min(t['sample_s']):.3f} s, update {min(t['update_s']):.3f} s", flush=True)
    out["machine"]["loadavg_after"] = loadavg()
    return out


def simulate(args) -> None:
    """``simulate``: :func:`harness.bench.calibrate.calibrate` on the pooled cells of ``args.measured``, then its
    validation, scaling and time-to-threshold tables, written as CSV files to ``args.out_dir``."""
    from harness.bench import calibrate

    measured = {"es": [], "trpo": None}
    for path in args.measured:
        one = json.loads(path.read_text())
        measured["es"] += one["es"]
        measured["trpo"] = one.get("trpo") or measured["trpo"]
    if measured["trpo"] is None:
        sys.exit("no measured.json holds TRPO's iterations (measure without --no-trpo)")
    cal = calibrate.calibrate(measured)
    steps = calibrate.threshold_steps(args.runs)
    # generations to the lowest threshold (every population run reaches it) against population
    lowest = steps.sort_values("fraction").iloc[0]
    alpha, fit = calibrate.population_exponent(args.population_runs, float(lowest["threshold"]))
    fit = fit.assign(fraction=lowest["fraction"], threshold=lowest["threshold"], alpha=alpha)
    frames = {
        "calibration": calibrate.calibration_table(cal, measured["trpo"]),
        "validation": calibrate.validation(measured, cal),
        "scaling": calibrate.scaling(cal),
        "population_fit": fit,
        "time_to_threshold": calibrate.time_to_threshold(cal, measured["trpo"], steps, alpha=alpha),
    }
    for path in calibrate.write(args.out_dir, **frames):
        print(f"written: {path}")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``argv``: default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.scale", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure the cost of ES generations and TRPO iterations here")
    m.add_argument("--out-dir", type=Path, required=True)
    m.add_argument("--backends", nargs="+", default=["process", "ray"], choices=["process", "ray", "serial"])
    m.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    m.add_argument("--population", type=int, default=40, help="episodes a generation (mirrored pairs counted)")
    m.add_argument("--seconds", type=float, default=6.0, help="timed seconds per ES run (at least)")
    m.add_argument("--min-epochs", type=int, default=3, help="timed generations per ES run (at least)")
    m.add_argument("--trpo-iterations", type=int, default=5)
    m.add_argument("--no-trpo", action="store_true")
    m.add_argument("--no-overhead", action="store_true", help="leave out the one-step-episode overhead cells")
    m.add_argument("--no-local", action="store_true", help="leave out the one-machine cells (e.g. with --ray-cluster)")
    m.add_argument(
        "--ray-cluster",
        metavar="ADDRESS",
        help="also measure on two actors of this Ray cluster (e.g. a local two-node `ray start` cluster)",
    )
    labels = [label for label, *_ in SIZES]
    m.add_argument("--sizes", nargs="+", choices=labels, default=None, metavar="SIZE", help=f"of {labels}")
    s = sub.add_parser(
        "simulate",
        help="calibrate the model on measured.json files, validate it, project to 1,440 workers (CSV files)",
    )
    s.add_argument("measured", nargs="+", type=Path, help="measured.json files (their cells pooled)")
    s.add_argument("--runs", type=Path, required=True, help="the shipped Table 1 runs (salimans2017_mujoco)")
    s.add_argument(
        "--population-runs",
        type=Path,
        required=True,
        help="ES runs of the same task at several populations (salimans2017_population): generations to the "
        "threshold against population",
    )
    s.add_argument("--out-dir", type=Path, required=True)
    m.add_argument("--quick", action="store_true", help="smoke run: short episodes, one timed generation")
    args = p.parse_args(argv)
    if args.command == "measure" and args.quick:
        args.seconds, args.min_epochs = 0.0, 1
    return args


def main(argv=None) -> None:
    """``python -m harness.bench.scale measure --out-dir DIR``: :func:`measure`, written to ``DIR/measured.json``.

    :raises SystemExit: (status 1) when a measurement failed.
    """
    args = parse_args(argv)
    if args.command == "simulate":
        simulate(args)
        return
    started = time.perf_counter()
    out = measure(args)
    out["seconds"] = time.perf_counter() - started
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "measured.json"
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"written: {path}")
    failed = [r for r in out["es"] if "error" in r]
    if failed:
        sys.exit(f"{len(failed)} of {len(out['es'])} measurements failed")


if __name__ == "__main__":
    main()
