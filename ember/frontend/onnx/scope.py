"""Scopes: where ONNX value names resolve while the main graph, a subgraph or a body converts.

ONNX subgraphs (If branches, Loop and Scan bodies) read values of the graphs around
them by name, and function bodies read their call's inputs by formal name. Each is
converted in a :class:`Scope` whose own ``values`` sit over its parent's:

- the root is the :class:`~ember.frontend.onnx.importer.OnnxImporter` (graph inputs,
  initializers as weights);
- an :class:`InlineScope` converts nodes straight into the enclosing graph: the body of
  a function call, one iteration of an unrolled loop, the branch an If with a constant
  condition takes. A name not bound locally is the parent's value itself;
- a :class:`BodyScope` converts a subgraph into a closed ember Function (a ``cf.if``
  branch, a ``cf.loop`` body). A name it reads from outside becomes a parameter of the
  function (a *capture*), and the control-flow call passes the outer value as an
  argument; constants are copied in instead, so shape arithmetic in a body still folds.

Converters see a scope as ``node.importer``: ``value`` and ``const_value`` work in every
scope. A value needed at import time (a Reshape's shape) that depends on something only
known at run time is a clear error: a model input (:class:`NotStaticError`, naming the
inputs, so a caller can freeze them) or a loop's iteration / carried value
(:class:`UnsupportedFeatureError`, naming the loop).

:func:`convert_node` is the one place a node is converted: a model-local function or a
schema function ember has no converter for is expanded in an InlineScope (nodes named
``<call>/<body node>``), anything else goes to its converter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ember.errors import FrontendError, UnsupportedOpError
from ember.frontend.common import GraphBuilder, evaluate, free_vars
from ember.frontend.onnx.context import (
    CONVERTERS,
    ONNX_DTYPES,
    NotStaticError,
    OnnxNode,
    UnsupportedFeatureError,
    custom_converter,
    ember_dtype,
)
from ember.frontend.onnx.functions import (
    NO_BINDINGS,
    Bindings,
    FunctionBody,
    all_nodes,
    bind_call,
    has_schema_function,
    is_default_domain,
    node_name,
    op_version,
    resolve_node,
    schema_function,
)
from ember.graph.ir import Constant, Expr, TensorType, Tuple, TupleGetItem, TupleType, Var

if TYPE_CHECKING:
    from ember.frontend.onnx.importer import OnnxImporter

_ONNX_ELEM = {dtype: code for code, dtype in ONNX_DTYPES.items() if dtype is not None}


class Scope:
    """Names -> expressions for one graph or body being converted, over a parent scope."""

    def __init__(
        self,
        parent: Scope | None,
        opsets: Mapping[str, int],
        prefix: str = "",
        bindings: Bindings = NO_BINDINGS,
    ) -> None:
        self.parent = parent
        self.opsets = dict(opsets)
        self.prefix = prefix  # node names inside: "<prefix><node name>"
        self.bindings = bindings  # of the innermost function body around this scope
        self.values: dict[str, Expr] = {}

    # -- what converters use
    @property
    def root(self) -> OnnxImporter:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope  # type: ignore[return-value]

    @property
    def builder(self) -> GraphBuilder:
        return self.root.builder

    @property
    def opset(self) -> int:
        return self.opsets.get("", 0)

    def lookup(self, name: str) -> Expr | None:
        """The expression of ``name`` here or outside; None if nothing defines it."""
        if name in self.values:
            return self.values[name]
        return self.parent.lookup(name) if self.parent is not None else None

    def value(self, name: str, node: OnnxNode | None = None) -> Expr:
        """The expression bound to ONNX value ``name``; FrontendError naming ``node`` else."""
        expr = self.lookup(name)
        if expr is None:
            where = f"{node}" if node is not None else "a graph output"
            raise FrontendError(
                f"{where} uses the value {name!r}, which no input, initializer or earlier node "
                "produces",
                hint="the model's nodes must be in topological order (run onnx.checker)",
            )
        return expr

    def var_value(self, var: Var) -> np.ndarray:
        """The import-time value of a free Var of an expression of this scope.

        NotStaticError (naming the model input) or UnsupportedFeatureError (naming the
        loop whose iteration or carried value it is) when it is only known at run time.
        """
        assert self.parent is not None
        return self.parent.var_value(var)

    def const_value(self, name: str, node: OnnxNode, what: str) -> np.ndarray:
        """The value of ``name``, computed at import time (see :meth:`var_value`)."""
        return self.const_of(self.value(name, node), node, what, name)

    def const_of(self, expr: Expr, node: OnnxNode, what: str, name: str) -> np.ndarray:
        if isinstance(expr, Constant):
            return expr.value
        env: dict[Var, np.ndarray] = {}
        inputs: list[str] = []
        for var in free_vars(expr):
            try:
                env[var] = self.var_value(var)
            except NotStaticError as err:  # collect every input, so all freeze at once
                inputs += [n for n in err.input_names if n not in inputs]
        if inputs:
            raise NotStaticError(
                f"{node}: {what} ({name!r}) must be known at import time, but it is computed "
                f"from the model input(s) {', '.join(map(repr, inputs))}",
                input_names=inputs,
                hint="ember compiles static shapes: make this value a constant or initializer "
                "in the model (e.g. export with fixed input sizes)",
            )
        return np.asarray(evaluate(expr, env))

    def static_value(self, name: str, node: OnnxNode) -> np.ndarray | None:
        """The import-time value of ``name``, or None when it is only known at run time."""
        try:
            return self.const_value(name, node, "value")
        except (NotStaticError, UnsupportedFeatureError):
            return None


class InlineScope(Scope):
    """Converts nodes straight into the enclosing graph (function calls, unrolled loops)."""


class CaptureSet:
    """The outer values the bodies of one control-flow node read, in first-use order.

    Shared by the branches of an If, so both take the same captured arguments.
    """

    def __init__(self) -> None:
        self.outer: list[Expr] = []
        self.names: list[str] = []

    def index(self, outer: Expr, name: str) -> int:
        for i, e in enumerate(self.outer):
            if e is outer:
                return i
        self.outer.append(outer)
        self.names.append(name)
        return len(self.outer) - 1


class BodyScope(Scope):
    """Converts a subgraph into a closed Function: outer values become parameters.

    ``inputs`` are the body's own parameters (iteration, condition, carried values),
    each with what it is, for messages (``"the iteration number of Loop node 'l'"``).
    """

    def __init__(
        self,
        parent: Scope,
        captures: CaptureSet,
        owner: str,
        prefix: str,
        inputs: Sequence[tuple[str, Var, str]] = (),
    ) -> None:
        super().__init__(parent, parent.opsets, prefix, parent.bindings)
        self.captures = captures
        self.owner = owner  # "Loop node 'loop1'"
        self.captured: dict[int, Var] = {}  # capture index -> this body's parameter
        self.own: dict[Var, str] = {}
        self.taken: set[str] = set()
        for name, var, what in inputs:
            if name:  # a Scan's iteration and condition have no ONNX name
                self.values[name] = var
            self.own[var] = what
            self.taken.add(var.name)

    def fresh_var(self, name: str, t: TensorType) -> Var:
        """A parameter named ``name`` (made unique within this body)."""
        base, k = name or "v", 1
        while name in self.taken or not name:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return Var(name, t)

    def capture(self, outer: Expr, name: str) -> Var:
        """This body's parameter for the outer value ``outer`` (made on first use)."""
        if not isinstance(outer.type, TensorType):
            raise UnsupportedFeatureError(
                f"{self.owner}: its body reads the sequence {name!r} from the enclosing graph; "
                "ember passes only tensors into a loop body or a branch that runs at run time",
                hint="make the loop's trip count (or the If's condition) static so it unrolls",
            )
        index = self.captures.index(outer, name)
        if index not in self.captured:
            self.captured[index] = self.fresh_var(name, outer.type)
        return self.captured[index]

    def lookup(self, name: str) -> Expr | None:
        if name in self.values:
            return self.values[name]
        assert self.parent is not None
        outer = self.parent.lookup(name)
        if outer is None or isinstance(outer, Constant):
            return outer  # constants are copied into the body, so they still fold
        var = self.capture(outer, name)
        self.values[name] = var
        return var

    def var_value(self, var: Var) -> np.ndarray:
        for index, mine in self.captured.items():
            if mine is var:
                outer = self.captures.outer[index]
                assert self.parent is not None
                return self.parent.const_of(
                    outer, _Described(self.owner), "a captured value", self.captures.names[index]
                )
        what = self.own.get(var, f"the value %{var.name}")
        raise UnsupportedFeatureError(
            f"{self.owner}: a value its body needs at import time (a shape, axes, ...) "
            f"depends on {what}, which is only known while the loop runs",
            hint="ember compiles static shapes; a loop with a static trip count of up to "
            "the unroll budget is unrolled at import, where such values are known",
        )

    def captured_params(self) -> list[Var]:
        """This body's parameters for every captured value (fresh ones for those it does
        not read itself: an If's branches take the same arguments)."""
        params = []
        for index, (outer, name) in enumerate(zip(self.captures.outer, self.captures.names)):
            if index not in self.captured:
                self.captured[index] = self.fresh_var(name, outer.type)  # type: ignore[arg-type]
            params.append(self.captured[index])
        return params


