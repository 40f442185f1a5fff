"""The discrete-event model of an ES generation and a TRPO iteration (harness.bench.simulate): hand-computed
times where the model has a closed form (one worker; dyadic costs, so that float sums are exact), and the
shape of its scaling (near-linear, saturation, bandwidth, stragglers, TRPO's serial floor). Nothing is timed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from harness.bench.simulate import (
    Cluster,
    ESCosts,
    TRPOCosts,
    simulate_es,
    simulate_es_generation,
    simulate_trpo,
    simulate_trpo_iteration,
    speedup,
)
from harness.workers.scheduler import split_episodes

FREE = Cluster(latency_s=0.0, bandwidth_Bps=math.inf, name="free")
HUMANOID_D = 160_000  # parameters of a 256-256 MLP on Humanoid, about


def es_costs(**changes) -> ESCosts:
    """Humanoid-like costs: 50 us a timestep, episodes of 500-1000 timesteps, seeds on the wire."""
    base = dict(
        step_s=5e-5,
        episode_lengths=np.random.default_rng(0).integers(500, 1001, 200),
        coordinator_s=0.01,
        piece_overhead_s=5e-5,
        bytes_per_piece_out=200,
        bytes_per_episode_out=40,
        bytes_per_episode_in=40,
        broadcast_bytes=8 * 1000,
        straggler_sigma=0.0,
    )
    return ESCosts(**{**base, **changes})


def trpo_costs(**changes) -> TRPOCosts:
    """rl-baselines3-zoo's HalfCheetah batch with dyadic costs."""
    base = dict(step_s=2.0**-12, batch_steps=1024, update_s=0.5, bytes_per_step=0, policy_bytes=0)
    return TRPOCosts(**{**base, **changes})


def test_one_worker_without_communication_is_the_sum_of_its_parts():
    costs = es_costs(
        step_s=2.0**-10,
        episode_lengths=np.array([64]),
        coordinator_s=0.5,
        piece_overhead_s=2.0**-6,
        bytes_per_piece_out=0,
        bytes_per_episode_out=0,
        bytes_per_episode_in=0,
        broadcast_bytes=0,
    )
    population = 50
    n_pieces = len(split_episodes(range(population), 1, 1))
    t = simulate_es_generation(costs, FREE, 1, population, np.random.default_rng(0))
    assert t == 0.5 + population * 64 * 2.0**-10 + n_pieces * 2.0**-6
    # Bytes on an infinitely fast link with no latency cost nothing either.
    priced = dataclasses.replace(costs, bytes_per_piece_out=1e3, bytes_per_episode_out=1e6, broadcast_bytes=1e9)
    assert simulate_es_generation(priced, FREE, 1, population, np.random.default_rng(0)) == t


def test_one_worker_pays_every_message_in_turn():
    lat, bw = 2.0**-8, 2.0**20
    costs = es_costs(
        step_s=2.0**-10,
        episode_lengths=np.array([64]),
        coordinator_s=0.5,
        piece_overhead_s=2.0**-6,
        bytes_per_piece_out=2.0**10,
        bytes_per_episode_out=2.0**6,
        bytes_per_episode_in=2.0**5,
        broadcast_bytes=2.0**12,
    )
    population = 10
    pieces = len(split_episodes(range(population), 1, 1))
    assert pieces == 4  # 5, 3, 1, 1
    expected = (
        0.5
        + (2.0**12 / bw + lat)  # the centre
        + pieces * (2.0**-6 + 2 * lat)  # dispatch and collection, a latency each way
        + (pieces * 2.0**10 + population * (2.0**6 + 2.0**5)) / bw  # pieces out, results in
        + population * 64 * 2.0**-10  # the episodes
    )
    t = simulate_es_generation(costs, Cluster(latency_s=lat, bandwidth_Bps=bw), 1, population, np.random.default_rng(0))
    assert t == pytest.approx(expected, rel=1e-12, abs=0)


def test_speedup_is_near_linear_when_the_population_dwarfs_the_workers():
    costs, cluster = es_costs(), Cluster()
    s = speedup(simulate_es(costs, cluster, 1, 1000, 3, 0), simulate_es(costs, cluster, 8, 1000, 3, 0))
    assert 7 < s < 8


