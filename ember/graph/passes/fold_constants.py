"""fold_constants: evaluate at compile time whatever depends only on constants.

Needs: a typed module; weights bound as constants (``bind_params``) for folding
to reach them.
Guarantees: every Call of an op whose operands are all constants is replaced by
a :class:`Constant` holding the numpy reference's result, in the node's dtype
(a float16 weight stays float16), named after the node, except where folding
would *grow* the model: a result larger than ``GROWTH_LIMIT`` times its inputs
and over ``SMALL_RESULT_BYTES`` (``broadcast_to``, ``tile`` of a small
constant) is left for the kernel that broadcasts on the fly. A constant op
with a tuple result (``split``) becomes a Tuple of constants, and reading a
field of a literal Tuple becomes that field. Calls of fused functions are not
folded. The result computes the same values.

Control flow: bodies are folded first (recursively). A ``cf.if`` whose condition is
a constant becomes the branch it takes, inlined. A constant argument of a ``cf.if``
or ``cf.loop`` moves into the bodies (the parameter goes away), so what a body
computes from weights alone folds there too. A control-flow call whose arguments
are all constants is evaluated like any op (within the growth limits).

    mod = fold_constants(mod)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ember.graph.interpreter import evaluate_call
from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    TupleType,
    subfunctions,
)
from ember.graph.visitor import ExprMutator, inline_function, rebuild_call, with_bodies
from ember.ops.control_flow import first_captured, if_
from ember.ops.registry import Op

GROWTH_LIMIT = 2.0
"""A folded result may be at most this many times the size of its constant inputs..."""

SMALL_RESULT_BYTES = 64 * 1024
"""...unless it is this small: tiny tables are cheaper as constants than as kernels."""


def _is_constant_value(expr: Expr) -> bool:
    if isinstance(expr, Constant):
        return True
    return isinstance(expr, Tuple) and all(_is_constant_value(f) for f in expr.fields)


def _value(expr: Expr) -> np.ndarray | tuple:
    if isinstance(expr, Constant):
        return expr.value
    assert isinstance(expr, Tuple)
    return tuple(_value(f) for f in expr.fields)


def _nbytes(expr: Expr) -> int:
    if isinstance(expr, Constant):
        return expr.value.nbytes
    return sum(_nbytes(f) for f in expr.fields)  # type: ignore[attr-defined]


def _result_nbytes(t: TensorType | TupleType) -> int:
    if isinstance(t, TensorType):
        return t.nbytes
    return sum(_result_nbytes(f) for f in t.fields)


def _to_expr(value: object, t: TensorType | TupleType, name: str) -> Expr:
    if isinstance(t, TupleType):
        assert isinstance(value, tuple | list)
        return Tuple(
            tuple(
                _to_expr(v, ft, f"{name}.{i}" if name else "")
                for i, (v, ft) in enumerate(zip(value, t.fields))
            ),
            name,
        )
    array = np.asarray(value)
    if str(array.dtype) != t.dtype:
        array = array.astype(t.dtype)
    return Constant(array.reshape(t.shape), name)


def _sink_constants(call: Call) -> Call:
    """``call`` (control flow) with its constant captured arguments moved into its bodies."""
    first = first_captured(call)
    args = call.args
    constant = {k for k in range(first, len(args)) if isinstance(args[k], Constant)}
    if not constant:
        return call
    keep = [k for k in range(first, len(args)) if k not in constant]
    bodies = {}
    for field_name, func in subfunctions(call.attrs):
        offset = len(func.params) - (len(args) - first)  # captured params are the trailing ones
        own, captured = func.params[:offset], func.params[offset:]
        given = (args[k] if k in constant else captured[k - first] for k in range(first, len(args)))
        body = inline_function(func, (*own, *given))
        params = (*own, *(captured[k - first] for k in keep))
        folded = fold_constants(Module.from_function(Function(params, body, dict(func.attrs))))
        bodies[field_name] = folded.main
    new_args = (*args[:first], *(args[k] for k in keep))
    return Call(call.op, new_args, dataclasses.replace(call.attrs, **bodies), call.name)


class _Folder(ExprMutator):
    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        if subfunctions(call.attrs) and isinstance(call.op, Op):
            call = _sink_constants(rebuild_call(call, args))
            args = call.args
            if call.op is if_ and isinstance(args[0], Constant):
                attrs = call.attrs
                taken = attrs.then_branch if args[0].value.reshape(-1)[0] else attrs.else_branch
                return inline_function(taken, args[1:])
        if not isinstance(call.op, Op) or not all(_is_constant_value(a) for a in args):
            return rebuild_call(call, args)
        out_bytes = _result_nbytes(call.type)
        in_bytes = sum(_nbytes(a) for a in args)
        if out_bytes > SMALL_RESULT_BYTES and out_bytes > GROWTH_LIMIT * in_bytes:
            return rebuild_call(call, args)
        value = evaluate_call(call, [_value(a) for a in args])
        return _to_expr(value, call.type, call.name)

    def visit_tuple_get_item(self, item: TupleGetItem, value: Expr) -> Expr:
        if isinstance(value, Tuple):
            return value.fields[item.index]
        return super().visit_tuple_get_item(item, value)


def fold_constants(mod: Module) -> Module:
    """``mod`` with constant subgraphs evaluated (see module doc)."""
    mod = with_bodies(mod, fold_constants)
    main = mod.main
    folded = _Folder().visit_function(main)
    return mod if folded is main else mod.with_main(folded)
