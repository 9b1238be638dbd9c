"""Converters of ONNX control flow: If, Loop and Scan.

What happens to each, decided at import:

- **If** with a condition known at import (a constant, or computed from initializers):
  the branch it takes is converted in place (nodes ``<if>/then_branch/...``); the
  other is never looked at. Otherwise a ``cf.if`` whose branches are closed functions
  of the values they read from outside (see :mod:`ember.frontend.onnx.scope`); both
  branches must then give the same types.
- **Loop** with a static trip count, a condition that stays known at import in every
  iteration, and at most :data:`MAX_UNROLLED_NODES` body nodes over all iterations: unrolled
  (nodes ``<loop>/iter<i>/...``). Unrolled, a carried value may change its shape and
  may be a sequence, and shapes inside the body may depend on the iteration.
  Otherwise a ``cf.loop``: the carried values must keep their types, and a loop with
  scan outputs must have a static trip count and a condition that cannot stop it
  early (its scan outputs then have that many rows).
- **Scan** runs over a static length (the scan inputs' axis): unrolled the
  same way, or a ``cf.loop`` over that length whose body takes one slice of each scan
  input (``take`` at the iteration) and whose stacked outputs are moved to
  ``scan_output_axes`` and reversed where ``scan_output_directions`` asks. Scan-8's
  batch axis is a loop at import: one scan per batch entry, stacked.

Anything that would need a shape only known at run time is a clear error naming the
node and the value.
"""

from __future__ import annotations

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter
from ember.frontend.onnx.functions import all_nodes
from ember.frontend.onnx.scope import (
    BodyScope,
    CaptureSet,
    EmptyOptional,
    InlineScope,
    convert_graph,
    item_exprs,
    scalar_of,
)
from ember.graph.ir import Constant, Expr, Function, TensorType, Tuple, Var
from ember.ops.control_flow import CONDITION_TYPE, ITERATION_TYPE

MAX_UNROLLED_NODES = 2048
"""ONNX nodes a loop may unroll to (body nodes x iterations). Unrolling makes every
shape static and lets the compiler fuse across iterations, but grows the graph (and
compile time) linearly; past this a loop stays a ``cf.loop``, compiled as a C loop."""

NO_TRIP_LIMIT = np.iinfo(np.int64).max  # ONNX Loop without M: "run while cond"


def _body_size(graph: object) -> int:
    return max(1, sum(1 for _ in all_nodes(graph.node)))  # type: ignore[attr-defined]


def _flag(node: OnnxNode, expr: Expr, dtype: str, what: str) -> Expr:
    """``expr`` as a shape-() tensor of ``dtype`` (ONNX gives conditions as () or (1,))."""
    t = expr.type
    if not isinstance(t, TensorType) or t.size != 1:
        raise node.error(f"{what} must be a tensor of one element, got {t}")
    if t.dtype != dtype:
        expr = node.call("cast", expr, dtype=dtype, suffix=f"/{what.replace(' ', '_')}")
    if t.shape != ():
        expr = node.call("reshape", expr, newshape=(), suffix=f"/{what.replace(' ', '_')}")
    return expr


def _stack(node: OnnxNode, slices: list[Expr], axis: int, what: str) -> Expr:
    """``slices`` stacked along a new ``axis`` (ONNX scan outputs)."""
    rank = len(slices[0].type.shape) + 1  # type: ignore[union-attr]
    axis = node.axis(axis, rank, what)
    rows = [node.call("expand_dims", s, axes=(axis,), suffix=f"/{what}") for s in slices]
    return (
        rows[0] if len(rows) == 1 else node.call("concatenate", *rows, axis=axis, suffix=f"/{what}")
    )


def _tensor_results(node: OnnxNode, outs: list[Expr], names: list[str], what: str) -> None:
    for out, name in zip(outs, names):
        if not isinstance(out.type, TensorType):
            kind = "an optional" if isinstance(out, EmptyOptional) else "a sequence"
            raise node.unsupported(
                f"{what} {name!r} is {kind}; ember supports sequences and optionals only "
                "where their length or presence is static at import (a constant condition, "
                "or a loop it unrolls)"
            )


# ----------------------------------------------------------------------------- If


