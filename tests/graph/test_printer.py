"""The graph printer: exact text of small graphs."""

from __future__ import annotations

import numpy as np

from ember.graph import (
    Call,
    Constant,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    const,
    print_expr,
    print_module,
)
from ember.ops import call
from tests.graph.graph_testlib import tensor


def _small_model() -> Module:
    data = tensor("data", 1, 3, 8, 8)
    weight = tensor("conv1_w", 4, 3, 3, 3)
    bias = Constant(np.zeros(4, np.float32), "conv1_b")
    conv = call("nn.conv2d", data, weight, bias, strides=2, padding=1, name="conv1")
    relu = call("nn.relu", conv)
    scaled = call("multiply", relu, const(0.5, "float32"))
    shifted = call("add", scaled, bias)  # the same constant again: the same meta index
    parts = call("split", shifted, sections=(1, 3), axis=1, name="split")
    first = TupleGetItem(parts, 0)
    pooled = call("nn.max_pool2d", TupleGetItem(parts, 1), pool_size=(2, 2))
    return Module.from_function(Function((data, weight), Tuple((first, pooled))))


EXPECTED = """\
def @main(%data: Tensor[(1, 3, 8, 8), float32], %conv1_w: Tensor[(4, 3, 3, 3), float32]) -> (Tensor[(1, 1, 4, 4), float32], Tensor[(1, 3, 3, 3), float32]) {
  %0 = nn.conv2d(%data, %conv1_w, meta[Constant][0] /* (4), float32 */, strides=(2, 2), padding=(1, 1, 1, 1)) /* conv1 */ : Tensor[(1, 4, 4, 4), float32]
  %1 = nn.relu(%0) : Tensor[(1, 4, 4, 4), float32]
  %2 = multiply(%1, 0.5f) : Tensor[(1, 4, 4, 4), float32]
  %3 = add(%2, meta[Constant][0] /* (4), float32 */) : Tensor[(1, 4, 4, 4), float32]
  %4 = split(%3, sections=(1, 3), axis=1) /* split */ : (Tensor[(1, 1, 4, 4), float32], Tensor[(1, 3, 4, 4), float32])
  %5 = %4.0 : Tensor[(1, 1, 4, 4), float32]
  %6 = %4.1 : Tensor[(1, 3, 4, 4), float32]
  %7 = nn.max_pool2d(%6, pool_size=(2, 2)) : Tensor[(1, 3, 3, 3), float32]
  %8 = (%5, %7) : (Tensor[(1, 1, 4, 4), float32], Tensor[(1, 3, 3, 3), float32])
  %8
}"""  # noqa: E501


def test_module_text() -> None:
    # `add` broadcasts the (4,) constant over the last axis (W=4): legal and printed as is.
    mod = _small_model()
    assert print_module(mod) == EXPECTED
    assert str(mod) == EXPECTED


def test_scalars_print_inline_with_dtype_suffix() -> None:
    x = tensor("x", 2, dtype="int64")
    y = call("add", x, const(3, "int64"))
    text = print_expr(y)
    assert text == "%0 = add(%x, 3i64) : Tensor[(2), int64]\n%0"
    f = tensor("f", 2, dtype="float64")
    assert "multiply(%f, 1.25f64)" in print_expr(call("multiply", f, const(1.25, "float64")))


def test_expr_that_is_a_leaf() -> None:
    assert print_expr(tensor("x", 2)) == "%x"


def test_fused_function_prints_once_before_first_use() -> None:
    p0 = tensor("p0", 1, 4)
    body = call("nn.relu", call("add", p0, const(1.0, "float32")))
    kernel = Function((p0,), body, {"primitive": True, "name": "fused_add_relu"})
    x = tensor("x", 1, 4)
    first = Call(kernel, (x,), None, "k1")
    second = Call(kernel, (first,), None)
    text = print_module(Module.from_function(Function((x,), second)))
    assert text == (
        "def @main(%x: Tensor[(1, 4), float32]) -> Tensor[(1, 4), float32] {\n"
        "  %0 = fn fused_add_relu(%p0: Tensor[(1, 4), float32]) -> Tensor[(1, 4), float32]"
        " /* primitive=True */ {\n"
        "    %0 = add(%p0, 1f) : Tensor[(1, 4), float32]\n"
        "    %1 = nn.relu(%0) : Tensor[(1, 4), float32]\n"
        "    %1\n"
        "  }\n"
        "  %1 = %0(%x) /* k1 */ : Tensor[(1, 4), float32]\n"
        "  %2 = %0(%1) : Tensor[(1, 4), float32]\n"
        "  %2\n"
        "}"
    )


def test_constants_numbered_across_functions_of_a_module() -> None:
    c = Constant(np.ones((2, 2), np.float32))
    x = tensor("x", 2, 2)
    y = tensor("y", 2, 2)
    mod = Module(
        {
            "main": Function((x,), call("add", x, c)),
            "other": Function((y,), call("multiply", y, c)),
        }
    )
    text = print_module(mod)
    assert text.count("meta[Constant][0]") == 2 and "meta[Constant][1]" not in text
    assert text.index("def @main") < text.index("def @other")
