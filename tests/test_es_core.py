"""Hand-checked unit tests of the ES mathematics."""

import numpy as np
import pytest

from harness.es import (
    Adam,
    ClipUp,
    NoiseTable,
    OpenAIES,
    SGDMomentum,
    antithetic_gradient,
    centered_ranks,
    vanilla_gradient,
)
from harness.seeding import NOISE_TABLE, seed_sequence


def test_centered_ranks_hand_computed():
    x = np.array([10.0, -3.0, 7.0, 0.5, 100.0])
    # ranks 3, 0, 2, 1, 4 over n - 1 = 4, minus 0.5
    np.testing.assert_allclose(centered_ranks(x), [0.25, -0.5, 0.0, -0.25, 0.5])


def test_centered_ranks_pairs_shape_and_ties():
    x = np.array([[1.0, 5.0], [5.0, 2.0]])
    r = centered_ranks(x)
    assert r.shape == (2, 2)
    assert r.sum() == pytest.approx(0.0)
    # the two 5.0s tie: average of ranks 2 and 3 -> 2.5 / 3 - 0.5
    assert r[0, 1] == r[1, 0] == pytest.approx(2.5 / 3 - 0.5)
    assert r[0, 0] == -0.5


def test_centered_ranks_is_invariant_to_monotone_transforms():
    x = np.random.default_rng(0).normal(size=50)
    np.testing.assert_allclose(centered_ranks(x), centered_ranks(np.exp(3 * x) - 7))


def test_centered_ranks_rejects_single_value():
    with pytest.raises(ValueError, match="at least two"):
        centered_ranks(np.array([1.0]))


def test_noise_table_is_seeded_and_sliced_by_offset():
    t1 = NoiseTable(seed_sequence(3, NOISE_TABLE), 10_000)
    t2 = NoiseTable(seed_sequence(3, NOISE_TABLE), 10_000)
    t3 = NoiseTable(seed_sequence(4, NOISE_TABLE), 10_000)
    np.testing.assert_array_equal(t1.noise, t2.noise)
    assert not np.array_equal(t1.noise, t3.noise)
    assert t1.noise.dtype == np.float32
    np.testing.assert_array_equal(t1.get(17, 5), t1.noise[17:22])
    batch = t1.batch(np.array([0, 17, 9995]), 5)
    assert batch.shape == (3, 5)
    np.testing.assert_array_equal(batch[1], t1.get(17, 5))
    np.testing.assert_array_equal(batch[2], t1.noise[9995:])
    assert abs(t1.noise.mean()) < 0.05 and abs(t1.noise.std() - 1) < 0.05


def test_noise_table_offsets_stay_inside():
    t = NoiseTable(seed_sequence(0, NOISE_TABLE), 1000)
    offsets = t.sample_offsets(np.random.default_rng(0), 990, 10_000)
    assert offsets.min() >= 0 and offsets.max() <= 10
    assert set(np.unique(offsets)) == set(range(11))  # every valid offset reachable
    with pytest.raises(IndexError):
        t.get(11, 990)
    with pytest.raises(IndexError):
        t.batch(np.array([-1]), 3)
    with pytest.raises(ValueError, match="too small"):
        t.sample_offsets(np.random.default_rng(0), 1001, 1)


def _quadratic(theta, a, b):
    """f(theta) = -0.5 theta^T A theta + b^T theta, gradient b - A theta (maximised)."""
    return -0.5 * theta @ a @ theta + b @ theta


def test_antithetic_estimator_matches_quadratic_gradient():
    # For a quadratic, Gaussian smoothing only adds a constant, so the smoothed gradient
    # equals the true one; the estimator must converge to it.
    rng = np.random.default_rng(1)
    d, m, sigma = 5, 200_000, 0.1
    q = rng.normal(size=(d, d))
    a, b = q @ q.T / d + np.eye(d), rng.normal(size=d)
    theta = rng.normal(size=d)
    eps = rng.standard_normal((m, d))
    f = lambda x: -0.5 * np.einsum("md,de,me->m", x, a, x) + x @ b  # noqa: E731
    returns_n2 = np.stack([f(theta + sigma * eps), f(theta - sigma * eps)], axis=1)
    g = antithetic_gradient(returns_n2, eps, sigma)
    true = b - a @ theta
    assert np.linalg.norm(g - true) / np.linalg.norm(true) < 0.01
    # mirrored sampling cancels the even terms: far less noisy than the plain estimator on the same budget
    eps2 = rng.standard_normal((2 * m, d))
    g_plain = vanilla_gradient(f(theta + sigma * eps2), eps2, sigma)
    assert np.linalg.norm(g - true) < np.linalg.norm(g_plain - true)


