"""Tuners: propose configs, measure them, keep the best, and log every measurement.

    tuner = RandomTuner(task, seed=0)          # or GridTuner, ModelBasedTuner
    best = tuner.tune(n_trial=64, measure=LocalMeasure(task), log="log.jsonl")
    best.config, best.cost, tuner.history     # history: (trial, seconds, best cost so far)

``measure`` is any callable ``list[MeasureInput] -> list[MeasureResult]``, so tests and
benchmarks can tune synthetic landscapes without compiling. With ``log=`` the records
already in the log for this task are loaded first and never measured again (resume).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ember.autotune.measure import MeasureInput, MeasureResult
from ember.dispatch.record import Record, append_records, load_records, make_record
from ember.dispatch.space import ConfigEntity
from ember.dispatch.task import Task
from ember.errors import ScheduleError

Measure = Callable[[list[MeasureInput]], list[MeasureResult]]
Callback = Callable[["Tuner", list[MeasureInput], list[MeasureResult]], None]


@dataclass
class TuneResult:
    """The best config found (None if every trial failed) and its median seconds."""

    config: ConfigEntity | None
    cost: float
    trials: int
    flop: float = 0.0

    @property
    def gflops(self) -> float:
        """Best GFLOP/s (0 when nothing ran or the template counts no flops)."""
        return self.flop / self.cost / 1e9 if math.isfinite(self.cost) and self.flop else 0.0


class Tuner:
    """Base class: subclasses implement :meth:`next_batch` (and may use :meth:`update`)."""

    def __init__(self, task: Task, seed: int | None = None) -> None:
        self.task = task
        self.space = task.config_space
        self.rng = np.random.default_rng(seed)
        self.visited: set[int] = set()
        self.xs: list[int] = []
        self.ys: list[float] = []  # seconds; inf for errors
        self.best_index = -1
        self.best_cost = math.inf
        self.history: list[tuple[int, float, float]] = []
        self.trials = 0
        self.errors: dict[str, int] = {}
        self._loaded_logs: set[str] = set()

    # ---------------------------------------------------------------- to implement
    def next_batch(self, batch_size: int) -> list[int]:
        """Indices of up to ``batch_size`` configs not measured yet."""
        raise NotImplementedError

    def has_next(self) -> bool:
        return len(self.visited) < len(self.space)

    # ---------------------------------------------------------------- bookkeeping
    def update(self, indices: Sequence[int], results: Sequence[MeasureResult]) -> None:
        """Take in measured results (errors have infinite cost)."""
        for i, r in zip(indices, results, strict=True):
            self.visited.add(i)
            self.xs.append(i)
            cost = r.cost if r.error is None else math.inf
            self.ys.append(cost)
            if r.error is not None:
                kind = r.error.get("kind", "error")
                self.errors[kind] = self.errors.get(kind, 0) + 1
            if cost < self.best_cost:
                self.best_cost, self.best_index = cost, i

    def relabel(self, index: int, cost: float) -> None:
        """Replace a measured config's cost with a better estimate (the task scheduler's
        re-measurements in fresh processes), so a cost model learns from it rather than
        from a lucky first measurement; the best is recomputed."""
        self.ys[self.xs.index(index)] = cost
        self.best_cost = min(self.ys, default=math.inf)
        self.best_index = self.xs[self.ys.index(self.best_cost)] if self.ys else -1

    def load_history(self, records: Sequence[Record]) -> int:
        """Take in earlier records of this task (same workload and target); return how many."""
        mine = [
            r
            for r in records
            if r.target == self.task.target_key and r.workload == self.task.workload
        ]
        indices, results = [], []
        for r in mine:
            if r.config.get("default") or r.config.get("repeat"):
                continue  # the default schedule (not a point of the space), or a re-measurement
            try:
                index = self.space.index_of(r.config["knobs"])
            except ScheduleError:
                continue  # a record from another version of the template
            indices.append(index)
            results.append(MeasureResult(list(r.costs), r.error, r.timestamp))
        self.update(indices, results)
        return len(indices)

    def _unvisited_random(self, n: int) -> list[int]:
        out: list[int] = []
        size = len(self.space)
        left = size - len(self.visited)
        if left <= 0:
            return out
        if left <= 4 * n or size <= 4096:
            pool = [i for i in range(size) if i not in self.visited]
            picks = self.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
            return [pool[int(k)] for k in picks]
        chosen: set[int] = set()
        while len(out) < n:
            i = int(self.rng.integers(size))
            if i not in self.visited and i not in chosen:
                chosen.add(i)
                out.append(i)
        return out

    # ---------------------------------------------------------------- the loop
    def tune(
        self,
        n_trial: int,
        measure: Measure,
        batch_size: int = 8,
        log: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        time_budget: float | None = None,
        early_stopping: int | None = None,
    ) -> TuneResult:
        """Measure up to ``n_trial`` new configs (or until ``time_budget`` seconds pass, or
        ``early_stopping`` trials bring no improvement); return the best."""
        if log is not None and Path(log).exists() and str(log) not in self._loaded_logs:
            self.load_history(list(load_records(log)))
            self._loaded_logs.add(str(log))  # a second tune() call resumes, not re-reads
        start = time.perf_counter()
        measured = 0
        last_improvement = 0
        while measured < n_trial and self.has_next():
            if time_budget is not None and time.perf_counter() - start >= time_budget:
                break
            if early_stopping is not None and measured - last_improvement >= early_stopping:
                break
            batch = [i for i in self.next_batch(min(batch_size, n_trial - measured))]
            batch = [i for i in dict.fromkeys(batch) if i not in self.visited]
            if not batch:
                break
            inputs = [MeasureInput(self.task, self.space.get(i)) for i in batch]
            results = measure(inputs)
            if len(results) != len(inputs):
                raise ScheduleError(
                    f"the measure function returned {len(results)} results for {len(inputs)} inputs"
                )
            before = self.best_cost
            self.update(batch, results)
            measured += len(batch)
            self.trials += len(batch)
            if self.best_cost < before:
                last_improvement = measured
            self.history.append((self.trials, time.perf_counter() - start, self.best_cost))
            if log is not None:
                append_records(
                    log,
                    [make_record(self.task, inp.config, r) for inp, r in zip(inputs, results)],
                )
            for cb in callbacks:
                cb(self, inputs, results)
        best = self.space.get(self.best_index) if self.best_index >= 0 else None
        return TuneResult(best, self.best_cost, self.trials, self.space.flop)


class RandomTuner(Tuner):
    """Uniformly random unmeasured configs."""

    def next_batch(self, batch_size: int) -> list[int]:
        return self._unvisited_random(batch_size)


class GridTuner(Tuner):
    """Configs in index order."""

    def __init__(self, task: Task, seed: int | None = None) -> None:
        super().__init__(task, seed)
        self._next = 0

    def next_batch(self, batch_size: int) -> list[int]:
        out = []
        while len(out) < batch_size and self._next < len(self.space):
            if self._next not in self.visited:
                out.append(self._next)
            self._next += 1
        return out


def progress_printer(flop: float, out: Callable[[str], None] = print) -> Callback:
    """A callback printing trials, best GFLOP/s and error counts after each batch."""

    def cb(tuner: Tuner, inputs: list[MeasureInput], results: list[MeasureResult]) -> None:
        best = tuner.best_cost
        gf = flop / best / 1e9 if math.isfinite(best) and flop else 0.0
        errs = sum(tuner.errors.values())
        name = tuner.task.name
        out(f"  [{name}] trials {tuner.trials:4d}  best {gf:8.2f} GFLOP/s  errors {errs}")

    return cb


__all__ = ["GridTuner", "RandomTuner", "TuneResult", "Tuner", "progress_printer"]
