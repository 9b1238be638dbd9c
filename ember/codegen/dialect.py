"""Dialects: the tables C code generation renders from.

A dialect holds every spelling the C code generator uses: C types and literals, one
entry per operator (by IR node type), per intrinsic (by name), per loop kind, per
statement and per helper function, and the header and ABI wrapper around each kernel.
The printers in :mod:`ember.codegen.c_expr` and :mod:`ember.codegen.c` walk the loop
IR, decide (what is vector code, what needs a mask, which loop is the outer parallel
one) and ask the dialect how to spell each piece. :class:`CDialect` is C99 with
GCC/Clang vector extensions and OpenMP; another dialect (NEON or AVX intrinsics, CUDA C)
subclasses it and overrides a few entries:

    class StaticSchedule(CDialect):
        loop_pragmas = CDialect.loop_pragmas | {ForKind.PARALLEL: "#pragma omp parallel for"}

    class NeonLoads(CDialect):
        def vector_load(self, ctx, e, buf, base):
            return f"vld1q_f32(&{buf}[{base}])"

    codegen_c(funcs, dialect=NeonLoads())

Entries come in three shapes (see :mod:`ember.codegen.syntax` for the vocabulary):

- tables keyed by IR node type, intrinsic name, loop kind or helper kind: ``ops``,
  ``vector_ops``, ``mask_ops``, ``intrinsics``, ``loop_pragmas``, ``helpers``,
  ``scalar_types``. Their values are ``entry(ctx, node, *rendered_operands)``;
  :class:`Infix` and :class:`Prefix` are the C operators among them.
- methods for the structural pieces (loads, stores, broadcast, casts, select, loops,
  scratch allocation, the function wrapper), taking the render context and text.
- plain strings and numbers (pragmas, the stack scratch limit).

An entry returns a ``str`` (an atom), a :class:`CExpr` (text with its precedence), or
``None`` to decline where a generic form exists (vector entries: the vector is then
computed lane by lane, and nothing the declined rendering recorded stays).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import ml_dtypes
import numpy as np

from ember.codegen.c_helpers import C_HELPERS, Helper
from ember.codegen.intrinsics import C_INTRINSICS, C_VECTOR_INTRINSICS
from ember.codegen.syntax import (
    ADDITIVE,
    EQUALITY,
    MULTIPLICATIVE,
    TERNARY,
    UNARY,
    CExpr,
    Context,
    Entry,
    Infix,
    Prefix,
    as_cexpr,
    call_helper,
    itemsize,
    padded_lanes,
)
from ember.codegen.thread_pool import POOL_DECLARATIONS, POOL_SOURCE, SET_NUM_THREADS
from ember.codegen.vecmath import VECMATH_REQUIRES
from ember.errors import BuildError
from ember.target import Target
from ember.tir import expr as E
from ember.tir.stmt import ForKind

# C operators by IR node (C's precedence table): shared by scalars, vectors and masks.
_C_OPERATORS: dict[type, Infix] = {
    E.Mul: Infix("*", MULTIPLICATIVE),
    E.Div: Infix("/", MULTIPLICATIVE),
    E.Add: Infix("+", ADDITIVE),
    E.Sub: Infix("-", ADDITIVE),
    E.ShiftLeft: Infix("<<", 11),
    E.ShiftRight: Infix(">>", 11),
    E.LT: Infix("<", 10),
    E.LE: Infix("<=", 10),
    E.GT: Infix(">", 10),
    E.GE: Infix(">=", 10),
    E.EQ: Infix("==", EQUALITY),
    E.NE: Infix("!=", EQUALITY),
    E.BitAnd: Infix("&", 8),
    E.BitXor: Infix("^", 7),
    E.BitOr: Infix("|", 6),
    E.And: Infix("&&", 5),
    E.Or: Infix("||", 4),
}
_COMPARISONS = (E.LT, E.LE, E.GT, E.GE, E.EQ, E.NE)


def _floor_div_mod(kind: str, truncating: Infix) -> Entry:
    """FloorDiv / FloorMod: C's truncating operator where both agree, else a helper."""

    def render(ctx: Context, e: E.BinaryOp, a: CExpr, b: CExpr) -> str:
        if E.is_float(e.dtype):
            if kind == "floormod":
                return f"{ctx.helper(kind, e.dtype)}({a}, {b})"
            fl = "floor" if e.dtype == "float64" else "floorf"
            quotient = _C_OPERATORS[E.Div](ctx, e, a, b)
            return CExpr(f"({ctx.ctype(e.dtype)}){fl}({quotient})", UNARY)
        divisor = e.b.value if isinstance(e.b, E.Broadcast) else e.b
        if isinstance(divisor, E.IntImm) and divisor.value > 0 and ctx.nonneg(e.a):
            # Both sides are non-negative: C's truncating / and % agree with floor semantics.
            return truncating(ctx, e, a, b)
        return f"{ctx.helper(kind, e.dtype)}({a}, {b})"

    return render


