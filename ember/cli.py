"""The ``ember`` command line.

    ember info resnet18.onnx --input '{"data": [1, 3, 224, 224]}'
    ember run-reference resnet18.onnx --input data:1x3x224x224 --seed 1 -o out.npz
    ember run-reference model.onnx --data data=x.npy

Each subcommand is a function ``_cmd_<name>(args) -> int`` registered in
:func:`build_parser`. Errors ember raises for bad input (:class:`EmberError`)
print as one message on stderr with exit code 2; ``EMBER_DEBUG=1`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import ember
from ember import config as config_module
from ember.errors import EmberError, FrontendError, InternalError

EXIT_USER_ERROR = 2  # bad model / input / option: same code argparse uses for usage errors
EXIT_INTERNAL_ERROR = 3

# File suffix -> frontend name (``ember.frontend.from_<name>``).
_FRAMEWORK_BY_SUFFIX = {
    ".onnx": "onnx",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".pb": "tensorflow",
    ".tflite": "tflite",
    ".params": "mxnet",
}
FRAMEWORKS = ("onnx", "pytorch", "tensorflow", "tflite", "mxnet")


# ----------------------------------------------------------------------------- model loading


def guess_framework(path: Path) -> str:
    """The framework of a model file from its suffix (a folder is a TensorFlow SavedModel)."""
    if path.is_dir():
        return "tensorflow"
    if path.name.endswith("-symbol.json"):
        return "mxnet"
    framework = _FRAMEWORK_BY_SUFFIX.get(path.suffix.lower())
    if framework is None:
        raise FrontendError(
            f"cannot tell the framework of {str(path)!r} from its suffix {path.suffix!r}",
            hint=f"pass --framework ({', '.join(FRAMEWORKS)})",
        )
    return framework


def import_model(
    model: str, input_spec: str | None, framework: str | None
) -> tuple[ember.graph.Module, dict[str, np.ndarray]]:
    """Import ``model`` with the frontend of ``framework`` (guessed from the suffix if None)."""
    import ember.frontend

    path = Path(model)
    if not path.exists():
        raise FrontendError(f"model file {model!r} does not exist")
    framework = framework or guess_framework(path)
    importer = getattr(ember.frontend, f"from_{framework}", None)
    if importer is None:
        raise FrontendError(
            f"ember cannot import {framework} models yet",
            hint="export the model to ONNX and pass the .onnx file",
        )
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    if input_spec:
        from ember.frontend.input_spec import shapes_and_dtypes

        shapes, dtypes = shapes_and_dtypes(ember.frontend.parse_input_spec(input_spec))
    kwargs: dict[str, Any] = {"shape": shapes}
    if dtypes:
        if "dtype" not in inspect.signature(importer).parameters:
            raise FrontendError(
                f"the {framework} frontend takes input dtypes from the model; drop the dtypes "
                f"from --input ({', '.join(f'{n}:{d}' for n, d in dtypes.items())})"
            )
        kwargs["dtype"] = dtypes
    return importer(str(path), **kwargs)


def _add_model_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("model", help="model file (.onnx)")
    sub.add_argument(
        "--input",
        "-i",
        metavar="SPEC",
        help="input shapes: '{\"data\": [1, 3, 224, 224]}' (as SageMaker Neo) or "
        "data:1x3x224x224[:dtype],...; needed for inputs with dynamic dims",
    )
    sub.add_argument("--framework", "-f", choices=FRAMEWORKS, help="default: from the suffix")


# ----------------------------------------------------------------------------- info


def _cmd_info(args: argparse.Namespace) -> int:
    from ember.graph.analysis import format_summary, summarize

    mod, params = import_model(args.model, args.input, args.framework)
    print(f"model: {args.model}")
    print(format_summary(summarize(mod, params)))
    if args.graph:
        print()
        print(mod)
    return 0


# ----------------------------------------------------------------------------- run-reference


def _parse_data_args(items: Sequence[str]) -> dict[str, tuple[np.ndarray, str]]:
    """``NAME=FILE.npy`` arguments as name -> (array, file)."""
    arrays: dict[str, tuple[np.ndarray, str]] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise FrontendError(
                f"--data {item!r} is not NAME=FILE.npy", hint="e.g. --data data=input.npy"
            )
        try:
            arrays[name] = (np.load(file, allow_pickle=False), file)
        except FileNotFoundError:
            raise FrontendError(f"--data {item!r}: file {file!r} does not exist") from None
        except (OSError, ValueError) as err:
            raise FrontendError(f"--data {item!r}: {file!r} is not a .npy file: {err}") from None
    return arrays


def random_input(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A random array for a model input: normal floats, small non-negative ints, fair bools."""
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        # Small values: integer inputs are often indices or token ids.
        return rng.integers(0, 10, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def _stats(array: np.ndarray) -> str:
    if array.size == 0:
        return "empty"
    if array.dtype == bool:
        return f"true={int(array.sum())}/{array.size}"
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    text = (
        f"min={values[finite].min() if finite.any() else float('nan'):.6g} "
        f"max={values[finite].max() if finite.any() else float('nan'):.6g} "
        f"mean={values[finite].mean() if finite.any() else float('nan'):.6g} "
        f"std={values[finite].std() if finite.any() else float('nan'):.6g}"
    )
    if not finite.all():
        text += f" non-finite={int((~finite).sum())}"
    return text


def _cmd_run_reference(args: argparse.Namespace) -> int:
    from ember.graph import interpret

    mod, params = import_model(args.model, args.input, args.framework)
    given = _parse_data_args(args.data or [])
    inputs = [p for p in mod.main.params if p.name not in params]
    unknown = sorted(set(given) - {p.name for p in inputs})
    if unknown:
        raise FrontendError(
            f"--data names {', '.join(map(repr, unknown))}, which the model has no input called; "
            f"its inputs are: {', '.join(repr(p.name) for p in inputs)}"
        )
    rng = np.random.default_rng(args.seed)
    feeds: dict[str, Any] = {}
    for var in inputs:
        if var.name in given:
            feeds[var.name], file = given[var.name]
            source = f"from {file}"
        else:
            feeds[var.name] = random_input(var.type.shape, var.type.dtype, rng)
            source = f"random, seed {args.seed}"
        print(f"input  {var.name}: {var.type} ({source})")
    outputs = interpret(mod, params, feeds)
    names = list(mod.main.attrs.get("output_names", ()))
    if len(names) != len(outputs):
        names = [f"output{i}" for i in range(len(outputs))]
    for name, value in zip(names, outputs):
        value = np.asarray(value)
        print(f"output {name}: shape {value.shape} {value.dtype}  {_stats(value)}")
    if args.output:
        np.savez(args.output, **dict(zip(names, outputs)))
        print(f"wrote {len(outputs)} output(s) to {args.output}")
    return 0


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands register their ``func``."""
    parser = argparse.ArgumentParser(
        prog="ember",
        description="ember: import, optimize, compile and run deep learning models.",
        epilog="Set EMBER_DEBUG=1 to see tracebacks of errors.",
    )
    parser.add_argument("--version", action="version", version=f"ember {ember.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = commands.add_parser(
        "info", help="import a model and print its graph summary (ops, parameters, FLOPs)"
    )
    _add_model_args(info)
    info.add_argument("--graph", action="store_true", help="also print the imported graph IR")
    info.set_defaults(func=_cmd_info)

    run = commands.add_parser(
        "run-reference",
        help="run a model with the numpy reference executor on random or given inputs",
    )
    _add_model_args(run)
    run.add_argument(
        "--data",
        "-d",
        action="append",
        metavar="NAME=FILE.npy",
        help="input values from a .npy file (repeatable); other inputs are random",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    run.add_argument("--output", "-o", metavar="OUT.npz", help="save the outputs to a .npz file")
    run.set_defaults(func=_cmd_run_reference)

    from ember.cli_model import add_model_commands

    add_model_commands(commands)  # compile, run, bench
    from ember.autotune.cli import add_tune_command

    add_tune_command(commands)  # tune
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ember`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    debug = config_module.config.debug
    try:
        return int(args.func(args))
    except EmberError as err:
        if debug:
            traceback.print_exc()
        print(f"ember {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except InternalError as err:
        if debug:
            traceback.print_exc()
        print(
            f"ember {args.command}: internal error (a bug in ember): {err}\n"
            "  rerun with EMBER_DEBUG=1 for the traceback and please report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
