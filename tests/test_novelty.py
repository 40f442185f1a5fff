"""NS-ES, NSR-ES, NSRA-ES: hand-checked pieces (k-NN novelty, selection, scores, the NSRA
weight schedule), real runs on the deceptive maze and HalfCheetah, determinism, bad configs."""

import numpy as np
import pytest

from harness.config import ConfigError, validate
from harness.es import centered_ranks
from harness.es.novelty import RewardWeight, combined_score, novelty, select_agent, selection_probabilities
from harness.seeding import NOVELTY, generator
from harness.tracking import COST_COLUMNS
from tests.conftest import FAST, read_metrics, run_cli

NOVELTY_COLUMNS = ("archive_size", "novelty_mean", "agent", "best_return")
MAZE = (
    "env=deceptive_point_maze",
    "env.max_episode_steps=60",
    "algo.population_size=6",
    "algo.bc_episodes=2",
    "eval.episodes=2",
    "algo.meta_population_size=3",
    *FAST,
)


def test_novelty_is_the_mean_distance_to_the_k_nearest_archived_bcs():
    rng = np.random.default_rng(0)
    archive, bcs = rng.normal(size=(50, 2)), rng.normal(size=(7, 2))
    brute = np.sort(np.linalg.norm(bcs[:, None] - archive[None], axis=-1), axis=1)
    np.testing.assert_allclose(novelty(bcs, archive, 10), brute[:, :10].mean(axis=1))
    np.testing.assert_allclose(novelty(bcs, archive, 1), brute[:, 0])
    # fewer archived BCs than k: all of them
    np.testing.assert_allclose(novelty(bcs, archive[:4], 10), brute_small(bcs, archive[:4]))
    # 1-D BCs (planar robots' com_x)
    np.testing.assert_allclose(novelty(np.array([[0.0], [10.0]]), np.array([[1.0], [3.0], [-2.0]]), 2), [1.5, 8.0])


def brute_small(bcs, archive):
    return np.linalg.norm(bcs[:, None] - archive[None], axis=-1).mean(axis=1)


@pytest.mark.slow
def test_selection_frequencies_are_proportional_to_novelty():
    novelties = np.array([0.5, 2.0, 0.0, 1.5])
    np.testing.assert_allclose(selection_probabilities(novelties), [0.125, 0.5, 0.0, 0.375])
    picks = (
        np.bincount([select_agent(generator(3, NOVELTY, g), novelties) for g in range(20_000)], minlength=4) / 20_000
    )
    # binomial standard error at p = 0.5 and n = 20000 is 0.0035: 0.015 is over 4 of them
    np.testing.assert_allclose(picks, [0.125, 0.5, 0.0, 0.375], atol=0.015)
    assert picks[2] == 0.0
    # all agents alike (identical zero-initialised linear agents): uniform
    np.testing.assert_allclose(selection_probabilities(np.zeros(5)), np.full(5, 0.2))
    # seeded by the generator it is handed
    assert select_agent(generator(3, NOVELTY, 7), novelties) == select_agent(generator(3, NOVELTY, 7), novelties)


def test_scores_rank_reward_and_novelty_separately():
    rng = np.random.default_rng(1)
    returns, novelties = rng.normal(size=(6, 2)) * 100, rng.random((6, 2))
    r, n = centered_ranks(returns), centered_ranks(novelties)
    np.testing.assert_allclose(combined_score("ns_es", returns, novelties, 0.7), n)
    np.testing.assert_allclose(combined_score("nsr_es", returns, novelties, 0.7), (r + n) / 2)
    np.testing.assert_allclose(combined_score("nsra_es", returns, novelties, 0.7), 0.7 * r + 0.3 * n)
    np.testing.assert_allclose(combined_score("nsra_es", returns, novelties, 1.0), r)
    with pytest.raises(ValueError, match="unknown novelty variant"):
        combined_score("nsx_es", returns, novelties, 0.5)


