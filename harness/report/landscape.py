"""``python -m harness.report.landscape [--out results/figures/landscape] [--seeds 10]``: figures of
the toy landscapes (:mod:`harness.envs.landscapes`) and of ES, VO and gradient descent on them.

The runs here are in-process, through the :class:`~harness.es.strategies.base.Strategy` ask/tell API, not
the runner: a function evaluation takes microseconds, and the whole set of figures takes seconds.
They are the runner's runs all the same: the same strategies, the same noise table and streams
(:mod:`harness.seeding`: the table from ``(seed, NOISE_TABLE)``, generation ``g`` asks with
``(seed, STRATEGY, g)``), and perturbed points computed as the rollout worker computes them, so a
CLI run of ``experiments/landscape_toy.yaml`` with the same seed gives the same ``mu`` (a test
checks it).

Sign conventions: the landscapes are losses (lower is better); the strategies maximise fitness
``-loss``. Every figure plots the loss. ``fitness_shaping: none``: the strategies see raw
``-loss``, so their estimates are those of the gradient of the smoothed loss ``J`` itself
(Salimans et al. 2017, Sec. 2; Staines & Barber 2012), the objective the figures draw the
paths on. With centered ranks (the harness's default) they ascend a rank transform of the
fitness instead, which keeps the samples' order but not the well's depth; the VO figure's caption
reports the count with ranks too.

The first part (settings, :func:`descend`, :func:`run_es`, :func:`run_vo`,
:func:`gradient_descent`) is what the tests use; the second draws the figures and writes
``README.md`` with one caption per figure.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import seeding
from harness.envs.landscapes import Landscape, get_landscape, loss_grad, smoothed_loss
from harness.es.noise import NoiseTable
from harness.es.optimizers import Adam
from harness.es.strategies.openai_es import OpenAIES, OpenAIESBase, OpenAIESConfig
from harness.es.strategies.vo import VO, VOConfig
from harness.report.aggregate import learning_runs
from harness.report.figures import REPORT, save
from harness.report.load import load_runs
from harness.tracking import BEHAVIOURS_FILE

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- settings
# The sweep experiments/landscape_toy.yaml uses the same values (a test compares them).
POPULATION = 50  # function evaluations per generation (25 mirrored pairs)
LEARNING_RATE = 0.05  # Adam's step on mu, parameter units per generation at most (about)
GENERATIONS = 300
FITNESS_SHAPING = "none"  # raw fitness -loss: the estimators are those of grad J (module docstring)
NOISE_TABLE_SIZE = 1_000_000  # float32 entries; a toy needs few
SIGMA_LARGE = 0.35  # "local structure disappears" (BACKGROUND.md, The idea)
SIGMA_MEDIUM = 0.2  # "some remains"
SIGMA_SMALL = 0.05  # smaller than every feature but the walls and the peak
SMOOTHING_SIGMAS = (0.35, 0.2, 0.1)
VO_SIGMA0 = 1.0  # VO's initial sigma: wide enough that J has no local minimum on the plateau
VO_SIGMA_LEARNING_RATE = 0.05  # log-space step; slow enough that mu leaves the plateau before sigma shrinks
VO_SIGMA_MIN = 0.01
VO_SIGMA_MAX = 1.5
VO_SIGMA_MAX_CHANGE = 0.2  # estool / evosax / evotorch
GD_LEARNING_RATE = 0.002  # below 2 / (the loss's curvature at the peak's foot, ~300): a stable step
GD_STEPS = 3000

# Starting points (parameter units). "plateau" is the landscape's default (env.init), a poor start.
STARTS = {
    "toy_1d": {
        "plateau": (-1.5,),
        "plateau_left": (-2.4,),
        "plateau_right": (-1.2,),
        "slope": (-0.2,),
        "lowland": (1.2,),
    },
    "toy_2d": {
        "plateau": (-1.5, 0.3),
        "plateau_left": (-2.3, -0.6),
        "plateau_right": (-1.2, 0.7),
        "slope": (-0.2, 0.2),
        "lowland": (1.2, -0.2),
    },
}


@dataclass(frozen=True)
class Trajectory:
    """One descent, generation by generation (index 0: the start).

    :ivar mu: the search distribution's mean (or gradient descent's iterate), shape ``(G + 1, d)``.
    :ivar sigma: sigma (its mean over coordinates for a per-parameter sigma), shape ``(G + 1,)``;
        0 for gradient descent.
    :ivar loss: the unsmoothed loss at ``mu``, shape ``(G + 1,)``: the harness's ``-eval_return``.
    :ivar evaluations: cumulative function evaluations (timesteps) before each row, shape
        ``(G + 1,)``; gradient evaluations for gradient descent.
    """

    mu: np.ndarray
    sigma: np.ndarray
    loss: np.ndarray
    evaluations: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """The last ``mu``, shape ``(d,)``."""
        return self.mu[-1]


@functools.lru_cache(maxsize=32)
def noise_table(seed: int, size: int = NOISE_TABLE_SIZE) -> NoiseTable:
    """The run's shared noise table, from the stream ``(seed, NOISE_TABLE)`` as in a CLI run."""
    return NoiseTable(seeding.seed_sequence(seed, seeding.NOISE_TABLE), size)


def make_es(
    dim: int,
    seed: int,
    sigma: float,
    population: int = POPULATION,
    learning_rate: float = LEARNING_RATE,
    fitness_shaping: str = FITNESS_SHAPING,
) -> OpenAIES:
    """OpenAI-ES with fixed ``sigma``, mirrored sampling, Adam on mu, no weight decay (on a plateau
    it would be the only gradient, and Adam would turn it into full steps towards the origin)."""
    return OpenAIES(
        dim,
        noise_table(seed),
        Adam(learning_rate),
        OpenAIESConfig(
            population_size=population,
            sigma=sigma,
            weight_decay=0.0,
            antithetic=True,
            fitness_shaping=fitness_shaping,
            curvature=False,
            precondition=False,
            curvature_floor=0.01,
        ),
    )


def make_vo(
    dim: int,
    seed: int,
    sigma: float = VO_SIGMA0,
    population: int = POPULATION,
    learning_rate: float = LEARNING_RATE,
    sigma_learning_rate: float = VO_SIGMA_LEARNING_RATE,
    fitness_shaping: str = FITNESS_SHAPING,
) -> VO:
    """VO with one shared sigma in log space, starting at ``sigma``, Adam on mu, no weight decay."""
    return VO(
        dim,
        noise_table(seed),
        Adam(learning_rate),
        VOConfig(
            population_size=population,
            sigma=sigma,
            weight_decay=0.0,
            antithetic=True,
            fitness_shaping=fitness_shaping,
            curvature=False,
            precondition=False,
            curvature_floor=0.01,
            sigma_learning_rate=sigma_learning_rate,
            sigma_param="log",
            sigma_mode="shared",
            sigma_max_change=VO_SIGMA_MAX_CHANGE,
            sigma_min=VO_SIGMA_MIN,
            sigma_max=VO_SIGMA_MAX,
        ),
    )


