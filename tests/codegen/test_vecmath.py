"""Vector math (ember/codegen/vecmath.py): float32 exp, log, log1p, sigmoid, tanh and erf
compiled through ``ember.build`` as a vectorized loop and as a scalar loop, on fresh
random inputs over many magnitudes and on edge inputs: within the documented ulp bounds
of a float64 reference, special values exact, and the vector and scalar forms equal bit
for bit. The full-range measurement (all 2^32 inputs) is benchmarks/vecmath_ulp.py."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper

import ember
from ember import te
from ember.codegen.c import codegen_c
from ember.codegen.dialect import C, CDialect
from ember.codegen.vecmath import VECMATH_FUNCTIONS
from ember.te.lower import lower
from ember.tir import expr as E
from ember.topi.schedule_x86 import schedule_outputs
from ember.topi.softmax import softmax_compute
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

PER_LANE = "for (int _l"  # the lane-by-lane form of a vector expression

# Documented maximum error in ulp over all float32 inputs (docs/codegen.md), with a
# little room above the measured maximum.
ULP_BOUND = {"exp": 1.5, "log": 1.0, "log1p": 2.5, "sigmoid": 2.5, "tanh": 1.5, "erf": 2.0}

_erf64 = np.vectorize(math.erf, otypes=[np.float64])
REFERENCE = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "erf": _erf64,
}

F32 = np.finfo(np.float32)
DENORMAL_MIN, DENORMAL_MAX = float(F32.smallest_subnormal), float(F32.tiny) * (1 - 2**-23)
EDGES = np.array(
    [0.0, -0.0, DENORMAL_MIN, DENORMAL_MAX, F32.tiny, F32.max, np.inf, np.nan, 1.0, -1.0]
    + [88.72283, 88.72284, 88.7229, 89.0, -87.33654, -103.27893, -103.97208, -104.0, -105.0]
    + [0.625, 0.62499994, 1.0, 0.99999994, 3.9375, 3.92, 9.0, 9.1, 20.0, 1e5, 0.5, 2.0]
    + [1.4142135, 0.70710677, 1e-8, 2.0**-24, 2.0**-25, -0.99999994, -1.5, 1e30, 1.17e-38],
    np.float32,
)
EDGES = np.concatenate([EDGES, -EDGES])
N = 12_003  # 8k + 3: the vector loop has a 3-lane tail


@pytest.fixture(scope="module")
def kernels():
    """One library: for each function a kernel whose loop is vectorized (8 lanes, with a
    3-lane tail) and one whose loop is not."""
    funcs = []
    for name in VECMATH_FUNCTIONS:
        for form in ("vector", "scalar"):
            funcs.append(_elementwise(name, "float32", 8 if form == "vector" else 0, N, form))
    return ember.build(funcs, target="host")


def _inputs(rng: np.random.Generator) -> np.ndarray:
    """Random magnitudes from 2^-140 to 2^127, both signs, random mantissas, then the
    edge inputs; N elements."""
    exponent = rng.uniform(-140, 127, 8000)
    sample = np.ldexp(rng.uniform(1, 2, exponent.size), exponent.astype(int))
    sample *= rng.choice([-1.0, 1.0], sample.size)
    dense = rng.uniform(-12, 12, N - sample.size - EDGES.size)  # not saturated there
    return np.concatenate([EDGES, sample.astype(np.float32), dense.astype(np.float32)])


def _ulp_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in units of the last place of ref's float32 binade (2^-149 below it)."""
    _, e = np.frexp(ref)
    ulp = np.ldexp(1.0, np.maximum(e, -125) - 24)
    return np.abs(y.astype(np.float64) - ref) / ulp


def _run(kernels, name: str, form: str, x: np.ndarray) -> np.ndarray:
    """The kernel on ``x`` (padded with ones to N elements)."""
    padded = np.ones(N, np.float32)
    padded[: x.size] = x
    out = np.zeros_like(padded)
    kernels[f"{name}_{form}"](padded, out)
    return out[: x.size]


