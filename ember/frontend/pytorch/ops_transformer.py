"""PyTorch converters for transformers: layer norm, attention, fused encoder layers.

    layer_norm(x, [16], w, b)               ->  (x - mean) * rsqrt(var + eps) * w + b
    scaled_dot_product_attention(q, k, v)   ->  softmax(q @ k^T * scale + mask) @ v

None has an ember op: each is composed from ember ops (``reduce_mean``,
``rsqrt``, ``nn.matmul``, ``nn.softmax``, ``nn.dense``), which the fuser groups
again. Besides the ops users call, TorchScript traces of ``nn.MultiheadAttention``
and ``nn.TransformerEncoderLayer`` at inference record PyTorch's fused fast
paths (``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``);
they are unfolded here into the same pieces (torch.export records the pieces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.pytorch.context import AtenNode, converter
from ember.graph.ir import Expr, const

# ----------------------------------------------------------------------------- layer norm


def layer_norm(
    node: AtenNode,
    x: Expr,
    normalized: Sequence[int],
    weight: Expr | None,
    bias: Expr | None,
    eps: float,
    suffix: str = "",
) -> Expr:
    """(x - mean) * rsqrt(var + eps) * weight + bias over the trailing ``normalized`` dims."""
    shape = shape_of(x)
    rank = len(shape)
    if list(shape[rank - len(normalized) :]) != list(normalized):
        raise node.error(
            f"normalized_shape {list(normalized)} does not end the input shape {shape}"
        )
    axes = tuple(range(rank - len(normalized), rank))
    mean = node.call("reduce_mean", x, suffix=f"{suffix}/mean", axes=axes, keepdims=True)
    centered = node.call("subtract", x, mean, suffix=f"{suffix}/centered")
    square = node.call("multiply", centered, centered, suffix=f"{suffix}/square")
    var = node.call("reduce_mean", square, suffix=f"{suffix}/var", axes=axes, keepdims=True)
    var_eps = node.call("add", var, scalar(float(eps), x), suffix=f"{suffix}/var_eps")
    out = node.call(
        "multiply", centered, node.call("rsqrt", var_eps, suffix=f"{suffix}/rstd"), suffix=suffix
    )
    if weight is not None:
        out = node.call("multiply", out, weight, suffix=f"{suffix}/scale")
    if bias is not None:
        out = node.call("add", out, bias, suffix=f"{suffix}/shift")
    return out


def _layer_norm_args(node: AtenNode) -> Expr:
    x = node.tensor(0)
    normalized = [int(d) for d in node.arg(1)]
    weight, bias = node.optional_tensor(2), node.optional_tensor(3)
    return layer_norm(node, x, normalized, weight, bias, float(node.arg(4, 1e-5)))


@converter("layer_norm")
def _layer_norm(node: AtenNode) -> Expr:
    return _layer_norm_args(node)


@converter("native_layer_norm")
def _native_layer_norm(node: AtenNode) -> tuple:
    return (_layer_norm_args(node), None, None)


# ----------------------------------------------------------------------------- attention


def attention(
    node: AtenNode,
    query: Expr,
    key: Expr,
    value: Expr,
    bias: Expr | None = None,
    scale: float | None = None,
    causal: bool = False,
    suffix: str = "",
) -> tuple[Expr, Expr]:
    """(softmax(q @ k^T * scale + bias) @ v, the softmax weights); ``bias`` is additive."""
    rank = len(shape_of(query))
    scale = 1.0 / math.sqrt(shape_of(query)[-1]) if scale is None else float(scale)
    axes = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    key_t = node.call("transpose", key, suffix=f"{suffix}/key_t", axes=axes)
    scores = node.call("nn.matmul", query, key_t, suffix=f"{suffix}/scores")
    scores = node.call("multiply", scores, scalar(scale, scores), suffix=f"{suffix}/scaled")
    if causal:  # query i sees keys j <= i
        length_q, length_k = shape_of(query)[-2], shape_of(key)[-2]
        allowed = np.tril(np.ones((length_q, length_k), dtype=bool))
        causal_bias = const(np.where(allowed, 0.0, -np.inf).astype(scores.type.dtype))
        scores = node.call("add", scores, causal_bias, suffix=f"{suffix}/causal")
    if bias is not None:
        scores = node.call("add", scores, bias, suffix=f"{suffix}/masked")
    weights = node.call("nn.softmax", scores, suffix=f"{suffix}/softmax", axis=-1)
    return node.call("nn.matmul", weights, value, suffix=suffix), weights


def mask_bias(node: AtenNode, mask: Expr, dtype: str, masked_value: bool, suffix: str) -> Expr:
    """An additive bias from a mask: bool masks give -inf where ``mask == masked_value``.

    SDPA's bool masks say which keys a query may see (False hides one);
    ``nn.MultiheadAttention``'s say which it may not (True hides one).
    """
    if mask.type.dtype != "bool":
        if mask.type.dtype != dtype:
            mask = node.call("cast", mask, suffix=f"{suffix}/cast", dtype=dtype)
        return mask
    hidden = const(np.asarray(-np.inf, dtype))
    seen = const(np.asarray(0.0, dtype))
    if masked_value:
        return node.call("where", mask, hidden, seen, suffix=suffix)
    return node.call("where", mask, seen, hidden, suffix=suffix)


@converter("scaled_dot_product_attention")
def _sdpa(node: AtenNode) -> Expr:
    query, key, value = node.tensor(0), node.tensor(1), node.tensor(2)
    if float(node.arg(4, 0.0)) != 0.0:
        raise node.error("dropout_p must be 0 at inference")
    if node.arg(7, False):
        raise node.error("enable_gqa=True is not supported")
    mask = node.optional_tensor(3)
    bias = None if mask is None else mask_bias(node, mask, query.type.dtype, False, "/mask_bias")
    out, _ = attention(node, query, key, value, bias, node.arg(6), bool(node.arg(5, False)))
    return out


def _heads(node: AtenNode, x: Expr, heads: int, suffix: str) -> Expr:
    """(B, L, E) -> (B, heads, L, E / heads)."""
    batch, length, embed = shape_of(x)
    split = node.call(
        "reshape", x, suffix=f"{suffix}/split", newshape=(batch, length, heads, embed // heads)
    )
    return node.call("transpose", split, suffix=f"{suffix}/heads", axes=(0, 2, 1, 3))


def _merge_heads(node: AtenNode, x: Expr, suffix: str) -> Expr:
    """(B, heads, L, D) -> (B, L, heads * D)."""
    batch, heads, length, depth = shape_of(x)
    x = node.call("transpose", x, suffix=f"{suffix}/unheads", axes=(0, 2, 1, 3))
    return node.call(
        "reshape", x, suffix=f"{suffix}/merge", newshape=(batch, length, heads * depth)
    )


def _rows(node: AtenNode, weight: Expr, index: int, size: int, suffix: str) -> Expr:
    """Rows [index * size, (index + 1) * size) of a packed q/k/v weight or bias."""
    begin, end = index * size, (index + 1) * size
    return node.call("strided_slice", weight, suffix=suffix, begin=(begin,), end=(end,), axes=(0,))


def multi_head_attention(
    node: AtenNode,
    query: Expr,
    key: Expr,
    value: Expr,
    heads: int,
    packed: tuple[Expr, Expr, Expr, Expr],
    bias: Expr | None,
    suffix: str,
) -> tuple[Expr, Expr]:
    """nn.MultiheadAttention on (B, L, E) inputs.

    ``packed`` is (in_proj weight, in_proj bias, out_proj weight, out_proj bias).
    """
    qkv_weight, qkv_bias, proj_weight, proj_bias = packed
    embed = shape_of(query)[-1]
    if len(shape_of(query)) != 3 or embed % heads:
        raise node.error(
            f"multi-head attention expects (batch, length, {embed}) inputs split into {heads} "
            f"heads, got {shape_of(query)}"
        )
    projected = []
    for i, (name, x) in enumerate((("q", query), ("k", key), ("v", value))):
        w = _rows(node, qkv_weight, i, embed, f"{suffix}/w_{name}")
        b = _rows(node, qkv_bias, i, embed, f"{suffix}/b_{name}")
        dense = node.call("nn.dense", x, w, b, suffix=f"{suffix}/{name}")
        projected.append(_heads(node, dense, heads, f"{suffix}/{name}"))
    out, weights = attention(node, *projected, bias=bias, suffix=f"{suffix}/attention")
    out = _merge_heads(node, out, suffix)
    return node.call("nn.dense", out, proj_weight, proj_bias, suffix=f"{suffix}/out_proj"), weights


def _fast_path_mask(node: AtenNode, mask: Expr | None, mask_type: int | None, dtype: str) -> Any:
    """The fused kernels' mask as an additive bias on (B, heads, L, S) scores."""
    if mask is None:
        return None
    bias = mask_bias(node, mask, dtype, True, "/mask_bias")
    shape = shape_of(bias)
    if mask_type == 1 or (mask_type is None and len(shape) == 2 and shape[0] != shape[1]):
        # a key padding mask (B, S): hides keys per batch item
        return node.call(
            "reshape", bias, suffix="/key_padding", newshape=(shape[0], 1, 1, shape[1])
        )
    return bias  # an attention mask (L, S) or a merged (B, heads, L, S) one broadcasts


