"""Measurement: broken candidates become errors of the right kind; real kernels get timed."""

from __future__ import annotations

import math

import broken_templates  # noqa: F401  (registers test_broken_matmul)
import pytest

from ember.autotune import (
    GridTuner,
    LocalBuilder,
    LocalMeasure,
    LocalRunner,
    MeasureInput,
    RandomTuner,
    create_task,
    load_records,
)
from ember.autotune.measure import ERROR_KINDS, BuildResult
from ember.errors import BuildError

EXPECTED = {
    "ok": None,
    "schedule_error": "instantiate_error",
    "compile_error": "compile_error",
    "crash": "runtime_crash",
    "timeout": "run_timeout",
    "wrong": "wrong_answer",
}


def _config(task, mode: str, tile: int = 2):  # type: ignore[no-untyped-def]
    return task.config_space.get(task.config_space.index_of({"mode": mode, "tile": [-1, tile]}))


def test_broken_candidates_are_errors_never_fast(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("test_broken_matmul", (16,))
    with LocalMeasure(task, builder=LocalBuilder(2), runner=LocalRunner(timeout=3.0)) as measure:
        inputs = [MeasureInput(task, _config(task, mode)) for mode in EXPECTED]
        results = measure(inputs)
    for mode, result in zip(EXPECTED, results):
        kind = EXPECTED[mode]
        if kind is None:
            assert result.error is None, result.error
            assert len(result.costs) == 3 and 0 < result.cost < 1
        else:
            assert result.error is not None and result.error["kind"] == kind, (mode, result)
            assert result.cost == math.inf and kind in ERROR_KINDS
    assert "too many arguments" in results[2].error["message"]
    assert "SIGSEGV" in results[3].error["message"] or "SIGBUS" in results[3].error["message"]
    assert "differs from the default schedule" in results[5].error["message"]


def test_tuning_log_records_errors_with_their_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("test_broken_matmul", (8,))
    log = tmp_path / "broken.jsonl"
    with LocalMeasure(task, builder=LocalBuilder(2), runner=LocalRunner(timeout=2.0)) as measure:
        tuner = GridTuner(task)
        # Grid order: the mode knob varies fastest, so the first six configs are the modes.
        result = tuner.tune(len(EXPECTED), measure, batch_size=6, log=log)
    records = list(load_records(log))
    kinds = {r.config["knobs"]["mode"]: (r.error or {}).get("kind") for r in records}
    assert kinds == EXPECTED
    assert result.config is not None and result.config["mode"].val == "ok"
    for r in records:
        assert r.version == 1 and r.timestamp > 0 and r.target == "host"
        assert r.workload["template"] == "test_broken_matmul" and r.workload["args"] == [8]
        assert (r.costs == ()) == (r.error is not None)


def test_real_matmul_tuning_is_correct_and_logged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    task = create_task("matmul", (32, 32, 32))
    log = tmp_path / "mm.jsonl"
    with LocalMeasure(task, builder=LocalBuilder(2)) as measure:
        result = RandomTuner(task, seed=0).tune(6, measure, batch_size=6, log=log)
    records = list(load_records(log))
    assert len(records) == 6
    assert all(r.error is None and len(r.costs) == 3 for r in records), records
    assert result.cost == min(r.cost for r in records)
    assert result.gflops > 0


@pytest.mark.parametrize("interleave", [True, False])
def test_timing_tells_a_slow_config_from_a_fast_one(interleave: bool) -> None:
    task = create_task("test_broken_matmul", (32,))
    runner = LocalRunner(repeat=5, interleave=interleave)
    with LocalMeasure(task, builder=LocalBuilder(1), runner=runner) as measure:
        assert (runner.reference is not None) and runner.reference["seconds"] > 0
        ok, slow = measure([MeasureInput(task, _config(task, m)) for m in ("ok", "slow")])
        default = runner.run(measure.builder.build(task, [-1]))[0]
    assert ok.error is None and slow.error is None and default.error is None
    assert len(ok.costs) == len(slow.costs) == 5
    # 16x the multiply-adds: several times slower, whatever the machine is doing.
    assert slow.cost > 4 * ok.cost
    if interleave:
        # Costs are ratios to the default schedule timed beside them, scaled by its
        # seconds: the default against itself comes out at about those seconds.
        assert 0.5 < default.cost / runner.reference["seconds"] < 2.0


def test_default_schedule_must_work() -> None:
    runner = LocalRunner()
    task = create_task("matmul", (8, 8, 8))
    with pytest.raises(BuildError, match="the default schedule does not build"):
        runner.prepare(task, BuildResult(None, error=("compile_error", "boom")))
    runner.close()


@pytest.mark.parametrize("shape", [(), (0,), (3,), (7, 5), (1, 4, 9, 9, 16)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "bool"])
def test_measurement_buffers_are_aligned_like_the_runtimes(shape, dtype) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from ember.autotune._child import ALIGNMENT, aligned
    from ember.runtime.artifact import PARAM_ALIGNMENT

    assert ALIGNMENT == PARAM_ALIGNMENT
    for _ in range(4):  # numpy's own allocations are often only 16-byte aligned
        a = aligned(shape, dtype)
        assert a.shape == shape and a.dtype == np.dtype(dtype)
        assert a.ctypes.data % ALIGNMENT == 0 or a.size == 0
        a[...] = 1
        assert a.size == 0 or bool(np.all(a == 1))
