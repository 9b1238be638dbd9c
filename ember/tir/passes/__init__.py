"""Loop IR passes (one per file) and the lowering pipeline that runs them in order.

func = lower_pipeline(func)                 # what ember.lower calls last
func = lower_pipeline(func, dump=True)      # prints the IR after every pass
func = lower_pipeline(func, verify=True)    # checks the IR after every pass

With ``EMBER_DEBUG=1`` (``ember.config.config.debug``) the pipeline verifies by
default: a pass that breaks the IR is named where it happens, not in the C
compiler's error or a wrong result later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ember import config as _config
from ember.errors import VerifyError
from ember.tir.passes.flatten_storage import flatten_storage
from ember.tir.passes.legalize_bfloat16 import legalize_bfloat16
from ember.tir.passes.loop_partition import partition_loops
from ember.tir.passes.partition_selects import partition_selects
from ember.tir.passes.remove_no_op import remove_no_op
from ember.tir.passes.unroll import unroll_loops
from ember.tir.passes.vectorize import vectorize_loops
from ember.tir.simplify import simplify_func
from ember.tir.stmt import PrimFunc
from ember.tir.verifier import verify as verify_func

PIPELINE: list[tuple[str, Callable[[PrimFunc], PrimFunc]]] = [
    ("legalize_bfloat16", legalize_bfloat16),  # bfloat16 arithmetic -> float32 between casts
    ("flatten_storage", flatten_storage),  # N-D buffer accesses -> 1-D (row-major or strided)
    ("simplify", simplify_func),  # fold index arithmetic; drop guards that always hold
    ("partition_selects", partition_selects),  # split loops where select conditions change
    ("unroll_loops", unroll_loops),  # UNROLLED loops of constant extent -> copies
    ("partition_loops", partition_loops),  # peel split tails so full tiles run unguarded
    ("vectorize_loops", vectorize_loops),  # VECTORIZED loops -> ramp/broadcast vector code
    ("simplify", simplify_func),  # fold what unrolling and vectorizing exposed
    ("remove_no_op", remove_no_op),  # drop empty loops, guards and unused allocations
]
"""The loop IR lowering pipeline: (name, pass) in order."""


def _verified(func: PrimFunc, after: str) -> None:
    try:
        verify_func(func)
    except VerifyError as err:
        raise VerifyError(f"{after}: {err.message}", hint=err.hint) from None


def lower_pipeline(func: PrimFunc, *, dump: bool = False, verify: bool | None = None) -> PrimFunc:
    """Run :data:`PIPELINE` over ``func``; ``dump`` prints the IR and time after each pass;
    ``verify`` (default: ``ember.config.config.debug``) checks the input and the IR after
    each pass with :func:`ember.tir.verifier.verify`, naming the pass that broke it.

    >>> print(lower_pipeline(func, verify=True))
    """
    if verify is None:
        verify = _config.config.debug
    if verify:
        _verified(func, f"the input of lower_pipeline ({func.name!r})")
    for k, (name, fn) in enumerate(PIPELINE, 1):
        start = time.perf_counter()
        func = fn(func)
        if dump:
            print(f"# after {name} ({(time.perf_counter() - start) * 1e3:.2f} ms)\n{func}")
        if verify:
            _verified(func, f"after pass {name!r} ({k} of {len(PIPELINE)})")
    return func


__all__ = [
    "PIPELINE",
    "flatten_storage",
    "legalize_bfloat16",
    "lower_pipeline",
    "partition_loops",
    "partition_selects",
    "remove_no_op",
    "simplify_func",
    "unroll_loops",
    "vectorize_loops",
]
