"""NS-ES, NSR-ES and NSRA-ES: Conti, Madhavan, Such, Lehman, Stanley & Clune 2018, "Improving
Exploration in Evolution Strategies for Deep Reinforcement Learning via a Population of
Novelty-Seeking Agents" (arXiv 1712.06560), Sec. 2.2-2.4; reference code
uber-research/deep-neuroevolution ``es_distributed/nses.py`` (NS and NSR; it has no NSRA).

A **meta-population** of ``M`` agents, each an OpenAI-ES search distribution with its own
parameters, optimizer state and observation statistics (the reference keeps one ``ob_stat``
per agent too). An **archive** holds behaviour characterizations (BCs): one per agent at the
start, then, after every update, the BC of the updated agent (the mean over ``bc_episodes``
episodes of its unperturbed policy). The **novelty** of a BC is its mean Euclidean distance to
its ``k`` nearest neighbours in the archive (all of them while the archive holds fewer than
``k``), from scipy's KD-tree. Each epoch:

1. one agent is drawn with probability proportional to the novelty of its archived BC
   (uniformly if every novelty is 0, e.g. identical zero-initialised linear agents);
2. its mirrored population is evaluated; every episode returns its BC with its return;
3. each perturbation gets a score from the centered ranks (``algo.fitness_shaping``) of
   reward ``r`` and of novelty ``n`` (each ranked separately over the population):
   NS-ES ``n``; NSR-ES ``(r + n) / 2``; NSRA-ES ``w r + (1 - w) n``;
4. the agent takes ES's step (:meth:`OpenAIES.step_mean`) on that score;
5. ``bc_episodes`` episodes of the updated agent give its BC (archived) and its return; the
   best policy so far (by that return) is kept, and it is what evaluations run.

NSRA-ES adapts ``w`` (Sec. 2.4): it starts at ``reward_weight`` (1.0, pure reward), rises by
``reward_weight_delta`` (0.05) whenever the updated agent's return beats the best so far, and
falls by it after ``stagnation_epochs`` epochs without a new best (the counter then restarts).
The paper gives delta = 0.05; 50 epochs of stagnation is what public reimplementations use
(the reference repository has no NSRA code), so it is a documented default, not the paper's.

Differences from the reference, each for determinism or cost: selection uses each agent's
archived BC instead of re-running its episodes every epoch; the BC episodes' timesteps are
counted as training timesteps (they are data the algorithm uses).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import seeding
from harness.algos import es
from harness.algos.base import EpochResult, Evaluation
from harness.algos.evolution import (
    EvolutionTrainer,
    build_trainer,
    fitness_and_unstable,
    running_stat_arrays,
    running_stat_from_arrays,
    state_arrays,
    state_from_arrays,
)
from harness.config import require
from harness.es.novelty import Archive, NoveltyConfig, RewardWeight, combined_score, novelty, select_agent
from harness.es.strategies.base import check_fitness
from harness.es.strategies.openai_es import ESState, OpenAIES, OpenAIESConfig
from harness.policies import RunningStat

log = logging.getLogger(__name__)

META_POPULATION_FILE = "meta_population.npz"


@dataclass
class Agent:
    """One member of the meta-population: ES state, observation statistics, and the BC and
    mean return of its latest ``bc_episodes`` episodes."""

    state: ESState
    obs_stat: RunningStat
    bc: np.ndarray | None = None
    episode_return: float = float("-inf")


class NoveltyTrainer(EvolutionTrainer):
    """:class:`~harness.algos.base.Trainer` for NS-ES, NSR-ES and NSRA-ES (module docstring).

    :param strategy: the per-agent :class:`OpenAIES` (its own fitness shaping must be
        ``none``: the trainer ranks reward and novelty itself).
    :param config: the variant, ``M`` agents (agent 0 starts from ``init_params()``, the stream
        ``(POLICY_INIT,)`` a single distribution uses; agent ``i > 0`` from ``init_params(i)``), ``k``,
        BC episodes and NSRA-ES's ``w`` schedule (:class:`~harness.es.novelty.NoveltyConfig`).
    :param shaping: ranking of reward and novelty (``algo.fitness_shaping``: ``centered_ranks``).
    Other parameters as :class:`EvolutionTrainer`.
    """

    def __init__(
        self,
        strategy: OpenAIES,
        init_params,
        obs_dim,
        backend,
        seed,
        obs_norm=True,
        meta=None,
        *,
        config: NoveltyConfig,
        shaping: str,
        ship: str = "seeds",
    ) -> None:
        super().__init__(strategy, init_params, obs_dim, backend, seed, obs_norm, meta, ship=ship)
        if strategy.fitness_shaping != "none":
            raise ValueError("the per-agent strategy must not shape fitness: the trainer ranks reward and novelty")
        self.variant = config.variant
        self.k = int(config.k)
        self.bc_episodes = int(config.bc_episodes)
        self.shaping = shaping
        reward_weight, self.delta, self.patience = config.schedule()
        self.weight = RewardWeight(reward_weight, float("-inf"))
        self.agents = [
            Agent(strategy.init(init_params(i) if i else self.state.params), RunningStat.zeros(obs_dim))
            for i in range(int(config.meta_population_size))
        ]
        self.archive = Archive()
        self.generation = 0  # epochs done, over all agents
        # the best policy found so far (highest mean return over its BC episodes) and whose it was
        self.best: Agent | None = None
        self.best_agent = 0

    # ------------------------------------------------------------------ episodes of one agent

    def _agent_episodes(self, agent: Agent, seeds: np.ndarray) -> tuple[list, np.ndarray, float]:
        """Episodes of the agent's unperturbed policy: ``(results, mean BC, mean return)``."""
        results = self.run_params(agent.state.params, seeds, agent.obs_stat)
        bcs = np.stack([self._bc(r) for r in results])
        return results, bcs.mean(axis=0), float(np.mean([r.episode_return for r in results]))

    @staticmethod
    def _bc(result) -> np.ndarray:
        if result.bc is None:
            raise ValueError(
                "an episode came back without a behaviour characterization: the environment "
                "config must declare env.bc for a novelty algorithm"
            )
        return result.bc

    def _seed_archive(self) -> tuple[int, list[float], list]:
        """Before the first update: every agent's BC into the archive (seeds ``(BC_ENV, 0, i)``)."""
        steps, returns, behaviours = 0, [], []
        for i, agent in enumerate(self.agents):
            seeds = seeding.env_seeds(self.seed, seeding.BC_ENV, (0, i), self.bc_episodes)
            results, agent.bc, agent.episode_return = self._agent_episodes(agent, seeds)
            self.archive.add(agent.bc)
            behaviours.append(("archive", i, agent.bc[None]))
            steps += sum(r.length for r in results)
            returns += [r.episode_return for r in results]
            self._keep_if_best(i)
        self.weight = dataclasses.replace(self.weight, best=self.best.episode_return)
        return steps, returns, behaviours

    def _keep_if_best(self, index: int) -> None:
        """Keep agent ``index``'s current policy if its latest return beats the best so far."""
        agent = self.agents[index]
        if self.best is None or agent.episode_return > self.best.episode_return:
            self.best, self.best_agent = dataclasses.replace(agent), index  # states are immutable: a copy

    # ------------------------------------------------------------------ one epoch

    def train_epoch(self, epoch: int) -> EpochResult:
        """One epoch ``g`` (the trainer's count; ``epoch`` is not read), steps 1-5 of the module docstring; the
        first call seeds the archive with every agent's BC first (episodes seeded ``(BC_ENV, 0, i)``). The agent
        is drawn with the stream ``(NOVELTY, g)``, its population asked with ``(STRATEGY, g)``, its new BC comes
        from episodes seeded ``(BC_ENV, 1, g)``; NSRA-ES's weight and the best policy are then updated.
        Timesteps, episodes and returns include the BC episodes; metrics add ``agent``, ``archive_size``,
        ``novelty_mean``, ``best_return``, ``unstable_episodes`` and, for NSRA-ES, ``reward_weight``; the
        archived BCs are the result's ``behaviours``.

        :raises ValueError: if an episode comes back without a BC (``env.bc`` not set).
        """
        steps, returns, behaviours = self._seed_archive() if not len(self.archive) else (0, [], [])
        gen = self.generation
        archive = self.archive.array()
        agent_novelties = novelty(np.stack([a.bc for a in self.agents]), archive, self.k)
        index = select_agent(seeding.generator(self.seed, seeding.NOVELTY, gen), agent_novelties)
        agent = self.agents[index]

        population = self.strategy.ask(agent.state, seeding.generator(self.seed, seeding.STRATEGY, gen))
        results = self.rollouts(population, gen, agent.obs_stat)
        fitness, unstable = fitness_and_unstable(results, population.fitness_shape, self.reward_shift)
        fitness = check_fitness(fitness, population.fitness_shape)
        novelties = novelty(np.stack([self._bc(r) for r in results]), archive, self.k).reshape(fitness.shape)
        score = combined_score(self.variant, fitness, novelties, self.weight.value, self.shaping)
        agent.state, metrics = self.strategy.tell(agent.state, population, score)
        self.log_notices(metrics)
        agent.obs_stat = self.merge_obs_stats(agent.obs_stat, results)

        seeds = seeding.env_seeds(self.seed, seeding.BC_ENV, (1, gen), self.bc_episodes)
        bc_results, agent.bc, agent.episode_return = self._agent_episodes(agent, seeds)
        self.archive.add(agent.bc)
        behaviours.append(("archive", index, agent.bc[None]))
        self.weight = self.weight.after(agent.episode_return, self.delta, self.patience)
        self._keep_if_best(index)
        self.generation += 1

        episodes = results + bc_results
        lengths = np.array([r.length for r in episodes])
        metrics.update(
            episode_length_mean=float(np.mean([r.length for r in results])),
            agent=index,
            archive_size=len(self.archive),
            novelty_mean=float(novelties.mean()),
            best_return=self.weight.best,
            unstable_episodes=unstable,
        )
        if self.variant == "nsra_es":
            metrics["reward_weight"] = self.weight.value
        all_returns = np.array(returns + [r.episode_return for r in episodes])
        return EpochResult(steps + int(lengths.sum()), len(all_returns), all_returns, metrics, behaviours)

    # ------------------------------------------------------------------ evaluation and files

    def evaluate(self, epoch: int, n_episodes: int) -> Evaluation:
        """Episodes of the best policy found so far (the highest mean return over its BC
        episodes, with the observation statistics it had then). Novelty search keeps its best
        solution: its agents are pushed away from behaviour already seen, so the current ones
        need not be where the best return was."""
        seeds = seeding.env_seeds(self.seed, seeding.EVAL_ENV, epoch, n_episodes)
        best = self.best or self.agents[self.best_agent]  # before the first epoch (step 0): agent 0, untrained
        results = self.run_params(best.state.params, seeds, best.obs_stat)
        return Evaluation.from_results(results, agent=self.best_agent)

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """The meta-population: every agent's state (``agent{i}_params``, ``agent{i}_opt_m``, ...),
        observation statistics (``agent{i}_obs_*``), BC and return; the archive (``archive``,
        shape ``(N, bc_dim)``); NSRA-ES's weight (``reward_weight``, ``best_return``,
        ``stagnation``) and the epoch count (``generations``)."""
        arrays = {
            "archive": self.archive.array() if len(self.archive) else np.zeros((0, 0)),
            "reward_weight": np.asarray(self.weight.value),
            "best_return": np.asarray(self.weight.best),
            "stagnation": np.asarray(self.weight.stagnation),
            "generations": np.asarray(self.generation),
        }
        named = [(f"agent{i}_", a) for i, a in enumerate(self.agents)]
        if self.best is not None:
            named.append(("best_", self.best))
            arrays["best_agent"] = np.asarray(self.best_agent)
        for prefix, a in named:
            arrays.update(state_arrays(a.state, prefix))
            arrays.update(running_stat_arrays(a.obs_stat, f"{prefix}obs_"))
            arrays[f"{prefix}return"] = np.asarray(a.episode_return)
            if a.bc is not None:
                arrays[f"{prefix}bc"] = a.bc
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the meta-population, the archive, NSRA-ES's weight, the epoch count and the best policy from
        :meth:`checkpoint_arrays`' arrays (an agent state's field absent from them keeps its current value).

        :raises KeyError: if another array the checkpoint always holds is missing.
        """
        self.archive = Archive(list(np.array(arrays["archive"])) if arrays["archive"].size else [])
        self.weight = RewardWeight(
            float(arrays["reward_weight"]), float(arrays["best_return"]), int(arrays["stagnation"])
        )
        self.generation = int(arrays["generations"])
        self.best = Agent(self.agents[0].state, self.agents[0].obs_stat) if "best_agent" in arrays else None
        named = [(f"agent{i}_", a) for i, a in enumerate(self.agents)] + ([("best_", self.best)] if self.best else [])
        for prefix, a in named:
            a.state = state_from_arrays(a.state, arrays, prefix)
            a.obs_stat = running_stat_from_arrays(arrays, f"{prefix}obs_")
            a.episode_return = float(arrays[f"{prefix}return"])
            a.bc = np.array(arrays[f"{prefix}bc"]) if f"{prefix}bc" in arrays else None
        self.best_agent = int(arrays.get("best_agent", 0))

    def save(self, run_dir: Path) -> Path:
        """``policy.npz`` of the best policy found so far (as ES's, reloadable with
        ``load_policy``; ``meta`` names the agent) and ``meta_population.npz``
        (:meth:`checkpoint_arrays`: every agent, the archive, the best policy as ``best_*``)."""
        self.state, self.obs_stat = self.best.state, self.best.obs_stat
        self.meta = {**self.meta, "agent": self.best_agent}
        path = super().save(run_dir)
        out = Path(run_dir) / META_POPULATION_FILE
        tmp = out.with_suffix(".tmp.npz")
        np.savez(tmp, **self.checkpoint_arrays(), meta=json.dumps(self.meta))
        tmp.replace(out)
        return path


#: the config dataclasses that declare this algorithm's ``algo.*`` keys: each agent's ES step, the family's own
CONFIGS = (OpenAIESConfig, NoveltyConfig)


def validate(cfg) -> None:
    """Check ``cfg.algo`` for the novelty family (ES's keys first) and that the environment
    declares a behaviour characterization. :raises ConfigError: naming the key."""
    es.validate(cfg, needs_bc=True)
    algo = cfg.algo
    es.strategy_config(NoveltyConfig, algo)
    require(algo.antithetic is True, f"algo.antithetic must be true for {algo.name} (mirrored-sampling ES step)")
    require(
        not algo.get("jump_every"),
        f"algo.jump_every is ES's and VO's: {algo.name} keeps the best policy of its "
        "meta-population instead; leave it 0",
    )
    require(
        cfg.env.get("bc") is not None,
        f"{algo.name} needs a behaviour characterization, but env={cfg.env.name} declares none (env.bc is "
        f"null); set env.bc to one of com_x, com_xy, final_xy, or use an environment that declares one",
    )


def make_trainer(cfg) -> NoveltyTrainer:
    """Build the per-agent :class:`OpenAIES`, the workers and the :class:`NoveltyTrainer`."""
    es_config = es.strategy_config(OpenAIESConfig, cfg.algo)
    # the agents' own step takes the trainer's scores as they are: the trainer ranks reward and novelty
    agent_config = dataclasses.replace(es_config, fitness_shaping="none")
    return build_trainer(
        cfg,
        lambda d, noise, opt: OpenAIES(d, noise, opt, agent_config),
        NoveltyTrainer,
        require_bc=True,
        config=es.strategy_config(NoveltyConfig, cfg.algo),
        shaping=es_config.fitness_shaping,
    )
