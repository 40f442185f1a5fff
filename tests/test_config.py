"""Every bad config is refused with a message naming the key, before any worker starts."""

import os

import pytest
import yaml
from omegaconf import OmegaConf

from harness.config import ConfigError, check_experiment_keys, validate
from tests.conftest import FAST, ROOT, read_metrics, run_cli


def test_shipped_defaults_are_valid(make_cfg):
    cfg = make_cfg()
    validate(cfg)
    assert cfg.algo.name == "es" and cfg.env.id == "HalfCheetah-v5" and cfg.wandb.mode == "offline"


@pytest.mark.parametrize("env", ["HalfCheetah", "Hopper", "Walker2d", "Swimmer", "Ant", "Humanoid", "InvertedPendulum"])
def test_every_shipped_env_is_a_registered_v5_id(make_cfg, env):
    cfg = make_cfg(f"env={env}", "policy=mlp")
    validate(cfg)
    assert cfg.env.id == f"{env}-v5"


@pytest.mark.parametrize(
    "override,match",
    [
        ("algo.population_size=1", "population_size must be an integer >= 2"),
        ("algo.population_size=81", "even with antithetic"),
        ("algo.sigma=0", "algo.sigma must be a positive finite number"),
        ("algo.sigma=-0.1", "algo.sigma must be a positive finite number"),
        ("algo.sigma=inf", "algo.sigma must be a positive finite number"),
        ("algo.sigma=nan", "algo.sigma must be a positive finite number"),
        ("algo.learning_rate=0", "algo.learning_rate must be a positive finite number"),
        ("algo.optimizer=rmsprop", "algo.optimizer must be one of adam, sgd, nesterov, clipup"),
        ("algo.optimizer=nesterov", None),
        ("algo.optimizer=nesterov algo.optimizer_kwargs.nesterov.momentum=1", r"nesterov.momentum must be in \[0, 1\)"),
        ("algo.noise=cauchy", "algo.noise must be one of gaussian, laplace, student_t"),
        ("algo.noise=laplace", None),
        ("algo.noise=student_t algo.noise_df=2", "algo.noise_df must be a finite number > 2"),
        ("algo.noise=student_t algo.noise_df=3", None),
        ("algo.curvature=true algo.precondition=true", None),
        ("algo.noise=laplace algo.curvature=true", "algo.noise=laplace has none"),
        ("algo.curvature_floor=0", r"algo.curvature_floor must be in \(0, 1\]"),
        ("algo.jump_every=-1", "algo.jump_every must be an integer >= 0"),
        ("algo.jump_every=2 algo.jump_reeval_episodes=0", "algo.jump_reeval_episodes must be an integer >= 1"),
        ("algo.jump_every=2", None),
        ("+algo.optimizer_kwargs.adam.beta3=0.5", "algo.optimizer_kwargs.adam: .*beta3"),
        ("algo.optimizer_kwargs.adam.beta1=1.0", r"algo.optimizer_kwargs.adam.beta1 must be in \[0, 1\)"),
        ("algo.optimizer=clipup", None),
        ("algo.optimizer=clipup algo.optimizer_kwargs.clipup.max_speed=0", "max_speed must be positive"),
        ("workers.backend=threads", "workers.backend must be one of serial, process"),
        ("workers.n=0", "workers.n must be a positive integer"),
        ("wandb.mode=cloud", "wandb.mode must be one of"),
        ("env.id=HalfCheetah-v9", "did you mean HalfCheetah"),
        ("eval.episodes=0", "eval.episodes"),
        ("eval.every_timesteps=-1", "eval.every_timesteps"),
        ("eval.video_every=-1", "eval.video_every must be an integer >= 0"),
        ("eval.video_every=2", None),
        ("env=toy_2d eval.video_every=2", "env.kind='function' has nothing to render"),
        ("budget.timesteps=-5", "budget.timesteps must be an integer >= 0"),
        ("budget.generations=1.5", "budget.generations must be an integer"),
        ("seed=true", "seed must be a non-negative integer"),
        ("seed=-1", "seed must be a non-negative integer"),
        ("algo.weight_decay=abc", "algo.weight_decay must be a number"),
        ("algo.antithetic=maybe", "algo.antithetic must be true or false"),
        ("algo.noise_table_size=1.5", "algo.noise_table_size must be a positive integer"),
        ("policy.obs_clip=-1", "policy.obs_clip must be a positive finite number"),
        ("env.max_episode_steps=-1", "env.max_episode_steps must be a positive integer"),
        ("env.max_episode_steps=0", "env.max_episode_steps must be a positive integer"),
    ],
)
def test_bad_values_are_rejected(make_cfg, override, match):
    cfg = make_cfg(*override.split())
    if match is None:  # a good value next to its bad neighbours
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_all_zero_budget_is_rejected(make_cfg):
    with pytest.raises(ConfigError, match="budget is all zero"):
        validate(make_cfg("budget.timesteps=0", "budget.generations=0", "budget.wall_time_s=0"))


