"""ONNX Einsum and CumProd, reference and compiled, against numpy and onnxruntime.

The conformance cases hold one small example per Einsum form; these run the forms
exported models use (attention scores, implicit outputs, three operands, ellipsis
broadcasting, diagonals and traces, labels summed in one operand) on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ember.errors import EmberError
from ember.frontend import from_onnx
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

EINSUM = {
    "attention-scores": ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    "attention-values": ("bhqk,bhkd->bqhd", [(2, 3, 5, 6), (2, 3, 6, 4)]),
    "implicit-matmul": ("ij,jk", [(3, 4), (4, 5)]),
    "three-operands": ("ij,jk,kl->li", [(3, 4), (4, 2), (2, 5)]),
    "ellipsis-broadcast": ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),
    "diagonal": ("ii->i", [(4, 4)]),
    "trace": ("ii", [(5, 5)]),
    "outer": ("i,j->ij", [(3,), (4,)]),
    "summed-in-one": ("ijk,jl->il", [(2, 3, 4), (3, 5)]),
    "bilinear": ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
}


def _einsum_model(equation: str, shapes: list[tuple[int, ...]], dtype: str = "float32"):
    names = [f"x{k}" for k in range(len(shapes))]
    nodes = [helper.make_node("Einsum", names, ["y"], equation=equation)]
    return make_model(nodes, {n: (s, dtype) for n, s in zip(names, shapes)}, ["y"], opset=12)


@pytest.mark.parametrize("name", sorted(EINSUM))
def test_einsum(name: str) -> None:
    equation, shapes = EINSUM[name]
    rng = np.random.default_rng()
    feeds = {f"x{k}": rng.standard_normal(s).astype("float32") for k, s in enumerate(shapes)}
    model = _einsum_model(equation, shapes)
    want = np.einsum(equation, *feeds.values())
    (theirs,) = run_onnxruntime(model, feeds)
    np.testing.assert_allclose(theirs, want, rtol=1e-4, atol=1e-4)  # the oracle agrees
    mod, params = from_onnx(model)
    (ours,) = interpret(mod, params, feeds)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
    (compiled,) = compile_and_load(mod, params)(feeds)
    np.testing.assert_allclose(compiled, want, rtol=1e-4, atol=1e-4)


def test_einsum_integers_are_exact() -> None:
    rng = np.random.default_rng()
    feeds = {"x0": rng.integers(-50, 50, (3, 7)), "x1": rng.integers(-50, 50, (7, 2))}
    feeds = {k: v.astype("int32") for k, v in feeds.items()}
    mod, params = from_onnx(_einsum_model("ij,jk->ki", [(3, 7), (7, 2)], "int32"))
    want = np.einsum("ij,jk->ki", *feeds.values())
    for got in (interpret(mod, params, feeds)[0], compile_and_load(mod, params)(feeds)[0]):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_einsum_errors_name_the_node() -> None:
    with pytest.raises(EmberError, match=r"Einsum.*'ij' has 2 labels but its operand has rank 3"):
        from_onnx(_einsum_model("ij->i", [(2, 3, 4)]))
    with pytest.raises(EmberError, match=r"Einsum.*label 'j' has sizes 4 and 5"):
        from_onnx(_einsum_model("ij,jk->ik", [(3, 4), (5, 2)]))


@pytest.mark.parametrize(("axis", "exclusive", "reverse"), [(1, 0, 0), (0, 1, 0), (-1, 1, 1)])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_cumprod(axis: int, exclusive: int, reverse: int, dtype: str) -> None:
    rng = np.random.default_rng()
    x = rng.uniform(0.5, 1.5, (3, 6)) if dtype == "float32" else rng.integers(-3, 4, (3, 6))
    x = x.astype(dtype)
    nodes = [
        helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    ]
    inits = {"axis": np.array(axis, "int64")}
    model = make_model(nodes, {"x": ((3, 6), dtype)}, ["y"], inits, opset=26)
    # numpy: flip for reverse, shift in a 1 for exclusive
    a = np.flip(x, axis) if reverse else x
    want = np.cumprod(a, axis=axis, dtype=x.dtype)
    if exclusive:
        ones = np.ones_like(np.take(want, [0], axis=axis))
        want = np.concatenate([ones, np.delete(want, -1, axis=axis)], axis=axis)
    want = np.flip(want, axis) if reverse else want
    mod, params = from_onnx(model)
    for got in (interpret(mod, params, {"x": x})[0], compile_and_load(mod, params)({"x": x})[0]):
        assert got.dtype == x.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5)
