"""The model zoo: image classifiers (classic and modern CNNs) as ONNX files with random weights.

Every model mirrors its torchvision architecture layer for layer (MobileNet v1
follows the paper), with random weights drawn from a fixed seed and
non-trivial batch-norm statistics, stored as ONNX initializers. The input is
named ``data`` (NCHW float32) and the output ``output`` (batch, num_classes)::

    from ember.testing import zoo
    zoo.list_models()                          # ['convnext_tiny', 'densenet121', ...]
    model = zoo.to_onnx("resnet18", "resnet18.onnx")       # also writes the file
    mod, params = zoo.get("resnet18", **zoo.SMALL["resnet18"])   # through from_onnx
    zoo.input_shape("inception_v3")            # (1, 3, 299, 299)

Options (all keyword): ``batch=1``, ``image_size`` (224; inception_v3 299),
``width_multiplier=1.0`` (in (0, 4]), ``num_classes=1000``, ``seed=0`` (the weights),
``opset=17`` (11 or newer; mobilenet_v3_large needs 14 for HardSwish, convnext_tiny 17
for LayerNormalization). Bad names or options raise ``ZooError`` (an ``EmberError``).

``width_multiplier`` scales every channel count, rounded by torchvision's
``_make_divisible`` (nearest multiple of 8, at least 8, never 10% below the
exact value). For MobileNet v2 (whose last conv keeps 1280 channels below 1.0),
MobileNet v3 Large and EfficientNet-B0 this is exactly torchvision's ``width_mult``;
for the others it is ember's extension (DenseNet scales its growth rate and stem,
its transitions then halve as usual; VGG also scales its 4096-wide classifier;
RegNet scales its stage widths before rounding them to its group width 16). The
number of classes is never scaled. The modern models (``zoo_modern``) randomize
what torchvision initializes trivially too: LayerNorm affine weights and
ConvNeXt's layer scale (U(0.5, 1.5), not 1e-6).

At the defaults the trainable parameter counts equal torchvision's
(``onnx_builder.parameter_count``), e.g. resnet18 11,689,512.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ember.frontend import from_onnx
from ember.graph.ir import Module
from ember.testing.onnx_builder import (
    OnnxGraphBuilder,
    Tensor,
    ZooError,
    make_divisible,
    parameter_count,
)
from ember.testing.zoo_densenet_inception import build_densenet121, build_inception_v3
from ember.testing.zoo_mobile import build_mobilenet_v1, build_mobilenet_v2, build_squeezenet
from ember.testing.zoo_modern import (
    build_convnext_tiny,
    build_efficientnet_b0,
    build_mobilenet_v3_large,
    build_regnet_y_800mf,
)
from ember.testing.zoo_resnet_vgg import build_resnet, build_vgg

MIN_OPSET = 11  # Clip takes min/max as inputs (ReLU6) from opset 11 on


@dataclass(frozen=True)
class ZooOptions:
    """The options every zoo model takes; ``image_size=None`` means the model's default."""

    batch: int = 1
    image_size: int | None = None
    width_multiplier: float = 1.0
    num_classes: int = 1000
    seed: int = 0
    opset: int = 17


Channels = Callable[[int], int]
Build = Callable[[OnnxGraphBuilder, ZooOptions, Channels], Tensor]


@dataclass(frozen=True)
class _Entry:
    build: Build
    default_image_size: int
    min_image_size: int  # the smallest image for which no feature map shrinks below its window
    description: str
    min_opset: int = MIN_OPSET
    opset_reason: str = ""  # why min_opset is above MIN_OPSET, for the error's hint