def test_odd_population_is_fine_without_antithetic(make_cfg):
    validate(make_cfg("algo.population_size=81", "algo.antithetic=false"))


@pytest.mark.slow
def test_cli_refuses_bad_config_before_starting_anything(tmp_path):
    proc = run_cli("algo.sigma=0", f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False)
    assert proc.returncode == 2
    assert "algo.sigma must be a positive finite number" in proc.stderr
    assert not (tmp_path / "run").exists()  # not even Hydra's .hydra/ and harness.log
    assert proc.stderr.count("algo.sigma must be a positive finite number") == 1
    assert "algo.sigma must be a positive finite number" not in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("group,bad,listed", [("algo", "nope", "es"), ("env", "Cheetah", "HalfCheetah")])
def test_unknown_group_option_lists_the_choices(tmp_path, group, bad, listed):
    proc = run_cli(f"{group}={bad}", f"hydra.run.dir={tmp_path}", *FAST, check=False)
    assert proc.returncode != 0
    assert f"Available options in '{group}'" in proc.stderr
    assert listed in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("key", ["+algo.sigmaa=0.1", "algo.sigmaa=0.1"])
def test_cli_refuses_a_key_nothing_reads_in_one_line_with_or_without_plus(tmp_path, key):
    """Without ``+``, Hydra's own seven lines (ending in advice to add the key with ``+``) are replaced by the
    harness's one line, said before Hydra starts."""
    proc = run_cli(key, f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False)
    assert proc.returncode == 2
    assert "unknown key algo.sigmaa: no part of the harness reads it; did you mean algo.sigma?" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "run").exists()


def test_the_early_key_check_knows_the_keys_of_the_chosen_groups_and_experiments():
    from harness.__main__ import unknown_override_problem

    assert unknown_override_problem(["algo=vo", "algo.sigma_learning_rate=0.1", "env=Hopper", "env.bc=com_x"]) is None
    assert unknown_override_problem(["algo=trpo", "env=Swimmer", "algo.gamma=0.999"]) is None
    assert unknown_override_problem(["+experiment=table1_mujoco", "budget.timesteps_of.es=10"]) is None
    assert unknown_override_problem(["policy=mlp", "policy.virtual_batch_norm=true", "env.kwargs.foo=1"]) is None
    assert "did you mean algo.sigma_learning_rate?" in unknown_override_problem(
        ["algo=vo", "algo.sigma_learning_rat=1"]
    )
    assert "unknown key policy.hidden_sizes" in unknown_override_problem(["policy=linear", "policy.hidden_sizes=[8]"])


@pytest.mark.slow
def test_cli_refuses_a_key_nothing_reads_in_an_experiment_file(tmp_path):
    experiment = ROOT / "experiments" / f"zz_typo_{os.getpid()}.yaml"
    experiment.write_text("# @package _global_\nalgo:\n  meta_populaton_size: 2\n")
    try:
        proc = run_cli(
            f"+experiment={experiment.stem}", "algo=nsr_es", f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False
        )
    finally:
        experiment.unlink()
    assert proc.returncode == 2
    assert (
        f"experiment {experiment.stem} sets unknown key algo.meta_populaton_size: no part of the harness "
        "reads it; did you mean algo.meta_population_size?"
    ) in proc.stderr
    assert not (tmp_path / "run").exists()


