"""Compile-and-run for conformance sweeps: the compiler the ONNX conformance runner takes.

The runner (:mod:`ember.frontend.onnx.conformance`) sits below the compiler driver, so
it is handed the compiled path as a function::

    from ember.frontend.onnx.conformance import run_cases
    results = run_cases(["test_relu"], compiler=compile_and_load)
    results[0].compiled            # 'passed'
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ember.driver.compiler import compile
from ember.frontend.onnx.conformance import Runner
from ember.graph.ir import Module
from ember.runtime.model import Model


def compile_and_load(mod: Module, params: Mapping[str, np.ndarray]) -> Runner:
    """``ember.compile`` for the host, exported to an artifact, loaded with the runtime;
    returns the loaded model's ``run``. Kernels are cached by content, so cases that
    share a kernel compile it once; the artifact file is removed once loaded."""
    compiled = compile(mod, params, target="host")
    with tempfile.TemporaryDirectory(prefix="ember-conformance-") as folder:
        model = Model(compiled.export(Path(folder) / "case.ember"))
    return model.run


__all__ = ["compile_and_load"]
