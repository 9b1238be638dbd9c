"""Model importers: framework files -> ember graph IR (``Module``) + weights (``params``).

    mod, params = ember.frontend.load("resnet18.onnx", shape={"data": (1, 3, 224, 224)})
    mod, params = ember.frontend.from_onnx("resnet18.onnx", shape={"data": (1, 3, 224, 224)})
    specs = ember.frontend.parse_input_spec('{"data": [1, 3, 224, 224]}')

One package per framework (``onnx``, ``pytorch``, ``tensorflow``, ``tflite``,
``mxnet``, ``darknet``), each with ``from_<framework>`` and ``supported_ops()``, all built on
the registry and graph builder of :mod:`ember.frontend.common`. The packages
load on first use (``ember.frontend.from_onnx``, ``ember.frontend.onnx``,
``load``), so ``import ember.frontend`` stays cheap. Ops a frontend does not know
convert through the converters users register with ``ember.custom``
(:mod:`ember.frontend.custom`; docs/custom_ops.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.frontend.input_spec import InputSpec, parse_input_spec
from ember.frontend.load import (  # `load` the function; the module stays importable by name
    FRAMEWORKS,
    detect_framework,
    framework_package,
    load,
)

if TYPE_CHECKING:  # what __getattr__ hands out, for type checkers
    from ember.frontend.darknet import from_darknet
    from ember.frontend.mxnet import from_mxnet
    from ember.frontend.onnx import from_onnx, supported_ops
    from ember.frontend.pytorch import from_pytorch
    from ember.frontend.tensorflow import from_tensorflow
    from ember.frontend.tflite import from_tflite

# ember.frontend.from_<framework> -> its framework package
_IMPORTERS = {f"from_{name}": name for name in FRAMEWORKS}


def __getattr__(name: str) -> Any:
    if name in FRAMEWORKS:  # ember.frontend.onnx before anything imported it
        return framework_package(name)
    if name in _IMPORTERS:
        return getattr(framework_package(_IMPORTERS[name]), name)
    if name == "supported_ops":  # kept from when ONNX was the only frontend
        return framework_package("onnx").supported_ops
    raise AttributeError(f"module 'ember.frontend' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(FRAMEWORKS) | set(_IMPORTERS) | {"supported_ops"})


__all__ = [
    "FRAMEWORKS",
    "InputSpec",
    "detect_framework",
    "from_darknet",
    "from_mxnet",
    "from_onnx",
    "from_pytorch",
    "from_tensorflow",
    "from_tflite",
    "load",
    "parse_input_spec",
    "supported_ops",
]
