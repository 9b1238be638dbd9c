"""What a PyTorch converter gets: the converter registry, the ATen node, torch dtypes.

Both importers (torch.export programs and TorchScript, in ``graphs.py``) hand a
converter an :class:`AtenNode` whose ``args`` follow the op's ATen schema
positionally (defaults filled in): tensors as ember expressions or constant
``torch.Tensor`` s, everything else as Python values. Converters are keyed by
the op's base name without namespace, overload or the in-place ``_`` suffix
(``aten::add_``, ``aten.add.Tensor`` -> ``add``)::

    @converter("relu")
    def _relu(node: AtenNode) -> Expr:
        return node.call("nn.relu", node.tensor(0))
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import ConverterRegistry, GraphBuilder, NodeContext
from ember.graph.ir import Expr

ConverterFn = Callable[["AtenNode"], Any]

# ATen op base name -> converter; filled by ops_nn.py and ops_tensor.py, which
# ember.frontend.pytorch imports.
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("PyTorch")
converter = CONVERTERS.register


def import_torch() -> ModuleType:
    """The torch module, imported on first use: torch is optional and slow to import.

    Nothing else in ember imports torch, so ``import ember.frontend.pytorch`` works
    (and ``supported_ops()`` answers) without it.
    """
    try:
        import torch
    except ImportError:
        raise FrontendError(
            "from_pytorch needs the torch package, which is not installed",
            hint="pip install torch (CPU wheels are enough)",
        ) from None
    return torch


class AtenNode(NodeContext):
    """One ATen call being converted. ``to_expr`` turns a constant tensor into a graph leaf."""

    def __init__(
        self,
        builder: GraphBuilder,
        name: str,
        op: str,
        overload: str,
        args: list[Any],
        to_expr: Callable[[Any, str], Expr],
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(builder, name, op)
        self.overload = overload
        self.args = args
        self.to_expr = to_expr
        self.kwargs = kwargs or {}

    def __str__(self) -> str:
        return f"PyTorch node {self.name!r} (aten::{self.op})"

    def with_args(self, args: list[Any]) -> AtenNode:
        """The same node with other arguments (to reuse a converter on a prefix of them)."""
        return AtenNode(
            self.builder, self.name, self.op, self.overload, args, self.to_expr, self.kwargs
        )

    def arg(self, index: int, default: Any = None) -> Any:
        value = self.args[index] if index < len(self.args) else default
        return default if value is None else value

    def tensor(self, index: int) -> Expr:
        value = self.args[index] if index < len(self.args) else None
        if value is None:
            raise self.error(f"argument {index} must be a tensor, got None")
        return self.to_expr(value, f"{self.name}/arg{index}")

    def optional_tensor(self, index: int) -> Expr | None:
        value = self.args[index] if index < len(self.args) else None
        return None if value is None else self.to_expr(value, f"{self.name}/arg{index}")


def pair(value: Any, default: int) -> tuple[int, int]:
    """A 2-D attribute from an int or a list of one or two ints (empty: ``default``).

    >>> pair(3, 1), pair([2], 1), pair([], 1)
    ((3, 3), (2, 2), (1, 1))
    """
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    values = [int(v) for v in value]
    if not values:
        return (default, default)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


# torch dtypes (and TorchScript's ScalarType numbers) -> ember dtype names
_SCALAR_TYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
}


def torch_dtype_name(dtype: Any) -> str | None:
    """The ember dtype of a torch dtype or ScalarType number; None if ember has none.

    >>> torch_dtype_name("torch.float"), torch_dtype_name(4), torch_dtype_name("torch.cfloat")
    ('float32', 'int64', None)
    """
    if isinstance(dtype, int):
        return _SCALAR_TYPES.get(dtype)
    name = str(dtype).removeprefix("torch.")
    return {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}.get(
        name, name if name in _SCALAR_TYPES.values() else None
    )


def promoted_dtype(a: str, b: str) -> str:
    """The dtype torch computes ``a op b`` in: a float beats an integer or bool outright
    (int64 * float32 is float32, where numpy says float64); else the wider of the two.

    >>> promoted_dtype("int64", "float32"), promoted_dtype("int32", "int64")
    ('float32', 'int64')
    """
    a_float, b_float = a.startswith("float"), b.startswith("float")
    if a_float != b_float:
        return a if a_float else b
    return np.result_type(a, b).name