def test_an_experiment_may_set_a_key_for_some_of_its_algorithms():
    """The maze recipe sets algo.meta_population_size for every algorithm; ES ignores it."""
    with_experiment = OmegaConf.create(
        {"algo": {"name": "es", "sigma": 0.1, "meta_population_size": 3, "sigmaa": 1}, "seed": 0}
    )
    without = OmegaConf.create({"algo": {"name": "es", "sigma": 0.02}, "seed": 0})
    algo_keys = lambda: {"algo.name", "algo.sigma", "algo.meta_population_size"}  # noqa: E731
    with pytest.raises(ConfigError, match="experiment x sets unknown key algo.sigmaa"):
        check_experiment_keys("x", with_experiment, without, algo_keys)
    del with_experiment.algo["sigmaa"]
    check_experiment_keys("x", with_experiment, without, algo_keys)
    with_experiment.wandb = {"grup": "x"}  # outside algo, only the job's own config counts
    with pytest.raises(ConfigError, match="unknown key wandb.grup"):
        check_experiment_keys("x", with_experiment, without, algo_keys)


@pytest.mark.slow
def test_cli_accepts_free_form_gymnasium_kwargs(tmp_path):
    run_cli(
        "+env.kwargs.ctrl_cost_weight=0.2",
        "env.max_episode_steps=20",
        "budget.generations=1",
        "algo.population_size=4",
        "workers.n=1",
        f"hydra.run.dir={tmp_path}",
        *FAST,
    )
    assert "ctrl_cost_weight: 0.2" in (tmp_path / "config.yaml").read_text()


@pytest.mark.slow
def test_cli_refuses_a_policy_choice_the_algorithm_ignores(tmp_path):
    proc = run_cli("algo=trpo", "policy=mlp", f"hydra.run.dir={tmp_path / 'run'}", "wandb.mode=disabled", check=False)
    assert proc.returncode == 2
    assert "policy=mlp: algo=trpo on env=HalfCheetah does not use the policy group" in proc.stderr
    # so is one of its keys (a user asking TRPO for discretized actions would otherwise get continuous ones)
    proc = run_cli(
        "algo=trpo", "policy.action_bins=10", f"hydra.run.dir={tmp_path / 'key'}", "wandb.mode=disabled", check=False
    )
    assert proc.returncode == 2 and "policy.action_bins=10: algo=trpo on env=HalfCheetah does not use" in proc.stderr
    assert not (tmp_path / "key").exists()


@pytest.mark.slow
def test_help_lists_every_key_with_its_comment():
    proc = run_cli("algo=vo", "--help")
    assert proc.returncode == 0
    # VO's own keys and the ES keys it inherits, each with the comment where it is declared
    assert "sigma_learning_rate: 1.0     # step size of the sigma update" in proc.stdout
    assert "population_size: 80          # episodes per generation" in proc.stdout
    assert "every_timesteps: 25000  # evaluate after" in proc.stdout
    assert "algo       cma_es, es, guided_es, netes, ns_es, nsr_es, nsra_es, trpo, trpo_modular_rl, vo" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,match",
    [
        (["--min-epochs", "0"], "--min-epochs: must be a positive integer"),
        (["--workers", "0"], "--workers: must be a positive integer"),
        (["--population", "7"], "--population: must be an even integer"),
    ],
)
def test_bench_refuses_bad_arguments_without_a_traceback(args, match):
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "harness.bench", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and match in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_counts_typed_in_scientific_notation_are_accepted(tmp_path):
    run_cli(
        "env=InvertedPendulum",
        "budget.timesteps=2e3",
        "algo.population_size=8.0",
        "algo.noise_table_size=1e6",
        "workers.n=1",
        "wandb.mode=disabled",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "timesteps: 2000\n" in saved and "population_size: 8\n" in saved and "noise_table_size: 1000000\n" in saved
    proc = run_cli("budget.timesteps=1.5e0", f"hydra.run.dir={tmp_path / 'bad'}", *FAST, check=False)
    assert proc.returncode == 2 and "budget.timesteps must be an integer >= 0" in proc.stderr


@pytest.mark.slow
def test_make_help_shows_where_results_go():
    import subprocess

    from tests.conftest import ROOT

    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "$(RESULTS)" not in out
    assert "into results/figures/landscape" in out and "report" in out


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ("env.id=CartPole-v1",),
            "CartPole-v1 has a Discrete\\(2\\) action space; the ES family's numpy policies need",
        ),
        (("+env.kwargs.no_such_option=1",), "making the environment failed: TypeError"),
    ],
)
def test_an_environment_the_es_family_cannot_use_is_a_config_error(make_cfg, overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg(*overrides))


