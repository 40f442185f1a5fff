"""Toy landscapes: their features, the exact smoothed loss against quadrature, the article's claims
as seeded multi-seed counts (through the code path the figures use), and real CLI runs.

Losses are minimised; the strategies maximise fitness = -loss.
"""

import dataclasses

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from harness.config import validate
from harness.envs.landscapes import LANDSCAPES, get_landscape, loss_grad, smoothed_loss
from harness.report import landscape as toy
from harness.tracking import COST_COLUMNS, REQUIRED_COLUMNS
from tests.conftest import CONF, FAST, read_metrics, run_cli

TOY_1D = get_landscape("toy_1d")
TOY_2D = get_landscape("toy_2d")
SEEDS = range(10)


def _local_maxima(x, y):
    i = np.where((y[1:-1] > y[:-2]) & (y[1:-1] > y[2:]))[0] + 1
    return x[i]


# ----------------------------------------------------------------------------- the landscape's features
def test_toy_1d_plateau_is_exactly_flat_and_a_basin():
    f = TOY_1D.features
    inside = np.linspace(*f["plateau_interior"], 2001)[:, None]
    assert np.all(TOY_1D.loss(inside) == f["plateau_level"])  # flat to the last bit: no direction at all
    assert np.all(np.abs(loss_grad(TOY_1D, inside)) < 1e-15)  # Gaussian tails of the edges, no more
    lo, hi = f["plateau"]
    # a valley: the upland on both sides is 0.6 higher
    assert TOY_1D.loss(np.array([lo - 0.2])) > f["plateau_level"] + 0.5
    assert TOY_1D.loss(np.array([hi + 0.2])) > f["plateau_level"] + 0.5
    assert hi - lo >= 1.5  # wide: several times the largest sigma of the figures


def test_toy_1d_peak_is_high_narrow_and_stops_gradient_descent():
    f = TOY_1D.features
    p, width = f["peak"][0], f["peak_width"]
    x = np.linspace(p - 0.3, p + 0.3, 6001)[:, None]
    e = TOY_1D.loss(x)
    top = _local_maxima(x[:, 0], e)
    assert len(top) == 1 and abs(top[0] - p) < 0.01
    assert e.max() - TOY_1D.loss(np.array([p - 0.15])) > 2.0  # much higher than the slope beside it
    # narrow: half its height within 1.2 widths of its centre
    assert TOY_1D.loss(np.array([p - 1.2 * width])) < 0.5 * (e.max() + TOY_1D.loss(np.array([p - 0.15])))
    # on a slope: the lowland behind it is 1.6 lower than the upland in front of it
    assert TOY_1D.loss(np.array([p - 0.6])) - TOY_1D.loss(np.array([p + 0.6])) > 1.5


def test_toy_1d_global_minimum_is_the_fenced_well():
    f = TOY_1D.features
    x = np.linspace(-4.0, 4.0, 400_001)[:, None]
    e = TOY_1D.loss(x)
    well = f["well"][0]
    assert abs(x[np.argmin(e), 0] - well) < 1e-4
    assert e.min() == pytest.approx(-3.4, abs=1e-3)
    outside = np.abs(x[:, 0] - well) > 3 * f["well_width"]
    assert e[outside].min() > f["in_well_below"] + 0.5  # below everything else by a wide margin
    assert np.mean(e < f["in_well_below"]) * 8.0 < 0.15  # narrow: {E < -1} is less than 0.15 wide in all
    near = np.abs(x[:, 0] - well) < 0.3
    walls = _local_maxima(x[near, 0], e[near])
    np.testing.assert_allclose(walls, [w[0] for w in f["walls"]], atol=0.01)
    for w in walls:  # high: more than 1 above the lowland floor beside them
        assert TOY_1D.loss(np.array([w])) - TOY_1D.loss(np.array([w - 0.1 * np.sign(well - w)])) > 1.0


