"""The PyTorch frontend: torch.export programs, nn.Modules and TorchScript -> graph IR.

    mod, params = from_pytorch(net.eval(), shape={"x": (1, 3, 224, 224)})
    "conv2d" in supported_ops()                   # True

Modules: ``importer`` (loading files and modules), ``graphs`` (the walks over
torch.export and TorchScript graphs), ``context`` (the converter registry and
what a converter gets), ``ops_nn``, ``ops_tensor``, ``ops_layout``,
``ops_stats``, ``ops_einsum``, ``ops_logic``, ``ops_math``, ``ops_1d``, ``ops_select`` and
``ops_transformer`` (the converters, by op family).
Importing this package registers every converter; torch itself is imported
only when a model is converted.
"""

from ember.frontend.pytorch import (  # noqa: F401 (registers the converters)
    ops_1d,
    ops_einsum,
    ops_layout,
    ops_logic,
    ops_math,
    ops_nn,
    ops_select,
    ops_stats,
    ops_tensor,
    ops_transformer,
)
from ember.frontend.pytorch.context import CONVERTERS
from ember.frontend.pytorch.importer import (
    from_pytorch,
    is_exported_program,
    is_torchscript,
    supported_ops,
)

__all__ = ["CONVERTERS", "from_pytorch", "is_exported_program", "is_torchscript", "supported_ops"]
