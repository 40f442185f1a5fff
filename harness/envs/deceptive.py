"""Deceptive tasks for novelty-seeking ES (Conti et al. 2018, arXiv 1712.06560).

Importing this module registers three Gymnasium ids; nothing heavy happens until one is made
(the entry points are strings, so Gymnasium-Robotics is imported by the first ``make``):

- ``DeceptivePointMaze-v0``: Gymnasium-Robotics ``PointMaze`` in :data:`DECEPTIVE_U_MAZE`;
- ``DeceptiveAntMaze-v0``: Gymnasium-Robotics ``AntMaze`` (v5) in the same map;
- ``HumanoidTrap-v0``: Gymnasium ``Humanoid-v5`` with Conti et al.'s U-shaped trap.

The mazes' dict observations are flattened by :class:`FlatGoalObservation`; their
``info["success"]`` is the environment's own and reaches the caller unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

log = logging.getLogger(__name__)

#: The maze of both deceptive mazes (1 wall, 0 free, "r" start cell, "g" goal cell; row 0 is
#: the top, +y). The start is at the closed end of a U three cells wide and three deep whose
#: closed side (row 3) faces the goal, three cells away: the straight line to the goal ends at
#: that wall, and every step of the way out (down, away from the goal) costs reward.
#: The way out is three cells down (away from the goal), three sideways round an arm of the U,
#: six up and three across: 15 cells of corridor. Gymnasium-Robotics' own ``U_MAZE`` needs 6.
#: A shallower U (one or two cells deep) was not deceptive enough: in pilot runs plain ES with
#: a linear policy found its way round the arm within 1.5M steps (with the ``exp(-d)`` reward).
DECEPTIVE_U_MAZE = (
    (1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 0, 0, 0, "g", 0, 0, 0, 1),
    (1, 0, 0, 0, 0, 0, 0, 0, 1),
    (1, 0, 1, 1, 1, 1, 1, 0, 1),
    (1, 0, 1, 0, "r", 0, 1, 0, 1),
    (1, 0, 1, 0, 0, 0, 1, 0, 1),
    (1, 0, 1, 0, 0, 0, 1, 0, 1),
    (1, 0, 0, 0, 0, 0, 0, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 1),
)
#: Cells of corridor on the shortest way from "r" to "g", in this map and in ``U_MAZE``.
_PATH_CELLS, _UMAZE_PATH_CELLS = 15, 6

#: Episode lengths: Gymnasium-Robotics' UMaze budgets (``PointMaze_UMaze-v3`` 300 steps,
#: ``AntMaze_UMaze-v5`` 700), scaled by the length of the way to the goal (15 cells instead
#: of 6), so the agent has the same time per cell as in UMaze. A scripted waypoint controller
#: reaches the point-maze goal well within its 750 steps (tests/test_deceptive_envs.py).
POINT_MAZE_STEPS = 300 * _PATH_CELLS // _UMAZE_PATH_CELLS  # 750 steps of 0.01 s
ANT_MAZE_STEPS = 700 * _PATH_CELLS // _UMAZE_PATH_CELLS  # 1750 steps of 0.05 s
HUMANOID_TRAP_STEPS = 1000  # as Humanoid-v5

#: Conti et al.'s trap, (name, pos, half-sizes) of three boxes in metres, as in
#: uber-research/deep-neuroevolution extra/humanoid_maze.xml: a cup 3 m wide (y in [-1.5, 1.5])
#: and 3 m deep (x in [2.5, 5.5]) whose open side faces the start at the origin.
TRAP_WALLS = (
    ("frontwall", (5.5, 0.0, 0.0), (0.1, 1.5, 2.0)),
    ("topwall", (4.0, 1.5, 0.0), (1.5, 0.1, 2.0)),
    ("bottomwall", (4.0, -1.5, 0.0), (1.5, 0.1, 2.0)),
)

_GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


class FlatGoalObservation(gym.ObservationWrapper):
    """A goal env's dict observation as one float64 vector, keys in :data:`_GOAL_KEYS` order.

    ``obs = concat(observation, achieved_goal, desired_goal)``. For PointMaze that is
    ``(x, y, vx, vy, x, y, goal_x, goal_y)`` (8,): the position appears twice because
    PointMaze's own ``observation`` includes it; for AntMaze ``observation`` is Ant-v5's (105,)
    (joint positions without the torso's (x, y), velocities, external contact forces), so the
    vector is (109,). The goal is part of the observation because its
    position carries reset noise. ``last_achieved_goal`` (2,) keeps the agent's (x, y) after
    the latest ``reset`` or ``step`` for the behaviour characterization (behaviour.py);
    it is ``None`` before the first reset.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        spaces = env.observation_space
        if not isinstance(spaces, gym.spaces.Dict) or set(spaces.spaces) != set(_GOAL_KEYS):
            raise ValueError(f"FlatGoalObservation needs a Dict space with keys {_GOAL_KEYS}, got {spaces}")
        size = sum(int(np.prod(spaces[k].shape)) for k in _GOAL_KEYS)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float64)
        self.last_achieved_goal: np.ndarray | None = None

    def observation(self, observation: dict) -> np.ndarray:
        """``concat(observation, achieved_goal, desired_goal)`` raveled, as float64; keeps a copy of
        ``achieved_goal`` in :attr:`last_achieved_goal`."""
        self.last_achieved_goal = np.array(observation["achieved_goal"], dtype=np.float64)
        return np.concatenate([np.ravel(observation[k]) for k in _GOAL_KEYS]).astype(np.float64)