def _entries() -> dict[str, _Entry]:
    def resnet(depth: int) -> Build:
        return lambda b, o, ch: build_resnet(b, depth, o.num_classes, ch)

    def vgg(depth: int) -> Build:
        return lambda b, o, ch: build_vgg(b, depth, o.num_classes, ch)

    def squeezenet(version: str) -> Build:
        return lambda b, o, ch: build_squeezenet(b, version, o.num_classes, ch)

    return {
        "resnet18": _Entry(resnet(18), 224, 1, "ResNet-18 (basic blocks 2-2-2-2)"),
        "resnet34": _Entry(resnet(34), 224, 1, "ResNet-34 (basic blocks 3-4-6-3)"),
        "resnet50": _Entry(resnet(50), 224, 1, "ResNet-50 v1.5 (bottlenecks 3-4-6-3)"),
        "vgg11": _Entry(vgg(11), 224, 32, "VGG-11 (config A, no batch norm)"),
        "vgg16": _Entry(vgg(16), 224, 32, "VGG-16 (config D, no batch norm)"),
        "mobilenet_v1": _Entry(
            lambda b, o, ch: build_mobilenet_v1(b, o.num_classes, ch),
            224, 1, "MobileNet v1 (13 depthwise-separable blocks, BN + ReLU)",
        ),
        "mobilenet_v2": _Entry(
            lambda b, o, ch: build_mobilenet_v2(b, o.num_classes, o.width_multiplier),
            224, 1, "MobileNet v2 (inverted residuals, ReLU6)",
        ),
        "squeezenet1_0": _Entry(squeezenet("1_0"), 224, 21, "SqueezeNet 1.0 (Fire modules)"),
        "squeezenet1_1": _Entry(squeezenet("1_1"), 224, 17, "SqueezeNet 1.1 (Fire modules)"),
        "densenet121": _Entry(
            lambda b, o, ch: build_densenet121(b, o.num_classes, ch),
            224, 29, "DenseNet-121 (growth 32, blocks 6-12-24-16)",
        ),
        "inception_v3": _Entry(
            lambda b, o, ch: build_inception_v3(b, o.num_classes, ch),
            299, 75, "Inception v3 (eval graph: no aux logits, transform_input=False)",
        ),
        "efficientnet_b0": _Entry(
            lambda b, o, ch: build_efficientnet_b0(b, o.num_classes, o.width_multiplier),
            224, 1, "EfficientNet-B0 (MBConv, SiLU, squeeze-and-excitation)",
        ),
        "mobilenet_v3_large": _Entry(
            lambda b, o, ch: build_mobilenet_v3_large(b, o.num_classes, o.width_multiplier),
            224, 1, "MobileNet v3 Large (hard-swish, hard-sigmoid squeeze-and-excitation)",
            14, "it uses HardSwish, an ONNX op from opset 14 on",
        ),
        "regnet_y_800mf": _Entry(
            lambda b, o, ch: build_regnet_y_800mf(b, o.num_classes, ch),
            224, 1, "RegNetY-800MF (grouped 3x3 bottlenecks, group width 16, SE)",
        ),
        "convnext_tiny": _Entry(
            lambda b, o, ch: build_convnext_tiny(b, o.num_classes, ch),
            224, 32, "ConvNeXt-Tiny (7x7 depthwise, channels-last LayerNorm, GELU, layer scale)",
            17, "it uses LayerNormalization, an ONNX op from opset 17 on",
        ),
    }  # fmt: skip


MODELS: dict[str, _Entry] = _entries()

# Options for fast tests: small images and thin layers, every layer kind still present.
SMALL: dict[str, dict[str, Any]] = {
    "resnet18": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "resnet34": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "resnet50": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "vgg11": {"image_size": 32, "width_multiplier": 0.125, "num_classes": 10},
    "vgg16": {"image_size": 32, "width_multiplier": 0.125, "num_classes": 10},
    "mobilenet_v1": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "mobilenet_v2": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "squeezenet1_0": {"image_size": 48, "width_multiplier": 0.25, "num_classes": 10},
    "squeezenet1_1": {"image_size": 48, "width_multiplier": 0.25, "num_classes": 10},
    "densenet121": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "inception_v3": {"image_size": 75, "width_multiplier": 0.125, "num_classes": 10},
    "efficientnet_b0": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "mobilenet_v3_large": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "regnet_y_800mf": {"image_size": 32, "width_multiplier": 0.25, "num_classes": 10},
    "convnext_tiny": {"image_size": 32, "width_multiplier": 0.125, "num_classes": 10},
}

# Published trainable-parameter counts at the default options: torchvision's
# (inception_v3 without its AuxLogits branch: 27,161,264 - 3,326,696), and for
# mobilenet_v1 Keras's MobileNet(alpha=1.0) "Trainable params" (torchvision has none).
PUBLISHED_PARAMETERS: dict[str, int] = {
    "mobilenet_v1": 4_231_976,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "mobilenet_v2": 3_504_872,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "densenet121": 7_978_856,
    "inception_v3": 23_834_568,
    "efficientnet_b0": 5_288_548,
    "mobilenet_v3_large": 5_483_032,
    "regnet_y_800mf": 6_432_512,
    "convnext_tiny": 28_589_128,
}


def list_models() -> list[str]:
    """Names of the zoo's models, sorted.

    >>> "resnet18" in list_models()
    True
    """
    return sorted(MODELS)


