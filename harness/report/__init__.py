"""Turn run directories into figures and tables: ``python -m harness.report RESULTS_DIR [--out DIR]``.

The rooms: :mod:`~harness.report.options` (what a report can be told, every default), :mod:`~harness.report.load`
(find runs, tidy DataFrames) -> :mod:`~harness.report.aggregate` (pure statistics: curves on a common grid, IQM and
bootstrap CIs after Agarwal et al. 2021 / rliable, times to threshold, the ES/TRPO ratios of Salimans et al. 2017
Table 1) -> :mod:`~harness.report.figures` (PNG + PDF) and :mod:`~harness.report.tables` (CSV + Markdown), put
together by :mod:`~harness.report.build` (``report.md``, an index of everything, and optionally a W&B run of
``job_type="report"``); :mod:`~harness.report.paper` is ``make figures``.

This package imports only :mod:`~harness.report.options`: :func:`build_report` and :func:`load_runs` (pandas,
matplotlib) load when first used, so that ``python -m harness.report --help`` and its argument errors are instant.
"""

from __future__ import annotations

from harness.report.options import ReportOptions

__all__ = ["Report", "ReportOptions", "build_report", "load_runs"]


def __getattr__(name: str):
    """``build_report``, ``Report`` (:mod:`harness.report.build`) and ``load_runs`` (:mod:`harness.report.load`),
    imported on first use (PEP 562)."""
    if name in ("build_report", "Report"):
        from harness.report import build

        return getattr(build, name)
    if name == "load_runs":
        from harness.report.load import load_runs

        return load_runs
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
