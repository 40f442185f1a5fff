"""Hand-checked unit tests of the ES mathematics."""

import numpy as np
import pytest

from harness.es_core import Adam, NoiseTable, SGDMomentum, antithetic_gradient, centered_ranks, vanilla_gradient
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
    from harness.es_core import ClipUp

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
    from harness.es_core import ClipUp

    opt = ClipUp(0.1)  # momentum 0.9, max_speed 0.2
    step, state = opt.step(opt.init(3), np.zeros(3))
    np.testing.assert_array_equal(step, np.zeros(3))  # no NaN from 0 / 0
    step, state = opt.step(state, np.array([0.0, 2.0, 0.0]))
    step, state = opt.step(state, np.zeros(3))
    np.testing.assert_allclose(step, [0.0, 0.09, 0.0])
    assert np.all(np.isfinite(step))


def test_clipup_default_max_speed_is_twice_the_step_size():
    from harness.es_core import ClipUp

    opt = ClipUp(0.05, momentum=0.99)
    state = opt.init(1)
    for _ in range(200):
        step, state = opt.step(state, np.array([1.0]))
    assert step[0] == pytest.approx(0.1)
