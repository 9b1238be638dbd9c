"""Small C helper functions the generated code calls, emitted only when used.

Keys are ``"kind:dtype"``: ``"floordiv:int32"``, ``"load:float32x8"``, ``"alloc"``.
"""

from __future__ import annotations

from ember.codegen.c_expr import C_TYPES, c_type, itemsize, padded_lanes
from ember.errors import BuildError
from ember.tir import expr as E


def vector_typedef(dtype: str, padded: int) -> str:
    """``typedef float float32x8 __attribute__((vector_size(32)));`` (lanes padded to 2^k)."""
    base = E.dtype_element(dtype)
    return (
        f"typedef {C_TYPES[base]} {c_type(dtype)} "
        f"__attribute__((vector_size({padded * itemsize(base)})));"
    )


def _scalar_helper(kind: str, dtype: str) -> str:
    t = C_TYPES[dtype]
    name = f"ember_{kind}_{dtype}"
    if kind == "min":
        return f"static inline {t} {name}({t} a, {t} b) {{ return a < b ? a : b; }}"
    if kind == "max":
        return f"static inline {t} {name}({t} a, {t} b) {{ return a > b ? a : b; }}"
    if kind == "floordiv":
        # C's / truncates toward zero; floor division rounds toward -infinity.
        return (
            f"static inline {t} {name}({t} a, {t} b) {{\n"
            f"  {t} q = a / b;\n"
            f"  return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q;\n}}"
        )
    if kind == "floormod":
        if E.is_float(dtype):
            fl = "floor" if dtype == "float64" else "floorf"
            return f"static inline {t} {name}({t} a, {t} b) {{ return a - {fl}(a / b) * b; }}"
        return (
            f"static inline {t} {name}({t} a, {t} b) {{\n"
            f"  {t} r = a % b;\n"
            f"  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n}}"
        )
    raise BuildError(f"internal: unknown helper {kind}:{dtype}")


def helper_source(key: str) -> str:
    """C source of one helper (see the module docstring for keys)."""
    if key == "alloc":
        return (
            "static void* ember_alloc(size_t nbytes) {\n"
            "  /* 64-byte aligned so vector loads of scratch never straddle cache lines */\n"
            "  void* p = aligned_alloc(64, (nbytes + 63) / 64 * 64 + 64);\n"
            "  if (!p) {\n"
            '    fprintf(stderr, "ember: out of memory (%zu bytes)\\n", nbytes);\n'
            "    abort();\n  }\n"
            "  return p;\n}"
        )
    kind, _, dtype = key.partition(":")
    lanes = E.dtype_lanes(dtype)
    if lanes == 1:
        return _scalar_helper(kind, dtype)
    vt = c_type(dtype)
    st = C_TYPES[E.dtype_element(dtype)]
    if kind == "broadcast":
        vals = ", ".join(["x"] * lanes)
        return (
            f"static inline {vt} ember_broadcast_{vt}({st} x) {{ {vt} r = {{{vals}}}; return r; }}"
        )
    if kind == "iota":
        vals = ", ".join(str(k) for k in range(lanes))
        return f"static inline {vt} ember_iota_{vt}(void) {{ {vt} r = {{{vals}}}; return r; }}"
    if kind == "load":
        # memcpy: no alignment assumed; compiles to one unaligned vector load.
        return (
            f"static inline {vt} ember_load_{vt}(const {st}* p) {{ {vt} r = {{0}}; "
            f"__builtin_memcpy(&r, p, {lanes} * sizeof({st})); return r; }}"
        )
    if kind in ("min", "max", "select"):
        # Bitwise blend on a mask (see ember.codegen.c_expr): a compare and a blend, no lanes.
        mt = c_type(f"int{itemsize(dtype) * 8}x{lanes}")
        blend = f"({vt})((({mt})a & m) | (({mt})b & ~m))"
        if kind == "select":
            head = f"static inline {vt} ember_select_{vt}({mt} m, {vt} a, {vt} b)"
            return f"{head} {{ return {blend}; }}"
        # min / max: the scalar helper's a < b ? a : b per lane over whole-vector operands,
        # which GCC turns into one vminps / vmaxps / vpminsd (a blend on a mask does not
        # fold into a memory operand: measured 1.8x slower in a 3x3 max pool).
        op = "<" if kind == "min" else ">"
        n = padded_lanes(lanes)
        return (
            f"static inline {vt} ember_{kind}_{vt}({vt} a, {vt} b) {{ {vt} r; "
            f"for (int l = 0; l < {n}; ++l) r[l] = a[l] {op} b[l] ? a[l] : b[l]; return r; }}"
        )
    if kind == "store":
        return (
            f"static inline void ember_store_{vt}({st}* p, {vt} v) {{ "
            f"__builtin_memcpy(p, &v, {lanes} * sizeof({st})); }}"
        )
    raise BuildError(f"internal: unknown helper {key}")
