"""Grouped and depthwise convolutions on x86: the blocked kernels and the layout rule.

Kernels (``nn.conv2d_nchwc`` with 1 < groups) are built through the op strategy with the
tile choices of AVX2 and of AVX-512 (the code runs here either way) and compared with the
op's numpy reference. Whole ONNX models (Conv + Relu) go through ``ember.compile`` and
are compared with the reference executor and onnxruntime on fresh random inputs: group
counts 2-4, group widths 8/16/24/48, strides 1/2, padding, and channel counts no block
divides (those keep NCHW); depthwise 3x3 / 5x5 / 7x7 with strides 1/2 and dilation.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from topi_testlib import Case, KernelTable, check_case

import ember
from ember.errors import AttrError, ShapeError
from ember.graph import interpret
from ember.graph.ir import Call, Function, Module, TensorType, Var
from ember.graph.passes import optimize
from ember.graph.passes.alter_layout import alter_layout, plan_blocks_of, rule_blocks
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target
from ember.testing import zoo
from ember.topi.strategy import schedule_primitive
from ember.topi.x86.conv2d import MIN_PARALLEL_FLOPS
from tests.frontend.onnx_testlib import make_model

ort = pytest.importorskip("onnxruntime")

F = "float32"


def _grouped(
    id_: str, c: int, o: int, groups: int, size: int, k: int = 3, block: int = 8, **attrs
) -> Case:
    """A grouped kernel case: data NCHW[block]c, weight (O/b, G/b, k, k, b, b), bias."""
    inputs = [
        ((1, c // block, size, size, block), F),
        ((o // block, c // groups // block, k, k, block, block), F),
        ((o,), F),
    ]
    return Case(id_, "nn.conv2d_nchwc", inputs, dict(groups=groups, **attrs), rtol=1e-4)


KERNEL_CASES = [
    _grouped("g2_width8", 16, 16, 2, 9, padding=1),
    _grouped("g4_width16_s2", 64, 64, 4, 13, strides=2, padding=1),
    _grouped("g2_width24_pad_asym", 48, 48, 2, 10, padding=(1, 0, 1, 2)),
    _grouped("g2_width48_s2", 96, 96, 2, 11, strides=2, padding=1),
    _grouped("g4_out32_1x1", 64, 128, 4, 7, k=1),  # 32 output channels per group
    _grouped("g9_width16_regnet", 144, 144, 9, 7, padding=1),
    _grouped("g4_width16_block16", 64, 64, 4, 7, block=16, padding=1),
    _grouped("g2_5x5_dilated", 16, 16, 2, 12, k=5, padding=4, dilation=2),
]

X86_TARGETS = {"avx2": "llvm -mcpu=haswell", "avx512": "llvm -mcpu=skylake-avx512"}


@pytest.fixture(scope="module", params=sorted(X86_TARGETS))
def table(request: pytest.FixtureRequest) -> KernelTable:
    return KernelTable(KERNEL_CASES, X86_TARGETS[request.param])


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.id)
def test_grouped_kernel_matches_reference(table: KernelTable, case: Case) -> None:
    check_case(table, case)


def test_blocks_straddling_groups_are_refused() -> None:
    d = Var("d", TensorType((1, 6, 5, 5, 8)))  # 48 channels
    w = Var("w", TensorType((6, 3, 3, 3, 4, 8)))  # 4 groups of 12 channels: blocks 4i8o
    with pytest.raises(ShapeError, match="straddle two groups"):
        call("nn.conv2d_nchwc", d, w, groups=4)
    w16 = Var("w", TensorType((3, 1, 3, 3, 16, 16)))  # data block 8, weight input block 16
    with pytest.raises(ShapeError, match="straddle two groups"):
        call("nn.conv2d_nchwc", d, w16, groups=3)


# ----------------------------------------------------------------------------- layout rule


def _conv_node(c: int, o: int, groups: int) -> Call:
    x = Var("x", TensorType((1, c, 8, 8)))
    w = Var("w", TensorType((o, c // groups, 3, 3)))
    return call("nn.conv2d", x, w, padding=1, groups=groups)


def test_layout_rule_blocks_grouped_convs_by_group_width() -> None:
    assert rule_blocks(_conv_node(64, 64, 4), 8) == (8, 8)  # width 16, AVX2
    assert rule_blocks(_conv_node(64, 64, 4), 16) == (16, 16)  # one group per AVX-512 block
    assert rule_blocks(_conv_node(96, 96, 4), 16) == (8, 8)  # width 24: 16 does not divide
    assert rule_blocks(_conv_node(36, 36, 3), 8) is None  # width 12: keeps NCHW
    assert rule_blocks(_conv_node(64, 96, 4), 8) == (8, 8)  # 16 in, 24 out per group
    assert rule_blocks(_conv_node(64, 96, 4), 16) == (8, 8)
    assert plan_blocks_of(_conv_node(64, 64, 4)) == [(4, 4), (8, 8), (16, 16)]
    assert plan_blocks_of(_conv_node(36, 36, 3)) == [(4, 4)]


def test_block_plan_rejects_blocks_that_straddle_groups() -> None:
    node = _conv_node(64, 64, 4)
    params = tuple(n for n in post_order(node) if isinstance(n, Var))
    mod = Module.from_function(Function(params, node))
    with pytest.raises(AttrError, match="do not fit"):
        alter_layout(mod, lanes=8, blocks={"conv2d#0": (8, 16)})


# ----------------------------------------------------------------------------- whole models


def _conv_model(c: int, o: int, size: int, k: int, groups: int, seed: int, **attrs) -> tuple:
    """An ONNX model Conv(+bias) -> Relu -> Conv 1x1 (so the blocked conv feeds a blocked
    consumer, as in the nets) and its input shape."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((o, c // groups, k, k)) / np.sqrt(c // groups * k * k)).astype(F)
    b = rng.standard_normal(o).astype(F)
    w2 = (rng.standard_normal((8, o, 1, 1)) / np.sqrt(o)).astype(F)
    conv_attrs = {"group": groups, "kernel_shape": [k, k], **attrs}
    nodes = [
        helper.make_node("Conv", ["data", "w", "b"], ["c"], **conv_attrs),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["output"]),
    ]
    shape = (1, c, size, size)
    model = make_model(nodes, {"data": (shape, F)}, ["output"], {"w": w, "b": b, "w2": w2})
    return model, shape


