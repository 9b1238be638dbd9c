"""The frontends' side of custom ops: converters users register, one kind for every framework.

A *custom converter* turns one node of an op a frontend does not know (an ONNX op in
a domain of your own, a TensorFlow op loaded from a library, a PyTorch op defined with
``torch.library``) into ember graph expressions. It is a plain function of a
:class:`CustomNode`, the same view of the node in every framework: its inputs as graph
expressions, its attributes as Python values, and ``call`` to build ember ops named
after it::

    def fancy_gelu(node: CustomNode) -> Expr:
        return node.call("example.fancy_gelu", node.input(0), alpha=node.attr("alpha", 1.702))

    add_converter(CustomConverter("onnx", "com.example.FancyGelu", fancy_gelu, None, "my_ops"))

Users register through :func:`ember.custom.register_converter` (which checks the op
against the frontend's own converters); each frontend asks :func:`find_converter`
before reporting an op unsupported, builds a :class:`CustomNode` from its own node,
and runs :func:`run_converter`, which checks what the converter returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ember.errors import CustomOpError, EmberError, FrontendError
from ember.frontend.common import NodeContext, fold_call
from ember.graph.ir import Call, Constant, Expr, Tuple, TupleGetItem
from ember.graph.op import Op

CUSTOM_FRAMEWORKS = ("onnx", "pytorch", "tensorflow")
"""The frontends that look up custom converters."""

ConverterFn = Callable[["CustomNode"], "Expr | Sequence[Expr]"]


@dataclass(frozen=True)
class CustomConverter:
    """A user's converter: ``fn`` converts nodes of ``op`` in ``framework``.

    ``op`` is the frontend's name of the op: ``"com.example.FancyGelu"`` (ONNX: domain
    and op type), ``"mylib::fancy_gelu"`` (PyTorch: namespace and name) or
    ``"FancyGelu"`` (TensorFlow). ``num_outputs``: how many outputs ``fn`` returns (None:
    as many as the node has, where the framework records it). ``library``: the module
    that registered it (named in errors).
    """

    framework: str
    op: str
    fn: ConverterFn
    num_outputs: int | None
    library: str


_CONVERTERS: dict[tuple[str, str], CustomConverter] = {}


def add_converter(converter: CustomConverter) -> None:
    """Register ``converter`` (``ember.custom.register_converter`` checks it first)."""
    key = (converter.framework, converter.op)
    if key in _CONVERTERS:
        first = _CONVERTERS[key]
        raise CustomOpError(
            f"{converter.framework} op {converter.op!r} already has a custom converter "
            f"(registered by {first.library!r})",
            hint="register each converter once, when its module is first imported; to run "
            f"that code again, first call ember.custom.unregister_library({first.library!r})",
        )
    _CONVERTERS[key] = converter


def find_converter(framework: str, op: str) -> CustomConverter | None:
    """The custom converter registered for ``op`` in ``framework``, or None."""
    return _CONVERTERS.get((framework, op))


def custom_converters() -> list[CustomConverter]:
    """Every registered custom converter, in registration order."""
    return list(_CONVERTERS.values())


def remove_converter(framework: str, op: str) -> CustomConverter:
    """Remove the custom converter of ``op`` in ``framework`` (``ember.custom.scope`` and
    ``unregister_library`` call this); returns it."""
    try:
        return _CONVERTERS.pop((framework, op))
    except KeyError:
        raise CustomOpError(f"{framework} op {op!r} has no custom converter to remove") from None


def registered_converters(framework: str | None = None) -> list[str]:
    """``"framework:op"`` of every custom converter (of one framework), sorted.

    >>> registered_converters("onnx")  # doctest: +SKIP
    ['onnx:com.example.FancyGelu']
    """
    return sorted(f"{f}:{op}" for f, op in _CONVERTERS if framework in (None, f))


def onnx_op_name(domain: str, op_type: str) -> str:
    """The custom-converter name of an ONNX op: ``com.example.FancyGelu``; default-domain
    ops (``""`` or ``"ai.onnx"``) by their op type alone."""
    return op_type if domain in ("", "ai.onnx") else f"{domain}.{op_type}"


class CustomNode:
    """One framework node as a custom converter sees it, whatever the framework.

    - ``inputs``: the node's tensor inputs as graph expressions (framework layout: NHWC
      stays NHWC), None for an omitted optional ONNX input;
    - ``attrs``: its attributes (ONNX attributes, TensorFlow attrs, the non-tensor
      arguments of a PyTorch op by schema name), plain Python values;
    - ``num_outputs``: how many outputs the node has (None where the framework does not
      record it: TensorFlow);
    - ``node``: the framework's own node context, for what the common view lacks.

    >>> y = node.call("example.fancy_gelu", node.input(0), alpha=node.attr("alpha", 1.0))
    """

    def __init__(
        self,
        framework: str,
        node: NodeContext,
        inputs: Sequence[Expr | None],
        attrs: Mapping[str, Any],
        num_outputs: int | None,
    ) -> None:
        self.framework = framework
        self.node = node
        self.name = node.name
        self.op = node.op
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.num_outputs = num_outputs
        self._num_calls = 0

    def __str__(self) -> str:
        return str(self.node)

    def input(self, index: int) -> Expr:
        """Input ``index`` as a graph expression."""
        if index >= len(self.inputs) or self.inputs[index] is None:
            raise self.error(f"has no input {index} (it has {len(self.inputs)})")
        return self.inputs[index]  # type: ignore[return-value]

    def attr(self, name: str, default: Any = None) -> Any:
        """Attribute ``name``, or ``default`` when the node does not set it."""
        return self.attrs.get(name, default)

    def call(self, op: str | Op, *args: Expr, **attrs: Any) -> Expr:
        """The ember op ``op`` (an Op or its name) on ``args``, named after this node and
        evaluated now (a Constant) when every argument is a Constant."""
        self._num_calls += 1
        suffix = "" if self._num_calls == 1 else f"_{self._num_calls - 1}"
        name = op.name if isinstance(op, Op) else op
        expr = self.node.builder.call(name, *args, name=self.name + suffix, node=self.node, **attrs)
        if args and all(isinstance(a, Constant) for a in args) and isinstance(expr, Call):
            return fold_call(expr)
        return expr

    def item(self, value: Expr, index: int) -> Expr:
        """Field ``index`` of a tuple value (an op with several outputs)."""
        if isinstance(value, Tuple):
            return value.fields[index]
        return TupleGetItem(value, index)

    def error(self, what: str, hint: str | None = None) -> FrontendError:
        """An error naming this node (raise it)."""
        return FrontendError(f"{self}: {what}", hint=hint)


def run_converter(converter: CustomConverter, node: CustomNode) -> list[Expr]:
    """Run ``converter`` on ``node``; its outputs as a list, checked against the node's
    output count (a converter returning the wrong number is a :class:`CustomOpError`)."""
    try:
        result = converter.fn(node)
    except EmberError:
        raise
    except Exception as err:  # a bug in the user's converter: say whose
        raise CustomOpError(
            f"the custom converter of {converter.framework} op {converter.op!r} (library "
            f"{converter.library!r}) failed on {node}: {type(err).__name__}: {err}",
            hint="node.inputs and node.attrs show what the converter gets",
        ) from err
    if isinstance(result, Expr):
        outputs: list[Any] = [result]
    elif isinstance(result, list | tuple):
        outputs = list(result)
    else:
        raise CustomOpError(
            f"the custom converter of {converter.framework} op {converter.op!r} (library "
            f"{converter.library!r}) returned {type(result).__name__} for {node}",
            hint="return the graph expression of each output: node.call(...), or a tuple of "
            "them for an op with several outputs",
        )
    wrong = [type(o).__name__ for o in outputs if not isinstance(o, Expr)]
    if wrong:
        raise CustomOpError(
            f"the custom converter of {converter.framework} op {converter.op!r} returned "
            f"{', '.join(wrong)} for {node}, not graph expressions",
            hint="build outputs with node.call(...) (an ember op) or return node.input(i)",
        )
    expected = converter.num_outputs if converter.num_outputs is not None else node.num_outputs
    if expected is not None and len(outputs) != expected:
        declared = "declares" if converter.num_outputs is not None else "has"
        raise CustomOpError(
            f"the custom converter of {converter.framework} op {converter.op!r} (library "
            f"{converter.library!r}) returned {len(outputs)} output(s) for {node}, which "
            f"{declared} {expected}",
            hint="return one expression per output of the node (a tuple for several)",
        )
    return outputs


__all__ = [
    "CUSTOM_FRAMEWORKS",
    "ConverterFn",
    "CustomConverter",
    "CustomNode",
    "add_converter",
    "custom_converters",
    "find_converter",
    "onnx_op_name",
    "registered_converters",
    "remove_converter",
    "run_converter",
]
