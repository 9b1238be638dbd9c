"""ONNX backend node conformance: every case of the onnx wheel, one test each.

A case ember claims (its ops are supported, its inputs plain tensors of ember
dtypes) must match the expected outputs (rtol 1e-3, atol 1e-4 as onnxruntime's
runner; integers and bools exactly). Other cases skip with the reason: an
unsupported op, a dtype ember lacks, sequence/optional values, or an ember
limitation reported by the frontend (a 3-D pool, antialiased resize, ...).
Counts for the README come from ``benchmarks/onnx_conformance.py``.

The compiled path (``ember.compile`` + the runtime) must be as right as the
reference: a sample runs in the default test run (one case per op type, and every
case of the float16, bfloat16 and empty-tensor paths), the whole sweep under
``-m slow``.
"""

from __future__ import annotations

import collections
import re

import pytest

from ember.frontend.onnx.conformance import all_cases, run_case, run_cases
from ember.testing.conformance import compile_and_load

# Supported cases known to fail, each with its reason. Keep this empty: fix the
# frontend or the op instead of adding to it.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(all_cases()))
def test_onnx_node_case(name: str) -> None:
    result = run_case(all_cases()[name])
    if result.status == "skipped":
        pytest.skip(f"{result.category}: {result.reason}")
    if name in KNOWN_FAILURES:
        if result.status == "failed":
            pytest.xfail(KNOWN_FAILURES[name])
        pytest.fail(f"{name} passes now: remove it from KNOWN_FAILURES")
    assert result.status == "passed", result.reason


# Cases ember must claim (not skip): a guard against a classification bug that
# would silently turn failures into skips.
MUST_CLAIM = [
    "test_conv_with_strides_padding",
    "test_convtranspose_output_shape",
    "test_gemm_all_attributes",
    "test_batchnorm_example",
    "test_maxpool_2d_ceil",
    "test_averagepool_2d_pads_count_include_pad",
    "test_softmax_axis_0",
    "test_reshape_negative_extended_dims",
    "test_slice_neg_steps",
    "test_resize_upsample_sizes_cubic",
    "test_attention_4d_gqa",
    "test_layer_normalization_4d_axis1",
    "test_cast_FLOAT_to_FLOAT16",
    "test_gather_elements_negative_indices",
    "test_reduce_max_empty_set",
    "test_lstm_with_peepholes",
    "test_gru_seq_length",
    # functions: schema bodies (plain and context-dependent), expanded at import
    "test_affine_grid_2d",
    "test_sce_mean_weight_ii_3d",
    "test_nllloss_NCd1d2d3_sum_weight_high_ii",
    "test_dynamicquantizelinear",
    "test_linear_attention_gated_delta",
    "test_causal_conv_with_state_with_past_state",
    # control flow and sequences
    "test_if",
    "test_if_seq",
    "test_loop11",
    "test_scan9_sum",
    "test_scan_sum",
    "test_range_float_type_positive_delta_expanded",
    "test_affine_grid_3d_expanded",
    "test_linear_attention_gated_expanded",
    "test_split_to_sequence_nokeepdims",
    "test_split_to_sequence_2",
    # sequence inputs (the length of their data), SequenceMap (a context-dependent body)
    "test_sequence_insert_at_front",
    "test_sequence_map_add_1_sequence_1_tensor",
    "test_sequence_map_extract_shapes_expanded",
    "test_loop13_seq",
    # optionals (presence decided at import)
    "test_optional_has_element_empty_optional_input",
    "test_optional_get_element_optional_sequence",
    "test_if_opt",
    "test_loop16_seq_none",
    # ops ember converts natively
    "test_resize_tf_crop_and_resize_extrapolation_value",
    "test_einsum_batch_diagonal",
    "test_scatternd_add",
    "test_scatter_elements_with_duplicate_indices",
    "test_gridsample_reflection_padding",
    "test_cumprod_2d_axis_0",
    "test_matmulinteger",
    "test_reversesequence_batch",
    "test_bitshift_right_uint16",
]


@pytest.mark.parametrize("name", MUST_CLAIM)
def test_core_cases_are_claimed(name: str) -> None:
    result = run_case(all_cases()[name])
    assert result.status == "passed", f"{result.status}: {result.reason}"


# ----------------------------------------------------------------------------- compiled

# Cases of the paths that differ most between numpy and C: float16 and bfloat16 kernels
# (accumulation, rounding) and tensors with a zero-sized dimension.
_NUMERIC_PATHS = re.compile(r"fp16|float16|bfloat16|bf16|zero|empty")


def compiled_sample() -> list[str]:
    """One case per op type (the first by name, ``_expanded`` function bodies left out),
    and every case of the float16, bfloat16 and empty-tensor paths."""
    first: dict[str, str] = {}
    picked = set()
    for name, case in sorted(all_cases().items()):
        if _NUMERIC_PATHS.search(name):
            picked.add(name)
        if name.endswith("_expanded"):
            continue
        op_types = sorted({node.op_type for node in case.model.graph.node})  # type: ignore[attr-defined]
        first.setdefault("+".join(op_types), name)
    return sorted(picked | set(first.values()))


@pytest.mark.parametrize("name", compiled_sample())
def test_onnx_node_case_compiled(name: str) -> None:
    result = run_case(all_cases()[name], compile_and_load)
    if result.status == "skipped":
        pytest.skip(f"{result.category}: {result.reason}")
    assert result.compiled == "passed", f"{result.compiled}: {result.compiled_reason}"


# The whole sweep's floor: raise these when ember claims more (never lower them).
MIN_PASSED_REFERENCE = 1562
MIN_PASSED_COMPILED = 1562


@pytest.mark.slow
def test_every_claimed_case_compiled() -> None:
    """Every claimed case through both paths: none wrong, none failing, none that does
    not compile, and at least as many passing as the README says."""
    results = run_cases(compiler=compile_and_load)
    reference = collections.Counter(r.status for r in results if r.status != "skipped")
    compiled = collections.Counter(r.compiled for r in results if r.status != "skipped")
    problems = [
        f"{r.name}: reference {r.status} {r.reason}; compiled {r.compiled} {r.compiled_reason}"
        for r in results
        if r.status != "skipped" and (r.status != "passed" or r.compiled != "passed")
    ]
    assert not problems, f"{len(problems)} claimed cases are not right:\n" + "\n".join(problems)
    assert reference["passed"] >= MIN_PASSED_REFERENCE
    assert compiled["passed"] >= MIN_PASSED_COMPILED
