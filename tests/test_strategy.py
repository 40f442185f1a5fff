"""OpenAI-ES through its ask/tell interface on functions with known optima."""

import numpy as np
import pytest

from harness.algos.evolution import episode_specs
from harness.es import Adam, NoiseTable, OpenAIES, SGDMomentum
from harness.es.strategies.openai_es import OpenAIESConfig
from harness.seeding import NOISE_TABLE, STRATEGY, generator, seed_sequence


def _es(d=10, optimizer=None, **kw):
    noise = NoiseTable(seed_sequence(0, NOISE_TABLE), 100_000)
    args = dict(
        population_size=50,
        sigma=0.1,
        weight_decay=0.0,
        antithetic=True,
        fitness_shaping="centered_ranks",
        curvature=False,
        precondition=False,
        curvature_floor=0.01,
    )
    args.update(kw)
    return OpenAIES(d, noise, optimizer or Adam(0.05), OpenAIESConfig(**args))


def _optimise(es, f, theta0, generations):
    state = es.init(theta0)
    for g in range(generations):
        pop = es.ask(state, generator(0, STRATEGY, g))
        eps = es.noise.batch(pop.noise_offsets, es.num_params)
        fitness = np.stack([[f(pop.center + s * pop.sigma * e) for s in (1, -1)] for e in eps])
        state, metrics = es.tell(state, pop, fitness)
    return state, metrics


@pytest.mark.parametrize("optimizer", [Adam(0.05), SGDMomentum(0.5)])
def test_es_maximises_a_concave_quadratic(optimizer):
    target = np.linspace(-1, 1, 10)
    f = lambda x: -np.sum((x - target) ** 2)  # noqa: E731  maximum at target
    state, metrics = _optimise(_es(optimizer=optimizer), f, np.zeros(10), 300)
    assert state.generation == 300
    # from distance |target| = 1.9 to within a tenth of it, despite rank noise near the optimum
    assert np.linalg.norm(state.params - target) < 0.2 * np.linalg.norm(target)
    assert metrics["grad_norm"] > 0


def test_tell_is_pure_and_ask_is_seeded():
    es = _es()
    s0 = es.init(np.zeros(10))
    p1, p2 = es.ask(s0, generator(0, STRATEGY, 0)), es.ask(s0, generator(0, STRATEGY, 0))
    np.testing.assert_array_equal(p1.noise_offsets, p2.noise_offsets)
    assert p1.fitness_shape == (25, 2) and p1.size == 50
    fitness = np.arange(50.0).reshape(25, 2)
    s1, _ = es.tell(s0, p1, fitness)
    s1b, _ = es.tell(s0, p1, fitness)
    np.testing.assert_array_equal(s0.params, np.zeros(10))  # the old state is untouched
    np.testing.assert_array_equal(s1.params, s1b.params)
    assert s0.generation == 0 and s1.generation == 1


def test_weight_decay_pulls_towards_zero_when_fitness_is_flat():
    es = _es(weight_decay=0.5, optimizer=SGDMomentum(0.1, momentum=0.0))
    state = es.init(np.ones(10))
    pop = es.ask(state, generator(0, STRATEGY, 0))
    flat = np.zeros(pop.fitness_shape)
    es_nf = _es(weight_decay=0.5, optimizer=SGDMomentum(0.1, momentum=0.0), fitness_shaping="none")
    state, _ = es_nf.tell(state, pop, flat)
    np.testing.assert_allclose(state.params, 1 - 0.1 * 0.5)


def test_tell_rejects_wrong_shape_and_nan():
    es = _es()
    state = es.init(np.zeros(10))
    pop = es.ask(state, generator(0, STRATEGY, 0))
    with pytest.raises(ValueError, match="shape"):
        es.tell(state, pop, np.zeros(50))
    bad = np.zeros(pop.fitness_shape)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        es.tell(state, pop, bad)


def test_non_antithetic_population():
    es = _es(antithetic=False, population_size=7)
    pop = es.ask(es.init(np.zeros(10)), generator(0, STRATEGY, 0))
    assert pop.fitness_shape == (7,)
    tasks = episode_specs(pop, np.arange(7))
    assert [t.sign for t in tasks] == [1] * 7


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(population_size=1), "algo.population_size must be an integer >= 2"),
        (dict(population_size=9), "even"),
        (dict(sigma=0.0), "algo.sigma must be a positive finite number"),
        (dict(antithetic="yes"), "algo.antithetic must be true or false"),
        (dict(fitness_shaping="ranks"), "algo.fitness_shaping must be one of centered_ranks, none"),
    ],
)
def test_the_config_rejects_bad_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        _es(**kw)


def test_update_is_the_openai_starters_with_its_l2_coefficient():
    """es_distributed/es.py: g = sum_j (u_j+ - u_j-) eps_j / n (no division by sigma), then the
    starter's Adam minimises -g + l2coeff * theta. Written out here by hand for two generations."""
    d, sigma, l2, lr = 6, 0.03, 0.005, 0.01
    es = _es(d=d, population_size=8, sigma=sigma, optimizer=Adam(lr), weight_decay=l2)
    rng = np.random.default_rng(1)
    state = es.init(rng.normal(size=d))
    theta, m, v = state.params.copy(), np.zeros(d), np.zeros(d)
    for t in (1, 2):
        pop = es.ask(state, generator(0, STRATEGY, t))
        fitness = rng.normal(size=(4, 2))
        state, _ = es.tell(state, pop, fitness)
        # the starter, by hand: compute_centered_ranks (distinct values: rank / (n - 1) - 0.5)
        ranks = np.empty(8)
        ranks[fitness.ravel().argsort()] = np.arange(8)
        u = (ranks / 7 - 0.5).reshape(4, 2)
        eps = np.stack([es.noise.get(o, d) for o in pop.noise_offsets]).astype(np.float64)
        g = (u[:, 0] - u[:, 1]) @ eps / u.size
        globalg = -g + l2 * theta  # optimizer.update(-g + l2coeff * theta), a minimiser
        a = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        m = 0.9 * m + 0.1 * globalg
        v = 0.999 * v + 0.001 * globalg * globalg
        theta = theta - a * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(state.params, theta, rtol=1e-12, atol=1e-15)


def test_weight_decay_is_not_rescaled_by_sigma():
    """With SGD and flat fitness the step is -lr * weight_decay * theta whatever sigma is:
    the coefficient is the paper's, not divided by sigma."""
    for sigma in (0.01, 0.5):
        es = _es(sigma=sigma, weight_decay=0.005, optimizer=SGDMomentum(1.0, momentum=0.0), fitness_shaping="none")
        state = es.init(np.ones(10))
        pop = es.ask(state, generator(0, STRATEGY, 0))
        state, _ = es.tell(state, pop, np.zeros(pop.fitness_shape))
        np.testing.assert_allclose(state.params, 1 - 0.005)
