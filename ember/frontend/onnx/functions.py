"""ONNX functions: model-local functions, and ops whose schema defines them by a function.

Exporters (IR version 8 and later) write a module as a ``FunctionProto`` in
``ModelProto.functions`` and call it like an op, ``<domain>.<FunctionName>``; and many
ONNX ops (``NegativeLogLikelihoodLoss``, ``AffineGrid``, ...) are defined in their
schema by a function body, some built for the node's attributes and input types
("context-dependent"). ember expands both at import: the body's nodes are converted in
place of the call (see :mod:`ember.frontend.onnx.scope`). A schema function is used
only when ember has no converter for the op (at that version); a native converter is
always preferred.

This module finds the bodies and resolves what a body node reads from its call:

- :func:`local_functions` and :func:`schema_function` give a :class:`FunctionBody`
  (the proto, the opsets its nodes use, the attribute defaults);
- :func:`resolve_node` gives a body node with its attribute references
  (``ref_attr_name``) replaced by the caller's attribute, or dropped when the caller
  gives none and there is no default (as the ONNX spec says), and with inputs that
  name a formal input the caller left out made empty.

Why not ``onnx.inliner``: it inlines model-local functions well, but fails on some
schema functions (``AffineGrid``: "Type unknown for float_zero_1d") and names the
inlined nodes after internal counters; expanding while converting keeps one code path
for both kinds and names every node after the call it came from
(``<call node>/<body node>``).

    body = schema_function("AffineGrid", "", 20)
    [n.op_type for n in body.proto.node][:3]      # ['Constant', 'Constant', 'Constant']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")


def is_default_domain(domain: str) -> bool:
    return domain in DEFAULT_DOMAINS


def node_name(node: onnx.NodeProto, index: int) -> str:
    """The node's own name, or ``<OpType>_<index>`` when it has none."""
    return node.name or f"{node.op_type}_{index}"


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs in ``node``'s attributes (If branches, Loop and Scan bodies)."""
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def all_nodes(nodes: Sequence[onnx.NodeProto]) -> Iterator[tuple[onnx.NodeProto, str]]:
    """Every node of ``nodes`` and of their subgraphs, recursively, with a name."""
    for index, node in enumerate(nodes):
        yield node, node_name(node, index)
        for graph in subgraphs(node):
            yield from all_nodes(graph.node)


def op_version(op_type: str, opset: int, domain: str = "") -> int | None:
    """The schema version (``since_version``) of ``op_type`` at ``opset``; None if undefined."""
    if opset < 1:
        return None
    try:
        return int(
            onnx.defs.get_schema(
                op_type, opset, "" if is_default_domain(domain) else domain
            ).since_version
        )
    except onnx.defs.SchemaError:
        return None


def opset_map(entries: Sequence[onnx.OperatorSetIdProto]) -> dict[str, int]:
    """``{domain: version}`` of opset imports; the default domain is spelled ``""``."""
    return {("" if is_default_domain(e.domain) else e.domain): int(e.version) for e in entries}


# ----------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class FunctionBody:
    """A function to expand: its proto, the opsets of its nodes, attribute defaults."""

    proto: onnx.FunctionProto
    opsets: Mapping[str, int]
    defaults: Mapping[str, onnx.AttributeProto] = field(default_factory=dict)
    origin: str = ""  # for messages: "model-local function m.Block", "ONNX function AffineGrid-20"


def local_functions(model: onnx.ModelProto) -> dict[tuple[str, str], FunctionBody]:
    """The model-local functions by ``(domain, name)``; their nodes use the function's own
    opset imports, falling back to the model's for domains the function does not list."""
    model_opsets = opset_map(model.opset_import)
    found = {}
    for proto in model.functions:
        opsets = {**model_opsets, **opset_map(proto.opset_import)}
        defaults = {a.name: a for a in proto.attribute_proto}  # IR 9: defaults of attributes
        origin = f"model-local function {proto.domain}.{proto.name}"
        found[(proto.domain, proto.name)] = FunctionBody(proto, opsets, defaults, origin)
    return found


def _schema(op_type: str, domain: str, opset: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, opset, "" if is_default_domain(domain) else domain)
    except onnx.defs.SchemaError:
        return None


def _pick(versions: Sequence[int], opset: int) -> int | None:
    """The newest function version at or below the model's opset."""
    usable = [v for v in versions if v <= opset]
    return max(usable) if usable else None


