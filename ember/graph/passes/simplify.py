"""simplify: drop inference no-ops and fold affine ops into conv / dense weights.

Needs: a typed module; weights bound as constants (``bind_params``) for the
folds to apply (unbound weights are left alone).
Guarantees, in this order:

1. ``nn.dropout`` and ``identity`` are removed, as are ``cast`` to the same
   dtype and ``reshape`` to the same shape.
2. ``nn.batch_norm`` whose statistics are constants and whose input is an
   *anchor* (``nn.conv2d``, ``nn.conv2d_transpose`` or ``nn.dense`` with
   constant weight and bias, used only by the batch norm) is folded into the
   anchor: ``W' = W * scale`` per output channel, ``b' = b * scale + shift``.
3. ``multiply`` / ``add`` / ``subtract`` of an anchor (single use) by a constant
   that varies only along the anchor's output-channel axis (a scalar, ``(C,)``,
   ``(C, 1, 1)``, ``(1, C, 1, 1)``, ...) is folded the same way.
4. A batch norm that could not be folded (its input is not an anchor, or has
   other users) becomes ``multiply`` + ``add`` with constant per-channel scale
   and shift.

Folded constants are computed in float64 and stored in the weights' dtype;
only floating-point graphs are folded. The result computes the same values up
to rounding.

    mod = simplify(mod)
"""

from __future__ import annotations

import numpy as np

from ember.graph.ir import Call, Constant, Expr, Module, TensorType
from ember.graph.visitor import ExprMutator, rebuild_call, use_counts, with_bodies
from ember.ops import call as call_op
from ember.ops.registry import Op

DROPPED_OPS = ("nn.dropout", "identity")
"""Ops that are the identity at inference time."""

ANCHOR_OPS = ("nn.conv2d", "nn.conv2d_transpose", "nn.dense")
"""Ops whose output channels are linear in their weights, so a per-channel affine folds in."""


def _op_name(expr: Expr) -> str:
    if isinstance(expr, Call) and isinstance(expr.op, Op):
        return expr.op.name
    return ""


class _DropIdentities(ExprMutator):
    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        name = _op_name(call)
        if name in DROPPED_OPS:
            return args[0]
        if name in ("cast", "reshape") and args[0].type == call.type:
            return args[0]
        return rebuild_call(call, args)


# ----------------------------------------------------------------------------- affine folding


def _is_float(t: object) -> bool:
    return isinstance(t, TensorType) and t.dtype.startswith("float")


def _anchor_axis(expr: Expr) -> int | None:
    """The output-channel axis of ``expr`` if it is a foldable anchor, else None."""
    name = _op_name(expr)
    if name not in ANCHOR_OPS or not _is_float(expr.type):
        return None
    assert isinstance(expr, Call)
    if not all(isinstance(a, Constant) for a in expr.args[1:]):
        return None  # weight (or bias) is a runtime input: nothing to fold into
    return expr.type.ndim - 1 if name == "nn.dense" else 1  # type: ignore[union-attr]


def _per_channel(const: Constant, out: TensorType, axis: int) -> np.ndarray | None:
    """``const`` as a float64 vector over ``axis`` of ``out``, if it only varies there.

    None when broadcasting ``const`` against ``out`` would change the output shape
    or the constant varies along another axis.
    """
    shape = const.type.shape
    if len(shape) > out.ndim or const.type.dtype != out.dtype:
        return None
    padded = (1,) * (out.ndim - len(shape)) + shape
    for i, (c, o) in enumerate(zip(padded, out.shape)):
        if c != 1 and (i != axis or c != o):
            return None
    vector = np.asarray(const.value, dtype=np.float64).reshape(-1)
    return np.broadcast_to(vector, (out.shape[axis],))


def _frozen(array: np.ndarray) -> np.ndarray:
    """A fresh array marked read-only, so Constant keeps it instead of copying it."""
    array.flags.writeable = False
    return array


