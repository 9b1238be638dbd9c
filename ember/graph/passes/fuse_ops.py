"""fuse_ops: group ops into kernels the way TVM's FuseOps does.

Needs: a typed module whose weights are bound as constants (run ``optimize``
first, or fusion sees weights as inputs and still works).
Guarantees: ``main`` calls only primitive functions (``Function.attrs["primitive"]``),
one per kernel, plus the Tuple/TupleGetItem glue between them; every call of the
original graph sits in exactly one primitive function; the result computes the
same values (the interpreter runs both).

The rules, by op pattern (``OpPattern``):

- elementwise and broadcast ops fuse into their producer's group when they are
  that producer's only consumer: a conv2d / dense / matmul (OUT_ELEMWISE_FUSABLE)
  takes its bias, remaining batch norm, activation and residual add as an
  epilogue, as long as the epilogue keeps the anchor's output shape;
- diamonds (TVM's post-dominator rule): a group output with several users takes
  all of them when every path from it meets again at its immediate
  post-dominator through ops that could join the group one by one. So
  ``conv -> {sigmoid, multiply(conv, sigmoid)}`` (SiLU as exported: Sigmoid + Mul)
  is one kernel whose epilogue reads the conv's result twice, and the same holds
  for GELU, hard-swish and mish written out of primitive ops;
- injective ops (reshape, transpose, pad, concatenate, ...) fuse with
  elementwise / injective neighbours, so chains of data movement become one pass
  over memory;
- elementwise / injective producers fuse into a reduction (pooling, reduce_*),
  which then ends its group;
- opaque ops (softmax, lrn) and tuple ops (split) are kernels of their own.

Weights and other non-scalar constants become parameters of the primitive
function, so two layers of the same shape share one kernel.

Control flow (``cf.if``, ``cf.loop``) is not a kernel: the call stays in ``main``
(the AOT executor runs it as C control flow), its branches and bodies are fused
the same way, recursively, and nothing fuses across it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    Var,
    subfunctions,
)
from ember.graph.visitor import post_order, with_bodies
from ember.ops.registry import Op, OpPattern

MAX_GROUP_SIZE = 64
"""Upper bound on ops per kernel: keeps generated kernels (and compile time) small."""

MAX_INLINE_COPIES = 4
"""How often a diamond may make a kernel evaluate its inlined group output (the
epilogue reads it once per user, recomputing what led to it); an anchor's own
result is buffered, so reading it twice copies nothing. Bounds chains of diamonds,
whose copies multiply."""

INLINE_CONSTANT_MAX_ELEMENTS = 1
"""Constants up to this size stay inside the kernel as immediates; larger ones are arguments."""


@dataclass(eq=False)
class _Group:
    nodes: list[Call] = field(default_factory=list)
    kind: OpPattern = OpPattern.ELEMWISE
    copies: int = 1  # evaluations of the output's inlined expression (MAX_INLINE_COPIES)

    @property
    def output(self) -> Call:
        return self.nodes[-1]


def _pattern(node: Call) -> OpPattern:
    if isinstance(node.op, Op):
        return node.op.pattern
    return OpPattern.OPAQUE


def _can_join(group: _Group, node: Call, pattern: OpPattern) -> bool:
    """May ``node`` (whose input is ``group.output``) join ``group``?"""
    if len(group.nodes) >= MAX_GROUP_SIZE:
        return False
    if group.kind in (OpPattern.OPAQUE, OpPattern.TUPLE, OpPattern.COMM_REDUCE):
        return False  # reductions end a group; opaque ops stand alone
    if group.kind == OpPattern.OUT_ELEMWISE_FUSABLE:
        # An epilogue is computed per element of the anchor's output.
        return pattern <= OpPattern.BROADCAST and node.type == group.output.type
    # The group is elementwise / broadcast / injective.
    return pattern <= OpPattern.INJECTIVE or pattern == OpPattern.COMM_REDUCE


def _use_counts(nodes: list[Expr], body: Expr) -> dict[Expr, int]:
    uses: dict[Expr, int] = {n: 0 for n in nodes}
    for n in nodes:
        for c in _children(n):
            uses[c] += 1
    uses[body] += 1  # the function result is a use the graph cannot see
    return uses


def _users(nodes: list[Expr]) -> dict[Expr, list[Expr]]:
    """The distinct consumers of every node, in execution order."""
    users: dict[Expr, dict[Expr, None]] = {n: {} for n in nodes}
    for n in nodes:
        for c in _children(n):
            users[c][n] = None
    return {n: list(u) for n, u in users.items()}


def _children(n: Expr) -> tuple[Expr, ...]:
    if isinstance(n, Call):
        return n.args
    if isinstance(n, Tuple):
        return n.fields
    if isinstance(n, TupleGetItem):
        return (n.tuple_value,)
    return ()


def _post_dominators(nodes: list[Expr], users: dict[Expr, list[Expr]], body: Expr) -> dict:
    """Immediate post-dominator of every node (None: only the function result is).

    ``nodes`` is in post order (producers first); the function result and every node
    without users flow into a virtual sink, the root of the post-dominator tree.
    """
    ipdom: dict[Expr, Expr | None] = {}
    depth: dict[Expr | None, int] = {None: 0}

    def common(a: Expr | None, b: Expr | None) -> Expr | None:
        while a is not b:
            if depth[a] < depth[b]:
                a, b = b, a
            a = ipdom[a]  # type: ignore[index]
        return a

    for n in reversed(nodes):
        outs = users[n]
        if n is body or not outs:
            dom: Expr | None = None
        else:
            dom = outs[0]
            for u in outs[1:]:
                dom = common(dom, u)
        ipdom[n] = dom
        depth[n] = depth[dom] + 1
    return ipdom


def _diamond(
    group: _Group,
    start: Call,
    users: dict[Expr, list[Expr]],
    ipdom: dict[Expr, Expr | None],
    order: dict[Expr, int],
    group_of: dict[Call, _Group],
) -> list[Call] | None:
    """The nodes between ``start`` (``group``'s output, several users) and its immediate
    post-dominator, in execution order, when they may all join ``group``; else None."""
    sink = ipdom[start]
    if not isinstance(sink, Call) or group.kind in (OpPattern.OPAQUE, OpPattern.TUPLE):
        return None
    if group.kind == OpPattern.COMM_REDUCE:
        return None  # a reduction ends its group
    anchored = group.kind == OpPattern.OUT_ELEMWISE_FUSABLE
    buffered = anchored and _pattern(start) == OpPattern.OUT_ELEMWISE_FUSABLE
    copies = group.copies * (1 if buffered else len(users[start]))
    if copies > MAX_INLINE_COPIES:
        return None
    region: set[Call] = set()
    stack = list(users[start])
    while stack:
        n = stack.pop()
        if n in region:
            continue
        if not isinstance(n, Call) or subfunctions(n.attrs) or n in group_of:
            return None  # not a kernel's op, or taken by an earlier diamond
        pattern = _pattern(n)
        if anchored:
            # An epilogue is computed per element of the anchor's output.
            if pattern > OpPattern.BROADCAST or n.type != start.type:
                return None
        elif pattern > OpPattern.INJECTIVE:
            return None
        # Inside the diamond only ``start`` may be read twice: other multi-use nodes
        # would be recomputed once per read.
        if n is not sink and len(users[n]) != 1:
            return None
        region.add(n)
        if len(group.nodes) + len(region) > MAX_GROUP_SIZE:
            return None
        if n is not sink:
            stack.extend(users[n])
    group.copies = copies
    return sorted(region, key=order.__getitem__)


def _partition(nodes: list[Expr], uses: dict[Expr, int], body: Expr) -> dict[Call, _Group]:
    group_of: dict[Call, _Group] = {}
    users = _users(nodes)
    ipdom = _post_dominators(nodes, users, body)
    order = {n: k for k, n in enumerate(nodes)}
    for node in nodes:
        if not isinstance(node, Call) or subfunctions(node.attrs):
            continue  # control flow is no kernel: it stays a call of its own
        if node in group_of:
            continue  # taken by a diamond
        pattern = _pattern(node)
        chosen: _Group | None = None
        if pattern not in (OpPattern.OPAQUE, OpPattern.TUPLE):
            candidates = [
                group_of[arg]
                for arg in node.args
                if arg in group_of and uses[arg] == 1 and group_of[arg].output is arg
            ]
            # Prefer joining a conv/dense anchor: that is where an epilogue saves the most.
            candidates.sort(key=lambda g: -int(g.kind))
            for group in candidates:
                if _can_join(group, node, pattern):
                    chosen = group
                    break
        if chosen is None:
            chosen = _Group()
        chosen.nodes.append(node)
        chosen.kind = max(chosen.kind, pattern)
        group_of[node] = chosen
        # A diamond from this node (now its group's output) joins the group whole; its
        # last node, the post-dominator, becomes the output, and may start another one
        # (single users join it later, when the loop reaches them).
        output = node
        while uses[output] > 1 and output is not body:
            region = _diamond(chosen, output, users, ipdom, order, group_of)
            if not region:
                break
            for member in region:
                chosen.nodes.append(member)
                chosen.kind = max(chosen.kind, _pattern(member))
                group_of[member] = chosen
            output = chosen.output
    return group_of


def _kernel_name(group: _Group) -> str:
    names = [n.op.name.replace(".", "_") for n in group.nodes if isinstance(n.op, Op)]
    name = "fused_" + "_".join(names)
    if len(name) > 80:
        name = name[:80]
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _build_function(group: _Group, outer: dict[Expr, Expr]) -> tuple[Function, list[Expr]]:
    """The primitive function of ``group`` and the outer arguments to call it with."""
    members = set(group.nodes)
    inner: dict[Expr, Expr] = {}
    params: list[Var] = []
    call_args: list[Expr] = []

    def argument(arg: Expr) -> Expr:
        if arg in inner:
            return inner[arg]
        if isinstance(arg, Constant) and arg.type.size <= INLINE_CONSTANT_MAX_ELEMENTS:
            inner[arg] = arg
            return arg
        param = Var(f"p{len(params)}", arg.type)  # type: ignore[arg-type]
        params.append(param)
        call_args.append(arg if isinstance(arg, Constant) else outer[arg])
        inner[arg] = param
        return param

    for node in group.nodes:
        new_args = tuple(inner[a] if a in members else argument(a) for a in node.args)
        inner[node] = Call(node.op, new_args, node.attrs, node.name)
    attrs = {
        "primitive": True,
        "name": _kernel_name(group),
        "pattern": group.kind.name,
    }
    return Function(tuple(params), inner[group.output], attrs), call_args


def fuse_ops(mod: Module) -> Module:
    """Group the ops of ``main`` into primitive functions (kernels); see the module docstring."""
    mod = with_bodies(mod, fuse_ops)
    main = mod.main
    nodes = post_order(main.body)
    uses = _use_counts(nodes, main.body)
    group_of = _partition(nodes, uses, main.body)

    outer: dict[Expr, Expr] = {}  # original node -> node of the fused graph
    for node in nodes:
        if isinstance(node, Var | Constant):
            outer[node] = node
        elif isinstance(node, Tuple):
            outer[node] = Tuple(tuple(outer[f] for f in node.fields), node.name)
        elif isinstance(node, TupleGetItem):
            outer[node] = TupleGetItem(outer[node.tuple_value], node.index, node.name)
        elif isinstance(node, Call) and node not in group_of:  # control flow
            outer[node] = Call(node.op, tuple(outer[a] for a in node.args), node.attrs, node.name)
        elif isinstance(node, Call):
            group = group_of[node]
            if node is group.output:
                func, args = _build_function(group, outer)
                outer[node] = Call(func, tuple(args), None, group.output.name or func.name)
    return mod.with_main(Function(main.params, outer[main.body], dict(main.attrs)))


def kernels(mod: Module) -> list[Call]:
    """The calls of primitive functions in ``main``, in execution order; a control-flow
    call stands for the kernels of its branches or body, listed where it runs."""
    found: list[Call] = []
    for n in post_order(mod.main.body):
        if isinstance(n, Call) and isinstance(n.op, Function) and n.op.is_primitive:
            found.append(n)
        elif isinstance(n, Call):
            for _, body in subfunctions(n.attrs):
                found.extend(kernels(Module.from_function(body)))
    return found
