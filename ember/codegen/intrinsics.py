"""Math intrinsics of loop IR and their C spelling: the ``intrinsics`` table of the C dialect.

A ``Call`` whose name is a key of the dialect's ``intrinsics`` is an elementwise math
intrinsic: pure, so a vector select may compute it in lanes it does not take (its numpy
meaning is ``ember.tir.evaluator.INTRINSICS``). Any other name except ``tir.address_of``
is an extern C function, called as written. An entry takes the render context, the
scalar ``Call`` and its rendered arguments:

    C_INTRINSICS["exp"](ctx, Call("float32", "exp", (x,)), "x")      # 'expf(x)'
    C_INTRINSICS["popcount"](ctx, Call("int8", "popcount", (x,)), "x")
    # '((int8_t)__builtin_popcount((uint8_t)(x)))'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ember.codegen.syntax import Context, Entry
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


C_INTRINSICS: Mapping[str, Entry] = MappingProxyType(
    {name: libm(f32, f64) for name, (f32, f64) in _MATH.items()}
    | {
        "rsqrt": _rsqrt,
        "sigmoid": _sigmoid,
        "abs": _abs,
        "popcount": _popcount,
        "isnan": lambda ctx, call, x: f"isnan({x})",
        "isinf": lambda ctx, call, x: f"isinf({x})",
    }
)
"""Intrinsic name -> entry(ctx, call, *args) for C (<math.h> and GCC builtins)."""
