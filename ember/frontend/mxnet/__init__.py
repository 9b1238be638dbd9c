"""The MXNet frontend: ``NAME-symbol.json`` + ``NAME-NNNN.params`` -> graph IR, without mxnet.

    mod, params = from_mxnet("resnet18-symbol.json", "resnet18-0000.params",
                             shape={"data": (1, 3, 224, 224)})
    "Convolution" in supported_ops()              # True

Modules: ``importer`` (the symbol walk, finding the file pair), ``params``
(the binary ``.params`` reader), ``context`` (the converter registry and what a
converter gets), ``ops_nn`` and ``ops_tensor`` (the converters). Importing this
package registers every converter.
"""

from ember.frontend.mxnet import ops_nn, ops_tensor  # noqa: F401 (registers the converters)
from ember.frontend.mxnet.context import CONVERTERS
from ember.frontend.mxnet.importer import from_mxnet, mxnet_files, supported_ops
from ember.frontend.mxnet.params import parse_params, read_params

__all__ = [
    "CONVERTERS",
    "from_mxnet",
    "mxnet_files",
    "parse_params",
    "read_params",
    "supported_ops",
]
