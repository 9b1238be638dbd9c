"""build_module: lowered PrimFuncs -> C source -> cached shared library -> loaded Module.

    mod = build_module([lower_pipeline(f)], target="host")
    mod["f"](a, b)
    print(mod.get_source(), mod.cache_hit)

PrimFuncs that still hold N-D accesses or VECTORIZED/UNROLLED loops are run
through :func:`ember.tir.passes.lower_pipeline` first, so hand-built loop IR
builds directly.
"""

from __future__ import annotations

from ember.build.module import Module
from ember.build.toolchain import compile_shared
from ember.codegen.c import codegen_c
from ember.target import Target
from ember.tir.functor import post_order
from ember.tir.passes import lower_pipeline
from ember.tir.passes.flatten_storage import is_flat
from ember.tir.stmt import BufferStore, For, ForKind, PrimFunc


def _needs_lowering(func: PrimFunc) -> bool:
    found = False

    def check(n: object) -> None:
        nonlocal found
        if isinstance(n, For) and n.kind in (ForKind.VECTORIZED, ForKind.UNROLLED):
            found = True
        elif isinstance(n, BufferStore) and not is_flat(n.buffer):
            found = True
        elif hasattr(n, "buffer") and hasattr(n, "indices") and not is_flat(n.buffer):
            found = True

    post_order(func.body, check)
    return found


def build_module(
    funcs: list[PrimFunc] | PrimFunc,
    target: str | Target = "host",
    *,
    extra_sources: tuple[str, ...] = (),
    libs: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
) -> Module:
    """Compile PrimFuncs for a CPU target into one loaded :class:`Module`.

    >>> mod = build_module([func]); mod[func.name](a, b)
    """
    tgt = Target.parse(target)
    if isinstance(funcs, PrimFunc):
        funcs = [funcs]
    funcs = [lower_pipeline(f) if _needs_lowering(f) else f for f in funcs]
    csrc = codegen_c(funcs)
    path, hit = compile_shared(
        csrc.get_source(),
        flags=tgt.cflags + tuple(flags),
        extra_sources=tuple(extra_sources),
        libs=tuple(libs),
    )
    return Module(path, funcs, csrc.get_source(), cache_hit=hit)
