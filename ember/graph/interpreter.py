"""The numpy reference executor: runs a graph with each op's numpy reference.

This is the oracle of every numerical test, so it is simple on purpose: nodes
run one at a time in post order (no recursion, so 10,000-deep graphs run), and
each intermediate array is dropped as soon as its last consumer has run (a
ResNet-50 at 224x224 keeps a few activations alive, not all of them)::

    outs = ember.graph.interpret(mod, params, {"data": x})   # list of arrays

Inputs are checked by name, shape and dtype before anything runs. Arrays must
already have the declared dtype (a float64 array for a float32 input is an
error, not a silent cast); Python lists and scalars are converted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ember.errors import CustomOpError, EmberError, EmberRuntimeError, InternalError
from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    Var,
)
from ember.graph.op import Op
from ember.graph.visitor import children, post_order

Value = np.ndarray | tuple  # a tensor, or a (nested) tuple of tensors


def _describe_input(var: Var) -> str:
    return f"{var.name!r} {var.type}"


def _convert(value: Any, var: Var, role: str) -> np.ndarray:
    """``value`` as an array of ``var``'s type; EmberRuntimeError on a mismatch."""
    expected = var.type
    assert isinstance(expected, TensorType)
    if isinstance(value, list | tuple | int | float | bool):
        try:
            array = np.asarray(value, dtype=expected.dtype)
        except (TypeError, ValueError) as err:
            raise EmberRuntimeError(
                f"{role} {var.name!r}: cannot convert the given {type(value).__name__} "
                f"to {expected.dtype}: {err}"
            ) from None
    elif isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if str(array.dtype) != expected.dtype:
            raise EmberRuntimeError(
                f"{role} {var.name!r} has dtype {array.dtype}, expected {expected.dtype}",
                hint=f"convert it first: x.astype(np.{expected.dtype})",
            )
    else:
        raise EmberRuntimeError(
            f"{role} {var.name!r} is a {type(value).__name__}; expected a numpy array of "
            f"shape {expected.shape} and dtype {expected.dtype}"
        )
    if array.shape != expected.shape:
        raise EmberRuntimeError(
            f"{role} {var.name!r} has shape {array.shape}, expected {expected.shape}",
            hint="the shapes were fixed when the model was imported; re-import it "
            "(or run infer_types with the new shapes) to change them",
        )
    return array


def bind_inputs(
    func: Function, params: Mapping[str, Any] | None, inputs: Mapping[str, Any]
) -> dict[Var, np.ndarray]:
    """Match ``inputs`` and ``params`` to ``func``'s parameters by name, checking each.

    ``inputs`` must name only parameters; ``params`` may hold extra names (weights
    already bound as constants by ``optimize``). An input given in both wins.
    """
    params = params or {}
    by_name = {p.name: p for p in func.params}
    unknown = sorted(set(inputs) - set(by_name))
    if unknown:
        expected = [p for p in func.params if p.name not in params]
        raise EmberRuntimeError(
            f"unknown input name(s) {', '.join(map(repr, unknown))}; the model expects "
            f"{', '.join(_describe_input(p) for p in expected) or 'no inputs'}",
        )
    values: dict[Var, np.ndarray] = {}
    missing = []
    for var in func.params:
        if var.name in inputs:
            values[var] = _convert(inputs[var.name], var, "input")
        elif var.name in params:
            values[var] = _convert(params[var.name], var, "parameter")
        else:
            missing.append(var)
    if missing:
        raise EmberRuntimeError(
            f"missing input(s): {', '.join(_describe_input(v) for v in missing)}",
            hint="pass every model input in `inputs` and every weight in `params`",
        )
    return values


def _reference_error(node: Call, what: str) -> Exception:
    """A wrong reference result: an ember bug for a built-in op, the user's for a custom one."""
    op = node.op
    if isinstance(op, Op) and not op.is_builtin:
        return CustomOpError(
            f"the numpy reference of custom op {op.name} (node {node.name!r}, library "
            f"{op.library!r}) {what}",
            hint="the reference must return exactly the type its type rule gives "
            "(np.asarray(result, dtype=...) fixes a dtype)",
        )
    return InternalError(f"reference of {op.name} (node {node.name!r}) {what}")


