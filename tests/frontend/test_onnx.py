"""ONNX frontend: conversions checked against onnxruntime, opset differences, weights, naming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from ember.frontend import from_onnx, supported_ops
from ember.graph import Call, Constant, Tuple, Var, interpret
from tests.frontend.onnx_testlib import make_model, random_array, run_onnxruntime

RTOL, ATOL = 1e-4, 1e-5


def check_against_onnxruntime(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    **kwargs,
) -> list[np.ndarray]:
    """Import ``model``, run it with fresh random inputs in ember and onnxruntime, compare."""
    rng = np.random.default_rng()
    mod, params = from_onnx(model, **kwargs)
    if feeds is None:
        feeds = {
            p.name: random_array(rng, p.type.shape, p.type.dtype)
            for p in mod.main.params
            if p.name not in params
        }
    ours = interpret(mod, params, feeds)
    theirs = run_onnxruntime(model, feeds)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return ours


def node(
    op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs
) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs or ["y"], **attrs)


# ----------------------------------------------------------------------------- single ops


@pytest.mark.parametrize(
    ("op_type", "attrs"),
    [
        ("Relu", {}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Exp", {}),
        ("Erf", {}),
        ("Softplus", {}),
        ("Abs", {}),
        ("Neg", {}),
        ("Floor", {}),
        ("Ceil", {}),
        ("Round", {}),
        ("Sign", {}),
        ("Sin", {}),
        ("Cos", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("Elu", {"alpha": 0.7}),
        ("Selu", {}),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
        ("HardSwish", {}),
        ("Softsign", {}),
        ("Mish", {}),
        ("ThresholdedRelu", {"alpha": 0.5}),
        ("Shrink", {"lambd": 0.4, "bias": 0.1}),
        ("Gelu", {"approximate": "tanh"}),
    ],
)
def test_unary(op_type: str, attrs: dict) -> None:
    opset = 20 if op_type == "Gelu" else 18
    model = make_model(
        [node(op_type, ["x"], **attrs)], {"x": ((2, 3, 4), "float32")}, ["y"], opset=opset
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater"])
def test_binary_broadcast(op_type: str) -> None:
    model = make_model(
        [node(op_type, ["a", "b"])], {"a": ((2, 3, 4), "float32"), "b": ((3, 1), "float32")}, ["y"]
    )
    rng = np.random.default_rng()
    feeds = {
        "a": rng.uniform(0.5, 2, (2, 3, 4)).astype("float32"),
        "b": rng.uniform(0.5, 2, (3, 1)).astype("float32"),
    }
    check_against_onnxruntime(model, feeds)


def test_integer_div_and_mod() -> None:
    model = make_model(
        [
            node("Div", ["a", "b"], ["q"]),
            node("Mod", ["a", "b"], ["r"]),
            node("Mod", ["a", "b"], ["f"], fmod=1),
        ],
        {"a": ((6,), "int32"), "b": ((6,), "int32")},
        ["q", "r", "f"],
    )
    feeds = {
        "a": np.array([7, -7, 7, -7, 0, 5], "int32"),
        "b": np.array([2, 2, -2, -2, 3, 5], "int32"),
    }
    check_against_onnxruntime(model, feeds)


def test_variadic_sum_mean_max_min() -> None:
    shapes = {"a": ((2, 3), "float32"), "b": ((3,), "float32"), "c": ((2, 1), "float32")}
    nodes = [node(op, ["a", "b", "c"], [op.lower()]) for op in ("Sum", "Mean", "Max", "Min")]
    check_against_onnxruntime(make_model(nodes, shapes, ["sum", "mean", "max", "min"], opset=13))


def test_where_and_logic() -> None:
    model = make_model(
        [
            node("Greater", ["a", "b"], ["g"]),
            node("Not", ["g"], ["n"]),
            node("Xor", ["g", "n"], ["x"]),
            node("Where", ["n", "a", "b"], ["y"]),
        ],
        {"a": ((3, 4), "float32"), "b": ((4,), "float32")},
        ["x", "y"],
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize("opset", [6, 11, 13])
def test_clip_attr_and_input_forms(opset: int) -> None:
    if opset < 11:
        nodes = [node("Clip", ["x"], min=-0.5, max=0.7)]
        inits = {}
    else:
        nodes = [node("Clip", ["x", "lo", "hi"])]
        inits = {"lo": np.array(-0.5, "float32"), "hi": np.array(0.7, "float32")}
    model = make_model(nodes, {"x": ((3, 5), "float32")}, ["y"], inits, opset=opset)
    out = check_against_onnxruntime(model, freeze_params=True)[0]
    assert out.min() >= -0.5 and out.max() <= 0.7


def test_clip_integer_with_only_max() -> None:
    model = make_model(
        [node("Clip", ["x", "", "hi"])],
        {"x": ((8,), "int32")},
        ["y"],
        {"hi": np.array(2, "int32")},
        opset=13,
    )
    check_against_onnxruntime(model)


def test_cast_and_castlike() -> None:
    model = make_model(
        [
            node("Cast", ["x"], ["i"], to=onnx.TensorProto.INT32),
            node("CastLike", ["i", "x"], ["y"]),
        ],
        {"x": ((4, 4), "float32")},
        ["i", "y"],
    )
    check_against_onnxruntime(model)


# ----------------------------------------------------------------------------- nn


@pytest.mark.parametrize(
    "attrs",
    [
        {"pads": [1, 1, 1, 1]},
        {"strides": [2, 2], "pads": [1, 0, 2, 1]},
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
        {"auto_pad": "VALID", "dilations": [2, 2]},
        {"group": 2, "pads": [1, 1, 1, 1]},
    ],
)
def test_conv2d(attrs: dict) -> None:
    rng = np.random.default_rng()
    inits = {
        "w": random_array(rng, (6, 4 // attrs.get("group", 1), 3, 3)),
        "b": random_array(rng, (6,)),
    }
    model = make_model(
        [node("Conv", ["x", "w", "b"], **attrs)], {"x": ((1, 4, 9, 8), "float32")}, ["y"], inits
    )
    check_against_onnxruntime(model)


def test_conv1d_runs_as_2d() -> None:
    rng = np.random.default_rng()
    model = make_model(
        [node("Conv", ["x", "w"], pads=[2, 1], strides=[2])],
        {"x": ((2, 3, 11), "float32")},
        ["y"],
        {"w": random_array(rng, (5, 3, 3))},
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize(
    "attrs",
    [
        {"strides": [2, 2]},
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        {"strides": [2, 2], "output_shape": [10, 9]},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
        {"group": 2, "dilations": [2, 1]},
    ],
)
def test_conv_transpose(attrs: dict) -> None:
    rng = np.random.default_rng()
    inits = {
        "w": random_array(rng, (4, 6 // attrs.get("group", 1), 3, 3)),
        "b": random_array(rng, (6,)),
    }
    model = make_model(
        [node("ConvTranspose", ["x", "w", "b"], **attrs)],
        {"x": ((1, 4, 5, 4), "float32")},
        ["y"],
        inits,
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize(
    ("attrs", "c_shape"),
    [
        ({}, (5,)),
        ({"transB": 1}, (5,)),
        ({"transA": 1, "alpha": 0.5, "beta": 2.0}, (3, 5)),
        ({"beta": 0.0}, (1, 5)),
    ],
)
def test_gemm(attrs: dict, c_shape: tuple) -> None:
    rng = np.random.default_rng()
    a_shape = (4, 3) if attrs.get("transA") else (3, 4)
    b_shape = (5, 4) if attrs.get("transB") else (4, 5)
    model = make_model(
        [node("Gemm", ["a", "b", "c"], **attrs)],
        {"a": (a_shape, "float32")},
        ["y"],
        {"b": random_array(rng, b_shape), "c": random_array(rng, c_shape)},
    )
    check_against_onnxruntime(model)


def test_matmul_batched() -> None:
    model = make_model(
        [node("MatMul", ["a", "b"])], {"a": ((2, 3, 4), "float32"), "b": ((4, 5), "float32")}, ["y"]
    )
    check_against_onnxruntime(model)


def test_batchnorm_pools_lrn() -> None:
    rng = np.random.default_rng()
    c = 4
    inits = {
        "s": random_array(rng, (c,)),
        "bias": random_array(rng, (c,)),
        "m": random_array(rng, (c,)),
        "v": rng.uniform(0.5, 2, c).astype("float32"),
    }
    nodes = [
        node("BatchNormalization", ["x", "s", "bias", "m", "v"], ["bn"], epsilon=1e-3),
        node("MaxPool", ["bn"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        node(
            "AveragePool",
            ["bn"],
            ["ap"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        node("LRN", ["bn"], ["lrn"], size=3, alpha=1e-3),
        node("GlobalAveragePool", ["bn"], ["gap"]),
        node("GlobalMaxPool", ["bn"], ["gmp"]),
    ]
    model = make_model(
        nodes, {"x": ((2, c, 8, 7), "float32")}, ["mp", "ap", "lrn", "gap", "gmp"], inits
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax_axis_semantics_by_opset(op_type: str, opset: int) -> None:
    # opset < 13 flattens to 2-D at axis 1 (normalizing over C*H); 13+ normalizes over axis 1 only.
    model = make_model(
        [node(op_type, ["x"], axis=1)], {"x": ((2, 3, 4), "float32")}, ["y"], opset=opset
    )
    out = check_against_onnxruntime(model)[0]
    if op_type == "Softmax":
        sums = out.sum(axis=(1, 2)) if opset == 11 else out.sum(axis=1)
        np.testing.assert_allclose(sums, 1.0, rtol=1e-5)


def test_layer_and_instance_norm() -> None:
    rng = np.random.default_rng()
    inits = {
        "g": random_array(rng, (6,)),
        "b": random_array(rng, (6,)),
        "s": random_array(rng, (3,)),
        "t": random_array(rng, (3,)),
    }
    nodes = [
        node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1),
        node("InstanceNormalization", ["x", "s", "t"], ["in"]),
    ]
    model = make_model(nodes, {"x": ((2, 3, 5, 6), "float32")}, ["ln", "in"], inits)
    check_against_onnxruntime(model, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------- shapes and data movement


def test_shape_computations_fold_to_static_reshape() -> None:
    # A typical exporter pattern: Reshape(x, Concat(Gather(Shape(x), 0), [-1])).
    nodes = [
        node("Shape", ["x"], ["s"]),
        node("Gather", ["s", "zero"], ["n"], axis=0),
        node("Unsqueeze", ["n", "axes"], ["n1"]),
        node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = {
        "zero": np.array(0, "int64"),
        "axes": np.array([0], "int64"),
        "minus1": np.array([-1], "int64"),
    }
    model = make_model(nodes, {"x": (("N", 3, 4, 5), "float32")}, ["y"], inits, opset=13)
    mod, params = from_onnx(model, shape={"x": (2, 3, 4, 5)})
    body = mod.main.body
    assert isinstance(body, Call) and body.op.name == "reshape"
    assert body.attrs.newshape == (2, 60)
    assert isinstance(body.args[0], Var) and params == {}  # shape helpers left no weights behind
    check_against_onnxruntime(model, shape={"x": (2, 3, 4, 5)})


@pytest.mark.parametrize(
    ("shape", "allowzero"), [([0, -1], 0), ([2, 0, 4], 0), ([-1, 4], 0), ([3, 8], 1)]
)
def test_reshape_zero_and_minus_one(shape: list, allowzero: int) -> None:
    model = make_model(
        [node("Reshape", ["x", "s"], allowzero=allowzero)],
        {"x": ((2, 3, 4), "float32")},
        ["y"],
        {"s": np.array(shape, "int64")},
        opset=14,
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_squeeze_unsqueeze_reduce_across_opsets(opset: int) -> None:
    inits = {}
    if opset < 13:
        nodes = [
            node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
            node("Unsqueeze", ["a"], ["u"], axes=[0]),
            node("Squeeze", ["u"], ["q"], axes=[0]),
            node("ReduceSum", ["b"], ["r"], axes=[1], keepdims=0),
            node("ReduceMean", ["b"], ["m"], axes=[-1]),
        ]
    else:
        inits = {
            "sizes": np.array([1, 3], "int64"),
            "ax0": np.array([0], "int64"),
            "ax1": np.array([1], "int64"),
            "axm": np.array([-1], "int64"),
        }
        nodes = [
            node("Split", ["x", "sizes"], ["a", "b"], axis=1),
            node("Unsqueeze", ["a", "ax0"], ["u"]),
            node("Squeeze", ["u", "ax0"], ["q"]),
            node("ReduceSum", ["b", "ax1"], ["r"], keepdims=0),
            node(
                "ReduceMean",
                ["b", "axm"] if opset >= 18 else ["b"],
                ["m"],
                **({} if opset >= 18 else {"axes": [-1]}),
            ),
        ]
    model = make_model(nodes, {"x": ((2, 4, 3), "float32")}, ["q", "r", "m"], inits, opset=opset)
    check_against_onnxruntime(model)


def test_split18_num_outputs_uneven() -> None:
    model = make_model(
        [node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)],
        {"x": ((7, 2), "float32")},
        ["a", "b", "c"],
        opset=18,
    )
    outs = check_against_onnxruntime(model)
    assert [o.shape[0] for o in outs] == [3, 3, 1]


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [([1], [1000], [1], [1]), ([-1, 0], [-1000, 3], [0, 2], [-1, 2]), ([0], [-1], [-1], [1])],
)
def test_slice(starts, ends, axes, steps) -> None:
    inits = {
        "s": np.array(starts, "int64"),
        "e": np.array(ends, "int64"),
        "a": np.array(axes, "int64"),
        "t": np.array(steps, "int64"),
    }
    model = make_model(
        [node("Slice", ["x", "s", "e", "a", "t"])], {"x": ((4, 5, 6), "float32")}, ["y"], inits
    )
    check_against_onnxruntime(model)


def test_gather_transpose_flatten_concat_expand_tile() -> None:
    inits = {
        "idx": np.array([[2, -1], [0, 1]], "int64"),
        "shape": np.array([2, 1, 1], "int64"),
        "reps": np.array([1, 2], "int64"),
    }
    nodes = [
        node("Gather", ["x", "idx"], ["g"], axis=1),
        node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
        node("Flatten", ["t"], ["f"], axis=-1),
        node("Concat", ["f", "f"], ["c"], axis=0),
        node("Expand", ["x", "shape"], ["e"]),
        node("Tile", ["f", "reps"], ["tl"]),
    ]
    model = make_model(nodes, {"x": ((2, 3, 4), "float32")}, ["g", "c", "e", "tl"], inits)
    check_against_onnxruntime(model)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes_and_negative_pads(mode: str) -> None:
    inits = {"pads": np.array([0, 1, 2, 0, -1, 1], "int64"), "v": np.array(1.5, "float32")}
    model = make_model(
        [node("Pad", ["x", "pads", "v"], mode=mode)],
        {"x": ((2, 4, 5), "float32")},
        ["y"],
        inits,
        opset=13,
    )
    check_against_onnxruntime(model)


def test_pad_opset2_attribute_form() -> None:
    model = make_model(
        [node("Pad", ["x"], pads=[0, 0, 1, 2, 0, 0, 1, 0], value=-1.0)],
        {"x": ((1, 2, 3, 3), "float32")},
        ["y"],
        opset=9,
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize(
    ("attrs", "scales", "sizes"),
    [
        ({"mode": "nearest"}, [1, 1, 2, 2], None),
        ({"mode": "linear"}, [1, 1, 1.5, 0.5], None),
        ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None, [1, 2, 7, 5]),
        ({"mode": "cubic"}, None, [1, 2, 9, 3]),
        (
            {
                "mode": "nearest",
                "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor",
            },
            [1, 1, 3, 2],
            None,
        ),
    ],
)
def test_resize(attrs: dict, scales, sizes) -> None:
    inits = {"roi": np.array([], "float32")}
    inputs = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.array(scales, "float32")
        inputs.append("scales")
    else:
        inits["sizes"] = np.array(sizes, "int64")
        inputs += ["", "sizes"]
    model = make_model(
        [node("Resize", inputs, **attrs)], {"x": ((1, 2, 4, 6), "float32")}, ["y"], inits, opset=13
    )
    check_against_onnxruntime(model, rtol=1e-4, atol=1e-4)


def test_upsample_opset9() -> None:
    model = make_model(
        [node("Upsample", ["x", "s"], mode="nearest")],
        {"x": ((1, 2, 3, 3), "float32")},
        ["y"],
        {"s": np.array([1, 1, 2, 3], "float32")},
        opset=9,
    )
    check_against_onnxruntime(model)


def test_constant_of_shape_range_and_argmax() -> None:
    nodes = [
        node("Shape", ["x"], ["s"]),
        node(
            "ConstantOfShape",
            ["s"],
            ["ones"],
            value=helper.make_tensor("v", onnx.TensorProto.FLOAT, [1], [1.0]),
        ),
        node("Add", ["x", "ones"], ["y"]),
        node("Range", ["r0", "r1", "r2"], ["r"]),
        node("ArgMax", ["x"], ["am"], axis=1, keepdims=0),
        node("ArgMin", ["x"], ["an"], axis=-1, select_last_index=1),
    ]
    inits = {"r0": np.array(1, "int64"), "r1": np.array(10, "int64"), "r2": np.array(3, "int64")}
    model = make_model(nodes, {"x": ((3, 4), "float32")}, ["y", "r", "am", "an"], inits, opset=13)
    outs = check_against_onnxruntime(model)
    np.testing.assert_array_equal(outs[1], [1, 4, 7])


@pytest.mark.parametrize(
    "op_type",
    [
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSumExp",
    ],
)
def test_reductions(op_type: str) -> None:
    model = make_model(
        [node(op_type, ["x"], axes=[0, 2], keepdims=1)],
        {"x": ((3, 4, 5), "float32")},
        ["y"],
        opset=13,
    )
    check_against_onnxruntime(model, rtol=1e-4, atol=1e-5)


def test_depth_space_trilu_onehot() -> None:
    nodes = [
        node("DepthToSpace", ["x"], ["d"], blocksize=2, mode="CRD"),
        node("SpaceToDepth", ["d"], ["s"], blocksize=2),
        node("Trilu", ["x", "k"], ["t"], upper=0),
        node("OneHot", ["idx", "depth", "vals"], ["o"], axis=1),
    ]
    inits = {
        "k": np.array(1, "int64"),
        "idx": np.array([[0, 3], [-1, 5]], "int64"),
        "depth": np.array(4, "int64"),
        "vals": np.array([-1.0, 2.0], "float32"),
    }
    model = make_model(
        nodes, {"x": ((1, 8, 3, 3), "float32")}, ["d", "s", "t", "o"], inits, opset=14
    )
    check_against_onnxruntime(model)


# ------------------------------------------------------------ weights, inputs, outputs, names


def _conv_relu_model(**kwargs) -> onnx.ModelProto:
    rng = np.random.default_rng()
    inits = {"w": random_array(rng, (4, 3, 3, 3)), "b": random_array(rng, (4,))}
    nodes = [
        helper.make_node("Conv", ["data", "w", "b"], ["c"], name="conv1"),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    return make_model(nodes, {"data": ((1, 3, 6, 6), "float32")}, ["y"], inits, **kwargs)


def test_initializers_become_weight_params_after_inputs() -> None:
    model = _conv_relu_model()
    mod, params = from_onnx(model)
    assert [p.name for p in mod.main.params] == ["data", "w", "b"]
    assert set(params) == {"w", "b"}
    assert params["w"].shape == (4, 3, 3, 3)
    check_against_onnxruntime(model)


def test_initializers_listed_as_inputs_are_weights_not_inputs() -> None:
    model = _conv_relu_model(initializers_as_inputs=True)
    assert [i.name for i in model.graph.input] == ["data", "w", "b"]
    mod, params = from_onnx(model)
    inputs = [p.name for p in mod.main.params if p.name not in params]
    assert inputs == ["data"] and set(params) == {"w", "b"}
    check_against_onnxruntime(model)


def test_freeze_params_makes_constants() -> None:
    mod, params = from_onnx(_conv_relu_model(), freeze_params=True)
    assert params == {} and [p.name for p in mod.main.params] == ["data"]
    conv = mod.main.body.args[0]
    assert isinstance(conv.args[1], Constant) and conv.args[1].name == "w"


def test_calls_are_named_after_onnx_nodes() -> None:
    mod, _ = from_onnx(_conv_relu_model())
    relu = mod.main.body
    assert relu.name == "Relu_1"  # unnamed node: op type + index
    assert relu.args[0].name == "conv1"


def test_several_outputs_make_a_tuple_with_names() -> None:
    model = make_model(
        [node("Relu", ["x"], ["a"]), node("Neg", ["x"], ["b"])],
        {"x": ((2, 2), "float32")},
        ["a", "b"],
    )
    mod, _ = from_onnx(model)
    assert isinstance(mod.main.body, Tuple) and len(mod.main.body.fields) == 2
    assert mod.main.attrs["output_names"] == ("a", "b")


def test_shape_overrides_declared_and_fills_dynamic_dims() -> None:
    model = make_model([node("Relu", ["x"])], {"x": (("batch", 3, 5), "float32")}, ["y"])
    mod, _ = from_onnx(model, shape={"x": [4, 3, 5]})
    assert mod.main.params[0].type.shape == (4, 3, 5)


def test_load_from_path_with_external_data_and_from_bytes(tmp_path: Path) -> None:
    model = _conv_relu_model()
    serialized = model.SerializeToString()
    path = tmp_path / "model.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    assert (tmp_path / "model.onnx.data").exists()
    mod_path, params_path = from_onnx(path)
    mod_bytes, params_bytes = from_onnx(serialized)
    x = np.random.default_rng().standard_normal((1, 3, 6, 6)).astype("float32")
    a = interpret(mod_path, params_path, {"data": x})[0]
    b = interpret(mod_bytes, params_bytes, {"data": x})[0]
    np.testing.assert_array_equal(a, b)


def test_dropout_and_identity_pass_through() -> None:
    model = make_model(
        [node("Dropout", ["x"], ["d"]), node("Identity", ["d"], ["y"])],
        {"x": ((3,), "float32")},
        ["y"],
        opset=13,
    )
    mod, _ = from_onnx(model)
    assert isinstance(mod.main.body, Var)
    check_against_onnxruntime(model)


def test_supported_ops_lists_the_common_ones() -> None:
    ops = supported_ops()
    assert ops == sorted(ops)
    for op_type in ("Conv", "Gemm", "Resize", "Reshape", "Softmax", "BatchNormalization", "Slice"):
        assert op_type in ops
    assert "NonMaxSuppression" not in ops and "LSTM" in ops


# ------------------------------------------------------------------- composed converters


def test_gather_elements_and_gather_nd() -> None:
    rng = np.random.default_rng()
    inits = {
        "ie": rng.integers(-3, 3, (2, 4, 5)).astype("int64"),
        "ind": rng.integers(-2, 2, (3, 2)).astype("int64"),
        "inb": rng.integers(0, 3, (2, 4, 1)).astype("int64"),
    }
    nodes = [
        node("GatherElements", ["x", "ie"], ["ge"], axis=1),
        node("GatherND", ["x", "ind"], ["gn"]),
        node("GatherND", ["x", "inb"], ["gb"], batch_dims=1),
    ]
    model = make_model(nodes, {"x": ((2, 3, 5), "float32")}, ["ge", "gn", "gb"], inits, opset=13)
    check_against_onnxruntime(model)


@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive: int, reverse: int) -> None:
    model = make_model(
        [node("CumSum", ["x", "axis"], exclusive=exclusive, reverse=reverse)],
        {"x": ((3, 5, 2), "int32")},
        ["y"],
        {"axis": np.array(1, "int64")},
        opset=14,
    )
    check_against_onnxruntime(model)


@pytest.mark.parametrize("axis_scales", [False, True])
def test_quantize_dequantize(axis_scales: bool) -> None:
    rng = np.random.default_rng()
    scale = rng.uniform(0.01, 0.1, 3 if axis_scales else ()).astype("float32")
    zero = rng.integers(0, 20, 3 if axis_scales else ()).astype("uint8")
    nodes = [
        node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        node("DequantizeLinear", ["q", "s", "z"], ["d"]),
    ]
    model = make_model(
        nodes, {"x": ((2, 3, 4), "float32")}, ["q", "d"], {"s": scale, "z": zero}, opset=13
    )
    check_against_onnxruntime(model)


def test_layer_norm_group_norm_hardmax_celu_lpnorm() -> None:
    rng = np.random.default_rng()
    inits = {"s": random_array(rng, (4,)), "b": random_array(rng, (4,))}
    nodes = [
        node("GroupNormalization", ["x", "s", "b"], ["gn"], num_groups=2),
        node("Hardmax", ["x"], ["hm"], axis=1),
        node("Celu", ["x"], ["ce"], alpha=0.7),
        node("LpNormalization", ["x"], ["lp"], axis=1, p=2),
    ]
    model = make_model(
        nodes, {"x": ((2, 4, 3, 3), "float32")}, ["gn", "hm", "ce", "lp"], inits, opset=21
    )
    check_against_onnxruntime(model, atol=1e-4)


def check_against_onnx_reference(
    model: onnx.ModelProto, rtol: float = 1e-4, atol: float = 1e-5
) -> None:
    """For ops newer than onnxruntime's opset: the onnx package's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng()
    mod, params = from_onnx(model)
    feeds = {
        p.name: random_array(rng, p.type.shape, p.type.dtype)
        for p in mod.main.params
        if p.name not in params
    }
    ours = interpret(mod, params, feeds)
    theirs = ReferenceEvaluator(model).run(None, feeds)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("q_heads", "kv_heads", "causal"), [(4, 4, 0), (4, 2, 1)])