@pytest.mark.parametrize("algo", ["es", "trpo"])
def test_a_success_flag_the_environment_does_not_report_is_a_config_error(make_cfg, algo):
    with pytest.raises(ConfigError, match=r"env.success is true but the environment reports no info\['success'\]"):
        validate(make_cfg(f"algo={algo}", "env=Hopper", "env.success=true"))
    validate(make_cfg(f"algo={algo}", "env=deceptive_point_maze"))  # the mazes do report it


def test_a_behaviour_the_environment_cannot_give_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="env.bc=final_xy: environment 'Hopper-v5' is not a maze"):
        validate(make_cfg("algo=nsr_es", "env=Hopper", "env.bc=final_xy"))
    validate(make_cfg("algo=nsr_es", "env=Hopper", "env.bc=com_x"))
    validate(make_cfg("algo=es", "env=Hopper", "env.bc=final_xy"))  # ES only writes BCs it can: it warns at run time


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant", ["plain", "laplace", "student_t", "nesterov", "curvature", "jump", "netes", "cma_es", "guided_es", "vbn"]
)
def test_the_es_variants_recipe_composes_and_validates_every_variant(make_cfg, variant):
    """experiments/es_variants_halfcheetah.yaml: one sweep axis, recipe.variant, looked up per algo key;
    its keys pass the experiment-key check (recipe.* is the recipe's own)."""
    algo = (f"algo={variant}",) if variant in OTHER_ALGOS else ("policy=mlp",) if variant == "vbn" else ()
    cfg = make_cfg("+experiment=es_variants_halfcheetah", *algo, f"recipe.variant={variant}")
    validate(cfg)
    a = cfg.algo
    expected = {
        "plain": ("gaussian", "adam", False, 0),
        "laplace": ("laplace", "adam", False, 0),
        "student_t": ("student_t", "adam", False, 0),
        "nesterov": ("gaussian", "nesterov", False, 0),
        "curvature": ("gaussian", "sgd", True, 0),
        "jump": ("gaussian", "adam", False, 10),
        "netes": ("gaussian", "adam", False, 0),
        "cma_es": ("gaussian", "adam", False, 0),
        "guided_es": ("gaussian", "adam", False, 0),
        "vbn": ("gaussian", "adam", False, 0),
    }[variant]
    assert (a.noise, a.optimizer, a.precondition, a.jump_every) == expected
    assert cfg.policy.virtual_batch_norm == (variant == "vbn")
    assert a.name == (variant if variant in OTHER_ALGOS else "es") and cfg.budget.timesteps == 2_000_000
    from harness.algos import ALGOS
    from harness.config import _leaf_keys

    every_algo_key = {k for name in ALGOS for k in _leaf_keys(make_cfg(f"algo={name}")) if k.startswith("algo.")}
    check_experiment_keys("es_variants_halfcheetah", cfg, make_cfg(*algo), lambda: every_algo_key)
    if variant == "vbn":  # on the default linear policy, the variant is refused in one line
        with pytest.raises(ConfigError, match="policy.virtual_batch_norm=true needs policy=mlp"):
            validate(make_cfg("+experiment=es_variants_halfcheetah", "recipe.variant=vbn"))


