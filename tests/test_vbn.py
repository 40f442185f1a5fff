"""Virtual batch normalization (issue 17, item 6) in real runs: the reference batch comes from the
seed, is saved with the policy and the checkpoint, and the rows do not depend on the backend, the
worker count or a resume."""

import numpy as np
import pytest

from harness.tracking import COST_COLUMNS
from tests.conftest import FAST, read_metrics, run_cli

VBN = (
    "env=Hopper",
    "env.max_episode_steps=100",
    "policy=mlp",
    "policy.hidden_sizes=[16,16]",
    "policy.virtual_batch_norm=true",
    "policy.reference_batch_size=32",
    "policy.reference_keep_probability=0.1",
    "algo.population_size=8",
    "eval.episodes=2",
    *FAST,
)


def _rows(run_dir):
    return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def vbn_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("vbn") / "serial"
    run_cli(*VBN, "workers.backend=serial", "budget.generations=3", f"hydra.run.dir={run_dir}")
    return run_dir


@pytest.mark.slow
def test_vbn_rows_are_the_same_on_two_workers_and_after_a_resume(vbn_run, tmp_path):
    parts = tmp_path / "parts"
    run_cli(*VBN, "workers.n=2", "budget.generations=2", f"hydra.run.dir={parts}")
    run_cli(f"resume={parts}", "budget.generations=3")
    assert _rows(parts) == _rows(vbn_run)
    with np.load(parts / "policy.npz") as a, np.load(vbn_run / "policy.npz") as b:
        np.testing.assert_array_equal(a["params"], b["params"])
        np.testing.assert_array_equal(a["vbn_reference_batch"], b["vbn_reference_batch"])


@pytest.mark.slow
def test_the_saved_vbn_policy_replays_its_last_evaluation(vbn_run):
    from harness.algos.evolution import load_policy
    from harness.envs import make_env
    from harness.policies import VBNMLPPolicy
    from harness.seeding import EVAL_ENV, env_seeds
    from harness.workers.rollout import run_episode

    policy, params, mean, std, meta = load_policy(vbn_run / "policy.npz")
    assert isinstance(policy, VBNMLPPolicy) and policy.reference_batch.shape == (32, 11)
    assert params.shape == (11 * 16 + 16 + 16 + 16 * 16 + 16 + 16 + 16 * 3 + 3,)
    env = make_env(meta["env"]["id"], meta["env"].get("kwargs"), meta["env"].get("max_episode_steps"))
    replay = [
        run_episode(env, policy, params, mean, std, s, False).episode_return for s in env_seeds(0, EVAL_ENV, 3, 2)
    ]
    assert np.mean(replay) == pytest.approx(float(read_metrics(vbn_run)[-1]["eval_return"]), rel=1e-12)


@pytest.mark.slow
def test_another_seed_collects_another_reference_batch(vbn_run, tmp_path):
    run_cli(*VBN, "workers.backend=serial", "budget.generations=1", "seed=1", f"hydra.run.dir={tmp_path}")
    with np.load(tmp_path / "policy.npz") as a, np.load(vbn_run / "policy.npz") as b:
        assert not np.array_equal(a["vbn_reference_batch"], b["vbn_reference_batch"])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (("policy=linear", "policy.virtual_batch_norm=true"), "policy.virtual_batch_norm=true needs policy=mlp"),
        (
            ("policy=mlp", "policy.virtual_batch_norm=true", "policy.reference_batch_size=1"),
            "policy.reference_batch_size must be an integer >= 2",
        ),
        (
            ("policy=mlp", "policy.virtual_batch_norm=true", "policy.reference_keep_probability=0"),
            "policy.reference_keep_probability must be in (0, 1]",
        ),
    ],
)
def test_bad_vbn_settings_are_one_line_errors(make_cfg, overrides, message):
    from harness.config import ConfigError, validate

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate(make_cfg(*overrides))
