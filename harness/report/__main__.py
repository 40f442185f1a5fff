"""``python -m harness.report RESULTS_DIR [--out DIR] [...]``: the command line only (see :func:`build_report`).

Exit status: 0 when the report was written (one line on stdout), 1 when no usable run was found (one
error line on stderr and no success line; ``report.md`` says what was skipped), 2 on bad arguments or a
missing RESULTS_DIR.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# quiet, as `python -m harness` is: no W&B banners with --wandb (WANDB_SILENT=false brings them back)
os.environ.setdefault("WANDB_SILENT", "true")

# every default and choice from their one home (light: --help and argument errors load no pandas)
from harness.report.options import (
    FINAL_EVALS,
    PROTOCOLS,
    THRESHOLD_MODES,
    WALL_CLOCKS,
    WANDB_MODES,
    ReportOptions,
)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"fraction {value} must be in (0, 10]")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """The command line's options (``argv``: default ``sys.argv[1:]``); ``--help`` shows the defaults.

    :raises SystemExit: with status 2 (argparse's ``error``) for a bad argument or combination: ``--final-evals``
        below 1 or other than 5 without ``--protocol salimans2017``, ``--reps`` or ``--points`` below 1,
        ``--ci`` outside ``(0, 1)``, a ``--scaling-fraction`` not among ``--fractions``, or a RESULTS that is
        not a directory.
    """
    d = ReportOptions()
    p = argparse.ArgumentParser(
        allow_abbrev=False,  # a misspelt flag is an error, not a guess
        prog="python -m harness.report",
        description="Figures (PNG, PDF) and tables (CSV, Markdown) from every run directory below RESULTS, "
        "indexed by report.md: IQM learning curves, epochs vs wall-clock to a return "
        "threshold, Salimans et al. 2017 Table 1 ratios, scaling with workers.n.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("results", help="folder searched at any depth for run directories (metrics.csv + config.yaml)")
    p.add_argument("--out", default=None, help="report folder; default: RESULTS/report")
    p.add_argument("--reps", type=int, default=d.reps, help="bootstrap repetitions of every confidence interval")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the bootstrap resampling")
    p.add_argument("--ci", type=float, default=d.ci, help="confidence interval coverage")
    p.add_argument("--points", type=int, default=d.points, help="grid points of each IQM learning curve")
    p.add_argument(
        "--fractions",
        type=_fraction,
        nargs="+",
        default=list(d.fractions),
        help="return thresholds as fractions of the reference's final return (or progress)",
    )
    p.add_argument(
        "--threshold-mode",
        choices=THRESHOLD_MODES,
        default=d.threshold_mode,
        help="final: f x final return; progress: initial + f x (final - initial), as Salimans et al. "
        "(initial = the first evaluated return: the step-0 evaluation of the untrained policy where the run "
        "has one, eval.at_start; in older runs the first evaluation, after eval.every_timesteps steps)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=d.protocol,
        help="score: the thresholds of --threshold-mode, medians over seeds of each run's first evaluation "
        "at or above them (every table); salimans2017: also Salimans et al. 2017's own Table 1 "
        "(thresholds init + p (final - init) of the reference's mean curve over seeds, crossings of "
        "the mean curves, the paper's Table 3 beside ours: salimans2017_table1.md and two figures)",
    )
    p.add_argument(
        "--final-evals",
        type=int,
        default=None,
        # "%(default).0s" prints nothing and keeps the formatter from adding "(default: None)"
        help="salimans2017: the reference's final = mean of its mean curve's last K evaluations "
        f"(default: {FINAL_EVALS}%(default).0s)",
    )
    p.add_argument(
        "--reference",
        default=d.reference,
        help="algorithm (algo.name) the thresholds and ratios refer to; the best one if it has no runs",
    )
    p.add_argument(
        "--scaling-fraction",
        type=_fraction,
        default=d.scaling_fraction,
        help="threshold fraction used by the scaling figure (one of --fractions)",
    )
    p.add_argument(
        "--wall-clock",
        choices=WALL_CLOCKS,
        default=d.wall_clock,
        help="seconds of the wall-clock statistics: train = train_time_s, training time with evaluation "
        "excluded (a run without it falls back to wall_time_s, and report.md says which); total = "
        "wall_time_s, evaluation included",
    )
    p.add_argument(
        "--include-busy",
        action="store_true",
        help="count runs whose summary.json says machine.busy (other processes used more than a tenth "
        "of the CPUs) in the wall-clock statistics too; by default they count in the learning "
        "statistics only",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="KEY",
        help="pool runs that differ in config KEY as seeds of one group (repeatable; a key ending in '.' "
        "covers its subtree, e.g. budget.). By default runs of one algorithm that differ in any "
        "setting but the seed, workers.*, wandb.*, hydra.* and progress are separate groups, "
        "labelled algo[key=value]",
    )
    p.add_argument(
        "--group-by",
        action="append",
        default=None,
        metavar="KEY",
        help="split an algorithm's runs into groups by these config keys only (repeatable, e.g. "
        "algo.population_size); every other difference is pooled, with a warning",
    )
    p.add_argument(
        "--wandb",
        choices=WANDB_MODES,
        default=d.wandb,
        help="also log figures and tables to a W&B run (job_type=report); offline needs no account",
    )
    p.add_argument("--wandb-project", default=d.wandb_project, help="W&B project")
    p.add_argument("--wandb-entity", default=d.wandb_entity, help="W&B entity (team or user)")
    args = p.parse_args(argv)
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out {args.out} is a file; the report needs a folder (made if it does not exist)")
    if args.final_evals is not None and args.final_evals < 1:
        p.error("--final-evals must be >= 1")
    if args.final_evals is not None and args.protocol != "salimans2017":  # given, even as its default
        p.error("--final-evals is a setting of --protocol salimans2017; add that, or drop --final-evals")
    if args.reps < 1 or args.points < 1 or not 0 < args.ci < 1:
        p.error("--reps and --points must be >= 1 and --ci in (0, 1)")
    if not any(abs(args.scaling_fraction - f) < 1e-12 for f in args.fractions):
        p.error(f"--scaling-fraction {args.scaling_fraction} must be one of --fractions {args.fractions}")
    if not Path(args.results).is_dir():
        p.error(f"results directory {args.results} does not exist")
    return args


def main(argv=None) -> int:
    """``python -m harness.report``: parse ``argv``, :func:`build_report`, print one line on what was
    written; the exit status (module docstring): 0 written, 1 no usable run (an ``error:`` line on stderr), 2
    a ``FileNotFoundError`` from the build (argparse exits with 2 itself on bad arguments)."""
    args = parse_args(argv)
    # imported here on purpose: pandas, rliable and matplotlib (heavy) load only once the arguments parse, so that
    # --help and argument errors are instant
    from harness.report.build import build_report

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    logging.getLogger("absl").setLevel(logging.WARNING)
    opts = ReportOptions(
        reps=args.reps,
        seed=args.seed,
        ci=args.ci,
        points=args.points,
        fractions=tuple(sorted(set(args.fractions))),
        threshold_mode=args.threshold_mode,
        protocol=args.protocol,
        **({} if args.final_evals is None else {"final_evals": args.final_evals}),
        reference=args.reference,
        scaling_fraction=args.scaling_fraction,
        wall_clock=args.wall_clock,
        include_busy=args.include_busy,
        ignore=tuple(args.ignore),
        group_by=None if args.group_by is None else tuple(args.group_by),
        wandb=args.wandb,
        wandb_project=args.wandb_project,
        wandb_entity=args.wandb_entity,
    )
    try:
        rep = build_report(args.results, args.out, opts)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = len(rep.loaded.runs)
    if n == 0:
        print(
            f"error: no usable run directory below {args.results} ({len(rep.loaded.skipped)} skipped: see {rep.index})",
            file=sys.stderr,
        )
        return 1
    notes = rep.loaded.runs["note"] if "note" in rep.loaded.runs else []
    duplicates = sum(str(note).startswith("duplicate of") for note in notes)
    print(
        f"report: {rep.index} ({n} run{'' if n == 1 else 's'}"
        + (f", {duplicates} of them duplicates not counted" if duplicates else "")
        + f", {len(rep.loaded.skipped)} skipped, "
        f"{sum(p.suffix == '.png' for p in rep.figures)} figures, "
        f"{sum(p.suffix == '.csv' for p in rep.tables)} tables)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
