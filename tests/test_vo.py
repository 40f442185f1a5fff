"""VO: the mu and sigma estimators against analytic gradients, the sigma update's safeguards,
config errors, and real runs (metrics contract, determinism across workers.n)."""

import logging

import numpy as np
import pytest

from harness.algos.evolution import EvolutionTrainer
from harness.config import ConfigError, validate
from harness.es import VO, Adam, NoiseTable, SGDMomentum
from harness.es.strategies.vo import VOConfig
from harness.seeding import NOISE_TABLE, STRATEGY, generator, seed_sequence
from harness.tracking import COST_COLUMNS
from tests.conftest import FAST, read_metrics, run_cli

NOISE = NoiseTable(seed_sequence(0, NOISE_TABLE), 2_000_000)


def _vo(d=3, optimizer=None, **kw):
    args = dict(
        population_size=40,
        sigma=0.3,
        weight_decay=0.0,
        antithetic=True,
        fitness_shaping="centered_ranks",
        curvature=False,
        precondition=False,
        curvature_floor=0.01,
        sigma_learning_rate=0.1,
        sigma_param="log",
        sigma_mode="shared",
        sigma_max_change=0.2,
        sigma_min=1e-4,
        sigma_max=10.0,
    )
    args.update(kw)
    return VO(d, NOISE, optimizer or Adam(0.05), VOConfig(**args))


def _evaluate(pop, f, d):
    eps = NOISE.batch(pop.noise_offsets, d).astype(np.float64)
    sig = np.asarray(pop.sigma)
    return np.stack([f(pop.center + sig * eps), f(pop.center - sig * eps)], axis=1)


# J(mu, sigma) = E[f(mu + sigma eps)] for f(x) = -sum a (x - c)^2 is -sum a ((mu - c)^2 + sigma^2):
# dJ/dmu = -2 a (mu - c), dJ/dlog sigma_i = -2 a_i sigma_i^2.
A = np.array([1.0, 3.0, 0.5])
C = np.array([0.5, -0.2, 1.0])


