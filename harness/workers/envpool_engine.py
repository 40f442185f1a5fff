"""The ``envpool`` rollout engine (``workers.engine=envpool``): a worker's episodes stepped together
in one EnvPool instance (C++ MuJoCo tasks, Weng et al. 2022, github.com/sail-sg/envpool), every
member's action computed in one batched array operation.

What a worker does with a piece of ``B`` episodes (:meth:`EnvPoolObjective.run_batch`):

1. It makes a pool of ``B`` environments, environment ``i`` seeded with episode ``i``'s own
   ``env_seed`` (EnvPool's ``env_seed`` list; each environment's ``std::mt19937`` is seeded with
   it, and its first reset draws the initial state). An episode's initial state is therefore a
   function of its seed alone: not of the pool it shares, the worker, ``workers.n`` or the backend.
   Both members of a mirrored pair carry the same seed (``harness.algos.evolution.episode_specs``),
   so they start from the same state (common random numbers), as with the ``gymnasium`` engine.
   A pool lives for one piece; making one costs about a millisecond per environment.
2. It steps only the environments whose episodes are still running (``step(actions, env_id)``):
   an ended episode costs no more simulation, and EnvPool's auto-reset never fires, so
   ``timesteps`` counts real steps only.
3. It computes the actions of all ``B`` members at once (:class:`BatchActor`): each member's
   dense layers stacked into ``(B, out, in)`` arrays and applied with ``np.matmul``, row by row
   the same arithmetic whatever ``B`` is.
4. It yields each episode's :class:`~harness.workers.rollout.EpisodeResult` in the piece's order,
   as soon as it and every episode before it have ended.

The same seed gives the ``gymnasium`` engine and this one different initial states (NumPy's
PCG64 against ``std::mt19937``) and different rounding (EnvPool's rewards are float32), so their
rows differ; ``tests/test_envpool_engine.py`` holds that they simulate the same task: the same
observations, rewards and terminations for the same actions with the reset noise off, and the
same distribution of returns with it on. The report labels a run's engine and never pools the
two (``harness.report``).

What this engine cannot do, and says so before any worker starts (:func:`envpool_problem`): a task
EnvPool does not implement as Gymnasium does (:data:`TASKS` lists the ones tested), environment
``kwargs`` other than ``reset_noise_scale``, ``env.success`` and behaviour characterizations of
tasks whose full ``qpos`` it cannot rebuild. Ant and Humanoid are refused (:data:`REFUSED`): EnvPool's
own MuJoCo build moves their free joints differently from the ``mujoco`` package Gymnasium uses. It cannot see MuJoCo's instability warnings either
(``env.on_unstable``): EnvPool does not report them, so ``unstable_episodes`` stays 0.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence

import numpy as np

from harness.envs.behaviour import behaviour_of_qpos
from harness.policies import Policy, RunningStat
from harness.workers.rollout import EnvObjective, EpisodeResult, NonFiniteError

#: The Gymnasium tasks this engine serves (``tests/test_envpool_engine.py`` holds each equal to
#: ``gymnasium.make(id)``), each with the number of leading ``qpos`` entries its observation leaves
#: out and its step info reports as ``x_position`` (and ``y_position``): what rebuilding ``qpos``
#: for a behaviour characterization needs (``None``: no behaviour characterization). With the reset
#: noise off and the same actions, their observations stay within 1e-12 (relative) of Gymnasium's
#: for 100 steps: the same model, the same MuJoCo arithmetic.
TASKS: dict[str, int | None] = {
    "HalfCheetah-v5": 1,
    "Hopper-v5": 1,
    "Walker2d-v5": 1,
    "Swimmer-v5": 2,
    "InvertedPendulum-v5": None,
    "InvertedDoublePendulum-v5": None,
}

#: Tasks EnvPool implements but this engine refuses, and why (measured here with the reset noise off and
#: the same actions: EnvPool 1.2.5 bundles MuJoCo 3.6.0, Gymnasium steps the ``mujoco`` package, 4.0.0
#: and 4.0.1 on the machines here; the robots with a free joint drift apart from the first step, those
#: without agree to rounding).
REFUSED: dict[str, str] = {
    "Ant-v5": "its trajectories leave Gymnasium's from the first step (free-joint dynamics of EnvPool's own "
    "MuJoCo build): observations 4e-4 apart after 10 steps, rewards twice as large by step 100",
    "Humanoid-v5": "its trajectories leave Gymnasium's from the first step (free-joint dynamics of EnvPool's own "
    "MuJoCo build): observations 1e-5 apart (relative) after 10 steps, growing",
}

#: Environment kwargs this engine passes on to EnvPool (the same name and meaning in both).
KWARGS = ("reset_noise_scale",)

#: The smallest piece of episodes the schedulers hand an ``envpool`` worker (the last piece of a
#: chunk may be smaller): batching pays only with batches (the issue measured 0.33x raw
#: ``mj_step`` with one environment, 0.91x with 16 and 1.09x with 80).
MIN_BATCH = 16


def envpool_available() -> bool:
    """Whether the ``envpool`` package can be imported here (a Linux wheel for CPython 3.11+)."""
    return importlib.util.find_spec("envpool") is not None


def envpool_problem(env_cfg: dict) -> str | None:
    """Why ``env_cfg`` cannot run on the ``envpool`` engine, as a message naming the key, or ``None``
    (:func:`harness.workers.engines.engine_problem` asks it)."""
    if env_cfg.get("kind", "gym") != "gym":
        return f"workers.engine=envpool steps MuJoCo tasks; env.kind={env_cfg.get('kind')!r} has no simulator to batch; use workers.engine=gymnasium"
    env_id = str(env_cfg.get("id"))
    if env_id in REFUSED:
        return (
            f"workers.engine=envpool does not serve {env_id}: EnvPool's {env_id} is not Gymnasium's task here, "
            f"{REFUSED[env_id]}; use workers.engine=gymnasium"
        )
    if env_id not in TASKS:
        return (
            f"workers.engine=envpool does not serve {env_id}: it serves {', '.join(TASKS)}, the tasks whose "
            "EnvPool version is tested equal to Gymnasium's (harness/workers/envpool_engine.py); use "
            "workers.engine=gymnasium"
        )
    extra = sorted(set(env_cfg.get("kwargs") or {}) - set(KWARGS))
    if extra:
        return (
            f"workers.engine=envpool passes only {', '.join(KWARGS)} on to EnvPool; env.kwargs has "
            f"{', '.join(extra)}, whose EnvPool counterpart is untested; use workers.engine=gymnasium"
        )
    if env_cfg.get("success"):
        return "workers.engine=envpool cannot read info['success'] (env.success=true); use workers.engine=gymnasium"
    if env_cfg.get("bc") is not None and TASKS[env_id] is None:
        return (
            f"workers.engine=envpool cannot compute env.bc={env_cfg['bc']} on {env_id} (EnvPool does not report "
            "the positions it needs); set env.bc=null or use workers.engine=gymnasium"
        )
    if not envpool_available():
        return (
            "workers.engine=envpool needs the envpool package, which is not installed in this Python "
            "(make install; wheels exist for Linux x86-64 and CPython >= 3.11)"
        )
    return None


class BatchActor:
    """Actions of ``B`` members of one policy, each with its own dense layers, for a batch of
    observations: what :meth:`Policy.act` gives row by row, computed in one ``np.matmul`` per
    layer.

    :param layers: one list of ``(W (out, in), b (out,))`` per member (:meth:`Policy.layers`).
    :param mean, std: the frozen normalizer, shape ``(obs_dim,)``.
    """

    def __init__(self, policy: Policy, layers: Sequence[list], mean: np.ndarray, std: np.ndarray) -> None:
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


def _int32_seed(seed: int) -> int:
    """EnvPool takes int32 seeds and seeds a ``std::mt19937`` with their bits: the uint32 episode
    seed ``seed`` as the int32 of the same bits, so ``mt19937`` sees ``seed`` itself."""
    return int(np.int64(seed).astype(np.uint32).view(np.int32))


class EnvPoolObjective(EnvObjective):
    """Batches of episodes of a numpy policy (``policy_cfg``) in EnvPool's version of the Gymnasium
    task ``env_cfg["id"]`` (one of :data:`TASKS`).

    The Gymnasium environment of :class:`~harness.workers.rollout.EnvObjective` is kept for what
    EnvPool does not give: the spaces the policy is built from, and the MuJoCo model a behaviour
    characterization is computed on.

    :raises ValueError: if the task cannot run on this engine (:func:`envpool_problem`).
    """

    batched = True

    def __init__(self, env_cfg: dict, policy_cfg: dict) -> None:
        problem = envpool_problem(env_cfg)
        if problem:
            raise ValueError(problem)
        import envpool  # optional: only this engine needs it

        super().__init__(env_cfg, policy_cfg)
        self._envpool = envpool
        self.env_id = str(env_cfg["id"])
        self.kwargs = dict(env_cfg.get("kwargs") or {})
        self.max_episode_steps = int(env_cfg.get("max_episode_steps") or self.env.spec.max_episode_steps)
        self.positions = TASKS[self.env_id]

    def make_pool(self, seeds: Sequence[int]):
        """A synchronous EnvPool of ``len(seeds)`` environments on one thread, environment ``i``
        seeded with ``seeds[i]`` (uint32 episode seeds)."""
        n = len(seeds)
        return self._envpool.make_gymnasium(
            self.env_id,
            num_envs=n,
            batch_size=n,
            num_threads=1,
            seed=[_int32_seed(s) for s in seeds],
            max_episode_steps=self.max_episode_steps,
            **self.kwargs,
        )

    def run_batch(
        self, params: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray, seeds: Sequence[int], collect_obs: bool
    ) -> Iterator[EpisodeResult]:
        """One episode per member, ``params[i]`` from the reset of an environment seeded with
        ``seeds[i]``; results in that order, each as soon as it and those before it have ended.

        The observation statistics of an episode (``collect_obs``) cover the same observations
        as the ``gymnasium`` engine's (the reset's and every one after a step but the last),
        accumulated with Welford's update.

        :raises NonFiniteError: when the next result to yield has a NaN or infinite return or last
            observation (the episodes before it have been yielded).
        """
        n = len(params)
        actor = BatchActor(self.policy, [self.policy.layers(p, mean, std) for p in params], mean, std)
        pool = self.make_pool(seeds)
        try:
            obs, _ = pool.reset()
            obs = np.array(obs, dtype=np.float64)
            returns = np.zeros(n)
            lengths = np.zeros(n, dtype=np.int64)
            terminated = np.zeros(n, dtype=bool)
            running = np.ones(n, dtype=bool)
            ids = np.arange(n, dtype=np.int32)
            positions = np.zeros((n, self.positions or 0))
            if collect_obs:
                count, obs_mean, obs_m2 = np.ones(n), obs.copy(), np.zeros_like(obs)
            emitted = 0
            while emitted < n:
                live = ids[running]
                actions = actor(obs)[live]
                step_obs, reward, term, trunc, info = pool.step(actions, env_id=live)
                returns[live] += np.asarray(reward, dtype=np.float64)
                lengths[live] += 1
                obs[live] = step_obs
                done = np.asarray(term) | np.asarray(trunc) | (lengths[live] >= self.max_episode_steps)
                if collect_obs and not done.all():  # every observation but an episode's last
                    rows = live[~done]
                    x = step_obs[~done]
                    count[rows] += 1
                    delta = x - obs_mean[rows]
                    obs_mean[rows] += delta / count[rows, None]
                    obs_m2[rows] += delta * (x - obs_mean[rows])
                ended = live[done]
                if ended.size:
                    running[ended] = False
                    terminated[ended] = np.asarray(term)[done]
                    if self.bc is not None:
                        positions[ended, 0] = np.asarray(info["x_position"])[done]
                        if self.positions == 2:
                            positions[ended, 1] = np.asarray(info["y_position"])[done]
                while emitted < n and not running[emitted]:
                    i = emitted
                    if not (np.isfinite(returns[i]) and np.all(np.isfinite(obs[i]))):
                        raise NonFiniteError(
                            f"the episode is not finite (return {returns[i]}, after {lengths[i]} steps; "
                            "the envpool engine does not replay it: workers.engine=gymnasium names the step)"
                        )
                    stat = RunningStat(float(count[i]), obs_mean[i].copy(), obs_m2[i].copy()) if collect_obs else None
                    behaviour = None
                    if self.bc is not None:
                        qpos = np.concatenate([positions[i], obs[i, : self.env.unwrapped.model.nq - self.positions]])
                        behaviour = behaviour_of_qpos(self.env, self.bc, qpos)
                    emitted += 1
                    yield EpisodeResult(float(returns[i]), int(lengths[i]), bool(terminated[i]), stat, behaviour)
        finally:
            pool.close()

    def run(self, params: np.ndarray, mean: np.ndarray, std: np.ndarray, seed: int, collect_obs: bool) -> EpisodeResult:
        """One episode alone (a batch of one)."""
        return list(self.run_batch([params], mean, std, [seed], collect_obs))[0]
