"""NetES: Adjodah, Calacci, Dubey, Goyal, Krafft, Moro & Pentland 2019, "Communication
topologies between learning agents in deep reinforcement learning" (arXiv 1902.06740), Sec. 3.

``N`` OpenAI-ES agents on a graph. Each generation every agent ``j`` evaluates its own mirrored
perturbations ``theta_j +- sigma eps_jk`` (one :class:`~harness.es.population.Population` with
``N`` centres); agent ``i`` then updates from the perturbations of its neighbourhood
``N_i = {i} + neighbours(i)`` alone, each seen from ``theta_i`` (the paper's Eq. 2,
``theta_i += alpha / (|N_i| sigma^2) sum_j sum_k R_jk (theta_j + sigma eps_jk - theta_i)``), with
fitness shaped (centered ranks) within the neighbourhood. In the starter's convention (the
direction the optimizer receives, :mod:`~harness.es.strategies.openai_es`), for mirrored pairs
with utilities ``u+``, ``u-``::

    g_i = 1/n_i sum_{pairs in N_i} [ (u+ - u-) s(eps) + (u+ + u-) (theta_j - theta_i) / sigma ]

where ``s`` is the noise's mean score (``eps`` for the Gaussian) and ``n_i`` counts the
neighbourhood's episodes; with one agent (or a neighbour at the same point) the second term is 0
and the update is OpenAI-ES's, bit for bit. Each agent has its own optimizer state; all start from
the same parameters, and their perturbations set them apart.

Topologies (networkx): ``fully_connected``; ``ring``; ``erdos_renyi`` with edge probability ``p``,
drawn from the run's seed and redrawn until connected (a disconnected graph is never used; below
the connectivity threshold ``ln N / N`` it may take many draws: after 1000 the run stops, naming
``p``). The paper's periodic broadcast is ``broadcast_every``: every so many generations each
agent takes the parameters of the agent whose perturbations scored best that generation. That
agent's parameters are also what an evaluation runs. Metrics: ``edge_density``, ``param_spread``
(mean distance of the agents' parameters to their centroid), ``best_agent``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.es import checks
from harness.es.gradient import antithetic_gradient
from harness.es.noise import NoiseTable
from harness.es.optimizers import Optimizer
from harness.es.population import Population
from harness.es.shaping import shape_fitness
from harness.es.strategies.base import Metrics, StrategyState
from harness.es.strategies.openai_es import OpenAIESBase, OpenAIESConfig

if TYPE_CHECKING:
    import networkx as nx  # untyped (no stubs): its names are Any to the type checker

TOPOLOGIES = ("fully_connected", "ring", "erdos_renyi")
MAX_GRAPH_DRAWS = 1000


@dataclass(frozen=True, kw_only=True)
class NetESConfig(OpenAIESConfig):
    """NetES's hyperparameters: OpenAI-ES's per agent (``population_size`` is each agent's episodes
    per generation) plus the graph's; defaults and comments in ``conf/algo/netes.yaml``.

    :param agents: ``N``, >= 1. :param topology: one of :data:`TOPOLOGIES`.
    :param edge_probability: ``erdos_renyi``'s ``p``, in ``(0, 1]``.
    :param broadcast_every: every so many generations all agents take the best agent's parameters
        (0: never).
    :raises ValueError: naming the key, for a value of the wrong type or out of range.
    """

    agents: int
    topology: str
    edge_probability: float
    broadcast_every: int

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.check(self.antithetic is True, "algo.antithetic must be true for netes (mirrored pairs)")
        checks.integer("algo.agents", self.agents, 1, "learning agents on the graph")
        checks.one_of("algo.topology", self.topology, TOPOLOGIES)
        checks.in_range("algo.edge_probability", self.edge_probability, 0, 1, "(]")
        checks.integer("algo.broadcast_every", self.broadcast_every, 0, "generations; 0: never")
        checks.check(
            not self.precondition and not self.curvature,
            "algo.curvature and algo.precondition are OpenAI-ES's and VO's, not netes'",
        )


def make_graph(config: NetESConfig, rng: np.random.Generator) -> nx.Graph:
    """The agents' graph (a ``networkx.Graph`` on nodes ``0 .. N-1``), connected.

    :raises ValueError: if ``MAX_GRAPH_DRAWS`` Erdos-Renyi draws were all disconnected.
    """
    import networkx as nx  # here, not at module import: the core loads numpy alone

    n = int(config.agents)
    if config.topology == "fully_connected":
        return nx.complete_graph(n)
    if config.topology == "ring":
        return nx.cycle_graph(n) if n > 2 else nx.path_graph(n)
    for _ in range(MAX_GRAPH_DRAWS):
        graph = nx.erdos_renyi_graph(n, float(config.edge_probability), seed=int(rng.integers(2**31)))
        if nx.is_connected(graph):
            return graph
    raise ValueError(
        f"algo.edge_probability={config.edge_probability}: {MAX_GRAPH_DRAWS} Erdos-Renyi graphs of "
        f"{n} agents were all disconnected (connected graphs need p above about ln(N)/N = "
        f"{np.log(n) / n:.3f}); raise it"
    )


@dataclass(frozen=True, kw_only=True)
class NetESState(StrategyState):
    """Every agent's parameters ``params`` (shape ``(N, d)``), their optimizer state (arrays with a
    leading agent axis), and the agent that scored best in the last generation."""

    opt: object
    best: int = 0


class NetES(OpenAIESBase[NetESState]):
    """``N`` ES agents on a graph (module docstring).

    :param config: :class:`NetESConfig`. :param graph_rng: draws an Erdos-Renyi graph (the run's
        ``TOPOLOGY`` stream). Other parameters as :class:`OpenAIESBase`.
    :raises ValueError: from :func:`make_graph`.
    """

    def __init__(
        self,
        num_params: int,
        noise: NoiseTable,
        optimizer: Optimizer[Any],
        config: NetESConfig,
        graph_rng: np.random.Generator,
    ) -> None:
        super().__init__(num_params, noise, optimizer, config)
        self.config: NetESConfig = config
        self.fitness_shaping = "none"  # tell hands update the raw fitness: it is ranked per neighbourhood
        self.graph = make_graph(config, graph_rng)
        self.neighbourhoods = [np.array(sorted({i, *self.graph.neighbors(i)})) for i in range(config.agents)]
        n = config.agents
        self.edge_density = 1.0 if n == 1 else float(self.graph.number_of_edges() / (n * (n - 1) / 2))

    def init(self, params: np.ndarray) -> NetESState:
        """Every agent at ``params`` (shape ``(d,)``), each with its own optimizer state."""
        params = np.asarray(params, dtype=np.float64)
        agents = np.repeat(params[None, :], self.config.agents, axis=0)
        return NetESState(
            params=agents,
            generation=0,
            opt=_stack([self.optimizer.init(params.size) for _ in range(self.config.agents)]),
        )

    def ask(self, state: NetESState, rng: np.random.Generator) -> Population:
        """``m = population_size / 2`` mirrored pairs around each of the ``N`` agents: one population with
        the agents' ``(N, d)`` parameters as centres and ``N * m`` table offsets, agent by agent
        (``center_index`` names each pair's agent)."""
        m = self.config.population_size // 2
        offsets = self.noise.sample_offsets(rng, self.num_params, m * self.config.agents)
        return Population(
            state.params,
            float(self.config.sigma),
            offsets,
            True,
            center_index=np.repeat(np.arange(self.config.agents), m),
        )

    def evaluation_params(self, state: NetESState) -> np.ndarray:
        """The parameters, shape ``(d,)``, of ``state.best``: the agent whose perturbations scored best
        (mean raw fitness) in the last generation, agent 0 before the first."""
        return state.params[state.best]

    def update(self, state: NetESState, population: Population, fitness: np.ndarray) -> tuple[NetESState, Metrics]:
        """Every agent's optimizer step on its neighbourhood's pairs (the module docstring's ``g_i`` minus
        ``weight_decay`` times its parameters, the fitness shaped within the neighbourhood), then the
        broadcast if this generation is a multiple of ``broadcast_every``.

        :param fitness: raw episode returns (``tell`` leaves them unshaped), shape ``(N * m, 2)``.
        :raises ValueError: for a population without ``center_index`` (not from :meth:`ask`).
        """
        c = self.config
        eps = self.noise.batch(population.noise_offsets, self.num_params, np.float64)
        score = self.distribution.mean_score(eps)
        owner = population.center_index
        if owner is None:  # NetES's own ask names each perturbation's agent
            raise ValueError("NetES.update: a population without center_index (not from NetES.ask)")
        new_params, new_opts, grad_norms, step_norms = [], [], [], []
        for i, hood in enumerate(self.neighbourhoods):
            rows = np.isin(owner, hood)
            u = shape_fitness(fitness[rows], c.fitness_shaping)  # ranks within the neighbourhood
            grad = antithetic_gradient(u, score[rows], population.sigma)
            g = np.asarray(population.sigma) * grad  # the starter's g, as OpenAI-ES's
            foreign = owner[rows] != i
            if foreign.any():  # neighbours' samples seen from theta_i: (u+ + u-) (theta_j - theta_i) / sigma
                shift = state.params[owner[rows][foreign]] - state.params[i]
                g = g + (u[foreign].sum(axis=1) @ shift) / (u.size * population.sigma)
            delta, opt = self.optimizer.step(_row(state.opt, i), g - float(c.weight_decay) * state.params[i])
            new_params.append(state.params[i] + delta)
            new_opts.append(opt)
            grad_norms.append(float(np.linalg.norm(grad)))
            step_norms.append(float(np.linalg.norm(delta)))
        params = np.stack(new_params)
        agent_return = np.array([fitness[owner == i].mean() for i in range(c.agents)])
        best = int(np.argmax(agent_return))
        if c.broadcast_every and (state.generation + 1) % c.broadcast_every == 0:
            params = np.repeat(params[best][None, :], c.agents, axis=0)
        # means over agents of OpenAI-ES's own metrics, each norm taken as OpenAI-ES takes it (one agent: its numbers)
        old_norm = float(np.mean([np.linalg.norm(p) for p in state.params]))
        metrics = {
            "grad_norm": float(np.mean(grad_norms)),
            "param_norm": float(np.mean([np.linalg.norm(p) for p in params])),
            "update_ratio": float(np.mean(step_norms) / old_norm) if old_norm > 0 else float("nan"),
            "edge_density": self.edge_density,
            "param_spread": float(np.mean(np.linalg.norm(params - params.mean(axis=0), axis=1))),
            "best_agent": best,
        }
        return dataclasses.replace(state, params=params, opt=_stack(new_opts), best=best), metrics


def _stack(states: list[Any]) -> Any:
    """Per-agent optimizer states (dataclasses of arrays and a count) as one, arrays stacked on a leading axis."""
    first = states[0]
    return dataclasses.replace(
        first,
        **{
            f.name: np.stack([getattr(s, f.name) for s in states])
            for f in dataclasses.fields(first)
            if isinstance(getattr(first, f.name), np.ndarray)
        },
    )


def _row(state: Any, i: int) -> Any:
    """Agent ``i``'s optimizer state from a stacked one (:func:`_stack`)."""
    return dataclasses.replace(
        state,
        **{
            f.name: getattr(state, f.name)[i]
            for f in dataclasses.fields(state)
            if isinstance(getattr(state, f.name), np.ndarray)
        },
    )
