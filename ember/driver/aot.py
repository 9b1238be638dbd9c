"""The AOT executor: C source for the model's entry point over a static memory plan.

One inference is one native call, ``ember_run(inputs, outputs, params, workspace)``
(see ``ember/runtime/c/ember_runtime.h``), which calls the kernels in order. Each
kernel has the C code generator's ABI, ``int32_t kernel(void** args)``, with one
pointer per argument tensor, then one per result tensor, and returns 0 on
success. Tensor pointers come from the memory plan: the caller's input/output
arrays, the weights, or an offset into the workspace.

Control flow runs here, around its own kernels: a ``cf.if`` is a C ``if``/``else``
on the condition's byte, each branch's kernels writing the call's results; a
``cf.loop`` is a C ``for`` over its body's kernels (``i < trip && cond``), with the
carried values in the call's result buffers, the body's next values in staging
buffers copied back after each iteration, and each scan output's row ``i``
written straight into the call's scan output buffer (see
:mod:`ember.driver.memory_plan`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ember.driver.memory_plan import ControlStep, KernelStep, MemoryPlan, Storage
from ember.graph.ir import Call, TensorType
from ember.ops.control_flow import if_
from ember.runtime.artifact import DTYPE_CODES


class _Env:
    """How one function's storages read in C: the workspace base, what ``arg j`` and
    ``result k`` are (a control-flow body's parameters and results), fresh C names."""

    def __init__(
        self,
        base: str,
        args: Sequence[str] = (),
        results: Sequence[str] = (),
        names: list[int] | None = None,
    ) -> None:
        self.base = base
        self.args = list(args)
        self.results = list(results)
        self.names = names if names is not None else [0]

    def fresh(self) -> int:
        self.names[0] += 1
        return self.names[0]

    def pointer(self, s: Storage) -> str:
        if s.kind == "input":
            return f"inputs[{s.index}]"
        if s.kind == "param":
            return f"params[{s.index}]"
        if s.kind == "output":
            return f"outputs[{s.index}]"
        if s.kind == "arg":
            return self.args[s.index]
        if s.kind == "result":
            return self.results[s.index]
        return f"(void*)({self.base} + {s.offset})"


def _copy(dst: str, src: str, nbytes: int) -> str:
    return f"memcpy({dst}, {src}, {nbytes});"


def _emit_steps(
    steps: Sequence[KernelStep | ControlStep],
    copies: Sequence[tuple[Storage, int]],
    env: _Env,
    symbols: Mapping[Call, str],
    indent: str,
    fail: int | None,
    result_bytes: Sequence[int],
    skip_copies: frozenset[int] = frozenset(),
) -> list[str]:
    """C statements running ``steps`` then the result ``copies``; a failing kernel returns
    its 1-based step index (``fail``: the top-level step around a body)."""
    lines = []
    for i, step in enumerate(steps, start=1):
        code = fail if fail is not None else i
        lines.append(f"{indent}/* {step.call.name or step.call.op.name} */")
        if isinstance(step, ControlStep):
            lines += _emit_control(step, env, symbols, indent, code)
            continue
        ptrs = ", ".join(env.pointer(s) for s in [*step.args, *step.results])
        lines.append(f"{indent}if ({symbols[step.call]}((void*[]){{{ptrs}}}) != 0) return {code};")
    for src, index in copies:
        if index not in skip_copies:
            dst = env.results[index]
            lines.append(indent + _copy(dst, env.pointer(src), result_bytes[index]))
    return lines


def _emit_control(
    step: ControlStep, env: _Env, symbols: Mapping[Call, str], indent: str, code: int
) -> list[str]:
    """A ``cf.if`` as C ``if``/``else``, a ``cf.loop`` as a C ``for`` over its body."""
    k = env.fresh()
    base = f"ws{k}"
    inner = indent + "  "
    lines = [
        f"{indent}{{",
        f"{inner}char* {base} = (char*){env.pointer(step.scratch)};",
        f"{inner}(void){base};",
    ]
    results = [env.pointer(s) for s in step.results]
    result_bytes = [s.nbytes for s in step.results]
    if step.call.op is if_:
        then_plan, else_plan = step.bodies
        captured = [env.pointer(s) for s in step.args[1:]]
        lines.append(f"{inner}if (*(const bool*){env.pointer(step.args[0])}) {{")
        body_env = _Env(base, captured, results, env.names)
        lines += _emit_steps(
            then_plan.steps, then_plan.copies, body_env, symbols, inner + "  ", code, result_bytes
        )
        lines.append(f"{inner}}} else {{")
        lines += _emit_steps(
            else_plan.steps, else_plan.copies, body_env, symbols, inner + "  ", code, result_bytes
        )
        lines += [f"{inner}}}", f"{indent}}}"]
        return lines
    lines += _emit_loop(step, env, symbols, inner, code, base, results)
    lines.append(f"{indent}}}")
    return lines


def _emit_loop(
    step: ControlStep,
    env: _Env,
    symbols: Mapping[Call, str],
    indent: str,
    code: int,
    base: str,
    results: list[str],
) -> list[str]:
    layout = step.layout
    assert layout is not None
    (body,) = step.bodies
    n = step.call.attrs.num_carried
    k = env.fresh()
    trip, i = f"trip{k}", f"i{k}"
    iteration = f"(void*)({base} + {layout.iteration})"
    cond = f"(void*)({base} + {layout.condition})"
    staging = [f"(void*)({base} + {off})" for off in layout.staging]
    lines = [
        f"{indent}const int64_t {trip} = *(const int64_t*){env.pointer(step.args[0])};",
        f"{indent}*(bool*){cond} = *(const bool*){env.pointer(step.args[1])};",
    ]
    for j in range(n):  # each carried value lives in the loop's result buffer
        src, dst = env.pointer(step.args[2 + j]), results[j]
        lines.append(f"{indent}{_copy(dst, src, step.results[j].nbytes)}")
    # the body's parameters: iteration, condition, carried (in the results), captured
    args = [iteration, cond, *results[:n], *(env.pointer(s) for s in step.args[2 + n :])]
    ret = step.call.attrs.body.ret_type
    row_bytes = [t.nbytes for t in ret.fields[1 + n :]]
    scans = [f"(void*)((char*){r} + {i} * {b}LL)" for r, b in zip(results[n:], row_bytes)]
    # a carried value the body passes through unchanged needs no copy either way
    unchanged = frozenset(
        1 + j
        for j in range(n)
        if any(
            src == Storage("arg", 2 + j, nbytes=src.nbytes) and index == 1 + j
            for src, index in body.copies
        )
    )
    body_env = _Env(f"((char*){base} + {layout.body})", args, [*staging, *scans], env.names)
    nbytes = [t.nbytes for t in ret.fields]
    lines.append(f"{indent}for (int64_t {i} = 0; {i} < {trip} && *(const bool*){cond}; ++{i}) {{")
    inner = indent + "  "
    lines.append(f"{inner}*(int64_t*){iteration} = {i};")
    lines += _emit_steps(body.steps, body.copies, body_env, symbols, inner, code, nbytes, unchanged)
    lines.append(f"{inner}*(bool*){cond} = *(const bool*){staging[0]};")
    for j in range(n):
        if 1 + j not in unchanged:
            lines.append(f"{inner}{_copy(results[j], staging[1 + j], nbytes[1 + j])}")
    lines.append(f"{indent}}}")
    return lines


def _info_table(name: str, entries: Sequence[tuple[str, TensorType, int]]) -> str:
    rows = []
    for tensor_name, ty, offset in entries:
        shape = ", ".join(str(d) for d in ty.shape) or "0"
        rows.append(
            f"  {{{json.dumps(tensor_name)}, {ty.ndim}, {{{shape}}}, {DTYPE_CODES[ty.dtype]}, "
            f"{ty.nbytes}ULL, {offset}ULL}},"
        )
    body = "\n".join(rows) or "  {0}"
    return f"static const ember_tensor_info {name}[] = {{\n{body}\n}};"


def aot_source(
    plan: MemoryPlan,
    kernel_symbols: Mapping[Call, str],
    input_names: Sequence[str],
    output_names: Sequence[str],
    param_names: Sequence[str],
    param_offsets: Sequence[int],
) -> str:
    """C source of the entry point; ``kernel_symbols[call]`` is the C function of each
    kernel call (of ``main`` and of every control-flow body)."""
    lines = [
        "/* ember AOT executor: generated, do not edit. */",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        '#include "ember_runtime.h"',
        "",
    ]
    for kname in dict.fromkeys(kernel_symbols.values()):
        lines.append(f"int32_t {kname}(void** args);")
    lines.append("")
    lines.append(_info_table("kInputs", [(n, v.type, 0) for n, v in zip(input_names, plan.inputs)]))
    lines.append(
        _info_table("kOutputs", [(n, t, 0) for n, t in zip(output_names, plan.output_types)])
    )
    lines.append(
        _info_table(
            "kParams",
            [(n, c.type, off) for n, c, off in zip(param_names, plan.params, param_offsets)],
        )
    )
    n_in, n_out, n_par = len(plan.inputs), len(plan.output_types), len(plan.params)
    lines += [
        "",
        "int32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }",
        f"int32_t ember_num_inputs(void) {{ return {n_in}; }}",
        f"int32_t ember_num_outputs(void) {{ return {n_out}; }}",
        f"int32_t ember_num_params(void) {{ return {n_par}; }}",
        "const ember_tensor_info* ember_input_info(int32_t i) { return &kInputs[i]; }",
        "const ember_tensor_info* ember_output_info(int32_t i) { return &kOutputs[i]; }",
        "const ember_tensor_info* ember_param_info(int32_t i) { return &kParams[i]; }",
        f"uint64_t ember_workspace_bytes(void) {{ return {plan.workspace_bytes}ULL; }}",
        "",
        "int32_t ember_run(void* const* inputs, void* const* outputs, void* const* params,",
        "                  void* workspace) {",
        "  char* ws = (char*)workspace;",
        "  (void)ws; (void)inputs; (void)outputs; (void)params;",
    ]
    env = _main_env(plan)
    out_bytes = [t.nbytes for t in plan.output_types]
    lines += _emit_steps(plan.steps, plan.copies, env, kernel_symbols, "  ", None, out_bytes)
    lines += ["  return 0;", "}", ""]
    lines += _profiled_entry(plan, kernel_symbols)
    return "\n".join(lines)


def _main_env(plan: MemoryPlan) -> _Env:
    return _Env("ws", results=[f"outputs[{i}]" for i in range(len(plan.output_types))])


def _profiled_entry(plan: MemoryPlan, kernel_symbols: Mapping[Call, str]) -> list[str]:
    """``ember_run_profiled``: ``ember_run`` that also writes each step's wall seconds to
    ``kernel_seconds[i]`` (one entry per step of ``main``, in order; ``ember_num_steps()``
    of them; a control-flow step is one entry). Added by the x86 helper for
    ``Model.profile``; ``ember_run`` itself stays untimed."""
    lines = [
        "#include <time.h>",
        f"int32_t ember_num_steps(void) {{ return {len(plan.steps)}; }}",
        "static double ember_now(void) {",
        "  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);",
        "  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;",
        "}",
        "int32_t ember_run_profiled(void* const* inputs, void* const* outputs,",
        "                           void* const* params, void* workspace,",
        "                           double* kernel_seconds) {",
        "  char* ws = (char*)workspace;",
        "  double t0, t1;",
        "  (void)ws; (void)inputs; (void)outputs; (void)params;",
    ]
    env = _main_env(plan)
    for i, step in enumerate(plan.steps):
        lines.append("  t0 = ember_now();")
        lines += _emit_steps([step], [], env, kernel_symbols, "  ", i + 1, [])
        lines.append(f"  t1 = ember_now(); kernel_seconds[{i}] = t1 - t0;")
    out_bytes = [t.nbytes for t in plan.output_types]
    lines += _emit_steps([], plan.copies, env, kernel_symbols, "  ", None, out_bytes)
    lines += ["  return 0;", "}", ""]
    return lines
