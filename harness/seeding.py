"""Every random stream of a run, derived from the run seed.

Each stream is ``SeedSequence(seed, spawn_key=(STREAM, *index))``: named, independent,
and the same whichever worker (or how many workers) consume it. Nothing in the
harness reads NumPy's global RNG.
"""

from __future__ import annotations

import numpy as np

# Stream identifiers: never renumber, or old seeds stop reproducing.
NOISE_TABLE = 0
POLICY_INIT = 1
STRATEGY = 2  # per generation: (STRATEGY, generation)
TRAIN_ENV = 3  # per generation: (TRAIN_ENV, generation) -> one env seed per episode (pair)
EVAL_ENV = 4  # per evaluation: (EVAL_ENV, epoch) -> one env seed per episode
TRPO = 5
NOVELTY = 6  # per generation: (NOVELTY, generation) -> which agent of the meta-population to update
BC_ENV = 7  # novelty family: (BC_ENV, 0, agent) seeds the initial archive, (BC_ENV, 1, generation) the
# episodes whose mean BC is archived after generation's update
JUMP_ENV = 8  # jumps to the best sample: (JUMP_ENV, generation) -> the episodes that re-evaluate candidate and centre
TOPOLOGY = 9  # netes: the Erdos-Renyi graph of its agents (redrawn from this stream until connected)
REFERENCE_BATCH = 10  # policy.virtual_batch_norm: (REFERENCE_BATCH, 0) the random policy's actions and which
# observations it keeps, (REFERENCE_BATCH, 1, i) the seed of its episode i


def seed_sequence(seed: int, stream: int, *index: int) -> np.random.SeedSequence:
    """The SeedSequence of one named stream, e.g. ``seed_sequence(0, STRATEGY, 12)``."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(stream), *map(int, index)))


def generator(seed: int, stream: int, *index: int) -> np.random.Generator:
    """A PCG64 ``Generator`` on the stream ``(stream, *index)`` of ``seed``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, stream, *index)))


def env_seeds(seed: int, stream: int, index: int | tuple[int, ...], n: int) -> np.ndarray:
    """``n`` environment seeds, shape ``(n,)`` int64 in [0, 2**32), for ``env.reset(seed=...)``,
    from the stream ``(stream, *index)``."""
    index = index if isinstance(index, tuple) else (index,)
    return seed_sequence(seed, stream, *index).generate_state(n, dtype=np.uint32).astype(np.int64)