def _import_quietly(module: str):
    """Import ``module``, sending what Gymnasium-Robotics prints on import to the debug log.

    ``gymnasium_robotics/__init__.py`` prints a notice about the Adroit environments' rewards
    (from the farama_notifications package) to ``sys.stderr`` with ``print``, once per process.
    """
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        mod = importlib.import_module(module)
    if captured.getvalue().strip():
        log.debug("importing %s printed: %s", module, captured.getvalue().strip())
    return mod


def _as_lists(maze_map) -> list[list]:
    return [list(row) for row in maze_map]


def _forget_maze_xml(env) -> None:
    """Gymnasium-Robotics' ``Maze.make_maze`` writes the maze's MJCF to a new
    ``<tmp>/ant_maze<time>.xml`` for every environment and never removes it; MuJoCo has
    read it by now, so remove it rather than leave one file per worker per run in /tmp."""
    with contextlib.suppress(OSError, AttributeError):
        os.remove(env.tmp_xml_file_path)


class GoalProgress(gym.Wrapper):
    """Reward ``d_{t-1} - d_t``: the metres by which a step brought the agent closer to the goal.

    ``d_t`` is the Euclidean distance from ``achieved_goal`` to ``desired_goal`` after step
    ``t`` (``d_0`` after ``reset``), read from the goal env's dict observation, so this wraps the
    maze itself, inside :class:`FlatGoalObservation`. Every step is rewarded, and the sum
    telescopes: an episode's return is ``d_0 - d_T``, how much closer to the goal it *ended*.
    That is the fitness of the deceptive mazes of novelty search (Lehman & Stanley 2011,
    "Abandoning Objectives", fitness = -final distance to the goal), up to the start's
    distance. It ranks episodes by where they finish, as ``info["success"]`` judges them
    (``d_T`` within the goal radius), whereas Gymnasium-Robotics' dense ``exp(-d)`` per step also
    pays for the time spent near the goal, so a policy that goes round the maze and arrives
    late scores below one that waits at the wall nearest the goal. Termination, truncation and
    ``info`` are the maze's.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._distance = 0.0

    @staticmethod
    def distance(observation: dict) -> float:
        """Metres from ``achieved_goal`` to ``desired_goal`` in a goal env's observation."""
        return float(np.linalg.norm(np.asarray(observation["achieved_goal"]) - np.asarray(observation["desired_goal"])))

    def reset(self, **kwargs):
        """Reset the maze and remember ``d_0``, the distance to the goal; the observation and info unchanged."""
        observation, info = self.env.reset(**kwargs)
        self._distance = self.distance(observation)
        return observation, info

    def step(self, action):
        """Step the maze and replace its reward by ``d_{t-1} - d_t`` (metres; positive when the step
        brought the agent closer); observation, termination, truncation and info unchanged."""
        observation, _, terminated, truncated, info = self.env.step(action)
        distance = self.distance(observation)
        reward, self._distance = self._distance - distance, distance
        return observation, reward, terminated, truncated, info


#: ``reward_type`` values of the deceptive mazes: ours, then Gymnasium-Robotics' two.
MAZE_REWARDS = ("progress", "dense", "sparse")


