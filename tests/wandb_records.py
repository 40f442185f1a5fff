"""Read an offline W&B run file (``run-*.wandb``) back, for tests.

The file is ``:W&B`` + magic + version (7 bytes), then a LevelDB-style log: 32 KiB blocks
of records with a 7-byte header (CRC32 4, length 2, type 1: full/first/middle/last), each
payload (re-assembled) a ``wandb_internal_pb2.Record``. wandb >= 0.19 no longer ships a reader.
"""

import json
import struct

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path):
    data = open(path, "rb").read()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        buf = payload if kind in (FULL, FIRST) else buf + payload
        if kind in (FULL, LAST):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(buf)
            yield rec


def history(path):
    """Logged rows: list of dicts (values decoded from JSON)."""
    return [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            for r in records(path) if r.WhichOneof("record_type") == "history"]


def metric_definitions(path):
    """``{name or glob: step_metric}`` from ``define_metric`` calls."""
    out = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "metric":
            out[r.metric.name or r.metric.glob_name] = r.metric.step_metric
    return out


def run_info(path):
    for r in records(path):
        if r.WhichOneof("record_type") == "run":
            return {"job_type": r.run.job_type, "group": r.run.run_group, "name": r.run.display_name,
                    "tags": list(r.run.tags), "project": r.run.project, "id": r.run.run_id}


def run_config(path):
    """The run's config as logged (``{key: value}``, W&B's own ``_wandb`` entry left out)."""
    for r in records(path):
        if r.WhichOneof("record_type") == "run":
            return {i.key: json.loads(i.value_json) for i in r.run.config.update if i.key != "_wandb"}


def run_summary(path):
    """The run's summary after its last update (``{key: value}``)."""
    out = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "summary":
            for i in r.summary.update:
                out[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
    return out


def exit_code(path):
    """The exit code the run finished with (``None`` if it never finished)."""
    for r in records(path):
        if r.WhichOneof("record_type") == "exit":
            return r.exit.exit_code
    return None
