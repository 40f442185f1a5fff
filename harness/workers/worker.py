"""A rollout worker: what every backend runs in each of its workers (:class:`RolloutWorker`), built
from a picklable :class:`WorkerSpec`, with the noise table it reads (:func:`open_noise`).

The worker runs a :class:`~harness.workers.rollout.Chunk` with one of the engines
(``workers.engine``, :mod:`harness.workers.engines`): ``gymnasium``, one episode after another
(:mod:`harness.workers.rollout`), or ``mujoco``, which steps the chunk's episodes together with
MuJoCo's batched stepper (:mod:`harness.workers.mujoco_engine`). Either way the results come in the
chunk's order, depend only on each episode's spec, and are the same bits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.es.distributions import Distribution, Gaussian
from harness.es.noise import NoiseTable
from harness.shm import ArrayRef, Attachments, attach_noise_table, shared_noise_table
from harness.workers.engines import make_engine_objective, min_batch, resolve_engine
from harness.workers.rollout import Chunk, EpisodeError, EpisodeResult, member_params, resolve_chunk


@dataclass(frozen=True)
class WorkerSpec:
    """What every rollout worker of a run is built from (picklable: it crosses to the workers).

    :param env: the ``env`` config (see :func:`~harness.workers.rollout.make_objective`). :param policy: see :func:`make_policy`.
    :param noise: the noise table or where to find it (:func:`open_noise`).
    :param noise_size: the table's length, when ``noise`` is a SeedSequence's ``(entropy, spawn_key)``.
    :param distribution: the search distribution the table is drawn from; it forms every
        perturbed member's parameters.
    :param engine: ``workers.engine``: ``gymnasium`` (one episode after another), ``mujoco`` (each
        piece's episodes in one batch) or ``auto``, resolved here (:func:`~harness.workers.engines.resolve_engine`):
        a spec's ``engine`` is always the one its workers run.
    """

    env: dict[str, Any]
    policy: dict[str, Any]
    noise: object
    noise_size: int | None = None
    distribution: Distribution = dataclasses.field(default_factory=Gaussian)
    engine: str = "gymnasium"

    def __post_init__(self) -> None:
        object.__setattr__(self, "engine", resolve_engine(self.engine, self.env))
        if isinstance(self.noise, NoiseTable):  # the table knows what it was drawn from
            object.__setattr__(self, "distribution", self.noise.distribution)

    def with_noise(self, noise: object) -> WorkerSpec:
        """This spec with ``noise`` (e.g. a reference to the table in shared memory) in place of the table."""
        return dataclasses.replace(self, noise=noise, noise_size=None, distribution=self.distribution)

    @property
    def min_piece(self) -> int:
        """The fewest episodes a scheduler should hand one worker at a time (the last piece of a
        chunk may be smaller): 1, or a batched engine's ``MIN_BATCH`` (:func:`~harness.workers.engines.min_batch`)."""
        return min_batch(self.engine)


def open_noise(
    source: object, size: int | None = None, distribution: Distribution | None = None, shared: bool = False
) -> NoiseTable:
    """The noise table a worker reads, from what its backend handed it:

    * a :class:`~harness.shm.ArrayRef`: the coordinator's table in shared memory (``process``
      backend), mapped read-only;
    * a :class:`NoiseTable` (``serial``: the coordinator's own) or a float32 array (``ray``: a
      zero-copy view from the object store);
    * ``(entropy, spawn_key)`` of the table's SeedSequence, with ``size``: drawn here from
      ``distribution`` (a copy; into shared memory with ``shared=True``, for a backend given only
      the seed).

    :raises TypeError: for anything else.
    """
    if isinstance(source, NoiseTable):
        return source
    if isinstance(source, ArrayRef):
        return attach_noise_table(source, distribution)
    if isinstance(source, np.ndarray):
        return NoiseTable.from_array(source, distribution)
    if isinstance(source, tuple) and len(source) == 2 and size is not None:
        entropy, spawn_key = source
        seq = np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key))
        if shared:
            return shared_noise_table(seq, size, distribution)
        return NoiseTable(seq, size, distribution=distribution)
    raise TypeError(f"cannot open a noise table from {type(source).__name__}")


class RolloutWorker:
    """Runs :class:`Chunk` s. Built once per process (or once, in-process, for ``serial``).

    :param spec: the env, policy, noise table (or where to find it) and distribution.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        self.env_id = str(spec.env.get("id"))
        self.objective = make_engine_objective(spec.engine, spec.env, spec.policy)
        self.noise = open_noise(spec.noise, spec.noise_size, spec.distribution)
        self.distribution = self.noise.distribution
        self._shared = Attachments()  # the blocks chunks' arrays are in (see resolve_chunk)

    def episodes(self, chunk: Chunk) -> Iterator[EpisodeResult]:
        """Each episode's result in the chunk's order, as soon as it ends (so that a process
        backend knows which episode was running if the process dies).

        :raises EpisodeError: if the environment raises, naming the episode; the cause chained.
        """
        chunk = resolve_chunk(chunk, self._shared)
        if getattr(self.objective, "batched", False):
            yield from self._batch(chunk)
            return
        for episode in chunk.episodes:
            try:
                params = member_params(chunk, episode, self.noise, self.distribution)
                result = self.objective.run(
                    params, chunk.obs_mean, chunk.obs_std, episode.env_seed, chunk.collect_obs_stats
                )
            except Exception as exc:
                raise EpisodeError.of(self.env_id, episode, exc) from exc
            yield result

    def _batch(self, chunk: Chunk) -> Iterator[EpisodeResult]:
        """The chunk's episodes in one batch of a batched objective, results in order. An exception
        is blamed on the first episode whose result is not out yet (every earlier one is)."""
        done = 0
        try:
            params = [member_params(chunk, e, self.noise, self.distribution) for e in chunk.episodes]
            for result in self.objective.run_batch(
                params, chunk.obs_mean, chunk.obs_std, [e.env_seed for e in chunk.episodes], chunk.collect_obs_stats
            ):
                done += 1
                yield result
        except Exception as exc:
            raise EpisodeError.of(self.env_id, chunk.episodes[min(done, len(chunk.episodes) - 1)], exc) from exc

    def run(self, chunk: Chunk) -> list[EpisodeResult]:
        """Every episode's result, in the chunk's order. :raises EpisodeError: see :meth:`episodes`."""
        return list(self.episodes(chunk))

    def close(self) -> None:
        """Close the objective (its environment) and drop the maps of the chunks' shared-memory blocks."""
        self.objective.close()
        self._shared.close()
