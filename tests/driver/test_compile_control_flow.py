"""Control flow compiled: ONNX If / Loop / Scan / sequences through ``ember.compile``.

Each model is compiled for the host, loaded, and run on fresh random inputs; the
artifact must match ember's reference executor and onnxruntime. Static control flow
is resolved or unrolled at import (no control flow left to compile); the rest runs
in the AOT executor as C control flow around the bodies' own kernels (see
``ember/driver/aot.py``). Loops run both ways: unrolled, and with the unroll budget
at 0 (``cf.loop``).
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import ember
from ember.frontend.onnx import from_onnx, ops_control, sequence_item_name
from ember.frontend.onnx.conformance import all_cases, run_case
from ember.graph import interpret
from ember.graph.passes.fuse_ops import kernels
from ember.ops.control_flow import CONTROL_FLOW_OPS
from tests.frontend.onnx_testlib import run_onnxruntime
from tests.frontend.test_onnx_control_flow import (
    I64,
    B,
    F,
    _if_model,
    _loop_model,
    _sequence_map_model,
    const_node,
    model_of,
    rand,
    scripted_loop_and_branch,
    vi,
)


def compile_and_check(model, feed_sets, rtol=1e-5, atol=1e-5):
    """Compile ``model`` once; for each feed dict the artifact must match the reference
    executor and onnxruntime. Returns the compiled model's metadata."""
    shapes = {n: np.shape(v) for n, v in feed_sets[0].items()}
    mod, params = from_onnx(model, shape=shapes)
    lib = ember.compile(mod, params, target="host")
    loaded = lib.load()
    for feeds in feed_sets:
        got = loaded.run(feeds)
        want = interpret(mod, params, feeds)
        theirs = run_onnxruntime(model, feeds)
        assert len(got) == len(want) == len(theirs)
        for g, w, t in zip(got, want, theirs):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol)
    return lib


def control_steps(lib) -> list[str]:
    return [s["kernel"] for s in lib.metadata["steps"] if s["kernel"] in CONTROL_FLOW_OPS]


@pytest.fixture
def rolled(monkeypatch):
    """Loops stay loops: the unroll budget is 0."""
    monkeypatch.setattr(ops_control, "MAX_UNROLLED_NODES", 0)


def test_if_with_a_static_condition():
    lib = compile_and_check(_if_model(cond_input=False), [{"x": rand(2, 3)}])
    assert control_steps(lib) == []


def test_if_with_a_run_time_condition():
    feeds = [{"x": rand(2, 3), "cond": np.array(c)} for c in (True, False, True)]
    lib = compile_and_check(_if_model(cond_input=True), feeds)
    assert control_steps(lib) == ["cf.if"]
    assert "if (*(const bool*)inputs[1])" in lib.sources["ember_aot"]


def test_loop_with_a_static_trip_count_unrolled():
    lib = compile_and_check(_loop_model(4, scan=True), [{"x": rand(2, 3), "acc0": rand(2, 3)}])
    assert control_steps(lib) == []


def test_loop_with_a_run_time_trip_count():
    feeds = [
        {"x": rand(2, 3), "acc0": rand(2, 3), "M": np.array(trip, np.int64)} for trip in (0, 3, 6)
    ]
    lib = compile_and_check(_loop_model(3, trip_input=True), feeds)
    assert control_steps(lib) == ["cf.loop"]


def test_a_while_loop():
    feeds = [
        {"x": np.abs(rand(2, 3)) + 0.1, "acc0": np.zeros((2, 3), np.float32)} for _ in range(2)
    ]
    lib = compile_and_check(_loop_model(50, stop_at=40.0), feeds)
    assert control_steps(lib) == ["cf.loop"]


def test_loop_with_scan_outputs_of_a_static_trip_count(rolled):
    lib = compile_and_check(_loop_model(6, scan=True), [{"x": rand(2, 3), "acc0": rand(2, 3)}])
    assert control_steps(lib) == ["cf.loop"]
    # each iteration's row (2x3 float32: 24 bytes) is written in place in the output
    assert re.search(r"\(char\*\)outputs\[1\] \+ i\d+ \* 24LL", lib.sources["ember_aot"])