def _maze(module: str, cls: str, maze_map, reward_type: str, kwargs: dict) -> gym.Env:
    if reward_type not in MAZE_REWARDS:
        raise ValueError(f"reward_type must be one of {MAZE_REWARDS}, got {reward_type!r}")
    maze_cls = getattr(_import_quietly(module), cls)
    env = maze_cls(
        maze_map=_as_lists(maze_map), reward_type="dense" if reward_type == "progress" else reward_type, **kwargs
    )
    _forget_maze_xml(env)
    return FlatGoalObservation(GoalProgress(env) if reward_type == "progress" else env)


def make_point_maze(maze_map=DECEPTIVE_U_MAZE, reward_type: str = "progress", **kwargs) -> gym.Env:
    """``PointMazeEnv(maze_map, **kwargs)``, its reward :class:`GoalProgress` (``reward_type=
    "progress"``) or Gymnasium-Robotics' own (``"dense"``: ``exp(-d)`` per step; ``"sparse"``:
    1 within the goal radius), wrapped in :class:`FlatGoalObservation`.

    Entry point of ``DeceptivePointMaze-v0`` (see :func:`register`).

    :raises ValueError: if ``reward_type`` is not one of :data:`MAZE_REWARDS`.
    """
    return _maze("gymnasium_robotics.envs.maze.point_maze", "PointMazeEnv", maze_map, reward_type, kwargs)


def make_ant_maze(maze_map=DECEPTIVE_U_MAZE, reward_type: str = "progress", **kwargs) -> gym.Env:
    """``AntMazeEnv(maze_map, **kwargs)`` (Gymnasium-Robotics ``ant_maze_v5``, the Ant of
    Gymnasium's Ant-v5), rewards as :func:`make_point_maze`, wrapped in :class:`FlatGoalObservation`.

    Entry point of ``DeceptiveAntMaze-v0`` (see :func:`register`).

    :raises ValueError: if ``reward_type`` is not one of :data:`MAZE_REWARDS`.
    """
    return _maze("gymnasium_robotics.envs.maze.ant_maze_v5", "AntMazeEnv", maze_map, reward_type, kwargs)


