"""Watch and reuse a run's policy: :func:`load_policy` (also ``harness.load_policy``), the episode loop
that ``python -m harness.enjoy`` and ``eval.video_every`` replay it with, and MP4 writing.

A loaded policy acts as the run's evaluation does: the ES family's numpy policy
(:class:`harness.policies.Policy`, with the run's frozen observation normalization, its action bins and
its virtual batch normalization) or TRPO's SB3 model with its ``VecNormalize`` statistics frozen, in
deterministic mode. Its :meth:`LoadedPolicy.predict` has the signature of Stable-Baselines3's
``BaseAlgorithm.predict``, so code written for SB3 models runs it as it is (rl-baselines3-zoo's
``enjoy.py`` loop, for example). Episodes always run in ``gymnasium.make(env.id)``, whatever engine
(``workers.engine``) trained the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from harness import seeding

#: the ``checkpoint`` argument of :func:`load_policy` that means the run's saved final policy
FINAL = "final"


class RenderError(RuntimeError):
    """MuJoCo could not render (no OpenGL backend); the message says which ``MUJOCO_GL`` to try."""


class LoadedPolicy:
    """A run's policy, frozen, as its evaluation runs it: what :func:`load_policy` returns.

    :ivar algo: ``algo.name`` of the run (``es``, ``trpo``, ...).
    :ivar env: the run's ``env`` config (``id``, ``kwargs``, ``max_episode_steps``, ...).
    :ivar seed: the run seed. :ivar epoch: the epoch after which this policy was saved.
    :ivar eval_episodes: the run's ``eval.episodes``. :ivar source: the file it was read from.
    """

    algo: str
    env: dict
    seed: int
    epoch: int
    eval_episodes: int
    source: Path

    def predict(
        self, observation: np.ndarray, state=None, episode_start=None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        """The action for a raw observation, as the run's evaluation computes it (the observation
        is normalized here with the run's frozen statistics: pass what the environment returns).

        :param observation: shape ``(obs_dim,)``, or ``(n, obs_dim)`` for ``n`` at once.
        :param state, episode_start: ignored (SB3's signature; these policies have no memory).
        :param deterministic: TRPO: the mean action (``True``, as evaluation) or a sample of its Gaussian
            policy (``False``, from torch's global generator). ES-family policies are deterministic maps
            and ignore it.
        :returns: ``(action, None)``: action of shape ``(act_dim,)`` (or ``(n, act_dim)``), float, within
            the action space's bounds, in the environment's units.
        :raises ValueError: for an observation of the wrong size.
        """
        obs = np.asarray(observation, dtype=np.float64)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.obs_dim:
            raise ValueError(
                f"expected an observation of shape ({self.obs_dim},) or (n, {self.obs_dim}), got {obs.shape}"
            )
        return self._act(obs, deterministic), None

    def make_env(self, render_mode: str | None = None, **render_kwargs):
        """The run's environment, ``gymnasium.make(env.id, **env.kwargs)`` with its ``max_episode_steps``,
        as its evaluation made it (``render_mode="rgb_array"`` to render frames; ``render_kwargs`` such as
        ``width`` and ``height`` go to ``gymnasium.make`` with it). Gymnasium's own MuJoCo tasks render
        through their model's ``track`` camera where they have one, which follows the robot (Gymnasium
        1.4's default free camera stays where the episode began, and a Hopper leaves the picture)."""
        import gymnasium

        from harness.envs import make_env

        kwargs = dict(self.env.get("kwargs") or {})
        if render_mode is not None:
            headless_gl_default()
            kwargs.update(render_mode=render_mode, **render_kwargs)
            entry = str(gymnasium.spec(self.env["id"]).entry_point) if ":" not in self.env["id"] else ""
            if entry.startswith("gymnasium.envs.mujoco"):
                kwargs.setdefault("camera_name", "track")  # absent from a model: MuJoCo's free camera, as before
        return make_env(self.env["id"], kwargs, self.env.get("max_episode_steps"))

    def eval_seeds(self, n: int) -> np.ndarray:
        """The seeds of the first ``n`` episodes of the run's evaluation at :attr:`epoch`, shape ``(n,)``:
        episodes replayed from them have the returns that evaluation had."""
        return seeding.env_seeds(self.seed, seeding.EVAL_ENV, self.epoch, n)

    def _act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the policy holds (nothing for the ES family)."""


class NumpyPolicy(LoadedPolicy):
    """An ES-family policy: :class:`harness.policies.Policy` with the saved parameters and the frozen
    normalization ``(obs_mean, obs_std)`` (each ``(obs_dim,)``), through :meth:`Policy.act`."""

    def __init__(self, arrays: dict[str, np.ndarray], cfg: dict, epoch: int, source: Path) -> None:
        from harness.algos.evolution import policy_from_arrays

        self.policy, self.params, self.obs_mean, self.obs_std, self.meta = policy_from_arrays(arrays)
        self.layers = self.policy.layers(self.params, self.obs_mean, self.obs_std)
        self.obs_dim, self.act_dim = self.policy.obs_dim, self.policy.act_dim
        _describe(self, cfg, epoch, source)

    def _act(self, obs, deterministic):
        if obs.ndim == 1:
            return self.policy.act(self.layers, obs, self.obs_mean, self.obs_std)
        return np.stack([self.policy.act(self.layers, o, self.obs_mean, self.obs_std) for o in obs])


class SB3Policy(LoadedPolicy):
    """A TRPO policy: the SB3 model, its observations normalized with the saved ``VecNormalize``
    statistics (training off, as the run's evaluation environment has them)."""

    def __init__(self, model, normalize, cfg: dict, epoch: int, source: Path) -> None:
        self.model, self.normalize = model, normalize
        self.obs_dim = int(model.observation_space.shape[0])
        self.act_dim = int(model.action_space.shape[0])
        _describe(self, cfg, epoch, source)

    def _act(self, obs, deterministic):
        if self.normalize is not None:
            obs = self.normalize.normalize_obs(obs)
        return self.model.predict(obs, deterministic=deterministic)[0]


def _describe(policy: LoadedPolicy, cfg: dict, epoch: int, source: Path) -> None:
    policy.algo, policy.env, policy.seed = cfg["algo"]["name"], cfg["env"], int(cfg["seed"])
    policy.epoch, policy.source = int(epoch), Path(source)
    policy.eval_episodes = int(cfg.get("eval", {}).get("episodes", 1))


def load_policy(run_dir: str | Path, checkpoint: str | int = FINAL) -> LoadedPolicy:
    """Load the policy of the run in ``run_dir``, for any algorithm::

        policy = harness.load_policy("results/paper/salimans2017_mujoco/es_starter_Hopper_seed0")
        env = policy.make_env()                       # gymnasium.make("Hopper-v5") as the run had it
        obs, _ = env.reset(seed=0)
        action, _ = policy.predict(obs)               # shape (3,), as SB3's model.predict

    :param checkpoint: ``"final"``: the policy the run saved as it ended (``policy.npz``; TRPO
        ``model.zip`` and ``vecnormalize.pkl``); ``"latest"``: its latest checkpoint (``checkpoint/``,
        the state after its last finished epoch, also for a killed run); an epoch number: that epoch's
        checkpoint (a run keeps only its latest).
    :raises FileNotFoundError: if ``run_dir`` holds no run (``config.yaml``) or not the policy asked
        for (naming what there is instead).
    :raises ValueError: for a run on a function landscape (``env.kind: function``: nothing to act in),
        or an unknown ``checkpoint``.
    """
    from harness.runner import Checkpoints

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir} holds no run (no config.yaml)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    if cfg["env"].get("kind", "gym") != "gym":
        raise ValueError(
            f"{run_dir}: env.kind={cfg['env'].get('kind')} is a function landscape, with no environment to act in"
        )
    trpo = cfg["algo"]["name"] == "trpo"
    if checkpoint == FINAL:
        source = run_dir / ("model.zip" if trpo else "policy.npz")
        if not source.exists():
            latest = Checkpoints(run_dir).latest()
            hint = (
                f"; its latest checkpoint is epoch {Checkpoints.epoch(latest)} (checkpoint='latest')"
                if latest is not None
                else ""
            )
            raise FileNotFoundError(
                f"{run_dir} has no {source.name} (the run did not end, or its policy was not kept){hint}"
            )
        epoch = _final_epoch(run_dir)
        folder = run_dir
    else:
        if checkpoint != "latest" and not (isinstance(checkpoint, int) or str(checkpoint).isdigit()):
            raise ValueError(f"checkpoint must be 'final', 'latest' or an epoch number, got {checkpoint!r}")
        folder = Checkpoints(run_dir).find(None if checkpoint == "latest" else int(checkpoint))
        epoch = Checkpoints.epoch(folder)
        source = folder / ("model.zip" if trpo else "trainer.npz")
    if trpo or checkpoint == FINAL:
        return _saved_policy(folder, source, cfg, epoch)
    from harness.algos.evolution import policy_from_checkpoint

    return NumpyPolicy(policy_from_checkpoint(run_dir, folder), cfg, epoch, source)


def _saved_policy(folder: Path, source: Path, cfg: dict, epoch: int) -> LoadedPolicy:
    """The policy a trainer's ``save`` wrote into ``folder`` (``source`` its main file): TRPO's SB3 model
    with its ``vecnormalize.pkl``, or the ES family's ``policy.npz``."""
    if cfg["algo"]["name"] == "trpo":
        return _load_trpo(folder, cfg, epoch, source)
    with np.load(source) as z:
        return NumpyPolicy(dict(z), cfg, epoch, source)


def policy_of_trainer(trainer, cfg: dict, epoch: int, folder: str | Path) -> LoadedPolicy:
    """A running trainer's current policy, as :func:`load_policy` would load it once saved: the trainer
    writes its final-policy files (``trainer.save``) into ``folder`` (a scratch folder, not the run's),
    which are read back. What ``eval.video_every`` records during training.

    :param cfg: the run's resolved config (``config.yaml``'s content). :param epoch: the epoch just done.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _saved_policy(folder, Path(trainer.save(folder)), cfg, epoch)


def _final_epoch(run_dir: Path) -> int:
    """The epoch of a run's saved final policy: its last ``metrics.csv`` row (the runner saves the
    policy of that row), else ``summary.json``'s count."""
    from harness.tracking import read_rows

    rows = read_rows(run_dir / "metrics.csv")
    if rows:
        return int(rows[-1]["epoch"])
    return int(json.loads((run_dir / "summary.json").read_text())["epochs"])


def _load_trpo(folder: Path, cfg: dict, epoch: int, source: Path) -> SB3Policy:
    import pickle

    from sb3_contrib import TRPO

    model = TRPO.load(source, device="cpu")
    normalize = None
    path = folder / "vecnormalize.pkl"
    if path.exists():
        with open(path, "rb") as f:
            normalize = pickle.load(f)  # SB3's VecNormalize.load without a VecEnv: only its statistics are used
        normalize.training, normalize.norm_reward = False, False
    return SB3Policy(model, normalize, cfg, epoch, source)


def run_episode(
    policy: LoadedPolicy,
    env,
    seed: int,
    on_frame: Callable[[np.ndarray], None] | None = None,
    deterministic: bool = True,
) -> tuple[float, int]:
    """One episode of ``policy`` in ``env`` from ``env.reset(seed=seed)``: ``(return, length)``, the
    return the environment's own undiscounted reward summed, as the run's evaluation sums it.

    :param on_frame: called with ``env.render()`` (``(height, width, 3)`` uint8) after the reset and
        after every step, ``length + 1`` frames in all; ``env`` must then have ``render_mode="rgb_array"``.
    :raises RenderError: if the first frame cannot be rendered (no OpenGL backend for MuJoCo).
    """
    obs, _ = env.reset(seed=int(seed))
    if on_frame is not None:
        on_frame(first_frame(env))
    total, length = 0.0, 0
    while True:
        action, _ = policy.predict(obs, deterministic=deterministic)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        length += 1
        if on_frame is not None:
            on_frame(env.render())
        if terminated or truncated:
            return total, length


def first_frame(env) -> np.ndarray:
    """``env.render()``, with a failure to render turned into a :class:`RenderError` that says what to do."""
    import warnings

    try:
        with warnings.catch_warnings():  # GLFW warns of a missing display before failing: the error says it
            warnings.filterwarnings("ignore", module="glfw")
            return env.render()
    except Exception as exc:  # MuJoCo's GL setup fails with FatalError, AttributeError, ImportError, ...
        raise RenderError(gl_hint(exc)) from exc


def headless_gl_default() -> None:
    """``MUJOCO_GL=egl`` where it is unset and there is no display (X11 or Wayland), before a renderer is
    made: MuJoCo's default, GLFW, needs a display, and EGL renders offscreen on most Linux machines (GPU or
    Mesa). A value the user set is kept; where EGL fails too, :func:`gl_hint` says what to try."""
    if "MUJOCO_GL" not in os.environ and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MUJOCO_GL"] = "egl"


def gl_hint(exc: BaseException | None = None) -> str:
    """One line: MuJoCo could not render, and which ``MUJOCO_GL`` values to try."""
    current = os.environ.get("MUJOCO_GL")
    reason = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})" if exc else ""
    return (
        f"MuJoCo cannot render here with MUJOCO_GL={current if current is not None else '(unset: glfw, which needs a display)'}"
        f"{reason}; without a display set MUJOCO_GL=egl (GPU or Mesa EGL) or MUJOCO_GL=osmesa (software "
        "OSMesa), e.g. MUJOCO_GL=egl python -m harness.enjoy RUN_DIR --video out.mp4"
    )


