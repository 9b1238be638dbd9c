"""What an ONNX converter gets: the converter registry, the node context, dtypes, errors.

A converter turns one ONNX node into ember graph expressions. It is registered
for one or more ONNX op types together with the oldest op version (the schema's
``since_version``) whose semantics it implements::

    @converter("Relu", min_version=6)
    def _relu(node: OnnxNode) -> Expr:
        return node.call("nn.relu", node.input(0))

The :class:`OnnxNode` gives converters the node's attributes with their
defaults, its inputs as graph expressions, the *values* of inputs that must be
known at import time (shape tensors, axes, pads), and ``call``, which builds an
ember call named after the node and folds it to a constant when all its
arguments are constants (so Shape -> Gather -> Concat -> Reshape chains end in a
static ``newshape``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper

from ember.errors import FrontendError
from ember.frontend.common import ConverterRegistry, NodeContext, fold_call
from ember.frontend.custom import CustomNode, find_converter, onnx_op_name, run_converter
from ember.graph.ir import DTYPES, Constant, Expr, Tuple, TupleGetItem, TupleType

if TYPE_CHECKING:
    from ember.frontend.onnx.importer import OnnxImporter


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
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: None,  # string
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: None,  # complex64
    15: None,  # complex128
    16: "bfloat16",
}


def onnx_dtype_name(elem_type: int) -> str:
    """The readable ONNX name of an element type (``1`` -> ``"FLOAT"``)."""
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

ConverterFn = Callable[["OnnxNode"], "Expr | Sequence[Expr | None]"]

# ONNX default-domain op type -> converter (with the oldest op version it handles);
# filled by the ops_*.py modules, which ember.frontend.onnx imports.
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("ONNX")
converter = CONVERTERS.register


# ----------------------------------------------------------------------------- node context


def _attribute_value(attr: onnx.AttributeProto) -> Any:
    """A Python value of an ONNX attribute (ints -> tuple, tensor -> numpy array)."""
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


class OnnxNode(NodeContext):
    """One ONNX node being converted: attributes, inputs, constant values, call building."""

    def __init__(
        self,
        importer: OnnxImporter,
        proto: onnx.NodeProto,
        name: str,
        version: int,
        opset: int,
    ) -> None:
        super().__init__(importer.builder, name, proto.op_type)
        self.importer = importer
        self.proto = proto
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
        return self.importer.value(self.proto.input[index], self)

    def inputs(self) -> list[Expr]:
        return [self.input(i) for i in range(self.num_inputs) if self.has_input(i)]

    def const(self, index: int, what: str = "") -> np.ndarray:
        """The value of input ``index``, which must be computable at import time."""
        if not self.has_input(index):
            raise self.error(f"input {index} ({what or 'a constant'}) is missing")
        return self.importer.const_value(self.proto.input[index], self, what or f"input {index}")

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
    def call(self, op: str, *args: Expr, suffix: str = "", **attrs: Any) -> Expr:
        """Build ``op(*args)`` named after this node; fold it if every arg is a constant.

        Calls are named ``name``, ``name_1``, ``name_2``... in the order they are built.
        """
        self._num_calls += 1
        name = self.name if self._num_calls == 1 else f"{self.name}_{self._num_calls - 1}"
        node = self.builder.call(op, *args, name=name + suffix, node=self, **attrs)
        if args and all(isinstance(a, Constant) for a in args):
            return fold_call(node)  # type: ignore[arg-type]
        return node

    def item(self, value: Expr, index: int) -> Expr:
        """Field ``index`` of a tuple value (a folded Tuple gives its field directly)."""
        if isinstance(value, Tuple):
            return value.fields[index]
        return TupleGetItem(value, index)

    def constant(self, value: Any, dtype: str | None = None) -> Constant:
        array = np.asarray(value, dtype=dtype)
        return Constant(array)


# ----------------------------------------------------------------------------- custom ops


def custom_converter(domain: str, op_type: str) -> ConverterFn | None:
    """The converter a user registered for ``domain.op_type`` (``ember.custom``), as a
    converter of this frontend; None if there is none."""
    custom = find_converter("onnx", onnx_op_name(domain, op_type))
    if custom is None:
        return None

    def convert(node: OnnxNode) -> list[Expr]:
        inputs = [node.input(i) if node.has_input(i) else None for i in range(node.num_inputs)]
        view = CustomNode("onnx", node, inputs, node.attrs, node.num_outputs)
        return run_converter(custom, view)

    return convert
