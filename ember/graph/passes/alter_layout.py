"""alter_layout: run convolution chains in the blocked NCHW[x]c layout (x86 CPUs).

Needs: a typed module with weights bound as constants (run ``optimize`` first); the
weight repacking is constant folding, so unbound weights stay as ``layout_transform``
calls (still correct, just repacked at run time).
Guarantees: every float32 ``nn.conv2d`` that the blocked kernel supports becomes
``nn.conv2d_nchwc`` on NCHW[x]c data with OIHW[i]i[x]o weights (folded into constants),
x = 16 on an AVX-512 host when the channels divide by 16, else 8;
elementwise / broadcast ops whose operands all have the output's shape (or are scalar
or per-channel (C, 1, 1) constants, re-blocked to (C/x, 1, 1, x), or broadcast along
batch and space only, like a squeeze-and-excitation scale (N, C, 1, 1)), and channel
concatenations, stay blocked when an input of the output's shape already is, so a
chain of convs with its bias / relu / residual adds stays blocked end to end; global
average / max pooling of blocked data becomes ``reduce_mean`` / ``reduce_max`` over its
spatial axes (N, C/x, 1, 1, x), so squeeze-and-excitation (pool, 1x1 convs, gate,
channel multiply) never lays the feature map out in NCHW; every other consumer
(flatten, dense, the model's outputs) reads an NCHW copy made by one
``layout_transform``, shared by all such consumers. No back-to-back transform pairs
are created. The result computes the same values.

Supported convolutions: groups = 1 with output channels divisible by 8 and input
channels divisible by 8 or fewer than one vector (the first layer's RGB input is
blocked by 3), depthwise (groups = channels = output channels, divisible by 8), and
grouped (1 < groups, not depthwise) when 8 divides a group's input and output channels:
blocks of x when x divides them too, else 8 (RegNetY's, ResNeXt's group widths).
Others keep NCHW. Max and average pooling run blocked too. A conv with at least
``PAD_MIN_CHANNELS`` output channels that divide by 8 but not by x (SqueezeNet's 1000
classes on AVX-512), constant weights and groups = 1 runs on whole x-channel blocks with
zero weights and bias for the padded channels, followed by an NCHW copy cropped to the
real channels (``strided_slice``): 8-channel blocks would run its FMAs at half width.

A block plan (``blocks``, e.g. from the graph tuner, :mod:`ember.autotune.graph_tuner`)
overrides the rule per convolution: ``{conv id: (input block, output block)}``, where a
conv's id (:func:`conv_ids`) is its node name when that is non-empty and unique among the
module's ``nn.conv2d`` calls, else ``conv2d#K`` with K its index among them in post order
(the execution order). Convs not in the plan keep the rule. Under a plan, a tensor needed
in another block than its producer's is re-blocked in one step (NCHW{a}c -> NCHW{b}c)
instead of through an NCHW copy; without a plan the output is exactly the rule's.

    mod = alter_layout(optimize(mod, params))
    print(print_module(mod))   # nn.conv2d_nchwc(layout_transform(%data, ...), ...)
    mod = alter_layout(optimize(mod, params), blocks={"conv1": (3, 8), "conv2": (8, 16)})
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import numpy as np

from ember.errors import AttrError
from ember.graph.ir import Call, Constant, Expr, Function, Module, TensorType, Tuple, TupleGetItem
from ember.graph.passes.fold_constants import fold_constants
from ember.graph.visitor import post_order, with_bodies
from ember.ops.layout import LayoutTransformAttrs
from ember.ops.reduce import ReduceAttrs
from ember.ops.registry import Op, OpPattern, get_op
from ember.ops.transform import StridedSliceAttrs
from ember.target import Target

CHANNEL_BLOCK = 8
"""The smallest channel block: one AVX2 vector of float32. With AVX-512 on the host, a
tensor whose channels divide by 16 uses 16 (``lanes``), others 8."""

PLAN_BLOCKS = (4, 8, 16)
"""Channel blocks a block plan may give a conv: the x86 conv schedule vectorizes the output
block (a half, one or two AVX2 vectors / up to one AVX-512 vector), and reads the input
block one broadcast scalar at a time. An input block may also hold all of a conv's
channels when they are fewer than the widest block (the RGB input: NCHW3c)."""


GLOBAL_POOLS = {"nn.global_avg_pool2d": "reduce_mean", "nn.global_max_pool2d": "reduce_max"}
"""Global pooling ops and the reduction that computes them on blocked data."""


def _block_for(channels: int, lanes: int) -> int | None:
    """The channel block of a tensor with ``channels``: a whole vector if they divide."""
    for block in (lanes, CHANNEL_BLOCK):
        if channels % block == 0:
            return block
    return None


PAD_MIN_CHANNELS = 256
"""Output channels from which a conv whose channels divide by 8 but not by the vector width
(SqueezeNet's 1000-class 1x1 conv on AVX-512) computes on zero-padded whole vectors and
crops the extra channels (:func:`_padded_out_channels`): at most 8/256 = 3% extra work
against half-width (8-lane) FMAs, which run at half the FMA peak."""


def _paddable(node: Call, out_block: int) -> bool:
    """Whether conv ``node`` may run on zero-padded ``out_block``-channel output blocks:
    constant weights and bias, ``groups`` 1, at least PAD_MIN_CHANNELS output channels
    that divide by CHANNEL_BLOCK but not by ``out_block``."""
    out_channels = node.args[1].type.shape[0]  # type: ignore[union-attr]
    return (
        node.attrs.groups == 1
        and out_channels >= PAD_MIN_CHANNELS
        and out_channels % CHANNEL_BLOCK == 0
        and out_channels % out_block != 0
        and all(isinstance(a, Constant) for a in node.args[1:])
    )


def _padded_out_channels(node: Call, lanes: int) -> tuple[int, int] | None:
    """(input block, padded output channel count) when the rule pads ``node`` (a conv whose
    output block would be narrower than ``lanes``) to whole ``lanes`` blocks, or None."""
    blocks = _conv_blocks(node, lanes)
    if blocks is None or blocks[1] == lanes or not _paddable(node, lanes):
        return None
    out_channels = node.args[1].type.shape[0]  # type: ignore[union-attr]
    return blocks[0], -(-out_channels // lanes) * lanes


def rule_blocks(node: Call, lanes: int) -> tuple[int, int] | None:
    """The (input block, output block) the default rule gives conv ``node`` for ``lanes``,
    as a block plan writes it (an output block that does not divide the channels is the
    zero-padded conv), or None when it keeps NCHW. A plan of these for every conv builds
    exactly what no plan builds."""
    padded = _padded_out_channels(node, lanes)
    if padded is not None:
        return padded[0], lanes
    blocks = _conv_blocks(node, lanes)
    return None if blocks is None else blocks[:2]


def default_plan(mod: Module, lanes: int) -> dict[str, tuple[int, int]]:
    """The default rule's choice for every blockable conv of ``mod``, as a block plan.

    >>> alter_layout(mod, lanes=16, blocks=default_plan(mod, 16))   # same as no plan
    """
    plan = {}
    for conv, cid in conv_ids(mod).items():
        blocks = rule_blocks(conv, lanes)
        if blocks is not None:
            plan[cid] = blocks
    return plan


def _conv_blocks(node: Call, lanes: int) -> tuple[int, int, str] | None:
    """(input block, output block, weight layout) when the blocked conv supports ``node``."""
    data, weight = node.args[0].type, node.args[1].type
    if not isinstance(data, TensorType) or data.dtype != "float32" or weight.dtype != "float32":
        return None
    channels, out_channels, groups = data.shape[1], weight.shape[0], node.attrs.groups
    out_block = _block_for(out_channels, lanes)
    if out_block is None:
        return None
    if groups == 1:
        in_block = _block_for(channels, lanes)
        if in_block is None and channels < lanes:
            in_block = channels  # one block holds all channels (RGB input: NCHW3c)
        if in_block is None:
            return None
        return in_block, out_block, f"OIHW{in_block}i{out_block}o"
    if groups == channels == out_channels and weight.shape[1] == 1:
        return out_block, out_block, f"OIHW1i{out_block}o"
    block = _group_block(node, lanes)
    return None if block is None else (block, block, f"OIHW{block}i{block}o")


def _group_blocks(node: Call) -> list[int]:
    """The channel blocks a grouped conv (1 < groups, not depthwise) may run in: those of
    PLAN_BLOCKS dividing both the input and the output channels of one group, so that no
    block straddles two groups (RegNetY's group width 16: 4, 8 and 16)."""
    channels, out_channels = node.args[0].type.shape[1], node.args[1].type.shape[0]  # type: ignore[union-attr]
    groups = node.attrs.groups
    if groups <= 1 or node.args[1].type.shape[1] == 1:  # type: ignore[union-attr]
        return []
    group_in, group_out = channels // groups, out_channels // groups
    return [b for b in PLAN_BLOCKS if group_in % b == 0 and group_out % b == 0]


def _group_block(node: Call, lanes: int) -> int | None:
    """A grouped conv's channel block: a whole vector (``lanes``) when it divides the group
    widths, else the smallest full AVX2 vector (8), else None (the conv keeps NCHW; a
    narrower block would run its FMAs on part of a vector)."""
    blocks = _group_blocks(node)
    for block in (lanes, CHANNEL_BLOCK):
        if block in blocks:
            return block
    return None


def conv_ids(mod: Module) -> dict[Call, str]:
    """The stable id of every ``nn.conv2d`` call of ``main``: its name when non-empty and
    unique among the convs, else ``conv2d#K`` (K: its index among the convs in post order).

    >>> list(conv_ids(mod).values())   # doctest: +SKIP
    ['conv1', 'layer1.0.conv1', ..., 'conv2d#7']
    """
    convs = [
        n
        for n in post_order(mod.main.body)
        if isinstance(n, Call) and isinstance(n.op, Op) and n.op.name == "nn.conv2d"
    ]
    counts: dict[str, int] = {}
    for c in convs:
        counts[c.name] = counts.get(c.name, 0) + 1
    return {
        c: c.name if c.name and counts[c.name] == 1 else f"conv2d#{k}" for k, c in enumerate(convs)
    }


def plan_blocks_of(node: Call) -> list[tuple[int, int]]:
    """Every (input block, output block) a plan may give conv ``node`` (empty when the
    blocked conv cannot run it): blocks from PLAN_BLOCKS dividing the channels, or all the
    input channels in one block when fewer than the widest; an output block that does not
    divide them where the conv may be zero-padded (see PAD_MIN_CHANNELS); depthwise: equal
    blocks.

    >>> plan_blocks_of(conv_3_to_16)   # doctest: +SKIP
    [(3, 4), (3, 8), (3, 16)]
    """
    data, weight = node.args[0].type, node.args[1].type
    if not isinstance(data, TensorType) or data.dtype != "float32" or weight.dtype != "float32":
        return []
    channels, out_channels, groups = data.shape[1], weight.shape[0], node.attrs.groups
    outs = [b for b in PLAN_BLOCKS if out_channels % b == 0 or _paddable(node, b)]
    if groups == 1:
        ins = [b for b in PLAN_BLOCKS if channels % b == 0]
        if channels < PLAN_BLOCKS[-1] and channels not in ins:
            ins.append(channels)
        return [(i, o) for i in ins for o in outs]
    if groups == channels == out_channels and weight.shape[1] == 1:
        return [(b, b) for b in outs]
    return [(b, b) for b in _group_blocks(node)]


def _planned_blocks(node: Call, conv_id: str, plan: tuple[int, int]) -> tuple[int, int, str]:
    """(input block, output block, weight layout) of a planned conv, or a clear error."""
    data, weight = node.args[0].type, node.args[1].type
    where = f"alter_layout: block plan for conv {conv_id!r}"
    if (
        not isinstance(plan, tuple | list)
        or len(plan) != 2
        or not all(isinstance(b, int | np.integer) and not isinstance(b, bool) for b in plan)
    ):
        raise AttrError(
            f"{where}: expected (input block, output block) as two ints, got {plan!r}",
            hint="write blocks={conv_id: (8, 16)}",
        )
    in_block, out_block = int(plan[0]), int(plan[1])
    allowed = plan_blocks_of(node)
    if (in_block, out_block) not in allowed:
        shape = f"data {data.shape}, weight {weight.shape}, groups={node.attrs.groups}"
        if not allowed:
            raise AttrError(
                f"{where}: the blocked x86 conv cannot run this conv ({shape})",
                hint="leave it out of the plan; it keeps NCHW",
            )
        raise AttrError(
            f"{where}: blocks ({in_block}, {out_block}) do not fit {data.shape[1]} input / "
            f"{weight.shape[0]} output channels ({shape})",
            hint=f"blocks must divide the channels, from {PLAN_BLOCKS} (depthwise: equal; "
            "grouped: equal, dividing each group's input and output channels); "
            f"this conv takes {allowed}",
        )
    if node.attrs.groups > 1 and weight.shape[1] == 1:  # depthwise
        return in_block, out_block, f"OIHW1i{out_block}o"
    return in_block, out_block, f"OIHW{in_block}i{out_block}o"


def _check_plan(plan: Mapping[str, tuple[int, int]], ids: dict[Call, str]) -> None:
    known = set(ids.values())
    unknown = sorted(k for k in plan if k not in known)
    if unknown:
        shown = ", ".join(sorted(known)[:8]) + (" ..." if len(known) > 8 else "")
        raise AttrError(
            f"alter_layout: block plan names convs the module does not have: {unknown[:5]}",
            hint=f"conv ids are node names, or conv2d#K when a name is empty or repeated; "
            f"this module has: {shown or 'no convs'}",
        )


def _elementwise_block(node: Call, natural: dict[Expr, int]) -> int | None:
    """The block an elementwise / concat op runs in (its first blocked input's of the
    output's shape), or None when it must run in NCHW."""
    op = node.op
    if not isinstance(op, Op) or not isinstance(node.type, TensorType):
        return None
    shape = node.type.shape
    concat = op.name == "concatenate"
    # A concat's fields differ in channels; an elementwise op takes its block from an
    # input of its own shape, so a small blocked operand (a squeeze-and-excitation
    # scale) never re-blocks the large NCHW one.
    blocks = [
        natural[a]
        for a in node.args
        if a in natural and (concat or getattr(a.type, "shape", None) == shape)
    ]
    if len(shape) != 4 or not blocks or shape[1] % blocks[0]:
        return None
    block = blocks[0]
    if concat:
        ok = node.attrs.axis in (1, -3) and all(
            isinstance(a.type, TensorType) and a.type.shape[1] % block == 0 for a in node.args
        )
        return block if ok else None
    if op.pattern not in (OpPattern.ELEMWISE, OpPattern.BROADCAST):
        return None
    # Attributes naming axes would point at the wrong axis of the blocked tensor.
    if node.attrs is not None and dataclasses.is_dataclass(node.attrs):
        names = {f.name for f in dataclasses.fields(node.attrs)}
        if names & {"axis", "axes"}:
            return None
    for a in node.args:
        t = a.type
        if not isinstance(t, TensorType):
            return None
        if t.shape != shape and not (isinstance(a, Constant) and t.size == 1):
            if _per_channel(a, shape[1]) is None and not _spatial_broadcast(t.shape, shape):
                return None
    return block


def _spatial_broadcast(arg_shape: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether an (N, C, h, w) operand broadcasts to NCHW ``shape`` along batch and space
    only (a squeeze-and-excitation scale (N, C, 1, 1)): blocked, (N, C/x, h, w, x)
    broadcasts against the blocked data the same way."""
    return (
        len(arg_shape) == 4
        and arg_shape[1] == shape[1]
        and all(a in (1, s) for k, (a, s) in enumerate(zip(arg_shape, shape)) if k != 1)
    )


def _per_channel(arg: Expr, channels: int) -> np.ndarray | None:
    """The (C,) values of a per-channel constant ((C, 1, 1) or (1, C, 1, 1): a batch norm's
    scale and shift left beside a conv), or None."""
    if not isinstance(arg, Constant) or arg.type.shape not in (
        (channels, 1, 1),
        (1, channels, 1, 1),
    ):
        return None
    return np.asarray(arg.value).reshape(channels)


def _blocked_per_channel(values: np.ndarray, block: int, name: str) -> Constant:
    """(C,) -> (C/block, 1, 1, block): broadcasts against NCHW[block]c data like (C, 1, 1)
    against NCHW (numpy aligns the trailing axes)."""
    channels = values.shape[0]
    return Constant(np.ascontiguousarray(values.reshape(channels // block, 1, 1, block)), name)


class _Rewriter:
    def __init__(
        self,
        lanes: int,
        plan: Mapping[str, tuple[int, int]] | None = None,
        ids: dict[Call, str] | None = None,
    ) -> None:
        self.lanes = lanes
        self.plan = plan or {}
        self.ids = ids or {}
        self.primal: dict[Expr, Expr] = {}  # original node -> new node in NCHW
        self.blocked: dict[tuple[Expr, int], Expr] = {}  # (original, block) -> NCHW{block}c
        self.natural: dict[Expr, int] = {}  # original node computed blocked -> its block
        self.transform = get_op("layout_transform")

    def _relayout(self, x: Expr, src: str, dst: str, name: str) -> Call:
        attrs = LayoutTransformAttrs(src_layout=src, dst_layout=dst)
        return Call(self.transform, (x,), attrs, name)

    def _set_blocked(self, node: Expr, block: int, new: Expr) -> None:
        self.blocked[(node, block)] = new
        self.natural[node] = block

    def get_primal(self, node: Expr) -> Expr:
        if node not in self.primal:
            block = self.natural[node]
            name = f"{node.name}_nchw" if node.name else ""
            src = self.blocked[(node, block)]
            self.primal[node] = self._relayout(src, f"NCHW{block}c", "NCHW", name)
        return self.primal[node]

    def get_blocked(self, node: Expr, block: int) -> Expr:
        key = (node, block)
        if key not in self.blocked:
            name = f"{node.name}_nchw{block}c" if node.name else ""
            natural = self.natural.get(node)
            if self.plan and natural is not None and node not in self.primal:
                # Under a plan blocks differ on purpose: re-block in one step.
                src = self.blocked[(node, natural)]
                self.blocked[key] = self._relayout(src, f"NCHW{natural}c", f"NCHW{block}c", name)
            else:
                primal = self.get_primal(node)
                self.blocked[key] = self._relayout(primal, "NCHW", f"NCHW{block}c", name)
        return self.blocked[key]

    def _conv_blocks(self, node: Call) -> tuple[int, int, str] | None:
        conv_id = self.ids.get(node)
        if conv_id is not None and conv_id in self.plan:
            return _planned_blocks(node, conv_id, self.plan[conv_id])
        return _conv_blocks(node, self.lanes)

    def _padding(self, node: Call) -> tuple[int, int, int] | None:
        """(input block, padded output channels, output block) when conv ``node`` runs
        zero-padded: the plan's output block does not divide its channels, or (not in the
        plan) the rule pads it to whole vectors."""
        conv_id = self.ids.get(node)
        if conv_id is not None and conv_id in self.plan:
            in_block, out_block, _ = _planned_blocks(node, conv_id, self.plan[conv_id])
            out_channels = node.args[1].type.shape[0]  # type: ignore[union-attr]
            if out_channels % out_block == 0:
                return None
            return in_block, -(-out_channels // out_block) * out_block, out_block
        padded = _padded_out_channels(node, self.lanes)
        return None if padded is None else (*padded, self.lanes)

    def _padded_conv(self, node: Call, in_block: int, channels: int, out_block: int) -> Expr:
        """``node`` on whole ``out_block`` output blocks: zero weights and bias for the
        channels past the real ones, then back to NCHW and cropped (the consumers see the
        original shape and values; the crop is an injective kernel of its own)."""
        weight, *bias = node.args[1:]
        extra = channels - weight.type.shape[0]  # type: ignore[union-attr]
        w = np.asarray(weight.value)  # type: ignore[union-attr]
        w = np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)])
        packed = self._relayout(
            Constant(w, weight.name),
            "OIHW",
            f"OIHW{in_block}i{out_block}o",
            f"{node.name}_packed_weight",
        )
        rest = []
        for b in bias:
            v = np.asarray(b.value)  # type: ignore[union-attr]
            rest.append(Constant(np.concatenate([v, np.zeros(extra, v.dtype)]), b.name))
        data = self.get_blocked(node.args[0], in_block)
        conv = Call(get_op("nn.conv2d_nchwc"), (data, packed, *rest), node.attrs, node.name)
        name = f"{node.name}_crop" if node.name else ""
        primal = self._relayout(conv, f"NCHW{out_block}c", "NCHW", name)
        crop = StridedSliceAttrs(begin=(0,), end=(channels - extra,), axes=(1,))
        return Call(get_op("strided_slice"), (primal,), crop, name)

    def _blocked_operand(self, arg: Expr, block: int, shape: tuple[int, ...], concat: bool) -> Expr:
        if concat or arg.type.shape == shape:  # type: ignore[union-attr]
            return self.get_blocked(arg, block)
        values = _per_channel(arg, shape[1])
        if values is not None:
            return _blocked_per_channel(values, block, arg.name)
        if _spatial_broadcast(arg.type.shape, shape):  # type: ignore[union-attr]
            return self.get_blocked(arg, block)  # (N, C/x, 1, 1, x): blocked already in SE
        return self.get_primal(arg)  # a size-1 constant

    def visit(self, node: Expr) -> None:
        if isinstance(node, Tuple):
            self.primal[node] = Tuple(tuple(self.get_primal(f) for f in node.fields), node.name)
        elif isinstance(node, TupleGetItem):
            self.primal[node] = TupleGetItem(
                self.get_primal(node.tuple_value), node.index, node.name
            )
        elif isinstance(node, Call) and isinstance(node.op, Op):
            self._visit_call(node)
        elif isinstance(node, Call):
            args = tuple(self.get_primal(a) for a in node.args)
            self.primal[node] = Call(node.op, args, node.attrs, node.name)
        else:  # Var, Constant
            self.primal[node] = node

    def _visit_call(self, node: Call) -> None:
        op = node.op
        assert isinstance(op, Op)
        if op.name == "nn.conv2d" and (padded := self._padding(node)) is not None:
            self.primal[node] = self._padded_conv(node, *padded)
        elif op.name == "nn.conv2d" and (blocks := self._conv_blocks(node)) is not None:
            in_block, out_block, weight_layout = blocks
            data = self.get_blocked(node.args[0], in_block)
            weight = self._relayout(
                self.get_primal(node.args[1]), "OIHW", weight_layout, f"{node.name}_packed_weight"
            )
            rest = tuple(self.get_primal(a) for a in node.args[2:])
            conv = Call(get_op("nn.conv2d_nchwc"), (data, weight, *rest), node.attrs, node.name)
            self._set_blocked(node, out_block, conv)
        elif op.name in ("nn.max_pool2d", "nn.avg_pool2d") and node.args[0] in self.natural:
            block = self.natural[node.args[0]]
            data = self.blocked[(node.args[0], block)]
            pool = Call(get_op(f"{op.name}_nchwc"), (data,), node.attrs, node.name)
            self._set_blocked(node, block, pool)
        elif op.name in GLOBAL_POOLS and node.args[0] in self.natural:
            # Global pooling of blocked data: a mean / max over its spatial axes, which
            # leaves (N, C/x, 1, 1, x), the blocked (N, C, 1, 1). Squeeze-and-excitation
            # then stays blocked, and a classifier head re-lays out N*C values, not the map.
            block = self.natural[node.args[0]]
            data = self.blocked[(node.args[0], block)]
            attrs = ReduceAttrs(axes=(2, 3), keepdims=True)
            pool = Call(get_op(GLOBAL_POOLS[op.name]), (data,), attrs, node.name)
            self._set_blocked(node, block, pool)
        elif (block := _elementwise_block(node, self.natural)) is not None:
            same = node.type.shape  # type: ignore[union-attr]
            concat = op.name == "concatenate"  # every field blocked; else same-shaped operands
            args = tuple(self._blocked_operand(a, block, same, concat) for a in node.args)
            attrs = dataclasses.replace(node.attrs, axis=1) if concat else node.attrs
            self._set_blocked(node, block, Call(op, args, attrs, node.name))
        else:
            args = tuple(self.get_primal(a) for a in node.args)
            self.primal[node] = Call(op, args, node.attrs, node.name)


def alter_layout(
    mod: Module,
    target: Target | None = None,
    lanes: int | None = None,
    blocks: Mapping[str, tuple[int, int]] | None = None,
) -> Module:
    """Blocked (NCHW[x]c) convolutions and their epilogues; see the module docstring.

    ``lanes`` (the widest channel block) defaults to the target's float32 vector width:
    16 with AVX-512, else 8 (also without a target). ``blocks``: a block plan ``{conv id:
    (input block, output block)}`` (ids from :func:`conv_ids`); a block that does not
    divide the conv's channels (and cannot be padded) or that the blocked conv cannot run
    raises AttrError naming the conv.
    """
    if lanes is None:
        lanes = target.vector_lanes("float32") if target is not None else CHANNEL_BLOCK
    if lanes % CHANNEL_BLOCK:
        raise AttrError(
            f"alter_layout: lanes={lanes} is not a multiple of {CHANNEL_BLOCK}",
            hint="use 8 (AVX2) or 16 (AVX-512)",
        )
    # control-flow bodies: the rule's blocks (a block plan names the convs of main only)
    mod = with_bodies(mod, functools.partial(alter_layout, target=target, lanes=lanes))
    main = mod.main
    ids = conv_ids(mod) if blocks else {}
    if blocks:
        _check_plan(blocks, ids)
    rewriter = _Rewriter(lanes, blocks, ids)
    for node in post_order(main.body):
        rewriter.visit(node)
    body = rewriter.get_primal(main.body)
    if body is main.body:
        return mod
    out = mod.with_main(Function(main.params, body, dict(main.attrs)))
    return fold_constants(out)  # packs the constant weights


__all__ = [
    "CHANNEL_BLOCK",
    "PLAN_BLOCKS",
    "alter_layout",
    "conv_ids",
    "default_plan",
    "plan_blocks_of",
    "rule_blocks",
]
