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
    ("Humanoid MLP 64-64", "Humanoid", "mlp", ("policy.hidden_sizes=[64,64]",)),
    ("Humanoid MLP 256-256", "Humanoid", "mlp", ("policy.hidden_sizes=[256,256]",)),
)
SHIPS = ("seeds", "vectors")


def es_specs(
    backends, workers, population: int, seconds: float, min_epochs: int, extra: tuple[str, ...] = ()
) -> list[tuple[str, RunSpec]]:
    """``(kind, spec)`` of every ES measurement: ``kind`` is ``"generation"`` (a size, a ship mode, a backend,
    a worker count) or ``"overhead"`` (HalfCheetah linear, seeds, one-step episodes)."""
    out = []
    for backend in backends:
        for n in workers:
            common = dict(
                backend=backend,
                workers=n,
                population=population,
                warmup_epochs=1,
                min_epochs=min_epochs,
                seconds=seconds,
                max_epochs=50,
                seed=0,
                engine="gymnasium",
            )
            for _label, env, policy, overrides in SIZES:
                for ship in SHIPS:
                    spec = RunSpec(env=env, policy=policy, ship=ship, overrides=(*overrides, *extra), **common)
                    out.append(("generation", spec))
            spec = RunSpec(env="HalfCheetah", policy="linear", overrides=("env.max_episode_steps=1", *extra), **common)
            out.append(("overhead", spec))
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
    for kind, spec in es_specs(backends, args.workers, args.population, args.seconds, args.min_epochs, extra):
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
    m.add_argument("--quick", action="store_true", help="smoke run: short episodes, one timed generation")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.min_epochs = 0.0, 1
    return args


def main(argv=None) -> None:
    """``python -m harness.bench.scale measure --out-dir DIR``: :func:`measure`, written to ``DIR/measured.json``.

    :raises SystemExit: (status 1) when a measurement failed.
    """
    args = parse_args(argv)
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