def test_attention_3d_with_gqa_and_causal_mask(q_heads: int, kv_heads: int, causal: int) -> None:
    head_size = 4  # q: 4 heads * 4 = 16 features; k/v: kv_heads * 4
    shapes = {
        "q": ((2, 5, q_heads * head_size), "float32"),
        "k": ((2, 7, kv_heads * head_size), "float32"),
        "v": ((2, 7, kv_heads * head_size), "float32"),
    }
    model = make_model(
        [
            node(
                "Attention",
                ["q", "k", "v"],
                q_num_heads=q_heads,
                kv_num_heads=kv_heads,
                is_causal=causal,
            )
        ],
        shapes,
        ["y"],
        opset=23,
    )
    check_against_onnx_reference(model)


def test_rms_norm_and_rotary_embedding() -> None:
    rng = np.random.default_rng()
    angles = rng.uniform(0, 3, (6, 4)).astype("float32")
    inits = {
        "g": random_array(rng, (8,)),
        "cos": np.cos(angles),
        "sin": np.sin(angles),
        "pos": np.array([[0, 2, 4], [1, 3, 5]], "int64"),
    }
    nodes = [
        node("RMSNormalization", ["x", "g"], ["n"]),
        node("RotaryEmbedding", ["n", "cos", "sin", "pos"], ["y"], num_heads=1),
    ]
    model = make_model(nodes, {"x": ((2, 3, 8), "float32")}, ["y"], inits, opset=23)
    check_against_onnx_reference(model)


@pytest.mark.parametrize(("largest", "dtype"), [(1, "float32"), (0, "float32"), (1, "int32")])
def test_top_k_with_ties_and_infinities(largest: int, dtype: str) -> None:
    model = make_model(
        [node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=largest)],
        {"x": ((2, 6), dtype)},
        ["v", "i"],
        {"k": np.array([3], "int64")},
        opset=11,
    )
    x = np.array([[1, 5, 5, -2, 5, 0], [3, 3, 3, 3, 3, 3]], dtype=dtype)
    if dtype == "float32":
        x[0, 3], x[1, 0] = -np.inf, np.inf
    outs = check_against_onnxruntime(model, {"x": x})
    assert outs[1].dtype == np.int64
    check_against_onnxruntime(model)  # and on random data
