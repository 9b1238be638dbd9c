"""Math intrinsics of loop IR and their C spelling: the ``intrinsics`` table of the C dialect.

A ``Call`` whose name is a key of the dialect's ``intrinsics`` is an elementwise math
intrinsic: pure, so a vector select may compute it in lanes it does not take (its numpy
meaning is ``ember.tir.evaluator.INTRINSICS``). Any other name except ``tir.address_of``
is an extern C function, called as written. An entry takes the render context, the
scalar ``Call`` and its rendered arguments:

    C_INTRINSICS["exp"](ctx, Call("float32", "exp", (x,)), "x")      # 'ember_exp_float32(x)'
    C_INTRINSICS["exp"](ctx, Call("float64", "exp", (x,)), "x")      # 'exp(x)'
    C_INTRINSICS["popcount"](ctx, Call("int8", "popcount", (x,)), "x")
    # '((int8_t)__builtin_popcount((uint8_t)(x)))'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ember.codegen.syntax import Context, Entry
from ember.codegen.vecmath import VECMATH_FUNCTIONS
from ember.errors import BuildError
from ember.tir import expr as E

# name -> (float32 spelling, float64 spelling); float16 computes in float32 and converts back.
_MATH: dict[str, tuple[str, str]] = {
    "exp": ("expf", "exp"),
    "exp2": ("exp2f", "exp2"),
    "log": ("logf", "log"),
    "log2": ("log2f", "log2"),
    "log10": ("log10f", "log10"),
    "log1p": ("log1pf", "log1p"),
    "sqrt": ("sqrtf", "sqrt"),
    "tanh": ("tanhf", "tanh"),
    "erf": ("erff", "erf"),
    "pow": ("powf", "pow"),
    "fabs": ("fabsf", "fabs"),
    "floor": ("floorf", "floor"),
    "ceil": ("ceilf", "ceil"),
    "round": ("nearbyintf", "nearbyint"),  # half to even, as numpy's rint
    "trunc": ("truncf", "trunc"),
    "sin": ("sinf", "sin"),
    "cos": ("cosf", "cos"),
    "tan": ("tanf", "tan"),
    "atan": ("atanf", "atan"),
    "asin": ("asinf", "asin"),
    "acos": ("acosf", "acos"),
    "asinh": ("asinhf", "asinh"),
    "acosh": ("acoshf", "acosh"),
    "atanh": ("atanhf", "atanh"),
    "fmod": ("fmodf", "fmod"),
    "fma": ("fmaf", "fma"),
}


def libm(float32_name: str, float64_name: str) -> Entry:
    """The entry of a <math.h> function: ``libm("expf", "exp")`` spells float32 ``exp``
    as ``expf(x)``, float64 as ``exp(x)`` and float16 as ``(_Float16)expf((float)(x))``."""

    def render(ctx: Context, call: E.Call, *args: str) -> str:
        dtype = E.dtype_element(call.dtype)
        if not E.is_float(dtype):
            raise BuildError(
                f"intrinsic {call.name!r} needs a float argument, got {dtype}",
                hint="cast the argument to float32 first",
            )
        if dtype == "float16":
            widened = ", ".join(f"(float)({a})" for a in args)
            return f"({ctx.ctype(dtype)}){float32_name}({widened})"
        return f"{float64_name if dtype == 'float64' else float32_name}({', '.join(args)})"

    render.__qualname__ = f"libm({float32_name!r}, {float64_name!r})"
    return render


def _rsqrt(ctx: Context, call: E.Call, x: str) -> str:
    if call.dtype == "float64":
        return f"(1.0 / sqrt({x}))"
    return f"(({ctx.ctype(call.dtype)})(1.0f / sqrtf((float)({x}))))"


def _sigmoid(ctx: Context, call: E.Call, x: str) -> str:
    if call.dtype == "float64":
        return f"(1.0 / (1.0 + exp(-({x}))))"
    return f"(({ctx.ctype(call.dtype)})(1.0f / (1.0f + expf(-(float)({x})))))"


def vecmath(name: str, otherwise: Entry) -> Entry:
    """float32 ``name`` as ember's own helper (``ember_exp_float32(x)``, the scalar twin of
    the vector form, see :mod:`ember.codegen.vecmath`); other dtypes as ``otherwise``."""

    def render(ctx: Context, call: E.Call, *args: str) -> str | None:
        if call.dtype != "float32":
            return otherwise(ctx, call, *args)
        return f"{ctx.helper(name, 'float32')}({', '.join(args)})"

    render.__qualname__ = f"vecmath({name!r})"
    return render


def vector_vecmath(name: str) -> Entry:
    """A float32 vector ``name`` as ember's vector helper (``ember_exp_float32x8(x)``);
    declines other dtypes (computed lane by lane, each lane by the scalar entry)."""

    def render(ctx: Context, call: E.Call, *args: str) -> str | None:
        if E.dtype_element(call.dtype) != "float32":
            return None
        ctx.ctype(f"int32x{E.dtype_lanes(call.dtype)}")  # the helper's masks and bits
        return f"{ctx.helper(name, call.dtype)}({', '.join(args)})"

    render.__qualname__ = f"vector_vecmath({name!r})"
    return render


def _abs(ctx: Context, call: E.Call, x: str) -> str:
    ctype = ctx.ctype(call.dtype)
    if call.dtype == "float64":
        return f"fabs({x})"
    if E.is_float(call.dtype):
        return f"(({ctype})fabsf((float)({x})))"
    return f"(({ctype})(({x}) < 0 ? -({x}) : ({x})))"


def _popcount(ctx: Context, call: E.Call, x: str) -> str:
    if E.is_float(call.dtype):
        raise BuildError(f"popcount needs an integer argument, got {call.dtype}")
    ctype = ctx.ctype(call.dtype)
    # Count the bits of the two's complement pattern: convert to unsigned first.
    unsigned = ctype if ctype.startswith("u") else "u" + ctype
    builtin = "__builtin_popcountll" if "64" in unsigned else "__builtin_popcount"
    return f"(({ctype}){builtin}(({unsigned})({x})))"


LIBM_INTRINSICS: Mapping[str, Entry] = MappingProxyType(
    {name: libm(f32, f64) for name, (f32, f64) in _MATH.items()} | {"sigmoid": _sigmoid}
)
"""The <math.h> spelling of the math intrinsics for every float dtype (float32 ``expf``):
what a dialect overrides ``intrinsics`` with to use libm instead of ember's helpers."""

C_INTRINSICS: Mapping[str, Entry] = MappingProxyType(
    dict(LIBM_INTRINSICS)
    # float32 exp, log, log1p, sigmoid, tanh, erf: ember's helpers; float64 and float16 libm
    | {name: vecmath(name, LIBM_INTRINSICS[name]) for name in VECMATH_FUNCTIONS}
    | {
        "rsqrt": _rsqrt,
        "abs": _abs,
        "popcount": _popcount,
        "isnan": lambda ctx, call, x: f"isnan({x})",
        "isinf": lambda ctx, call, x: f"isinf({x})",
    }
)
"""Intrinsic name -> entry(ctx, call, *args) for C (<math.h>, GCC builtins, vecmath)."""

C_VECTOR_INTRINSICS: Mapping[str, Entry] = MappingProxyType(
    {name: vector_vecmath(name) for name in VECMATH_FUNCTIONS}
)
"""Intrinsics computed on whole float32 vectors (the vector twins of the scalar helpers)."""
