"""Deceptive tasks (harness/envs/deceptive.py) and behaviour characterizations (behaviour.py), on real envs."""

import os
import subprocess
import sys
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from harness.envs import make_env
from harness.envs.behaviour import BEHAVIOURS, behaviour, behaviour_dim, centre_of_mass
from harness.envs.deceptive import register
from tests.conftest import ROOT

DECEPTIVE_IDS = ("DeceptivePointMaze-v0", "DeceptiveAntMaze-v0", "HumanoidTrap-v0")
# Indices into the point maze's flat observation (FlatGoalObservation's documented order).
POS, VEL, GOAL = slice(0, 2), slice(2, 4), slice(6, 8)


@pytest.fixture(scope="module")
def point_maze():
    env = make_env("DeceptivePointMaze-v0")
    yield env
    env.close()


@pytest.mark.parametrize("env_id", DECEPTIVE_IDS)
def test_each_env_makes_resets_and_steps_with_a_flat_float64_box(env_id):
    env = make_env(env_id)
    first, _ = env.reset(seed=3)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.float64 and len(space.shape) == 1
    assert first.shape == space.shape and first.dtype == np.float64
    obs, reward, terminated, truncated, info = env.step(0.5 * env.action_space.high)
    assert obs.shape == space.shape and np.isfinite(obs).all() and np.isfinite(reward)
    assert not np.array_equal(obs, first)  # time moved on
    again, _ = env.reset(seed=3)
    other, _ = env.reset(seed=4)
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(other, first)  # the seed matters (reset noise)
    env.close()


