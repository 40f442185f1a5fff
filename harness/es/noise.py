"""The shared noise table of Salimans et al. 2017 (Sec. 2.1, "Parallelization").

Every worker builds the same table from the same seed, so a perturbation is named
by one integer, its offset into the table: workers exchange offsets and returns,
never parameter vectors. The OpenAI starter (``es_distributed/es.py``, ``SharedNoiseTable``)
uses 250M float32 entries; a smaller table is plenty for the policies used here.

What the table holds is its :class:`~harness.es.distributions.Distribution`'s to say (standard
normal by default). Where the array lives is the caller's: one table per machine, the coordinator
draws it into shared memory (:func:`harness.shm.shared_noise_table`) and rollout workers map that
memory read-only (:func:`harness.shm.attach_noise_table`), so ``workers.n`` workers add no copies
(the starter's ``SharedNoiseTable`` did the same with a ``multiprocessing.Array``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import DTypeLike

from harness.es.distributions import Distribution, Gaussian


class Owner(Protocol):
    """What holds a table's memory (e.g. a shared-memory block): released by ``close()``."""

    def close(self) -> None:
        """Release the memory: a :class:`~harness.shm.SharedBlock` unlinks its block, :class:`~harness.shm.Attachments`
        drops its maps."""
        ...


class NoiseTable:
    """A seeded float32 array of noise from ``distribution``, read-only.

    :param seed_seq: the SeedSequence the table is drawn from (``seeding.NOISE_TABLE``).
    :param size: number of float32 entries (4 bytes each).
    :param distribution: what the entries are (default :class:`~harness.es.distributions.Gaussian`).
    :param out: draw into this 1-d float32 array of ``size`` entries (e.g. shared memory) instead
        of a new one; the same numbers either way.
    :param owner: what holds ``out``'s memory (anything with ``close()``), released by :meth:`close`.
    :raises ValueError: if ``size`` is not positive, or ``out`` is not ``size`` float32 entries.
    """

    def __init__(
        self,
        seed_seq: np.random.SeedSequence,
        size: int,
        *,
        distribution: Distribution | None = None,
        out: np.ndarray | None = None,
        owner: Owner | None = None,
    ) -> None:
        if size <= 0:
            raise ValueError(f"noise table size must be positive, got {size}")
        if out is None:
            out = np.empty(int(size), dtype=np.float32)
        elif out.dtype != np.float32 or out.shape != (int(size),):
            raise ValueError(
                f"a noise table of {size} entries needs a ({size},) float32 array, got {out.dtype} {out.shape}"
            )
        self.distribution = distribution or Gaussian()
        self.distribution.fill(np.random.Generator(np.random.PCG64(seed_seq)), out)
        self._set(out, owner)

    def _set(self, noise: np.ndarray, owner: Owner | None) -> None:
        self.noise: np.ndarray = noise
        self.noise.setflags(write=False)
        self.owner: Owner | None = owner
        self._buffers: dict[str, np.ndarray] = {}  # batch(reuse=True)'s, by dtype

    @classmethod
    def from_array(
        cls, noise: np.ndarray, distribution: Distribution | None = None, owner: Owner | None = None
    ) -> NoiseTable:
        """A table over an existing float32 array, shape ``(size,)``, drawn from ``distribution``
        elsewhere: another process's table in shared memory, Ray's zero-copy view of the
        coordinator's table in its object store. No copy, no drawing.

        :param owner: what holds the array's memory (anything with ``close()``), released by :meth:`close`.
        :raises ValueError: for another dtype or shape.
        """
        noise = np.asarray(noise)
        if noise.dtype != np.float32 or noise.ndim != 1 or noise.size == 0:
            raise ValueError(f"a noise table is a non-empty 1-d float32 array, got {noise.dtype} {noise.shape}")
        table = cls.__new__(cls)
        table.distribution = distribution or Gaussian()
        table._set(noise, owner)
        return table

    def close(self) -> None:
        """Release the memory ``owner`` holds (a no-op without one). Views already handed out stay
        valid. Idempotent."""
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.close()

    @property
    def size(self) -> int:
        """Number of float32 entries."""
        return self.noise.size

    def get(self, offset: int, dim: int) -> np.ndarray:
        """The perturbation at ``offset``: a read-only view, shape ``(dim,)`` float32.

        :raises IndexError: if ``offset`` is outside ``[0, size - dim]``.
        """
        if not 0 <= offset <= self.size - dim:
            raise IndexError(f"noise offset {offset} outside [0, {self.size - dim}] for dim {dim}")
        return self.noise[offset : offset + dim]

    def batch(self, offsets: np.ndarray, dim: int, dtype: DTypeLike = np.float32, reuse: bool = False) -> np.ndarray:
        """Perturbations at ``offsets`` (shape ``(m,)``) stacked, shape ``(m, dim)``, float32 or
        (converted exactly) float64.

        :param reuse: write into buffers this table keeps and returns again at the next
            ``reuse=True`` call of the same shape and dtype, so the result is valid only until then.
            A large population of a large policy then costs no fresh memory each generation: for a
            Humanoid MLP at population 1024 (512 x 27,601 entries), allocating, faulting in and
            freeing the float32 and float64 blocks took 0.4 s of a 7.4 s epoch.
        :raises IndexError: if an offset is outside ``[0, size - dim]``.
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.size and (offsets.min() < 0 or offsets.max() > self.size - dim):
            raise IndexError(f"noise offsets outside [0, {self.size - dim}] for dim {dim}")
        # rows of a strided view: no (m, dim) int64 index array (113 MB for a Humanoid MLP at m = 512)
        shape = (offsets.size, dim)
        if not reuse:
            rows = np.lib.stride_tricks.sliding_window_view(self.noise, dim)
            return rows[offsets].astype(dtype, copy=False)
        out32 = self._scratch(shape, np.float32)
        for i, offset in enumerate(offsets.tolist()):  # row by row: no temporary
            out32[i] = self.noise[offset : offset + dim]
        if np.dtype(dtype) == np.float32:
            return out32
        out = self._scratch(shape, dtype)
        np.copyto(out, out32)
        return out

    def _scratch(self, shape: tuple[int, int], dtype: DTypeLike) -> np.ndarray:
        key = np.dtype(dtype).str
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = self._buffers[key] = np.empty(shape, dtype=dtype)
        return buf

    def sample_offsets(self, rng: np.random.Generator, dim: int, n: int) -> np.ndarray:
        """``n`` uniformly drawn valid offsets for perturbations of length ``dim``, shape ``(n,)`` int64.

        :raises ValueError: if the table is shorter than ``dim``.
        """
        if dim > self.size:
            raise ValueError(f"noise table of {self.size} entries is too small for {dim} parameters")
        return rng.integers(0, self.size - dim + 1, size=n, dtype=np.int64)
