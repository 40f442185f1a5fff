"""NumPy policies on one flat parameter vector, and running observation statistics.

A policy maps a raw observation to an action:
``a = clip(f_theta(clip((o - mean) / std, -obs_clip, obs_clip)), low, high)``, or, with
``action_bins``, the argmax of ``f_theta``'s scores per action component mapped to evenly spaced values,
with the normalization statistics frozen within a generation (Salimans et al. 2017,
Sec. 2.2 "observation normalization"; the OpenAI starter's ``MujocoPolicy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # the ufunc np.clip calls for arrays with both bounds, without np.clip's Python-level dispatch
    from numpy._core.umath import clip as _clip
except ImportError:  # NumPy 1.x
    from numpy.core.umath import clip as _clip

# Salimans et al. / the OpenAI starter floor the variance at 1e-2 so that rarely-moving
# observation features are not blown up.
_VAR_FLOOR = 1e-2


@dataclass(frozen=True)
class RunningStat:
    """Count, mean and sum of squared deviations (``m2``) of observations, shape ``(obs_dim,)``.

    Merged with Chan et al.'s parallel update, so merging per-episode statistics in a
    fixed order gives the same numbers however episodes were spread over workers.
    """

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def zeros(cls, dim: int) -> RunningStat:
        """Empty statistics of ``dim`` features: count 0, zero ``mean`` and ``m2`` of shape ``(dim,)``."""
        return cls(0.0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def from_batch(cls, x: np.ndarray) -> RunningStat:
        """Statistics of a batch ``x`` of shape ``(n, obs_dim)``."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        return cls(float(x.shape[0]), mean, ((x - mean) ** 2).sum(axis=0))

    def merge(self, other: RunningStat) -> RunningStat:
        """The statistics of both samples together (Chan, Golub & LeVeque 1979)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return RunningStat(n, mean, m2)

    @property
    def var(self) -> np.ndarray:
        """Population variance, shape ``(obs_dim,)``; ones before any observation."""
        return self.m2 / self.count if self.count > 0 else np.ones_like(self.mean)

    def normalizer(self) -> tuple[np.ndarray, np.ndarray]:
        """Frozen ``(mean, std)`` for the policy, each ``(obs_dim,)`` float64, var floored at 1e-2."""
        return self.mean.copy(), np.sqrt(np.maximum(self.var, _VAR_FLOOR))


class Policy:
    """Base: a deterministic map from observations to actions on a flat ``params`` vector.

    :param obs_dim: observation size. :param act_low, act_high: action bounds, shape ``(act_dim,)``.
    :param obs_clip: normalized observations are clipped to ``[-obs_clip, obs_clip]``.
    :param action_bins: ``K >= 2``: discretized actions (:meth:`discretize`): the network outputs ``K``
        scores per action component (``out_dim = act_dim * K``); 0 or ``None``: continuous actions,
        ``out_dim = act_dim``, clipped to the box.
    :raises ValueError: for ``action_bins`` of 1 or less than 0, or discretized actions on an unbounded box.
    """

    def __init__(
        self,
        obs_dim: int,
        act_low: np.ndarray,
        act_high: np.ndarray,
        obs_clip: float = 5.0,
        action_bins: int | None = 0,
    ):
        self.obs_dim = int(obs_dim)
        self.act_low = np.asarray(act_low, dtype=np.float64)
        self.act_high = np.asarray(act_high, dtype=np.float64)
        self.act_dim = self.act_low.size
        self.obs_clip = float(obs_clip)
        self.action_bins = int(action_bins or 0)
        if self.action_bins == 1 or self.action_bins < 0:
            raise ValueError(f"action_bins must be 0 (continuous) or at least 2, got {action_bins!r}")
        if self.action_bins and not (np.all(np.isfinite(self.act_low)) and np.all(np.isfinite(self.act_high))):
            raise ValueError(
                "discretized actions (action_bins) need a bounded action space, got bounds "
                f"{self.act_low} to {self.act_high}"
            )
        # the K action values of each component, evenly spaced from low to high, both included: (act_dim, K)
        self.bin_values = (
            np.linspace(self.act_low, self.act_high, self.action_bins, axis=1) if self.action_bins else None
        )
        self.out_dim = self.act_dim * self.action_bins if self.action_bins else self.act_dim
        self.shapes = self.layer_shapes()
        self.num_params = sum(o * i + o for o, i in self.shapes)

    def discretize(self, scores: np.ndarray) -> np.ndarray:
        """Actions from the network's output: with ``action_bins = K``, component ``j`` of the action is
        ``low_j + i (high_j - low_j) / (K - 1)`` where ``i = argmax(scores[..., j*K:(j+1)*K])`` (the first
        on a tie): deterministic, no softmax, no sampling. As the OpenAI evolution-strategies-starter's
        ``MujocoPolicy`` with ``ac_bins="uniform:K"`` (es_distributed/policies.py, ``bins``), the policy
        Salimans et al. 2017 (Sec. 4.1) used on Hopper and Swimmer with K = 10; with an even K, the
        centre of the box (0 on [-1, 1]) cannot be chosen. Without bins: the scores clipped to the box.

        :param scores: shape ``(..., out_dim)``. :returns: shape ``(..., act_dim)`` float64.
        """
        if not self.action_bins:
            return np.clip(scores, self.act_low, self.act_high)
        k = self.action_bins
        index = np.argmax(scores.reshape(*scores.shape[:-1], self.act_dim, k), axis=-1)  # (..., act_dim)
        step = (self.act_high - self.act_low) / (k - 1)
        return self.act_low + index * step

    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(out, in)`` of each dense layer."""
        raise NotImplementedError

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split ``params`` (shape ``(num_params,)``) into ``(W (out, in), b (out,))`` per layer."""
        if params.shape != (self.num_params,):
            raise ValueError(f"expected params of shape ({self.num_params},), got {params.shape}")
        layers, i = [], 0
        for out, inp in self.shapes:
            w = params[i : i + out * inp].reshape(out, inp)
            i += out * inp
            layers.append((w, params[i : i + out]))
            i += out
        return layers

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """Initial parameters, shape ``(num_params,)`` float64."""
        raise NotImplementedError

    def layers(self, params: np.ndarray, mean: np.ndarray, std: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The dense layers ``(W (out, in), b (out,))`` that :meth:`act` and :meth:`actor` apply for
        ``params`` under the frozen normalizer ``(mean, std)``: :meth:`unflatten` here; a policy with
        virtual batch normalization folds its normalization into them (:class:`VBNMLPPolicy`)."""
        return self.unflatten(params)

    def act(self, layers, obs: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Action for one raw observation ``obs`` (``(obs_dim,)``), clipped to the action space."""
        x = np.clip((obs - mean) / std, -self.obs_clip, self.obs_clip)
        for k, (w, b) in enumerate(layers):
            x = w @ x + b
            if k < len(layers) - 1:
                x = np.tanh(x)
        return self.discretize(x)

    def actor(self, layers, mean: np.ndarray, std: np.ndarray):
        """``obs -> act(layers, obs, mean, std)`` for a whole episode, bit for bit, at a fraction
        of the cost per step: the normalized observation and the hidden activations live in
        buffers allocated here, every operation writes into one (``out=``), and clipping calls
        the ufunc that ``np.clip`` ends in, without its Python-level dispatch. Each call returns
        a new action array (an environment may keep the action it was given). An observation
        that is not a float64 array goes through :meth:`act` (its dtype promotions could differ
        from the buffers')."""
        mean, std = np.asarray(mean), np.asarray(std)
        if mean.dtype != np.float64 or std.dtype != np.float64 or self.action_bins:
            return lambda obs: self.act(layers, obs, mean, std)
        x = np.empty(self.obs_dim)
        *hidden, (w_out, b_out) = layers
        buffers = [np.empty(w.shape[0]) for w, _ in hidden]
        lo, hi, high_c, low_c = self.act_low, self.act_high, self.obs_clip, -self.obs_clip
        subtract, divide, clip, matmul, add, tanh = np.subtract, np.divide, _clip, np.matmul, np.add, np.tanh
        ndarray, float64 = np.ndarray, np.dtype(np.float64)

        def act(obs: np.ndarray) -> np.ndarray:
            if obs.__class__ is not ndarray or obs.dtype != float64:
                return self.act(layers, obs, mean, std)
            subtract(obs, mean, out=x)
            divide(x, std, out=x)
            clip(x, low_c, high_c, out=x)
            h = x
            for (w, b), buf in zip(hidden, buffers):
                matmul(w, h, out=buf)
                add(buf, b, out=buf)
                tanh(buf, out=buf)
                h = buf
            a = matmul(w_out, h)
            add(a, b_out, out=a)
            clip(a, lo, hi, out=a)
            return a

        return act


class LinearPolicy(Policy):
    """``a = W o_hat + b``; zero-initialised, as in ARS (Mania et al. 2018)."""

    def layer_shapes(self):
        """One dense layer: ``[(out_dim, obs_dim)]``."""
        return [(self.out_dim, self.obs_dim)]

    def init_params(self, rng):
        """All zeros, shape ``(num_params,)`` (``rng`` is not used)."""
        return np.zeros(self.num_params)


class MLPPolicy(Policy):
    """tanh hidden layers and a linear output (Salimans et al. 2017 used 64-64 tanh).

    Weights use the starter's normalized-column init (hidden std 1, output std 0.01); biases 0.
    """

    def __init__(self, obs_dim, act_low, act_high, obs_clip=5.0, hidden_sizes=(64, 64), action_bins=0):
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        super().__init__(obs_dim, act_low, act_high, obs_clip, action_bins)

    def layer_shapes(self):
        """``(out, in)`` of each dense layer: ``obs_dim``, then ``hidden_sizes``, then ``out_dim``."""
        sizes = [self.obs_dim, *self.hidden_sizes, self.out_dim]
        return [(sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)]

    def init_params(self, rng):
        """Initial parameters, shape ``(num_params,)``, layer by layer ``W`` (row-major) then ``b``: each row of
        ``W`` drawn standard normal from ``rng`` and scaled to norm 1 (hidden layers) or 0.01 (output layer), the
        starter's normalized-column init; biases 0."""
        parts = []
        for k, (out, inp) in enumerate(self.shapes):
            std = 0.01 if k == len(self.shapes) - 1 else 1.0
            w = rng.standard_normal((out, inp))
            w *= std / np.sqrt(np.square(w).sum(axis=1, keepdims=True))
            parts += [w.ravel(), np.zeros(out)]
        return np.concatenate(parts)


class VBNMLPPolicy(MLPPolicy):
    """:class:`MLPPolicy` with virtual batch normalization of every hidden layer (Salimans et al.
    2017, Sec. 2.2; Salimans et al. 2016, "Improved techniques for training GANs", Sec. 3.4).

    Batch normalization whose batch is a *reference batch* of observations chosen once, at the
    start of training, and fixed (:func:`collect_reference_batch`). Hidden layer ``k`` computes

        ``h_k = tanh(gamma_k * (W_k h_{k-1} - mu_k) / sqrt(var_k + eps) + b_k)``,

    where ``mu_k`` and ``var_k`` (per unit) are the mean and variance of ``W_k h_{k-1}`` over the
    reference batch passed through the network with the *same* parameters (and the same frozen
    observation normalizer): every perturbed member normalizes with its own statistics, which
    makes the policy's output far less sensitive to the scale of a perturbation. The output layer
    is not normalized. ``gamma_k`` (one per unit, initialised to 1) are extra parameters after each
    hidden layer's bias, so ``num_params`` is :class:`MLPPolicy`'s plus the hidden units.

    Normalizing is an affine map per unit, so :meth:`layers` folds it into ``(W, b)`` once per
    episode (``W' = s W``, ``b' = b - s mu`` with ``s = gamma / sqrt(var + eps)``): an episode's
    steps cost what the plain MLP's do.

    :param reference_batch: raw observations, shape ``(batch, obs_dim)``.
    :raises ValueError: if the reference batch is empty or of the wrong width.
    """

    EPS = 1e-5  # added to the variance, as in batch normalization (Ioffe & Szegedy 2015)

    def __init__(
        self, obs_dim, act_low, act_high, obs_clip=5.0, hidden_sizes=(64, 64), reference_batch=None, action_bins=0
    ):
        super().__init__(obs_dim, act_low, act_high, obs_clip, hidden_sizes, action_bins)
        batch = np.asarray(reference_batch, dtype=np.float64) if reference_batch is not None else None
        if batch is None or batch.ndim != 2 or batch.shape[0] < 2 or batch.shape[1] != self.obs_dim:
            raise ValueError(
                f"virtual batch normalization needs a reference batch of shape (batch >= 2, "
                f"{self.obs_dim}), got {None if batch is None else batch.shape}"
            )
        self.reference_batch = batch
        self.num_params += sum(self.hidden_sizes)

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """``(W, b, gamma)`` per hidden layer, then ``(W, b)`` of the output layer."""
        if params.shape != (self.num_params,):
            raise ValueError(f"expected params of shape ({self.num_params},), got {params.shape}")
        layers, i = [], 0
        for k, (out, inp) in enumerate(self.shapes):
            w = params[i : i + out * inp].reshape(out, inp)
            i += out * inp
            b = params[i : i + out]
            i += out
            if k < len(self.shapes) - 1:
                layers.append((w, b, params[i : i + out]))
                i += out
            else:
                layers.append((w, b))
        return layers

    def init_params(self, rng):
        """:class:`MLPPolicy`'s parameters (the same numbers from the same ``rng``) with each hidden layer's
        ``gamma``, all ones, after its bias; shape ``(num_params,)``."""
        plain = super().init_params(rng)  # the MLP's weights and biases, drawn as MLPPolicy draws them
        parts, i = [], 0
        for k, (out, inp) in enumerate(self.shapes):
            parts.append(plain[i : i + out * inp + out])
            i += out * inp + out
            if k < len(self.shapes) - 1:
                parts.append(np.ones(out))  # gamma
        return np.concatenate(parts)

    def layers(self, params, mean, std):
        """The normalized network as plain dense layers (see the class docstring)."""
        x = np.clip((self.reference_batch - mean) / std, -self.obs_clip, self.obs_clip)  # (batch, obs_dim)
        *hidden, out = self.unflatten(np.asarray(params, dtype=np.float64))
        folded = []
        for w, b, gamma in hidden:
            z = x @ w.T  # (batch, units)
            scale = gamma / np.sqrt(z.var(axis=0) + self.EPS)
            w_f, b_f = w * scale[:, None], b - scale * z.mean(axis=0)
            folded.append((w_f, b_f))
            x = np.tanh(x @ w_f.T + b_f)
        return [*folded, out]


class BatchActor:
    """Actions of ``B`` members of one policy, each with its own dense layers, for a batch of
    observations: what :meth:`Policy.act` gives row by row, computed in one ``np.matmul`` per
    layer (the ``mujoco`` engine's, :mod:`harness.workers.mujoco_engine`). Each member's layers are
    stacked into ``(B, out, in)`` arrays, so a row's arithmetic is the same whatever ``B`` is;
    ``np.matmul`` is the one place where a CPU's BLAS could round a row otherwise than
    :meth:`Policy.actor` does (``tests/test_mujoco_engine.py`` holds them equal here).

    :param layers: one list of ``(W (out, in), b (out,))`` per member (:meth:`Policy.layers`).
    :param mean, std: the frozen normalizer, shape ``(obs_dim,)``.
    """

    def __init__(self, policy: Policy, layers, mean: np.ndarray, std: np.ndarray) -> None:
        self.weights = [np.stack([member[k][0] for member in layers]) for k in range(len(layers[0]))]
        self.biases = [np.stack([member[k][1] for member in layers]) for k in range(len(layers[0]))]
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self.policy = policy

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` shape ``(B, obs_dim)`` -> actions shape ``(B, act_dim)`` float64, clipped to the box
        (or discretized: :meth:`Policy.discretize`)."""
        p = self.policy
        x = np.clip((obs - self.mean) / self.std, -p.obs_clip, p.obs_clip)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = np.matmul(w, x[:, :, None])[:, :, 0] + b
            if k < last:
                x = np.tanh(x)
        return p.discretize(x)


def collect_reference_batch(
    env, size: int, rng: np.random.Generator, episode_seeds, keep_probability: float = 0.01
) -> np.ndarray:
    """The reference batch of virtual batch normalization: observations of a random policy.

    Actions are drawn uniformly from the action box by ``rng``; each observation after a step is
    kept with probability ``keep_probability`` (also drawn by ``rng``), so the batch spreads over
    whole episodes rather than their first steps (the OpenAI/Uber ES code keeps 1 in 100). Episodes
    start from ``env.reset(seed=s)`` for ``s`` in ``episode_seeds`` (an iterator), as many as needed.

    :returns: shape ``(size, obs_dim)`` float64, in the order collected.
    :raises ValueError: if ``size < 2`` or ``keep_probability`` is not in ``(0, 1]``.
    """
    if size < 2:
        raise ValueError(f"a reference batch needs at least 2 observations, got size={size}")
    if not 0.0 < keep_probability <= 1.0:
        raise ValueError(f"keep_probability must be in (0, 1], got {keep_probability}")
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    batch: list[np.ndarray] = []
    while len(batch) < size:
        env.reset(seed=int(next(episode_seeds)))
        done = False
        while not done and len(batch) < size:
            obs, _, terminated, truncated, _ = env.step(rng.uniform(low, high))
            done = terminated or truncated
            if rng.random() < keep_probability:
                batch.append(np.asarray(obs, dtype=np.float64))
    return np.stack(batch)


def make_policy(cfg: dict, obs_dim: int, act_low: np.ndarray, act_high: np.ndarray) -> Policy:
    """Build the policy named by ``cfg["name"]`` (``linear`` or ``mlp``; ``mlp`` with
    ``virtual_batch_norm: true`` is a :class:`VBNMLPPolicy` on ``cfg["reference_batch"]``), with
    ``cfg["action_bins"]`` discretized actions (:meth:`Policy.discretize`).

    :raises ValueError: for an unknown name, or virtual batch normalization without an MLP or
        without a reference batch.
    """
    name = cfg["name"]
    clip = float(cfg.get("obs_clip", 5.0))
    vbn = bool(cfg.get("virtual_batch_norm", False))
    bins = cfg.get("action_bins") or 0  # absent from policies saved before the key existed: continuous
    if vbn and name != "mlp":
        raise ValueError(f"policy.virtual_batch_norm=true needs policy=mlp (the {name} policy has no hidden layer)")
    if name == "linear":
        return LinearPolicy(obs_dim, act_low, act_high, clip, bins)
    if name == "mlp":
        hidden = cfg.get("hidden_sizes", (64, 64))
        if vbn:
            return VBNMLPPolicy(obs_dim, act_low, act_high, clip, hidden, cfg.get("reference_batch"), bins)
        return MLPPolicy(obs_dim, act_low, act_high, clip, hidden, bins)
    raise ValueError(f"unknown policy {name!r}; choose linear or mlp")
