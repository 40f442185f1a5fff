"""The shared noise table of Salimans et al. 2017 (Sec. 2.1, "Parallelization").

Every worker builds the same table from the same seed, so a perturbation is named
by one integer, its offset into the table: workers exchange offsets and returns,
never parameter vectors. The OpenAI starter (``es_distributed/es.py``, ``SharedNoiseTable``)
uses 250M float32 entries; a smaller table is plenty for the policies used here.

One table per machine: the coordinator draws it into shared memory (``shared=True``) and rollout
workers map that memory read-only (:meth:`NoiseTable.attach`), so ``workers.n`` workers add no
copies (the starter's ``SharedNoiseTable`` did the same with a ``multiprocessing.Array``).
"""

from __future__ import annotations

import numpy as np

from harness.shm import ArrayRef, Attachments, SharedBlock


class NoiseTable:
    """A seeded array of standard normal float32 noise.

    :param seed_seq: the SeedSequence the table is drawn from (``seeding.NOISE_TABLE``).
    :param size: number of float32 entries (4 bytes each).
    :param shared: draw it into shared memory, for :meth:`share` / :meth:`attach` (the same numbers).
    :raises ValueError: if ``size`` is not positive.
    """

    def __init__(self, seed_seq: np.random.SeedSequence | None, size: int, *, shared: bool = False,
                 _array: np.ndarray | None = None) -> None:
        self._block: SharedBlock | None = None
        self._attachments: Attachments | None = None
        self._buffers: dict[str, np.ndarray] = {}  # batch(reuse=True)'s, by dtype
        if _array is not None:  # attach() / from_array()
            self.noise: np.ndarray = _array
            return
        if size <= 0:
            raise ValueError(f"noise table size must be positive, got {size}")
        rng = np.random.Generator(np.random.PCG64(seed_seq))
        if shared:
            self._block = SharedBlock(int(size) * 4)
            self.noise = self._block.array((int(size),), np.float32)
            rng.standard_normal(out=self.noise, dtype=np.float32)  # the same stream as the copy below
        else:
            self.noise = rng.standard_normal(int(size), dtype=np.float32)
        self.noise.setflags(write=False)

    def share(self) -> ArrayRef:
        """Where other processes on this machine find this table (:meth:`attach`).

        :raises ValueError: unless the table was made with ``shared=True``.
        """
        if self._block is None:
            raise ValueError("this noise table is not in shared memory (make it with shared=True)")
        return self._block.ref(self.noise.shape, self.noise.dtype)

    @classmethod
    def attach(cls, ref: ArrayRef) -> "NoiseTable":
        """The table another process shares (:meth:`share`), mapped read-only: no copy, no drawing."""
        attachments = Attachments()
        table = cls(None, 0, _array=attachments.array(ref))
        table._attachments = attachments
        return table

    @classmethod
    def from_array(cls, noise: np.ndarray) -> "NoiseTable":
        """A table over an existing float32 array, shape ``(size,)`` (e.g. Ray's zero-copy view of
        the coordinator's table in its object store).

        :raises ValueError: for another dtype or shape.
        """
        noise = np.asarray(noise)
        if noise.dtype != np.float32 or noise.ndim != 1 or noise.size == 0:
            raise ValueError(f"a noise table is a non-empty 1-d float32 array, got {noise.dtype} {noise.shape}")
        return cls(None, 0, _array=noise)

    def close(self) -> None:
        """Release the shared memory this table created or attached (a no-op otherwise).
        Views already handed out stay valid. Idempotent."""
        if self._block is not None:
            self._block.close()
            self._block = None
        if self._attachments is not None:
            self._attachments.close()
            self._attachments = None

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

    def batch(self, offsets: np.ndarray, dim: int, dtype=np.float32, reuse: bool = False) -> np.ndarray:
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

    def _scratch(self, shape: tuple[int, int], dtype) -> np.ndarray:
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
