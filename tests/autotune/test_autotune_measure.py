"""Measurement: broken candidates become errors of the right kind; real kernels get timed."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[2]

# A tuning script as a user writes it; {guard} calls main() at import, or under the guard.
TUNE_SCRIPT = """\
from ember import autotune
from ember.autotune.measure import LocalBuilder, build_config

class InProcessBuilder(LocalBuilder):  # builds here: only the measuring processes start
    def build(self, task, indices):
        return [build_config(task, i) for i in indices]

def main():
    task = autotune.create_task("matmul", (8, 8, 8), target="host")
    builder = {builder}
    with autotune.LocalMeasure(task, builder=builder) as measure:
        best = autotune.RandomTuner(task, seed=0).tune(n_trial=2, measure=measure, batch_size=2)
    print("tuned", best.gflops > 0)

{guard}
"""


def _run_tuning_script(tmp_path: Path, builder: str, guarded: bool) -> subprocess.CompletedProcess:
    guard = 'if __name__ == "__main__":\n    main()' if guarded else "main()"
    script = tmp_path / "tune_matmul.py"
    script.write_text(TUNE_SCRIPT.format(builder=builder, guard=guard))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("builder", "error", "workers", "method"),
    [
        ("LocalBuilder(2)", "BuildError", "the build worker processes", "spawn"),
        ("InProcessBuilder()", "EmberRuntimeError", "the measuring processes", "forkserver"),
    ],
)
def test_a_script_that_tunes_at_import_is_told_to_guard_it(
    tmp_path: Path, builder: str, error: str, workers: str, method: str
) -> None:
    # Workers start with the 'spawn' (builders) and 'forkserver' (runners) methods, which
    # import the main script again in each: unguarded, it starts tuning there too.
    proc = _run_tuning_script(tmp_path, builder, guarded=False)
    assert proc.returncode == 1, proc.stderr
    message = proc.stderr[proc.stderr.rindex(f"ember.errors.{error}") :]
    script = tmp_path / "tune_matmul.py"
    assert message.startswith(
        f"ember.errors.{error}: tuning matmul(8, 8, 8): {workers} died while starting: each "
        f"one runs the main script {script} again (Python's '{method}' start method imports "
        f"it in every worker), which starts tuning when it is imported"
    ), message
    assert 'hint: put the code that tunes under `if __name__ == "__main__":`' in message
    assert "the default schedule" not in message


def test_a_guarded_tuning_script_tunes(tmp_path: Path) -> None:
    proc = _run_tuning_script(tmp_path, "LocalBuilder(2)", guarded=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tuned True"


def test_a_script_that_fails_in_its_workers_gets_the_import_error(tmp_path: Path) -> None:
    # Not tuning but other top-level code that fails in a worker (as ``__mp_main__``).
    script = tmp_path / "fails_in_workers.py"
    script.write_text(
        textwrap.dedent(
            """\
            if __name__ != "__main__":
                raise SystemExit("no workers here")
            from ember.autotune.measure import main_reimport_error
            print(main_reimport_error("the workers"))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"the workers died while starting: each one runs the main script {script} again "
        "(Python's 'spawn' start method imports it in every worker), and importing it there "
        "failed: no workers here"
    )


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
