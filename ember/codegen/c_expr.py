"""C spelling of loop IR expressions, scalar and vector (helper of :mod:`ember.codegen.c`).

Scalars are plain C. Vectors use GCC/Clang vector extension types
(``typedef float float32x8 __attribute__((vector_size(32)))``); a lane count that
is not a power of two is padded to the next one (loads, stores and lane loops
touch only the real lanes). Operations C vector types do natively (+ - * / on
floats, bitwise ops, shifts) stay vector code, and so do comparisons, min/max and
selects (below); everything else (intrinsics, integer division, gathers) is
computed lane by lane in a GNU statement expression the compiler vectorizes on its own.

Comparisons, min/max and select on vectors. A vector comparison ``a < b`` gives a
*mask*: an integer vector as wide as the operands' elements, all ones where it holds
(GCC/Clang semantics). ``select(c, a, b)`` blends with the mask bitwise
(``(a & m) | (b & ~m)`` on the bits), which compiles to one compare and one blend
(``vcmpps`` + ``vblendmps``/``vpternlog`` with AVX-512, ``vblendvps`` with AVX2); a
select whose condition is one scalar for all lanes stays a C ``?:`` on whole vectors.
``min``/``max`` are helpers computing the scalar helpers' ``a < b ? a : b`` lane by
lane on whole-vector operands, a form GCC compiles to one ``vminps``/``vmaxps``
(``vpminsd``... for integers; inlined next to a load or a constant, sometimes the
equivalent compare and masked move), so a vector body and its scalar tail agree bit for
bit. NaN: a NaN in the *second* operand propagates, a NaN in the first yields the second
operand (the semantics of x86 ``minps``/``maxps`` and of onnxruntime's MLAS kernels;
numpy's ``np.maximum`` propagates both -- ``max(x, 0)`` maps NaN to 0 here). A boolean
vector held as a value (stored to a bool buffer) is ``int8`` lanes of 0/1. float16 and
bool vectors keep the lane-by-lane form.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ember.codegen.intrinsics import c_intrinsic
from ember.errors import BuildError
from ember.tir import expr as E
from ember.tir.simplify import Analyzer

C_TYPES = {
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
    "float32": "float",
    "float64": "double",
    "handle": "void*",
}

_ITEMSIZE = {"bool": 1, "float16": 2, "float32": 4, "float64": 8, "handle": 8}

# (C operator, precedence): higher binds tighter (C's table).
_C_BINARY = {
    E.Mul: ("*", 13),
    E.Div: ("/", 13),
    E.Add: ("+", 12),
    E.Sub: ("-", 12),
    E.ShiftLeft: ("<<", 11),
    E.ShiftRight: (">>", 11),
    E.LT: ("<", 10),
    E.LE: ("<=", 10),
    E.GT: (">", 10),
    E.GE: (">=", 10),
    E.EQ: ("==", 9),
    E.NE: ("!=", 9),
    E.BitAnd: ("&", 8),
    E.BitXor: ("^", 7),
    E.BitOr: ("|", 6),
    E.And: ("&&", 5),
    E.Or: ("||", 4),
}
_ATOM = 16
_UNARY = 14
_NATIVE_VECTOR = (E.Add, E.Sub, E.Mul, E.BitAnd, E.BitOr, E.BitXor, E.ShiftLeft, E.ShiftRight)


def itemsize(dtype: str) -> int:
    base = E.dtype_element(dtype)
    return _ITEMSIZE.get(base) or int(base.lstrip("uint")) // 8


def c_type(dtype: str) -> str:
    """C type of a scalar dtype, or the name of the vector typedef for ``float32x8``."""
    base = E.dtype_element(dtype)
    if base not in C_TYPES:
        raise BuildError(f"the C backend does not support dtype {dtype!r}")
    lanes = E.dtype_lanes(dtype)
    if lanes == 1:
        return C_TYPES[base]
    return f"{'int8' if base == 'bool' else base}x{lanes}"


def padded_lanes(lanes: int) -> int:
    return 1 << (lanes - 1).bit_length()


class ExprPrinter:
    """Turns expressions into C; records the vector types and helpers it used."""

    def __init__(
        self, names: dict[E.Var, str], analyzer: Analyzer, declare: Callable[[E.Var], str]
    ) -> None:
        self.names = names
        self.declare = declare  # gives a variable a fresh C name (for lets)
        self.analyzer = analyzer
        self.vector_types: set[str] = set()  # dtypes like "float32x8"
        self.helpers: set[str] = set()  # keys of helper functions, e.g. "floordiv:int32"
        self._lane_var = 0

    # ------------------------------------------------------------------ entry points
    def expr(self, e: E.PrimExpr) -> str:
        return self._expr(e)[0]

    def vtype(self, dtype: str) -> str:
        if E.dtype_lanes(dtype) > 1:
            base = E.dtype_element(dtype)
            self.vector_types.add(with_lanes_bool(base, E.dtype_lanes(dtype)))
        return c_type(dtype)

    def name(self, v: E.Var) -> str:
        try:
            return self.names[v]
        except KeyError:
            raise BuildError(
                f"variable {v.name!r} is used outside the scope that defines it",
                hint="every loop IR variable must be a loop variable, a let, or a parameter shape",
            ) from None

    # ------------------------------------------------------------------ helpers
    def _wrap(self, e: E.PrimExpr, min_prec: int) -> str:
        text, prec = self._expr(e)
        return f"({text})" if prec < min_prec else text

    def _nonneg(self, e: E.PrimExpr) -> bool:
        if isinstance(e, E.Ramp):
            last = e.base + e.stride * (e.lanes - 1)
            return self._nonneg(e.base) and self._nonneg(last)
        if isinstance(e, E.Broadcast):
            return self._nonneg(e.value)
        if not E.is_int(e.dtype):
            return False
        if E.is_unsigned(e.dtype):
            return True
        lo = self.analyzer.bound(e)[0]
        return lo is not None and lo >= 0

    def _positive_const(self, e: E.PrimExpr) -> bool:
        if isinstance(e, E.Broadcast):
            e = e.value
        return isinstance(e, E.IntImm) and e.value > 0

    # ------------------------------------------------------------------ scalar + vector
    def _expr(self, e: E.PrimExpr) -> tuple[str, int]:
        t = type(e)
        lanes = E.dtype_lanes(e.dtype)
        if t is E.IntImm:
            return _int_literal(e.value, e.dtype), _ATOM
        if t is E.FloatImm:
            return _float_literal(e.value, e.dtype), _ATOM
        if isinstance(e, _LaneRef):
            return e.name, _UNARY if e.name.startswith("(") or e.name.isidentifier() else 0
        if isinstance(e, E.Var):
            return self.name(e), _ATOM
        if lanes > 1:
            return self._vector(e)
        if t in _C_BINARY:
            op, prec = _C_BINARY[t]
            return f"{self._wrap(e.a, prec)} {op} {self._wrap(e.b, prec + 1)}", prec
        if t is E.FloorDiv or t is E.FloorMod:
            return self._floor_divmod(e)
        if t is E.Min or t is E.Max:
            key = f"{t.__name__.lower()}:{E.dtype_element(e.dtype)}"
            self.helpers.add(key)
            return f"ember_{key.replace(':', '_')}({self.expr(e.a)}, {self.expr(e.b)})", _ATOM
        if t is E.Not:
            return "!" + self._wrap(e.a, _UNARY), _UNARY
        if t is E.BitNot:
            return f"({c_type(e.dtype)})~" + self._wrap(e.a, _UNARY), _UNARY
        if t is E.Cast:
            if E.is_bool(e.dtype):
                return f"({self.expr(e.value)} != 0)", _ATOM
            return f"({c_type(e.dtype)}){self._wrap(e.value, _UNARY)}", _UNARY
        if t is E.Select:
            c, a, b = (self._wrap(x, 4) for x in (e.condition, e.true_value, e.false_value))
            return f"{c} ? {a} : {b}", 3
        if t is E.Call:
            return self._call(e), _ATOM
        if t is E.Let:
            value = self.expr(e.value)
            name = self.declare(e.var)
            return f"({{ {c_type(e.var.dtype)} {name} = {value}; {self.expr(e.body)}; }})", _ATOM
        if t is E.BufferLoad:
            (idx,) = _flat(e)
            return f"{self.name(e.buffer.data)}[{self.expr(idx)}]", _ATOM
        raise BuildError(f"the C backend cannot emit a {t.__name__} expression: {e!r}")

    def _floor_divmod(self, e: E.BinaryOp) -> tuple[str, int]:
        is_div = isinstance(e, E.FloorDiv)
        if E.is_float(e.dtype):
            a, b = self.expr(e.a), self.expr(e.b)
            fl = "floor" if e.dtype == "float64" else "floorf"
            if is_div:
                return f"({c_type(e.dtype)}){fl}({a} / {b})", _UNARY
            key = f"floormod:{e.dtype}"
            self.helpers.add(key)
            return f"ember_floormod_{e.dtype}({a}, {b})", _ATOM
        if self._positive_const(e.b) and self._nonneg(e.a):
            # Both sides are non-negative: C's truncating / and % agree with floor semantics.
            op = "/" if is_div else "%"
            return f"{self._wrap(e.a, 13)} {op} {self._wrap(e.b, 14)}", 13
        key = f"{'floordiv' if is_div else 'floormod'}:{e.dtype}"
        self.helpers.add(key)
        return f"ember_{key.replace(':', '_')}({self.expr(e.a)}, {self.expr(e.b)})", _ATOM

    def _call(self, e: E.Call) -> str:
        if e.name == "tir.address_of":
            (load,) = e.args
            if not isinstance(load, E.BufferLoad):
                raise BuildError("tir.address_of takes one buffer load, e.g. address_of(A[i])")
            (idx,) = _flat(load)
            return f"&{self.name(load.buffer.data)}[{self.expr(idx)}]"
        from ember.codegen.intrinsics import C_INTRINSICS

        args = [self.expr(a) for a in e.args]
        if e.name in C_INTRINSICS:
            arg_dtype = e.args[0].dtype if e.args else e.dtype
            if e.name in ("isnan", "isinf"):
                return c_intrinsic(e.name, arg_dtype, args, c_type(arg_dtype))
            return c_intrinsic(e.name, E.dtype_element(e.dtype), args, c_type(e.dtype))
        return f"{e.name}({', '.join(args)})"

    # ------------------------------------------------------------------ vectors
    def _vector(self, e: E.PrimExpr) -> tuple[str, int]:
        t = type(e)
        vt = self.vtype(e.dtype)
        if t is E.Broadcast:
            self.helpers.add(f"broadcast:{e.dtype}")
            return f"ember_broadcast_{vt}({self.expr(e.value)})", _ATOM
        if t is E.Ramp:
            self.helpers.add(f"broadcast:{e.dtype}")
            self.helpers.add(f"iota:{e.dtype}")
            base = f"ember_broadcast_{vt}({self.expr(e.base)})"
            if isinstance(e.stride, E.IntImm) and e.stride.value == 1:
                return f"{base} + ember_iota_{vt}()", 12
            stride = f"ember_broadcast_{vt}({self.expr(e.stride)})"
            return f"{base} + {stride} * ember_iota_{vt}()", 12
        if t in _NATIVE_VECTOR or (t is E.Div and E.is_float(e.dtype)):
            op, prec = _C_BINARY[t]
            return f"{self._wrap(e.a, prec)} {op} {self._wrap(e.b, prec + 1)}", prec
        if t is E.BufferLoad:
            (idx,) = _flat(e)
            if (
                isinstance(idx, E.Ramp)
                and isinstance(idx.stride, E.IntImm)
                and idx.stride.value == 1
            ):
                self.helpers.add(f"load:{e.dtype}")
                return f"ember_load_{vt}(&{self.name(e.buffer.data)}[{self.expr(idx.base)}])", _ATOM
        if t is E.Cast and not E.is_bool(e.dtype) and not E.is_bool(e.value.dtype):
            return f"__builtin_convertvector({self.expr(e.value)}, {vt})", _ATOM
        native = self._vector_select(e)
        if native is not None:
            return native
        return self._per_lane(e), _ATOM

    # ------------------------------------------------------------------ masks and selects
    def _vector_select(self, e: E.PrimExpr) -> tuple[str, int] | None:
        """Vector code for min/max, select and comparisons (see the module docstring),
        or None when ``e`` keeps the lane-by-lane form."""
        t = type(e)
        if t is E.Select and E.dtype_lanes(e.condition.dtype) == 1:
            # One condition for all lanes: an ordinary ?: on whole vectors (one branch runs).
            c, a, b = (self._wrap(x, 4) for x in (e.condition, e.true_value, e.false_value))
            return f"{c} ? {a} : {b}", 3
        if (t is E.Min or t is E.Max) and maskable(e.dtype):
            key = f"{t.__name__.lower()}:{e.dtype}"
            self.helpers.add(key)
            fn = f"ember_{t.__name__.lower()}_{c_type(e.dtype)}"
            return f"{fn}({self.expr(e.a)}, {self.expr(e.b)})", _ATOM
        if t is E.Select and maskable(e.dtype):
            if not (_speculatable(e.true_value) and _speculatable(e.false_value)):
                return None
            mask = self._mask(e.condition, itemsize(e.dtype) * 8)
            self.helpers.add(f"select:{e.dtype}")
            fn = f"ember_select_{c_type(e.dtype)}"
            return f"{fn}({mask}, {self.expr(e.true_value)}, {self.expr(e.false_value)})", _ATOM
        if E.is_bool(e.dtype) and (t in _MASK_LOGIC or _comparable(e)):
            # A boolean vector as a value: int8 lanes of 0/1 (the negated all-ones mask).
            return f"(-{self._mask(e, 8)})", _ATOM
        return None

    def _mask(self, c: E.PrimExpr, bits: int) -> str:
        """C text of ``c`` (a boolean vector) as a mask of ``bits``-wide integer lanes."""
        lanes = E.dtype_lanes(c.dtype)
        mt = self.vtype(f"int{bits}x{lanes}")
        t = type(c)
        if t is E.And or t is E.Or:
            op = "&" if t is E.And else "|"
            return f"({self._mask(c.a, bits)} {op} {self._mask(c.b, bits)})"
        if t is E.Not:
            return f"(~{self._mask(c.a, bits)})"
        if _comparable(c):
            op, prec = _C_BINARY[t]
            text = f"({self._wrap(c.a, prec)} {op} {self._wrap(c.b, prec + 1)})"
            if itemsize(c.a.dtype) * 8 == bits:
                return text
            # Sign extension / truncation keeps all-ones lanes all ones.
            return f"__builtin_convertvector({text}, {mt})"
        if t is E.Broadcast:
            self.helpers.add(f"broadcast:int{bits}x{lanes}")
            return f"ember_broadcast_{mt}(-(int{bits}_t)({self.expr(c.value)}))"
        value = self.expr(c)  # int8 lanes of 0/1
        if bits != 8:
            value = f"__builtin_convertvector({value}, {mt})"
        return f"({value} != 0)"

    def _per_lane(self, e: E.PrimExpr) -> str:
        """``({ T r = {0}; for (l...) r[l] = <lane l of e>; r; })``: any vector op, lane by lane."""
        self._lane_var += 1
        lane = f"_l{self._lane_var}"
        vt = self.vtype(e.dtype)
        body = self.lane(e, lane)
        n = E.dtype_lanes(e.dtype)
        return (
            f"({{ {vt} _r{lane} = {{0}}; for (int {lane} = 0; {lane} < {n}; ++{lane}) "
            f"_r{lane}[{lane}] = {body}; _r{lane}; }})"
        )

    def lane(self, e: E.PrimExpr, lane: str) -> str:
        """Scalar C for lane ``lane`` (a C expression) of vector expression ``e``."""
        t = type(e)
        if E.dtype_lanes(e.dtype) == 1:
            return self._wrap(e, _ATOM)
        if t is E.Broadcast:
            return self._wrap(e.value, _ATOM)
        if t is E.Ramp:
            return f"({self._wrap(e.base, 12)} + {lane} * {self._wrap(e.stride, 14)})"
        scalar_dtype = E.dtype_element(e.dtype)
        if t is E.BufferLoad:
            (idx,) = _flat(e)
            return f"{self.name(e.buffer.data)}[{self.lane(idx, lane)}]"
        if isinstance(e, E.BinaryOp | E.CmpOp):
            a = _LaneRef(self.lane(e.a, lane), E.dtype_element(e.a.dtype))
            b = _LaneRef(self.lane(e.b, lane), E.dtype_element(e.b.dtype))
            return "(" + self.expr(t(a, b)) + ")"
        if t is E.Select:
            c, a, b = (self.lane(x, lane) for x in (e.condition, e.true_value, e.false_value))
            return f"({c} ? {a} : {b})"
        if t is E.Not:
            return f"(!{self.lane(e.a, lane)})"
        if t is E.BitNot:
            return f"(({c_type(scalar_dtype)})~{self.lane(e.a, lane)})"
        if t is E.Cast:
            inner = _LaneRef(self.lane(e.value, lane), E.dtype_element(e.value.dtype))
            return "(" + self.expr(E.Cast(scalar_dtype, inner)) + ")"
        if t is E.Call:
            args = tuple(_LaneRef(self.lane(a, lane), E.dtype_element(a.dtype)) for a in e.args)
            return self._call(E.Call(scalar_dtype, e.name, args))
        if t is E.Let:
            raise BuildError(
                "a vector let cannot be emitted; run the vectorize pass, which inlines lets"
            )
        raise BuildError(f"the C backend cannot emit a vector {t.__name__}: {e!r}")


_MASK_LOGIC = (E.And, E.Or, E.Not)
_MASK_DTYPES = frozenset(
    "int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32 float64".split()
)


def maskable(dtype: str) -> bool:
    """True when vectors of ``dtype`` compare, min/max and select as vector code
    (float16 and bool vectors are emitted lane by lane)."""
    return E.dtype_element(dtype) in _MASK_DTYPES


def _comparable(e: E.PrimExpr) -> bool:
    """A vector comparison whose operands compare natively (gives a mask)."""
    return (
        isinstance(e, E.CmpOp)
        and not isinstance(e, E.And | E.Or)
        and maskable(e.a.dtype)
        and E.dtype_lanes(e.a.dtype) > 1
        and e.a.dtype == e.b.dtype
    )


def _speculatable(e: E.PrimExpr) -> bool:
    """True when every lane of ``e`` may be computed even where a select does not take it.

    Loads inside select branches are in bounds (lowering clamps them, see
    ``te.if_then_else``) and float arithmetic does not trap; integer division and
    remainder by a non-constant can trap, and extern calls may have effects.
    """
    from ember.codegen.intrinsics import C_INTRINSICS
    from ember.tir.functor import post_order

    ok = True

    def visit(n: object) -> None:
        nonlocal ok
        if isinstance(n, E.Div | E.FloorDiv | E.FloorMod) and not E.is_float(n.dtype):
            b = n.b.value if isinstance(n.b, E.Broadcast) else n.b
            if not (isinstance(b, E.IntImm) and b.value != 0):
                ok = False
        elif isinstance(n, E.Call) and n.name not in C_INTRINSICS:
            ok = False

    post_order(e, visit)
    return ok


class _LaneRef(E.Var):
    """A variable standing for already-printed C text (one lane of a vector operand)."""

    __slots__ = ()


def with_lanes_bool(base: str, lanes: int) -> str:
    return f"{'int8' if base == 'bool' else base}x{lanes}"


def _flat(load: E.BufferLoad) -> tuple[E.PrimExpr]:
    if len(load.indices) != 1:
        raise BuildError(
            f"buffer {load.buffer.name!r} is accessed with {len(load.indices)} indices",
            hint="run ember.tir.passes.lower_pipeline (storage flattening) before code generation",
        )
    return (load.indices[0],)


def _int_literal(value: int, dtype: str) -> str:
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
    return f"(({C_TYPES[base]}){value})"


def _float_literal(value: float, dtype: str) -> str:
    base = E.dtype_element(dtype)
    if math.isnan(value):
        text = "NAN"
    elif math.isinf(value):
        text = "INFINITY" if value > 0 else "(-INFINITY)"
    else:
        text = repr(float(value))
        if base != "float64":
            text += "f"
    if base == "float64" and not math.isfinite(value):
        return f"((double){text})"
    if base == "float16":
        return f"((_Float16){text})"
    return text
