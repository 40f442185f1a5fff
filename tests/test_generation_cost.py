"""The report's generation-cost table (issue 32): the serial part of a generation, from the ES family's
rollout seconds and traffic (harness.tracking.EPOCH_COST_COLUMNS). Hand-made rows with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.report.aggregate import generation_cost_table


def _made(run, algo, n, backend, train, rollout, sent, wall_clock=True):
    metrics = pd.DataFrame(
        {
            "run": run,
            "epoch": np.arange(len(train), dtype=float),
            "train_time_s": train,
            "rollout_time_s": rollout,
            "bytes_sent": sent,
            "bytes_received": [s / 2 for s in sent],
        }
    )
    info = {
        "run": run,
        "env": "Hopper",
        "algo": algo,
        "workers_n": n,
        "workers_backend": backend,
        "engine": "mujoco",
        "wall_clock": wall_clock,
    }
    return metrics, info


def _trpo():
    """A TRPO run's rows and run record: no cost column (SB3 collects its own rollouts)."""
    info = {"run": "t", "env": "Hopper", "algo": "trpo", "workers_n": 1, "workers_backend": "serial"}
    return pd.DataFrame({"run": "t", "epoch": [1.0], "train_time_s": [5.0]}), {
        **info,
        "engine": "gymnasium",
        "wall_clock": True,
    }


def test_a_generations_serial_part_is_its_training_time_minus_its_rollouts():
    nan = math.nan
    # step-0 row (no training), then generations of 1.0, 1.5 and 1.2 s training with 0.8, 1.2, 0.9 s rollouts
    a = _made("a", "es", 2, "process", [0.0, 1.0, 2.5, 3.7], [nan, 0.8, 1.2, 0.9], [nan, 100, 100, 100])
    b = _made("b", "es", 2, "process", [0.0, 2.0, 4.0], [nan, 1.0, 1.0], [nan, 300, 300])
    busy = _made("busy", "es", 2, "process", [0.0, 9.0], [nan, 1.0], [nan, 999], wall_clock=False)
    trpo = _trpo()
    parts = [a, b, busy, trpo]
    metrics = pd.concat([m for m, _ in parts], ignore_index=True)
    runs = pd.DataFrame([i for _, i in parts])
    table = generation_cost_table(metrics, runs)
    assert len(table) == 1  # TRPO has no rollout column, the busy run is left out
    row = table.iloc[0]
    assert (row["algo"], row["workers_n"], row["backend"], row["n_runs"], row["generations"]) == (
        "es",
        2,
        "process",
        2,
        5,
    )
    # run a: rollouts median 0.9, serial parts 0.2, 0.3, 0.3 (median 0.3), share 0.8 / 3.7; run b: 1.0, 1.0, 0.5
    assert row["rollout_s"] == pytest.approx((0.9 + 1.0) / 2)
    assert row["coordinator_s"] == pytest.approx((0.3 + 1.0) / 2)
    assert row["coordinator_share"] == pytest.approx((0.8 / 3.7 + 0.5) / 2)
    assert row["bytes_sent"] == pytest.approx(200.0) and row["bytes_received"] == pytest.approx(100.0)


def test_no_run_with_the_columns_gives_an_empty_table():
    metrics, info = _trpo()
    runs = pd.DataFrame([info])
    assert generation_cost_table(metrics, runs).empty
