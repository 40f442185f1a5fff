"""Entry point: ``python -m harness algo=es env=HalfCheetah [key=value ...]`` (``-m`` to sweep).

Compose (Hydra) -> validate -> build the trainer -> run. Nothing else lives here.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

# Quiet by default, whatever starts the program (make, a shell, a cluster script): W&B's banners
# and run summaries, and MuJoCo's search for an OpenGL context, which no run needs. Set
# WANDB_SILENT=false or MUJOCO_GL to something else to change either.
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MUJOCO_GL", "egl")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from harness.config import ConfigError, validate  # noqa: E402

log = logging.getLogger("harness")


def resolved_config(cfg: DictConfig) -> dict:
    """The config as a plain dict with interpolations resolved and ``workers.n`` filled in."""
    from harness.workers import default_num_workers

    data = OmegaConf.to_container(cfg, resolve=True)
    if data["workers"]["n"] is None:
        data["workers"]["n"] = default_num_workers() if data["workers"]["backend"] != "serial" else 1
    return data


def _remove_unused_run_dir(run_dir: Path) -> None:
    """Remove the run directory Hydra made for a job that never started, if it holds nothing but
    Hydra's own files (``.hydra/`` and the job log): a rejected config leaves no run behind."""
    if not run_dir.is_dir():
        return
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log"}
    if {p.name for p in run_dir.iterdir()} <= hydra_files:
        logging.shutdown()  # close the job log before its folder goes
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.algos import get_algo
    from harness.runner import Runner

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        validate(cfg)
    except ConfigError as exc:
        print(f"error: invalid config: {exc}", file=sys.stderr)
        _remove_unused_run_dir(Path(run_dir))
        sys.exit(2)
    data = resolved_config(cfg)
    algo = get_algo(data["algo"]["name"])
    try:
        summary = Runner(data, run_dir, lambda c: algo.make_trainer(OmegaConf.create(c))).run()
    except KeyboardInterrupt:
        print(f"interrupted; run directory: {run_dir}", file=sys.stderr)
        sys.exit(130)
    print(f"run directory: {run_dir}")
    if summary["status"] == "interrupted":
        print(f"interrupted ({summary['stop_reason']}) after {summary['epochs']} epochs", file=sys.stderr)
        sys.exit(130)  # also ends a multirun sweep
    print(f"final eval_return: {summary['eval_return']:.2f} after {summary['timesteps']} timesteps, "
          f"{summary['epochs']} epochs, {summary['wall_time_s']:.1f} s")
    return summary["eval_return"]


if __name__ == "__main__":
    main()
