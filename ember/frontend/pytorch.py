"""Import PyTorch models into ember's graph IR: torch.export programs, nn.Modules, TorchScript.

    mod, params = from_pytorch(model, shape={"x": (1, 3, 224, 224)})     # nn.Module
    mod, params = from_pytorch(torch.export.export(model, (x,)))          # ExportedProgram
    mod, params = from_pytorch("model.pt2")                               # torch.export.save
    mod, params = from_pytorch("traced.pt", shape={"x": (1, 3, 224, 224)})  # TorchScript

An ``nn.Module`` is exported with ``torch.export.export`` on example inputs
(given, or random ones built from ``shape``). The graph of an ExportedProgram
(ATen ops on FX nodes) or of a TorchScript module (its inlined graph, weights
read through ``prim::GetAttr``) is converted op by op with the converter table
of :mod:`ember.frontend.pytorch_ops`. Calls whose inputs are all constants
(``arange``, masks, ``weight.t()``) are run by torch at import time. Weights
become Vars after the inputs in ``main``'s params. Every unsupported op is
reported at once, with its node names. torch is imported only when a function
here is called, so ``import ember`` never needs it.
"""

from __future__ import annotations

import operator
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend import pytorch_ops_tensor  # noqa: F401 (registers converters)
from ember.frontend.common import ImportContext
from ember.frontend.input_spec import parse_input_spec
from ember.frontend.pytorch_ops import CONVERTERS, AtenNode
from ember.frontend.pytorch_ops_tensor import torch_dtype_name
from ember.graph.ir import DTYPES, Expr, Module, const

_UNKNOWN = object()  # the output of an unsupported op: consumers are skipped, not reported


def supported_ops() -> list[str]:
    """ATen op base names :func:`from_pytorch` converts, sorted.

    >>> "conv2d" in supported_ops()
    True
    """
    return sorted(CONVERTERS)


