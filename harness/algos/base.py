"""What the runner drives: a :class:`Trainer`, one epoch at a time, and what an epoch and an
evaluation return. Every algorithm, ES family or TRPO, is a trainer, so every run writes the
same metrics. (The ES family's search distributions are :mod:`harness.es` strategies, driven by
:class:`harness.algos.evolution.EvolutionTrainer`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass
class EpochResult:
    """What one epoch of training did.

    ``timesteps`` and ``episodes`` count environment steps and finished episodes of
    training rollouts in this epoch; ``returns`` has one entry per finished episode.
    ``behaviours`` are behaviour characterizations the algorithm wants kept in the run
    directory (the novelty family: the BC it archived this epoch), as
    ``(source, agent, bcs)`` with ``bcs`` of shape ``(k, bc_dim)``.
    """

    timesteps: int
    episodes: int
    returns: np.ndarray
    metrics: dict = field(default_factory=dict)
    behaviours: list[tuple[str, int | None, np.ndarray]] = field(default_factory=list)


@dataclass
class Evaluation:
    """Episodes of the current deterministic (unperturbed) policy.

    :ivar returns: shape ``(n,)`` float64, one return per episode.
    :ivar success: shape ``(n,)`` bool, whether each episode ended with ``info["success"]``,
        or ``None`` when the environment reports no success.
    :ivar bcs: shape ``(n, bc_dim)`` float64 behaviour characterizations, or ``None``.
    :ivar agent: the meta-population member evaluated (novelty family), else ``None``.
    """

    returns: np.ndarray
    success: np.ndarray | None = None
    bcs: np.ndarray | None = None
    agent: int | None = None

    @classmethod
    def from_results(cls, results, agent: int | None = None) -> Evaluation:
        """From :class:`~harness.workers.rollout.EpisodeResult` s (fields left ``None`` when they are)."""
        returns = np.array([r.episode_return for r in results], dtype=np.float64)
        success = None if not results or results[0].success is None else np.array([r.success for r in results])
        bcs = None if not results or results[0].bc is None else np.stack([r.bc for r in results])
        return cls(returns, success, bcs, agent)


class Trainer(Protocol):
    """One algorithm, advanced one epoch at a time by :class:`harness.runner.Runner`."""

    def train_epoch(self, epoch: int) -> EpochResult:
        """Run epoch number ``epoch`` (1-based): collect experience and update once."""

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """``n_episodes`` episodes of the current deterministic policy; no statistic is updated."""

    def save(self, run_dir: Path) -> Path:
        """Write the final policy into ``run_dir``; returns its path."""

    def save_checkpoint(self, folder: Path) -> None:
        """Write into the new, empty ``folder`` everything training continues from. The runner
        names the folder in its ``latest`` pointer only after this returns, so a checkpoint is
        whole or ignored."""

    def load_checkpoint(self, folder: Path) -> None:
        """Continue from :meth:`save_checkpoint`'s files: the next epoch is the one after it."""

    def close(self) -> None:
        """Release workers and environments."""
