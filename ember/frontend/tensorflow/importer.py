"""Import TensorFlow models: frozen GraphDefs (``.pb``, TF 1.x and 2.x) and TF 2.x SavedModels.

``from_tensorflow`` reads the protobuf with ember's own decoder (TensorFlow is
not needed) and converts the part of the graph that computes the outputs::

    mod, params = from_tensorflow("frozen.pb", shape={"x": (1, 224, 224, 3)})

Supported graph forms: a *frozen* GraphDef, where every variable is a ``Const``
node (``convert_variables_to_constants_v2`` in TF 2.x,
``tf.compat.v1.graph_util.convert_variables_to_constants`` in TF 1.x), and a
TF 2.x SavedModel directory (``tf.saved_model.save``, Keras ``model.export``),
whose variables are read from its checkpoint
(:mod:`ember.frontend.tensorflow.savedmodel`). A GraphDef with variables and
no checkpoint raises a :class:`FrontendError` that shows how to freeze it.
Functions called through ``(Stateful)PartitionedCall`` are inlined.

Layout: as for TFLite, NHWC inputs and outputs are kept and ember's NCHW convs
are used inside (see :mod:`ember.frontend.nhwc`); ops with
``data_format="NCHW"`` are imported as they are. Constant sub-graphs
(``Shape -> StridedSlice -> Pack -> Reshape``, batch-norm arithmetic on weights)
are folded at import time.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.nhwc import NHWCBuilder, Value, resolve_input_shape
from ember.frontend.tensorflow.context import CONVERTERS, FREEZE_HINT, TFNode, custom_converter
from ember.frontend.tensorflow.proto import (
    DTYPES,
    DecodeError,
    FunctionDef,
    NodeDef,
    function_name,
    read_graph_def,
)
from ember.frontend.tensorflow.savedmodel import read_saved_model
from ember.graph.ir import Module

FUNCTION_ARG = "_FunctionArg"  # the op of the nodes standing for a called function's arguments
CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall"}
# Output argument names of multi-output ops, to map "node:arg:index" refs inside functions.
OUTPUT_ARGS = {
    op: ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"]
    for op in ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
}
VARIABLE_OPS = {"VariableV2", "Variable", "AssignVariableOp"}
# Nodes that never compute an output value (skipped when guessing the outputs).
NON_OUTPUT_OPS = {"NoOp", "Const", "Placeholder", "Assert", "SaveV2", "RestoreV2"}


def from_tensorflow(
    model: str | os.PathLike | bytes,
    shape: dict[str, Any] | None = None,
    outputs: list[str] | None = None,
    *,
    signature: str = "serving_default",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert a frozen TensorFlow GraphDef (a path or its bytes) to ``(Module, params)``.

    ``shape`` maps inputs to static shapes (an unknown leading batch dimension
    defaults to 1); an input is named by its Placeholder node (``"input"``) or by
    its tensor (``"input:0"``, as tf2onnx and TensorFlow's tools write it).
    ``outputs`` names the outputs the same ways: a node (``"out"``, its first
    output) or a tensor (``"out:0"``, ``"out:1"`` for its second output); by
    default, every node whose result nothing else uses.

    ``model`` may also be a TF 2.x SavedModel directory: ``signature`` picks the
    function, its input keys name the inputs (the placeholders' own names,
    ``"serving_default_x:0"``, work too), its output keys or tensors name the
    outputs, and the variables are read from the checkpoint in ``variables/``.

    >>> mod, params = from_tensorflow("frozen.pb", outputs=["Identity"])  # doctest: +SKIP
    """
    if isinstance(model, bytes | bytearray | memoryview):
        buf = bytes(model)
    else:
        path = Path(model)
        if path.is_dir():
            if not (path / "saved_model.pb").exists():
                raise FrontendError(
                    f"{str(path)!r} is a directory without saved_model.pb",
                    hint="pass a SavedModel directory or a frozen GraphDef .pb file",
                )
            return _from_saved_model(path, shape, outputs, signature)
        try:
            buf = path.read_bytes()
        except OSError as err:
            raise FrontendError(
                f"cannot read TensorFlow model {str(path)!r}: {err.strerror}"
            ) from None
    if buf.lstrip()[:5] in (b"node ", b"node{"):
        raise FrontendError(
            "this is a text-format GraphDef (.pbtxt); ember reads the binary form",
            hint="convert it: tf.io.write_graph(graph_def, '.', 'frozen.pb', as_text=False)",
        )
    try:
        nodes, library = read_graph_def(buf)
    except (DecodeError, UnicodeDecodeError, struct.error) as err:
        raise FrontendError(
            f"not a TensorFlow GraphDef: the file does not decode as one ({err})",
            hint="pass a frozen GraphDef .pb (binary protobuf)",
        ) from None
    if not nodes or any(not n.name or not n.op for n in nodes):
        raise FrontendError(
            "not a TensorFlow GraphDef: it holds no nodes with a name and an op",
            hint="pass a frozen GraphDef .pb (binary protobuf)",
        )
    return TensorFlowConverter(nodes, shape, outputs, library=library).convert()