def test_antithetic_estimator_checks_shapes():
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        antithetic_gradient(np.zeros((4,)), np.zeros((4, 3)), 0.1)


def test_adam_first_step_is_learning_rate_times_sign():
    opt = Adam(0.01)
    delta, state = opt.step(opt.init(3), np.array([2.0, -0.5, 1e-3]))
    np.testing.assert_allclose(delta, [0.01, -0.01, 0.01], rtol=1e-3)
    assert state.t == 1


def test_sgd_momentum_accumulates():
    opt = SGDMomentum(0.1, momentum=0.9)
    s = opt.init(1)
    d1, s = opt.step(s, np.array([1.0]))
    d2, s = opt.step(s, np.array([1.0]))
    np.testing.assert_allclose([d1[0], d2[0]], [0.1 * 0.1, 0.1 * 0.19])


def test_clipup_hand_computed_steps():
    opt = ClipUp(0.1, momentum=0.5, max_speed=0.15)
    state = opt.init(2)
    step, state = opt.step(state, np.array([3.0, 4.0]))  # v = 0.1 * (0.6, 0.8): below max_speed
    np.testing.assert_allclose(step, [0.06, 0.08])
    step, state = opt.step(state, np.array([0.0, -2.0]))  # v = (0.03, 0.04) + (0, -0.1)
    np.testing.assert_allclose(step, [0.03, -0.06])
    step, state = opt.step(state, np.array([10.0, 0.0]))  # (0.015, -0.03) + (0.1, 0): norm 0.1189 < 0.15
    np.testing.assert_allclose(step, [0.115, -0.03])
    step, state = opt.step(state, np.array([1.0, 0.0]))  # (0.1575, -0.015): norm 0.158 > 0.15, clipped
    assert np.linalg.norm(step) == pytest.approx(0.15)
    np.testing.assert_allclose(step / np.linalg.norm(step), np.array([0.1575, -0.015]) / np.hypot(0.1575, 0.015))
    assert state.t == 4


def test_clipup_zero_gradient_only_decays_the_velocity():
    opt = ClipUp(0.1)  # momentum 0.9, max_speed 0.2
    step, state = opt.step(opt.init(3), np.zeros(3))
    np.testing.assert_array_equal(step, np.zeros(3))  # no NaN from 0 / 0
    step, state = opt.step(state, np.array([0.0, 2.0, 0.0]))
    step, state = opt.step(state, np.zeros(3))
    np.testing.assert_allclose(step, [0.0, 0.09, 0.0])
    assert np.all(np.isfinite(step))


def test_clipup_default_max_speed_is_twice_the_step_size():
    opt = ClipUp(0.05, momentum=0.99)
    state = opt.init(1)
    for _ in range(200):
        step, state = opt.step(state, np.array([1.0]))
    assert step[0] == pytest.approx(0.1)


@pytest.mark.slow
def test_the_es_core_imports_nothing_else_of_the_harness_and_loads_no_simulator():
    """``harness.es`` is numpy only: no module of it imports another harness package, and importing
    the core with its strategies loads no gymnasium, MuJoCo, scipy or torch (the novelty family's
    module adds scipy's KD-tree, still no simulator)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    outside = []
    for path in sorted((root / "harness" / "es").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            outside += [
                f"{path.relative_to(root)}: {n}"
                for n in names
                if n.split(".")[0] == "harness" and not (n == "harness.es" or n.startswith("harness.es."))
            ]
    assert not outside, outside
    code = (
        "import sys, harness.es, harness.es.strategies.openai_es, harness.es.strategies.vo; "
        "heavy = [m for m in ('gymnasium', 'mujoco', 'scipy', 'torch', 'omegaconf') if m in sys.modules]; "
        "assert not heavy, heavy; import harness.es.novelty; "
        "sim = [m for m in ('gymnasium', 'mujoco', 'torch') if m in sys.modules]; assert not sim, sim"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


def test_average_ranks_are_scipys():
    """The core's own ranks (no scipy.stats import) are ``rankdata(method="average")``, ties and all."""
    from scipy.stats import rankdata

    from harness.es.shaping import average_ranks

    rng = np.random.default_rng(0)
    for x in (rng.normal(size=101), rng.integers(0, 5, size=64).astype(float), np.zeros(7), np.arange(2.0)[::-1]):
        np.testing.assert_array_equal(average_ranks(x), rankdata(x, method="average"))


