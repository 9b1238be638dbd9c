"""ONNX If / Loop / Scan and sequence ops: resolved or unrolled at import, else cf.if / cf.loop.

Every model runs in ember's reference executor on fresh random inputs and must match
onnxruntime. Loops and scans are checked both unrolled and as ``cf.loop`` (the unroll
budget set to 0), so the two paths agree; what cannot be static is a clear error that
names the node and the value.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ember.errors import FrontendError
from ember.frontend.onnx import (
    NotStaticError,
    UnsupportedFeatureError,
    from_onnx,
    ops_control,
    sequence_item_name,
)
from ember.graph import interpret, post_order
from ember.graph.ir import Call
from tests.frontend.onnx_testlib import run_onnxruntime

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def const_node(name, value):
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value))
    )


def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ops_in(mod):
    return [n.op.name for n in post_order(mod.main) if isinstance(n, Call)]


def check(model, feeds, rtol=1e-5, atol=1e-5):
    """ember's reference executor against onnxruntime; returns the module."""
    mod, params = from_onnx(model, shape={n: np.shape(v) for n, v in feeds.items()})
    ours = interpret(mod, params, feeds)
    theirs = run_onnxruntime(model, feeds)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return mod


@pytest.fixture(params=["unrolled", "rolled"])
def unroll(request, monkeypatch):
    """Run a test with loops unrolled at import, and again with the budget at 0 (cf.loop)."""
    if request.param == "rolled":
        monkeypatch.setattr(ops_control, "MAX_UNROLLED_NODES", 0)
    return request.param


rng = np.random.default_rng()


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- If


def _if_model(cond_input: bool):
    """y = If(cond) then reshape(x * w, (6,)) + 1 else reshape(x - w, (6,)) (w outer)."""
    then_g = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "w"], ["t0"]),
            helper.make_node("Reshape", ["t0", "shape6"], ["t1"]),
            const_node("one", np.float32(1)),
            helper.make_node("Add", ["t1", "one"], ["then_out"]),
        ],
        "then",
        [],
        [vi("then_out", F, [6])],
    )
    else_g = helper.make_graph(
        [
            helper.make_node("Sub", ["x", "w"], ["e0"]),
            helper.make_node("Reshape", ["e0", "shape6"], ["else_out"]),
        ],
        "else",
        [],
        [vi("else_out", F, [6])],
    )
    nodes = [
        const_node("shape6", np.array([6], np.int64)),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="if"),
    ]
    inputs = [vi("x", F, [2, 3])]
    inits = [numpy_helper.from_array(rand(2, 3), "w")]
    if cond_input:
        inputs.append(vi("cond", B, []))
    else:
        inits.append(numpy_helper.from_array(np.array(False), "cond"))
    return model_of(nodes, inputs, [vi("y", F, [6])], inits)


def test_if_with_a_static_condition_converts_the_branch_it_takes():
    mod = check(_if_model(cond_input=False), {"x": rand(2, 3)})
    assert "cf.if" not in ops_in(mod)
    names = [n.name for n in post_order(mod.main) if isinstance(n, Call)]
    assert any(name.startswith("if/else_branch/") for name in names)


@pytest.mark.parametrize("cond", [True, False])
def test_if_with_a_run_time_condition_is_a_cf_if(cond):
    mod = check(_if_model(cond_input=True), {"x": rand(2, 3), "cond": np.array(cond)})
    assert ops_in(mod).count("cf.if") == 1
    (call,) = [n for n in post_order(mod.main) if isinstance(n, Call)]
    # captured: x and the weight w; the shape constant is copied into both branches
    assert [a.name for a in call.args[1:]] == ["x", "w"]
    assert call.attrs.then_branch.name == "if/then_branch"


def test_if_branches_of_different_shapes_need_a_static_condition():
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"])], "t", [], [vi("a", F, [2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["b"], axis=0)], "e", [], [vi("b", F, [4])]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="if")
    model = model_of([node], [vi("x", F, [2]), vi("c", B, [])], [vi("y", F, ["n"])])
    with pytest.raises(
        UnsupportedFeatureError, match=r"If node 'if'.*output 0 \('y'\).*then_branch"
    ):
        from_onnx(model)