def _bit_not(ctx: Context, e: E.BitNot, a: CExpr) -> CExpr:
    # Cast back: ~ on a narrow integer type computes in int.
    return CExpr(f"({ctx.ctype(e.dtype)})~{a.at(UNARY)}", UNARY)


def _float_only(entry: Entry) -> Entry:
    def render(ctx: Context, e: E.PrimExpr, *operands: CExpr) -> str | None:
        return entry(ctx, e, *operands) if E.is_float(e.dtype) else None

    return render


class CDialect:
    """C99 with GCC/Clang vector extensions and OpenMP: the base table of C rendering.

    >>> C.ctype("float32x8"), C.float_literal(0.5, "float32")
    ('float32x8', '0.5f')
    """

    name = "c"

    # ------------------------------------------------------------------ types and literals
    scalar_types: Mapping[str, str] = MappingProxyType(
        {
            "bool": "bool",
            "int8": "int8_t",
            "int16": "int16_t",
            "int32": "int32_t",
            "int64": "int64_t",
            "uint8": "uint8_t",
            "uint16": "uint16_t",
            "uint32": "uint32_t",
            "uint64": "uint64_t",
            "float16": "_Float16",
            "bfloat16": "uint16_t",  # its bits: converted by helpers, never computed on
            "float32": "float",
            "float64": "double",
            "handle": "void*",
        }
    )
    mask_dtypes = frozenset(
        "int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32 float64".split()
    )
    """Elements whose vectors compare, min/max and select as vector code (float16 and
    bool vectors are computed lane by lane)."""

    def ctype(self, dtype: str) -> str:
        """C type of a scalar dtype, or the name of the vector typedef: ``float32x8``."""
        base = E.dtype_element(dtype)
        if base not in self.scalar_types:
            raise BuildError(f"the C backend does not support dtype {dtype!r}")
        lanes = E.dtype_lanes(dtype)
        if lanes == 1:
            return self.scalar_types[base]
        # A boolean vector held as a value is int8 lanes of 0/1.
        return f"{'int8' if base == 'bool' else base}x{lanes}"

    def vector_typedef(self, dtype: str) -> str:
        """``typedef float float32x8 __attribute__((vector_size(32)));`` (lanes padded to 2^k)."""
        base = E.dtype_element(dtype)
        nbytes = padded_lanes(E.dtype_lanes(dtype)) * itemsize(base)
        vector_size = f"__attribute__((vector_size({nbytes})))"
        return f"typedef {self.scalar_types[base]} {self.ctype(dtype)} {vector_size};"

    def maskable(self, dtype: str) -> bool:
        return E.dtype_element(dtype) in self.mask_dtypes

    def int_literal(self, value: int, dtype: str) -> str:
        base = E.dtype_element(dtype)
        if base == "bool":
            return "1" if value else "0"
        if base == "int32":
            return str(value) if value != -(2**31) else "(-2147483647 - 1)"
        if base == "int64":
            return f"INT64_C({value})" if value != -(2**63) else "INT64_MIN"
        if base == "uint32":
            return f"{value}u"
        if base == "uint64":
            return f"UINT64_C({value})"
        return f"(({self.scalar_types[base]}){value})"

    def float_literal(self, value: float, dtype: str) -> str:
        base = E.dtype_element(dtype)
        if base == "bfloat16":  # the bits of the nearest bfloat16 (ties to even)
            bits = int(np.asarray(value, np.float64).astype(ml_dtypes.bfloat16).view(np.uint16))
            return f"((uint16_t)0x{bits:04x})"
        if math.isnan(value):
            text = "NAN"
        elif math.isinf(value):
            text = "INFINITY" if value > 0 else "(-INFINITY)"
        else:
            text = repr(float(value))
            if base != "float64":
                text += "f"
        if (base == "float64" and not math.isfinite(value)) or base == "float16":
            return f"(({self.scalar_types[base]}){text})"
        return text

    # ------------------------------------------------------------------ operators
    ops: Mapping[type, Entry] = MappingProxyType(
        _C_OPERATORS
        | {
            E.Min: call_helper("min"),
            E.Max: call_helper("max"),
            E.FloorDiv: _floor_div_mod("floordiv", Infix("/", MULTIPLICATIVE)),
            E.FloorMod: _floor_div_mod("floormod", Infix("%", MULTIPLICATIVE)),
            E.Not: Prefix("!"),
            E.BitNot: _bit_not,
        }
    )
    """Scalar operators, by IR node type: ``entry(ctx, node, a[, b])``."""

    vector_ops: Mapping[type, Entry] = MappingProxyType(
        {
            t: _C_OPERATORS[t]
            for t in (E.Add, E.Sub, E.Mul, E.BitAnd, E.BitOr, E.BitXor, E.ShiftLeft, E.ShiftRight)
        }
        | {
            E.Div: _float_only(_C_OPERATORS[E.Div]),  # vector integer division: lane by lane
            # Min/max of mask_dtypes: the scalar a < b ? a : b per lane over whole vectors,
            # which GCC compiles to one vminps/vmaxps (see c_helpers).
            E.Min: call_helper("min"),
            E.Max: call_helper("max"),
        }
    )
    """Operators on vectors (C vector extension arithmetic): ``entry(ctx, node, a, b)``.
    A missing entry, or one that returns None, computes the vector lane by lane."""

    mask_ops: Mapping[type, Entry] = MappingProxyType(
        {t: _C_OPERATORS[t] for t in _COMPARISONS}
        | {E.And: _C_OPERATORS[E.BitAnd], E.Or: _C_OPERATORS[E.BitOr], E.Not: Prefix("~")}
    )
    """Vector comparisons and their logic, giving masks: an integer vector as wide as the
    compared elements, all ones where the condition holds (GCC/Clang semantics)."""

    intrinsics: Mapping[str, Entry] = C_INTRINSICS
    """Math intrinsics by name: ``entry(ctx, call, *args)`` (see ``ember.codegen.intrinsics``)."""

    vector_intrinsics: Mapping[str, Entry] = C_VECTOR_INTRINSICS
    """Intrinsics computed on whole vectors: ``entry(ctx, call, *args)``. A missing entry,
    or one that returns None, computes the vector lane by lane with ``intrinsics`` (a
    dialect without vector math still gets correct code)."""

    helpers: Mapping[str, Helper] = C_HELPERS
    """Helper function definitions by kind (see :mod:`ember.codegen.c_helpers`)."""

    helper_requires: Mapping[str, tuple[str, ...]] = VECMATH_REQUIRES
    """Helper kind -> kinds (of the same dtype) its definition calls: emitted before it."""

    # ------------------------------------------------------------------ expressions
    def load(self, ctx: Context, buf: str, index: str) -> str:
        return f"{buf}[{index}]"

    def address_of(self, ctx: Context, buf: str, index: str) -> str:
        return f"&{buf}[{index}]"

    def vector_load(self, ctx: Context, e: E.BufferLoad, buf: str, base: str) -> str | None:
        """Load of the contiguous lanes ``buf[base:base + lanes]``."""
        return f"{ctx.helper('load', e.dtype)}(&{buf}[{base}])"

    def broadcast(self, ctx: Context, dtype: str, value: str) -> str | None:
        return f"{ctx.helper('broadcast', dtype)}({value})"

    def ramp(self, ctx: Context, e: E.Ramp, base: str, stride: str) -> str | None:
        """``base + stride * (0, 1, ..., lanes - 1)``, on this dialect's ``broadcast``."""
        start = self.broadcast(ctx, e.dtype, base)
        if start is None:
            return None
        iota = f"{ctx.helper('iota', e.dtype)}()"
        if isinstance(e.stride, E.IntImm) and e.stride.value == 1:
            return CExpr(f"{start} + {iota}", ADDITIVE)
        step = self.broadcast(ctx, e.dtype, stride)
        return None if step is None else CExpr(f"{start} + {step} * {iota}", ADDITIVE)

    def cast(self, ctx: Context, dtype: str, value: CExpr, from_dtype: str = "") -> str:
        """``value`` (of ``from_dtype``) converted to scalar ``dtype``. bfloat16 goes through
        float32 and the rounding helper: its C type holds bits, not a number."""
        source = E.dtype_element(from_dtype)
        if source == "bfloat16" and dtype != "bfloat16":
            value, source = CExpr(f"{ctx.helper('bfloat16_to_float32')}({value})"), "float32"
            if dtype == "float32":
                return value
        if dtype == "bfloat16":
            if source != "float32":
                value = as_cexpr(self.cast(ctx, "float32", value, source))
            return f"{ctx.helper('float32_to_bfloat16')}({value})"
        if E.is_bool(dtype):
            return f"({value.at(EQUALITY)} != 0)"
        return CExpr(f"({ctx.ctype(dtype)}){value.at(UNARY)}", UNARY)

    def vector_cast(self, ctx: Context, dtype: str, value: str, from_dtype: str) -> str | None:
        if E.is_bool(dtype) or E.is_bool(from_dtype):
            return None  # bool vectors are int8 lanes of 0/1: converted lane by lane
        if "bfloat16" in (E.dtype_element(dtype), E.dtype_element(from_dtype)):
            return None  # converted lane by lane, through the rounding helper
        return f"__builtin_convertvector({value}, {ctx.ctype(dtype)})"

    def select(self, ctx: Context, e: E.Select, cond: CExpr, a: CExpr, b: CExpr) -> str:
        """``cond ? a : b``, for scalars and for vectors with one condition for all lanes
        (only one side runs)."""
        inner = TERNARY + 1
        return CExpr(f"{cond.at(inner)} ? {a.at(inner)} : {b.at(inner)}", TERNARY)

    def vector_select(self, ctx: Context, dtype: str, mask: str, a: str, b: str) -> str | None:
        """Per-lane select on a mask of ``itemsize(dtype)``-wide lanes."""
        return f"{ctx.helper('select', dtype)}({mask}, {a}, {b})"

    def mask_broadcast(self, ctx: Context, mask_dtype: str, value: str) -> str:
        """One boolean for all lanes, as a mask: -1 (all ones) or 0."""
        scalar = ctx.ctype(E.dtype_element(mask_dtype))
        return str(self.broadcast(ctx, mask_dtype, f"-({scalar})({value})"))

    def mask_from_bool(self, ctx: Context, mask_dtype: str, value: CExpr) -> str:
        """A boolean vector value (int8 lanes of 0/1) as a mask."""
        if itemsize(mask_dtype) != 1:
            lanes = E.dtype_lanes(mask_dtype)
            value = CExpr(str(self.vector_cast(ctx, mask_dtype, value, f"int8x{lanes}")))
        return f"({value.at(EQUALITY)} != 0)"

    def mask_to_bool(self, ctx: Context, mask: str) -> str:
        """A mask (all-ones lanes) as a boolean vector value: int8 lanes of 0/1."""
        return f"(-{mask})"

    def let(self, ctx: Context, dtype: str, name: str, value: str, body: str) -> str:
        """A let inside an expression: a GNU statement expression."""
        return f"({{ {ctx.ctype(dtype)} {name} = {value}; {body}; }})"

    def call(self, ctx: Context, name: str, args: list[str]) -> str:
        """A call of an extern C function (a name that is not in ``intrinsics``)."""
        return f"{name}({', '.join(args)})"

    def lane_loop_header(self, lane: str, lanes: int) -> str:
        return f"for (int {lane} = 0; {lane} < {lanes}; ++{lane})"

    def per_lane(self, ctx: Context, dtype: str, lane: str, body: str) -> str:
        """A vector computed lane by lane (``body`` is lane ``lane`` of it): a statement
        expression the compiler vectorizes on its own."""
        vt, r = ctx.ctype(dtype), f"_r{lane}"
        loop = self.lane_loop_header(lane, E.dtype_lanes(dtype))
        return f"({{ {vt} {r} = {{0}}; {loop} {r}[{lane}] = {body}; {r}; }})"

    # ------------------------------------------------------------------ statements
    loop_pragmas: Mapping[ForKind, str] = MappingProxyType({})
    """The line before a loop of each kind (an outermost one, for PARALLEL, when the
    dialect runs parallel loops with OpenMP)."""
    parallel_runtime = "pool"
    """How an outermost PARALLEL loop runs: ``"pool"`` outlines its body and calls
    ember's thread pool (:mod:`ember.codegen.thread_pool`); ``"openmp"`` puts the
    PARALLEL entry of ``loop_pragmas`` before it (see :class:`OpenMP`)."""
    parallel_call = "ember_parallel_for"
    """The pool's entry: ``ember_parallel_for(begin, end, fn, &env)``."""
    nested_parallel = "/* nested parallel loop: runs serially inside the outer parallel loop */"
    unroll_pragma = "#pragma GCC unroll {factor}"
    default_unroll = 8
    """Unroll factor for ``pragma_unroll`` without a positive factor (GCC needs a number)."""
    stack_alloc_bytes = 32 * 1024
    """Scratch up to this size goes on the stack: OpenMP worker threads have small stacks."""

    def for_loop(self, ctype: str, name: str, begin: str, end: str) -> str:
        return f"for ({ctype} {name} = {begin}; {name} < {end}; ++{name}) {{"

    def if_then(self, cond: str) -> str:
        return f"if ({cond}) {{"

    def store(self, ctx: Context, buf: str, index: str, value: str) -> str:
        return f"{buf}[{index}] = {value};"

    def vector_store(self, ctx: Context, dtype: str, buf: str, base: str, value: str) -> str:
        """Store of the contiguous lanes ``buf[base:base + lanes]``."""
        return f"{ctx.helper('store', dtype)}(&{buf}[{base}], {value});"

    def let_stmt(self, ctx: Context, dtype: str, name: str, value: str) -> str:
        return f"const {ctx.ctype(dtype)} {name} = {value};"

    def stack_array(self, ctype: str, name: str, count: int, scope: str) -> str:
        return f"{ctype} {name}[{count}] __attribute__((aligned(64)));  /* {scope} scratch */"

    def heap_array(self, ctx: Context, ctype: str, name: str, count: str) -> tuple[str, str]:
        """The lines that allocate and free scratch too large for the stack."""
        nbytes = f"(size_t)({count}) * sizeof({ctype})"
        alloc = f"{ctype}* restrict {name} = ({ctype}*){ctx.helper('alloc')}({nbytes});"
        return alloc, f"free({name});"

    def attr(self, key: str, value: object) -> str:
        """An attribute the C backend does not act on, kept as a comment."""
        note = f"{key} = {value!r}".replace("*/", "* /")
        return f"/* attr {note} */"

    def evaluate(self, value: str) -> str:
        return f"{value};"

    def assert_fail(self, message: str, in_parallel: bool) -> str:
        """What runs when an assertion fails: the kernel returns -1 (inside an OpenMP loop,
        which cannot return, the process aborts)."""
        msg = message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        stop = "abort();" if in_parallel else "return -1;"
        return f'fprintf(stderr, "ember: assertion failed: {msg}\\n"); {stop}'

    # ------------------------------------------------------------------ module and ABI
    def header(self, version: str, names: list[str]) -> str:
        return _HEADER.format(version=version, names=", ".join(names))

    support = POOL_DECLARATIONS
    """What every translation unit has after the helpers: here, the declaration of the
    thread pool's entry."""
    runtime = POOL_SOURCE + SET_NUM_THREADS
    """Runtime support defined once per library (``codegen_c(..., runtime=True)``, or
    its own translation unit, :func:`ember.codegen.c.codegen_runtime`): the thread pool
    and ``ember_set_num_threads``."""

    def buffer_param(self, ctype: str, name: str, index: int) -> tuple[str, str]:
        """(parameter of the typed function, its value unpacked from ``void** args``)."""
        return f"{ctype}* restrict {name}", f"({ctype}*)args[{index}]"

    def shape_param(self, name: str, index: int) -> tuple[str, str]:
        return f"int32_t {name}", f"*(int32_t*)args[{index}]"

    def kernel(self, entry: str, params: list[str], body: list[str]) -> list[str]:
        """The typed function (``body``'s lines are indented) and the exported entry."""
        sig = ", ".join(params) or "void"
        return [f"static int32_t {entry}_impl({sig}) {{", *body, "  return 0;", "}", ""]

    def entry_point(self, entry: str, args: list[str]) -> list[str]:
        void = "" if args else "(void)args; "
        return [
            f"int32_t {entry}(void** args) {{",
            f"  {void}return {entry}_impl({', '.join(args)});",
            "}",
            "",
        ]

    def helper_name(self, kind: str, dtype: str = "") -> str:
        """``ember_min_float32`` (scalar helpers by dtype), ``ember_load_float32x8`` (vector
        ones by type), ``ember_alloc`` (no dtype)."""
        if not dtype:
            return f"ember_{kind}"
        return f"ember_{kind}_{dtype if E.dtype_lanes(dtype) == 1 else self.ctype(dtype)}"

    def helper_order(self, keys: set[str]) -> list[str]:
        """Helper keys in the order their definitions are emitted: by name, each after
        the helpers it calls (``helper_requires``)."""

        def depth(kind: str) -> int:
            return 1 + max((depth(k) for k in self.helper_requires.get(kind, ())), default=-1)

        return sorted(keys, key=lambda key: (depth(key.partition(":")[0]), key))

    def helper_source(self, key: str) -> str:
        """C definition of helper ``"kind:dtype"`` (``"alloc"``: no dtype)."""
        kind, _, dtype = key.partition(":")
        if kind not in self.helpers:
            raise BuildError(f"internal: dialect {self.name!r} has no helper {kind!r}")
        return self.helpers[kind](self, dtype)