@converter("If", min_version=1)
def _if(node: OnnxNode) -> list[Expr]:
    scope = node.importer
    branches = (
        ("then_branch", node.attr("then_branch")),
        ("else_branch", node.attr("else_branch")),
    )
    static = scope.static_value(node.proto.input[0], node)
    if static is not None:
        label, graph = branches[0] if bool(scalar_of(static)) else branches[1]
        inner = InlineScope(scope, scope.opsets, f"{node.name}/{label}/", scope.bindings)
        return convert_graph(inner, graph)
    cond = _flag(node, node.input(0), "bool", "condition")
    captures = CaptureSet()
    converted = []
    for label, graph in branches:
        body = BodyScope(scope, captures, str(node), f"{node.name}/{label}/")
        converted.append((label, body, convert_graph(body, graph)))
    out_names = list(node.proto.output)
    (_, _, then_outs), (_, _, else_outs) = converted
    # a sequence output (a tuple of static length) travels as its tensors, flattened
    sizes = []
    for k, (a, b) in enumerate(zip(then_outs, else_outs)):
        if isinstance(a, EmptyOptional) or isinstance(b, EmptyOptional):
            why = f"output {k} ({out_names[k]!r}) is an optional that is empty in a branch"
            node.const(0, f"the condition ({why})")  # names the model inputs it comes from
            raise node.unsupported(
                f"{why}; whether an optional holds a value must be known at import",
                hint="make the condition static (a constant or an initializer): then the "
                "branch is chosen at import",
            )
        if a.type != b.type:
            raise node.unsupported(
                f"output {k} ({out_names[k]!r}) is {a.type} in then_branch but {b.type} in "
                "else_branch; an If whose condition is only known at run time must give the "
                "same shapes (and sequence lengths) in both branches",
                hint="make the condition static (a constant or an initializer): then the "
                "branch is chosen at import",
            )
        sizes.append(None if isinstance(a.type, TensorType) else len(a.type.fields))  # type: ignore[union-attr]
    functions = {}
    for label, body, outs in converted:
        flat = [
            x
            for out in outs
            for x in ([out] if isinstance(out.type, TensorType) else item_exprs(out))
        ]
        _tensor_results(node, flat, [label] * len(flat), "a field of a sequence output of")
        result = flat[0] if len(flat) == 1 else Tuple(tuple(flat))
        functions[label] = Function(
            tuple(body.captured_params()), result, {"name": f"{node.name}/{label}"}
        )
    call = node.call("cf.if", cond, *captures.outer, **functions)
    total = sum(1 if n is None else n for n in sizes)
    fields = [call] if total == 1 else [node.item(call, k) for k in range(total)]
    results: list[Expr] = []
    for n in sizes:
        if n is None:
            results.append(fields.pop(0))
        else:
            results.append(Tuple(tuple(fields[:n])))
            del fields[:n]
    return results


# ----------------------------------------------------------------------------- Loop


def _unroll_loop(
    node: OnnxNode, trip: int | None, cond: Expr, carried: list[Expr], num_scan: int
) -> list[Expr] | None:
    """The loop's outputs with every iteration converted in place; None when it cannot
    be unrolled (too big, a condition only known at run time, or no iteration to give
    the scan outputs a shape). ``trip`` None: the loop has no trip count (runs while
    its condition holds)."""
    scope, body = node.importer, node.attr("body")
    size = _body_size(body)
    if trip is not None and trip * size > MAX_UNROLLED_NODES:
        return None
    scans: list[list[Expr]] = [[] for _ in range(num_scan)]
    i = 0
    while trip is None or i < trip:
        if not isinstance(cond, Constant):
            return None
        if not bool(scalar_of(cond.value)):
            break
        if (i + 1) * size > MAX_UNROLLED_NODES:
            return None
        inner = InlineScope(scope, scope.opsets, f"{node.name}/iter{i}/", scope.bindings)
        formal = [vi.name for vi in body.input]
        for name, value in zip(formal, [Constant(np.asarray(i, "int64")), cond, *carried]):
            if name:
                inner.values[name] = value
        outs = convert_graph(inner, body)
        cond, carried = outs[0], outs[1 : 1 + len(carried)]
        for rows, row in zip(scans, outs[1 + len(carried) :]):
            rows.append(row)
        i += 1
    if num_scan and i == 0:
        return None  # zero rows: their shape comes from converting the body once
    names = list(node.proto.output)[len(carried) :]
    stacked = [_stack(node, rows, 0, f"scan_{names[k]}") for k, rows in enumerate(scans)]
    return [*carried, *stacked]


def _never_stops_early(cond: Expr, cond_out: Expr, cond_var: Var) -> bool:
    """Whether a loop runs its whole trip count: the condition starts true and the body
    returns true or passes the condition through."""
    starts = isinstance(cond, Constant) and bool(scalar_of(cond.value))
    passes = cond_out is cond_var or (
        isinstance(cond_out, Constant) and bool(scalar_of(cond_out.value))
    )
    return starts and passes