class _Described:
    """Stands for a node in messages where only a description is known."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.name = text

    def __str__(self) -> str:
        return self.text


# ----------------------------------------------------------------------------- conversion


def convert_graph(scope: Scope, graph: onnx.GraphProto) -> list[Expr]:
    """Convert ``graph``'s initializers and nodes in ``scope``; its outputs' expressions."""
    for init in graph.initializer:
        ember_dtype(init.data_type, f"initializer {init.name!r} of subgraph {graph.name!r}")
        scope.values[init.name] = Constant(numpy_helper.to_array(init), init.name)
    for index, proto in enumerate(graph.node):
        convert_node(scope, proto, scope.prefix + node_name(proto, index))
    return [scope.value(out.name) for out in graph.output]


def _type_proto(expr: Expr) -> onnx.TypeProto | None:
    """The ONNX type of a value: a tensor, or a sequence (a tuple of tensors of one dtype,
    with their shape if they share it); None for what ONNX cannot type (an empty tuple)."""
    t = expr.type
    if isinstance(t, TensorType):
        return helper.make_tensor_type_proto(_ONNX_ELEM[t.dtype], t.shape)
    if isinstance(t, TupleType) and t.fields:
        fields = t.fields
        if all(isinstance(f, TensorType) and f.dtype == fields[0].dtype for f in fields):
            shapes = {f.shape for f in fields}  # type: ignore[union-attr]
            shape = fields[0].shape if len(shapes) == 1 else None  # type: ignore[union-attr]
            elem = helper.make_tensor_type_proto(_ONNX_ELEM[fields[0].dtype], shape)  # type: ignore[union-attr]
            return helper.make_sequence_type_proto(elem)
    return None


def find_function(scope: Scope, proto: onnx.NodeProto) -> FunctionBody | None:
    """The body to expand for ``proto``: a model-local function, or the schema's function
    body when ember has no converter for the op at this version; else None."""
    local = scope.root.functions.get((proto.domain, proto.op_type))
    if local is not None:
        return local
    domain = "" if is_default_domain(proto.domain) else proto.domain
    opset = scope.opsets.get(domain, 0)
    if domain == "":
        conv = CONVERTERS.get(proto.op_type)
        version = op_version(proto.op_type, opset)
        if conv is not None and version is not None and version >= conv.min_version:
            return None
    if not has_schema_function(proto.op_type, domain, opset):
        return None
    types = []
    for index, name in enumerate(proto.input):
        type_proto = _type_proto(scope.value(name)) if name else onnx.TypeProto()
        if type_proto is None:
            # onnx's C++ body builders dereference the input types they expect: never
            # hand them an untyped value (an empty sequence would crash the process)
            raise UnsupportedFeatureError(
                f"ONNX {proto.op_type} node {proto.name!r}: input {index} ({name!r}) is an "
                f"empty sequence or a tuple of mixed types; the function body of "
                f"{proto.op_type} is built for its input types, which this one has none of"
            )
        types.append(type_proto)
    return schema_function(proto.op_type, domain, opset, proto, types)


def _check_body(body: FunctionBody, call: str) -> None:
    """Report every op of ``body`` ember cannot convert, at once (as the model scan does)."""
    missing = []
    for node, name in all_nodes(body.proto.node):
        if not is_default_domain(node.domain) or custom_converter(node.domain, node.op_type):
            continue  # other domains (nested functions, checked when they expand); users' ops
        conv = CONVERTERS.get(node.op_type)
        version = op_version(node.op_type, body.opsets.get("", 0))
        if (conv is None or version is None or version < conv.min_version) and not (
            has_schema_function(node.op_type, "", body.opsets.get("", 0))
        ):
            missing.append((node.op_type, f"{call}/{name}"))
    if missing:
        raise UnsupportedOpError("ONNX", missing, extra=f" (in the body of {body.origin})")


def expand_function(
    scope: Scope, proto: onnx.NodeProto, name: str, body: FunctionBody
) -> list[Expr | None]:
    """Convert ``body`` in place of the call ``proto``; the call's output expressions."""
    # a body's nodes use its own opset imports; domains it does not list, the caller's
    body = dataclasses.replace(body, opsets={**scope.opsets, **body.opsets})
    _check_body(body, name)
    inner = InlineScope(scope, body.opsets, f"{name}/", bind_call(proto, body))
    for formal, actual in zip(body.proto.input, proto.input):
        if actual:
            inner.values[formal] = scope.value(actual)
    for index, node in enumerate(body.proto.node):
        convert_node(inner, node, inner.prefix + node_name(node, index))
    wanted = [
        i < len(proto.output) and bool(proto.output[i]) for i in range(len(body.proto.output))
    ]
    # an output the call does not ask for may be left undefined by the body (optional outputs)
    return [inner.value(out) if want else None for out, want in zip(body.proto.output, wanted)]


