"""The contract every registered algorithm keeps (the evosax conftest style): a new algorithm is
tested by adding it to ``harness.algos.ALGOS``. For each one:

* its defaults validate, and its config dataclass declares exactly the keys its YAML sets;
* the serial and process backends give identical rows (Ray's: tests/test_ray_backend.py);
* a run killed with SIGKILL resumes to the rows of an uninterrupted run (TRPO: to its rows up to
  the kill and its full length; its environments restart their episodes, README "Resume");
* ``metrics.csv`` holds the metrics contract.
"""

import dataclasses
import os
import signal

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.algos import ALGOS, get_algo
from harness.config import ConfigError, validate
from harness.tracking import COST_COLUMNS, REQUIRED_COLUMNS, TIME_COLUMNS
from tests.conftest import CONF, read_metrics, run_cli
from tests.golden_rows import run_case
from tests.test_resume import _start, _wait_for_rows

NAMES = sorted(ALGOS)
#: keys of an ES-family algo section that are the trainer's (noise table, optimizer, training
#: fitness, provenance), not a strategy config's
TRAINER_KEYS = {
    "name",
    "hparams_source",
    "learning_rate",
    "optimizer",
    "optimizer_kwargs",
    "noise_table_size",
    "train_survival_bonus",
    "noise",
    "noise_df",
    "jump_every",
    "jump_reeval_episodes",
}
#: a short real run of each algorithm: 3 epochs on Hopper with short episodes
SHORT = (
    "env=Hopper",
    "env.max_episode_steps=30",
    "eval.episodes=2",
    "eval.every_timesteps=0",
    "budget.timesteps=0",
    "budget.generations=3",
    "wandb.mode=disabled",
    "progress=false",
    "eval.at_start=false",
)
PER_ALGO = {
    "trpo": ("algo.n_steps=32", "algo.batch_size=16", "algo.n_critic_updates=2"),
    "es_family": ("algo.population_size=6", "algo.noise_table_size=1000000"),
    "novelty": ("algo.meta_population_size=2", "algo.bc_episodes=2", "algo.k=3"),
}


def _overrides(name: str) -> tuple[str, ...]:
    extra = PER_ALGO["trpo"] if name == "trpo" else PER_ALGO["es_family"]
    if name.startswith("ns"):
        extra = (*extra, *PER_ALGO["novelty"])
    if name == "netes":
        extra = (*extra, "algo.agents=2")
    return (f"algo={name}", *SHORT, *extra)


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _rows(run_dir) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


@pytest.mark.parametrize("name", NAMES)
def test_the_defaults_validate(name):
    cfg = _cfg(f"algo={name}")
    validate(cfg)
    assert cfg.algo.name == name


@pytest.mark.parametrize("name", NAMES)
def test_the_yaml_sets_exactly_the_keys_the_config_dataclasses_declare(name):
    """A key is declared once: its type and range in a config dataclass, its default in the YAML."""
    module = get_algo(name)
    algo = _cfg(f"algo={name}").algo
    declared = set()
    for cls in module.CONFIGS:
        declared |= {f.name for f in dataclasses.fields(cls)}
    declared = (declared - {"variant"}) | TRAINER_KEYS  # the novelty variant is algo.name
    yaml_keys = set(algo.keys())
    assert yaml_keys - declared == set(), f"keys in conf/algo/{name}.yaml that no config declares"
    optional = {"reward_weight", "reward_weight_delta", "stagnation_epochs"}  # NSRA-ES's only
    assert declared - TRAINER_KEYS - optional - yaml_keys == set(), f"declared keys missing from conf/algo/{name}.yaml"