def test_nsra_weight_rises_on_a_new_best_and_falls_after_stagnation():
    w = RewardWeight(1.0, best=10.0)
    w = w.after(12.0, 0.05, 3)  # new best: w would rise, but stays at most 1
    assert (w.value, w.best, w.stagnation) == (1.0, 12.0, 0)
    for expected_stagnation in (1, 2):
        w = w.after(11.0, 0.05, 3)
        assert (w.value, w.stagnation) == (1.0, expected_stagnation)
    w = w.after(5.0, 0.05, 3)  # third epoch without a new best: w falls, the counter restarts
    assert (w.value, w.stagnation) == (pytest.approx(0.95), 0)
    for _ in range(3 * 30):
        w = w.after(0.0, 0.05, 3)
    assert w.value == 0.0  # never below 0
    w = w.after(13.0, 0.05, 3)
    assert (w.value, w.best) == (pytest.approx(0.05), 13.0)


@pytest.fixture(scope="module")
def maze_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("novelty")
    for algo in ("ns_es", "nsr_es", "nsra_es"):
        # w starts mid-way and stagnation_epochs=1, so that w moves every epoch, up or down
        extra = ("algo.reward_weight=0.5", "algo.stagnation_epochs=1") if algo == "nsra_es" else ()
        run_cli(
            f"algo={algo}",
            *MAZE,
            "budget.generations=3",
            "workers.n=2",
            "seed=0",
            *extra,
            f"hydra.run.dir={root / algo}",
        )
    return root


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ns_es", "nsr_es", "nsra_es"])
def test_maze_runs_write_the_contract_and_the_archive(maze_runs, algo):
    rows = read_metrics(maze_runs / algo)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for col in ("timesteps", "episodes", "return_mean", "return_max", "eval_return", "eval_success", *NOVELTY_COLUMNS):
        assert all(r[col] != "" for r in rows), col
    assert ("reward_weight" in rows[0]) == (algo == "nsra_es")
    # the archive starts with the 3 agents' BCs and grows by one BC per epoch
    assert [int(r["archive_size"]) for r in rows] == [4, 5, 6]
    # epoch 1 also ran the initial archive's episodes: 3 agents x 2 episodes of 60 steps
    steps = [int(r["timesteps"]) for r in rows]
    assert steps[0] == 6 * 60 + 2 * 60 + 3 * 2 * 60 and np.diff(steps).tolist() == [8 * 60, 8 * 60]
    assert all(0 <= int(r["agent"]) < 3 for r in rows)
    assert all(float(r["eval_success"]) in (0.0, 0.5, 1.0) for r in rows)
    bcs = (maze_runs / algo / "behaviours.csv").read_text().splitlines()
    assert bcs[0] == "epoch,timesteps,source,agent,episode,bc_0,bc_1"
    archived = [line for line in bcs[1:] if ",archive," in line]
    assert len(archived) == 6  # 3 initial + one per epoch
    assert sum(",eval," in line for line in bcs[1:]) == 3 * 2  # every evaluation episode's BC
    with np.load(maze_runs / algo / "meta_population.npz") as z, np.load(maze_runs / algo / "policy.npz") as p:
        assert z["archive"].shape == (6, 2)
        assert z["agent0_params"].shape == z["agent2_params"].shape
        # the saved policy is the best found so far, whose return is the last best_return
        np.testing.assert_array_equal(p["params"], z["best_params"])
        assert float(z["best_return"]) == pytest.approx(float(rows[-1]["best_return"]))
        assert float(z["best_return"]) >= max(float(z[f"agent{i}_return"]) for i in range(3))


