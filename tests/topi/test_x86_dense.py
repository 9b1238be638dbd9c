"""x86 GEMM of ``nn.dense_pack`` (ember/topi/x86/dense.py): kernels built through the op
strategy for the AVX2 and AVX-512 register files (the code runs here either way) and
compared with the op's numpy reference on fresh random inputs, for sizes that are and
are not multiples of the register tile, the weights-streamed order and N-D data."""

from __future__ import annotations

import numpy as np
import pytest
from topi_testlib import Case, KernelTable, check_case

import ember
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var
from ember.ops import call
from ember.ops.nn_dense import pack_weight, panel_block
from ember.target import Target
from ember.topi.strategy import schedule_primitive
from ember.topi.x86.dense import (
    STREAM_WEIGHT_BYTES,
    schedule_dense_pack,
    schedule_matmul,
    tile_rows,
)

F = "float32"


def _gemm(id_: str, rows, k: int, n: int, block: int) -> Case:
    lead = rows if isinstance(rows, tuple) else (rows,)
    return Case(id_, "nn.dense_pack", [((*lead, k), F), ((n // block, k, block), F)], rtol=1e-4)


CASES = [
    _gemm("tile_multiple", 12, 32, 32, 16),
    _gemm("row_tail_k_odd", 7, 17, 48, 16),
    _gemm("one_vector_panels", 13, 5, 40, 8),
    _gemm("three_vector_panels", 9, 24, 48, 24),
    _gemm("avx512_panels", 11, 40, 96, 48),
    _gemm("vit_rows", 197, 64, 96, 16),
    _gemm("one_row", 1, 33, 16, 16),
    _gemm("k_one", 6, 1, 16, 16),
    # Weights over STREAM_WEIGHT_BYTES: panels outermost, rows in L2-sized blocks.
    _gemm("streamed_weights", 13, 1024, 1152, 16),
    _gemm("streamed_row_blocks", 70, 2048, 528, 16),
    # N-D data: the default schedule (the pass only makes 2-D products).
    _gemm("leading_rank3", (2, 3, 5), 16, 24, 8),
    # Products of two activations (schedule_matmul): attention's shapes, odd sizes.
    Case("qk_t", "nn.batch_matmul", [((3, 37, 16), F), ((3, 16, 37), F)], rtol=1e-4),
    Case("attn_v", "nn.batch_matmul", [((2, 19, 19), F), ((2, 19, 24), F)], rtol=1e-4),
    Case("bcast_batch", "nn.batch_matmul", [((1, 7, 9), F), ((4, 9, 40), F)], rtol=1e-4),
    Case(
        "transpose_b_default",
        "nn.batch_matmul",
        [((2, 9, 8), F), ((2, 21, 8), F)],
        dict(transpose_b=True),
        rtol=1e-4,
    ),
    Case("matmul_4d", "nn.matmul", [((1, 3, 13, 8), F), ((1, 3, 8, 29), F)], rtol=1e-4),
    Case("matmul_2d_narrow", "nn.matmul", [((11, 5), F), ((5, 3), F)], rtol=1e-4),
    Case("matmul_vector", "nn.matmul", [((6, 20), F), ((20,), F)], rtol=1e-4),
]

X86_TARGETS = {"avx2": "llvm -mcpu=haswell", "avx512": "llvm -mcpu=skylake-avx512"}


@pytest.fixture(scope="module", params=sorted(X86_TARGETS))
def table(request: pytest.FixtureRequest) -> KernelTable:
    return KernelTable(CASES, X86_TARGETS[request.param])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kernel_matches_reference(table: KernelTable, case: Case) -> None:
    check_case(table, case)


def test_streamed_cases_are_large_enough() -> None:
    assert 1024 * 1152 * 4 > STREAM_WEIGHT_BYTES and 2048 * 528 * 4 > STREAM_WEIGHT_BYTES


@pytest.mark.parametrize("cpu", ["haswell", "skylake-avx512"])
def test_gemm_with_gelu_epilogue_matches_reference(cpu: str) -> None:
    """dense_pack + bias + GELU (erf form) + residual add in one kernel: the register tile
    feeds the epilogue, computed per element of the output rows."""
    rows, k, n = 29, 48, 64
    block = panel_block(n, Target.parse(f"llvm -mcpu={cpu}").vector_lanes(F), 16)
    x = Var("x", TensorType((rows, k)))
    w = Var("w", TensorType((n // block, k, block)))
    b = Var("b", TensorType((n,)))
    r = Var("r", TensorType((rows, n)))
    y = call("add", call("nn.dense_pack", x, w), b)
    half = call("multiply", y, ember.graph.ir.Constant(np.float32(0.5)))
    erf = call("erf", call("multiply", y, ember.graph.ir.Constant(np.float32(2**-0.5))))
    gelu = call("multiply", half, call("add", erf, ember.graph.ir.Constant(np.float32(1.0))))
    out = call("add", gelu, r)
    func = Function((x, w, b, r), out, {"primitive": True, "name": "k"})
    target = Target.parse(f"llvm -mcpu={cpu}")
    assert schedule_dense_pack([_output_tensor(func)], target) is not None
    s, args = schedule_primitive(func, target)
    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    weight = rng.standard_normal((k, n)).astype(F)
    inputs = [
        rng.standard_normal((rows, k)).astype(F),
        pack_weight(weight, block),
        rng.standard_normal(n).astype(F),
        rng.standard_normal((rows, n)).astype(F),
    ]
    got = np.zeros((rows, n), F)
    mod(*inputs, got)
    main = Function((x, w, b, r), out)
    (want,) = interpret(Module({"main": main}), {}, dict(zip("xwbr", inputs)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _output_tensor(func: Function):  # type: ignore[no-untyped-def]
    from ember.topi.strategy import build_compute

    _, outputs = build_compute(func)
    return outputs[0]


def test_rules_decline_other_kernels() -> None:
    x = Var("x", TensorType((4, 8)))
    relu = Function((x,), call("nn.relu", x), {"primitive": True, "name": "k"})
    assert schedule_dense_pack([_output_tensor(relu)], Target.parse("host")) is None
    assert schedule_matmul([_output_tensor(relu)], Target.parse("host")) is None
    # B read across its rows (transpose_b): no contiguous columns to load as vectors.
    b = Var("b", TensorType((1, 16, 8)))
    qk = call("nn.batch_matmul", call("expand_dims", x, axes=(0,)), b, transpose_b=True)
    func = Function((x, b), qk, {"primitive": True, "name": "k"})
    assert schedule_matmul([_output_tensor(func)], Target.parse("host")) is None


def test_register_tile_rows() -> None:
    # AVX2: 6 rows x 2 vectors = 12 accumulators + 2 weight vectors + 1 broadcast = 15 of 16.
    assert tile_rows(2, 16) == 6
    # AVX-512 broadcasts inside the FMA: 8 rows x 3 vectors = 24 of 32.
    assert tile_rows(3, 32, broadcast_register=False) == 8
    assert panel_block(768, 16, 32) == 48 and panel_block(96, 8, 16) == 16
    assert panel_block(12, 8, 16) == 0


def _dense_pack_kernel(rows: int, k: int, n: int, block: int) -> Function:
    x = Var("x", TensorType((rows, k)))
    w = Var("w", TensorType((n // block, k, block)))
    b = Var("b", TensorType((n,)))
    body = call("nn.relu", call("add", call("nn.dense_pack", x, w), b))
    return Function((x, w, b), body, {"primitive": True, "name": "k"})


@pytest.mark.parametrize(
    "want",
    [dict(), dict(tile_rows=4), dict(tile_rows=5, panels_outer=True), dict(panels_outer=True)],
    ids=["fallback", "rows4", "rows5_streamed", "streamed"],
)
def test_tuning_knobs_match_reference(want) -> None:  # type: ignore[no-untyped-def]
    """The fused_kernel tuning template hands dense_pack kernels to this schedule with its
    knobs; the fallback point is exactly the untuned schedule, every point is correct."""
    from ember.dispatch.templates_fused import kernel_task

    target = Target.parse("llvm -mcpu=haswell")
    func = _dense_pack_kernel(23, 40, 32, 16)
    task = kernel_task(func, target)
    space = task.config_space
    values = {name: [e.val for e in knob.entities] for name, knob in space.space_map.items()}
    assert values["tile_rows"][0] == 6 and values["panels_outer"] == [False, True]
    if not want:
        default = ember.lower(*schedule_primitive(func, target))
        assert str(ember.lower(*task.instantiate(space.get(0)))) == str(default)
    point = space.get(space.index_of({**space.get(0).knob_values(), **want}))
    s, args = task.instantiate(point)
    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    weight = rng.standard_normal((40, 32)).astype(F)
    x, bias = rng.standard_normal((23, 40)).astype(F), rng.standard_normal(32).astype(F)
    got = np.zeros((23, 32), F)
    mod(x, pack_weight(weight, 16), bias, got)
    np.testing.assert_allclose(got, np.maximum(x @ weight + bias, 0), rtol=1e-4, atol=1e-4)
