"""The ``ember`` command: ``main.py`` (parser, errors), ``model.py`` (info, run-reference,
compile, run, bench, targets), ``tune.py`` (tune), ``common.py`` (what the verbs share)."""

from ember.cli.main import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, build_parser, main

__all__ = ["EXIT_INTERNAL_ERROR", "EXIT_USER_ERROR", "build_parser", "main"]
