"""The ``serial`` backend: every episode in the coordinator's own process."""

from __future__ import annotations

import logging

from harness.workers.rollout import Chunk, EpisodeResult
from harness.workers.worker import RolloutWorker, WorkerSpec

log = logging.getLogger("harness.workers")


class SerialBackend:
    """Runs every episode in this process: for debugging and tests. Nothing is retried (a
    crash here is the run's own crash) and no timeout is enforced (an episode cannot be
    stopped from inside the process running it).

    :raises EpisodeError: from ``evaluate`` if the environment raises.
    """

    n = 1
    bytes_sent = bytes_received = 0  # no worker, so nothing is exchanged (harness.bench reads these)

    def __init__(self, spec: WorkerSpec, episode_timeout_s: float | None = None) -> None:
        if episode_timeout_s is not None:
            log.warning("workers.episode_timeout_s=%s is not enforced with workers.backend=serial", episode_timeout_s)
        self.worker = RolloutWorker(spec)

    def evaluate(self, chunk: Chunk) -> list[EpisodeResult]:
        """Run every task of ``chunk``; results in task order."""
        return self.worker.run(chunk)

    def close(self) -> None:
        """Close the in-process worker (its objective and shared-memory maps)."""
        self.worker.close()
