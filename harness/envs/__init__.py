"""From config names to Gymnasium environments."""

from __future__ import annotations

import importlib
import logging
import re
import warnings

import gymnasium as gym

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _OncePerProcess(logging.Filter):
    """Lets each distinct message of this logger through once. Workers send their records to the
    main process, which re-emits them through the same logger (:mod:`harness.workers`): there, too,
    a warning every worker gives is shown once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


log.addFilter(_OncePerProcess())


def _mujoco_warning(message: str) -> None:
    """MuJoCo's own warnings go to Python logging, once each per process, instead of to
    stderr and a MUJOCO_LOG.TXT in the working directory. Gymnasium's half_cheetah.xml
    uses the deprecated ``settotalmass``; that one is harmless and logged at debug level."""
    log.log(logging.DEBUG if "settotalmass" in message else logging.WARNING, "MuJoCo: %s", message)


def _route_mujoco_warnings() -> None:
    try:
        import mujoco
    except ImportError:  # pragma: no cover - MuJoCo is a dependency
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


_route_mujoco_warnings()


def make_env(env_id: str, kwargs: dict | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)`` with the passive env checker off (it only warns).
    Warnings given while making it (Gymnasium's, coloured with ANSI codes) are logged as plain
    text, once per process, by this module's logger.

    :raises ValueError: if ``env_id`` is not registered (with the close matches Gymnasium suggests).
    """
    check_env_id(env_id)
    extra = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, disable_env_checker=True, **(kwargs or {}), **extra)
    for w in caught:  # Gymnasium colours its warnings (e.g. "Hopper-v4 is out of date"): plain text, once
        log.warning("%s: %s", w.category.__name__, _ANSI.sub("", str(w.message)).removeprefix("WARN: "))
    return env


def check_reports_success(env: gym.Env) -> None:
    """Reset ``env`` (seed 0) and take one random action: its step ``info`` must have a
    ``"success"`` key, as ``env.success: true`` promises (else every evaluation would write
    ``eval_success`` 0 without saying why). Leaves ``env`` mid-episode.

    :raises ValueError: naming the keys the step info has instead.
    """
    env.action_space.seed(0)
    env.reset(seed=0)
    info = env.step(env.action_space.sample())[-1]
    if "success" not in info:
        raise ValueError(
            f"env.success is true but the environment reports no info['success'] (its step info has "
            f"{sorted(info)}); set env.success=false"
        )


def check_env_id(env_id: str) -> None:
    """:raises ValueError: if ``env_id`` is not a registered Gymnasium id.

    As in ``gymnasium.make``, ``"module:Name-v0"`` imports ``module`` first (where a
    custom environment registers itself).
    """
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"cannot import {module!r} for environment {env_id!r}: {exc}") from None
    if env_id not in gym.registry:
        close = [k for k in gym.registry if k.split("-")[0].lower() == env_id.split("-")[0].lower()]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown Gymnasium environment id {env_id!r}{hint}")


# Registers DeceptivePointMaze-v0, DeceptiveAntMaze-v0 and HumanoidTrap-v0 (cheap: string entry points).
from harness.envs import deceptive as _deceptive  # noqa: E402,F401
