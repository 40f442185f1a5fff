"""The novelty family's mathematics: Conti, Madhavan, Such, Lehman, Stanley & Clune 2018,
"Improving Exploration in Evolution Strategies for Deep Reinforcement Learning via a Population
of Novelty-Seeking Agents" (arXiv 1712.06560), Sec. 2.2-2.4; reference code
uber-research/deep-neuroevolution ``es_distributed/nses.py``.

The archive of behaviour characterizations (BCs), the novelty of a BC (mean distance to its
``k`` nearest archived neighbours, scipy's KD-tree), the novelty-proportional choice of the agent
to update, the scores NS-ES, NSR-ES and NSRA-ES step on, and NSRA-ES's adaptive reward weight.
The meta-population trainer that drives them is :mod:`harness.algos.novelty`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from harness.es import checks
from harness.es.shaping import shape_fitness

VARIANTS = ("ns_es", "nsr_es", "nsra_es")


def novelty(bcs: np.ndarray, archive: np.ndarray, k: int) -> np.ndarray:
    """Mean Euclidean distance of each BC to its ``k`` nearest archive entries.

    :param bcs: shape ``(n, bc_dim)``. :param archive: shape ``(N, bc_dim)``, ``N >= 1``.
    :param k: neighbours; ``min(k, N)`` are used while the archive is smaller.
    :returns: shape ``(n,)`` float64.
    """
    archive = np.asarray(archive, dtype=np.float64)
    kk = min(int(k), len(archive))
    dist, _ = cKDTree(archive).query(np.asarray(bcs, dtype=np.float64), k=kk)
    return np.asarray(dist, dtype=np.float64).reshape(len(bcs), kk).mean(axis=1)


def selection_probabilities(novelties: np.ndarray) -> np.ndarray:
    """``p_i = novelty_i / sum(novelty)`` (Conti et al. Sec. 2.2); uniform if all are 0."""
    novelties = np.asarray(novelties, dtype=np.float64)
    total = novelties.sum()
    return novelties / total if total > 0 else np.full(len(novelties), 1.0 / len(novelties))


def select_agent(rng: np.random.Generator, novelties: np.ndarray) -> int:
    """The agent to update: drawn with :func:`selection_probabilities` from ``rng`` (the trainer
    hands the stream ``(NOVELTY, generation)`` of the run seed)."""
    p = selection_probabilities(novelties)
    return int(rng.choice(len(p), p=p))


def combined_score(
    variant: str, returns: np.ndarray, novelties: np.ndarray, reward_weight: float, shaping: str = "centered_ranks"
) -> np.ndarray:
    """The score ES steps on: ranks of reward and of novelty, each over the population.

    :param returns, novelties: shape ``(m, 2)`` (mirrored pairs).
    :param reward_weight: NSRA-ES's ``w`` (ignored by the other variants).
    :returns: shape ``(m, 2)`` float64.
    """
    n = shape_fitness(novelties, shaping)
    if variant == "ns_es":
        return n
    r = shape_fitness(returns, shaping)
    if variant == "nsr_es":
        return (r + n) / 2.0
    if variant == "nsra_es":
        return reward_weight * r + (1.0 - reward_weight) * n
    raise ValueError(f"unknown novelty variant {variant!r}; choose one of {', '.join(VARIANTS)}")


@dataclass(frozen=True)
class RewardWeight:
    """NSRA-ES's adaptive ``w`` (Conti et al. Sec. 2.4) with the best return seen so far.

    :ivar value: ``w`` in ``[0, 1]``. :ivar best: best mean return of an updated agent.
    :ivar stagnation: epochs since ``best`` last improved.
    """

    value: float
    best: float
    stagnation: int = 0

    def after(self, episode_return: float, delta: float, patience: int) -> RewardWeight:
        """The weight after an update whose agent scored ``episode_return``."""
        if episode_return > self.best:
            return RewardWeight(min(1.0, self.value + delta), episode_return, 0)
        if self.stagnation + 1 >= patience:
            return RewardWeight(max(0.0, self.value - delta), self.best, 0)
        return RewardWeight(self.value, self.best, self.stagnation + 1)


@dataclass
class Archive:
    """The BCs seen so far, shape ``(N, bc_dim)``, unbounded (as in the reference)."""

    bcs: list[np.ndarray] = field(default_factory=list)

    def add(self, bc: np.ndarray) -> None:
        """Append one BC, shape ``(bc_dim,)``, as a float64 array (not copied if it is one already)."""
        self.bcs.append(np.asarray(bc, dtype=np.float64))

    def array(self) -> np.ndarray:
        """Every BC so far stacked in order of addition, shape ``(N, bc_dim)`` float64, a new array.

        :raises ValueError: while the archive is empty (``np.stack`` of nothing).
        """
        return np.stack(self.bcs)

    def __len__(self) -> int:
        return len(self.bcs)


@dataclass(frozen=True, kw_only=True)
class NoveltyConfig:
    """The novelty family's own hyperparameters, each declared once: type and range here; default
    and comment in ``conf/algo/ns_es.yaml`` (NSRA-ES's schedule in ``nsra_es.yaml``). The per-agent
    ES step is an :class:`~harness.es.strategies.openai_es.OpenAIESConfig`'s.

    :param variant: ``ns_es``, ``nsr_es`` or ``nsra_es`` (``algo.name``).
    :param meta_population_size: ``M`` agents, >= 1.
    :param k: nearest neighbours for novelty, >= 1.
    :param bc_episodes: episodes per archived BC, >= 1.
    :param reward_weight: NSRA-ES's initial ``w`` in ``[0, 1]``; ``None`` for the other variants.
    :param reward_weight_delta: NSRA-ES's step of ``w``, in ``(0, 1)``; ``None`` for the others.
    :param stagnation_epochs: NSRA-ES's patience, >= 1; ``None`` for the others.
    :raises ValueError: naming the key, for a value of the wrong type or out of range.
    """

    variant: str
    meta_population_size: int
    k: int
    bc_episodes: int
    reward_weight: float | None = None
    reward_weight_delta: float | None = None
    stagnation_epochs: int | None = None

    def __post_init__(self) -> None:
        checks.one_of("algo.name", self.variant, VARIANTS)
        checks.integer("algo.meta_population_size", self.meta_population_size, 1, "agents")
        checks.integer("algo.k", self.k, 1, "nearest neighbours for novelty")
        checks.integer("algo.bc_episodes", self.bc_episodes, 1, "episodes per archived BC")
        if self.variant == "nsra_es":
            checks.in_range("algo.reward_weight", self.reward_weight, 0, 1, "[]")
            checks.in_range("algo.reward_weight_delta", self.reward_weight_delta, 0, 1, "()")
            checks.integer("algo.stagnation_epochs", self.stagnation_epochs, 1)

    @classmethod
    def from_algo(cls, algo: Mapping[str, Any]) -> NoveltyConfig:
        """The config from a run config's ``algo`` section (``algo.name`` is the variant; the
        schedule keys are read for NSRA-ES only)."""
        keys = ["meta_population_size", "k", "bc_episodes"]
        if algo["name"] == "nsra_es":
            keys += ["reward_weight", "reward_weight_delta", "stagnation_epochs"]
        missing = [k for k in keys if k not in algo]
        checks.check(not missing, f"algo.{', algo.'.join(missing)} missing from the config")
        return cls(variant=algo["name"], **{k: algo[k] for k in keys})

    def schedule(self) -> tuple[float, float, int]:
        """``(initial w, delta, patience)`` of :class:`RewardWeight`: NSRA-ES's, or for NS-ES and
        NSR-ES a ``w`` that never moves (their scores do not use it; the best return is still tracked)."""
        if self.variant == "nsra_es":
            # set for NSRA-ES: __post_init__ checked them
            assert self.reward_weight is not None and self.reward_weight_delta is not None
            assert self.stagnation_epochs is not None
            return float(self.reward_weight), float(self.reward_weight_delta), int(self.stagnation_epochs)
        return 1.0, 0.0, 1
