"""Tuning tasks: a registered schedule template applied to concrete arguments and a target.

    @template("my_matmul")
    def my_matmul(cfg, n, m, k):
        ...                               # declare knobs on cfg, return (schedule, tensors)

    task = create_task("my_matmul", (512, 512, 512), target="host")
    len(task.config_space)                # number of points
    s, tensors = task.instantiate(task.config_space.get(3))
    s, tensors = task.instantiate(FallbackConfig())       # the default schedule

A task's *workload* (template name + JSON arguments + key) identifies it in tuning
records; two tasks with the same workload and target share records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ember.dispatch.space import ConfigSpace, FallbackConfig, _ConfigBase
from ember.errors import ScheduleError
from ember.target import Target

Template = Callable[..., tuple[Any, list[Any]]]

_TEMPLATES: dict[str, Template] = {}


def template(name: str) -> Callable[[Template], Template]:
    """Register a schedule template under ``name`` (returns the function unchanged).

    >>> @template("matmul_example")
    ... def matmul_example(cfg, n): ...
    """

    def register(func: Template) -> Template:
        old = _TEMPLATES.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (
            func.__module__,
            func.__qualname__,
        ):
            raise ScheduleError(
                f"template {name!r} is already registered by {old.__module__}.{old.__qualname__}"
            )
        _TEMPLATES[name] = func
        func.template_name = name  # type: ignore[attr-defined]
        return func

    return register


def get_template(name: str) -> Template:
    """The template registered as ``name`` (``ember.dispatch`` registers the built-in ones)."""
    try:
        return _TEMPLATES[name]
    except KeyError:
        raise ScheduleError(
            f"no tuning template named {name!r}",
            hint=f"registered templates: {sorted(_TEMPLATES)}",
        ) from None


def list_templates() -> list[str]:
    """Names of the registered templates, sorted."""
    return sorted(_TEMPLATES)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise ScheduleError(
        f"template arguments must be ints, floats, strings or tuples of them, got {value!r}"
    )


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def workload_of(name: str, args: tuple[Any, ...], key: str | None = None) -> dict[str, Any]:
    """The record form of a workload: ``{"template", "args", "key"}``.

    The key defaults to a hash of the template name and arguments; model kernels pass the
    compiler's :func:`ember.graph.structural.workload_key` instead.
    """
    json_args = _jsonable(list(args))
    if key is None:
        text = json.dumps([name, json_args], sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
    return {"template": name, "args": json_args, "key": key}


@dataclass
class Task:
    """One tuning problem: template + arguments + target."""

    name: str
    args: tuple[Any, ...]
    target: Target
    func: Template
    key: str | None = None
    _space: ConfigSpace | None = field(default=None, repr=False)
    describe: tuple[Any, ...] | None = None
    """JSON arguments recorded instead of ``args`` (a model kernel's args are a Function)."""

    @property
    def target_key(self) -> str:
        """The target as tuning records name it (:attr:`ember.target.Target.key`)."""
        return self.target.key

    @property
    def workload(self) -> dict[str, Any]:
        return workload_of(self.name, self.describe or self.args, self.key)

    @property
    def config_space(self) -> ConfigSpace:
        """The template's space (collected once by running it on a ConfigSpace)."""
        if self._space is None:
            space = ConfigSpace()
            space.template_name = self.name
            self.func(space, *self.args)
            self._space = space
        return self._space

    @property
    def flop(self) -> float:
        """Floating-point operations of one run (from the template's ``cfg.add_flop``)."""
        return self.config_space.flop

    def instantiate(self, cfg: _ConfigBase) -> tuple[Any, list[Any]]:
        """Build ``(schedule, tensors)`` for one config (or the fallback config)."""
        return self.func(cfg, *self.args)

    def default_config(self) -> FallbackConfig:
        return FallbackConfig()

    def default_index(self) -> int | None:
        """The point of the space that is the default schedule, or None when the default
        takes a choice the space does not offer (or the template rejects it)."""
        cfg = FallbackConfig()
        try:
            self.instantiate(cfg)
            return self.config_space.index_of(cfg.knob_values())
        except Exception:  # noqa: BLE001  (no such point: the default stays outside the space)
            return None

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes re-collect the space; templates pickle by module + name.
        state = dict(self.__dict__)
        state["_space"] = None
        return state


def create_task(
    name: str,
    args: tuple[Any, ...] | list[Any],
    target: str | Target = "host",
    key: str | None = None,
) -> Task:
    """A task for template ``name`` on ``args`` for ``target``.

    >>> task = create_task("matmul", (64, 64, 64), "host")
    """
    func = get_template(name)
    return Task(name, _tupled(list(args)), Target.parse(target), func, key)


__all__ = ["Task", "create_task", "get_template", "list_templates", "template", "workload_of"]
