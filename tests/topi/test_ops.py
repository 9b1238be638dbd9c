"""Every graph op as a one-op kernel: schedule_primitive -> C -> run == numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from topi_testlib import Case, KernelTable, check_close, make_function, random_input

from ember.ops import get_op

F = "float32"
X = ((2, 3, 17), F)
POS = ((2, 3, 17), F, "pos")

UNARY = [
    "nn.relu", "sigmoid", "tanh", "erf", "exp", "abs", "negative", "floor", "ceil", "round",
    "sign", "sin", "cos", "identity", "nn.softplus", "nn.hard_swish",
    "nn.silu", "nn.mish",
]  # fmt: skip
CASES = [Case(f"unary-{op}", op, [X]) for op in UNARY]
CASES += [Case(f"unary-{op}", op, [POS]) for op in ("log", "sqrt", "rsqrt", "reciprocal")]
CASES += [Case(f"unary-{op}", op, [X]) for op in ("atan", "asinh")]
CASES += [Case(f"unary-{op}", op, [((2, 3, 17), F, "unit")]) for op in ("asin", "acos", "atanh")]
CASES += [Case("unary-acosh", "acosh", [((2, 3, 17), F, "ge1")])]
# bitwise ops and ONNX BitShift's edges: negative shifts, shifts by the width or more,
# left shifts of negative values, sign-extending right shifts
I32 = ((4, 9), "int32", (-(2**31), 2**31 - 1))
I8, U64, U16 = (
    ((4, 9), "int8", (-128, 128)),
    ((4, 9), "uint64", (0, 2**40)),
    ((4, 9), "uint16", (0, 2**16)),
)
CASES += [
    Case("bitwise_and", "bitwise_and", [I32, ((9,), "int32", (-(2**31), 2**31 - 1))]),
    Case("bitwise_or-uint8", "bitwise_or", [((4, 9), "uint8", (0, 256))] * 2),
    Case("bitwise_xor-int64", "bitwise_xor", [((4, 9), "int64", (-(2**40), 2**40))] * 2),
    Case("bitwise_not-int16", "bitwise_not", [((4, 9), "int16", (-(2**15), 2**15))]),
    Case("left_shift-int8", "left_shift", [I8, ((4, 9), "int8", (-3, 11))]),
    Case("left_shift-uint64", "left_shift", [U64, ((4, 9), "uint64", (0, 70))]),
    Case("right_shift-int32", "right_shift", [I32, ((4, 9), "int32", (-3, 40))]),
    Case("right_shift-uint16", "right_shift", [U16, ((9,), "uint16", (0, 20))]),
]  # fmt: skip
CASES += [
    Case("gelu-none", "nn.gelu", [X]),
    Case("gelu-tanh", "nn.gelu", [X], {"approximate": "tanh"}),
    Case("leaky_relu", "nn.leaky_relu", [X], {"alpha": 0.2}),
    Case("elu", "nn.elu", [X], {"alpha": 0.7}),
    Case("selu", "nn.selu", [X]),
    Case("hard_sigmoid", "nn.hard_sigmoid", [X], {"alpha": 0.3, "beta": 0.4}),
    Case("clip", "clip", [X], {"a_min": -0.5, "a_max": 0.7}),
    Case("clip-int", "clip", [((5, 9), "int32")], {"a_min": -3, "a_max": 4}),
    Case("dropout", "nn.dropout", [X], {"rate": 0.3}),
    Case("relu-int8", "nn.relu", [((4, 19), "int8")]),
    Case("tanh-float16", "tanh", [((4, 19), "float16")], rtol=1e-3),
    Case("add-float64", "add", [((4, 19), "float64"), ((19,), "float64")]),
    Case("cast-f2i", "cast", [X], {"dtype": "int32"}),
    Case("cast-i2f", "cast", [((3, 11), "int32")], {"dtype": "float32"}),
    Case("cast-f2b", "cast", [((3, 11), F, (-1, 2))], {"dtype": "bool"}),
    Case("logical_not", "logical_not", [((3, 10), "bool")]),
    # broadcasting binary ops
    Case("add-bcast", "add", [((2, 1, 5), F), ((3, 1), F)]),
    Case("subtract", "subtract", [((4, 9), F), ((9,), F)]),
    Case("multiply", "multiply", [((2, 3, 4, 5), F), ((3, 1, 1), F)]),
    Case("divide", "divide", [((4, 9), F), ((4, 9), F, "pos")]),
    Case("power", "power", [((4, 9), F, "pos"), ((4, 9), F)]),
    Case("maximum", "maximum", [((4, 9), F), ((1, 9), F)]),
    Case("minimum", "minimum", [((4, 9), F), ((4, 1), F)]),
    Case("mod-float", "mod", [((4, 9), F), ((4, 9), F, "pos")]),
    Case("fmod-float", "mod", [((4, 9), F), ((4, 9), F, "pos")], {"fmod": True}),
    Case("mod-int", "mod", [((4, 9), "int32"), ((4, 9), "int32", "pos")]),
    Case("add-int", "add", [((4, 9), "int32"), ((9,), "int32")]),
    Case("divide-int", "divide", [((4, 9), "int32"), ((4, 9), "int32", "pos")]),
    # integer edge cases of the scalar rules: division / mod by zero give 0, integer
    # power (negative exponents truncate), clip bounds outside the dtype range
    Case("divide-int-zero", "divide", [((4, 9), "int32", (-5, 5)), ((4, 9), "int32", (-2, 3))]),
    Case("mod-int-zero", "mod", [((4, 9), "int32", (-5, 5)), ((4, 9), "int32", (-2, 3))]),
    Case(
        "fmod-int-zero",
        "mod",
        [((4, 9), "int32", (-5, 5)), ((4, 9), "int32", (-2, 3))],
        {"fmod": True},
    ),
    Case("power-int", "power", [((4, 9), "int32", (-3, 4)), ((4, 9), "int32", (-2, 4))]),
    Case(
        "clip-int8-wide", "clip", [((4, 9), "int8", (-100, 100))], {"a_min": -1000.0, "a_max": 0.5}
    ),
    Case("abs-int8", "abs", [((4, 9), "int8", (-127, 127))]),
    Case("logical_and", "logical_and", [((3, 8), "bool"), ((3, 8), "bool")]),
    Case("logical_or", "logical_or", [((3, 8), "bool"), ((1, 8), "bool")]),
    Case("logical_xor", "logical_xor", [((3, 8), "bool"), ((3, 1), "bool")]),
    Case("equal", "equal", [((3, 8), "int32", (0, 3)), ((3, 8), "int32", (0, 3))]),
    Case("less", "less", [((3, 8), F), ((8,), F)]),
    Case("greater_equal", "greater_equal", [((3, 8), F), ((3, 1), F)]),
    Case("prelu", "nn.prelu", [((1, 4, 3, 5), F), ((4, 1, 1), F)]),
    Case("where", "where", [((3, 1), "bool"), ((3, 8), F), ((8,), F)]),
    Case("batch_norm", "nn.batch_norm", [((2, 5, 3, 4), F)] + [((5,), F)] * 3 + [((5,), F, "pos")]),
    # convolutions
    Case("conv-3x3-pad", "nn.conv2d", [((1, 8, 9, 10), F), ((16, 8, 3, 3), F)], {"padding": 1}),
    Case(
        "conv-stride-asym",
        "nn.conv2d",
        [((2, 3, 11, 12), F), ((5, 3, 3, 2), F)],
        {"strides": (2, 3), "padding": (1, 0, 2, 1)},
    ),
    Case("conv-dilation", "nn.conv2d", [((1, 4, 13, 13), F), ((6, 4, 3, 3), F)], {"dilation": 2}),
    Case("conv-groups", "nn.conv2d", [((1, 6, 8, 8), F), ((4, 3, 3, 3), F)], {"groups": 2}),
    Case(
        "conv-depthwise",
        "nn.conv2d",
        [((1, 13, 7, 7), F), ((13, 1, 3, 3), F)],
        {"groups": 13, "padding": 1},
    ),
    Case("conv-bias-1x1", "nn.conv2d", [((1, 13, 7, 7), F), ((9, 13, 1, 1), F), ((9,), F)]),
    # channel-blocked convolutions (output channels a multiple of 8): row widths that the
    # column block divides (28 -> 14), does not divide (17: guarded tail), short rows (7)
    Case("convb-28", "nn.conv2d", [((1, 3, 28, 28), F), ((8, 3, 3, 3), F)], {"padding": 1}),
    Case(
        "convb-17-s2",
        "nn.conv2d",
        [((1, 5, 35, 33), F), ((16, 5, 3, 3), F), ((16,), F)],
        {"strides": 2, "padding": (1, 0, 1, 1)},
    ),
    Case(
        "convb-7-dil",
        "nn.conv2d",
        [((2, 4, 11, 11), F), ((8, 4, 3, 3), F)],
        {"dilation": 2, "padding": 1},
    ),
    Case("convb-1x1", "nn.conv2d", [((1, 12, 9, 13), F), ((24, 12, 1, 1), F)]),
    Case("convb-float64", "nn.conv2d", [((1, 3, 6, 6), "float64"), ((8, 3, 3, 3), "float64")]),
    Case("convb-16x5", "nn.conv2d", [((1, 6, 5, 5), F), ((32, 6, 3, 3), F)], {"padding": 1}),
    Case(
        "convb-float16",
        "nn.conv2d",
        [((1, 3, 6, 6), "float16"), ((8, 3, 3, 3), "float16")],
        rtol=1e-2,
    ),
    Case("dense-float16", "nn.dense", [((2, 24), "float16"), ((5, 24), "float16")], rtol=1e-2),
    Case(
        "conv-depthwise-s2-dil",
        "nn.conv2d",
        [((1, 6, 13, 13), F), ((6, 1, 3, 3), F)],
        {"groups": 6, "strides": 2, "dilation": (1, 2), "padding": (1, 2, 0, 1)},
    ),
    Case("conv-int32", "nn.conv2d", [((1, 3, 6, 6), "int32"), ((4, 3, 3, 3), "int32")]),
    Case(
        "conv_transpose",
        "nn.conv2d_transpose",
        [((1, 4, 5, 6), F), ((4, 3, 3, 3), F), ((3,), F)],
        {"strides": 2, "padding": (1, 1, 1, 1), "output_padding": (1, 0)},
    ),
    Case(
        "conv_transpose-groups-dil",
        "nn.conv2d_transpose",
        [((1, 4, 5, 5), F), ((4, 2, 3, 2), F)],
        {"groups": 2, "dilation": 2, "padding": (0, 1, 1, 0)},
    ),
    # matrix products
    Case("dense-k32", "nn.dense", [((3, 32), F), ((10, 32), F)], rtol=1e-4),
    Case("dense-k20-bias", "nn.dense", [((2, 3, 20), F), ((7, 20), F), ((7,), F)], rtol=1e-4),
    Case("dense-k5", "nn.dense", [((4, 5), F), ((9, 5), F)]),
    Case("dense-int", "nn.dense", [((2, 24), "int32"), ((5, 24), "int32")]),
    Case("matmul-2d", "nn.matmul", [((5, 7), F), ((7, 9), F)]),
    Case("matmul-1d-2d", "nn.matmul", [((7,), F), ((7, 9), F)]),
    Case("matmul-2d-1d", "nn.matmul", [((5, 7), F), ((7,), F)]),
    Case("matmul-batch", "nn.matmul", [((2, 1, 3, 4), F), ((3, 4, 5), F)]),
    Case("batch_matmul", "nn.batch_matmul", [((2, 3, 4), F), ((2, 4, 16), F)]),
    Case(
        "batch_matmul-t",
        "nn.batch_matmul",
        [((1, 4, 3), F), ((2, 5, 4), F)],
        {"transpose_a": True, "transpose_b": True},
    ),
    # pooling
    Case(
        "maxpool-3s2p1",
        "nn.max_pool2d",
        [((1, 3, 9, 9), F)],
        {"pool_size": 3, "strides": 2, "padding": 1},
    ),
    Case(
        "maxpool-ceil-dil",
        "nn.max_pool2d",
        [((2, 2, 10, 11), F)],
        {"pool_size": (2, 3), "strides": 2, "dilation": (2, 1), "ceil_mode": True},
    ),
    Case("maxpool-int8", "nn.max_pool2d", [((1, 2, 6, 6), "int8")], {"pool_size": 2, "strides": 2}),
    Case(
        "avgpool-excl",
        "nn.avg_pool2d",
        [((1, 3, 7, 7), F)],
        {"pool_size": 3, "strides": 2, "padding": (1, 1, 0, 1), "ceil_mode": True},
    ),
    Case(
        "avgpool-incl",
        "nn.avg_pool2d",
        [((1, 3, 8, 7), F)],
        {"pool_size": 3, "strides": 2, "padding": 1, "count_include_pad": True, "ceil_mode": True},
    ),
    Case("avgpool-int", "nn.avg_pool2d", [((1, 2, 6, 6), "int32")], {"pool_size": 2, "strides": 2}),
    Case("global_avg", "nn.global_avg_pool2d", [((2, 5, 7, 7), F)]),
    Case("global_max", "nn.global_max_pool2d", [((2, 5, 7, 7), F)]),
    Case("lrn-3", "nn.lrn", [((1, 7, 3, 4), F)], {"size": 3, "alpha": 0.01}),
    Case(
        "lrn-4", "nn.lrn", [((1, 6, 3, 4), F)], {"size": 4, "alpha": 0.02, "beta": 0.6, "bias": 2.0}
    ),
    Case("softmax-last", "nn.softmax", [((3, 20), F)]),
    Case("softmax-axis1", "nn.softmax", [((2, 5, 3, 4), F)], {"axis": 1}),
    Case("log_softmax", "nn.log_softmax", [((3, 13), F)]),
    # reductions
    Case("sum-all", "reduce_sum", [((3, 4, 5), F)], rtol=1e-4),
    Case("sum-axes-keep", "reduce_sum", [((3, 4, 5), F)], {"axes": (0, 2), "keepdims": True}),
    Case("mean-last", "reduce_mean", [((3, 4, 16), F)], {"axes": (-1,)}),
    Case("mean-int", "reduce_mean", [((3, 7), "int32")], {"axes": (1,)}),
    Case("max-mid", "reduce_max", [((3, 4, 5), F)], {"axes": (1,)}),
    Case("min-first", "reduce_min", [((3, 4, 5), F)], {"axes": (0,), "keepdims": True}),
    Case("prod", "reduce_prod", [((3, 4), F)], {"axes": (1,)}),
    Case("argmax", "argmax", [((3, 4, 5), "int32", (0, 3))], {"axis": 1}),
    Case(
        "argmin-last",
        "argmin",
        [((3, 4, 5), "int32", (0, 3))],
        {"axis": -1, "keepdims": False, "select_last_index": True},
    ),
    # transforms
    Case(
        "pad-constant",
        "nn.pad",
        [((2, 3, 4), F)],
        {"pad_width": ((0, 1), (2, 0), (1, 3)), "pad_value": 1.5},
    ),
    Case(
        "pad-edge",
        "nn.pad",
        [((2, 3, 4), F)],
        {"pad_width": ((1, 1), (2, 0), (1, 3)), "mode": "edge"},
    ),
    Case(
        "pad-reflect",
        "nn.pad",
        [((2, 3, 5), F)],
        {"pad_width": ((1, 1), (2, 0), (1, 3)), "mode": "reflect"},
    ),
    Case("reshape", "reshape", [((2, 3, 4), F)], {"newshape": (4, -1)}),
    Case("flatten", "flatten", [((2, 3, 4, 5), F)], {"axis": 2}),
    Case("transpose-rev", "transpose", [((2, 3, 4), F)]),
    Case("transpose-perm", "transpose", [((2, 3, 4, 5), F)], {"axes": (0, 2, 3, 1)}),
    Case("squeeze", "squeeze", [((2, 1, 4, 1), F)], {"axes": (1,)}),
    Case("expand_dims", "expand_dims", [((2, 4), F)], {"axes": (0, 3)}),
    Case(
        "concatenate", "concatenate", [((2, 3, 4), F), ((2, 1, 4), F), ((2, 5, 4), F)], {"axis": 1}
    ),
    Case("split", "split", [((2, 9, 4), F)], {"sections": (2, 3, 4), "axis": 1}),
    Case(
        "slice-neg-step",
        "strided_slice",
        [((5, 6, 7), F)],
        {"begin": (-1, 1), "end": (-100, 100), "strides": (-2, 2), "axes": (2, 0)},
    ),
    Case("slice-simple", "strided_slice", [((5, 6), F)], {"begin": (1, 2), "end": (4, -1)}),
    Case("take", "take", [((5, 4), F), ((2, 3), "int64", (-5, 5))], {"axis": 0}),
    Case("take-axis1", "take", [((3, 6, 2), F), ((4,), "int32", (-6, 6))], {"axis": 1}),
    Case("broadcast_to", "broadcast_to", [((3, 1), F)], {"shape": (2, 3, 5)}),
    Case("tile", "tile", [((2, 3), F)], {"reps": (2, 3)}),
]

RESIZE_MODES = [
    ("nearest", "half_pixel", "round_prefer_floor", (9, 14)),
    ("nearest", "asymmetric", "floor", (12, 10)),
    ("nearest", "align_corners", "round_prefer_ceil", (3, 9)),
    ("nearest", "tf_half_pixel_for_nn", "ceil", (10, 5)),
    ("linear", "half_pixel", "round_prefer_floor", (9, 14)),
    ("linear", "align_corners", "round_prefer_floor", (11, 4)),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", (1, 8)),
    ("cubic", "half_pixel", "round_prefer_floor", (10, 13)),
    ("cubic", "asymmetric", "round_prefer_floor", (4, 12)),
]
for method, coord, nearest, size in RESIZE_MODES:
    CASES.append(
        Case(
            f"resize-{method}-{coord}-{nearest}",
            "image.resize2d",
            [((1, 2, 6, 7), F)],
            {"size": size, "method": method, "coordinate_transformation_mode": coord,
             "nearest_mode": nearest},
        )
    )  # fmt: skip
CASES += [
    Case(
        "resize-cubic-exclude",
        "image.resize2d",
        [((1, 2, 5, 6), F)],
        {"size": (9, 11), "method": "cubic", "exclude_outside": True, "cubic_coeff_a": -0.5},
    ),
    Case(
        "resize-linear-scales",
        "image.resize2d",
        [((1, 2, 4, 4), F)],
        {"size": (8, 9), "method": "linear", "scales": (2.0, 2.3)},
    ),
    Case(
        "resize-linear-int",
        "image.resize2d",
        [((1, 1, 4, 5), "int32")],
        {"size": (7, 9), "method": "linear"},
    ),
]


@pytest.fixture(scope="module")
def table() -> KernelTable:
    return KernelTable(CASES)


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_op_matches_reference(table: KernelTable, case_id: str, rng: np.random.Generator) -> None:
    case = table.cases[case_id]
    inputs = [random_input(spec, rng) for spec in case.inputs]
    _, node = make_function(case)
    want = get_op(case.op).evaluate(inputs, node.attrs)
    wants = list(want) if isinstance(want, tuple) else [want]
    got = table.run(case_id, inputs)
    assert len(got) == len(wants)
    if case.op == "image.resize2d" and np.dtype(inputs[0].dtype).kind in "iu":
        _check_rounded_interpolation(got[0], case, inputs[0])
        return
    for g, w in zip(got, wants, strict=True):
        check_close(g, np.asarray(w), case.rtol)


def _check_rounded_interpolation(got: np.ndarray, case: Case, x: np.ndarray) -> None:
    """Integer resizing rounds a float interpolation: equal to the reference, except that a
    value within float rounding of a .5 tie may round either way (the kernel and the
    reference sum the taps in different orders), and then only by one."""
    exact = np.asarray(
        get_op(case.op).evaluate([x.astype(np.float64)], make_function(case)[1].attrs)
    )
    want = np.round(exact)
    tie = np.abs(np.abs(exact - np.trunc(exact)) - 0.5) < 1e-9
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert got.dtype == x.dtype
    assert not np.any(diff[~tie]), np.argwhere(diff & ~tie)
    assert np.all(diff[tie] <= 1)


def test_every_op_has_a_compute() -> None:
    import ember.topi.strategy  # noqa: F401  (the operator library registers its computes)
    from ember.ops import list_ops
    from ember.ops.control_flow import CONTROL_FLOW_OPS

    # control flow is no kernel: the AOT executor runs it as C control flow around the
    # kernels of its bodies (tests/driver/test_compile_control_flow.py)
    builtin = [name for name in list_ops() if get_op(name).is_builtin]  # not users' ops
    missing = [
        name
        for name in builtin
        if "compute" not in get_op(name).extensions and name not in CONTROL_FLOW_OPS
    ]
    assert missing == []
