"""The report: hand-computed statistics on synthetic curves, the loader, and an end-to-end report of real runs.

Every "trpo" run in this file is SYNTHETIC: a run directory written by :func:`write_run` with the runner's
contract (config.yaml, metrics.csv, summary.json) and made-up numbers, standing in for real TRPO runs
until ``algo=trpo`` exists. The ES runs of the end-to-end test are real, made by the CLI.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.report import ReportOptions, build_report, curves, stats
from harness.report.load import load_runs
from tests.conftest import FAST, ROOT, read_metrics, run_cli

REQUIRED = ("epoch", "timesteps", "episodes", "wall_time_s", "return_mean", "return_max", "eval_return")


def write_run(path, algo, seed, rows, env="InvertedPendulum", workers_n=1, status="completed", backend="process"):
    """A SYNTHETIC run directory with the runner's contract; ``rows`` are dicts (``eval_return`` None = not
    evaluated). ``status=None`` writes no summary.json (a run still going, or killed hard)."""
    path.mkdir(parents=True)
    cfg = {
        "algo": {"name": algo},
        "env": {"name": env, "id": f"{env}-v5"},
        "seed": seed,
        "workers": {"n": workers_n, "backend": backend},
        "budget": {"timesteps": 0},
        "wandb": {"mode": "disabled"},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=REQUIRED)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else repr(r[k])) for k in REQUIRED})
    if status is not None:
        (path / "summary.json").write_text(json.dumps({"status": status}))
    return path


def linear_rows(steps_per_epoch, last_step, slope, seconds_per_step):
    """Every epoch evaluated: eval_return = slope * timesteps, wall_time_s = seconds_per_step * timesteps."""
    rows = []
    for e in range(1, last_step // steps_per_epoch + 1):
        t = e * steps_per_epoch
        ret = slope * t
        rows.append(
            {
                "epoch": e,
                "timesteps": t,
                "episodes": e,
                "wall_time_s": seconds_per_step * t,
                "return_mean": ret,
                "return_max": ret,
                "eval_return": ret,
            }
        )
    return rows


# Known answers, by hand. SYNTHETIC trpo: 1000 steps per epoch, 1 s per 1000 steps, eval_return = c t / 1000
# up to 100k steps with c = 1.2, 1.0, 0.8: finals 120, 100, 80, mean 100 -> thresholds 25, 50, 75, 100.
# SYNTHETIC es: 5000 steps per epoch, 0.05 s per 1000 steps, eval_return = c t / 2000 up to 200k with
# c = 1.1, 1.0, 0.9.  At the 50% threshold (50): trpo first rows 42000, 50000, 63000 -> median 50000 steps,
# epoch 50, 50 s; es first rows 95000, 100000, 115000 -> median 100000 steps, epoch 20, 5 s. Ratios: ES needs
# 2x the timesteps, 0.4x the epochs, 0.1x the wall-clock time.  At 100%: trpo 84000, 100000, never -> 100000;
# es 185000, 200000, never -> 200000; the same ratios, 2 of 3 runs reaching on each side.
TRPO_SLOPES = (1.2 / 1000, 1.0 / 1000, 0.8 / 1000)
ES_SLOPES = (1.1 / 2000, 1.0 / 2000, 0.9 / 2000)


@pytest.fixture
def linear_results(tmp_path):
    root = tmp_path / "results"
    for seed, c in enumerate(TRPO_SLOPES):
        write_run(root / "trpo" / f"s{seed}", "trpo", seed, linear_rows(1000, 100_000, c, 1e-3))
    for seed, c in enumerate(ES_SLOPES):
        write_run(root / "es" / f"s{seed}", "es", seed, linear_rows(5000, 200_000, c, 5e-5))
    return root


# ----------------------------------------------------------------------------- pure functions


def test_interpolation_onto_a_grid_is_linear_inside_and_missing_outside():
    got = curves.interpolate_to_grid([0, 10, 20], [0, 100, 50], [-5, 0, 5, 10, 15, 20, 25])
    np.testing.assert_allclose(got, [np.nan, 0, 50, 100, 75, 50, np.nan])
    with pytest.raises(ValueError, match="strictly increasing"):
        curves.interpolate_to_grid([0, 10, 10], [0, 1, 2], [5])


def test_common_grid_spans_only_the_range_every_run_covers():
    np.testing.assert_allclose(curves.common_grid([[0, 10, 30], [5, 20]], points=4), [5, 10, 15, 20])
    assert curves.common_grid([[0, 10], [20, 30]]).size == 0
    runs = [([0, 100], [0, 100]), ([0, 50], [0, 100])]  # y = x to 100 steps, y = 2x to 50 steps
    agg = curves.aggregate_curves(runs, points=6, reps=50)
    np.testing.assert_allclose(agg["x"], [0, 10, 20, 30, 40, 50])  # stops where the shorter run stops
    np.testing.assert_allclose(agg["iqm"], 1.5 * agg["x"])  # 2 runs: IQM is the mean of x and 2x
    assert (agg["n_runs"] == 2).all()


def test_iqm_is_rliables_aggregate_iqm_per_point_with_a_seeded_ci():
    metrics = stats._rliable()[1]  # rliable.metrics (plain `import rliable` fails under pandas 3, see _rliable)

    for runs in range(1, 12):  # trimming int(runs / 4) at each end, like scipy's trim_mean
        scores = np.random.default_rng(runs).normal(size=(runs, 5))
        iqm = stats.iqm_with_ci(scores, reps=2)[0]
        for j in range(5):
            assert iqm[j] == pytest.approx(metrics.aggregate_iqm(scores[:, [j]]))
    state = np.random.get_state()
    iqm, lo, hi = stats.iqm_with_ci(scores, reps=300, seed=1)
    assert (lo <= iqm).all() and (iqm <= hi).all() and (lo < hi).all()
    again = stats.iqm_with_ci(scores, reps=300, seed=1)
    np.testing.assert_array_equal(again[1], lo)
    assert not np.array_equal(stats.iqm_with_ci(scores, reps=300, seed=2)[1], lo)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), state) if isinstance(a, np.ndarray))
    with pytest.raises(ValueError, match="NaN"):
        stats.iqm_with_ci(np.array([[1.0, np.nan]]))


def test_bootstrap_resamples_are_rliables_drawn_at_once():
    """The report draws every bootstrap resample at once instead of through arch's loop; they must be exactly
    rliable's resamples (StratifiedBootstrap via get_interval_estimates, StratifiedIndependentBootstrap)."""
    library, _ = stats._rliable()
    rng = np.random.default_rng(1)
    for runs in (1, 3, 5):
        scores = rng.normal(size=(runs, 7))
        with stats._seeded_numpy_global(3):
            point, interval = library.get_interval_estimates(
                {"x": scores[:, None, :]}, stats._iqm_over_runs, reps=200, confidence_interval_size=0.95
            )
        got = stats.iqm_with_ci(scores, reps=200, seed=3)
        for a, b in zip(got, (point["x"], interval["x"][0], interval["x"][1])):
            np.testing.assert_array_equal(a, b)
        a = rng.exponential(size=(runs, 4))
        a[0, 1] = np.inf
        for b_runs in (2, runs):
            b = rng.exponential(size=(b_runs, 4))
            with stats._seeded_numpy_global(7):
                expected = library.StratifiedIndependentBootstrap(a, b).apply(stats.ratio_of_medians, reps=200)
            got = stats._bootstrap_replicates(lambda x, y: stats.ratio_of_medians(x, y, axis=1), [a, b], 200, 7)
            np.testing.assert_array_equal(np.asarray(expected, float), got)


