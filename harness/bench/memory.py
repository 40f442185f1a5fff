"""Memory of the coordinator and its workers, read from ``/proc`` (Linux; ``None`` elsewhere)."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def _kib(text: str, key: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return None


def process_memory(pid: int) -> dict | None:
    """MiB of process ``pid``: ``peak_rss`` (VmHWM), and now ``rss``, ``pss`` (shared pages split
    between the processes sharing them), ``uss`` (pages of this process alone); ``None`` where
    ``/proc`` cannot tell (not Linux, or the process is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {"peak_rss": _kib(status, "VmHWM"), "rss": _kib(status, "VmRSS"), "pss": None, "uss": None}
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        out["pss"] = _kib(rollup, "Pss")
        clean, dirty = _kib(rollup, "Private_Clean"), _kib(rollup, "Private_Dirty")
        out["uss"] = None if clean is None or dirty is None else clean + dirty
    except OSError:
        pass
    return {k: None if v is None else v / 1024 for k, v in out.items()}


def private_in_large_mappings(pid: int, nbytes: int) -> float | None:
    """MiB of private (unshared) pages of process ``pid`` in memory mappings of at least 90% of
    ``nbytes``: about ``k * nbytes`` when the process holds ``k`` copies of an ``nbytes`` array of
    its own (NumPy maps arrays that large on their own), about 0 when it maps one shared with
    other processes. ``None`` where ``/proc/<pid>/smaps`` cannot tell."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    total = size = 0.0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Size":
            size = float(rest.split()[0]) * 1024
        elif key in ("Private_Clean", "Private_Dirty") and size >= 0.9 * nbytes:
            total += float(rest.split()[0]) * 1024
    return total / 2**20


def memory_of(pids: list[int], noise_bytes: int) -> dict:
    """MiB of the coordinator (this process) and of the workers ``pids`` (:func:`process_memory`), with
    each one's private memory in mappings the size of the noise table (``noise_bytes``)."""
    workers = []
    for pid in pids:
        m = process_memory(pid)
        if m is not None:
            m["private_in_table_sized_mappings"] = private_in_large_mappings(pid, noise_bytes)
            workers.append(m)
    coordinator = process_memory(os.getpid())
    if coordinator is not None:
        coordinator["private_in_table_sized_mappings"] = private_in_large_mappings(os.getpid(), noise_bytes)
    return {
        "coordinator": coordinator,
        "coordinator_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers": workers,
        "worker_pids_known": bool(pids),
    }
