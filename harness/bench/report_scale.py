"""How the report scales with the number of runs: ``python -m harness.bench.report_scale --runs 1000,3000,10000``.

A sweep of thousands of runs must still be reportable on one machine (issue 35: a report over 1,000
copies of one HalfCheetah run took 37 s and 3.3 GB, over 3,000 copies 135 s and 9.7 GB). This command
builds, in a temporary folder, a results tree of ``N`` run folders for each ``N`` of ``--runs``, made
from shipped run folders (``--source``: ES and TRPO on HalfCheetah from ``results/paper/table1_mujoco``),
runs ``python -m harness.report`` on it in a fresh process and records its wall time and peak resident
memory (``ru_maxrss`` of that process, from ``os.wait4``).

The runs are distinct seeds, as a sweep's are: run ``i`` has ``seed: i`` in ``config.yaml`` and
``summary.json``; its ``eval_return`` is the template's with a small seeded perturbation and its clock
columns are scaled by a seeded factor, so that no two runs share a curve or a wall-clock position (as
no two real runs do); ``behaviours.csv`` is the template's (a hard link). One run in ``--reference-every``
is a TRPO run (the reference of the thresholds and ratios); the ES runs are spread over ``--groups``
settings groups (``algo.sigma``), so the report's grouping, thresholds and ratios all run.

The numbers are those of the machine the command runs on, at that moment: on a shared machine say so
(the output records the load averages). No test times anything. A report whose resident memory passes
``--max-rss-gb`` is stopped and recorded as such, so that a measurement cannot exhaust the machine.

Writes ``OUT_DIR/report_scale.json`` and ``OUT_DIR/report_scale.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from harness.bench.report import loadavg, machine_info

SOURCE = Path("results/paper/table1_mujoco")
TEMPLATES = {"es": "es_HalfCheetah_seed0", "trpo": "trpo_HalfCheetah_seed0"}
SIGMAS = (0.03, 0.02, 0.01, 0.05, 0.04, 0.015, 0.025, 0.035)  # algo.sigma of ES group k
CLOCK_COLUMNS = ("wall_time_s", "train_time_s", "eval_time_s")


def _runs_list(text: str) -> list[int]:
    values = [int(v) for v in text.replace(" ", "").split(",") if v]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive run counts separated by commas, got {text!r}")
    return values


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``argv``: default ``sys.argv[1:]``).

    :raises SystemExit: with status 2 (argparse) for a bad argument, ``--groups`` outside ``1 .. len(SIGMAS)`` or
        a negative ``--reference-every`` included.
    """
    p = argparse.ArgumentParser(
        prog="python -m harness.bench.report_scale",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--runs", type=_runs_list, default=[1000, 3000, 10000], help="run counts, comma-separated")
    p.add_argument(
        "--source", type=Path, default=SOURCE, help="folder holding the template runs " + ", ".join(TEMPLATES.values())
    )
    p.add_argument("--groups", type=int, default=2, help="settings groups of the ES runs (algo.sigma)")
    p.add_argument("--reference-every", type=int, default=10, help="one run in this many is a TRPO run (0: none)")
    p.add_argument(
        "--max-rss-gb",
        type=float,
        default=8.0,
        help="stop a report whose resident memory passes this many GiB (recorded as stopped)",
    )
    p.add_argument(
        "--report-args", default="", help="extra arguments of python -m harness.report, e.g. '--protocol salimans2017'"
    )
    p.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="where to build the run folders (default: a new temporary folder, deleted at the end)",
    )
    p.add_argument("--keep", action="store_true", help="keep the run folders and reports")
    p.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    args = p.parse_args(argv)
    if not 1 <= args.groups <= len(SIGMAS):
        p.error(f"--groups must be in 1..{len(SIGMAS)}")
    if args.reference_every < 0:
        p.error("--reference-every must be >= 0")
    return args


