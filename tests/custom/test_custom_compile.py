"""Models with custom ops compile, tune and ship: the kernels of the user's TE computes (and
schedules) go into the artifact, which runs in a process that cannot import the user's
module; a custom epilogue is tuned with its conv, a tunable custom anchor by itself."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import custom_models
import example_ops
import numpy as np
import pytest

import ember
from ember import autotune, custom, te
from ember.autotune.extract import extract_tasks
from ember.dispatch.record import make_record
from ember.errors import CustomOpError
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var
from ember.ops import call

ROOT = Path(__file__).resolve().parents[2]
_fresh = itertools.count()


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng().standard_normal(shape).astype(np.float32)


def check_outputs(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_compiled_custom_ops_match_reference_and_onnxruntime_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    mod, params = ember.frontend.from_onnx(custom_models.onnx_model(custom=True))
    example_ops.SCHEDULED.clear()
    lib = ember.compile(mod, params)
    assert example_ops.SCHEDULED == [(1, 8, 8, 8)]  # rms_norm's own schedule was used
    kernels = " ".join(step["kernel"] for step in lib.metadata["steps"])
    assert "nn_conv2d_nchwc_example_fancy_gelu" in kernels  # fused into the conv's epilogue
    assert "example_scaled_dense_example_fancy_gelu" in kernels  # ... and the anchor's
    x = rand(1, 4, 8, 8)
    want = custom_models.run_onnxruntime(custom_models.onnx_model(custom=False), {"x": x})
    check_outputs(interpret(mod, params, {"x": x}), want)
    check_outputs(lib.load().run({"x": x}), want)

    # The artifact runs where the user's module cannot be imported, with the runtime only.
    artifact = lib.export(tmp_path / "custom.ember")
    np.save(tmp_path / "x.npy", x)
    script = (
        "import importlib.util, sys\n"
        "import numpy as np\n"
        "import ember\n"
        "assert importlib.util.find_spec('example_ops') is None, 'the user module is visible'\n"
        "outs = ember.load(sys.argv[1]).run({'x': np.load(sys.argv[2])})\n"
        "np.savez(sys.argv[3], *outs)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ember.'))\n"
        "runtime = ('ember.runtime', 'ember.errors', 'ember.version')\n"
        "assert all(m.startswith(runtime) for m in loaded), loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(artifact), "x.npy", "outs.npz"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with np.load(tmp_path / "outs.npz") as outs:
        check_outputs([outs[f"arr_{k}"] for k in range(len(outs.files))], want)


def test_a_schedule_rule_that_declines_leaves_the_default_schedule() -> None:
    # Rows of 6 floats are not a multiple of the vector width: rms_norm's rule declines.
    mod, params = ember.frontend.from_onnx(custom_models.onnx_model(custom=True, width=6))
    example_ops.SCHEDULED.clear()
    lib = ember.compile(mod, params)
    assert example_ops.SCHEDULED == []
    x = rand(1, 4, 6, 6)
    want = custom_models.run_onnxruntime(custom_models.onnx_model(custom=False, width=6), {"x": x})
    check_outputs(lib.load().run({"x": x}), want)


def _single_op_model(op: Any, shape: tuple[int, ...] = (4, 8)) -> Module:
    x = Var("x", TensorType(shape, "float32"))
    return Module.from_function(Function((x,), call(op, x, name="probe")))


def _identity_op(stem: str, pattern: str = "elemwise") -> Any:
    op = custom.register_op(f"test_compile.{stem}{next(_fresh)}", pattern=pattern)
    op.type_rule(lambda types, attrs: types[0])
    op.reference(lambda inputs, attrs: inputs[0])
    return op


def test_a_compute_whose_shape_disagrees_with_the_type_rule_names_the_op() -> None:
    op = _identity_op("transposed")

    @custom.register_compute(op)
    def _(inputs: list[Any], attrs: Any, out_type: Any) -> Any:
        (x,) = inputs
        return te.compute((8, 4), lambda i, j: x[j, i], name="transposed")

    with pytest.raises(
        CustomOpError,
        match=rf"TE compute of op {op.name} \(node 'probe'\) returned float32\[8, 4\], but "
        r"its type rule says Tensor\[\(4, 8\), float32\] \(custom op of library "
        r"'test_custom_compile'\)\n  hint: build the compute's output from out_type",
    ):
        ember.compile(_single_op_model(op))


def test_a_failing_compute_or_schedule_rule_names_the_op() -> None:
    failing = _identity_op("failing")
    custom.register_compute(failing)(lambda inputs, attrs, out_type: inputs[3])
    with pytest.raises(CustomOpError, match=rf"TE compute of custom op {failing.name} .*Index"):
        ember.compile(_single_op_model(failing))

    odd = _identity_op("odd_schedule", pattern="opaque")
    custom.register_compute(odd)(
        lambda inputs, attrs, out_type: te.compute(out_type.shape, lambda *i: inputs[0][i] + 1.0)
    )
    custom.register_schedule(odd)(lambda outputs, target: "parallel please")
    with pytest.raises(CustomOpError, match=rf"schedule rule of op {odd.name} returned str"):
        ember.compile(_single_op_model(odd))


def test_a_tunable_compute_must_be_a_reduction() -> None:
    op = _identity_op("not_a_reduction", pattern="anchor")
    custom.register_compute(op, tunable=True)(
        lambda inputs, attrs, out_type: te.compute(out_type.shape, lambda *i: inputs[0][i])
    )
    with pytest.raises(CustomOpError, match=r"registered tunable, but its compute returned a"):
        ember.compile(_single_op_model(op))


def test_a_custom_epilogue_is_tuned_with_its_conv_and_a_custom_anchor_alone(
    tmp_path: Path,
) -> None:
    mod, params = ember.frontend.from_onnx(custom_models.onnx_model(custom=True))
    tasks = {task.describe[0]: task for task, _ in extract_tasks(mod, params)}
    assert set(tasks) == {
        "fused_nn_conv2d_nchwc_example_fancy_gelu",
        "fused_example_scaled_dense_example_fancy_gelu",
    }
    log = tmp_path / "tune.jsonl"
    # Measure two configs of the conv with its custom epilogue for real: the builder
    # processes unpickle the kernel and import example_ops to find its ops.
    conv = tasks["fused_nn_conv2d_nchwc_example_fancy_gelu"]
    with autotune.LocalMeasure(conv, builder=autotune.LocalBuilder(1)) as measure:
        autotune.RandomTuner(conv, seed=0).tune(n_trial=2, measure=measure, log=log)
    records = list(autotune.load_records(log))
    assert len(records) == 2 and all(r.error is None for r in records), records
    # The anchor's record names its last config (the compiler only reads records).
    dense = tasks["fused_example_scaled_dense_example_fancy_gelu"]
    config = dense.config_space.get(len(dense.config_space) - 1)
    autotune.append_records(log, [make_record(dense, config, autotune.MeasureResult([1e-6]))])
    with autotune.apply_history_best(log) as ctx:
        lib = ember.compile(mod, params)
    assert len(ctx.tuned) == 2 and not ctx.untuned, ctx.summary()
    x = rand(1, 4, 8, 8)
    want = custom_models.run_onnxruntime(custom_models.onnx_model(custom=False), {"x": x})
    check_outputs(lib.load().run({"x": x}), want)


@pytest.mark.slow
def test_a_tunable_custom_anchor_is_measured_in_the_tuners_workers(tmp_path: Path) -> None:
    """The builder processes rebuild the custom anchor's kernel (they import example_ops to
    find its ops), and the best measured config compiles to the same numbers."""
    mod, params = ember.frontend.from_onnx(custom_models.onnx_model(custom=True))
    tasks = {task.describe[0]: task for task, _ in extract_tasks(mod, params)}
    dense = tasks["fused_example_scaled_dense_example_fancy_gelu"]
    assert len(dense.config_space) > 1  # the fused template's space, not a fixed schedule
    log = tmp_path / "dense.jsonl"
    with autotune.LocalMeasure(dense, builder=autotune.LocalBuilder(1)) as measure:
        autotune.RandomTuner(dense, seed=1).tune(n_trial=3, measure=measure, log=log)
    records = list(autotune.load_records(log))
    assert len(records) == 3 and all(r.error is None for r in records), records
    with autotune.apply_history_best(log) as ctx:
        lib = ember.compile(mod, params)
    assert [name for name in ctx.tuned if "scaled_dense" in name], ctx.summary()
    x = rand(1, 4, 8, 8)
    want = custom_models.run_onnxruntime(custom_models.onnx_model(custom=False), {"x": x})
    check_outputs(lib.load().run({"x": x}), want)