def test_a_population_names_its_members_by_centre_offset_and_sign():
    from harness.es import Population

    pop = Population(np.zeros((2, 3)), 0.1, np.array([5, 9, 11]), True, center_index=np.array([1, 0, 1]))
    assert pop.fitness_shape == (3, 2) and pop.size == 6
    assert [(m.center, m.offset, m.sign) for m in pop.members()] == [
        (1, 5, 1),
        (1, 5, -1),
        (0, 9, 1),
        (0, 9, -1),
        (1, 11, 1),
        (1, 11, -1),
    ]  # fitness order, row-major
    with pytest.raises(ValueError, match="2 centres"):
        pop.center  # noqa: B018 - the property access is what raises
    one = Population.around(np.arange(3.0), 0.1, np.array([4, 2]), False)
    assert one.centers.shape == (1, 3) and [(m.center, m.sign) for m in one.members()] == [(0, 1), (0, 1)]
    with pytest.raises(ValueError, match="center_index"):
        Population(np.zeros((2, 3)), 0.1, np.array([1, 2]), True, center_index=np.array([0, 2]))
    with pytest.raises(ValueError, match=r"centers must have shape \(k, d\)"):
        Population(np.zeros(3), 0.1, np.array([1]), True)


def test_gaussian_members_and_scores_are_the_starters_formulas():
    from harness.es import Gaussian, make_distribution

    noise = NoiseTable(seed_sequence(0, NOISE_TABLE), 1000)
    assert noise.distribution == Gaussian()
    center, eps, g = np.linspace(-1.0, 1.0, 5), noise.get(3, 5), Gaussian()
    x = g.perturb(center, 0.02, eps, -1)
    # (sign * sigma) first, times the float32 row (a float32 product), then added to the float64 centre
    np.testing.assert_array_equal(x, center + np.float32(-0.02) * eps)
    assert x.dtype == np.float64 and g.perturb(center, 0.02, eps, 0) is center
    per_param = np.full(5, 0.02)
    np.testing.assert_array_equal(g.perturb(center, per_param, eps, 1), center + per_param * eps.astype(np.float64))
    e = noise.batch(np.array([0, 7]), 5, np.float64)
    assert g.mean_score(e) is e
    np.testing.assert_array_equal(g.log_sigma_score(e), e * e - 1.0)
    buf = e.copy()
    assert g.log_sigma_score(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, e * e - 1.0)
    with pytest.raises(ValueError, match="unknown noise distribution 'cauchy'; choose one of gaussian"):
        make_distribution("cauchy")


DISTRIBUTIONS_UNDER_TEST = [("gaussian", None), ("laplace", None), ("student_t", 5.0), ("student_t", 3.0)]


@pytest.mark.parametrize("name,df", DISTRIBUTIONS_UNDER_TEST)
def test_every_noise_table_has_zero_mean_unit_variance_and_proper_scores(name, df):
    """E[eps] = 0, E[eps^2] = 1, and the scores' identities that make the estimators unbiased:
    E[s] = 0, E[eps s] = 1 (so no estimator is off by a constant factor), E[log-sigma score] = 0."""
    from harness.es import make_distribution

    dist = make_distribution(name, df)
    table = NoiseTable(seed_sequence(1, NOISE_TABLE), 2_000_000, distribution=dist)
    eps = table.noise.astype(np.float64)
    assert abs(eps.mean()) < 0.005
    assert abs(eps.var() - 1.0) < (0.01 if name != "student_t" else 0.06)  # a t's variance converges slowly
    s = dist.mean_score(eps)
    assert abs(s.mean()) < 0.01 and abs(np.mean(eps * s) - 1.0) < 0.01
    assert abs(dist.log_sigma_score(eps).mean()) < 0.01
    again = NoiseTable(seed_sequence(1, NOISE_TABLE), 2_000_000, distribution=make_distribution(name, df))
    np.testing.assert_array_equal(table.noise, again.noise)  # seeded


