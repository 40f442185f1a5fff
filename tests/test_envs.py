import subprocess
import sys

import numpy as np
import pytest

from harness.envs import make_env
from harness.policies import LinearPolicy
from harness.workers.rollout import run_episode


@pytest.mark.slow
def test_mujoco_warnings_leave_no_log_file_and_no_stderr(tmp_path):
    code = "from harness.envs import make_env; make_env('HalfCheetah-v5').reset(seed=0)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "settotalmass" not in proc.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_unknown_env_id_suggests_the_registered_versions():
    with pytest.raises(ValueError, match="did you mean.*Hopper-v5"):
        make_env("Hopper-v9")


def test_episode_is_a_pure_function_of_params_and_seed():
    env = make_env("Hopper-v5")
    p = LinearPolicy(11, env.action_space.low, env.action_space.high)
    params = np.random.default_rng(0).normal(scale=0.3, size=p.num_params)
    mean, std = np.zeros(11), np.ones(11)
    a = run_episode(env, p, params, mean, std, seed=5, collect_obs=True)
    run_episode(env, p, -params, mean, std, seed=6, collect_obs=False)  # the env's history must not matter
    b = run_episode(env, p, params, mean, std, seed=5, collect_obs=True)
    assert a.episode_return == b.episode_return and a.length == b.length
    assert a.obs_stat.count == a.length  # one observation per step the policy acted on
    np.testing.assert_array_equal(a.obs_stat.m2, b.obs_stat.m2)
    assert a.terminated or a.length == 1000