def population_fitness(population, noise: NoiseTable, landscape: Landscape) -> np.ndarray:
    """Fitness ``-loss`` of every member of ``population``, shape ``population.fitness_shape``.

    The points are formed as :class:`~harness.workers.rollout.RolloutWorker` forms them, with
    the distribution's ``perturb`` (``center + (sign * sigma) * eps``, the float32 noise), a row of
    noise at a time, so the numbers are a CLI run's.
    """
    d = population.centers.shape[1]
    eps = noise.batch(population.noise_offsets, d)  # (m, d) float32
    points = np.stack(
        [
            noise.distribution.perturb(
                population.centers[m.center], population.sigma, eps[i // len(population.signs)], m.sign
            )
            for i, m in enumerate(population.members())
        ]
    )  # (size, d), in fitness order
    return -landscape.loss(points).reshape(population.fitness_shape)


def _sigma_of(strategy: OpenAIESBase, state) -> float:
    """VO's current sigma (mean over coordinates), or ES's fixed one."""
    sigma = getattr(state, "sigma", None)
    return float(np.mean(sigma)) if sigma is not None else float(strategy.config.sigma)


def descend(strategy: OpenAIESBase, landscape: Landscape, x0, generations: int, seed: int) -> Trajectory:
    """Run ``strategy`` (ES or VO) from ``x0`` for ``generations`` generations of ask/tell.

    :param x0: the starting mean, ``landscape.dim`` numbers.
    :param seed: the run seed: generation ``g`` asks with the stream ``(seed, STRATEGY, g)``; the
        strategy's noise table should be :func:`noise_table` ``(seed)`` for a CLI run's numbers.
    """
    state = strategy.init(np.asarray(x0, dtype=np.float64).reshape(landscape.dim))
    mus, sigmas = [state.params], [_sigma_of(strategy, state)]
    for g in range(generations):
        population = strategy.ask(state, seeding.generator(seed, seeding.STRATEGY, g))
        state, _ = strategy.tell(state, population, population_fitness(population, strategy.noise, landscape))
        mus.append(state.params)
        sigmas.append(_sigma_of(strategy, state))
    mu = np.array(mus)
    return Trajectory(
        mu, np.array(sigmas), landscape.loss(mu), np.arange(generations + 1) * strategy.config.population_size
    )


def run_es(landscape: Landscape, x0, sigma: float, seed: int, generations: int = GENERATIONS, **kwargs) -> Trajectory:
    """Fixed-sigma ES (:func:`make_es`, which ``kwargs`` go to) from ``x0``."""
    return descend(make_es(landscape.dim, seed, sigma, **kwargs), landscape, x0, generations, seed)


def run_vo(
    landscape: Landscape, x0, seed: int, sigma: float = VO_SIGMA0, generations: int = GENERATIONS, **kwargs
) -> Trajectory:
    """VO (:func:`make_vo`, which ``kwargs`` go to) from ``x0`` with initial ``sigma``."""
    return descend(make_vo(landscape.dim, seed, sigma, **kwargs), landscape, x0, generations, seed)


def gradient_descent(
    landscape: Landscape, x0, learning_rate: float = GD_LEARNING_RATE, steps: int = GD_STEPS
) -> Trajectory:
    """Plain gradient descent on the unsmoothed loss, ``x <- x - learning_rate * dloss/dx``."""
    x = np.asarray(x0, dtype=np.float64).reshape(landscape.dim)
    xs = [x]
    for _ in range(steps):
        x = x - learning_rate * loss_grad(landscape, x)
        xs.append(x)
    mu = np.array(xs)
    return Trajectory(mu, np.zeros(steps + 1), landscape.loss(mu), np.arange(steps + 1))


def in_well(landscape: Landscape, trajectory: Trajectory) -> bool:
    """Whether the run ended inside the fenced well: final loss below ``features["in_well_below"]``."""
    return bool(trajectory.loss[-1] < landscape.features["in_well_below"])


# ----------------------------------------------------------------------------- the runs the figures show
@dataclass
class Runs:
    """Every descent on one landscape, ``seeds`` seeds each (lists indexed by seed).

    ``es_plateau[start]``: ES with ``SIGMA_LARGE`` from the plateau starts; ``es_slope``: ES with
    ``SIGMA_MEDIUM`` from the slope above the peak, ``gd_slope`` gradient descent from there;
    ``vo``: VO from the poor start (the plateau); ``es_small``/``es_small_lowland``: ES with
    ``SIGMA_SMALL`` from the poor start and from the lowland near the fence; ``vo_ranks``: VO as
    ``vo`` but with centered-rank fitness shaping (empty unless asked for).
    """

    landscape: Landscape
    es_plateau: dict
    es_slope: list
    gd_slope: Trajectory
    vo: list
    es_small: list
    es_small_lowland: list
    vo_ranks: list

    @classmethod
    def compute(cls, landscape: Landscape, seeds: int, with_ranks: bool = False) -> Runs:
        """Run every descent the figures draw on ``landscape``, in process, for seeds ``0 .. seeds - 1``
        from :data:`STARTS` (gradient descent once: it is deterministic); ``vo_ranks`` only ``with_ranks``."""
        starts = STARTS[landscape.name]
        seed_list = range(seeds)
        return cls(
            landscape,
            {
                k: [run_es(landscape, starts[k], SIGMA_LARGE, s) for s in seed_list]
                for k in ("plateau_left", "plateau", "plateau_right")
            },
            [run_es(landscape, starts["slope"], SIGMA_MEDIUM, s) for s in seed_list],
            gradient_descent(landscape, starts["slope"]),
            [run_vo(landscape, starts["plateau"], s) for s in seed_list],
            [run_es(landscape, starts["plateau"], SIGMA_SMALL, s) for s in seed_list],
            [run_es(landscape, starts["lowland"], SIGMA_SMALL, s) for s in seed_list],
            [run_vo(landscape, starts["plateau"], s, fitness_shaping="centered_ranks") for s in seed_list]
            if with_ranks
            else [],
        )

    def counts(self) -> dict[str, int]:
        """How many seeds did what the claims say (the numbers the captions quote)."""
        f, L = self.landscape.features, self.landscape
        mid = np.asarray(f["plateau_middle"])
        peak = f["peak"][0]
        return {
            "seeds": len(self.vo),
            "es_large_middle": sum(np.linalg.norm(t.final - mid) < 0.1 for r in self.es_plateau.values() for t in r),
            "es_large_runs": sum(len(r) for r in self.es_plateau.values()),
            "es_medium_crossed": sum(t.final[0] > peak + 0.1 for t in self.es_slope),
            "gd_crossed": int(self.gd_slope.final[0] > peak),
            "vo_in_well": sum(in_well(L, t) for t in self.vo),
            "es_small_in_well": sum(in_well(L, t) for t in self.es_small),
            "es_small_lowland_in_well": sum(in_well(L, t) for t in self.es_small_lowland),
            "es_large_in_well": sum(in_well(L, t) for t in self.es_plateau["plateau"]),
            "vo_ranks_in_well": sum(in_well(L, t) for t in self.vo_ranks),
        }


# ----------------------------------------------------------------------------- drawing
SIGMA_COLORS = {0.35: "tab:blue", 0.2: "tab:green", 0.1: "tab:purple", 0.05: "tab:orange"}
VO_COLOR, GD_COLOR, LOSS_COLOR = "tab:red", "black", "0.25"
MAP_CMAP = "bone"  # dark = low loss; coloured paths stand out on grey
MAP_RANGE = (-1.5, 2.5)  # colour range of the loss maps (the well's bottom, -3.4, is clipped to black)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str, style=None) -> str:
    style = _style(style)
    # the paper style's figures use constrained layout (made to measure) or tight_layout: saved at their size
    save(fig, out, stem, style.dpi, tight=not style.paper)
    return stem


def _style(style):
    """``style`` (a :class:`harness.report.figures.FigureStyle`), the report's when ``None``."""
    return style or REPORT


def _styled(draw):
    """Draw with ``style=`` (keyword; the report's by default) in force: its fonts (:meth:`FigureStyle.rc`)
    while the figure is made and saved."""

    @functools.wraps(draw)
    def wrapper(*args, style=None, **kwargs):
        style = _style(style)
        with style.drawing():
            return draw(*args, style=style, **kwargs)

    return wrapper


def _size(style, report: tuple[float, float], paper_height: float) -> tuple[float, float]:
    """The report's figure size, or a double column ``paper_height`` high."""
    return (style.double, paper_height) if style.paper else report


def _fs(style, size: float):
    """An explicit font size in the report's style; the paper style's rc sizes otherwise."""
    return None if style.paper else size


def _mark_ends(ax, x, y, color, label=None, size=9):
    """A white circle at the start of a path and a star in its colour at the end."""
    ax.plot(x[0], y[0], "o", ms=size * 0.7, mfc="white", mec="black", zorder=5)
    ax.plot(x[-1], y[-1], "*", ms=size * 1.4, mfc=color, mec="black", mew=0.6, zorder=6, label=label)


def _end_legend(ax, **kw):
    """Add the start/end marker entries to ``ax``'s legend."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    big = kw.pop("marker_size", 11)
    handles += [
        Line2D([], [], ls="", marker="o", mfc="white", mec="black", ms=big * 0.6, label="start"),
        Line2D([], [], ls="", marker="*", ms=big, mfc="0.6", mec="black", label="end (one per seed)"),
    ]
    ax.legend(handles=handles, **kw)


@_styled
def figure_smoothed_1d(L: Landscape, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_1d_smoothed`` into ``out`` (PNG and PDF): toy_1d's loss and J at each of
    :data:`SMOOTHING_SIGMAS` (closed form), and a zoom on the fenced well. Returns ``(stem, caption)``, the
    caption's numbers computed from ``L``."""
    plt = _plt()
    f = L.features
    x = np.linspace(-3.0, 3.0, 6001)[:, None]
    fig, (ax, zoom) = plt.subplots(
        1,
        2,
        figsize=_size(style, (13, 4.8), 2.7),
        gridspec_kw={"width_ratios": [2.2, 1]},
        layout="constrained" if style.paper else None,
    )
    for a, lo, hi in ((ax, -3.0, 3.0), (zoom, 1.55, 2.45)):
        xs = x[(x[:, 0] >= lo) & (x[:, 0] <= hi)]
        a.plot(xs[:, 0], L.loss(xs), color=LOSS_COLOR, lw=0.8 if style.paper else 1.0, label="loss E(x)")
        for s in SMOOTHING_SIGMAS:
            a.plot(
                xs[:, 0],
                smoothed_loss(L, xs, s),
                color=SIGMA_COLORS[s],
                lw=1.3 if style.paper else 1.8,
                label=f"J(x) at σ = {s}",
            )
        a.set_xlim(lo, hi)
        a.set_xlabel("x (parameter)")
        a.grid(alpha=0.3)
    ax.set_ylim(-3.7, 4.1)
    zoom.set_ylim(-3.7, 2.0)
    ax.set_ylabel("loss (lower is better)")
    ax.axvspan(*f["plateau"], color="0.9", zorder=0)
    ax.annotate(
        "wide plateau",
        (f["plateau_middle"][0], 1.0),
        (f["plateau_middle"][0], 2.2),
        ha="center",
        arrowprops={"arrowstyle": "->"},
    )
    ax.annotate(
        "sharp narrow peak",
        (f["peak"][0], 1.6 + f["peak_height"] * 0.75),
        (-1.0, 3.6),
        ha="center",
        arrowprops={"arrowstyle": "->"},
    )
    ax.annotate(
        "deep narrow fenced well\n(global minimum)",
        (f["well"][0], -3.3),
        (0.6, -3.0),
        ha="center",
        arrowprops={"arrowstyle": "->"},
    )
    for w in f["walls"]:
        zoom.annotate(
            "wall",
            (w[0], float(L.loss(np.array(w)))),
            (w[0], 1.6),
            ha="center",
            fontsize=_fs(style, 9),
            arrowprops={"arrowstyle": "->"},
        )
    ax.set_title(
        "(a) toy_1d and its smoothed versions J(x) = E[E(x + σε)]"
        if style.paper
        else "toy_1d and its Gaussian-smoothed versions J(x) = E[E(x + σε)]"
    )
    zoom.set_title("(b) zoom on the fenced well" if style.paper else "zoom on the fenced well")
    ax.legend(loc="upper right", fontsize=_fs(style, 9))
    stem = _save(fig, out, "toy_1d_smoothed", style)
    j = {s: float(smoothed_loss(L, np.array(f["well"]), s)) for s in SMOOTHING_SIGMAS}
    return stem, (
        f"The toy 1-D loss E (grey) and J(x) = E[E(x + σε)], ε ~ N(0, 1), for σ = 0.35, 0.2, 0.1 (exact, "
        f"closed form); right: zoom on the well. The loss has a wide flat plateau (level 1.0 on [-2.6, -1.0]), "
        f"a sharp peak 3 high and 0.03 wide on the slope at x = 0, and the global minimum, a well 0.03 wide "
        f"at x = 2 (E = {float(L.loss(np.array(f['well']))):.1f}) in a gentle funnel, fenced by two walls 0.12 either "
        f"side (1.5 high on the funnel: E = {float(L.loss(np.array(f['walls'][0]))):.2f} at their tops). "
        f"σ = 0.35 smooths the local structure away: the peak is gone and the well is a dip to "
        f"{j[0.35]:.2f} in a basin, its walls invisible; σ = 0.2 keeps the well as a dip ({j[0.2]:.2f}) and "
        f"the peak as a shoulder; σ = 0.1 keeps most ({j[0.1]:.2f} at the well, a bump where the peak is)."
    )


@_styled
def figure_es_descent_1d(runs: Runs, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_1d_es_descent`` from toy_1d's ``runs``: (a) ES at ``SIGMA_LARGE`` from the three
    plateau starts, drawn on J; (b) ES at ``SIGMA_MEDIUM`` and gradient descent from the slope; (c), (d) their
    ``mu`` against function evaluations (gradient steps for gradient descent). Returns ``(stem, caption)``,
    the caption's counts from :meth:`Runs.counts`."""
    plt = _plt()
    L, f = runs.landscape, runs.landscape.features
    x = np.linspace(-3.0, 3.0, 3001)[:, None]
    fig, axs = plt.subplots(2, 2, figsize=_size(style, (13, 8.5), 5.0), layout="constrained" if style.paper else None)
    ms = 5 if style.paper else 9
    # (a) sigma = 0.35 from three points of the plateau
    ax = axs[0, 0]
    ax.plot(x[:, 0], L.loss(x), color=LOSS_COLOR, lw=0.8, alpha=0.6, label="loss E")
    ax.plot(
        x[:, 0],
        smoothed_loss(L, x, SIGMA_LARGE),
        color=SIGMA_COLORS[SIGMA_LARGE],
        lw=2,
        label=f"J at σ = {SIGMA_LARGE}",
    )
    for trajs in runs.es_plateau.values():
        for t in trajs:
            _mark_ends(ax, t.mu[:, 0], smoothed_loss(L, t.mu, SIGMA_LARGE), SIGMA_COLORS[SIGMA_LARGE], size=ms)
    ax.axvline(f["plateau_middle"][0], color="0.4", ls=":", lw=1)
    ax.set(
        xlim=(-3, 0.5),
        ylim=(0.8, 2.6),
        xlabel="x (parameter)",
        ylabel="loss (lower is better)",
        title=f"(a) ES, σ = {SIGMA_LARGE}, from the plateau"
        if style.paper
        else f"(a) ES, σ = {SIGMA_LARGE}, started on the plateau: settles in its middle",
    )
    _end_legend(ax, loc="upper right", fontsize=_fs(style, 9), marker_size=ms * 1.2)
    # (b) sigma = 0.2 from the slope above the peak, and gradient descent from the same point
    ax = axs[0, 1]
    xb = x[(x[:, 0] > -0.6) & (x[:, 0] < 2.4)]
    ax.plot(xb[:, 0], L.loss(xb), color=LOSS_COLOR, lw=0.8, alpha=0.7, label="loss E")
    ax.plot(
        xb[:, 0],
        smoothed_loss(L, xb, SIGMA_MEDIUM),
        color=SIGMA_COLORS[SIGMA_MEDIUM],
        lw=2,
        label=f"J at σ = {SIGMA_MEDIUM}",
    )
    for t in runs.es_slope:
        _mark_ends(ax, t.mu[:, 0], smoothed_loss(L, t.mu, SIGMA_MEDIUM), SIGMA_COLORS[SIGMA_MEDIUM], size=ms)
    gd = runs.gd_slope
    ax.plot(gd.mu[:, 0], gd.loss, color=GD_COLOR, lw=1.5 if style.paper else 2.5, label="gradient descent on E")
    _mark_ends(ax, gd.mu[:, 0], gd.loss, GD_COLOR, size=ms)
    ax.set(
        xlim=(-0.6, 2.4),
        ylim=(-3.7, 4.1),
        xlabel="x (parameter)",
        ylabel="loss (lower is better)",
        title=f"(b) ES, σ = {SIGMA_MEDIUM}, and gradient descent, from the slope"
        if style.paper
        else f"(b) ES, σ = {SIGMA_MEDIUM}, crosses the sharp peak; gradient descent stops",
    )
    _end_legend(ax, loc="upper right", fontsize=_fs(style, 9), marker_size=ms * 1.2)
    # (c), (d): the same runs against generations / evaluations
    ax = axs[1, 0]
    for trajs in runs.es_plateau.values():
        for t in trajs:
            ax.plot(t.evaluations, t.mu[:, 0], color=SIGMA_COLORS[SIGMA_LARGE], lw=0.8, alpha=0.7)
    ax.axhspan(*f["plateau"], color="0.9", zorder=0, label="plateau")
    ax.axhline(f["plateau_middle"][0], color="0.4", ls=":", lw=1, label="its middle")
    ax.set(xlabel="function evaluations", ylabel="mu", title=f"(c) mu of (a), {len(runs.vo)} seeds x 3 starts")
    ax.legend(loc="upper right", fontsize=_fs(style, 9))
    ax = axs[1, 1]
    for t in runs.es_slope:
        ax.plot(t.evaluations, t.mu[:, 0], color=SIGMA_COLORS[SIGMA_MEDIUM], lw=0.8, alpha=0.8)
    ax.plot(
        gd.evaluations,
        gd.mu[:, 0],
        color=GD_COLOR,
        lw=1.5 if style.paper else 2,
        label="gradient descent (x: gradient steps)",
    )
    ax.axhline(f["peak"][0], color="tab:brown", ls="--", lw=1, label="the peak")
    ax.axhline(f["well"][0], color="0.4", ls=":", lw=1, label="the well")
    ax.set(
        xlabel="function evaluations (ES) / gradient steps (GD)",
        ylabel="mu",
        title=f"(d) mu of (b), {len(runs.es_slope)} seeds",
    )
    ax.legend(loc="center right", fontsize=_fs(style, 9))
    if not style.paper:
        fig.tight_layout()
    stem = _save(fig, out, "toy_1d_es_descent", style)
    c = runs.counts()
    return stem, (
        f"ES descends the smoothed loss J. (a, c) ES with σ = {SIGMA_LARGE} started at three points of the "
        f"plateau (x = {STARTS['toy_1d']['plateau_left'][0]}, {STARTS['toy_1d']['plateau'][0]}, "
        f"{STARTS['toy_1d']['plateau_right'][0]}; {c['seeds']} seeds each) ends within 0.1 of the plateau's "
        f"middle (x = {f['plateau_middle'][0]}) in {c['es_large_middle']} of {c['es_large_runs']} runs, where "
        f"the loss itself is flat and gives no direction. (b, d) From x = {STARTS['toy_1d']['slope'][0]} on the "
        f"slope above the peak, gradient descent on E (step {GD_LEARNING_RATE}, {GD_STEPS} steps) stops at the "
        f"peak's foot (x = {runs.gd_slope.final[0]:.3f}); ES with σ = {SIGMA_MEDIUM} crosses it in "
        f"{c['es_medium_crossed']} of {c['seeds']} seeds (and then finds the well's dip in J). Points are "
        f"drawn on J at their σ. ES: {POPULATION} evaluations per generation (mirrored), Adam {LEARNING_RATE} "
        f"on mu, raw fitness -loss, {GENERATIONS} generations."
    )


def walls_visible_below(L: Landscape) -> float:
    """The largest sigma (on a log grid from 0.005 to 0.35) at which J of toy_1d still has a local
    maximum within 0.3 of the well, i.e. the walls still block a descent on J towards the well."""
    well = L.features["well"][0]
    x = np.linspace(well - 0.3, well + 0.3, 3001)[:, None]
    visible = 0.0
    for s in np.geomspace(0.005, 0.35, 120):
        j = smoothed_loss(L, x, s)
        if np.any((j[1:-1] > j[:-2]) & (j[1:-1] > j[2:])):
            visible = float(s)
    return visible


def _draw_vo_plane(fig, ax, L: Landscape, groups, style) -> None:
    """J(mu, sigma) of a 1-D landscape over the (mu, sigma) half-plane (sigma on a log axis), with paths:
    ``groups`` of ``(trajectories, colour, line width, label)``."""
    f = L.features
    mu = np.linspace(-3.0, 3.0, 721)
    sigma = np.geomspace(0.008, 1.6, 360)
    M, S = np.meshgrid(mu, sigma)
    J = smoothed_loss(L, M[..., None], S[..., None])
    mesh = ax.pcolormesh(M, S, J, cmap=MAP_CMAP, vmin=-2.0, vmax=2.5, shading="auto", rasterized=True)
    ax.contour(M, S, J, levels=np.arange(-3.25, 2.6, 0.25), colors="white", linewidths=0.35, alpha=0.6)
    fig.colorbar(
        mesh,
        ax=ax,
        label="J(mu, σ) (lower is better; clipped at -2)"
        if style.paper
        else "J(mu, σ) = E[E(mu + σε)] (lower is better; clipped at -2)",
    )
    ms = 5 if style.paper else 9
    for trajs, color, lw, label in groups:
        for i, t in enumerate(trajs):
            ax.plot(
                t.mu[:, 0],
                t.sigma,
                color=color,
                lw=lw * (0.7 if style.paper else 1),
                alpha=0.9,
                label=label if i == 0 else None,
            )
            _mark_ends(ax, t.mu[:, 0], t.sigma, color, size=ms)
    ax.axvline(f["well"][0], color="gold", ls=":", lw=1.2, label="the well (x = 2)")
    ax.set_yscale("log")
    ax.set(xlabel="mu", ylabel="σ (log scale)", xlim=(-3, 3), ylim=(sigma[0], sigma[-1]))
    _end_legend(ax, loc="lower left", fontsize=_fs(style, 9), framealpha=0.9, marker_size=ms * 1.2)


@_styled
def figure_vo_plane(runs: Runs, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_1d_vo_plane``: J(mu, sigma) of toy_1d over the (mu, sigma) half-plane with the paths of
    VO and of ES at ``SIGMA_LARGE`` and ``SIGMA_SMALL`` from the plateau. Returns ``(stem, caption)``; the
    caption quotes the centered-rank VO runs too, so ``runs`` should be computed ``with_ranks``."""
    plt = _plt()
    L = runs.landscape
    fig, ax = plt.subplots(figsize=_size(style, (12, 6.5), 3.6), layout="constrained" if style.paper else None)
    _draw_vo_plane(
        fig,
        ax,
        L,
        [
            (runs.vo, VO_COLOR, 1.2, "VO descent paths"),
            (runs.es_plateau["plateau"], SIGMA_COLORS[SIGMA_LARGE], 2, f"ES, σ fixed at {SIGMA_LARGE}"),
            (runs.es_small, SIGMA_COLORS[SIGMA_SMALL], 2, f"ES, σ fixed at {SIGMA_SMALL}"),
        ],
        style,
    )
    if not style.paper:
        ax.set_title("VO objective J(mu, σ) seen from above, with VO and ES paths from the plateau (x = -1.5)")
    stem = _save(fig, out, "toy_1d_vo_plane", style)
    c = runs.counts()
    return stem, (
        f"J(mu, σ) of toy_1d over the (mu, σ) half-plane, σ on a log axis, with the paths of VO (red, "
        f"{c['seeds']} seeds) and of ES at fixed σ (horizontal lines) from the poor start x = "
        f"{STARTS['toy_1d']['plateau'][0]} on the plateau. At σ = {VO_SIGMA0} J slopes from the plateau towards the "
        f"lowland; the well and its walls are a faint dip at large σ and become a deep narrow valley as σ "
        f"shrinks, with the walls as thin ridges beside it only below σ ≈ {walls_visible_below(L):.2f}. VO (initial σ {VO_SIGMA0}, σ "
        f"learned in log space with step {VO_SIGMA_LEARNING_RATE}, change capped at {VO_SIGMA_MAX_CHANGE:.0%} per "
        f"generation, bounds [{VO_SIGMA_MIN}, {VO_SIGMA_MAX}]) first moves mu off the plateau at large σ, then "
        f"shrinks σ into the well: {c['vo_in_well']} of {c['seeds']} seeds end in it. ES with σ = {SIGMA_SMALL} never "
        f"moves ({c['es_small_in_well']} of {c['seeds']}); ES with σ = {SIGMA_LARGE} settles in the plateau's middle "
        f"({c['es_large_in_well']} of {c['seeds']} in the well). With centered-rank fitness shaping instead of "
        f"raw fitness, VO ends in the well in {c['vo_ranks_in_well']} of {c['seeds']} seeds (its σ then stops "
        f"shrinking near {np.median([t.sigma[-1] for t in runs.vo_ranks]):.2f})."
    )


def _draw_es_vs_vo(axs, L: Landscape, groups, style, title: str | None) -> None:
    """Loss at mu, mu and sigma against function evaluations on three stacked axes, every trajectory of
    ``groups`` of ``(trajectories, colour, line style, label)``; ES with ``SIGMA_LARGE`` wide underneath
    (its loss, 1.0, is small-sigma ES's too)."""
    f = L.features
    for trajs, color, ls, label in groups:
        wide = color == SIGMA_COLORS[SIGMA_LARGE]
        for i, t in enumerate(trajs):
            kw = dict(
                color=color,
                ls=ls,
                lw=(4 if wide else 1.1) * (0.6 if style.paper else 1),
                alpha=0.5 if wide else 0.8,
                zorder=1 if wide else 2,
                label=label if i == 0 else None,
            )
            axs[0].plot(t.evaluations, t.loss, **kw)
            axs[1].plot(t.evaluations, t.mu[:, 0], **kw)
            axs[2].plot(t.evaluations, t.sigma, **kw)
    axs[0].axhline(f["in_well_below"], color="0.4", ls=":", lw=1, label="in the well below this")
    axs[0].set(
        ylabel="loss at mu\n(= -eval_return)" if style.paper else "loss at mu (= -eval_return)",
        ylim=(-3.7, 4.1),
        title=title,
    )
    axs[1].axhspan(*f["plateau"], color="0.9", zorder=0, label="plateau")
    axs[1].axhline(f["well"][0], color="0.4", ls=":", lw=1, label="the well")
    for i, w in enumerate(f["walls"]):
        axs[1].axhline(w[0], color="tab:brown", ls="-", lw=0.8, alpha=0.7, label="the walls" if i == 0 else None)
    axs[1].set(ylabel="mu", ylim=(-2.8, 2.4))
    axs[2].set(ylabel="σ (log scale)", yscale="log", xlabel="function evaluations (timesteps)")
    axs[0].legend(loc="upper right", fontsize=_fs(style, 8))
    handles, labels = axs[1].get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith(("VO", "ES"))]  # the landmarks only
    axs[1].legend([handles[i] for i in keep], [labels[i] for i in keep], loc="center right", fontsize=_fs(style, 8))
    for a in axs:
        a.grid(alpha=0.3)


@_styled
def figure_es_vs_vo_1d(runs: Runs, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_1d_es_vs_vo``: loss at mu, mu and sigma against function evaluations, every seed, of
    VO and of ES at ``SIGMA_LARGE`` and ``SIGMA_SMALL`` from the plateau, and of ES at ``SIGMA_SMALL`` from
    the lowland (dashed). Returns ``(stem, caption)``."""
    plt = _plt()
    L = runs.landscape
    fig, axs = plt.subplots(
        3, 1, figsize=_size(style, (11, 10), 5.2), sharex=True, layout="constrained" if style.paper else None
    )
    groups = [
        (runs.vo, VO_COLOR, "-", f"VO, σ from {VO_SIGMA0} (learned), from the plateau"),
        (runs.es_plateau["plateau"], SIGMA_COLORS[SIGMA_LARGE], "-", f"ES, σ = {SIGMA_LARGE}, from the plateau"),
        (runs.es_small, SIGMA_COLORS[SIGMA_SMALL], "-", f"ES, σ = {SIGMA_SMALL}, from the plateau"),
        (
            runs.es_small_lowland,
            SIGMA_COLORS[SIGMA_SMALL],
            "--",
            f"ES, σ = {SIGMA_SMALL}, from the lowland (x = {STARTS['toy_1d']['lowland'][0]})",
        ),
    ]
    _draw_es_vs_vo(
        axs,
        L,
        groups,
        style,
        None if style.paper else "From a poor start: ES with fixed σ against VO (every seed drawn)",
    )
    if not style.paper:
        fig.tight_layout()
    stem = _save(fig, out, "toy_1d_es_vs_vo", style)
    c = runs.counts()
    return stem, (
        f"ES against VO from the poor start x = {STARTS['toy_1d']['plateau'][0]} on the plateau (the env's "
        f"init), {c['seeds']} seeds each: loss at mu, mu, and σ against function evaluations. VO escapes the "
        f"plateau while σ is still large, then narrows σ to its floor {VO_SIGMA_MIN} inside the well "
        f"({c['vo_in_well']} of {c['seeds']} seeds end in it, loss ≈ -3.4). ES with σ = {SIGMA_SMALL} sees a flat "
        f"loss and never moves ({c['es_small_in_well']} of {c['seeds']}); with σ = {SIGMA_LARGE} it settles in the "
        f"plateau's middle ({c['es_large_in_well']} of {c['seeds']}). Dashed: ES with σ = {SIGMA_SMALL} started in "
        f"the lowland at x = {STARTS['toy_1d']['lowland'][0]} slides down the funnel and stops at the foot of the "
        f"left wall ({c['es_small_lowland_in_well']} of {c['seeds']} in the well): the fence. Brown lines: the "
        f"walls. Settings as in experiments/landscape_toy.yaml ({POPULATION} evaluations per generation, Adam "
        f"{LEARNING_RATE}, raw fitness)."
    )


def _map(ax, L: Landscape, sigma: float | None, lo=(-3.0, -3.0), hi=(3.0, 3.0), n=401):
    x = np.linspace(lo[0], hi[0], n)
    y = np.linspace(lo[1], hi[1], n)
    X, Y = np.meshgrid(x, y)
    P = np.stack([X, Y], axis=-1)
    Z = L.loss(P) if sigma is None else smoothed_loss(L, P, sigma)
    mesh = ax.pcolormesh(X, Y, Z, cmap=MAP_CMAP, vmin=MAP_RANGE[0], vmax=MAP_RANGE[1], shading="auto", rasterized=True)
    ax.contour(X, Y, Z, levels=np.arange(-3.0, 2.6, 0.2), colors="white", linewidths=0.3, alpha=0.5)
    ax.set_aspect("equal")
    ax.set(xlabel="x1", ylabel="x2", xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    return mesh


@_styled
def figure_smoothed_2d(L: Landscape, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_2d_smoothed``: maps of toy_2d's loss and of J at each of :data:`SMOOTHING_SIGMAS`
    (closed form; colours clipped to :data:`MAP_RANGE`). Returns ``(stem, caption)``."""
    plt = _plt()
    f = L.features
    if style.paper:  # one row of four maps across the page
        fig, axs = plt.subplots(1, 4, figsize=(style.double, 2.3), layout="constrained", squeeze=False)
    else:
        fig, axs = plt.subplots(2, 2, figsize=(11, 10.5), constrained_layout=True)
    for ax, s in zip(axs.flat, (None,) + SMOOTHING_SIGMAS):
        mesh = _map(ax, L, s, n=201 if style.paper else 401)
        ax.set_title("loss E(x)" if s is None else f"J(x) at σ = {s}")
        if style.paper and s is not None:
            ax.set_ylabel("")
    ax = axs[0, 0]
    arrow = {"arrowstyle": "->", "color": "white"}
    ax.annotate("plateau", f["plateau_middle"], (-2.6, 2.2), color="white", arrowprops=arrow)
    ax.annotate("sharp ridge", (0.0, -1.0), (-1.3, -2.3), color="white", arrowprops=arrow)
    ax.annotate(
        "well" if style.paper else "fenced well",
        f["well"],
        (1.1 if style.paper else 0.6, 2.2),
        color="white",
        arrowprops=arrow,
    )
    fig.colorbar(
        mesh,
        ax=axs,
        shrink=0.8 if style.paper else 0.6,
        label="loss (clipped to [-1.5, 2.5])" if style.paper else "loss (lower is better; clipped to [-1.5, 2.5])",
    )
    stem = _save(fig, out, "toy_2d_smoothed", style)
    j = {s: float(smoothed_loss(L, np.array(f["well"]), s)) for s in SMOOTHING_SIGMAS}
    wall_top = float(L.loss(np.array(f["well"]) - [f["fence_half_side"], 0.0]))
    return stem, (
        f"The toy 2-D loss (the 2-D analogue of toy_1d) and J = E[E(x + σε)], ε ~ N(0, I), for σ = 0.35, 0.2, "
        f"0.1, seen from above (dark = low). A square flat plateau (level 1.0) around (-1.8, 0); a sharp ridge "
        f"3 high, 0.03 wide across the slope at x1 = 0; the lowland (level 0) with a gentle funnel around the "
        f"global minimum, a well 0.06 wide at (2, 0.5) (E = {float(L.loss(np.array(f['well']))):.1f}) fenced by a "
        f"square of walls 1.5 high on the funnel, 0.2 from its centre (E = {wall_top:.2f} at the middle of a "
        f"side). J at the well: {j[0.35]:.2f} (σ = 0.35), {j[0.2]:.2f} (0.2), "
        f"{j[0.1]:.2f} (0.1); the ridge and the fence fade as σ grows."
    )


@_styled
def figure_descent_2d(runs: Runs, out: Path, style=None) -> tuple[str, str]:
    """Figure ``toy_2d_descent`` from toy_2d's ``runs``: (a) ES at ``SIGMA_LARGE`` from the plateau on J;
    (b) ES at ``SIGMA_MEDIUM`` and gradient descent from the slope, on J at ``SIGMA_MEDIUM``; (c) VO (coloured by
    its sigma) and ES at ``SIGMA_SMALL`` on the loss, with an inset on the fence; (d) loss at mu against function
    evaluations. Returns ``(stem, caption)``."""
    plt = _plt()
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    L, f = runs.landscape, runs.landscape.features
    fig = plt.figure(figsize=_size(style, (13, 11.5), 6.6), constrained_layout=True)
    axs = fig.subplots(2, 2)
    ms = 4.5 if style.paper else 7
    # (a) ES sigma 0.35 on J_0.35 from the plateau
    ax = axs[0, 0]
    _map(ax, L, SIGMA_LARGE, lo=(-3.0, -1.6), hi=(0.4, 1.6))
    for trajs in runs.es_plateau.values():
        for t in trajs:
            ax.plot(t.mu[:, 0], t.mu[:, 1], color=SIGMA_COLORS[SIGMA_LARGE], lw=1.0)
            _mark_ends(ax, t.mu[:, 0], t.mu[:, 1], SIGMA_COLORS[SIGMA_LARGE], size=ms)
    ax.set_title(
        f"(a) ES, σ = {SIGMA_LARGE}, on J at σ = {SIGMA_LARGE}"
        if style.paper
        else f"(a) ES, σ = {SIGMA_LARGE}, on J at σ = {SIGMA_LARGE}: settles in the plateau's middle"
    )
    # (b) ES sigma 0.2 across the ridge on J_0.2, gradient descent on E
    ax = axs[0, 1]
    _map(ax, L, SIGMA_MEDIUM, lo=(-0.9, -1.3), hi=(2.5, 1.9))
    for t in runs.es_slope:
        ax.plot(t.mu[:, 0], t.mu[:, 1], color=SIGMA_COLORS[SIGMA_MEDIUM], lw=1.0)
        _mark_ends(ax, t.mu[:, 0], t.mu[:, 1], SIGMA_COLORS[SIGMA_MEDIUM], size=ms)
    gd = runs.gd_slope
    ax.plot(gd.mu[:, 0], gd.mu[:, 1], color="red", lw=2 if style.paper else 3, label="gradient descent on E")
    _mark_ends(ax, gd.mu[:, 0], gd.mu[:, 1], "red", size=ms)
    ax.plot([], [], color=SIGMA_COLORS[SIGMA_MEDIUM], label=f"ES, σ = {SIGMA_MEDIUM}")
    ax.legend(loc="lower right", fontsize=_fs(style, 9))
    ax.set_title(
        f"(b) ES and gradient descent on J at σ = {SIGMA_MEDIUM}"
        if style.paper
        else f"(b) on J at σ = {SIGMA_MEDIUM}: ES crosses the ridge, gradient descent stops"
    )
    # (c) VO and small-sigma ES from the poor start, on the loss itself, VO coloured by sigma
    ax = axs[1, 0]
    _map(ax, L, None)
    norm = LogNorm(VO_SIGMA_MIN, VO_SIGMA_MAX)
    for t in runs.vo:
        seg = np.stack([t.mu[:-1], t.mu[1:]], axis=1)
        lc = LineCollection(seg, cmap="cool", norm=norm, linewidths=1.6)
        lc.set_array(t.sigma[1:])
        ax.add_collection(lc)
        _mark_ends(ax, t.mu[:, 0], t.mu[:, 1], VO_COLOR, size=ms)
    for trajs, label in ((runs.es_small, "from the plateau"), (runs.es_small_lowland, "from the lowland")):
        for i, t in enumerate(trajs):
            ax.plot(
                t.mu[:, 0],
                t.mu[:, 1],
                color=SIGMA_COLORS[SIGMA_SMALL],
                lw=1.2,
                label=f"ES, σ = {SIGMA_SMALL}, {label}" if i == 0 else None,
            )
            _mark_ends(ax, t.mu[:, 0], t.mu[:, 1], SIGMA_COLORS[SIGMA_SMALL], size=ms)
    fig.colorbar(lc, ax=ax, shrink=0.7, label="VO's σ along its path")
    ax.legend(loc="upper left" if style.paper else "lower right", fontsize=_fs(style, 8))
    # inset: the fence and the well, where VO's σ is small
    w = np.asarray(f["well"])
    inset = ax.inset_axes([0.02, 0.02, 0.32, 0.32])  # over the empty upland, bottom left
    _map(inset, L, None, lo=tuple(w - 0.45), hi=tuple(w + 0.45), n=301)
    for t in runs.vo:
        seg = np.stack([t.mu[:-1], t.mu[1:]], axis=1)
        part = LineCollection(seg, cmap="cool", norm=norm, linewidths=1.2)
        part.set_array(t.sigma[1:])
        inset.add_collection(part)
        inset.plot(*t.final, "*", ms=ms + 1, mfc=VO_COLOR, mec="black", mew=0.5)
    for t in runs.es_small_lowland:
        inset.plot(t.mu[:, 0], t.mu[:, 1], color=SIGMA_COLORS[SIGMA_SMALL], lw=0.8)
        inset.plot(*t.final, "*", ms=ms + 1, mfc=SIGMA_COLORS[SIGMA_SMALL], mec="black", mew=0.5)
    inset.set(xlabel="", ylabel="", xticks=[], yticks=[])
    inset.set_title("well (zoom)" if style.paper else "zoom: the fenced well", fontsize=_fs(style, 8), pad=2)
    ax.set_title(
        "(c) on the loss: VO (coloured by σ), ES with small σ"
        if style.paper
        else "(c) on the loss: VO paths (coloured by σ) and ES with small σ"
    )
    # (d) loss at mu
    ax = axs[1, 1]
    for trajs, color, ls, label in (
        (runs.vo, VO_COLOR, "-", f"VO, σ from {VO_SIGMA0}, from the plateau"),
        (runs.es_plateau["plateau"], SIGMA_COLORS[SIGMA_LARGE], "-", f"ES, σ = {SIGMA_LARGE}, from the plateau"),
        (runs.es_small, SIGMA_COLORS[SIGMA_SMALL], "-", f"ES, σ = {SIGMA_SMALL}, from the plateau"),
        (runs.es_small_lowland, SIGMA_COLORS[SIGMA_SMALL], "--", f"ES, σ = {SIGMA_SMALL}, from the lowland"),
    ):
        wide = color == SIGMA_COLORS[SIGMA_LARGE]  # drawn wide underneath: it shares loss 1.0 with small-sigma ES
        for i, t in enumerate(trajs):
            ax.plot(
                t.evaluations,
                t.loss,
                color=color,
                ls=ls,
                lw=(4 if wide else 1.0) * (0.6 if style.paper else 1),
                alpha=0.5 if wide else 0.8,
                zorder=1 if wide else 2,
                label=label if i == 0 else None,
            )
    ax.axhline(f["in_well_below"], color="0.4", ls=":", lw=1, label="in the well below this")
    ax.set(
        xlabel="function evaluations (timesteps)",
        ylabel="loss at mu (= -eval_return)",
        ylim=(-3.7, 4.1),
        title="(d) loss at mu, every seed",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=_fs(style, 8))
    stem = _save(fig, out, "toy_2d_descent", style)
    c = runs.counts()
    s = STARTS["toy_2d"]
    return stem, (
        f"The same on toy_2d ({c['seeds']} seeds per setting, same settings as toy_1d). (a) ES with σ = "
        f"{SIGMA_LARGE} from three points of the plateau, drawn on J at σ = {SIGMA_LARGE}: {c['es_large_middle']} of "
        f"{c['es_large_runs']} runs end within 0.1 of its middle (-1.8, 0). (b) From {s['slope']} above the ridge, "
        f"gradient descent on E stops at the ridge's foot (x1 = {runs.gd_slope.final[0]:.3f}); ES with σ = "
        f"{SIGMA_MEDIUM} crosses it in {c['es_medium_crossed']} of {c['seeds']} seeds. (c) On the loss: VO from the "
        f"poor start {s['plateau']} (path coloured by its σ, from {VO_SIGMA0} down to {VO_SIGMA_MIN}) reaches the "
        f"fenced well in {c['vo_in_well']} of {c['seeds']} seeds; ES with σ = {SIGMA_SMALL} does not move from the "
        f"plateau ({c['es_small_in_well']} of {c['seeds']}) and, started in the lowland at {s['lowland']}, stops at "
        f"the fence ({c['es_small_lowland_in_well']} of {c['seeds']}); the inset zooms on the fence, which VO "
        f"crosses while its σ is still about {_fence_crossing_sigma(runs):.2f} (median over seeds), when the fence "
        f"is a small bump in J. (d) Loss at mu against function evaluations."
    )


def _fence_crossing_sigma(runs: Runs) -> float:
    """Median over VO runs of sigma at the first generation whose mu is inside toy_2d's fence."""
    well, half = np.asarray(runs.landscape.features["well"]), runs.landscape.features["fence_half_side"]
    sigmas = []
    for t in runs.vo:
        inside = np.max(np.abs(t.mu - well), axis=1) < half
        if inside.any():
            sigmas.append(t.sigma[np.argmax(inside)])
    return float(np.median(sigmas)) if sigmas else float("nan")


# ----------------------------------------------------------------------------- the sweep's run folders
@dataclass
class SweepGroup:
    """The CLI runs of one setting of a toy-landscape sweep (``experiments/landscape_toy.yaml``).

    :ivar label: e.g. ``"VO, σ from 1.0 (learned)"``; ``color`` its colour in the figures.
    :ivar runs: the run ids, in seed order, and ``trajectories`` theirs (index 0: the start, ``env.init``,
        then one row per evaluated epoch: ``mu`` from ``behaviours.csv``, the evaluated point; ``sigma``
        from ``metrics.csv`` ``sigma_mean`` for VO, ``algo.sigma`` otherwise; ``loss`` = -``eval_return``).
    """

    env: str
    algo: str
    sigma0: float
    label: str
    color: str
    runs: list
    trajectories: list

    def in_well(self, landscape: Landscape) -> int:
        """How many runs ended inside the fenced well (:func:`in_well`)."""
        return sum(in_well(landscape, t) for t in self.trajectories)


def sweep_groups(results_dir: Path) -> tuple[list[SweepGroup], list[str]]:
    """The toy-landscape runs below ``results_dir`` (each seed once, :func:`harness.report.load.load_runs`),
    as :class:`SweepGroup` per (landscape, algorithm, initial sigma).

    :returns: ``(groups, notes)``: ``notes`` names the runs left out and why (no ``behaviours.csv``, not a
        toy landscape, no evaluation).
    """
    import pandas as pd

    loaded = load_runs(results_dir)
    notes = [f"{run}: skipped ({why})" for run, why in loaded.skipped]
    runs = learning_runs(loaded.runs)
    found: dict[tuple, list] = {}
    for r in runs.sort_values(["env", "algo", "seed"]).itertuples():
        cfg = loaded.configs[r.run]
        if cfg.get("env.id") not in STARTS:
            notes.append(f"{r.run}: not a toy landscape ({cfg.get('env.id')})")
            continue
        L = get_landscape(cfg["env.id"])
        path = Path(r.run_dir) / BEHAVIOURS_FILE
        if not path.exists():
            notes.append(f"{r.run}: no {BEHAVIOURS_FILE} (mu unknown)")
            continue
        cols = [f"bc_{i}" for i in range(L.dim)]
        bcs = pd.read_csv(path)
        if not set(cols) <= set(bcs.columns):
            notes.append(f"{r.run}: {BEHAVIOURS_FILE} lacks {cols}")
            continue
        bcs[cols] = bcs[cols].apply(pd.to_numeric, errors="coerce")
        bcs = bcs[bcs["source"] == "eval"].dropna(subset=cols).groupby("epoch")[cols].mean()
        m = loaded.metrics[(loaded.metrics["run"] == r.run) & loaded.metrics["eval_return"].notna()]
        m = m[m["epoch"].isin(bcs.index)].sort_values("epoch")
        if m.empty:
            notes.append(f"{r.run}: no evaluated epoch with a behaviour")
            continue
        sigma0 = float(cfg["algo.sigma"])
        learned = "sigma_mean" in m and bool(m["sigma_mean"].notna().all())  # VO; ES has a fixed sigma
        sigma = m["sigma_mean"].to_numpy() if learned else np.full(len(m), sigma0)
        init = np.asarray(cfg.get("env.init") or L.init, dtype=np.float64).reshape(L.dim)
        mu = np.vstack([init, bcs.loc[m["epoch"]].to_numpy()])
        traj = Trajectory(
            mu,
            np.concatenate([[sigma0], sigma]),
            np.concatenate([L.loss(init[None])[:1], -m["eval_return"].to_numpy()]),
            np.concatenate([[0.0], m["timesteps"].to_numpy()]),
        )
        found.setdefault((cfg["env.id"], r.algo, sigma0), []).append((r.run, traj))
    groups = []
    for (env, algo, sigma0), items in sorted(found.items()):
        vo = algo == "vo"
        label = f"VO, σ from {sigma0:g} (learned)" if vo else f"{algo.upper().replace('_', '-')}, σ = {sigma0:g}"
        color = VO_COLOR if vo else SIGMA_COLORS.get(sigma0, "tab:gray")
        groups.append(SweepGroup(env, algo, sigma0, label, color, [i[0] for i in items], [i[1] for i in items]))
    return groups, notes


def _sweep_counts(L: Landscape, groups: list[SweepGroup]) -> str:
    return "; ".join(
        f"{g.label}: {g.in_well(L)} of {len(g.runs)} seeds end in the well (final σ median "
        f"{np.median([t.sigma[-1] for t in g.trajectories]):.3g})"
        for g in groups
    )


@_styled
def figure_sweep_es_vs_vo(
    groups: list[SweepGroup], out: Path, source: str = "the sweep", style=None
) -> tuple[str, str]:
    """:func:`figure_es_vs_vo_1d` of the sweep's own runs (toy_1d): loss at mu, mu and sigma against
    function evaluations, every seed."""
    plt = _plt()
    L = get_landscape("toy_1d")
    groups = [g for g in groups if g.env == "toy_1d"]
    fig, axs = plt.subplots(
        3, 1, figsize=_size(style, (11, 10), 5.2), sharex=True, layout="constrained" if style.paper else None
    )
    _draw_es_vs_vo(
        axs,
        L,
        [(g.trajectories, g.color, "-", f"{g.label} ({len(g.runs)} runs)") for g in groups],
        style,
        None if style.paper else f"{source}: ES against VO from the plateau (every seed drawn)",
    )
    if not style.paper:
        fig.tight_layout()
    stem = _save(fig, out, "toy_1d_sweep_es_vs_vo", style)
    return stem, (
        f"The runs of {source} (CLI runs, `experiments/landscape_toy.yaml`), read from their run folders: loss at "
        f"mu (= -eval_return), mu (the evaluated point, behaviours.csv) and σ (VO: metrics.csv sigma_mean) against "
        f"function evaluations, every seed, from the plateau start. {_sweep_counts(L, groups)}."
    )


@_styled
def figure_sweep_plane(groups: list[SweepGroup], out: Path, source: str = "the sweep", style=None) -> tuple[str, str]:
    """:func:`figure_vo_plane` with the sweep's own paths (toy_1d)."""
    plt = _plt()
    L = get_landscape("toy_1d")
    groups = [g for g in groups if g.env == "toy_1d"]
    fig, ax = plt.subplots(figsize=_size(style, (12, 6.5), 3.6), layout="constrained" if style.paper else None)
    _draw_vo_plane(
        fig,
        ax,
        L,
        [(g.trajectories, g.color, 1.2 if g.algo == "vo" else 2, f"{g.label} ({len(g.runs)} runs)") for g in groups],
        style,
    )
    if not style.paper:
        ax.set_title(f"VO objective J(mu, σ) seen from above, with the paths of {source}")
    stem = _save(fig, out, "toy_1d_sweep_vo_plane", style)
    return stem, (
        f"J(mu, σ) of toy_1d over the (mu, σ) half-plane (σ on a log axis) with the paths of {source} (CLI runs, "
        f"read from their run folders; start: white circle, end: star). {_sweep_counts(L, groups)}."
    )


def build_figures(out: Path, seeds: int = 10, style=None, readme: bool = True) -> list[tuple[str, str]]:
    """Run everything, draw every figure into ``out`` (PNG + PDF) and write ``out/README.md``.

    :param style: a :class:`harness.report.figures.FigureStyle` (the report's by default).
    :param readme: write ``out/README.md`` (the paper figures write their own index instead).
    :returns: ``(stem, caption)`` per figure, in README order.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for name in ("toy_1d", "toy_2d"):
        L = get_landscape(name)
        t0 = time.perf_counter()
        runs = Runs.compute(L, seeds, with_ranks=name == "toy_1d")
        log.info("%s: %d seeds of every setting in %.1f s", name, seeds, time.perf_counter() - t0)
        if name == "toy_1d":
            figures += [
                figure_smoothed_1d(L, out, style=style),
                figure_es_descent_1d(runs, out, style=style),
                figure_vo_plane(runs, out, style=style),
                figure_es_vs_vo_1d(runs, out, style=style),
            ]
        else:
            figures += [figure_smoothed_2d(L, out, style=style), figure_descent_2d(runs, out, style=style)]
    if readme:
        write_readme(out, figures, seeds)
    return figures


def smoothed_figures(out: Path, style=None) -> list[tuple[str, str]]:
    """The figures that need no run: toy_1d and toy_2d with their Gaussian-smoothed versions (closed form)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [
        figure_smoothed_1d(get_landscape("toy_1d"), out, style=style),
        figure_smoothed_2d(get_landscape("toy_2d"), out, style=style),
    ]


def write_readme(out: Path, figures: list[tuple[str, str]], seeds: int) -> Path:
    """``out/README.md``: how the figures were made and one caption per figure."""
    lines = [
        "# Toy landscapes: ES, VO and gradient descent",
        "",
        "Regenerate with `make figures-landscape` (`python -m harness.report.landscape --out DIR`). The "
        "landscapes are `toy_1d` and `toy_2d` of `harness/envs/landscapes.py` (losses: lower is better; the "
        "harness maximises fitness = -loss). The runs are in-process ask/tell runs of the harness's `OpenAIES` "
        f"and `VO` with the CLI's seeding ({seeds} seeds per setting): {POPULATION} evaluations per generation "
        f"(mirrored pairs), Adam with step {LEARNING_RATE} on mu, no weight decay, raw fitness "
        f"(`fitness_shaping: none`), {GENERATIONS} generations; VO's sigma starts at {VO_SIGMA0}, log-space step "
        f"{VO_SIGMA_LEARNING_RATE}, bounds [{VO_SIGMA_MIN}, {VO_SIGMA_MAX}]. J(x) = E[E(x + σε)] is computed "
        "exactly (closed form). Start markers are white circles, end markers stars.",
        "",
    ]
    for stem, caption in figures:
        lines += [f"## {stem}", "", f"![{stem}]({stem}.png)", "", caption, ""]
    path = Path(out) / "README.md"
    path.write_text("\n".join(lines))
    return path


def main(argv=None) -> int:
    """``python -m harness.report.landscape [--out DIR] [--seeds N]``: :func:`build_figures` and one line on
    what was written; returns 0 (argparse exits with status 2 on bad arguments, ``--seeds`` below 1 included)."""
    p = argparse.ArgumentParser(
        prog="python -m harness.report.landscape",
        description="Figures (PNG, PDF) of ES, VO and gradient descent on the toy landscapes, "
        "with a README.md of captions.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="results/figures/landscape", help="output folder")
    p.add_argument("--seeds", type=int, default=10, help="seeds per setting (0 .. seeds-1)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    figures = build_figures(Path(args.out), args.seeds)
    print(f"{len(figures)} figures (PNG + PDF) and README.md in {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
