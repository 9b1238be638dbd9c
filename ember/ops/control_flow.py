"""Control flow: ``cf.if`` and ``cf.loop``, ops whose attributes hold their bodies.

A branch or loop body is a closed :class:`~ember.graph.ir.Function`: every value it
reads from the enclosing graph is an explicit argument of the call ("captured"),
passed as the *trailing* arguments of the call and received as the trailing
parameters of each body, in the same order::

    then_fn = Function((a, b), ember.ops.call("add", a, b))
    else_fn = Function((a2, b2), ember.ops.call("subtract", a2, b2))
    y = ember.ops.call("cf.if", cond, x, w, then_branch=then_fn, else_branch=else_fn)

    # for (i = 0; i < trip && cond; ++i) { cond, acc = body(i, cond, acc, x) }
    body = Function((i, c, acc, x2), Tuple((c, ember.ops.call("add", acc, x2))))
    out = ember.ops.call("cf.loop", trip, cond, acc0, x, body=body, num_carried=1)
    acc = TupleGetItem(out, 0)

Why ops and not new IR node kinds: a control-flow call is one opaque node to every
walk, mutator and pass that does not care (fusion leaves it alone, as an OPAQUE op;
the memory planner sees its arguments and results like a kernel's), and the places
that must see inside (the verifier, printer, structural equality, the passes that
optimize or fuse bodies, the AOT executor) find the bodies through one accessor,
:func:`ember.graph.ir.subfunctions`. The numpy reference below runs the bodies with the
graph's own executor, so :func:`ember.graph.interpret` needs nothing new.

- ``cf.if(cond, *captured)``: ``cond`` is a bool tensor of one element; both branches
  take the captured values and return the same type, which is the call's type.
- ``cf.loop(trip_count, cond, *carried, *captured)``, ONNX ``Loop`` semantics: the body
  takes ``(iteration: int64 (), cond: bool (), *carried, *captured)`` and returns the
  tuple ``(cond, *carried, *scan_slices)``; a carried value keeps its type from one
  iteration to the next. The call returns the tuple ``(*carried, *scans)``, where each
  scan output stacks one slice per iteration: ``scan_length`` rows, so a loop with scan
  outputs must run exactly ``scan_length`` iterations (the frontends only make such loops
  when the trip count is static and nothing stops the loop early; the reference checks).
  ``trip_count`` is an int64 and ``cond`` a bool tensor of one element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.errors import AttrError, EmberRuntimeError, ShapeError
from ember.graph.analysis import function_flops
from ember.graph.interpreter import run_function
from ember.graph.ir import Call, Constant, Function, TensorType, TupleType, Type
from ember.ops.registry import OpPattern, register_op

ITERATION_TYPE = TensorType((), "int64")
CONDITION_TYPE = TensorType((), "bool")


def _is_flag(t: Type, dtype: str) -> bool:
    """A one-element tensor of ``dtype`` (ONNX gives conditions as shape () or (1,))."""
    return isinstance(t, TensorType) and t.dtype == dtype and t.size == 1


def _check_function(value: Any, what: str) -> None:
    if not isinstance(value, Function):
        raise AttrError(f"{what} must be a graph Function, got {type(value).__name__}")


def _check_captured(types: list[Type], func: Function, first: int, what: str) -> None:
    """``types`` (the call's trailing argument types) match ``func``'s params from ``first``."""
    params = func.params[first:]
    if len(params) != len(types):
        raise ShapeError(
            f"{what} takes {len(params)} captured value(s) after its first {first} "
            f"parameter(s), the call passes {len(types)}"
        )
    for i, (t, p) in enumerate(zip(types, params)):
        if t != p.type:
            raise ShapeError(
                f"{what}: captured value {i} (%{p.name}) is {t}, the body takes {p.type}"
            )


# ----------------------------------------------------------------------------- cf.if


@dataclass(frozen=True)
class IfAttrs:
    """The two branches; each takes the captured values (the call's arguments after ``cond``)."""

    then_branch: Function
    else_branch: Function

    def __post_init__(self) -> None:
        _check_function(self.then_branch, "then_branch")
        _check_function(self.else_branch, "else_branch")


if_ = register_op(
    "cf.if",
    IfAttrs,
    OpPattern.OPAQUE,
    num_inputs=None,
    doc="run then_branch or else_branch on the captured values, by a bool condition",
)


@if_.type_rule
def _if_type(types: list[Type], attrs: IfAttrs) -> Type:
    if not types or not _is_flag(types[0], "bool"):
        got = types[0] if types else "nothing"
        raise ShapeError(f"the condition must be a one-element bool tensor, got {got}")
    for name, branch in (("then_branch", attrs.then_branch), ("else_branch", attrs.else_branch)):
        _check_captured(types[1:], branch, 0, name)
    then_type, else_type = attrs.then_branch.ret_type, attrs.else_branch.ret_type
    if then_type != else_type:
        raise ShapeError(
            f"the branches return different types: then {then_type}, else {else_type}",
            hint="ember compiles static shapes: both branches must give the same shapes",
        )
    return then_type


@if_.reference
def _if_ref(inputs: list[np.ndarray], attrs: IfAttrs) -> Any:
    taken = attrs.then_branch if bool(np.asarray(inputs[0]).reshape(-1)[0]) else attrs.else_branch
    return run_function(taken, list(inputs[1:]))


@if_.flop_rule
def _if_flops(call: Call) -> int:
    # the costlier branch: what one inference may have to run
    attrs = call.attrs
    return max(function_flops(attrs.then_branch), function_flops(attrs.else_branch))


# ----------------------------------------------------------------------------- cf.loop


@dataclass(frozen=True)
class LoopAttrs:
    """``body``, how many leading values after (trip count, cond) are carried, and the
    static number of rows of every scan output (0 when the body has none)."""

    body: Function
    num_carried: int
    scan_length: int = 0

    def __post_init__(self) -> None:
        _check_function(self.body, "body")
        if self.num_carried < 0 or self.scan_length < 0:
            raise AttrError(
                f"num_carried ({self.num_carried}) and scan_length ({self.scan_length}) "
                "must not be negative"
            )


loop = register_op(
    "cf.loop",
    LoopAttrs,
    OpPattern.OPAQUE,
    num_inputs=None,
    doc="ONNX Loop: run the body while i < trip_count and cond, carrying values",
)


def num_scan_outputs(attrs: LoopAttrs) -> int:
    """How many scan outputs a loop's body makes (its results after cond and carried)."""
    ret = attrs.body.ret_type
    return len(ret.fields) - 1 - attrs.num_carried if isinstance(ret, TupleType) else 0


@loop.type_rule
def _loop_type(types: list[Type], attrs: LoopAttrs) -> Type:
    n = attrs.num_carried
    if len(types) < 2 + n:
        raise ShapeError(
            f"expected trip count, condition and {n} carried value(s), got {len(types)}"
        )
    if not _is_flag(types[0], "int64"):
        raise ShapeError(f"the trip count must be a one-element int64 tensor, got {types[0]}")
    if not _is_flag(types[1], "bool"):
        raise ShapeError(f"the condition must be a one-element bool tensor, got {types[1]}")
    body = attrs.body
    if len(body.params) < 2 + n:
        raise ShapeError(f"the body takes {len(body.params)} parameters, fewer than 2 + {n}")
    if body.params[0].type != ITERATION_TYPE or body.params[1].type != CONDITION_TYPE:
        raise ShapeError(
            f"the body's first parameters must be the iteration ({ITERATION_TYPE}) and the "
            f"condition ({CONDITION_TYPE}), got {body.params[0].type} and {body.params[1].type}"
        )
    _check_captured(types[2 + n :], body, 2 + n, "the body")
    ret = body.ret_type
    if not isinstance(ret, TupleType) or len(ret.fields) < 1 + n:
        raise ShapeError(f"the body must return (cond, {n} carried, scans...), got {ret}")
    if ret.fields[0] != CONDITION_TYPE:
        raise ShapeError(f"the body's first result must be the condition, got {ret.fields[0]}")
    carried = []
    for k in range(n):
        given, param, result = types[2 + k], body.params[2 + k].type, ret.fields[1 + k]
        if not given == param == result:
            raise ShapeError(
                f"carried value {k} (%{body.params[2 + k].name}) enters as {given}, the body "
                f"takes {param} and returns {result}",
                hint="a loop compiles only when its carried values keep their shapes",
            )
        carried.append(given)
    scans: list[Type] = []
    for k, t in enumerate(ret.fields[1 + n :]):
        if not isinstance(t, TensorType):
            raise ShapeError(f"scan output {k} of the body is {t}, not a tensor")
        scans.append(TensorType((attrs.scan_length, *t.shape), t.dtype))
    return TupleType((*carried, *scans))


def _scalar(value: np.ndarray) -> Any:
    return np.asarray(value).reshape(-1)[0]


@loop.reference
def _loop_ref(inputs: list[np.ndarray], attrs: LoopAttrs) -> Any:
    n = attrs.num_carried
    trip, cond = int(_scalar(inputs[0])), bool(_scalar(inputs[1]))
    carried, captured = list(inputs[2 : 2 + n]), list(inputs[2 + n :])
    scans: list[list[np.ndarray]] = [[] for _ in range(num_scan_outputs(attrs))]
    i = 0
    while i < trip and cond:
        args = [np.asarray(i, "int64"), np.asarray(cond), *carried, *captured]
        out = run_function(attrs.body, args)
        cond, carried = bool(out[0]), list(out[1 : 1 + n])
        for rows, row in zip(scans, out[1 + n :]):
            rows.append(row)
        i += 1
    if scans and i != attrs.scan_length:
        raise EmberRuntimeError(
            f"cf.loop ran {i} iteration(s), but its scan outputs have {attrs.scan_length} rows",
            hint="a loop with scan outputs must run its static trip count; its condition "
            "stopped it early",
        )
    ret = attrs.body.ret_type
    assert isinstance(ret, TupleType)
    stacked = [
        np.stack(rows) if rows else np.zeros((0, *t.shape), t.dtype)  # type: ignore[union-attr]
        for rows, t in zip(scans, ret.fields[1 + n :])
    ]
    return (*carried, *stacked)


@loop.flop_rule
def _loop_flops(call: Call) -> int:
    # the body's FLOPs per iteration times the trip count where it is known, else once
    trip = call.args[0]
    iterations = call.attrs.scan_length or 1
    if isinstance(trip, Constant):
        iterations = max(0, min(int(_scalar(trip.value)), 2**31))
    return iterations * function_flops(call.attrs.body)


# ----------------------------------------------------------------------------- helpers

CONTROL_FLOW_OPS = ("cf.if", "cf.loop")
"""The ops whose bodies the AOT executor runs as control flow around their own kernels."""


def first_captured(call: Call) -> int:
    """Index of the first captured argument of a control-flow call (they run to the end).

    The captured arguments are the trailing parameters of every body, in the same order.
    """
    if call.op is if_:
        return 1
    if call.op is loop:
        return 2 + call.attrs.num_carried
    raise AttrError(f"{call.op.name} is not a control-flow op")


__all__ = [
    "CONDITION_TYPE",
    "CONTROL_FLOW_OPS",
    "ITERATION_TYPE",
    "IfAttrs",
    "LoopAttrs",
    "first_captured",
    "if_",
    "loop",
    "num_scan_outputs",
]
