"""Graph IR: immutable, typed dataflow nodes.

A model is a :class:`Module` holding a ``main`` :class:`Function` whose body is a
DAG of :class:`Call` nodes over :class:`Var` (inputs and weights) and
:class:`Constant` leaves. Types are computed eagerly when a node is built, so a
shape mismatch is reported at the node that causes it::

    x = Var("data", TensorType((1, 3, 8, 8), "float32"))
    y = call("nn.relu", x)
    mod = Module.from_function(Function((x,), y))

Nodes compare and hash by identity (graphs are DAGs that share sub-expressions,
and identity keys make memo tables O(1)); use :func:`structural_equal` to compare
two graphs by structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import ShapeError, VerifyError

if TYPE_CHECKING:
    from ember.ops.registry import Op

DTYPES = (
    "float32",
    "float16",
    "float64",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "uint32",
    "bool",
)


# ----------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor of static ``shape`` and ``dtype`` (a numpy dtype name)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.dtype not in DTYPES:
            raise ShapeError(
                f"unknown dtype {self.dtype!r}", hint=f"use one of {', '.join(DTYPES)}"
            )
        if any(d < 0 for d in self.shape):
            raise ShapeError(f"negative dimension in shape {self.shape}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __str__(self) -> str:
        return f"Tensor[({', '.join(map(str, self.shape))}), {self.dtype}]"


@dataclass(frozen=True, slots=True)
class TupleType:
    """The type of a :class:`Tuple` or of an op with several outputs."""

    fields: tuple[Type, ...]

    def __str__(self) -> str:
        return f"({', '.join(map(str, self.fields))})"


Type = TensorType | TupleType


# ----------------------------------------------------------------------------- nodes


class Expr:
    """Base of graph IR nodes. Every node has a ``type`` and an optional ``name``."""

    __slots__ = ()
    type: Type
    name: str


@dataclass(frozen=True, eq=False, slots=True)
class Var(Expr):
    """A function parameter: a model input or a weight bound by ``params``."""

    name: str
    type: TensorType

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass(frozen=True, eq=False, slots=True)
class Constant(Expr):
    """A constant tensor; ``value`` is a read-only numpy array."""

    value: np.ndarray
    name: str = ""
    type: TensorType = field(init=False)

    def __post_init__(self) -> None:
        value = np.asarray(self.value)
        if str(value.dtype) not in DTYPES:
            raise ShapeError(f"constant {self.name!r} has unsupported dtype {value.dtype}")
        if value.flags.writeable:
            value = value.copy()
            value.flags.writeable = False
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "type", TensorType(value.shape, str(value.dtype)))

    def __repr__(self) -> str:
        return f"Constant({self.type}{', ' + self.name if self.name else ''})"


@dataclass(frozen=True, eq=False, slots=True)
class Call(Expr):
    """An op applied to arguments. ``attrs`` is the op's frozen attribute dataclass.

    The output type is computed from the op's type rule when the node is built;
    a mismatch raises :class:`ShapeError` naming the op and the node.
    """

    op: Op | Function
    args: tuple[Expr, ...]
    attrs: Any
    name: str = ""
    type: Type = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        for i, arg in enumerate(self.args):
            if not isinstance(arg, Expr):
                raise VerifyError(
                    f"argument {i} of {self.op.name} node {self.name!r} is a "
                    f"{type(arg).__name__}, not a graph expression"
                )
        object.__setattr__(self, "type", self.op.infer_type(self.args, self.attrs, self.name))

    def __repr__(self) -> str:
        return f"Call({self.op.name}{', ' + self.name if self.name else ''}) -> {self.type}"


@dataclass(frozen=True, eq=False, slots=True)
class Tuple(Expr):
    """A tuple of values (several outputs of a function, or inputs of concat)."""

    fields: tuple[Expr, ...]
    name: str = ""
    type: TupleType = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "type", TupleType(tuple(f.type for f in self.fields)))


@dataclass(frozen=True, eq=False, slots=True)
class TupleGetItem(Expr):
    """Field ``index`` of a tuple-typed value."""

    tuple_value: Expr
    index: int
    name: str = ""
    type: Type = field(init=False)

    def __post_init__(self) -> None:
        tt = self.tuple_value.type
        if not isinstance(tt, TupleType):
            raise ShapeError(f"TupleGetItem {self.name!r}: value is {tt}, not a tuple")
        if not 0 <= self.index < len(tt.fields):
            raise ShapeError(
                f"TupleGetItem {self.name!r}: index {self.index} out of range "
                f"for {len(tt.fields)} fields"
            )
        object.__setattr__(self, "type", tt.fields[self.index])


@dataclass(frozen=True, eq=False, slots=True)
class Function:
    """``params`` are the inputs (model inputs first, then weights); ``body`` the result.

    A function with ``attrs["primitive"]`` set is a fused kernel: the fusion pass
    builds one per group of ops, and a :class:`Call` whose ``op`` is the function
    invokes it (as in TVM). ``attrs["name"]`` names the kernel.
    """

    params: tuple[Var, ...]
    body: Expr
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))

    @property
    def ret_type(self) -> Type:
        return self.body.type

    @property
    def name(self) -> str:
        return str(self.attrs.get("name", "function"))

    @property
    def is_primitive(self) -> bool:
        return bool(self.attrs.get("primitive", False))

    def infer_type(self, args: tuple[Expr, ...], attrs: Any, node_name: str = "") -> Type:
        """Type of calling this function on ``args`` (used when a Call's op is a Function)."""
        if len(args) != len(self.params):
            raise ShapeError(
                f"call of {self.name} (node {node_name!r}) passes {len(args)} argument(s), "
                f"the function takes {len(self.params)}"
            )
        for i, (arg, param) in enumerate(zip(args, self.params)):
            if arg.type != param.type:
                raise ShapeError(
                    f"call of {self.name} (node {node_name!r}): argument {i} ({param.name}) "
                    f"is {arg.type}, expected {param.type}"
                )
        return self.body.type


@dataclass(frozen=True, eq=False, slots=True)
class Module:
    """A set of named functions; ``main`` is the model."""

    functions: dict[str, Function]

    @staticmethod
    def from_function(func: Function) -> Module:
        return Module({"main": func})

    @property
    def main(self) -> Function:
        return self.functions["main"]

    def with_main(self, func: Function) -> Module:
        return Module({**self.functions, "main": func})

    def __str__(self) -> str:
        from ember.graph.printer import print_module

        return print_module(self)


# ----------------------------------------------------------------------------- building


def call(op: str | Op, *args: Expr, name: str = "", **attrs: Any) -> Call:
    """Build a :class:`Call` of ``op`` (an Op or its registered name) with keyword attributes."""
    from ember.ops.registry import get_op

    the_op = get_op(op) if isinstance(op, str) else op
    return Call(the_op, tuple(args), the_op.make_attrs(attrs, node_name=name), name)


def const(value: Any, dtype: str | None = None, name: str = "") -> Constant:
    """A :class:`Constant` from anything numpy can turn into an array."""
    return Constant(np.asarray(value, dtype=dtype), name)
