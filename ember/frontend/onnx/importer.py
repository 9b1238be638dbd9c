"""Import ONNX models into ember's graph IR.

    mod, params = from_onnx("resnet18.onnx", shape={"data": (1, 3, 224, 224)})

Steps: load and check the file; scan every node (subgraphs too) and report all
unsupported ops at once; give each graph input a static type (the model's
declaration, completed or overridden by ``shape=``); turn initializers into
weights; convert node by node with the converters of ``ops_*.py`` (registered
in :data:`~ember.frontend.onnx.context.CONVERTERS` when ``ember.frontend.onnx``
is imported) through the shared :class:`~ember.frontend.common.GraphBuilder`.
Anything whose inputs are all constants is evaluated at import time, so the
graph that comes out has static shapes everywhere (Shape/Size/Range/
ConstantOfShape chains fold away and Reshape gets a static ``newshape``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, evaluate, free_vars, input_dtype
from ember.frontend.onnx.context import (
    CONVERTERS,
    NotStaticError,
    OnnxNode,
    UnsupportedFeatureError,
    custom_converter,
    ember_dtype,
)
from ember.graph.ir import Constant, Expr, Module, Var

_DEFAULT_DOMAINS = ("", "ai.onnx")


def supported_ops() -> list[str]:
    """ONNX op types (default domain) that :func:`from_onnx` converts, sorted.

    >>> "Conv" in supported_ops()
    True
    """
    return CONVERTERS.ops()


def from_onnx(
    model_or_path: Any,
    shape: Mapping[str, Sequence[int]] | None = None,
    dtype: str | Mapping[str, str] = "float32",
    *,
    freeze_params: bool = False,
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert an ONNX model to an ember :class:`Module` and its weights.

    ``model_or_path`` is a ``ModelProto``, a path (external data next to the
    file is loaded too) or the serialized bytes. ``shape`` maps input names to
    static shapes; it fills in dynamic dimensions and overrides declared ones.
    ``dtype`` (one name, or a dict per input) is used for inputs whose element
    type the model leaves undeclared. Initializers become weights: Vars after the
    real inputs in ``main``'s params, with their values in the returned dict;
    with ``freeze_params=True`` they become constants instead.

        mod, params = from_onnx("model.onnx", shape={"data": (1, 3, 224, 224)})
        out = ember.graph.interpret(mod, params, {"data": x})[0]
    """
    model = load_model(model_or_path)
    return OnnxImporter(model, shape or {}, dtype, freeze_params).build()


# ----------------------------------------------------------------------------- loading


def load_model(model_or_path: Any) -> onnx.ModelProto:
    """A checked ``ModelProto`` from a proto, a path or bytes; FrontendError if it is not ONNX."""
    if isinstance(model_or_path, onnx.ModelProto):
        model, what = model_or_path, "the given ModelProto"
    elif isinstance(model_or_path, bytes | bytearray | memoryview):
        what = "the given model bytes"
        try:
            model = onnx.ModelProto.FromString(bytes(model_or_path))
        except (DecodeError, ValueError, RuntimeError) as err:
            raise FrontendError(f"{what} is not a valid ONNX model: {err}") from None
    elif isinstance(model_or_path, str | Path):
        path = Path(model_or_path)
        what = f"{str(path)!r}"
        if not path.exists():
            raise FrontendError(f"model file {what} does not exist")
        if path.is_dir():
            raise FrontendError(
                f"model path {what} is a folder, not an ONNX file",
                hint="pass the .onnx file itself",
            )
        try:
            model = onnx.load(str(path))
        except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as err:
            raise FrontendError(f"{what} is not a valid ONNX model: {err}") from None
        except (FileNotFoundError, onnx.checker.ValidationError) as err:
            # onnx.load reads external data files named in the model; one is missing or bad.
            raise FrontendError(
                f"{what}: an external data file it refers to could not be read: {err}",
                hint="keep the weights file (e.g. model.onnx.data) next to the model file",
            ) from None
        except OSError as err:
            raise FrontendError(f"{what} could not be read: {err}") from None
    else:
        raise FrontendError(
            f"from_onnx expects a ModelProto, a path or bytes, got {type(model_or_path).__name__}"
        )
    _check_model(model, what)
    return model


def _check_model(model: onnx.ModelProto, what: str) -> None:
    if not model.HasField("graph") or not model.opset_import:
        reason = "it has no graph" if not model.HasField("graph") else "it declares no opset"
        raise FrontendError(f"{what} is not a valid ONNX model: {reason}")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        reason = str(err).strip().splitlines()[0]
        raise FrontendError(f"{what} is not a valid ONNX model: {reason}") from None
    except ValueError:
        pass  # protos over 2 GB cannot be checked in memory; the import still checks each node


def model_opset(model: onnx.ModelProto) -> int:
    """The model's opset of the default ONNX domain (0 if it imports only other domains)."""
    opset = 0
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            opset = int(entry.version)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise FrontendError(
            f"the ONNX model uses opset {opset}, newer than the installed onnx package knows "
            f"(up to {newest})",
            hint="upgrade the onnx package, or export the model with an older opset",
        )
    return opset