def test_registering_twice_is_a_no_op():
    spec = gym.spec("DeceptivePointMaze-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium warns when an id is overridden
        register()
    assert gym.spec("DeceptivePointMaze-v0") is spec


def test_point_maze_layout_start_inside_the_u_goal_behind_its_closed_side(point_maze):
    for seed in range(5):
        obs, info = point_maze.reset(seed=seed)
        # cell centres (0, 0) and (0, 3), moved by at most 0.25 m per axis
        assert np.abs(obs[POS] - [0.0, 0.0]).max() <= 0.25
        assert np.abs(obs[GOAL] - [0.0, 3.0]).max() <= 0.25
        assert info["success"] is False


def test_ant_maze_uses_the_same_map_with_4_m_cells():
    env = make_env("DeceptiveAntMaze-v0")
    obs, _ = env.reset(seed=0)
    start, goal = env.get_wrapper_attr("last_achieved_goal"), obs[-2:]
    assert np.abs(start - [0.0, 0.0]).max() <= 1.0 and np.abs(goal - [0.0, 12.0]).max() <= 1.0
    assert env.spec.max_episode_steps == 1750 and env.action_space.shape == (8,)
    env.close()


def _episode(env, policy, seed=0):
    """-> (return, first step with info["success"] or None, last info, last obs)."""
    obs, info = env.reset(seed=seed)
    total, first_success = 0.0, None
    for t in range(1, 10**6):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += reward
        if info["success"] and first_success is None:
            first_success = t
        if terminated or truncated:
            return total, first_success, info, obs


def towards_goal(obs):
    return np.clip(3.0 * (obs[GOAL] - obs[POS]), -1.0, 1.0)


def away_from_goal(obs):
    return np.array([0.0, -1.0])


def waypoint_controller():
    """PD control down and out of the U, along the bottom, up the left corridor, then to the goal."""
    waypoints = [np.array([0.0, -3.0]), np.array([-3.0, -3.0]), np.array([-3.0, 2.5])]

    def policy(obs):
        pos, vel = obs[POS], obs[VEL]
        target = waypoints[0] if waypoints else obs[GOAL]
        if waypoints and np.linalg.norm(target - pos) < 0.3:
            waypoints.pop(0)
        return np.clip(2.0 * (target - pos) - 0.3 * vel, -1.0, 1.0)

    return policy


def test_point_maze_is_deceptive_pushing_to_the_goal_pays_more_but_ends_at_the_wall(point_maze):
    greedy_return, greedy_success, info, obs = _episode(point_maze, towards_goal)
    assert greedy_success is None and info["success"] is False
    assert np.linalg.norm(obs[GOAL] - obs[POS]) > 2.0
    assert obs[POS][1] < 0.5  # stopped below the U's closed side (its wall spans y in [0.5, 1.5])
    away_return, *_ = _episode(point_maze, away_from_goal)
    assert greedy_return > 0.0 > away_return  # the way out of the U first leads away from the goal


def test_point_maze_scripted_controller_round_the_arm_reaches_the_goal_in_time(point_maze):
    steps = point_maze.spec.max_episode_steps
    for seed in range(3):
        total, first_success, info, obs = _episode(point_maze, waypoint_controller(), seed=seed)
        # measured: success from step ~300 of 750, and it stays at the goal
        assert first_success is not None and first_success <= 0.6 * steps
        assert info["success"] is True
        greedy_return, *_ = _episode(point_maze, towards_goal, seed=seed)
        assert total > 3.0 * greedy_return


def test_point_maze_return_is_how_much_closer_to_the_goal_the_episode_ended(point_maze):
    rng = np.random.default_rng(0)
    obs, _ = point_maze.reset(seed=1)
    start_distance, total, rewards = np.linalg.norm(obs[GOAL] - obs[POS]), 0.0, []
    for _ in range(200):
        obs, reward, *_ = point_maze.step(rng.uniform(-1.0, 1.0, 2))
        total += reward
        rewards.append(reward)
    assert total == pytest.approx(start_distance - np.linalg.norm(obs[GOAL] - obs[POS]), abs=1e-9)
    assert len(set(rewards)) > 100  # a reward every step, not only at the end


@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
def test_maze_keeps_gymnasium_robotics_rewards_on_request(reward_type):
    env = make_env("DeceptivePointMaze-v0", {"reward_type": reward_type})
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(np.zeros(2))
    distance = np.linalg.norm(obs[GOAL] - obs[POS])
    assert reward == pytest.approx(np.exp(-distance) if reward_type == "dense" else float(distance <= 0.45))
    env.close()


def test_maze_refuses_an_unknown_reward_type():
    with pytest.raises(ValueError, match="reward_type must be one of"):
        make_env("DeceptivePointMaze-v0", {"reward_type": "distance"})


@pytest.mark.slow
def test_no_adroit_notice_when_making_a_maze(tmp_path):
    code = "from harness.envs import make_env; make_env('DeceptivePointMaze-v0').reset(seed=0)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert "Adroit" not in proc.stderr + proc.stdout
    assert proc.stderr.strip() == ""


# Reference values: uber-research/deep-neuroevolution extra/humanoid_maze.xml (pos, half-sizes).
REFERENCE_WALLS = {
    "frontwall": ((5.5, 0, 0), (0.1, 1.5, 2)),
    "topwall": ((4, 1.5, 0), (1.5, 0.1, 2)),
    "bottomwall": ((4, -1.5, 0), (1.5, 0.1, 2)),
}


def test_humanoid_trap_has_the_reference_walls_and_is_otherwise_humanoid_v5():
    trap, plain = make_env("HumanoidTrap-v0"), make_env("Humanoid-v5")
    model, ref = trap.unwrapped.model, plain.unwrapped.model
    for name, (pos, size) in REFERENCE_WALLS.items():
        geom = model.geom(name)
        assert geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX and geom.bodyid[0] == 0  # static, in the worldbody
        np.testing.assert_allclose(geom.pos, pos)
        np.testing.assert_allclose(geom.size, size)
        assert geom.contype[0] == geom.conaffinity[0] == 1  # collides with the humanoid's geoms (both 1)
    assert (model.nq, model.nv, model.nu, model.nbody) == (ref.nq, ref.nv, ref.nu, ref.nbody)
    assert model.ngeom == ref.ngeom + 3
    assert trap.observation_space.shape == plain.observation_space.shape == (348,)
    assert trap.spec.max_episode_steps == plain.spec.max_episode_steps == 1000
    # Walking straight ahead at chest height, the first thing in the way is the front wall.
    trap.reset(seed=0)
    geomid = np.zeros(1, np.int32)
    distance = mujoco.mj_ray(
        model, trap.unwrapped.data, np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), None, 1, -1, geomid
    )
    assert model.geom(int(geomid[0])).name == "frontwall" and distance == pytest.approx(5.4 - 1.0)
    trap.close()
    plain.close()


