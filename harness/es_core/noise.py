"""The shared noise table of Salimans et al. 2017 (Sec. 2.1, "Parallelization").

Every worker builds the same table from the same seed, so a perturbation is named
by one integer, its offset into the table: workers exchange offsets and returns,
never parameter vectors. The OpenAI starter (``es_distributed/es.py``, ``SharedNoiseTable``)
uses 250M float32 entries; a smaller table is plenty for the policies used here.
"""

from __future__ import annotations

import numpy as np


class NoiseTable:
    """A seeded array of standard normal float32 noise.

    :param seed_seq: the SeedSequence the table is drawn from (``seeding.NOISE_TABLE``).
    :param size: number of float32 entries (4 bytes each).
    :raises ValueError: if ``size`` is not positive.
    """

    def __init__(self, seed_seq: np.random.SeedSequence, size: int) -> None:
        if size <= 0:
            raise ValueError(f"noise table size must be positive, got {size}")
        rng = np.random.Generator(np.random.PCG64(seed_seq))
        self.noise: np.ndarray = rng.standard_normal(int(size), dtype=np.float32)
        self.noise.setflags(write=False)

    @property
    def size(self) -> int:
        return self.noise.size

    def get(self, offset: int, dim: int) -> np.ndarray:
        """The perturbation at ``offset``: a read-only view, shape ``(dim,)`` float32.

        :raises IndexError: if ``offset`` is outside ``[0, size - dim]``.
        """
        if not 0 <= offset <= self.size - dim:
            raise IndexError(f"noise offset {offset} outside [0, {self.size - dim}] for dim {dim}")
        return self.noise[offset : offset + dim]

    def batch(self, offsets: np.ndarray, dim: int) -> np.ndarray:
        """Perturbations at ``offsets`` (shape ``(m,)``) stacked, shape ``(m, dim)`` float32."""
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.size and (offsets.min() < 0 or offsets.max() > self.size - dim):
            raise IndexError(f"noise offsets outside [0, {self.size - dim}] for dim {dim}")
        return self.noise[offsets[:, None] + np.arange(dim)]

    def sample_offsets(self, rng: np.random.Generator, dim: int, n: int) -> np.ndarray:
        """``n`` uniformly drawn valid offsets for perturbations of length ``dim``, shape ``(n,)`` int64.

        :raises ValueError: if the table is shorter than ``dim``.
        """
        if dim > self.size:
            raise ValueError(f"noise table of {self.size} entries is too small for {dim} parameters")
        return rng.integers(0, self.size - dim + 1, size=n, dtype=np.int64)