@pytest.mark.parametrize("name", VECMATH_FUNCTIONS)
def test_within_ulp_bound_and_vector_equals_scalar(kernels, name):
    x = _inputs(np.random.default_rng())
    with np.errstate(all="ignore"):
        ref = REFERENCE[name](x.astype(np.float64))
    vec, sca = _run(kernels, name, "vector", x), _run(kernels, name, "scalar", x)
    for form, y in (("vector", vec), ("scalar", sca)):
        # Non-finite results exactly where float32(ref) is non-finite (NaN <-> NaN, inf).
        with np.errstate(over="ignore"):
            want = ref.astype(np.float32)
        finite = np.isfinite(want)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=f"{form} NaN")
        np.testing.assert_array_equal(y[~finite], want[~finite], err_msg=f"{form} inf")
        err = _ulp_error(y[finite], ref[finite])
        worst = int(np.argmax(err))
        assert err[worst] <= ULP_BOUND[name], (
            f"{name} {form}: {err[worst]:.2f} ulp at x={x[finite][worst]!r} "
            f"(got {y[finite][worst]!r}, want {ref[finite][worst]!r})"
        )
    same = (vec.view(np.uint32) == sca.view(np.uint32)) | (np.isnan(vec) & np.isnan(sca))
    assert same.all(), f"{name}: vector != scalar at x={x[~same][:4]}"


SPECIAL = {
    "exp": [(np.inf, np.inf), (-np.inf, 0.0), (0.0, 1.0), (-0.0, 1.0), (89.0, np.inf)]
    + [(-104.0, 0.0), (88.72284, np.inf), (-103.97208, DENORMAL_MIN), (DENORMAL_MIN, 1.0)],
    "log": [(0.0, -np.inf), (-0.0, -np.inf), (-1.0, np.nan), (-np.inf, np.nan), (1.0, 0.0)]
    + [(np.inf, np.inf), (DENORMAL_MIN, -103.27893), (-DENORMAL_MIN, np.nan)],
    "log1p": [(-1.0, -np.inf), (-1.5, np.nan), (-np.inf, np.nan), (np.inf, np.inf)]
    + [(0.0, 0.0), (-0.0, -0.0), (DENORMAL_MIN, DENORMAL_MIN), (-DENORMAL_MAX, -DENORMAL_MAX)],
    "sigmoid": [(np.inf, 1.0), (-np.inf, 0.0), (0.0, 0.5), (-0.0, 0.5), (200.0, 1.0)]
    + [(-200.0, 0.0), (-103.0, float(np.float32(math.exp(-103.0))))],
    "tanh": [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (10.0, 1.0)]
    + [(-10.0, -1.0), (DENORMAL_MIN, DENORMAL_MIN), (-DENORMAL_MIN, -DENORMAL_MIN)],
    "erf": [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (4.0, 1.0)]
    + [(-4.0, -1.0), (F32.max, 1.0), (-F32.max, -1.0)],
}


@pytest.mark.parametrize("name", VECMATH_FUNCTIONS)
def test_special_values_exact(kernels, name):
    pairs = SPECIAL[name] + [(np.nan, np.nan), (-np.nan, np.nan)]
    x = np.array([p[0] for p in pairs], np.float32)
    want = np.array([p[1] for p in pairs], np.float32)
    for form in ("vector", "scalar"):
        got = _run(kernels, name, form, x)
        # assert_array_equal treats NaN as equal to NaN and tells -0 from +0 below
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {form}")
        number = ~np.isnan(want)
        np.testing.assert_array_equal(
            np.signbit(got[number]), np.signbit(want[number]), err_msg=f"{name} {form} sign"
        )


