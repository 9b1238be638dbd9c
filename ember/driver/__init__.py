"""The compiler driver: a model or a schedule in, native code out.

    lib = ember.compile(mod, params, target="host")      # a whole model -> one artifact
    f = ember.build(s, [A, B, C], target="host")         # one TE schedule -> a kernel

It runs the pipeline (graph passes, op strategy or dispatched schedules, lowering,
C code generation, the target's toolchain, the AOT executor and memory plan) and
knows no tuner: schedules come from a dispatch context (:mod:`ember.dispatch`),
and the autotuner (:mod:`ember.autotune`) builds on the functions here.
"""

from ember.driver.compiler import (
    CompiledModel,
    compile,
    kernel_graph,
    layout_kernels,
    lower_kernel,
)
from ember.driver.module import Kernel, Module
from ember.driver.native import build, build_module, check_buildable

__all__ = [
    "CompiledModel",
    "Kernel",
    "Module",
    "build",
    "build_module",
    "check_buildable",
    "compile",
    "kernel_graph",
    "layout_kernels",
    "lower_kernel",
]
