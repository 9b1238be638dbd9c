"""The TensorFlow frontend: frozen GraphDefs (``.pb``) and TF 2.x SavedModels -> graph IR.

    mod, params = from_tensorflow("frozen.pb", shape={"x": (1, 224, 224, 3)})
    "Conv2D" in supported_ops()                   # True

TensorFlow itself is not needed: ``proto`` decodes GraphDefs and ``savedmodel``
reads SavedModel checkpoints. ``importer`` walks the graph (inlining called
functions), ``context`` holds the converter registry and what a converter gets,
``ops_nn`` and ``ops_tensor`` the converters, on the NHWC builder of
:mod:`ember.frontend.nhwc`. Importing this package registers every converter.
"""

from ember.frontend.tensorflow import ops_nn, ops_tensor  # noqa: F401 (registers the converters)
from ember.frontend.tensorflow.context import CONVERTERS, FREEZE_HINT
from ember.frontend.tensorflow.importer import (
    TensorFlowConverter,
    from_tensorflow,
    parse_ref,
    supported_ops,
)

__all__ = [
    "CONVERTERS",
    "FREEZE_HINT",
    "TensorFlowConverter",
    "from_tensorflow",
    "parse_ref",
    "supported_ops",
]
