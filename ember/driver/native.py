"""ember.build: a schedule or loop IR -> C source -> cached shared library -> loaded Module.

    f = ember.build(s, [A, B, C], target="host", name="matmul")   # a TE schedule
    f(a, b, c); print(f.get_source(), f.cache_hit)
    mod = ember.build([prim_a, prim_b], target="host")           # lowered PrimFuncs
    mod["prim_a"](x, y)

PrimFuncs that still hold N-D accesses or VECTORIZED/UNROLLED loops are run
through :func:`ember.tir.passes.lower_pipeline` first, so hand-built loop IR
builds directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from ember.codegen.c import codegen_c
from ember.codegen.dialect import dialect_for
from ember.driver.module import Module
from ember.driver.toolchain import compile_shared
from ember.errors import LoweringError, TargetError
from ember.target import Target
from ember.te.lower import lower
from ember.te.schedule import Schedule
from ember.te.tensor import Tensor
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


def check_buildable(target: Target) -> None:
    """A TargetError for targets ember parses but cannot generate code for yet."""
    if target.kind not in ("cpu", "c"):
        raise TargetError(
            f"ember cannot generate code for {target.kind} targets yet ({target})",
            hint="compile for a CPU target: host, an x86 -mcpu, or see `ember targets`",
        )


def build_module(
    funcs: Sequence[PrimFunc],
    target: Target,
    *,
    extra_sources: tuple[str, ...] = (),
    libs: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
) -> Module:
    """Compile lowered PrimFuncs for a CPU ``target`` into one loaded :class:`Module`.

    ``extra_sources`` (C files), ``libs`` (``-l`` names) and ``flags`` are added to the
    compiler's command line (an extern op's implementation, for example).
    """
    check_buildable(target)
    funcs = [lower_pipeline(f) if _needs_lowering(f) else f for f in funcs]
    csrc = codegen_c(funcs, dialect_for(target))
    path, hit = compile_shared(
        csrc.get_source(),
        target,
        flags=tuple(flags),
        extra_sources=tuple(extra_sources),
        libs=tuple(libs),
    )
    return Module(path, funcs, csrc.get_source(), cache_hit=hit)


def build(
    s: Schedule | PrimFunc | Sequence[PrimFunc],
    args: Sequence[Tensor] | None = None,
    target: str | Target = "host",
    name: str = "default_function",
    **options: tuple[str, ...],
) -> Module:
    """Lower and compile to native code; call the result with numpy arrays (outputs are
    written in place). TVM's ``tvm.build``: a schedule with its argument tensors, one
    lowered PrimFunc, or several (one library, one kernel each).

    >>> f = ember.build(s, [A, B, C], target="host", name="matmul")
    >>> f(a, b, c); print(f.get_source())

    ``options``: ``extra_sources``, ``libs`` or ``flags`` (see :func:`build_module`).
    """
    tgt = Target.parse(target)
    if isinstance(s, Schedule):
        if args is None:
            raise LoweringError("build: pass the argument tensors, e.g. build(s, [A, B, C])")
        funcs = [lower(s, args, name=name)]
    elif isinstance(s, PrimFunc):
        funcs = [s]
    elif isinstance(s, Sequence) and s and all(isinstance(f, PrimFunc) for f in s):
        funcs = list(s)
    else:
        raise LoweringError(
            f"build: expected a Schedule, a PrimFunc or a list of PrimFuncs, got "
            f"{type(s).__name__}",
            hint="build(te.create_schedule(C.op), [A, B, C]) or build(ember.lower(s, args))",
        )
    return build_module(funcs, tgt, **options)


__all__ = ["build", "build_module", "check_buildable"]
