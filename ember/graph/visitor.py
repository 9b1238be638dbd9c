"""Walking and rewriting graph IR without recursion.

Real models are deep (a 10,000-node chain is normal after unrolling, and
DenseNet-201 / Inception have thousands of shared nodes), so every walk here
uses an explicit stack and visits each node of the DAG exactly once, keyed by
node identity::

    for node in post_order(mod.main.body):   # children before parents
        ...

    class DropIdentity(ExprMutator):
        def visit_call(self, call, args):
            if call.op.name == "identity":
                return args[0]
            return super().visit_call(call, args)   # rebuilds only if an arg changed

    new_body = DropIdentity().visit(mod.main.body)

A Call whose ``op`` is a :class:`Function` (a fused kernel) is a leaf-like
operator here: walks do not enter the function's body; use
:func:`post_order` on ``call.op.body`` for that. The same holds for the
branches and bodies control-flow calls keep in their attributes; a pass that
rewrites inside them too applies itself to each body as a module of its own
(:func:`with_bodies`, built on :func:`map_subfunctions`)::

    def my_pass(mod: Module) -> Module:
        mod = with_bodies(mod, my_pass)      # branches and loop bodies first, recursively
        ...
"""

from __future__ import annotations

from collections.abc import Callable

from ember.errors import InternalError
from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    Var,
    children,
    post_order,
    replace_subfunctions,
    subfunctions,
)


def use_counts(*roots: Expr | Function) -> dict[Expr, int]:
    """How many times each node reachable from ``roots`` is used as an operand.

    A root itself gets one extra use (the function's result is a use the graph
    cannot see), so ``count == 1`` means "exactly one consumer".
    """
    nodes = post_order(*roots)
    counts: dict[Expr, int] = dict.fromkeys(nodes, 0)
    for node in nodes:
        for child in children(node):
            counts[child] += 1
    for root in roots:
        counts[root.body if isinstance(root, Function) else root] += 1
    return counts


def rebuild_call(call: Call, args: tuple[Expr, ...]) -> Call:
    """``call`` with ``args``; the same object when every arg is unchanged."""
    if len(args) == len(call.args) and all(a is b for a, b in zip(args, call.args)):
        return call
    return Call(call.op, tuple(args), call.attrs, call.name)


def rebuild_tuple(tup: Tuple, fields: tuple[Expr, ...]) -> Tuple:
    """``tup`` with ``fields``; the same object when every field is unchanged."""
    if len(fields) == len(tup.fields) and all(a is b for a, b in zip(fields, tup.fields)):
        return tup
    return Tuple(tuple(fields), tup.name)


def rebuild_tuple_get_item(item: TupleGetItem, value: Expr) -> TupleGetItem:
    """``item`` reading from ``value``; the same object when ``value`` is unchanged."""
    if value is item.tuple_value:
        return item
    return TupleGetItem(value, item.index, item.name)


class ExprVisitor:
    """Calls ``visit_<kind>(node)`` once per node, children before parents.

    Override ``visit_call``, ``visit_tuple``, ``visit_tuple_get_item``,
    ``visit_var`` or ``visit_constant``; the defaults do nothing.

    >>> class CountConvs(ExprVisitor):  # doctest: +SKIP
    ...     n = 0
    ...     def visit_call(self, call):
    ...         self.n += call.op.name == "nn.conv2d"
    """

    def visit(self, *roots: Expr | Function) -> None:
        for node in post_order(*roots):
            if isinstance(node, Call):
                self.visit_call(node)
            elif isinstance(node, Tuple):
                self.visit_tuple(node)
            elif isinstance(node, TupleGetItem):
                self.visit_tuple_get_item(node)
            elif isinstance(node, Var):
                self.visit_var(node)
            else:
                self.visit_constant(node)  # type: ignore[arg-type]

    def visit_call(self, call: Call) -> None:
        pass

    def visit_tuple(self, tup: Tuple) -> None:
        pass

    def visit_tuple_get_item(self, item: TupleGetItem) -> None:
        pass

    def visit_var(self, var: Var) -> None:
        pass

    def visit_constant(self, const: Constant) -> None:
        pass


