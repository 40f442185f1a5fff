"""Toy landscapes: tasks with no simulator, ``env.kind: function``.

The fitness of a parameter vector is ``-loss(x)`` (the harness maximises fitness; the
landscapes are written as losses to minimise, as in the variational-optimization
literature). One function evaluation counts as one timestep; an evaluation is the loss at
the search distribution's mean.

Besides the loss, a landscape may give its derivative (for a plain gradient-descent
baseline) and its Gaussian-smoothed loss ``J(mu, sigma) = E[loss(mu + sigma * eps)]``,
``eps ~ N(0, I)``: the objective ES descends for a fixed ``sigma`` and VO over ``(mu, sigma)``
(Salimans et al. 2017, Sec. 2; Staines & Barber 2012). ``toy_1d`` and ``toy_2d`` are sums of
*separable terms*: each term is an amplitude times a product, over coordinates, of 1-D
Gaussian bumps and Gaussian-CDF steps. Smoothing a Gaussian of width ``w`` (or a Gaussian-CDF
step of width ``w``) with ``N(0, sigma^2)`` gives the same shape of width
``sqrt(w^2 + sigma^2)``, and independent noise per coordinate turns the expectation of a
product into the product of expectations, so ``J`` is exact in closed form. (Gauss-Hermite
quadrature would not be: its nodes are ``~sigma`` apart, coarser than the 0.015-wide walls.)

``toy_1d``, with ``G(x; c, w) = exp(-(x - c)^2 / (2 w^2))``, ``Phi`` the standard normal CDF and
``W(x; a, b, wa, wb) = Phi((x - a) / wa) - Phi((x - b) / wb)`` (about 1 on ``[a, b]``)::

    E(x) = 1.6                                      upland level
         - 0.6 W(x; -2.6, -1.0, 0.05, 0.05)         wide plateau: a flat valley at 1.0, middle -1.8
         - 1.6 W(x;  0.0,  2.6, 0.15, 0.05)         lowland at 0; its left edge (width 0.15) is the
                                                    slope down from the upland
         + 3.0 G(x; 0.0, 0.03)                      sharp narrow peak on the middle of that slope
         - 0.4 G(x; 2.0, 0.35)                      gentle funnel around the well
         - 3.0 G(x; 2.0, 0.03)                      deep narrow well: the global minimum, E(2) = -3.4
         + 1.5 G(x; 1.88, 0.015) + 1.5 G(x; 2.12, 0.015)   the walls fencing it (E = 1.12 at their tops)
         + 0.5 max(0, |x| - 2.8)^2                  boundary: keeps wide search distributions near [-3, 3]

Why these sizes. The peak (0.03 wide) smoothed by sigma is a bump ``3 * 0.03 / sqrt(0.03^2 +
sigma^2)`` high and ``sqrt(0.03^2 + sigma^2)`` wide: at sigma 0.35 a 0.26 bump that no longer stops
a descent down the slope, at 0.2 a shoulder, at 0.1 still a barrier. The well's weight in ``J``
is its depth times its width, small: ``J`` at the well is -0.35 at sigma 0.35 (a mild dip in the
funnel, where ``E`` is -3.4), and the walls stop being local maxima of ``J`` above sigma of about
0.09 ("a wall in E becomes a small bump in J"). The funnel makes the minimum of ``J`` move
continuously onto the well as sigma shrinks. Tails of Gaussians and Gaussian-CDF steps fall below
1e-17 beyond about 9 widths and are absorbed by the level 1.0, so the plateau is flat to the last
bit 9 edge widths (0.45) inside its ends: fixed small-sigma ES there sees tied returns and no
gradient at all, not an exponentially small one that Adam would blow up.

``toy_2d`` (``x = (x1, x2)``) makes the same features with products of the same factors::

    E(x) = 1.6 - 0.6 W(x1; -2.6, -1.0) W(x2; -1.0, 1.0)               square plateau around (-1.8, 0)
               - 1.6 W(x1; 0.0, 2.6, 0.15, 0.05) W(x2; -1.4, 1.4)     lowland, slope along x1 = 0
               + 3.0 G(x1; 0.0, 0.03) W(x2; -1.4, 1.4)                sharp ridge across the slope
               - 0.4 G(x1; 2, 0.35) G(x2; 0.5, 0.35)                  funnel
               - 3.0 G(x1; 2, 0.06) G(x2; 0.5, 0.06)                  the well at (2, 0.5), E = -3.4
               + 1.5 [G(x1; 1.8, .015) + G(x1; 2.2, .015)] W(x2; 0.3, 0.7, .015, .015)
               + 1.5 W(x1; 1.8, 2.2, .015, .015) [G(x2; 0.3, .015) + G(x2; 0.7, .015)]   square fence
               + 0.5 sum_i max(0, |x_i| - 2.8)^2

(edge widths 0.05 where not given). The 2-D well is twice as wide as the 1-D one: its weight in
``J`` grows with its area while the fence's grows with its perimeter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def ndtr(x):
    """The standard normal CDF, elementwise (``scipy.special.ndtr``). SciPy is imported here on first
    use, on purpose: ``scipy.special`` costs about 0.2 s at import, and every rollout worker imports
    this module while only the toy landscapes need it."""
    from scipy.special import ndtr as scipy_ndtr

    return scipy_ndtr(x)


_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class Landscape:
    """A loss over ``R^dim`` (to minimise; the harness's fitness is ``-loss``).

    :ivar loss: ``x`` of shape ``(..., dim)`` -> loss of shape ``(...)`` float64 (vectorised).
    :ivar init: the default starting point, shape ``(dim,)``.
    :ivar bounds: ``(low, high)`` per dimension, the region the figures draw.
    :ivar grad: ``x`` of shape ``(..., dim)`` -> ``d loss / dx`` of shape ``(..., dim)``, or ``None``.
    :ivar smoothed: ``(mu, sigma)`` -> ``E[loss(mu + sigma * eps)]``, ``eps ~ N(0, I)``, of shape
        ``(...)``, with ``mu`` of shape ``(..., dim)`` and ``sigma`` broadcastable against it;
        ``None`` when there is no closed form. Use :func:`smoothed_loss`.
    :ivar features: named locations the tests and figures use (e.g. ``"well"``: the global minimum).
    """

    name: str
    dim: int
    loss: Callable[[np.ndarray], np.ndarray]
    init: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    description: str = ""
    grad: Callable[[np.ndarray], np.ndarray] | None = None
    smoothed: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    features: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- 1-D factors
@dataclass(frozen=True)
class Bump:
    """``exp(-(x - center)^2 / (2 width^2))``: height 1 at ``center``, standard deviation ``width``."""

    center: float
    width: float

    def value(self, x: np.ndarray) -> np.ndarray:
        """``exp(-(x - center)^2 / (2 width^2))`` elementwise, same shape as ``x``."""
        return np.exp(-0.5 * ((x - self.center) / self.width) ** 2)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``d value / dx = -(x - center) / width^2 * value(x)`` elementwise."""
        return -(x - self.center) / self.width**2 * self.value(x)

    def smoothed(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """``E[value(x + sigma * eps)]``: a bump of width ``s = sqrt(width^2 + sigma^2)`` and
        height ``width / s`` (the convolution of two Gaussians; the area is kept)."""
        s = np.sqrt(self.width**2 + sigma**2)
        return self.width / s * np.exp(-0.5 * ((x - self.center) / s) ** 2)


@dataclass(frozen=True)
class Window:
    """``Phi((x - low) / low_width) - Phi((x - high) / high_width)``: about 1 on ``[low, high]``
    and 0 outside, with Gaussian-CDF edges (``Phi`` the standard normal CDF). ``low = -inf``
    or ``high = +inf`` leaves that side open (a single step)."""

    low: float = -np.inf
    high: float = np.inf
    low_width: float = 0.05
    high_width: float = 0.05

    def _value(self, x: np.ndarray, lw, hw) -> np.ndarray:
        rise = ndtr((x - self.low) / lw) if np.isfinite(self.low) else 1.0
        fall = ndtr((x - self.high) / hw) if np.isfinite(self.high) else 0.0
        return rise - fall

    def value(self, x: np.ndarray) -> np.ndarray:
        """``Phi((x - low) / low_width) - Phi((x - high) / high_width)`` elementwise; an open side's term is 1 or 0."""
        return self._value(x, self.low_width, self.high_width)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``d value / dx`` elementwise: the Gaussian density of width ``low_width`` at ``low`` minus that
        of width ``high_width`` at ``high`` (an open side adds nothing); float64, same shape as ``x``."""
        out = np.zeros_like(x, dtype=np.float64)
        if np.isfinite(self.low):
            out = out + np.exp(-0.5 * ((x - self.low) / self.low_width) ** 2) / (_SQRT_2PI * self.low_width)
        if np.isfinite(self.high):
            out = out - np.exp(-0.5 * ((x - self.high) / self.high_width) ** 2) / (_SQRT_2PI * self.high_width)
        return out

    def smoothed(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """The same window with edge widths ``sqrt(width^2 + sigma^2)``: for ``eps ~ N(0, 1)``,
        ``E[Phi((x + sigma eps - a) / w)] = Phi((x - a) / sqrt(w^2 + sigma^2))``."""
        return self._value(x, np.sqrt(self.low_width**2 + sigma**2), np.sqrt(self.high_width**2 + sigma**2))


@dataclass(frozen=True)
class Term:
    """``amplitude * prod_i factors[i](x_i)``: one separable term of a landscape.

    Its smoothed value under independent noise ``x_i + sigma_i eps_i`` is the product of the
    factors' smoothed values (the expectation of a product of independent variables).
    """

    amplitude: float
    factors: tuple
    feature: str = ""

    def value(self, x: np.ndarray) -> np.ndarray:
        """``amplitude * prod_i factors[i].value(x[..., i])``: ``x`` of shape ``(..., dim)`` (one factor per
        coordinate) -> shape ``(...)``."""
        out = self.factors[0].value(x[..., 0])
        for i in range(1, len(self.factors)):
            out = out * self.factors[i].value(x[..., i])
        return self.amplitude * out

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``d value / dx``, shape ``(..., dim)``: per coordinate ``i``, ``amplitude`` times factor ``i``'s
        derivative times the other factors' values (product rule)."""
        values = [f.value(x[..., i]) for i, f in enumerate(self.factors)]
        cols = []
        for i, f in enumerate(self.factors):
            g = self.amplitude * f.derivative(x[..., i])
            for j, v in enumerate(values):
                if j != i:
                    g = g * v
            cols.append(np.broadcast_to(g, x.shape[:-1]))
        return np.stack(cols, axis=-1)

    def smoothed(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """``E[value(x + sigma * eps)]``, ``eps ~ N(0, I)``: ``amplitude`` times the product of each
        factor's ``smoothed(x[..., i], sigma[..., i])``; ``x`` and ``sigma`` of shape ``(..., dim)``, result
        ``(...)`` float64."""
        out = self.amplitude
        for i, f in enumerate(self.factors):
            out = out * f.smoothed(x[..., i], sigma[..., i])
        return np.broadcast_to(out, x.shape[:-1]).astype(np.float64)


@dataclass(frozen=True)
class Boundary:
    """``stiffness * sum_i max(0, |x_i| - limit)^2``: zero inside the box ``|x_i| <= limit``,
    a quadratic wall outside it, so that wide search distributions stay near the drawn region.

    Smoothed per coordinate with ``z ~ N(m, s^2)``:
    ``E[max(0, z)^2] = (m^2 + s^2) Phi(m / s) + m s phi(m / s)``.
    """

    stiffness: float
    limit: float
    feature: str = "boundary"

    def value(self, x: np.ndarray) -> np.ndarray:
        """``stiffness * sum_i max(0, |x_i| - limit)^2`` over the last axis: ``(..., dim)`` -> ``(...)``."""
        out = np.maximum(0.0, np.abs(x) - self.limit) ** 2
        return self.stiffness * out.sum(axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``2 * stiffness * sign(x_i) * max(0, |x_i| - limit)`` per coordinate, shape as ``x``."""
        return self.stiffness * 2.0 * np.sign(x) * np.maximum(0.0, np.abs(x) - self.limit)

    def smoothed(self, x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """``E[value(x + sigma * eps)]``, ``eps ~ N(0, I)``, exactly: the class docstring's formula for each
        side of each coordinate, summed over the last axis (``sigma = 0`` gives :meth:`value`); ``x`` and
        ``sigma`` of shape ``(..., dim)``, result ``(...)``."""

        def positive_part_squared(m, s):
            # s = 0 (no smoothing) is the limit r = +-inf: max(0, m)^2
            r = np.where(s > 0, m / np.where(s > 0, s, 1.0), np.where(m > 0, np.inf, -np.inf))
            pdf = np.exp(-0.5 * np.where(np.isfinite(r), r, 0.0) ** 2) / _SQRT_2PI * np.isfinite(r)
            return (m * m + s * s) * ndtr(r) + m * s * pdf

        out = positive_part_squared(x - self.limit, sigma) + positive_part_squared(-x - self.limit, sigma)
        return self.stiffness * out.sum(axis=-1)


def _as_points(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"points must have shape (..., {dim}), got {x.shape}")
    return x


@dataclass(frozen=True)
class TermSum:
    """A landscape as ``level + sum(terms)``, with its loss, derivative and exact smoothing."""

    dim: int
    level: float
    terms: tuple

    def loss(self, x: np.ndarray) -> np.ndarray:
        """``level + sum(term.value(x))``, ``x`` of shape ``(..., dim)`` -> ``(...)``.

        :raises ValueError: if ``x``'s last axis is not ``dim`` long.
        """
        x = _as_points(x, self.dim)
        return self.level + sum(t.value(x) for t in self.terms)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``d loss / dx``, shape ``(..., dim)`` (the terms' gradients summed).

        :raises ValueError: if ``x``'s last axis is not ``dim`` long.
        """
        x = _as_points(x, self.dim)
        return sum(t.grad(x) for t in self.terms) + np.zeros_like(x)

    def smoothed(self, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """``J(mu, sigma) = E[loss(mu + sigma * eps)]``, ``eps ~ N(0, I)``, in closed form (the terms'
        smoothed values summed): ``mu`` of shape ``(..., dim)``, ``sigma`` broadcastable against it -> ``(...)``.

        :raises ValueError: if ``mu``'s last axis is not ``dim`` long.
        """
        mu = _as_points(mu, self.dim)
        mu, sigma = np.broadcast_arrays(mu, np.asarray(sigma, dtype=np.float64))
        return self.level + sum(t.smoothed(mu, sigma) for t in self.terms)


# ----------------------------------------------------------------------------- sphere
def _sphere(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sum(x * x, axis=-1)


def _sphere_grad(x: np.ndarray) -> np.ndarray:
    return 2.0 * np.asarray(x, dtype=np.float64)


def _sphere_smoothed(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    mu, sigma = np.broadcast_arrays(np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64))
    return np.sum(mu * mu + sigma * sigma, axis=-1)  # E[(m + s eps)^2] = m^2 + s^2


# ----------------------------------------------------------------------------- toy landscapes
# Geometry shared by toy_1d and toy_2d (parameter units). Levels of the loss: upland 1.6,
# plateau 1.0, lowland 0.0, funnel -0.4 at its centre, bottom of the well about -3.4.
UPLAND = 1.6
PLATEAU = (-2.6, -1.0)  # x-extent of the plateau (its middle: -1.8)
PLATEAU_DEPTH = 0.6  # below the upland: the plateau's level is 1.0
EDGE = 0.05  # width of the plateau's edges and of the lowland's far edge
LOWLAND = (0.0, 2.6)  # x-extent of the lowland (level 0)
SLOPE_WIDTH = 0.15  # the lowland's left edge: the downhill slope from the upland, centred at x = 0
PEAK = (0.0, 3.0, 0.03)  # position, height, width of the sharp narrow peak, on the middle of the slope
FUNNEL = (0.4, 0.35)  # depth, width of the gentle basin around the well
WELL = (3.0, 0.03)  # depth, width of the deep narrow well (toy_1d)
WALL = (0.12, 1.5, 0.015)  # distance from the well's centre, height, width of each fencing wall
BOUNDARY = (0.5, 2.8)  # stiffness, limit of the quadratic rise beyond |x_i| = 2.8
IN_WELL_BELOW = -1.0  # a loss below this is inside the well: everything outside it is >= -0.4


def _toy_1d() -> Landscape:
    well = 2.0
    gap, wall_height, wall_width = WALL
    terms = TermSum(
        1,
        UPLAND,
        (
            Term(-PLATEAU_DEPTH, (Window(*PLATEAU, EDGE, EDGE),), "plateau"),
            Term(-UPLAND, (Window(*LOWLAND, SLOPE_WIDTH, EDGE),), "lowland"),
            Term(PEAK[1], (Bump(PEAK[0], PEAK[2]),), "peak"),
            Term(-FUNNEL[0], (Bump(well, FUNNEL[1]),), "funnel"),
            Term(-WELL[0], (Bump(well, WELL[1]),), "well"),
            Term(wall_height, (Bump(well - gap, wall_width),), "wall"),
            Term(wall_height, (Bump(well + gap, wall_width),), "wall"),
            Boundary(*BOUNDARY),
        ),
    )
    # Tails of Gaussians and Gaussian-CDF steps fall below 1e-17 (absorbed by the level 1.0
    # in float64) beyond ~9 widths: the plateau is exactly flat 9 edge widths inside its ends.
    interior = (PLATEAU[0] + 9 * EDGE, PLATEAU[1] - 9 * EDGE)
    features = {
        "plateau": PLATEAU,
        "plateau_interior": interior,
        "plateau_level": UPLAND - PLATEAU_DEPTH,
        "plateau_middle": (sum(PLATEAU) / 2,),
        "slope": (LOWLAND[0], SLOPE_WIDTH),
        "peak": (PEAK[0],),
        "peak_height": PEAK[1],
        "peak_width": PEAK[2],
        "lowland": LOWLAND,
        "well": (well,),
        "well_width": WELL[1],
        "walls": ((well - gap,), (well + gap,)),
        "wall_height": wall_height,
        "in_well_below": IN_WELL_BELOW,
    }
    return Landscape(
        "toy_1d",
        1,
        terms.loss,
        (-1.5,),
        ((-3.0, 3.0),),
        "1-D loss with a wide plateau, a sharp narrow peak on a slope and a deep narrow fenced well "
        "(the global minimum, -3.4 at x = 2); harness/envs/landscapes.py documents every term",
        terms.grad,
        terms.smoothed,
        features,
    )


def _toy_2d() -> Landscape:
    well = (2.0, 0.5)
    half_side = 0.2  # the fence is a square, 0.2 from the well's centre on every side
    height, width = WALL[1], WALL[2]
    lowland_y = Window(-1.4, 1.4, EDGE, EDGE)

    def side(c: float) -> Window:
        return Window(c - half_side, c + half_side, width, width)

    terms = TermSum(
        2,
        UPLAND,
        (
            Term(-PLATEAU_DEPTH, (Window(*PLATEAU, EDGE, EDGE), Window(-1.0, 1.0, EDGE, EDGE)), "plateau"),
            Term(-UPLAND, (Window(*LOWLAND, SLOPE_WIDTH, EDGE), lowland_y), "lowland"),
            Term(PEAK[1], (Bump(PEAK[0], PEAK[2]), lowland_y), "peak"),
            Term(-FUNNEL[0], (Bump(well[0], FUNNEL[1]), Bump(well[1], FUNNEL[1])), "funnel"),
            # twice as wide as in 1-D: a 2-D well's weight in J grows with its area, w^2, while the
            # fence's grows with its perimeter, so a narrower well would be a bump in J at large sigma
            Term(-WELL[0], (Bump(well[0], 2 * WELL[1]), Bump(well[1], 2 * WELL[1])), "well"),
            Term(height, (Bump(well[0] - half_side, width), side(well[1])), "wall"),
            Term(height, (Bump(well[0] + half_side, width), side(well[1])), "wall"),
            Term(height, (side(well[0]), Bump(well[1] - half_side, width)), "wall"),
            Term(height, (side(well[0]), Bump(well[1] + half_side, width)), "wall"),
            Boundary(*BOUNDARY),
        ),
    )
    features = {
        "plateau": (PLATEAU, (-1.0, 1.0)),
        "plateau_interior": ((PLATEAU[0] + 9 * EDGE, PLATEAU[1] - 9 * EDGE), (-1.0 + 9 * EDGE, 1.0 - 9 * EDGE)),
        "plateau_level": UPLAND - PLATEAU_DEPTH,
        "plateau_middle": (sum(PLATEAU) / 2, 0.0),
        "peak": (PEAK[0],),
        "lowland": (LOWLAND, (-1.4, 1.4)),
        "well": well,
        "well_width": 2 * WELL[1],
        "fence_half_side": half_side,
        "wall_height": height,
        "in_well_below": IN_WELL_BELOW,
    }
    return Landscape(
        "toy_2d",
        2,
        terms.loss,
        (-1.5, 0.3),
        ((-3.0, 3.0), (-3.0, 3.0)),
        "2-D analogue of toy_1d: a square plateau, a sharp ridge across the slope, and a deep narrow "
        "well fenced by a square of walls (the global minimum, -3.4 at (2, 0.5))",
        terms.grad,
        terms.smoothed,
        features,
    )


LANDSCAPES: dict[str, Landscape] = {
    "sphere": Landscape(
        "sphere",
        2,
        _sphere,
        (1.0, -1.0),
        ((-2.0, 2.0), (-2.0, 2.0)),
        "||x||^2: a bowl, minimum 0 at the origin (sanity checks)",
        _sphere_grad,
        _sphere_smoothed,
        {"minimum": (0.0, 0.0)},
    ),
    "toy_1d": _toy_1d(),
    "toy_2d": _toy_2d(),
}


def get_landscape(name: str) -> Landscape:
    """The landscape called ``name``.

    :raises ValueError: for an unknown name, listing the known ones.
    """
    if name not in LANDSCAPES:
        raise ValueError(f"unknown landscape {name!r}; available: {', '.join(sorted(LANDSCAPES))}")
    return LANDSCAPES[name]


def loss_grad(landscape: Landscape, x: np.ndarray) -> np.ndarray:
    """``d loss / dx`` of the unsmoothed loss at ``x`` (shape ``(..., dim)``), same shape: what
    plain gradient descent follows.

    :raises ValueError: if the landscape has no derivative.
    """
    if landscape.grad is None:
        raise ValueError(f"landscape {landscape.name!r} has no derivative")
    return landscape.grad(np.asarray(x, dtype=np.float64))


def smoothed_loss(landscape: Landscape, mu: np.ndarray, sigma, nodes: int = 64) -> np.ndarray:
    """The Gaussian-smoothed loss ``J(mu, sigma) = E[loss(mu + sigma * eps)]``, ``eps ~ N(0, I)``:
    what ES with a fixed ``sigma`` descends, and VO over ``(mu, sigma)`` (Salimans et al. 2017,
    Sec. 2; Staines & Barber 2012). ``J`` is a loss too (minimised; ES's fitness is ``-J``).

    Exact (closed form) when the landscape provides it; otherwise Gauss-Hermite quadrature on a
    tensor grid of ``nodes`` per dimension, exact for polynomials up to degree ``2 nodes - 1``
    but wrong for features narrower than about ``sigma * 4 / sqrt(nodes)``.

    :param mu: shape ``(..., dim)``.
    :param sigma: scalar, ``(dim,)`` (one per coordinate) or any shape broadcastable against
        ``mu`` (e.g. ``(..., 1)``: one per point); parameter units, >= 0.
    :returns: shape ``(...)`` float64.
    :raises ValueError: for a negative sigma or points of the wrong size.
    """
    mu = _as_points(mu, landscape.dim)
    sigma = np.asarray(sigma, dtype=np.float64)
    if np.any(sigma < 0):
        raise ValueError("sigma must be >= 0")
    if landscape.smoothed is not None:
        return landscape.smoothed(mu, sigma)
    t, w = np.polynomial.hermite.hermgauss(nodes)  # int f(t) exp(-t^2) dt; eps = sqrt(2) t
    grids = np.meshgrid(*([np.sqrt(2.0) * t] * landscape.dim), indexing="ij")
    eps = np.stack([g.ravel() for g in grids], axis=-1)  # (nodes^dim, dim)
    weights = np.prod(np.meshgrid(*([w / np.sqrt(np.pi)] * landscape.dim), indexing="ij"), axis=0).ravel()
    mu_b, sigma_b = np.broadcast_arrays(mu, sigma)
    values = landscape.loss(mu_b[..., None, :] + sigma_b[..., None, :] * eps)
    return values @ weights
