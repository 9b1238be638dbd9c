"""Elementwise ops: unary math, broadcasting binary ops, where, cast, clip vs onnxruntime."""

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, rng, run_onnx, run_op

from ember.errors import AttrError, ShapeError
from ember.ops import math as m


def _positive(shape, dtype):
    return (np.abs(randn(shape, "float64")) + 0.1).astype(dtype)


def _halves(shape, dtype):
    # Many exact .5 values so round-half-to-even is exercised.
    return (rng().integers(-20, 20, size=shape) / 2).astype(dtype)


UNARY = [
    # (ember op, ONNX op, input maker)
    ("sigmoid", "Sigmoid", randn),
    ("tanh", "Tanh", randn),
    ("erf", "Erf", randn),
    ("exp", "Exp", randn),
    ("log", "Log", _positive),
    ("sqrt", "Sqrt", _positive),
    ("abs", "Abs", randn),
    ("negative", "Neg", randn),
    ("floor", "Floor", _halves),
    ("ceil", "Ceil", _halves),
    ("round", "Round", _halves),
    ("sign", "Sign", _halves),
    ("reciprocal", "Reciprocal", _positive),
    ("sin", "Sin", randn),
    ("cos", "Cos", randn),
    ("identity", "Identity", randn),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,onnx_op,make", UNARY, ids=[u[0] for u in UNARY])
def test_unary_matches_onnxruntime(name, onnx_op, make, dtype):
    x = make((3, 4, 5), dtype)
    if (name, dtype) == ("erf", "float64"):
        # onnxruntime has no float64 Erf: compare with float32 at float32 tolerance.
        want = run_onnx(onnx_op, [x.astype("float32")], opset=13)[0].astype(dtype)
        return np.testing.assert_allclose(run_op(name, [x]), want, rtol=1e-5, atol=1e-6)
    assert_close(run_op(name, [x]), run_onnx(onnx_op, [x], opset=13)[0])


def test_unary_edge_values():
    x = np.array([-1e30, -80.0, 0.0, 80.0, 1e30], "float32")
    assert_close(run_op("sigmoid", [x]), run_onnx("Sigmoid", [x])[0])
    x = np.array([0.0, 4.0, 0.25], "float32")
    np.testing.assert_allclose(run_op("rsqrt", [x]), [np.inf, 0.5, 2.0])
    np.testing.assert_array_equal(
        run_op("round", [np.array([0.5, 1.5, 2.5, -0.5, -2.5])]), [0, 2, 2, -0, -2]
    )
    b = rng().random((4, 3)) > 0.5
    np.testing.assert_array_equal(run_op("logical_not", [b]), run_onnx("Not", [b])[0])


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
def test_unary_integers(dtype):
    x = randint((4, 5), dtype)
    for name, onnx_op in [
        ("abs", "Abs"),
        ("negative", "Neg"),
        ("sign", "Sign"),
        ("nn.relu", "Relu"),
        ("identity", "Identity"),
    ]:
        assert_close(run_op(name, [x]), run_onnx(onnx_op, [x])[0])


def test_unary_type_errors():
    assert infer("exp", [(2, 3)]).shape == (2, 3)
    with pytest.raises(ShapeError, match="op exp .*input data has dtype int32, expected one of"):
        infer("exp", [(2, 3)], ["int32"])
    with pytest.raises(ShapeError, match="dtype float32, expected one of bool"):
        infer("logical_not", [(2, 3)])
    with pytest.raises(ShapeError, match="takes 1 input"):
        infer("exp", [(2, 3), (2, 3)])


BINARY = [
    ("add", "Add"),
    ("subtract", "Sub"),
    ("multiply", "Mul"),
    ("divide", "Div"),
    ("maximum", "Max"),
    ("minimum", "Min"),
    ("equal", "Equal"),
    ("less", "Less"),
    ("less_equal", "LessOrEqual"),
    ("greater", "Greater"),
    ("greater_equal", "GreaterOrEqual"),
]
SHAPE_PAIRS = [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((5,), (4, 1))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "int8", "uint8"])
@pytest.mark.parametrize("name,onnx_op", BINARY, ids=[b[0] for b in BINARY])
def test_binary_matches_onnxruntime(name, onnx_op, dtype):
    for sa, sb in SHAPE_PAIRS:
        if dtype.startswith(("int", "uint")):
            low = 0 if dtype == "uint8" else -10
            a, b = randint(sa, dtype, low, 10), randint(sb, dtype, low, 10)
            if name == "divide":
                b = np.where(b == 0, 3, b).astype(dtype)
        else:
            a, b = randn(sa, dtype), randn(sb, dtype)
        assert_close(run_op(name, [a, b]), run_onnx(onnx_op, [a, b])[0])


