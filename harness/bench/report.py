"""What :mod:`harness.bench` derives from its runs (ratios to the plain loop and raw MuJoCo, scaling
efficiency, the targets of issue #9, never asserted) and its report, ``bench.md``."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from harness.bench.probe import THREAD_VARS
from harness.workers import default_num_workers

# Targets of issue #9, checked (never asserted) at the end of the report.
TARGET_PER_WORKER_VS_PLAIN = 1.0
TARGET_SCALING = 0.9
TARGET_OVERHEAD = 0.03
TARGET_OVERHEAD_POPULATION = 1024
# Targets of issue 31 (the mujoco engine), per worker (workers.n = 1): (env, policy) -> (x raw MuJoCo, x gymnasium engine)
TARGET_MUJOCO = {("HalfCheetah", "linear"): (1.2, 1.5), ("Hopper", "linear"): (None, 1.3)}
TARGETS_BY_ENGINE = {"mujoco": TARGET_MUJOCO}


def backend_label(backend: str, engine: str = "gymnasium") -> str:
    """``process``, or ``process+mujoco`` for a run off the default engine."""
    return backend if engine == "gymnasium" else f"{backend}+{engine}"


def _label(r: dict) -> str:
    return backend_label(r["backend"], r.get("engine", "gymnasium"))


def derive(results: dict) -> None:
    """Add to each run its ratios to the plain loop and raw MuJoCo and its scaling efficiency,
    and the list of targets with what was measured."""
    refs = {(r["backend"], r["env"], r["policy"]): r for r in results["reference"]}
    runs = [r for r in results["runs"] if "error" not in r]
    base, gym_engine = {}, {}
    for r in runs:
        engine = r.setdefault("engine", "gymnasium")
        if r["workers"] == 1:
            base[(r["backend"], engine, r["env"], r["policy"], r["population"])] = r["steps_per_s_excl_eval"]
        if engine == "gymnasium":
            gym_engine[(r["backend"], r["env"], r["policy"], r["workers"], r["population"])] = r[
                "steps_per_s_excl_eval"
            ]
    for r in runs:
        ref = refs.get((r["backend"], r["env"], r["policy"]))  # the same episodes' task: either engine's yardstick
        r["per_worker_vs_plain"] = r["per_worker_excl_eval"] / ref["plain_steps_per_s"] if ref else None
        r["per_worker_vs_raw"] = r["per_worker_excl_eval"] / ref["raw_steps_per_s"] if ref else None
        one = base.get((r["backend"], r["engine"], r["env"], r["policy"], r["population"]))
        r["scaling_efficiency"] = r["steps_per_s_excl_eval"] / (r["workers"] * one) if one else None
        other = gym_engine.get((r["backend"], r["env"], r["policy"], r["workers"], r["population"]))
        r["vs_gymnasium_engine"] = r["steps_per_s_excl_eval"] / other if other and r["engine"] != "gymnasium" else None
    targets = []

    def add(name, measured, ok, what, unit):
        targets.append({"target": name, "measured": measured, "unit": unit, "met": bool(ok), "where": what})

    for r in runs:
        where = f"{r['env']} {r['policy']} {_label(r)} n={r['workers']} pop={r['population']}"
        engine_target = TARGETS_BY_ENGINE.get(r["engine"], {}).get((r["env"], r["policy"]))
        if engine_target and r["workers"] == 1 and r["population"] == results["settings"]["population"]:
            raw, engine = engine_target
            if raw is not None and r["per_worker_vs_raw"] is not None:
                add(
                    f"{r['engine']} per worker >= {raw:g}x raw MuJoCo",
                    r["per_worker_vs_raw"],
                    r["per_worker_vs_raw"] >= raw,
                    where,
                    "x",
                )
            if r["vs_gymnasium_engine"] is not None:
                add(
                    f"{r['engine']} >= {engine:g}x the gymnasium engine",
                    r["vs_gymnasium_engine"],
                    r["vs_gymnasium_engine"] >= engine,
                    where,
                    "x",
                )
        if r["workers"] == 1 and r["per_worker_vs_plain"] is not None:
            add(
                f"per-worker throughput >= {TARGET_PER_WORKER_VS_PLAIN:g}x the plain loop",
                r["per_worker_vs_plain"],
                r["per_worker_vs_plain"] >= TARGET_PER_WORKER_VS_PLAIN,
                where,
                "x",
            )
        if r["workers"] == 2 and r["scaling_efficiency"] is not None:
            add(
                f"scaling efficiency 1 -> 2 workers >= {TARGET_SCALING:g}",
                r["scaling_efficiency"],
                r["scaling_efficiency"] >= TARGET_SCALING,
                where,
                "",
            )
        if r["population"] == TARGET_OVERHEAD_POPULATION:
            add(
                f"coordinator overhead < {TARGET_OVERHEAD:.0%} at population {TARGET_OVERHEAD_POPULATION}",
                r["overhead"],
                r["overhead"] < TARGET_OVERHEAD,
                where,
                "%",
            )
    # bytes per epoch against the parameter count: the same env, backend, workers.n and population
    # with the other policy (the throughput runs at the largest workers.n)
    population, n_max = results["settings"]["population"], max(results["settings"]["workers"])
    for backend in sorted({r["backend"] for r in runs}):
        for env in sorted({r["env"] for r in runs}):
            rs = [
                r
                for r in runs
                if r.get("bytes_sent_per_epoch") is not None
                and r["engine"] == "gymnasium"
                and (r["backend"], r["env"], r["workers"], r["population"]) == (backend, env, n_max, population)
            ]
            if len(rs) < 2:
                continue
            lo, hi = min(rs, key=lambda r: r["num_params"]), max(rs, key=lambda r: r["num_params"])
            if lo["num_params"] == hi["num_params"]:
                continue
            ratio = _bytes(hi) / _bytes(lo)
            add(
                f"bytes per epoch independent of the parameter count (bytes ratio ~1 for "
                f"{hi['num_params'] / lo['num_params']:.0f}x the parameters)",
                ratio,
                ratio < 1.1,
                f"{env} {lo['policy']} -> {hi['policy']} {backend} n={n_max} pop={population}",
                "x",
            )
    # one noise table in memory: no worker holds a private copy of it (the worst worker, per backend)
    for backend in sorted({r["backend"] for r in runs}):
        copies = [
            (w["private_in_table_sized_mappings"] / r["noise_table_mib"], r)
            for r in runs
            if r["backend"] == backend and r["workers"] >= 2
            for w in (r.get("memory") or {}).get("workers", [])
            if w.get("private_in_table_sized_mappings") is not None
        ]
        if copies:
            worst, r = max(copies, key=lambda c: c[0])
            add(
                "one noise table in memory (a worker's private memory in table-sized mappings, in tables, < 0.5)",
                worst,
                worst < 0.5,
                f"{backend}, the worst worker of the runs with workers.n >= 2 ({r['env']} "
                f"{r['policy']} n={r['workers']} pop={r['population']})",
                "",
            )
    results["targets"] = targets


def _batches(sizes) -> str:
    """``"40, 30, ..., 2 (9)"``: the first two and the last piece sizes, and how many pieces."""
    if not sizes:
        return "n/a"
    shown = sizes if len(sizes) <= 3 else [*sizes[:2], "...", sizes[-1]]
    return ", ".join(map(str, shown)) + f" ({len(sizes)})"


def _bytes(r: dict) -> float:
    return r["bytes_sent_per_epoch"] + r["bytes_received_per_epoch"]


def _f(x, fmt="{:,.0f}", none="n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def markdown(results: dict) -> str:
    """``bench.md`` from the results :func:`derive` completed: the machine and the settings, skipped and failed
    runs, then the tables of the plain and raw-MuJoCo reference, throughput, coordinator overhead, bytes exchanged
    per epoch, memory (MiB) and the targets."""
    m = results["machine"]
    s = results["settings"]
    lines = [
        "# Harness throughput (`python -m harness.bench`)",
        "",
        f"{m['started']}, {m['cpu']}, {m['cpus_usable']} usable CPUs; Python {m['python']}, NumPy {m['numpy']}, "
        f"MuJoCo {m['mujoco']}, Gymnasium {m['gymnasium']}; commit {m['commit']}. Load average before "
        f"{m['loadavg_before']}, after {m['loadavg_after']} (other jobs on the machine slow every number). "
        f"Bench time {results['seconds']:.0f} s.",
        "",
        f"Settings: envs {', '.join(s['envs'])}; policies {', '.join(s['policies'])}; workers.n {s['workers']}; "
        f"backends {', '.join(s['backends'])}; population {s['population']} (throughput), "
        f"{s['overhead_populations']} (overhead); {s['warmup_epochs']} warm-up epoch(s) untimed, then at least "
        f"{s['min_epochs']} epoch(s) and {s['seconds']:g} s; eval as configured (eval.every_timesteps, eval.episodes)"
        + (f"; overrides {' '.join(s['overrides'])}" if s["overrides"] else "")
        + ".",
        "",
    ]
    for note in results["skipped"]:
        lines.append(f"**Skipped: backend `{note['backend']}`**: {note['reason']}.")
    for r in results["runs"]:
        if "error" in r:
            lines.append(
                f"**Failed: {r['env']} {r['policy']} `{_label(r)}` n={r['workers']} "
                f"pop={r['population']}**: {r['error']}"
            )
    lines += [
        "",
        "## Limit and plain reference (one process, one core)",
        "",
        "The episodes of the last timed epoch of the harness run with the fewest workers (its parameters, "
        "frozen normalization and seeds), as many as fit in the reference seconds. Plain: `gymnasium.make(id)` "
        "with its default wrappers and the policy written out in NumPy, resets timed; its returns should equal "
        "the harness's. Raw MuJoCo: `mj_step(nstep=frame_skip)` replaying the plain loop's actions from the "
        "same start states, resets not timed; each replay should end in the same state. MuJoCo batch: the mujoco engine's limit, one `mujoco.batch.Batch` of one row per episode "
        "on one thread, each row reset by Gymnasium with its episode's seed, stepping the same actions "
        "together (`reference.batch_replay`); its replay should end in the same states, bit for bit.",
        "",
        "| env | policy | backend | params | frame skip | episodes | raw MuJoCo steps/s | plain loop steps/s | "
        "plain / raw | MuJoCo batch steps/s | batch / raw | "
        "mean episode length | returns as the harness's | replay identical | batch replay identical |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results["reference"]:
        batch = r.get("batch_steps_per_s")
        batch_same = r.get("batch_replay_identical")
        lines.append(
            f"| {r['env']} | {r['policy']} | {_label(r)} | {r['num_params']:,} | {r['frame_skip']} | "
            f"{r['episodes']} | {_f(r['raw_steps_per_s'])} | {_f(r['plain_steps_per_s'])} | "
            f"{r['plain_steps_per_s'] / r['raw_steps_per_s']:.2f} | {_f(batch, none='-')} | "
            f"{'-' if batch is None else format(batch / r['raw_steps_per_s'], '.2f')} | "
            f"{r['episode_length_mean']:.0f} | {r['returns_identical_to_harness']}/{r['episodes']} | "
            f"{'yes' if r['raw_replay_identical'] else 'NO'} | "
            f"{'-' if batch_same is None else ('yes' if batch_same else 'NO')} |"
        )
    runs = [r for r in results["runs"] if "error" not in r]
    lines += [
        "",
        "## Harness: training throughput end to end through the runner",
        "",
        "Timesteps per second of training episodes over the timed epochs' wall time, with and without the "
        "time spent evaluating; per worker = total / workers.n; x plain and x raw compare the per-worker "
        "figure (evaluation excluded) with the table above; scaling = throughput(n) / (n x throughput(1)).",
        "",
        "An engine after the backend (`process+mujoco`) is `workers.engine`; x gym engine compares it with the "
        "same run on the default engine, and batches are the pieces of one generation's episodes a worker "
        "steps together (its first to its last), on one thread per worker ("
        "`mujoco.batch.Batch(nthread=1)`; the gymnasium engine steps one episode at a time).",
        "",
        "| env | policy | backend | workers | population | epochs | total, eval excl. | total, eval incl. | "
        "per worker, eval excl. | per worker, eval incl. | x plain | x raw | x gym engine | scaling | "
        "mean episode length | batches |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        if r["population"] != s["population"]:
            continue
        lines.append(
            f"| {r['env']} | {r['policy']} | {_label(r)} | {r['workers']} | {r['population']} | "
            f"{r['timed_epochs']} | {_f(r['steps_per_s_excl_eval'])} | {_f(r['steps_per_s_incl_eval'])} | "
            f"{_f(r['per_worker_excl_eval'])} | {_f(r['per_worker_incl_eval'])} | "
            f"{_f(r['per_worker_vs_plain'], '{:.2f}')} | {_f(r['per_worker_vs_raw'], '{:.2f}')} | "
            f"{_f(r.get('vs_gymnasium_engine'), '{:.2f}')} | "
            f"{_f(r['scaling_efficiency'], '{:.2f}')} | {r['episode_length_mean']:.0f} | "
            f"{_batches(r.get('batch_sizes'))} |"
        )
    lines += [
        "",
        "## Coordinator overhead",
        "",
        "Share of an epoch (evaluation excluded) outside the backend's `evaluate`: the trainer's own work "
        "(ask, tell, merging observation statistics) and the runner's (metrics row, checkpoint).",
        "",
        "| env | policy | backend | workers | population | epoch s | trainer outside rollouts | runner | overhead |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["policy"], r["workers"], r["population"])):
        lines.append(
            f"| {r['env']} | {r['policy']} | {_label(r)} | {r['workers']} | {r['population']} | "
            f"{r['epoch_s_excl_eval']:.2f} | {r['overhead_trainer']:.2%} | {r['overhead_runner']:.2%} | "
            f"{r['overhead']:.2%} |"
        )
    lines += [
        "",
        "## Bytes exchanged with the workers per training epoch",
        "",
        "`process`: pickled messages through the worker pipes as counted in the coordinator (data placed in "
        "shared memory is not a message and is not counted); other backends: their own counters if any.",
        "",
        "| env | policy | backend | workers | population | params | sent / epoch | received / epoch | "
        "sent bytes / param | bytes / episode |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["workers"], r["population"], r["num_params"])):
        sent, recv = r.get("bytes_sent_per_epoch"), r.get("bytes_received_per_epoch")
        per_episode = None if sent is None else (sent + recv) * r["timed_epochs"] / max(1, r["timed_episodes"])
        lines.append(
            f"| {r['env']} | {r['policy']} | {_label(r)} | {r['workers']} | {r['population']} | "
            f"{r['num_params']:,} | {_f(sent)} | {_f(recv)} | "
            f"{_f(None if sent is None else sent / r['num_params'], '{:.1f}')} | {_f(per_episode)} |"
        )
    lines += [
        "",
        "## Memory (MiB)",
        "",
        "Peak RSS (`VmHWM`) counts shared pages in every process that maps them; PSS splits them between "
        "those processes and USS leaves them out (both read from `/proc/<pid>/smaps_rollup` after the last "
        "epoch, workers alive). Private table copies: a worker's private memory in mappings at least as large "
        "as the noise table, in tables (the largest over workers; about 1 for a copy of its own, about 0 for "
        "a table shared with the others).",
        "",
        "| env | policy | backend | workers | population | noise table | coordinator peak RSS | "
        "coordinator PSS | worker peak RSS (max) | worker PSS (mean) | worker USS (mean) | total PSS | "
        "private table copies per worker |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r["backend"], r["env"], r["policy"], r["workers"], r["population"])):
        mem = r.get("memory") or {}
        coord, ws = mem.get("coordinator") or {}, mem.get("workers") or []

        def agg(key, fn, ws=ws):
            vals = [w[key] for w in ws if w.get(key) is not None]
            return fn(vals) if vals else None

        pss_w = agg("pss", sum)
        private = agg("private_in_table_sized_mappings", max)
        copies = None if private is None else private / r["noise_table_mib"]
        total = None if pss_w is None or coord.get("pss") is None else pss_w + coord["pss"]
        lines.append(
            f"| {r['env']} | {r['policy']} | {_label(r)} | {r['workers']} | {r['population']} | "
            f"{r['noise_table_mib']:.0f} | {_f(coord.get('peak_rss'))} | {_f(coord.get('pss'))} | "
            f"{_f(agg('peak_rss', max))} | {_f(agg('pss', np.mean))} | {_f(agg('uss', np.mean))} | "
            f"{_f(total)} | {_f(copies, '{:.2f}')} |"
        )
    lines += [
        "",
        "## Targets (issues #9 and 31; measured, never asserted)",
        "",
        "| target | where | measured | met |",
        "|---|---|---:|---|",
    ]
    for t in results["targets"]:
        value, unit = t["measured"], t["unit"]
        shown = f"{value:.2%}" if unit == "%" else f"{value:.2f}{unit}"
        lines.append(f"| {t['target']} | {t['where']} | {shown} | {'yes' if t['met'] else 'no'} |")
    lines += ["", "Per-worker gap to raw MuJoCo: the `x raw` column (1.00 would be no overhead at all).", ""]
    return "\n".join(lines)


def machine_info() -> dict:
    """The machine, the library versions and the commit a bench ran on."""
    import gymnasium
    import mujoco

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = (
            subprocess.run(
                ["git", "describe", "--always", "--dirty"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": default_num_workers(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "commit": commit,
        "thread_vars": {k: os.environ.get(k) for k in THREAD_VARS},
        "loadavg_before": loadavg(),
        "loadavg_after": None,
    }


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages, e.g. ``"0.52 0.61 0.70"``; ``"n/a"`` where the OS has none."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
