"""One noise table per machine; chunks that carry offsets and seeds, not parameter vectors, in pieces that shrink."""

import os
import pickle

import numpy as np
import pytest

from harness.es import NoiseTable
from harness.shm import Attachments, SharedBlock, attach_noise_table, share_noise_table, shared_noise_table
from harness.workers import Chunk, EpisodeSpec, ProcessBackend, WorkerSpec, make_backend
from harness.workers.rollout import resolve_chunk
from harness.workers.worker import RolloutWorker

ENV = {"id": "InvertedPendulum-v5", "kwargs": {}, "max_episode_steps": 20}
LINEAR = {"name": "linear"}


def _private_kib(pid: int) -> int:
    """Memory only this process maps (kB): Private_Clean + Private_Dirty of /proc/pid/smaps_rollup."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))


def test_a_shared_table_holds_the_same_numbers_and_is_unlinked_on_close():
    seq = np.random.SeedSequence(3, spawn_key=(1,))
    plain, shared = NoiseTable(seq, 10_000), shared_noise_table(seq, 10_000)
    np.testing.assert_array_equal(plain.noise, shared.noise)
    # the draw into a given array is the same stream as numpy's own allocation of it
    np.testing.assert_array_equal(
        plain.noise, np.random.Generator(np.random.PCG64(seq)).standard_normal(10_000, dtype=np.float32)
    )
    ref = share_noise_table(shared)
    reader = attach_noise_table(ref)
    np.testing.assert_array_equal(reader.noise, plain.noise)
    assert not reader.noise.flags.writeable
    with pytest.raises(ValueError, match="not in shared memory"):
        share_noise_table(plain)
    assert os.path.exists(f"/dev/shm/{ref.name}")
    shared.close()
    shared.close()  # idempotent
    assert not os.path.exists(f"/dev/shm/{ref.name}")
    np.testing.assert_array_equal(reader.noise, plain.noise)  # a reader's map outlives the unlink
    with pytest.raises(FileNotFoundError):
        attach_noise_table(ref)  # nobody new attaches after it


def test_from_array_refuses_what_is_not_a_float32_vector():
    with pytest.raises(ValueError, match="float32"):
        NoiseTable.from_array(np.zeros(5))
    assert NoiseTable.from_array(np.zeros(5, np.float32)).size == 5


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux /proc smaps_rollup")
def test_process_workers_map_the_coordinators_table_instead_of_copying_it():
    size = 50_000_000  # 200 MB: far more than a worker's own memory
    noise = shared_noise_table(np.random.SeedSequence(0), size)
    backend = make_backend("process", 2, WorkerSpec(ENV, LINEAR, noise))
    try:
        d = 5  # InvertedPendulum: 4 observations, 1 action
        tasks = tuple(EpisodeSpec(int(o), s, i) for i, (o, s) in enumerate([(0, 1), (0, -1), (size - d, 1), (7, -1)]))
        chunk = Chunk(np.zeros((1, d)), 0.1, np.zeros(4), np.ones(4), tasks, True)
        results = backend.evaluate(chunk)
        name = share_noise_table(noise).name
        for pid in backend.pids:
            assert f"/dev/shm/{name}" in open(f"/proc/{pid}/maps").read()
            assert _private_kib(pid) * 1024 < noise.noise.nbytes / 2
        # the same returns as in-process, where the worker reads the very same table
        serial = RolloutWorker(WorkerSpec(ENV, LINEAR, noise)).run(chunk)
        assert [r.episode_return for r in results] == [r.episode_return for r in serial]
    finally:
        backend.close()
        noise.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def test_a_chunk_on_the_pipe_weighs_the_same_whatever_the_parameter_count():
    """What a worker receives per chunk: references into shared memory and the tasks."""
    sizes = []
    for d in (10, 100_000):
        backend = ProcessBackend.__new__(ProcessBackend)  # _publish alone: no workers needed
        backend._block = None
        chunk = Chunk(
            np.arange(d, dtype=np.float64)[None, :],
            np.full(d, 0.02),
            np.zeros(17),
            np.ones(17),
            tuple(EpisodeSpec(i, 1, i) for i in range(8)),
            True,
        )
        published = backend._publish(chunk)
        sizes.append(len(pickle.dumps(published)))
        # and a worker reads back the arrays it was sent
        resolved = resolve_chunk(published, Attachments())
        np.testing.assert_array_equal(resolved.centers, chunk.centers)
        np.testing.assert_array_equal(resolved.sigma, chunk.sigma)
        backend._block.close()
    # the shapes' integers are all that grows: a few bytes for 10,000x the parameters
    assert max(sizes) < 1000 and abs(sizes[1] - sizes[0]) < 32, sizes


def test_a_shared_block_array_round_trips():
    block = SharedBlock(64)
    try:
        block.array((4,), np.float64)[...] = [1, 2, 3, 4]
        np.testing.assert_array_equal(Attachments().array(block.ref((4,), np.float64)), [1, 2, 3, 4])
    finally:
        block.close()


@pytest.mark.parametrize("n_tasks,n_workers", [(1, 2), (5, 4), (40, 2), (1024, 2), (7, 1)])
def test_pieces_cover_every_task_in_order_and_shrink_towards_the_end(n_tasks, n_workers):
    from harness.workers import split_episodes

    pieces = split_episodes(list(range(n_tasks)), n_workers)
    assert [t for p in pieces for t in p] == list(range(n_tasks))
    sizes = [len(p) for p in pieces]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1
    assert len(pieces) <= n_workers * (2 * np.log(max(n_tasks / n_workers, 1)) + 4)


@pytest.mark.parametrize(
    "n_tasks,n_workers,sizes",
    [(20, 2, [10, 10]), (24, 2, [12, 12]), (80, 2, [20, 16, 16, 16, 12]), (20, 1, [16, 4]), (5, 4, [2, 2, 1])],
)
def test_a_batched_engines_pieces_share_out_a_small_population(n_tasks, n_workers, sizes):
    """Pieces of at least 16 (the mujoco engine's MIN_BATCH), unless that would leave a worker without work:
    then equal shares."""
    from harness.workers import split_episodes

    pieces = split_episodes(list(range(n_tasks)), n_workers, 16)
    assert [len(p) for p in pieces] == sizes and [t for p in pieces for t in p] == list(range(n_tasks))


@pytest.mark.slow
def test_a_block_whose_creator_was_killed_with_its_tracker_is_removed_by_the_next_run():
    """A SIGKILL to the whole process group (a scheduler's hard kill) takes the resource tracker
    with the run: the next block created on the machine removes what it left."""
    import subprocess
    import sys

    code = (
        "import os, sys; from harness.shm import SharedBlock; b = SharedBlock(4096); print(b.name, flush=True); "
        "os.killpg(0, 9)"
    )  # the child and its resource tracker, in a session of their own
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60, start_new_session=True
    )
    name = proc.stdout.strip()
    assert name.startswith("harness_") and proc.returncode == -9
    path = f"/dev/shm/{name}"
    assert os.path.exists(path)  # nobody left to unlink it
    SharedBlock(64).close()
    assert not os.path.exists(path)
    mine = SharedBlock(64)  # a live creator's block is never an orphan
    try:
        from harness.shm import remove_orphans

        assert mine.name not in remove_orphans() and os.path.exists(f"/dev/shm/{mine.name}")
    finally:
        mine.close()


def test_batch_into_reused_buffers_gives_the_same_rows():
    """``reuse=True`` (the strategies' gradient path) writes into buffers the table keeps: the same
    numbers as a fresh gather, float64 converted exactly, and no new memory per generation."""
    table = NoiseTable(np.random.SeedSequence(2), 50_000)
    offsets = np.array([0, 17, 49_000, 123, 17])
    fresh = table.batch(offsets, 1000)
    assert fresh.dtype == np.float32 and fresh.shape == (5, 1000)
    np.testing.assert_array_equal(fresh[1], table.noise[17:1017])
    reused = table.batch(offsets, 1000, np.float64, reuse=True)
    assert reused.dtype == np.float64
    np.testing.assert_array_equal(reused, fresh.astype(np.float64))
    again = table.batch(offsets[::-1], 1000, np.float64, reuse=True)
    assert again is reused  # the same buffer, overwritten
    np.testing.assert_array_equal(again, fresh[::-1].astype(np.float64))
    with pytest.raises(IndexError):
        table.batch(np.array([49_500]), 1000, reuse=True)
