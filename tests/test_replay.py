"""Watching and loading a run's policy: ``python -m harness.enjoy`` and ``harness.load_policy``
(harness/replay.py) on tiny real runs of every kind of policy file: ES with the linear policy, ES with an
MLP and discretized actions (``policy.action_bins``), the novelty family (its best policy), and TRPO."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import harness
from harness.algos.evolution import policy_from_checkpoint
from harness.runner import Checkpoints
from harness.tracking import read_rows

from .conftest import FAST, ROOT, read_metrics, run_cli

pytestmark = pytest.mark.slow  # every test here replays tiny real runs (the module's fixture trains them)

# Short episodes (10 steps at most) so that a rendered episode takes seconds on a software renderer.
TINY = (
    *(o for o in FAST if not o.startswith("algo.noise_table_size")),
    "env=Hopper",
    "env.max_episode_steps=10",
    "eval.episodes=2",
    "workers.backend=serial",
    "workers.n=1",
)
RUNS = {
    "es_linear": (
        "algo=es",
        "algo.noise_table_size=1000000",
        "policy=linear",
        "algo.population_size=4",
        "budget.generations=3",
    ),
    "es_mlp_bins": (
        "algo=es",
        "algo.noise_table_size=1000000",
        "policy=mlp",
        "policy.hidden_sizes=[8]",
        "policy.action_bins=5",
        "algo.population_size=4",
        "budget.generations=3",
    ),
    "nsr_es": (
        "algo=nsr_es",
        "algo.noise_table_size=1000000",
        "algo.meta_population_size=2",
        "algo.population_size=4",
        "algo.bc_episodes=1",
        "budget.generations=3",
    ),
    "trpo": ("algo=trpo", "algo.n_steps=32", "algo.n_envs=2", "algo.batch_size=32", "budget.timesteps=128"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished tiny run per kind, evaluated at its end on ``eval.episodes`` = 2 episodes."""
    root = tmp_path_factory.mktemp("runs")
    for name, overrides in RUNS.items():
        run_cli(*TINY, *overrides, f"hydra.run.dir={root / name}")
    return {name: root / name for name in RUNS}


