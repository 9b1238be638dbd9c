"""Small C helper functions generated code calls: the ``helpers`` table of the C dialect.

An entry asks for a helper with ``ctx.helper(kind, dtype)``, which returns its name and
has its definition emitted once, before the kernels; definitions are sorted by their key
``"kind:dtype"`` (``"floordiv:int32"``, ``"load:float32x8"``, ``"alloc"``). A table entry
takes the dialect (for type names) and the dtype (``""`` for ``alloc``):

    C_HELPERS["min"](C, "float32")
    # 'static inline float ember_min_float32(float a, float b) { return a < b ? a : b; }'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ember.codegen.syntax import itemsize, padded_lanes
from ember.codegen.vecmath import VECMATH_FUNCTIONS, vecmath_source
from ember.tir import expr as E

if TYPE_CHECKING:
    from ember.codegen.dialect import CDialect

Helper = Callable[["CDialect", str], str]


def _alloc(d: CDialect, dtype: str) -> str:
    return (
        f"static void* {d.helper_name('alloc')}(size_t nbytes) {{\n"
        "  /* 64-byte aligned so vector loads of scratch never straddle cache lines */\n"
        "  void* p = aligned_alloc(64, (nbytes + 63) / 64 * 64 + 64);\n"
        "  if (!p) {\n"
        '    fprintf(stderr, "ember: out of memory (%zu bytes)\\n", nbytes);\n'
        "    abort();\n  }\n"
        "  return p;\n}"
    )


def _types(d: CDialect, dtype: str) -> tuple[str, str, int]:
    """(C type, C element type, lanes) of a helper's dtype."""
    return d.ctype(dtype), d.scalar_types[E.dtype_element(dtype)], E.dtype_lanes(dtype)


def _head(d: CDialect, kind: str, dtype: str, result: str, params: str) -> str:
    return f"static inline {result} {d.helper_name(kind, dtype)}({params})"


def _min_max(kind: str) -> Helper:
    op = "<" if kind == "min" else ">"

    def source(d: CDialect, dtype: str) -> str:
        t, st, lanes = _types(d, dtype)
        if lanes == 1:
            return f"{_head(d, kind, dtype, t, f'{t} a, {t} b')} {{ return a {op} b ? a : b; }}"
        # The scalar helper's a < b ? a : b per lane over whole-vector operands, which GCC
        # turns into one vminps / vmaxps / vpminsd (a blend on a mask does not fold into a
        # memory operand: measured 1.8x slower in a 3x3 max pool).
        n = padded_lanes(lanes)
        return (
            f"{_head(d, kind, dtype, t, f'{t} a, {t} b')} {{ {t} r; "
            f"for (int l = 0; l < {n}; ++l) r[l] = a[l] {op} b[l] ? a[l] : b[l]; return r; }}"
        )

    return source


def _floordiv(d: CDialect, dtype: str) -> str:
    t, _, _ = _types(d, dtype)
    # C's / truncates toward zero; floor division rounds toward -infinity.
    return (
        f"{_head(d, 'floordiv', dtype, t, f'{t} a, {t} b')} {{\n"
        f"  {t} q = a / b;\n"
        f"  return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q;\n}}"
    )


def _floormod(d: CDialect, dtype: str) -> str:
    t, _, _ = _types(d, dtype)
    head = _head(d, "floormod", dtype, t, f"{t} a, {t} b")
    if E.is_float(dtype):
        fl = "floor" if dtype == "float64" else "floorf"
        return f"{head} {{ return a - {fl}(a / b) * b; }}"
    # C's % takes the dividend's sign; floor modulo takes the divisor's.
    fix = "return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;"
    return f"{head} {{\n  {t} r = a % b;\n  {fix}\n}}"


def _broadcast(d: CDialect, dtype: str) -> str:
    vt, st, lanes = _types(d, dtype)
    vals = ", ".join(["x"] * lanes)
    return f"{_head(d, 'broadcast', dtype, vt, f'{st} x')} {{ {vt} r = {{{vals}}}; return r; }}"


def _iota(d: CDialect, dtype: str) -> str:
    vt, _, lanes = _types(d, dtype)
    vals = ", ".join(str(k) for k in range(lanes))
    return f"{_head(d, 'iota', dtype, vt, 'void')} {{ {vt} r = {{{vals}}}; return r; }}"


def _load(d: CDialect, dtype: str) -> str:
    vt, st, lanes = _types(d, dtype)
    # memcpy: no alignment assumed; compiles to one unaligned vector load.
    return (
        f"{_head(d, 'load', dtype, vt, f'const {st}* p')} {{ {vt} r = {{0}}; "
        f"__builtin_memcpy(&r, p, {lanes} * sizeof({st})); return r; }}"
    )


def _store(d: CDialect, dtype: str) -> str:
    vt, st, lanes = _types(d, dtype)
    return (
        f"{_head(d, 'store', dtype, 'void', f'{st}* p, {vt} v')} {{ "
        f"__builtin_memcpy(p, &v, {lanes} * sizeof({st})); }}"
    )


def _select(d: CDialect, dtype: str) -> str:
    vt, _, lanes = _types(d, dtype)
    # Bitwise blend on a mask (see ember.codegen.c_expr): a compare and a blend, no lanes.
    mt = d.ctype(f"int{itemsize(dtype) * 8}x{lanes}")
    blend = f"({vt})((({mt})a & m) | (({mt})b & ~m))"
    return f"{_head(d, 'select', dtype, vt, f'{mt} m, {vt} a, {vt} b')} {{ return {blend}; }}"


def _bfloat16_to_float32(d: CDialect, dtype: str) -> str:
    # bfloat16 is the upper half of a float32: widening is exact.
    return (
        f"static inline float {d.helper_name('bfloat16_to_float32')}(uint16_t h) {{\n"
        "  uint32_t u = (uint32_t)h << 16;\n"
        "  float f;\n"
        "  memcpy(&f, &u, sizeof f);\n"
        "  return f;\n}"
    )


def _float32_to_bfloat16(d: CDialect, dtype: str) -> str:
    # Round to nearest, ties to even (numpy/ml_dtypes, every framework); a NaN stays a NaN
    # (rounding its payload could carry into the exponent and make it an infinity).
    return (
        f"static inline uint16_t {d.helper_name('float32_to_bfloat16')}(float f) {{\n"
        "  uint32_t u;\n"
        "  memcpy(&u, &f, sizeof u);\n"
        "  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);\n"
        "  u += 0x7fffu + ((u >> 16) & 1u);\n"
        "  return (uint16_t)(u >> 16);\n}"
    )


def _vecmath(kind: str) -> Helper:
    def source(d: CDialect, dtype: str) -> str:
        return vecmath_source(d, kind, dtype)

    return source


C_HELPERS: Mapping[str, Helper] = MappingProxyType(
    {
        "alloc": _alloc,
        "bfloat16_to_float32": _bfloat16_to_float32,
        "float32_to_bfloat16": _float32_to_bfloat16,
        "min": _min_max("min"),
        "max": _min_max("max"),
        "floordiv": _floordiv,
        "floormod": _floormod,
        "broadcast": _broadcast,
        "iota": _iota,
        "load": _load,
        "store": _store,
        "select": _select,
    }
    # float32 exp, log, log1p, sigmoid, tanh, erf: scalar and vector twins (vecmath.py)
    | {kind: _vecmath(kind) for kind in VECMATH_FUNCTIONS}
)
"""Helper kind -> source(dialect, dtype) of its C definition."""