def test_time_to_threshold_is_the_first_evaluated_row_at_or_above_it():
    rows = pd.DataFrame(
        {
            "epoch": [2, 4, 6],
            "timesteps": [200, 400, 600],
            "wall_time_s": [1.5, 3.0, 4.5],
            "eval_return": [10.0, 30.0, 20.0],
        }
    )
    axes = curves.axes_of("wall_time_s")
    assert curves.time_to_threshold(rows, 30.0, axes) == {
        "reached": True,
        "epoch": 4,
        "timesteps": 400,
        "wall_time_s": 3.0,
    }
    assert curves.time_to_threshold(rows, 15.0, axes)["epoch"] == 4  # first crossing, no interpolation
    never = curves.time_to_threshold(rows, 30.5, axes)
    assert never["reached"] is False and never["timesteps"] == math.inf


def test_thresholds_from_the_final_return_or_the_learning_progress():
    np.testing.assert_allclose(curves.thresholds([100, 200], [0.25, 0.5]), [37.5, 75])
    # progress: start -100, final 150 -> -100 + f * 250
    np.testing.assert_allclose(curves.thresholds([100, 200], [0.25, 1.0], "progress", [-50, -150]), [-37.5, 150])
    with pytest.raises(ValueError):
        curves.thresholds([], [0.5])


