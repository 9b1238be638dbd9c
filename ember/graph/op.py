"""Graph ops as IR objects: what a :class:`~ember.graph.ir.Call` applies.

An :class:`Op` has a name, a frozen attribute dataclass (validated in its
``__post_init__``), a *type rule* (input types + attrs -> output type), a numpy
*reference* (the oracle of every numerical test), a fusion *pattern* and a FLOP
count. Op libraries create ops with :func:`register_op` and attach the rules
with its decorators; the standard library is :mod:`ember.ops` (which also
offers ``ember.ops.get_op`` and ``ember.ops.call`` by name). Later stages
attach to the same object: the operator library (:mod:`ember.topi`) its TE
compute, in ``op.extensions``.

The op table lives here, with the IR, as in TVM (``tvm.ir.Op.get``): ops are
one object per name, which is what lets a pickled graph (for tuning workers)
come back with the very op objects of the process that unpickles it. How to
define an op: :mod:`ember.ops.registry`.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import AttrError, CustomOpError, EmberError, InternalError, ShapeError

if TYPE_CHECKING:
    from ember.graph.ir import Call, Expr, Type


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
FlopRule = Callable[["Call"], int]

STANDARD_LIBRARY = "ember.ops"
"""The module that registers ember's built-in ops."""


class Op:
    """A registered graph op. Compare ops by identity; look them up with :func:`get_op`."""

    def __init__(
        self,
        name: str,
        attrs_type: type,
        pattern: OpPattern,
        num_inputs: int | None,
        doc: str = "",
        library: str = STANDARD_LIBRARY,
    ) -> None:
        self.name = name
        self.attrs_type = attrs_type
        self.pattern = pattern
        self.num_inputs = num_inputs  # None: variadic
        self.doc = doc
        self.library = library  # the module whose import registers this op
        self._type_rule: TypeRule | None = None
        self._reference: Reference | None = None
        self._flops: FlopRule | None = None
        # Later stages attach here: e.g. "compute", keyed by stage name.
        self.extensions: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Op({self.name})"

    @property
    def is_builtin(self) -> bool:
        """True for ember's standard ops; False for a user's (custom) op."""
        return self.library == STANDARD_LIBRARY

    def _missing(self, what: str, decorator: str) -> Exception:
        # A built-in op without its rule is an ember bug; a custom op's is the user's to add.
        if self.is_builtin:
            return InternalError(f"op {self.name} has no {what}")
        return CustomOpError(
            f"custom op {self.name} (library {self.library!r}) has no {what}",
            hint=f"decorate one with @{decorator} in {self.library}",
        )

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # Pickle by name (tuning builds graph kernels in worker processes): the registered
        # op is the one object per name; unpickling imports the library that defines it,
        # as pickle imports the module of any function it restores.
        return (_restore, (self.name, self.library))

    # -- registration decorators
    def type_rule(self, fn: TypeRule) -> TypeRule:
        self._type_rule = fn
        return fn

    def reference(self, fn: Reference) -> Reference:
        self._reference = fn
        return fn

    def flop_rule(self, fn: FlopRule) -> FlopRule:
        """Floating-point operations of one call (see :meth:`flops`)."""
        self._flops = fn
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
            raise self._missing("type rule", "op.type_rule")
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
            result = self._type_rule(types, attrs)
        except ShapeError as err:
            shapes = ", ".join(str(t) for t in types)
            raise ShapeError(
                f"op {self.name} (node {node_name!r}): {err.message}; input types: {shapes}",
                hint=err.hint,
            ) from None
        except EmberError:
            raise
        except Exception as err:
            if self.is_builtin:
                raise
            shapes = ", ".join(str(t) for t in types)
            raise CustomOpError(
                f"the type rule of custom op {self.name} (node {node_name!r}, library "
                f"{self.library!r}) failed on input types {shapes}: {type(err).__name__}: {err}",
                hint="a type rule gets the input types and the attrs and returns the output "
                "type; raise ember.errors.ShapeError for inputs the op does not accept",
            ) from err
        if not self.is_builtin and not hasattr(result, "fields") and not hasattr(result, "shape"):
            raise CustomOpError(
                f"the type rule of custom op {self.name} (node {node_name!r}) returned "
                f"{result!r}, not a type",
                hint="return a TensorType (e.g. types[0] for an elementwise op, or "
                "TensorType(shape, dtype)) or a TupleType of them",
            )
        return result

    def evaluate(self, inputs: list[np.ndarray], attrs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the numpy reference."""
        if self._reference is None:
            raise self._missing("numpy reference", "op.reference")
        return self._reference(inputs, attrs)

    def flops(self, call: Call) -> int:
        """Floating-point operations of ``call`` (a call of this op); a multiply-add counts
        2. The op's FLOP rule if it has one, else by pattern: data movement (injective,
        tuple) 0, a reduction one per input element, anything else one per output element.
        """
        if self._flops is not None:
            return int(self._flops(call))
        if self.pattern in (OpPattern.INJECTIVE, OpPattern.TUPLE):
            return 0
        if self.pattern == OpPattern.COMM_REDUCE:
            return type_size(call.args[0].type)
        return type_size(call.type)


def type_size(t: Type) -> int:
    """Elements of a tensor type, or of every field of a tuple type."""
    fields = getattr(t, "fields", None)
    if fields is not None:
        return sum(type_size(f) for f in fields)
    return int(t.size)  # type: ignore[union-attr]


_TABLE: dict[str, Op] = {}


def register_op(
    name: str,
    attrs_type: type = NoAttrs,
    pattern: OpPattern = OpPattern.OPAQUE,
    num_inputs: int | None = 1,
    doc: str = "",
    library: str = STANDARD_LIBRARY,
) -> Op:
    """Create and register an op; attach its type rule and reference with the decorators.

    ``library`` is the module whose import registers the op (a tuning worker that
    unpickles a graph imports it to find the op).
    """
    if name in _TABLE:
        raise InternalError(f"op {name} registered twice")
    if not dataclasses.is_dataclass(attrs_type):
        raise InternalError(f"attrs of op {name} must be a dataclass")
    op = Op(name, attrs_type, pattern, num_inputs, doc, library)
    _TABLE[name] = op
    return op


def get_op(name: str) -> Op:
    """The op registered under ``name`` (``ember.ops.get_op`` loads the standard ops first)."""
    try:
        return _TABLE[name]
    except KeyError:
        raise AttrError(
            f"no op named {name!r}",
            hint="see ember.ops.list_ops(); ops register when their library is imported "
            "(import ember.ops for the standard ones)",
        ) from None


def unregister_op(name: str) -> Op:
    """Remove the user's op ``name`` from the table, with what later stages attached to
    it (``ember.custom.unregister_library`` and ``ember.custom.scope`` call this); ember's
    own ops cannot be removed. Returns the removed op."""
    op = get_op(name)
    if op.is_builtin:
        raise InternalError(f"op {name} is one of ember's built-in ops; it cannot be removed")
    del _TABLE[name]
    return op


def registered_ops() -> list[str]:
    """Names of the ops registered so far, sorted."""
    return sorted(_TABLE)


def _restore(name: str, library: str) -> Op:
    if name not in _TABLE:
        importlib.import_module(library)
    return get_op(name)


__all__ = [
    "FlopRule",
    "NoAttrs",
    "Op",
    "OpPattern",
    "Reference",
    "STANDARD_LIBRARY",
    "TypeRule",
    "get_op",
    "register_op",
    "registered_ops",
    "type_size",
    "unregister_op",
]