def enjoy(*args: str, env_vars: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    for key, value in (env_vars or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "harness.enjoy", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def final_eval_return(run_dir) -> float:
    return read_rows(run_dir / "metrics.csv")[-1]["eval_return"]


@pytest.mark.parametrize("name", ["es_linear", "es_mlp_bins", "trpo"])
def test_enjoy_replays_the_evaluation_and_records_every_frame(runs, name, tmp_path):
    import imageio_ffmpeg

    video = tmp_path / "replay.mp4"
    proc = enjoy(runs[name], "--episodes", 2, "--video", video)
    assert proc.returncode == 0, proc.stderr
    episodes = re.findall(r"^episode \d+: return (-?[\d.]+), (\d+) steps", proc.stdout, re.M)
    assert len(episodes) == 2
    # the run's own evaluation seeds: the mean is the last row's eval_return, printed beside it
    printed = re.search(
        r"mean return (-?[\d.]+) over 2 episodes\nmetrics.csv, epoch \d+: eval_return (-?[\d.]+)", proc.stdout
    )
    assert printed and printed.group(1) == printed.group(2) == f"{final_eval_return(runs[name]):.2f}"
    frames = sum(int(length) + 1 for _, length in episodes)  # the reset's frame and one per step
    assert f"video: {video} ({frames} frames" in proc.stdout
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == frames


@pytest.mark.parametrize("name", list(RUNS))
def test_load_policy_predict_gives_the_evaluation_returns(runs, name):
    """A plain Gymnasium loop over ``predict`` on the evaluation's seeds: the run's own eval_return, exactly."""
    policy = harness.load_policy(runs[name])
    env = gymnasium.make("Hopper-v5", max_episode_steps=10)
    returns = []
    for seed in policy.eval_seeds(2):
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            action, state = policy.predict(obs, deterministic=True)
            assert action.shape == (3,) and state is None
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        # TRPO's evaluation reads SB3's Monitor, which rounds each return to 6 decimals
        returns.append(round(total, 6) if policy.algo == "trpo" else total)
    assert float(np.mean(returns)) == final_eval_return(runs[name])
    batch, _ = policy.predict(np.stack([obs, obs]))
    # a batch of observations at once (torch's batched products may round TRPO's last digit otherwise)
    assert batch.shape == (2, 3) and np.allclose(batch[0], policy.predict(obs)[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"shape \(11,\)"):
        policy.predict(np.zeros(5))


@pytest.mark.parametrize("name", ["es_linear", "es_mlp_bins", "nsr_es"])
def test_policy_from_the_last_checkpoint_is_the_saved_policy(runs, name):
    """What lets the shipped runs that lost their policy.npz get it back from their checkpoint."""
    run_dir = runs[name]
    derived = policy_from_checkpoint(run_dir, Checkpoints(run_dir).latest())
    with np.load(run_dir / "policy.npz") as z:
        saved = dict(z)
    assert sorted(derived) == sorted(saved)
    for key in saved:
        assert np.array_equal(derived[key], saved[key]), key


def test_enjoy_without_a_gl_backend_says_which_mujoco_gl_to_try(runs, tmp_path):
    video = tmp_path / "none.mp4"
    proc = enjoy(
        runs["es_linear"], "--video", video, env_vars={"MUJOCO_GL": "glfw", "DISPLAY": None, "WAYLAND_DISPLAY": None}
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "MUJOCO_GL=glfw" in proc.stderr and "MUJOCO_GL=egl" in proc.stderr and "MUJOCO_GL=osmesa" in proc.stderr
    assert not video.exists()


@pytest.mark.parametrize("gl", ["bogus", "osmesa"])
def test_enjoy_with_a_mujoco_gl_mujoco_cannot_start_says_what_to_try(runs, gl):
    """A MUJOCO_GL that MuJoCo refuses (a typo), or that cannot load (osmesa without libOSMesa, as here): one
    error line naming it and what to try, without --video too; not a traceback from deep in the replay."""
    proc = enjoy(runs["es_linear"], "--episodes", "1", env_vars={"MUJOCO_GL": gl})
    if gl == "osmesa" and proc.returncode == 0:
        pytest.skip("this machine has libOSMesa: MUJOCO_GL=osmesa works")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"MUJOCO_GL={gl}" in proc.stderr and "MUJOCO_GL=egl" in proc.stderr and "Traceback" not in proc.stderr


def test_enjoy_names_what_a_run_has_when_the_policy_asked_for_is_missing(runs, tmp_path):
    proc = enjoy(runs["es_linear"], "--checkpoint", "1")
    assert proc.returncode == 1
    assert "no checkpoint of epoch 1" in proc.stderr and "the latest is epoch 3" in proc.stderr
    proc = enjoy(runs["es_linear"], "--no-deterministic")
    assert proc.returncode == 1 and "deterministic" in proc.stderr


def test_make_figures_draws_a_strip_of_one_hopper_policy_per_algorithm(runs, tmp_path):
    from harness.report import paper as paper_mod

    results = tmp_path / "paper"
    for name in ("es_linear", "es_mlp_bins", "trpo"):  # two ES runs: one row for es, the one with the higher return
        shutil.copytree(runs[name], results / "part" / name)
    out = tmp_path / "figures"
    out.mkdir()
    drawn = paper_mod.Paper(out=out, index=out / "README.md")
    paper_mod._policy_strip(results, drawn)
    assert drawn.missing == []
    assert (out / "hopper_strip.png").stat().st_size > 0 and (out / "hopper_strip.pdf").exists()
    best_es = max(("es_linear", "es_mlp_bins"), key=final_eval_return_of(runs))
    assert f"es: `part/{best_es}`" in drawn.entries[0].caption and "trpo: `part/trpo`" in drawn.entries[0].caption


def final_eval_return_of(runs):
    return lambda name: json.loads((runs[name] / "summary.json").read_text())["eval_return"]


def test_eval_video_every_records_evaluations_without_changing_a_number(tmp_path):
    """eval.video_every=2: the evaluations 0 (step 0), 2 and the last (3) are rendered, each the episode of
    its evaluation's first seed (length + 1 frames), also into the offline W&B run; the rows are those of
    the same run without videos, wall-clock columns aside."""
    import imageio_ffmpeg

    common = (*TINY, *RUNS["es_linear"], "eval.every_timesteps=0", "eval.at_start=true")
    env = {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    run_cli(*common, "eval.video_every=2", "wandb.mode=offline", f"hydra.run.dir={tmp_path / 'video'}", env_vars=env)
    run_cli(*common, f"hydra.run.dir={tmp_path / 'plain'}")
    videos = sorted(p.name for p in (tmp_path / "video" / "videos").iterdir())
    assert videos == ["epoch_0000000.mp4", "epoch_0000002.mp4", "epoch_0000003.mp4"]
    for name in videos:
        frames = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "video" / "videos" / name))[0]
        assert 2 <= frames <= 11  # a Hopper episode of 1-10 steps, and the reset's frame
    assert len(list((tmp_path / "video" / "wandb").glob("offline-run-*/files/media/videos/eval/*.mp4"))) == 3
    from harness.tracking import COST_COLUMNS

    def rows(name):
        return [{k: v for k, v in r.items() if k not in COST_COLUMNS} for r in read_metrics(tmp_path / name)]

    assert rows("video") == rows("plain") and len(rows("plain")) == 4


def test_eval_video_every_without_a_gl_backend_warns_once_and_trains_on(tmp_path):
    proc = run_cli(
        *TINY,
        *RUNS["es_linear"],
        "eval.every_timesteps=0",
        "eval.video_every=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        env_vars={"MUJOCO_GL": "glfw", "DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    out = proc.stdout + proc.stderr
    assert out.count("eval.video_every: MuJoCo cannot render") == 1 and "MUJOCO_GL=egl" in out
    assert not (tmp_path / "run" / "videos").exists()
