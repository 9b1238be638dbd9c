"""Graph IR: immutable, typed dataflow nodes.

A model is a :class:`Module` holding a ``main`` :class:`Function` whose body is a
DAG of :class:`Call` nodes over :class:`Var` (inputs and weights) and
:class:`Constant` leaves. Types are computed eagerly when a node is built, so a
shape mismatch is reported at the node that causes it::

    x = Var("data", TensorType((1, 3, 8, 8), "float32"))
    y = call(nn.relu, x)                      # or ember.ops.call("nn.relu", x) by name
    mod = Module.from_function(Function((x,), y))

``print(mod)`` shows the graph as text (:func:`print_module`); :func:`post_order`
walks it without recursion (the visitor and mutator classes live in
:mod:`ember.graph.visitor`).

Nodes compare and hash by identity (graphs are DAGs that share sub-expressions,
and identity keys make memo tables O(1)); use :func:`structural_equal` to compare
two graphs by structure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes  # registers numpy's "bfloat16" dtype, which DTYPES names
import numpy as np

from ember.errors import AttrError, InternalError, ShapeError, VerifyError
from ember.graph.op import Op

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
    "uint16",
    "uint64",
    "bfloat16",  # numpy dtype from ml_dtypes; kernels compute it in float32
)


def is_float_dtype(dtype: Any) -> bool:
    """A floating-point numpy dtype: float16/32/64 and bfloat16 (kind "V" in numpy).

    >>> is_float_dtype("bfloat16"), is_float_dtype(np.int8)
    (True, False)
    """
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype == ml_dtypes.bfloat16


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

    def __repr__(self) -> str:
        # Short: a function may sit in a control-flow op's attrs, whose repr is in messages.
        return f"Function({self.name}, {len(self.params)} params) -> {self.ret_type}"

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
        return print_module(self)


# ----------------------------------------------------------------------------- functions in attrs

# Control-flow ops (``cf.if``, ``cf.loop`` in :mod:`ember.ops.control_flow`) hold their
# branches and loop bodies as Functions in attribute fields. Such functions are closed:
# every value a body reads from outside arrives as an explicit argument of the call, so
# the body is verified, printed, compared and rewritten like any other function, and a
# walk of the outer graph treats the call as one opaque node (as it does fused kernels).


def subfunctions(attrs: Any) -> tuple[tuple[str, Function], ...]:
    """``(field name, function)`` for each attribute field of ``attrs`` holding a Function.

    >>> [name for name, _ in subfunctions(if_call.attrs)]  # doctest: +SKIP
    ['then_branch', 'else_branch']
    """
    if attrs is None or not dataclasses.is_dataclass(attrs):
        return ()
    found = []
    for f in dataclasses.fields(attrs):
        value = getattr(attrs, f.name)
        if isinstance(value, Function):
            found.append((f.name, value))
    return tuple(found)


def replace_subfunctions(call: Call, new: dict[str, Function]) -> Call:
    """``call`` with the attribute functions named in ``new`` replaced (same object if equal).

    The type is re-derived, so a replaced body must keep its parameter and result types.
    """
    old = dict(subfunctions(call.attrs))
    if all(old.get(k) is v for k, v in new.items()):
        return call
    return Call(call.op, call.args, dataclasses.replace(call.attrs, **new), call.name)


# ----------------------------------------------------------------------------- building


def call(op: Op, *args: Expr, name: str = "", **attrs: Any) -> Call:
    """Build a :class:`Call` of ``op`` with keyword attributes.

    Ops by name: ``ember.ops.call("nn.relu", x)`` (the op library resolves the name).
    """
    if not isinstance(op, Op):
        raise AttrError(
            f"call: expected an Op, got {type(op).__name__} {op!r}",
            hint="to call an op by name use ember.ops.call, e.g. ember.ops.call('nn.relu', x)",
        )
    return Call(op, tuple(args), op.make_attrs(attrs, node_name=name), name)


def const(value: Any, dtype: str | None = None, name: str = "") -> Constant:
    """A :class:`Constant` from anything numpy can turn into an array."""
    return Constant(np.asarray(value, dtype=dtype), name)


# ----------------------------------------------------------------------------- walking


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct operands of ``expr`` (``()`` for Var and Constant).

    >>> children(call("add", x, y))  # doctest: +SKIP
    (x, y)
    """
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Tuple):
        return expr.fields
    if isinstance(expr, TupleGetItem):
        return (expr.tuple_value,)
    if isinstance(expr, Var | Constant):
        return ()
    raise InternalError(f"not a graph expression: {type(expr).__name__}")


