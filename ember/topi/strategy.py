"""Op strategy: one fused graph kernel (a primitive function) -> TE compute + schedule.

The compiler driver calls this once per distinct kernel that ``fuse_ops`` made::

    s, args = schedule_primitive(func, target)
    prim = ember.lower(s, args, name=func.name)

Each call in the function body becomes TE stages through its op's compute
(``op.extensions["compute"]``, from :mod:`ember.topi`); the default CPU schedule
(:mod:`ember.topi.schedule_x86`) then inlines the injective stages, hosts the
anchor (conv / dense / pooling) inside the output's loops, vectorizes and
parallelizes. The argument order is the C ABI of the kernel: one input per
``func.params`` (same order), then one output per result (per tuple field).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ember import te
from ember.errors import CustomOpError, EmberError, InternalError, ScheduleError
from ember.graph.ir import Call, Constant, Expr, Function, Tuple, TupleGetItem, TupleType, Var
from ember.graph.op import Op
from ember.graph.visitor import post_order
from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi import (  # noqa: F401  (register computes)
    elementwise,
    image,
    nn,
    pool,
    reduce,
    softmax,
    transform,
)
from ember.topi.common import int_shape
from ember.topi.schedule_x86 import schedule_outputs
from ember.topi.x86 import schedule_fast  # also registers the blocked-layout ops' computes

Value = Tensor | tuple[Any, ...]


def _constant_tensor(node: Constant, name: str) -> Tensor:
    """A small constant (fuse_ops keeps only 1-element ones inline) as a TE stage."""
    value = np.asarray(node.value)
    dtype = str(value.dtype)
    if value.size == 0:
        # An empty constant has no element to read: a stage of its shape is never read.
        return te.compute(tuple(value.shape), lambda *i: E.const(0, dtype), name=name)
    if value.size != 1:
        raise ScheduleError(
            f"constant {node.name or name!r} of shape {value.shape} inside a primitive function: "
            "only single-element constants can be compiled into a kernel",
            hint="run fuse_ops, which turns larger constants into kernel parameters",
        )
    scalar = value.reshape(()).item()
    literal = E.const(bool(scalar) if dtype == "bool" else scalar, dtype)
    return te.compute(tuple(value.shape), lambda *i: literal, name=name)


def build_compute(func: Function) -> tuple[list[Tensor], list[Tensor]]:
    """TE tensors of a primitive function: (one placeholder per param, the outputs)."""
    env: dict[Expr, Value] = {}
    params: list[Tensor] = []
    for k, p in enumerate(func.params):
        t = te.placeholder(p.type.shape, p.type.dtype, name=f"p{k}")
        env[p] = t
        params.append(t)
    for node in post_order(func.body):
        if node in env:
            continue
        if isinstance(node, Var):
            raise ScheduleError(
                f"primitive function {func.name!r} reads the free variable {node.name!r}",
                hint="every input of a kernel must be one of its parameters",
            )
        if isinstance(node, Constant):
            env[node] = _constant_tensor(node, f"const{len(env)}")
        elif isinstance(node, Tuple):
            env[node] = tuple(env[f] for f in node.fields)
        elif isinstance(node, TupleGetItem):
            env[node] = env[node.tuple_value][node.index]  # type: ignore[index]
        elif isinstance(node, Call):
            env[node] = _call_compute(node, [env[a] for a in node.args], func)
        else:
            raise ScheduleError(f"primitive function {func.name!r}: unexpected node {node!r}")
    result = env[func.body]
    outputs = list(result) if isinstance(result, tuple) else [result]
    if isinstance(func.ret_type, TupleType) and len(outputs) != len(func.ret_type.fields):
        raise ScheduleError(f"kernel {func.name!r}: result does not match its tuple type")
    # An output must be its own stage (a kernel cannot return its input unchanged).
    fixed: list[Tensor] = []
    seen: set[Tensor] = set()
    for k, t in enumerate(outputs):
        if t in params or t in seen or not isinstance(t.op, te.ComputeOp):
            src = t
            t = te.compute(src.shape, lambda *i, src=src: src[i], name=f"output{k}")
        seen.add(t)
        fixed.append(t)
    return params, fixed


def _call_compute(node: Call, args: list[Value], func: Function) -> Value:
    op = node.op
    if not isinstance(op, Op):
        raise ScheduleError(
            f"kernel {func.name!r} calls a nested function; primitive functions hold op calls only"
        )
    fcompute = op.extensions.get("compute")
    if fcompute is None:
        raise ScheduleError(
            f"op {op.name} (node {node.name!r}) has no TE compute, so kernel {func.name!r} "
            "cannot be compiled",
            hint="add one in ember/topi and register it with register_compute",
        )
    for a in args:
        if not isinstance(a, Tensor):
            raise ScheduleError(f"op {op.name} (node {node.name!r}) got a tuple as an input")
    hint = (
        "a compute gets (inputs: te.Tensors, attrs, out_type) and returns "
        "te.compute(out_type.shape, ...)"
    )
    with _users_code(op, "TE compute", node.name, hint):
        result = fcompute(args, node.attrs, node.type)
    _check_compute(node, result)
    return result


@contextlib.contextmanager
def _users_code(op: Op, what: str, node_name: str | None, hint: str) -> Iterator[None]:
    """Run ``op``'s compute or schedule rule: an exception that is not an ember error is
    ember's bug for a built-in op (raised as it is) and the user's for a custom op, so it
    becomes a CustomOpError naming the op, the node (where there is one) and its library."""
    try:
        yield
    except EmberError:
        raise
    except Exception as err:
        if op.is_builtin:
            raise
        where = f"node {node_name!r}, " if node_name is not None else ""
        raise CustomOpError(
            f"the {what} of custom op {op.name} ({where}library {op.library!r}) failed: "
            f"{type(err).__name__}: {err}",
            hint=hint,
        ) from err


def _check_compute(node: Call, result: Any) -> None:
    """The compute's tensors have the shapes and dtypes the op's type rule gave the call."""
    expected = list(node.type.fields) if isinstance(node.type, TupleType) else [node.type]
    got = list(result) if isinstance(result, tuple) else [result]
    if len(got) == len(expected) and all(isinstance(t, Tensor) for t in got):
        shapes = [int_shape(t) for t in got]  # type: ignore[arg-type]
        if all(
            shape == tuple(want.shape) and t.dtype == want.dtype
            for t, shape, want in zip(got, shapes, expected)
        ):
            return
        described = ", ".join(f"{t.dtype}{list(shape)}" for t, shape in zip(got, shapes))
    else:
        described = f"{len(got)} value(s): " + ", ".join(type(t).__name__ for t in got)
    op = node.op
    what = (
        f"the TE compute of op {op.name} (node {node.name!r}) returned {described}, "
        f"but its type rule says {node.type}"
    )
    if op.is_builtin:  # type: ignore[union-attr]
        raise InternalError(what)
    raise CustomOpError(
        f"{what} (custom op of library {op.library!r})",  # type: ignore[union-attr]
        hint="build the compute's output from out_type (te.compute(out_type.shape, ...)) and "
        "cast to out_type.dtype, or fix the type rule",
    )


def schedule_primitive(func: Function, target: Target) -> tuple[Schedule, list[Tensor]]:
    """TE schedule of one fused kernel.

    Returns ``(schedule, args)``: one ``te.placeholder`` per ``func.params`` (same
    order, shapes, dtypes) followed by the output tensor(s), one per field when
    ``func.ret_type`` is a TupleType.

    >>> s, args = schedule_primitive(func, target)
    >>> kernel = ember.build(s, args, target=target, name=func.name)
    """
    params, outputs = build_compute(func)
    # An op's own schedule rule (a user's op, ember.custom.register_schedule) comes first.
    for op in _ops_with_schedule(func):
        ruled = _apply_schedule_rule(op, outputs, target)
        if ruled is not None:
            return ruled, params + outputs
    # x86 fast paths (ember.topi.x86, x86 helper): kernels anchored on the blocked-layout ops
    # that alter_layout introduces (nn.conv2d_nchwc: register-tiled) and reduction-free
    # kernels writing a layout_transform or a 5-D blocked tensor; the rules return None for
    # every other kernel, which keeps the default schedule below.
    if target.kind == "cpu" and target.is_x86:
        fast = schedule_fast(outputs, target)
        if fast is not None:
            return fast, params + outputs
    return schedule_outputs(outputs, target), params + outputs


def _ops_with_schedule(func: Function) -> list[Op]:
    """The distinct ops of ``func`` that carry a schedule rule, in execution order."""
    ops: list[Op] = []
    for node in post_order(func.body):
        op = node.op if isinstance(node, Call) else None
        if isinstance(op, Op) and "schedule" in op.extensions and op not in ops:
            ops.append(op)
    return ops


def _apply_schedule_rule(op: Op, outputs: list[Tensor], target: Target) -> Schedule | None:
    rule = op.extensions["schedule"]
    hint = (
        "a schedule rule gets the kernel's output tensors and the target and returns "
        "a te.Schedule of them (te.create_schedule([t.op for t in outputs])), or None"
    )
    with _users_code(op, "schedule rule", None, hint):
        sch = rule(list(outputs), target)
    if sch is not None and not isinstance(sch, Schedule):
        raise CustomOpError(
            f"the schedule rule of op {op.name} returned {type(sch).__name__}, not a te.Schedule",
            hint="return te.create_schedule([t.op for t in outputs]) after scheduling it, or "
            "None for the default schedule",
        )
    return sch


__all__ = ["build_compute", "schedule_primitive"]
