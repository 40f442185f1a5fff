"""The report at sweep scale (issue 35 item 5): what keeps its memory linear in the number of runs.

Nothing here is timed; ``python -m harness.bench.report_scale`` measures time and memory.
"""

from __future__ import annotations

import numpy as np

from harness.report import curves, stats
from harness.report.load import load_runs
from tests.conftest import ROOT


def test_bootstrap_resamples_are_drawn_a_chunk_at_a_time_with_the_same_numbers(monkeypatch):
    """No statistic ever sees all ``reps`` resamples of a group at once (2,000 resamples of 3,000 runs x 100
    points are 4.8 GB), and the replicates are those of drawing them all at once."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(37, 5))
    a, b = rng.exponential(size=(6, 3)), rng.exponential(size=(4, 3))
    whole = (
        stats.iqm_with_ci(scores, reps=300, seed=2),
        stats.median_with_ci(scores, reps=300, seed=4),
        stats.ratio_with_ci(a, b, reps=300, seed=6),
    )
    seen = []
    monkeypatch.setattr(stats, "RESAMPLE_CHUNK_VALUES", 37 * 5 * 7)  # 7 repetitions of `scores` a chunk
    original = stats._stratified_resample_chunks

    def recording(arrays, reps, seed):
        for chunk in original(arrays, reps, seed):
            seen.append(chunk[0].shape[0])
            yield chunk

    monkeypatch.setattr(stats, "_stratified_resample_chunks", recording)
    chunked = (
        stats.iqm_with_ci(scores, reps=300, seed=2),
        stats.median_with_ci(scores, reps=300, seed=4),
        stats.ratio_with_ci(a, b, reps=300, seed=6),
    )
    for got, expected in zip(chunked, whole):
        for x, y in zip(got, expected):
            np.testing.assert_array_equal(x, y)
    assert seen[:43] == [7] * 42 + [6]  # the IQM's 300 repetitions, 7 at a time


def test_a_bench_tree_is_distinct_seeds_in_groups_with_a_trpo_reference(tmp_path):
    from harness.bench.report_scale import SOURCE, TEMPLATES, Template, build_tree

    templates = {algo: Template(ROOT / SOURCE / name) for algo, name in TEMPLATES.items()}
    build_tree(tmp_path / "runs", 12, templates, groups=2, reference_every=5)
    loaded = load_runs(tmp_path / "runs")
    runs = loaded.runs
    assert len(runs) == 12 and runs["learning"].all() and runs["seed"].nunique() == 12
    assert sorted(runs["algo"].unique()) == ["es[sigma=0.02]", "es[sigma=0.03]", "trpo"]
    assert (runs["algo"] == "trpo").sum() == 3  # runs 0, 5 and 10
    curves = [g["train_time_s"].to_numpy() for _, g in loaded.metrics.groupby("run")]
    assert len({c[0] for c in curves}) == 12  # every run its own clock


def test_the_mean_curve_of_many_runs_is_summed_a_run_at_a_time_and_crosses_where_the_matrix_says(monkeypatch):
    """Each run on its own seconds makes the union grid grow with the runs, and the runs x grid matrix with
    their square: beyond ``MEAN_MATRIX_VALUES`` the mean is summed a run at a time and the crossing found
    without it, to the same numbers."""
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(40):
        x = np.cumsum(rng.uniform(0.5, 1.5, 30)) * rng.uniform(50, 150) + rng.uniform(0, 30)
        runs.append((x, np.cumsum(rng.normal(0.5, 1.0, 30)) * 100))
    grid, mean = curves.seed_mean_curve(runs)
    assert grid.size > 100  # the union of the runs' positions
    matrix = curves.curves_on_grid(runs, grid)
    np.testing.assert_array_equal(mean, matrix.mean(axis=0))
    thresholds = [*rng.uniform(mean.min(), mean.max(), 20), *mean[::7], mean.max(), mean.max() + 1.0]
    expected = [curves.mean_curve_time(runs, t) for t in thresholds]
    monkeypatch.setattr(curves, "MEAN_MATRIX_VALUES", 100)
    monkeypatch.setattr(curves, "curves_on_grid", lambda *a: (_ for _ in ()).throw(AssertionError("matrix built")))
    np.testing.assert_array_equal(curves.seed_mean_curve(runs)[1], mean)
    called = []
    monkeypatch.setattr(curves, "seed_mean_curve", lambda c: called.append(1) or (grid, mean))
    assert [curves.mean_curve_time(runs, t) for t in thresholds] == expected
    assert not called  # every crossing found without the mean on the whole grid
    assert expected[-1] == np.inf


def test_loaded_metrics_are_float_columns_and_one_object_column_per_run_field(tmp_path):
    """What a sweep's metrics frame holds per row: float64 for every metrics.csv column (no object column of
    numbers parsed as strings), object only for the run's own text fields."""
    from harness.bench.report_scale import SOURCE, TEMPLATES, Template, build_tree

    build_tree(tmp_path / "runs", 4, {a: Template(ROOT / SOURCE / n) for a, n in TEMPLATES.items()}, 1, 2)
    metrics = load_runs(tmp_path / "runs").metrics
    objects = set(metrics.select_dtypes(include="object").columns)
    assert objects <= {"run", "algo", "env", "env_id", "status", "run_dir", "workers_backend", "engine"}
    for col in ("epoch", "timesteps", "train_time_s", "eval_return", "grad_norm", "kl_divergence"):
        assert metrics[col].dtype == np.float64


def test_a_behaviours_panel_draws_at_most_its_cap_of_seeds_spread_over_all_in_order():
    import pandas as pd

    from harness.report.behaviours import drawn_runs

    runs = pd.DataFrame(
        {"algo": ["es"] * 10 + ["trpo"] * 3, "seed": [*range(9, -1, -1), 0, 1, 2], "run": [f"r{i}" for i in range(13)]}
    )
    drawn, cut = drawn_runs(runs, most=4)
    assert cut == {"es": 10}
    assert list(drawn["seed"]) == [9, 6, 3, 0, 0, 1, 2]  # seeds 0, 3, 6, 9 of es, in the frame's order; trpo whole
    same, none = drawn_runs(runs, most=10)
    assert none == {} and same.equals(runs)