def test_the_optimizer_settings_in_the_yaml_are_the_optimizers_own_defaults():
    """conf/algo/es.yaml's optimizer_kwargs show each optimizer's settings; the optimizer's dataclass
    declares them: the two must agree, key for key and value for value."""
    from harness.es.optimizers import OPTIMIZERS

    shown = OmegaConf.to_container(_cfg("algo=es").algo.optimizer_kwargs)
    assert set(shown) == set(OPTIMIZERS)
    for name, cls in OPTIMIZERS.items():
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name != "learning_rate"}
        assert shown[name] == defaults, name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_serial_and_process_backends_give_the_same_rows_and_the_metrics_contract(tmp_path, name):
    rows = {
        backend: run_case(
            (*_overrides(name), "eval.at_start=true", f"workers.backend={backend}", "workers.n=2"), tmp_path / backend
        )
        for backend in ("serial", "process")
    }
    assert rows["serial"] == rows["process"]
    metrics = read_metrics(tmp_path / "process")
    assert len(metrics) == 4 and all(c in metrics[0] for c in (*REQUIRED_COLUMNS, *TIME_COLUMNS))
    assert [int(r["epoch"]) for r in metrics] == [0, 1, 2, 3]
    assert all(r["eval_return"] != "" for r in metrics)  # eval.every_timesteps=0: every epoch
    steps = [int(r["timesteps"]) for r in metrics]
    assert steps == sorted(steps) and steps[0] == 0 < steps[1]
    for r in metrics:  # training and evaluation time add up to the wall time
        assert float(r["train_time_s"]) + float(r["eval_time_s"]) == pytest.approx(float(r["wall_time_s"]), abs=1e-3)
    # epoch 0 is the untrained policy's evaluation (eval.at_start): no training step, no training episode,
    # and it changes no later row
    first = metrics[0]
    assert (first["episodes"], float(first["train_time_s"]), first["return_mean"]) == ("0", 0.0, "")
    assert float(first["eval_time_s"]) > 0
    without = run_case((*_overrides(name), "workers.backend=serial"), tmp_path / "without")
    assert rows["serial"]["metrics"][1:] == without["metrics"]
    _check_epoch_costs(name, metrics, read_metrics(tmp_path / "serial"))
    assert [r for r in rows["serial"]["behaviours"] if r["epoch"] != "0"] == without["behaviours"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_rows(tmp_path, name):
    epochs = 12 if name == "trpo" else 30  # many short epochs (TRPO's are longer): the kill comes well before the end
    # in-process episodes (worker deaths are tests/test_worker_faults.py's): the kill takes the run mid-epoch
    overrides = (*_overrides(name), f"budget.generations={epochs}", "workers.backend=serial")
    run_dir = tmp_path / "killed"
    proc = _start(run_dir, *overrides)
    _wait_for_rows(run_dir, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, mid-epoch or mid-write
    proc.wait(timeout=120)
    kept = len(read_metrics(run_dir))
    assert kept < epochs, "the kill came after the run ended: nothing was tested"
    run_cli(f"resume={run_dir}", "wandb.mode=disabled")
    whole = run_case(overrides, tmp_path / "whole")["metrics"]
    if name == "trpo":  # its training environments restart their episodes on resume (README): rows up to the kill
        assert _rows(run_dir)[: kept - 1] == whole[: kept - 1] and len(_rows(run_dir)) == epochs
    else:
        assert _rows(run_dir) == whole


def test_every_registered_algorithm_has_its_yaml():
    for name in NAMES:
        assert (CONF / "algo" / f"{name}.yaml").exists(), name
        assert callable(get_algo(name).make_trainer) and callable(get_algo(name).validate)


def test_configs_are_frozen_and_keyword_only():
    for name in NAMES:
        for cls in getattr(get_algo(name), "CONFIGS", ()):
            fields = dataclasses.fields(cls)
            assert all(f.kw_only for f in fields), cls
            with pytest.raises(TypeError):
                cls(*range(len(fields)))  # positional arguments are refused
            params = OmegaConf.to_container(_cfg(f"algo={name}").algo)
            config = cls.from_algo({**params, "name": name})
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(config, fields[0].name, None)


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["laplace", "student_t"])
def test_a_noise_distribution_runs_on_every_backend_with_the_same_rows(tmp_path, noise):
    """Issue 17, item 1: workers form members with the run's distribution (they get offsets, as for
    the Gaussian); its rows are the same for serial and process and differ from the Gaussian's."""
    base = (*_overrides("es"), "workers.n=2")
    rows = {
        b: run_case((*base, f"algo.noise={noise}", f"workers.backend={b}"), tmp_path / b)["metrics"]
        for b in ("serial", "process")
    }
    gaussian = run_case((*base, "workers.backend=serial"), tmp_path / "gaussian")["metrics"]
    assert rows["serial"] == rows["process"]
    assert [r["return_mean"] for r in rows["serial"]] != [r["return_mean"] for r in gaussian]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["es", "cma_es", "nsr_es"])
