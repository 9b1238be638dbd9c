"""winograd_conv2d: run eligible 3x3 stride-1 blocked convolutions with Winograd F(m x m, 3 x 3).

Needs: the output of ``alter_layout`` (convs as ``nn.conv2d_nchwc``) with the packed
weights folded into constants (run ``optimize`` and ``alter_layout`` first); a conv whose
weight is not a constant is left alone (Winograd's weight transform must happen here, at
compile time, not per inference).
Guarantees: every ``nn.conv2d_nchwc`` with a 3x3 kernel, strides 1, dilation 1, groups 1,
float32 data whose channel block equals the weight's input block, and a constant weight,
that :func:`choose_tile_size` accepts, becomes three calls::

    V = nn.winograd_input_transform(data)            (alpha, alpha, C/i, tiles, i)
    M = nn.winograd_batch_matmul(V, U)               U = G g G^T: a new constant
    Y = nn.winograd_output_transform(M[, bias])      same type as the conv

The old packed weight is dropped; every other node is untouched and the result computes
the same values (up to float32 rounding: rel. error ~1e-6 for F(4x4)).

    mod = winograd_conv2d(alter_layout(optimize(mod, params), "host"))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from ember.errors import AttrError
from ember.graph.ir import Call, Constant, Expr, Function, Module, TensorType
from ember.graph.visitor import ExprMutator, with_bodies
from ember.ops.layout import Layout, to_primal
from ember.ops.registry import NoAttrs, Op, get_op
from ember.ops.winograd import (
    TILE_SIZES,
    WinogradInputAttrs,
    WinogradOutputAttrs,
    transform_weight,
)

MIN_CHANNELS = 64
"""Input and output channels at least: ResNet's layers (64..512 channels) measured faster;
with fewer channels the per-tile transforms weigh more against the GEMM they shrink."""

MIN_OUTPUT_SIZE = 8
"""Output height and width at least: on 7x7 maps (ResNet's 512-channel layers) neither
tile size measured faster than the direct conv at 1 thread (F(2x2) 1.2x slower, F(4x4)
even), so small maps keep the direct conv."""

F4_MIN_OUTPUT_SIZE = 16
"""F(4x4, 3x3) from this output size, F(2x2, 3x3) below it. F(4x4)'s GEMM does 1/4 of the
direct conv's multiplies (36 per 16 pixels vs 9 per pixel), F(2x2)'s 1/2.25, but 4x4 tiles
waste the pixels past the border: on 14x14 (16 tiles of 16 pixels for 196) F(2x2) measured
faster (1.6x vs 1.4x over direct), on 28x28 and 56x56 F(4x4) did (2.1-2.5x vs 1.3-1.8x)."""


def choose_tile_size(in_channels: int, out_channels: int, out_h: int, out_w: int) -> int | None:
    """The Winograd tile size m for a 3x3 stride-1 conv, or None to keep the direct conv.

    The rule comes from ``python benchmarks/winograd.py`` (ResNet-18/50's 3x3 layers at 1
    and 2 threads): Winograd only where it measured faster, with the faster tile size.

    >>> choose_tile_size(64, 64, 56, 56), choose_tile_size(256, 256, 14, 14)
    (4, 2)
    >>> choose_tile_size(512, 512, 7, 7) is None
    True
    """
    if min(in_channels, out_channels) < MIN_CHANNELS:
        return None
    size = min(out_h, out_w)
    if size < MIN_OUTPUT_SIZE:
        return None
    return 4 if size >= F4_MIN_OUTPUT_SIZE else 2


Rule = Callable[[int, int, int, int], "int | None"]
_rule_override: list[Rule] = []


@contextmanager
def use_rule(rule: Rule) -> Iterator[None]:
    """Within the block, :func:`winograd_conv2d` asks ``rule`` instead of
    :func:`choose_tile_size` (benchmarks compare ``lambda *shape: None``, i.e. no Winograd,
    with the default; tests force a tile size on small models).

    >>> with use_rule(lambda *shape: None):
    ...     lib = ember.compile(mod, params)      # every conv direct
    """
    _rule_override.append(rule)
    try:
        yield
    finally:
        _rule_override.pop()


def _eligible(node: Call) -> bool:
    attrs = node.attrs
    data, weight = node.args[0].type, node.args[1].type
    return (
        isinstance(data, TensorType)
        and isinstance(weight, TensorType)
        and data.dtype == "float32"
        and weight.dtype == "float32"
        and isinstance(node.args[1], Constant)
        and weight.shape[2:4] == (3, 3)
        and data.shape[4] == weight.shape[4]
        and attrs.strides == (1, 1)
        and attrs.dilation == (1, 1)
        and attrs.groups == 1
    )


class _Rewriter(ExprMutator):
    def __init__(self, tile_size: int | None) -> None:
        super().__init__()
        self.tile_size = tile_size
        self.conv = get_op("nn.conv2d_nchwc")
        self.input_op = get_op("nn.winograd_input_transform")
        self.gemm_op = get_op("nn.winograd_batch_matmul")
        self.output_op = get_op("nn.winograd_output_transform")

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        if not (isinstance(call.op, Op) and call.op is self.conv and _eligible(call)):
            return super().visit_call(call, args)
        out = call.type
        assert isinstance(out, TensorType)
        weight = call.args[1]
        assert isinstance(weight, Constant)
        in_block, out_block = weight.type.shape[4], weight.type.shape[5]
        primal = to_primal(np.asarray(weight.value), Layout.parse(f"OIHW{in_block}i{out_block}o"))
        out_channels, in_channels = primal.shape[:2]
        rule = _rule_override[-1] if _rule_override else choose_tile_size
        m = self.tile_size or rule(in_channels, out_channels, *out.shape[2:4])
        if m is None:
            return super().visit_call(call, args)
        name = call.name or "conv"
        u = Constant(transform_weight(primal, m, in_block, out_block), f"{name}_winograd_weight")
        in_attrs = WinogradInputAttrs(padding=call.attrs.padding, tile_size=m)
        v = Call(self.input_op, (args[0],), in_attrs, f"{name}_winograd_input")
        mm = Call(self.gemm_op, (v, u), NoAttrs(), f"{name}_winograd_gemm")
        out_attrs = WinogradOutputAttrs(tile_size=m, output_size=out.shape[2:4])
        return Call(self.output_op, (mm, *args[2:]), out_attrs, call.name)


def winograd_conv2d(mod: Module, *, tile_size: int | None = None) -> Module:
    """Eligible blocked 3x3 convs -> Winograd (see the module docstring).

    ``tile_size`` (2 or 4) forces that m on every eligible conv, skipping the
    :func:`choose_tile_size` rule (tests and benchmarks use it).

    >>> fused = fuse_ops(winograd_conv2d(alter_layout(optimize(mod, params), "host")))
    """
    if tile_size is not None and tile_size not in TILE_SIZES:
        raise AttrError(
            f"winograd_conv2d: tile_size={tile_size!r} is not supported",
            hint=f"use one of {TILE_SIZES}, or None for the measured rule",
        )
    mod = with_bodies(mod, functools.partial(winograd_conv2d, tile_size=tile_size))
    main = mod.main
    body = _Rewriter(tile_size).visit(main.body)
    if body is main.body:
        return mod
    return mod.with_main(Function(main.params, body, dict(main.attrs)))


__all__ = [
    "F4_MIN_OUTPUT_SIZE",
    "MIN_CHANNELS",
    "MIN_OUTPUT_SIZE",
    "choose_tile_size",
    "use_rule",
    "winograd_conv2d",
]
