"""Share a wall-clock budget among a model's kernels: tune where the run time is.

    sched = TaskScheduler(extract_tasks(mod, params), tuner="model", log="r18.jsonl")
    sched.run(time_budget=900)               # 15 minutes, everything included
    sched.estimated_latency()                # sum over kernels of calls x best cost
    sched.curve                              # [(seconds, estimated latency)], one per batch

Every kernel's default schedule is measured first, so each task knows its share of the
model's run time (calls per inference x its current best cost); where the default is a
point of the kernel's space, its tuner starts with that point measured (the
model-based tuner's search then starts from it: the defaults are good schedules, and
better ones are often a knob or two away). Then, batch by batch,
the task with the highest priority gets the next batch of trials:

    priority = share / (seconds spent on it + 1 s) x (1/2 if its last 3 batches found nothing)

so time is spent in proportion to run time, a kernel that gets faster gets less of it,
and a kernel whose search has gone flat yields to the others. The fastest config
of each batch, when it beats the confirmed best, is measured again in
``CONFIRM_RUNS`` fresh processes before it counts (one lucky measurement among
hundreds on a shared machine is not a gain, and the same pair of kernels times a
few percent apart from one process to the next); it then counts by those
re-measurements alone, the first measurement being the reason it was picked. The
log keeps all of them (the re-measurements marked ``repeat``), and dispatch picks
among the re-measured configs and the default only, the same way. The model-based
tuner learns from the re-measured cost, not the lucky one.
The log is usable at any moment: stopping after 5 minutes gives what a 5-minute
budget gives (all kernels had their turn, the big ones more), which is what makes
one long run's records answer "what would a shorter budget have found".

With the model-based tuner, the kernels' measurements also train each other's cost
models: a kernel's model ranks from its first batch with the other kernels'
measurements (same template, same feature layout) as transferred ranking groups.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.autotune.measure import LocalBuilder, LocalMeasure, LocalRunner
from ember.autotune.model_tuner import ModelBasedTuner
from ember.autotune.tuner import RandomTuner, Tuner, TuneResult
from ember.dispatch.record import append_records, default_record, load_records, make_record
from ember.dispatch.task import Task
from ember.errors import ScheduleError

STALE_BATCHES = 3
"""Batches without improvement after which a task's priority is halved."""

SPENT_OFFSET_S = 1.0
"""Seconds added to the time spent on a task, so untouched tasks do not divide by zero."""

CONFIRM_RUNS = 3
"""Fresh measuring processes that re-measure a batch's fastest config before it counts.
On the development VM the same candidate/default pair times up to ~14% apart from one
process to the next (page placement, neighbours on the shared L3), more than the gap
between good and best configs; the median over three processes halves that spread."""


@dataclass
class TaskSlot:
    """One kernel in the schedule: its tuner, measurement and bookkeeping.

    ``samples`` holds every confirmed measurement per config index (-1: the default
    schedule). A batch's fastest config, when it beats the confirmed best, is measured
    again in ``CONFIRM_RUNS`` fresh processes and counts by those measurements alone, so
    the winner of many noisy single measurements (the "winner's curse") does not pass
    for a gain.
    """

    task: Task
    calls: int
    tuner: Tuner
    measure: Any
    samples: dict[int, list[float]]
    spent: float = 0.0
    batches: int = 0
    last_gain_batch: int = 0
    exhausted: bool = False

    @property
    def default_cost(self) -> float:
        """Median seconds per call of the default schedule."""
        return _median(self.samples.get(-1, []))

    @property
    def best_index(self) -> int:
        """The confirmed fastest config (-1: the default schedule)."""
        return min(self.samples, key=lambda i: _median(self.samples[i]))

    @property
    def cost(self) -> float:
        """Seconds per call now: the confirmed fastest config or the default schedule."""
        return min((_median(v) for v in self.samples.values()), default=math.inf)

    @property
    def share(self) -> float:
        """Seconds per inference this kernel accounts for."""
        return self.calls * self.cost

    def priority(self) -> float:
        stale = self.batches - self.last_gain_batch >= STALE_BATCHES
        return self.share / (self.spent + SPENT_OFFSET_S) * (0.5 if stale else 1.0)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.inf


