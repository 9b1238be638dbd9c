"""Model-based tuning: a learned cost model ranks configs; simulated annealing proposes them.

    tuner = ModelBasedTuner(task, seed=0, transfer=load_records("other_shapes.jsonl"))
    tuner.tune(n_trial=200, measure=LocalMeasure(task), log="log.jsonl")

Each round:

1. fit gradient-boosted trees (xgboost, ``rank:pairwise``: only the order of configs
   matters, so one model serves workloads of any speed) on the features of every
   measured config, labelled by relative throughput (errors rank last); records of
   other workloads of the same template join as their own ranking groups (transfer);
2. simulated annealing over the space, with the model's score as the energy, from the
   best measured configs and random ones; every visited point is a candidate;
3. pick the batch greedily from the top candidates: score plus a bonus for knob values
   no picked config has yet (diversity), and an ``epsilon`` share of random configs
   (exploration).

Until ``min_train`` configs have been measured the tuner proposes random configs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.autotune.features import FeatureExtractor
from ember.autotune.tuner import Tuner
from ember.dispatch.record import Record
from ember.dispatch.task import Task, create_task
from ember.errors import EmberError

BOOST_ROUNDS = 80
"""Boosting rounds per fit (a few hundred rows: tens of milliseconds)."""


def _require_xgboost() -> Any:
    try:
        import xgboost
    except ImportError:
        raise EmberError(
            "the model-based tuner needs xgboost",
            hint="pip install 'ember[autotune]' (or use RandomTuner / GridTuner)",
        ) from None
    return xgboost


def _relevance(costs: Sequence[float]) -> np.ndarray:
    """Relative throughput: best config 1, twice as slow 0.5, errors 0."""
    arr = np.asarray(costs, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(len(arr))
    best = arr[finite].min()
    out = np.zeros(len(arr))
    out[finite] = best / arr[finite]
    return out


class CostModel:
    """Gradient-boosted trees ranking configs of one task by predicted speed."""

    def __init__(self, features: FeatureExtractor, seed: int = 0) -> None:
        self.xgb = _require_xgboost()
        self.features = features
        self.seed = seed
        self.booster: Any = None
        self._transfer: list[tuple[np.ndarray, np.ndarray]] = []

    def add_transfer(self, X: np.ndarray, costs: Sequence[float]) -> None:
        """Rows of another workload (same template): a separate ranking group."""
        if len(X) >= 2:
            self._transfer.append((X, _relevance(costs)))

    def fit(self, indices: Sequence[int], costs: Sequence[float]) -> None:
        """Fit on this task's measured configs plus the transferred groups."""
        width = len(self.features.row(0))
        Xs, ys, groups = [], [], []
        if len(indices):
            Xs.append(self.features.features(list(indices)))
            ys.append(_relevance(costs))
            groups.append(len(indices))
        for tX, ty in self._transfer:
            if tX.shape[1] == width:
                Xs.append(tX)
                ys.append(ty)
                groups.append(len(tX))
        if not Xs:
            return
        dm = self.xgb.DMatrix(np.concatenate(Xs), label=np.concatenate(ys), nthread=1)
        dm.set_group(groups)
        params = {
            "objective": "rank:pairwise",
            "max_depth": 6,
            "eta": 0.3,
            "min_child_weight": 1,
            "subsample": 1.0,
            "nthread": 1,
            "verbosity": 0,
            "seed": self.seed,
        }
        self.booster = self.xgb.train(params, dm, num_boost_round=BOOST_ROUNDS)

    def predict(self, indices: Sequence[int]) -> np.ndarray:
        """Scores (higher = predicted faster); only their order means anything."""
        if self.booster is None:
            return np.zeros(len(indices))
        X = self.features.features(list(indices))
        # inplace_predict skips building a DMatrix (which costs more than the prediction).
        return self.booster.inplace_predict(X)


