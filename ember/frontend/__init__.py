"""Model importers: framework files -> ember graph IR (``Module``) + weights (``params``).

mod, params = ember.frontend.from_onnx("resnet18.onnx", shape={"data": (1, 3, 224, 224)})
specs = ember.frontend.parse_input_spec('{"data": [1, 3, 224, 224]}')
"""

from ember.frontend.input_spec import InputSpec, parse_input_spec
from ember.frontend.load import load  # the function; the module stays importable by name
from ember.frontend.mxnet import from_mxnet
from ember.frontend.onnx import from_onnx, supported_ops
from ember.frontend.pytorch import from_pytorch
from ember.frontend.tensorflow import from_tensorflow
from ember.frontend.tflite import from_tflite

__all__ = [
    "InputSpec",
    "from_mxnet",
    "from_onnx",
    "from_pytorch",
    "from_tensorflow",
    "from_tflite",
    "load",
    "parse_input_spec",
    "supported_ops",
]