def humanoid_trap_xml() -> str:
    """Path of Gymnasium's own ``humanoid.xml`` with :data:`TRAP_WALLS` added to its worldbody.

    Written once per content to ``<tmp>/harness_humanoid_trap_<sha256[:16]>.xml`` through a
    temporary file and ``os.replace``, so parallel workers never read a half-written file.
    The walls have only name, type, pos and size; everything else (contact, friction,
    material) comes from humanoid.xml's defaults, as in the reference file.
    """
    from gymnasium.envs.mujoco import humanoid_v5

    source = Path(humanoid_v5.__file__).parent / "assets" / "humanoid.xml"
    tree = ET.parse(source)
    worldbody = tree.getroot().find("worldbody")
    for name, pos, size in TRAP_WALLS:
        ET.SubElement(
            worldbody, "geom", name=name, type="box", pos=" ".join(map(str, pos)), size=" ".join(map(str, size))
        )
    text = ET.tostring(tree.getroot(), encoding="unicode")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"harness_humanoid_trap_{digest}.xml"
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return str(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return str(path)


def make_humanoid_trap(**kwargs) -> gym.Env:
    """Humanoid-v5's ``HumanoidEnv(xml_file=humanoid_trap_xml(), **kwargs)``.

    Entry point of ``HumanoidTrap-v0`` (see :func:`register`).

    :raises ValueError: if ``kwargs`` has an ``xml_file`` (the trap is this environment's model).
    """
    if "xml_file" in kwargs:
        raise ValueError(
            "HumanoidTrap-v0 builds its own xml_file (humanoid.xml + the trap); use Humanoid-v5 for another model"
        )
    from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv

    return HumanoidEnv(xml_file=humanoid_trap_xml(), **kwargs)


@dataclass(frozen=True)
class Layout:
    """Top view of a deceptive task, for figures: ``walls`` as ``(x0, y0, width, height)``
    rectangles, ``start`` and ``goal`` as ``(x, y)`` cell centres (``goal`` ``None`` where the
    task has none), all in metres."""

    walls: tuple[tuple[float, float, float, float], ...]
    start: tuple[float, float]
    goal: tuple[float, float] | None


def maze_layout(maze_map=DECEPTIVE_U_MAZE, scale: float = 1.0) -> Layout:
    """The :class:`Layout` of a Gymnasium-Robotics maze map with cells of ``scale`` metres,
    centred on the origin as ``Maze.make_maze`` places it (row 0 at the top, +y)."""
    rows, cols = len(maze_map), len(maze_map[0])

    def centre(i: int, j: int) -> tuple[float, float]:
        return (j - (cols - 1) / 2) * scale, ((rows - 1) / 2 - i) * scale

    walls, cells = [], {}
    for i, row in enumerate(maze_map):
        for j, cell in enumerate(row):
            x, y = centre(i, j)
            if cell == 1:
                walls.append((x - scale / 2, y - scale / 2, scale, scale))
            elif cell in ("r", "g"):
                cells[cell] = (x, y)
    return Layout(tuple(walls), cells["r"], cells.get("g"))


def layout(env_id: str, kwargs: dict | None = None) -> Layout | None:
    """The :class:`Layout` of ``env_id`` made with ``kwargs`` (``env.kwargs``: a ``maze_map`` there
    replaces the default map) if it is one of this module's tasks, else ``None``."""
    maze_map = (kwargs or {}).get("maze_map") or DECEPTIVE_U_MAZE
    if env_id == "DeceptivePointMaze-v0":
        return maze_layout(maze_map, 1.0)
    if env_id == "DeceptiveAntMaze-v0":
        return maze_layout(maze_map, 4.0)
    if env_id == "HumanoidTrap-v0":
        walls = tuple((x - hx, y - hy, 2 * hx, 2 * hy) for _, (x, y, _z), (hx, hy, _hz) in TRAP_WALLS)
        return Layout(walls, (0.0, 0.0), None)
    return None


def register() -> None:
    """Register the three ids with Gymnasium; cheap, and a no-op for ids already registered.

    ``DeceptivePointMaze-v0``: a point mass (ball of radius 0.1 m, force-actuated, speed
    clipped at 5 m/s, dt 0.01 s) in :data:`DECEPTIVE_U_MAZE` with 1 m cells: start cell centre
    (0, 0), goal cell centre (0, 3), each moved by uniform noise of +-0.25 m per axis at every
    reset (Gymnasium-Robotics' ``position_noise_range``). Reward per step ``d_{t-1} - d_t``,
    d = distance to the goal in metres (:class:`GoalProgress`, ``reward_type="progress"``), so
    an episode's return is ``d_0 - d_T``: the straight push ends at the U's wall (return ~ 0.4,
    d ~ 2.6); leaving the U costs ~ 3.5 first; the goal pays ~ 3. ``kwargs`` may set
    ``reward_type="dense"`` (``exp(-d)`` per step) or ``"sparse"``, Gymnasium-Robotics' own.
    ``continuing_task=True``: reaching the goal does not terminate the episode (the return
    stays that of where the episode ends); episodes are truncated after
    :data:`POINT_MAZE_STEPS`. ``info["success"]``: d <= 0.45 m at
    that step (Gymnasium-Robotics ``maze_v4.py``). Observation (8,), see
    :class:`FlatGoalObservation`; action (2,) in [-1, 1] (force on x, y).

    ``DeceptiveAntMaze-v0``: the same map with 4 m cells (AntMaze's ``maze_size_scaling``):
    start (0, 0), goal (0, 12), noise +-1 m per axis; the same reward, success radius 0.45 m and
    continuing task; dt 0.05 s; truncated after :data:`ANT_MAZE_STEPS`. The ant never terminates
    (AntMaze ignores Ant-v5's health). Observation (109,); action (8,) in [-1, 1]. The return
    is ``d_0 - d_T`` in metres, ~12 for reaching the goal.

    ``HumanoidTrap-v0``: Humanoid-v5 (reward, termination, observation (348,), action (17,)
    all unchanged) plus :data:`TRAP_WALLS`: walking straight along +x, which Humanoid-v5's
    forward reward pays for, ends in the cup at x ~ 5.4 m. No ``info["success"]``.
    Truncated after :data:`HUMANOID_TRAP_STEPS`, as Humanoid-v5.
    """
    maze = {"maze_map": _as_lists(DECEPTIVE_U_MAZE), "reward_type": "progress", "continuing_task": True}
    specs = (
        ("DeceptivePointMaze-v0", "make_point_maze", maze, POINT_MAZE_STEPS),
        ("DeceptiveAntMaze-v0", "make_ant_maze", maze, ANT_MAZE_STEPS),
        ("HumanoidTrap-v0", "make_humanoid_trap", {}, HUMANOID_TRAP_STEPS),
    )
    for env_id, factory, kwargs, steps in specs:
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"{__name__}:{factory}", kwargs=kwargs, max_episode_steps=steps)


register()
