"""Import Darknet models (``.cfg`` + ``.weights``) into ember's graph IR, without Darknet.

    mod, params = from_darknet("yolov3-tiny.cfg")                       # weights beside it
    mod, params = from_darknet("net.cfg", "net_final.weights", shape={"data": (1, 3, 256, 256)})

The cfg's ``[net]`` section gives the input, ``data`` of shape
(1, channels, height, width) in NCHW float32 (``shape=`` may change its batch
and size). Every later section is one layer, numbered from 0 as Darknet prints
them; its weights are read from the ``.weights`` file in the same order
(:mod:`~ember.frontend.darknet.weights`). The outputs are the ``[yolo]`` layers'
activated maps, named ``yolo_16``, ``yolo_23`` ..., or, for a net without them,
the last layer (flattened to (N, C) where its map is 1x1, as a classifier's
softmax is). Unsupported sections are all reported at once, with their lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, input_dtype, shape_of
from ember.frontend.darknet.cfg import Section, parse_cfg
from ember.frontend.darknet.context import CONVERTERS, DarknetLayer
from ember.frontend.darknet.weights import WeightsReader
from ember.frontend.input_spec import parse_input_spec
from ember.graph.ir import Call, Expr, Module

INPUT_NAME = "data"


def supported_ops() -> list[str]:
    """Darknet section kinds :func:`from_darknet` converts, sorted.

    >>> "yolo" in supported_ops()
    True
    """
    return CONVERTERS.ops()


def from_darknet(
    cfg: str | Path,
    weights: str | Path | None = None,
    shape: Mapping[str, Sequence[int]] | str | None = None,
    dtype: str | Mapping[str, str] = "float32",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert a Darknet ``.cfg`` and its ``.weights`` to an ember Module and its weights.

    ``cfg`` may also be the ``.weights`` file or their directory (see
    :func:`darknet_files`); ``weights`` names the weights file when it is not
    beside the cfg under the same name. ``shape`` may set the input's shape
    (``{"data": (N, C, H, W)}``); ``dtype`` must be float32, Darknet's only one.

    >>> mod, params = from_darknet("yolov3-tiny.cfg")  # doctest: +SKIP
    >>> [v.name for v in mod.main.params][:2]           # doctest: +SKIP
    ['data', 'layer0.biases']
    """
    if input_dtype(dtype, INPUT_NAME) != "float32":
        raise FrontendError(
            f"Darknet models take float32 input, dtype={dtype!r} was given",
            hint="leave dtype out (Darknet computes in float32 only)",
        )
    cfg_path, weights_path = darknet_files(cfg) if weights is None else (Path(cfg), Path(weights))
    try:
        text = cfg_path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise FrontendError(f"cannot read Darknet cfg {str(cfg_path)!r}: {err.strerror}") from None
    sections = parse_cfg(text, cfg_path.name)
    return DarknetConverter(sections, WeightsReader.from_file(weights_path), shape).convert()


def darknet_files(path: str | Path) -> tuple[Path, Path]:
    """(cfg, weights) for a Darknet model given as either file or their directory.

    The partner of ``NAME.cfg`` is ``NAME.weights`` beside it, else the only
    ``.weights`` file there (and the other way round); a directory must hold
    one ``.cfg`` and one ``.weights``.
    """
    path = Path(path)
    if path.is_dir():
        cfgs = sorted(path.glob("*.cfg"))
        if len(cfgs) != 1:
            names = ", ".join(p.name for p in cfgs) or "none"
            raise FrontendError(
                f"the directory {str(path)!r} should hold one Darknet .cfg, it holds: {names}",
                hint="pass the .cfg file itself (and weights= if its name differs)",
            )
        path = cfgs[0]
    if not path.is_file():
        raise FrontendError(f"Darknet model file {str(path)!r} does not exist")
    if path.suffix.lower() == ".weights":
        return _partner(path, ".cfg"), path
    return path, _partner(path, ".weights")


def _partner(path: Path, suffix: str) -> Path:
    same_name = path.with_suffix(suffix)
    if same_name.is_file():
        return same_name
    others = sorted(path.parent.glob(f"*{suffix}"))
    if len(others) == 1:
        return others[0]
    found = ", ".join(p.name for p in others) or "none"
    raise FrontendError(
        f"no Darknet {suffix} file {same_name.name!r} beside {str(path)!r} (found: {found})",
        hint="pass both files: from_darknet('net.cfg', 'net.weights')",
    )


class DarknetConverter:
    """Converts a parsed cfg layer by layer, reading weights as it goes."""

    def __init__(self, sections: list[Section], reader: WeightsReader, shape: Any) -> None:
        self.net, self.layers = sections[0], sections[1:]
        self.reader = reader
        self.shape = shape
        self.builder = GraphBuilder("Darknet")

    def input_shape(self) -> tuple[int, int, int, int]:
        """(1, channels, height, width) from [net], or the shape= given for ``data``."""
        given = {}
        if self.shape is not None:
            given = {name: spec.shape for name, spec in parse_input_spec(self.shape).items()}
            unknown = sorted(set(given) - {INPUT_NAME})
            if unknown:
                raise FrontendError(
                    f"shape= names {', '.join(map(repr, unknown))}, which the Darknet model has "
                    f"no input called",
                    hint=f"a Darknet model has one input, {INPUT_NAME!r} (N, C, H, W)",
                )
        net = self.net
        channels = net.integer("channels", 0)
        file_shape = (1, channels, net.integer("height", 0), net.integer("width", 0))
        if INPUT_NAME in given:
            shape = tuple(int(d) for d in given[INPUT_NAME])
            if len(shape) != 4 or min(shape) < 1 or (channels and shape[1] != channels):
                raise FrontendError(
                    f"shape={shape} for {INPUT_NAME!r} does not fit the Darknet net: it takes "
                    f"(N, {channels or 'C'}, H, W)",
                    hint=f"give 4 positive dims with {channels} channels, e.g. {file_shape}",
                )
            return shape  # type: ignore[return-value]
        if min(file_shape) < 1:
            raise net.error(
                "[net] must give channels=, height= and width= (each at least 1)",
                hint=f'or pass shape={{"{INPUT_NAME}": (1, 3, 416, 416)}}',
            )
        return file_shape

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        for index, section in enumerate(self.layers):
            if section.kind not in CONVERTERS:
                self.builder.unsupported(f"[{section.kind}]", f"{section.where()} (layer {index})")
        self.builder.raise_unsupported()
        data = self.builder.add_input(INPUT_NAME, self.input_shape(), "float32")
        outputs: list[Expr] = []
        for index, section in enumerate(self.layers):
            layer = DarknetLayer(self.builder, section, index, outputs, data, self.reader)
            with self.builder.converting(layer):
                outputs.append(CONVERTERS[section.kind](layer))
        if not outputs:
            raise FrontendError("the Darknet cfg has no layers after [net]")
        self.reader.finish()
        heads = [i for i, s in enumerate(self.layers) if s.kind == "yolo"]
        results, names = [], []
        for index in heads or [len(outputs) - 1]:
            out = outputs[index]
            name = f"{self.layers[index].kind}_{index}"
            shape = shape_of(out)
            if not heads and len(shape) == 4 and shape[2:] == (1, 1):
                out = self.builder.call("reshape", out, name=name, newshape=shape[:2])
            elif not isinstance(out, Call):  # the input passed through: an output must compute
                out = self.builder.call("identity", out, name=name)
            results.append(out)
            names.append(name)
        return self.builder.finish(results, attrs={"output_names": names})


__all__ = ["darknet_files", "from_darknet", "supported_ops"]