def _fold_into(anchor: Call, scale: np.ndarray | None, shift: np.ndarray | None) -> Call:
    """``anchor`` computing ``anchor * scale + shift`` per output channel."""
    weight = anchor.args[1]
    assert isinstance(weight, Constant)
    w = np.asarray(weight.value, dtype=np.float64)
    channels = anchor.type.shape[1 if anchor.op.name != "nn.dense" else -1]  # type: ignore[union-attr]
    old_bias = anchor.args[2] if len(anchor.args) == 3 else None
    b = np.zeros(channels) if old_bias is None else np.asarray(old_bias.value, np.float64)  # type: ignore[union-attr]
    if scale is not None:
        if anchor.op.name == "nn.conv2d_transpose":
            # Weight (C_in, O/groups, KH, KW): output channel o = group * O/groups + j.
            groups = anchor.attrs.groups
            c_in, out_per_group = w.shape[:2]
            w = w.reshape(groups, c_in // groups, out_per_group, *w.shape[2:])
            w = w * scale.reshape(groups, 1, out_per_group, 1, 1)
            w = w.reshape(c_in, out_per_group, *w.shape[3:])
        else:
            # conv2d (O, C/groups, KH, KW) and dense (N, K): output channel is axis 0.
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b = b * scale
    if shift is not None:
        b = b + shift
    dtype = weight.type.dtype
    new_weight = Constant(_frozen(w.astype(dtype)), weight.name)
    new_bias = Constant(_frozen(b.astype(dtype)), old_bias.name if old_bias is not None else "")
    return Call(anchor.op, (anchor.args[0], new_weight, new_bias), anchor.attrs, anchor.name)


class _FoldAffine(ExprMutator):
    def __init__(self, uses: dict[Expr, int]) -> None:
        super().__init__()
        self.uses = uses

    def _single_use_anchor(self, original: Expr, new: Expr) -> int | None:
        if self.uses.get(original, 0) != 1:
            return None
        return _anchor_axis(new)

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        name = _op_name(call)
        if name == "nn.batch_norm":
            return self._batch_norm(call, args)
        if name in ("multiply", "add", "subtract"):
            folded = self._binary(call, args, name)
            if folded is not None:
                return folded
        return rebuild_call(call, args)

    def _batch_norm(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        data, stats = args[0], args[1:]
        if not _is_float(call.type) or not all(isinstance(s, Constant) for s in stats):
            return rebuild_call(call, args)
        gamma, beta, mean, var = (np.asarray(s.value, np.float64) for s in stats)  # type: ignore[union-attr]
        scale = gamma / np.sqrt(var + call.attrs.epsilon)
        shift = beta - mean * scale
        ndim = call.type.ndim  # type: ignore[union-attr]
        axis = call.attrs.axis % ndim
        if self._single_use_anchor(call.args[0], data) == axis:
            return _fold_into(data, scale, shift)  # type: ignore[arg-type]
        # Standalone: x * scale + shift, with constants shaped to broadcast along `axis`.
        shape = (-1,) + (1,) * (ndim - 1 - axis)
        dtype = call.type.dtype  # type: ignore[union-attr]
        prefix = call.name or "batch_norm"
        scaled = call_op(
            "multiply",
            data,
            Constant(scale.reshape(shape).astype(dtype), f"{prefix}_scale"),
            name=call.name,
        )
        return call_op(
            "add",
            scaled,
            Constant(shift.reshape(shape).astype(dtype), f"{prefix}_shift"),
            name=call.name,
        )

    def _binary(self, call: Call, args: tuple[Expr, ...], name: str) -> Call | None:
        # Which operand is the anchor and which the constant? (subtract is not commutative)
        orders = [(0, 1)] if name == "subtract" else [(0, 1), (1, 0)]
        for anchor_i, const_i in orders:
            anchor, const = args[anchor_i], args[const_i]
            if not isinstance(const, Constant):
                continue
            axis = self._single_use_anchor(call.args[anchor_i], anchor)
            if axis is None:
                continue
            vector = _per_channel(const, anchor.type, axis)  # type: ignore[arg-type]
            if vector is None or call.type != anchor.type:
                continue
            if name == "multiply":
                return _fold_into(anchor, vector, None)  # type: ignore[arg-type]
            return _fold_into(anchor, None, -vector if name == "subtract" else vector)  # type: ignore[arg-type]
        return None


def simplify(mod: Module) -> Module:
    """``mod`` with no-ops removed and affine ops folded into weights (see module doc)."""
    mod = with_bodies(mod, simplify)  # control-flow branches and bodies too
    main = _DropIdentities().visit_function(mod.main)
    main_folded = _FoldAffine(use_counts(main.body)).visit_function(main)
    return mod if main_folded is mod.main else mod.with_main(main_folded)