MODEL_CASES = {
    # grouped: channels, out channels, size, kernel, groups, ONNX attributes
    "grouped_g2_width8": (16, 16, 10, 3, 2, {"pads": [1, 1, 1, 1]}),
    "grouped_g4_width16_s2": (64, 64, 13, 3, 4, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "grouped_g2_width24": (48, 48, 9, 3, 2, {"pads": [1, 0, 1, 2]}),
    "grouped_g2_width48_s2": (96, 96, 12, 3, 2, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "grouped_g4_width16_out24": (64, 96, 8, 3, 4, {"pads": [1, 1, 1, 1]}),
    "grouped_g3_width12_nchw": (36, 36, 9, 3, 3, {"pads": [1, 1, 1, 1]}),
    # depthwise: groups = channels
    "dw3_s1_c24": (24, 24, 11, 3, 24, {"pads": [1, 1, 1, 1]}),
    "dw3_s2_c40": (40, 40, 14, 3, 40, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "dw3_dilated_c16": (16, 16, 12, 3, 16, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    "dw5_s1_c32": (32, 32, 13, 5, 32, {"pads": [2, 2, 2, 2]}),
    "dw5_s2_c48": (48, 48, 15, 5, 48, {"pads": [2, 2, 2, 2], "strides": [2, 2]}),
    "dw7_s1_c96": (96, 96, 17, 7, 96, {"pads": [3, 3, 3, 3]}),
    "dw7_s2_c32": (32, 32, 16, 7, 32, {"pads": [3, 3, 3, 3], "strides": [2, 2]}),
    "dw3_c20_nchw": (20, 20, 9, 3, 20, {"pads": [1, 1, 1, 1]}),
}


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_compiled_conv_matches_reference_and_onnxruntime(name: str) -> None:
    c, o, size, k, groups, attrs = MODEL_CASES[name]
    seed = int(np.random.SeedSequence().entropy % 2**32)
    model, shape = _conv_model(c, o, size, k, groups, seed, **attrs)
    mod, params = ember.frontend.from_onnx(model, shape={"data": shape})
    x = np.random.default_rng(seed).standard_normal(shape).astype(F)
    ours = ember.compile(mod, params, target="host").load().run({"data": x})[0]
    reference = interpret(mod, params, {"data": x})[0]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"data": x})[0]
    scale = float(np.abs(reference).max())
    what = f"{name}, seed {seed}"
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5 * scale, err_msg=what)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def test_avx512_build_blocks_groups_by_16() -> None:
    """The AVX-512 path compiles here (it may not run): RegNet's width-16 groups in one
    16-lane block each, and a 7x7 depthwise conv, both as 16-lane vector code."""
    model, shape = _conv_model(64, 64, 14, 3, 4, 0, pads=[1, 1, 1, 1])
    mod, params = ember.frontend.from_onnx(model, shape={"data": shape})
    blocked = alter_layout(optimize(mod, params), lanes=16)
    convs = [
        n
        for n in post_order(blocked.main.body)
        if isinstance(n, Call) and getattr(n.op, "name", "") == "nn.conv2d_nchwc"
    ]
    assert [(n.attrs.groups, n.args[1].type.shape[4:]) for n in convs][0] == (4, (16, 16))
    lib = ember.compile(mod, params, target="llvm -mcpu=skylake-avx512")
    assert "float32x16" in lib.get_source()
    model7, shape7 = _conv_model(96, 96, 14, 7, 96, 0, pads=[3, 3, 3, 3])
    mod7, params7 = ember.frontend.from_onnx(model7, shape={"data": shape7})
    lib7 = ember.compile(mod7, params7, target="llvm -mcpu=skylake-avx512")
    assert "float32x16" in lib7.get_source()


def _blocked_grouped_convs(options: dict) -> list[Call]:
    mod, params = zoo.get("regnet_y_800mf", **options)
    blocked = alter_layout(optimize(mod, params), lanes=8)
    return [
        n
        for n in post_order(blocked.main.body)
        if isinstance(n, Call)
        and getattr(n.op, "name", "") == "nn.conv2d_nchwc"
        and n.attrs.groups > 1
        and n.args[1].type.shape[4] > 1
    ]


def test_small_regnet_y_runs_its_grouped_convs_blocked() -> None:
    """The small RegNetY-800MF that tests/driver/test_compile_zoo.py compiles and checks
    against the reference executor and onnxruntime runs every grouped 3x3 conv as a
    blocked kernel, so that test covers them end to end."""
    assert len(_blocked_grouped_convs(zoo.SMALL["regnet_y_800mf"])) == 13


@pytest.mark.slow
def test_regnet_y_compiles_blocked_and_matches_reference() -> None:
    """RegNetY-800MF at half width and 32x32 (groups of 16 channels, 2 to 10 groups per
    conv): the artifact matches the reference executor."""
    options = {"image_size": 32, "width_multiplier": 0.5, "num_classes": 10}
    assert len(_blocked_grouped_convs(options)) == 14
    mod, params = zoo.get("regnet_y_800mf", **options)
    seed = int(np.random.SeedSequence().entropy % 2**31)
    x = zoo.random_input("regnet_y_800mf", seed=seed, **options)
    ours = ember.compile(mod, params, target="host").load().run({"data": x})[0]
    reference = interpret(mod, params, {"data": x})[0]
    scale = float(np.abs(reference).max())
    np.testing.assert_allclose(
        ours, reference, rtol=1e-4, atol=1e-5 * scale, err_msg=f"seed {seed}"
    )


@pytest.mark.parametrize(
    ("c", "h", "groups", "parallel"),
    [(8, 7, 8, False), (64, 14, 64, True), (16, 3, 2, False), (64, 14, 4, True)],
)
def test_small_conv_kernels_run_serial(c: int, h: int, groups: int, parallel: bool) -> None:
    """Below MIN_PARALLEL_FLOPS a conv kernel has no parallel loop (the thread pool's
    hand-off would cost more than it saves); above it, one."""
    cg = c // groups
    x = Var("x", TensorType((1, c // 8, h, h, 8)))
    wshape = (c // 8, 1, 3, 3, 1, 8) if cg == 1 else (c // 8, cg // 8, 3, 3, 8, 8)
    w = Var("w", TensorType(wshape))
    y = call("nn.conv2d_nchwc", x, w, padding=1, groups=groups)
    assert (conv_work := 2 * y.type.size * cg * 9) < MIN_PARALLEL_FLOPS or parallel, conv_work
    func = Function((x, w), y, {"primitive": True, "name": "k"})
    s, args = schedule_primitive(func, Target.parse("llvm -mcpu=haswell"))
    assert ("parallel(" in str(ember.lower(s, args))) == parallel


def test_grouped_conv_is_tunable() -> None:
    """The grouped kernel's knobs (kernel_task, as for every blocked conv): register tiles
    stay within one group (3 blocks per group: of OC_TILES only 1 divides it), tuned
    points match the reference, and the fallback point is the untuned schedule."""
    from topi_testlib import check_conv_relu_kernel

    from ember.dispatch.templates_fused import kernel_task

    x = Var("x", TensorType((1, 12, 9, 9, 8)))  # 96 channels, 4 groups of 24
    w = Var("w", TensorType((12, 3, 3, 3, 8, 8)))
    b = Var("b", TensorType((96,)))
    conv = call("nn.conv2d_nchwc", x, w, b, padding=1, groups=4)
    func = Function((x, w, b), call("nn.relu", conv), {"primitive": True, "name": "k"})
    target = Target.parse("llvm -mcpu=haswell")
    task = kernel_task(func, target)
    space = task.config_space
    assert [e.val for e in space.space_map["oc_tile"].entities] == [1]
    default = ember.lower(*schedule_primitive(func, target))
    assert str(ember.lower(*task.instantiate(space.get(0)))) == str(default)
    base = space.get(0).knob_values()
    for want in ({"ow_tile": 5, "loop_order": 1}, {"row_block": 9}, {"reduce_order": 1}):
        point = space.get(space.index_of({**base, **want}))
        check_conv_relu_kernel(func, conv, task.instantiate(point))
