"""What a Darknet layer converter gets: its section, its input, earlier layers, the weights.

Layers are converted in file order; each converter returns the layer's output
as an NCHW expression (Darknet stores every layer's output as C x H x W; a
connected layer's is C x 1 x 1)::

    @converter("dropout")
    def _dropout(layer: DarknetLayer) -> Expr:
        return layer.input            # identity at inference
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import ConverterRegistry, GraphBuilder, NodeContext, shape_of
from ember.frontend.darknet.cfg import Section
from ember.frontend.darknet.weights import WeightsReader
from ember.graph.ir import Expr

ConverterFn = Callable[["DarknetLayer"], Expr]

# section kind -> converter; filled by layers.py, which ember.frontend.darknet imports
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("Darknet")
converter = CONVERTERS.register


class DarknetLayer(NodeContext):
    """Layer ``index`` (Darknet counts from 0 after ``[net]``) being converted."""

    def __init__(
        self,
        builder: GraphBuilder,
        section: Section,
        index: int,
        outputs: list[Expr],
        network_input: Expr,
        reader: WeightsReader,
    ) -> None:
        super().__init__(builder, f"{section.kind}_{index}", section.kind)
        section.label = f"layer {index} {self.name!r}"  # every message names file, line and layer
        self.section = section
        self.index = index
        self.outputs = outputs  # the outputs of layers 0 .. index-1
        self.reader = reader
        self.input = outputs[-1] if outputs else network_input

    def __str__(self) -> str:
        return f"Darknet {self.section.where()}"

    def option_error(self, key: str, what: str, hint: str | None = None) -> FrontendError:
        """An error about option ``key``, pointing at its line."""
        return self.section.error(what, key, hint)

    def image(self) -> tuple[int, int, int, int]:
        """The input's (N, C, H, W)."""
        shape = shape_of(self.input)
        if len(shape) != 4:
            raise self.error(f"expects an image input (N, C, H, W), got shape {shape}")
        return shape  # type: ignore[return-value]

    def weight(self, what: str, count: int, shape: tuple[int, ...] = ()) -> Expr:
        """The next ``count`` floats of the weights file as a weight named ``layer{i}.{what}``."""
        values: np.ndarray = self.reader.read(count, what, str(self), shape)
        return self.builder.add_weight(f"layer{self.index}.{what}", values)

    def layer(self, reference: int, key: str) -> Expr:
        """The output of the layer ``reference`` names: absolute, or relative if negative."""
        index = reference + self.index if reference < 0 else reference
        if not 0 <= index < self.index:
            raise self.option_error(
                key,
                f"{key}={reference} refers to layer {index}, but only layers 0..{self.index - 1} "
                "come before this one",
                hint="a negative value counts back from this layer (-1 is the previous one); "
                "a positive one is a layer number counted from 0 after [net]",
            )
        return self.outputs[index]

    def refuse(self, **defaults: int) -> None:
        """Options ember does not implement must keep their default (binary=0, ...)."""
        for key, default in defaults.items():
            if self.section.integer(key, default) != default:
                raise self.option_error(
                    key,
                    f"{key}={self.section.text(key)} is not supported",
                    hint=f"ember imports this layer only with {key}={default}",
                )
