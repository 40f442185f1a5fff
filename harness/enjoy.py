"""``python -m harness.enjoy RUN_DIR``: replay a run's policy, print each episode's return, and
optionally record the episodes to an MP4 (after rl-baselines3-zoo's ``enjoy`` and ``record_video``).

    python -m harness.enjoy results/paper/salimans2017_mujoco/es_starter_Hopper_seed0
    MUJOCO_GL=egl python -m harness.enjoy RUN_DIR --episodes 3 --video hopper.mp4
    python -m harness.enjoy RUN_DIR --checkpoint latest --seed 7      # a killed run, other initial states

Every algorithm (the ES family's ``policy.npz`` or checkpoint, TRPO's SB3 model with its ``VecNormalize``),
both policies, ``policy.action_bins`` and every engine's runs: episodes always run in
``gymnasium.make(env.id)`` through :mod:`harness.replay`, with the observation normalization frozen as in
evaluation. Without ``--seed``, the episodes are the run's own evaluation episodes at the loaded epoch
(same seeds), so their returns are the ones its ``metrics.csv`` holds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``argv``: default ``sys.argv[1:]``).

    :raises SystemExit: with status 2 (argparse) for a bad argument: ``--episodes`` below 1, a ``--video`` file
        not named ``.mp4``, or a ``--checkpoint`` other than ``final``, ``latest`` or an epoch number.
    """
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m harness.enjoy",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (config.yaml and a policy)")
    parser.add_argument("--episodes", "-n", type=int, default=1, help="episodes to run (default 1)")
    parser.add_argument(
        "--video",
        type=Path,
        metavar="FILE.mp4",
        help="record the episodes, one after another, to this MP4 (real time: the env's render_fps); "
        "needs an OpenGL backend for MuJoCo (MUJOCO_GL=egl or osmesa without a display)",
    )
    parser.add_argument(
        "--checkpoint",
        default="final",
        metavar="final|latest|EPOCH",
        help="final: the policy the run saved as it ended (default); latest: its latest checkpoint "
        "(also of a killed run); EPOCH: that epoch's checkpoint (a run keeps only its latest)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="episode k starts from reset(seed=SEED+k); default: the run's own evaluation seeds at "
        "the loaded epoch, whose returns metrics.csv holds",
    )
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TRPO: the mean action, as evaluation (default), or --no-deterministic: sampled from its "
        "Gaussian policy (the ES family's policies are deterministic)",
    )
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.video is not None and args.video.suffix.lower() != ".mp4":
        parser.error(f"--video writes an MP4: name a .mp4 file, got {args.video}")
    if args.checkpoint not in ("final", "latest") and not args.checkpoint.isdigit():
        parser.error(f"--checkpoint must be final, latest or an epoch number, got {args.checkpoint!r}")
    return args


def main(argv=None) -> int:
    """``python -m harness.enjoy``: :func:`enjoy` with the parsed ``argv``. Returns its status, or 1 with one
    ``error:`` line for a bad ``MUJOCO_GL``, a missing file, a ``ValueError`` or a rendering error."""
    args = parse_args(argv)
    try:
        import mujoco  # noqa: F401  (reads MUJOCO_GL when imported: a bad value fails here, not mid-replay)

        from harness import replay
    except (RuntimeError, AttributeError, ImportError) as exc:
        # "invalid value for environment variable MUJOCO_GL: bogus"; with MUJOCO_GL=osmesa and no libOSMesa,
        # PyOpenGL's "'NoneType' object has no attribute 'glGetError'"
        gl = os.environ.get("MUJOCO_GL")
        if gl is None and "MUJOCO_GL" not in str(exc):
            raise
        print(
            f"error: MuJoCo could not start with MUJOCO_GL={gl} ({str(exc).splitlines()[0]}); "
            "try MUJOCO_GL=egl, or osmesa where libOSMesa is installed, or leave it unset",
            file=sys.stderr,
        )
        return 1
    try:
        return enjoy(args, replay)
    except (FileNotFoundError, ValueError, replay.RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def enjoy(args: argparse.Namespace, replay) -> int:
    """Replay the policy of ``args.run_dir`` (its final policy, latest checkpoint or an epoch's checkpoint, by
    ``replay.load_policy``) for ``args.episodes`` episodes; print each one's return and length, then the mean.
    Episode ``k`` starts from ``reset(seed=args.seed + k)``; without ``--seed`` the episodes are the run's own
    evaluation episodes at the loaded epoch, and when there are as many as an evaluation runs, ``metrics.csv``'s
    ``eval_return`` of that epoch is printed beside them. With ``args.video`` the episodes are recorded to that
    MP4. ``replay`` is :mod:`harness.replay` (:func:`main` imports it). Returns 0.

    :raises ValueError: for ``--no-deterministic`` with a policy other than TRPO's.
    """
    from harness.tracking import read_rows

    checkpoint = int(args.checkpoint) if args.checkpoint.isdigit() else args.checkpoint
    policy = replay.load_policy(args.run_dir, checkpoint)
    if not args.deterministic and policy.algo != "trpo":
        raise ValueError(f"--no-deterministic samples TRPO's Gaussian policy; {policy.algo}'s policy is deterministic")
    own_seeds = args.seed is None
    seeds = policy.eval_seeds(args.episodes) if own_seeds else [args.seed + k for k in range(args.episodes)]
    print(
        f"{policy.algo} on {policy.env['id']}, seed {policy.seed}, epoch {policy.epoch} ({policy.source}); "
        f"episodes from {'the run evaluation seeds' if own_seeds else f'reset(seed={args.seed}+k)'}"
    )
    env = policy.make_env(render_mode="rgb_array" if args.video else None)
    writer = replay.VideoWriter(args.video, replay.render_fps(env)) if args.video else None
    returns = []
    try:
        for k, seed in enumerate(seeds):
            episode_return, length = replay.run_episode(policy, env, int(seed), writer, args.deterministic)
            returns.append(episode_return)
            print(f"episode {k + 1}: return {episode_return:.2f}, {length} steps (reset seed {int(seed)})")
    finally:
        if writer is not None:
            writer.close()
        replay._close(env)
        policy.close()
    mean = sum(returns) / len(returns)
    print(f"mean return {mean:.2f} over {len(returns)} episode{'s' * (len(returns) > 1)}")
    if own_seeds and len(returns) == policy.eval_episodes:
        row = next((r for r in read_rows(args.run_dir / "metrics.csv") if r["epoch"] == policy.epoch), None)
        if row is not None and not math.isnan(row.get("eval_return", math.nan)):
            print(f"metrics.csv, epoch {policy.epoch}: eval_return {row['eval_return']:.2f} (the same episodes)")
    if writer is not None:
        print(f"video: {args.video} ({writer.frames} frames at {writer.fps:g} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