def convert_node(scope: Scope, proto: onnx.NodeProto, name: str) -> None:
    """Convert one node in ``scope`` and bind its outputs there."""
    proto = resolve_node(proto, scope.bindings)
    custom = custom_converter(proto.domain, proto.op_type)
    body = find_function(scope, proto) if custom is None else None
    node: OnnxNode | None = None
    if custom is not None:  # a user's op (ember.custom): its version is its domain's opset
        domain = "" if is_default_domain(proto.domain) else proto.domain
        node = OnnxNode(scope, proto, name, scope.opsets.get(domain, 1), scope.opset)  # type: ignore[arg-type]
        with scope.builder.converting(node):
            result = custom(node)
        outputs = [result] if isinstance(result, Expr) else list(result)
    elif body is not None:
        with scope.builder.converting(_Described(f"ONNX node {name!r} ({body.origin})")):
            outputs: list[Expr | None] = expand_function(scope, proto, name, body)
    else:
        domain = "" if is_default_domain(proto.domain) else proto.domain
        version = op_version(proto.op_type, scope.opsets.get(domain, 0))
        conv = CONVERTERS.get(proto.op_type) if domain == "" else None
        if conv is None or version is None:
            op = proto.op_type if domain == "" else f"{proto.domain}.{proto.op_type}"
            raise UnsupportedOpError("ONNX", [(op, name)], extra=f" at opset {scope.opset}")
        node = OnnxNode(scope, proto, name, version, scope.opset)  # type: ignore[arg-type]
        with scope.builder.converting(node):
            result = conv(node)
        outputs = [result] if isinstance(result, Expr) else list(result)
    for i, out_name in enumerate(proto.output):
        if not out_name:
            continue
        if i >= len(outputs) or outputs[i] is None:
            what = f"{node}" if node is not None else f"node {name!r}"
            raise UnsupportedFeatureError(
                f"{what} (opset {scope.opset}): output {i} ({out_name!r}) is not supported; "
                f"ember computes only its first {sum(o is not None for o in outputs)} output(s)"
            )
        scope.values[out_name] = outputs[i]  # type: ignore[assignment]


class EmptyOptional(Tuple):
    """An ONNX optional without a value, at import (see :mod:`~ember.frontend.onnx.ops_optional`).

    Only converters see it: ``OptionalHasElement`` folds it to False; a graph output or a
    run-time branch that would carry it is an error. A present optional is its value.

    >>> EmptyOptional((), "none").type
    TupleType(fields=())
    """

    __slots__ = ()


def item_exprs(expr: Expr) -> list[Expr]:
    """The fields of a tuple-typed expression (an ONNX sequence), as expressions."""
    if isinstance(expr, Tuple):
        return list(expr.fields)
    if isinstance(expr.type, TupleType):
        return [TupleGetItem(expr, i) for i in range(len(expr.type.fields))]
    raise UnsupportedFeatureError(f"expected a sequence, got a {expr.type}")


def scalar_of(value: Any) -> Any:
    return np.asarray(value).reshape(-1)[0]


__all__ = [
    "BodyScope",
    "CaptureSet",
    "EmptyOptional",
    "InlineScope",
    "Scope",
    "convert_graph",
    "convert_node",
    "expand_function",
    "find_function",
    "item_exprs",
    "scalar_of",
]
