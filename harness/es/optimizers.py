"""First-order optimizers for ES updates, with explicit state.

Sign convention: ``step`` takes the gradient of the objective to **maximise** and
returns the change to **add** to the parameters. Adam and SGD follow the OpenAI starter
(``es_distributed/optimizers.py``), which Salimans et al. 2017 used; ClipUp follows
Toklu et al. 2020, the default centre optimizer of evotorch's PGPE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from harness.es import checks

#: an optimizer's own state class
OptState = TypeVar("OptState")


class Optimizer(Generic[OptState]):
    """Base class, generic over the optimizer's state class ``OptState``: ``init(d)`` makes the state (a
    frozen dataclass of float64 ``(d,)`` arrays and a step count ``t``), ``step(state, grad)``
    returns ``(delta, new_state)``."""

    learning_rate: float

    def init(self, dim: int) -> OptState:
        """The initial state for ``dim`` parameters; each subclass defines it.

        :raises NotImplementedError: on the base class.
        """
        raise NotImplementedError

    def step(self, state: OptState, grad: np.ndarray) -> tuple[np.ndarray, OptState]:
        """``(delta, new_state)`` for the ascent direction ``grad`` (shape ``(d,)``): ``delta``, shape
        ``(d,)``, is added to the parameters by the caller; ``state`` is left as it is.

        :raises NotImplementedError: on the base class.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class AdamState:
    """Adam's first and second moments (shape ``(d,)`` float64) and step count."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0


@dataclass(frozen=True)
class Adam(Optimizer[AdamState]):
    """Adam (Kingma & Ba 2015, Algorithm 1), bias correction folded into the step size."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        checks.in_range("beta1", self.beta1, 0, 1)
        checks.in_range("beta2", self.beta2, 0, 1)

    def init(self, dim: int) -> AdamState:
        """Zero moments ``m`` and ``v`` (shape ``(dim,)`` float64), ``t = 0``."""
        return AdamState(m=np.zeros(dim), v=np.zeros(dim), t=0)

    def step(self, state: AdamState, grad: np.ndarray) -> tuple[np.ndarray, AdamState]:
        """One step of Kingma & Ba 2015, Algorithm 1, with the bias correction moved into the step size (the
        reordering the paper gives after Algorithm 1, as the starter does):
        ``delta = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)``, so ``eps`` is
        added to the uncorrected ``sqrt(v)``."""
        t = state.t + 1
        m = self.beta1 * state.m + (1.0 - self.beta1) * grad
        v = self.beta2 * state.v + (1.0 - self.beta2) * grad * grad
        a = self.learning_rate * np.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        return a * m / (np.sqrt(v) + self.eps), AdamState(m=m, v=v, t=t)


@dataclass(frozen=True)
class MomentumState:
    """The momentum average of the gradients (shape ``(d,)`` float64) and step count."""

    m: np.ndarray
    t: int = 0


@dataclass(frozen=True)
class SGDMomentum(Optimizer[MomentumState]):
    """SGD with momentum as in the OpenAI starter: ``m <- mu m + (1 - mu) g``, step ``lr * m``."""

    learning_rate: float
    momentum: float = 0.9

    def __post_init__(self) -> None:
        checks.in_range("momentum", self.momentum, 0, 1)

    def init(self, dim: int) -> MomentumState:
        """Zero momentum ``m`` (shape ``(dim,)`` float64), ``t = 0``."""
        return MomentumState(m=np.zeros(dim), t=0)

    def step(self, state: MomentumState, grad: np.ndarray) -> tuple[np.ndarray, MomentumState]:
        """``m <- momentum * m + (1 - momentum) * grad``; ``delta = learning_rate * m``."""
        m = self.momentum * state.m + (1.0 - self.momentum) * grad
        return self.learning_rate * m, MomentumState(m=m, t=state.t + 1)


