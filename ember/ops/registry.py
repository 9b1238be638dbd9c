"""The op registry: everything about one graph op in one place.

An :class:`Op` has a name, a frozen attribute dataclass (validated in its
``__post_init__``), a *type rule* (input types + attrs -> output type), a numpy
*reference* (the oracle of every numerical test), and a fusion *pattern*.
Later stages (TE compute, schedules per target) attach to the same object.

Defining an op::

    @dataclass(frozen=True)
    class LeakyReluAttrs:
        alpha: float = 0.01

    leaky_relu = register_op("nn.leaky_relu", LeakyReluAttrs, OpPattern.ELEMWISE, num_inputs=1)

    @leaky_relu.type_rule
    def _(types, attrs):
        return types[0]

    @leaky_relu.reference
    def _(inputs, attrs):
        x = inputs[0]
        return np.where(x >= 0, x, x * attrs.alpha).astype(x.dtype)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import AttrError, EmberError, InternalError, ShapeError

if TYPE_CHECKING:
    from ember.graph.ir import Expr, Type


class OpPattern(enum.IntEnum):
    """How an op fuses (TVM's vocabulary; lower values fuse more freely)."""

    ELEMWISE = 0  # out[i] = f(in[i]) on same-shaped tensors
    BROADCAST = 1  # elementwise with numpy broadcasting
    # each output element reads one input element (reshape, transpose, pad, concat)
    INJECTIVE = 2
    COMM_REDUCE = 3  # commutative reduction (sum, max, pooling)
    OUT_ELEMWISE_FUSABLE = (
        4  # complex op whose output can take an elementwise epilogue (conv, dense)
    )
    TUPLE = 7  # produces a tuple (split)
    OPAQUE = 8  # never fused


@dataclasses.dataclass(frozen=True)
class NoAttrs:
    """Attributes of ops that have none."""


TypeRule = Callable[[list["Type"], Any], "Type"]
Reference = Callable[[list[np.ndarray], Any], "np.ndarray | tuple[np.ndarray, ...]"]


class Op:
    """A registered graph op. Compare ops by identity; look them up with :func:`get_op`."""

    def __init__(
        self,
        name: str,
        attrs_type: type,
        pattern: OpPattern,
        num_inputs: int | None,
        doc: str = "",
    ) -> None:
        self.name = name
        self.attrs_type = attrs_type
        self.pattern = pattern
        self.num_inputs = num_inputs  # None: variadic
        self.doc = doc
        self._type_rule: TypeRule | None = None
        self._reference: Reference | None = None
        # Later stages attach here: e.g. "compute", "schedule", keyed by stage name.
        self.extensions: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Op({self.name})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickle by name (tuning builds graph kernels in worker processes): the registered
        # op is the one object per name.
        return (get_op, (self.name,))

    # -- registration decorators
    def type_rule(self, fn: TypeRule) -> TypeRule:
        self._type_rule = fn
        return fn

    def reference(self, fn: Reference) -> Reference:
        self._reference = fn
        return fn

    # -- use
    def make_attrs(self, attrs: Mapping[str, Any], node_name: str = "") -> Any:
        """Build this op's attrs from keywords; an unknown or invalid value is an AttrError."""
        names = {f.name for f in dataclasses.fields(self.attrs_type)}
        unknown = sorted(set(attrs) - names)
        if unknown:
            raise AttrError(
                f"op {self.name} (node {node_name!r}) has no attribute(s) {', '.join(unknown)}",
                hint=f"its attributes are: {', '.join(sorted(names)) or 'none'}",
            )
        try:
            return self.attrs_type(**attrs)
        except EmberError as err:
            raise AttrError(
                f"op {self.name} (node {node_name!r}): {err.message}", hint=err.hint
            ) from None
        except (TypeError, ValueError) as err:
            raise AttrError(f"op {self.name} (node {node_name!r}): bad attributes: {err}") from None

    def infer_type(self, args: Sequence[Expr], attrs: Any, node_name: str = "") -> Type:
        """Output type of this op on ``args``; raises ShapeError naming op and node."""
        if self._type_rule is None:
            raise InternalError(f"op {self.name} has no type rule")
        if self.num_inputs is not None and len(args) != self.num_inputs:
            raise ShapeError(
                f"op {self.name} (node {node_name!r}) takes {self.num_inputs} input(s), "
                f"got {len(args)}"
            )
        if not isinstance(attrs, self.attrs_type):
            raise InternalError(
                f"op {self.name} got attrs of type {type(attrs).__name__}, "
                f"expected {self.attrs_type.__name__}"
            )
        types = [a.type for a in args]
        try:
            return self._type_rule(types, attrs)
        except ShapeError as err:
            shapes = ", ".join(str(t) for t in types)
            raise ShapeError(
                f"op {self.name} (node {node_name!r}): {err.message}; input types: {shapes}",
                hint=err.hint,
            ) from None

    def evaluate(self, inputs: list[np.ndarray], attrs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the numpy reference."""
        if self._reference is None:
            raise InternalError(f"op {self.name} has no numpy reference")
        return self._reference(inputs, attrs)


_REGISTRY: dict[str, Op] = {}


def register_op(
    name: str,
    attrs_type: type = NoAttrs,
    pattern: OpPattern = OpPattern.OPAQUE,
    num_inputs: int | None = 1,
    doc: str = "",
) -> Op:
    """Create and register an op; attach its type rule and reference with the decorators."""
    if name in _REGISTRY:
        raise InternalError(f"op {name} registered twice")
    if not dataclasses.is_dataclass(attrs_type):
        raise InternalError(f"attrs of op {name} must be a dataclass")
    op = Op(name, attrs_type, pattern, num_inputs, doc)
    _REGISTRY[name] = op
    return op


def get_op(name: str) -> Op:
    """The op registered under ``name`` (e.g. ``"nn.conv2d"``)."""
    import ember.ops  # noqa: F401  (registers all ops on first use)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise AttrError(f"no op named {name!r}", hint="see ember.ops.list_ops()") from None


def list_ops() -> list[str]:
    """Names of all registered ops, sorted."""
    import ember.ops  # noqa: F401

    return sorted(_REGISTRY)
