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


def test_a_healthy_metrics_file_reads_the_same_without_pandas_parser(tmp_path, monkeypatch):
    """The fast path (:func:`harness.report.load._parse_plain`) gives the frame pandas' parser gives, to the bit:
    empty cells NaN, runs of empty cells, an empty last cell, integers as floats, 17-digit floats; and it leaves
    every file it is not sure of to pandas."""
    import pandas as pd

    from harness.report import load

    header = "epoch,timesteps,episodes,wall_time_s,train_time_s,eval_time_s,return_mean,return_max,eval_return,extra"
    rows = [
        "1,1000,10,0.12345678901234567,0.1,0.0,1.5,2,,",
        "2,2000,20,0.30000000000000004,0.2,0.0,-2.5e-07,3,,",
        "3,3000,30,1e+300,0.3,0.01,nan,4,123.456,7",
        "4,4000,40,12.5,0.4,0.0,inf,5,,-0.0",
    ]
    path = tmp_path / "metrics.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    assert load._parse_plain(path.read_text()) is not None
    fast = load.read_metrics_csv(path)
    monkeypatch.setattr(load, "_parse_plain", lambda text: None)
    slow = load.read_metrics_csv(path)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert list(fast.columns) == header.split(",") and (fast.dtypes == np.float64).all()
    monkeypatch.undo()
    healthy = header + "\n" + rows[0] + "\n"
    for odd in (
        healthy.replace("1.5", '"1.5"'),  # quoted
        healthy.replace("1.5", "1_5"),  # Python reads it, pandas does not
        healthy.replace("1.5", "abc"),  # not a number
        healthy + "5,5000\n",  # a short row
        healthy.replace("1,1000,", ",1000,"),  # no epoch
        healthy.replace("episodes", "epoch"),  # a repeated name
        healthy.replace("wall_time_s", "wall"),  # a required column missing
    ):
        assert load._parse_plain(odd) is None, odd


def test_a_sweep_of_runs_with_different_columns_loads_as_one_frame_per_run_concatenated(tmp_path):
    """Runs of different algorithms log different columns: the metrics frame is the runs' rows in run order, the
    run columns first, then the union of the columns in the order they first appear, NaN where a run lacks one,
    as ``pd.concat`` of one frame per run gives it."""
    import pandas as pd
    import yaml

    from harness.report.load import RUN_COLUMNS, read_run

    def write(name, algo, seed, extra):
        run = tmp_path / name
        run.mkdir()
        cfg = {"algo": {"name": algo}, "env": {"name": "Hopper", "id": "Hopper-v5"}, "seed": seed, "workers": {"n": 1}}
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
        cols = ["epoch", "timesteps", "episodes", "wall_time_s", "return_mean", "return_max", "eval_return", *extra]
        lines = [",".join(cols)] + [
            ",".join(
                [str(e), str(100 * e), str(e), str(0.1 * e), "1", "2", "" if e % 2 else str(1.5 * e)]
                + ["0.25"] * len(extra)
            )
            for e in range(1, 4 + seed)
        ]
        (run / "metrics.csv").write_text("\n".join(lines) + "\n")

    write("a", "es", 0, [])
    write("b", "trpo", 1, ["kl_divergence"])
    write("c", "es", 2, ["archive_size", "kl_divergence"])
    loaded = load_runs(tmp_path)
    frames = []
    for run in ("a", "b", "c"):  # the order runs are found and read in: the frame's order too
        info, metrics, _ = read_run(tmp_path / run, run)
        metrics = metrics.assign(train_time_s=metrics["wall_time_s"])  # not logged: the wall time, last
        frames.append(metrics.assign(**info)[list(RUN_COLUMNS) + list(metrics.columns)])
    expected = pd.concat(frames, ignore_index=True)
    expected["workers_n"] = expected["workers_n"].astype("Int64")
    expected["env"] = expected["run"].map(dict(zip(loaded.runs["run"], loaded.runs["env"])))
    expected["algo"] = expected["run"].map(dict(zip(loaded.runs["run"], loaded.runs["algo"])))
    pd.testing.assert_frame_equal(loaded.metrics, expected)
    assert {"kl_divergence", "archive_size"} <= set(loaded.metrics.columns)


def test_the_draws_of_the_resamples_are_rliables_choice_as_32_bit_integers():
    for runs, shape in ((7, (3, 5)), (1000, (4, 100, 2)), (1, (2, 2))):
        a = np.random.RandomState(5).choice(runs, shape, replace=True)
        b = stats._draw(np.random.RandomState(5), runs, shape)
        np.testing.assert_array_equal(a, b)