@dataclass(frozen=True)
class Nesterov(SGDMomentum):
    """Nesterov's accelerated gradient (Sutskever, Martens, Dahl & Hinton 2013, Eq. 3-4), in the
    starter's averaged form of momentum, as NAdam writes it (Dozat 2016, Eq. 7 without the second
    moment): ``m <- mu m + (1 - mu) g``, step ``lr * (mu m + (1 - mu) g)``, the momentum step taken
    from the point it is about to reach. With ``momentum = 0`` it is plain SGD, step ``lr * g``.
    Its keys and state are :class:`SGDMomentum`'s.
    """

    def step(self, state: MomentumState, grad: np.ndarray) -> tuple[np.ndarray, MomentumState]:
        """``m <- momentum * m + (1 - momentum) * grad``, then
        ``delta = learning_rate * (momentum * m + (1 - momentum) * grad)`` with the new ``m`` (class docstring)."""
        m = self.momentum * state.m + (1.0 - self.momentum) * grad
        return self.learning_rate * (self.momentum * m + (1.0 - self.momentum) * grad), MomentumState(
            m=m, t=state.t + 1
        )


@dataclass(frozen=True)
class ClipUpState:
    """ClipUp's velocity (shape ``(d,)`` float64, parameter units) and step count."""

    velocity: np.ndarray
    t: int = 0


@dataclass(frozen=True)
class ClipUp(Optimizer[ClipUpState]):
    """ClipUp: Toklu, Liskowski & Srivastava 2020, "ClipUp: A Simple and Powerful Optimizer
    for Distribution-based Policy Evolution" (arXiv 2008.02387), Algorithm 1.

    ``v <- momentum * v + learning_rate * g / ||g||``, then ``v`` is clipped to norm
    ``max_speed``; the step is ``v``. Only the gradient's direction is used, so a step has a
    length in parameter units that does not depend on the fitness scale. A zero gradient
    (e.g. every return tied) has no direction: it adds nothing and the velocity only decays,
    instead of dividing by zero.

    :param learning_rate: the step size (parameter units), evotorch's ``center_learning_rate``.
    :param momentum: 0.9 as in the paper and evotorch.
    :param max_speed: the velocity's norm bound; ``None`` = ``2 * learning_rate``, the paper's
        rule of thumb and evotorch's default.
    """

    learning_rate: float
    momentum: float = 0.9
    max_speed: float | None = None

    def __post_init__(self) -> None:
        checks.in_range("momentum", self.momentum, 0, 1)
        checks.check(
            self.max_speed is None or (checks.is_number(self.max_speed) and self.max_speed > 0),
            f"max_speed must be positive or null (2 * algo.learning_rate), got {self.max_speed!r}",
        )

    def init(self, dim: int) -> ClipUpState:
        """Zero velocity (shape ``(dim,)`` float64), ``t = 0``."""
        return ClipUpState(velocity=np.zeros(dim), t=0)

    def step(self, state: ClipUpState, grad: np.ndarray) -> tuple[np.ndarray, ClipUpState]:
        """``v <- momentum * v + learning_rate * grad / ||grad||`` (the last term left out for a zero
        ``grad``), then ``v`` scaled down to norm ``max_speed`` (``2 * learning_rate`` if unset) if longer;
        ``delta = v`` (Toklu et al. 2020, Algorithm 1)."""
        max_speed = 2.0 * self.learning_rate if self.max_speed is None else self.max_speed
        norm = float(np.linalg.norm(grad))
        v = self.momentum * state.velocity
        if norm > 0:
            v = v + (self.learning_rate / norm) * grad
        speed = float(np.linalg.norm(v))
        if speed > max_speed:
            v = v * (max_speed / speed)
        return v, ClipUpState(velocity=v, t=state.t + 1)


OPTIMIZERS = {"adam": Adam, "sgd": SGDMomentum, "nesterov": Nesterov, "clipup": ClipUp}


def make_optimizer(name: str, learning_rate: float, **kwargs: Any) -> Optimizer[Any]:
    """``"adam"``, ``"sgd"`` (with momentum; ``momentum: 0`` is plain SGD), ``"nesterov"`` or
    ``"clipup"``. Extra keys go to the optimizer.

    :raises ValueError: for an unknown name.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate, **kwargs)
