"""Shared machinery of the ONNX converters: the converter table and the per-node context.

A converter turns one ONNX node into ember graph expressions. It is registered
for one or more ONNX op types together with the oldest op version (the schema's
``since_version``) whose semantics it implements::

    @converter("Relu", min_version=6)
    def _relu(node: NodeContext) -> Expr:
        return node.call("nn.relu", node.input(0))

The :class:`NodeContext` gives converters the node's attributes with their
defaults, its inputs as graph expressions, the *values* of inputs that must be
known at import time (shape tensors, axes, pads), and ``call``, which builds an
ember call named after the node and folds it to a constant when all its
arguments are constants (so Shape -> Gather -> Concat -> Reshape chains end in a
static ``newshape``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import FrontendError, InternalError
from ember.graph.ir import DTYPES, Call, Constant, Expr, Tuple, TupleGetItem, TupleType, Var
from ember.ops import call

if TYPE_CHECKING:
    import onnx

    from ember.frontend.onnx import GraphBuilder


class UnsupportedFeatureError(FrontendError):
    """A valid ONNX model uses an attribute, dtype or input form that ember cannot honour.

    Raised for things like a 3-D Conv, ``storage_order=1`` or a uint16 tensor:
    the op is supported, this use of it is not.
    """


class NotStaticError(FrontendError):
    """An input ember needs at import time (a shape, axes, pads) depends on model inputs.

    ``input_names`` lists the graph inputs the value is computed from, so a caller
    that knows their values can freeze them (the conformance runner does).
    """

    def __init__(self, message: str, *, input_names: Sequence[str], hint: str | None = None):
        self.input_names = tuple(input_names)
        super().__init__(message, hint=hint)


# ----------------------------------------------------------------------------- dtypes

# ONNX TensorProto.DataType -> numpy dtype name; None: ember has no such dtype.
ONNX_DTYPES: dict[int, str | None] = {
    0: None,  # UNDEFINED
    1: "float32",
    2: "uint8",
    3: "int8",
    4: None,  # uint16
    5: "int16",
    6: "int32",
    7: "int64",
    8: None,  # string
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: None,  # uint64
    14: None,  # complex64
    15: None,  # complex128
    16: None,  # bfloat16
}


def onnx_dtype_name(elem_type: int) -> str:
    """The readable ONNX name of an element type (``1`` -> ``"FLOAT"``)."""
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def ember_dtype(elem_type: int, what: str) -> str:
    """The ember dtype of an ONNX element type; UnsupportedFeatureError if ember has none."""
    dtype = ONNX_DTYPES.get(elem_type)
    if dtype is None:
        raise UnsupportedFeatureError(
            f"{what} has ONNX element type {onnx_dtype_name(elem_type)}, "
            "which ember does not support",
            hint=f"ember's dtypes are: {', '.join(DTYPES)}",
        )
    return dtype


# ----------------------------------------------------------------------------- converter table

ConverterFn = Callable[["NodeContext"], "Expr | Sequence[Expr | None]"]


@dataclass(frozen=True)
class Converter:
    """How to convert one ONNX op type; handles op versions ``>= min_version``."""

    op_type: str
    fn: ConverterFn
    min_version: int = 1


CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str, min_version: int = 1) -> Callable[[ConverterFn], ConverterFn]:
    """Register ``fn`` as the converter of ``op_types`` (ONNX default domain)."""

    def register(fn: ConverterFn) -> ConverterFn:
        for op_type in op_types:
            CONVERTERS[op_type] = Converter(op_type, fn, min_version)
        return fn

    return register


# ----------------------------------------------------------------------------- node context


def _attribute_value(attr: onnx.AttributeProto) -> Any:
    """A Python value of an ONNX attribute (ints -> tuple, tensor -> numpy array)."""
    import onnx
    from onnx import numpy_helper

    kind = attr.type
    if kind == onnx.AttributeProto.FLOAT:
        return float(attr.f)
    if kind == onnx.AttributeProto.INT:
        return int(attr.i)
    if kind == onnx.AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == onnx.AttributeProto.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if kind == onnx.AttributeProto.INTS:
        return tuple(int(v) for v in attr.ints)
    if kind == onnx.AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", errors="replace") for s in attr.strings)
    if kind == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == onnx.AttributeProto.GRAPH:
        return attr.g
    if kind == onnx.AttributeProto.GRAPHS:
        return tuple(attr.graphs)
    return attr  # sparse tensors, type protos: converters reject them explicitly


class NodeContext:
    """One ONNX node being converted: attributes, inputs, constant values, call building."""

    def __init__(
        self,
        builder: GraphBuilder,
        proto: onnx.NodeProto,
        name: str,
        version: int,
        opset: int,
    ) -> None:
        self.builder = builder
        self.proto = proto
        self.name = name
        self.op_type = proto.op_type
        self.version = version  # the op schema's since_version at the model's opset
        self.opset = opset
        self.attrs = {a.name: _attribute_value(a) for a in proto.attribute}
        self._num_calls = 0

    # -- description
    def __str__(self) -> str:
        return f"{self.op_type} node {self.name!r}"

    def unsupported(self, what: str, hint: str | None = None) -> UnsupportedFeatureError:
        """An error saying this node uses something ember cannot honour (raise it)."""
        return UnsupportedFeatureError(f"{self} (opset {self.opset}): {what}", hint=hint)

    def error(self, what: str, hint: str | None = None) -> FrontendError:
        """An error saying this node is malformed (raise it)."""
        return FrontendError(f"{self} (opset {self.opset}): {what}", hint=hint)

    # -- attributes
    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def reject_attr(self, name: str, allowed: Any, reason: str) -> None:
        """Raise if attribute ``name`` is set to something other than ``allowed``."""
        value = self.attrs.get(name, allowed)
        if value != allowed:
            raise self.unsupported(f"attribute {name}={value!r} is not supported ({reason})")

    # -- inputs
    @property
    def num_inputs(self) -> int:
        """Number of inputs, not counting trailing omitted optional inputs."""
        names = list(self.proto.input)
        while names and not names[-1]:
            names.pop()
        return len(names)

    @property
    def num_outputs(self) -> int:
        names = list(self.proto.output)
        while names and not names[-1]:
            names.pop()
        return len(names)

    def has_input(self, index: int) -> bool:
        return index < len(self.proto.input) and bool(self.proto.input[index])

    def input(self, index: int) -> Expr:
        """Input ``index`` as a graph expression."""
        if not self.has_input(index):
            raise self.error(f"input {index} is missing")
        return self.builder.value(self.proto.input[index], self)

    def inputs(self) -> list[Expr]:
        return [self.input(i) for i in range(self.num_inputs) if self.has_input(i)]

    def const(self, index: int, what: str = "") -> np.ndarray:
        """The value of input ``index``, which must be computable at import time."""
        if not self.has_input(index):
            raise self.error(f"input {index} ({what or 'a constant'}) is missing")
        return self.builder.const_value(self.proto.input[index], self, what or f"input {index}")

    def maybe_const(self, index: int, what: str = "") -> np.ndarray | None:
        """Like :meth:`const`, but None when the optional input is omitted."""
        return self.const(index, what) if self.has_input(index) else None

    def shape(self, index: int) -> tuple[int, ...]:
        t = self.input(index).type
        if isinstance(t, TupleType):
            raise self.unsupported(f"input {index} is a tuple, not a tensor")
        return t.shape

    def dtype(self, index: int) -> str:
        t = self.input(index).type
        if isinstance(t, TupleType):
            raise self.unsupported(f"input {index} is a tuple, not a tensor")
        return t.dtype

    # -- building
    def call(self, op: str, *args: Expr, **attrs: Any) -> Expr:
        """Build ``op(*args)`` named after this node; fold it if every arg is a constant."""
        self._num_calls += 1
        name = self.name if self._num_calls == 1 else f"{self.name}_{self._num_calls - 1}"
        node = call(op, *args, name=name, **attrs)
        if args and all(isinstance(a, Constant) for a in args):
            return fold_call(node)
        return node

    def item(self, value: Expr, index: int) -> Expr:
        """Field ``index`` of a tuple value (a folded Tuple gives its field directly)."""
        if isinstance(value, Tuple):
            return value.fields[index]
        return TupleGetItem(value, index)

    def constant(self, value: Any, dtype: str | None = None) -> Constant:
        array = np.asarray(value, dtype=dtype)
        return Constant(array)


def fold_call(node: Call) -> Expr:
    """Evaluate a call whose arguments are all constants with its numpy reference."""
    values = [a.value for a in node.args]  # type: ignore[attr-defined]
    result = node.op.evaluate(values, node.attrs)
    if isinstance(result, tuple | list):
        return Tuple(tuple(_as_constant(r, t) for r, t in zip(result, node.type.fields)))
    return _as_constant(result, node.type)


def _as_constant(value: Any, expected: Any) -> Constant:
    # Keep the dtype the type rule promised (numpy references may return e.g. 0-d scalars).
    array = np.asarray(value)
    if hasattr(expected, "dtype") and str(array.dtype) != expected.dtype:
        array = array.astype(expected.dtype)
    return Constant(array)


def evaluate_expr(expr: Expr, env: dict[Var, np.ndarray], memo: dict[int, Any]) -> Any:
    """Evaluate ``expr`` whose free variables all have values in ``env`` (see :func:`free_vars`)."""
    key = id(expr)
    if key in memo:
        return memo[key]
    if isinstance(expr, Constant):
        result: Any = expr.value
    elif isinstance(expr, Var):
        result = env[expr]
    elif isinstance(expr, Tuple):
        result = tuple(evaluate_expr(f, env, memo) for f in expr.fields)
    elif isinstance(expr, TupleGetItem):
        result = evaluate_expr(expr.tuple_value, env, memo)[expr.index]
    elif isinstance(expr, Call):
        args = [evaluate_expr(a, env, memo) for a in expr.args]
        result = expr.op.evaluate(args, expr.attrs)
    else:
        raise InternalError(f"cannot evaluate a {type(expr).__name__} at import time")
    memo[key] = result
    return result


def free_vars(expr: Expr) -> list[Var]:
    """Vars ``expr`` depends on, in first-seen order."""
    seen: set[int] = set()
    found: list[Var] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, Var):
            found.append(e)
        elif isinstance(e, Call):
            stack.extend(e.args)
        elif isinstance(e, Tuple):
            stack.extend(e.fields)
        elif isinstance(e, TupleGetItem):
            stack.append(e.tuple_value)
    return found


def normalize_axis(axis: int, rank: int, node: NodeContext, what: str = "axis") -> int:
    """``axis`` in ``[0, rank)``; a FrontendError naming the node otherwise."""
    if not -rank <= axis < rank:
        raise node.error(f"{what} {axis} is out of range for a rank-{rank} input")
    return axis % rank if rank else 0


def int_list(value: np.ndarray | Sequence[int] | None) -> list[int]:
    return [] if value is None else [int(v) for v in np.asarray(value).reshape(-1)]
