"""Tiny environments for failure tests, made with ``env.id=tests.envs:Name-v0``."""

import logging
import os
import signal
import time

import gymnasium as gym
import numpy as np


class NanRewardEnv(gym.Env):
    """A 1-D point; the reward turns NaN from the ``nan_after_resets``-th episode of this instance on."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, nan_after_resets: int = 10**9):
        self.nan_after_resets = nan_after_resets
        self.resets = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.x = self.np_random.normal()
        return np.array([self.x, 1.0]), {}

    def step(self, action):
        self.x += float(action[0])
        reward = -abs(self.x) if self.resets < self.nan_after_resets else float("nan")
        return np.array([self.x, 1.0]), reward, False, False, {}


gym.register("NanReward-v0", entry_point=NanRewardEnv, max_episode_steps=20)


class FaultyEnv(gym.Env):
    """A 1-D point whose reset misbehaves on one episode seed, as ``fault`` says:

    * ``exit``: ``os._exit(3)`` (a worker crashing in native code); ``kill``: SIGKILL to itself;
    * ``hang``: sleeps ``hang_s`` seconds (a stuck simulator);
    * ``raise``: ``ValueError`` (a bug in the environment);
    * ``log``: ``logging.warning`` naming the seed, then a normal episode.

    :param marker: a file that gets one line per fault, so tests can count attempts.
    :param once: fault only while ``marker`` does not exist yet (a transient fault).
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(
        self, fault: str = "raise", seed: int = -1, marker: str | None = None, once: bool = False, hang_s: float = 60.0
    ):
        self.fault, self.fault_seed, self.marker, self.once, self.hang_s = fault, seed, marker, once, hang_s

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed == self.fault_seed and not (self.once and os.path.exists(self.marker)):
            self._fault(seed)
        self.x = self.np_random.normal()
        return np.array([self.x, 1.0]), {}

    def _fault(self, seed):
        if self.marker:
            with open(self.marker, "a") as f:
                f.write(f"{self.fault} {seed} pid {os.getpid()}\n")
        if self.fault == "exit":
            os._exit(3)
        elif self.fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.fault == "hang":
            time.sleep(self.hang_s)
        elif self.fault == "raise":
            raise ValueError(f"bad episode seed {seed}")
        elif self.fault == "log":
            logging.getLogger("tests.envs").warning("FaultyEnv saw seed %d", seed)

    def step(self, action):
        self.x += float(action[0])
        # episodes of different lengths, so that results depend on which episode ran where
        return np.array([self.x, 1.0]), -abs(self.x), abs(self.x) > 3.0, False, {}


gym.register("Faulty-v0", entry_point=FaultyEnv, max_episode_steps=20)


class NanObservationEnv(NanRewardEnv):
    """As :class:`NanRewardEnv`, but from its ``nan_after_resets``-th episode the observation turns
    NaN at step ``nan_step`` (the reward stays finite until the policy feeds the NaN back)."""

    def __init__(self, nan_after_resets: int = 10**9, nan_step: int = 3):
        super().__init__(nan_after_resets)
        self.nan_step = nan_step

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.t += 1
        self.x += float(action[0])
        obs = np.array([self.x, 1.0])
        if self.resets >= self.nan_after_resets and self.t >= self.nan_step:
            obs[0] = np.nan
        return obs, -abs(self.x) if np.isfinite(self.x) else 0.0, False, False, {}


gym.register("NanObservation-v0", entry_point=NanObservationEnv, max_episode_steps=20)


def make_unstable_hopper(unstable_seed_mod: int = 2, at_step: int = 5, **kwargs):
    """Hopper-v5 whose simulation blows up (a huge joint velocity, which MuJoCo answers with a
    BADQVEL warning and a reset of its state) at step ``at_step`` of the episodes whose reset
    seed is divisible by ``unstable_seed_mod`` (1: every episode)."""
    from gymnasium.envs.mujoco.hopper_v5 import HopperEnv

    class UnstableHopper(HopperEnv):
        def reset(self, *, seed=None, options=None):
            self._blow_up = seed is not None and seed % unstable_seed_mod == 0
            self._t = 0
            return super().reset(seed=seed, options=options)

        def step(self, action):
            self._t += 1
            if self._blow_up and self._t == at_step:
                self.data.qvel[:] = 1e12
            return super().step(action)

    return UnstableHopper(**kwargs)


gym.register("UnstableHopper-v0", entry_point=make_unstable_hopper, max_episode_steps=50)
