"""The AOT executor: C source for the model's entry point over a static memory plan.

One inference is one native call, ``ember_run(inputs, outputs, params, workspace)``
(see ``ember/runtime/c/ember_runtime.h``), which calls the kernels in order. Each
kernel has the C code generator's ABI, ``int32_t kernel(void** args)``, with one
pointer per argument tensor, then one per result tensor, and returns 0 on
success. Tensor pointers come from the memory plan: the caller's input/output
arrays, the weights, or an offset into the workspace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ember.driver.memory_plan import MemoryPlan, Storage
from ember.graph.ir import TensorType
from ember.runtime.artifact import DTYPE_CODES


def _pointer(s: Storage) -> str:
    if s.kind == "input":
        return f"inputs[{s.index}]"
    if s.kind == "param":
        return f"params[{s.index}]"
    if s.kind == "output":
        return f"outputs[{s.index}]"
    return f"(void*)(ws + {s.offset})"


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
    kernel_names: Sequence[str],
    input_names: Sequence[str],
    output_names: Sequence[str],
    param_names: Sequence[str],
    param_offsets: Sequence[int],
) -> str:
    """C source of the entry point; ``kernel_names[i]`` is the C function of step ``i``."""
    lines = [
        "/* ember AOT executor: generated, do not edit. */",
        "#include <stdint.h>",
        "#include <string.h>",
        '#include "ember_runtime.h"',
        "",
    ]
    declared = set()
    for kname in kernel_names:
        if kname not in declared:
            lines.append(f"int32_t {kname}(void** args);")
            declared.add(kname)
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
    for i, (step, kname) in enumerate(zip(plan.steps, kernel_names), start=1):
        ptrs = ", ".join(_pointer(s) for s in [*step.args, *step.results])
        lines.append(f"  /* {step.call.name} */")
        lines.append(f"  if ({kname}((void*[]){{{ptrs}}}) != 0) return {i};")
    for src, out_index in plan.copies:
        nbytes = plan.output_types[out_index].nbytes
        lines.append(f"  memcpy(outputs[{out_index}], {_pointer(src)}, {nbytes});")
    lines += ["  return 0;", "}", ""]
    lines += _profiled_entry(plan, kernel_names)
    return "\n".join(lines)


def _profiled_entry(plan: MemoryPlan, kernel_names: Sequence[str]) -> list[str]:
    """``ember_run_profiled``: ``ember_run`` that also writes each step's wall seconds to
    ``kernel_seconds[i]`` (one entry per step, in order; ``ember_num_steps()`` of them).
    Added by the x86 helper for ``Model.profile``; ``ember_run`` itself stays untimed."""
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
    for i, (step, kname) in enumerate(zip(plan.steps, kernel_names)):
        ptrs = ", ".join(_pointer(s) for s in [*step.args, *step.results])
        lines.append("  t0 = ember_now();")
        lines.append(f"  if ({kname}((void*[]){{{ptrs}}}) != 0) return {i + 1};")
        lines.append(f"  t1 = ember_now(); kernel_seconds[{i}] = t1 - t0;")
    for src, out_index in plan.copies:
        nbytes = plan.output_types[out_index].nbytes
        lines.append(f"  memcpy(outputs[{out_index}], {_pointer(src)}, {nbytes});")
    lines += ["  return 0;", "}", ""]
    return lines