@pytest.mark.parametrize("name,df", DISTRIBUTIONS_UNDER_TEST)
def test_each_distributions_estimator_recovers_a_quadratics_gradient_in_50_dimensions(name, df):
    """f(x) = -|x - c|^2, d = 50: the mirrored estimate with the distribution's own score, over
    100,000 seeded pairs, is within 10% (relative norm) of the analytic gradient -2 (mu - c), which
    the smoothing does not change; about 3 standard errors."""
    from harness.es import make_distribution

    d, sigma = 50, 0.1
    dist = make_distribution(name, df)
    table = NoiseTable(seed_sequence(2, NOISE_TABLE), 1_000_000, distribution=dist)
    rng = np.random.default_rng(3)
    c, mu = rng.normal(size=d), rng.normal(size=d)
    offsets = table.sample_offsets(rng, d, 100_000)
    eps = table.batch(offsets, d, np.float64)
    f = lambda x: -np.sum((x - c) ** 2, axis=-1)  # noqa: E731
    fitness = np.stack([f(mu + sigma * eps), f(mu - sigma * eps)], axis=1)
    g = antithetic_gradient(fitness, dist.mean_score(eps), sigma)
    exact = -2.0 * (mu - c)
    assert np.linalg.norm(g - exact) / np.linalg.norm(exact) < 0.1


def test_the_gaussian_formula_on_laplace_noise_is_biased_and_the_laplace_score_is_not():
    """F(x) = x^4: grad J(mu) = 4 mu^3 + 12 mu sigma^2 for every unit-variance symmetric noise; the
    Gaussian formula E[F eps] / sigma gives 4 mu^3 + 4 mu sigma^2 E[eps^4] instead: 10 for Laplace
    (E[eps^4] = 6) at mu = 1, sigma = 0.5, where the truth is 7."""
    from harness.es import Laplace

    dist = Laplace()
    eps = NoiseTable(seed_sequence(4, NOISE_TABLE), 4_000_000, distribution=dist).noise.astype(np.float64)
    mu, sigma = 1.0, 0.5
    pairs = eps.reshape(-1, 1)
    fitness = np.stack([(mu + sigma * pairs[:, 0]) ** 4, (mu - sigma * pairs[:, 0]) ** 4], axis=1)
    own = antithetic_gradient(fitness, dist.mean_score(pairs), sigma)[0]
    gaussian_formula = antithetic_gradient(fitness, pairs, sigma)[0]
    assert own == pytest.approx(7.0, rel=0.02)
    assert gaussian_formula == pytest.approx(10.0, rel=0.02)


def test_nesterov_matches_hand_computed_steps():
    from harness.es import Nesterov

    opt = Nesterov(0.1, momentum=0.5)
    state = opt.init(2)
    step, state = opt.step(state, np.array([1.0, -2.0]))  # m = (0.5, -1); step 0.1 * (0.25 + 0.5, -0.5 - 1)
    np.testing.assert_allclose(step, [0.075, -0.15])
    step, state = opt.step(state, np.array([1.0, 0.0]))  # m = (0.75, -0.5); step 0.1 * (0.375 + 0.5, -0.25 + 0)
    np.testing.assert_allclose(step, [0.0875, -0.025])
    assert state.t == 2
    plain = Nesterov(0.1, momentum=0.0)  # momentum 0: plain SGD
    step, _ = plain.step(plain.init(2), np.array([3.0, -1.0]))
    np.testing.assert_allclose(step, [0.3, -0.1])
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        Nesterov(0.1, momentum=1.0)


@pytest.mark.parametrize("name,df", [("gaussian", None), ("student_t", 5.0)])
def test_second_order_scores_have_steins_moments(name, df):
    """E[psi] = 0 and E[eps^2 psi] = 2 (integrating f'' by parts twice), what makes the curvature
    estimate unbiased."""
    from harness.es import make_distribution

    dist = make_distribution(name, df)
    eps = NoiseTable(seed_sequence(5, NOISE_TABLE), 2_000_000, distribution=dist).noise.astype(np.float64)
    psi = dist.hess_score(eps)
    assert abs(psi.mean()) < 0.02 and abs(np.mean(eps * eps * psi) - 2.0) < 0.1


def test_the_curvature_estimate_recovers_a_quadratics_diagonal_hessian_and_preconditions_a_newton_step():
    """f(x) = -sum a_i (x_i - c_i)^2: the Hessian's diagonal is -2 a; from 100,000 mirrored pairs the
    estimate is within 0.2 of it (about 4 standard errors), and a preconditioned SGD step with
    learning rate 1 lands close to c (one diagonal Newton step)."""
    from harness.es.strategies.openai_es import OpenAIESConfig

    d = 10
    a = np.linspace(0.5, 3.0, d)
    rng = np.random.default_rng(6)
    c, mu = rng.normal(size=d), rng.normal(size=d)
    f = lambda x: -np.sum(a * (x - c) ** 2, axis=-1)  # noqa: E731
    config = OpenAIESConfig(
        population_size=200_000,
        sigma=0.05,
        weight_decay=0.0,
        antithetic=True,
        fitness_shaping="none",
        curvature=False,
        precondition=True,
        curvature_floor=0.01,
    )
    es = OpenAIES(d, NoiseTable(seed_sequence(7, NOISE_TABLE), 1_000_000), SGDMomentum(1.0, momentum=0.0), config)
    state = es.init(mu)
    pop = es.ask(state, np.random.default_rng(8))
    eps = es.noise.batch(pop.noise_offsets, d, np.float64)
    fitness = np.stack([f(mu + pop.sigma * eps), f(mu - pop.sigma * eps)], axis=1)
    h = es.curvature(pop, fitness)
    np.testing.assert_allclose(h, -2.0 * a, atol=0.2)
    new, metrics = es.tell(state, pop, fitness)
    assert metrics["curvature_min"] == pytest.approx(-2.0 * a.max(), abs=0.2)
    assert np.linalg.norm(new.params - c) < 0.1 * np.linalg.norm(mu - c)


