"""The ONNX frontend: ``.onnx`` models (any opset the installed onnx package knows) -> graph IR.

    mod, params = from_onnx("resnet18.onnx", shape={"data": (1, 3, 224, 224)})
    "Conv" in supported_ops()                     # True

Modules: ``importer`` (loading, checking, the graph walk), ``scope`` (where value
names resolve in subgraphs and function bodies; converts one node), ``functions``
(model-local and schema functions, expanded at import), ``context`` (the
converter registry and what a converter gets), ``ops_*`` (the converters, by
op family; ``ops_control``: If/Loop/Scan, ``ops_sequence``: Sequence*,
``ops_optional``: Optional*) and
``conformance`` (runs the onnx wheel's node test cases).
Importing this package registers every converter.
"""

from ember.frontend.onnx import (  # noqa: F401 (importing registers the converters)
    ops_attention,
    ops_control,
    ops_einsum,
    ops_math,
    ops_misc,
    ops_nn,
    ops_optional,
    ops_resize,
    ops_rnn,
    ops_scatter,
    ops_sequence,
    ops_tensor,
)
from ember.frontend.onnx.context import CONVERTERS, NotStaticError, UnsupportedFeatureError
from ember.frontend.onnx.importer import (
    from_onnx,
    load_model,
    model_opset,
    op_version,
    sequence_item_name,
    supported_ops,
    unsupported_nodes,
)

__all__ = [
    "CONVERTERS",
    "NotStaticError",
    "UnsupportedFeatureError",
    "from_onnx",
    "load_model",
    "model_opset",
    "op_version",
    "sequence_item_name",
    "supported_ops",
    "unsupported_nodes",
]
