"""Entry point: ``python -m harness algo=es env=HalfCheetah [key=value ...]`` (``-m`` to sweep).

Compose (Hydra) -> validate -> build the trainer -> run. Nothing else lives here.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from harness.config import ConfigError, validate

log = logging.getLogger("harness")


def resolved_config(cfg: DictConfig) -> dict:
    """The config as a plain dict with interpolations resolved and ``workers.n`` filled in."""
    from harness.workers import default_num_workers

    data = OmegaConf.to_container(cfg, resolve=True)
    if data["workers"]["n"] is None:
        data["workers"]["n"] = default_num_workers() if data["workers"]["backend"] != "serial" else 1
    return data


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.algos import get_algo
    from harness.runner import Runner

    try:
        validate(cfg)
    except ConfigError as exc:
        log.error("invalid config: %s", exc)
        print(f"error: invalid config: {exc}", file=sys.stderr)
        sys.exit(2)
    data = resolved_config(cfg)
    run_dir = HydraConfig.get().runtime.output_dir
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
