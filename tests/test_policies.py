import numpy as np
import pytest

from harness.policies import LinearPolicy, MLPPolicy, RunningStat


def test_running_stat_merge_equals_stats_of_concatenation():
    rng = np.random.default_rng(0)
    parts = [rng.normal(loc=3.0, scale=s, size=(n, 4)) for n, s in [(5, 1.0), (100, 2.0), (1, 0.1), (37, 5.0)]]
    merged = RunningStat.zeros(4)
    for p in parts:
        merged = merged.merge(RunningStat.from_batch(p))
    allx = np.concatenate(parts)
    assert merged.count == len(allx)
    np.testing.assert_allclose(merged.mean, allx.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, allx.var(axis=0), rtol=1e-10)
    # merging is order independent up to rounding
    rev = RunningStat.zeros(4)
    for p in reversed(parts):
        rev = rev.merge(RunningStat.from_batch(p))
    np.testing.assert_allclose(rev.var, merged.var, rtol=1e-10)


def test_normalizer_floors_variance_and_starts_at_identity():
    mean, std = RunningStat.zeros(3).normalizer()
    np.testing.assert_array_equal(mean, 0)
    np.testing.assert_array_equal(std, 1)
    const = RunningStat.from_batch(np.full((10, 2), 7.0))
    _, std = const.normalizer()
    np.testing.assert_allclose(std, 0.1)  # sqrt(1e-2)


def test_linear_policy_shapes_and_clipping():
    p = LinearPolicy(3, -np.ones(2), np.ones(2))
    assert p.num_params == 2 * 3 + 2
    params = np.arange(8.0)
    (w, b), = p.unflatten(params)
    np.testing.assert_array_equal(w, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(b, [6, 7])
    a = p.act(p.unflatten(params), np.array([1.0, 0.0, 0.0]), np.zeros(3), np.ones(3))
    np.testing.assert_array_equal(a, [1.0, 1.0])  # 6 and 10 clipped to the action bound
    small = np.zeros(8)
    small[0] = 0.1
    np.testing.assert_allclose(p.act(p.unflatten(small), np.array([100.0, 0, 0]), np.zeros(3), np.ones(3)), [0.5, 0])  # obs clipped to 5
    with pytest.raises(ValueError, match="shape"):
        p.unflatten(np.zeros(7))


def test_mlp_policy_init_is_seeded_and_sized():
    p = MLPPolicy(17, -np.ones(6), np.ones(6), hidden_sizes=(64, 64))
    assert p.num_params == 17 * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6
    x1 = p.init_params(np.random.default_rng(0))
    x2 = p.init_params(np.random.default_rng(0))
    np.testing.assert_array_equal(x1, x2)
    w_out, _ = p.unflatten(x1)[-1]
    np.testing.assert_allclose(np.linalg.norm(w_out, axis=1), 0.01)
