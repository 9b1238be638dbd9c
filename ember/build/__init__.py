"""Toolchains, kernel cache and module loading (and later the AOT executor and memory plan)."""

import sys as _sys
import types as _types
from typing import Any as _Any

from ember.build.native import build_module

__all__ = ["build_module"]


class _CallableModule(_types.ModuleType):
    """``ember.build`` is both this package and the public ``ember.build(s, args, ...)``:
    importing the package replaces the lazy attribute on ``ember``, so the package itself
    forwards calls to :func:`ember.te.lower.build`."""

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        from ember.te.lower import build

        return build(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
