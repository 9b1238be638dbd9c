"""``nn.dense_pack``: a matrix product by a weight pre-packed into column panels.

Not an ONNX op: :func:`ember.graph.passes.dense_rewrite.pack_dense` rewrites a product of
activations by a constant weight (``nn.matmul(x, W[K, N])`` or ``nn.dense(x, W[N, K])``
with more than one row) into it on x86 CPUs. The weight is stored as ``N / block``
panels of ``K x block`` columns (TVM's ``dense_pack`` layout), so the GEMM kernel's
inner loop reads one contiguous row of ``block`` columns per step of K::

    packed[p, k, j] = W[k, p * block + j]         (N/block, K, block)
    out[..., n]     = sum_k data[..., k] * packed[n // block, k, n % block]

    >>> from ember.graph.ir import Var, TensorType
    >>> from ember.ops import call
    >>> x = Var("x", TensorType((49, 768)))
    >>> w = Var("w", TensorType((128, 768, 24)))
    >>> call("nn.dense_pack", x, w).type.shape
    (49, 3072)
"""

from __future__ import annotations

import numpy as np

from ember.errors import ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    NUMBER_DTYPES,
    accumulate_dtype,
    check_dtype,
    check_rank,
    same_dtype,
    tensor,
)
from ember.ops.registry import NoAttrs, OpPattern, register_op

dense_pack = register_op(
    "nn.dense_pack",
    NoAttrs,
    OpPattern.OUT_ELEMWISE_FUSABLE,
    num_inputs=2,
    doc="data (..., K) times a weight packed as (N/block, K, block) column panels -> (..., N)",
)


def panel_block(columns: int, lanes: int, registers: int) -> int:
    """Columns per weight panel for ``columns`` output columns on a target with ``lanes``
    float32 lanes and ``registers`` vector registers: the widest of 3 vectors (with 32
    registers: a 8 x 3 tile of accumulators), 2 (with 16: 6 x 2) or 1 that divides
    ``columns``, also trying 8-lane vectors when the target's are wider; 0 when not even
    8 columns divide (the product then keeps its plain kernel).

    >>> panel_block(384, 8, 16), panel_block(3072, 16, 32), panel_block(40, 16, 32)
    (16, 48, 8)
    >>> panel_block(20, 8, 16)
    0
    """
    for width in dict.fromkeys((lanes, 8)):
        for vectors in (3, 2, 1) if registers >= 32 else (2, 1):
            if columns % (vectors * width) == 0:
                return vectors * width
    return 0


def pack_weight(weight_kn: np.ndarray, block: int) -> np.ndarray:
    """A (K, N) weight as ``nn.dense_pack``'s (N/block, K, block) panels.

    >>> pack_weight(np.arange(8.0).reshape(2, 4), 2)[1]
    array([[2., 3.],
           [6., 7.]])
    """
    k, n = weight_kn.shape
    if n % block:
        raise ShapeError(f"dense_pack: {n} columns do not split into panels of {block}")
    return np.ascontiguousarray(weight_kn.reshape(k, n // block, block).transpose(1, 0, 2))


def unpack_weight(packed: np.ndarray) -> np.ndarray:
    """The (K, N) weight of (N/block, K, block) panels (inverse of :func:`pack_weight`)."""
    panels, k, block = packed.shape
    return packed.transpose(1, 0, 2).reshape(k, panels * block)


@dense_pack.flop_rule
def _dense_pack_flops(call: Call) -> int:
    return 2 * call.type.size * call.args[1].type.shape[1]


@dense_pack.type_rule
def _dense_pack_type(types: list, attrs: NoAttrs) -> TensorType:
    data, weight = tensor(types, 0, "data"), tensor(types, 1, "weight")
    if data.ndim < 1:
        raise ShapeError("dense_pack: data must have rank >= 1 (..., K)")
    check_rank(weight, "weight (N/block, K, block)", 3)
    dtype = same_dtype([data, weight], ["data", "weight"])
    check_dtype(data, "data", NUMBER_DTYPES)
    panels, k, block = weight.shape
    if data.shape[-1] != k:
        raise ShapeError(
            f"dense_pack: data has {data.shape[-1]} features (last axis) but the packed "
            f"weight (N/block, K, block) = {weight.shape} expects K = {k}",
            hint="pack a (K, N) weight with ember.ops.nn_dense.pack_weight",
        )
    return TensorType((*data.shape[:-1], panels * block), dtype)


@dense_pack.reference
def _dense_pack_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    data, packed = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(data.dtype)
    weight = unpack_weight(packed).astype(acc, copy=False)
    return np.matmul(data.astype(acc, copy=False), weight).astype(data.dtype)


__all__ = ["dense_pack", "pack_weight", "panel_block", "unpack_weight"]
