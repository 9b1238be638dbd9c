"""ONNX ScatterElements / ScatterND / Scatter with constant indices, as gathers.

Exporters write these for slice and index assignment (``x[:, 2:4] = y``), with the
indices known when the model is exported. The importer turns the indices into, for
each output position, which update writes it (numpy, once); the graph then gathers::

    out = where(written, take(updates, writer), data)          # reduction "none"
    out = where(written_j, op(out, take(updates, writer_j)), out)   # add/mul/max/min,
                                                              # once per duplicate layer j

so the graph does O(size of data) work per layer (one layer unless an index repeats).
Indices computed at run time are refused (NotStaticError names the input).
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter
from ember.graph.ir import Expr

_REDUCE = {"add": "add", "mul": "multiply", "max": "maximum", "min": "minimum"}


def _checked(node: OnnxNode, indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """Indices in [-size, size) as non-negative int64."""
    indices = np.asarray(indices, dtype=np.int64)
    bad = (indices < -size) | (indices >= size)
    if bad.any():
        raise node.error(
            f"{what} {int(indices[bad].reshape(-1)[0])} is out of range for a dimension of "
            f"size {size}"
        )
    return np.where(indices < 0, indices + size, indices)


def _layers(targets: np.ndarray, size: int) -> list[np.ndarray]:
    """For each duplicate layer j, the update (flat position in ``targets``) that is the
    j-th to write each output position, or -1; updates write in order."""
    if targets.size == 0:
        return []
    order = np.argsort(targets, kind="stable")
    sorted_targets = targets[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_targets)) + 1]
    counts = np.diff(np.r_[starts, sorted_targets.size])
    rank = np.arange(sorted_targets.size) - np.repeat(starts, counts)
    layers = []
    for j in range(int(counts.max())):
        writer = np.full(size, -1, np.int64)
        pick = rank == j
        writer[sorted_targets[pick]] = order[pick]
        layers.append(writer)
    return layers


def _scatter(node: OnnxNode, targets: np.ndarray, reduction: str) -> Expr:
    """Build the gathers for flat output positions ``targets`` (one per update element,
    row-major over the updates)."""
    data, updates = node.input(0), node.input(2)
    shape = node.shape(0)
    size = math.prod(shape)
    if reduction != "none" and reduction not in _REDUCE:
        raise node.error(
            f"reduction={reduction!r} is not one of 'none', {', '.join(map(repr, _REDUCE))}"
        )
    layers = _layers(targets.reshape(-1), size)
    if reduction == "none":  # the last write wins (ONNX leaves duplicates undefined)
        layers = [np.maximum.reduce(layers)] if layers else []
    out = node.call("reshape", data, newshape=(-1,))
    flat_updates = node.call("reshape", updates, newshape=(-1,))
    for writer in layers:
        gathered = node.call("take", flat_updates, node.constant(np.maximum(writer, 0)), axis=0)
        if reduction != "none":
            gathered = node.call(_REDUCE[reduction], out, gathered)
        out = node.call("where", node.constant(writer >= 0), gathered, out)
    return node.call("reshape", out, newshape=tuple(shape))


@converter("ScatterElements", min_version=11)
def _scatter_elements(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    rank = len(shape)
    axis = node.axis(node.attr("axis", 0), rank)
    indices = node.const(1, "indices")
    if tuple(indices.shape) != tuple(node.shape(2)):
        raise node.error(
            f"indices {list(indices.shape)} and updates {list(node.shape(2))} differ in shape"
        )
    indices = _checked(node, indices, shape[axis], "index")
    strides = [math.prod(shape[a + 1 :]) for a in range(rank)]
    grid = np.indices(indices.shape, dtype=np.int64)
    targets = sum((indices if a == axis else grid[a]) * strides[a] for a in range(rank))
    return _scatter(node, np.asarray(targets), node.attr("reduction", "none"))


@converter("Scatter", min_version=9)
def _scatter_v9(node: OnnxNode) -> Expr:
    """Scatter (deprecated in opset 11) is ScatterElements without reductions."""
    return _scatter_elements(node)


@converter("ScatterND", min_version=11)
def _scatter_nd(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    indices = np.asarray(node.const(1, "indices"), dtype=np.int64)
    if indices.ndim == 0 or indices.shape[-1] > len(shape):
        raise node.error(
            f"indices of shape {list(indices.shape)} must end in a dimension of at most the "
            f"data's rank {len(shape)}"
        )
    q = indices.shape[-1]
    slice_shape = tuple(shape[q:])
    if tuple(node.shape(2)) != (*indices.shape[:-1], *slice_shape):
        raise node.error(
            f"updates have shape {list(node.shape(2))}; indices {list(indices.shape)} into "
            f"data {list(shape)} need {[*indices.shape[:-1], *slice_shape]}"
        )
    strides = [math.prod(shape[a + 1 :]) for a in range(len(shape))]
    starts = np.zeros(indices.shape[:-1], np.int64)
    for j in range(q):
        starts += _checked(node, indices[..., j], shape[j], f"index (dimension {j})") * strides[j]
    inner = np.arange(math.prod(slice_shape), dtype=np.int64)
    targets = starts[..., None] + inner
    return _scatter(node, targets, node.attr("reduction", "none"))