@pytest.mark.slow
def test_the_evaluation_replays_the_best_policy_so_far(maze_runs):
    from harness.algos.evolution import load_policy
    from harness.envs import make_env
    from harness.seeding import EVAL_ENV, env_seeds
    from harness.workers.rollout import run_episode

    rows = read_metrics(maze_runs / "ns_es")
    policy, params, mean, std, meta = load_policy(maze_runs / "ns_es" / "policy.npz")
    env = make_env(meta["env"]["id"], meta["env"].get("kwargs"), meta["env"].get("max_episode_steps"))
    replay = [
        run_episode(env, policy, params, mean, std, s, False).episode_return for s in env_seeds(0, EVAL_ENV, 3, 2)
    ]
    assert np.mean(replay) == pytest.approx(float(rows[-1]["eval_return"]), rel=1e-12)


@pytest.mark.slow
def test_nsra_weight_moves_in_a_run(maze_runs):
    rows = read_metrics(maze_runs / "nsra_es")
    weights = np.array([0.5] + [float(r["reward_weight"]) for r in rows])
    best = np.array([float(r["best_return"]) for r in rows])
    # with stagnation_epochs=1, w rises by delta on a new best return and falls by it on any other epoch
    np.testing.assert_allclose(np.abs(np.diff(weights)), 0.05)
    np.testing.assert_array_equal(np.diff(weights)[1:] > 0, np.diff(best) > 0)


@pytest.mark.slow
def test_same_seed_same_rows_whatever_the_worker_count(maze_runs, tmp_path):
    run_cli("algo=nsr_es", *MAZE, "budget.generations=3", "workers.n=1", "seed=0", f"hydra.run.dir={tmp_path / 'n1'}")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in rows]  # noqa: E731
    assert strip(read_metrics(tmp_path / "n1")) == strip(read_metrics(maze_runs / "nsr_es"))
    assert (tmp_path / "n1" / "behaviours.csv").read_text() == (maze_runs / "nsr_es" / "behaviours.csv").read_text()


@pytest.mark.slow
def test_nsr_es_on_halfcheetah_writes_the_contract(tmp_path):
    run_cli(
        "algo=nsr_es",
        "env=HalfCheetah",
        "env.max_episode_steps=50",
        "algo.population_size=6",
        "algo.bc_episodes=1",
        "algo.meta_population_size=2",
        "eval.episodes=1",
        "budget.generations=2",
        "workers.n=2",
        *FAST,
        f"hydra.run.dir={tmp_path}",
    )
    rows = read_metrics(tmp_path)
    assert len(rows) == 2 and "eval_success" not in rows[0]
    assert all(r[c] != "" for r in rows for c in NOVELTY_COLUMNS)
    assert "epoch,timesteps,source,agent,episode,bc_0\n" in (tmp_path / "behaviours.csv").read_text()


@pytest.mark.parametrize(
    "overrides,match",
    [
        (("algo=ns_es", "env=InvertedPendulum"), "ns_es needs a behaviour characterization.*env.bc is null"),
        (("algo=nsr_es", "algo.k=0"), "algo.k must be an integer >= 1"),
        (("algo=nsr_es", "algo.meta_population_size=0"), "algo.meta_population_size must be an integer >= 1"),
        (("algo=nsra_es", "algo.reward_weight_delta=0"), r"algo.reward_weight_delta must be in \(0, 1\)"),
        (("algo=nsra_es", "algo.reward_weight_delta=1.5"), r"algo.reward_weight_delta must be in \(0, 1\)"),
        (("algo=nsra_es", "algo.reward_weight=2"), r"algo.reward_weight must be in \[0, 1\]"),
        (("algo=ns_es", "algo.bc_episodes=0"), "algo.bc_episodes must be an integer >= 1"),
        (("algo=ns_es", "env.bc=final_xyz"), "env.bc must be null or one of"),
    ],
)
def test_bad_novelty_configs_are_rejected(make_cfg, overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg(*overrides))


@pytest.mark.slow
def test_cli_refuses_a_novelty_algorithm_on_an_env_without_bc(tmp_path):
    proc = run_cli("algo=nsr_es", "env=InvertedPendulum", f"hydra.run.dir={tmp_path / 'run'}", *FAST, check=False)
    assert proc.returncode == 2
    assert "nsr_es needs a behaviour characterization" in proc.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists()
