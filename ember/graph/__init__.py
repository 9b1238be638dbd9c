"""Graph IR: typed dataflow graphs of ops, with printer, verifier, passes and a reference executor.

::

    from ember import graph
    x = graph.Var("data", graph.TensorType((1, 3, 8, 8)))
    mod = graph.Module.from_function(graph.Function((x,), ember.ops.call("nn.relu", x)))
    print(mod)                                    # readable text (graph.print_module)
    graph.verify(mod)                             # raises VerifyError on malformed graphs
    outs = graph.interpret(mod, {}, {"data": a})  # numpy reference executor
    mod = graph.passes.optimize(mod, params)      # bind weights + default pass pipeline

``graph.passes`` and ``graph.analysis`` load on first use (they are heavier and
import nothing the IR itself needs).
"""

from __future__ import annotations

import importlib
from typing import Any

from ember.graph.interpreter import interpret
from ember.graph.ir import (
    DTYPES,
    Call,
    Constant,
    Expr,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    TupleType,
    Type,
    Var,
    call,
    const,
    print_expr,
    print_function,
    print_module,
)
from ember.graph.structural import structural_equal, structural_hash
from ember.graph.verifier import verify
from ember.graph.visitor import ExprMutator, ExprVisitor, post_order, use_counts

_LAZY = {"passes", "analysis"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"ember.graph.{name}")
    raise AttributeError(f"module 'ember.graph' has no attribute {name!r}")


__all__ = [
    "DTYPES",
    "Call",
    "Constant",
    "Expr",
    "ExprMutator",
    "ExprVisitor",
    "Function",
    "Module",
    "TensorType",
    "Tuple",
    "TupleGetItem",
    "TupleType",
    "Type",
    "Var",
    "analysis",
    "call",
    "const",
    "interpret",
    "passes",
    "post_order",
    "print_expr",
    "print_function",
    "print_module",
    "structural_equal",
    "structural_hash",
    "use_counts",
    "verify",
]
