"""A discrete-event model (SimPy) of the wall time of one ES generation and of one TRPO iteration on
``W`` workers, from 1 to the paper's 1,440; times in seconds, sizes in bytes.

**ES** (Salimans et al. 2017, arXiv 1703.03864, Sec. 2.1 and Algorithm 2): the coordinator does its
serial part of the generation (ask, fitness shaping, update, merging the observation statistics), then
sends the centre to every worker. Workers and coordinator share the noise and the seeds (the shared-seed
trick), so a piece of work is a list of seeds, not of perturbation vectors (:class:`ESCosts` also prices
the full vectors, to show what the trick saves). The population is cut into pieces exactly as the
harness's scheduler cuts it (:func:`harness.workers.scheduler.split_episodes`, guided self-scheduling);
an idle worker that has the centre takes the next piece, runs its episodes one after another and sends
their results back; the generation waits for its slowest worker. The coordinator is one process: its
CPU is one resource that every piece dispatch and every result collection holds in turn, and its link is
two (outbound, inbound), each carrying one message at a time.

**TRPO** (Schulman et al. 2015, arXiv 1502.05477, Sec. 5, the single-path sampler; batch, then update):
the batch of ``batch_steps`` timesteps is sampled in parallel, split as evenly as possible over the
workers; the samples go back to the coordinator; the coordinator runs the serial update (advantages,
conjugate gradient, line search); the new policy is sent to every worker.

What is measured (per run, by the caller: :class:`ESCosts`, :class:`TRPOCosts`): seconds per timestep
on one core, the observed episode lengths, the coordinator's serial seconds, a backend's seconds per
piece, the bytes of each message. What is assumed: the cluster's numbers (:class:`Cluster`: one latency
and one bandwidth for every message, a message ``n`` bytes long holds its link ``n / bandwidth`` s and
then takes the latency to arrive); one coordinator whose link every message goes through (with one copy of
the centre, or of TRPO's policy, a machine when ``Cluster.workers_per_machine`` > 1, as Salimans et al.'s
Redis relay gave; else every worker gets its own); single-core
workers, all equally fast apart from a mean-one lognormal slowdown per episode (ES) or per worker
(TRPO); the workers' own links never limit; no failures, no retries, no start-up cost. Episode lengths
are resampled with replacement, independently of the parameters. A transfer of ``b`` bytes costs
``b / bandwidth`` s however small ``b`` (no packet or protocol overhead).

The model extrapolates: its costs come from a machine of 2 cores, its cluster is stated, not measured,
and nothing checks its times beyond the measured points. Read its numbers as what these assumptions
imply, not as measurements.
"""

from __future__ import annotations

import collections
import math
import numbers
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import simpy

from harness.workers.scheduler import split_episodes