@pytest.mark.parametrize("how", ["unrolled", "rolled"])
def test_scan(how, monkeypatch):
    if how == "rolled":
        monkeypatch.setattr(ops_control, "MAX_UNROLLED_NODES", 0)
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s", "xt"], ["s_out"]),
            helper.make_node("Tanh", ["s_out"], ["y"]),
        ],
        "body",
        [vi("s", F, [3]), vi("xt", F, [3])],
        [vi("s_out", F, [3]), vi("y", F, [3])],
    )
    node = helper.make_node(
        "Scan",
        ["s0", "x"],
        ["s_final", "ys"],
        body=body,
        num_scan_inputs=1,
        scan_input_directions=[1],
        scan_output_axes=[1],
        name="scan",
    )
    model = model_of(
        [node], [vi("s0", F, [3]), vi("x", F, [5, 3])], [vi("s_final", F, [3]), vi("ys", F, [3, 5])]
    )
    lib = compile_and_check(model, [{"s0": rand(3), "x": rand(5, 3)}])
    assert control_steps(lib) == (["cf.loop"] if how == "rolled" else [])


def test_a_sequence_model():
    # split x into rows, insert a computed row, concatenate back (all static lengths)
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["rows"], axis=0),
        helper.make_node("ReduceSum", ["x"], ["total"], axes=[0], keepdims=1),
        helper.make_node("SequenceInsert", ["rows", "total"], ["more"]),
        helper.make_node("SequenceLength", ["more"], ["n"]),
        helper.make_node("ConcatFromSequence", ["more"], ["y"], axis=0),
    ]
    model = model_of(nodes, [vi("x", F, [4, 3])], [vi("y", F, [5, 3]), vi("n", I64, [])], opset=12)
    compile_and_check(model, [{"x": rand(4, 3)}])