def _rolled_loop(
    node: OnnxNode, trip: int | None, cond: Expr, carried: list[Expr], num_scan: int
) -> list[Expr]:
    scope, body = node.importer, node.attr("body")
    formal = [vi.name for vi in body.input]
    _tensor_results(node, carried, formal[2:], "loop-carried value")
    iteration = Var(formal[0] or "iteration", ITERATION_TYPE)
    cond_var = Var(formal[1] or "cond", CONDITION_TYPE)
    carried_vars = [Var(name, c.type) for name, c in zip(formal[2:], carried)]  # type: ignore[arg-type]
    inputs = [
        (formal[0], iteration, f"the iteration number of {node}"),
        (formal[1], cond_var, f"the condition of {node}"),
        *[
            (name, var, f"the loop-carried value {name!r} of {node}")
            for name, var in zip(formal[2:], carried_vars)
        ],
    ]
    captures = CaptureSet()
    inner = BodyScope(scope, captures, str(node), f"{node.name}/body/", inputs)
    outs = convert_graph(inner, body)
    cond_out = _flag(node, outs[0], "bool", "body condition")
    carried_out, scans = outs[1 : 1 + len(carried)], outs[1 + len(carried) :]
    body_outs = [vi.name for vi in body.output]
    for k, (before, after) in enumerate(zip(carried, carried_out)):
        if before.type != after.type:
            raise node.unsupported(
                f"the loop-carried value {formal[2 + k]!r} is {before.type} before the loop "
                f"but the body returns it ({body_outs[1 + k]!r}) as {after.type}; a loop "
                "that runs as a loop must keep its carried shapes",
                hint=f"a static trip count unrolls the loop at import (up to "
                f"{MAX_UNROLLED_NODES} body nodes in all), where shapes may change",
            )
    _tensor_results(node, scans, body_outs[1 + len(carried) :], "scan output")
    scan_length = 0
    if num_scan:
        if trip is None:
            if node.has_input(0):  # names the model inputs it comes from, if any
                node.const(0, "the trip count (the loop has scan outputs)")
            raise node.unsupported(
                "the loop has scan outputs but no static trip count: their number of rows "
                "would only be known at run time",
                hint="give the loop a constant trip count M",
            )
        if not _never_stops_early(cond, cond_out, cond_var):
            raise node.unsupported(
                "the loop has scan outputs, and its condition may stop it before its trip "
                f"count ({trip}): their number of rows would only be known at run time",
                hint="ember needs a loop with scan outputs to run exactly its trip count",
            )
        scan_length = trip
    trip_expr = (
        _flag(node, node.input(0), "int64", "trip count")
        if node.has_input(0)
        else Constant(np.asarray(NO_TRIP_LIMIT, "int64"))
    )
    fn = Function(
        (iteration, cond_var, *carried_vars, *inner.captured_params()),
        Tuple((cond_out, *carried_out, *scans)),
        {"name": f"{node.name}/body"},
    )
    call = node.call(
        "cf.loop",
        trip_expr,
        cond,
        *carried,
        *captures.outer,
        body=fn,
        num_carried=len(carried),
        scan_length=scan_length,
    )
    return [node.item(call, k) for k in range(len(carried) + len(scans))]


@converter("Loop", min_version=1)
def _loop(node: OnnxNode) -> list[Expr]:
    scope, body = node.importer, node.attr("body")
    carried = [node.input(i) for i in range(2, node.num_inputs)]
    num_scan = len(body.output) - 1 - len(carried)
    if num_scan < 0:
        raise node.error(
            f"the body returns {len(body.output)} values, fewer than the condition and the "
            f"{len(carried)} carried values"
        )
    trip: int | None = None
    if node.has_input(0):
        value = scope.static_value(node.proto.input[0], node)
        trip = None if value is None else int(scalar_of(value))
    if node.has_input(1):
        static_cond = scope.static_value(node.proto.input[1], node)
        cond = (
            Constant(np.asarray(bool(scalar_of(static_cond))))
            if static_cond is not None
            else _flag(node, node.input(1), "bool", "condition")
        )
    else:
        cond = Constant(np.asarray(True))
    if num_scan:  # their rows need the trip count and the first condition: name the
        # model inputs they come from, so a caller who knows them can freeze them
        if node.has_input(0):
            node.const(0, "the trip count (the loop has scan outputs)")
        if node.has_input(1):
            node.const(1, "the condition (the loop has scan outputs)")
    if any(not isinstance(c.type, TensorType) for c in carried):
        # a carried sequence has a static length only if the loop unrolls: name the model
        # inputs its trip count and condition come from, as for scan outputs
        why = "(a loop-carried value is a sequence, which needs the loop unrolled)"
        if node.has_input(0):
            node.const(0, f"the trip count {why}")
        if node.has_input(1):
            node.const(1, f"the condition {why}")
    if node.has_input(0) and trip is None:
        return _rolled_loop(node, trip, cond, carried, num_scan)
    unrolled = _unroll_loop(node, trip, cond, carried, num_scan)
    if unrolled is not None:
        return unrolled
    return _rolled_loop(node, trip, cond, carried, num_scan)