def _from_saved_model(
    path: Path, shape: dict[str, Any] | None, outputs: list[str] | None, signature: str
) -> tuple[Module, dict[str, np.ndarray]]:
    model = read_saved_model(path, signature)
    # name each input by its signature key ("x"), not its placeholder ("serving_default_x")
    rename = {placeholder: key for key, placeholder in model.inputs.items()}
    taken = {n.name for n in model.nodes}
    rename = {old: new for old, new in rename.items() if new == old or new not in taken}
    for node in model.nodes:
        node.name = rename.get(node.name, node.name)
        node.inputs = [_renamed(ref, rename) for ref in node.inputs]
    # the placeholders' own names still name the inputs: "serving_default_x(:0)" -> "x"
    aliases = {}
    for old, new in rename.items():
        aliases[old] = aliases[f"{old}:0"] = new
    refs = [model.output_keys.get(ref, ref) for ref in outputs or model.outputs]
    converter = TensorFlowConverter(
        model.nodes,
        shape,
        [_renamed(ref, rename) for ref in refs],
        library=model.library,
        variables=model.variables,
        input_aliases=aliases,
        output_keys=model.output_keys,
    )
    return converter.convert()


def _renamed(ref: str, rename: dict[str, str]) -> str:
    control = "^" if ref.startswith("^") else ""
    name, sep, index = ref.lstrip("^").partition(":")
    return control + rename.get(name, name) + sep + index


def supported_ops() -> list[str]:
    """TensorFlow op types that :func:`from_tensorflow` converts, sorted.

    >>> "Conv2D" in supported_ops()
    True
    """
    return CONVERTERS.ops()


def parse_ref(ref: str) -> tuple[str, int]:
    """'node:1' -> ('node', 1); 'node' -> ('node', 0)."""
    name, _, index = ref.partition(":")
    if index.isdigit():
        return name, int(index)
    return ref, 0