def test_ratio_of_medians_when_runs_do_not_reach():
    assert stats.ratio_of_medians([1, 2, np.inf], [1, 1, 1]) == 2  # 2 of 3 reached: median 2
    assert stats.ratio_of_medians([1, np.inf, np.inf], [1, 1, 1]) == math.inf  # ES median never reached
    assert math.isnan(stats.ratio_of_medians([1, 1, 1], [1, np.inf, np.inf]))  # reference never: undefined
    r, lo, hi = stats.ratio_with_ci([2, 4, np.inf], [1, 2, 3], reps=300)
    assert r == 2 and lo <= r and hi == math.inf
    m, lo, hi = stats.median_with_ci([1.0, 2.0, 3.0, 4.0, 100.0], reps=300)
    assert m == 3 and 1 <= lo <= 3 <= hi <= 100


def test_ideal_scaling_line():
    np.testing.assert_allclose(curves.ideal_scaling([2, 4, 8], [10.0, 6.0, 4.0]), [10, 5, 2.5])


# ----------------------------------------------------------------------------- tables on synthetic curves


@pytest.mark.slow
def test_linear_curves_give_the_hand_computed_table(linear_results, tmp_path):
    rep = build_report(linear_results, tmp_path / "out", ReportOptions(reps=200))
    thr = rep.frames["thresholds"]
    assert list(thr["reference"]) == ["trpo"] * 4 and not thr["fallback"].any()
    np.testing.assert_allclose(thr["threshold"], [25, 50, 75, 100])
    ratios = rep.frames["ratios"].set_index(["axis", "fraction"])
    half, full = ratios.loc[("timesteps", 0.5)], ratios.loc[("timesteps", 1.0)]
    assert (half["median"], half["ref_median"]) == (100_000, 50_000)
    assert half["ratio"] == pytest.approx(2.0)
    assert ratios.loc[("epoch", 0.5), "ratio"] == pytest.approx(0.4)
    assert ratios.loc[("train_time_s", 0.5), "ratio"] == pytest.approx(0.1)  # no train_time_s: wall_time_s
    assert half["ratio_lower"] <= 2.0 <= half["ratio_upper"]
    assert full["ratio"] == pytest.approx(2.0)
    assert (full["n_reached"], full["ref_n_reached"], full["n_runs"]) == (2, 2, 3)
    # Salimans et al.'s mean curves: trpo's mean is t/1000, es' t/2000 -> the same 2x
    assert half["meancurve_ratio"] == pytest.approx(2.0)
    ttt = rep.frames["ttt"]
    never = ttt[(ttt["fraction"] == 1.0) & ~ttt["reached"]]
    assert sorted(never["algo"]) == ["es", "trpo"] and (never["timesteps"] == math.inf).all()
    trade = rep.frames["tradeoff"].set_index(["group", "axis", "fraction"])["median"]
    assert trade[("es", "epoch", 0.5)] == 20 and trade[("trpo n=1", "train_time_s", 0.5)] == pytest.approx(50)
    md = (tmp_path / "out" / "salimans_table1.md").read_text()
    # with each side's evaluation spacing (es evaluated every 5000 steps, trpo every 1000) before the ratios
    assert "| InvertedPendulum | es | trpo | 50% | 50 | 3/3 | 3/3 | 5000 / 1000 | 2 [" in md


