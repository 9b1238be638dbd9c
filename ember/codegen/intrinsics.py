"""Intrinsic calls of loop IR and their C spelling per dtype.

A ``Call`` whose name is in :data:`C_INTRINSICS` is an elementwise math
intrinsic (its numpy meaning is ``ember.tir.evaluator.INTRINSICS``); any other
name except ``tir.address_of`` is an extern C function called as written.

    c_intrinsic("exp", "float32", ["x"])    # 'expf(x)'
    c_intrinsic("popcount", "int8", ["x"])  # '__builtin_popcount((uint8_t)(x))'
"""

from __future__ import annotations

from ember.errors import BuildError

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
    "fmod": ("fmodf", "fmod"),
    "fma": ("fmaf", "fma"),
}

C_INTRINSICS = frozenset(_MATH) | {"rsqrt", "sigmoid", "abs", "popcount", "isnan", "isinf"}


def is_elementwise_intrinsic(name: str) -> bool:
    """True for math intrinsics applied lane by lane (safe to vectorize)."""
    return name in C_INTRINSICS


def _unsigned_of(ctype: str) -> str:
    return ctype if ctype.startswith("u") else "u" + ctype


def c_intrinsic(name: str, dtype: str, args: list[str], ctype: str | None = None) -> str:
    """C source for a scalar intrinsic call on C expressions ``args`` of scalar ``dtype``.

    ``ctype`` is the C type of ``dtype`` (``int8_t``...), needed for integer intrinsics.
    """
    is_f64 = dtype == "float64"
    is_float = dtype.startswith("float")
    if name in _MATH:
        if not is_float:
            raise BuildError(
                f"intrinsic {name!r} needs a float argument, got {dtype}",
                hint="cast the argument to float32 first",
            )
        fn = _MATH[name][1 if is_f64 else 0]
        if dtype == "float16":
            return f"(_Float16){fn}({', '.join(f'(float)({a})' for a in args)})"
        return f"{fn}({', '.join(args)})"
    (x, *_rest) = args
    if name == "rsqrt":
        return f"(1.0 / sqrt({x}))" if is_f64 else f"(({ctype})(1.0f / sqrtf((float)({x}))))"
    if name == "sigmoid":
        if is_f64:
            return f"(1.0 / (1.0 + exp(-({x}))))"
        return f"(({ctype})(1.0f / (1.0f + expf(-(float)({x})))))"
    if name == "abs":
        if is_float:
            return f"fabs({x})" if is_f64 else f"(({ctype})fabsf((float)({x})))"
        return f"(({ctype})(({x}) < 0 ? -({x}) : ({x})))"
    if name == "popcount":
        if is_float:
            raise BuildError(f"popcount needs an integer argument, got {dtype}")
        u = _unsigned_of(ctype or "int32_t")
        builtin = "__builtin_popcountll" if "64" in u else "__builtin_popcount"
        return f"(({ctype}){builtin}(({u})({x})))"
    if name == "isnan":
        return f"isnan({x})"
    if name == "isinf":
        return f"isinf({x})"
    raise BuildError(f"unknown intrinsic {name!r}")