class TensorFlowConverter:
    """Converts the nodes that the outputs need; see :func:`from_tensorflow`."""

    def __init__(
        self,
        nodes: list[NodeDef],
        shape: dict[str, Any] | None,
        outputs: list[str] | None,
        *,
        library: dict[str, FunctionDef] | None = None,
        builder: NHWCBuilder | None = None,
        bound: dict[str, Value] | None = None,
        variables: dict[str, np.ndarray] | None = None,
        input_aliases: dict[str, str] | None = None,
        output_keys: dict[str, str] | None = None,
    ) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.order = [n.name for n in nodes]
        self.shape = dict(shape or {})
        self.library = library or {}
        self.output_refs = list(outputs) if outputs else self._default_outputs()
        self.builder = builder or NHWCBuilder("TensorFlow")
        self.bound = bound or {}  # values of a called function's arguments
        self.variables = variables or {}  # VarHandleOp node -> value (SavedModel checkpoint)
        self.values: dict[str, list[Value]] = {}
        self.input_aliases = input_aliases or {}  # other names of inputs -> Placeholder node
        self.output_keys = output_keys or {}  # a SavedModel signature's output keys -> tensors

    def _default_outputs(self) -> list[str]:
        used = {parse_ref(i.lstrip("^"))[0] for n in self.nodes.values() for i in n.inputs}
        outs = [n for n in self.order if n not in used and self.nodes[n].op not in NON_OUTPUT_OPS]
        if not outs:
            raise FrontendError(
                "the TensorFlow graph has no output node", hint="pass outputs=[...]"
            )
        return outs

    def _topological(self) -> list[NodeDef]:
        """The nodes the outputs depend on, each after its inputs (data edges only)."""
        order: list[NodeDef] = []
        state: dict[str, int] = {}  # 1: visiting, 2: done
        for ref in self.output_refs:
            name = parse_ref(ref)[0]
            if name not in self.nodes:
                raise FrontendError(
                    f"output {ref!r} is not a node of the TensorFlow graph, nor a tensor of one",
                    hint=self._output_hint(),
                )
            stack = [(name, False)]
            while stack:
                current, expanded = stack.pop()
                if expanded:
                    state[current] = 2
                    order.append(self.nodes[current])
                    continue
                if state.get(current) == 2:
                    continue
                if state.get(current) == 1:
                    raise FrontendError(f"the TensorFlow graph has a cycle through {current!r}")
                state[current] = 1
                stack.append((current, True))
                for ref_in in self.nodes[current].inputs:
                    if ref_in.startswith("^"):
                        continue
                    dep = parse_ref(ref_in)[0]
                    if dep not in self.nodes:
                        raise FrontendError(
                            f"TensorFlow node {current!r} reads {ref_in!r}, "
                            "which is not in the graph"
                        )
                    if state.get(dep) != 2:
                        stack.append((dep, False))
        return order

    def _output_hint(self) -> str:
        """How outputs are named, with this graph's default outputs as examples."""
        examples = self._default_outputs()[:3]
        forms = ", ".join(f"{n!r} or {n + ':0'!r}" for n in examples)
        keys = ""
        if self.output_keys:
            keys = "; the signature's output keys: " + ", ".join(map(repr, self.output_keys))
        return (
            f"name a node (its first output) or a tensor ('node:1' is a node's second "
            f"output), e.g. {forms}{keys}"
        )

    def _shapes_by_node(self, placeholders: list[str]) -> dict[str, Any]:
        """``shape=`` keyed by Placeholder node, from node or tensor names (or aliases)."""
        names = {alias: node for alias, node in self.input_aliases.items() if node in placeholders}
        for node in placeholders:
            names[node] = names[f"{node}:0"] = node
        result: dict[str, Any] = {}
        unknown = []
        for key, dims in self.shape.items():
            node = names.get(key)
            if node is None:
                unknown.append(key)
            elif node in result:
                raise FrontendError(f"shape= gives TensorFlow input {node!r} twice")
            else:
                result[node] = dims
        if unknown:
            inputs = ", ".join(f"{n!r} (tensor {n + ':0'!r})" for n in placeholders) or "none"
            raise FrontendError(
                f"shape= names {', '.join(map(repr, sorted(unknown)))}, which the TensorFlow "
                "model has no input called",
                hint=f"the model's inputs are: {inputs}; name each by its node or its tensor",
            )
        return result

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        outs = self.convert_values()
        names = [parse_ref(ref)[0] if ref.endswith(":0") else ref for ref in self.output_refs]
        return self.builder.finish_values(outs, names)

    def _unsupported(self, nodes: list[NodeDef], seen: set[str]) -> list[tuple[str, str]]:
        """(op, node) pairs ember cannot convert, looking into called functions too."""
        found = []
        for node in nodes:
            if node.op not in CONVERTERS and custom_converter(node.op) is None:
                found.append((node.op, node.name))
            fname = function_name(node.attrs.get("f"))
            if node.op in CALL_OPS and fname in self.library and fname not in seen:
                seen.add(fname)
                found += self._unsupported(self.library[fname].nodes, seen)
        return found

    def convert_values(self) -> list[Value]:
        """Convert the nodes the outputs need; the output values, in order."""
        order = self._topological()
        unsupported = self._unsupported(order, set())
        for op, name in unsupported:
            self.builder.unsupported(op, name)
        extra = ""
        if any(op in VARIABLE_OPS for op, _ in unsupported):
            extra = " (the graph holds variables, so it is not frozen; " + FREEZE_HINT + ")"
        self.builder.raise_unsupported(extra)
        placeholders = [n.name for n in order if n.op == "Placeholder"]
        self.shape = self._shapes_by_node(placeholders)
        for node_def in order:
            node = TFNode(self, node_def)
            convert = CONVERTERS.get(node_def.op) or custom_converter(node_def.op)
            assert convert is not None  # checked by _unsupported
            with self.builder.converting(node):
                self.values[node_def.name] = convert(node)
        return [self.value(ref) for ref in self.output_refs]

    def call_function(self, node: NodeDef, args: list[Value]) -> list[Value]:
        """Inline the library function that a (Stateful)PartitionedCall node calls."""
        fname = function_name(node.attrs.get("f"))
        if fname not in self.library:
            raise FrontendError(
                f"TensorFlow {node.op} node {node.name!r} calls function {fname!r}, which is "
                "not in the graph's library"
            )
        function = self.library[fname]
        if len(args) != len(function.input_args):
            raise FrontendError(
                f"TensorFlow {node.op} node {node.name!r} passes {len(args)} argument(s) to "
                f"{fname!r}, which takes {len(function.input_args)}"
            )
        prefix = node.name + "/"
        nodes = [NodeDef(prefix + arg, FUNCTION_ARG) for arg in function.input_args]
        for body in function.nodes:
            inputs = [_function_ref(prefix, ref, self._body_ops(function)) for ref in body.inputs]
            nodes.append(NodeDef(prefix + body.name, body.op, [i for i in inputs if i], body.attrs))
        outputs = [
            _function_ref(prefix, function.ret[arg], self._body_ops(function))
            for arg in function.output_args
        ]
        bound = {prefix + arg: value for arg, value in zip(function.input_args, args)}
        inner = TensorFlowConverter(
            nodes,
            None,
            outputs,
            library=self.library,
            builder=self.builder,
            bound=bound,
            variables=self.variables,
        )
        return inner.convert_values()

    @staticmethod
    def _body_ops(function: FunctionDef) -> dict[str, str]:
        return {n.name: n.op for n in function.nodes}

    # ------------------------------------------------------------------ for converters

    def value(self, ref: str) -> Value:
        name, index = parse_ref(ref)
        outputs = self.values[name]
        if index >= len(outputs):
            node = self.nodes[name]
            raise FrontendError(
                f"TensorFlow node {name!r} ({node.op}): output {index} is used, but ember "
                f"converts only its first {len(outputs)} output(s)"
            )
        return outputs[index]

    def placeholder(self, node: TFNode) -> Value:
        """The model input a Placeholder node stands for."""
        dtype = DTYPES.get(node.attrs.get("dtype", 1))
        if dtype is None:
            raise FrontendError(f"TensorFlow Placeholder {node.name!r} has an unsupported dtype")
        file_shape = node.attrs.get("shape", None)
        if "shape" not in node.attrs and node.name not in self.shape:
            file_shape = None
        shape = resolve_input_shape("TensorFlow", node.name, file_shape, self.shape)
        return Value(expr=self.builder.add_input(node.name, shape, dtype))


def _function_ref(prefix: str, ref: str, ops: dict[str, str]) -> str:
    """A ref inside a function body ("arg", "node:out_arg:i", "^ctrl") as a graph ref."""
    if ref.startswith("^"):
        return ""
    parts = ref.split(":")
    if len(parts) == 3:
        node, arg, index = parts[0], parts[1], int(parts[2])
        args = OUTPUT_ARGS.get(ops.get(node, ""), [])
        offset = args.index(arg) if arg in args else 0
        return f"{prefix}{node}:{offset + index}"
    return prefix + ref
