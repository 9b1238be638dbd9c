"""Model statistics: op counts, parameter counts and bytes, FLOPs per op kind.

A multiply-add counts as 2 FLOPs (the convention of papers and of TVM's
``fvcore``-style counters). Each op's count is its FLOP rule, defined with the op
(:meth:`ember.graph.op.Op.flops`); with ``out`` the output element count:

- ``nn.conv2d``: ``2 * N*O*OH*OW * (C/groups)*KH*KW`` (+ ``out`` with a bias)
- ``nn.conv2d_transpose``: ``2 * N*C*H*W * (O/groups)*KH*KW`` (each input pixel
  scatters into a KHxKW window of every output channel of its group) (+ ``out`` with a bias)
- ``nn.dense``: ``2 * rows * N * K`` (+ ``out`` with a bias)
- ``nn.matmul``, ``nn.batch_matmul``: ``2 * out * K``
- pooling: ``out * KH*KW``; global pooling, reductions: input element count
- ``nn.batch_norm``: ``2 * out`` (one scale, one shift)
- ``nn.softmax`` / ``nn.log_softmax``: ``4 * out`` (max, exp, sum, divide);
  ``nn.lrn``: ``out * (2*size + 3)``
- other elementwise and broadcast ops: ``out``
- data movement (reshape, transpose, pad, concatenate, cast, ...): 0
- the blocked and Winograd forms the compiler makes count the same way (a Winograd
  GEMM: ``2 * out * C``; its transforms: ``4 * alpha`` per output element)

Calls of fused functions are counted through their bodies, so a model has the
same summary before and after fusion::

    s = summarize(mod, params)
    print(format_summary(s))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ember.errors import InternalError
from ember.graph.ir import Call, Constant, Function, Module, TensorType
from ember.graph.op import Op
from ember.graph.visitor import post_order


def call_flops(call: Call) -> int:
    """FLOPs of one op call: the op's FLOP rule (see :meth:`ember.graph.op.Op.flops`)."""
    op = call.op
    if not isinstance(op, Op):
        raise InternalError(f"call_flops: {call!r} calls a function, not an op")
    return op.flops(call)


def _op_calls(func: Function) -> list[Call]:
    """Calls of ops in ``func``, entering fused functions (each call of one counts)."""
    calls: list[Call] = []
    pending = [func]
    while pending:
        for node in post_order(pending.pop()):
            if isinstance(node, Call):
                if isinstance(node.op, Function):
                    pending.append(node.op)
                else:
                    calls.append(node)
    return calls


def output_names(func: Function, count: int) -> list[str]:
    """The names of ``func``'s ``count`` outputs: the model's own (the frontends record them
    in ``attrs["output_names"]``), else ``output0``, ``output1``, ..."""
    names = [str(n) for n in func.attrs.get("output_names", ())]
    return names if len(names) == count else [f"output{i}" for i in range(count)]


def function_flops(func: Function) -> int:
    """FLOPs of one call of ``func`` (e.g. a fused kernel: the sum over its op calls).

    The compiler records this per kernel, and ``ember bench --profile`` divides it by
    the kernel's measured time.
    """
    return sum(call_flops(c) for c in _op_calls(func))


def summarize(mod: Module, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Statistics of ``mod``'s ``main``.

    Keys: ``num_calls``, ``op_counts`` and ``flops_by_op`` (dicts by op name),
    ``flops``, ``num_params`` and ``param_bytes`` (weights: constants in the
    graph plus the ``main`` parameters named in ``params``), ``num_constants``,
    ``inputs`` and ``outputs`` (lists of ``(name, shape, dtype)``), ``output_names``.

    >>> summarize(mod)["flops"]  # doctest: +SKIP
    3627122688
    """
    main = mod.main
    params = params or {}
    calls = _op_calls(main)
    op_counts: dict[str, int] = {}
    flops_by_op: dict[str, int] = {}
    for c in calls:
        op_counts[c.op.name] = op_counts.get(c.op.name, 0) + 1
        flops_by_op[c.op.name] = flops_by_op.get(c.op.name, 0) + call_flops(c)
    constants: set[Constant] = set()
    pending = [main]
    while pending:
        for node in post_order(pending.pop()):
            if isinstance(node, Constant):
                constants.add(node)
            elif isinstance(node, Call) and isinstance(node.op, Function):
                pending.append(node.op)
    weights = [p for p in main.params if p.name in params]
    num_params = sum(c.type.size for c in constants) + sum(p.type.size for p in weights)
    param_bytes = sum(c.type.nbytes for c in constants) + sum(p.type.nbytes for p in weights)
    body_type = main.body.type
    flat = [body_type] if isinstance(body_type, TensorType) else list(_flatten_types(body_type))
    names = output_names(main, len(flat))
    outputs = [(n, t.shape, t.dtype) for n, t in zip(names, flat)]
    order = sorted(op_counts, key=lambda n: (-flops_by_op[n], -op_counts[n], n))
    return {
        "num_calls": len(calls),
        "op_counts": {n: op_counts[n] for n in order},
        "flops_by_op": {n: flops_by_op[n] for n in order},
        "flops": sum(flops_by_op.values()),
        "num_params": int(num_params),
        "param_bytes": int(param_bytes),
        "num_constants": len(constants),
        "inputs": [
            (p.name, p.type.shape, p.type.dtype) for p in main.params if p.name not in params
        ],
        "outputs": outputs,
        "output_names": names,
    }


def _flatten_types(t: Any) -> list[TensorType]:
    if isinstance(t, TensorType):
        return [t]
    return [leaf for f in t.fields for leaf in _flatten_types(f)]


def _human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _shape_text(name: str, shape: tuple[int, ...], dtype: str) -> str:
    return f"{name}: Tensor[({', '.join(map(str, shape))}), {dtype}]"


def format_summary(summary: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`summarize`'s result (what ``ember info`` prints)."""
    total = summary["flops"] or 1
    width = max([len("op"), *(len(n) for n in summary["op_counts"])])
    lines = [
        "inputs:  " + ", ".join(_shape_text(*i) for i in summary["inputs"]),
        "outputs: " + ", ".join(_shape_text(*o) for o in summary["outputs"]),
        f"parameters: {summary['num_params']:,} ({summary['param_bytes'] / 2**20:.2f} MiB)",
        f"FLOPs: {_human(summary['flops'])} ({summary['flops']:,}); "
        f"{summary['num_calls']} op calls",
        "",
        f"{'op':<{width}}  {'count':>6}  {'FLOPs':>11}  {'share':>6}",
    ]
    for name, count in summary["op_counts"].items():
        f = summary["flops_by_op"][name]
        lines.append(f"{name:<{width}}  {count:>6}  {_human(f):>11}  {100 * f / total:5.1f}%")
    return "\n".join(lines)


__all__ = ["call_flops", "format_summary", "function_flops", "output_names", "summarize"]