def test_smoothing_at_035_loses_the_local_structure_and_01_keeps_most():
    f = TOY_1D.features
    well, peak = f["well"][0], f["peak"][0]
    x = np.linspace(-0.4, 2.6, 6001)[:, None]
    j35 = smoothed_loss(TOY_1D, x, 0.35)
    # the peak and the walls are gone: no local maximum from the upland's edge to the lowland's
    assert len(_local_maxima(x[:, 0], j35)) == 0
    # the well is a mild dip: J keeps less than 15% of its depth below the lowland
    assert smoothed_loss(TOY_1D, np.array([well]), 0.35) > 0.15 * float(TOY_1D.loss(np.array([well])))
    j10 = smoothed_loss(TOY_1D, x, 0.1)
    assert any(abs(m - peak) < 0.1 for m in _local_maxima(x[:, 0], j10))  # the peak is still a barrier
    assert smoothed_loss(TOY_1D, np.array([well]), 0.1) < -1.0  # and the well a deep dip
    # on the plateau the 0.35-smoothed loss has its minimum in the middle
    xp = np.linspace(-2.6, -1.0, 1601)[:, None]
    assert abs(xp[np.argmin(smoothed_loss(TOY_1D, xp, 0.35)), 0] - f["plateau_middle"][0]) < 0.02


def test_toy_2d_has_the_same_features():
    f = TOY_2D.features
    (x_lo, x_hi), (y_lo, y_hi) = f["plateau_interior"]
    g = np.stack(np.meshgrid(np.linspace(x_lo, x_hi, 101), np.linspace(y_lo, y_hi, 101)), axis=-1)
    assert np.all(TOY_2D.loss(g) == f["plateau_level"])
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 1201), np.linspace(-3, 3, 1201)), axis=-1)
    e = TOY_2D.loss(grid)
    np.testing.assert_allclose(grid.reshape(-1, 2)[np.argmin(e)], f["well"], atol=0.01)
    assert e.min() == pytest.approx(-3.4, abs=0.01)
    far = np.linalg.norm(grid - np.array(f["well"]), axis=-1) > 0.15
    assert e[far].min() > f["in_well_below"] + 0.5
    well = np.array(f["well"])
    for d in ([1, 0], [-1, 0], [0, 1], [0, -1]):  # a wall on every side, higher than the lowland by > 1
        assert TOY_2D.loss(well + f["fence_half_side"] * np.array(d)) > 1.0
    ridge = TOY_2D.loss(np.array([f["peak"][0], 0.0]))
    assert ridge - TOY_2D.loss(np.array([f["peak"][0] - 0.15, 0.0])) > 2.0
    assert smoothed_loss(TOY_2D, well, 0.35) > 0.15 * float(TOY_2D.loss(well))


# ----------------------------------------------------------------------------- exactness of J and dE/dx
def _quadrature_1d(landscape, mu, sigma, n=40_001):
    """E[loss(mu + sigma eps)] by the trapezoid rule on eps in [-9, 9], spacing 4.5e-4."""
    eps = np.linspace(-9.0, 9.0, n)
    w = np.exp(-0.5 * eps**2) / np.sqrt(2 * np.pi) * (eps[1] - eps[0])
    return float(landscape.loss(mu + sigma * eps[:, None]) @ w)


@pytest.mark.parametrize("mu", [-2.9, -1.8, -1.02, -0.03, 0.0, 1.2, 1.88, 2.0, 2.1, 2.95])
@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.35, 1.0])
def test_toy_1d_smoothed_loss_matches_quadrature(mu, sigma):
    exact = float(smoothed_loss(TOY_1D, np.array([mu]), sigma))
    assert exact == pytest.approx(_quadrature_1d(TOY_1D, mu, sigma), abs=1e-6)


@pytest.mark.parametrize("mu", [(2.0, 0.5), (1.8, 0.45), (0.0, 1.4), (2.9, -2.9)])
def test_toy_2d_smoothed_loss_matches_quadrature(mu):
    eps = np.linspace(-7.0, 7.0, 1001)
    w = np.exp(-0.5 * eps**2) / np.sqrt(2 * np.pi) * (eps[1] - eps[0])
    e1, e2 = np.meshgrid(eps, eps, indexing="ij")
    for sigma in (0.05, 0.35):
        pts = np.asarray(mu) + sigma * np.stack([e1, e2], axis=-1)
        reference = float(w @ TOY_2D.loss(pts) @ w)
        assert float(smoothed_loss(TOY_2D, np.array(mu), sigma)) == pytest.approx(reference, abs=1e-5)


