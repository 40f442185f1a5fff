"""Range checks of hyperparameters, shared by the core's config dataclasses and by
:mod:`harness.config` (which turns their ``ValueError`` into a ``ConfigError``). Each message
names the key as a user writes it (``algo.sigma``) and the value it got.

Pure Python and numpy, so the ES core stays free of the rest of the harness.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TypeGuard

import numpy as np


def is_number(value: object) -> TypeGuard[float]:
    """An int or float (NumPy's included), not a bool (YAML's ``true`` is not a number here).
    To a type checker, ``value`` is a float where this is true."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value: object, minimum: int) -> bool:
    """An integer (Python's or NumPy's, not a bool) >= ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and int(value) >= minimum


def check(condition: bool, message: str) -> None:
    """:raises ValueError: with ``message`` unless ``condition``."""
    if not condition:
        raise ValueError(message)


def positive(key: str, value: object) -> None:
    """:raises ValueError: unless ``value`` is a finite number > 0."""
    check(is_number(value) and 0 < value < math.inf, f"{key} must be a positive finite number, got {value!r}")


def integer(key: str, value: object, minimum: int, meaning: str = "") -> None:
    """:raises ValueError: unless ``value`` is an integer >= ``minimum`` (``meaning`` in brackets)."""
    what = f" ({meaning})" if meaning else ""
    check(is_int(value, minimum), f"{key} must be an integer >= {minimum}{what}, got {value!r}")


def boolean(key: str, value: object) -> None:
    """:raises ValueError: unless ``value`` is true or false."""
    check(isinstance(value, bool), f"{key} must be true or false, got {value!r}")


def one_of(key: str, value: object, choices: Iterable[str]) -> None:
    """:raises ValueError: unless ``value`` is one of ``choices``, listing them."""
    choices = tuple(choices)
    check(value in choices, f"{key} must be one of {', '.join(choices)}, got {value!r}")


def in_range(key: str, value: object, low: float, high: float, closed: str = "[)") -> None:
    """:raises ValueError: unless ``value`` is a number in the interval ``low, high`` whose ends
    ``closed`` gives as brackets: ``"[)"``, ``"()"``, ``"[]"`` or ``"(]"``."""
    inside = (
        is_number(value)
        and (value >= low if closed[0] == "[" else value > low)
        and (value <= high if closed[1] == "]" else value < high)
    )
    check(inside, f"{key} must be in {closed[0]}{low:g}, {high:g}{closed[1]}, got {value!r}")
