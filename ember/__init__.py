"""ember: an open deep learning compiler stack.

    mod, params = ember.frontend.from_onnx("model.onnx", shape={"data": (1, 3, 224, 224)})
    outs = ember.graph.interpret(mod, params, {"data": x})

Submodules and entry points load lazily: ``import ember`` costs nothing, and an
artifact loads with ``ember.load`` on a machine that has only numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from ember.version import __version__ as __version__

_SUBMODULES = {
    "autotune",
    "codegen",
    "config",
    "custom",
    "dispatch",
    "driver",
    "errors",
    "frontend",
    "graph",
    "ops",
    "runtime",
    "target",
    "te",
    "testing",
    "tir",
    "topi",
}
# name -> (module, attribute)
_FUNCTIONS = {
    "load": ("ember.runtime", "load"),
    "lower": ("ember.te.lower", "lower"),
    "build": ("ember.driver", "build"),
    "compile": ("ember.driver", "compile"),
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"ember.{name}")
    if name in _FUNCTIONS:
        module, attr = _FUNCTIONS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_FUNCTIONS))