@pytest.mark.parametrize("cond", [True, False])
def test_if_with_sequence_outputs_passes_their_tensors(cond):
    def branch(name, op):
        return helper.make_graph(
            [
                helper.make_node(op, ["x"], [f"{name}_t"]),
                helper.make_node("SequenceConstruct", ["x", f"{name}_t"], [f"{name}_s"]),
            ],
            name,
            [],
            [helper.make_tensor_sequence_value_info(f"{name}_s", F, [3])],
        )

    nodes = [
        helper.make_node(
            "If", ["c"], ["s"], then_branch=branch("then", "Neg"), else_branch=branch("else", "Abs")
        ),
        helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=0, new_axis=1),
    ]
    model = model_of(nodes, [vi("x", F, [3]), vi("c", B, [])], [vi("y", F, [2, 3])])
    mod = check(model, {"x": rand(3), "c": np.array(cond)})
    assert "cf.if" in ops_in(mod)


# ----------------------------------------------------------------------------- Loop


def _loop_body(scan: bool, stop_at: float | None = None):
    """acc <- acc * 0.5 + x * i (x outer); scan row: acc; cond: sum(acc) < stop_at."""
    nodes = [
        helper.make_node("Cast", ["i"], ["fi"], to=F),
        helper.make_node("Mul", ["x", "fi"], ["xi"]),
        const_node("half", np.float32(0.5)),
        helper.make_node("Mul", ["acc", "half"], ["a0"]),
        helper.make_node("Add", ["a0", "xi"], ["acc_out"]),
    ]
    if stop_at is None:
        nodes.append(helper.make_node("Identity", ["cond"], ["cond_out"]))
    else:
        nodes += [
            helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
            const_node("limit", np.float32(stop_at)),
            helper.make_node("Less", ["total", "limit"], ["cond_out"]),
        ]
    outputs = [vi("cond_out", B, []), vi("acc_out", F, [2, 3])]
    if scan:
        nodes.append(helper.make_node("Identity", ["acc_out"], ["row"]))
        outputs.append(vi("row", F, [2, 3]))
    inputs = [vi("i", I64, []), vi("cond", B, []), vi("acc", F, [2, 3])]
    return helper.make_graph(nodes, "body", inputs, outputs)


def _loop_model(trip, scan=False, stop_at=None, trip_input=False):
    outs = ["acc_final", "rows"] if scan else ["acc_final"]
    nodes = [
        helper.make_node(
            "Loop", ["M", "c0", "acc0"], outs, body=_loop_body(scan, stop_at), name="loop"
        )
    ]
    inputs = [vi("x", F, [2, 3]), vi("acc0", F, [2, 3])]
    inits = [numpy_helper.from_array(np.array(True), "c0")]
    if trip_input:
        inputs.append(vi("M", I64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(trip, np.int64), "M"))
    outputs = [vi("acc_final", F, [2, 3])] + ([vi("rows", F, [trip, 2, 3])] if scan else [])
    return model_of(nodes, inputs, outputs, inits)


def test_loop_with_a_static_trip_count_and_scan_outputs(unroll):
    mod = check(_loop_model(5, scan=True), {"x": rand(2, 3), "acc0": rand(2, 3)})
    ops = ops_in(mod)
    if unroll == "unrolled":
        assert "cf.loop" not in ops
        assert any(n.name.startswith("loop/iter4/") for n in post_order(mod.main))
    else:
        (call,) = [
            n for n in post_order(mod.main) if isinstance(n, Call) and n.op.name == "cf.loop"
        ]
        assert call.attrs.scan_length == 5 and call.type.fields[1].shape == (5, 2, 3)


@pytest.mark.parametrize("trip", [0, 1, 7])
def test_loop_with_a_run_time_trip_count_is_a_cf_loop(trip):
    feeds = {"x": rand(2, 3), "acc0": rand(2, 3), "M": np.array(trip, np.int64)}
    mod = check(_loop_model(3, trip_input=True), feeds)
    assert ops_in(mod).count("cf.loop") == 1


def test_a_while_loop_runs_until_its_condition_fails():
    # the condition is computed from the carried value: unrolling stops, a cf.loop runs it
    x = np.abs(rand(2, 3)) + 0.1
    mod = check(_loop_model(50, stop_at=40.0), {"x": x, "acc0": np.zeros((2, 3), np.float32)})
    assert ops_in(mod).count("cf.loop") == 1


def test_scan_outputs_need_a_static_trip_count():
    model = _loop_model(3, scan=True, trip_input=True)
    with pytest.raises(NotStaticError, match=r"Loop node 'loop'.*trip count.*'M'") as err:
        from_onnx(model)
    assert err.value.input_names == ("M",)