#: the es_variants recipe's variants that are algorithms of their own (algo=<name> recipe.variant=<name>)
OTHER_ALGOS = ("netes", "cma_es", "guided_es")


@pytest.mark.slow
@pytest.mark.parametrize("variant", OTHER_ALGOS)
def test_the_es_variants_recipes_other_algorithms_build_their_trainers(make_cfg, variant):
    """The recipe sets OpenAI-ES's keys (noise, optimizer, ...) for every algorithm it runs; each of its
    other algorithms still builds its trainer (CMA-ES, which steps its own mean, with no optimizer: its
    first sweep failed there)."""
    from harness.algos import get_algo

    cfg = make_cfg(
        "+experiment=es_variants_halfcheetah",
        f"algo={variant}",
        f"recipe.variant={variant}",
        "workers.backend=serial",
        "algo.noise_table_size=1000000",
    )
    validate(cfg)
    get_algo(variant).make_trainer(cfg).close()


@pytest.mark.slow
def test_a_sweep_across_algorithms_sets_one_algorithms_keys_with_per_algo(tmp_path):
    """Issue 19, item 3: `-m algo=es,trpo algo.population_size=20` is refused in one line before Hydra
    starts, naming the form that works; +per_algo.<algo>.<key> sets a key in that algorithm's jobs."""
    common = (
        "-m",
        "algo=es,trpo",
        "env=InvertedPendulum",
        "budget.generations=1",
        "budget.timesteps=0",
        "eval.episodes=1",
        "workers.n=1",
        "wandb.mode=disabled",
        "progress=false",
        "eval.every_timesteps=0",
        "+per_algo.es.noise_table_size=1000000",
        "eval.at_start=false",
    )
    proc = run_cli(*common, "algo.population_size=6", f"hydra.sweep.dir={tmp_path / 'refused'}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: algo.population_size is not a key of trpo (jobs of this sweep); set it for "
        "es alone with +per_algo.es.population_size=6"
    )
    assert not (tmp_path / "refused").exists()
    proc = run_cli(*common, "+per_algo.es.populaton_size=6", f"hydra.sweep.dir={tmp_path / 'typo'}", check=False)
    assert proc.returncode == 1 and "did you mean per_algo.es.population_size?" in proc.stderr
    run_cli(
        *common,
        "+per_algo.es.population_size=6",
        "+per_algo.trpo.n_steps=64",
        "+per_algo.trpo.batch_size=32",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hydra.sweep.subdir=${algo.name}",
    )
    es_cfg = yaml.safe_load((tmp_path / "sweep" / "es" / "config.yaml").read_text())
    trpo_cfg = yaml.safe_load((tmp_path / "sweep" / "trpo" / "config.yaml").read_text())
    assert es_cfg["algo"]["population_size"] == 6 and trpo_cfg["algo"]["n_steps"] == 64
    assert "population_size" not in trpo_cfg["algo"]
    assert [int(r["timesteps"]) for r in read_metrics(tmp_path / "sweep" / "trpo")] == [64 * trpo_cfg["algo"]["n_envs"]]


@pytest.mark.parametrize(
    "overrides,match",
    [
        (("algo=guided_es", "algo.guided.k=0"), "algo.guided.k must be an integer >= 1"),
        (("algo=guided_es", "algo.guided.alpha=1.5"), r"algo.guided.alpha must be in \[0, 1\]"),
        (("algo=netes", "algo.agents=0"), "algo.agents must be an integer >= 1"),
        (("algo=netes", "algo.topology=star"), "algo.topology must be one of fully_connected, ring, erdos_renyi"),
        (("algo=cma_es", "algo.population_size=1"), "algo.population_size must be an integer >= 2"),
        (("algo=cma_es", "algo.sigma=0"), "algo.sigma must be a positive finite number"),
        (("algo=netes", "algo.jump_every=3"), "algo.jump_every is ES's and VO's"),
    ],
)
def test_bad_variation_settings_are_config_errors(make_cfg, overrides, match):
    """Issue 17: every variation's bad input is one config error before any worker starts."""
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg(*overrides))
