"""Loop IR expressions to C, scalar and vector (helper of :mod:`ember.codegen.c`).

The printer walks an expression, decides its form, and asks the dialect
(:class:`ember.codegen.dialect.CDialect`) how to spell each piece:

    p = ExprPrinter(C, Analyzer(), taken=set())
    p.declare(a)
    p.expr(a * 2.0 + 1.0)      # 'a * 2.0f + 1.0f'

Scalars are plain C. Vectors use the dialect's vector types (GCC/Clang vector extension
typedefs such as ``float32x8``; a lane count that is not a power of two is padded to the
next one, and loads, stores and lane loops touch only the real lanes). Operations the
dialect has ``vector_ops`` entries for stay vector code (+ - * / on floats, bitwise ops,
shifts), and so do comparisons, min/max and selects (below), and the float32 math
intrinsics the dialect has ``vector_intrinsics`` for (exp, log, log1p, sigmoid, tanh,
erf: :mod:`ember.codegen.vecmath`); everything else (other intrinsics, integer division,
gathers) is computed lane by lane in a GNU statement expression the compiler vectorizes
on its own.

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

from collections.abc import Callable

from ember.codegen.dialect import CDialect
from ember.codegen.syntax import ADDITIVE, ATOM, UNARY, CExpr, as_cexpr, fresh_name, itemsize
from ember.errors import BuildError
from ember.tir import expr as E
from ember.tir.functor import post_order
from ember.tir.simplify import Analyzer

_BINARY = (E.BinaryOp, E.CmpOp)
_UNARY_OPS = (E.Not, E.BitNot)
_MASK_LOGIC = (E.And, E.Or, E.Not)
_BLENDS = (E.Min, E.Max, E.Select)  # vector forms go through masks: see _vector_select


class ExprPrinter:
    """Turns expressions into C; records the vector types and helpers it used.

    It is the render context (:class:`ember.codegen.syntax.Context`) of the dialect's
    entries."""

    def __init__(self, dialect: CDialect, analyzer: Analyzer, taken: set[str]) -> None:
        self.d = dialect
        self.analyzer = analyzer
        self.names: dict[E.Var, str] = {}  # C name of each variable in scope
        self.taken = set(taken)  # C names in use (globals and every declared variable)
        self.vector_types: set[str] = set()  # dtypes like "float32x8"
        self.helpers: set[str] = set()  # keys of helper functions, e.g. "floordiv:int32"
        self._lane_var = 0

    # ------------------------------------------------------------------ entry points
    def expr(self, e: E.PrimExpr) -> str:
        return str(self._expr(e))

    def declare(self, var: E.Var) -> str:
        """Give ``var`` a fresh C name (loop variables, lets, parameters)."""
        name = fresh_name(var.name, self.taken)
        self.names[var] = name
        return name

    def name(self, v: E.Var) -> str:
        try:
            return self.names[v]
        except KeyError:
            raise BuildError(
                f"variable {v.name!r} is used outside the scope that defines it",
                hint="every loop IR variable must be a loop variable, a let, or a parameter shape",
            ) from None

    def new_lane(self) -> str:
        """A fresh name for a lane index variable (``_l1``, ``_l2``, ...)."""
        self._lane_var += 1
        return f"_l{self._lane_var}"

    # ------------------------------------------------------------------ render context
    def ctype(self, dtype: str) -> str:
        if E.dtype_lanes(dtype) > 1:
            base = E.dtype_element(dtype)
            self.vector_types.add(f"{'int8' if base == 'bool' else base}x{E.dtype_lanes(dtype)}")
        return self.d.ctype(dtype)

    def helper(self, kind: str, dtype: str = "") -> str:
        self.helpers.add(f"{kind}:{dtype}" if dtype else kind)
        for required in self.d.helper_requires.get(kind, ()):
            self.helper(required, dtype)
        if E.dtype_lanes(dtype or "int32") > 1:
            self.ctype(dtype)  # the helper's signature uses the vector type
        return self.d.helper_name(kind, dtype)

    def nonneg(self, e: E.PrimExpr) -> bool:
        if isinstance(e, E.Ramp):
            last = e.base + e.stride * (e.lanes - 1)
            return self.nonneg(e.base) and self.nonneg(last)
        if isinstance(e, E.Broadcast):
            return self.nonneg(e.value)
        if not E.is_int(e.dtype):
            return False
        if E.is_unsigned(e.dtype):
            return True
        lo = self.analyzer.bound(e)[0]
        return lo is not None and lo >= 0

    # ------------------------------------------------------------------ scalar + vector
    def _expr(self, e: E.PrimExpr) -> CExpr:
        t = type(e)
        if t is E.IntImm:
            return CExpr(self.d.int_literal(e.value, e.dtype))
        if t is E.FloatImm:
            return CExpr(self.d.float_literal(e.value, e.dtype))
        if isinstance(e, _LaneRef):
            return CExpr(e.name, UNARY if e.name.startswith("(") or e.name.isidentifier() else 0)
        if isinstance(e, E.Var):
            return CExpr(self.name(e))
        if E.dtype_lanes(e.dtype) > 1:
            return self._vector(e)
        entry = self.d.ops.get(t)
        if entry is not None and isinstance(e, _BINARY + _UNARY_OPS):
            return self._required(entry(self, e, *map(self._expr, _operands(e))), e)
        if t is E.Cast:
            return as_cexpr(self.d.cast(self, e.dtype, self._expr(e.value), e.value.dtype))
        if t is E.Select:
            cond, a, b = map(self._expr, (e.condition, e.true_value, e.false_value))
            return as_cexpr(self.d.select(self, e, cond, a, b))
        if t is E.Call:
            return CExpr(self._call(e))
        if t is E.Let:
            value = self.expr(e.value)
            name = self.declare(e.var)
            return CExpr(self.d.let(self, e.var.dtype, name, value, self.expr(e.body)))
        if t is E.BufferLoad:
            (idx,) = _flat(e)
            return CExpr(self.d.load(self, self.name(e.buffer.data), self.expr(idx)))
        raise BuildError(f"the {self.d.name} backend cannot emit a {t.__name__} expression: {e!r}")

    def _required(self, text: str | None, e: E.PrimExpr) -> CExpr:
        if text is None:
            raise BuildError(f"dialect {self.d.name!r} has no spelling for {e!r}")
        return as_cexpr(text)

    def _call(self, e: E.Call) -> str:
        if e.name == "tir.address_of":
            (load,) = e.args
            if not isinstance(load, E.BufferLoad):
                raise BuildError("tir.address_of takes one buffer load, e.g. address_of(A[i])")
            (idx,) = _flat(load)
            return self.d.address_of(self, self.name(load.buffer.data), self.expr(idx))
        args = [self.expr(a) for a in e.args]
        entry = self.d.intrinsics.get(e.name)
        if entry is not None:
            return str(self._required(entry(self, e, *args), e))
        return self.d.call(self, e.name, args)

    # ------------------------------------------------------------------ vectors
    def _vector(self, e: E.PrimExpr) -> CExpr:
        t = type(e)
        self.ctype(e.dtype)
        native: str | None = None
        if t is E.Broadcast:
            native = self._attempt(lambda: self.d.broadcast(self, e.dtype, self.expr(e.value)))
        elif t is E.Ramp:
            native = self._attempt(
                lambda: self.d.ramp(self, e, self.expr(e.base), self.expr(e.stride))
            )
        elif t in self.d.vector_ops and t not in _BLENDS:
            entry = self.d.vector_ops[t]
            native = self._attempt(lambda: entry(self, e, *map(self._expr, _operands(e))))
        elif t is E.BufferLoad and _contiguous(_flat(e)[0]):
            (idx,) = _flat(e)
            buf = self.name(e.buffer.data)
            native = self._attempt(lambda: self.d.vector_load(self, e, buf, self.expr(idx.base)))
        elif t is E.Cast:
            value = e.value
            native = self._attempt(
                lambda: self.d.vector_cast(self, e.dtype, self.expr(value), value.dtype)
            )
        elif t is E.Call and e.name in self.d.vector_intrinsics:
            entry = self.d.vector_intrinsics[e.name]
            native = self._attempt(lambda: entry(self, e, *map(self._expr, e.args)))
        if native is None:
            native = self._vector_select(e)
        if native is None:
            return CExpr(self._per_lane(e))
        return as_cexpr(native)

    def _attempt(self, render: Callable[[], str | None]) -> str | None:
        """``render()``, or None when its entry declines; then what rendering the operands
        recorded (helpers, vector types, lane and let names) is forgotten."""
        saved = (set(self.helpers), set(self.vector_types), self._lane_var)
        names, taken = dict(self.names), set(self.taken)
        text = render()
        if text is None:
            self.helpers, self.vector_types, self._lane_var = saved
            self.names, self.taken = names, taken
        return text

    # ------------------------------------------------------------------ masks and selects
    def _vector_select(self, e: E.PrimExpr) -> str | None:
        """Vector code for min/max, select and comparisons (see the module docstring),
        or None when ``e`` keeps the lane-by-lane form."""
        t = type(e)
        if t is E.Select and E.dtype_lanes(e.condition.dtype) == 1:
            # One condition for all lanes: an ordinary ?: on whole vectors (one branch runs).
            cond, a, b = map(self._expr, (e.condition, e.true_value, e.false_value))
            return self.d.select(self, e, cond, a, b)
        if (t is E.Min or t is E.Max) and self.d.maskable(e.dtype) and t in self.d.vector_ops:
            entry = self.d.vector_ops[t]
            return self._attempt(lambda: entry(self, e, self._expr(e.a), self._expr(e.b)))
        if t is E.Select and self.d.maskable(e.dtype):
            if not (self._speculatable(e.true_value) and self._speculatable(e.false_value)):
                return None
            return self._attempt(
                lambda: self.d.vector_select(
                    self,
                    e.dtype,
                    self._mask(e.condition, itemsize(e.dtype) * 8),
                    self.expr(e.true_value),
                    self.expr(e.false_value),
                )
            )
        if E.is_bool(e.dtype) and (t in _MASK_LOGIC or self._comparable(e)):
            # A boolean vector as a value: int8 lanes of 0/1 (the negated all-ones mask).
            return self.d.mask_to_bool(self, self._mask(e, 8))
        return None

    def _mask(self, c: E.PrimExpr, bits: int) -> str:
        """C text of ``c`` (a boolean vector) as a mask of ``bits``-wide integer lanes."""
        lanes = E.dtype_lanes(c.dtype)
        mask_dtype = f"int{bits}x{lanes}"
        self.ctype(mask_dtype)
        t = type(c)
        if t in _MASK_LOGIC:
            masks = [CExpr(self._mask(x, bits)) for x in _operands(c)]
            return as_cexpr(self._required(self.d.mask_ops[t](self, c, *masks), c)).at(ATOM)
        if self._comparable(c):
            entry = self.d.mask_ops[t]
            text = self._required(entry(self, c, self._expr(c.a), self._expr(c.b)), c).at(ATOM)
            compared = f"int{itemsize(c.a.dtype) * 8}x{lanes}"
            if compared == mask_dtype:
                return text
            # Sign extension / truncation keeps all-ones lanes all ones.
            return str(self._required(self.d.vector_cast(self, mask_dtype, text, compared), c))
        if t is E.Broadcast:
            return self.d.mask_broadcast(self, mask_dtype, self.expr(c.value))
        return self.d.mask_from_bool(self, mask_dtype, self._expr(c))  # int8 lanes of 0/1

    def _comparable(self, e: E.PrimExpr) -> bool:
        """A vector comparison whose operands compare natively (gives a mask)."""
        return (
            isinstance(e, E.CmpOp)
            and not isinstance(e, E.And | E.Or)
            and self.d.maskable(e.a.dtype)
            and E.dtype_lanes(e.a.dtype) > 1
            and e.a.dtype == e.b.dtype
        )

    def _speculatable(self, e: E.PrimExpr) -> bool:
        """True when every lane of ``e`` may be computed even where a select does not take it.

        Loads inside select branches are in bounds (lowering clamps them, see
        ``te.if_then_else``) and float arithmetic does not trap; integer division and
        remainder by a non-constant can trap, and extern calls may have effects
        (intrinsics, the dialect's ``intrinsics``, are pure).
        """
        ok = True

        def visit(n: object) -> None:
            nonlocal ok
            if isinstance(n, E.Div | E.FloorDiv | E.FloorMod) and not E.is_float(n.dtype):
                b = n.b.value if isinstance(n.b, E.Broadcast) else n.b
                if not (isinstance(b, E.IntImm) and b.value != 0):
                    ok = False
            elif isinstance(n, E.Call) and n.name not in self.d.intrinsics:
                ok = False

        post_order(e, visit)
        return ok

    # ------------------------------------------------------------------ lane by lane
    def _per_lane(self, e: E.PrimExpr) -> str:
        """Any vector expression, computed lane by lane (the dialect's ``per_lane``)."""
        lane = self.new_lane()
        return self.d.per_lane(self, e.dtype, lane, self.lane(e, lane))

    def lane(self, e: E.PrimExpr, lane: str) -> str:
        """Scalar C for lane ``lane`` (a C expression) of vector expression ``e``."""
        t = type(e)
        if E.dtype_lanes(e.dtype) == 1:
            return self._expr(e).at(ATOM)
        if t is E.Broadcast:
            return self._expr(e.value).at(ATOM)
        if t is E.Ramp:
            base, stride = self._expr(e.base).at(ADDITIVE), self._expr(e.stride).at(UNARY)
            return f"({base} + {lane} * {stride})"
        scalar_dtype = E.dtype_element(e.dtype)
        if t is E.BufferLoad:
            (idx,) = _flat(e)
            return self.d.load(self, self.name(e.buffer.data), self.lane(idx, lane))
        if isinstance(e, _BINARY):
            a = _LaneRef(self.lane(e.a, lane), E.dtype_element(e.a.dtype))
            b = _LaneRef(self.lane(e.b, lane), E.dtype_element(e.b.dtype))
            return "(" + self.expr(t(a, b)) + ")"
        if t is E.Select:
            c, a, b = (self.lane(x, lane) for x in (e.condition, e.true_value, e.false_value))
            return f"({c} ? {a} : {b})"
        if t is E.Not:
            return f"(!{self.lane(e.a, lane)})"
        if t is E.BitNot:
            return f"(({self.ctype(scalar_dtype)})~{self.lane(e.a, lane)})"
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


class _LaneRef(E.Var):
    """A variable standing for already-printed C text (one lane of a vector operand)."""

    __slots__ = ()


def _operands(e: E.PrimExpr) -> tuple[E.PrimExpr, ...]:
    return (e.a,) if isinstance(e, _UNARY_OPS) else (e.a, e.b)


def _contiguous(idx: E.PrimExpr) -> bool:
    return isinstance(idx, E.Ramp) and isinstance(idx.stride, E.IntImm) and idx.stride.value == 1


def _flat(load: E.BufferLoad) -> tuple[E.PrimExpr]:
    if len(load.indices) != 1:
        raise BuildError(
            f"buffer {load.buffer.name!r} is accessed with {len(load.indices)} indices",
            hint="run ember.tir.passes.lower_pipeline (storage flattening) before code generation",
        )
    return (load.indices[0],)