def test_workers_beyond_the_population_do_not_help():
    costs, cluster, population = es_costs(), Cluster(), 20
    times = [simulate_es(costs, cluster, w, population, 2, 0).mean() for w in (10, 20, 40, 80, 160)]
    assert times[1] < times[0]  # up to one episode per worker, workers help
    assert times[2] >= times[1] and times[3] >= times[2] and times[4] >= times[3]


def test_full_perturbation_vectors_saturate_the_coordinators_link_where_seeds_do_not():
    seeds = es_costs(broadcast_bytes=8 * HUMANOID_D)
    vectors = dataclasses.replace(seeds, bytes_per_episode_out=8 * HUMANOID_D)
    cluster = Cluster()  # 10 Gb/s: 10,000 vectors of 1.28 MB hold the link 10.24 s
    at_1440 = [simulate_es(c, cluster, 1440, 10_000, 1, 0)[0] for c in (seeds, vectors)]
    assert at_1440[1] > 10.24 > 3 * at_1440[0]
    at_1 = [simulate_es(c, cluster, 1, 10_000, 1, 0)[0] for c in (seeds, vectors)]
    assert 1 < at_1[1] / at_1[0] < 1.05


def test_stragglers_slow_a_generation_down():
    costs, cluster = es_costs(), Cluster()
    steady = simulate_es(costs, cluster, 32, 64, 10, 1).mean()
    straggling = simulate_es(dataclasses.replace(costs, straggler_sigma=0.5), cluster, 32, 64, 10, 1).mean()
    assert straggling > 1.1 * steady


def test_the_straggler_slowdown_has_mean_one():
    # One worker runs every episode: its time is the slowdowns' sum, near the steady time for 2,000 episodes
    # (the mean of 2,000 draws with sigma 0.5 is within 5% of its expectation with overwhelming odds).
    costs = es_costs(piece_overhead_s=0.0, coordinator_s=0.0)
    steady = simulate_es(costs, FREE, 1, 2000, 1, 3)[0]
    straggling = simulate_es(dataclasses.replace(costs, straggler_sigma=0.5), FREE, 1, 2000, 1, 3)[0]
    assert straggling != steady
    assert straggling == pytest.approx(steady, rel=0.05)


def test_one_seed_one_output():
    costs, cluster = es_costs(straggler_sigma=0.5), Cluster()
    a = simulate_es(costs, cluster, 4, 40, 3, 7)
    assert a.shape == (3,)
    np.testing.assert_array_equal(a, simulate_es(costs, cluster, 4, 40, 3, 7))
    np.testing.assert_array_equal(a, simulate_es(costs, cluster, 4, 40, 3, np.random.SeedSequence(7)))
    assert not np.array_equal(a, simulate_es(costs, cluster, 4, 40, 3, 8))
    trpo = trpo_costs(straggler_sigma=0.5)
    b = simulate_trpo(trpo, cluster, 4, 3, 7)
    assert b.shape == (3,)
    np.testing.assert_array_equal(b, simulate_trpo(trpo, cluster, 4, 3, 7))
    assert not np.array_equal(b, simulate_trpo(trpo, cluster, 4, 3, 8))


def test_trpo_on_one_worker_without_communication_is_sampling_then_update():
    costs = trpo_costs()
    assert simulate_trpo_iteration(costs, FREE, 1, np.random.default_rng(0)) == 1024 * 2.0**-12 + 0.5
    # 10 timesteps on 3 workers: 4, 3, 3; the slowest worker sets the pace.
    small = trpo_costs(batch_steps=10)
    assert simulate_trpo_iteration(small, FREE, 3, np.random.default_rng(0)) == 4 * 2.0**-12 + 0.5


