"""Helpers shared by frontends: a graph-building context and attribute parsing.

Any frontend (MXNet and PyTorch use it; TensorFlow/TFLite may) builds its graph
through an :class:`ImportContext`. It

- gives every model input a :class:`Var` (``add_input``) and every weight a
  :class:`Var` whose value goes to ``params`` (``add_weight``), with unique names;
- builds calls named after the framework node (``call``), turning an ember
  ``ShapeError``/``AttrError`` into a :class:`FrontendError` that names the
  framework, the node and its op;
- collects unsupported ops while the model is scanned (``unsupported``) so
  ``raise_unsupported`` reports *all* of them at once as one
  :class:`UnsupportedOpError`;
- finishes the model (``finish``): ``main``'s params are the inputs, then the
  weights the outputs actually use, in creation order::

    ctx = ImportContext("MXNet")
    x = ctx.add_input("data", (1, 3, 8, 8), "float32")
    w = ctx.add_weight("conv_weight", np.ones((4, 3, 3, 3), "float32"))
    with ctx.node("conv0", "Convolution"):
        y = ctx.call("nn.conv2d", x, w, name="conv0", padding=(1, 1))
    mod, params = ctx.finish([y])
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ember.errors import EmberError, FrontendError, UnsupportedOpError
from ember.graph.ir import Constant, Expr, Function, Module, TensorType, Tuple, Var, const
from ember.graph.visitor import post_order
from ember.ops import call


class ImportContext:
    """Collects inputs, weights, calls and unsupported ops while one model is converted."""

    def __init__(self, framework: str) -> None:
        # the name in messages; UnsupportedOpError's hint points at
        # ember.frontend.<framework.lower()>.supported_ops(), so frontends define that
        self.framework = framework
        self.inputs: list[Var] = []
        self.weights: list[Var] = []
        self.params: dict[str, np.ndarray] = {}
        self._names: set[str] = set()
        self._unsupported: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ leaves

    def unique_name(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``... if taken (inputs and weights share names)."""
        base, index = name or "tensor", 1
        while name in self._names or not name:
            name, index = f"{base}_{index}", index + 1
        self._names.add(name)
        return name

    def add_input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> Var:
        """A model input (a parameter of ``main`` that the user feeds)."""
        if name in self._names:
            raise FrontendError(f"{self.framework} model: input name {name!r} is used twice")
        var = Var(self.unique_name(name), TensorType(tuple(shape), dtype))
        self.inputs.append(var)
        return var

    def add_weight(self, name: str, value: Any) -> Var:
        """A weight: a parameter of ``main`` after the inputs, its value in ``params``."""
        array = np.ascontiguousarray(value)
        var = Var(self.unique_name(name), TensorType(array.shape, str(array.dtype)))
        self.weights.append(var)
        self.params[var.name] = array
        return var

    # ------------------------------------------------------------------ calls

    def call(self, op: str, *args: Expr, name: str = "", **attrs: Any) -> Expr:
        """``ember.ops.call`` with the node name; errors are FrontendErrors naming the node."""
        try:
            return call(op, *args, name=name, **attrs)
        except FrontendError:
            raise
        except EmberError as err:
            raise FrontendError(
                f"{self.framework} node {name!r}: cannot build ember op {op}: {err.message}",
                hint=err.hint,
            ) from None

    @contextlib.contextmanager
    def node(self, name: str, op: str) -> Iterator[None]:
        """Converting framework node ``name`` (op ``op``): ember errors inside name it."""
        try:
            yield
        except FrontendError as err:
            if name and repr(name) in err.message:
                raise
            raise FrontendError(
                f"{self.framework} node {name!r} ({op}): {err.message}", hint=err.hint
            ) from None
        except EmberError as err:
            raise FrontendError(
                f"{self.framework} node {name!r} ({op}): {err.message}", hint=err.hint
            ) from None
        except (TypeError, ValueError, IndexError, KeyError) as err:
            # an attribute or argument of a form the converter does not expect
            raise FrontendError(
                f"{self.framework} node {name!r} ({op}) could not be converted: "
                f"{type(err).__name__}: {err}",
                hint="check the node's attributes; if the model is valid, please report this "
                "as an ember bug with the model",
            ) from None

    # ------------------------------------------------------------------ unsupported ops

    def unsupported(self, op: str, node_name: str) -> None:
        """Record that node ``node_name`` uses ``op``, which this frontend cannot convert."""
        self._unsupported.append((op, node_name))

    def raise_unsupported(self) -> None:
        """Raise one :class:`UnsupportedOpError` listing every recorded op, if any."""
        if self._unsupported:
            raise UnsupportedOpError(self.framework, self._unsupported)

    # ------------------------------------------------------------------ result

    def finish(self, outputs: Sequence[Expr]) -> tuple[Module, dict[str, np.ndarray]]:
        """The module (one output, or a Tuple of several) and the params its weights use."""
        if not outputs:
            raise FrontendError(f"the {self.framework} model has no outputs")
        body = outputs[0] if len(outputs) == 1 else Tuple(tuple(outputs))
        used = {id(e) for e in post_order(body) if isinstance(e, Var)}
        weights = [w for w in self.weights if id(w) in used]
        func = Function(tuple(self.inputs) + tuple(weights), body)
        return Module.from_function(func), {w.name: self.params[w.name] for w in weights}


# ----------------------------------------------------------------------------- small helpers


def scalar(value: float | int, like: Expr, name: str = "") -> Constant:
    """A scalar constant of ``like``'s dtype (for ``x + 1.0`` style ops)."""
    dtype = like.type.dtype if isinstance(like.type, TensorType) else "float32"
    return const(np.asarray(value, dtype=dtype), name=name)


def shape_of(expr: Expr) -> tuple[int, ...]:
    """The static shape of a tensor-typed expression."""
    if not isinstance(expr.type, TensorType):
        raise FrontendError(f"expected a tensor, got a value of type {expr.type}")
    return expr.type.shape


def normalize_axis(axis: int, rank: int, what: str) -> int:
    """``axis`` in ``[0, rank)``; FrontendError naming ``what`` if it is out of range."""
    if not -rank <= axis < rank:
        raise FrontendError(f"{what}: axis {axis} is out of range for a rank-{rank} tensor")
    return axis % rank


def parse_attr(text: Any) -> Any:
    """An attribute written as text (MXNet's ``"(3, 3)"``, ``"True"``, ``"relu"``) as Python.

    >>> parse_attr("(3, 3)"), parse_attr("True"), parse_attr("relu"), parse_attr("None")
    ((3, 3), True, 'relu', None)
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return stripped


__all__ = [
    "ImportContext",
    "normalize_axis",
    "parse_attr",
    "scalar",
    "shape_of",
]