def test_scan_outputs_of_a_loop_that_may_stop_early_are_an_error():
    body = _loop_body(scan=True, stop_at=10.0)
    node = helper.make_node("Loop", ["M", "c0", "acc0"], ["a", "r"], body=body, name="loop")
    inits = [
        numpy_helper.from_array(np.array(4, np.int64), "M"),
        numpy_helper.from_array(np.array(True), "c0"),
    ]
    outputs = [vi("a", F, [2, 3]), vi("r", F, ["n", 2, 3])]
    model = model_of([node], [vi("x", F, [2, 3]), vi("acc0", F, [2, 3])], outputs, inits)
    with pytest.raises(
        UnsupportedFeatureError, match="condition may stop it before its trip count"
    ):
        from_onnx(model)


def test_a_loop_whose_carried_shape_grows_unrolls_or_says_why():
    # acc <- concat(acc, x): static trip count -> unrolled; run-time trip count -> error
    body = helper.make_graph(
        [
            helper.make_node("Concat", ["acc", "x"], ["acc_out"], axis=0),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [vi("i", I64, []), vi("cond", B, []), vi("acc", F, ["n", 3])],
        [vi("cond_out", B, []), vi("acc_out", F, ["m", 3])],
    )
    node = helper.make_node("Loop", ["M", "", "acc0"], ["y"], body=body, name="grow")
    static = model_of(
        [node],
        [vi("x", F, [1, 3]), vi("acc0", F, [1, 3])],
        [vi("y", F, ["n", 3])],
        [numpy_helper.from_array(np.array(3, np.int64), "M")],
    )
    mod, params = from_onnx(static)
    x, acc0 = rand(1, 3), rand(1, 3)
    np.testing.assert_array_equal(
        interpret(mod, params, {"x": x, "acc0": acc0})[0], np.concatenate([acc0, x, x, x])
    )
    dynamic = model_of(
        [node],
        [vi("x", F, [1, 3]), vi("acc0", F, [1, 3]), vi("M", I64, [])],
        [vi("y", F, ["n", 3])],
    )
    with pytest.raises(
        UnsupportedFeatureError, match=r"Loop node 'grow'.*'acc'.*\(1, 3\).*\(2, 3\)"
    ):
        from_onnx(dynamic)


def test_an_if_inside_a_loop_body_runs_per_iteration(unroll):
    # acc <- acc + (i even ? x : -x): the condition depends on the iteration number
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"])], "t", [], [vi("t", F, [3])]
    )
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "e", [], [vi("e", F, [3])])
    body = helper.make_graph(
        [
            const_node("two", np.int64(2)),
            helper.make_node("Mod", ["i", "two"], ["r"]),
            const_node("zero", np.int64(0)),
            helper.make_node("Equal", ["r", "zero"], ["even"]),
            helper.make_node("If", ["even"], ["step"], then_branch=then_g, else_branch=else_g),
            helper.make_node("Add", ["acc", "step"], ["acc_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [vi("i", I64, []), vi("cond", B, []), vi("acc", F, [3])],
        [vi("cond_out", B, []), vi("acc_out", F, [3])],
    )
    node = helper.make_node("Loop", ["M", "", "acc0"], ["y"], body=body, name="loop")
    model = model_of(
        [node],
        [vi("x", F, [3]), vi("acc0", F, [3])],
        [vi("y", F, [3])],
        [numpy_helper.from_array(np.array(5, np.int64), "M")],
    )
    mod = check(model, {"x": rand(3), "acc0": rand(3)})
    assert ("cf.loop" in ops_in(mod)) == (unroll == "rolled")


# ----------------------------------------------------------------------------- Scan


@pytest.mark.parametrize("directions", [(0, 0), (1, 0), (0, 1)])
def test_scan_with_axes_and_directions(unroll, directions):
    # state s <- s + x_t; outputs: s per step along axis 1, and x_t * 2 reversed if asked
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s", "xt"], ["s_out"]),
            const_node("two", np.float32(2)),
            helper.make_node("Mul", ["xt", "two"], ["y2"]),
            helper.make_node("Identity", ["s_out"], ["y1"]),
        ],
        "body",
        [vi("s", F, [2]), vi("xt", F, [2])],
        [vi("s_out", F, [2]), vi("y1", F, [2]), vi("y2", F, [2])],
    )
    node = helper.make_node(
        "Scan",
        ["s0", "x"],
        ["s_final", "ys", "y2s"],
        body=body,
        num_scan_inputs=1,
        scan_input_axes=[1],
        scan_input_directions=[directions[0]],
        scan_output_axes=[1, 0],
        scan_output_directions=[0, directions[1]],
        name="scan",
    )
    model = model_of(
        [node],
        [vi("s0", F, [2]), vi("x", F, [2, 4])],
        [vi("s_final", F, [2]), vi("ys", F, [2, 4]), vi("y2s", F, [4, 2])],
    )
    mod = check(model, {"s0": rand(2), "x": rand(2, 4)})
    assert ("cf.loop" in ops_in(mod)) == (unroll == "rolled")


# ----------------------------------------------------------------------------- sequences


def test_sequence_ops_of_static_length():
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["parts"], axis=1, keepdims=0),
        helper.make_node("SequenceConstruct", ["a", "b"], ["ab"]),
        const_node("front", np.int64(0)),
        helper.make_node("SequenceInsert", ["ab", "a", "front"], ["aab"]),
        const_node("minus1", np.int64(-1)),
        helper.make_node("SequenceErase", ["aab", "minus1"], ["aa"]),
        helper.make_node("SequenceLength", ["parts"], ["n"]),
        helper.make_node("SequenceAt", ["parts", "minus1"], ["last"]),
        helper.make_node("ConcatFromSequence", ["aa"], ["stacked"], axis=0, new_axis=1),
        helper.make_node("ConcatFromSequence", ["parts"], ["joined"], axis=0),
    ]
    model = model_of(
        nodes,
        [vi("x", F, [2, 3]), vi("a", F, [2]), vi("b", F, [2])],
        [vi("n", I64, []), vi("last", F, [2]), vi("stacked", F, [2, 2]), vi("joined", F, [6])],
        opset=18,
    )
    check(model, {"x": rand(2, 3), "a": rand(2), "b": rand(2)})


