"""bind_params: turn weights into constants.

Needs: a module whose ``main`` parameters include the weights, by name.
Guarantees: every ``main`` parameter named in ``params`` is replaced by a
:class:`Constant` (named after it) everywhere it is used and removed from the
parameter list; the other parameters keep their order. Names in ``params``
that ``main`` does not have are ignored (they may have been bound already).
Each value must have the parameter's exact shape and dtype.

    mod = bind_params(mod, {"conv1_w": w})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ember.errors import ShapeError
from ember.graph.ir import Constant, Expr, Function, Module, Var
from ember.graph.visitor import ExprMutator


def _as_constant(var: Var, value: Any) -> Constant:
    expected = var.type
    if isinstance(value, Constant):
        value = value.value
    if not isinstance(value, np.ndarray | np.generic):
        try:
            value = np.asarray(value, dtype=expected.dtype)
        except (TypeError, ValueError) as err:
            raise ShapeError(
                f"parameter {var.name!r}: cannot make a {expected} from it: {err}"
            ) from None
    array = np.asarray(value)
    if str(array.dtype) != expected.dtype:
        raise ShapeError(
            f"parameter {var.name!r} has dtype {array.dtype}, the graph expects {expected.dtype}",
            hint=f"convert it first: value.astype(np.{expected.dtype})",
        )
    if array.shape != expected.shape:
        raise ShapeError(
            f"parameter {var.name!r} has shape {array.shape}, the graph expects {expected.shape}"
        )
    return Constant(array, var.name)


class _Substitute(ExprMutator):
    def __init__(self, bound: dict[Var, Constant]) -> None:
        super().__init__()
        self.bound = bound

    def visit_var(self, var: Var) -> Expr:
        return self.bound.get(var, var)


def bind_params(mod: Module, params: Mapping[str, Any]) -> Module:
    """``mod`` with the named ``main`` parameters replaced by constants (see module doc)."""
    main = mod.main
    bound = {p: _as_constant(p, params[p.name]) for p in main.params if p.name in params}
    if not bound:
        return mod
    body = _Substitute(bound).visit(main.body)
    remaining = tuple(p for p in main.params if p not in bound)
    return mod.with_main(Function(remaining, body, dict(main.attrs)))