# ----------------------------------------------------------------------------- scan


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _all_nodes(graph: onnx.GraphProto) -> Iterator[tuple[onnx.NodeProto, str]]:
    """Every node of ``graph`` and of its subgraphs (If/Loop/Scan bodies), with a name."""
    for index, node in enumerate(graph.node):
        yield node, _node_name(node, index)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub)


def op_version(op_type: str, opset: int) -> int | None:
    """The schema version (``since_version``) of ``op_type`` at ``opset``; None if undefined."""
    if opset < 1:
        return None
    try:
        return int(onnx.defs.get_schema(op_type, opset, "").since_version)
    except onnx.defs.SchemaError:
        return None


def unsupported_nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(op description, node name) for every node ember cannot convert, in model order."""
    opset = model_opset(model)
    found = []
    for node, name in _all_nodes(model.graph):
        if custom_converter(node.domain, node.op_type) is not None:
            continue  # a converter the user registered (ember.custom.register_converter)
        if node.domain not in _DEFAULT_DOMAINS:
            found.append((f"{node.domain}.{node.op_type}", name))
            continue
        conv = CONVERTERS.get(node.op_type)
        if conv is None:
            found.append((node.op_type, name))
            continue
        version = op_version(node.op_type, opset)
        if version is None:
            found.append((f"{node.op_type} (not defined at opset {opset})", name))
        elif version < conv.min_version:
            found.append(
                (f"{node.op_type}-{version} (ember supports version {conv.min_version}+)", name)
            )
    return found


# ----------------------------------------------------------------------------- build


class OnnxImporter:
    """Converts one ONNX graph: the name -> expression environment over a GraphBuilder."""

    def __init__(
        self,
        model: onnx.ModelProto,
        shape: Mapping[str, Sequence[int]],
        dtype: str | Mapping[str, str],
        freeze_params: bool,
    ) -> None:
        self.model = model
        self.graph = model.graph
        self.opset = model_opset(model)
        self.shape = dict(shape)
        self.dtype = dtype
        self.freeze_params = freeze_params
        self.builder = GraphBuilder("ONNX")
        self.values: dict[str, Expr] = {}
        self.init_arrays: dict[str, np.ndarray] = {}
        self.init_vars: dict[str, Var] = {}  # initializers used so far, as weights

    # -- environment
    def value(self, name: str, node: OnnxNode | None = None) -> Expr:
        """The expression bound to ONNX value ``name`` (initializers become weights on use)."""
        if name in self.values:
            return self.values[name]
        if name in self.init_arrays:
            array = self.init_arrays[name]
            if self.freeze_params:
                expr: Expr = Constant(array, name)
            else:
                expr = self.init_vars[name] = self.builder.add_weight(name, array)
            self.values[name] = expr
            return expr
        where = f"{node}" if node is not None else "a graph output"
        raise FrontendError(
            f"{where} uses the value {name!r}, which no input, initializer or earlier node "
            "produces",
            hint="the model's nodes must be in topological order (run onnx.checker)",
        )

    def const_value(self, name: str, node: OnnxNode, what: str) -> np.ndarray:
        """The value of ``name``, computed at import time; NotStaticError if it needs inputs."""
        if name not in self.values and name in self.init_arrays:
            return self.init_arrays[name]
        expr = self.value(name, node)
        if isinstance(expr, Constant):
            return expr.value
        env = {var: self.init_arrays[n] for n, var in self.init_vars.items()}
        inputs = [v.name for v in free_vars(expr) if v not in env]
        if inputs:
            raise NotStaticError(
                f"{node}: {what} ({name!r}) must be known at import time, but it is computed "
                f"from the model input(s) {', '.join(map(repr, inputs))}",
                input_names=inputs,
                hint="ember compiles static shapes: make this value a constant or initializer "
                "in the model (e.g. export with fixed input sizes)",
            )
        return np.asarray(evaluate(expr, env))

    # -- inputs
    def _input_dtype(self, name: str, elem_type: int) -> str:
        declared = ember_dtype(elem_type, f"graph input {name!r}") if elem_type else None
        chosen = input_dtype(self.dtype, name)  # checked; the default for undeclared inputs
        given_for_it = isinstance(self.dtype, Mapping) and name in self.dtype
        if declared is None:
            return chosen
        if given_for_it and chosen != declared:
            raise FrontendError(
                f"input {name!r} is declared {declared} in the model, but dtype {chosen!r} "
                "was given for it",
                hint=f"drop the dtype for {name!r} or give {declared!r}",
            )
        return declared

    def _input_shape(self, value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
        name = value_info.name
        tensor_type = value_info.type.tensor_type
        declared: list[int | str | None] | None = None
        if tensor_type.HasField("shape"):
            declared = []
            for dim in tensor_type.shape.dim:
                if dim.HasField("dim_value"):
                    declared.append(int(dim.dim_value))
                else:
                    declared.append(dim.dim_param or None)
        if name in self.shape:
            given = self.shape[name]
            try:
                dims = tuple(int(d) for d in given)
            except (TypeError, ValueError):
                raise FrontendError(
                    f"shape given for input {name!r} is {given!r}, not a sequence of ints"
                ) from None
            if any(d < 0 for d in dims):
                raise FrontendError(f"shape given for input {name!r} has a negative dim: {dims}")
            if declared is not None and len(declared) != len(dims):
                raise FrontendError(
                    f"input {name!r} has rank {len(declared)} (declared shape "
                    f"{_format_dims(declared)}), but the shape given for it, {list(dims)}, "
                    f"has rank {len(dims)}",
                    hint=f"give {len(declared)} dims for {name!r}",
                )
            return dims
        if declared is None:
            raise FrontendError(
                f"input {name!r} has no declared shape in the model",
                hint=f"pass it: from_onnx(..., shape={{{name!r}: (1, 3, 224, 224)}}) "
                f"or --input '{{\"{name}\": [1, 3, 224, 224]}}'",
            )
        dynamic = [i for i, d in enumerate(declared) if not isinstance(d, int)]
        if dynamic:
            first = dynamic[0]
            label = f" ({declared[first]!r})" if declared[first] else ""
            example = tuple(d if isinstance(d, int) else 1 for d in declared)
            raise FrontendError(
                f"input {name!r} has a dynamic dimension {first}{label} (declared shape "
                f"{_format_dims(declared)}); ember needs static shapes",
                hint=f"pass its shape: from_onnx(..., shape={{{name!r}: {example}}}) or "
                f"--input '{{\"{name}\": {list(example)}}}'",
            )
        return tuple(int(d) for d in declared)  # type: ignore[arg-type]

    def _make_inputs(self) -> None:
        init_names = {init.name for init in self.graph.initializer}
        real_inputs = [vi for vi in self.graph.input if vi.name not in init_names]
        known = [vi.name for vi in real_inputs]
        unknown = sorted(set(self.shape) - set(known))
        if unknown:
            raise FrontendError(
                f"shape given for {', '.join(map(repr, unknown))}, which the model has no input "
                f"named; its inputs are: {', '.join(map(repr, known)) or 'none'}",
                hint="use the model's input names in shape= / --input",
            )
        for vi in real_inputs:
            if vi.type.WhichOneof("value") != "tensor_type":
                kind = vi.type.WhichOneof("value") or "an undefined type"
                raise UnsupportedFeatureError(
                    f"graph input {vi.name!r} is a {kind.replace('_type', '')}, not a tensor; "
                    "ember supports tensor inputs only"
                )
            dtype = self._input_dtype(vi.name, vi.type.tensor_type.elem_type)
            self.values[vi.name] = self.builder.add_input(vi.name, self._input_shape(vi), dtype)

    def _load_initializers(self) -> None:
        for init in self.graph.initializer:
            ember_dtype(init.data_type, f"initializer {init.name!r}")
            self.init_arrays[init.name] = numpy_helper.to_array(init)
        for sparse in self.graph.sparse_initializer:
            raise UnsupportedFeatureError(
                f"sparse initializer {sparse.values.name!r} is not supported"
            )

    # -- conversion
    def build(self) -> tuple[Module, dict[str, np.ndarray]]:
        for op, name in unsupported_nodes(self.model):
            self.builder.unsupported(op, name)
        self.builder.raise_unsupported(extra=f" at opset {self.opset}")
        self._load_initializers()
        self._make_inputs()
        for index, node in enumerate(self.graph.node):
            self._convert(node, index)
        outputs = [self.value(o.name) for o in self.graph.output]
        names = tuple(o.name for o in self.graph.output)
        return self.builder.finish(outputs, attrs={"output_names": names})

    def _convert(self, proto: onnx.NodeProto, index: int) -> None:
        name = _node_name(proto, index)
        convert = custom_converter(proto.domain, proto.op_type)
        if convert is not None:  # a user's op: its version is the opset of its domain
            versions = {e.domain or "ai.onnx": int(e.version) for e in self.model.opset_import}
            version: int | None = versions.get(proto.domain or "ai.onnx", 1)
        else:
            convert = CONVERTERS[proto.op_type]
            version = op_version(proto.op_type, self.opset)
        assert version is not None  # checked by unsupported_nodes
        node = OnnxNode(self, proto, name, version, self.opset)
        with self.builder.converting(node):
            result = convert(node)
        outputs = [result] if isinstance(result, Expr) else list(result)
        for i, out_name in enumerate(proto.output):
            if not out_name:
                continue
            if i >= len(outputs) or outputs[i] is None:
                raise UnsupportedFeatureError(
                    f"{node} (opset {self.opset}): output {i} ({out_name!r}) is not supported; "
                    f"ember computes only its first {sum(o is not None for o in outputs)} output(s)"
                )
            self.values[out_name] = outputs[i]


def _format_dims(dims: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