def post_order(*roots: Expr | Function) -> list[Expr]:
    """Every node reachable from ``roots``, each once, children before parents.

    Arguments are visited left to right, so the order is the natural execution
    order of the graph. A :class:`Function` root stands for its body.

    >>> [type(n).__name__ for n in post_order(call("nn.relu", x))]  # doctest: +SKIP
    ['Var', 'Call']
    """
    order: list[Expr] = []
    seen: set[Expr] = set()  # nodes hash by identity
    for root in roots:
        start = root.body if isinstance(root, Function) else root
        if start in seen:
            continue
        # Stack entries: (node, index of the next child to push).
        stack: list[tuple[Expr, int]] = [(start, 0)]
        seen.add(start)
        while stack:
            node, next_child = stack[-1]
            kids = children(node)
            # Skip children already seen; push the first unseen one.
            while next_child < len(kids) and kids[next_child] in seen:
                next_child += 1
            if next_child < len(kids):
                stack[-1] = (node, next_child + 1)
                child = kids[next_child]
                seen.add(child)
                stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


# ----------------------------------------------------------------------------- text

# Readable text, one line per node in execution order (``str(mod)``):
#
#   def @main(%data: Tensor[(1, 3, 8, 8), float32], %w: Tensor[(4, 3, 3, 3), float32]) -> ... {
#     %0 = nn.conv2d(%data, %w, padding=(1, 1, 1, 1)) /* conv1 */ : Tensor[(1, 4, 8, 8), float32]
#     %1 = nn.relu(%0) : Tensor[(1, 4, 8, 8), float32]
#     %1
#   }
#
# Attributes equal to their default are left out. Scalar constants print inline
# (``0.5f``); other constants print as ``meta[Constant][k]`` with their shape and
# dtype in a comment (the same constant object gets the same ``k``). A call of a
# fused (primitive) function prints the function once, as a local ``fn``, before
# its first use; so do the branches and bodies of control-flow calls, which the
# call then names in its attributes (``cf.if(%c, %x, then_branch=%1, else_branch=%2)``).
# Printing never recurses over the graph, so very deep graphs print.
# The text lives here, with the nodes, because ``Module.__str__`` is the printer.

INDENT = "  "

# Suffixes of inline scalars, so `1f` (float32) and `1i64` (int64) read differently.
_SCALAR_SUFFIX = {
    "float32": "f",
    "float16": "f16",
    "float64": "f64",
    "int8": "i8",
    "int16": "i16",
    "int32": "",
    "int64": "i64",
    "uint8": "u8",
    "uint32": "u32",
    "uint16": "u16",
    "uint64": "u64",
    "bfloat16": "bf16",
    "bool": "",
}