def test_shipping_full_vectors_gives_the_same_rows_and_costs_eight_bytes_a_parameter(tmp_path, name):
    """Issue 32, item 2: workers.ship=vectors sends every episode's parameters instead of its noise offset
    (the shared-seed trick undone, for measurement): the same rows on serial and process, and through the
    process backend's pipes at least 8 d bytes more per training episode (CMA-ES's members are explicit
    vectors already: they ride the same way; NSR-ES's trainer, a subclass, passes the mode on)."""
    base = (*_overrides(name), "workers.n=2")
    seeds = run_case((*base, "workers.backend=process"), tmp_path / "seeds")["metrics"]
    vectors = {
        b: run_case((*base, "workers.ship=vectors", f"workers.backend={b}"), tmp_path / b)["metrics"]
        for b in ("serial", "process")
    }
    assert seeds == vectors["serial"] == vectors["process"] and len(seeds) == 3
    d = _num_params(tmp_path / "seeds")
    sent = {k: [float(r["bytes_sent"]) for r in read_metrics(tmp_path / k)] for k in ("seeds", "process")}
    episodes = np.diff([0] + [int(r["episodes"]) for r in read_metrics(tmp_path / "seeds")])  # a cumulative count
    for s, v, n in zip(sent["seeds"], sent["process"], episodes):
        assert n > 0 and v - s >= 8 * d * n


def _num_params(run_dir) -> int:
    """The parameter count of the policy a run saved (``policy.npz``'s ``params``)."""
    with np.load(run_dir / "policy.npz") as f:
        return int(f["params"].size)


def test_workers_ship_is_validated():
    with pytest.raises(ConfigError, match="workers.ship must be one of seeds, vectors, got 'floats'"):
        validate(_cfg("workers.ship=floats"))


@pytest.mark.slow
def test_jumps_to_the_best_sample_are_logged_deterministic_and_keep_the_metrics_contract(tmp_path):
    """Issue 17, item 4: every jump_every generations the re-evaluation runs, is counted in the
    timesteps, and is logged; rows are the same for serial and process."""
    base = (
        *_overrides("es"),
        "budget.generations=4",
        "algo.jump_every=2",
        "algo.jump_reeval_episodes=2",
        "workers.n=2",
    )
    rows = {b: run_case((*base, f"workers.backend={b}"), tmp_path / b)["metrics"] for b in ("serial", "process")}
    assert rows["serial"] == rows["process"]
    plain = run_case((*_overrides("es"), "budget.generations=4", "workers.backend=serial"), tmp_path / "plain")
    jumps = [r for r in rows["serial"] if r["jumped"] != ""]
    assert [r["epoch"] for r in jumps] == ["2", "4"] and {r["jumped"] for r in jumps} <= {"0", "1"}
    # the re-evaluation's episodes are training data: epoch 2 counts more steps than without jumps
    assert int(rows["serial"][1]["timesteps"]) > int(plain["metrics"][1]["timesteps"])
    # epoch 1 is plain ES's, row for row, apart from the (empty) jump columns
    assert {k: v for k, v in rows["serial"][0].items() if not k.startswith("jump")} == plain["metrics"][0]


