"""Walking torch graphs: torch.export programs (FX nodes) and TorchScript (inlined graphs).

Both walks share :class:`GraphImporter`: values by graph node, constant tensors
turned into weights or constants, and the dispatch of each ATen call to its
converter (or to torch itself when every argument is known at import time)::

    mod, params = ExportImporter(torch.export.export(net, (x,)), shape=None).convert()
    mod, params = ScriptImporter(torch.jit.trace(net, (x,)), None, "float32").convert()
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, NodeContext
from ember.frontend.custom import CustomNode, find_converter, run_converter
from ember.frontend.input_spec import parse_input_spec
from ember.frontend.pytorch.context import CONVERTERS, AtenNode, import_torch, torch_dtype_name
from ember.graph.ir import Expr, Module, const

_UNKNOWN = object()  # the output of an unsupported op: consumers are skipped, not reported


def input_shapes(shape: Any, names: Sequence[str], what: str) -> dict[str, tuple[int, ...]]:
    """``shape`` (spec, dict or positional list) as {input name: shape}, checked against names."""
    if shape is None:
        return {}
    if isinstance(shape, Sequence) and not isinstance(shape, str) and shape:
        if all(isinstance(s, Sequence) for s in shape) and not all(
            isinstance(s, Mapping) for s in shape
        ):
            if len(shape) != len(names):
                raise FrontendError(
                    f"{what} takes {len(names)} input(s) ({', '.join(names)}), "
                    f"{len(shape)} shape(s) given"
                )
            return {name: tuple(int(d) for d in s) for name, s in zip(names, shape)}
    specs = {k: v.shape for k, v in parse_input_spec(shape).items()}
    unknown = sorted(set(specs) - set(names))
    if unknown:
        raise FrontendError(
            f"the input spec names {', '.join(map(repr, unknown))}, which {what} does not "
            f"take; its inputs are: {', '.join(map(repr, names)) or 'none'}"
        )
    return specs


# ----------------------------------------------------------------------------- shared


class GraphImporter:
    """What the export and TorchScript importers share: values, constants, op dispatch."""

    def __init__(self) -> None:
        self.builder = GraphBuilder("PyTorch")
        self.tensor_names: dict[int, str] = {}  # id(torch tensor) -> state-dict style name
        self._leaves: dict[int, tuple[Any, Expr]] = {}

    def to_expr(self, value: Any, name: str) -> Expr:
        """A graph expression for a converted value (constant tensors become weights)."""
        torch = import_torch()
        if isinstance(value, Expr):
            return value
        if isinstance(value, torch.Tensor):
            cached = self._leaves.get(id(value))
            if cached is not None:
                return cached[1]
            array = _to_numpy(value, name)
            name = self.tensor_names.get(id(value), name)
            expr: Expr
            if array.ndim == 0 or array.dtype.kind not in "f":
                expr = const(array, name=name)
            else:
                expr = self.builder.add_weight(name, array)
            self._leaves[id(value)] = (value, expr)  # keep the tensor alive so ids stay unique
            return expr
        if isinstance(value, int | float | bool):
            return const(np.asarray(value, dtype="float32" if isinstance(value, float) else None))
        raise FrontendError(f"PyTorch node {name!r}: expected a tensor, got {value!r}")

    def apply(
        self,
        op: str,
        overload: str,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        fold: Any,
    ) -> Any:
        """Convert one ATen call; run ``fold()`` (torch) when no argument is a graph value."""
        flat = list(_flatten(args)) + list(_flatten(list(kwargs.values())))
        described = f"aten::{op}" + (f".{overload}" if overload else "")
        if any(v is _UNKNOWN for v in flat):
            if op not in CONVERTERS and op not in _PYTHON_OPS:
                self.builder.unsupported(described, name)
            return _UNKNOWN
        if flat and all(_is_number(v) for v in flat) and op in _PYTHON_OPS:
            return _PYTHON_OPS[op](*args)  # size arithmetic of traced code: x.size(0) // 2
        if not any(isinstance(v, Expr) for v in flat) and fold is not None:
            try:
                return _folded(fold())
            except Exception:  # not foldable here (e.g. needs a real input); convert below
                pass
        converter = CONVERTERS.get(op)
        if converter is None:
            self.builder.unsupported(described, name)
            return _UNKNOWN
        node = AtenNode(self.builder, name, op, overload, args, self.to_expr, kwargs)
        with self.builder.converting(node):
            return converter(node)

    def apply_custom(
        self,
        qualified: str,
        name: str,
        args: list[Any],
        arg_names: Sequence[str],
        num_outputs: int | None,
        fold: Any,
    ) -> Any:
        """Convert one call of a non-ATen op (``mylib::fancy_gelu``, defined with
        ``torch.library``) with the converter a user registered for it (``ember.custom``):
        tensor arguments are its inputs, the others its attributes by schema name."""
        torch = import_torch()
        custom = find_converter("pytorch", qualified)
        flat = list(_flatten(args))
        unknown = any(v is _UNKNOWN for v in flat)  # after an unsupported op: skipped
        if custom is None and not unknown and fold is not None:
            if not any(isinstance(v, Expr) for v in flat):
                try:
                    return _folded(fold())  # constant arguments: torch computes it
                except Exception:  # not foldable here: reported below
                    pass
        if custom is None or unknown:
            if custom is None:
                self.builder.unsupported(qualified, name)
            return _UNKNOWN
        node = NodeContext(self.builder, name, qualified)
        inputs: list[Expr | None] = []
        attrs: dict[str, Any] = {}
        for index, value in enumerate(args):
            arg_name = arg_names[index] if index < len(arg_names) else f"arg{index}"
            values = value if isinstance(value, list | tuple) else [value]
            if values and all(isinstance(v, Expr | torch.Tensor) for v in values):
                inputs += [self.to_expr(v, f"{name}/{arg_name}") for v in values]
            else:
                attrs[arg_name] = value
        view = CustomNode("pytorch", node, inputs, attrs, num_outputs)
        with self.builder.converting(node):
            outputs = run_converter(custom, view)
        return outputs[0] if num_outputs == 1 else tuple(outputs)

    def outputs(self, values: Sequence[Any]) -> list[Expr]:
        result = []
        for value in _flatten(list(values)):
            if value is None:
                continue
            result.append(self.to_expr(value, f"output{len(result)}"))
        return result


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | bool)


# ATen ops TorchScript applies to Python numbers (sizes), evaluated in Python
_PYTHON_OPS = {
    "add": lambda a, b, alpha=1: a + alpha * b,
    "sub": lambda a, b, alpha=1: a - alpha * b,
    "mul": operator.mul,
    "div": operator.truediv,
    "floordiv": operator.floordiv,
    "floor_divide": operator.floordiv,
    "remainder": operator.mod,
    "neg": operator.neg,
    "pow": operator.pow,
}


def _flatten(values: Any) -> Any:
    for value in values:
        if isinstance(value, list | tuple):
            yield from _flatten(value)
        else:
            yield value


def _folded(value: Any) -> Any:
    """A torch result as a converted value (0-d tensors become Python numbers)."""
    torch = import_torch()
    if isinstance(value, torch.Tensor):
        return value.item() if value.dim() == 0 and value.numel() == 1 else value.detach()
    if isinstance(value, list | tuple):
        return type(value)(_folded(v) for v in value)
    return value


def _to_numpy(tensor: Any, name: str) -> np.ndarray:
    dtype = torch_dtype_name(tensor.dtype)
    if dtype is None:
        raise FrontendError(f"PyTorch tensor {name!r} has dtype {tensor.dtype}, which ember lacks")
    return tensor.detach().cpu().contiguous().numpy().astype(dtype, copy=True)


def _op_name(qualified: str) -> tuple[str, str]:
    """('add', 'Tensor') from 'aten::add.Tensor' / 'aten.add_.Tensor' (in-place _ dropped)."""
    name = qualified.split("::", 1)[-1].removeprefix("aten.")
    base, _, overload = name.partition(".")
    if base.endswith("_") and not base.endswith("__"):
        base = base[:-1]
    return base, overload


# ----------------------------------------------------------------------------- torch.export


class ExportImporter(GraphImporter):
    def __init__(self, program: Any, shape: Any) -> None:
        super().__init__()
        self.program = program
        self.shape = shape

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        program = self.program
        signature = program.graph_signature
        kinds = {spec.arg.name: spec for spec in signature.input_specs}
        user_names = [
            n.name
            for n in program.graph.nodes
            if n.op == "placeholder" and _kind(kinds.get(n.name)) == "USER_INPUT"
        ]
        shapes = input_shapes(self.shape, user_names, "the exported program")
        env: dict[Any, Any] = {}
        outputs: list[Any] = []
        for node in program.graph.nodes:
            if node.op == "placeholder":
                env[node] = self._placeholder(node, kinds.get(node.name), shapes)
            elif node.op == "get_attr":
                env[node] = _folded(_get_attr(program.graph_module, node.target))
                self.tensor_names[id(env[node])] = str(node.target)
            elif node.op == "call_function":
                args = _map_args(node.args, env)
                kwargs = {k: _map_args(v, env) for k, v in node.kwargs.items()}
                env[node] = self._call(node, args, kwargs)
            elif node.op == "output":
                results = _map_args(node.args[0], env)
                specs = signature.output_specs
                outputs = [
                    r for r, spec in zip(results, specs) if _kind(spec) == "USER_OUTPUT"
                ] or list(results)
            else:
                self.builder.unsupported(f"fx {node.op}", node.name)
        self.builder.raise_unsupported()
        return self.builder.finish(self.outputs(outputs))

    def _placeholder(self, node: Any, spec: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
        kind = _kind(spec)
        if kind == "USER_INPUT":
            return self._user_input(node, shapes)
        target = getattr(spec, "target", None)
        if kind in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
            tensor = self.program.state_dict.get(target)
            if tensor is None:
                tensor = self.program.constants.get(target)
            if tensor is None:
                raise FrontendError(f"exported program: weight {target!r} is missing")
            tensor = tensor.detach()
            self.tensor_names[id(tensor)] = str(target)
            return _folded(tensor) if tensor.dim() == 0 else tensor
        self.builder.unsupported(f"exported input kind {kind}", node.name)
        return _UNKNOWN

    def _user_input(self, node: Any, shapes: dict[str, tuple[int, ...]]) -> Expr:
        val = node.meta.get("val")
        declared = tuple(getattr(val, "shape", ()))
        static = all(isinstance(d, int) for d in declared)
        dtype = torch_dtype_name(getattr(val, "dtype", "float32")) or "float32"
        if node.name in shapes:
            given = shapes[node.name]
            if static and tuple(declared) != given:
                raise FrontendError(
                    f"input {node.name!r} was exported with the static shape {tuple(declared)}, "
                    f"the spec gives {given}",
                    hint="pass the nn.Module with the new shape, or export with dynamic_shapes",
                )
            return self.builder.add_input(node.name, given, dtype)
        if not static or val is None:
            raise FrontendError(
                f"input {node.name!r} of the exported program has a dynamic shape "
                f"{tuple(str(d) for d in declared)}",
                hint=f'give it a static shape: shape={{"{node.name}": [1, ...]}}',
            )
        return self.builder.add_input(node.name, tuple(int(d) for d in declared), dtype)

    def _call(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        torch = import_torch()
        target = node.target
        if target is operator.getitem:
            container, index = args
            return _UNKNOWN if container is _UNKNOWN else container[index]
        if isinstance(target, torch._ops.OpOverload) and target.namespace not in _ATEN:
            schema = target._schema  # a user's op (torch.library): ember.custom converters
            positional = _schema_args(schema, args, kwargs)
            names = [a.name for a in schema.arguments]
            count = _num_returns(schema)
            fold = lambda: target(*args, **kwargs)
            return self.apply_custom(schema.name, node.name, positional, names, count, fold)
        if isinstance(target, torch._ops.OpOverload):
            base, overload = _op_name(target.name())
            positional = _schema_args(target._schema, args, kwargs)
            fold = lambda: target(*_as_tensors(target._schema.arguments, args), **kwargs)
            return self.apply(base, overload, node.name, positional, kwargs, fold)
        if any(v is _UNKNOWN for v in _flatten(args)):
            return _UNKNOWN
        if any(isinstance(v, Expr) for v in _flatten(args)):
            name = getattr(target, "__name__", str(target))
            self.builder.unsupported(f"python call {name}", node.name)
            return _UNKNOWN
        return target(*args, **kwargs)  # int arithmetic on sizes (operator.mul, sym_*)


_ATEN = ("aten", "prims")  # namespaces of torch's own ops; others are users' (custom) ops


def _num_returns(schema: Any) -> int | None:
    """How many tensors an op returns (None for a list of tensors, whose length varies)."""
    returns = list(schema.returns)
    if any(str(r.type).endswith("[]") for r in returns):
        return None
    return len(returns)


def _kind(spec: Any) -> str:
    return "USER_INPUT" if spec is None else str(spec.kind).rsplit(".", 1)[-1]


def _get_attr(module: Any, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _map_args(value: Any, env: dict[Any, Any]) -> Any:
    torch = import_torch()
    if isinstance(value, torch.fx.Node):
        return env[value]
    if isinstance(value, list | tuple):
        return type(value)(_map_args(v, env) for v in value)
    return value


def _schema_args(schema: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
    """Every schema argument in order: given positionally, by keyword, or its default."""
    result = []
    for index, argument in enumerate(schema.arguments):
        if index < len(args) and not argument.kwarg_only:
            result.append(args[index])
        elif argument.name in kwargs:
            result.append(kwargs[argument.name])
        elif argument.has_default_value():
            result.append(argument.default_value)
        else:
            result.append(None)
    return result


# ----------------------------------------------------------------------------- TorchScript

_SCRIPT_SCALAR_TYPES = {
    "Float": "float32",
    "Double": "float64",
    "Half": "float16",
    "Long": "int64",
    "Int": "int32",
    "Short": "int16",
    "Bool": "bool",
    "Byte": "uint8",
    "Char": "int8",
}

# prim ops whose value is a Python-level function of their inputs
_PASS_THROUGH = {"prim::NumToTensor", "aten::Int", "aten::Float", "aten::ScalarImplicit"}


class ScriptImporter(GraphImporter):
    def __init__(self, module: Any, shape: Any, dtype: Any) -> None:
        super().__init__()
        self.module = module
        self.shape = shape
        self.dtype = dtype

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        torch = import_torch()
        is_module = isinstance(self.module, torch.jit.ScriptModule)
        graph = self.module.inlined_graph if is_module else self.module.graph
        graph_inputs = list(graph.inputs())
        env: dict[Any, Any] = {}
        if is_module:
            env[graph_inputs[0]] = self.module
            graph_inputs = graph_inputs[1:]
        names = [re.sub(r"\.\d+$", "", v.debugName()) for v in graph_inputs]
        shapes = input_shapes(self.shape, names, "the TorchScript module")
        for value, name in zip(graph_inputs, names):
            env[value] = self._input(value, name, shapes)
        for node in graph.nodes():
            self._node(node, env)
        self.builder.raise_unsupported()
        results = [env[v] for v in graph.return_node().inputs()]
        return self.builder.finish(self.outputs(results))

    def _input(self, value: Any, name: str, shapes: dict[str, tuple[int, ...]]) -> Expr:
        torch = import_torch()
        ty = value.type()
        sizes = ty.sizes() if isinstance(ty, torch._C.TensorType) else None
        scalar = ty.scalarType() if isinstance(ty, torch._C.TensorType) else None
        # the recorded dtype wins; else the dtype argument (one name or one per input)
        chosen = self.dtype.get(name) if isinstance(self.dtype, Mapping) else self.dtype
        dtype = _SCRIPT_SCALAR_TYPES.get(str(scalar)) or chosen or "float32"
        if name in shapes:
            return self.builder.add_input(name, shapes[name], dtype)
        if sizes is None or any(d is None for d in sizes):
            raise FrontendError(
                f"the TorchScript module does not record the shape of input {name!r}",
                hint=f'give it: shape={{"{name}": [1, 3, 224, 224]}}',
            )
        return self.builder.add_input(name, tuple(sizes), dtype)

    def _node(self, node: Any, env: dict[Any, Any]) -> None:
        torch = import_torch()
        kind = node.kind()
        inputs = [env.get(v, _UNKNOWN) for v in node.inputs()]
        outputs = list(node.outputs())
        name = outputs[0].debugName() if outputs else kind
        scope = node.scopeName().replace("__module.", "")
        if scope and scope != "__module":
            name = f"{scope}/{name}"
        if kind == "prim::Constant":
            value = outputs[0].toIValue() if node.hasAttributes() else None
            env[outputs[0]] = _folded(value)
        elif kind == "prim::GetAttr":
            owner, attr = inputs[0], node.s("name")
            value = getattr(owner, attr)
            if isinstance(value, torch.Tensor):
                prefix = self.tensor_names.get(id(owner), "")
                self.tensor_names[id(value)] = f"{prefix}.{attr}" if prefix else attr
            elif isinstance(value, torch.nn.Module):
                prefix = self.tensor_names.get(id(owner), "")
                self.tensor_names[id(value)] = f"{prefix}.{attr}" if prefix else attr
            env[outputs[0]] = value
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            env[outputs[0]] = list(inputs) if kind == "prim::ListConstruct" else tuple(inputs)
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            items = inputs[0]
            for i, out in enumerate(outputs):
                env[out] = _UNKNOWN if items is _UNKNOWN else items[i]
        elif kind == "prim::TupleIndex" or kind == "aten::__getitem__":
            items, index = inputs
            env[outputs[0]] = _UNKNOWN if items is _UNKNOWN else items[index]
        elif kind in _PASS_THROUGH:
            env[outputs[0]] = inputs[0]
        elif kind == "prim::device":
            env[outputs[0]] = torch.device("cpu")
        elif kind == "prim::dtype":
            value = inputs[0]
            env[outputs[0]] = getattr(torch, value.type.dtype) if isinstance(value, Expr) else None
        elif kind.startswith("aten::") or find_converter("pytorch", kind) is not None:
            schema = node.schema()
            if kind.startswith("aten::"):
                qualified = schema.split("(", 1)[0] if schema != "(no schema)" else kind
                base, overload = _op_name(qualified)
                fold = _script_fold(kind, overload, schema, inputs)
                result = self.apply(base, overload, name, inputs, {}, fold)
            else:  # a user's op (torch.library) with an ember.custom converter
                parsed = torch._C.parse_schema(schema) if schema != "(no schema)" else None
                names = [a.name for a in parsed.arguments] if parsed is not None else []
                result = self.apply_custom(kind, name, inputs, names, len(outputs), None)
            if len(outputs) == 1:
                env[outputs[0]] = result
            else:
                for i, out in enumerate(outputs):
                    env[out] = _UNKNOWN if result is _UNKNOWN else result[i]
            if kind.endswith("_") and not kind.endswith("__") and inputs and outputs:
                # in-place op: later uses of the mutated input see the new value
                first = next(iter(node.inputs()))
                env[first] = env[outputs[0]]
        else:
            self.builder.unsupported(kind, name)
            for out in outputs:
                env[out] = _UNKNOWN


def _script_fold(kind: str, overload: str, schema: str, inputs: list[Any]) -> Any:
    """A thunk running a TorchScript ATen node with torch (kwarg-only inputs passed by name)."""
    torch = import_torch()
    packet = getattr(torch.ops.aten, kind.split("::", 1)[1], None)
    if packet is None:
        return None
    try:
        target = getattr(packet, overload or "default")
        arguments = torch._C.parse_schema(schema).arguments
    except (AttributeError, RuntimeError):
        return lambda: packet(*inputs)
    values = _as_tensors(arguments, inputs)
    args = [v for a, v in zip(arguments, values) if not a.kwarg_only]
    kwargs = {a.name: v for a, v in zip(arguments, values) if a.kwarg_only}
    return lambda: target(*args, **kwargs)


def _as_tensors(arguments: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    """``values`` with numbers turned back into 0-d tensors where the schema takes a Tensor.

    Import keeps 0-d tensors as Python numbers (sizes, ``prim::NumToTensor``,
    lifted scalar constants), so torch must get tensors back when it folds an op
    that takes them: ``fill_(mask_slice, count)``, ``rsub(width % 4, 4)``.
    """
    torch = import_torch()
    result = list(values)
    for index, (argument, value) in enumerate(zip(arguments, values)):
        if _is_number(value) and isinstance(argument.type, torch._C.TensorType):
            result[index] = torch.tensor(value)
    return result
