"""Check that a graph module is well formed, naming the first bad node.

:func:`verify` checks, for ``main`` and every function reachable from it
(module functions and the fused functions that calls invoke):

- parameters are Vars with distinct names;
- every Var used in a body is a parameter of that function (no free variables);
- every node's stored type equals the type its op's rule derives from its
  operands now (catches graphs edited behind the constructors' back);
- TupleGetItem indices are in range and read tuple-typed values;
- Calls call an Op or a Function, with attributes of the op's attribute class;
- the functions control-flow calls hold in their attributes (branches, loop
  bodies) are checked the same way, as closed functions of their own.

::

    verify(mod)            # returns None, or raises VerifyError
"""

from __future__ import annotations

from ember.errors import EmberError, VerifyError
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
    Var,
    subfunctions,
)
from ember.graph.op import Op
from ember.graph.visitor import post_order


def _describe(node: Expr) -> str:
    if isinstance(node, Call):
        op = node.op.name
        return f"{op} node {node.name!r}" if node.name else f"{op} node"
    kind = type(node).__name__
    return f"{kind} {node.name!r}" if node.name else kind


def _check_params(func: Function, where: str) -> None:
    seen: dict[str, int] = {}
    for i, param in enumerate(func.params):
        if not isinstance(param, Var):
            raise VerifyError(
                f"{where}: parameter {i} is a {type(param).__name__}, not a Var",
                hint="function parameters must be ember.graph.Var objects",
            )
        if param.name in seen:
            raise VerifyError(
                f"{where}: parameters {seen[param.name]} and {i} are both named %{param.name}",
                hint="give every input and weight a distinct name",
            )
        seen[param.name] = i


def _check_node(node: Expr, where: str) -> None:
    if isinstance(node, Call):
        if not isinstance(node.op, Op | Function):
            raise VerifyError(
                f"{where}: {node.name!r} calls a {type(node.op).__name__}, not an Op or Function"
            )
        if isinstance(node.op, Op) and not isinstance(node.attrs, node.op.attrs_type):
            raise VerifyError(
                f"{where}: {_describe(node)} has attrs of type {type(node.attrs).__name__}, "
                f"expected {node.op.attrs_type.__name__}",
                hint="build calls with ember.ops.call(op_name, *args, **attrs)",
            )
        try:
            derived = node.op.infer_type(node.args, node.attrs, node.name)
        except EmberError as err:
            raise VerifyError(f"{where}: {_describe(node)} is ill-typed: {err.message}") from None
    elif isinstance(node, Tuple):
        derived = TupleType(tuple(f.type for f in node.fields))
    elif isinstance(node, TupleGetItem):
        tuple_type = node.tuple_value.type
        if not isinstance(tuple_type, TupleType):
            raise VerifyError(
                f"{where}: {_describe(node)} reads field {node.index} of a {tuple_type}, "
                "which is not a tuple"
            )
        if not 0 <= node.index < len(tuple_type.fields):
            raise VerifyError(
                f"{where}: {_describe(node)} reads field {node.index} of a tuple with "
                f"{len(tuple_type.fields)} field(s)"
            )
        derived = tuple_type.fields[node.index]
    elif isinstance(node, Constant):
        derived = TensorType(node.value.shape, str(node.value.dtype))
    else:
        derived = node.type
        if not isinstance(derived, TensorType):
            raise VerifyError(f"{where}: %{node.name} has type {derived}, expected a tensor type")
    if node.type != derived:
        raise VerifyError(
            f"{where}: {_describe(node)} is recorded as {node.type} "
            f"but its operands give {derived}",
            hint="rebuild the node instead of editing it; types are derived when nodes are built",
        )


def verify_function(func: Function, where: str = "@main") -> None:
    """Check one function (and the functions its calls invoke); raise VerifyError."""
    pending: list[tuple[Function, str]] = [(func, where)]
    done: set[Function] = set()
    while pending:
        fn, at = pending.pop()
        if fn in done:
            continue
        done.add(fn)
        if not isinstance(fn.body, Expr):
            raise VerifyError(f"{at}: the body is a {type(fn.body).__name__}, not an expression")
        _check_params(fn, at)
        params = set(fn.params)
        by_name = {p.name: p for p in fn.params}
        for node in post_order(fn.body):
            if isinstance(node, Var) and node not in params:
                detail = (
                    "a different Var object than the parameter of the same name"
                    if node.name in by_name
                    else "not a parameter of the function"
                )
                raise VerifyError(
                    f"{at}: free variable %{node.name}: {node.type} is {detail}",
                    hint="add it to the function's params, or bind it as a constant",
                )
            _check_node(node, at)
            if isinstance(node, Call) and isinstance(node.op, Function):
                pending.append((node.op, f"{at} -> fn {node.op.name}"))
            if isinstance(node, Call):
                for field_name, sub in subfunctions(node.attrs):
                    pending.append((sub, f"{at} -> {_describe(node)} {field_name}"))


def verify(mod: Module) -> None:
    """Check that ``mod`` is well formed; raise :class:`VerifyError` naming the bad node.

    >>> verify(Module.from_function(Function((x,), call("nn.relu", x))))  # doctest: +SKIP
    """
    if not isinstance(mod, Module):
        raise VerifyError(f"expected a graph Module, got a {type(mod).__name__}")
    if "main" not in mod.functions:
        raise VerifyError(
            "the module has no main function "
            f"(it has: {', '.join(sorted(mod.functions)) or 'none'})"
        )
    for name, func in mod.functions.items():
        if not isinstance(func, Function):
            raise VerifyError(f"module entry @{name} is a {type(func).__name__}, not a Function")
        verify_function(func, f"@{name}")
