"""What a report can be told, and every default of it, in one place: :class:`ReportOptions` and the choices of its
fields. Standard library only, so that ``python -m harness.report --help`` reads the defaults without loading
pandas or matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The return thresholds, as fractions of the reference's final return (or of its learning progress).
DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
#: ``final``: f x final return; ``progress``: initial + f x (final - initial), as Salimans et al. 2017.
THRESHOLD_MODES = ("final", "progress")
#: ``score``: the thresholds above, per-run medians; ``salimans2017``: also the paper's own Table 1
#: (:mod:`harness.report.salimans2017`).
PROTOCOLS = ("score", "salimans2017")
#: The clock of the wall-clock statistics: ``train`` = ``train_time_s`` (evaluation excluded), ``total`` =
#: ``wall_time_s`` (:data:`harness.report.curves.CLOCKS`).
WALL_CLOCKS = ("train", "total")
#: Evaluations at the end of the reference's mean curve whose mean is its ``final`` (protocol salimans2017).
FINAL_EVALS = 5
#: Where a report's W&B run goes.
WANDB_MODES = ("disabled", "offline", "online")


@dataclass(frozen=True)
class ReportOptions:
    """Everything :func:`harness.report.build_report` can be told (the CLI flags of ``python -m harness.report``,
    whose defaults are these)."""

    reps: int = 2000  # bootstrap repetitions for every CI
    seed: int = 0  # seeds every bootstrap (same numbers on every run of the report)
    ci: float = 0.95  # CI coverage
    points: int = 100  # grid points of an IQM curve
    fractions: Sequence[float] = DEFAULT_FRACTIONS  # threshold fractions
    threshold_mode: str = "final"  # one of THRESHOLD_MODES
    protocol: str = "score"  # one of PROTOCOLS
    final_evals: int = FINAL_EVALS  # salimans2017: the reference's final = mean of its mean curve's last k evals
    reference: str = "trpo"  # algorithm the thresholds and ratios refer to
    scaling_fraction: float = 0.5  # threshold of the scaling figure's time-to-threshold panel
    wall_clock: str = "train"  # one of WALL_CLOCKS
    include_busy: bool = False  # count runs on a busy machine (summary.json machine.busy) in wall-clock stats
    ignore: Sequence[str] = ()  # config keys pooled across on purpose (load.label_algorithms)
    group_by: Sequence[str] | None = None  # only these keys split an algorithm into groups (None: every setting)
    paper: bool = False  # figures at a paper's sizes (3.5 / 7 in), no titles or notes in them
    behaviours: bool = True  # draw the behaviours figure of every env whose runs wrote behaviours.csv
    wandb: str = "disabled"  # one of WANDB_MODES
    wandb_project: str = "harness"
    wandb_entity: str | None = None