def test_vector_loops_call_vector_helpers(kernels):
    src = kernels.get_source()
    for name in VECMATH_FUNCTIONS:
        assert f"ember_{name}_float32x8(ember_load_float32x8(" in src
        assert f"ember_{name}_float32x3(" in src  # the tail: a 3-lane vector
        assert f"out[i] = ember_{name}_float32(A[i]);" in src  # the scalar loop
    assert PER_LANE not in src
    for libm in ("expf(", "logf(", "log1pf(", "tanhf(", "erff("):
        assert libm not in src
    # Helpers another helper calls come first; each is defined once.
    assert src.index("ember_exp_float32x8(float32x8 x)") < src.index("ember_sigmoid_float32x8(")
    assert src.count("static inline float32x8 ember_exp_float32x8(") == 1


def _elementwise(name: str, dtype: str, lanes: int = 8, n: int = 64, suffix: str = ""):
    """``out[i] = name(A[i])``, its loop split by ``lanes`` and vectorized (0: a plain loop)."""
    A = te.placeholder((n,), dtype, name="A")
    out = te.compute((n,), lambda i: E.call_intrin(dtype, name, A[i]), name="out")
    s = te.create_schedule(out.op)
    if lanes:
        _, inner = s[out].split(out.op.axis[0], factor=lanes)
        s[out].vectorize(inner)
    return lower(s, [A, out], name=f"{name}_{suffix}" if suffix else f"k_{name}")


def test_float64_keeps_libm_and_float16_widens():
    src = codegen_c([_elementwise("exp", "float64", 4), _elementwise("tanh", "float16")]).source
    assert "ember_exp_" not in src and "ember_tanh_" not in src
    assert "exp(A[" in src and "tanhf((float)(A[" in src


class NoVectorMath(CDialect):
    vector_intrinsics = {}


def test_a_dialect_without_vector_math_gets_the_scalar_twin_per_lane():
    rng = np.random.default_rng()
    src = codegen_c([_elementwise("sigmoid", "float32")], dialect=NoVectorMath()).source
    assert PER_LANE in src and "ember_sigmoid_float32(" in src
    assert "float32x8 ember_sigmoid" not in src
    default = codegen_c([_elementwise("sigmoid", "float32")], dialect=C).source
    assert "ember_sigmoid_float32x8(" in default
    x = (rng.standard_normal(64) * 20).astype(np.float32)
    for func in (_elementwise("sigmoid", "float32"),):
        f = ember.build([func], target="host")
        out = np.zeros_like(x)
        f["k_sigmoid"](x, out)
        np.testing.assert_allclose(out, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=3e-7)


@pytest.mark.parametrize("cpu, lanes", [("skylake-avx512", 16), ("haswell", 8), ("x86-64", 4)])
def test_every_x86_width_compiles(cpu, lanes):
    """AVX-512 cannot run here: compile its code (16 lanes) and AVX2 / SSE2 widths."""
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no gcc")
    funcs = [_elementwise(name, "float32", lanes) for name in VECMATH_FUNCTIONS]
    src = codegen_c(funcs).source
    assert f"ember_erf_float32x{lanes}(" in src and PER_LANE not in src
    done = subprocess.run(
        [cc, f"-march={cpu}", "-O2", "-ffp-contract=fast", "-std=gnu11", "-Werror", "-c"]
        + ["-x", "c", "-", "-o", "/dev/null"],
        input=src,
        text=True,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_onnx_activations_match_reference_and_onnxruntime():
    """Sigmoid, Tanh, Erf, Softplus, Softmax and a GELU (erf form, as exported) compiled,
    against the reference executor and onnxruntime."""
    rng = np.random.default_rng()
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("Tanh", ["x"], ["t"]),
        helper.make_node("Erf", ["x"], ["e"]),
        helper.make_node("Softplus", ["x"], ["p"]),
        helper.make_node("Softmax", ["x"], ["m"], axis=1),
        helper.make_node("Div", ["x", "sqrt2"], ["xs"]),
        helper.make_node("Erf", ["xs"], ["erf_xs"]),
        helper.make_node("Add", ["erf_xs", "one"], ["erf1"]),
        helper.make_node("Mul", ["x", "erf1"], ["xe"]),
        helper.make_node("Mul", ["xe", "half"], ["g"]),
    ]
    consts = {
        "sqrt2": np.array(math.sqrt(2), np.float32),
        "one": np.array(1, np.float32),
        "half": np.array(0.5, np.float32),
    }
    shape = (2, 16, 5, 7)
    model = make_model(nodes, {"x": (shape, "float32")}, ["s", "t", "e", "p", "m", "g"], consts)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x.flat[:6] = [0.0, -0.0, 30.0, -30.0, 100.0, -100.0]
    oracle = run_onnxruntime(model, {"x": x})
    mod, params = ember.frontend.from_onnx(model, shape={"x": shape})
    reference = ember.graph.interpret(mod, params, {"x": x})
    compiled = ember.compile(mod, params).load().run({"x": x})
    for k, want in enumerate(oracle):
        # GELU's 1 + erf(x / sqrt 2) cancels for negative x: an absolute error of |x| ulp(1)
        atol = 1e-6 if k == 5 else 1e-7
        np.testing.assert_allclose(compiled[k], reference[k], rtol=2e-6, atol=atol)
        # onnxruntime's Sigmoid / Tanh (MLAS) are rational approximations accurate to
        # about 1e-7 absolute: a sigmoid of 3e-4 may differ from ours by 3e-4 relative.
        np.testing.assert_allclose(compiled[k], want, rtol=2e-6, atol=max(atol, 3e-7))


