"""Vector math: float32 exp, log, log1p, sigmoid, tanh and erf as C over GCC vector types.

Each function is written once, here, as C text over a *flavor*: the vector flavor
(``float32x8`` with ``int32x8`` masks and bit patterns; any lane count, so the same text
serves SSE, AVX2, AVX-512 and NEON widths) and its scalar twin (``float``/``int32_t``).
Both run the same operations in the same order, so they compute bit-identical results:
a loop's vector body and its scalar tail agree, and a result does not depend on
whether its loop was vectorized. The helpers are emitted once per generated file, only
the ones a kernel uses, through the dialect's ``helpers`` table:

    vecmath_source(C, "exp", "float32x8")   # 'static inline float32x8 ember_exp_float32x8(...'
    vecmath_source(C, "exp", "float32")     # its scalar twin, ember_exp_float32

Algorithms (polynomial coefficients: Chebyshev-node least-squares fits in float64,
rounded to float32; ``benchmarks/vecmath_ulp.py`` measures the error over all 2^32
inputs, the table is in docs/codegen.md):

- exp: n = round(x / ln2) by the 1.5 * 2^23 rounding constant (no float -> int
  conversion), r = x - n * ln2 in two steps, exp(r) = 1 + r + r^2 * P4(r), scaled by
  2^n as two exact powers of two so underflow to denormals rounds once.
- log, log1p: x = 2^e * m with m in [sqrt(1/2), sqrt(2)) by integer arithmetic on the
  bits (denormals scaled by 2^23 first), log(m) = f - s * (f - T(s^2)) with f = m - 1,
  s = f / (2 + f); log1p adds the rounding error of 1 + x as (1 + x - u) / u.
- sigmoid: e = exp(-|x|), then 1 / (1 + e) or e / (1 + e) (no overflow, denormal
  results right).
- tanh: a + a^3 * P6(a^2) (a = |x|) below 0.625, else 1 - 2 / (exp(2|x|) + 1) with x's sign.
- erf: x + x * P6(x^2) below 1, else 1 - exp(P9(|x| - 2.5)) (P9 fits log(erfc)) with x's
  sign; |x| >= 3.9375 gives +-1.

Special values are exact: NaN -> NaN, exp(+-inf) = inf / 0, log(0) = -inf,
log(x < 0) = NaN, sigmoid(+-inf) = 1 / 0, tanh(+-inf) = erf(+-inf) = +-1, and -0 stays
-0 (tanh, erf, log1p). No division by zero, no integer overflow, no float -> int
conversion of a value out of range (each is undefined behaviour in C or traps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ember.codegen.syntax import padded_lanes
from ember.tir import expr as E

if TYPE_CHECKING:
    from ember.codegen.dialect import CDialect

VECMATH_FUNCTIONS = ("exp", "log", "log1p", "sigmoid", "tanh", "erf")
"""The intrinsics computed by these helpers (float32 scalars and vectors)."""

VECMATH_REQUIRES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"sigmoid": ("exp",), "tanh": ("exp",), "erf": ("exp",)}
)
"""Helpers whose definition calls another helper of the same dtype (emitted before it)."""


class _Flavor:
    """How the shared C text spells types, constants, selects and bit casts for one
    dtype: ``float32`` (scalars, masks are 0/1 ints) or ``float32xN`` (GCC vectors,
    masks are all-ones int32 lanes)."""

    def __init__(self, d: CDialect, dtype: str) -> None:
        self.lanes = E.dtype_lanes(dtype)
        self.T = d.ctype(dtype)
        self.I = d.ctype(f"int32x{self.lanes}" if self.lanes > 1 else "int32")
        self.name = {f: d.helper_name(f, dtype) for f in VECMATH_FUNCTIONS}

    @property
    def vector(self) -> bool:
        return self.lanes > 1

    def c(self, literal: str) -> str:
        """A float constant where a whole value is needed (a select's arm)."""
        if not self.vector:
            return literal
        return f"(({self.T}){{{', '.join([literal] * padded_lanes(self.lanes))}}})"

    def ic(self, literal: str) -> str:
        if not self.vector:
            return literal
        return f"(({self.I}){{{', '.join([literal] * padded_lanes(self.lanes))}}})"

    def sel(self, mask: str, a: str, b: str) -> str:
        """``mask ? a : b`` on floats, as a bitwise blend: C has no vector ``?:``, and a
        scalar ``?:`` may become a branch, across which GCC does not contract a * b + c
        into an fma -- the scalar twin would then round differently."""
        return self.flt(self.isel(mask, self.bits(a), self.bits(b)))

    def isel(self, mask: str, a: str, b: str) -> str:
        if not self.vector:  # a scalar comparison is 0 or 1: make it all ones or zero
            return f"((({a}) & -({mask})) | (({b}) & (({mask}) - 1)))"
        return f"((({a}) & ({mask})) | (({b}) & ~({mask})))"

    def bits(self, x: str) -> str:
        """The bit pattern of float ``x`` as int32 (a reinterpretation, not a conversion)."""
        if not self.vector:
            return f"((union {{ float f; int32_t i; }}){{ .f = ({x}) }}).i"
        return f"(({self.I})({x}))"

    def flt(self, i: str) -> str:
        """The float whose bit pattern is int32 ``i``."""
        if not self.vector:
            return f"((union {{ float f; int32_t i; }}){{ .i = ({i}) }}).f"
        return f"(({self.T})({i}))"

    def to_float(self, i: str) -> str:
        """Integer ``i`` converted to float (exact: |i| < 2^24 here)."""
        if not self.vector:
            return f"((float)({i}))"
        return f"__builtin_convertvector({i}, {self.T})"

    def mask(self) -> str:
        return "int" if not self.vector else self.I


def _horner(var: str, coefficients: tuple[str, ...]) -> str:
    """``c0 + var * (c1 + var * (... + var * cn))`` (coefficients from low to high)."""
    text = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        text = f"{c} + {var} * ({text})"
    return text


# exp(r) = 1 + r + r^2 * P(r) on |r| <= ln2 / 2.
_EXP_P = ("0x1p-1f", "0x1.5554dcp-3f", "0x1.5554eap-5f", "0x1.120b66p-7f", "0x1.6d431ap-10f")
# ln2 split so n * _LN2_HI is exact for |n| < 2^9 (its low 9 bits are zero).
_LN2_HI, _LN2_LO = "0x1.62e4p-1f", "0x1.7f7d1cp-20f"
# log(1 + f) = f - s * (f - z * T(z)), s = f / (2 + f), z = s^2 <= 0.0295.
_LOG_T = ("0x1.55555cp-1f", "0x1.997c1cp-2f", "0x1.2ee8d0p-2f")
# tanh(x) = x + x^3 * P(x^2) on |x| < 0.625.
_TANH_P = (
    "-0x1.555556p-2f",
    "0x1.111110p-3f",
    "-0x1.ba1a5ep-5f",
    "0x1.662790p-6f",
    "-0x1.20155cp-7f",
    "0x1.b18932p-9f",
    "-0x1.c4a91cp-11f",
)
TANH_SMALL = 0.625
# erf(x) = x + x * P(x^2) on |x| < 1 (P = erf(x) / x - 1: its rounding error is small).
_ERF_P = (
    "0x1.06eba8p-3f",
    "-0x1.81273ep-2f",
    "0x1.ce2d18p-4f",
    "-0x1.b7fb38p-6f",
    "0x1.541636p-8f",
    "-0x1.a46b40p-11f",
    "0x1.4a9dacp-14f",
)
# log(erfc(x)) = P(x - 2.5) on 1 <= x <= 3.9375; above it erf(x) rounds to 1.
_ERFC_LOG_P = (
    "-0x1.f3a2dcp+2f",
    "-0x1.569252p+2f",
    "-0x1.e34608p-1f",
    "-0x1.63cd26p-7f",
    "0x1.1bcbfep-9f",
    "-0x1.b914c0p-12f",
    "0x1.447a92p-14f",
    "-0x1.b4d0dcp-17f",
    "0x1.b39840p-20f",
    "-0x1.e1896ap-25f",
)
ERF_SMALL, ERF_SATURATED = 1.0, 3.9375


def _exp(v: _Flavor) -> str:
    T, In = v.T, v.I
    return f"""\
  /* below -104 exp rounds to +0, above 89 to +inf; a NaN becomes -104 here, restored last */
  {T} xc = {v.sel("x > -104.0f", "x", v.c("-104.0f"))};
  xc = {v.sel("xc < 89.0f", "xc", v.c("89.0f"))};
  /* k = 1.5 * 2^23 + round(x / ln2): the integer n sits in the low mantissa bits */
  {T} k = xc * 0x1.715476p+0f + 0x1.8p+23f;
  {T} n = k - 0x1.8p+23f;
  {In} ni = {v.bits("k")} - 0x4b400000;
  {T} r = xc - n * {_LN2_HI};
  r = r - n * {_LN2_LO};
  {T} p = {_horner("r", _EXP_P)};
  p = 1.0f + (r + (r * r) * p);
  /* 2^n as two powers of two (n in [-150, 128]): p * s1 is exact, one rounding at * s2 */
  {In} n1 = ni >> 1;
  {In} n2 = ni - n1;
  {T} y = (p * {v.flt("(n1 + 127) << 23")}) * {v.flt("(n2 + 127) << 23")};
  return {v.sel("x == x", "y", "x")};"""


def _log(v: _Flavor, plus_one: bool) -> str:
    T, In, M = v.T, v.I, v.mask()
    if plus_one:
        head = f"""\
  {T} u = 1.0f + x;
  /* u <= 0, +inf and NaN are answered below: reduce 1 instead (no integer overflow) */
  {T} xs = {v.sel("(u > 0.0f) & (u < INFINITY)", "u", v.c("1.0f"))};
  {In} scale = {v.ic("0")};"""
    else:
        head = f"""\
  /* denormals: scale by 2^23 first; x <= 0, +inf and NaN are answered below */
  {M} tiny = x < 0x1p-126f;
  {T} xs = {v.sel("tiny", "x * 0x1p23f", "x")};
  xs = {v.sel("(x > 0.0f) & (x < INFINITY)", "xs", v.c("1.0f"))};
  {In} scale = {v.isel("tiny", v.ic("23"), v.ic("0"))};"""
    if plus_one:
        # The rounding error of u = 1 + x, relative to u (exact where u >= 2 or u < 2).
        correction = f"""
  {T} c = {v.sel("e > 0", "1.0f - (u - x)", "x - (u - 1.0f)")} / xs;
  {T} y = ef * {_LN2_HI} + (f - (s * (f - t) - (ef * {_LN2_LO} + c)));
  y = {v.sel("x >= -1.0f", "y", v.c("NAN"))};
  y = {v.sel("x == -1.0f", v.c("(-INFINITY)"), "y")};
  y = {v.sel("x == INFINITY", "x", "y")};
  /* |x| < 2^-24: log1p(x) rounds to x (keeps -0 and denormals exact) */
  return {v.sel(f"{v.flt(v.bits('x') + ' & 0x7fffffff')} < 0x1p-24f", "x", "y")};"""
    else:
        correction = f"""
  {T} y = ef * {_LN2_HI} + (f - (s * (f - t) - ef * {_LN2_LO}));
  y = {v.sel("x >= 0.0f", "y", v.c("NAN"))};
  y = {v.sel("x == 0.0f", v.c("(-INFINITY)"), "y")};
  return {v.sel("x == INFINITY", "x", "y")};"""
    return f"""{head}
  /* xs = 2^e * m, m in [sqrt(1/2), sqrt(2)): offset the bits so the exponent field
     carries at sqrt(2), then put the mantissa back over sqrt(1/2)'s bits */
  {In} b = {v.bits("xs")} + (0x3f800000 - 0x3f3504f3);
  {In} e = ((b >> 23) - 127) - scale;
  {T} f = {v.flt("(b & 0x007fffff) + 0x3f3504f3")} - 1.0f;
  {T} ef = {v.to_float("e")};
  {T} s = f / (2.0f + f);
  {T} z = s * s;
  {T} t = z * ({_horner("z", _LOG_T)});{correction}"""


def _sigmoid(v: _Flavor) -> str:
    T = v.T
    return f"""\
  /* e = exp(-|x|) never overflows; sigmoid(-|x|) = e / (1 + e) keeps tiny results */
  {T} e = {v.name["exp"]}(-{v.flt(v.bits("x") + " & 0x7fffffff")});
  return {v.sel("x < 0.0f", "e", v.c("1.0f"))} / (1.0f + e);"""


def _tanh(v: _Flavor) -> str:
    T, In = v.T, v.I
    return f"""\
  {In} sign = {v.bits("x")} & INT32_MIN;
  {T} a = {v.flt(v.bits("x") + " & 0x7fffffff")};
  {T} z = a * a;
  {T} small = a + (a * z) * ({_horner("z", _TANH_P)});
  /* 1 - 2 / (e^2a + 1): e^2a = inf gives 1; NaN stays NaN */
  {T} big = 1.0f - 2.0f / ({v.name["exp"]}(2.0f * a) + 1.0f);
  {T} y = {v.sel(f"a < {TANH_SMALL}f", "small", "big")};
  return {v.flt(v.bits("y") + " | sign")};  /* x's sign: tanh(-0) = -0 */"""


def _erf(v: _Flavor) -> str:
    T, In = v.T, v.I
    return f"""\
  {In} sign = {v.bits("x")} & INT32_MIN;
  {T} a = {v.flt(v.bits("x") + " & 0x7fffffff")};
  {T} z = x * x;
  {T} small = x + x * ({_horner("z", _ERF_P)});
  /* erfc(a) = exp(P(a - 2.5)); from {ERF_SATURATED} on 1 - erfc rounds to 1 (NaN stays) */
  {T} t = {v.sel(f"a > {ERF_SATURATED}f", v.c(f"{ERF_SATURATED}f"), "a")} - 2.5f;
  {T} big = 1.0f - {v.name["exp"]}({_horner("t", _ERFC_LOG_P)});
  big = {v.flt(v.bits("big") + " | sign")};
  return {v.sel(f"a < {ERF_SMALL}f", "small", "big")};"""


_BODIES: dict[str, Callable[[_Flavor], str]] = {
    "exp": _exp,
    "log": lambda v: _log(v, plus_one=False),
    "log1p": lambda v: _log(v, plus_one=True),
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "erf": _erf,
}


def vecmath_source(d: CDialect, kind: str, dtype: str) -> str:
    """The C definition of helper ``kind`` (one of :data:`VECMATH_FUNCTIONS`) for
    ``float32`` or a ``float32xN`` vector; it uses the ``int32xN`` typedef of its width."""
    v = _Flavor(d, dtype)
    head = f"static inline {v.T} {v.name[kind]}({v.T} x)"
    return f"{head} {{\n{_BODIES[kind](v)}\n}}"
