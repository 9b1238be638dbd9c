"""Dialects: overriding one entry of the C table changes exactly the lines that use it."""

from __future__ import annotations

import difflib
import shutil
import subprocess

import pytest

from ember import te
from ember.codegen.c import codegen_c
from ember.codegen.dialect import C, CDialect, OpenMP
from ember.te.lower import lower
from ember.tir import expr as E
from ember.tir.stmt import ForKind


def _kernel():
    """A scalar stage with exp and float additions, then a parallel stage whose inner
    axis is vectorized (a vector body and a tail: contiguous loads, a gather, a vector
    exp)."""
    A = te.placeholder((6, 20), "float32", name="A")
    B = te.compute((6, 20), lambda i, j: te.exp(A[i, j]) + A[i, j] * 2.0, name="B")
    out = te.compute(
        (6, 20), lambda i, j: te.exp(B[i, j]) + A[i, j] * A[i, (j * 3) % 20] + 1.0, name="out"
    )
    s = te.create_schedule(out.op)
    _, inner = s[out].split(out.op.axis[1], factor=8)
    s[out].vectorize(inner)
    s[out].parallel(out.op.axis[0])
    return lower(s, [A, out], name="kernel")


@pytest.fixture(scope="module")
def default_source() -> str:
    return codegen_c([_kernel()]).get_source()


def _removed_and_added(default: str, other: str) -> tuple[list[str], list[str]]:
    """The lines of ``default`` that ``other`` does not have, and the reverse (a line diff)."""
    a, b = default.splitlines(), other.splitlines()
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


def _kernels(source: str) -> str:
    """The kernel functions of a translation unit (after the helpers)."""
    return source[source.index("static int32_t ") :]


def _lines_with(source: str, text: str) -> list[str]:
    return [line for line in source.splitlines() if text in line]


def _fadd(ctx, e, a, b):
    if E.is_float(e.dtype):
        return f"fadd({a}, {b})"
    return CDialect.ops[E.Add](ctx, e, a, b)


class FloatAdd(CDialect):
    ops = CDialect.ops | {E.Add: _fadd}


class FastExp(CDialect):
    intrinsics = CDialect.intrinsics | {"exp": lambda ctx, call, x: f"fast_exp({x})"}


class StaticSchedule(OpenMP):
    loop_pragmas = OpenMP.loop_pragmas | {
        ForKind.PARALLEL: "#pragma omp parallel for schedule(static)"
    }


@pytest.mark.parametrize(
    "dialect, default_spelling, spelling",
    [
        (FloatAdd(), " + ", "fadd("),
        (FastExp(), "ember_exp_float32(", "fast_exp("),
        (StaticSchedule(), "schedule(guided)", "schedule(static)"),
    ],
    ids=["float-add", "exp", "parallel-pragma"],
)
def test_one_entry_changes_exactly_the_lines_that_use_it(
    default_source, dialect, default_spelling, spelling
):
    if isinstance(dialect, OpenMP):  # compare with its own base, not the pool dialect
        default_source = codegen_c([_kernel()], dialect=OpenMP()).get_source()
    source = codegen_c([_kernel()], dialect=dialect).get_source()
    if spelling == "fast_exp(":
        # The scalar exp helper nobody calls any more is not emitted; the kernels' lines
        # are compared below.
        assert "ember_exp_float32(float x)" in default_source
        assert "ember_exp_float32(float x)" not in source
        default_source, source = _kernels(default_source), _kernels(source)
    removed, added = _removed_and_added(default_source, source)
    # The same lines, in the same places: only the overridden construct's lines differ.
    assert len(source.splitlines()) == len(default_source.splitlines())
    assert added and added == _lines_with(source, spelling)
    assert all(default_spelling in line for line in removed)
    if spelling != "fadd(":  # " + " is also integer index arithmetic
        assert removed == _lines_with(default_source, default_spelling)


def test_float_add_override_leaves_integer_and_vector_additions():
    source = codegen_c([_kernel()], dialect=FloatAdd()).get_source()
    assert "fadd(ember_exp_float32(A[i * 20 + j]), A[i * 20 + j] * 2.0f)" in source
    assert "B[i * 20 + j] = " in source  # index arithmetic keeps C's +
    assert ") + ember_broadcast_float32x8(1.0f)" in source  # vector +: vector_ops, not ops


class VectorLoadIntrinsic(CDialect):
    def vector_load(self, ctx, e, buf, base):
        return f"vld_{ctx.ctype(e.dtype)}({buf} + {base})"


def test_vector_load_override_replaces_loads_and_their_helpers(default_source):
    source = codegen_c([_kernel()], dialect=VectorLoadIntrinsic()).get_source()
    removed, added = _removed_and_added(default_source, source)
    # Every line that loaded a vector changes; the load helpers nobody calls are not emitted.
    assert added and added == _lines_with(source, "vld_float32x")
    assert removed == _lines_with(default_source, "ember_load_float32x")
    assert "vld_float32x8(A + i_1 * 20 + j_outer * 8) * ({" in source
    assert "typedef float float32x8" in source  # the vector type is still declared


class NoVectorLoads(CDialect):
    def vector_load(self, ctx, e, buf, base):
        ctx.helper("load", e.dtype)  # recorded, then forgotten when the entry declines
        return None


def test_a_declining_vector_entry_falls_back_to_lanes_without_traces(default_source):
    source = codegen_c([_kernel()], dialect=NoVectorLoads()).get_source()
    assert "ember_load_" not in source
    assert "_r_l2[_l2] = A[(i_1 * 20 + j_outer * 8 + _l2 * 1)];" in source  # lane by lane
    assert "ember_store_float32x8(&out[" in source  # stores keep their vector entry


def _gelu_kernel():
    A = te.placeholder((16,), "float32", name="A")
    out = te.compute((16,), lambda i: E.call_intrin("float32", "gelu", A[i]), name="out")
    return lower(te.create_schedule(out.op), [A, out], name="gelu_kernel")


class WithGelu(CDialect):
    intrinsics = CDialect.intrinsics | {"gelu": lambda ctx, call, x: f"ember_gelu_f32({x})"}


_GELU = (
    "static inline float ember_gelu_f32(float x) "
    "{ return 0.5f * x * (1.0f + erff(x * 0.70710678f)); }"
)


def test_a_dialect_adds_an_intrinsic():
    func = _gelu_kernel()
    assert "gelu" not in C.intrinsics
    assert "gelu(A[i])" in codegen_c([func]).get_source()  # default: an extern C call
    func.attrs["c_prelude"] = [_GELU]
    source = codegen_c([func], dialect=WithGelu()).get_source()
    assert "out[i] = ember_gelu_f32(A[i]);" in source
    assert not _lines_with(source, " gelu(")
    _assert_compiles(source)


def test_default_dialect_is_c():
    func = _kernel()
    assert codegen_c(func).get_source() == codegen_c([func], dialect=CDialect()).get_source()
    assert C.name == "c" and isinstance(C, CDialect)


def _assert_compiles(source: str) -> None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    done = subprocess.run(
        [cc, "-fsyntax-only", "-Werror=implicit-function-declaration", "-x", "c", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