class ExprMutator:
    """Rewrites a graph bottom-up; each original node is rewritten once.

    Each ``visit_<kind>`` gets the *original* node and its *already rewritten*
    operands, and returns the replacement. The defaults rebuild the node only if
    an operand changed, so an untouched subgraph keeps its identity (and a pass
    that changes nothing returns the very same graph). ``self.memo`` maps every
    original node visited so far to its replacement; it persists across calls
    of :meth:`visit`, so several roots sharing nodes are rewritten consistently.

    >>> class ReluToSigmoid(ExprMutator):  # doctest: +SKIP
    ...     def visit_call(self, call, args):
    ...         if call.op.name == "nn.relu":
    ...             return ember.ops.call("sigmoid", args[0], name=call.name)
    ...         return super().visit_call(call, args)
    """

    def __init__(self) -> None:
        self.memo: dict[Expr, Expr] = {}

    def visit(self, expr: Expr) -> Expr:
        """The rewritten ``expr``."""
        memo = self.memo
        if expr in memo:
            return memo[expr]
        for node in post_order(expr):
            if node in memo:
                continue
            if isinstance(node, Call):
                new = self.visit_call(node, tuple(memo[a] for a in node.args))
            elif isinstance(node, Tuple):
                new = self.visit_tuple(node, tuple(memo[f] for f in node.fields))
            elif isinstance(node, TupleGetItem):
                new = self.visit_tuple_get_item(node, memo[node.tuple_value])
            elif isinstance(node, Var):
                new = self.visit_var(node)
            else:
                new = self.visit_constant(node)  # type: ignore[arg-type]
            if not isinstance(new, Expr):
                raise InternalError(
                    f"{type(self).__name__} returned {type(new).__name__} for {node!r}, "
                    "expected a graph expression"
                )
            memo[node] = new
        return memo[expr]

    def visit_function(self, func: Function) -> Function:
        """``func`` with its params and body rewritten (same object if nothing changed)."""
        params = tuple(self.visit(p) for p in func.params)
        for old, new in zip(func.params, params):
            if not isinstance(new, Var):
                raise InternalError(
                    f"{type(self).__name__} replaced parameter %{old.name} of {func.name} "
                    f"with a {type(new).__name__}; a parameter must stay a Var"
                )
        body = self.visit(func.body)
        if body is func.body and all(a is b for a, b in zip(params, func.params)):
            return func
        return Function(params, body, dict(func.attrs))  # type: ignore[arg-type]

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        return rebuild_call(call, args)

    def visit_tuple(self, tup: Tuple, fields: tuple[Expr, ...]) -> Expr:
        return rebuild_tuple(tup, fields)

    def visit_tuple_get_item(self, item: TupleGetItem, value: Expr) -> Expr:
        return rebuild_tuple_get_item(item, value)

    def visit_var(self, var: Var) -> Expr:
        return var

    def visit_constant(self, const: Constant) -> Expr:
        return const


class _MapSubfunctions(ExprMutator):
    def __init__(self, transform: Callable[[Function], Function]) -> None:
        super().__init__()
        self.transform = transform

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        call = rebuild_call(call, args)
        subs = subfunctions(call.attrs)
        if not subs:
            return call
        return replace_subfunctions(call, {name: self.transform(f) for name, f in subs})


def map_subfunctions(func: Function, transform: Callable[[Function], Function]) -> Function:
    """``func`` with ``transform`` applied to every function held in a call's attributes
    (the branches and loop bodies of control-flow calls; not fused kernels). The same
    object when nothing changed. ``transform`` sees one level: to reach nested control
    flow it calls ``map_subfunctions`` itself (a pass applied to a body does that).

    >>> fold = lambda f: fold_constants(Module.from_function(f)).main  # doctest: +SKIP
    >>> main = map_subfunctions(mod.main, fold)  # doctest: +SKIP
    """
    if not any(isinstance(n, Call) and subfunctions(n.attrs) for n in post_order(func)):
        return func
    return _MapSubfunctions(transform).visit_function(func)


def with_bodies(mod: Module, pass_fn: Callable[[Module], Module]) -> Module:
    """``mod`` with ``pass_fn`` applied to every control-flow body of ``main``, each as a
    one-function module (``pass_fn`` must keep a body's parameter and result types).

    >>> mod = with_bodies(mod, fold_constants)  # doctest: +SKIP
    """
    main = map_subfunctions(mod.main, lambda f: pass_fn(Module.from_function(f)).main)
    return mod if main is mod.main else mod.with_main(main)


def inline_function(func: Function, args: tuple[Expr, ...]) -> Expr:
    """``func``'s body with its parameters replaced by ``args`` (a call, inlined).

    >>> inline_function(Function((a,), call("nn.relu", a)), (x,))  # doctest: +SKIP
    Call(nn.relu) -> ...
    """
    if len(args) != len(func.params):
        raise InternalError(
            f"inlining {func.name}: {len(args)} argument(s) for {len(func.params)} parameter(s)"
        )
    mutator = ExprMutator()
    mutator.memo.update(zip(func.params, args))
    return mutator.visit(func.body)
