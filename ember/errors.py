"""Error classes: user-facing errors say what failed, where, and how to fix it.

Every error a user can cause derives from :class:`EmberError`. Bugs inside ember
raise :class:`InternalError`. Messages name the node / op / stage / axis and end
with a hint when one exists.
"""

from __future__ import annotations


class EmberError(Exception):
    """Base class of errors caused by the user's input (model, shapes, schedule, target)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class FrontendError(EmberError):
    """A model file could not be imported (corrupt file, unsupported op, missing shape)."""


CUSTOM_OP_API = "ember.custom.register_converter"
CUSTOM_OP_PAGE = "docs/custom_ops.md"
"""Where users learn to add the ops a frontend lacks (named by UnsupportedOpError's hint)."""


class UnsupportedOpError(FrontendError):
    """A model uses ops ember does not support; lists every one of them at once."""

    def __init__(
        self, framework: str, unsupported: list[tuple[str, str]], *, extra: str = ""
    ) -> None:
        # unsupported: (op description, node name) pairs, in model order
        self.unsupported = list(unsupported)
        by_op: dict[str, list[str]] = {}
        for op, node in unsupported:
            by_op.setdefault(op, []).append(node)
        lines = [
            f"  {op}: {len(nodes)} node(s): {', '.join(repr(n) for n in nodes[:5])}"
            + (" ..." if len(nodes) > 5 else "")
            for op, nodes in by_op.items()
        ]
        super().__init__(
            f"the {framework} model uses {len(by_op)} unsupported op(s){extra}:\n"
            + "\n".join(lines),
            hint=f"`ember.frontend.{framework.lower()}.supported_ops()` lists what the "
            f"{framework} frontend supports; to import an op of your own, register a "
            f"converter for it with {CUSTOM_OP_API} (see {CUSTOM_OP_PAGE})",
        )


class ShapeError(EmberError):
    """An op got inputs whose shapes or dtypes do not fit its type rule."""


class AttrError(EmberError):
    """An op attribute has an invalid value."""


class VerifyError(EmberError):
    """A graph or loop IR is malformed (free variable, type mismatch, ...)."""


class ScheduleError(EmberError):
    """A schedule primitive was used in a way that makes no sense."""


class LoweringError(EmberError):
    """A tensor expression or schedule could not be lowered to loops."""


class BuildError(EmberError):
    """Generated code failed to compile or link; carries the compiler's message."""


class TargetError(EmberError):
    """An unknown or unsupported target string or device."""


class CustomOpError(EmberError):
    """A user's custom op, converter, compute or schedule (``ember.custom``) is registered
    twice, or breaks its own contract: a converter returning the wrong number of outputs,
    a compute or numpy reference whose result disagrees with the op's type rule."""


class EmberRuntimeError(EmberError):
    """A compiled module was called with wrong inputs, or an artifact is corrupt."""


class InternalError(Exception):
    """A bug in ember. Please report it with the model that triggers it."""


__all__ = [
    "EmberError",
    "FrontendError",
    "UnsupportedOpError",
    "ShapeError",
    "AttrError",
    "VerifyError",
    "ScheduleError",
    "LoweringError",
    "BuildError",
    "TargetError",
    "CustomOpError",
    "EmberRuntimeError",
    "InternalError",
]
