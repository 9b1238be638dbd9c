"""The time-shared task scheduler: who gets the next batch, budgets, and the anytime log."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ember.autotune import load_records
from ember.autotune.extract import extract_tasks, tune_model
from ember.autotune.scheduler import CONFIRM_RUNS, STALE_BATCHES, TaskScheduler, TaskSlot
from ember.errors import ScheduleError
from ember.graph.ir import Function, Module, TensorType, Var, const
from ember.ops import call


def _rand(*shape: int) -> np.ndarray:
    return (np.random.default_rng().standard_normal(shape) * 0.3).astype(np.float32)


def _model() -> tuple[Module, dict[str, np.ndarray]]:
    """A big conv (most of the run time) and a small dense."""
    x = Var("data", TensorType((1, 16, 20, 20), "float32"))
    y = call("nn.relu", call("nn.conv2d", x, const(_rand(16, 16, 3, 3)), padding=(1, 1, 1, 1)))
    f = call("reshape", call("nn.global_avg_pool2d", y), newshape=(1, 16))
    d = call("nn.dense", f, const(_rand(8, 16)), const(_rand(8)))
    return Module.from_function(Function((x,), d)), {}


def _slot(calls: int, cost: float, spent: float, batches: int = 0, gain: int = 0) -> TaskSlot:
    tuner = SimpleNamespace(best_cost=math.inf)
    return TaskSlot(None, calls, tuner, None, {-1: [cost]}, spent, batches, gain)  # type: ignore[arg-type]


def test_priority_follows_run_time_share_per_second_spent() -> None:
    big, small = _slot(3, 1e-3, spent=10.0), _slot(1, 1e-3, spent=10.0)
    assert big.priority() == pytest.approx(3 * small.priority())
    # Time spent lowers a task's claim on the next batch.
    assert _slot(1, 1e-3, spent=1.0).priority() > _slot(1, 1e-3, spent=5.0).priority()
    # A confirmed config faster than the default shrinks the share; it counts by the
    # median of its measurements, not by its luckiest one.
    faster = _slot(1, 1e-3, spent=1.0)
    faster.samples[7] = [0.4e-3, 0.5e-3, 0.6e-3]
    assert faster.share == pytest.approx(0.5e-3) and faster.best_index == 7
    lucky = _slot(1, 1e-3, spent=1.0)
    lucky.samples[7] = [0.2e-3, 1.2e-3, 1.3e-3]
    assert lucky.best_index == -1 and lucky.cost == pytest.approx(1e-3)
    # A search that found nothing for a few batches yields half its claim.
    fresh = _slot(1, 1e-3, spent=3.0, batches=STALE_BATCHES, gain=1)
    stale = _slot(1, 1e-3, spent=3.0, batches=STALE_BATCHES, gain=0)
    assert stale.priority() == pytest.approx(fresh.priority() / 2)


def test_run_needs_a_budget() -> None:
    with pytest.raises(ScheduleError, match="needs a budget"):
        TaskScheduler([]).run()


@pytest.mark.parametrize("tuner", ["random", "model"])
def test_time_budget_is_shared_and_the_log_is_anytime(tmp_path, tuner) -> None:  # type: ignore[no-untyped-def]
    mod, params = _model()
    tasks = extract_tasks(mod, params)
    assert len(tasks) == 2
    log = tmp_path / "t.jsonl"
    lines: list[str] = []
    sched = TaskScheduler(tasks, tuner, log, n_parallel=2, seed=0, say=lines.append)
    start = time.perf_counter()
    results = sched.run(time_budget=12.0)
    elapsed = time.perf_counter() - start
    assert elapsed < 12.0 + 15.0  # the budget stops it (one batch may run over)
    assert len(results) == 2
    records = list(load_records(log))
    keys = {r.workload["key"] for r in records}
    assert keys == {t.workload["key"] for t, _ in tasks}  # every kernel had a turn
    # One curve point after the defaults and one per batch; the estimate is never above
    # the default schedules' (re-measured) time.
    assert len(sched.curve) == 1 + sum(s.batches for s in sched.slots)
    assert sched.estimated_latency() <= sum(s.calls * s.default_cost for s in sched.slots)
    # The conv dominates the run time, so it got more of the time.
    conv, dense = sorted(sched.slots, key=lambda s: "dense" in s.task.describe[0])
    assert conv.share > dense.share and conv.spent > dense.spent
    # Each tuner started with the default schedule's point measured (its first samples).
    for slot in sched.slots:
        point = slot.task.default_index()
        assert point is not None and point in slot.tuner.visited
        seeded = slot.tuner.ys[slot.tuner.xs.index(point)]
        assert seeded == pytest.approx(float(np.median(slot.samples[-1][:7])))


def test_tune_model_with_a_time_budget_resumes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod, params = _model()
    log = tmp_path / "t.jsonl"
    tune_model(
        mod, params, log=log, tuner="random", n_parallel=2, say=lambda _: None, time_budget=6.0
    )
    first = list(load_records(log))
    assert first
    tune_model(
        mod, params, log=log, tuner="random", n_parallel=2, say=lambda _: None, time_budget=6.0
    )
    second = list(load_records(log))
    searched = [r for r in second if not (r.config.get("default") or r.config.get("repeat"))]
    seen = [(r.workload["key"], r.config["index"]) for r in searched]
    assert len(seen) == len(set(seen))  # nothing measured twice
    space = sum(len(t.config_space) for t, _ in extract_tasks(mod, params))
    n_first = sum(1 for r in first if not (r.config.get("default") or r.config.get("repeat")))
    assert len(seen) > n_first or n_first == space  # resumed, or everything measured
    # Each run logs the default schedules' times, and each new best's re-measurements
    # (CONFIRM_RUNS of them) next to one more of the default's.
    repeats = sum(1 for r in second if r.config.get("repeat"))
    assert repeats % CONFIRM_RUNS == 0
    assert sum(1 for r in second if r.config.get("default")) == 4 + repeats // CONFIRM_RUNS


def test_every_batch_best_that_beats_the_confirmed_cost_is_re_measured() -> None:
    class FakeTuner:
        def __init__(self, batches: list[tuple[list[int], list[float]]]) -> None:
            self.batches = batches
            self.xs: list[int] = []
            self.ys: list[float] = []
            self.trials = 0

        def tune(self, n: int, measure: object, batch_size: int, log: object) -> None:
            xs, ys = self.batches.pop(0)
            self.xs += xs
            self.ys += ys
            self.trials += len(xs)

        def has_next(self) -> bool:
            return bool(self.batches)

    # Config 5's first measurement is lucky (timed again: 1.2 s, slower than the
    # default); config 9 comes later, slower than that lucky 0.5 s, so it is no new best
    # of the search, but it beats the default and must be re-measured too.
    tuner = FakeTuner([([4, 5], [1.1, 0.5]), ([8, 9], [math.inf, 0.8]), ([10], [0.95])])
    slot = TaskSlot(SimpleNamespace(name="t"), 1, tuner, None, {-1: [1.0]})  # type: ignore[arg-type]
    again = {5: [0.5, 1.2, 1.2], 9: [0.8, 0.85, 0.85]}
    confirmed: list[int] = []

    def confirm(slot: TaskSlot, index: int) -> bool:
        confirmed.append(index)
        slot.samples[index] = again[index]
        return slot.best_index == index

    sched = TaskScheduler([], "random")
    sched._confirm = confirm  # type: ignore[method-assign]
    for _ in range(3):
        sched._step(slot)
    assert confirmed == [5, 9]  # 10's 0.95 s does not beat 9's confirmed 0.85 s
    assert slot.best_index == 9 and slot.last_gain_batch == 2
    assert slot.exhausted


def test_a_best_counts_by_its_re_measurements_in_fresh_processes() -> None:
    """_confirm measures the config in CONFIRM_RUNS processes; its lucky first cost is
    dropped (from the slot and from the tuner's labels); a flaky config does not count."""
    from ember.autotune.measure import MeasureResult
    from ember.autotune.tuner import RandomTuner

    class Runner:
        def __init__(self, results: list[MeasureResult]) -> None:
            self.results, self.jobs = results, []

        def run(self, builds: list[object]) -> list[MeasureResult]:
            self.jobs.append(builds)
            return self.results[: len(builds)]

    class Builder:
        def build(self, task: object, indices: list[int]) -> list[str]:
            return [f"build {i}" for i in indices]

    from ember.autotune import create_task

    task = create_task("matmul", (64, 64, 64))
    tuner = RandomTuner(task, seed=0)
    tuner.update([3, 4], [MeasureResult([0.5]), MeasureResult([0.9])])  # 3: lucky once
    ok = [MeasureResult([0.8, 0.8]), MeasureResult([0.7, 0.7]), MeasureResult([0.75, 0.75])]
    runner = Runner([*ok, MeasureResult([1.0])])
    measure = SimpleNamespace(builder=Builder(), runner=runner, default_build="default")
    slot = TaskSlot(task, 1, tuner, measure, {-1: [1.0]})
    sched = TaskScheduler([], "random")
    assert sched._confirm(slot, 3)
    # One job: the config's build CONFIRM_RUNS times (each runs in its own process),
    # then the default's.
    assert runner.jobs == [["build 3"] * CONFIRM_RUNS + ["default"]]
    assert slot.samples[3] == [0.8, 0.8, 0.7, 0.7, 0.75, 0.75]
    assert slot.cost == pytest.approx(0.75)
    assert tuner.ys[tuner.xs.index(3)] == pytest.approx(0.75)  # relabelled
    assert tuner.best_cost == pytest.approx(0.75) and tuner.best_index == 3
    # A config that fails in one of its re-measurements does not count.
    tuner.update([5], [MeasureResult([0.4])])
    flaky = MeasureResult.failed("runtime_crash", "the measuring process died (SIGSEGV)")
    runner.results = [ok[0], flaky, ok[1], MeasureResult([1.0])]
    assert not sched._confirm(slot, 5)
    assert 5 not in slot.samples and slot.best_index == 3
