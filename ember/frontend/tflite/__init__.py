"""The TFLite frontend: ``.tflite`` flatbuffers (float32 and int8-quantized) -> graph IR.

    mod, params = from_tflite("mobilenet.tflite", shape={"input": (1, 224, 224, 3)})
    "CONV_2D" in supported_ops()                  # True

TensorFlow is not needed: ``schema`` reads the flatbuffer. ``importer`` walks
subgraph 0 (and rounds quantized activations to their grid), ``context`` holds
the converter registry and what a converter gets, ``ops_nn`` and ``ops_tensor``
the converters, on the NHWC builder of :mod:`ember.frontend.nhwc`. Importing
this package registers every converter.
"""

from ember.frontend.tflite import ops_nn, ops_tensor  # noqa: F401 (registers the converters)
from ember.frontend.tflite.context import CONVERTERS
from ember.frontend.tflite.importer import TFLiteConverter, from_tflite, supported_ops

__all__ = ["CONVERTERS", "TFLiteConverter", "from_tflite", "supported_ops"]
