"""pack_dense (ember/graph/passes/dense_rewrite.py): products by constant weights become
nn.dense_pack GEMMs on packed panels, with the reshape back moved below the epilogue.

Graph-level checks run the reference interpreter on both sides; the end-to-end checks
compile channels-last Linear layers (leading axes of rank 1-3, bias, GELU, a second
Linear) and compare with the interpreter and onnxruntime on fresh random inputs."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ember
from ember.graph import interpret
from ember.graph.ir import Constant, Function, Module, TensorType, Var
from ember.graph.passes.dense_rewrite import pack_dense
from ember.graph.passes.fuse_ops import fuse_ops
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target

HOST = Target.parse("llvm -mcpu=haswell")


def _ops(mod: Module) -> list[str]:
    return [n.op.name for n in post_order(mod.main.body) if hasattr(n, "op")]


def _same_values(before: Module, after: Module, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng().standard_normal(shape).astype(np.float32)
    (want,) = interpret(before, {}, {"x": x})
    (got,) = interpret(after, {}, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _weight(*shape: int) -> Constant:
    return Constant(np.random.default_rng().standard_normal(shape).astype(np.float32), "w")


def _gelu(y):  # type: ignore[no-untyped-def]
    erf = call("erf", call("divide", y, Constant(np.float32(math.sqrt(2.0)))))
    return call("multiply", call("multiply", y, call("add", erf, Constant(np.float32(1.0)))),
                Constant(np.float32(0.5)))  # fmt: skip


def _block(shape: tuple[int, ...], c: int) -> Module:
    """Linear(c -> 4c) + bias -> GELU -> Linear(4c -> c) + bias on the last axis."""
    x = Var("x", TensorType(shape))
    y = call("add", call("nn.matmul", x, _weight(c, 4 * c)), _weight(4 * c))
    y = call("add", call("nn.matmul", _gelu(y), _weight(4 * c, c)), _weight(c))
    return Module({"main": Function((x,), y)})


@pytest.mark.parametrize("shape", [(10, 16), (3, 7, 16), (1, 5, 6, 16)], ids=["2d", "3d", "4d"])
def test_linear_block_becomes_packed_gemms(shape):
    mod = _block(shape, 16)
    packed = pack_dense(mod, target=HOST)
    ops = _ops(packed)
    assert ops.count("nn.dense_pack") == 2 and "nn.matmul" not in ops
    # One reshape to rows before the first GEMM and one back after the last; the epilogue
    # (bias, GELU, bias) runs on the 2-D rows between them.
    assert ops.count("reshape") == (0 if len(shape) == 2 else 2)
    assert ops[-1] == ("add" if len(shape) == 2 else "reshape")
    _same_values(mod, packed, shape)
    # The first GEMM's kernel takes its bias; the GELU (a diamond) runs on the rows too.
    fused = fuse_ops(packed)
    calls = post_order(fused.main.body)
    names = [n.op.name for n in calls if isinstance(getattr(n, "op", None), Function)]
    assert sum("dense_pack_add" in name for name in names) == 2, names


def test_dense_with_bias_and_per_channel_scale():
    x = Var("x", TensorType((2, 9, 24)))
    y = call("nn.dense", x, _weight(32, 24), _weight(32))
    y = call("multiply", y, Constant(np.full((1, 1, 32), 0.5, np.float32)))
    mod = Module({"main": Function((x,), y)})
    packed = pack_dense(mod, target=HOST)
    ops = _ops(packed)
    assert "nn.dense" not in ops and ops[-1] == "reshape"
    _same_values(mod, packed, (2, 9, 24))


def test_full_shape_operand_keeps_the_reshape_above_it():
    """A residual add of an N-D tensor is not moved to the rows (it would need a copy)."""
    x = Var("x", TensorType((1, 4, 4, 16)))
    y = call("add", call("nn.matmul", x, _weight(16, 16)), x)
    mod = Module({"main": Function((x,), y)})
    packed = pack_dense(mod, target=HOST)
    assert _ops(packed)[-2:] == ["reshape", "add"]
    _same_values(mod, packed, (1, 4, 4, 16))


@pytest.mark.parametrize(
    "case",
    ["one_row", "weight_not_constant", "columns_not_vectors", "float64"],
)
def test_products_left_alone(case):
    shape, dtype, n = (3, 16), "float32", 16
    if case == "one_row":
        shape = (1, 1, 16)
    elif case == "columns_not_vectors":
        n = 12
    elif case == "float64":
        dtype = "float64"
    x = Var("x", TensorType(shape, dtype))
    if case == "weight_not_constant":
        w = Var("w", TensorType((16, n), dtype))
        mod = Module({"main": Function((x, w), call("nn.matmul", x, w))})
    else:
        value = np.ones((16, n), dtype)
        mod = Module({"main": Function((x,), call("nn.matmul", x, Constant(value, "w")))})
    assert pack_dense(mod, target=HOST) is mod


# ----------------------------------------------------------------------------- end to end


def _onnx_linear_block(shape: tuple[int, ...], c: int, path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng()
    inits = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) / math.sqrt(s[0]), n)
        for n, s in (("w1", (c, 4 * c)), ("b1", (4 * c,)), ("w2", (4 * c, c)), ("b2", (c,)))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["y1"]),
        helper.make_node("Gelu", ["y1"], ["g"]),
        helper.make_node("MatMul", ["g", "w2"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(shape))],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    "shape",
    [(197, 32), (1, 50, 48), (2, 7, 5, 24)],
    ids=["rank1_lead", "rank2_lead_vit", "rank3_lead_convnext"],
)
def test_compiled_linear_block_matches_reference_and_onnxruntime(shape, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "block.onnx"
    _onnx_linear_block(shape, shape[-1], path)
    mod, params = ember.frontend.from_onnx(str(path), shape={"x": shape})
    lib = ember.compile(mod, params, target="host")
    assert sum("dense_pack" in name for name in lib.sources) == 2, list(lib.sources)
    x = np.random.default_rng().standard_normal(shape).astype(np.float32)
    (ours,) = lib.load().run({"x": x})
    (reference,) = interpret(mod, params, {"x": x})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {"x": x})
    scale = float(np.max(np.abs(reference)))
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale)
