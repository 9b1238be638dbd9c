"""Tuners on synthetic cost landscapes (a fake measure function: no compilation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.autotune import (
    GridTuner,
    MeasureResult,
    ModelBasedTuner,
    RandomTuner,
    create_task,
    load_records,
    template,
)
from ember.dispatch.record import Record

pytest.importorskip("xgboost")


@template("test_synthetic_landscape")
def synthetic(cfg, n: int, shift: int = 0):  # type: ignore[no-untyped-def]
    """Knobs only; the landscape below gives each point a cost."""
    cfg.define_split("tile_x", n, num_outputs=3)
    cfg.define_split("tile_y", 256, num_outputs=2)
    cfg.define_knob("unroll", [0, 1, 2, 3])
    return None, []


def landscape(cfg, shift: int = 0) -> float:  # type: ignore[no-untyped-def]
    """A smooth bowl in log2 of the factors, plus a knob term; one optimum."""
    _, x1, x2 = cfg["tile_x"].size
    _, y = cfg["tile_y"].size
    u = cfg["unroll"].val
    return (
        1.0
        + (math.log2(x1) - 2 - shift) ** 2
        + 0.7 * (math.log2(x2) - 3) ** 2
        + 0.5 * (math.log2(y) - 4) ** 2
        + (0.0 if u == 2 else 1.5)
    ) * 1e-3


class FakeMeasure:
    def __init__(self, shift: int = 0) -> None:
        self.calls = 0
        self.measured: list[int] = []
        self.shift = shift

    def __call__(self, inputs):  # type: ignore[no-untyped-def]
        self.calls += len(inputs)
        self.measured += [inp.config.index for inp in inputs]
        return [MeasureResult([landscape(inp.config, self.shift)] * 3) for inp in inputs]


def _optimum(task) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    costs = [landscape(task.config_space.get(i)) for i in range(len(task.config_space))]
    return int(np.argmin(costs)), float(min(costs))


def test_random_and_grid_find_the_optimum_and_never_repeat() -> None:
    task = create_task("test_synthetic_landscape", (64,))
    size = len(task.config_space)
    _, best = _optimum(task)
    for tuner in (RandomTuner(task, seed=1), GridTuner(task)):
        fake = FakeMeasure()
        result = tuner.tune(n_trial=size + 10, measure=fake, batch_size=16)
        assert result.cost == pytest.approx(best)
        assert fake.calls == size  # every point exactly once, then the space is exhausted
        assert len(set(fake.measured)) == size


def test_model_based_tuner_finds_the_optimum_within_budget() -> None:
    task = create_task("test_synthetic_landscape", (512,))
    size = len(task.config_space)
    _, best = _optimum(task)
    tuner = ModelBasedTuner(task, seed=0, structure_features=False)
    fake = FakeMeasure()
    result = tuner.tune(n_trial=160, measure=fake, batch_size=8)
    assert size > 1500
    assert result.cost == pytest.approx(best)
    assert len(set(fake.measured)) == fake.calls  # no config measured twice


def test_model_based_beats_random_on_average() -> None:
    task = create_task("test_synthetic_landscape", (512,))
    _, best = _optimum(task)
    budget = 64
    model_best, random_best = [], []
    for seed in range(3):
        m = ModelBasedTuner(task, seed=seed, structure_features=False)
        model_best.append(m.tune(budget, FakeMeasure(), batch_size=8).cost / best)
        r = RandomTuner(task, seed=seed)
        random_best.append(r.tune(budget, FakeMeasure(), batch_size=8).cost / best)
    assert np.mean(model_best) < np.mean(random_best)


def test_transfer_warm_starts_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Records of another workload of the same template (a shifted landscape)...
    other = create_task("test_synthetic_landscape", (256,))
    log = tmp_path / "other.jsonl"
    RandomTuner(other, seed=0).tune(96, FakeMeasure(shift=0), batch_size=16, log=log)
    records = list(load_records(log))
    task = create_task("test_synthetic_landscape", (512,))
    tuner = ModelBasedTuner(task, seed=0, structure_features=False, transfer=records)
    assert tuner.transferred == 96
    # ... let the very first batch come from the model, not at random.
    fake = FakeMeasure()
    tuner.tune(8, fake, batch_size=8)
    first = np.mean([landscape(task.config_space.get(i)) for i in fake.measured])
    rand = FakeMeasure()
    RandomTuner(task, seed=0).tune(8, rand, batch_size=8)
    random_first = np.mean([landscape(task.config_space.get(i)) for i in rand.measured])
    assert first < random_first


def test_resume_skips_measured_configs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("test_synthetic_landscape", (64,))
    log = tmp_path / "log.jsonl"
    first = FakeMeasure()
    RandomTuner(task, seed=0).tune(40, first, batch_size=8, log=log)
    assert len(list(load_records(log))) == 40
    second = FakeMeasure()
    tuner = RandomTuner(task, seed=1)
    tuner.tune(40, second, batch_size=8, log=log)
    assert second.calls == 40
    assert not set(first.measured) & set(second.measured)
    assert tuner.trials == 40 and len(tuner.visited) == 80
    recs = list(load_records(log))
    assert len(recs) == 80 and len({r.config["index"] for r in recs}) == 80
    assert all(isinstance(r, Record) and r.error is None for r in recs)


def test_time_budget_and_early_stopping() -> None:
    task = create_task("test_synthetic_landscape", (64,))
    fake = FakeMeasure()
    RandomTuner(task, seed=0).tune(1000, fake, batch_size=4, time_budget=0.0)
    assert fake.calls == 0
    tuner = GridTuner(task)
    tuner.tune(1000, FakeMeasure(), batch_size=4, early_stopping=8)
    assert tuner.trials < len(task.config_space)


def test_user_errors(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ember.errors import EmberError, ScheduleError

    task = create_task("test_synthetic_landscape", (64,))
    with pytest.raises(ScheduleError, match="returned 0 results for 4 inputs"):
        RandomTuner(task, seed=0).tune(4, lambda inputs: [], batch_size=4)
    monkeypatch.setitem(__import__("sys").modules, "xgboost", None)
    with pytest.raises(EmberError, match="the model-based tuner needs xgboost"):
        ModelBasedTuner(task)