def test_nested_control_flow_and_a_conv_in_a_loop_body(rolled):
    # carried feature map h <- relu(conv(h, w) + b) if sum(h) > 0 else h * 0.5; runs M times
    w = (rand(16, 16, 3, 3) * 0.1).astype(np.float32)
    bias = rand(16)
    then_g = helper.make_graph(
        [
            helper.make_node("Conv", ["h", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["t"]),
        ],
        "then",
        [],
        [vi("t", F, [1, 16, 6, 6])],
    )
    else_g = helper.make_graph(
        [const_node("half", np.float32(0.5)), helper.make_node("Mul", ["h", "half"], ["e"])],
        "else",
        [],
        [vi("e", F, [1, 16, 6, 6])],
    )
    body = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["h"], ["s"], keepdims=0),
            const_node("zero", np.float32(0)),
            helper.make_node("Greater", ["s", "zero"], ["positive"]),
            helper.make_node("If", ["positive"], ["h_out"], then_branch=then_g, else_branch=else_g),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [vi("i", I64, []), vi("cond", B, []), vi("h", F, [1, 16, 6, 6])],
        [vi("cond_out", B, []), vi("h_out", F, [1, 16, 6, 6])],
    )
    node = helper.make_node("Loop", ["M", "", "h0"], ["h_final"], body=body, name="loop")
    model = model_of(
        [node],
        [vi("h0", F, [1, 16, 6, 6]), vi("M", I64, [])],
        [vi("h_final", F, [1, 16, 6, 6])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
    )
    feeds = [{"h0": rand(1, 16, 6, 6) * sign, "M": np.array(3, np.int64)} for sign in (1, -1)]
    lib = compile_and_check(model, feeds, rtol=1e-4, atol=1e-4)
    assert control_steps(lib) == ["cf.loop"]
    # the passes saw inside the bodies: the conv runs blocked, fused with its epilogue
    mod, params = from_onnx(model, shape={"h0": (1, 16, 6, 6), "M": ()})
    _, fused = ember.driver.compiler.kernel_graph(mod, params, ember.target.Target.parse("host"))
    names = [k.op.name for k in kernels(fused)]
    assert any("conv2d_nchwc" in n and "relu" in n for n in names), names


@pytest.mark.frameworks
def test_pytorch_scripted_loop_and_branch(tmp_path):
    torch = pytest.importorskip("torch")  # a real producer's Loop and If, compiled
    model, loop_and_branch = scripted_loop_and_branch(tmp_path / "cf.onnx", rows=4)
    feeds = [
        {"x": np.abs(rand(4, 3)) * sign, "n": np.array(n, np.int64)}
        for n in (0, 1, 5)
        for sign in (1.0, -1.0)
    ]
    lib = compile_and_check(model, feeds, rtol=1e-4, atol=1e-5)
    assert sorted(control_steps(lib)) == ["cf.if", "cf.loop"]
    for feed in feeds:  # and the source framework
        want = loop_and_branch(torch.from_numpy(feed["x"]), int(feed["n"])).numpy()
        np.testing.assert_allclose(lib.load().run(feed)[0], want, rtol=1e-4, atol=1e-5)


def test_a_model_with_a_sequence_input():
    # the sequence's length is given at import; its elements are the artifact's inputs
    model = _sequence_map_model()
    seq = [rand(r, 3) for r in (1, 3, 2)]
    w, t = rand(3), rand(2, 3)
    mod, params = from_onnx(model, shape={"seq": [s.shape for s in seq], "t": t.shape})
    feeds = {**{sequence_item_name("seq", i): s for i, s in enumerate(seq)}, "w": w, "t": t}
    got = ember.compile(mod, params, target="host").load().run(feeds)
    want = interpret(mod, params, feeds)
    theirs = run_onnxruntime(model, {"seq": seq, "w": w, "t": t})
    for g, r, o in zip(got, want, theirs):
        np.testing.assert_allclose(g, r, rtol=1e-6)
        np.testing.assert_allclose(g, o, rtol=1e-6)


# ONNX node test cases of control flow, sequences, optionals and function-defined ops,
# compiled: the artifact must give the case's expected outputs (and ember's reference)
COMPILED_CASES = [
    "test_if",
    "test_if_seq",
    "test_if_opt",
    "test_loop11",
    "test_loop13_seq",
    "test_loop16_seq_none",
    "test_scan_sum",
    "test_scan9_sum",
    "test_sequence_map_identity_2_sequences",
    "test_sequence_map_add_1_sequence_1_tensor_expanded",
    "test_split_to_sequence_1",
    "test_optional_get_element_optional_sequence",
    "test_sce_mean_weight_ii_3d",
    "test_affine_grid_2d",
    "test_dynamicquantizelinear",
]


def _case_data(value):
    if isinstance(value, list):
        return [_case_data(v) for v in value]
    return (
        value
        if value is None
        else np.asarray(
            numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value
        )
    )


@pytest.mark.parametrize("name", COMPILED_CASES)
def test_onnx_node_case_compiled(name):
    case = all_cases()[name]
    result = run_case(case)  # the reference run: passes, and says which inputs it froze
    assert result.status == "passed", result.reason
    ((inputs, expected),) = case.data_sets
    values = dict(zip([vi.name for vi in case.model.graph.input], map(_case_data, inputs)))
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    for frozen in result.frozen:
        model.graph.initializer.append(numpy_helper.from_array(values.pop(frozen), frozen))
    shapes = {
        n: None if v is None else [x.shape for x in v] if isinstance(v, list) else v.shape
        for n, v in values.items()
    }
    feeds = {}
    for n, v in values.items():
        if isinstance(v, list):
            feeds.update({sequence_item_name(n, i): x for i, x in enumerate(v)})
        elif v is not None:
            feeds[n] = v
    mod, params = from_onnx(model, shape=shapes)
    lib = ember.compile(mod, params, target="host")
    got = lib.load().run(feeds)
    want = [x for e in map(_case_data, expected) for x in (e if isinstance(e, list) else [e])]
    ref = interpret(mod, params, feeds)
    assert len(got) == len(want) == len(ref)
    for g, w, r in zip(got, want, ref):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    # a sequence output is one output per element, named like a sequence input's elements
    if name == "test_sequence_map_identity_2_sequences":
        assert [o["name"] for o in lib.metadata["outputs"]][:2] == ["y0[0]", "y0[1]"]
