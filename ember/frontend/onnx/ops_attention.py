"""ONNX converter for Attention (opset 23+), composed from matmul, softmax and masks.

    Y = softmax(softcap(Q*s @ (K*s)^T) + bias) @ V        with s = sqrt(scale)

Shapes are static, so the causal and sliding-window masks are constants; a
model-given ``attn_mask`` is turned into an additive bias in the graph. Grouped
query attention repeats each KV head (``h0, h0, h1, h1, ...``). The structure
follows the ONNX reference implementation so results agree with it bit for bit
where float rounding allows.
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter, ember_dtype
from ember.graph.ir import Constant, Expr


def _split_heads(node: OnnxNode, x: Expr, heads: int) -> Expr:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hidden = x.type.shape  # type: ignore[union-attr]
    if hidden % heads:
        raise node.error(f"hidden size {hidden} is not divisible by {heads} heads")
    x = node.call("reshape", x, newshape=(b, s, heads, hidden // heads))
    return node.call("transpose", x, axes=(0, 2, 1, 3))


def _window_bias(
    q_len: int, kv_len: int, offset: np.ndarray, causal: bool, left: int, right: int
) -> np.ndarray:
    """Additive 0/-inf bias of the causal and sliding-window constraints, (batch|1, 1, q, kv)."""
    i = np.arange(q_len).reshape(1, q_len, 1) + offset.reshape(-1, 1, 1)
    j = np.arange(kv_len).reshape(1, 1, kv_len)
    allowed = np.ones((offset.size, q_len, kv_len), dtype=bool)
    if causal:
        allowed &= j <= i
    if left >= 0:
        allowed &= i - j <= left
    if right >= 0:
        allowed &= j - i <= right
    return np.where(allowed, 0.0, -np.inf)[:, None]


@converter("Attention", min_version=23)
def _attention(node: OnnxNode) -> list[Expr]:
    q, k, v = node.input(0), node.input(1), node.input(2)
    dtype = node.dtype(0)
    rank = len(node.shape(0))
    if rank not in (3, 4):
        raise node.error(f"Q must be 3-D or 4-D, got shape {node.shape(0)}")
    if rank == 3:
        q_heads, kv_heads = node.attr("q_num_heads"), node.attr("kv_num_heads")
        if not q_heads or not kv_heads:
            raise node.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
        q, k, v = (
            _split_heads(node, q, q_heads),
            _split_heads(node, k, kv_heads),
            _split_heads(node, v, kv_heads),
        )
    batch, q_heads, q_len, head_size = q.type.shape  # type: ignore[union-attr]
    kv_heads = k.type.shape[1]  # type: ignore[union-attr]

    scale = node.attr("scale")
    root_scale = node.constant(
        math.sqrt(1 / math.sqrt(head_size) if scale is None else scale), dtype
    )

    # KV cache: present = concat(past, new) along the sequence axis.
    past_len = 0
    if node.has_input(4) != node.has_input(5):
        raise node.error("past_key and past_value must be given together")
    if node.has_input(4):
        past_len = node.shape(4)[2]
        k = node.call("concatenate", node.input(4), k, axis=2)
        v = node.call("concatenate", node.input(5), v, axis=2)
    present_key, present_value = k, v
    kv_len = k.type.shape[2]  # type: ignore[union-attr]

    # Additive bias from attn_mask (bool: True attends) and the constant window masks.
    bias: Expr | None = None
    if node.has_input(3):
        mask = node.input(3)
        is_bool = node.dtype(3) == "bool"
        short = kv_len - node.shape(3)[-1]
        if short > 0:  # a mask shorter than the keys masks the rest out
            fill = np.full((*node.shape(3)[:-1], short), False if is_bool else -np.inf)
            mask = node.call("concatenate", mask, node.constant(fill, node.dtype(3)), axis=-1)
        if is_bool:
            mask = node.call(
                "where", mask, node.constant(0.0, dtype), node.constant(-np.inf, dtype)
            )
        bias = mask
    offset = np.array([past_len])
    if node.has_input(6):  # nonpad_kv_seqlen: a static cache with per-batch valid lengths
        if past_len:
            raise node.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
        valid = node.const(6, "nonpad_kv_seqlen").astype(np.int64).reshape(-1)
        offset = valid - q_len
    causal = bool(node.attr("is_causal", 0))
    left, right = node.attr("left_window_size", -1), node.attr("right_window_size", -1)
    if causal or left >= 0 or right >= 0:
        window = node.constant(_window_bias(q_len, kv_len, offset, causal, left, right), dtype)
        bias = window if bias is None else node.call("add", bias, window)
    if node.has_input(6):
        padding = np.arange(kv_len)[None, :] < valid[:, None]
        padding_bias = np.where(padding, 0.0, -np.inf).reshape(batch, 1, 1, kv_len)
        padding_const = node.constant(padding_bias, dtype)
        bias = padding_const if bias is None else node.call("add", bias, padding_const)

    # Grouped-query attention: repeat each KV head q_heads / kv_heads times.
    if q_heads != kv_heads:
        if q_heads % kv_heads:
            raise node.error(f"{q_heads} query heads are not a multiple of {kv_heads} KV heads")
        reps = q_heads // kv_heads
        k, v = (_repeat_heads(node, t, reps) for t in (k, v))

    scaled_q = node.call("multiply", q, root_scale)
    scaled_k_t = node.call("transpose", node.call("multiply", k, root_scale), axes=(0, 1, 3, 2))
    scores = node.call("nn.matmul", scaled_q, scaled_k_t)
    softcap = node.attr("softcap", 0.0)
    if softcap > 0:
        cap = node.constant(softcap, dtype)
        scores = node.call("multiply", node.call("tanh", node.call("divide", scores, cap)), cap)
    qk_output = scores
    if bias is not None:
        scores = node.call("add", scores, bias)
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode == 2:
        qk_output = scores

    precision = node.attr("softmax_precision")
    softmax_input = scores
    if precision is not None:
        softmax_dtype = ember_dtype(precision, f"{node} softmax_precision")
        if softmax_dtype != dtype:
            softmax_input = node.call("cast", scores, dtype=softmax_dtype)
    probs = node.call("nn.softmax", softmax_input, axis=-1)
    probs = _zero_fully_masked_rows(node, probs, bias)
    if probs.type.dtype != dtype:  # type: ignore[union-attr]
        probs = node.call("cast", probs, dtype=dtype)
    if mode == 3:
        qk_output = probs

    y = node.call("nn.matmul", probs, v)
    if rank == 3:
        y = node.call("transpose", y, axes=(0, 2, 1, 3))
        y = node.call("reshape", y, newshape=(batch, q_len, -1))
    return [y, present_key, present_value, qk_output]


def _repeat_heads(node: OnnxNode, x: Expr, reps: int) -> Expr:
    """(B, H, S, D) -> (B, H*reps, S, D), each head repeated in place."""
    b, h, s, d = x.type.shape  # type: ignore[union-attr]
    x = node.call("expand_dims", x, axes=(2,))
    x = node.call("broadcast_to", x, shape=(b, h, reps, s, d))
    return node.call("reshape", x, newshape=(b, h * reps, s, d))


def _zero_fully_masked_rows(node: OnnxNode, probs: Expr, bias: Expr | None) -> Expr:
    """Rows whose bias is all -inf attend nothing: 0 instead of softmax's NaN."""
    if bias is None:
        return probs
    zero = node.constant(0.0, probs.type.dtype)  # type: ignore[union-attr]
    if isinstance(bias, Constant):
        masked = np.isneginf(bias.value.max(axis=-1, keepdims=True))
        if not masked.any():
            return probs
        return node.call("where", node.constant(masked), zero, probs)
    row_max = node.call("reduce_max", bias, axes=(-1,), keepdims=True)
    minus_inf = node.constant(-np.inf, bias.type.dtype)  # type: ignore[union-attr]
    return node.call("where", node.call("equal", row_max, minus_inf), zero, probs)


