"""Custom operators: your own ops in the models you import, registered in one module.

Four registrations make an op the frontends do not know work like a built-in one: it
imports, runs in the reference executor, compiles (its kernel goes into the artifact,
which runs without your code) and autotunes::

    from dataclasses import dataclass
    import numpy as np
    from ember import custom, te

    @dataclass(frozen=True)
    class FancyGeluAttrs:
        alpha: float = 1.702

    fancy_gelu = custom.register_op("example.fancy_gelu", FancyGeluAttrs, pattern="elemwise")

    @fancy_gelu.type_rule                       # input types + attrs -> output type
    def _(types, attrs):
        return types[0]

    @fancy_gelu.reference                       # numpy: the oracle of every test
    def _(inputs, attrs):
        (x,) = inputs
        return (x / (1 + np.exp(-attrs.alpha * x))).astype(x.dtype)

    @custom.register_compute(fancy_gelu)        # TE: what the compiled kernel computes
    def _(inputs, attrs, out_type):
        (x,) = inputs
        return te.compute(out_type.shape, lambda *i: x[i] * te.sigmoid(x[i] * attrs.alpha))

    @custom.register_converter("onnx", "FancyGelu", domain="com.example")
    @custom.register_converter("pytorch", "mylib::fancy_gelu")
    def _(node):                                # a framework node -> ember ops
        return node.call(fancy_gelu, node.input(0), alpha=node.attr("alpha", 1.702))

Keep these in a module of your own (``import my_ops`` before importing models): the
autotuner's worker processes import it to find the op. ``register_schedule`` adds a
schedule where the default ones do not fit; ``register_compute(..., tunable=True)``
makes a dense-like reduction a tunable anchor. ``unregister_library("my_ops")`` undoes a
module's registrations (to run them again), ``with custom.scope():`` undoes those made in
the block. The tutorial is ``docs/custom_ops.md``.

Each piece lives in its layer (the op in the graph IR's op table, the compute and the
schedule on the op for the operator library, the converter in the frontends' custom
registry, :mod:`ember.frontend.custom`); this module is the one place users call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from ember.errors import CustomOpError
from ember.frontend.custom import (
    CUSTOM_FRAMEWORKS,
    ConverterFn,
    CustomConverter,
    CustomNode,
    add_converter,
    custom_converters,
    onnx_op_name,
    registered_converters,
    remove_converter,
)
from ember.frontend.load import framework_package
from ember.graph.ir import TensorType, TupleType
from ember.graph.op import (
    STANDARD_LIBRARY,
    NoAttrs,
    Op,
    OpPattern,
    get_op,
    registered_ops,
    unregister_op,
)
from ember.graph.op import register_op as _register_op
from ember.te.tensor import ComputeOp, Tensor
from ember.topi.common import TAG_ANCHOR, Compute, ScheduleRule
from ember.topi.common import register_compute as _register_compute
from ember.topi.common import register_schedule as _register_schedule

PATTERNS = {
    "elemwise": OpPattern.ELEMWISE,
    "broadcast": OpPattern.BROADCAST,
    "injective": OpPattern.INJECTIVE,
    "reduce": OpPattern.COMM_REDUCE,
    "anchor": OpPattern.OUT_ELEMWISE_FUSABLE,
    "opaque": OpPattern.OPAQUE,
}
"""Fusion patterns by name. ``elemwise``: ``out[i] = f(x[i])`` on same-shaped inputs
(``broadcast``: with numpy broadcasting); ember may run these on a re-laid-out tensor (a
conv's blocked NCHW[x]c output), so their rules must take any rank. ``injective``: each
output element reads one input element. ``reduce``: a commutative reduction. ``anchor``
is TVM's OUT_ELEMWISE_FUSABLE (a conv or dense whose output takes an elementwise
epilogue), ``opaque`` never fuses (the default)."""

_OP_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def register_op(
    name: str,
    attrs: type = NoAttrs,
    *,
    pattern: str | OpPattern = "opaque",
    num_inputs: int | None = 1,
    library: str | None = None,
    doc: str = "",
) -> Op:
    """Create the graph op ``name`` (``"mylib.fancy_gelu"``: a namespace of your own, a
    dot, a name); attach its type rule and numpy reference with ``@op.type_rule`` and
    ``@op.reference``, optionally its FLOP count with ``@op.flop_rule``.

    ``attrs``: a frozen dataclass of its attributes (``NoAttrs``: none). ``pattern``:
    how it fuses, a name of :data:`PATTERNS` or an :class:`OpPattern`. ``num_inputs``:
    None for any number. ``library``: the module whose import registers it (default:
    the calling module), imported again by the tuner's worker processes.

    >>> op = register_op("example.twice", pattern="elemwise")  # doctest: +SKIP
    """
    if not isinstance(name, str) or not _OP_NAME.match(name):
        raise CustomOpError(
            f"custom op name {name!r} is not a namespaced name",
            hint="name it 'yourlib.op_name' (a namespace of your own keeps it apart from "
            "ember's ops and other libraries')",
        )
    if name in registered_ops():
        first = get_op(name)
        owner = "a built-in op" if first.is_builtin else f"registered by {first.library!r}"
        raise CustomOpError(
            f"op {name!r} is already registered ({owner})",
            hint="register each op once, when its module is first imported, or choose another "
            "name; to run a module's registrations again, first call "
            f"ember.custom.unregister_library({first.library!r})"
            if not first.is_builtin
            else "choose a name in a namespace of your own ('yourlib.op_name')",
        )
    if not (isinstance(attrs, type) and dataclasses.is_dataclass(attrs)):
        raise CustomOpError(
            f"attrs of custom op {name!r} must be a dataclass, got {attrs!r}",
            hint="@dataclasses.dataclass(frozen=True)\nclass MyAttrs:\n    alpha: float = 1.0",
        )
    if not attrs.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise CustomOpError(
            f"attrs {attrs.__name__} of custom op {name!r} must be a frozen dataclass "
            "(graphs are immutable and compared by value)",
            hint="declare it with @dataclasses.dataclass(frozen=True)",
        )
    if num_inputs is not None and (not isinstance(num_inputs, int) or num_inputs < 0):
        raise CustomOpError(f"custom op {name!r}: num_inputs must be an int >= 0 or None")
    module = library or _caller_module()
    return _register_op(name, attrs, _pattern(pattern, name), num_inputs, doc, module)


def register_compute(op: str | Op, *, tunable: bool = False) -> Callable[[Compute], Compute]:
    """Decorator: ``fn(inputs, attrs, out_type) -> te.Tensor`` (a tuple for several
    outputs) is the TE compute of the custom op ``op``; ``out_type`` is the call's type
    from the op's type rule, and the compute's result must match it.

    ``tunable=True`` declares a dense-like op: its compute is one reduction of the
    output's shape (``te.sum`` over a ``te.reduce_axis``), an *anchor* that the default
    schedule computes in its output's loops and that ``ember.autotune`` tunes with the
    epilogue fused after it (the op's pattern must be ``"anchor"`` or ``"opaque"``).

    >>> @register_compute("example.twice")  # doctest: +SKIP
    ... def _(inputs, attrs, out_type):
    ...     return te.compute(out_type.shape, lambda *i: inputs[0][i] * 2.0)
    """
    target = _custom_op(op, "a compute")
    if "compute" in target.extensions:
        raise CustomOpError(
            f"custom op {target.name} already has a TE compute",
            hint="register one compute per op, once",
        )
    if tunable and target.pattern not in (OpPattern.OUT_ELEMWISE_FUSABLE, OpPattern.OPAQUE):
        raise CustomOpError(
            f"custom op {target.name} is registered tunable, but its pattern is "
            f"{target.pattern.name.lower()}",
            hint="a tunable op is an anchor: register_op(..., pattern='anchor') lets an "
            "elementwise epilogue fuse after it",
        )

    def register(fn: Compute) -> Compute:
        def compute(inputs: list[Tensor], attrs: Any, out_type: Any) -> Any:
            result = fn(inputs, attrs, out_type)
            if tunable:
                _mark_anchor(target, result)
            return result

        compute.__wrapped__ = fn  # type: ignore[attr-defined]
        _register_compute(target.name)(compute)
        return fn

    return register


def register_schedule(op: str | Op) -> Callable[[ScheduleRule], ScheduleRule]:
    """Decorator: ``fn(outputs, target) -> te.Schedule | None`` schedules every kernel
    that calls the custom op ``op`` (None: the default schedule instead).

    ``outputs`` are the kernel's output tensors: the op's own for an ``opaque`` op, the
    end of the fused epilogue otherwise. Tuned kernels (``tunable=True`` anchors with a
    tuning record) use the tuned schedule instead.

    >>> @register_schedule("example.twice")  # doctest: +SKIP
    ... def _(outputs, target):
    ...     s = te.create_schedule([t.op for t in outputs])
    ...     s[outputs[0]].parallel(s[outputs[0]].op.axis[0])
    ...     return s
    """
    target = _custom_op(op, "a schedule")
    if "schedule" in target.extensions:
        raise CustomOpError(
            f"custom op {target.name} already has a schedule rule",
            hint="register one schedule per op, once (it may return None to decline)",
        )

    def register(fn: ScheduleRule) -> ScheduleRule:
        _register_schedule(target.name)(fn)
        return fn

    return register


def register_converter(
    framework: str, op: str, *, domain: str = "", num_outputs: int | None = None
) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator: ``fn(node: CustomNode) -> Expr | tuple[Expr, ...]`` converts the nodes of
    ``op`` when a ``framework`` model is imported.

    ``framework``: ``"onnx"`` (``op`` is the op type, ``domain`` its domain:
    ``"com.example"``), ``"pytorch"`` (``"namespace::name"`` of a ``torch.library`` op,
    through torch.export and TorchScript) or ``"tensorflow"`` (the op name in the
    GraphDef). ``num_outputs``: how many outputs ``fn`` returns; by default as many as
    the node has (ONNX, PyTorch) or any number (TensorFlow). Stack the decorator to use
    one converter for several frameworks.

    >>> @register_converter("onnx", "FancyGelu", domain="com.example")  # doctest: +SKIP
    ... def _(node):
    ...     return node.call("example.fancy_gelu", node.input(0))
    """
    key = _converter_key(framework, op, domain)

    def register(fn: ConverterFn) -> ConverterFn:
        if not callable(fn):
            raise CustomOpError(f"the converter of {framework} op {key!r} is not a function")
        module = getattr(fn, "__module__", None) or _caller_module()
        add_converter(CustomConverter(framework, key, fn, num_outputs, module))
        return fn

    return register


def import_library(spec: str | Path) -> ModuleType:
    """Import a module of custom ops: a module name (``"my_ops"``, ``"pkg.ops"``) or the
    path of a ``.py`` file, whose folder then joins ``sys.path`` (so the tuner's worker
    processes, which start with this ``sys.path``, import it too). The CLI's
    ``--custom-ops`` calls this.

    >>> import_library("fancy_ops.py")  # doctest: +SKIP
    <module 'fancy_ops' from '/home/me/fancy_ops.py'>
    """
    text = str(spec)
    if text.endswith(".py") or "/" in text or os.sep in text:
        path = Path(text).resolve()
        if not path.is_file():
            raise CustomOpError(
                f"custom op library {text!r} does not exist",
                hint="pass the path of a .py file, or the name of an importable module",
            )
        folder, name = str(path.parent), path.stem
        if folder not in sys.path:
            sys.path.insert(0, folder)
        loaded = sys.modules.get(name)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path:
            raise CustomOpError(
                f"custom op library {text!r}: a different module named {name!r} is already "
                f"imported (from {getattr(loaded, '__file__', None)})",
                hint="rename the file so its module name is unique",
            )
    else:
        name = text
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name.split(".")[0] and err.name != name:
            raise  # the library itself imports something missing: its own error
        raise CustomOpError(
            f"custom op library {name!r} cannot be imported: no module of that name",
            hint="pass the path of its .py file (--custom-ops ./my_ops.py) or add its folder "
            "to PYTHONPATH",
        ) from None


def unregister_library(library: str | ModuleType) -> list[str]:
    """Undo what the module ``library`` (its name, or the module) registered: its ops, with
    their computes and schedules, and its converters. Returns their names (ops, then
    ``framework:op`` converters), sorted; nothing registered is no error.

    Use it to run a module's registrations again in the same interpreter: after editing
    ``my_ops.py``, ``unregister_library("my_ops")`` then ``importlib.reload(my_ops)``; in a
    notebook whose cells register ops, ``unregister_library("__main__")`` then re-run them.
    Graphs built before keep the op objects they hold; import the model again to use the
    ops registered anew.

    >>> unregister_library("my_ops")  # doctest: +SKIP
    ['my_ops.fancy_gelu', 'onnx:com.example.FancyGelu']
    """
    name = library.__name__ if isinstance(library, ModuleType) else str(library)
    if name == STANDARD_LIBRARY or name.startswith("ember."):
        raise CustomOpError(
            f"{name!r} is ember's own library; only users' registrations can be removed",
            hint="pass the name of the module that called ember.custom.register_*",
        )
    ops = [op for op in registered_ops() if get_op(op).library == name]
    for op in ops:
        unregister_op(op)
    converters = [c for c in custom_converters() if c.library == name]
    for converter in converters:
        remove_converter(converter.framework, converter.op)
    return ops + sorted(f"{c.framework}:{c.op}" for c in converters)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Registrations made in the ``with`` block last until it ends: the ops, converters,
    computes and schedules registered inside are removed again, whoever registered them
    (tests use it so that each leaves the registries as it found them). That includes a
    module of ops imported for the first time inside the block: import it before, or
    ``importlib.reload`` it after, to use its ops again.

    >>> with scope():  # doctest: +SKIP
    ...     op = register_op("scratch.twice", pattern="elemwise")
    >>> "scratch.twice" in ember.ops.list_ops()  # doctest: +SKIP
    False
    """
    before = set(registered_ops())
    # Computes and schedules added inside to users' ops registered before are undone too.
    extensions = {
        name: dict(get_op(name).extensions) for name in before if not get_op(name).is_builtin
    }
    converters = {(c.framework, c.op) for c in custom_converters()}
    try:
        yield
    finally:
        after = set(registered_ops())
        for name in sorted(after - before):
            if not get_op(name).is_builtin:  # ember's ops may load lazily inside the block
                unregister_op(name)
        for name, saved in extensions.items():
            if name in after:
                get_op(name).extensions.clear()
                get_op(name).extensions.update(saved)
        for c in custom_converters():
            if (c.framework, c.op) not in converters:
                remove_converter(c.framework, c.op)


# ----------------------------------------------------------------------------- helpers


def _caller_module() -> str:
    """The module that called into this one (the user's module: registers the op)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # type: ignore[assignment]
    return str(frame.f_globals.get("__name__", "__main__")) if frame else "__main__"


def _pattern(pattern: str | OpPattern, name: str) -> OpPattern:
    if isinstance(pattern, OpPattern):
        return pattern
    if pattern not in PATTERNS:
        raise CustomOpError(
            f"custom op {name!r}: unknown pattern {pattern!r}",
            hint=f"use one of {', '.join(PATTERNS)}",
        )
    return PATTERNS[pattern]


def _custom_op(op: str | Op, what: str) -> Op:
    """The registered op ``op``, which must be a user's op (not one of ember's)."""
    found = op if isinstance(op, Op) else get_op(op)
    if found.library == STANDARD_LIBRARY:
        raise CustomOpError(
            f"op {found.name} is one of ember's built-in ops; {what} cannot be added to it",
            hint="register an op of your own with ember.custom.register_op",
        )
    return found


def _mark_anchor(op: Op, result: Any) -> None:
    """Tag a tunable op's reduction so schedules and the tuning template see an anchor."""
    if not (isinstance(result, Tensor) and isinstance(result.op, ComputeOp)) or not (
        result.op.reduce_axis
    ):
        got = type(result).__name__ if not isinstance(result, Tensor) else "a tensor without a"
        raise CustomOpError(
            f"custom op {op.name} is registered tunable, but its compute returned {got} reduction",
            hint="a tunable op's compute is one te.compute whose body is a te.sum over a "
            "te.reduce_axis (as dense or matmul)",
        )
    result.op.tag = TAG_ANCHOR


_PYTORCH_OP = re.compile(r"^\w+::\w+$")


def _converter_key(framework: str, op: str, domain: str) -> str:
    """The frontend's name of ``op``, checked: well formed, and not one ember converts."""
    if framework not in CUSTOM_FRAMEWORKS:
        raise CustomOpError(
            f"no custom converters for framework {framework!r}",
            hint=f"register them for one of: {', '.join(CUSTOM_FRAMEWORKS)}",
        )
    builtin = framework_package(framework).CONVERTERS
    if framework == "onnx":
        if not op or "." in op or not op.isidentifier():
            raise CustomOpError(
                f"ONNX op type {op!r} is not a plain op type",
                hint="give the domain apart: register_converter('onnx', 'FancyGelu', "
                "domain='com.example')",
            )
        key = onnx_op_name(domain, op)
        if key == op and op in builtin:
            raise CustomOpError(
                f"ember converts the ONNX op {op!r} itself",
                hint="custom converters add ops ember lacks; a custom domain "
                "(domain='com.example') keeps yours apart",
            )
        return key
    if domain:
        raise CustomOpError(f"domain= is for ONNX ops only, not {framework} op {op!r}")
    if framework == "pytorch":
        if not _PYTORCH_OP.match(op) or op.startswith(("aten::", "prims::")):
            raise CustomOpError(
                f"PyTorch op {op!r} is not a custom op name",
                hint="name the op as torch.library defines it: 'mylib::fancy_gelu' "
                "(namespace::name; aten and prims are torch's own)",
            )
        return op
    if not op:
        raise CustomOpError("the TensorFlow op name is empty", hint="give the GraphDef's op name")
    if op in builtin:
        raise CustomOpError(
            f"ember converts the TensorFlow op {op!r} itself",
            hint="custom converters add ops ember lacks",
        )
    return op


__all__ = [
    "PATTERNS",
    "CustomNode",
    "NoAttrs",
    "OpPattern",
    "TensorType",
    "TupleType",
    "import_library",
    "register_compute",
    "register_converter",
    "register_op",
    "register_schedule",
    "registered_converters",
    "scope",
    "unregister_library",
]
