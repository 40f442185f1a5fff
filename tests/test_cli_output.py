"""What a run prints (issue 19, items 13 and 14): it says what is starting before the first epoch,
Gymnasium's warnings come as plain text once, a seed typed 1e3 names its folder seed1000."""

import logging
import warnings

import pytest

from tests.conftest import FAST, ROOT, read_metrics, run_cli

QUICK = (
    "env.max_episode_steps=50",
    "algo.population_size=4",
    "eval.episodes=1",
    "budget.generations=1",
    "workers.n=2",
    *FAST,
)


@pytest.mark.slow
def test_a_run_says_what_is_starting_before_its_first_epoch(tmp_path):
    proc = run_cli("env=Hopper", *QUICK, "budget.timesteps=0", f"hydra.run.dir={tmp_path}")
    lines = proc.stdout.splitlines()  # Hydra's console handler writes the log to stdout
    start = next(
        i
        for i, line in enumerate(lines)
        if "run es on Hopper-v5, seed 0, until 1 epoch: starting 2 process workers" in line
    )
    ready = next(i for i, line in enumerate(lines) if "set up in" in line and str(tmp_path) in line)
    first_epoch = next(i for i, line in enumerate(lines) if "epoch 1 |" in line)
    assert start < ready < first_epoch


@pytest.mark.slow
def test_gymnasium_warnings_are_plain_text_once_per_run(tmp_path, caplog):
    """Hopper-v4's deprecation warning comes from every worker and the main process: one line, no ANSI."""
    proc = run_cli("env=Hopper", "env.id=Hopper-v4", *QUICK, f"hydra.run.dir={tmp_path}")
    console = proc.stdout + proc.stderr  # Hydra's console handler writes the log to stdout
    assert "\x1b[" not in console
    assert console.count("is out of date") == 1, console

    from harness.envs import make_env

    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING, "harness.envs"):
        warnings.simplefilter("always")
        make_env("Hopper-v4").close()
        make_env("Hopper-v4").close()
    assert not shown  # nothing reaches the warnings machinery (and its ANSI codes)
    # at most once per process: an earlier test in this process may have logged it already
    assert len([r for r in caplog.records if "out of date" in r.getMessage()]) <= 1


@pytest.mark.slow
def test_a_seed_typed_as_a_float_names_its_folder_with_the_integer(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        "env=Hopper",
        *QUICK,
        "seed=1e3,2.0",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${algo.name}_seed${seed}",
    )
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["es_seed1000", "es_seed2"]


def test_integral_seeds_rewrites_only_seeds():
    from harness.__main__ import integral_seeds

    assert integral_seeds(["seed=1e3", "algo.sigma=1e-2", "+seed=3.0"]) == ["seed=1000", "algo.sigma=1e-2", "+seed=3"]
    assert integral_seeds(["seed=0,1e3,7"]) == ["seed=0,1000,7"]
    assert integral_seeds(["seed=1.5", "seed=range(0,3)", "seed=abc"]) == ["seed=1.5", "seed=range(0,3)", "seed=abc"]


@pytest.mark.slow
def test_a_large_seed_runs_as_typed_and_one_beyond_int64_is_refused_in_one_line(tmp_path):
    from harness.__main__ import integral_seeds

    assert integral_seeds(["seed=9007199254740993", "seed=9.007199254740993e15,1e3"]) == [
        "seed=9007199254740993",
        "seed=9007199254740993,1000",
    ]  # exact, not through a float (...992)
    run_cli("env=Hopper", *QUICK, "seed=9007199254740993", f"hydra.run.dir={tmp_path / 'big'}")
    assert "seed: 9007199254740993\n" in (tmp_path / "big" / "config.yaml").read_text()
    for seed in ("9223372036854775808", "99999999999999999999"):  # 2**63, and one that was run as 1e20
        proc = run_cli("env=Hopper", *QUICK, f"seed={seed}", f"hydra.run.dir={tmp_path / seed}", check=False)
        assert proc.returncode == 2 and not (tmp_path / seed).exists()
        assert proc.stderr.strip().count("\n") == 0 and "(at most 2**63-1 = 9223372036854775807)" in proc.stderr


@pytest.mark.slow
def test_the_readme_quotes_a_non_ascii_run_folder_for_hydra_as_it_must_be(tmp_path):
    readme = (ROOT / "README.md").read_text()
    assert "\"hydra.run.dir='results/café/seed 0'\"" in readme and "\"resume='results/café/seed 0'\"" in readme
    run_dir = tmp_path / "café" / "seed 0"
    proc = run_cli("env=Hopper", *QUICK, f"hydra.run.dir={run_dir}", check=False)  # unquoted: Hydra cannot read it
    assert proc.returncode != 0 and "LexerNoViableAltException" in proc.stderr and not run_dir.exists()
    run_cli("env=Hopper", *QUICK, f"hydra.run.dir='{run_dir}'")  # as the README quotes it
    run_cli(f"resume='{run_dir}'", "budget.generations=2")
    assert len(read_metrics(run_dir)) == 2