@dataclass
class TaskScheduler:
    """Tune ``tasks`` (``[(Task, calls per inference)]``) under one time or trial budget."""

    tasks: Sequence[tuple[Task, int]]
    tuner: str = "model"
    log: str | Path | None = None
    batch_size: int = 8
    n_parallel: int | None = None
    timeout: float = 10.0
    seed: int | None = None
    say: Callable[[str], None] = print
    confirm_runs: int = CONFIRM_RUNS
    slots: list[TaskSlot] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since start, estimated latency) after the defaults and after every batch."""

    def estimated_latency(self) -> float:
        """Sum over tuned kernels of calls x best cost (seconds; untunable kernels excluded)."""
        return sum(s.share for s in self.slots)

    def _make_tuner(self, task: Task, k: int) -> Tuner:
        seed = None if self.seed is None else self.seed + k
        if self.tuner == "model":
            return ModelBasedTuner(task, seed=seed)
        if self.tuner == "random":
            return RandomTuner(task, seed=seed)
        raise ScheduleError(
            f"unknown tuner {self.tuner!r}", hint="use tuner='model' or tuner='random'"
        )

    def _setup(self, builder: Any, start: float) -> None:
        for k, (task, calls) in enumerate(self.tasks):
            t0 = time.perf_counter()
            m = LocalMeasure(
                task, builder=builder, runner=LocalRunner(repeat=7, timeout=self.timeout)
            )
            (default,) = m.runner.run([m.default_build])
            if self.log is not None:
                append_records(self.log, [default_record(task, default)])
            tuner = self._make_tuner(task, k)
            if self.log is not None and Path(self.log).exists():
                tuner.load_history(list(load_records(self.log)))  # resume
                tuner._loaded_logs.add(str(self.log))
            point = task.default_index()
            if default.error is None and point is not None and point not in tuner.visited:
                # The default schedule is a point of the space, and it is measured: the
                # search knows it (and the model-based tuner anneals from it).
                tuner.update([point], [default])
            samples = {-1: list(default.costs) if default.error is None else []}
            slot = TaskSlot(task, calls, tuner, m, samples)
            slot.spent = time.perf_counter() - t0
            self.slots.append(slot)
        self.curve.append((time.perf_counter() - start, self.estimated_latency()))

    def _share_transfer(self, slot: TaskSlot) -> None:
        """Give a model-based task the other tasks' measurements as ranking groups."""
        set_transfer = getattr(slot.tuner, "set_transfer_groups", None)
        if set_transfer is None:
            return
        groups = []
        for other in self.slots:
            if other is slot or other.tuner.task.name != slot.task.name:
                continue
            finite = sum(1 for y in other.tuner.ys if math.isfinite(y))
            if finite >= 2:
                groups.append((other.tuner.fx.features(list(other.tuner.xs)), other.tuner.ys))
        set_transfer(groups)

    def _step(self, slot: TaskSlot) -> None:
        t0 = time.perf_counter()
        if self.tuner == "model":
            self._share_transfer(slot)
        trials, n_before = slot.tuner.trials, len(slot.tuner.xs)
        slot.tuner.tune(self.batch_size, slot.measure, batch_size=self.batch_size, log=self.log)
        slot.batches += 1
        if slot.tuner.trials == trials or not slot.tuner.has_next():
            slot.exhausted = True  # the whole space is measured
        # The batch's fastest config, if it beats the confirmed best, is measured again.
        # (Not only a new best of the search: a config whose first measurement was lucky
        # and did not hold up stays the search's best, and must not hide later ones.)
        batch = zip(slot.tuner.ys[n_before:], slot.tuner.xs[n_before:], strict=True)
        fastest = min(
            ((c, i) for c, i in batch if math.isfinite(c) and i not in slot.samples), default=None
        )
        if fastest is not None and fastest[0] < slot.cost and self._confirm(slot, fastest[1]):
            slot.last_gain_batch = slot.batches
        slot.spent += time.perf_counter() - t0

    def _confirm(self, slot: TaskSlot, index: int) -> bool:
        """Measure ``index`` again in ``confirm_runs`` fresh processes (and the default
        schedule once more); True if it is now the confirmed fastest. It counts by these
        re-measurements only, and only if every one of them succeeded (a config that
        crashes or times out now and then is no gain). All go to the log."""
        cost_before = slot.cost
        builder, runner = slot.measure.builder, slot.measure.runner
        (build,) = builder.build(slot.task, [index])
        *again, default = runner.run([build] * self.confirm_runs + [slot.measure.default_build])
        if all(r.error is None for r in again):
            slot.samples[index] = [c for r in again for c in r.costs]
            slot.tuner.relabel(index, _median(slot.samples[index]))
        if default.error is None:
            slot.samples[-1].extend(default.costs)
        if self.log is not None:
            config = slot.tuner.space.get(index)
            records = [make_record(slot.task, config, r) for r in again]
            for r in records:
                r.config["repeat"] = True  # a re-measurement: the search skips it on resume
            append_records(self.log, [*records, default_record(slot.task, default)])
        return slot.cost < cost_before and slot.best_index == index

    def run(
        self, time_budget: float | None = None, n_trial: int | None = None
    ) -> list[tuple[Task, TuneResult]]:
        """Tune until ``time_budget`` seconds (setup included) or ``n_trial`` new trials."""
        if time_budget is None and n_trial is None:
            raise ScheduleError(
                "TaskScheduler.run needs a budget", hint="pass time_budget= or n_trial="
            )
        start = time.perf_counter()
        builder = LocalBuilder(self.n_parallel)
        trials = 0
        try:
            self._setup(builder, start)
            latency0 = self.estimated_latency()
            self.say(
                f"{len(self.slots)} kernels, default schedules: {latency0 * 1e3:.2f} ms "
                f"per inference (tunable kernels only)"
            )
            while True:
                elapsed = time.perf_counter() - start
                if time_budget is not None and elapsed >= time_budget:
                    break
                if n_trial is not None and trials >= n_trial:
                    break
                live = [s for s in self.slots if not s.exhausted]
                if not live:
                    break
                slot = max(live, key=TaskSlot.priority)
                before = slot.tuner.trials
                self._step(slot)
                trials += slot.tuner.trials - before
                now = time.perf_counter() - start
                self.curve.append((now, self.estimated_latency()))
                name = slot.task.describe[0] if slot.task.describe else slot.task.name
                self.say(
                    f"  {now:7.1f}s  {name:<28} trials {slot.tuner.trials:4d}  "
                    f"best {slot.task.flop / slot.cost / 1e9:7.1f} GFLOP/s  "
                    f"model {self.estimated_latency() * 1e3:8.3f} ms"
                )
        finally:
            for s in self.slots:
                s.measure.runner.close()
            builder.close()
        return [
            (
                s.task,
                TuneResult(
                    s.tuner.space.get(s.best_index) if s.best_index >= 0 else None,
                    s.cost,
                    s.tuner.trials,
                    s.task.flop,
                ),
            )
            for s in self.slots
        ]


__all__ = ["CONFIRM_RUNS", "TaskScheduler", "TaskSlot"]