_HEADER = """\
/* Generated by ember {version}: {names}.
 * Entry ABI: int32_t NAME(void** args) -- buffer data pointers, then int32_t* shape variables.
 */
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <math.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
"""

C = CDialect()
"""The default dialect: C with GCC vector extensions and ember's thread pool."""


class OpenMP(CDialect):
    """The default dialect with OpenMP parallel loops instead of the thread pool (for
    comparison, and for toolchains whose C library lacks pthreads)::

        codegen_c(funcs, dialect=OpenMP())
    """

    name = "c-openmp"
    parallel_runtime = "openmp"
    loop_pragmas = CDialect.loop_pragmas | {
        # guided: large chunks first, then smaller ones, so a thread the OS descheduled
        # on a shared machine does not hold the whole loop as long at its barrier.
        ForKind.PARALLEL: "#pragma omp parallel for schedule(guided)",
    }
    support = """\
/* Called by the loader with ember.config.num_threads (when > 0). Weak: every kernel's
 * translation unit defines it, and one library may link many of them. */
__attribute__((weak)) void ember_set_num_threads(int32_t n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}
"""
    runtime = ""


DIALECTS: dict[str, CDialect] = {"x86_64": C, "aarch64": C, "armv7l": C}
"""The dialect each CPU architecture's code is written in (a NEON dialect would override
entries of C for the ARM ones); :func:`dialect_for` reads it."""


def dialect_for(target: Target) -> CDialect:
    """The C dialect of code generated for ``target``.

    >>> dialect_for(Target.parse("host")) is C
    True
    """
    if target.kind not in ("cpu", "c"):
        raise BuildError(
            f"no C dialect generates code for {target.kind} targets ({target})",
            hint="compile for a CPU target (see `ember targets`)",
        )
    try:
        return DIALECTS[target.arch]
    except KeyError:
        raise BuildError(f"no C dialect for the {target.arch} architecture ({target})") from None
