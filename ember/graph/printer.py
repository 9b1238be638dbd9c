"""Readable text for graph IR, one line per node in execution order.

::

    def @main(%data: Tensor[(1, 3, 8, 8), float32], %w: Tensor[(4, 3, 3, 3), float32]) -> ... {
      %0 = nn.conv2d(%data, %w, padding=(1, 1, 1, 1)) /* conv1 */ : Tensor[(1, 4, 8, 8), float32]
      %1 = nn.relu(%0) : Tensor[(1, 4, 8, 8), float32]
      %1
    }

Attributes equal to their default are left out. Scalar constants print inline
(``0.5f``); other constants print as ``meta[Constant][k]`` with their shape and
dtype in a comment (the same constant object gets the same ``k``). A call of a
fused (primitive) function prints the function once, as a local ``fn``, before
its first use. Printing never recurses over the graph, so very deep graphs print.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ember.errors import InternalError
from ember.graph.ir import Call, Constant, Expr, Function, Module, Tuple, TupleGetItem, Var
from ember.graph.visitor import post_order

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


def format_attrs(attrs: Any) -> list[str]:
    """``name=value`` for each attribute of a dataclass that differs from its default."""
    if attrs is None or not dataclasses.is_dataclass(attrs):
        return [] if attrs is None else [repr(attrs)]
    items = []
    for f in dataclasses.fields(attrs):
        value = getattr(attrs, f.name)
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
                if isinstance(node.op, Function):
                    if node.op not in functions:
                        fn_name = f"%{counter}"
                        counter += 1
                        functions[node.op] = fn_name
                        lines.extend(self.function_lines(node.op, f"{fn_name} = fn", indent))
                    head = functions[node.op]
                else:
                    head = node.op.name
                operands = [ref(a) for a in node.args] + format_attrs(node.attrs)
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