@pytest.mark.slow
def test_without_trpo_the_best_algorithm_sets_the_thresholds(linear_results, tmp_path):
    import shutil

    shutil.rmtree(linear_results / "trpo")
    write_run(linear_results / "other" / "s0", "other", 0, linear_rows(1000, 100_000, 0.1 / 1000, 1e-3))
    rep = build_report(linear_results, tmp_path / "out", ReportOptions(reps=50))
    thr = rep.frames["thresholds"]
    assert set(thr["reference"]) == {"es"} and thr["fallback"].all()
    np.testing.assert_allclose(thr["threshold"], [25, 50, 75, 100])  # es finals 110, 100, 90
    assert set(rep.frames["ratios"]["algo"]) == {"other"}
    assert "No `trpo` runs" in rep.index.read_text()


@pytest.mark.slow
def test_loader_keeps_unfinished_runs_and_skips_malformed_ones(tmp_path, caplog):
    root = tmp_path / "results"
    rows = linear_rows(1000, 3000, 0.01, 1e-3)
    write_run(root / "a" / "deep" / "ok", "trpo", 0, rows)
    write_run(root / "interrupted", "trpo", 1, rows, status="interrupted")
    write_run(root / "running", "trpo", 2, rows, status=None)
    write_run(root / "serial", "trpo", 9, rows, workers_n=4, backend="serial")
    write_run(root / "empty", "trpo", 3, [])
    write_run(root / "badyaml", "trpo", 4, rows)
    (root / "badyaml" / "config.yaml").write_text("algo: [unclosed\n")
    write_run(root / "nocol", "trpo", 5, rows)
    (root / "nocol" / "metrics.csv").write_text("epoch,timesteps\n1,100\n")
    write_run(root / "text", "trpo", 6, rows)
    (root / "text" / "metrics.csv").write_text(",".join(REQUIRED) + "\n1,x,1,0.1,1,1,1\n")
    write_run(root / "noalgo", "trpo", 7, rows)
    (root / "noalgo" / "config.yaml").write_text("env: {name: E}\nseed: 0\n")
    write_run(root / "torn", "trpo", 8, rows)
    with open(root / "torn" / "metrics.csv", "a") as f:
        f.write("4,4000")  # a hard kill mid-row
    loaded = load_runs(root)
    status = dict(zip(loaded.runs["run"], loaded.runs["status"]))
    assert status == {
        "a/deep/ok": "completed",
        "interrupted": "interrupted",
        "running": "unknown",
        "torn": "completed",
        "serial": "completed",
    }
    workers = dict(zip(loaded.runs["run"], loaded.runs["workers_n"]))
    assert workers["serial"] == 1 and workers["a/deep/ok"] == 1  # serial runs in-process: one worker
    assert loaded.runs.set_index("run").loc["torn", "epochs"] == 3
    skipped = {p.split("/")[-1]: why for p, why in loaded.skipped}
    assert set(skipped) == {"empty", "badyaml", "nocol", "text", "noalgo"}
    assert skipped["empty"] == "no metrics rows" and "lacks columns" in skipped["nocol"]
    assert "non-numeric" in skipped["text"] and "algo.name" in skipped["noalgo"]
    assert list(loaded.metrics.columns[:10]) == [
        "run",
        "algo",
        "env",
        "env_id",
        "seed",
        "workers_n",
        "workers_backend",
        "engine",
        "status",
        "run_dir",
    ]
    assert len(loaded.metrics) == 5 * 3
    assert "skipping" in caplog.text


# ----------------------------------------------------------------------------- end to end, real ES runs


def _first_reach(rows, thr):
    for r in rows:
        if r["eval_return"] != "" and float(r["eval_return"]) >= thr:
            # the report's clock: training time (the synthetic runs have none: their wall_time_s)
            return {
                "timesteps": float(r["timesteps"]),
                "train_time_s": float(r.get("train_time_s") or r["wall_time_s"]),
                "epoch": float(r["epoch"]),
            }
    return {"timesteps": math.inf, "train_time_s": math.inf, "epoch": math.inf}


