"""infer_types: re-derive every type, optionally for new input shapes.

Needs: a module (types are already computed when nodes are built).
Guarantees: every node of ``main`` is rebuilt bottom-up, so its type comes
from the op rules applied to the current operand types; with ``shapes``, the
named ``main`` parameters get the new shapes (and, if given, dtypes) first, and
a shape the graph cannot take raises :class:`ShapeError` at the first node
that rejects it. Without ``shapes`` the result is structurally equal to the
input. Fused (primitive) functions keep their own parameter types: re-fuse
after changing shapes. Control-flow bodies are re-typed inside, with their own
parameter types (a new input shape that would change them is a ShapeError at
the control-flow call: re-import the model for it).

    mod = infer_types(mod, {"data": (8, 3, 224, 224)})           # new batch size
    mod = infer_types(mod, {"data": ((1, 3, 299, 299), "float32")})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ember.errors import ShapeError
from ember.graph.ir import Call, Expr, Function, Module, TensorType, Tuple, TupleGetItem, Var
from ember.graph.visitor import ExprMutator, with_bodies


class _Retype(ExprMutator):
    """Rebuilds every node (even when its operands did not change) so types are re-derived."""

    def __init__(self, new_vars: dict[Var, Var]) -> None:
        super().__init__()
        self.new_vars = new_vars

    def visit_var(self, var: Var) -> Expr:
        return self.new_vars.get(var, var)

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        return Call(call.op, args, call.attrs, call.name)

    def visit_tuple(self, tup: Tuple, fields: tuple[Expr, ...]) -> Expr:
        return Tuple(fields, tup.name)

    def visit_tuple_get_item(self, item: TupleGetItem, value: Expr) -> Expr:
        return TupleGetItem(value, item.index, item.name)


def _new_type(name: str, spec: Any, old: TensorType) -> TensorType:
    """``spec`` is a shape, or a ``(shape, dtype)`` pair."""
    dtype = old.dtype
    if (
        isinstance(spec, Sequence)
        and len(spec) == 2
        and isinstance(spec[1], str)
        and isinstance(spec[0], Sequence)
    ):
        spec, dtype = spec
    try:
        shape = tuple(int(d) for d in spec)
    except (TypeError, ValueError):
        raise ShapeError(
            f"new shape of input {name!r} must be a tuple of ints (or a (shape, dtype) pair), "
            f"got {spec!r}"
        ) from None
    return TensorType(shape, dtype)


def infer_types(mod: Module, shapes: Mapping[str, Any] | None = None) -> Module:
    """``mod`` with all types re-derived, optionally with new input shapes (see module doc)."""
    mod = with_bodies(mod, infer_types)  # control-flow bodies keep their parameter types
    main = mod.main
    shapes = dict(shapes or {})
    names = {p.name for p in main.params}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise ShapeError(
            f"infer_types: no input named {', '.join(map(repr, unknown))}",
            hint=f"the inputs are: {', '.join(p.name for p in main.params) or 'none'}",
        )
    new_vars: dict[Var, Var] = {}
    for param in main.params:
        if param.name in shapes:
            new_type = _new_type(param.name, shapes[param.name], param.type)
            if new_type != param.type:
                new_vars[param] = Var(param.name, new_type)
    mutator = _Retype(new_vars)
    params = tuple(new_vars.get(p, p) for p in main.params)
    return mod.with_main(Function(params, mutator.visit(main.body), dict(main.attrs)))