def _check_cost(owner: str, name: str, value: object) -> None:
    """``value`` is a finite number >= 0, or a ValueError naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


def _check_count(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _slowdowns(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """``n`` mean-one lognormal factors: ``exp(N(-sigma^2 / 2, sigma^2))``; exactly 1.0 each for sigma 0."""
    return rng.lognormal(mean=-(sigma**2) / 2, sigma=sigma, size=n)


@dataclass(frozen=True)
class Cluster:
    """A stated cluster: one coordinator and ``W`` single-core workers joined by a network.

    :param latency_s: one-way latency of a message, seconds.
    :param bandwidth_Bps: bytes per second of each link (1.25e9: 10 Gb/s); the coordinator's link, one
        outbound and one inbound, is shared by all its messages. ``math.inf``: transfers take no time.
    :param name: a label for tables and figures.
    :param workers_per_machine: workers on one machine, which receive the ES centre as one message and share
        it (Salimans et al.'s Redis relay, one copy a machine: 1,440 cores on 80 machines is 18); 1: each worker
        gets its own copy.
    :raises ValueError: for a negative or non-finite latency, a bandwidth that is not > 0, or
        ``workers_per_machine < 1``.
    """

    latency_s: float = 1e-4
    bandwidth_Bps: float = 1.25e9
    name: str = "10 Gb/s, 0.1 ms"
    workers_per_machine: int = 1

    def __post_init__(self) -> None:
        _check_cost("Cluster", "latency_s", self.latency_s)
        b = self.bandwidth_Bps
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not b > 0:
            raise ValueError(f"Cluster.bandwidth_Bps must be > 0 (math.inf allowed), got {b!r}")
        _check_count("Cluster.workers_per_machine", self.workers_per_machine)

    def transfer_s(self, nbytes: float) -> float:
        """Seconds ``nbytes`` bytes hold a link (latency not included); 0 for infinite bandwidth."""
        return nbytes / self.bandwidth_Bps


@dataclass(frozen=True, eq=False)
class ESCosts:
    """The measured terms of one ES generation (per-run calibration). Equality is identity (it holds an array).

    :param step_s: seconds of simulation and policy per timestep on one worker core.
    :param episode_lengths: observed episode lengths, timesteps, shape ``(n,)``, ``n >= 1``, each > 0;
        resampled with replacement, one per episode. Stored as a read-only float64 copy.
    :param coordinator_s: serial seconds per generation at the coordinator (ask, shaping, update,
        merging the observation statistics).
    :param piece_overhead_s: seconds the coordinator's backend spends per piece (pickling, dispatch,
        collecting): half when it hands the piece out, half when it collects the results.
    :param bytes_per_piece_out: bytes of a piece message's fixed part (coordinator to worker).
    :param bytes_per_episode_out: bytes per episode in a piece message: tens for a seed (Salimans et al.'s
        shared-seed trick), ``8 * d`` for a full perturbation of ``d`` float64 parameters.
    :param bytes_per_episode_in: result bytes per episode (worker to coordinator).
    :param broadcast_bytes: bytes each worker receives once per generation (the centre, ``8 * d``, and the
        observation normalization); 0: no broadcast at all (not even its latency).
    :param straggler_sigma: sigma of a mean-one lognormal slowdown drawn per episode; 0 for none.
    :param episode_overhead_s: a worker's fixed seconds per episode besides its timesteps (the reset, the
        observation statistics, the result), on the worker, not slowed down.
    :raises ValueError: for a negative or non-finite field (named), or empty, non-finite or non-positive
        episode lengths.
    """

    step_s: float
    episode_lengths: np.ndarray
    coordinator_s: float
    piece_overhead_s: float
    bytes_per_piece_out: float
    bytes_per_episode_out: float
    bytes_per_episode_in: float
    broadcast_bytes: float
    straggler_sigma: float = 0.0
    episode_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "episode_overhead_s",
            "step_s",
            "coordinator_s",
            "piece_overhead_s",
            "bytes_per_piece_out",
            "bytes_per_episode_out",
            "bytes_per_episode_in",
            "broadcast_bytes",
            "straggler_sigma",
        ):
            _check_cost("ESCosts", name, getattr(self, name))
        lengths = np.array(self.episode_lengths, dtype=np.float64)
        if lengths.ndim != 1 or lengths.size == 0:
            raise ValueError(f"ESCosts.episode_lengths must be a non-empty 1-D array, got shape {lengths.shape}")
        if not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
            raise ValueError("ESCosts.episode_lengths must be finite and > 0")
        lengths.flags.writeable = False
        object.__setattr__(self, "episode_lengths", lengths)


@dataclass(frozen=True)
class TRPOCosts:
    """The measured terms of one TRPO iteration (per-run calibration).

    :param step_s: seconds per environment timestep on one core, the policy's forward pass included.
    :param batch_steps: timesteps per iteration (1024 for rl-baselines3-zoo's HalfCheetah, 25000 for
        modular_rl's MuJoCo runs), an integer >= 1.
    :param update_s: serial seconds of the update (advantage estimation, conjugate gradient, line search),
        measured on one machine and taken to be independent of ``W``.
    :param bytes_per_step: bytes a worker sends back per timestep (observation, action, reward,
        log-probability, value, ...).
    :param policy_bytes: bytes of the parameters sent to every worker after the update; 0: no broadcast.
    :param straggler_sigma: sigma of a mean-one lognormal slowdown drawn per worker; 0 for none.
    :raises ValueError: for a negative or non-finite field, or ``batch_steps < 1`` (named).
    """

    step_s: float
    batch_steps: int
    update_s: float
    bytes_per_step: float
    policy_bytes: float
    straggler_sigma: float = 0.0

    def __post_init__(self) -> None:
        _check_count("TRPOCosts.batch_steps", self.batch_steps)
        for name in ("step_s", "update_s", "bytes_per_step", "policy_bytes", "straggler_sigma"):
            _check_cost("TRPOCosts", name, getattr(self, name))


def _send(
    env: simpy.Environment, link: simpy.Resource, cluster: Cluster, nbytes: float
) -> Generator[simpy.Event, None, None]:
    """A message: wait for ``link``, hold it ``nbytes / bandwidth`` s, then the latency to arrive."""
    with link.request() as turn:
        yield turn
        yield env.timeout(cluster.transfer_s(nbytes))
    yield env.timeout(cluster.latency_s)


def _hold(env: simpy.Environment, cpu: simpy.Resource, seconds: float) -> Generator[simpy.Event, None, None]:
    """Wait for the coordinator's CPU and hold it ``seconds``."""
    with cpu.request() as turn:
        yield turn
        yield env.timeout(seconds)


#: How a generation's episodes are cut into pieces: ``guided``, as the harness's scheduler does
#: (:func:`~harness.workers.scheduler.split_episodes`, shrinking pieces); ``equal``, one piece a worker (as close to
#: equal as can be), the fewest messages.
SCHEDULES = ("guided", "equal")


def simulate_es_generation(
    costs: ESCosts,
    cluster: Cluster,
    workers: int,
    population: int,
    rng: np.random.Generator,
    schedule: str = "guided",
) -> float:
    """Wall seconds of one ES generation of ``population`` episodes on ``workers`` workers (the module
    docstring; Salimans et al. 2017, Sec. 2.1 and Algorithm 2).

    Each episode's length and slowdown are drawn from ``rng`` up front, by episode index (lengths, then
    slowdowns), so one seed gives the same episodes for every ``workers``. The generation ends when
    every result is collected and every worker has the centre (the latter matters only when there are
    more workers than pieces).

    :param costs: the measured terms.
    :param cluster: the stated network.
    :param workers: ``W``, an integer >= 1.
    :param population: episodes per generation, an integer >= 1.
    :param rng: the generator of every draw; advanced by ``2 * population`` draws or so.
    :param schedule: how the episodes are cut into pieces (:data:`SCHEDULES`).
    :returns: seconds, a float > 0 unless every cost is 0.
    :raises ValueError: for ``workers < 1``, ``population < 1`` or an unknown ``schedule``.
    """
    workers = _check_count("workers", workers)
    population = _check_count("population", population)
    lengths = rng.choice(costs.episode_lengths, size=population)
    episode_s = lengths * costs.step_s * _slowdowns(rng, costs.straggler_sigma, population) + costs.episode_overhead_s
    queue: collections.deque[tuple[int, int]] = collections.deque()
    start = 0
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    min_size = 1 if schedule == "guided" else math.ceil(population / workers)
    for piece in split_episodes(range(population), workers, min_size):
        queue.append((start, len(piece)))
        start += len(piece)

    env = simpy.Environment()
    cpu, outbound, inbound = (simpy.Resource(env, capacity=1) for _ in range(3))
    half_overhead = costs.piece_overhead_s / 2

    def worker() -> Generator[simpy.Event, None, None]:
        while queue:
            first, n = queue.popleft()
            yield from _hold(env, cpu, half_overhead)
            yield from _send(env, outbound, cluster, costs.bytes_per_piece_out + n * costs.bytes_per_episode_out)
            yield env.timeout(episode_s[first : first + n].sum())
            yield from _send(env, inbound, cluster, n * costs.bytes_per_episode_in)
            yield from _hold(env, cpu, half_overhead)

    def arrive_then_work(k: int) -> Generator[simpy.Event, None, None]:
        yield env.timeout(cluster.latency_s)
        for _ in range(k):
            env.process(worker())

    def coordinator() -> Generator[simpy.Event, None, None]:
        yield env.timeout(costs.coordinator_s)
        per_machine = cluster.workers_per_machine
        for first in range(0, workers, per_machine):  # one message per machine, shared by its workers
            k = min(per_machine, workers - first)
            if not costs.broadcast_bytes:
                for _ in range(k):
                    env.process(worker())
                continue
            # One message at a time, each released before the next is asked for: a piece handed to a
            # worker that already has the centre takes the link in between.
            with outbound.request() as turn:
                yield turn
                yield env.timeout(cluster.transfer_s(costs.broadcast_bytes))
            env.process(arrive_then_work(k))

    env.process(coordinator())
    env.run()
    return float(env.now)


def simulate_es(
    costs: ESCosts,
    cluster: Cluster,
    workers: int,
    population: int,
    generations: int,
    seed: int | np.random.SeedSequence,
    schedule: str = "guided",
) -> np.ndarray:
    """Wall seconds of ``generations`` successive ES generations (:func:`simulate_es_generation`, with
    ``schedule``).

    :param seed: an int or a ``SeedSequence`` (e.g. from :func:`harness.seeding.seed_sequence`): every draw
        comes from ``numpy.random.default_rng(seed)``, so one seed gives one output, for any ``workers``
        the same episodes.
    :returns: shape ``(generations,)``, float64, seconds.
    :raises ValueError: for ``generations < 1``, ``workers < 1`` or ``population < 1``.
    """
    generations = _check_count("generations", generations)
    rng = np.random.default_rng(seed)
    return np.array(
        [simulate_es_generation(costs, cluster, workers, population, rng, schedule) for _ in range(generations)]
    )


def simulate_trpo_iteration(costs: TRPOCosts, cluster: Cluster, workers: int, rng: np.random.Generator) -> float:
    """Wall seconds of one TRPO iteration on ``workers`` workers (the module docstring; Schulman et al. 2015):
    parallel sampling of the batch, its return to the coordinator, the serial update, the policy to every
    worker; the iteration ends when the last worker has the policy.

    The batch is split as evenly as possible: each worker runs ``ceil`` or ``floor`` of
    ``batch_steps / workers`` timesteps (with more workers than timesteps, ``batch_steps`` workers run one
    each and the rest idle), slowed down by one mean-one lognormal draw per busy worker.

    :param workers: ``W``, an integer >= 1.
    :param rng: the generator of the slowdowns; advanced by ``min(workers, batch_steps)`` draws.
    :returns: seconds, at least ``costs.update_s``.
    :raises ValueError: for ``workers < 1``.
    """
    workers = _check_count("workers", workers)
    base, extra = divmod(costs.batch_steps, workers)
    steps = [base + 1] * extra + [base] * (workers - extra if base else 0)
    sampling_s = np.array(steps, dtype=np.float64) * costs.step_s * _slowdowns(rng, costs.straggler_sigma, len(steps))

    env = simpy.Environment()
    outbound, inbound = simpy.Resource(env, capacity=1), simpy.Resource(env, capacity=1)

    def sampler(seconds: float, n_steps: int) -> Generator[simpy.Event, None, None]:
        yield env.timeout(seconds)
        yield from _send(env, inbound, cluster, n_steps * costs.bytes_per_step)

    def coordinator() -> Generator[simpy.Event, None, None]:
        yield env.all_of([env.process(sampler(s, n)) for s, n in zip(sampling_s, steps)])
        yield env.timeout(costs.update_s)
        if costs.policy_bytes:
            for _ in range(math.ceil(workers / cluster.workers_per_machine)):  # one copy a machine
                env.process(_send(env, outbound, cluster, costs.policy_bytes))

    env.process(coordinator())
    env.run()
    return float(env.now)


def simulate_trpo(
    costs: TRPOCosts, cluster: Cluster, workers: int, iterations: int, seed: int | np.random.SeedSequence
) -> np.ndarray:
    """Wall seconds of ``iterations`` successive TRPO iterations (:func:`simulate_trpo_iteration`).

    :param seed: an int or a ``SeedSequence``; every draw comes from ``numpy.random.default_rng(seed)``.
    :returns: shape ``(iterations,)``, float64, seconds.
    :raises ValueError: for ``iterations < 1`` or ``workers < 1``.
    """
    iterations = _check_count("iterations", iterations)
    rng = np.random.default_rng(seed)
    return np.array([simulate_trpo_iteration(costs, cluster, workers, rng) for _ in range(iterations)])


def speedup(times_1: np.ndarray, times_w: np.ndarray) -> float:
    """The speedup of ``W`` workers over one: ``mean(times_1) / mean(times_w)``.

    :param times_1: seconds per generation (or iteration) on one worker, shape ``(n,)``.
    :param times_w: the same on ``W`` workers, shape ``(m,)``; best simulated with the same seed.
    :raises ValueError: for an empty array, or times that are not finite and > 0.
    """
    means = []
    for name, times in (("times_1", times_1), ("times_w", times_w)):
        t = np.asarray(times, dtype=np.float64)
        if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise ValueError(f"{name} must be non-empty, finite and > 0")
        means.append(t.mean())
    return float(means[0] / means[1])
