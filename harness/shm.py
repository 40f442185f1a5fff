"""Arrays in POSIX shared memory: written by one process, read by the others on the machine.

The noise table (100 MB by default) and each epoch's centre parameters reach the rollout workers
this way, so a machine holds one noise table however many workers it runs, and a chunk of
episodes sent to a worker carries offsets and seeds, not parameter vectors (Salimans et al. 2017,
Sec. 2.1: workers exchange scalars).

The creator (:class:`SharedBlock`) registers the block with :mod:`multiprocessing`'s resource
tracker, which unlinks it if the creator is killed. A SIGKILL to the whole process group (a
scheduler's hard kill) takes the tracker too: blocks are therefore named after their creator's
pid (``harness_<pid>_<random>``), and creating one first removes those whose creator is gone
(a process in another PID namespace sharing /dev/shm would look gone: its workers keep the maps
they have, but a replacement worker could not attach). Readers (:class:`Attachments`) map a
block read-only without registering it, so a reader that exits never removes a block still in
use (CPython < 3.13 attaches with ``track=True`` only, whose tracker would unlink it).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from harness.es.noise import NoiseTable

_DEV_SHM = "/dev/shm"
_PREFIX = "harness_"


def remove_orphans() -> list[str]:
    """Unlink the blocks under /dev/shm that a harness process created and that outlived it
    (killed with its resource tracker); their names. Blocks of live processes are left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(_DEV_SHM):
            pid = name[len(_PREFIX) :].split("_", 1)[0]
            if not (name.startswith(_PREFIX) and pid.isdigit()):
                continue
            try:
                os.kill(int(pid), 0)
                continue  # alive (or reused by another process: left alone)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # alive, another user's
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(_DEV_SHM, name))
                removed.append(name)
    return removed


@dataclass(frozen=True)
class ArrayRef:
    """Where a read-only array lives: shared-memory block ``name``, at byte ``offset``.

    Picklable and small: it is what crosses a pipe instead of the array.
    """

    name: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        """The array's size in bytes: the product of ``shape`` times the dtype's item size."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def _map(name: str, writable: bool) -> mmap.mmap:
    """An mmap of block ``name`` (Linux: its file under /dev/shm; no resource tracker involved)."""
    path = os.path.join(_DEV_SHM, name.lstrip("/"))
    flags = os.O_RDWR if writable else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    finally:
        os.close(fd)


class SharedBlock:
    """A shared-memory block of ``nbytes`` bytes created by this process, unlinked by :meth:`close`
    (or by the resource tracker if this process dies first).

    :raises OSError: if the block cannot be created (e.g. /dev/shm is full).
    """

    def __init__(self, nbytes: int) -> None:
        remove_orphans()
        self._shm = shared_memory.SharedMemory(
            create=True, size=max(1, int(nbytes)), name=f"{_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"
        )
        self.name = self._shm.name
        self.nbytes = int(nbytes)
        # Views go through our own mmap, not ``self._shm.buf``: SharedMemory cannot close while
        # numpy arrays export its buffer, and arrays handed out may outlive close().
        self._mmap = _map(self.name, writable=True) if os.path.isdir(_DEV_SHM) else None

    def array(self, shape: tuple[int, ...], dtype, offset: int = 0) -> np.ndarray:
        """A writable view of the block, ``shape`` ``dtype`` at byte ``offset``."""
        buf = self._mmap if self._mmap is not None else self._shm.buf
        return np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset)

    def ref(self, shape: tuple[int, ...], dtype, offset: int = 0) -> ArrayRef:
        """An :class:`ArrayRef` to what :meth:`array` returns for ``shape``, ``dtype`` and ``offset`` (not checked
        against the block's size)."""
        return ArrayRef(self.name, int(offset), tuple(int(s) for s in shape), np.dtype(dtype).str)

    def close(self) -> None:
        """Unlink the block: readers that mapped it keep their mapping; nobody new can attach. Idempotent."""
        shm, self._shm = self._shm, None
        if shm is None:
            return
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()
        with contextlib.suppress(BufferError):  # views through shm.buf (no /dev/shm) may still exist
            shm.close()


class Attachments:
    """Read-only maps of blocks other processes created, one per block name, kept until
    :meth:`close` (a reader resolves many :class:`ArrayRef` s into the same few blocks)."""

    def __init__(self) -> None:
        self._maps: dict[str, object] = {}

    def array(self, ref: ArrayRef) -> np.ndarray:
        """The array ``ref`` names: a read-only view (no copy).

        :raises FileNotFoundError: if the block was unlinked before this process first attached.
        """
        buf = self._maps.get(ref.name)
        if buf is None:
            if os.path.isdir(_DEV_SHM):
                buf = _map(ref.name, writable=False)
            else:  # pragma: no cover - no /dev/shm (macOS): the tracker may warn at exit
                buf = shared_memory.SharedMemory(name=ref.name)
            self._maps[ref.name] = buf
        raw = buf.buf if isinstance(buf, shared_memory.SharedMemory) else buf
        out = np.ndarray(ref.shape, dtype=np.dtype(ref.dtype), buffer=raw, offset=ref.offset)
        out.setflags(write=False)
        return out

    def forget(self, keep: set[str]) -> None:
        """Drop maps of blocks not in ``keep`` (the creator replaced them)."""
        for name in [n for n in self._maps if n not in keep]:
            self._maps.pop(name)  # closed when the last view of it is gone

    def close(self) -> None:
        """Drop every map; each is unmapped once the last array viewing it is gone."""
        self._maps.clear()


# ---------------------------------------------------------------------------------------------
# The noise table in shared memory: one copy on the machine however many workers read it.


def shared_noise_table(seed_seq: np.random.SeedSequence, size: int, distribution=None) -> NoiseTable:
    """A :class:`~harness.es.noise.NoiseTable` drawn straight into a new shared block (the same
    numbers as an unshared table of the same seed); :meth:`NoiseTable.close` unlinks the block.

    :raises OSError: if the block cannot be created (e.g. /dev/shm is full).
    """
    block = SharedBlock(int(size) * 4)
    try:
        return NoiseTable(
            seed_seq, size, distribution=distribution, out=block.array((int(size),), np.float32), owner=block
        )
    except BaseException:
        block.close()
        raise


def share_noise_table(table: NoiseTable) -> ArrayRef:
    """Where other processes on this machine find ``table`` (:func:`attach_noise_table`).

    :raises ValueError: unless the table was made by :func:`shared_noise_table`.
    """
    if not isinstance(table.owner, SharedBlock):
        raise ValueError("this noise table is not in shared memory (make it with harness.shm.shared_noise_table)")
    return table.owner.ref(table.noise.shape, table.noise.dtype)


def attach_noise_table(ref: ArrayRef, distribution=None) -> NoiseTable:
    """The table another process shares (:func:`share_noise_table`), mapped read-only: no copy,
    no drawing. ``distribution`` is the one it was drawn from (default Gaussian).

    :raises FileNotFoundError: if the block is gone.
    """
    attachments = Attachments()
    return NoiseTable.from_array(attachments.array(ref), distribution, owner=attachments)
