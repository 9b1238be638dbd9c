"""The runtime's dtype table: uint16, uint64 and bfloat16 tensors, and ml_dtypes loaded
only for an artifact that has a bfloat16 tensor (the runtime needs numpy alone).

A hand-written library copies its input to its output (2 bytes per element), so the
test pins the runtime and the artifact format independently of the compiler.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from ember.runtime import load
from ember.runtime.artifact import DTYPE_CODES, write_artifact

HEADER = Path(__file__).resolve().parents[2] / "ember" / "runtime" / "c" / "ember_runtime.h"

COPY_C = r"""
#include <string.h>
#include "ember_runtime.h"
static const ember_tensor_info in_info[] = {{"x", 1, {4}, DTYPE, 8, 0}};
static const ember_tensor_info out_info[] = {{"y", 1, {4}, DTYPE, 8, 0}};
int32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }
int32_t ember_num_inputs(void) { return 1; }
int32_t ember_num_outputs(void) { return 1; }
int32_t ember_num_params(void) { return 0; }
const ember_tensor_info* ember_input_info(int32_t i) { return &in_info[i]; }
const ember_tensor_info* ember_output_info(int32_t i) { return &out_info[i]; }
const ember_tensor_info* ember_param_info(int32_t i) { return 0; }
uint64_t ember_workspace_bytes(void) { return 0; }
int32_t ember_run(void* const* in, void* const* out, void* const* par, void* ws) {
  memcpy(out[0], in[0], 8);
  return 0;
}
"""


def _copy_artifact(tmp_path: Path, dtype: str, c_name: str) -> Path:
    src = tmp_path / f"{dtype}.c"
    src.write_text(COPY_C.replace("DTYPE", c_name))
    lib = tmp_path / f"{dtype}.so"
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", f"-I{HEADER.parent}", "-o", str(lib), str(src)],
        check=True,
    )
    meta = {
        "ember_version": "test",
        "target": {"name": "host", "arch": platform.machine()},
        "inputs": [{"name": "x", "shape": [4], "dtype": dtype}],
        "outputs": [{"name": "y", "shape": [4], "dtype": dtype}],
        "params": [],
        "workspace_bytes": 0,
    }
    path = tmp_path / f"{dtype}.ember"
    write_artifact(path, lib.read_bytes(), b"", meta)
    return path


def test_header_and_table_agree() -> None:
    """Every dtype code of the artifact table is an enum value of the C header."""
    text = HEADER.read_text()
    for dtype, code in DTYPE_CODES.items():
        assert f"EMBER_{dtype.upper()} = {code}" in text, dtype


@pytest.mark.parametrize(
    "dtype, c_name, values",
    [
        ("uint16", "EMBER_UINT16", np.array([0, 1, 40000, 65535], np.uint16)),
        ("bfloat16", "EMBER_BFLOAT16", np.array([1.5, -2, np.inf, np.nan], ml_dtypes.bfloat16)),
    ],
)
def test_two_byte_dtypes_round_trip(tmp_path: Path, dtype: str, c_name: str, values) -> None:
    model = load(_copy_artifact(tmp_path, dtype, c_name))
    assert model.inputs[0].dtype == dtype
    (y,) = model.run({"x": values})
    assert y.dtype == values.dtype and y.tobytes() == values.tobytes()


_PROBE = """
import sys
{setup}
from ember.runtime import load
model = load(sys.argv[1])
print("ml_dtypes" in sys.modules)
"""


def _probe(path: Path, setup: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PROBE.format(setup=setup), str(path)],
        capture_output=True,
        text=True,
    )


def test_ml_dtypes_is_imported_only_for_bfloat16(tmp_path: Path) -> None:
    plain = _probe(_copy_artifact(tmp_path, "uint16", "EMBER_UINT16"))
    assert plain.returncode == 0 and plain.stdout.strip() == "False", plain.stderr
    bf16 = _probe(_copy_artifact(tmp_path, "bfloat16", "EMBER_BFLOAT16"))
    assert bf16.returncode == 0 and bf16.stdout.strip() == "True", bf16.stderr


def test_missing_ml_dtypes_is_a_clear_error(tmp_path: Path) -> None:
    path = _copy_artifact(tmp_path, "bfloat16", "EMBER_BFLOAT16")
    # None in sys.modules makes the import fail, as on a machine without the package.
    out = _probe(path, setup="sys.modules['ml_dtypes'] = None")
    assert out.returncode != 0
    assert "has bfloat16 tensors, and numpy needs the ml_dtypes package" in out.stderr
    assert "pip install ml_dtypes" in out.stderr
