"""The kit every frontend is built on: a converter registry, a graph builder, node contexts.

Each framework package (``onnx/``, ``pytorch/``, ``tensorflow/``, ``tflite/``,
``mxnet/``) fills one :class:`ConverterRegistry` with op converters when it is
imported, and converts a model through one :class:`GraphBuilder`, which

- gives every model input a :class:`Var` (``add_input``) and every weight a
  :class:`Var` whose value goes to ``params`` (``add_weight``), with unique names;
- builds calls of ember ops by name, named after the framework node (``call``),
  turning an ember ``ShapeError``/``AttrError`` into a :class:`FrontendError`
  that names the node;
- wraps the conversion of one node (``converting``) so any error inside names it;
- collects unsupported ops while the model is scanned (``unsupported``) so
  ``raise_unsupported`` reports *all* of them at once as one
  :class:`UnsupportedOpError`;
- finishes the model (``finish``): ``main``'s params are the inputs, then the
  weights the outputs actually use, in creation order::

    CONVERTERS = ConverterRegistry("MXNet")

    @CONVERTERS.register("relu")
    def _relu(node: MXNetNode) -> Expr:     # MXNetNode: MXNet's NodeContext
        return node.call("nn.relu", node.input(0))

    builder = GraphBuilder("MXNet")
    x = builder.add_input("data", (1, 3, 8, 8), "float32")
    w = builder.add_weight("conv_weight", np.ones((4, 3, 3, 3), "float32"))
    node = NodeContext(builder, "conv0", "Convolution")
    with builder.converting(node):
        y = node.call("nn.conv2d", x, w, padding=(1, 1))
    mod, params = builder.finish([y])

A framework subclasses :class:`NodeContext` for what its converters read
(ONNX attributes and opset versions, MXNet's text attributes, ATen schema
arguments, TensorFlow's tensor names); the registry, the builder and the
helpers below (:func:`normalize_axis`, :func:`free_vars`, :func:`fold_call`,
:func:`evaluate`) exist once, here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ember.errors import (
    CustomOpError,
    EmberError,
    FrontendError,
    InternalError,
    ShapeError,
    UnsupportedOpError,
)
from ember.graph.interpreter import run_function
from ember.graph.ir import (
    DTYPES,
    Call,
    Constant,
    Expr,
    Function,
    Module,
    TensorType,
    Tuple,
    Var,
    const,
    post_order,
)
from ember.ops import _shape
from ember.ops import call as call_op

ConverterFn = TypeVar("ConverterFn", bound=Callable[..., Any])

# Exceptions a converter raises when an attribute or argument has a form it does
# not expect (a string where it reads ints, a missing key): the model's fault or
# a gap in the converter, reported as a FrontendError naming the node.
_MALFORMED = (TypeError, ValueError, IndexError, KeyError)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Converter(Generic[ConverterFn]):
    """How to convert one framework op: ``fn``, for op versions ``>= min_version``.

    Only frameworks whose op schemas are versioned (ONNX) set ``min_version``.
    Calling the converter calls ``fn``.
    """

    op: str
    fn: ConverterFn
    min_version: int = 1

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


class ConverterRegistry(Generic[ConverterFn]):
    """The converters of one framework, by op name; filled when its package is imported.

    >>> CONVERTERS = ConverterRegistry("ONNX")
    >>> @CONVERTERS.register("Relu", min_version=6)
    ... def _relu(node):
    ...     return node.call("nn.relu", node.input(0))
    >>> "Relu" in CONVERTERS, CONVERTERS["Relu"].min_version, CONVERTERS.ops()
    (True, 6, ['Relu'])
    """

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self._converters: dict[str, Converter[ConverterFn]] = {}

    def register(self, *ops: str, min_version: int = 1) -> Callable[[ConverterFn], ConverterFn]:
        """A decorator registering its function as the converter of ``ops``."""

        def register(fn: ConverterFn) -> ConverterFn:
            for op in ops:
                if op in self._converters:
                    # two converters for one op: the later would silently win
                    raise InternalError(f"{self.framework} op {op!r} has two converters")
                self._converters[op] = Converter(op, fn, min_version)
            return fn

        return register

    def get(self, op: str) -> Converter[ConverterFn] | None:
        return self._converters.get(op)

    def __getitem__(self, op: str) -> Converter[ConverterFn]:
        return self._converters[op]

    def __contains__(self, op: object) -> bool:
        return op in self._converters

    def __iter__(self) -> Iterator[str]:
        return iter(self._converters)

    def __len__(self) -> int:
        return len(self._converters)

    def ops(self) -> list[str]:
        """The op names with a converter, sorted (each frontend's ``supported_ops()``)."""
        return sorted(self._converters)


# ----------------------------------------------------------------------------- node context


class NodeContext:
    """One framework node being converted: its name and op; errors and calls named after it.

    Frameworks subclass it to give converters the node's inputs and attributes,
    and override ``__str__`` where their users know nodes by another description.

    >>> node = NodeContext(GraphBuilder("MXNet"), "conv0", "Convolution")
    >>> str(node.error("kernel (3,) is not 2-D"))
    "MXNet node 'conv0' (Convolution): kernel (3,) is not 2-D"
    """

    def __init__(self, builder: GraphBuilder, name: str, op: str) -> None:
        self.builder = builder
        self.name = name
        self.op = op

    def __str__(self) -> str:
        return f"{self.builder.framework} node {self.name!r} ({self.op})"

    def error(self, what: str, hint: str | None = None) -> FrontendError:
        """An error saying what is wrong with this node (raise it)."""
        return FrontendError(f"{self}: {what}", hint=hint)

    def call(self, op: str, *args: Expr, suffix: str = "", **attrs: Any) -> Expr:
        """The ember op ``op`` on ``args``, named after this node (plus ``suffix``)."""
        return self.builder.call(op, *args, name=self.name + suffix, node=self, **attrs)

    def axis(self, axis: int, rank: int, what: str = "axis") -> int:
        """``axis`` of a rank-``rank`` tensor in ``[0, rank)``; an error naming this node else."""
        return normalize_axis(int(axis), rank, self, what)


# ----------------------------------------------------------------------------- graph builder


class GraphBuilder:
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
        self._converting: NodeContext | None = None  # the node `converting` is inside

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
        array = np.asarray(value, order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
        var = Var(self.unique_name(name), TensorType(array.shape, str(array.dtype)))
        self.weights.append(var)
        self.params[var.name] = array
        return var

    # ------------------------------------------------------------------ calls

    def call(
        self, op: str, *args: Expr, name: str = "", node: NodeContext | None = None, **attrs: Any
    ) -> Expr:
        """``ember.ops.call`` with the node's name; ember errors become FrontendErrors naming it.

        The error names ``node``, else the node being converted, else a node called ``name``.
        """
        try:
            return call_op(op, *args, name=name, **attrs)
        except (FrontendError, CustomOpError):  # a custom op's error names it and its library
            raise
        except EmberError as err:
            where = node or self._converting or f"{self.framework} node {name!r}"
            raise FrontendError(
                f"{where}: cannot build ember op {op}: {err.message}", hint=err.hint
            ) from None

    @contextlib.contextmanager
    def converting(self, node: NodeContext) -> Iterator[None]:
        """Converting ``node``: an error inside becomes a FrontendError that names it.

        A FrontendError that already names the node, and the subclasses that
        carry data for their catchers (UnsupportedOpError, ...), pass unchanged;
        any other exception is a bug in ember, an InternalError naming the node.
        """
        outer, self._converting = self._converting, node
        try:
            yield
        except FrontendError as err:
            if type(err) is not FrontendError or repr(node.name) in err.message:
                raise
            raise FrontendError(f"{node}: {err.message}", hint=err.hint) from None
        except CustomOpError:
            raise  # a user's op, converter or rule broke its contract: the message says whose
        except EmberError as err:
            raise FrontendError(f"{node}: {err.message}", hint=err.hint) from None
        except _MALFORMED as err:
            raise FrontendError(
                f"{node} could not be converted: {type(err).__name__}: {err}",
                hint="check the node's attributes; if the model is valid, please report this "
                "as an ember bug with the model",
            ) from None
        except InternalError:
            raise
        except Exception as err:  # a bug in a converter or an op reference
            raise InternalError(f"converting {node} failed: {type(err).__name__}: {err}") from err
        finally:
            self._converting = outer  # a TensorFlow function call converts its body inside

    # ------------------------------------------------------------------ unsupported ops

    def unsupported(self, op: str, node_name: str) -> None:
        """Record that node ``node_name`` uses ``op``, which this frontend cannot convert."""
        self._unsupported.append((op, node_name))

    def raise_unsupported(self, extra: str = "") -> None:
        """Raise one :class:`UnsupportedOpError` listing every recorded op, if any."""
        if self._unsupported:
            raise UnsupportedOpError(self.framework, self._unsupported, extra=extra)

    # ------------------------------------------------------------------ result

    def finish(
        self, outputs: Sequence[Expr], attrs: Mapping[str, Any] | None = None
    ) -> tuple[Module, dict[str, np.ndarray]]:
        """The module (one output, or a Tuple of several) and the params its weights use.

        ``attrs`` become ``main``'s attributes (ONNX records its output names there).
        """
        if not outputs:
            raise FrontendError(f"the {self.framework} model has no outputs")
        body = outputs[0] if len(outputs) == 1 else Tuple(tuple(outputs))
        used = set(free_vars(body))
        weights = [w for w in self.weights if w in used]
        func = Function((*self.inputs, *weights), body, attrs=dict(attrs or {}))
        return Module.from_function(func), {w.name: self.params[w.name] for w in weights}


# ----------------------------------------------------------------------------- helpers


def normalize_axis(axis: int, rank: int, node: NodeContext | str, what: str = "axis") -> int:
    """``axis`` in ``[0, rank)``; a FrontendError naming ``node`` if it is out of range.

    ``node`` is the node's context, or its description where there is none.

    >>> normalize_axis(-1, 4, "MXNet node 'softmax0' (softmax)")
    3
    """
    try:
        return _shape.normalize_axis(axis, rank, what)
    except ShapeError as err:
        raise FrontendError(
            f"{node}: {err.message}", hint="check the node's axis attribute against its input"
        ) from None


def free_vars(expr: Expr) -> list[Var]:
    """The Vars ``expr`` depends on (inputs and weights), in execution order.

    >>> [v.name for v in free_vars(call("add", x, w))]  # doctest: +SKIP
    ['x', 'w']
    """
    return [e for e in post_order(expr) if isinstance(e, Var)]


def evaluate(expr: Expr, env: Mapping[Var, np.ndarray]) -> Any:
    """The value of ``expr`` (an array, or a tuple) with its free Vars bound by ``env``.

    Runs the graph's own numpy reference executor, so import-time evaluation and
    :func:`ember.graph.interpret` agree.
    """
    variables = free_vars(expr)
    return run_function(Function(tuple(variables), expr), [env[v] for v in variables])


def fold_call(node: Call) -> Expr:
    """A call whose arguments are all Constants, evaluated: a Constant (or a Tuple of them).

    >>> fold_call(ember.ops.call("add", const(1.0), const(2.0))).value  # doctest: +SKIP
    array(3., dtype=float32)
    """
    result = evaluate(node, {})
    if isinstance(result, tuple):
        return Tuple(tuple(Constant(np.asarray(r)) for r in result))
    return Constant(np.asarray(result))


def scalar(value: float | int | bool, like: Expr, name: str = "") -> Constant:
    """A scalar constant of ``like``'s dtype (for ``x + 1.0`` style ops)."""
    dtype = like.type.dtype if isinstance(like.type, TensorType) else "float32"
    return const(np.asarray(value, dtype=dtype), name=name)


def shape_of(expr: Expr) -> tuple[int, ...]:
    """The static shape of a tensor-typed expression."""
    if not isinstance(expr.type, TensorType):
        raise FrontendError(f"expected a tensor, got a value of type {expr.type}")
    return expr.type.shape


def matmul_along(node: NodeContext, x: Expr, axis: int, matrix: np.ndarray) -> Expr:
    """``out[..., j, ...] = sum_i x[..., i, ...] * matrix[i, j]`` along ``axis``: the axis
    moved last, one ``nn.matmul`` by the constant (n, n) ``matrix``, moved back. With a
    triangle of ones this is a cumulative sum (exact for integers)."""
    rank = len(shape_of(x))
    order = tuple(a for a in range(rank) if a != axis) + (axis,)
    moved = node.call("transpose", x, suffix="/last", axes=order) if axis != rank - 1 else x
    matrix_const = const(np.asarray(matrix), name=f"{node.name}/matrix")
    product = node.call("nn.matmul", moved, matrix_const, suffix="/matmul")
    if axis == rank - 1:
        return product
    return node.call("transpose", product, axes=tuple(int(i) for i in np.argsort(order)))


def top_k_indices(node: NodeContext, x: Expr, axis: int, k: int, largest: bool) -> Expr:
    """The int64 positions of the ``k`` (>= 1) largest (or smallest) entries of ``x``
    along ``axis``, in order, the first position first among equal values: k rounds of
    argmax (argmin), each masking the position it picked. The graph grows with k: meant
    for short axes and small k (classification heads, routing gates).

    The keys are float64 (exact for float32 and integers up to 2**53) with real
    infinities moved to the finite ends, so the +-inf that masks a picked position
    never ties with data."""
    shape = shape_of(x)
    key = x if x.type.dtype == "float64" else node.call("cast", x, suffix="/key", dtype="float64")
    extreme = np.finfo(np.float64).min if largest else np.finfo(np.float64).max
    key = node.call("maximum" if largest else "minimum", key, const(np.array(extreme)))
    fill = const(np.array(-np.inf if largest else np.inf))
    positions = np.arange(shape[axis], dtype=np.int64)
    iota = const(positions.reshape([-1 if a == axis else 1 for a in range(len(shape))]))
    picks = []
    for round_ in range(k):
        op = "argmax" if largest else "argmin"
        picks.append(node.call(op, key, suffix=f"/pick{round_}", axis=axis, keepdims=True))
        if round_ + 1 < k:
            taken = node.call("equal", iota, picks[-1], suffix=f"/taken{round_}")
            key = node.call("where", taken, fill, key, suffix=f"/masked{round_}")
    return picks[0] if k == 1 else node.call("concatenate", *picks, suffix="/indices", axis=axis)


def int_list(value: Any) -> list[int]:
    """The values of an int array (any shape), a sequence or a scalar as a flat list.

    >>> int_list(np.array([[1, 2]])), int_list(3), int_list(None)
    ([1, 2], [3], [])
    """
    return [] if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def input_dtype(dtype: str | Mapping[str, str], name: str, default: str = "float32") -> str:
    """The dtype that a frontend's ``dtype=`` argument gives input ``name``, checked.

    ``dtype`` is one dtype for every input, or a dict by input name (others: ``default``).

    >>> input_dtype({"ids": "int64"}, "ids"), input_dtype("float16", "x")
    ('int64', 'float16')
    """
    chosen = dtype.get(name, default) if isinstance(dtype, Mapping) else dtype
    if chosen not in DTYPES:
        raise FrontendError(
            f"dtype {chosen!r} given for input {name!r} is not an ember dtype",
            hint=f"use one of {', '.join(DTYPES)}",
        )
    return chosen


__all__ = [
    "Converter",
    "ConverterRegistry",
    "GraphBuilder",
    "NodeContext",
    "evaluate",
    "fold_call",
    "free_vars",
    "input_dtype",
    "int_list",
    "normalize_axis",
    "scalar",
    "shape_of",
]
