"""Experiment harness comparing evolution strategies with policy-gradient methods
on Gymnasium MuJoCo tasks. See README.md and docs/DESIGN.md."""

__version__ = "0.1.0"

__all__ = ["load_policy"]


def __getattr__(name: str):
    # harness.load_policy, imported on first use: ``python -m harness`` does not pay for what replay imports
    if name == "load_policy":
        from harness.replay import load_policy

        return load_policy
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
