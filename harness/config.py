"""Validation of a composed config, before any worker starts.

Unknown config-group options (``algo=foo``, ``env=Foo``) are Hydra's to report: it lists
the available ones. Everything else is checked here, with the offending key named.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.algos import ALGOS, get_algo
from harness.envs import check_env_id
from harness.envs.behaviour import BEHAVIOURS
from harness.envs.landscapes import get_landscape
from harness.errors import ConfigError  # re-exported: harness.config.ConfigError is the name everyone imports
from harness.machine import default_num_workers
from harness.workers import BACKENDS
from harness.workers.engines import engine_problem, resolve_engine
from harness.workers.rollout import ENV_KINDS, ON_UNSTABLE, SHIP_MODES

WANDB_MODES = ("online", "offline", "disabled")


def require(condition: bool, message: str) -> None:
    """:raises ConfigError: with ``message`` unless ``condition``."""
    if not condition:
        raise ConfigError(message)


def is_number(value) -> bool:
    """An int or float (NumPy's included), not a bool (YAML's ``true`` is not a number here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value, minimum: int) -> bool:
    """An integer (Python's or NumPy's, not a bool) >= ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= minimum


def positive(cfg: DictConfig, key: str) -> None:
    """:raises ConfigError: unless ``cfg[key]`` is a finite number > 0 (the message names ``prefix.key``)."""
    value = cfg.get(key)
    require(
        is_number(value) and 0 < value < math.inf, f"{_path(cfg)}{key} must be a positive finite number, got {value!r}"
    )


def boolean(cfg: DictConfig, key: str) -> None:
    """:raises ConfigError: unless ``cfg[key]`` is true or false."""
    value = cfg.get(key)
    require(isinstance(value, bool), f"{_path(cfg)}{key} must be true or false, got {value!r}")


#: The largest seed: NumPy's SeedSequence and Gymnasium's reset take any integer >= 0, but the report reads
#: seeds into int64 columns and W&B stores them as int64, so a larger seed would not stay itself there.
MAX_SEED = 2**63 - 1


def _path(cfg: DictConfig) -> str:
    key = cfg._get_full_key(None) if hasattr(cfg, "_get_full_key") else ""
    return f"{key}." if key else ""


def validate(cfg: DictConfig) -> None:
    """Check the whole run config: budget, workers, evaluation, W&B, then the algorithm's own keys.

    :raises ConfigError: on the first problem found.
    """
    require(
        is_int(cfg.seed, 0) and cfg.seed <= MAX_SEED,
        f"seed must be a non-negative integer, got {cfg.seed!r} (at most 2**63-1 = {MAX_SEED})",
    )
    budget = cfg.budget
    for key in ("timesteps", "generations"):
        value = budget.get(key)
        require(
            value is None or is_int(value, 0),
            f"budget.{key} must be an integer >= 0 (0 or null: no limit), got {value!r}",
        )
    value = budget.get("wall_time_s")
    require(
        value is None or (is_number(value) and value >= 0),
        f"budget.wall_time_s must be >= 0 seconds (0 or null: no limit), got {value!r}",
    )
    require(
        any(budget.get(k) for k in ("timesteps", "generations", "wall_time_s")),
        "the budget is all zero: set budget.timesteps, budget.generations or budget.wall_time_s "
        "(the run stops at whichever comes first)",
    )
    require(
        cfg.workers.backend in BACKENDS,
        f"workers.backend must be one of {', '.join(BACKENDS)}, got {cfg.workers.backend!r}",
    )
    n = cfg.workers.n
    require(n is None or is_int(n, 1), f"workers.n must be a positive integer or null (all CPUs), got {n!r}")
    retries = cfg.workers.get("max_retries")
    require(
        is_int(retries, 0),
        "workers.max_retries must be an integer >= 0 (re-runs of an episode whose worker "
        f"died or timed out), got {retries!r}",
    )
    timeout = cfg.workers.get("episode_timeout_s")
    require(
        timeout is None or (is_number(timeout) and 0 < timeout < math.inf),
        f"workers.episode_timeout_s must be a positive number of seconds or null (no timeout), got {timeout!r}",
    )
    require(
        cfg.workers.get("ship") in SHIP_MODES,
        f"workers.ship must be one of {', '.join(SHIP_MODES)}, got {cfg.workers.get('ship')!r}",
    )
    address = cfg.workers.get("ray_address")
    require(
        address is None or (isinstance(address, str) and address.strip() != ""),
        'workers.ray_address must be null (start a local Ray instance), "auto" or a cluster address such as '
        f'"ray://host:10001", got {address!r}',
    )
    problem = engine_problem(cfg.workers.engine, OmegaConf.to_container(cfg.env, resolve=True))
    require(problem is None, problem or "")
    if cfg.workers.backend == "ray":
        import importlib.util

        require(
            importlib.util.find_spec("ray") is not None,
            "workers.backend=ray needs the ray package, which is not installed in this Python "
            "(pip install ray, or make install)",
        )
    require(is_int(cfg.eval.episodes, 1), f"eval.episodes must be a positive integer, got {cfg.eval.episodes!r}")
    require(
        isinstance(cfg.eval.at_start, bool),
        f"eval.at_start must be true or false (evaluate the untrained policy as epoch 0), got {cfg.eval.at_start!r}",
    )
    video = cfg.eval.get("video_every", 0)  # a run saved before the key existed
    require(is_int(video, 0), f"eval.video_every must be an integer >= 0 (0: never), got {video!r}")
    require(
        not video or cfg.env.get("kind", "gym") == "gym",
        f"eval.video_every: env.kind={cfg.env.get('kind')!r} has nothing to render; set eval.video_every=0",
    )
    every = cfg.eval.every_timesteps
    require(is_int(every, 0), f"eval.every_timesteps must be an integer >= 0 (0: every epoch), got {every!r}")
    require(
        cfg.wandb.mode in WANDB_MODES, f"wandb.mode must be one of {', '.join(WANDB_MODES)}, got {cfg.wandb.mode!r}"
    )
    steps = cfg.env.get("max_episode_steps")
    require(
        steps is None or is_int(steps, 1),
        f"env.max_episode_steps must be a positive integer or null (the env's own limit), got {steps!r}",
    )
    validate_env(cfg.env)
    get_algo(cfg.algo.name).validate(cfg)


def validate_env(env: DictConfig) -> None:
    """Check the ``env`` group: a registered Gymnasium id (``kind: gym``) or a known landscape
    with a starting point of the right size (``kind: function``); ``bc`` and ``success``.

    :raises ConfigError: naming the key.
    """
    kind = env.get("kind", "gym")
    require(kind in ENV_KINDS, f"env.kind must be one of {', '.join(ENV_KINDS)}, got {kind!r}")
    if kind == "function":
        try:
            landscape = get_landscape(env.id)
        except ValueError as exc:
            raise ConfigError(f"env.id: {exc}") from None
        init = env.get("init")
        require(
            init is None or (len(init) == landscape.dim and all(is_number(v) for v in init)),
            f"env.init must be null or a list of {landscape.dim} numbers (the starting point of "
            f"{landscape.name}), got {init!r}",
        )
        return
    try:
        check_env_id(env.id)
    except ValueError as exc:
        raise ConfigError(f"env.id: {exc}") from None
    bc = env.get("bc")
    if bc is not None:
        require(bc in BEHAVIOURS, f"env.bc must be null or one of {', '.join(BEHAVIOURS)}, got {bc!r}")
    require(
        isinstance(env.get("success", False), bool), f"env.success must be true or false, got {env.get('success')!r}"
    )
    on_unstable = env.get("on_unstable", "fail")
    require(on_unstable in ON_UNSTABLE, f"env.on_unstable must be one of {', '.join(ON_UNSTABLE)}, got {on_unstable!r}")


#: Subtrees whose keys are handed to other libraries unchecked (``gymnasium.make`` kwargs, Hydra's own).
FREE_FORM_KEYS = ("env.kwargs", "hydra")


def _leaf_keys(node, prefix: str = "") -> set[str]:
    data = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    keys = set()
    for k, v in data.items():
        path = f"{prefix}{k}"
        if path in FREE_FORM_KEYS:
            continue
        if isinstance(v, dict) and v:
            keys |= _leaf_keys(v, f"{path}.")
        else:
            keys.add(path)
    return keys


def check_known_keys(cfg: DictConfig, reference: DictConfig) -> None:
    """Refuse keys that no part of the harness reads: every key of ``cfg`` must exist in
    ``reference``, the config composed from the same group choices without overrides. Hydra
    already refuses ``algo.sigmaa=0.1``; this catches ``+algo.sigmaa=0.1`` (Hydra's own hint).
    ``reference`` includes the experiment file, whose own keys :func:`check_experiment_keys`
    checks. ``env.kwargs`` (``gymnasium.make``'s) and ``hydra`` are free-form.

    :raises ConfigError: naming the unknown key and the closest known one.
    """
    import difflib

    known = _leaf_keys(reference)
    # per_algo.*: its own check (apply_per_algo), against the algorithm each entry names
    for key in sorted(k for k in _leaf_keys(cfg) - known if not k.startswith("per_algo.")):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"unknown key {key}: no part of the harness reads it{hint} "
            "(see `python -m harness --cfg job` for every key)"
        )


def not_a_setting(key: str) -> bool:
    """Whether the dotted config ``key`` says nothing of what a run computes beyond other keys: a key under
    ``per_algo.`` (a job's own entries are applied to ``algo.*``, where they are compared; another
    algorithm's do not touch it), or in a lookup table ``<key>_of`` (the value it selects is in the key
    that reads it). Resume (``resume=auto``) and the report compare runs without them."""
    parts = key.split(".")
    return parts[0] == "per_algo" or any(part.endswith("_of") for part in parts[:-1])


def apply_per_algo(cfg: DictConfig, algo_keys: Callable[[str], set[str]]) -> DictConfig:
    """``cfg`` with ``per_algo.<cfg.algo.name>.<key>`` set as ``algo.<key>``: a sweep across
    algorithms sets one algorithm's keys (``-m algo=es,trpo +per_algo.es.population_size=20``); the
    entries of the other algorithms are checked and left alone. ``per_algo`` stays in the config (the
    saved ``config.yaml`` says where a value came from).

    :param algo_keys: ``name -> {"algo.<key>", ...}``, the keys algorithm ``name`` declares.
    :raises ConfigError: for an unknown algorithm name, or a key that algorithm does not have.
    """
    import difflib

    entries = cfg.get("per_algo") or {}
    for name, settings in entries.items():
        require(
            name in ALGOS, f"per_algo.{name}: no algorithm is called {name!r}; available: {', '.join(sorted(ALGOS))}"
        )
        require(
            OmegaConf.is_dict(settings),
            f"per_algo.{name} must hold keys of algo {name} (+per_algo.{name}.<key>=value), got {settings!r}",
        )
        known = algo_keys(name)
        for key in _leaf_keys(settings):
            if f"algo.{key}" not in known:
                close = difflib.get_close_matches(f"algo.{key}", sorted(known), n=1)
                hint = f"; did you mean {close[0].replace('algo.', f'per_algo.{name}.', 1)}?" if close else ""
                raise ConfigError(f"per_algo.{name}.{key}: algorithm {name} has no key {key}{hint}")
    mine = entries.get(cfg.algo.name)
    if mine:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.algo = OmegaConf.merge(cfg.algo, mine)
    return cfg


def flatten(cfg: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept as values)."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def is_lookup_table(key: str, known: set[str]) -> bool:
    """Whether ``key`` lies in a per-algorithm (or per-anything) table ``<key>_of`` beside a known
    key, the pattern experiments use for a value that differs by algorithm in one grid
    (``budget.timesteps: ${.timesteps_of.${algo.name}}`` with ``budget.timesteps_of: {es: ..., trpo: ...}``;
    experiments/README.md): ``budget.timesteps_of.es`` is known when ``budget.timesteps`` is."""
    parts = key.split(".")
    return any(part.endswith("_of") and ".".join([*parts[:i], part[:-3]]) in known for i, part in enumerate(parts[:-1]))


def check_experiment_keys(
    name: str, with_experiment: DictConfig, without: DictConfig, algo_keys: Callable[[], set[str]]
) -> None:
    """Refuse keys an experiment file (``+experiment=name``) adds that no part of the harness reads.

    An experiment may set an algorithm key for every algorithm of its sweep at once (the maze
    recipe's ``algo.meta_population_size`` is read by the novelty family and ignored by ES), so a
    key under ``algo.`` is known if any algorithm config declares it; a lookup table
    ``<known key>_of`` is known (:func:`is_lookup_table`); and so is a key under ``recipe.``, the
    recipe's own selectors that its lookups read (``recipe.variant``, one sweep axis over variations:
    ``experiments/es_variants_halfcheetah.yaml``). Keys under ``per_algo.`` are checked against the
    algorithm each names, by :func:`apply_per_algo`.

    :param with_experiment: the config composed from the job's group choices with the experiment.
    :param without: the same without the experiment.
    :param algo_keys: returns the ``algo.*`` leaf keys of every algorithm config
        (``conf/algo/*.yaml``); called only if the experiment adds an ``algo.*`` key the job's own
        algorithm does not declare (composing every algorithm takes a fraction of a second).
    :raises ConfigError: naming the experiment, the unknown key and the closest known one.
    """
    import difflib

    known = _leaf_keys(without)
    unknown = _leaf_keys(with_experiment) - known
    if any(key.startswith("algo.") for key in unknown):
        known |= algo_keys()
    for key in sorted(unknown - known):
        if is_lookup_table(key, known) or key.startswith(("recipe.", "per_algo.")):  # per_algo: apply_per_algo's check
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"experiment {name} sets unknown key {key}: no part of the harness reads it{hint}")


def uses_policy(cfg: DictConfig) -> bool:
    """Whether the run reads the ``policy`` group: the ES family on a simulator does; TRPO (its
    networks are ``algo.net_arch``) and function landscapes (the parameters are the point) do not."""
    return bool(getattr(get_algo(cfg.algo.name), "USES_POLICY", True)) and cfg.env.get("kind", "gym") == "gym"


def check_group_choices(cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse an explicit ``policy=...`` choice, or a ``policy.<key>=...`` setting, that the run would ignore.

    :param overrides: the command line's overrides (Hydra's ``overrides.task``).
    :raises ConfigError: naming the choice and what the run uses instead.
    """
    chosen = [
        o for o in overrides if o.lstrip("+~").split("=", 1)[0] == "policy" or o.lstrip("+~").startswith("policy.")
    ]
    if chosen and not uses_policy(cfg):
        why = (
            "its networks are set by algo.net_arch"
            if cfg.env.get("kind", "gym") == "gym"
            else f"env={cfg.env.name} is a function landscape whose parameters are the point itself"
        )
        raise ConfigError(
            f"{chosen[0]}: algo={cfg.algo.name} on env={cfg.env.name} does not use the policy group "
            f"({why}); drop {chosen[0]}"
        )


def coerce_integral_floats(cfg: DictConfig, reference: DictConfig) -> DictConfig:
    """``cfg`` with integral floats turned into ints where the declared default (``reference``)
    is an integer or null: researchers type ``budget.timesteps=1e6`` or ``5e6``, which YAML reads
    as floats. ``1e6`` becomes ``1000000``; ``2.5`` stays a float (and validation names it).
    Bools, and keys whose default is a float (``algo.sigma``), are left as they are."""
    data = OmegaConf.to_container(cfg, resolve=False)
    ref = OmegaConf.to_container(reference, resolve=False)

    def walk(node, ref_node):
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            default = ref_node.get(key) if isinstance(ref_node, dict) else None
            if isinstance(value, dict):
                out[key] = walk(value, default if isinstance(default, dict) else {})
            elif (
                isinstance(value, float)
                and value.is_integer()
                and isinstance(ref_node, dict)
                and key in ref_node
                and (default is None or (isinstance(default, int) and not isinstance(default, bool)))
            ):
                out[key] = int(value)
            else:
                out[key] = value
        return out

    coerced = OmegaConf.create(walk(data, ref))
    OmegaConf.set_struct(coerced, OmegaConf.is_struct(cfg))
    return coerced


def resolved_config(cfg: DictConfig) -> dict:
    """The config that describes what runs, as a plain dict: interpolations resolved, ``workers.n``
    filled in, ``workers.engine: auto`` replaced by the engine it runs on
    (:func:`~harness.workers.engines.resolve_engine`), the algorithm's own resolution applied (TRPO:
    ``device: auto`` -> the device used), and the ``policy`` group left out when the run does not read
    it (:func:`uses_policy`)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    if data["workers"]["n"] is None:
        data["workers"]["n"] = default_num_workers() if data["workers"]["backend"] != "serial" else 1
    algo = get_algo(data["algo"]["name"])
    data["workers"]["engine"] = resolve_engine(
        data["workers"]["engine"], data["env"], getattr(algo, "USES_ROLLOUT_WORKERS", True)
    )
    if not uses_policy(cfg):
        data.pop("policy", None)
    resolve = getattr(algo, "resolve_config", None)
    return resolve(data) if resolve else data