def format_attr_value(value: Any) -> str:
    """An attribute value as source-like text (tuples keep their parentheses)."""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, tuple):
        inner = ", ".join(format_attr_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def format_attrs(attrs: Any, functions: dict[Function, str] | None = None) -> list[str]:
    """``name=value`` for each attribute of a dataclass that differs from its default.

    A Function-valued attribute prints as its name in ``functions`` (``then_branch=%3``).
    """
    if attrs is None or not dataclasses.is_dataclass(attrs):
        return [] if attrs is None else [repr(attrs)]
    items = []
    for f in dataclasses.fields(attrs):
        value = getattr(attrs, f.name)
        if isinstance(value, Function) and functions is not None and value in functions:
            items.append(f"{f.name}={functions[value]}")
            continue
        default = f.default
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        if default is not dataclasses.MISSING and _same(value, default):
            continue
        items.append(f"{f.name}={format_attr_value(value)}")
    return items


def _same(value: Any, default: Any) -> bool:
    # Attrs normalize `strides=2` to (2, 2) but keep the default as written.
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def format_scalar(value: Any, dtype: str) -> str:
    """A scalar with a dtype suffix: ``0.5f``, ``3i64``, ``True``."""
    if dtype == "bool":
        return str(bool(value))
    if dtype.startswith("float"):
        text = repr(float(value))
        if text.endswith(".0"):
            text = text[:-2]
        return text + _SCALAR_SUFFIX[dtype]
    return f"{int(value)}{_SCALAR_SUFFIX[dtype]}"


class Printer:
    """Prints expressions and functions; numbers constants across everything it prints."""

    def __init__(self) -> None:
        self.constants: dict[Constant, int] = {}

    # -- leaves
    def constant(self, const: Constant) -> str:
        if const.value.ndim == 0:
            return format_scalar(const.value, const.type.dtype)
        if const not in self.constants:
            self.constants[const] = len(self.constants)
        # Same shape style as TensorType's text, so the comment reads like the types.
        shape = ", ".join(map(str, const.type.shape))
        return f"meta[Constant][{self.constants[const]}] /* ({shape}), {const.type.dtype} */"

    # -- bodies
    def body_lines(self, body: Expr, indent: str) -> list[str]:
        """The binding lines of ``body`` and its result line, at ``indent``."""
        names: dict[Expr, str] = {}
        functions: dict[Function, str] = {}
        lines: list[str] = []
        counter = 0

        def ref(node: Expr) -> str:
            if node in names:
                return names[node]
            if isinstance(node, Var):
                return f"%{node.name}"
            if isinstance(node, Constant):
                return self.constant(node)
            raise InternalError("operands are printed before their users")

        for node in post_order(body):
            if isinstance(node, Var | Constant):
                continue
            if isinstance(node, Call):
                inner = [node.op] if isinstance(node.op, Function) else []
                inner += [f for _, f in subfunctions(node.attrs)]
                for func in inner:
                    if func not in functions:
                        fn_name = f"%{counter}"
                        counter += 1
                        functions[func] = fn_name
                        lines.extend(self.function_lines(func, f"{fn_name} = fn", indent))
                head = functions[node.op] if isinstance(node.op, Function) else node.op.name
                operands = [ref(a) for a in node.args] + format_attrs(node.attrs, functions)
                text = f"{head}({', '.join(operands)})"
            elif isinstance(node, Tuple):
                inner = ", ".join(ref(f) for f in node.fields)
                text = f"({inner},)" if len(node.fields) == 1 else f"({inner})"
            else:
                assert isinstance(node, TupleGetItem)
                text = f"{ref(node.tuple_value)}.{node.index}"
            comment = f" /* {node.name} */" if node.name else ""
            name = f"%{counter}"
            counter += 1
            names[node] = name
            lines.append(f"{indent}{name} = {text}{comment} : {node.type}")
        lines.append(f"{indent}{ref(body)}")
        return lines

    def function_lines(self, func: Function, head: str, indent: str) -> list[str]:
        """``head(params) -> type {`` + body + ``}`` at ``indent``."""
        params = ", ".join(f"%{p.name}: {p.type}" for p in func.params)
        extra = {k: v for k, v in func.attrs.items() if k != "name"}
        named = f" {func.attrs['name']}" if "name" in func.attrs and head.endswith("fn") else ""
        attrs = ""
        if extra:
            attrs = " /* " + ", ".join(f"{k}={v!r}" for k, v in sorted(extra.items())) + " */"
        lines = [f"{indent}{head}{named}({params}) -> {func.ret_type}{attrs} {{"]
        lines.extend(self.body_lines(func.body, indent + INDENT))
        lines.append(f"{indent}}}")
        return lines


def print_expr(expr: Expr) -> str:
    """Text of ``expr``: one ``%k = ...`` line per call/tuple node, then the result.

    >>> print(print_expr(call("nn.relu", x)))  # doctest: +SKIP
    %0 = nn.relu(%x) : Tensor[(1, 8), float32]
    %0
    """
    return "\n".join(Printer().body_lines(expr, ""))


def print_function(func: Function, name: str = "main") -> str:
    """Text of ``func`` as ``def @name(...) -> type { ... }``."""
    return "\n".join(Printer().function_lines(func, f"def @{name}", ""))


def print_module(mod: Module) -> str:
    """Text of every function of ``mod``, ``main`` first (``str(mod)`` prints this)."""
    printer = Printer()
    order = sorted(mod.functions, key=lambda n: (n != "main", n))
    blocks = ["\n".join(printer.function_lines(mod.functions[n], f"def @{n}", "")) for n in order]
    return "\n\n".join(blocks)
