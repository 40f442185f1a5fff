"""First-order optimizers for ES updates, with explicit state.

Sign convention: ``step`` takes the gradient of the objective to **maximise** and
returns the change to **add** to the parameters. Both follow the OpenAI starter
(``es_distributed/optimizers.py``), which Salimans et al. 2017 used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OptState:
    """Optimizer state: first and second moments (shape ``(d,)`` float64) and the step count."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0


class Optimizer:
    """Base class: ``init(d)`` makes a state, ``step(state, grad)`` returns ``(delta, new_state)``."""

    learning_rate: float

    def init(self, dim: int) -> OptState:
        return OptState(m=np.zeros(dim), v=np.zeros(dim), t=0)

    def step(self, state: OptState, grad: np.ndarray) -> tuple[np.ndarray, OptState]:
        raise NotImplementedError


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), bias correction folded into the step size."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def step(self, state: OptState, grad: np.ndarray) -> tuple[np.ndarray, OptState]:
        t = state.t + 1
        m = self.beta1 * state.m + (1.0 - self.beta1) * grad
        v = self.beta2 * state.v + (1.0 - self.beta2) * grad * grad
        a = self.learning_rate * np.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        return a * m / (np.sqrt(v) + self.eps), OptState(m=m, v=v, t=t)


@dataclass(frozen=True)
class SGDMomentum(Optimizer):
    """SGD with momentum as in the OpenAI starter: ``m <- mu m + (1 - mu) g``, step ``lr * m``."""

    learning_rate: float
    momentum: float = 0.9

    def step(self, state: OptState, grad: np.ndarray) -> tuple[np.ndarray, OptState]:
        m = self.momentum * state.m + (1.0 - self.momentum) * grad
        return self.learning_rate * m, OptState(m=m, v=state.v, t=state.t + 1)


OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, learning_rate: float, **kwargs) -> Optimizer:
    """``"adam"`` or ``"sgd"`` (with momentum). Extra keys go to the optimizer.

    :raises ValueError: for an unknown name.
    """
    if name == "adam":
        return Adam(learning_rate, **kwargs)
    if name == "sgd":
        return SGDMomentum(learning_rate, **kwargs)
    raise ValueError(f"unknown optimizer {name!r}; choose adam or sgd")