@pytest.mark.slow
def test_report_of_real_es_runs_and_synthetic_trpo_runs(tmp_path):
    results = tmp_path / "results"
    # real ES runs: seeds 0 and 1 in-process (the serial backend counts as one worker), seed 0 on two workers
    common = ("env=InvertedPendulum", "budget.timesteps=3000", "algo.population_size=8", "eval.episodes=2", *FAST)
    run_cli("-m", *common, "seed=0,1", "workers.backend=serial", f"hydra.sweep.dir={results / 'es'}")
    run_cli(*common, "seed=0", "workers.n=2", f"hydra.run.dir={results / 'es' / 'two_workers'}")
    # SYNTHETIC trpo runs (not produced by any trainer): 2048 steps per epoch, evaluated every other epoch;
    # one of them interrupted
    for seed in range(3):
        rows = [
            {
                "epoch": e,
                "timesteps": 2048 * e,
                "episodes": 20 * e,
                "wall_time_s": 0.8 * e + 0.1 * seed,
                "return_mean": 10.0 + 3 * e,
                "return_max": 12.0 + 3 * e,
                "eval_return": (8.0 + 3 * e + 2 * seed) if e % 2 == 0 else None,
            }
            for e in range(1, 9)
        ]
        write_run(
            results / "trpo_synthetic" / f"seed{seed}",
            "trpo",
            seed,
            rows,
            status="interrupted" if seed == 2 else "completed",
        )
    (results / "broken").mkdir()
    (results / "broken" / "config.yaml").write_text("{")
    (results / "broken" / "metrics.csv").write_text("")
    out = tmp_path / "report"
    env = {**os.environ, "WANDB_SILENT": "true", "HOME": str(tmp_path)}
    # --include-busy: the real runs share this machine with whatever else runs (their summary.json may say busy),
    # and this test is about the numbers, not about leaving busy runs out (tests/test_report_paper.py is)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.report",
            str(results),
            "--out",
            str(out),
            "--reps",
            "200",
            "--wandb",
            "offline",
            "--include-busy",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 runs, 1 skipped" in proc.stdout

    stems = ["curves_InvertedPendulum", "tradeoff_InvertedPendulum", "scaling_InvertedPendulum"]
    tabs = [
        "runs",
        "curves",
        "thresholds",
        "time_to_threshold",
        "tradeoff",
        "salimans_table1",
        "final_return",
        "scaling",
    ]
    for stem in stems:
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000, (stem, ext)
    for t in tabs:
        assert (out / f"{t}.csv").exists() and (out / f"{t}.md").exists(), t
    index = (out / "report.md").read_text()
    for name in [*(f"{s}.png" for s in stems), *(f"{t}.md" for t in tabs)]:
        assert f"({name})" in index, name
    assert "`trpo_synthetic/seed2` (interrupted)" in index and "broken" in index

    # recompute Table 1 by hand from the CSVs
    es_runs = sorted(p.parent for p in results.glob("es/*/metrics.csv"))
    assert len(es_runs) == 3
    es_n1 = [
        read_metrics(p)
        for p in es_runs
        if yaml.safe_load((p / "config.yaml").read_text())["workers"]["backend"] == "serial"
    ]
    assert len(es_n1) == 2
    trpo = [read_metrics(p) for p in sorted(results.glob("trpo_synthetic/*"))]
    completed = trpo[:2]  # seed 2 was "interrupted": its last return is not a final return
    final = np.mean([[float(r["eval_return"]) for r in rows if r["eval_return"] != ""][-1] for rows in completed])
    assert final == pytest.approx(np.mean([32, 34]))
    table = pd.read_csv(out / "salimans_table1.csv")
    # learning axes: one es group (seeds 0 and 1, whatever their workers.n); seconds: one group per workers.n
    assert set(zip(table["axis"], table["group"], table["reference_group"])) == {
        ("timesteps", "es", "trpo"),
        ("epoch", "es", "trpo"),
        ("train_time_s", "es n=1", "trpo n=1"),
        ("train_time_s", "es n=2", "trpo n=1"),
    }
    assert (table.loc[table["axis"] != "train_time_s", "n_runs"] == 2).all()
    assert (table["ref_n_runs"] == 2).all()  # trpo seed 2 did not complete: left out
    finite = 0
    for _, row in table[table["group"].isin(["es", "es n=1"])].iterrows():
        thr = row["fraction"] * final
        assert row["threshold"] == pytest.approx(thr)
        axis = row["axis"]
        # seed 0 at workers.n=2 has the same rows as at n=1 apart from wall_time_s
        es_med = np.median([_first_reach(rows, thr)[axis] for rows in es_n1])
        trpo_med = np.median([_first_reach(rows, thr)[axis] for rows in completed])
        expected = math.nan if math.isinf(trpo_med) else es_med / trpo_med
        got = row["ratio"]
        if math.isnan(expected):
            assert math.isnan(got), (row["fraction"], axis)
        else:
            assert got == pytest.approx(expected), (row["fraction"], axis)
            finite += math.isfinite(expected)
    assert finite > 0  # the check compared actual numbers, not only missing values

    from tests.wandb_records import history, run_info

    (wandb_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    assert run_info(wandb_file)["job_type"] == "report"
    logged = set().union(*(h.keys() for h in history(wandb_file)))
    for key in ("figures/curves_InvertedPendulum", "figures/scaling_InvertedPendulum", "tables/salimans_table1"):
        assert any(k == key or k.startswith(key + "/") for k in logged), key


@pytest.mark.slow
def test_cli_errors(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "harness.report", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    assert cli(str(tmp_path / "missing")).returncode == 2
    (tmp_path / "empty").mkdir()
    proc = cli(str(tmp_path / "empty"))
    assert proc.returncode == 1 and "no usable run" in proc.stderr
    assert (tmp_path / "empty" / "report" / "report.md").exists()
    assert cli(str(tmp_path / "empty"), "--scaling-fraction", "0.3").returncode == 2


def test_cli_defaults_are_the_report_options():
    from harness.report import __main__ as cli

    args, opts = cli.parse_args([str(ROOT)]), ReportOptions()
    for key in (
        "reps",
        "seed",
        "ci",
        "points",
        "threshold_mode",
        "reference",
        "scaling_fraction",
        "wandb",
        "wandb_project",
        "wandb_entity",
    ):
        assert getattr(args, key) == getattr(opts, key), key
    assert tuple(args.fractions) == tuple(opts.fractions) == curves.DEFAULT_FRACTIONS
    assert cli.THRESHOLD_MODES == curves.THRESHOLD_MODES


@pytest.mark.slow
def test_loader_follows_links_to_runs_and_reads_each_once(tmp_path):
    kept = tmp_path / "elsewhere"
    rows = linear_rows(1000, 3000, 0.01, 1e-3)
    write_run(kept / "es0", "es", 0, rows)
    write_run(kept / "es1", "es", 1, rows)
    comparison = tmp_path / "comparison"
    comparison.mkdir()
    (comparison / "first").symlink_to(kept / "es0")
    (comparison / "all").symlink_to(kept)  # es0 again, through another link
    (comparison / "all" / "es1" / "loop").symlink_to(comparison)  # a cycle
    loaded = load_runs(comparison)
    assert sorted(loaded.runs["seed"]) == [0, 1]


@pytest.mark.slow
def test_a_run_that_failed_before_its_first_epoch_is_listed_as_skipped(tmp_path):
    write_run(tmp_path / "ok", "es", 0, linear_rows(1000, 3000, 0.01, 1e-3))
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / "config.yaml").write_text((tmp_path / "ok" / "config.yaml").read_text())
    (dead / "summary.json").write_text('{"status": "failed", "error": "WorkerError: a rollout worker died"}')
    loaded = load_runs(tmp_path)
    assert list(loaded.runs["run"]) == ["ok"]
    ((path, why),) = loaded.skipped
    assert path.endswith("dead") and "no metrics.csv" in why and "WorkerError" in why
