"""From ``measured.json`` (:mod:`harness.bench.scale`) to the wall-time model (:mod:`harness.bench.simulate`):
calibration, validation against every measured point, and projections to 1,440 workers.

**Calibration** (each term from the fewest cells that say it, all on one process worker):

* a worker's fixed seconds per episode (reset, observation statistics, result) and the coordinator's per piece:
  per size, the one-step-episode cells on one process worker at two populations (``coordinator``), whose rollout
  seconds are ``pieces * o_piece + episodes * o_episode`` (a one-step episode's one step counted in
  ``o_episode``); the backend's seconds per piece: the one-step-episode cells (``overhead``) of that backend and
  ``workers.n``, their rollout seconds less their episodes' (HalfCheetah linear's ``o_episode``, shared by the
  workers) over their pieces;
* the coordinator's serial seconds, ``a + b * population``: per size, the one-step-episode cells at two
  populations (``coordinator``: a generation's seconds outside the workers' calls, the runner's metrics row and
  checkpoint included); forming full vectors (``workers.ship=vectors``) adds, per episode, what the size's
  ``vectors`` cell spent outside the workers beyond its ``seeds`` cell;
* seconds per timestep: per size, the ``seeds`` cell on one process worker, its rollout seconds less its pieces'
  and its episodes' overhead, over its timesteps; the episode lengths: every episode of that size's cells;
* bytes: per episode, each cell's own ``bytes_sent`` and ``bytes_received`` over its population.

**Validation**: every ``generation`` cell is predicted from the calibration, with the local link of one machine
(no latency, no bandwidth limit: the ``process`` backend's arrays travel in shared memory, Ray's object store is
on the same node) and the cell's own backend, workers and population, and the error stated. The calibration
cells are among them; the rest (two workers, the other backend, the other ship mode) are predictions.

**Projections** (a stated cluster, :data:`CLUSTER`): the speedup of a generation against workers, per size
and ship mode, at the paper's population (:data:`PAPER_POPULATION`); and the time to a threshold of
HalfCheetah against workers, ES and TRPO, from the shipped learning curves (their steps to the threshold) and
the simulated time per generation or iteration.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench.simulate import Cluster, ESCosts, TRPOCosts, simulate_es, simulate_trpo

#: The stated cluster of the projections: 10 Gb/s and 0.1 ms a message, 18 workers a machine sharing one copy of
#: the centre (Salimans et al.'s 1,440 cores were 80 machines: 18 each).
CLUSTER = Cluster(
    latency_s=1e-4, bandwidth_Bps=1.25e9, name="10 Gb/s, 0.1 ms, 18 workers a machine", workers_per_machine=18
)
#: One machine's own link in the validation: no latency, no bandwidth limit.
LOCAL = Cluster(latency_s=0.0, bandwidth_Bps=math.inf, name="one machine")
#: The worker counts of the projections: 1 to 1,440 (the paper's 18 and 1,440, and 80, among them).
WORKERS = (1, 2, 4, 8, 18, 36, 80, 144, 288, 576, 1008, 1440)
#: Episodes a generation in the speedup projection: the order of the starter's Humanoid config (at least 10,000
#: episodes a generation).
PAPER_POPULATION = 10_000
#: Per-episode slowdown of the projections (mean-one lognormal sigma): stated, not measured.
STRAGGLER_SIGMA = 0.1
#: Generations (iterations) simulated per point.
GENERATIONS = 5


def timed(r: dict) -> list[dict]:
    """The timed generations of a measured run (after its warm-up)."""
    return r["epochs"][r["warmup_epochs"] :]


def generation_s(r: dict) -> float:
    """A run's mean seconds per timed generation, its evaluation left out."""
    return float(np.mean([e["wall_s"] - e["eval_s"] for e in timed(r)]))


def rollout_s(r: dict) -> float:
    """A run's mean seconds per timed generation in the workers' calls."""
    return float(np.mean([e["rollout_s"] for e in timed(r)]))


