"""Row blocks of the x86 blocked conv schedule: a channel tile's accumulators for several
output rows in a local buffer, with the input-channel blocks outside the register tiles.

Each kernel is a fused conv (+ bias, residual add, relu) built through the op strategy
or the autotuning template, compared with the numpy reference on fresh random inputs.
"""

from __future__ import annotations

import re

import pytest
from topi_testlib import check_conv_relu_kernel

import ember
from ember.dispatch.templates_fused import kernel_task
from ember.graph.ir import Function, TensorType, Var
from ember.ops import call
from ember.target import Target
from ember.topi.strategy import schedule_primitive
from ember.topi.x86.conv2d import ConvTile, choose_tile, row_block

HOST = Target.parse("host")

F = "float32"


def _kernel(c, h, o, k, block=8, stride=1, padding=0, residual=True):  # type: ignore[no-untyped-def]
    """conv (C -> O, k x k, NCHW[block]c) + bias [+ residual add] + relu, one kernel."""
    x = Var("x", TensorType((1, c // block, h, h, block)))
    w = Var("w", TensorType((o // block, c // block, k, k, block, block)))
    b = Var("b", TensorType((o,)))
    conv = call("nn.conv2d_nchwc", x, w, b, strides=stride, padding=padding)
    params = [x, w, b]
    y = conv
    if residual:
        r = Var("r", TensorType(conv.type.shape))
        params.append(r)
        y = call("add", y, r)
    y = call("nn.relu", y)
    return Function(tuple(params), y, {"primitive": True, "name": "k"}), conv


@pytest.mark.parametrize(
    "shape",
    [
        dict(c=32, h=7, o=64, k=3, padding=1),  # 3x3 on a 7x7 plane: the whole plane
        dict(c=32, h=14, o=32, k=3, stride=2, padding=1),  # stride 2 down to 7x7
        dict(c=256, h=7, o=32, k=1),  # 1x1, 32 input blocks: several per pass
        dict(c=16, h=5, o=16, k=1, residual=False),  # 1x1, 2 input blocks: one pass
    ],
    ids=["3x3_7x7", "3x3_stride2", "1x1_many_blocks", "1x1_few_blocks"],
)
@pytest.mark.parametrize("cpu", ["haswell", "skylake-avx512"])
def test_default_row_blocks_match_reference(shape, cpu) -> None:  # type: ignore[no-untyped-def]
    # Scheduled for an AVX2 and an AVX-512 CPU (16 and 32 vector registers), run here.
    target = Target.parse(f"llvm -mcpu={cpu}")
    func, conv = _kernel(**shape)
    source = check_conv_relu_kernel(func, conv, schedule_primitive(func, target))
    # The conv's local buffer holds every output row of its channel tile (not one tile).
    _, blocks, oh, ow, lanes = conv.type.shape
    registers = target.vector_registers
    tile = choose_tile(blocks, ow, registers, False, registers < 32)
    assert row_block(oh, ow, lanes, tile, False) == oh
    sizes = re.findall(r"conv2d_nchwc\[(\d+)\][^;]*;\s*/\* local scratch", source)
    assert sizes == [str(tile.oc_tile * oh * ow * lanes)], sizes


def test_row_block_choice() -> None:
    # ResNet-50's 7x7 layers (16 lanes, 4 x 7 tile): the whole plane, 12.5 KiB.
    assert row_block(7, 7, 16, ConvTile(4, 7), False) == 7
    # 14x14 and larger planes keep one register tile per reduction.
    assert row_block(14, 14, 16, ConvTile(4, 7), False) == 0
    assert row_block(14, 14, 8, ConvTile(1, 14), False) == 14  # 6.1 KiB
    assert row_block(7, 7, 16, ConvTile(1, 7), True) == 0  # depthwise: never


def _tuned_points(task, want):  # type: ignore[no-untyped-def]
    space = task.config_space
    for i in range(len(space)):
        cfg = space.get(i)
        values = cfg.knob_values()
        if all(values[k] == v for k, v in want.items()):
            yield cfg


@pytest.mark.parametrize(
    "h, want",
    [
        # Row blocks the heuristic does not pick: 2 of 18 rows, a 16-wide tile with a tail.
        (18, dict(row_block=2, ow_tile=16, oc_tile=2)),
        (14, dict(row_block=7, ow_tile=14, oc_tile=1)),
        # Row blocks off on a plane where the default uses them.
        (7, dict(row_block=0, ow_tile=7, oc_tile=4)),
    ],
    ids=["rows2_tail", "rows7", "no_rows"],
)
def test_tuned_row_blocks_match_reference(h, want) -> None:  # type: ignore[no-untyped-def]
    func, conv = _kernel(c=64, h=h, o=64, k=3, padding=1)
    task = kernel_task(func, HOST)
    cfg = next(_tuned_points(task, want))
    check_conv_relu_kernel(func, conv, task.instantiate(cfg))


def test_row_block_knob_is_offered_and_fallback_is_the_default() -> None:
    func, _ = _kernel(c=32, h=7, o=64, k=3, padding=1)
    task = kernel_task(func, HOST)
    space = task.config_space
    rows = space.space_map["row_block"]
    values = [e.val for e in rows.entities]
    assert values[0] == 7 and 0 in values  # default first, then the alternatives
    default = ember.lower(*schedule_primitive(func, HOST))
    assert str(ember.lower(*task.instantiate(space.get(0)))) == str(default)