def test_trpo_update_is_a_serial_floor():
    costs = trpo_costs(bytes_per_step=8 * 40, policy_bytes=8 * 10_000)
    cluster = Cluster()
    many = simulate_trpo(costs, cluster, 1440, 2, 0)
    assert np.all(many >= costs.update_s)
    assert np.all(many < simulate_trpo(costs, cluster, 1, 2, 0))
    # Past one timestep per worker, more workers only add broadcast messages.
    assert np.all(many >= simulate_trpo(costs, cluster, 1024, 2, 0))
    assert speedup(simulate_trpo(costs, cluster, 1, 1, 0), many) < (1024 * 2.0**-12 + 0.5) / 0.5


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Cluster(latency_s=-1e-4), "latency_s"),
        (lambda: Cluster(latency_s=math.inf), "latency_s"),
        (lambda: Cluster(bandwidth_Bps=0), "bandwidth_Bps"),
        (lambda: Cluster(bandwidth_Bps=math.nan), "bandwidth_Bps"),
        (lambda: es_costs(step_s=-1.0), "step_s"),
        (lambda: es_costs(coordinator_s=math.nan), "coordinator_s"),
        (lambda: es_costs(piece_overhead_s=-1e-3), "piece_overhead_s"),
        (lambda: es_costs(bytes_per_episode_out=math.inf), "bytes_per_episode_out"),
        (lambda: es_costs(broadcast_bytes=-8), "broadcast_bytes"),
        (lambda: es_costs(straggler_sigma=-0.1), "straggler_sigma"),
        (lambda: es_costs(episode_lengths=np.array([])), "episode_lengths"),
        (lambda: es_costs(episode_lengths=np.array([100, 0])), "episode_lengths"),
        (lambda: es_costs(episode_lengths=np.array([100, np.nan])), "episode_lengths"),
        (lambda: trpo_costs(batch_steps=0), "batch_steps"),
        (lambda: trpo_costs(update_s=-0.5), "update_s"),
        (lambda: trpo_costs(policy_bytes=math.nan), "policy_bytes"),
        (lambda: simulate_es(es_costs(), Cluster(), 0, 10, 1, 0), "workers"),
        (lambda: simulate_es(es_costs(), Cluster(), 2, 0, 1, 0), "population"),
        (lambda: simulate_es(es_costs(), Cluster(), 2, 10, 0, 0), "generations"),
        (lambda: simulate_es(es_costs(), Cluster(), 2.5, 10, 1, 0), "workers"),
        (lambda: simulate_trpo(trpo_costs(), Cluster(), 0, 1, 0), "workers"),
        (lambda: simulate_trpo(trpo_costs(), Cluster(), 2, 0, 0), "iterations"),
        (lambda: speedup(np.array([]), np.array([1.0])), "times_1"),
        (lambda: speedup(np.array([1.0]), np.array([0.0])), "times_w"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_episode_lengths_are_a_read_only_copy():
    lengths = np.array([100.0, 200.0])
    costs = es_costs(episode_lengths=lengths)
    lengths[0] = -1.0
    assert costs.episode_lengths[0] == 100.0
    with pytest.raises(ValueError):
        costs.episode_lengths[0] = 5.0


def test_one_piece_a_worker_sends_fewer_messages_and_wins_when_pieces_are_dear():
    """schedule="equal" cuts the population into one piece a worker: with a large per-piece cost on the
    coordinator and many workers it is faster than the harness's shrinking pieces; an unknown schedule is refused."""
    costs = ESCosts(
        step_s=1e-4,
        episode_lengths=np.array([1000.0]),
        coordinator_s=0.0,
        piece_overhead_s=1e-2,
        bytes_per_piece_out=0.0,
        bytes_per_episode_out=0.0,
        bytes_per_episode_in=0.0,
        broadcast_bytes=0.0,
    )
    guided = simulate_es(costs, Cluster(0.0, math.inf), 100, 1000, 1, 0)[0]
    equal = simulate_es(costs, Cluster(0.0, math.inf), 100, 1000, 1, 0, schedule="equal")[0]
    # 100 pieces of 10 episodes (1 s of work each), handed out while the first ones run: the work and the
    # hand-outs overlap
    assert 10 * 1000 * 1e-4 < equal < guided
    with pytest.raises(ValueError, match="schedule must be one of guided, equal"):
        simulate_es(costs, Cluster(), 2, 10, 1, 0, schedule="static")