def _quadratic(x):
    return -np.sum(A * (x - C) ** 2, axis=-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimators_match_the_smoothed_quadratic_gradient(seed):
    sigma = np.array([0.3, 0.1, 0.5])
    mu = C + np.array([0.4, -0.3, 0.2])
    vo = _vo(population_size=200_000, sigma_mode="per_param", fitness_shaping="none")
    state = vo.init(mu)
    state = state.__class__(**{**state.__dict__, "sigma": sigma})
    pop = vo.ask(state, generator(seed, STRATEGY, 0))
    # a constant baseline f(mu) leaves both estimates unbiased (E[eps] = E[eps^2 - 1] = 0) and
    # lowers their variance, as centered ranks do in a run
    fitness = _evaluate(pop, _quadratic, 3) - _quadratic(mu)
    np.testing.assert_allclose(vo.gradient(pop, fitness), -2 * A * (mu - C), rtol=0.05)
    np.testing.assert_allclose(vo.sigma_gradient(pop, fitness), -2 * A * sigma**2, rtol=0.1)


def test_shared_sigma_estimates_the_gradient_per_parameter():
    vo = _vo(population_size=200_000, sigma=0.4, sigma_mode="shared", fitness_shaping="none")
    state = vo.init(C + 0.1)
    pop = vo.ask(state, generator(0, STRATEGY, 0))
    s = vo.sigma_gradient(pop, _evaluate(pop, _quadratic, 3) - _quadratic(C + 0.1))
    assert s.shape == ()
    # dJ/dlog sigma for one shared sigma is the sum over parameters; s is that over d
    assert 3 * float(s) == pytest.approx(-2 * A.sum() * 0.4**2, rel=0.1)


@pytest.mark.parametrize("param", ["log", "linear"])
def test_sigma_step_in_log_and_linear_space(param):
    lr = 0.05 if param == "log" else 0.005
    vo = _vo(sigma_param=param, sigma_mode="per_param", sigma_learning_rate=lr, sigma_max_change=0.5)
    sigma = np.array([0.2, 0.4, 0.8])
    s = np.array([1.0, -2.0, 0.5])
    expected = sigma * np.exp(lr * s) if param == "log" else sigma + lr * s / sigma  # all within the cap
    assert np.all(np.abs(expected / sigma - 1) < 0.5)
    np.testing.assert_allclose(vo.new_sigma(sigma, s), expected)


def test_sigma_change_is_capped_and_bounded_and_a_bound_is_logged_once(caplog):
    vo = _vo(sigma=0.5, sigma_mode="per_param", sigma_learning_rate=100.0, sigma_min=0.3, sigma_max=0.55)
    sigma = np.array([0.5, 0.5, 0.5])
    # a huge step: capped at +-20%, then held inside [0.3, 0.55]
    np.testing.assert_allclose(vo.new_sigma(sigma, np.array([1.0, -0.01, -1.0])), [0.55, 0.4, 0.4])
    np.testing.assert_allclose(vo.new_sigma(np.array([0.4, 0.4, 0.4]), np.array([-1.0, -1.0, 0.0])), [0.32, 0.32, 0.4])
    # the strategy only says so (no I/O); the trainer logs each bound once per run
    assert vo.notices({"sigma_min": 0.32, "sigma_max": 0.4}) == []
    [low] = vo.notices({"sigma_min": 0.3, "sigma_max": 0.4})
    assert "algo.sigma_min=0.3" in low
    trainer = EvolutionTrainer.__new__(EvolutionTrainer)  # log_notices alone: no workers needed
    trainer.strategy, trainer._noticed = vo, set()
    with caplog.at_level(logging.WARNING, logger="harness.algos.evolution"):
        for metrics in (
            {"sigma_min": 0.3, "sigma_max": 0.4},
            {"sigma_min": 0.3, "sigma_max": 0.55},
            {"sigma_min": 0.3, "sigma_max": 0.55},
        ):
            trainer.log_notices(metrics)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("sigma_max" in m for m in messages) == 1
    assert sum("sigma_min" in m for m in messages) == 1


def test_sigma_grows_on_a_wide_plateau_edge_and_shrinks_in_a_narrow_bowl():
    """The direction of the learned sigma on two 1-D landscapes, with the harness's centered ranks."""

    def run(f, mu0, sigma0):
        vo = _vo(
            d=1, population_size=100, sigma=sigma0, optimizer=SGDMomentum(0.0, momentum=0.0), sigma_learning_rate=0.2
        )
        state = vo.init(np.array([mu0]))
        for g in range(30):
            pop = vo.ask(state, generator(0, STRATEGY, g))
            state, metrics = vo.tell(state, pop, _evaluate(pop, f, 1))
        return float(state.sigma)

    bowl = lambda x: -np.sum(x**2, axis=-1)  # noqa: E731  maximum at 0: sigma should shrink
    assert run(bowl, 0.0, 0.5) < 0.1
    # a step up at x = 1, two sigmas away (mu = 0 sits on a flat plateau): the few samples that
    # reach it have large eps^2, so sigma grows
    step = lambda x: (x[..., 0] > 1.0).astype(float)  # noqa: E731
    assert run(step, 0.0, 0.5) > 0.7  # grew by more than 40%


def test_vo_descends_with_per_param_sigma_and_metrics_columns():
    vo = _vo(d=3, population_size=50, sigma=0.5, sigma_mode="per_param", optimizer=Adam(0.05))
    state = vo.init(np.zeros(3))
    for g in range(300):
        pop = vo.ask(state, generator(0, STRATEGY, g))
        state, metrics = vo.tell(state, pop, _evaluate(pop, _quadratic, 3))
    assert np.linalg.norm(state.params - C) < 0.1
    assert state.sigma.shape == (3,) and np.all(state.sigma < 0.2)  # it narrowed around the optimum
    assert metrics["sigma_min"] <= metrics["sigma_mean"] <= metrics["sigma_max"]
    assert metrics["sigma_max"] == pytest.approx(state.sigma.max())


@pytest.mark.parametrize(
    "overrides,match",
    [
        (("algo.sigma_min=0.5", "algo.sigma_max=0.1"), r"algo.sigma_min \(0.5\) must not exceed algo.sigma_max"),
        (("algo.sigma_learning_rate=-0.1",), "algo.sigma_learning_rate must be a finite number >= 0"),
        (("algo.sigma_learning_rate=inf",), "algo.sigma_learning_rate must be a finite number >= 0"),
        (("algo.sigma_mode=per_parameter",), "algo.sigma_mode must be one of shared, per_param"),
        (("algo.sigma_param=exp",), "algo.sigma_param must be one of log, linear"),
        (("algo.sigma_max_change=1.5",), r"algo.sigma_max_change must be in \(0, 1\)"),
        (("algo.sigma=2.0",), r"initial algo.sigma \(2.0\) must lie in"),
        (("algo.antithetic=false", "algo.population_size=81"), "algo.antithetic must be true for VO"),
    ],
)
def test_bad_vo_configs_are_rejected(make_cfg, overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg("algo=vo", *overrides))


@pytest.mark.slow
def test_cli_refuses_inverted_sigma_bounds_before_any_worker(tmp_path):
    proc = run_cli(
        "algo=vo", "algo.sigma_min=0.5", "algo.sigma_max=0.1", f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False
    )
    assert proc.returncode == 2
    assert "algo.sigma_min (0.5) must not exceed algo.sigma_max (0.1)" in proc.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists()


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


@pytest.mark.slow
def test_per_param_vo_on_hopper_writes_the_contract_and_ignores_worker_count(tmp_path):
    common = (
        "algo=vo",
        "algo.sigma_mode=per_param",
        "env=Hopper",
        "env.max_episode_steps=200",
        "budget.generations=3",
        "algo.population_size=8",
        "eval.episodes=2",
        "seed=4",
        *FAST,
    )
    run_cli(*common, "workers.n=1", f"hydra.run.dir={tmp_path / 'n1'}")
    run_cli(*common, "workers.n=2", f"hydra.run.dir={tmp_path / 'n2'}")
    one, two = _rows(tmp_path / "n1"), _rows(tmp_path / "n2")
    assert one == two and len(one) == 3
    for col in (
        "epoch",
        "timesteps",
        "episodes",
        "return_mean",
        "return_max",
        "eval_return",
        "sigma_mean",
        "sigma_min",
        "sigma_max",
    ):
        assert all(r[col] != "" for r in one), col
    assert float(one[-1]["sigma_min"]) < float(one[-1]["sigma_max"])  # one sigma per parameter
    assert any(float(r["sigma_mean"]) != 0.03 for r in one)
    with np.load(tmp_path / "n1" / "policy.npz") as z:
        assert z["sigma"].shape == z["params"].shape == (3 * 11 + 3,)
        assert float(z["sigma"].max()) == pytest.approx(float(one[-1]["sigma_max"]))


@pytest.mark.slow
def test_vo_with_a_frozen_sigma_gives_es_rows(tmp_path):
    """The ablation a researcher runs first: VO without its sigma step (sigma_learning_rate=0) is ES,
    row for row, on every column they share (issue 19, item 16)."""
    from tests.golden_rows import run_case

    common = (
        "env=Hopper",
        "env.max_episode_steps=40",
        "algo.population_size=8",
        "budget.generations=3",
        "budget.timesteps=0",
        "eval.episodes=2",
        "eval.every_timesteps=0",
        "workers.backend=serial",
        "wandb.mode=disabled",
        "progress=false",
        "algo.noise_table_size=1000000",
        "eval.at_start=false",
    )
    es = run_case(("algo=es", *common), tmp_path / "es")["metrics"]
    vo = run_case(("algo=vo", "algo.sigma_learning_rate=0", *common), tmp_path / "vo")["metrics"]
    assert [{k: r[k] for k in es[0]} for r in vo] == es
    assert {r["sigma_mean"] for r in vo} == {str(0.02375)}  # Hopper's es_env sigma, never moved
