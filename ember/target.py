"""Targets: where code runs, parsed from a string.

    Target.parse("host")                  # this CPU: -march=native
    Target.parse("llvm -mcpu=skylake")    # x86-64 with a chosen CPU (TVM spelling)
    Target.parse("x86_64 -mcpu=native")
    Target.parse("c").cflags              # portable C, no -march

Only CPU targets that the host C compiler can build for are known so far;
anything else raises :class:`ember.errors.TargetError`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ember.errors import TargetError

_KINDS = {"host": "host", "llvm": "host", "c": "c", "x86_64": "host", "cpu": "host"}
_KNOWN_OPTIONS = ("-mcpu", "-mattr", "-num-cores")


@dataclass(frozen=True)
class Target:
    """A parsed target: ``kind`` ("host" or "c") and its options (``{"mcpu": "skylake"}``)."""

    kind: str
    options: tuple[tuple[str, str], ...] = ()
    text: str = "host"

    @staticmethod
    def parse(text: str | Target) -> Target:
        """Parse ``"host"``, ``"llvm -mcpu=NAME"``, ``"x86_64 -mcpu=NAME"`` or ``"c"``."""
        if isinstance(text, Target):
            return text
        parts = shlex.split(text or "")
        if not parts:
            raise TargetError("empty target string", hint='use "host" for this CPU')
        kind = _KINDS.get(parts[0])
        if kind is None:
            raise TargetError(
                f"unknown target {parts[0]!r} in {text!r}",
                hint=f"known CPU targets: {', '.join(sorted(_KINDS))}",
            )
        options: list[tuple[str, str]] = []
        for p in parts[1:]:
            key, _, value = p.partition("=")
            if key not in _KNOWN_OPTIONS or not value:
                raise TargetError(
                    f"unknown target option {p!r} in {text!r}",
                    hint=f"options look like -mcpu=NAME; known: {', '.join(_KNOWN_OPTIONS)}",
                )
            if not re.fullmatch(r"[A-Za-z0-9_.,+\-]+", value):
                raise TargetError(f"invalid value {value!r} for target option {key}")
            options.append((key.lstrip("-"), value))
        return Target(kind, tuple(options), text)

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @property
    def cflags(self) -> tuple[str, ...]:
        """C compiler flags this target implies."""
        if self.kind == "c":
            return ()
        flags = [f"-march={self.option('mcpu', 'native')}"]
        attrs = self.option("mattr")
        if attrs:
            flags += [f"-m{a.lstrip('+')}" for a in attrs.split(",") if a.startswith("+")]
        return tuple(flags)

    def __str__(self) -> str:
        return self.text
