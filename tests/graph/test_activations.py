"""rewrite_activations: activations as exporters write them become one op each, with the
same values (reference executor on both sides, torch and onnxruntime where they apply)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ember
from ember.graph import interpret
from ember.graph.ir import Call, Function, Module, TensorType, Var, const
from ember.graph.passes import optimize
from ember.graph.passes.activations import rewrite_activations
from ember.graph.visitor import post_order
from ember.ops import call

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

SHAPE = (2, 4, 5, 6)


def _ops(mod: Module) -> list[str]:
    return [n.op.name for n in post_order(mod.main.body) if isinstance(n, Call)]


def _input() -> np.ndarray:
    x = np.random.default_rng().standard_normal(SHAPE).astype(np.float32) * 4
    x.flat[:4] = [-30.0, 30.0, -3.0, 3.0]  # the tails and relu6's corners
    return x


def _check_onnx(model: onnx.ModelProto, want_ops: list[str], torch_out=None, x=None) -> None:
    """Convert, optimize, expect ``want_ops``; match the unrewritten graph, ORT (and torch)."""
    data = model.SerializeToString()
    mod, params = ember.frontend.from_onnx(data, shape={"x": SHAPE})
    opt = optimize(mod, params)
    assert _ops(opt) == want_ops, _ops(opt)
    x = _input() if x is None else x
    got = interpret(opt, {}, {"x": x})[0]
    np.testing.assert_allclose(got, interpret(mod, params, {"x": x})[0], rtol=1e-5, atol=1e-6)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    if torch_out is not None:
        np.testing.assert_allclose(got, torch_out, rtol=1e-5, atol=1e-5)


TORCH_ACTIVATIONS = [
    # (module, op after rewrite); torch.onnx's TorchScript exporter writes these out
    (lambda: torch.nn.SiLU(), "nn.silu"),  # Sigmoid, Mul
    (lambda: torch.nn.GELU(), "nn.gelu"),  # Div, Erf, Add, Mul, Mul
    (lambda: torch.nn.GELU(approximate="tanh"), "nn.gelu"),  # x*x*x, Mul, Add, Mul, Tanh, ...
    (lambda: torch.nn.Hardswish(), "nn.hard_swish"),  # opset 13: HardSigmoid, Mul
    (lambda: torch.nn.Mish(), "nn.mish"),  # Softplus, Tanh, Mul
]


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("make,op", TORCH_ACTIVATIONS)
def test_torch_exports_become_one_op_after_a_conv(make, op, opset):
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), make()).eval()
    x = _input()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.from_numpy(x),), f, opset_version=opset, dynamo=False,
            input_names=["x"],
        )  # fmt: skip
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    _check_onnx(onnx.load_from_string(f.getvalue()), ["nn.conv2d", op], want, x)


def _graph(nodes, consts: dict[str, float], opset: int = 17) -> onnx.ModelProto:
    inits = [helper.make_tensor(k, TensorProto.FLOAT, [], [v]) for k, v in consts.items()]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


N = helper.make_node
RELU6_CLIP = [N("Add", ["x", "three"], ["s"]), N("Clip", ["s", "zero", "six"], ["r"])]
RELU6_MINMAX = [
    N("Add", ["three", "x"], ["s"]),
    N("Max", ["s", "zero"], ["m"]),
    N("Min", ["m", "six"], ["r"]),
]
RELU6_RELU_MIN = [
    N("Add", ["x", "three"], ["s"]),
    N("Relu", ["s"], ["m"]),
    N("Min", ["six", "m"], ["r"]),
]
C3 = {"three": 3.0, "zero": 0.0, "six": 6.0}

HAND_BUILT = {
    # name: (nodes, constants, op after rewrite)
    "silu-sigmoid-first": (
        [N("Sigmoid", ["x"], ["s"]), N("Mul", ["s", "x"], ["y"])], {}, "nn.silu"
    ),
    "hard_swish-clip-div": (
        [*RELU6_CLIP, N("Mul", ["x", "r"], ["p"]), N("Div", ["p", "six"], ["y"])],
        C3,
        "nn.hard_swish",
    ),
    "hard_swish-minmax-mul-sixth": (
        [*RELU6_MINMAX, N("Mul", ["r", "sixth"], ["q"]), N("Mul", ["q", "x"], ["y"])],
        {**C3, "sixth": 1 / 6},
        "nn.hard_swish",
    ),
    "hard_swish-relu-min": (
        [*RELU6_RELU_MIN, N("Div", ["r", "six"], ["q"]), N("Mul", ["x", "q"], ["y"])],
        C3,
        "nn.hard_swish",
    ),
    "hard_sigmoid-relu6-div": ([*RELU6_CLIP, N("Div", ["r", "six"], ["y"])], C3, "nn.hard_sigmoid"),
    "hard_swish-hardsigmoid": (
        [N("HardSigmoid", ["x"], ["h"], alpha=1 / 6), N("Mul", ["x", "h"], ["y"])],
        {},
        "nn.hard_swish",
    ),
    "mish-log-exp": (
        [
            N("Exp", ["x"], ["e"]),
            N("Add", ["e", "one"], ["a"]),
            N("Log", ["a"], ["l"]),
            N("Tanh", ["l"], ["t"]),
            N("Mul", ["t", "x"], ["y"]),
        ],
        {"one": 1.0},
        "nn.mish",
    ),
    "gelu-mul-rsqrt2-half-first": (
        [
            N("Mul", ["x", "half"], ["h"]),
            N("Mul", ["x", "rsqrt2"], ["d"]),
            N("Erf", ["d"], ["e"]),
            N("Add", ["one", "e"], ["a"]),
            N("Mul", ["h", "a"], ["y"]),
        ],
        {"half": 0.5, "rsqrt2": float(np.float32(1 / np.sqrt(2))), "one": 1.0},
        "nn.gelu",
    ),
    "gelu-tanh-pow": (
        [
            N("Pow", ["x", "three"], ["c"]),
            N("Mul", ["c", "k"], ["ck"]),
            N("Add", ["x", "ck"], ["i"]),
            N("Mul", ["i", "s"], ["si"]),
            N("Tanh", ["si"], ["t"]),
            N("Add", ["t", "one"], ["a"]),
            N("Mul", ["x", "a"], ["xa"]),
            N("Div", ["xa", "two"], ["y"]),
        ],
        {"three": 3.0, "k": 0.044715, "s": float(np.sqrt(2 / np.pi)), "one": 1.0, "two": 2.0},
        "nn.gelu",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_hand_built_spellings_become_one_op(name):
    nodes, consts, op = HAND_BUILT[name]
    _check_onnx(_graph(nodes, consts), [op])


NOT_REWRITTEN = {
    # a different function: constants off by more than the tolerance, or another shape
    "swish-beta-2": (
        [N("Mul", ["x", "two"], ["b"]), N("Sigmoid", ["b"], ["s"]), N("Mul", ["x", "s"], ["y"])],
        {"two": 2.0},
        ["multiply", "sigmoid", "multiply"],
    ),
    "gelu-wrong-half": (
        [
            N("Div", ["x", "sqrt2"], ["d"]),
            N("Erf", ["d"], ["e"]),
            N("Add", ["e", "one"], ["a"]),
            N("Mul", ["x", "a"], ["m"]),
            N("Mul", ["m", "half"], ["y"]),
        ],
        {"sqrt2": 1.4142135, "one": 1.0, "half": 0.501},
        ["divide", "erf", "add", "multiply", "multiply"],
    ),
    "hard_swish-relu6-plus-2": (
        [N("Add", ["x", "two"], ["s"]), N("Clip", ["s", "zero", "six"], ["r"]),
         N("Mul", ["x", "r"], ["p"]), N("Div", ["p", "six"], ["y"])],
        {"two": 2.0, "zero": 0.0, "six": 6.0},
        ["add", "maximum", "minimum", "multiply", "divide"],  # Clip with inputs: max + min
    ),
    "sigmoid-of-another-tensor": (
        [N("Neg", ["x"], ["n"]), N("Sigmoid", ["n"], ["s"]), N("Mul", ["x", "s"], ["y"])],
        {},
        ["negative", "sigmoid", "multiply"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NOT_REWRITTEN))
def test_other_functions_are_left_alone(name):
    nodes, consts, ops = NOT_REWRITTEN[name]
    _check_onnx(_graph(nodes, consts), ops)


def test_a_shared_inner_node_keeps_the_pattern_written_out():
    # sigmoid(x) has a second user: rewriting would compute it twice
    x = Var("x", TensorType(SHAPE, "float32"))
    s = call("sigmoid", x)
    y = call("add", call("multiply", x, s), s)
    mod = Module.from_function(Function((x,), y))
    assert _ops(rewrite_activations(mod)) == ["sigmoid", "multiply", "add"]
    # and the rewrite names the op after the node it replaces
    z = call("multiply", x, call("sigmoid", x), name="act")
    out = rewrite_activations(Module.from_function(Function((x,), z)))
    assert out.main.body.op.name == "nn.silu" and out.main.body.name == "act"


def test_a_broadcasting_constant_blocks_the_rewrite():
    # x * (sigmoid(x) * ones((1, 1))) has shape (1, 3): no activation of x has that type
    x = Var("x", TensorType((3,), "float32"))
    y = call("multiply", x, call("multiply", call("sigmoid", x), const(np.ones((1, 1), "float32"))))
    mod = Module.from_function(Function((x,), y))
    assert _ops(rewrite_activations(mod)) == ["sigmoid", "multiply", "multiply"]