def test_smoothed_loss_shapes_limits_and_the_quadrature_fallback():
    x = np.linspace(-3.5, 3.5, 701)[:, None]
    np.testing.assert_array_equal(smoothed_loss(TOY_1D, x, 0.0), TOY_1D.loss(x))  # sigma 0: the loss itself
    mu = np.zeros((4, 3, 2))
    assert smoothed_loss(TOY_2D, mu, 0.2).shape == (4, 3)
    assert smoothed_loss(TOY_2D, mu, np.full((4, 3, 1), 0.2)).shape == (4, 3)  # one sigma per point
    # one sigma per coordinate: sigma 0 along x2 smooths along x1 only
    eps = np.linspace(-9.0, 9.0, 40_001)
    w = np.exp(-0.5 * eps**2) / np.sqrt(2 * np.pi) * (eps[1] - eps[0])
    line = np.stack([0.2 * eps, np.full_like(eps, 0.3)], axis=-1)
    assert float(smoothed_loss(TOY_2D, np.array([0.0, 0.3]), np.array([0.2, 0.0]))) == pytest.approx(
        float(TOY_2D.loss(line) @ w), abs=1e-6
    )
    sphere = LANDSCAPES["sphere"]
    numeric = dataclasses.replace(sphere, smoothed=None)  # Gauss-Hermite: exact for a quadratic
    q = np.array([[0.5, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(smoothed_loss(numeric, q, 0.3), smoothed_loss(sphere, q, 0.3), rtol=1e-12)
    np.testing.assert_allclose(smoothed_loss(sphere, q, 0.3), (q**2).sum(-1) + 2 * 0.09)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        smoothed_loss(TOY_1D, np.zeros(1), -0.1)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        smoothed_loss(TOY_2D, np.zeros(3), 0.1)


@pytest.mark.parametrize("landscape", [TOY_1D, TOY_2D], ids=lambda L: L.name)
def test_derivative_matches_finite_differences(landscape):
    rng = np.random.default_rng(0)
    x = rng.uniform(-3.2, 3.2, size=(400, landscape.dim))
    x[:50] = np.asarray(landscape.features["well"]) + rng.normal(0, 0.1, size=(50, landscape.dim))
    h = 1e-6
    numeric = np.stack(
        [(landscape.loss(x + h * e) - landscape.loss(x - h * e)) / (2 * h) for e in np.eye(landscape.dim)], axis=-1
    )
    np.testing.assert_allclose(loss_grad(landscape, x), numeric, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- the claims, over seeds
@pytest.mark.slow
def test_es_with_large_sigma_settles_in_the_middle_of_the_plateau():
    middle = TOY_1D.features["plateau_middle"][0]
    starts = toy.STARTS["toy_1d"]
    gd = toy.gradient_descent(TOY_1D, starts["plateau"], steps=200)
    assert np.all(gd.mu == starts["plateau"][0])  # the loss gives no direction there
    for start in ("plateau", "plateau_left", "plateau_right"):
        finals = [toy.run_es(TOY_1D, starts[start], toy.SIGMA_LARGE, s, generations=150).final[0] for s in SEEDS]
        assert sum(abs(x - middle) < 0.1 for x in finals) >= 9, (start, finals)


@pytest.mark.slow
def test_es_crosses_the_sharp_peak_where_gradient_descent_stops():
    peak = TOY_1D.features["peak"][0]
    start = toy.STARTS["toy_1d"]["slope"]
    gd = toy.gradient_descent(TOY_1D, start)
    assert gd.final[0] < peak - 0.05  # stopped in front of the peak ...
    assert abs(loss_grad(TOY_1D, gd.final)[0]) < 1e-3  # ... at a stationary point, not still moving
    assert gd.loss[-1] < gd.loss[0]  # after descending the slope towards it
    finals = [toy.run_es(TOY_1D, start, toy.SIGMA_MEDIUM, s, generations=100).final[0] for s in SEEDS]
    assert sum(x > peak + 0.1 for x in finals) >= 8, finals


@pytest.mark.slow
def test_vo_from_wide_sigma_reaches_the_fenced_well_where_small_sigma_es_does_not():
    starts = toy.STARTS["toy_1d"]
    vo = [toy.run_vo(TOY_1D, starts["plateau"], s) for s in SEEDS]
    es = [toy.run_es(TOY_1D, starts["plateau"], toy.SIGMA_SMALL, s) for s in SEEDS]
    # the fence: small-sigma ES started in the lowland moves, but stops in front of a wall
    es_lowland = [toy.run_es(TOY_1D, starts["lowland"], toy.SIGMA_SMALL, s) for s in SEEDS]
    assert sum(toy.in_well(TOY_1D, t) for t in vo) >= 7
    assert all(t.sigma[-1] < 0.05 for t in vo if toy.in_well(TOY_1D, t))  # sigma shrank into the well
    assert sum(toy.in_well(TOY_1D, t) for t in es) <= 2
    assert sum(toy.in_well(TOY_1D, t) for t in es_lowland) <= 2
    assert all(t.final[0] - starts["lowland"][0] > 0.3 for t in es_lowland)


@pytest.mark.slow
def test_the_claims_hold_on_toy_2d():
    starts = toy.STARTS["toy_2d"]
    middle = np.array(TOY_2D.features["plateau_middle"])
    es_large = [toy.run_es(TOY_2D, starts["plateau"], toy.SIGMA_LARGE, s, generations=150) for s in range(5)]
    assert sum(np.linalg.norm(t.final - middle) < 0.1 for t in es_large) >= 4
    gd = toy.gradient_descent(TOY_2D, starts["slope"])
    assert gd.final[0] < TOY_2D.features["peak"][0]
    vo = [toy.run_vo(TOY_2D, starts["plateau"], s) for s in range(5)]
    es = [toy.run_es(TOY_2D, starts["plateau"], toy.SIGMA_SMALL, s) for s in range(5)]
    assert sum(toy.in_well(TOY_2D, t) for t in vo) >= 4
    assert sum(toy.in_well(TOY_2D, t) for t in es) <= 1


@pytest.mark.slow
def test_runs_are_seeded_and_evaluate_what_a_worker_evaluates():
    a = toy.run_vo(TOY_1D, (-1.5,), 4, generations=30)
    b = toy.run_vo(TOY_1D, (-1.5,), 4, generations=30)
    c = toy.run_vo(TOY_1D, (-1.5,), 5, generations=30)
    np.testing.assert_array_equal(a.mu, b.mu)
    assert not np.array_equal(a.mu, c.mu)
    np.testing.assert_array_equal(a.evaluations, np.arange(31) * toy.POPULATION)
    # the fitness of a population is what the harness's rollout worker returns, member by member
    from harness.algos.evolution import episode_specs
    from harness.seeding import NOISE_TABLE, STRATEGY, generator, seed_sequence
    from harness.workers.rollout import Chunk
    from harness.workers.worker import RolloutWorker, WorkerSpec

    strategy = toy.make_vo(2, 0)
    pop = strategy.ask(strategy.init(np.array([0.3, -0.2])), generator(0, STRATEGY, 0))
    seq = seed_sequence(0, NOISE_TABLE)
    worker = RolloutWorker(
        WorkerSpec({"kind": "function", "id": "toy_2d"}, {}, (seq.entropy, seq.spawn_key), toy.NOISE_TABLE_SIZE)
    )
    tasks = episode_specs(pop, np.zeros(len(pop.noise_offsets), dtype=np.int64))
    results = worker.run(Chunk(pop.centers, pop.sigma, np.zeros(0), np.ones(0), tasks, False))
    np.testing.assert_array_equal(
        toy.population_fitness(pop, strategy.noise, TOY_2D).ravel(), [r.episode_return for r in results]
    )


# ----------------------------------------------------------------------------- the command line
TOY_VO = (
    "algo=vo",
    "env=toy_1d",
    f"algo.population_size={toy.POPULATION}",
    f"algo.sigma={toy.VO_SIGMA0}",
    f"algo.learning_rate={toy.LEARNING_RATE}",
    "algo.weight_decay=0",
    f"algo.fitness_shaping={toy.FITNESS_SHAPING}",
    f"algo.sigma_learning_rate={toy.VO_SIGMA_LEARNING_RATE}",
    f"algo.sigma_min={toy.VO_SIGMA_MIN}",
    f"algo.sigma_max={toy.VO_SIGMA_MAX}",
    "budget.generations=25",
    "budget.timesteps=0",
    "eval.episodes=1",
    "seed=3",
    *FAST,
)


@pytest.mark.slow
def test_cli_vo_on_toy_1d_writes_the_contract_and_matches_the_in_process_run(tmp_path):
    assert f"algo.noise_table_size={toy.NOISE_TABLE_SIZE}" in FAST  # the same noise table in both
    run_cli(*TOY_VO, "workers.backend=serial", f"hydra.run.dir={tmp_path / 'serial'}")
    run_cli(*TOY_VO, "workers.backend=process", "workers.n=2", f"hydra.run.dir={tmp_path / 'n2'}")
    serial, two = read_metrics(tmp_path / "serial"), read_metrics(tmp_path / "n2")
    drop = lambda rows: [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in rows]  # noqa: E731
    assert drop(serial) == drop(two) and len(serial) == 25
    assert set(REQUIRED_COLUMNS) | {"sigma_mean", "sigma_min", "sigma_max"} <= set(serial[0])
    # one timestep = one function evaluation: a generation is population_size of them
    assert [int(r["timesteps"]) for r in serial] == [toy.POPULATION * (i + 1) for i in range(25)]
    assert [int(r["episodes"]) for r in serial] == [int(r["timesteps"]) for r in serial]
    # eval_return = -loss(mu), mu as the in-process ask/tell run of the figures computes it
    ref = toy.run_vo(TOY_1D, (-1.5,), 3, generations=25)
    np.testing.assert_allclose([float(r["eval_return"]) for r in serial], -ref.loss[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose([float(r["sigma_mean"]) for r in serial], ref.sigma[1:], rtol=0, atol=1e-12)
    assert float(serial[0]["eval_return_std"]) == 0.0
    with np.load(tmp_path / "serial" / "policy.npz") as z:
        np.testing.assert_array_equal(z["params"], ref.final)
        assert -float(TOY_1D.loss(z["params"])) == pytest.approx(float(serial[-1]["eval_return"]))


@pytest.mark.slow
def test_cli_refuses_trpo_on_a_landscape_before_anything_starts(tmp_path):
    proc = run_cli(
        "algo=trpo",
        "env=toy_1d",
        f"hydra.run.dir={tmp_path / 'run'}",
        "wandb.mode=disabled",
        "progress=false",
        check=False,
    )
    assert proc.returncode == 2
    assert "env=toy_1d is a function landscape" in proc.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists()


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_sweep_runs_the_settings_of_the_figures():
    for algo, sigma in (("es", toy.SIGMA_SMALL), ("vo", toy.VO_SIGMA0)):
        cfg = _compose("+experiment=landscape_toy", f"algo={algo}")
        validate(cfg)
        a = cfg.algo
        assert (
            a.population_size,
            a.sigma,
            a.learning_rate,
            a.optimizer,
            a.weight_decay,
            a.fitness_shaping,
            a.noise_table_size,
        ) == (toy.POPULATION, sigma, toy.LEARNING_RATE, "adam", 0.0, toy.FITNESS_SHAPING, toy.NOISE_TABLE_SIZE)
        assert cfg.budget.generations == toy.GENERATIONS
        assert list(cfg.env.init) == list(toy.STARTS["toy_1d"]["plateau"])
    a = _compose("+experiment=landscape_toy", "algo=vo").algo
    assert (a.sigma_learning_rate, a.sigma_min, a.sigma_max, a.sigma_max_change, a.sigma_param, a.sigma_mode) == (
        toy.VO_SIGMA_LEARNING_RATE,
        toy.VO_SIGMA_MIN,
        toy.VO_SIGMA_MAX,
        toy.VO_SIGMA_MAX_CHANGE,
        "log",
        "shared",
    )