def test_integer_divide_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 0], "int32")
    b = np.array([2, 2, -2, -2, 5], "int32")
    np.testing.assert_array_equal(run_op("divide", [a, b]), [3, -3, -3, 3, 0])
    assert_close(run_op("divide", [a, b]), run_onnx("Div", [a, b])[0])


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
@pytest.mark.parametrize("fmod", [False, True])
def test_mod_integers(dtype, fmod):
    a = randint((4, 5), dtype, -20, 20)
    b = np.where((bb := randint((5,), dtype, -6, 6)) == 0, 4, bb).astype(dtype)
    assert_close(run_op("mod", [a, b], fmod=fmod), run_onnx("Mod", [a, b], fmod=int(fmod))[0])


def test_mod_floats():
    a, b = randn((3, 4)), randn((4,)) + 3
    assert_close(run_op("mod", [a, b], fmod=True), run_onnx("Mod", [a, b], fmod=1)[0])
    # fmod=False on floats takes the divisor's sign, like Python's %.
    np.testing.assert_allclose(run_op("mod", [np.float32([-7.5]), np.float32([2.0])]), [0.5])


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_power(dtype):
    if dtype == "float32":
        a, b = _positive((3, 4), dtype), randn((4,), dtype)
    else:
        a, b = randint((3, 4), dtype, -5, 5), randint((4,), dtype, 0, 4)
    assert_close(run_op("power", [a, b]), run_onnx("Pow", [a, b])[0], dtype)
    ints = np.array([2, -1, 1, -1, 3], "int32")
    np.testing.assert_array_equal(
        run_op("power", [ints, np.array([-1, -3, -2, -2, 0], "int32")]), [0, -1, 1, 1, 1]
    )


def test_logical_binary():
    a, b = rng().random((3, 4)) > 0.5, rng().random((4,)) > 0.5
    for name, onnx_op in [("logical_and", "And"), ("logical_or", "Or"), ("logical_xor", "Xor")]:
        assert_close(run_op(name, [a, b]), run_onnx(onnx_op, [a, b])[0])
    x, y = randint((3, 4), "int32", 0, 3), randint((4,), "int32", 0, 3)
    np.testing.assert_array_equal(run_op("not_equal", [x, y]), x != y)
    assert_close(run_op("equal", [a, b]), run_onnx("Equal", [a, b])[0])


def test_binary_type_rule_and_errors():
    t = infer("less", [(2, 1, 3), (4, 1)])
    assert t.shape == (2, 4, 3) and t.dtype == "bool"
    assert infer("add", [(3,), ()]).shape == (3,)
    with pytest.raises(ShapeError, match=r"shapes \(2, 3\) and \(4,\) do not broadcast: axis -1"):
        infer("add", [(2, 3), (4,)])
    with pytest.raises(ShapeError, match="input rhs has dtype int32 but lhs has float32"):
        infer("multiply", [(2, 3), (2, 3)], ["float32", "int32"])
    with pytest.raises(ShapeError, match="expected one of bool"):
        infer("logical_and", [(2,), (2,)])
    with pytest.raises(AttrError, match="fmod must be a bool"):
        infer("mod", [(2,), (2,)], fmod="yes")


