"""One entry point for every framework: detect it from the files, then call its frontend.

    mod, params = ember.frontend.load("resnet18.onnx", shape={"data": (1, 3, 224, 224)})
    mod, params = ember.frontend.load("model_dir/", shape='{"data": [1, 3, 227, 227]}')

Detection (``framework=None``):

=====================================================  ==========
what ``path`` is                                       framework
=====================================================  ==========
``*.onnx``                                             onnx
``*.pt2`` (torch.export.save)                          pytorch
``*.pt`` / ``*.pth`` holding TorchScript or a .pt2     pytorch
a directory with ``saved_model.pb``, or a ``*.pb``     tensorflow
``*.tflite`` (or a file with the TFL3 identifier)      tflite
``NAME-symbol.json`` (params ``NAME-NNNN.params``       mxnet
beside it), a ``.params`` file, or a directory with
such a pair
``NAME.cfg`` (``NAME.weights`` beside it), a          darknet
``.weights`` file, or a directory with such a pair
=====================================================  ==========

``framework`` forces one of ``onnx``, ``pytorch``, ``tensorflow``, ``tflite``,
``mxnet``, ``darknet``. ``shape`` is an input spec in any form
:func:`~ember.frontend.input_spec.parse_input_spec` accepts.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.input_spec import parse_input_spec, shapes_and_dtypes
from ember.graph.ir import Module

# The frameworks ember imports; ember.frontend.<name> is each one's package.
FRAMEWORKS = ("onnx", "pytorch", "tensorflow", "tflite", "mxnet", "darknet")
# Frameworks whose files fix every input's dtype (their importers take no dtype=);
# Darknet's one input is always float32.
_DTYPES_IN_FILE = ("tensorflow", "tflite", "darknet")
_ALIASES = {"torch": "pytorch", "tf": "tensorflow", "keras": "tensorflow", "mx": "mxnet"}
_TFLITE_IDENTIFIER = b"TFL3"  # bytes 4..8 of a TFLite flatbuffer


def load(
    path: str | Path,
    framework: str | None = None,
    shape: Any = None,
    dtype: str | Mapping[str, str] = "float32",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Import the model at ``path`` (framework detected from the files unless given).

    >>> mod, params = load("sq-symbol.json", shape={"data": [1, 3, 224, 224]})  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise FrontendError(f"model path {str(path)!r} does not exist")
    name = detect_framework(path) if framework is None else _framework_name(framework)
    shapes: dict[str, tuple[int, ...]] | None = None
    dtypes: dict[str, str] = {}
    if shape is not None:
        shapes, dtypes = shapes_and_dtypes(parse_input_spec(shape))
    if dtypes and isinstance(dtype, str):
        dtype = {**{k: dtype for k in shapes or {}}, **dtypes}
    importer = getattr(framework_package(name), f"from_{name}")
    if name in _DTYPES_IN_FILE:
        if dtypes:
            given = ", ".join(f"{n}:{d}" for n, d in dtypes.items())
            raise FrontendError(
                f"the {name} frontend takes input dtypes from the model file; the input spec "
                f"gives {given}",
                hint="leave the dtypes out of the input spec (shapes only)",
            )
        return importer(path, shape=shapes)
    # an MXNet or Darknet path alone (either file or their folder) finds the other file itself
    return importer(path, shape=shapes, dtype=dtype)


def mxnet_files(path: str | Path) -> tuple[Path, Path | None]:
    """(symbol JSON, params) of the MXNet model at ``path``: either file or their folder.

    The pairing rules live with the MXNet frontend (:func:`ember.frontend.mxnet.mxnet_files`).
    """
    return framework_package("mxnet").mxnet_files(path)


def framework_package(framework: str) -> ModuleType:
    """The frontend package of ``framework`` (``"onnx"`` -> ``ember.frontend.onnx``).

    Imported on first use, not with ``ember.frontend``: each package registers
    hundreds of converters (and the ONNX one imports onnx), which a caller that
    only reads input specs or runs artifacts should not pay for.

    >>> framework_package("tflite").from_tflite  # doctest: +SKIP
    <function from_tflite at ...>
    """
    return importlib.import_module(f"ember.frontend.{_framework_name(framework)}")


def _framework_name(framework: str) -> str:
    name = _ALIASES.get(framework.lower(), framework.lower())
    if name not in FRAMEWORKS:
        raise FrontendError(
            f"unknown framework {framework!r}",
            hint=f"use one of {', '.join(FRAMEWORKS)} (or leave it out to detect it)",
        )
    return name


def detect_framework(path: str | Path) -> str:
    """The framework of the model at ``path``; FrontendError if it cannot be told.

    >>> detect_framework("model.tflite")  # doctest: +SKIP
    'tflite'
    """
    path = Path(path)
    if path.is_dir():
        return _detect_directory(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".tflite" or _has_tflite_identifier(path):
        return "tflite"
    if suffix == ".pb" or suffix == ".pbtxt":
        return "tensorflow"
    if suffix == ".pt2":
        return "pytorch"
    if suffix == ".params" or path.name.endswith("-symbol.json"):
        return "mxnet"
    if suffix == ".json" and _is_mxnet_symbol(path):
        return "mxnet"
    if suffix in (".cfg", ".weights"):
        return "darknet"
    if zipfile.is_zipfile(path):
        pytorch = framework_package("pytorch")  # knows what torch's archives hold
        if pytorch.is_exported_program(path) or pytorch.is_torchscript(path):
            return "pytorch"
        if suffix in (".pt", ".pth"):
            raise FrontendError(
                f"{str(path)!r} is a PyTorch archive without a graph (a state dict or a "
                "pickled module)",
                hint="save the model with torch.export.save (.pt2) or torch.jit.save (.pt)",
            )
    raise FrontendError(
        f"cannot tell which framework {str(path)!r} comes from",
        hint="pass framework= (one of " + ", ".join(FRAMEWORKS) + "); known files are .onnx, "
        ".pt2, .pt/.pth (TorchScript), .pb or a SavedModel directory, .tflite, MXNet's "
        "NAME-symbol.json + NAME-0000.params, and Darknet's NAME.cfg + NAME.weights",
    )


def _detect_directory(path: Path) -> str:
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        return "tensorflow"
    if list(path.glob("*-symbol.json")):
        return "mxnet"
    if list(path.glob("*.cfg")) and list(path.glob("*.weights")):
        return "darknet"
    contents = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
    raise FrontendError(
        f"cannot tell which framework the directory {str(path)!r} holds: it has neither "
        f"saved_model.pb nor an MXNet NAME-symbol.json nor a Darknet .cfg with its .weights "
        f"(it has: {contents})",
        hint="pass the model file itself, or framework=",
    )


def _has_tflite_identifier(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == _TFLITE_IDENTIFIER


def _is_mxnet_symbol(path: Path) -> bool:
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(graph, dict) and "nodes" in graph and "heads" in graph


__all__ = ["FRAMEWORKS", "detect_framework", "framework_package", "load", "mxnet_files"]
