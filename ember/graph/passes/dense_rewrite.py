"""pack_dense: products by a constant weight become 2-D GEMMs on pre-packed weight panels.

Needs: a typed module with weights bound as constants (run ``optimize`` first); a product
whose weight is not a constant is left alone (the packing must happen here, at compile
time, not per inference).
Guarantees: every float32 ``nn.matmul(x, W)`` with a constant 2-D ``W`` (K, N), and every
``nn.dense(x, W[, bias])`` with a constant ``W`` (N, K), whose ``x`` has more than one
row (M = the product of its leading axes > 1) and whose N splits into panels
(:func:`ember.ops.nn_dense.panel_block`), becomes::

    y = nn.dense_pack(reshape(x, (M, K)), packed)     packed: (N/b, K, b), a new constant
    [y = add(y, bias)]                                   nn.dense's bias
    reshape(y, (..., N))                                 only when x has rank > 2

and the reshape back moves below the elementwise / broadcast ops that follow it (bias
add, GELU, layer scale by a (N,) constant: every operand is either such a reshape of a
tensor of the same shape or broadcasts along the last axis only), so those ops run on
the 2-D product and fuse into its kernel as the epilogue, and a reshape of such a
result back to (M, N) (the next Linear layer's input) cancels. M = 1 products (a
classifier's dense) keep their dot-product kernel. The result computes the same values.

    mod = pack_dense(optimize(mod, params), target=Target.parse("host"))
    # nn.matmul(%x: (1, 56, 56, 96), W (96, 384)) -> reshape(nn.dense_pack(reshape(%x), P))
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ember.graph.ir import Call, Constant, Expr, Function, Module, TensorType
from ember.graph.visitor import ExprMutator, with_bodies
from ember.ops.nn_dense import pack_weight, panel_block
from ember.ops.registry import Op, OpPattern, call, get_op
from ember.target import Target


def _tensor_type(e: Expr) -> TensorType | None:
    return e.type if isinstance(e.type, TensorType) else None


class _Rewriter(ExprMutator):
    def __init__(self, lanes: int, registers: int) -> None:
        super().__init__()
        self.lanes = lanes
        self.registers = registers
        self.matmul = get_op("nn.matmul")
        self.dense = get_op("nn.dense")
        self.reshape = get_op("reshape")
        # Reshapes this pass made: (N-D) view of a 2-D (M, N) tensor, mapped to that tensor.
        self.views: dict[Call, Expr] = {}

    def _view(self, flat: Expr, shape: tuple[int, ...], name: str) -> Expr:
        """``flat`` (M, N) seen as ``shape`` (..., N): a reshape this pass tracks."""
        if _tensor_type(flat).shape == shape:  # type: ignore[union-attr]
            return flat
        view = call(self.reshape, flat, newshape=shape, name=name)
        self.views[view] = flat
        return view

    def _flat(self, x: Expr, rows: int, name: str) -> Expr:
        """``x`` (..., K) as (rows, K): the source of a tracked view when it has that shape."""
        shape = _tensor_type(x).shape  # type: ignore[union-attr]
        if len(shape) == 2:
            return x
        source = self.views.get(x)  # type: ignore[call-overload]
        if source is not None and _tensor_type(source).shape == (rows, shape[-1]):  # type: ignore[union-attr]
            return source
        return call(self.reshape, x, newshape=(rows, shape[-1]), name=name)

    def visit_call(self, node: Call, args: tuple[Expr, ...]) -> Expr:
        op = node.op
        if not isinstance(op, Op):
            return super().visit_call(node, args)
        if op is self.matmul or op is self.dense:
            packed = self._pack(node, args)
            if packed is not None:
                return packed
        elif op is self.reshape and args[0] in self.views:
            # A view reshaped again: reshape its 2-D source instead (or nothing at all).
            source = self.views[args[0]]  # type: ignore[index]
            if _tensor_type(source).shape == node.type.shape:  # type: ignore[union-attr]
                return source
            return Call(op, (source,), node.attrs, node.name)
        elif op.pattern in (OpPattern.ELEMWISE, OpPattern.BROADCAST):
            sunk = self._sink(node, args)
            if sunk is not None:
                return sunk
        return super().visit_call(node, args)

    def _pack(self, node: Call, args: tuple[Expr, ...]) -> Expr | None:
        x, weight = args[0], args[1]
        x_type, out = _tensor_type(x), _tensor_type(node)
        if x_type is None or out is None or not isinstance(weight, Constant):
            return None
        if out.dtype != "float32" or x_type.ndim < 2 or weight.type.ndim != 2:  # type: ignore[union-attr]
            return None
        value = np.asarray(weight.value)
        weight_kn = value if node.op is self.matmul else value.T
        depth, columns = weight_kn.shape
        rows = math.prod(x_type.shape[:-1])
        if node.op is self.matmul and out.shape != (*x_type.shape[:-1], columns):
            return None  # a batch broadcast of a (K, N) weight against 1-D data: not ours
        block = panel_block(columns, self.lanes, self.registers)
        if rows < 2 or block == 0:
            return None
        name = node.name or "dense"
        panels = Constant(pack_weight(weight_kn, block), f"{weight.name or name}_packed")
        product = call("nn.dense_pack", self._flat(x, rows, f"{name}_rows"), panels, name=name)
        if node.op is self.dense and len(args) == 3:
            product = call("add", product, args[2], name=f"{name}_bias")
        return self._view(product, out.shape, f"{name}_view")

    def _sink(self, node: Call, args: tuple[Expr, ...]) -> Expr | None:
        """``op(view(y), ...)`` -> ``view(op(y, ...))`` when every operand allows it."""
        out = _tensor_type(node)
        views = [a for a in args if a in self.views]
        if out is None or not views:
            return None
        flat_shape = _tensor_type(self.views[views[0]]).shape  # type: ignore[index, union-attr]
        new_args: list[Expr] = []
        for a in args:
            a_type = _tensor_type(a)
            if a_type is None:
                return None
            if a in self.views:
                source = self.views[a]  # type: ignore[index]
                if a_type.shape != out.shape or _tensor_type(source).shape != flat_shape:  # type: ignore[union-attr]
                    return None
                new_args.append(source)
            elif all(d == 1 for d in a_type.shape[:-1]):
                # Broadcasts along the last axis only: as (N,) (or a scalar) it broadcasts
                # the same way against the 2-D rows.
                new_args.append(_last_axis(a, self.reshape))
            else:
                return None
        flat = Call(node.op, tuple(new_args), node.attrs, node.name)
        if _tensor_type(flat).shape != flat_shape:  # type: ignore[union-attr]
            return None
        return self._view(flat, out.shape, f"{node.name or 'elementwise'}_view")


def _last_axis(e: Expr, reshape: Op) -> Expr:
    """``e`` (1, ..., 1, N) as (N,); scalars and 1-D tensors unchanged."""
    shape = _tensor_type(e).shape  # type: ignore[union-attr]
    if len(shape) <= 1:
        return e
    if isinstance(e, Constant):
        return Constant(np.asarray(e.value).reshape(shape[-1:]), e.name)
    return call(reshape, e, newshape=shape[-1:], name=f"{e.name}_last_axis" if e.name else "")


def pack_dense(mod: Module, *, target: Target) -> Module:
    """Products by constant weights -> ``nn.dense_pack`` GEMMs (see the module docstring),
    the panels sized for ``target``'s vectors.

    >>> fused = fuse_ops(pack_dense(optimize(mod, params), target=Target.parse("host")))
    """
    mod = with_bodies(mod, functools.partial(pack_dense, target=target))
    main = mod.main
    rewriter = _Rewriter(target.vector_lanes("float32"), target.vector_registers)
    body = rewriter.visit(main.body)
    if body is main.body:
        return mod
    return mod.with_main(Function(main.params, body, dict(main.attrs)))


__all__ = ["pack_dense"]