@converter("_native_multi_head_attention")
def _native_mha(node: AtenNode) -> tuple:
    query, key, value = node.tensor(0), node.tensor(1), node.tensor(2)
    heads = int(node.arg(4))
    packed = (node.tensor(5), node.tensor(6), node.tensor(7), node.tensor(8))
    bias = _fast_path_mask(node, node.optional_tensor(9), node.arg(12), query.type.dtype)
    out, weights = multi_head_attention(node, query, key, value, heads, packed, bias, "")
    if not node.arg(10, True):  # need_weights=False: the second output is unused
        return (out, None)
    if node.arg(11, True):  # average_attn_weights: the mean over the heads
        weights = node.call("reduce_mean", weights, suffix="/weights", axes=(1,), keepdims=False)
    return (out, weights)


@converter("_transformer_encoder_layer_fwd")
def _encoder_layer(node: AtenNode) -> Expr:
    """nn.TransformerEncoderLayer's fused inference kernel, post-norm or pre-norm."""
    x = node.tensor(0)
    heads = int(node.arg(2))
    packed = (node.tensor(3), node.tensor(4), node.tensor(5), node.tensor(6))
    use_gelu, norm_first, eps = bool(node.arg(7)), bool(node.arg(8)), float(node.arg(9))
    norms = [(node.tensor(10), node.tensor(11)), (node.tensor(12), node.tensor(13))]
    ffn = [(node.tensor(14), node.tensor(15)), (node.tensor(16), node.tensor(17))]
    bias = _fast_path_mask(node, node.optional_tensor(18), node.arg(19), x.type.dtype)
    embed = [shape_of(x)[-1]]

    def norm(y: Expr, index: int) -> Expr:
        return layer_norm(node, y, embed, *norms[index], eps, suffix=f"/norm{index + 1}")

    def self_attention(y: Expr) -> Expr:
        return multi_head_attention(node, y, y, y, heads, packed, bias, "/self_attn")[0]

    def feed_forward(y: Expr) -> Expr:
        hidden = node.call("nn.dense", y, *ffn[0], suffix="/linear1")
        if use_gelu:
            hidden = node.call("nn.gelu", hidden, suffix="/gelu")
        else:
            hidden = node.call("nn.relu", hidden, suffix="/relu")
        return node.call("nn.dense", hidden, *ffn[1], suffix="/linear2")

    if norm_first:
        x = node.call("add", x, self_attention(norm(x, 0)), suffix="/residual1")
        return node.call("add", x, feed_forward(norm(x, 1)), suffix="/residual2")
    x = norm(node.call("add", x, self_attention(x), suffix="/residual1"), 0)
    return norm(node.call("add", x, feed_forward(x), suffix="/residual2"), 1)