def per_episode(r: dict, key: str) -> float:
    """A run's mean ``key`` (``bytes_sent``, ``bytes_received``) per training episode; 0 without a counter."""
    values = [e[key] for e in timed(r) if e[key] is not None]
    return float(np.mean(values)) / r["population"] if values else 0.0


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The model's measured terms (module docstring). Keys: sizes (:data:`harness.bench.scale.SIZES` labels),
    ``(size, ship)``, ``(backend, workers)``."""

    step_s: dict
    lengths: dict
    num_params: dict
    piece_overhead_s: dict
    coordinator: dict  # size -> (a, b): a + b * population seconds
    vectors_s_per_episode: dict
    bytes_out: dict  # (size, ship) -> bytes a training episode
    bytes_in: dict  # size -> bytes a training episode
    episode_overhead_s: dict  # size -> a worker's fixed seconds an episode (reset, statistics)
    size_piece_s: dict  # size -> seconds a piece on one process worker (its coordinator cells)

    def es_costs(self, size: str, ship: str, backend: str, population: int, local: bool, sigma: float = 0.0):
        """The :class:`ESCosts` of a generation of ``population`` episodes of ``size`` through ``backend``;
        ``local``: no broadcast message (one machine), else the centre, ``8 d`` bytes, to each machine."""
        a, b = self.coordinator[size]
        coordinator = a + b * population + (self.vectors_s_per_episode[size] * population if ship == "vectors" else 0)
        return ESCosts(
            step_s=self.step_s[size],
            episode_lengths=self.lengths[size],
            coordinator_s=max(coordinator, 0.0),
            piece_overhead_s=self.piece_overhead_s[(backend, 1)],
            bytes_per_piece_out=0.0,
            bytes_per_episode_out=self.bytes_out[(size, ship)],
            bytes_per_episode_in=self.bytes_in[size],
            broadcast_bytes=0.0 if local else 8.0 * self.num_params[size],
            straggler_sigma=sigma,
            episode_overhead_s=self.episode_overhead_s[size],
        )


def calibrate(measured: dict) -> Calibration:
    """The :class:`Calibration` of ``measured`` (``measured.json``).

    :raises ValueError: when a cell the calibration needs is missing or failed.
    """
    runs = [r for r in measured["es"] if "error" not in r]

    def cell(kind: str, **match) -> dict:
        for r in runs:
            if r["kind"] == kind and all(r[k] == v for k, v in match.items()):
                return r
        raise ValueError(f"measured.json has no {kind} cell {match} (or it failed)")

    sizes = sorted({r["size"] for r in runs if r["kind"] == "generation"})
    # one-step episodes on one process worker, at the fewest and the most episodes measured: their rollout seconds
    # are pieces * o_piece + episodes * o_episode, the rest of a generation the coordinator's a + b * episodes
    episode_overhead, piece, coordinator = {}, {}, {}
    for size in sizes:
        cells = sorted(
            (r for r in runs if r["kind"] == "coordinator" and r["size"] == size), key=lambda r: r["population"]
        )
        if len(cells) < 2:
            raise ValueError(f"measured.json has fewer than two coordinator cells of {size}")
        lo, hi = cells[0], cells[-1]
        (m0, m1), (p0, p1) = (lo["population"], hi["population"]), (len(lo["batch_sizes"]), len(hi["batch_sizes"]))
        o_piece, o_episode = np.linalg.solve([[p0, m0], [p1, m1]], [rollout_s(lo), rollout_s(hi)])
        piece[size], episode_overhead[size] = max(float(o_piece), 0.0), max(float(o_episode), 0.0)
        c0, c1 = (generation_s(r) - rollout_s(r) for r in (lo, hi))
        slope = (c1 - c0) / (m1 - m0)
        coordinator[size] = (c0 - slope * m0, slope)
    reference = "HalfCheetah linear" if "HalfCheetah linear" in episode_overhead else sizes[0]
    overhead = {}  # (backend, workers) -> seconds a piece on the coordinator: the overhead cells, less their episodes
    for r in runs:
        if r["kind"] == "overhead":
            episodes = r["population"] * episode_overhead[reference] / r["workers"]
            overhead[(r["backend"], r["workers"])] = max(rollout_s(r) - episodes, 0.0) / len(r["batch_sizes"])
    step_s, lengths, num_params, vectors, bytes_out, bytes_in = {}, {}, {}, {}, {}, {}
    for size in sizes:
        seeds = cell("generation", size=size, backend="process", workers=1, ship="seeds")
        pieces = len(seeds["batch_sizes"])
        steps = np.mean([e["timesteps"] for e in timed(seeds)])
        worker_s = rollout_s(seeds) - pieces * overhead[("process", 1)] - seeds["population"] * episode_overhead[size]
        step_s[size] = worker_s / steps
        lengths[size] = np.concatenate(
            [e["episode_lengths"] for r in runs if r["size"] == size and r["kind"] == "generation" for e in timed(r)]
        )
        num_params[size] = seeds["num_params"]
        vec = cell("generation", size=size, backend="process", workers=1, ship="vectors")
        outside = {k: generation_s(r) - rollout_s(r) for k, r in (("seeds", seeds), ("vectors", vec))}
        vectors[size] = max(outside["vectors"] - outside["seeds"], 0.0) / vec["population"]
        bytes_out[(size, "seeds")], bytes_out[(size, "vectors")] = (per_episode(r, "bytes_sent") for r in (seeds, vec))
        bytes_in[size] = per_episode(seeds, "bytes_received")
    return Calibration(
        step_s, lengths, num_params, overhead, coordinator, vectors, bytes_out, bytes_in, episode_overhead, piece
    )


def validation(measured: dict, cal: Calibration, generations: int = 20) -> pd.DataFrame:
    """Every ``generation`` and ``cluster`` cell, measured against predicted: columns ``setup`` (``one machine``,
    or ``two-node Ray cluster``), ``size``, ``ship``, ``backend``, ``workers``, ``population``, ``measured_s``,
    ``predicted_s``, ``error`` (predicted / measured - 1), ``calibration`` (the cell set a term of the model). A
    cluster cell is predicted with the overhead of two local Ray actors and the same local link (its nodes are on
    this machine)."""
    rows = []
    for r in measured["es"]:
        if "error" in r or r["kind"] not in ("generation", "cluster"):
            continue
        costs = cal.es_costs(r["size"], r["ship"], r["backend"], r["population"], local=True)
        costs = dataclasses.replace(costs, piece_overhead_s=cal.piece_overhead_s[(r["backend"], r["workers"])])
        predicted = float(simulate_es(costs, LOCAL, r["workers"], r["population"], generations, 0).mean())
        measured_s = generation_s(r)
        rows.append(
            {
                "setup": "two-node Ray cluster" if r["kind"] == "cluster" else "one machine",
                "size": r["size"],
                "ship": r["ship"],
                "backend": r["backend"],
                "workers": r["workers"],
                "population": r["population"],
                "measured_s": measured_s,
                "predicted_s": predicted,
                "error": predicted / measured_s - 1,
                "calibration": r["kind"] == "generation" and r["backend"] == "process" and r["workers"] == 1,
            }
        )
    return pd.DataFrame(rows)


def scaling(cal: Calibration, population: int = PAPER_POPULATION, workers=WORKERS) -> pd.DataFrame:
    """Simulated seconds per generation of ``population`` episodes against workers, on :data:`CLUSTER`, per size
    (Humanoid's also with 1000-step episodes, a walking policy's, beside its measured untrained ones), ship mode and
    schedule (``guided``, the harness's; ``equal``, one piece a worker, with seeds only), with the
    ``process`` backend's seconds a piece: columns ``size``, ``ship``, ``schedule``, ``workers``, ``population``,
    ``generation_s``, ``speedup`` (over one worker), ``bytes_per_generation`` (through the coordinator's link)."""
    rows = []
    variants = [(size, size, None) for size in cal.step_s]
    # Humanoid's measured episodes are an untrained policy's (tens of steps); the paper's 10-minute run ended with
    # a walking policy, whose episodes run to the 1000-step limit: each Humanoid size again at that length
    variants += [(f"{size}, 1000-step episodes", size, 1000.0) for size in cal.step_s if size.startswith("Humanoid")]
    for label, size, length in variants:
        for ship, schedule in (("seeds", "guided"), ("vectors", "guided"), ("seeds", "equal")):
            costs = cal.es_costs(size, ship, "process", population, local=False, sigma=STRAGGLER_SIGMA)
            if length is not None:
                costs = dataclasses.replace(costs, episode_lengths=np.array([length]))
            base = None
            for w in workers:
                t = float(simulate_es(costs, CLUSTER, w, population, GENERATIONS, 0, schedule).mean())
                base = base or t
                machines = math.ceil(w / CLUSTER.workers_per_machine)
                traffic = population * (costs.bytes_per_episode_out + costs.bytes_per_episode_in)
                rows.append(
                    {
                        "size": label,
                        "ship": ship,
                        "schedule": schedule,
                        "workers": w,
                        "population": population,
                        "generation_s": t,
                        "speedup": base / t,
                        "bytes_per_generation": traffic + machines * costs.broadcast_bytes,
                    }
                )
    return pd.DataFrame(rows)


def trpo_costs(trpo: dict) -> TRPOCosts:
    """The :class:`TRPOCosts` of the measured TRPO iterations: seconds a timestep of sampling (one environment
    process), the update's seconds; float32 samples (observation, action, reward, done, value, log-probability)
    back, and the policy's float32 parameters out to each machine."""
    return TRPOCosts(
        step_s=float(np.mean(trpo["sample_s"])) / trpo["batch_steps"],
        batch_steps=int(trpo["batch_steps"]),
        update_s=float(np.mean(trpo["update_s"])),
        bytes_per_step=4.0 * (trpo["obs_dim"] + trpo["act_dim"] + 4),
        policy_bytes=4.0 * trpo["num_params"],
        straggler_sigma=STRAGGLER_SIGMA,
    )


def time_to_threshold(
    cal: Calibration,
    trpo: dict,
    steps: pd.DataFrame,
    workers=WORKERS,
    size: str = "HalfCheetah MLP 64-64",
    alpha: float = 0.0,
) -> pd.DataFrame:
    """Minutes to a threshold against workers on :data:`CLUSTER`.

    ES's generations to the threshold at a population ``N`` larger than the runs' ``N0`` are unknown beyond the
    measured populations; they are taken as ``G0 (N / N0) ** -alpha`` (at least one), ``G0`` the runs': ``alpha =
    0`` keeps the runs' generations (a larger population buys nothing), ``alpha = 1`` their timesteps (every
    timestep is worth as much at any population); :func:`population_exponent` fits ``alpha`` to runs at several
    populations.

    :param steps: rows ``fraction``, ``es_timesteps``, ``trpo_timesteps``, ``es_population``,
        ``es_episode_length`` (:func:`threshold_steps`: the shipped runs' steps to the threshold, population and
        mean episode length).
    :param size: the measured size the ES runs are (the Table 1 recipe's: HalfCheetah, a 64-64 MLP).
    :param alpha: the exponent above.
    :returns: columns ``fraction``, ``workers``, ``algo`` (``es``: the runs' population; ``es_scaled``: the
        population grown to one mirrored pair a worker, at least the runs'; ``es_scaled_vectors``: the same with
        full parameter vectors sent instead of seeds; ``trpo``), ``population``,
        ``generations`` (iterations for TRPO), ``minutes``, and for ``es_scaled`` ``minutes_alpha0`` and
        ``minutes_alpha1``, the two bounds.
    """
    tc = trpo_costs(trpo)
    if size not in cal.step_s:
        raise ValueError(f"the calibration has no {size!r} (measured: {', '.join(cal.step_s)})")
    rows = []
    for s in steps.itertuples():
        if not (np.isfinite(s.es_timesteps) and np.isfinite(s.trpo_timesteps)):
            continue
        n0 = int(s.es_population)
        g0 = s.es_timesteps / (n0 * s.es_episode_length)
        for w in workers:
            iteration = float(simulate_trpo(tc, CLUSTER, w, GENERATIONS, 0).mean())
            iterations = s.trpo_timesteps / tc.batch_steps
            rows.append(
                {
                    "fraction": s.fraction,
                    "workers": w,
                    "algo": "trpo",
                    "population": np.nan,
                    "generations": iterations,
                    "minutes": iterations * iteration / 60,
                }
            )
            scaled = max(n0, 2 * w)
            for algo, pop, ship in (
                ("es", n0, "seeds"),
                ("es_scaled", scaled, "seeds"),
                ("es_scaled_vectors", scaled, "vectors"),
            ):
                costs = cal.es_costs(size, ship, "process", pop, local=False, sigma=STRAGGLER_SIGMA)
                costs = dataclasses.replace(costs, episode_lengths=np.array([s.es_episode_length]))
                gen = float(simulate_es(costs, CLUSTER, w, pop, GENERATIONS, 0).mean())
                row = {"fraction": s.fraction, "workers": w, "algo": algo, "population": pop}
                for key, a in (("", alpha), ("_alpha0", 0.0), ("_alpha1", 1.0)):
                    generations = max(g0 * (pop / n0) ** -a, 1.0)
                    row[f"minutes{key}"] = generations * gen / 60
                    if not key:
                        row["generations"] = generations
                rows.append(row)
    return pd.DataFrame(rows)


def population_exponent(root: Path, threshold: float) -> tuple[float, pd.DataFrame]:
    """``alpha`` of :func:`time_to_threshold`, fitted to the ES runs below ``root`` (e.g.
    ``results/paper/salimans2017_population``: one task, several populations, seeds): each run's generations to
    ``threshold`` (its first evaluation at or above it, interpolated with the one before), and the least-squares
    slope of ``-log(generations)`` on ``log(population)``; with the per-run table (``run``, ``population``,
    ``generations``; runs that never reach it left out).

    :raises ValueError: when fewer than two populations reach the threshold.
    """
    from harness.report.load import load_runs

    loaded = load_runs(root)
    rows = []
    for run, m in loaded.metrics.groupby("run", sort=True):
        ev = m.loc[m["eval_return"].notna(), ["epoch", "eval_return"]].sort_values("epoch")
        above = np.flatnonzero(ev["eval_return"].to_numpy() >= threshold)
        if above.size == 0:
            continue
        i, e, v = int(above[0]), ev["epoch"].to_numpy(float), ev["eval_return"].to_numpy(float)
        g = e[i] if i == 0 else e[i - 1] + (threshold - v[i - 1]) / (v[i] - v[i - 1]) * (e[i] - e[i - 1])
        rows.append({"run": run, "population": int(loaded.configs[run]["algo.population_size"]), "generations": g})
    table = pd.DataFrame(rows)
    if table.empty or table["population"].nunique() < 2:
        raise ValueError(f"fewer than two populations of {root} reach {threshold:g}")
    slope = np.polyfit(np.log(table["population"]), np.log(table["generations"]), 1)[0]
    return float(-slope), table


def write(out_dir: Path, **frames: pd.DataFrame) -> list[Path]:
    """Each frame as ``out_dir/<name>.csv``; the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in frames.items():
        path = out_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def threshold_steps(root: Path, env: str = "HalfCheetah") -> pd.DataFrame:
    """ES's and TRPO's steps to each threshold of ``env`` in the shipped runs below ``root`` (the report's
    ``--protocol salimans2017`` table: mean curves over seeds, fractions of TRPO's learning progress), with the ES
    runs' population and mean training episode length.

    :raises ValueError: when ``root`` has no ES run and TRPO reference of ``env``.
    """
    from harness.report import aggregate, salimans2017
    from harness.report.load import load_runs

    loaded = load_runs(root)
    runs = aggregate.learning_runs(loaded.runs)
    runs = runs[runs["env"] == env]
    table = salimans2017.table(loaded.metrics[loaded.metrics["env"] == env], runs)
    table = table[
        (table["algo"].map(salimans2017.base_name) == "es") & (table["reference"].map(salimans2017.base_name) == "trpo")
    ]
    if table.empty:
        raise ValueError(f"{root} has no ES run and TRPO reference of {env}")
    es_runs = runs.loc[runs["algo"].map(salimans2017.base_name) == "es", "run"]
    population = {int(loaded.configs[r]["algo.population_size"]) for r in es_runs}
    lengths = loaded.metrics.loc[loaded.metrics["run"].isin(es_runs), "episode_length_mean"].dropna()
    return pd.DataFrame(
        {
            "fraction": table["fraction"].to_numpy(),
            "threshold": table["threshold"].to_numpy(),
            "es_timesteps": table["algo_timesteps"].to_numpy(float),
            "trpo_timesteps": table["reference_timesteps"].to_numpy(float),
            "es_population": max(population),
            "es_episode_length": float(lengths.mean()),
            "es_runs": table["algo_runs"].to_numpy(),
            "trpo_runs": table["reference_runs"].to_numpy(),
        }
    )


def calibration_table(cal: Calibration, trpo: dict) -> pd.DataFrame:
    """The model's terms as a table (``term``, ``key``, ``value``, ``unit``), for the report and the reader."""
    rows = []
    for size in cal.step_s:
        a, b = cal.coordinator[size]
        rows += [
            ("seconds a timestep", size, cal.step_s[size], "s"),
            ("episode length, mean", size, float(np.mean(cal.lengths[size])), "timesteps"),
            ("parameters", size, cal.num_params[size], ""),
            ("coordinator, fixed", size, a, "s a generation"),
            ("coordinator, per episode", size, b, "s"),
            ("forming a full vector", size, cal.vectors_s_per_episode[size], "s an episode"),
            ("worker, per episode (reset, statistics)", size, cal.episode_overhead_s[size], "s an episode"),
            ("coordinator, per piece (process, 1 worker)", size, cal.size_piece_s[size], "s a piece"),
            ("bytes out, seeds", size, cal.bytes_out[(size, "seeds")], "B an episode"),
            ("bytes out, vectors", size, cal.bytes_out[(size, "vectors")], "B an episode"),
            ("bytes in", size, cal.bytes_in[size], "B an episode"),
        ]
    rows += [(f"backend overhead, {b} n={n}", "", v, "s a piece") for (b, n), v in sorted(cal.piece_overhead_s.items())]
    tc = trpo_costs(trpo)
    rows += [
        ("TRPO seconds a timestep (sampling)", trpo["settings"], tc.step_s, "s"),
        ("TRPO update", trpo["settings"], tc.update_s, "s an iteration"),
        ("TRPO batch", trpo["settings"], tc.batch_steps, "timesteps"),
    ]
    return pd.DataFrame(rows, columns=["term", "key", "value", "unit"])