def test_laplace_noise_has_no_curvature_and_says_so():
    from harness.es import Laplace
    from harness.es.strategies.openai_es import OpenAIESConfig

    config = OpenAIESConfig(
        population_size=4,
        sigma=0.1,
        weight_decay=0.0,
        antithetic=True,
        fitness_shaping="centered_ranks",
        curvature=True,
        precondition=False,
        curvature_floor=0.01,
    )
    with pytest.raises(ValueError, match="algo.noise=laplace has none"):
        OpenAIES(3, NoiseTable(seed_sequence(0, NOISE_TABLE), 1000, distribution=Laplace()), Adam(0.1), config)


def _guided(d, alpha, k=1, pop=200_000, sigma=0.05):
    from harness.es.strategies.guided_es import GuidedES, GuidedESConfig

    config = GuidedESConfig(
        population_size=pop,
        sigma=sigma,
        weight_decay=0.0,
        antithetic=True,
        fitness_shaping="none",
        curvature=False,
        precondition=False,
        curvature_floor=0.01,
        guided={"k": k, "alpha": alpha},
    )
    return GuidedES(d, NoiseTable(seed_sequence(9, NOISE_TABLE), 1_000_000), SGDMomentum(1.0, momentum=0.0), config)


def test_guided_perturbations_have_the_mixed_covariance_and_unit_trace():
    """eps ~ N(0, alpha/n I + (1 - alpha) u u^T) (k = 1): variance alpha/n + (1 - alpha) along the last
    update u, alpha/n across it; E|eps|^2 = 1 (so sigma is OpenAI-ES's sigma times sqrt(n))."""
    import dataclasses

    d, alpha = 20, 0.3
    es = _guided(d, alpha, pop=100_000)
    direction = np.zeros(d)
    direction[3] = 2.0
    state = dataclasses.replace(es.init(np.zeros(d)), history=direction[None, :], filled=1)
    pop = es.ask(state, np.random.default_rng(0))
    eps = pop.centers[0::2] / es.config.sigma
    assert np.mean(np.sum(eps * eps, axis=1)) == pytest.approx(1.0, rel=0.02)
    assert np.var(eps[:, 3]) == pytest.approx(alpha / d + 1 - alpha, rel=0.03)
    assert np.var(eps[:, 7]) == pytest.approx(alpha / d, rel=0.03)
    np.testing.assert_allclose(pop.centers[1::2], -pop.centers[0::2])  # mirrored around the centre 0


def test_the_guided_estimate_averages_to_the_sigma_weighted_gradient_of_a_quadratic_in_50_dimensions():
    """f(x) = -|x - c|^2: E[g] = sqrt(n) sigma Sigma grad f, within 10% (relative norm) over 100,000 pairs;
    and with alpha = 1 the sampling is isotropic (no pull towards the last update)."""
    import dataclasses

    d, alpha, sigma = 50, 0.5, 0.05
    rng = np.random.default_rng(10)
    c, mu, v = rng.normal(size=d), rng.normal(size=d), rng.normal(size=d)
    for a in (alpha, 1.0):
        es = _guided(d, a, sigma=sigma)
        state = dataclasses.replace(es.init(mu), history=v[None, :], filled=1)
        pop = es.ask(state, np.random.default_rng(11))
        fitness = -np.sum((pop.centers - c) ** 2, axis=1)
        g = es.direction(state, pop, fitness)
        unit = v / np.linalg.norm(v)
        cov = a / d * np.eye(d) + (1 - a) * np.outer(unit, unit)
        expected = np.sqrt(d) * sigma * cov @ (-2.0 * (mu - c))
        assert np.linalg.norm(g - expected) / np.linalg.norm(expected) < 0.1
