"""The ``ember`` command line.

    ember info resnet18.onnx --input '{"data": [1, 3, 224, 224]}'
    ember compile resnet18.onnx --input data:1x3x224x224 --target host -o r18.ember
    ember run r18.ember --data data=x.npy -o out.npz
    ember tune resnet18.onnx --input data:1x3x224x224 --minutes 15 -o r18.jsonl
    ember compile model.onnx --custom-ops my_ops.py -o model.ember   # a model with your ops

Each verb is a function ``cmd_<name>(args) -> int`` registered by
:func:`~ember.cli.model.add_model_commands` or :func:`~ember.cli.tune.add_tune_command`.
Errors ember raises for bad input (:class:`EmberError`) print as one message on
stderr with exit code 2; ``EMBER_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from ember import config as config_module
from ember.cli.model import add_model_commands
from ember.cli.tune import add_tune_command
from ember.custom import import_library
from ember.errors import EmberError, InternalError
from ember.version import __version__

EXIT_USER_ERROR = 2  # bad model / input / option: same code argparse uses for usage errors
EXIT_INTERNAL_ERROR = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands register their ``func``."""
    parser = argparse.ArgumentParser(
        prog="ember",
        description="ember: import, optimize, compile and run deep learning models.",
        epilog="Set EMBER_DEBUG=1 to see tracebacks of errors.",
    )
    parser.add_argument("--version", action="version", version=f"ember {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_model_commands(commands)  # info, run-reference, compile, run, bench, targets
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
        for library in getattr(args, "custom_ops", None) or []:
            import_library(library)  # registers the user's ops before the model imports
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
