import numpy as np
import pytest

from harness.policies import LinearPolicy, MLPPolicy, RunningStat, VBNMLPPolicy, collect_reference_batch, make_policy


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
    ((w, b),) = p.unflatten(params)
    np.testing.assert_array_equal(w, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(b, [6, 7])
    a = p.act(p.unflatten(params), np.array([1.0, 0.0, 0.0]), np.zeros(3), np.ones(3))
    np.testing.assert_array_equal(a, [1.0, 1.0])  # 6 and 10 clipped to the action bound
    small = np.zeros(8)
    small[0] = 0.1
    np.testing.assert_allclose(
        p.act(p.unflatten(small), np.array([100.0, 0, 0]), np.zeros(3), np.ones(3)), [0.5, 0]
    )  # obs clipped to 5
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


def _vbn(obs_dim=5, act_dim=2, hidden=(8, 6), batch=32, seed=0):
    rng = np.random.default_rng(seed)
    reference = rng.normal(2.0, 3.0, size=(batch, obs_dim))
    return VBNMLPPolicy(obs_dim, -np.ones(act_dim), np.ones(act_dim), 5.0, hidden, reference), rng


def _vbn_by_hand(policy, params, obs, mean, std):
    """Virtual batch normalization as written in the papers: the reference batch and the observation go
    through the network side by side; each hidden layer is normalized with the reference batch's statistics."""
    x_ref = np.clip((policy.reference_batch - mean) / std, -5, 5)
    x = np.clip((obs - mean) / std, -5, 5)
    *hidden, (w_out, b_out) = policy.unflatten(params)
    for w, b, gamma in hidden:
        z_ref, z = x_ref @ w.T, w @ x
        mu, var = z_ref.mean(axis=0), z_ref.var(axis=0)
        x_ref = np.tanh(gamma * (z_ref - mu) / np.sqrt(var + 1e-5) + b)
        x = np.tanh(gamma * (z - mu) / np.sqrt(var + 1e-5) + b)
    return np.clip(w_out @ x + b_out, -1, 1)


def test_vbn_policy_acts_as_batch_normalization_on_its_reference_batch():
    """The folded layers give the papers' formula, and each perturbed member gets its own statistics."""
    policy, rng = _vbn()
    plain = MLPPolicy(5, -np.ones(2), np.ones(2), 5.0, (8, 6))
    assert policy.num_params == plain.num_params + 8 + 6  # one scale (gamma) per hidden unit
    params = policy.init_params(np.random.default_rng(1))
    # the weights and biases are drawn as the plain MLP's, the scales start at 1
    *hidden, out = policy.unflatten(params)
    np.testing.assert_array_equal(
        np.concatenate([np.concatenate([w.ravel(), b]) for w, b, _ in hidden] + [out[0].ravel(), out[1]]),
        plain.init_params(np.random.default_rng(1)),
    )
    assert all(np.all(g == 1.0) for *_, g in hidden)
    mean, std = rng.normal(size=5), rng.uniform(0.5, 2.0, size=5)
    for member in (params, params + 0.3 * rng.standard_normal(params.size)):
        layers = policy.layers(member, mean, std)
        act = policy.actor(layers, mean, std)
        for obs in rng.normal(2.0, 3.0, size=(5, 5)):
            expected = _vbn_by_hand(policy, member, obs, mean, std)
            np.testing.assert_allclose(policy.act(layers, obs, mean, std), expected, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(act(obs), policy.act(layers, obs, mean, std))
        # on the reference batch, the first hidden layer's pre-activations have mean b and std gamma
        w1, b1 = layers[0]
        z = np.clip((policy.reference_batch - mean) / std, -5, 5) @ w1.T + b1
        np.testing.assert_allclose(z.mean(axis=0), policy.unflatten(member)[0][1], atol=1e-12)
        np.testing.assert_allclose(z.std(axis=0), np.abs(policy.unflatten(member)[0][2]), rtol=1e-3)


def test_vbn_makes_the_output_independent_of_the_scale_of_the_first_layer():
    """What VBN is for: scaling a hidden layer's weights (a large perturbation) changes nothing downstream."""
    policy, rng = _vbn()
    params = policy.init_params(np.random.default_rng(2))
    scaled = params.copy()
    scaled[: 8 * 5] *= 10.0  # the first layer's weights
    mean, std = np.zeros(5), np.ones(5)
    obs = rng.normal(2.0, 3.0, size=5)
    a = policy.act(policy.layers(params, mean, std), obs, mean, std)
    b = policy.act(policy.layers(scaled, mean, std), obs, mean, std)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_vbn_needs_an_mlp_and_a_reference_batch():
    with pytest.raises(ValueError, match="needs policy=mlp"):
        make_policy({"name": "linear", "virtual_batch_norm": True}, 3, -np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match=r"reference batch of shape \(batch >= 2, 3\), got None"):
        make_policy({"name": "mlp", "virtual_batch_norm": True}, 3, -np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match=r"got \(4, 2\)"):
        make_policy(
            {"name": "mlp", "virtual_batch_norm": True, "reference_batch": np.zeros((4, 2))}, 3, -np.ones(1), np.ones(1)
        )


def test_the_reference_batch_is_seeded_and_spread_over_episodes():
    import gymnasium as gym

    env = gym.make("Hopper-v5")

    def batch(seed):
        seeds = iter(range(1000 * seed, 1000 * seed + 1000))
        return collect_reference_batch(env, 64, np.random.default_rng(seed), seeds, keep_probability=0.05)

    a, b, c = batch(0), batch(0), batch(1)
    assert a.shape == (64, 11) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # kept 1 step in 20 of whole random episodes, not only states near the reset: the torso's height
    # (obs[0]) spreads far beyond the reset noise (uniform +-0.005, std 0.003) as the hopper falls
    assert np.std(a[:, 0]) > 0.01
    env.close()
    with pytest.raises(ValueError, match="at least 2"):
        collect_reference_batch(env, 1, np.random.default_rng(0), iter(range(5)))


def test_action_bins_match_a_hand_computation():
    # 2 action components on boxes [-1, 1] and [0, 3], 4 bins each: values -1, -1/3, 1/3, 1 and 0, 1, 2, 3.
    # A linear policy whose output is the bias alone (W = 0) gives the scores directly.
    p = LinearPolicy(3, np.array([-1.0, 0.0]), np.array([1.0, 3.0]), action_bins=4)
    assert p.out_dim == 8 and p.num_params == 8 * 3 + 8
    scores = np.array(
        [
            0.1,
            0.7,
            -2.0,
            0.3,  # component 0: argmax is bin 1 -> -1 + 1 * 2/3 = -1/3
            5.0,
            5.0,
            1.0,
            4.9,
        ]
    )  # component 1: a tie between bins 0 and 1 -> the first, bin 0 -> 0
    params = np.concatenate([np.zeros(24), scores])
    a = p.act(p.unflatten(params), np.array([0.3, -2.0, 9.0]), np.zeros(3), np.ones(3))
    np.testing.assert_allclose(a, [-1.0 / 3.0, 0.0], rtol=0, atol=1e-15)
    # the same through the per-episode actor, and for the last bins
    params[24:] = [0, 0, 0, 1, 0, 0, 0, 1]
    np.testing.assert_array_equal(p.actor(p.unflatten(params), np.zeros(3), np.ones(3))(np.ones(3)), [1.0, 3.0])
    # batched: (B, out_dim) -> (B, act_dim)
    batch = np.array([[1, 0, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1, 0, 0]], dtype=float)
    np.testing.assert_allclose(p.discretize(batch), [[-1.0, 2.0], [1.0 / 3.0, 1.0]], atol=1e-15)


def test_ten_bins_on_the_unit_box_never_choose_zero():
    p = MLPPolicy(5, -np.ones(3), np.ones(3), hidden_sizes=(8,), action_bins=10)
    assert p.shapes == [(8, 5), (30, 8)]
    values = np.linspace(-1, 1, 10)
    assert 0.0 not in values
    rng = np.random.default_rng(0)
    params = rng.standard_normal(p.num_params)
    obs = rng.standard_normal((50, 5))
    actions = np.stack([p.act(p.unflatten(params), o, np.zeros(5), np.ones(5)) for o in obs])
    assert np.isin(actions, values).all() and len(np.unique(actions)) > 2


def test_action_bins_are_refused_where_they_cannot_work():
    with pytest.raises(ValueError, match="at least 2"):
        LinearPolicy(3, -np.ones(2), np.ones(2), action_bins=1)
    with pytest.raises(ValueError, match="bounded"):
        LinearPolicy(3, np.array([-np.inf, 0.0]), np.ones(2), action_bins=4)
    assert (
        make_policy({"name": "mlp", "hidden_sizes": [4], "action_bins": None}, 3, -np.ones(2), np.ones(2)).out_dim == 2
    )
    assert make_policy({"name": "mlp", "hidden_sizes": [4], "action_bins": 5}, 3, -np.ones(2), np.ones(2)).out_dim == 10
