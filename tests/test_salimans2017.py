"""Salimans et al. 2017's Table 1 protocol (harness/report/salimans2017.py): hand-computed answers on
SYNTHETIC curves (run directories written by tests.test_report.write_run, numbers made up), the paper's data,
and the report's --protocol flag end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.report import ReportOptions, build_report, salimans2017
from tests.conftest import run_cli
from tests.test_report import write_run


def _curve(t, v):
    return pd.DataFrame({"timesteps": np.asarray(t, float), "eval_return": np.asarray(v, float)})


def test_the_mean_curve_interpolates_every_run_onto_the_union_of_their_evaluations():
    a = _curve([0, 100, 200, 300], [0, 10, 20, 30])
    b = _curve([0, 150, 250], [10, 40, 60])  # shorter: the mean ends at its last evaluation, 250
    mean = salimans2017.mean_curve([a, b])
    assert mean["timesteps"].tolist() == [0, 100, 150, 200, 250]
    # b at 100: 10 + 30 * 100/150 = 30; a at 150: 15; b at 200: 50; a at 250: 25
    np.testing.assert_allclose(
        mean["eval_return"], [(0 + 10) / 2, (10 + 30) / 2, (15 + 40) / 2, (20 + 50) / 2, (25 + 60) / 2]
    )
    # rows without an evaluation are not points of the curve
    c = pd.concat([a, _curve([50], [math.nan])])
    assert salimans2017.mean_curve([c])["timesteps"].tolist() == [0, 100, 200, 300]


def test_a_crossing_is_interpolated_between_evaluations():
    curve = _curve([0, 100, 200, 300], [5, 10, 30, 20])
    assert salimans2017.crossing(curve, 20) == pytest.approx(150)  # 100 + (20 - 10) / (30 - 10) * 100
    assert salimans2017.crossing(curve, 3) == 0  # already there at the first evaluation
    assert salimans2017.crossing(curve, 30) == 200
    assert salimans2017.crossing(curve, 31) == math.inf  # never: a lower bound, not a number
    assert math.isnan(salimans2017.crossing(curve, math.nan))


def test_thresholds_are_fractions_of_the_learning_progress_with_a_robust_final():
    # init -100 at step 0; the last 3 evaluations 280, 300, 20 (a collapse): final = 200, not 20
    curve = _curve([0, 1, 2, 3, 4, 5], [-100, 50, 120, 280, 300, 20])
    init, final, thr, note = salimans2017.thresholds(curve, (0.25, 0.5, 1.0), final_evals=3)
    assert (init, final, note) == (-100, 200, "")
    np.testing.assert_allclose(thr, [-100 + 0.25 * 300, -100 + 0.5 * 300, 200])
    # the paper's thresholds are of this form, not fractions of the score: HalfCheetah's are evenly spaced (to
    # 0.2% of the range: rounding in the paper), and its 25% is -1.35, not 0.25 x 2385.79
    paper = salimans2017.paper_table3().query("env == 'HalfCheetah'")["threshold"].to_numpy()
    steps = np.diff(paper)
    assert np.ptp(steps) < 0.002 * (paper[-1] - paper[0]) and abs(paper[0] - 0.25 * paper[-1]) > 500
    # no step-0 evaluation: init is undefined, no threshold
    _, _, thr, note = salimans2017.thresholds(_curve([10, 20], [1, 2]))
    assert all(math.isnan(t) for t in thr) and "step-0" in note


def test_the_papers_table_is_consistent_with_itself():
    t = salimans2017.paper_table3()
    assert len(t) == 24 and set(t["env"]) == {
        "HalfCheetah",
        "Hopper",
        "InvertedDoublePendulum",
        "InvertedPendulum",
        "Swimmer",
        "Walker2d",
    }
    np.testing.assert_allclose(t["es_timesteps"] / t["trpo_timesteps"], t["es_trpo_ratio"], rtol=0.04)
    assert t.query("env == 'HalfCheetah' and percent == 25")["threshold"].item() == -1.35


def _rows(points):
    return [
        {
            "epoch": i,
            "timesteps": t,
            "episodes": i,
            "wall_time_s": float(t),
            "return_mean": r,
            "return_max": r,
            "eval_return": r,
        }
        for i, (t, r) in enumerate(points)
    ]


@pytest.fixture
def results(tmp_path):
    """SYNTHETIC HalfCheetah runs. trpo seeds 0, 1: 0 at step 0, then linear to 100 and 80 at 1000 steps (mean
    curve 0, 45, 90 at 0, 500, 1000): init 0, final (last 2 evaluations) (45 + 90) / 2 = 67.5, thresholds 16.875,
    33.75, 50.625, 67.5. es seeds 0, 1: 0 at 0, 20 at 1000, 60 at 2000 (both): never reaches 67.5 within 2000."""
    root = tmp_path / "results"
    for seed, final in ((0, 100.0), (1, 80.0)):
        write_run(
            root / f"trpo_{seed}", "trpo", seed, _rows([(0, 0.0), (500, final / 2), (1000, final)]), env="HalfCheetah"
        )
        write_run(root / f"es_{seed}", "es", seed, _rows([(0, 0.0), (1000, 20.0), (2000, 60.0)]), env="HalfCheetah")
    return root


@pytest.mark.slow
def test_the_table_by_hand(results):
    from harness.report.load import load_runs

    loaded = load_runs(results)
    t1 = salimans2017.table(loaded.metrics, loaded.runs, "trpo", final_evals=2)
    assert list(t1["algo"].unique()) == ["es"] and len(t1) == 4
    np.testing.assert_allclose(t1["threshold"], [16.875, 33.75, 50.625, 67.5])
    np.testing.assert_allclose(
        t1["reference_timesteps"], [16.875 / 0.09, 33.75 / 0.09, 500 + (50.625 - 45) / 0.09, 500 + (67.5 - 45) / 0.09]
    )
    # es: 20 per 1000 steps up to 1000, then 40 per 1000 steps
    np.testing.assert_allclose(t1["algo_timesteps"][:3], [16.875 / 0.02, 1000 + 13.75 / 0.04, 1000 + 30.625 / 0.04])
    np.testing.assert_allclose(t1["ratio"][:3], t1["algo_timesteps"][:3] / t1["reference_timesteps"][:3])
    last = t1.iloc[3]
    assert not last["reached"] and math.isnan(last["ratio"]) and last["algo_timesteps"] == math.inf
    assert last["ratio_lower_bound"] == pytest.approx(2000 / 750)
    # the paper's numbers beside ours
    assert t1["paper_ratio"].tolist() == [0.15, 0.49, 0.42, 0.58]
    assert t1["algo_over_paper_trpo"].iloc[0] == pytest.approx(843.75 / 9.05e5)
    text = salimans2017.markdown(t1)
    assert "> 2e3" in text and "> 2.67" in text and "init 0, final 67.5" in text and "protocol salimans2017" in text


@pytest.mark.slow
def test_the_report_draws_the_protocol_only_when_asked(results, tmp_path):
    plain = build_report(results, tmp_path / "plain", ReportOptions(reps=50))
    assert not (tmp_path / "plain" / "salimans2017_table1.md").exists()
    assert "protocol score (threshold rule final" in (tmp_path / "plain" / "salimans_table1.md").read_text()
    rep = build_report(results, tmp_path / "paper", ReportOptions(reps=50, protocol="salimans2017", final_evals=2))
    names = {p.name for p in rep.figures + rep.tables}
    assert {
        "salimans2017_table1.md",
        "salimans2017_table1.csv",
        "salimans2017_ratios.png",
        "salimans2017_curves.png",
    } <= names
    assert "salimans2017_table1" in rep.index.read_text()
    assert plain.frames.get("salimans2017") is None and len(rep.frames["salimans2017"]) == 4
    with pytest.raises(ValueError, match="protocol"):
        build_report(results, tmp_path / "bad", ReportOptions(protocol="salimans"))


# -- the recipe ---------------------------------------------------------------------------------------------

TASKS = ("HalfCheetah", "Hopper", "Swimmer", "Walker2d", "InvertedPendulum", "InvertedDoublePendulum")


def _recipe(*overrides: str):
    """The recipe's config of one job as the CLI runs it: composed, then its per_algo entries applied."""
    from hydra import compose, initialize_config_dir

    from harness.__main__ import _algo_keys
    from harness.config import apply_per_algo
    from tests.conftest import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return apply_per_algo(compose("config", overrides=["+experiment=salimans2017_mujoco", *overrides]), _algo_keys)