def has_schema_function(op_type: str, domain: str, opset: int) -> bool:
    """Whether the schema of ``op_type`` at ``opset`` defines it by a function body."""
    schema = _schema(op_type, domain, opset)
    if schema is None:
        return False
    return bool(
        (schema.has_function and _pick(schema.function_opset_versions, opset) is not None)
        or (
            schema.has_context_dependent_function
            and _pick(schema.context_dependent_function_opset_versions, opset) is not None
        )
    )


def schema_function(
    op_type: str,
    domain: str,
    opset: int,
    node: onnx.NodeProto | None = None,
    input_types: Sequence[onnx.TypeProto] | None = None,
) -> FunctionBody | None:
    """The body the schema of ``op_type`` gives for ``opset``, or None.

    A context-dependent body is built for ``node`` (its attributes) and ``input_types``;
    without them only a plain function body is returned.
    """
    schema = _schema(op_type, domain, opset)
    if schema is None:
        return None
    defaults = {
        name: attr.default_value
        for name, attr in schema.attributes.items()
        if attr.default_value is not None and attr.default_value.type
    }
    version = _pick(schema.function_opset_versions, opset) if schema.has_function else None
    if version is not None:
        data = schema.get_function_with_opset_version(version)
    else:
        version = (
            _pick(schema.context_dependent_function_opset_versions, opset)
            if schema.has_context_dependent_function
            else None
        )
        if version is None or node is None or input_types is None:
            return None
        with_defaults = onnx.NodeProto()
        with_defaults.CopyFrom(node)
        given = {a.name for a in node.attribute}
        with_defaults.attribute.extend(a for n, a in defaults.items() if n not in given)
        data = schema.get_context_dependent_function_with_opset_version(
            version, with_defaults.SerializeToString(), [t.SerializeToString() for t in input_types]
        )
    proto = onnx.FunctionProto.FromString(data)
    opsets = {("" if is_default_domain(domain) else domain): opset, **opset_map(proto.opset_import)}
    return FunctionBody(proto, opsets, defaults, f"ONNX function {op_type}-{version}")


# ----------------------------------------------------------------------------- binding


@dataclass(frozen=True)
class Bindings:
    """What the nodes of one expanded body read from its call.

    ``attributes``: the caller's attributes (and the defaults) by name, for
    ``ref_attr_name``; ``absent``: formal inputs the caller left out.
    """

    attributes: Mapping[str, onnx.AttributeProto] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.attributes and not self.absent


NO_BINDINGS = Bindings()


def bind_call(call: onnx.NodeProto, body: FunctionBody) -> Bindings:
    """The bindings of ``call``'s attributes and omitted inputs for ``body``."""
    attributes = dict(body.defaults)
    attributes.update({a.name: a for a in call.attribute})
    given = len(call.input)
    absent = {
        formal for i, formal in enumerate(body.proto.input) if i >= given or not call.input[i]
    }
    return Bindings(attributes, frozenset(absent))


def _needs_resolving(node: onnx.NodeProto, bindings: Bindings) -> bool:
    if bindings.absent and any(name in bindings.absent for name in node.input):
        return True
    return any(a.ref_attr_name for a in node.attribute)


def resolve_node(node: onnx.NodeProto, bindings: Bindings) -> onnx.NodeProto:
    """``node`` as the call makes it: attribute references resolved, absent inputs empty.

    The same proto when there is nothing to resolve (every node of a main graph).
    """
    if bindings.empty or not _needs_resolving(node, bindings):
        return node
    resolved = onnx.NodeProto()
    resolved.CopyFrom(node)
    del resolved.attribute[:]
    for attr in node.attribute:
        if not attr.ref_attr_name:
            resolved.attribute.append(attr)
            continue
        source = bindings.attributes.get(attr.ref_attr_name)
        if source is None:
            continue  # the caller gives no such attribute: the body node goes without it
        copy = onnx.AttributeProto()
        copy.CopyFrom(source)
        copy.name = attr.name
        resolved.attribute.append(copy)
    for i, name in enumerate(node.input):
        if name in bindings.absent:
            resolved.input[i] = ""
    return resolved


__all__ = [
    "DEFAULT_DOMAINS",
    "NO_BINDINGS",
    "Bindings",
    "FunctionBody",
    "all_nodes",
    "bind_call",
    "has_schema_function",
    "is_default_domain",
    "local_functions",
    "node_name",
    "op_version",
    "opset_map",
    "resolve_node",
    "schema_function",
    "subgraphs",
]