def test_a_large_groups_band_is_bootstrapped_at_fewer_points_and_its_line_everywhere(monkeypatch):
    """Beyond ``BAND_VALUES`` resampled values, the CI is computed at ``band_points`` evenly spaced points, both
    ends included, and drawn straight between them; the IQM line stays exact at every grid point."""
    rng = np.random.default_rng(7)
    runs = [(np.arange(0.0, 50.0), np.cumsum(rng.normal(1.0, 1.0, 50))) for _ in range(30)]
    full = curves.aggregate_curves(runs, points=41, reps=200, seed=1)
    assert full["band_exact"].all()
    monkeypatch.setattr(curves, "BAND_VALUES", 30 * 200 * 20)  # room for 20 of the 41 points
    assert curves.band_points(30, 41, 200) == 20
    assert curves.band_points(30, 41, 200, budget=1) == curves.MIN_BAND_POINTS
    cut = curves.aggregate_curves(runs, points=41, reps=200, seed=1)
    np.testing.assert_array_equal(cut["iqm"], full["iqm"])
    at = np.flatnonzero(cut["band_exact"].to_numpy())
    assert at[0] == 0 and at[-1] == 40 and len(at) == 20
    mat = curves.curves_on_grid(runs, full["x"].to_numpy())
    _, lo, hi = stats.iqm_with_ci(mat[:, at], reps=200, seed=1)
    np.testing.assert_array_equal(cut["lower"].to_numpy()[at], lo)
    np.testing.assert_array_equal(cut["upper"].to_numpy()[at], hi)
    between = ~cut["band_exact"].to_numpy()
    np.testing.assert_allclose(cut["lower"][between], np.interp(cut["x"], cut["x"][at], lo)[between])


def test_evaluated_rows_by_run_are_each_runs_evaluated_rows_in_epoch_order():
    import pandas as pd

    from harness.report.aggregate import evaluated_by_run

    metrics = pd.DataFrame(
        {
            "run": ["b", "a", "b", "a", "c", "b"],
            "epoch": [3.0, 2.0, 1.0, 1.0, 1.0, 2.0],
            "eval_return": [3.0, 20.0, 1.0, 10.0, np.nan, np.nan],
        }
    )
    by_run = evaluated_by_run(metrics)
    assert list(by_run) == ["b", "a"]  # first appearance; c has no evaluation
    assert list(by_run["b"]["epoch"]) == [1.0, 3.0] and list(by_run["a"]["eval_return"]) == [10.0, 20.0]
    assert evaluated_by_run(metrics) is by_run  # asked again for the same frame
    other = metrics.assign(eval_return=1.0)
    assert list(evaluated_by_run(other)) == ["b", "a", "c"]  # another frame: its own answer


def test_a_curves_panel_draws_at_most_its_cap_of_thin_lines_spread_over_the_seeds():
    import pandas as pd

    from harness.report.figures import _run_count_label, thin_runs

    g = pd.DataFrame({"seed": range(9, -1, -1), "run": [f"r{i}" for i in range(10)], "status": "completed"})
    assert list(thin_runs(g, most=4)["seed"]) == [0, 3, 6, 9]
    assert thin_runs(g, most=10).equals(g)
    assert _run_count_label("es", g, drawn=4) == "es (10 runs, 4 drawn)"
    assert _run_count_label("es", g, drawn=10) == "es (10 runs)"


def test_a_large_tree_is_read_by_a_pool_of_processes_to_the_same_frames(tmp_path, monkeypatch):
    """Beyond ``PARALLEL_RUNS`` folders the runs are read by worker processes: the same runs, rows, skips and
    configs, in the same order, as one process reads them."""
    import concurrent.futures

    import pandas as pd

    from harness.bench.report_scale import SOURCE, TEMPLATES, Template, build_tree
    from harness.report import load

    build_tree(tmp_path / "runs", 9, {a: Template(ROOT / SOURCE / n) for a, n in TEMPLATES.items()}, 2, 3)
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "config.yaml").write_text("algo: {name: es}\nenv: {name: Hopper}\nseed: 1\n")
    (tmp_path / "runs" / "broken" / "metrics.csv").write_text("epoch,timesteps\n1,2\n")
    one = load.load_runs(tmp_path / "runs")
    pools = []

    class Recorded(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Recorded)
    monkeypatch.setattr(load, "PARALLEL_RUNS", 3)
    many = load.load_runs(tmp_path / "runs")
    assert len(pools) == (1 if (load.os.cpu_count() or 1) > 1 else 0)
    pd.testing.assert_frame_equal(many.metrics, one.metrics)
    pd.testing.assert_frame_equal(many.runs.drop(columns="mtime"), one.runs.drop(columns="mtime"))
    assert many.skipped == one.skipped and len(one.skipped) == 1 and many.configs == one.configs