# ----------------------------------------------------------------------------- Scan


def _scan_attrs(node: OnnxNode, name: str, count: int) -> list[int]:
    values = list(node.attr(name, (0,) * count))
    if len(values) != count:
        raise node.error(f"attribute {name} has {len(values)} entries, expected {count}")
    return values


@converter("Scan", min_version=8)
def _scan(node: OnnxNode) -> list[Expr]:
    if node.version < 9:
        return _scan8(node)
    body = node.attr("body")
    num_scan_in = int(node.attr("num_scan_inputs"))
    inputs = node.inputs()
    _tensor_results(node, inputs, list(node.proto.input), "input")
    num_state = len(inputs) - num_scan_in
    num_scan_out = len(body.output) - num_state
    axes_dirs = (
        _scan_attrs(node, "scan_input_axes", num_scan_in),
        _scan_attrs(node, "scan_input_directions", num_scan_in),
        _scan_attrs(node, "scan_output_axes", num_scan_out),
        _scan_attrs(node, "scan_output_directions", num_scan_out),
    )
    return _scan_over(node, inputs[:num_state], inputs[num_state:], axes_dirs, f"{node.name}/")


def _scan8(node: OnnxNode) -> list[Expr]:
    """Scan-8: every input has a leading batch axis, and the scan runs once per batch
    entry (on axis 0 of each scan input once the batch axis is taken off)."""
    if node.has_input(0):
        lengths = node.const(0, "sequence_lens")
        raise node.unsupported(
            f"sequence_lens ({np.asarray(lengths).tolist()}) is not supported: every batch "
            "entry must scan the whole sequence (leave the input empty)"
        )
    body = node.attr("body")
    num_scan_in = int(node.attr("num_scan_inputs"))
    inputs = [node.input(i) for i in range(1, node.num_inputs)]
    _tensor_results(node, inputs, list(node.proto.input)[1:], "input")
    num_state = len(inputs) - num_scan_in
    num_scan_out = len(body.output) - num_state
    directions = _scan_attrs(node, "directions", num_scan_in)
    batches = {x.type.shape[0] for x in inputs if x.type.shape}  # type: ignore[union-attr]
    if len(batches) != 1:
        raise node.error(f"the inputs have different batch sizes: {sorted(batches)}")
    axes_dirs = ([0] * num_scan_in, directions, [0] * num_scan_out, [0] * num_scan_out)
    per_batch = []
    for b in range(batches.pop()):
        at = Constant(np.asarray(b, "int64"))
        sliced = [
            node.call("take", x, at, axis=0, suffix=f"/batch{b}/in{i}")
            for i, x in enumerate(inputs)
        ]
        per_batch.append(
            _scan_over(
                node, sliced[:num_state], sliced[num_state:], axes_dirs, f"{node.name}/batch{b}/"
            )
        )
    out_names = list(node.proto.output)
    return [
        _stack(node, list(rows), 0, f"batch_{out_names[k]}")
        for k, rows in enumerate(zip(*per_batch))
    ]