@pytest.mark.slow
def test_the_recipe_is_one_es_on_a_64_64_mlp_with_bins_on_hopper_and_swimmer_only():
    import yaml

    from harness.config import validate
    from tests.conftest import ROOT

    settings = set()
    for env in TASKS:
        cfg = _recipe("algo=es", f"env={env}")
        validate(cfg)
        assert (cfg.policy.name, list(cfg.policy.hidden_sizes)) == ("mlp", [64, 64])
        assert cfg.policy.action_bins == (10 if env in ("Hopper", "Swimmer") else 0), env
        assert cfg.eval.at_start and cfg.eval.episodes == 10
        settings.add(
            (
                cfg.algo.sigma,
                cfg.algo.learning_rate,
                cfg.algo.optimizer,
                cfg.algo.weight_decay,
                cfg.algo.population_size,
                cfg.algo.train_survival_bonus,
            )
        )
        assert cfg.budget.timesteps >= (25_000_000 if env in ("Hopper", "Walker2d") else 5_000_000)
        trpo = _recipe("algo=trpo", f"env={env}")
        assert trpo.budget.timesteps == (5_000_000 if env in ("HalfCheetah", "Hopper", "Walker2d") else 1_000_000)
    # the settings' name (recipe.variant, in the run folder's name) follows the algo= choice (resolved in a job)
    assert dict(_recipe("algo=es").recipe.variant_of) == {
        "es": "starter",
        "trpo": "zoo",
        "trpo_modular_rl": "modular_rl",
    }
    # one setting for every task, the starter's (Hopper and Walker2d have tuned per-environment files: overridden)
    assert len(settings) == 1 and next(iter(settings))[:4] == (0.02, 0.01, "adam", 0.005)
    modular = _recipe("algo=trpo_modular_rl", "env=Hopper")
    assert (
        modular.algo.name,
        modular.algo.gamma,
        modular.algo.gae_lambda,
        modular.algo.n_steps * modular.algo.n_envs,
    ) == ("trpo", 0.995, 0.97, 25000)
    assert "not confirmed by the paper" in modular.algo.hparams_source
    validate(modular)
    sweep = yaml.safe_load((ROOT / "experiments" / "salimans2017_mujoco.yaml").read_text())["hydra"]["sweeper"]
    assert sweep["params"]["seed"] == "0,1,2,3,4,5" and set(sweep["params"]["env"].split(",")) == set(TASKS)


