"""Experiment harness comparing evolution strategies with policy-gradient methods
on Gymnasium MuJoCo tasks. See README.md and docs/DESIGN.md."""

__version__ = "0.1.0"
