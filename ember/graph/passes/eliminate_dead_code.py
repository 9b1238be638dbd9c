"""eliminate_dead_code: drop what no output depends on.

In a dataflow graph a node nobody uses is already gone (a body holds only what
its result reaches), so what is left to remove is indirect:

Needs: a module.
Guarantees:

- reading field ``i`` of a literal ``Tuple`` becomes that field, so the
  tuple's other fields (and everything only they use) drop out;
- module functions other than ``main`` that no call reaches are removed;
- with ``remove_unused_params=True``, ``main`` parameters the body never
  reads are removed too. This is off by default because it changes the
  model's input list (a caller passing that input would then get an
  "unknown input" error).

The result computes the same values.

    mod = eliminate_dead_code(mod)
"""

from __future__ import annotations

from ember.graph.ir import Call, Expr, Function, Module, Tuple, TupleGetItem
from ember.graph.visitor import ExprMutator, post_order, with_bodies


class _ForwardTupleFields(ExprMutator):
    def visit_tuple_get_item(self, item: TupleGetItem, value: Expr) -> Expr:
        if isinstance(value, Tuple):
            return value.fields[item.index]
        return super().visit_tuple_get_item(item, value)


def _called_functions(func: Function) -> set[Function]:
    """Functions invoked (transitively) by calls in ``func``."""
    found: set[Function] = set()
    pending = [func]
    while pending:
        for node in post_order(pending.pop()):
            if isinstance(node, Call) and isinstance(node.op, Function) and node.op not in found:
                found.add(node.op)
                pending.append(node.op)
    return found


def eliminate_dead_code(mod: Module, *, remove_unused_params: bool = False) -> Module:
    """``mod`` without dead tuple fields and unreachable functions (see module doc)."""
    mod = with_bodies(mod, eliminate_dead_code)  # control-flow branches and bodies too
    main = _ForwardTupleFields().visit_function(mod.main)
    if remove_unused_params:
        used = set(post_order(main.body))
        params = tuple(p for p in main.params if p in used)
        if len(params) != len(main.params):
            main = Function(params, main.body, dict(main.attrs))
    reachable = _called_functions(main)
    functions = {
        name: (main if name == "main" else func)
        for name, func in mod.functions.items()
        if name == "main" or func in reachable
    }
    if main is mod.main and len(functions) == len(mod.functions):
        return mod
    return Module(functions)
