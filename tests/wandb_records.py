"""Read an offline W&B run file (``run-*.wandb``) back, for tests: records and history from
:mod:`harness.wandb_files`, and what else a test asks of a run file."""

import json

from harness.wandb_files import history, records  # noqa: F401  (the reader the harness itself uses)


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
            return {
                "job_type": r.run.job_type,
                "group": r.run.run_group,
                "name": r.run.display_name,
                "tags": list(r.run.tags),
                "project": r.run.project,
                "id": r.run.run_id,
            }


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
