"""The graph pass driver and ember's default pipeline.

``run_passes`` applies passes in order, verifies the module after each one (so
a broken pass is named at once), and on request dumps the IR after each pass
and reports how long each took::

    mod = run_passes(mod, default_pipeline(), dump="/tmp/ir", timings=True)
    mod = optimize(mod, params)      # bind_params, then the default pipeline
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ember.errors import VerifyError
from ember.graph.ir import Module, print_module
from ember.graph.passes.activations import rewrite_activations
from ember.graph.passes.bind_params import bind_params
from ember.graph.passes.eliminate_dead_code import eliminate_dead_code
from ember.graph.passes.fold_constants import fold_constants
from ember.graph.passes.infer_types import infer_types
from ember.graph.passes.simplify import simplify
from ember.graph.verifier import verify as verify_module

Pass = Callable[[Module], Module]


def pass_name(p: Pass) -> str:
    """A pass's name: the function's name (through ``functools.partial``)."""
    while isinstance(p, functools.partial):
        p = p.func
    return getattr(p, "__name__", type(p).__name__)


def default_pipeline() -> list[Pass]:
    """The passes ``optimize`` runs after binding weights, in order."""
    return [
        infer_types,  # every type re-derived from the op rules
        simplify,  # drop dropout/identity; fold batch norm and scales into conv/dense
        rewrite_activations,  # x * sigmoid(x) -> nn.silu(x), GELU, hard-swish, mish
        fold_constants,  # evaluate what only depends on weights
        eliminate_dead_code,  # forward literal tuple fields, drop unreachable functions
    ]


def _dump(dump: bool | str | Path, index: int, name: str, mod: Module) -> None:
    text = print_module(mod)
    if dump is True:
        print(f"// ---- IR after {index:02d}_{name}\n{text}\n", file=sys.stderr)
        return
    folder = Path(dump)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^0-9A-Za-z_.-]", "_", name)
    (folder / f"{index:02d}_{safe}.txt").write_text(text + "\n")


def run_passes(
    mod: Module,
    passes: Sequence[Pass],
    *,
    verify: bool = True,
    dump: bool | str | Path = False,
    timings: bool | dict[str, float] = False,
) -> Module:
    """Apply ``passes`` in order; see the module doc.

    ``dump``: True prints the IR after each pass to stderr; a path writes
    ``00_input.txt``, ``01_<pass>.txt``, ... into that folder. ``timings``: True
    prints a table of seconds per pass to stderr; a dict is filled with them
    instead (keys ``<index>_<pass>``).
    """
    check = verify_module if verify else None
    if check is not None:
        try:
            check(mod)
        except VerifyError as err:
            raise VerifyError(f"input of the pass pipeline: {err.message}", hint=err.hint) from None
    if dump:
        _dump(dump, 0, "input", mod)
    times: dict[str, float] = {}
    for index, p in enumerate(passes, start=1):
        name = pass_name(p)
        start = time.perf_counter()
        result = p(mod)
        times[f"{index:02d}_{name}"] = time.perf_counter() - start
        if not isinstance(result, Module):
            raise VerifyError(f"pass {name} returned a {type(result).__name__}, not a Module")
        if check is not None:
            try:
                check(result)
            except VerifyError as err:
                raise VerifyError(
                    f"after pass {name}: {err.message}",
                    hint="this is a bug in the pass; rerun with dump= to see the IR it produced",
                ) from None
        if dump:
            _dump(dump, index, name, result)
        mod = result
    if isinstance(timings, dict):
        timings.update(times)
    elif timings:
        width = max((len(k) for k in times), default=4)
        lines = [f"{'pass':<{width}}  {'ms':>9}"]
        lines += [f"{k:<{width}}  {v * 1e3:9.2f}" for k, v in times.items()]
        lines.append(f"{'total':<{width}}  {sum(times.values()) * 1e3:9.2f}")
        print("\n".join(lines), file=sys.stderr)
    return mod


def optimize(mod: Module, params: Mapping[str, Any] | None = None, **options: Any) -> Module:
    """``bind_params`` then :func:`default_pipeline`, all through :func:`run_passes`, to
    which ``options`` go (``dump=``, ``timings=``).

    >>> opt = optimize(mod, params)   # doctest: +SKIP
    >>> ember.graph.interpret(opt, {}, {"data": x})
    """
    passes = default_pipeline()
    if params:
        passes.insert(0, functools.partial(bind_params, params=params))
    return run_passes(mod, passes, **options)
