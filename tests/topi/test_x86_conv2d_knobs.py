"""The x86 blocked conv's tuning knobs beyond the register tile: ``loop_order``,
``unroll_kh``, tile widths that do not divide the row (and spill), and wide depthwise
tiles. Every point is built from the autotuning template and compared with the numpy
reference on fresh random inputs; the fallback point is the untuned schedule.
"""

from __future__ import annotations

import pytest
from topi_testlib import check_conv_relu_kernel

import ember
from ember.dispatch.templates_fused import kernel_task
from ember.graph.ir import Function, TensorType, Var
from ember.ops import call
from ember.target import Target
from ember.topi.strategy import schedule_primitive
from ember.topi.x86.conv2d import DW_MIN_BLOCKS, MAX_DW_OW_TILE, MAX_OW_TILE

HOST = Target.parse("host")

F = "float32"


def _conv(c, h, o, k, block=8, stride=1, padding=0):  # type: ignore[no-untyped-def]
    """conv (C -> O, k x k, NCHW[block]c) + bias + relu as one kernel."""
    x = Var("x", TensorType((1, c // block, h, h, block)))
    w = Var("w", TensorType((o // block, c // block, k, k, block, block)))
    b = Var("b", TensorType((o,)))
    conv = call("nn.conv2d_nchwc", x, w, b, strides=stride, padding=padding)
    y = call("nn.relu", conv)
    return Function((x, w, b), y, {"primitive": True, "name": "k"}), conv


def _depthwise(c, h, k=3, block=8, stride=1, padding=1):  # type: ignore[no-untyped-def]
    """depthwise conv (groups = C) + bias + relu as one kernel."""
    x = Var("x", TensorType((1, c // block, h, h, block)))
    w = Var("w", TensorType((c // block, 1, k, k, 1, block)))
    b = Var("b", TensorType((c,)))
    conv = call("nn.conv2d_nchwc", x, w, b, strides=stride, padding=padding, groups=c)
    y = call("nn.relu", conv)
    return Function((x, w, b), y, {"primitive": True, "name": "k"}), conv


def _point(task, **want):  # type: ignore[no-untyped-def]
    """The config with the fallback's knob values except ``want``."""
    space = task.config_space
    values = {**space.get(0).knob_values(), **want}
    return space.get(space.index_of(values))


@pytest.mark.parametrize(
    "want",
    [
        dict(loop_order=1),  # rows outside the channel tiles
        dict(loop_order=2),  # channel tiles alone in parallel
        dict(unroll_kh=True, unroll_kw=True, reduce_order=1),
        dict(ow_tile=5, oc_tile=2),  # 5 does not divide 12: a 2-pixel tail tile
        dict(ow_tile=12, oc_tile=4),  # 48 accumulators: spills, still correct
    ],
    ids=["rows_outside", "tiles_parallel", "unrolled_window", "tail_tile", "spilling"],
)
def test_conv_knob_points_match_reference(want) -> None:  # type: ignore[no-untyped-def]
    func, conv = _conv(c=16, h=12, o=64, k=3, padding=1)
    task = kernel_task(func, HOST)
    check_conv_relu_kernel(func, conv, task.instantiate(_point(task, **want)))


@pytest.mark.parametrize(
    "want, stride",
    [
        (dict(loop_order=0), 1),  # rows back in the parallel loop
        (dict(loop_order=1, unroll_kh=True), 2),
        (dict(ow_tile=MAX_DW_OW_TILE, unroll_kw=True), 1),  # wider than the dense cap
        (dict(ow_tile=9), 2),
    ],
    ids=["rows_parallel", "rows_outside_s2", "widest", "tail_s2"],
)
def test_depthwise_knob_points_match_reference(want, stride) -> None:  # type: ignore[no-untyped-def]
    func, conv = _depthwise(c=8 * DW_MIN_BLOCKS, h=30, stride=stride)
    task = kernel_task(func, HOST)
    check_conv_relu_kernel(func, conv, task.instantiate(_point(task, **want)))


@pytest.mark.parametrize(
    "cpu, rule_width", [("skylake-avx512", 12), ("haswell", 6)], ids=["avx512", "avx2"]
)
def test_knobs_offered_with_the_untuned_choice_first(cpu, rule_width) -> None:  # type: ignore[no-untyped-def]
    target = Target.parse(f"llvm -mcpu={cpu}")
    func, _ = _conv(c=16, h=12, o=16, k=3, padding=1)  # 2 output blocks
    space = kernel_task(func, target).config_space
    values = {name: [e.val for e in knob.entities] for name, knob in space.space_map.items()}
    # Every width up to the cap, the rule's first: with AVX-512's 32 registers the whole
    # row (12), with AVX2's 16 half of it.
    assert values["ow_tile"][0] == rule_width and sorted(values["ow_tile"]) == list(range(1, 13))
    assert values["unroll_kh"] == [False, True]
    # Too few channel blocks for order 2 to keep two threads busy: not offered.
    assert values["loop_order"] == [0, 1]
    default = ember.lower(*schedule_primitive(func, target))
    assert str(ember.lower(*kernel_task(func, target).instantiate(space.get(0)))) == str(default)

    one, _ = _conv(c=16, h=40, o=16, k=1)
    values = {
        n: [e.val for e in k.entities]
        for n, k in kernel_task(one, HOST).config_space.space_map.items()
    }
    assert values["unroll_kh"] == [False] and values["unroll_kw"] == [False]  # 1x1: no window
    assert max(values["ow_tile"]) == MAX_OW_TILE


def test_depthwise_fallback_keeps_the_rule() -> None:
    func, _ = _depthwise(c=8 * DW_MIN_BLOCKS, h=30)
    task = kernel_task(func, HOST)
    space = task.config_space
    orders = [e.val for e in space.space_map["loop_order"].entities]
    assert orders[0] == 2  # enough blocks: parallel over blocks, rows serial
    assert max(e.val for e in space.space_map["ow_tile"].entities) == MAX_DW_OW_TILE
    default = ember.lower(*schedule_primitive(func, HOST))
    assert str(ember.lower(*task.instantiate(space.get(0)))) == str(default)
