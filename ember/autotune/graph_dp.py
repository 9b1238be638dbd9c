"""The graph tuner's optimizer: pick one state per conv minimizing unary + pairwise costs.

A :class:`LayoutProblem` has one node per convolution (in topological order), each with
its candidate states (``(input block, output block)``), a unary cost per state (the conv
kernel's time, plus transforms that depend on this conv alone) and pairwise cost tables
between two convs (the layout transform between a producer's output block and what a
consumer reads, or between the two operands of a residual add / concat)::

    problem = LayoutProblem(
        nodes=["a", "b"],
        states={"a": [(3, 8), (3, 16)], "b": [(8, 8), (16, 16)]},
        unary={"a": {(3, 8): 2.0, (3, 16): 1.0}, "b": {(8, 8): 1.0, (16, 16): 3.0}},
        pairs={("a", "b"): {((3, 8), (8, 8)): 0.0, ((3, 8), (16, 16)): 0.5,
                            ((3, 16), (8, 8)): 0.5, ((3, 16), (16, 16)): 0.0}},
    )
    best = solve(problem)          # {"a": (3, 8), "b": (8, 8)}: 3.0 beats 4.0
    problem.cost(best)             # 3.0

:func:`solve` is a dynamic program in topological order that keeps, for every
assignment of the *frontier* (convs already decided whose output is still read by a
later conv), the cheapest cost of everything decided so far; a conv leaves the frontier
once its last consumer is placed (its best state is then a function of the frontier's
states, kept for backtracking). On a chain the frontier is one conv: this is Viterbi.
With a residual add the frontier also holds the block input's conv, so shared ancestors
are counted once and the result is exact. Where the table would grow past
``max_table`` entries (many branches alive at once, as in DenseNet's concatenations) the
oldest frontier conv is fixed to its state in the currently cheapest entry, and its later
pairwise costs are charged as if it kept that state: a greedy approximation (TVM's
DPTuner makes a similar one for shared ancestors).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field

State = Hashable

MAX_TABLE = 50_000
"""Frontier table entries at most (9 states per conv: 4 convs alive at once) before the
solver falls back to fixing the oldest frontier conv (see the module docstring)."""


@dataclass
class LayoutProblem:
    """Nodes in topological order, their states, unary costs and pairwise tables.

    ``pairs[(u, v)]`` (u before v in ``nodes``) maps ``(state of u, state of v)`` to a
    cost; a missing pair entry costs 0.
    """

    nodes: list[str]
    states: dict[str, list[State]]
    unary: dict[str, dict[State, float]]
    pairs: dict[tuple[str, str], dict[tuple[State, State], float]] = field(default_factory=dict)

    def add_pair(self, u: str, v: str, table: dict[tuple[State, State], float]) -> None:
        """Add ``table`` to the pairwise cost of (u, v) (either order; summed when repeated)."""
        pos = {n: i for i, n in enumerate(self.nodes)}
        if pos[u] > pos[v]:
            u, v = v, u
            table = {(b, a): c for (a, b), c in table.items()}
        old = self.pairs.setdefault((u, v), {})
        for k, c in table.items():
            old[k] = old.get(k, 0.0) + c

    def cost(self, assignment: dict[str, State]) -> float:
        """The total cost of one state per node."""
        total = sum(self.unary[n][assignment[n]] for n in self.nodes)
        for (u, v), table in self.pairs.items():
            total += table.get((assignment[u], assignment[v]), 0.0)
        return total


def solve(problem: LayoutProblem, max_table: int = MAX_TABLE) -> dict[str, State]:
    """The cheapest assignment (exact while the frontier table fits ``max_table``).

    >>> solve(problem)     # doctest: +SKIP
    {'a': (3, 8), 'b': (8, 8)}
    """
    nodes = problem.nodes
    pos = {n: i for i, n in enumerate(nodes)}
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    last_use = {n: i for i, n in enumerate(nodes)}
    for u, v in problem.pairs:
        preds[v].append(u)
        last_use[u] = max(last_use[u], pos[v])
    frontier: list[str] = []
    table: dict[tuple[State, ...], float] = {(): 0.0}
    fixed: dict[str, State] = {}
    # (eliminated node, the frontier left after it, best state per entry of that frontier)
    eliminated: list[tuple[str, list[str], dict[tuple[State, ...], State]]] = []

    for i, v in enumerate(nodes):
        pred_tables = [(u, problem.pairs[(u, v)]) for u in preds[v]]
        new: dict[tuple[State, ...], float] = {}
        for key, base in table.items():
            known = dict(zip(frontier, key))
            for s in problem.states[v]:
                c = base + problem.unary[v][s]
                for u, pair in pred_tables:
                    su = known[u] if u in known else fixed[u]
                    c += pair.get((su, s), 0.0)
                new[(*key, s)] = c
        frontier, table = [*frontier, v], new
        for u in [u for u in frontier if last_use[u] <= i]:
            k = frontier.index(u)
            rest = frontier[:k] + frontier[k + 1 :]
            reduced: dict[tuple[State, ...], float] = {}
            argmin: dict[tuple[State, ...], State] = {}
            for key, c in table.items():
                short = key[:k] + key[k + 1 :]
                if short not in reduced or c < reduced[short]:
                    reduced[short], argmin[short] = c, key[k]
            eliminated.append((u, rest, argmin))
            frontier, table = rest, reduced
        while len(table) > max_table and frontier:
            # Greedy fallback: the oldest frontier conv keeps its state in the best entry.
            best_key = min(table, key=table.__getitem__)
            u, s = frontier[0], best_key[0]
            fixed[u] = s
            table = {key[1:]: c for key, c in table.items() if key[0] == s}
            frontier = frontier[1:]

    assignment: dict[str, State] = dict(fixed)
    for u, rest, argmin in reversed(eliminated):
        key = tuple(assignment[r] for r in rest)
        assignment[u] = argmin[key]
    return {n: assignment[n] for n in nodes}


def brute_force(problem: LayoutProblem) -> tuple[dict[str, State], float]:
    """Every assignment tried (for tests on small problems): (best, its cost)."""
    best: tuple[dict[str, State], float] | None = None
    for combo in itertools.product(*(problem.states[n] for n in problem.nodes)):
        a = dict(zip(problem.nodes, combo))
        c = problem.cost(a)
        if best is None or c < best[1]:
            best = (a, c)
    if best is None:
        raise ValueError("brute_force: a node has no states")
    return best


__all__ = ["MAX_TABLE", "LayoutProblem", "brute_force", "solve"]
