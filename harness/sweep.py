"""What a ``-m`` sweep says at its end: which of its jobs failed, and an exit code that shows it.

A failed or refused job does not cancel the rest of a sweep (``harness.__main__._job_failed``);
it appends a line to ``<hydra.sweep.dir>/failed_jobs.tsv`` instead: job number, the exit code a
single run would have had, its run folder (``-`` when a refused config left none) and the reason
in one line. Jobs may run in other processes (``hydra/launcher=joblib``,
``submitit``), so the file, not memory, carries the news back; :class:`SweepSummary`, a Hydra
callback that runs in the launching process once every job has ended, reads it, and
``python -m harness -m ...`` then exits with 1 instead of 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

FAILED_JOBS = "failed_jobs.tsv"

#: Jobs of the sweep that just ended that failed (set by :class:`SweepSummary`).
failed_jobs: list[str] = []


#: What :data:`FAILED_JOBS` holds in place of a run folder for a job that left none.
NO_RUN_DIR = "-"


def record_failed_job(sweep_dir: str | Path, job_num: int, code: int, run_dir: str | Path | None, reason: str) -> None:
    """Append ``job_num``, ``code``, ``run_dir`` (:data:`NO_RUN_DIR` if ``None``) and ``reason`` (tabs
    and line breaks made spaces) as one tab-separated line to the sweep's list of failed jobs (one
    short ``O_APPEND`` write: lines of jobs ending at once do not interleave)."""
    path = Path(sweep_dir) / FAILED_JOBS
    path.parent.mkdir(parents=True, exist_ok=True)
    reason = " ".join(str(reason).split())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job_num}\t{code}\t{NO_RUN_DIR if run_dir is None else run_dir}\t{reason}\n".encode())
    finally:
        os.close(fd)


class SweepSummary(Callback):
    """At the end of a sweep, name its failed jobs on stderr and remember them for the exit code."""

    def on_multirun_end(self, config, **kwargs) -> None:
        """Hydra's hook once every job of the sweep has ended: read ``failed_jobs.tsv`` of ``hydra.sweep.dir`` into
        :data:`failed_jobs` (empty without the file) and list those jobs on stderr, by job number."""
        path = Path(config.hydra.sweep.dir) / FAILED_JOBS
        lines = path.read_text().splitlines() if path.exists() else []
        failed_jobs[:] = lines
        if lines:
            print(f"{len(lines)} job(s) of the sweep failed (listed in {path}):", file=sys.stderr)
            for line in sorted(lines, key=lambda row: int(row.split("\t")[0])):
                num, code, run_dir, reason = (line.split("\t", 3) + [""])[:4]
                where = "no run folder" if run_dir == NO_RUN_DIR else run_dir
                print(f"  job {num}: exit code {code} as a single run ({where}): {reason}", file=sys.stderr)
