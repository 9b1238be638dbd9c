"""What every ``ember`` verb shares: model arguments, input data, targets, random inputs.

One convention for every verb: ``--input`` names the model's inputs and their shapes
(SageMaker Neo's JSON object ``'{"data": [1, 3, 224, 224]}'`` or
``data:1x3x224x224[:dtype]``), ``--data NAME=FILE.npy`` gives an input's values, and
``--target`` a target (parsed here, once, for the whole command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.errors import EmberError
from ember.frontend import FRAMEWORKS, load
from ember.graph.ir import Module
from ember.target import Target


def add_model_args(sub: argparse.ArgumentParser) -> None:
    """The arguments of verbs that import a model: MODEL, --input, --framework."""
    sub.add_argument(
        "model",
        help="model file or folder: .onnx, .pt2/.pt (PyTorch), .pb or a SavedModel folder, "
        ".tflite, MXNet's NAME-symbol.json (+ .params); the framework is detected",
    )
    sub.add_argument(
        "--input",
        "-i",
        metavar="SPEC",
        help="input shapes: '{\"data\": [1, 3, 224, 224]}' (as SageMaker Neo) or "
        "data:1x3x224x224[:dtype],...; needed for inputs with dynamic dims",
    )
    sub.add_argument(
        "--framework", "-f", choices=FRAMEWORKS, help="default: detected from the files"
    )
    sub.add_argument(
        "--custom-ops",
        action="append",
        metavar="MODULE",
        help="a module of your own ops (a .py file or a module name) to import first; it "
        "registers them with ember.custom (docs/custom_ops.md); repeatable",
    )


def add_target_arg(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--target",
        "-t",
        default="host",
        help="host (this CPU), a name from `ember targets` (e.g. ml_c5), or a target string "
        "such as 'llvm -mcpu=skylake-avx512' (default: host)",
    )


def add_data_arg(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--data",
        "-d",
        action="append",
        metavar="NAME=FILE.npy",
        help="an input's values from a .npy file (repeatable; NAME= may be left out for a "
        "model with one input); inputs not given are random",
    )


def parse_target(text: str) -> Target:
    """The command's target (the CLI's one place that parses a target string)."""
    return Target.parse(text)


def import_model(
    model: str, input_spec: str | None, framework: str | None
) -> tuple[Module, dict[str, np.ndarray]]:
    """Import ``model`` through :func:`ember.frontend.load` (every format it detects)."""
    return load(model, framework=framework, shape=input_spec)


def read_data(
    items: Sequence[str], input_names: Sequence[str]
) -> dict[str, tuple[np.ndarray, str]]:
    """``NAME=FILE.npy`` arguments (``FILE.npy`` alone for a one-input model) as
    ``{name: (array, file)}``."""
    arrays: dict[str, tuple[np.ndarray, str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            if len(input_names) != 1 or not item.endswith(".npy"):
                raise EmberError(
                    f"--data {item!r} is not NAME=FILE.npy",
                    hint=f"e.g. --data {input_names[0] if input_names else 'data'}=input.npy",
                )
            name, path = input_names[0], item
        if not name or not path:
            raise EmberError(f"--data {item!r} is not NAME=FILE.npy", hint="e.g. --data x=x.npy")
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise EmberError(f"cannot read input {name!r}: file {path!r} does not exist") from None
        except (OSError, ValueError) as err:
            raise EmberError(f"cannot read input {name!r} from {path!r}: {err}") from None
        if name not in input_names:
            raise EmberError(
                f"--data names {name!r}, which the model has no input called",
                hint=f"its inputs are: {', '.join(repr(n) for n in input_names)}",
            )
        arrays[name] = (array, path)
    return arrays


def random_input(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A random array for a model input: normal floats, small non-negative ints, fair bools."""
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        # Small values: integer inputs are often indices or token ids.
        return rng.integers(0, 10, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def feeds(
    inputs: Sequence[tuple[str, tuple[int, ...], str]],
    given: dict[str, tuple[np.ndarray, str]],
    seed: int,
) -> dict[str, Any]:
    """Input arrays in model order: the given ones (from :func:`read_data`), random ones
    (``seed``) for the rest; a line per input says which. ``inputs``: (name, shape, dtype)
    each. Random inputs are drawn in model order from one generator, so ``run-reference``
    and ``run`` with the same seed feed the same values."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, shape, dtype in inputs:
        if name in given:
            out[name], file = given[name]
            source = f"from {file}"
        else:
            out[name] = random_input(tuple(shape), dtype, rng)
            source = f"random, seed {seed}"
        print(f"input  {name}: {tuple(shape)} {dtype} ({source})")
    return out


def stats(array: np.ndarray) -> str:
    """A one-line summary of an output's values."""
    if array.size == 0:
        return "empty"
    if array.dtype == bool:
        return f"true={int(array.sum())}/{array.size}"
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    shown = values[finite]
    text = (
        f"min={shown.min() if shown.size else float('nan'):.6g} "
        f"max={shown.max() if shown.size else float('nan'):.6g} "
        f"mean={shown.mean() if shown.size else float('nan'):.6g} "
        f"std={shown.std() if shown.size else float('nan'):.6g}"
    )
    if not finite.all():
        text += f" non-finite={int((~finite).sum())}"
    return text


def report_outputs(names: Sequence[str], values: Sequence[np.ndarray], output: str | None) -> None:
    """Print each output's shape and value summary; save them to ``output`` (.npz)."""
    for name, value in zip(names, values):
        value = np.asarray(value)
        print(f"output {name}: shape {value.shape} {value.dtype}  {stats(value)}")
    if output:
        np.savez(output, **dict(zip(names, values)))
        print(f"wrote {len(values)} output(s) to {output}")


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


__all__ = [
    "add_data_arg",
    "add_model_args",
    "add_target_arg",
    "feeds",
    "import_model",
    "parse_target",
    "progress",
    "random_input",
    "read_data",
    "report_outputs",
    "stats",
]