class ModelBasedTuner(Tuner):
    """Cost-model-guided search (see the module docstring)."""

    def __init__(
        self,
        task: Task,
        seed: int | None = None,
        *,
        transfer: Sequence[Record] = (),
        structure_features: bool = True,
        epsilon: float = 0.1,
        min_train: int = 16,
        n_chains: int = 64,
        n_steps: int = 60,
        diversity: float = 0.5,
    ) -> None:
        super().__init__(task, seed)
        self.fx = FeatureExtractor(task, structure=structure_features)
        self.model = CostModel(self.fx, seed=int(self.rng.integers(1 << 30)))
        self.epsilon = epsilon
        self.min_train = min_train
        self.n_chains = n_chains
        self.n_steps = n_steps
        self.diversity = diversity
        self._dims = self.space.dims
        self._movable = [k for k, n in enumerate(self._dims) if n > 1]
        self._py_rng = random.Random(int(self.rng.integers(1 << 30)))
        self.transferred = self._load_transfer(transfer, structure_features)

    def _load_transfer(self, records: Sequence[Record], structure: bool) -> int:
        """Warm-start from other workloads of the same template and target."""
        by_workload: dict[str, list[Record]] = {}
        for r in records:
            wl = r.workload
            if wl.get("template") != self.task.name or r.target != self.task.target_key:
                continue
            if wl == self.task.workload:
                continue  # this task's own records are history, not transfer
            by_workload.setdefault(wl["key"], []).append(r)
        used = 0
        for recs in by_workload.values():
            try:
                other = create_task(self.task.name, recs[0].workload["args"], self.task.target)
                fx = FeatureExtractor(other, structure=structure)
                pairs = [(other.config_space.index_of(r.config["knobs"]), r.cost) for r in recs]
            except Exception:  # noqa: BLE001  (a workload this template cannot rebuild)
                continue
            X = fx.features([i for i, _ in pairs])
            self.model.add_transfer(X, [c for _, c in pairs])
            used += len(pairs)
        if used:
            self.model.fit([], [])  # a transferred model ranks from the first batch
        return used

    def set_transfer_groups(self, groups: Sequence[tuple[np.ndarray, Sequence[float]]]) -> None:
        """Replace the transferred data with ``(features, costs)`` groups of other tasks
        measured in this process (e.g. the other kernels of a model being tuned); groups
        whose feature layout differs from this task's are ignored."""
        self.model._transfer = []
        width = len(self.fx.row(0))
        used = 0
        for X, costs in groups:
            if X.ndim == 2 and X.shape[1] == width and len(X) >= 2:
                self.model.add_transfer(X, costs)
                used += len(X)
        self.transferred = used

    # ---------------------------------------------------------------- search
    def _neighbor(self, index: int) -> int:
        coords = self.space.knob_indices(index)
        dims = self._dims
        if not self._movable:
            return index
        rnd = self._py_rng  # scalar draws: Python's generator is ~10x cheaper than numpy's
        k = rnd.choice(self._movable)
        # Mostly step to an adjacent choice (factors are sorted), sometimes jump.
        if rnd.random() < 0.7:
            coords[k] = min(max(coords[k] + rnd.choice((-1, 1)), 0), dims[k] - 1)
        else:
            coords[k] = rnd.randrange(dims[k])
        return self.space.index_from_knob_indices(coords)

    def _anneal(self, n_keep: int) -> list[tuple[float, int]]:
        """Simulated annealing with the model as energy; the best unvisited points seen."""
        size = len(self.space)
        n = min(self.n_chains, size)
        measured = [i for i, c in sorted(zip(self.xs, self.ys), key=lambda t: t[1])]
        starts = measured[: n // 2] + [int(self.rng.integers(size)) for _ in range(n)]
        points = starts[:n]
        scores = self.model.predict(points)
        seen: dict[int, float] = dict(zip(points, map(float, scores)))
        spread = float(np.std(scores)) or 1.0
        for step in range(self.n_steps):
            temp = spread * max(1.0 - step / self.n_steps, 0.05)
            cand = [self._neighbor(p) for p in points]
            new = [c for c in cand if c not in seen]
            if new:
                for c, v in zip(new, self.model.predict(new)):
                    seen[c] = float(v)
            cand_scores = np.array([seen[c] for c in cand])
            accept = self.rng.random(len(points)) < np.exp(
                np.minimum((cand_scores - scores) / temp, 0.0)
            )
            points = [c if a else p for c, p, a in zip(cand, points, accept)]
            scores = np.where(accept, cand_scores, scores)
        ranked = sorted(((v, i) for i, v in seen.items() if i not in self.visited), reverse=True)
        return ranked[:n_keep]

    def _diverse_pick(self, ranked: list[tuple[float, int]], k: int) -> list[int]:
        """Greedy: normalized score plus a bonus per knob value not yet in the batch."""
        if not ranked:
            return []
        vals = np.array([v for v, _ in ranked])
        lo, hi = vals.min(), vals.max()
        norm = (vals - lo) / (hi - lo) if hi > lo else np.ones_like(vals)
        coords = [self.space.knob_indices(i) for _, i in ranked]
        n_knobs = max(len(self.space.dims), 1)
        covered: list[set[int]] = [set() for _ in range(n_knobs)]
        chosen: list[int] = []
        left = set(range(len(ranked)))
        while left and len(chosen) < k:
            best, best_gain = -1, -math.inf
            for j in left:
                new_vals = sum(1 for d, c in enumerate(coords[j]) if c not in covered[d])
                gain = norm[j] + self.diversity * new_vals / n_knobs
                if gain > best_gain:
                    best, best_gain = j, gain
            left.discard(best)
            chosen.append(ranked[best][1])
            for d, c in enumerate(coords[best]):
                covered[d].add(c)
        return chosen

    def next_batch(self, batch_size: int) -> list[int]:
        finite = sum(1 for y in self.ys if math.isfinite(y))
        if finite < self.min_train and not self.transferred:
            return self._unvisited_random(batch_size)
        if self.xs or self.transferred:
            self.model.fit(self.xs, self.ys)
        n_random = sum(self.rng.random() < self.epsilon for _ in range(batch_size))
        ranked = self._anneal(max(4 * batch_size, 32))
        picked = self._diverse_pick(ranked, batch_size - n_random)
        fill = [i for i in self._unvisited_random(batch_size) if i not in picked]
        return (picked + fill)[:batch_size]


__all__ = ["CostModel", "ModelBasedTuner"]