@pytest.mark.slow
def test_netes_with_one_agent_is_plain_es_row_for_row(tmp_path):
    """Issue 17, item 7: one agent has no neighbour; its update is OpenAI-ES's, bit for bit."""
    es_rows = run_case((*_overrides("es"), "workers.backend=serial"), tmp_path / "es")["metrics"]
    net = run_case((*_overrides("netes"), "algo.agents=1", "workers.backend=serial"), tmp_path / "netes")["metrics"]
    assert [{k: r[k] for k in es_rows[0]} for r in net] == es_rows
    assert {r["edge_density"] for r in net} == {"1.0"} and {r["param_spread"] for r in net} == {"0.0"}


def test_netes_graphs_are_seeded_connected_and_a_hopeless_p_is_refused():
    import networkx as nx

    from harness.config import ConfigError
    from harness.es.strategies.netes import make_graph
    from harness.seeding import TOPOLOGY, generator

    algo = OmegaConf.to_container(_cfg("algo=netes").algo)
    for topology, p in (("erdos_renyi", 0.2), ("ring", 1.0), ("fully_connected", 1.0)):
        config = get_algo("netes").NetESConfig.from_algo(
            {**algo, "agents": 12, "topology": topology, "edge_probability": p}
        )
        a, b = make_graph(config, generator(0, TOPOLOGY)), make_graph(config, generator(0, TOPOLOGY))
        assert nx.is_connected(a) and sorted(a.edges) == sorted(b.edges)
        degrees = {d for _, d in a.degree}
        assert (topology != "ring" or degrees == {2}) and (topology != "fully_connected" or degrees == {11})
    with pytest.raises(ConfigError, match="were all disconnected"):
        validate(_cfg("algo=netes", "algo.agents=50", "algo.edge_probability=0.001"))
    with pytest.raises(ConfigError, match=r"algo.edge_probability must be in \(0, 1\]"):
        validate(_cfg("algo=netes", "algo.edge_probability=0"))


def test_cma_es_draws_from_the_generator_it_is_handed_and_optimises_a_quadratic():
    """pycma samples through the harness's generator (the same draws for the same stream, other draws
    for another), and maximising -|x - c|^2 in 10 dimensions gets close to c."""
    import numpy as np

    from harness.es.strategies.cma_es import CMAES, CMAESConfig

    c = np.linspace(-1.0, 1.0, 10)
    cma = CMAES(10, CMAESConfig(population_size=12, sigma=0.5, diagonal=False))
    state = cma.init(np.zeros(10))
    a = cma.ask(state, np.random.default_rng(0)).centers
    b = cma.ask(state, np.random.default_rng(0)).centers
    other = cma.ask(state, np.random.default_rng(1)).centers
    assert a.shape == (12, 10) and np.array_equal(a, b) and not np.array_equal(a, other)
    for g in range(150):
        pop = cma.ask(state, np.random.default_rng(g))
        state, metrics = cma.tell(state, pop, -np.sum((pop.centers - c) ** 2, axis=1))
    assert np.linalg.norm(state.params - c) < 1e-3 and state.generation == 150
    assert metrics["sigma"] < 0.01


def _check_epoch_costs(name: str, process: list[dict], serial: list[dict]) -> None:
    """The ES family's rows say what each epoch's training cost (EPOCH_COST_COLUMNS): seconds in the workers'
    rollouts, within the epoch's training time (its evaluation, every epoch here, left out), and the bytes the
    backend exchanged with its workers: some through the process backend's pipes, none on the serial backend.
    The step-0 row, before any training, has none; TRPO, whose rollouts are SB3's, writes no such column."""
    from harness.tracking import EPOCH_COST_COLUMNS

    if name == "trpo":
        assert not any(c in process[0] for c in EPOCH_COST_COLUMNS)
        return
    assert all(process[0][c] == "" for c in EPOCH_COST_COLUMNS)  # the untrained policy's evaluation
    for before, row in zip(process, process[1:]):
        trained = float(row["train_time_s"]) - float(before["train_time_s"])
        assert 0 < float(row["rollout_time_s"]) <= trained + 1e-6
        assert float(row["bytes_sent"]) > 0 and float(row["bytes_received"]) > 0
    assert all(float(r["bytes_sent"]) == float(r["bytes_received"]) == 0 for r in serial[1:])