def test_a_loop_that_builds_a_sequence_unrolls_into_a_tuple():
    # the sequence carried through the loop grows by one tensor per iteration
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["fi"], to=F),
            helper.make_node("Mul", ["x", "fi"], ["row"]),
            helper.make_node("SequenceInsert", ["seq", "row"], ["seq_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            vi("i", I64, []),
            vi("cond", B, []),
            helper.make_tensor_sequence_value_info("seq", F, None),
        ],
        [vi("cond_out", B, []), helper.make_tensor_sequence_value_info("seq_out", F, None)],
    )
    nodes = [
        helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
        helper.make_node("Loop", ["M", "", "empty"], ["seq"], body=body, name="loop"),
        helper.make_node("ConcatFromSequence", ["seq"], ["y"], axis=0, new_axis=1),
    ]
    model = model_of(
        nodes,
        [vi("x", F, [3])],
        [vi("y", F, [4, 3])],
        [numpy_helper.from_array(np.array(4, np.int64), "M")],
    )
    check(model, {"x": rand(3)})


def test_a_sequence_position_must_be_static():
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "a"], ["s"]),
        helper.make_node("SequenceAt", ["s", "pos"], ["y"], name="at"),
    ]
    model = model_of(nodes, [vi("a", F, [2]), vi("pos", I64, [])], [vi("y", F, [2])])
    with pytest.raises(NotStaticError, match=r"SequenceAt node 'at'.*position.*'pos'"):
        from_onnx(model)


# ----------------------------------------------------------------------------- PyTorch exporter


def scripted_loop_and_branch(path, rows):
    """A real producer's control flow: torch.jit.script + torch.onnx.export(dynamo=False)
    writes a Loop whose trip count is the model input ``n`` and an If on a computed
    condition. Returns the ONNX model and the scripted function (torch's answer)."""
    torch = pytest.importorskip("torch")

    @torch.jit.script
    def loop_and_branch(x: torch.Tensor, n: int) -> torch.Tensor:
        for i in range(n):
            x = torch.tanh(x @ x.t() @ x * 0.5 + i)
        if bool(x.sum() > 0):
            x = torch.relu(x) * 2
        else:
            x = x - 1
        return x

    class Net(torch.nn.Module):
        def forward(self, x, n):
            return loop_and_branch(x, n)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            torch.jit.script(Net()),
            (torch.randn(rows, 3), torch.tensor(3)),
            str(path),
            input_names=["x", "n"],
            dynamo=False,
            opset_version=17,
        )
    return onnx.load(str(path)), loop_and_branch