class VideoWriter:
    """Frames to an H.264 MP4 through imageio-ffmpeg (its bundled ffmpeg), streamed: no frame is kept.

    :param path: the ``.mp4`` to write. :param fps: frames per second (the environment's
        ``metadata["render_fps"]``: real time).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path, self.fps = Path(path), float(fps)
        self._gen = None
        self.frames = 0

    def __call__(self, frame: np.ndarray) -> None:
        if self._gen is None:
            import imageio_ffmpeg

            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = frame.shape[:2]
            # macro_block_size=2: H.264 in yuv420p needs even sizes only, so most frame sizes pass unscaled
            self._gen = imageio_ffmpeg.write_frames(
                str(self.path),
                (width, height),
                fps=self.fps,
                codec="libx264",
                macro_block_size=2,
                quality=7,
                ffmpeg_log_level="error",
            )
            self._gen.send(None)
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (nothing is written without a frame)."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None


def render_fps(env) -> float:
    """The environment's real-time frame rate (Gymnasium's MuJoCo tasks: ``1 / dt``), 30 if it names none."""
    return float(env.metadata.get("render_fps") or 30)


def record_episode(
    policy: LoadedPolicy, seed: int, path: str | Path, deterministic: bool = True
) -> tuple[float, int, int]:
    """One episode of ``policy`` from ``reset(seed=seed)`` rendered to the MP4 ``path``:
    ``(return, length, frames)``, ``frames = length + 1``.

    :raises RenderError: see :func:`run_episode` (no file is left behind then).
    """
    env = policy.make_env(render_mode="rgb_array")
    writer = VideoWriter(path, render_fps(env))
    try:
        episode_return, length = run_episode(policy, env, seed, writer, deterministic)
    finally:
        writer.close()
        _close(env)
    return episode_return, length, writer.frames


def _close(env) -> None:
    try:
        env.close()
    except Exception:  # noqa: BLE001 - a renderer whose GL context never came up fails to close too (AttributeError)
        pass


def frames_at(policy: LoadedPolicy, seed: int, steps: list[int], size: int = 240) -> list[np.ndarray]:
    """Frames of one episode of ``policy`` from ``reset(seed=seed)`` after each of ``steps`` steps
    (0: the initial state), ``(size, size, 3)`` uint8 each; the episode stops at the last one asked for, and
    a step past its end gives its last frame. For a strip of frames (``make figures``).

    :raises RenderError: if MuJoCo cannot render (see :func:`gl_hint`).
    """
    env = policy.make_env("rgb_array", width=int(size), height=int(size))
    try:
        obs, _ = env.reset(seed=int(seed))
        frames, step, last = [], 0, max(steps)
        wanted = sorted(set(steps))
        frame = first_frame(env)
        while True:
            while wanted and wanted[0] == step:
                frames.append(frame)
                wanted.pop(0)
            if step == last:
                return frames
            obs, _, terminated, truncated, _ = env.step(policy.predict(obs)[0])
            step += 1
            frame = env.render() if (wanted and wanted[0] == step) or terminated or truncated else frame
            if terminated or truncated:
                return frames + [frame] * len(wanted)
    finally:
        _close(env)
