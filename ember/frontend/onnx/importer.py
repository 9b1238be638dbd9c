"""Import ONNX models into ember's graph IR.

    mod, params = from_onnx("resnet18.onnx", shape={"data": (1, 3, 224, 224)})

Steps: load and check the file; scan every node (subgraphs and the bodies of the
functions it will expand too) and report all unsupported ops at once; give each
graph input a static type (the model's declaration, completed or overridden by
``shape=``); turn initializers into weights; convert node by node
(:func:`~ember.frontend.onnx.scope.convert_node`: a model-local or schema function
is expanded in place, anything else goes to its converter in ``ops_*.py``,
registered in :data:`~ember.frontend.onnx.context.CONVERTERS` when
``ember.frontend.onnx`` is imported) through the shared
:class:`~ember.frontend.common.GraphBuilder`. The importer is the root
:class:`~ember.frontend.onnx.scope.Scope`; subgraphs convert in scopes over it.
Anything whose inputs are all constants is evaluated at import time, so the
graph that comes out has static shapes everywhere (Shape/Size/Range/
ConstantOfShape chains fold away and Reshape gets a static ``newshape``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, input_dtype
from ember.frontend.onnx.context import (
    CONVERTERS,
    NotStaticError,
    OnnxNode,
    UnsupportedFeatureError,
    custom_converter,
    ember_dtype,
)
from ember.frontend.onnx.functions import (
    DEFAULT_DOMAINS,
    all_nodes,
    has_schema_function,
    is_default_domain,
    local_functions,
    node_name,
    op_version,
    opset_map,
    schema_function,
)
from ember.frontend.onnx.scope import EmptyOptional, Scope, convert_node, item_exprs
from ember.graph.ir import Constant, Expr, Module, TensorType, Tuple, Var


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
    static shapes; it fills in dynamic dimensions and overrides declared ones. A
    sequence input takes a list of shapes, one per element: its length is then
    static, and element ``i`` is fed as input :func:`sequence_item_name` (``"seq[i]"``);
    a sequence output is one output per element, named the same way.
    An optional input holds a value (of its element type) unless ``shape`` gives None.
    ``dtype`` (one name, or a dict per input) is used for inputs whose element
    type the model leaves undeclared. Initializers become weights: Vars after the
    real inputs in ``main``'s params, with their values in the returned dict;
    with ``freeze_params=True`` they become constants instead.

        mod, params = from_onnx("model.onnx", shape={"data": (1, 3, 224, 224)})
        out = ember.graph.interpret(mod, params, {"data": x})[0]
        mod, params = from_onnx(m, shape={"seq": [(2, 3), (4, 3)]})  # feed "seq[0]", "seq[1]"
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
        if entry.domain in DEFAULT_DOMAINS:
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


def unsupported_nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(op description, node name) for every node ember cannot convert, in model order.

    Looks into subgraphs (If/Loop/Scan bodies) and into the bodies of the functions
    ember expands (model-local functions, and schema functions of ops it has no
    converter for); a context-dependent schema function is checked when it is built.
    """
    opsets = opset_map(model.opset_import)
    model_opset(model)  # raises on an opset newer than the onnx package knows
    functions = local_functions(model)
    found: list[tuple[str, str]] = []
    scanned: set[tuple[str, str]] = set()

    def scan(nodes: Sequence[onnx.NodeProto], opsets: dict[str, int], prefix: str) -> None:
        opset = opsets.get("", 0)
        for node, name in all_nodes(nodes):
            name = prefix + name
            if custom_converter(node.domain, node.op_type) is not None:
                continue  # a converter the user registered (ember.custom.register_converter)
            key = (node.domain, node.op_type)
            if key in functions:
                if key not in scanned:
                    scanned.add(key)
                    scan(functions[key].proto.node, dict(functions[key].opsets), f"{name}/")
                continue
            domain = "" if is_default_domain(node.domain) else node.domain
            conv = CONVERTERS.get(node.op_type) if domain == "" else None
            version = op_version(node.op_type, opsets.get(domain, 0), domain)
            if conv is not None and version is not None and version >= conv.min_version:
                continue
            if has_schema_function(node.op_type, domain, opsets.get(domain, 0)):
                body = schema_function(node.op_type, domain, opsets.get(domain, 0))
                if body is not None and (domain, node.op_type) not in scanned:
                    scanned.add((domain, node.op_type))
                    scan(body.proto.node, dict(body.opsets), f"{name}/")
                continue  # a context-dependent body is checked when it is built
            if domain != "":
                found.append((f"{node.domain}.{node.op_type}", name))
            elif conv is None:
                found.append((node.op_type, name))
            elif version is None:
                found.append((f"{node.op_type} (not defined at opset {opset})", name))
            else:
                found.append(
                    (f"{node.op_type}-{version} (ember supports version {conv.min_version}+)", name)
                )

    scan(model.graph.node, opsets, "")
    return found


# ----------------------------------------------------------------------------- build