@pytest.mark.frameworks
def test_pytorch_scripted_control_flow(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "cf.onnx"
    model, loop_and_branch = scripted_loop_and_branch(path, rows=2)
    assert {"Loop", "If"} <= {n.op_type for n in model.graph.node}
    mod, params = from_onnx(str(path))
    assert {"cf.loop", "cf.if"} <= set(ops_in(mod))
    for n in (0, 1, 4):
        for sign in (1.0, -1.0):
            x = np.abs(rand(2, 3)) * sign
            feeds = {"x": x, "n": np.array(n, np.int64)}
            ours = interpret(mod, params, feeds)[0]
            want = loop_and_branch(torch.from_numpy(x), n).numpy()
            np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(ours, run_onnxruntime(model, feeds)[0], rtol=1e-5, atol=1e-6)


def _sequence_map_model():
    # seq -> SequenceMap(x * w) -> insert t at the front -> concatenate along axis 0
    body = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["xw"])],
        "map_body",
        [vi("x", F, ["n", 3]), vi("w", F, [3])],
        [vi("xw", F, ["n", 3])],
    )
    nodes = [
        helper.make_node("SequenceMap", ["seq", "w"], ["mapped"], body=body, name="map"),
        const_node("front", np.int64(0)),
        helper.make_node("SequenceInsert", ["mapped", "t", "front"], ["more"]),
        helper.make_node("SequenceLength", ["more"], ["count"]),
        helper.make_node("ConcatFromSequence", ["more"], ["y"], axis=0),
    ]
    return model_of(
        nodes,
        [
            helper.make_tensor_sequence_value_info("seq", F, ["n", 3]),
            vi("w", F, [3]),
            vi("t", F, [2, 3]),
        ],
        [vi("y", F, ["rows", 3]), vi("count", I64, [])],
    )


@pytest.mark.parametrize("rows", [[4], [1, 3, 2]])
def test_a_sequence_input_gets_its_length_from_shape(rows):
    model = _sequence_map_model()
    seq = [rand(r, 3) for r in rows]
    w, t = rand(3), rand(2, 3)
    mod, params = from_onnx(model, shape={"seq": [s.shape for s in seq], "t": (2, 3)})
    assert [p.name for p in mod.main.params] == [*(f"seq[{i}]" for i in range(len(rows))), "w", "t"]
    feeds = {sequence_item_name("seq", i): s for i, s in enumerate(seq)}
    ours = interpret(mod, params, {**feeds, "w": w, "t": t})
    theirs = run_onnxruntime(model, {"seq": seq, "w": w, "t": t})
    assert int(ours[1]) == int(theirs[1]) == len(rows) + 1
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)


def test_a_sequence_input_needs_its_length():
    with pytest.raises(FrontendError, match=r"input 'seq' is a sequence") as info:
        from_onnx(_sequence_map_model())
    assert "shape={'seq': [(2, 3), (4, 3)]}" in info.value.hint
    with pytest.raises(FrontendError, match=r"element 1 is 3, not a shape"):
        from_onnx(_sequence_map_model(), shape={"seq": [(2, 3), 3]})


def test_a_function_body_for_an_empty_sequence_is_a_clear_error():
    # SequenceMap's body is built by onnx for its input types; an empty sequence has none
    model = _sequence_map_model()
    with pytest.raises(UnsupportedFeatureError, match=r"SequenceMap node 'map': input 0 \('seq'\)"):
        from_onnx(model, shape={"seq": []})


def test_a_loop_carrying_a_sequence_needs_a_static_trip_count():
    body = helper.make_graph(
        [
            helper.make_node("SequenceInsert", ["seq", "x"], ["seq_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            vi("i", I64, []),
            vi("cond", B, []),
            helper.make_tensor_sequence_value_info("seq", F, None),
        ],
        [vi("cond_out", B, []), helper.make_tensor_sequence_value_info("seq_out", F, None)],
    )
    nodes = [
        helper.make_node("SequenceEmpty", [], ["empty"], dtype=F),
        helper.make_node("Loop", ["M", "", "empty"], ["seq"], body=body, name="loop"),
        helper.make_node("ConcatFromSequence", ["seq"], ["y"], axis=0, new_axis=1),
    ]
    model = model_of(nodes, [vi("x", F, [3]), vi("M", I64, [])], [vi("y", F, ["m", 3])])
    with pytest.raises(NotStaticError, match=r"Loop node 'loop'.*trip count.*sequence.*'M'"):
        from_onnx(model)
