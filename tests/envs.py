"""Tiny environments for failure tests, made with ``env.id=tests.envs:Name-v0``."""

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