def _check(name: str, options: Mapping[str, Any]) -> tuple[_Entry, ZooOptions]:
    """The model's entry and validated options; ZooError naming the bad name or option."""
    if name not in MODELS:
        raise ZooError(
            f"unknown zoo model {name!r}",
            hint=f"choose one of: {', '.join(list_models())}",
        )
    entry = MODELS[name]
    known = {f.name for f in fields(ZooOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ZooError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for zoo model {name!r}",
            hint=f"the options are: {', '.join(sorted(known))}",
        )
    opts = ZooOptions(**options)
    if opts.image_size is None:
        opts = ZooOptions(**{**options, "image_size": entry.default_image_size})

    def bad(option: str, expected: str) -> ZooError:
        got = getattr(opts, option)
        return ZooError(f"zoo model {name!r}: option {option}={got!r}, expected {expected}")

    for option in ("batch", "num_classes"):
        value = getattr(opts, option)
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise bad(option, "a positive integer")
    if not isinstance(opts.seed, int | np.integer) or isinstance(opts.seed, bool):
        raise bad("seed", "an integer")
    width = opts.width_multiplier
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 4:
        raise bad("width_multiplier", "a number in (0, 4]")
    max_opset = onnx.defs.onnx_opset_version()
    if not isinstance(opts.opset, int) or not entry.min_opset <= opts.opset <= max_opset:
        error = bad("opset", f"an integer in [{entry.min_opset}, {max_opset}]")
        if entry.opset_reason and isinstance(opts.opset, int) and opts.opset < entry.min_opset:
            error = ZooError(error.message, hint=f"{name} needs opset >= {entry.min_opset}: "
                             f"{entry.opset_reason}")  # fmt: skip
        raise error
    size = opts.image_size
    if not isinstance(size, int | np.integer) or isinstance(size, bool):
        raise bad("image_size", "an integer")
    if size < entry.min_image_size:
        raise ZooError(
            f"zoo model {name!r}: image_size={size} is too small, its feature maps would "
            f"shrink below a pooling or conv window",
            hint=f"use image_size >= {entry.min_image_size} (default {entry.default_image_size})",
        )
    return entry, opts


def input_shape(name: str, **options: Any) -> tuple[int, int, int, int]:
    """The NCHW shape of the model's ``data`` input for these options.

    >>> input_shape("resnet18", batch=2, image_size=64)
    (2, 3, 64, 64)
    """
    _, opts = _check(name, options)
    assert opts.image_size is not None
    return (int(opts.batch), 3, int(opts.image_size), int(opts.image_size))


def to_onnx(name: str, path: str | Path | None = None, **options: Any) -> onnx.ModelProto:
    """The model as a checked ``onnx.ModelProto``; also saved to ``path`` when given.

    >>> model = to_onnx("squeezenet1_1", **SMALL["squeezenet1_1"])
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['data'], ['output'])
    """
    _, opts = _check(name, options)
    model = _build(name, opts)
    if path is not None:
        onnx.save_model(model, str(path))
    return model


def _build(name: str, opts: ZooOptions) -> onnx.ModelProto:
    entry = MODELS[name]
    shape = (int(opts.batch), 3, int(opts.image_size or 0), int(opts.image_size or 0))
    builder = OnnxGraphBuilder(name, shape, seed=int(opts.seed))
    width = float(opts.width_multiplier)

    def channels(c: int) -> int:
        # width 1.0 must reproduce torchvision exactly, whatever the rounding rule would do
        return c if width == 1.0 else make_divisible(c * width)

    output = entry.build(builder, opts, channels)
    model = builder.finish(output, opset=int(opts.opset))
    model.doc_string = f"ember.testing.zoo {name}: {entry.description}; {opts}"
    for key, value in (("zoo_model", name), ("zoo_options", repr(opts))):
        model.metadata_props.add(key=key, value=value)
    return model


def get(name: str, **options: Any) -> tuple[Module, dict[str, np.ndarray]]:
    """``(mod, params)``: the model exported to ONNX, then imported by ``ember.frontend.from_onnx``.

    >>> mod, params = get("mobilenet_v2", **SMALL["mobilenet_v2"])
    >>> ember.graph.interpret(mod, params, {"data": x})[0].shape    # doctest: +SKIP
    (1, 10)
    """
    model = to_onnx(name, **options)
    return from_onnx(model, shape={"data": input_shape(name, **options)})


def random_input(name: str, seed: int = 0, **options: Any) -> np.ndarray:
    """A standard-normal float32 input of the model's input shape.

    >>> random_input("resnet18", image_size=32).shape
    (1, 3, 32, 32)
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal(input_shape(name, **options)).astype(np.float32)


def count_parameters(name: str, **options: Any) -> int:
    """Trainable parameters of the model (BN running statistics not counted).

    >>> count_parameters("resnet18") == PUBLISHED_PARAMETERS["resnet18"]
    True
    """
    return parameter_count(to_onnx(name, **options))


__all__ = [
    "MODELS",
    "SMALL",
    "PUBLISHED_PARAMETERS",
    "ZooError",
    "ZooOptions",
    "count_parameters",
    "get",
    "input_shape",
    "list_models",
    "random_input",
    "to_onnx",
]