def test_where():
    c = rng().random((3, 1, 4)) > 0.5
    for dtype in ("float32", "int8", "int64"):
        x, y = randint((2, 4), dtype, 0, 9), randint((1,), dtype, 0, 9)
        assert_close(run_op("where", [c, x, y]), run_onnx("Where", [c, x, y])[0])
    assert infer("where", [(3, 1, 4), (2, 4), (1,)], ["bool", "float32", "float32"]).shape == (
        3,
        2,
        4,
    )
    with pytest.raises(ShapeError, match="input condition has dtype float32, expected one of bool"):
        infer("where", [(2,), (2,), (2,)])
    with pytest.raises(ShapeError, match="input y has dtype int32 but x has float32"):
        infer("where", [(2,), (2,), (2,)], ["bool", "float32", "int32"])


@pytest.mark.parametrize(
    "src,dst",
    [
        ("float32", "int32"),
        ("float32", "float16"),
        ("int64", "float32"),
        ("float32", "bool"),
        ("int32", "int8"),
        ("bool", "float32"),
        ("float64", "uint8"),
    ],
)
def test_cast(src, dst):
    x = (randn((3, 4), "float64") * 10).astype(src) if src != "bool" else rng().random(5) > 0.5
    if dst == "uint8":
        x = np.abs(x)
    onnx_to = {"int32": 6, "float16": 10, "float32": 1, "bool": 9, "int8": 3, "uint8": 2}[dst]
    assert_close(run_op("cast", [x], dtype=dst), run_onnx("Cast", [x], to=onnx_to)[0])


def test_cast_attr_errors():
    assert m.CastAttrs(np.float32).dtype == "float32"
    with pytest.raises(AttrError, match="attribute dtype must be one of float32"):
        infer("cast", [(2,)], dtype="complex64")


@pytest.mark.parametrize("dtype", ["float32", "int8", "int32", "uint8"])
@pytest.mark.parametrize("bounds", [(-0.5, 0.7), (None, 3), (-2, None), (None, None), (5, 100)])
def test_clip(dtype, bounds):
    if dtype.startswith("float"):
        x = randn((4, 5), dtype, 4)
    else:
        x = randint((4, 5), dtype, 0 if dtype == "uint8" else -10, 10)
        # Integer bounds; uint8 bounds below 0 mean 0 (ember clamps them to the dtype range).
        bounds = tuple(
            None if v is None else max(round(v), 0 if dtype == "uint8" else -128) for v in bounds
        )
    consts = [None if v is None else np.array(v).astype(dtype) for v in bounds]
    want = run_onnx("Clip", [x], consts=consts, opset=13)[0]
    assert_close(run_op("clip", [x], a_min=bounds[0], a_max=bounds[1]), want)


def test_clip_int_bounds_outside_range_and_attr_errors():
    x = randint((6,), "int8", -128, 127)
    np.testing.assert_array_equal(run_op("clip", [x], a_min=-1000.0, a_max=1000.0), x)
    with pytest.raises(AttrError, match="attribute a_min must be a number"):
        infer("clip", [(2,)], a_min="low")
    with pytest.raises(AttrError, match="a_max must not be NaN"):
        infer("clip", [(2,)], a_max=float("nan"))


def test_dropout_is_identity():
    x = randn((3, 4))
    np.testing.assert_array_equal(run_op("nn.dropout", [x], rate=0.3), x)
    assert_close(run_op("nn.dropout", [x]), run_onnx("Dropout", [x], opset=13)[0])
    with pytest.raises(AttrError, match=r"rate must be in \[0, 1\)"):
        infer("nn.dropout", [(2,)], rate=1.0)


def test_float16_keeps_dtype_and_matches_onnxruntime():
    a, b = randn((3, 4), "float16"), randn((4,), "float16")
    for name, onnx_op in [("add", "Add"), ("multiply", "Mul"), ("divide", "Div")]:
        assert_close(run_op(name, [a, b]), run_onnx(onnx_op, [a, b])[0])
    for name, onnx_op in [("sigmoid", "Sigmoid"), ("exp", "Exp"), ("nn.relu", "Relu")]:
        assert_close(run_op(name, [a]), run_onnx(onnx_op, [a])[0])