class Template:
    """One shipped run folder, read once: its config, summary, metrics (header and float rows) and
    behaviours file."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.config = yaml.safe_load((run_dir / "config.yaml").read_text())
        self.summary = json.loads((run_dir / "summary.json").read_text())
        rows = list(csv.reader(io.StringIO((run_dir / "metrics.csv").read_text())))
        self.header = rows[0]
        self.values = np.array([[float(c) if c != "" else np.nan for c in r] for r in rows[1:]])
        self.behaviours = run_dir / "behaviours.csv"

    def write(self, dest: Path, seed: int, sigma: float | None) -> int:
        """A distinct run of this template as seed ``seed`` into ``dest``; its ``metrics.csv`` bytes."""
        dest.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        cfg = {**self.config, "seed": seed, "algo": dict(self.config["algo"])}
        if sigma is not None:
            cfg["algo"]["sigma"] = sigma
        (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (dest / "summary.json").write_text(json.dumps({**self.summary, "seed": seed, "run_dir": str(dest)}))
        v = self.values.copy()
        cols = {c: i for i, c in enumerate(self.header)}
        ret = v[:, cols["eval_return"]]
        v[:, cols["eval_return"]] = ret + rng.normal(0.0, 0.05, ret.shape) * (np.abs(ret) + 10.0)
        scale = 1.0 + 0.2 * rng.random()  # a run's clock: slower or faster than the template's, never the same
        for c in CLOCK_COLUMNS:
            if c in cols:
                v[:, cols[c]] *= scale
        lines = [",".join(self.header)]
        lines += [",".join("" if np.isnan(x) else repr(float(x)) for x in row) for row in v]
        text = "\n".join(lines) + "\n"
        (dest / "metrics.csv").write_text(text)
        if self.behaviours.exists():
            os.link(self.behaviours, dest / "behaviours.csv")
        return len(text)


def build_tree(root: Path, n: int, templates: dict[str, Template], groups: int, reference_every: int) -> int:
    """``n`` run folders below ``root``; the bytes of their ``metrics.csv`` and ``behaviours.csv``."""
    total = 0
    for i in range(n):
        trpo = reference_every and i % reference_every == 0
        algo = "trpo" if trpo else "es"
        k = i % groups
        name = f"{algo}_HalfCheetah_seed{i}" if trpo else f"es_g{k}_HalfCheetah_seed{i}"
        t = templates[algo]
        total += t.write(root / name, i, None if trpo else SIGMAS[k])
        if t.behaviours.exists():
            total += t.behaviours.stat().st_size
    return total


def measure(cmd: list[str], log_path: Path, max_rss_kib: float) -> dict:
    """Run ``cmd``; its wall seconds, peak RSS (MiB, ``ru_maxrss``), exit status, and whether it was stopped
    at ``max_rss_kib``."""
    started = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    stopped = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            status_text = Path(f"/proc/{proc.pid}/status").read_text()
            rss = next(float(line.split()[1]) for line in status_text.splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            rss = 0.0
        if rss > max_rss_kib and not stopped:
            stopped = True
            os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "exit": proc.returncode,
        "stopped_at_limit": stopped,
    }


def markdown(results: dict) -> str:
    """``report_scale.md``: the machine and load averages, one table row per size measured (CSV size, seconds,
    CPU seconds, peak RSS, the same per 1,000 runs, exit) and the growth between successive sizes. The memory
    columns are headed MB but hold MiB (``peak_rss_mib``)."""
    lines = [
        "# Report at scale",
        "",
        f"`python -m harness.report` over N run folders ({results['settings']['description']}), one fresh "
        f"process each; commit `{results['machine'].get('commit', '?')}`; {results['machine'].get('cpu', '?')}, "
        f"{results['machine'].get('cpus', '?')} CPUs; load averages before {results['loadavg_before']}, "
        f"after {results['loadavg_after']} (a busy machine makes the seconds longer, not the memory larger; CPU seconds, user and system, "
        "depend less on it).",
        "",
        "| runs | CSV MB | seconds | CPU seconds | peak RSS MiB | MiB per 1k runs | s per 1k runs | exit |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["measurements"]:
        exit_ = "stopped at the memory limit" if r["stopped_at_limit"] else str(r["exit"])
        lines.append(
            f"| {r['runs']:,} | {r['csv_bytes'] / 1e6:.0f} | {r['seconds']:.1f} | {r['user_s'] + r['system_s']:.1f} | "
            f"{r['peak_rss_mib']:,.0f} | "
            f"{r['peak_rss_mib'] / r['runs'] * 1000:,.0f} | {r['seconds'] / r['runs'] * 1000:.1f} | {exit_} |"
        )
    ms = results["measurements"]
    if len(ms) > 1:
        lines += [
            "",
            "Growth between successive sizes (1.0 = linear in the number of runs): "
            + "; ".join(
                f"{a['runs']:,} -> {b['runs']:,}: time x{b['seconds'] / a['seconds']:.2f} for runs "
                f"x{b['runs'] / a['runs']:.2f} ({(b['seconds'] / a['seconds']) / (b['runs'] / a['runs']):.2f}), "
                f"memory x{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}"
                for a, b in zip(ms, ms[1:])
            ),
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """``python -m harness.bench.report_scale``: for each ``--runs`` size, build a results tree from the templates
    in a new temporary folder (under ``--tmp`` if given), run ``python -m harness.report`` on it in a fresh
    process (:func:`measure`, stopped past ``--max-rss-gb``, in GiB) and print the measurement; then, also after a
    failure, write ``report_scale.json`` and ``report_scale.md`` into ``--out-dir``. The folders are deleted
    unless ``--keep``. Returns 0 when every report exited 0, else 1."""
    args = parse_args(argv)
    templates = {algo: Template(args.source / name) for algo, name in TEMPLATES.items()}
    if args.tmp is not None:  # a folder given that does not exist yet is made
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="report_scale_", dir=args.tmp))
    results = {
        "machine": machine_info(),
        "loadavg_before": loadavg(),
        "settings": {
            **{k: str(v) for k, v in vars(args).items()},
            "description": f"ES and, one in {args.reference_every}, TRPO HalfCheetah runs of "
            f"{args.source}, ES in {args.groups} settings groups, distinct seeds",
        },
        "measurements": [],
    }
    try:
        for n in args.runs:
            root = tmp / f"runs_{n}"
            built = time.perf_counter()
            csv_bytes = build_tree(root, n, templates, args.groups, args.reference_every)
            print(
                f"{n:,} runs: built in {time.perf_counter() - built:.0f} s ({csv_bytes / 1e6:.0f} MB of CSV); "
                "reporting ...",
                flush=True,
            )
            cmd = [
                sys.executable,
                "-m",
                "harness.report",
                str(root),
                "--out",
                str(tmp / f"report_{n}"),
                *shlex.split(args.report_args),
            ]
            m = measure(cmd, tmp / f"report_{n}.log", args.max_rss_gb * 2**20)
            m.update(runs=n, csv_bytes=csv_bytes)
            results["measurements"].append(m)
            print(
                f"{n:,} runs: {m['seconds']:.1f} s, peak RSS {m['peak_rss_mib']:,.0f} MiB, exit {m['exit']}"
                + (" (stopped at the memory limit)" if m["stopped_at_limit"] else ""),
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(root)
            if m["exit"] != 0 and not m["stopped_at_limit"]:
                print((tmp / f"report_{n}.log").read_text()[-3000:], file=sys.stderr)
    finally:
        results["loadavg_after"] = loadavg()
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "report_scale.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        (args.out_dir / "report_scale.md").write_text(markdown(results))
        print(f"written: {args.out_dir / 'report_scale.json'}, {args.out_dir / 'report_scale.md'}")
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(m["exit"] == 0 for m in results["measurements"]) else 1


if __name__ == "__main__":
    sys.exit(main())