def test_humanoid_trap_rejects_another_xml_file():
    with pytest.raises(ValueError, match="xml_file"):
        make_env("HumanoidTrap-v0", {"xml_file": "humanoid.xml"})


@pytest.mark.parametrize(
    "name,env_id", [("com_x", "HalfCheetah-v5"), ("com_xy", "HumanoidTrap-v0"), ("final_xy", "DeceptivePointMaze-v0")]
)
def test_behaviour_has_the_declared_shape(name, env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    bc = behaviour(env, name)
    assert bc.shape == (behaviour_dim(name),) and bc.dtype == np.float64
    assert set(BEHAVIOURS) == {"com_x", "com_xy", "final_xy"}
    env.close()


def test_com_x_moves_with_the_robot_and_is_the_mass_weighted_centre_of_the_current_state():
    env = make_env("HalfCheetah-v5")
    env.reset(seed=0)
    start = behaviour(env, "com_x")
    action = np.full(env.action_space.shape, 0.5, np.float32)
    for _ in range(100):
        env.step(action)
    end = behaviour(env, "com_x")
    assert abs(end[0] - start[0]) > 0.05
    model, data = env.unwrapped.model, env.unwrapped.data
    fresh = mujoco.MjData(model)
    fresh.qpos[:], fresh.qvel[:] = data.qpos, data.qvel
    mujoco.mj_forward(model, fresh)
    expected = (model.body_mass[:, None] * fresh.xipos).sum(0) / model.body_mass.sum()
    np.testing.assert_allclose(centre_of_mass(env), expected, atol=1e-12)
    np.testing.assert_allclose(end, expected[:1], atol=1e-12)
    env.close()


def test_behaviour_leaves_the_episode_unchanged():
    # Humanoid-v5's reward reads data.xipos, so a BC that refreshed the env's own data would show.
    def rollout(call_behaviour):
        env = make_env("Humanoid-v5")
        env.reset(seed=1)
        out = []
        for _ in range(15):
            obs, reward, terminated, *_ = env.step(np.full(17, 0.1, np.float32))
            out.append((obs, reward))
            if call_behaviour:
                behaviour(env, "com_xy")
        env.close()
        return out

    for (obs_a, r_a), (obs_b, r_b) in zip(rollout(True), rollout(False), strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b


def test_final_xy_is_the_last_achieved_goal(point_maze):
    obs, _ = point_maze.reset(seed=2)
    np.testing.assert_array_equal(behaviour(point_maze, "final_xy"), obs[POS])
    for _ in range(40):
        obs, *_ = point_maze.step(np.array([0.4, -1.0]))
    np.testing.assert_array_equal(behaviour(point_maze, "final_xy"), obs[4:6])  # achieved_goal
    np.testing.assert_allclose(behaviour(point_maze, "final_xy"), point_maze.unwrapped.data.qpos[:2])


def test_unknown_or_unavailable_behaviour_raises_value_error():
    env = make_env("HalfCheetah-v5")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown behaviour characterization 'com_z'"):
        behaviour(env, "com_z")
    with pytest.raises(ValueError, match="unknown behaviour"):
        behaviour_dim("final_x")
    with pytest.raises(ValueError, match="not a maze"):
        behaviour(env, "final_xy")
    with pytest.raises(ValueError, match="not been reset"):
        behaviour(make_env("DeceptivePointMaze-v0"), "final_xy")
    with pytest.raises(ValueError, match="no MuJoCo model"):
        behaviour(gym.make("CartPole-v1"), "com_x")
    env.close()