def _check_result(node: Call, result: Any, expected: Any) -> Value:
    """The reference's result, checked against the node's type (a mismatch is a bug)."""
    if isinstance(expected, TensorType):
        if isinstance(result, tuple):
            raise _reference_error(node, "returned a tuple for a tensor result")
        array = np.asarray(result)
        if array.shape != expected.shape or str(array.dtype) != expected.dtype:
            raise _reference_error(
                node, f"returned {array.dtype}{list(array.shape)}, its type rule says {expected}"
            )
        return array
    if not isinstance(result, tuple | list) or len(result) != len(expected.fields):
        raise _reference_error(
            node, f"returned {type(result).__name__}, its type rule says {expected}"
        )
    return tuple(_check_result(node, r, t) for r, t in zip(result, expected.fields))


def evaluate_call(node: Call, args: list[Value]) -> Value:
    """Run one call (an op's reference, or a fused function) on operand values."""
    if isinstance(node.op, Function):
        return run_function(node.op, args)
    try:
        result = node.op.evaluate(args, node.attrs)  # type: ignore[arg-type]
    except EmberError:
        raise
    except Exception as err:  # a reference that fails on well-typed inputs is a bug
        if not node.op.is_builtin:  # type: ignore[union-attr]
            raise _reference_error(node, f"failed: {type(err).__name__}: {err}") from err
        raise InternalError(
            f"the numpy reference of {node.op.name} (node {node.name!r}) failed: "
            f"{type(err).__name__}: {err}"
        ) from err
    return _check_result(node, result, node.type)


def run_function(func: Function, args: list[Value]) -> Value:
    """Evaluate ``func`` on already-checked argument values (in parameter order)."""
    env: dict[Expr, Value] = dict(zip(func.params, args))
    nodes = post_order(func.body)
    # Remaining consumers of each node; an intermediate is dropped when it reaches 0.
    remaining: dict[Expr, int] = dict.fromkeys(nodes, 0)
    for node in nodes:
        for child in children(node):
            remaining[child] += 1
    for node in nodes:
        if isinstance(node, Var):
            if node not in env:
                raise EmberRuntimeError(
                    f"free variable %{node.name} in {func.name}: it is not a parameter",
                    hint="run ember.graph.verify(mod) to find malformed graphs",
                )
            continue
        if isinstance(node, Constant):
            env[node] = node.value
            continue
        operands = [env[c] for c in children(node)]
        if isinstance(node, Call):
            env[node] = evaluate_call(node, operands)
        elif isinstance(node, Tuple):
            env[node] = tuple(operands)
        else:
            assert isinstance(node, TupleGetItem)
            env[node] = operands[0][node.index]
        del operands
        for child in children(node):
            remaining[child] -= 1
            if remaining[child] == 0 and not isinstance(child, Var):
                del env[child]
    return env[func.body]


def _flatten(value: Value, out: list[np.ndarray]) -> None:
    if isinstance(value, tuple):
        for v in value:
            _flatten(v, out)
    else:
        out.append(value)


def interpret(
    mod: Module | Function,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> list[np.ndarray]:
    """Run ``main`` with numpy references; one array per output (tuples are flattened).

    >>> outs = interpret(mod, params, {"data": x})  # doctest: +SKIP
    >>> outs[0].shape
    (1, 1000)
    """
    func = mod if isinstance(mod, Function) else mod.main
    values = bind_inputs(func, params, inputs or {})
    result = run_function(func, [values[p] for p in func.params])
    outputs: list[np.ndarray] = []
    _flatten(result, outputs)
    # Never hand back the caller's own input, a read-only constant, or one array twice.
    fresh: list[np.ndarray] = []
    seen: set[int] = set()
    for out in outputs:
        if not out.flags.writeable or id(out) in seen or any(out is v for v in values.values()):
            out = out.copy()
        seen.add(id(out))
        fresh.append(out)
    return fresh
