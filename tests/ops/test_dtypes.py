"""bfloat16, uint16 and uint64: references and compiled kernels.

bfloat16 is carried through numpy with ml_dtypes; compiled kernels compute it in
float32 and round each op's result to bfloat16 (round-to-nearest-even, NaN stays NaN),
which is what the references do, so results agree to one rounding. Unsigned integers
are bit-exact, including uint64 values past 2**63 (sums accumulate in uint64).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

import ember
from ember.graph.ir import Function, Module, Tuple, Var
from ember.graph.ir import TensorType as T
from ember.ops import call

BF16 = ml_dtypes.bfloat16


def _compile_and_run(mod: Module, feeds: dict[str, np.ndarray]) -> tuple[list, list]:
    reference = ember.graph.interpret(mod, {}, feeds)
    compiled = ember.compile(mod, {}).load().run(feeds)
    return reference, compiled


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint16)


def test_bfloat16_rounding_is_nearest_even_and_keeps_nan() -> None:
    """float32 -> bfloat16 in a compiled kernel is bit-exact with ml_dtypes: ties to even,
    overflow to inf, subnormals, signed zeros; NaN stays NaN."""
    special = np.array(
        [
            1.00390625,  # halfway between 1 and 1 + 2**-7: to even (1)
            1.01171875,  # halfway, odd below: up
            -1.00390625,
            3.3961776e38,  # rounds past the largest bfloat16: inf
            np.finfo(np.float32).max,
            np.finfo(np.float32).tiny / 3,  # subnormal
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            -np.nan,
        ],
        np.float32,
    )
    rng = np.random.default_rng()
    bits = rng.integers(0, 2**32, 4096, dtype=np.uint64).astype(np.uint32)
    values = np.concatenate([special, bits.view(np.float32)])
    x = Var("x", T(values.shape, "float32"))
    mod = Module.from_function(Function([x], call("cast", x, dtype="bfloat16")))
    (reference,), (compiled,) = _compile_and_run(mod, {"x": values})
    with np.errstate(over="ignore", invalid="ignore"):
        want = values.astype(BF16)
    nan = np.isnan(values)
    assert np.isnan(compiled[nan].astype(np.float32)).all()
    assert np.array_equal(_bits(compiled[~nan]), _bits(want[~nan]))
    assert np.array_equal(_bits(reference[~nan]), _bits(want[~nan]))


def test_bfloat16_ops_compute_in_float32() -> None:
    """A bfloat16 model: elementwise ops, matmul, softmax, a long sum and a max: the
    reference and the compiled kernels both agree with the float32 computation to a few
    bfloat16 roundings (one per op; a 256-term sum rounded once, not 256 times)."""
    rng = np.random.default_rng()
    x = Var("x", T((8, 256), "bfloat16"))
    w = Var("w", T((256, 16), "bfloat16"))
    hidden = call("nn.matmul", call("nn.gelu", call("multiply", x, x)), w)
    probs = call("nn.softmax", hidden, axis=-1)
    total = call("reduce_sum", call("exp", x), axes=(1,))
    peak = call("reduce_max", x, axes=(1,))
    mod = Module.from_function(Function([x, w], Tuple([probs, total, peak])))
    feeds = {
        "x": rng.standard_normal((8, 256)).astype(BF16),
        "w": (rng.standard_normal((256, 16)) * 0.1).astype(BF16),
    }
    reference, compiled = _compile_and_run(mod, feeds)
    x32, w32 = (feeds[n].astype(np.float32) for n in ("x", "w"))
    g = x32 * x32
    g = 0.5 * g * (1 + np.vectorize(math.erf)(g / np.sqrt(2)))
    h = g @ w32
    e = np.exp(h - h.max(-1, keepdims=True))
    float32 = [e / e.sum(-1, keepdims=True), np.exp(x32).sum(1), x32.max(1)]
    for k, want in enumerate(float32):
        for path, got in (("reference", reference[k]), ("compiled", compiled[k])):
            assert got.dtype == BF16, path
            np.testing.assert_allclose(
                got.astype(np.float32), want, rtol=3e-2, atol=1e-2, err_msg=f"{path} {k}"
            )


def test_unsigned_16_and_64_bit_are_exact() -> None:
    rng = np.random.default_rng()
    u16 = Var("a", T((64,), "uint16"))
    u16b = Var("b", T((64,), "uint16"))
    u64 = Var("c", T((64,), "uint64"))
    u64b = Var("d", T((64,), "uint64"))
    outputs = [
        call("add", u16, u16b),  # wraps at 2**16
        call("multiply", u16, u16b),
        call("divide", u16, u16b),  # b may be 0: the reference defines x / 0 = 0
        call("mod", u16, u16b),
        call("less", u16, u16b),
        call("add", u64, u64b),  # wraps at 2**64
        call("subtract", u64, u64b),
        call("divide", u64, u64b),
        call("maximum", u64, u64b),
        call("greater_equal", u64, u64b),
        call("reduce_sum", u64, axes=(0,)),  # accumulates in uint64, not int64
        call("cast", u64, dtype="float64"),
        call("cast", u16, dtype="uint64"),
    ]
    mod = Module.from_function(Function([u16, u16b, u64, u64b], Tuple(outputs)))
    feeds = {
        "a": rng.integers(0, 2**16, 64).astype(np.uint16),
        "b": rng.integers(0, 8, 64).astype(np.uint16),
        "c": rng.integers(2**63, 2**64, 64, dtype=np.uint64),
        "d": rng.integers(0, 2**64, 64, dtype=np.uint64),
    }
    reference, compiled = _compile_and_run(mod, feeds)
    a, b, c, d = (feeds[n] for n in "abcd")
    with np.errstate(all="ignore"):
        safe_b, safe_d = np.where(b == 0, 1, b), np.where(d == 0, 1, d)
        numpy = [
            a + b,
            a * b,
            np.where(b == 0, 0, a // safe_b).astype(np.uint16),
            np.where(b == 0, 0, a % safe_b).astype(np.uint16),
            a < b,
            c + d,
            c - d,
            np.where(d == 0, 0, c // safe_d).astype(np.uint64),
            np.maximum(c, d),
            c >= d,
            c.sum(dtype=np.uint64, keepdims=False),
            c.astype(np.float64),
            a.astype(np.uint64),
        ]
    for k, want in enumerate(numpy):
        for path, got in (("reference", reference[k]), ("compiled", compiled[k])):
            assert got.dtype == np.asarray(want).dtype, f"{path} {k}"
            assert np.array_equal(got, want), f"{path} output {k}"