def _kernel_code(src: str) -> str:
    """A generated file's kernel code, after the helpers: the outlined parallel-loop
    bodies (thread pool) and the kernel function."""
    starts = [i for i in (src.find("struct "), src.find("static int32_t ")) if i >= 0]
    return src[min(starts) :]


@pytest.mark.parametrize("op", ["Sigmoid", "Softplus", "Elu"])
def test_blocked_activation_kernels_are_vector_code(op):
    """x * act(x) between two convolutions: a standalone kernel on NCHW8c data (SiLU when
    act is Sigmoid; the first conv's result is also a model output, so the activation
    does not fuse into its epilogue); its channel block is vectorized with the vector
    helpers."""
    rng = np.random.default_rng()
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node(op, ["c1"], ["a"]),
        helper.make_node("Mul", ["a", "c1"], ["m"]),
        helper.make_node("Conv", ["m", "w2"], ["y"]),
    ]
    weights = {
        "w1": rng.standard_normal((32, 16, 1, 1)).astype(np.float32) * 0.3,
        "w2": rng.standard_normal((16, 32, 1, 1)).astype(np.float32) * 0.3,
    }
    shape = (1, 16, 6, 6)
    model = make_model(nodes, {"x": (shape, "float32")}, ["y", "c1"], weights)
    x = rng.standard_normal(shape).astype(np.float32)
    mod, params = ember.frontend.from_onnx(model, shape={"x": shape})
    compiled = ember.compile(mod, params)
    got = compiled.load().run({"x": x})
    reference = ember.graph.interpret(mod, params, {"x": x})
    want = run_onnxruntime(model, {"x": x})
    for g, r, w in zip(got, reference, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    kernels = [src for n, src in compiled.sources.items() if "multiply" in n or "silu" in n]
    assert kernels
    for src in kernels:
        body = _kernel_code(src)
        assert "_float32x8(" in body and PER_LANE not in body
        assert not any(f"ember_{f}_float32(" in body for f in VECMATH_FUNCTIONS)


def test_softmax_sums_exp_as_vectors():
    A = te.placeholder((4, 50), "float32", name="A")
    out = softmax_compute(A, axis=-1)
    f = ember.build(schedule_outputs([out]), [A, out], target="host", name="softmax")
    body = _kernel_code(f.get_source())
    sums = [line for line in body.splitlines() if "softmax_partial_sum[" in line and "exp" in line]
    assert sums and all("ember_exp_float32x8(" in line for line in sums)
    # (a scalar exp is left only in the output stage's guarded tail: 50 = 6 * 8 + 2)
    x = (np.random.default_rng().standard_normal((4, 50)) * 10).astype(np.float32)
    y = np.zeros_like(x)
    f(x, y)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=2e-6, atol=1e-9)