def _last_axis_slice(node: OnnxNode, x: Expr, begin: int, end: int, step: int = 1) -> Expr:
    return node.call("strided_slice", x, begin=(begin,), end=(end,), strides=(step,), axes=(-1,))


@converter("RotaryEmbedding", min_version=23)
def _rotary_embedding(node: OnnxNode) -> Expr:
    """Rotate (pairs of) the first ``rotary_embedding_dim`` features by cached cos/sin angles."""
    x = node.input(0)
    shape = node.shape(0)
    if len(shape) == 4:  # (B, H, S, D) -> (B, S, H, D)
        x = node.call("transpose", x, axes=(0, 2, 1, 3))
    elif len(shape) == 3:
        heads = node.attr("num_heads", 0)
        if not heads or shape[2] % heads:
            raise node.error(f"3-D input needs num_heads dividing its hidden size {shape[2]}")
        x = node.call("reshape", x, newshape=(shape[0], shape[1], heads, shape[2] // heads))
    else:
        raise node.error(f"input must be 3-D or 4-D, got shape {shape}")
    head_size = x.type.shape[3]  # type: ignore[union-attr]
    rotary = node.attr("rotary_embedding_dim", 0) or head_size
    half = rotary // 2
    cos, sin = node.input(1), node.input(2)
    if node.has_input(3):  # caches indexed by position ids: (B, S, rotary/2)
        cos = node.call("take", cos, node.input(3), axis=0)
        sin = node.call("take", sin, node.input(3), axis=0)
    cos, sin = (node.call("expand_dims", c, axes=(2,)) for c in (cos, sin))
    rotate = _last_axis_slice(node, x, 0, rotary)
    if node.attr("interleaved", 0):
        x1, x2 = (
            _last_axis_slice(node, rotate, 0, rotary, 2),
            _last_axis_slice(node, rotate, 1, rotary, 2),
        )
    else:
        x1, x2 = (
            _last_axis_slice(node, rotate, 0, half),
            _last_axis_slice(node, rotate, half, rotary),
        )
    real = node.call("subtract", node.call("multiply", cos, x1), node.call("multiply", sin, x2))
    imag = node.call("add", node.call("multiply", sin, x1), node.call("multiply", cos, x2))
    if node.attr("interleaved", 0):
        pairs = node.call(
            "concatenate",
            node.call("expand_dims", real, axes=(-1,)),
            node.call("expand_dims", imag, axes=(-1,)),
            axis=-1,
        )
        rotated = node.call("reshape", pairs, newshape=rotate.type.shape)  # type: ignore[union-attr]
    else:
        rotated = node.call("concatenate", real, imag, axis=-1)
    if rotary < head_size:
        rotated = node.call(
            "concatenate", rotated, _last_axis_slice(node, x, rotary, head_size), axis=-1
        )
    if len(shape) == 3:
        return node.call("reshape", rotated, newshape=shape)
    return node.call("transpose", rotated, axes=(0, 2, 1, 3))
