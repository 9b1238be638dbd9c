import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember import custom
from ember.frontend.custom import custom_converters
from ember.graph.op import get_op, registered_ops

HERE = Path(__file__).parent

# The user's module of custom ops (example_ops.py) is imported by name, here and in the
# tuner's worker processes (which start with this sys.path).
sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def _registrations_undone() -> Iterator[None]:
    """What a test registers is removed after it: every test leaves the registries as it
    found them (the ONNX conformance tests, for one, expect Det to stay unknown)."""
    with custom.scope():
        yield


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After this folder's last test, the ops its modules registered when imported
    (example_ops, the CLI test's op) leave the process's registries too. (A hook, not a
    package-scoped fixture: without __init__.py that would last for the whole session.)"""
    if nextitem is not None and Path(nextitem.path).resolve().is_relative_to(HERE.resolve()):
        return
    libraries = {get_op(name).library for name in registered_ops()}
    libraries |= {c.library for c in custom_converters()}
    for library in sorted(libraries):
        path = getattr(sys.modules.get(library), "__file__", None)
        if path and Path(path).resolve().is_relative_to(HERE.resolve()):
            custom.unregister_library(library)
