"""Records (JSON lines) and dispatch: compiling uses the best recorded config per workload."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
from ember.autotune import (
    MeasureResult,
    Record,
    RecordError,
    append_records,
    apply_history_best,
    best_per_workload,
    config_for,
    create_task,
    current_context,
    instantiate,
    load_records,
)
from ember.dispatch.record import make_record
from ember.dispatch.space import FallbackConfig

KNOBS = {
    "tile_y": [-1, 2],
    "tile_x": [-1, 16],
    "tile_k": [-1, 8],
    "k_inner_outside": False,
    "unroll": False,
    "parallel": True,
}


def _record(task, knobs, costs, error=None) -> Record:  # type: ignore[no-untyped-def]
    cfg = task.config_space.get(task.config_space.index_of(knobs))
    return make_record(task, cfg, MeasureResult(list(costs), error))


def test_record_round_trip_and_fields(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("matmul", (64, 64, 64))
    rec = _record(task, KNOBS, [3e-5, 2e-5, 4e-5])
    line = json.loads(rec.to_json())
    assert set(line) == {"target", "workload", "config", "costs", "error", "version", "timestamp"}
    assert line["workload"] == {
        "template": "matmul",
        "args": [64, 64, 64],
        "key": task.workload["key"],
    }
    assert line["config"]["knobs"] == KNOBS and line["error"] is None
    path = tmp_path / "log.jsonl"
    append_records(path, [rec, rec])
    back = list(load_records(path))
    assert back == [rec, rec] and back[0].cost == 3e-5


def test_bad_logs_say_what_is_wrong(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"target": "host"}\n')
    with pytest.raises(RecordError, match=r"bad.jsonl:1: not a tuning record"):
        list(load_records(bad))
    assert list(load_records(bad, skip_bad=True)) == []
    with pytest.raises(RecordError, match="cannot read tuning log"):
        list(load_records(tmp_path / "missing.jsonl"))


def test_best_per_workload_skips_errors() -> None:
    task = create_task("matmul", (64, 64, 64))
    other = dict(KNOBS, unroll=True)
    recs = [
        _record(task, KNOBS, [5e-5]),
        _record(task, other, [], {"kind": "wrong_answer", "message": "x"}),
        _record(task, dict(KNOBS, parallel=False), [4e-5, 9e-5, 1e-5]),
    ]
    best = best_per_workload(recs)
    assert list(best) == [("host", task.workload["key"])]
    assert best[("host", task.workload["key"])].config["knobs"]["parallel"] is False


def test_dispatch_applies_the_best_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("matmul", (64, 64, 64))
    log = tmp_path / "log.jsonl"
    slower = dict(KNOBS, tile_x=[-1, 8])
    append_records(log, [_record(task, KNOBS, [1e-5]), _record(task, slower, [2e-5])])

    # Outside a context: the default schedule (fallback tile_x 32 -> a 4x32 local block).
    assert current_context() is None
    assert isinstance(config_for(task), FallbackConfig)
    s, tensors = instantiate("matmul", (64, 64, 64))
    assert "allocate(float32[128], 'local')" in str(ember.lower(s, tensors))

    with apply_history_best(log) as ctx:
        assert current_context() is ctx
        s, tensors = instantiate("matmul", (64, 64, 64))
        # The recorded 2x16 block: a 32-element accumulator, 16-lane vectors.
        text = str(ember.lower(s, tensors))
        assert "allocate(float32[32], 'local')" in text and "ramp(i.c*16, 1, 16)" in text
        s2, t2 = instantiate("matmul", (32, 32, 32))  # no record: default schedule
        f = ember.build(s, tensors, name="tuned_matmul")
    assert current_context() is None
    assert ctx.summary() == (
        "1 of 2 tunable kernels tuned; 1 untuned (default schedule): matmul(32, 32, 32)"
    )
    rng = np.random.default_rng()
    a, b = (rng.standard_normal((64, 64)).astype("float32") for _ in range(2))
    c = np.zeros((64, 64), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_dispatch_matches_target() -> None:
    task = create_task("matmul", (64, 64, 64))
    rec = _record(task, KNOBS, [1e-5])
    with apply_history_best([rec]) as ctx:
        assert not isinstance(config_for(task), FallbackConfig)
        other = create_task("matmul", (64, 64, 64), target="x86_64 -mcpu=skylake")
        assert isinstance(config_for(other), FallbackConfig)
    assert len(ctx.tuned) == 1 and len(ctx.untuned) == 1


def test_a_default_record_that_is_fastest_keeps_the_default_schedule() -> None:
    from ember.autotune import apply_history_best, create_task
    from ember.autotune.measure import MeasureResult
    from ember.dispatch.record import default_record, make_record
    from ember.dispatch.space import FallbackConfig

    task = create_task("matmul", (64, 64, 64), "host")
    searched = make_record(task, task.config_space.get(3), MeasureResult([2e-4]))
    default = default_record(task, MeasureResult([1e-4]))
    with apply_history_best([searched, default]) as ctx:
        assert isinstance(ctx.config_for(task), FallbackConfig)
    assert len(ctx.tuned) == 1 and not ctx.untuned  # measured, so it counts as tuned
    slower_default = default_record(task, MeasureResult([3e-4]))
    with apply_history_best([searched, slower_default]) as ctx:
        assert ctx.config_for(task).index == 3


def test_a_config_measured_several_times_counts_by_its_median() -> None:
    from ember.autotune import create_task
    from ember.autotune.measure import MeasureResult
    from ember.dispatch.record import make_record

    task = create_task("matmul", (64, 64, 64), "host")
    a, b = task.config_space.get(1), task.config_space.get(2)
    recs = [
        make_record(task, a, MeasureResult([1e-4])),  # a lucky first sample...
        make_record(task, a, MeasureResult([5e-4, 5e-4, 5e-4])),  # ...not confirmed
        make_record(task, b, MeasureResult([2e-4, 2e-4, 2e-4])),
    ]
    (best,) = best_per_workload(recs).values()
    assert best.config["index"] == 2
    recs.append(make_record(task, b, MeasureResult([9e-4, 9e-4, 9e-4, 9e-4])))
    (best,) = best_per_workload(recs).values()
    assert best.config["index"] == 1 and len(best.costs) == 4


def test_once_measured_configs_do_not_compete_with_re_measured_ones() -> None:
    from ember.dispatch.record import default_record

    task = create_task("matmul", (64, 64, 64))
    lucky, solid = task.config_space.get(1), task.config_space.get(2)
    recs = [
        default_record(task, MeasureResult([3e-4, 3e-4])),
        make_record(task, lucky, MeasureResult([1e-4, 1e-4])),  # measured once
        make_record(task, solid, MeasureResult([2e-4, 2e-4])),
    ]
    # A log without re-measurements (a tuner on its own): every config competes.
    (best,) = best_per_workload(recs).values()
    assert best.config["index"] == 1
    # The scheduler re-measured config 2: now only it and the default compete.
    again = make_record(task, solid, MeasureResult([2.5e-4, 2.5e-4]))
    again.config["repeat"] = True
    (best,) = best_per_workload([*recs, again]).values()
    assert best.config["index"] == 2 and best.costs == (2.5e-4, 2.5e-4)  # re-measured only
    # Re-measured slower than the default, it loses to the default.
    worse = make_record(task, solid, MeasureResult([9e-4] * 6))
    worse.config["repeat"] = True
    (best,) = best_per_workload([*recs, again, worse]).values()
    assert best.config.get("default")


def test_a_re_measured_config_counts_by_its_re_measurements_and_errors_disqualify() -> None:
    from ember.dispatch.record import default_record

    task = create_task("matmul", (64, 64, 64))
    a, b = task.config_space.get(1), task.config_space.get(2)

    def again(config, costs):  # type: ignore[no-untyped-def]
        r = make_record(task, config, MeasureResult(costs))
        r.config["repeat"] = True
        return r

    recs = [
        default_record(task, MeasureResult([3e-4, 3e-4])),
        make_record(task, a, MeasureResult([1e-4, 1e-4])),  # picked for this lucky cost
        again(a, [2.6e-4, 2.6e-4]),
        make_record(task, b, MeasureResult([1.5e-4, 1.5e-4])),
        again(b, [2.5e-4, 2.5e-4]),
    ]
    # Pooled with their first measurements a (1e-4, 2.6e-4) would tie b; by their
    # re-measurements alone b is faster, and its record carries those costs only.
    (best,) = best_per_workload(recs).values()
    assert best.config["index"] == 2 and best.costs == (2.5e-4, 2.5e-4)
    # A config that failed in one of its records is never picked.
    crash = make_record(task, b, MeasureResult.failed("timeout", "over 10 s"))
    crash.config["repeat"] = True
    (best,) = best_per_workload([*recs, crash]).values()
    assert best.config["index"] == 1