@pytest.mark.slow
def test_a_recipe_run_extended_by_a_larger_budget_continues_exactly(tmp_path):
    """How Hopper's and Walker2d's ES runs reach 2.5e7 steps and more: the recipe run again with a larger budget
    continues each completed run from its checkpoint (resume=auto), to the rows of a run given that budget at once.
    Hopper: 10 action bins, so this is also a real run of the discretized policy."""
    from harness.tracking import COST_COLUMNS
    from tests.conftest import read_metrics, run_cli

    small = (
        "-m",
        "+experiment=salimans2017_mujoco",
        "env=Hopper",
        "seed=0",
        "env.max_episode_steps=30",
        "+per_algo.es.noise_table_size=1000000",
        "per_algo.es.population_size=6",
        "eval.every_timesteps=0",
        "eval.episodes=2",
        "workers.n=1",
        "wandb.mode=disabled",
        "progress=false",
    )

    def rows(folder):
        return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(folder)]

    run_cli(*small, "budget.timesteps_of.es.Hopper=200", f"hydra.sweep.dir={tmp_path / 'extended'}")
    run_dir = tmp_path / "extended" / "es_starter_Hopper_seed0"
    first = rows(run_dir)
    proc = run_cli(*small, "budget.timesteps_of.es.Hopper=600", f"hydra.sweep.dir={tmp_path / 'extended'}")
    assert "continuing" in proc.stdout + proc.stderr
    run_cli(*small, "budget.timesteps_of.es.Hopper=600", f"hydra.sweep.dir={tmp_path / 'whole'}")
    whole = rows(tmp_path / "whole" / "es_starter_Hopper_seed0")
    assert rows(run_dir) == whole and len(whole) > len(first) > 1 and whole[: len(first)] == first
    assert whole[0]["epoch"] == "0" and whole[0]["timesteps"] == "0"  # the step-0 evaluation, once


@pytest.mark.slow
def test_make_figures_draws_the_part_beside_the_others(results, tmp_path):
    import shutil

    from harness.report.paper import PaperOptions, build_paper

    root = tmp_path / "paper_results"
    shutil.copytree(results, root / "salimans2017_mujoco")
    paper = build_paper(root, tmp_path / "figures", PaperOptions(reps=50))
    index = paper.index.read_text()
    assert "Table 1 as Salimans et al. measured it" in index and "salimans2017_mujoco/salimans2017_table1" in index
    assert (tmp_path / "figures" / "salimans2017_mujoco" / "salimans2017_ratios.png").exists()
    assert "`table1_mujoco`" in index  # the other parts are missing, and said to be


