"""Vector min / max / select / comparisons in the C backend: emitted as vector code (no
lane-by-lane loop), and equal to numpy on fresh random inputs, for float and integer
dtypes, vector bodies with scalar tails, and NaN operands."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import te
from ember.tir import expr as E

PER_LANE = "for (int _l"  # the lane-by-lane form: CDialect.per_lane (ember.codegen.dialect)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng()  # fresh inputs every run


def _vectorized(shape, fcompute, dtypes, out_dtype, factor=8, name="k"):
    """One elementwise stage over ``shape`` (2-D), inner axis split by ``factor`` and
    vectorized; inputs ``A``, ``B``, ... of ``dtypes``."""
    ins = [te.placeholder(shape, d, name=chr(ord("A") + k)) for k, d in enumerate(dtypes)]
    out = te.compute(shape, lambda i, j: fcompute(*(t[i, j] for t in ins)), name="out")
    assert out.dtype == out_dtype
    s = te.create_schedule(out.op)
    _, inner = s[out].split(out.op.axis[1], factor=factor)
    s[out].vectorize(inner)
    f = ember.build(s, [*ins, out], target="host", name=name)
    return f, f.get_source()


def _random(shape, dtype, rng):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)


def _run(f, shape, dtypes, out_dtype, rng):
    ins = [_random(shape, d, rng) for d in dtypes]
    out = np.zeros(shape, out_dtype)
    f(*ins, out)
    return ins, out


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "int32", "int8", "uint8", "int64", "uint16"]
)
def test_min_max_are_vector_code(dtype, rng):
    shape = (3, 32)
    f, src = _vectorized(shape, lambda a, b: E.max_(E.min_(a, b), b - a), [dtype] * 2, dtype)
    assert PER_LANE not in src
    assert "ember_max_" in src and "ember_min_" in src
    (a, b), out = _run(f, shape, [dtype] * 2, dtype, rng)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, np.maximum(np.minimum(a, b), (b - a).astype(dtype)))


def test_relu_clip_epilogue_is_vector_code(rng):
    shape = (4, 24)
    f, src = _vectorized(shape, lambda a: E.min_(E.max_(a, 0.0), 6.0), ["float32"], "float32")
    assert PER_LANE not in src
    (a,), out = _run(f, shape, ["float32"], "float32", rng)
    np.testing.assert_array_equal(out, np.clip(a * 1, 0.0, 6.0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8"])
def test_select_on_a_comparison_blends(dtype, rng):
    shape = (2, 16)
    f, src = _vectorized(
        shape, lambda a, b: te.if_then_else(a > b, a - b, b), [dtype] * 2, dtype, name="sel"
    )
    assert PER_LANE not in src and "ember_select_" in src
    (a, b), out = _run(f, shape, [dtype] * 2, dtype, rng)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, np.where(a > b, (a - b).astype(dtype), b))


def test_select_with_a_mask_of_another_width_and_logic(rng):
    # int64 comparisons (8-byte lanes) and a float32 one, combined, choosing float32 values.
    shape = (2, 8)
    dtypes = ["int64", "float32", "float32"]

    def fcompute(n, a, b):
        cond = te.any(te.all(n > 0, a < b), E.Not(n < -50))
        return te.if_then_else(cond, a, b * 2.0)

    f, src = _vectorized(shape, fcompute, dtypes, "float32", name="mix")
    assert PER_LANE not in src and "__builtin_convertvector" in src
    (n, a, b), out = _run(f, shape, dtypes, "float32", rng)
    cond = ((n > 0) & (a < b)) | ~(n < -50)
    np.testing.assert_array_equal(out, np.where(cond, a, b * 2))


def test_comparison_stored_as_bool_and_cast(rng):
    shape = (2, 16)
    f, src = _vectorized(shape, lambda a, b: a <= b, ["float32"] * 2, "bool", name="le")
    assert PER_LANE not in src
    (a, b), out = _run(f, shape, ["float32"] * 2, "bool", rng)
    np.testing.assert_array_equal(out, a <= b)


def test_lane_uniform_condition_picks_whole_vectors(rng):
    A = te.placeholder((6, 16), "float32", name="A")
    out = te.compute(
        (6, 16), lambda i, j: te.if_then_else((i % 3).equal(0), A[i, j], -A[i, j]), name="out"
    )
    s = te.create_schedule(out.op)
    _, inner = s[out].split(out.op.axis[1], factor=8)
    s[out].vectorize(inner)
    f = ember.build(s, [A, out], target="host", name="rows")
    src = f.get_source()
    assert PER_LANE not in src and "ember_select_" not in src
    assert " ? ember_load_float32x8(" in src
    a = rng.standard_normal((6, 16)).astype("float32")
    o = np.zeros_like(a)
    f(a, o)
    np.testing.assert_array_equal(o, np.where((np.arange(6) % 3 == 0)[:, None], a, -a))


def test_integer_division_in_a_branch_stays_per_lane(rng):
    # b may be 0 where the select does not take a // b: the division must not run there.
    shape = (2, 16)
    f, src = _vectorized(
        shape,
        lambda a, b: te.if_then_else(b.not_equal(0), E.FloorDiv(a, b), a),
        ["int32"] * 2,
        "int32",
        name="guarded_div",
    )
    assert PER_LANE in src
    a = rng.integers(-50, 50, shape).astype("int32")
    b = rng.integers(-2, 3, shape).astype("int32")
    b[0, :4] = 0
    out = np.zeros(shape, "int32")
    f(a, b, out)
    safe = np.where(b != 0, b, 1)
    np.testing.assert_array_equal(out, np.where(b != 0, a // safe, a))


def test_nan_semantics_match_between_vector_body_and_scalar_tail():
    # 13 columns split by 8: lanes 0-7 run as a vector, 8-12 as the scalar tail. min/max
    # follow a < b ? a : b (x86 minps/maxps, onnxruntime's MLAS): a NaN in the second
    # operand propagates, a NaN in the first yields the second operand.
    shape = (2, 13)
    f, src = _vectorized(
        shape, lambda a, b: E.max_(a, b) + E.min_(a, b) * 0.0, ["float32"] * 2, "float32"
    )
    a = np.zeros(shape, np.float32)
    b = np.ones(shape, np.float32)
    a[0, [1, 9]] = np.nan  # first operand NaN: vector lane 1, tail lane 9
    b[1, [2, 11]] = np.nan  # second operand NaN
    out = np.zeros(shape, np.float32)
    f(a, b, out)
    want = np.where(a > b, a, b) + np.where(a < b, a, b) * 0.0
    np.testing.assert_array_equal(out, want)
    assert np.isnan(out[1, [2, 11]]).all() and out[0, 1] == out[0, 9] == 1.0