def _scan_over(
    node: OnnxNode,
    states: list[Expr],
    scan_ins: list[Expr],
    axes_dirs: tuple[list[int], list[int], list[int], list[int]],
    prefix: str,
) -> list[Expr]:
    """The outputs of a scan of ``scan_ins`` from ``states``: unrolled, or a cf.loop."""
    scope, body = node.importer, node.attr("body")
    in_axes, in_dirs, out_axes, out_dirs = axes_dirs
    num_state, num_scan_out = len(states), len(body.output) - len(states)
    lengths = set()
    in_axes = list(in_axes)
    for j, x in enumerate(scan_ins):
        in_axes[j] = node.axis(in_axes[j], len(x.type.shape), "scan_input_axes")  # type: ignore[union-attr]
        lengths.add(x.type.shape[in_axes[j]])  # type: ignore[union-attr]
    if len(lengths) != 1:
        raise node.error(
            f"the scan inputs have different lengths along their axes: {sorted(lengths)}"
        )
    length = lengths.pop()
    formal = [vi.name for vi in body.input]
    out_names = list(node.proto.output)[-num_scan_out:] if num_scan_out else []
    if not 0 < length or length * _body_size(body) > MAX_UNROLLED_NODES:
        axes_dirs = (in_axes, in_dirs, out_axes, out_dirs)
        return _rolled_scan(node, states, scan_ins, length, axes_dirs, prefix)
    scans: list[list[Expr]] = [[] for _ in range(num_scan_out)]
    for t in range(length):
        inner = InlineScope(scope, scope.opsets, f"{prefix}iter{t}/", scope.bindings)
        inner.values.update(zip(formal[:num_state], states))
        for j, x in enumerate(scan_ins):
            at = Constant(np.asarray(length - 1 - t if in_dirs[j] else t, "int64"))
            inner.values[formal[num_state + j]] = node.call(
                "take", x, at, axis=in_axes[j], suffix=f"/{prefix}iter{t}/slice{j}"
            )
        outs = convert_graph(inner, body)
        states = outs[:num_state]
        for rows, row in zip(scans, outs[num_state:]):
            rows.append(row)
    stacked = []
    for k, rows in enumerate(scans):
        rows = rows[::-1] if out_dirs[k] else rows
        stacked.append(_stack(node, rows, out_axes[k], f"scan_{out_names[k]}"))
    return [*states, *stacked]


def _rolled_scan(
    node: OnnxNode,
    states: list[Expr],
    scan_ins: list[Expr],
    length: int,
    axes_dirs: tuple[list[int], list[int], list[int], list[int]],
    prefix: str,
) -> list[Expr]:
    in_axes, in_dirs, out_axes, out_dirs = axes_dirs
    scope, body = node.importer, node.attr("body")
    num_state = len(states)
    formal = [vi.name for vi in body.input]
    iteration, cond_var = Var("iteration", ITERATION_TYPE), Var("cond", CONDITION_TYPE)
    state_vars = [Var(name, s.type) for name, s in zip(formal, states)]  # type: ignore[arg-type]
    inputs = [
        ("", iteration, f"the iteration number of {node}"),
        ("", cond_var, f"the condition of {node}"),
        *[(n, v, f"the state {n!r} of {node}") for n, v in zip(formal, state_vars)],
    ]
    captures = CaptureSet()
    inner = BodyScope(scope, captures, str(node), f"{prefix}body/", inputs)
    last = Constant(np.asarray(length - 1, "int64"))
    reverse_index = None
    for j, x in enumerate(scan_ins):
        whole = inner.capture(x, node.proto.input[num_state + j])
        if in_dirs[j]:
            if reverse_index is None:
                reverse_index = node.call("subtract", last, iteration, suffix="/reverse_index")
            at = reverse_index
        else:
            at = iteration
        inner.values[formal[num_state + j]] = node.call(
            "take", whole, at, axis=in_axes[j], suffix=f"/slice{j}"
        )
    outs = convert_graph(inner, body)
    for k, (before, after) in enumerate(zip(states, outs[:num_state])):
        if before.type != after.type:
            raise node.unsupported(
                f"the state {formal[k]!r} is {before.type} before the scan but the body "
                f"returns it as {after.type}; a scan that runs as a loop must keep its shapes",
                hint=f"a scan of up to {MAX_UNROLLED_NODES} body nodes in all is unrolled",
            )
    _tensor_results(
        node, outs[num_state:], [vi.name for vi in body.output][num_state:], "scan output"
    )
    fn = Function(
        (iteration, cond_var, *state_vars, *inner.captured_params()),
        Tuple((Constant(np.asarray(True)), *outs)),
        {"name": f"{node.name}/body"},
    )
    call = node.call(
        "cf.loop",
        Constant(np.asarray(length, "int64")),
        Constant(np.asarray(True)),
        *states,
        *captures.outer,
        body=fn,
        num_carried=num_state,
        scan_length=length,
    )
    results = [node.item(call, k) for k in range(len(outs))]
    for k in range(len(outs) - num_state):
        y = results[num_state + k]
        rank = len(y.type.shape)  # type: ignore[union-attr]
        if out_dirs[k]:
            rows = Constant(np.arange(length - 1, -1, -1, dtype="int64"))
            y = node.call("take", y, rows, axis=0, suffix=f"/reverse{k}")
        axis = node.axis(out_axes[k], rank, "scan_output_axes")
        if axis:
            perm = list(range(1, rank))
            perm.insert(axis, 0)
            y = node.call("transpose", y, axes=tuple(perm), suffix=f"/axis{k}")
        results[num_state + k] = y
    return results