class OnnxImporter(Scope):
    """Converts one ONNX model: the root scope (graph inputs, initializers as weights)."""

    def __init__(
        self,
        model: onnx.ModelProto,
        shape: Mapping[str, Sequence[int]],
        dtype: str | Mapping[str, str],
        freeze_params: bool,
    ) -> None:
        super().__init__(None, opset_map(model.opset_import))
        self.opsets[""] = model_opset(model)
        self.model = model
        self.graph = model.graph
        self.functions = local_functions(model)
        self.shape = dict(shape)
        self.dtype = dtype
        self.freeze_params = freeze_params
        self._builder = GraphBuilder("ONNX")
        self.init_arrays: dict[str, np.ndarray] = {}
        self.init_vars: dict[str, Var] = {}  # initializers used so far, as weights

    # -- environment
    @property
    def builder(self) -> GraphBuilder:
        return self._builder

    def lookup(self, name: str) -> Expr | None:
        """The expression of ONNX value ``name`` (initializers become weights on first use)."""
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
        return None

    def const_value(self, name: str, node: OnnxNode, what: str) -> np.ndarray:
        """The value of ``name``, computed at import time; NotStaticError if it needs inputs."""
        if name not in self.values and name in self.init_arrays:
            return self.init_arrays[name]
        return super().const_value(name, node, what)

    def var_value(self, var: Var) -> np.ndarray:
        for name, weight in self.init_vars.items():
            if weight is var:
                return self.init_arrays[name]
        raise NotStaticError(f"model input {var.name!r}", input_names=[var.name])

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
            if vi.type.WhichOneof("value") == "optional_type":
                if vi.name in self.shape and self.shape[vi.name] is None:
                    self.values[vi.name] = EmptyOptional((), vi.name)
                    continue
                # a present optional is its value: convert the input as its element type
                vi = onnx.helper.make_value_info(vi.name, vi.type.optional_type.elem_type)
            kind = vi.type.WhichOneof("value")
            if kind == "sequence_type" and _is_tensor(vi.type.sequence_type.elem_type):
                self.values[vi.name] = self._sequence_input(vi)
                continue
            if kind != "tensor_type":
                what = (kind or "an undefined type").replace("_type", "")
                raise UnsupportedFeatureError(
                    f"graph input {vi.name!r} is a {what}, not a tensor; ember supports tensor "
                    "inputs and sequences of tensors only"
                )
            dtype = self._input_dtype(vi.name, vi.type.tensor_type.elem_type)
            self.values[vi.name] = self.builder.add_input(vi.name, self._input_shape(vi), dtype)

    def _sequence_input(self, value_info: onnx.ValueInfoProto) -> Tuple:
        """A sequence input of the length ``shape=`` gives: one tensor input per element.

        The element inputs are named :func:`sequence_item_name` (``seq[0]``, ``seq[1]``, ...).
        """
        name = value_info.name
        elem = value_info.type.sequence_type.elem_type.tensor_type
        example = "[(2, 3), (4, 3)]"
        hint = (
            f"pass the length and element shapes: from_onnx(..., shape={{{name!r}: {example}}}) "
            "(an empty list for an empty sequence)"
        )
        if name not in self.shape:
            raise FrontendError(
                f"input {name!r} is a sequence, whose length ember must know at import", hint=hint
            )
        given = self.shape[name]
        if isinstance(given, str | bytes) or not isinstance(given, Sequence):
            raise FrontendError(
                f"shape given for sequence input {name!r} is {given!r}, not a list of shapes",
                hint=hint,
            )
        dtype = self._input_dtype(name, elem.elem_type)
        items: list[Expr] = []
        for i, item_shape in enumerate(given):
            item = onnx.ValueInfoProto(name=sequence_item_name(name, i))
            item.type.tensor_type.CopyFrom(elem)
            if isinstance(item_shape, int) or not isinstance(item_shape, Sequence):
                raise FrontendError(
                    f"shape given for sequence input {name!r} is {given!r}: element {i} is "
                    f"{item_shape!r}, not a shape",
                    hint=hint,
                )
            self.shape[item.name] = item_shape
            items.append(self.builder.add_input(item.name, self._input_shape(item), dtype))
        return Tuple(tuple(items), name)

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
            convert_node(self, node, node_name(node, index))
        # a sequence output is one output per element, named like sequence inputs' elements
        outputs: list[Expr] = []
        names: list[str] = []
        for out in self.graph.output:
            expr = self.value(out.name)
            if isinstance(expr, EmptyOptional):
                raise UnsupportedFeatureError(
                    f"graph output {out.name!r} is an empty optional ({expr.name!r}); ember's "
                    "models return tensors and sequences of static length",
                    hint="make the model return the optional only where it holds a value",
                )
            if isinstance(expr.type, TensorType):
                outputs.append(expr)
                names.append(out.name)
                continue
            items = item_exprs(expr)
            outputs.extend(items)
            names.extend(sequence_item_name(out.name, i) for i in range(len(items)))
        return self.builder.finish(outputs, attrs={"output_names": tuple(names)})


def sequence_item_name(name: str, index: int) -> str:
    """The name of the model input that feeds element ``index`` of sequence input ``name``.

    >>> sequence_item_name("seq", 1)
    'seq[1]'
    """
    return f"{name}[{index}]"


def _is_tensor(type_proto: onnx.TypeProto) -> bool:
    return type_proto.WhichOneof("value") == "tensor_type"


def _format_dims(dims: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