@pytest.mark.slow
def test_a_task_without_a_reference_run_is_listed_not_dropped(results):
    import shutil

    from harness.report.load import load_runs

    for seed in (0, 1):
        shutil.rmtree(results / f"trpo_{seed}")
    write_run(results / "es_hopper", "es", 0, _rows([(0, 0.0), (1000, 20.0)]), env="Hopper")
    loaded = load_runs(results)
    t1 = salimans2017.table(loaded.metrics, loaded.runs, "trpo")
    assert set(t1["env"]) == {"HalfCheetah", "Hopper"} and set(t1["note"]) == {"no trpo run"}
    text = salimans2017.markdown(t1)
    assert "Tasks without a reference run (no threshold yet): HalfCheetah: es (2 seeds); Hopper: es (1 seed)." in text


def test_another_algorithms_entries_and_lookup_tables_do_not_refuse_a_resume():
    """A recipe's per_algo.es entry changed (its population chosen after TRPO runs began) or a lookup table
    grown (a new variant) does not make resume=auto refuse a TRPO run: the keys that decide what a run
    computes are compared, not those."""
    from harness.__main__ import settings_differ
    from harness.config import not_a_setting

    saved = {
        "algo": {"name": "trpo", "gamma": 0.99},
        "per_algo": {"es": {"population_size": 40}},
        "recipe": {"variant": "zoo", "variant_of": {"es": "starter", "trpo": "zoo"}},
    }
    now = {
        "algo": {"name": "trpo", "gamma": 0.99},
        "per_algo": {"es": {"population_size": 20}},
        "recipe": {"variant": "zoo", "variant_of": {"es": "starter", "trpo": "zoo", "trpo_modular_rl": "modular_rl"}},
    }
    assert settings_differ(saved, now) == []
    now["recipe"]["variant"], now["algo"]["gamma"] = "modular_rl", 0.995
    assert settings_differ(saved, now) == ["algo.gamma: 0.99 -> 0.995", "recipe.variant: zoo -> modular_rl"]
    assert not_a_setting("budget.timesteps_of.es.Hopper") and not not_a_setting("budget.timesteps")


@pytest.mark.slow
def test_the_recipe_on_a_task_it_has_no_entry_for_says_so_in_one_line(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli(
        "-m",
        "+experiment=salimans2017_mujoco",
        "algo=es",
        "env=Ant",
        "seed=0",
        "wandb.mode=disabled",
        f"hydra.sweep.dir={tmp_path}",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error: invalid config: Interpolation key 'timesteps_of.es.Ant' not found: a lookup table" in proc.stderr
    assert (tmp_path / "failed_jobs.tsv").exists() and not (tmp_path / "es_starter_Ant_seed0").exists()


def test_final_never_includes_the_step_0_evaluation():
    init, final, _, note = salimans2017.thresholds(_curve([0, 10], [50, 90]), final_evals=5)
    assert (init, final, note) == (50, 90, "")
    assert "after step 0" in salimans2017.thresholds(_curve([0], [50]))[3]


@pytest.mark.slow
@pytest.mark.parametrize("sweep", [False, True], ids=["single", "sweep"])
def test_an_algorithm_the_recipe_has_no_settings_for_gets_a_one_line_error(tmp_path, sweep):
    """algo=vo: the recipe's lookup tables (recipe.variant_of, budget.timesteps_of) have no entry for it. A
    single run and a -m sweep (whose folder name reads recipe.variant before any job starts) both say so in one
    line, with no traceback and no run folder."""
    where = f"hydra.sweep.dir={tmp_path / 'sweep'}" if sweep else f"hydra.run.dir={tmp_path / 'run'}"
    proc = run_cli(
        *(("-m",) if sweep else ()),
        "+experiment=salimans2017_mujoco",
        "algo=vo",
        "env=HalfCheetah",
        "seed=0",
        "wandb.mode=disabled",
        where,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out
    assert "timesteps_of.vo.HalfCheetah" in out and "lookup table" in out, out
    assert not (tmp_path / "run").exists() and not list((tmp_path / "sweep").glob("*_HalfCheetah_seed0"))


def test_final_evals_without_the_salimans2017_protocol_is_refused_even_at_its_default_value():
    """``--final-evals`` is a setting of ``--protocol salimans2017``: given without it, even as 5 (its default),
    it is a mistake to say so, not to ignore."""
    from harness.report.__main__ import parse_args

    for value in ("5", "3"):
        with pytest.raises(SystemExit):
            parse_args(["results", "--final-evals", value])
    assert parse_args(["results", "--final-evals", "5", "--protocol", "salimans2017"]).final_evals == 5
    assert parse_args(["results"]).final_evals is None  # the protocol's own default (ReportOptions: 5)