def from_pytorch(
    model_or_program: Any,
    example_inputs: Sequence[Any] | None = None,
    shape: Mapping[str, Sequence[int]] | Sequence[Sequence[int]] | str | None = None,
    dtype: str | Mapping[str, str] = "float32",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert a PyTorch model to an ember :class:`Module` and its weights.

    ``model_or_program`` is a ``torch.export.ExportedProgram``, a ``.pt2`` path
    (``torch.export.save``), an ``nn.Module``, or TorchScript (a ScriptModule or a
    ``.pt``/``.pth`` path from ``torch.jit.save``). ``shape`` maps input names to
    static shapes (or lists shapes in argument order); an nn.Module needs it or
    ``example_inputs``, TorchScript needs it when the file does not record shapes.
    ``dtype`` is the dtype of inputs built from ``shape``.

        mod, params = from_pytorch(net.eval(), shape={"x": (1, 3, 32, 32)})
        out = ember.graph.interpret(mod, params, {"x": x.numpy()})[0]
    """
    try:
        import torch
    except ImportError:
        raise FrontendError(
            "from_pytorch needs the torch package, which is not installed",
            hint="pip install torch (CPU wheels are enough)",
        ) from None
    obj = model_or_program
    if isinstance(obj, str | Path):
        obj = _load_path(Path(obj))
    if isinstance(obj, torch.export.ExportedProgram):
        return _ExportImporter(obj, shape).convert()
    if isinstance(obj, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        return _ScriptImporter(obj, shape, dtype).convert()
    if isinstance(obj, torch.nn.Module):
        return _ExportImporter(_export_module(obj, example_inputs, shape, dtype), None).convert()
    raise FrontendError(
        f"from_pytorch expects an nn.Module, an ExportedProgram, a ScriptModule or a path, "
        f"got {type(obj).__name__}"
    )


# ----------------------------------------------------------------------------- loading


def _load_path(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise FrontendError(f"PyTorch model file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise FrontendError(
            f"{str(path)!r} is not a saved PyTorch program: it is not a zip archive",
            hint="save with torch.export.save (.pt2) or torch.jit.save (.pt); a plain "
            "torch.save state dict holds no graph",
        )
    if is_exported_program(path):
        try:
            return torch.export.load(str(path))
        except Exception as err:  # torch raises many types for a bad archive
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FrontendError(
                f"{str(path)!r} could not be loaded by torch.export.load: {first}"
            ) from None
    if is_torchscript(path):
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FrontendError(
                f"{str(path)!r} could not be loaded by torch.jit.load: {first}"
            ) from None
    raise FrontendError(
        f"{str(path)!r} is a zip archive but neither a torch.export program nor TorchScript",
        hint="a torch.save'd state dict or pickled module holds no graph; export the model "
        "with torch.export.save or torch.jit.save",
    )


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def is_exported_program(path: str | Path) -> bool:
    """True if ``path`` is a zip written by ``torch.export.save`` (has a serialized program)."""
    return any(re.search(r"(^|/)models/[^/]*\.json$", n) for n in _zip_names(Path(path)))


def is_torchscript(path: str | Path) -> bool:
    """True if ``path`` is a zip written by ``torch.jit.save`` (has TorchScript code)."""
    return any(re.search(r"(^|/)code/", n) for n in _zip_names(Path(path)))


def _input_shapes(shape: Any, names: Sequence[str], what: str) -> dict[str, tuple[int, ...]]:
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


def _export_module(module: Any, example_inputs: Any, shape: Any, dtype: Any) -> Any:
    import inspect

    import torch

    module = module.eval()
    if example_inputs is None:
        try:
            names = [
                p.name
                for p in inspect.signature(module.forward).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            names = []
        shapes = _input_shapes(shape, names, f"{type(module).__name__}.forward")
        missing = [n for n in names if n not in shapes]
        if not shapes or missing:
            raise FrontendError(
                f"converting the nn.Module {type(module).__name__} needs example inputs or the "
                f"shape of every forward() argument; missing: {', '.join(missing) or names}",
                hint='pass shape={"x": (1, 3, 224, 224)} or example_inputs=(tensor,)',
            )
        generator = torch.Generator().manual_seed(0)
        example_inputs = []
        for name in names:
            chosen = dtype.get(name, "float32") if isinstance(dtype, Mapping) else dtype
            if chosen not in DTYPES:
                raise FrontendError(f"dtype {chosen!r} of input {name!r} is not an ember dtype")
            torch_dtype = getattr(torch, chosen)
            if torch_dtype.is_floating_point:
                example_inputs.append(torch.rand(shapes[name], generator=generator).to(torch_dtype))
            else:
                example_inputs.append(torch.zeros(shapes[name], dtype=torch_dtype))
    try:
        with torch.no_grad():
            return torch.export.export(module, tuple(example_inputs))
    except Exception as err:  # torch.export raises many error types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FrontendError(
            f"torch.export.export failed on {type(module).__name__}: {first}",
            hint="fix the model for torch.export, or trace it (torch.jit.trace) and pass the "
            "ScriptModule",
        ) from None


# ----------------------------------------------------------------------------- shared


class _Importer:
    """What the export and TorchScript importers share: values, constants, op dispatch."""

    def __init__(self) -> None:
        self.ctx = ImportContext("PyTorch")
        self.tensor_names: dict[int, str] = {}  # id(torch tensor) -> state-dict style name
        self._leaves: dict[int, tuple[Any, Expr]] = {}

    def to_expr(self, value: Any, name: str) -> Expr:
        """A graph expression for a converted value (constant tensors become weights)."""
        import torch

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
                expr = self.ctx.add_weight(name, array)
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
            if op not in CONVERTERS:
                self.ctx.unsupported(described, name)
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
            self.ctx.unsupported(described, name)
            return _UNKNOWN
        node = AtenNode(self.ctx, name, op, overload, args, self.to_expr, kwargs)
        with self.ctx.node(name, f"aten::{op}"):
            return converter(node)

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
    import torch

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


class _ExportImporter(_Importer):
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
        shapes = _input_shapes(self.shape, user_names, "the exported program")
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
                self.ctx.unsupported(f"fx {node.op}", node.name)
        self.ctx.raise_unsupported()
        return self.ctx.finish(self.outputs(outputs))

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
        self.ctx.unsupported(f"exported input kind {kind}", node.name)
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
            return self.ctx.add_input(node.name, given, dtype)
        if not static or val is None:
            raise FrontendError(
                f"input {node.name!r} of the exported program has a dynamic shape "
                f"{tuple(str(d) for d in declared)}",
                hint=f'give it a static shape: shape={{"{node.name}": [1, ...]}}',
            )
        return self.ctx.add_input(node.name, tuple(int(d) for d in declared), dtype)

    def _call(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        import torch

        target = node.target
        if target is operator.getitem:
            container, index = args
            return _UNKNOWN if container is _UNKNOWN else container[index]
        if isinstance(target, torch._ops.OpOverload):
            base, overload = _op_name(target.name())
            positional = _schema_args(target._schema, args, kwargs)
            fold = lambda: target(*args, **kwargs)
            return self.apply(base, overload, node.name, positional, kwargs, fold)
        if any(v is _UNKNOWN for v in _flatten(args)):
            return _UNKNOWN
        if any(isinstance(v, Expr) for v in _flatten(args)):
            name = getattr(target, "__name__", str(target))
            self.ctx.unsupported(f"python call {name}", node.name)
            return _UNKNOWN
        return target(*args, **kwargs)  # int arithmetic on sizes (operator.mul, sym_*)


def _kind(spec: Any) -> str:
    return "USER_INPUT" if spec is None else str(spec.kind).rsplit(".", 1)[-1]


def _get_attr(module: Any, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _map_args(value: Any, env: dict[Any, Any]) -> Any:
    import torch

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


class _ScriptImporter(_Importer):
    def __init__(self, module: Any, shape: Any, dtype: Any) -> None:
        super().__init__()
        self.module = module
        self.shape = shape
        self.dtype = dtype

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        import torch

        is_module = isinstance(self.module, torch.jit.ScriptModule)
        graph = self.module.inlined_graph if is_module else self.module.graph
        graph_inputs = list(graph.inputs())
        env: dict[Any, Any] = {}
        if is_module:
            env[graph_inputs[0]] = self.module
            graph_inputs = graph_inputs[1:]
        names = [re.sub(r"\.\d+$", "", v.debugName()) for v in graph_inputs]
        shapes = _input_shapes(self.shape, names, "the TorchScript module")
        for value, name in zip(graph_inputs, names):
            env[value] = self._input(value, name, shapes)
        for node in graph.nodes():
            self._node(node, env)
        self.ctx.raise_unsupported()
        results = [env[v] for v in graph.return_node().inputs()]
        return self.ctx.finish(self.outputs(results))

    def _input(self, value: Any, name: str, shapes: dict[str, tuple[int, ...]]) -> Expr:
        import torch

        ty = value.type()
        sizes = ty.sizes() if isinstance(ty, torch._C.TensorType) else None
        scalar = ty.scalarType() if isinstance(ty, torch._C.TensorType) else None
        # the recorded dtype wins; else the dtype argument (one name or one per input)
        chosen = self.dtype.get(name) if isinstance(self.dtype, Mapping) else self.dtype
        dtype = _SCRIPT_SCALAR_TYPES.get(str(scalar)) or chosen or "float32"
        if name in shapes:
            return self.ctx.add_input(name, shapes[name], dtype)
        if sizes is None or any(d is None for d in sizes):
            raise FrontendError(
                f"the TorchScript module does not record the shape of input {name!r}",
                hint=f'give it: shape={{"{name}": [1, 3, 224, 224]}}',
            )
        return self.ctx.add_input(name, tuple(sizes), dtype)

    def _node(self, node: Any, env: dict[Any, Any]) -> None:
        import torch

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
        elif kind.startswith("aten::"):
            schema = node.schema()
            qualified = schema.split("(", 1)[0] if schema != "(no schema)" else kind
            base, overload = _op_name(qualified)
            fold = _script_fold(kind, overload, schema, inputs)
            result = self.apply(base, overload, name, inputs, {}, fold)
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
            self.ctx.unsupported(kind, name)
            for out in outputs:
                env[out] = _UNKNOWN


def _script_fold(kind: str, overload: str, schema: str, inputs: list[Any]) -> Any:
    """A thunk running a TorchScript ATen node with torch (kwarg-only inputs passed by name)."""
    import torch

    packet = getattr(torch.ops.aten, kind.split("::", 1)[1], None)
    if packet is None:
        return None
    try:
        target = getattr(packet, overload or "default")
        arguments = torch._C.parse_schema(schema).arguments
    except (AttributeError, RuntimeError):
        return lambda: packet(*inputs)
    args = [v for a, v in zip(arguments, inputs) if not a.kwarg_only]
    kwargs = {a.name: v for a, v in zip(arguments, inputs) if a.kwarg_only}
    return lambda: target(*args, **kwargs)


__all__ = ["from_pytorch", "is_exported_program", "is_torchscript", "supported_ops"]
