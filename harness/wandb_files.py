"""Read W&B's local run files (``run_dir/wandb/*-<id>/run-<id>.wandb``) back: which epochs a W&B
run holds, so that a resumed harness run can log the rows of ``metrics.csv`` that W&B lost.

Why: W&B writes a run's records from a service process, in the background. A SIGKILL to the
run's process group takes that process too, before it has written what it was given: the file of
a run killed after 3 epochs can hold its 7-byte header alone. ``metrics.csv`` is flushed row by
row, so after a resume it is the record of what happened, and W&B's copy is made whole from it
(:func:`harness.runner.Runner`).

The file is ``:W&B`` + magic + version (7 bytes), then a LevelDB-style log: 32 KiB blocks of
records with a 7-byte header (CRC32 4, length 2, type 1: full/first/middle/last), each payload
(re-assembled) a ``wandb_internal_pb2.Record``. wandb >= 0.19 ships no reader of its own. A file
cut short by a kill ends at its last whole record.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
HEADER = 7


def records(path: str | Path) -> Iterator:
    """The ``wandb_internal_pb2.Record`` s of the run file ``path``, in order; a record cut short
    (the file of a killed run) ends the iteration.

    :raises ValueError: if ``path`` is not a W&B run file.
    """
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, buf = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        if len(payload) < length:  # cut short
            return
        buf = payload if kind in (FULL, FIRST) else buf + payload
        if kind in (FULL, LAST):
            rec = wandb_internal_pb2.Record()
            try:
                rec.ParseFromString(buf)
            except DecodeError:
                return
            yield rec


def history(path: str | Path) -> list[dict]:
    """The rows logged to the run file ``path`` (values decoded from JSON)."""
    return [
        {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
        for r in records(path)
        if r.WhichOneof("record_type") == "history"
    ]


def run_files(run_dir: str | Path, run_id: str) -> list[Path]:
    """The local files of W&B run ``run_id`` under ``run_dir/wandb`` (one per segment: the first
    run and each resume), oldest first."""
    return sorted(Path(run_dir).glob(f"wandb/*-{run_id}/run-{run_id}.wandb"))


def logged_epochs(run_dir: str | Path, run_id: str) -> set[int]:
    """The ``epoch`` values W&B run ``run_id`` holds in its local files under ``run_dir``."""
    out = set()
    for path in run_files(run_dir, run_id):
        try:
            out.update(int(row["epoch"]) for row in history(path) if "epoch" in row)
        except (OSError, ValueError):  # unreadable: nothing known to be held
            continue
    return out
