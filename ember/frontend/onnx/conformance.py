"""Run the ONNX backend *node* conformance cases (shipped in the onnx wheel) through ember.

Each case is a one-node model with input and expected output arrays. A case is

- ``skipped`` when ember does not claim it: a dtype ember lacks, an unsupported
  op, or a use of a supported op that ember reports as a limitation
  (UnsupportedFeatureError); a sequence input is imported with the length of its
  data (``shape={name: [shape, ...]}``) and fed element by element, a sequence
  output (a tuple of static length in ember) is compared element by element; an
  optional input is present or absent (``shape={name: None}``) as its data is;
- otherwise run with :func:`ember.frontend.from_onnx` + :func:`ember.graph.interpret`
  and ``passed`` or ``failed`` against the expected outputs.

ember compiles static shapes, so inputs that decide a shape (Reshape's shape,
Slice's starts, ...) must be constants. The node tests feed them as graph
inputs; the runner freezes exactly those (the ones a NotStaticError names) into
initializers, as a user would export such a model.

    >>> results = run_cases(["test_relu"])            # doctest: +SKIP
    >>> results[0].status                             # doctest: +SKIP
    'passed'
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ember.errors import EmberError, UnsupportedOpError
from ember.frontend.onnx.context import ONNX_DTYPES, NotStaticError, UnsupportedFeatureError
from ember.frontend.onnx.importer import (
    from_onnx,
    load_model,
    sequence_item_name,
    unsupported_nodes,
)
from ember.graph.interpreter import interpret
from ember.graph.ir import Module, is_float_dtype

RTOL, ATOL = 1e-3, 1e-4  # onnxruntime's backend-test runner uses these
FLOAT16_RTOL, FLOAT16_ATOL = 4e-3, 2e-3  # float16 keeps ~3 decimal digits
BFLOAT16_RTOL, BFLOAT16_ATOL = 1.6e-2, 1e-2  # bfloat16 keeps 8 bits: two units in the last place
MAX_FREEZE_ROUNDS = 8


Runner = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]
Compiler = Callable[[Module, Mapping[str, np.ndarray]], Runner]
"""How to run a case compiled: ``compiler(mod, params)`` builds the model and returns a
function of the input arrays giving the outputs. The frontend sits below the compiler
driver, so the caller passes it: ``lambda mod, params: ember.compile(mod, params).load().run``
(:func:`ember.testing.conformance.compile_and_load`)."""


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one conformance case, and why.

    ``status`` is the reference executor's: ``passed``, ``wrong`` (it ran, an output
    differs), ``failed`` (import or run raised) or ``skipped`` (not claimed).
    ``compiled`` is the compiled path's, when a compiler was given: ``passed``, ``wrong``,
    ``failed``, ``did-not-compile`` (``""``: not run, e.g. a skipped case).
    """

    name: str
    status: str
    reason: str = ""
    category: str = ""  # for skips: the reason's class (unsupported op, dtype, ...)
    frozen: tuple[str, ...] = ()  # graph inputs given as initializers (shape-deciding inputs)
    compiled: str = ""
    compiled_reason: str = ""


@functools.cache
def all_cases() -> dict[str, object]:
    """The onnx wheel's node test cases by name (collecting them takes a few seconds)."""
    # imported here: the module imports every case generator (~3 s), which run_case
    # on one given case does not need
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    return {case.name: case for case in cases if case.kind == "node"}


def _as_array(value: object) -> object:
    """Case data as numpy (a few cases store TensorProtos); other kinds are returned as-is."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value


def _elem_type(type_proto: onnx.TypeProto, outer: bool = True) -> int | None:
    """The element type of a tensor, a sequence of tensors, or an optional of either.

    A sequence of static length is a tuple of tensors in ember: an input gets the
    length of its data, an output is compared element by element."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return type_proto.tensor_type.elem_type
    if outer and kind == "sequence_type":
        return _elem_type(type_proto.sequence_type.elem_type, False)
    if outer and kind == "optional_type":
        return _elem_type(type_proto.optional_type.elem_type)
    return None


def _plain_tensors(case: object) -> str | None:
    """Why the case is not plain tensors in (tensors or sequences out), or None if it is."""
    graph = case.model.graph  # type: ignore[attr-defined]
    for vi in [*graph.input, *graph.output]:
        elem = _elem_type(vi.type)
        if elem is None:
            kind = vi.type.WhichOneof("value")
            return f"{(kind or 'untyped').replace('_type', '')} input/output {vi.name!r}"
        if ONNX_DTYPES.get(elem) is None:
            return f"dtype {onnx.TensorProto.DataType.Name(elem)} of {vi.name!r}"
    for inputs, outputs in case.data_sets:  # type: ignore[attr-defined]
        for value in (*_flat(inputs), *_flat(outputs)):
            if value is not None and not isinstance(_as_array(value), np.ndarray):
                return f"non-tensor data ({type(value).__name__})"
    return None


def _flat(values: Iterable[object]) -> list[object]:
    """Case data with each sequence (a list of arrays) spread into its elements."""
    flat: list[object] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _as_data(value: object) -> object:
    """An input's data as numpy: an array, or a list of arrays (a sequence)."""
    if isinstance(value, list):
        return [_as_array(v) for v in value]
    return _as_array(value)


def _shape_of(value: object) -> object:
    """The ``shape=`` entry for an input's data: a list of shapes for a sequence."""
    if isinstance(value, list):
        return [np.shape(v) for v in value]
    return None if value is None else np.shape(value)  # None: an empty optional


def _spread(values: dict[str, object]) -> dict[str, object]:
    """Feeds with each sequence's elements fed as the inputs ember made for them."""
    feeds: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, list):
            feeds.update({sequence_item_name(name, i): v for i, v in enumerate(value)})
        elif value is not None:  # an empty optional is fed nothing
            feeds[name] = value
    return feeds


def _freeze(model: object, names: Iterable[str], values: dict[str, np.ndarray]) -> object:
    """A copy of ``model`` whose inputs ``names`` are initializers holding ``values``."""
    frozen = copy.deepcopy(model)
    graph = frozen.graph  # type: ignore[attr-defined]
    for name in names:
        graph.initializer.append(numpy_helper.from_array(values[name], name))
    return frozen


def _compare(index: int, ours: np.ndarray, expected: np.ndarray) -> str | None:
    """A mismatch description, or None when ``ours`` matches ``expected``."""
    if ours.shape != expected.shape:
        return f"output {index}: shape {ours.shape}, expected {expected.shape}"
    if ours.dtype != expected.dtype:
        return f"output {index}: dtype {ours.dtype}, expected {expected.dtype}"
    if is_float_dtype(expected.dtype):
        rtol, atol = {
            "float16": (FLOAT16_RTOL, FLOAT16_ATOL),
            "bfloat16": (BFLOAT16_RTOL, BFLOAT16_ATOL),
        }.get(str(expected.dtype), (RTOL, ATOL))
        if expected.dtype.kind != "f":  # bfloat16: numpy compares it as float32
            ours, expected = ours.astype(np.float32), expected.astype(np.float32)
        close = np.isclose(ours, expected, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            worst = np.nanmax(np.abs(ours.astype(np.float64) - expected.astype(np.float64)))
            return (
                f"output {index}: {int((~close).sum())} of {close.size} values differ "
                f"(max abs diff {worst:.3g})"
            )
        return None
    if not np.array_equal(ours, expected):
        return f"output {index}: {int((ours != expected).sum())} of {ours.size} values differ"
    return None


def _import(
    case_name: str, model: object, values: dict[str, object]
) -> tuple[Module, dict[str, np.ndarray], dict[str, object], list[str]] | CaseResult:
    """Import one data set's model, freezing the shape-deciding inputs: (module, weights,
    feeds, frozen input names), or the CaseResult that ends the case. ``values`` are the
    case's inputs (arrays, lists of arrays for sequences, None for empty optionals); the
    feeds have each sequence spread into the inputs ember made for its elements."""
    frozen: list[str] = []
    current = model
    for _ in range(MAX_FREEZE_ROUNDS):
        try:
            given = {n: v for n, v in values.items() if n not in frozen}
            mod, params = from_onnx(current, shape={n: _shape_of(v) for n, v in given.items()})
            return mod, params, _spread(given), frozen
        except NotStaticError as err:
            new = [
                n
                for n in err.input_names
                if isinstance(values.get(n), np.ndarray) and n not in frozen
            ]
            if not new:
                return CaseResult(case_name, "failed", f"import: {err}")
            frozen.extend(new)
            current = _freeze(model, frozen, values)  # type: ignore[arg-type]
        except UnsupportedFeatureError as err:
            why = f"ember limitation: {err.message}"
            return CaseResult(case_name, "skipped", why, "limitation")
        except UnsupportedOpError as err:  # found while importing (a context-dependent body)
            ops = sorted({op for op, _ in err.unsupported})
            why = f"unsupported op {', '.join(ops)}"
            return CaseResult(case_name, "skipped", why, "unsupported op")
        except EmberError as err:
            return CaseResult(case_name, "failed", f"import: {err}")
        except Exception as err:  # noqa: BLE001 (an ember bug: report it as a failure)
            return CaseResult(case_name, "failed", f"import crashed: {type(err).__name__}: {err}")
    return CaseResult(case_name, "failed", "import: too many inputs to freeze")


def _check(
    run: Runner, feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray]
) -> tuple[str, str] | None:
    """``run(feeds)`` and compare: None when every output matches, else (status, reason)
    with status ``wrong`` (ran, but an output differs) or ``failed`` (it raised)."""
    try:
        with np.errstate(all="ignore"):
            ours = run(feeds)
    except Exception as err:  # noqa: BLE001 (an ember bug: report it as a failure)
        return "failed", f"run: {type(err).__name__}: {err}"
    if len(ours) != len(outputs):
        return "wrong", f"{len(ours)} outputs, expected {len(outputs)}"
    for i, (got, want) in enumerate(zip(ours, outputs)):
        mismatch = _compare(i, np.asarray(got), np.asarray(want))
        if mismatch is not None:
            return "wrong", mismatch
    return None


def run_case(case: object, compiler: Compiler | None = None) -> CaseResult:
    """Classify and (if ember claims it) run one node test case with the reference
    executor and, given a ``compiler``, also compiled (see :data:`Compiler`)."""
    name = case.name  # type: ignore[attr-defined]
    why_not_plain = _plain_tensors(case)
    if why_not_plain is not None:
        category = "dtype" if why_not_plain.startswith("dtype") else "non-tensor inputs/outputs"
        return CaseResult(name, "skipped", why_not_plain, category)
    model = case.model  # type: ignore[attr-defined]
    try:
        unsupported = unsupported_nodes(load_model(model))
    except EmberError as err:
        return CaseResult(name, "failed", f"load: {err}")
    if unsupported:
        ops = sorted({op for op, _ in unsupported})
        return CaseResult(name, "skipped", f"unsupported op {', '.join(ops)}", "unsupported op")
    graph_inputs = [vi.name for vi in model.graph.input]
    frozen: list[str] = []
    reference: tuple[str, str] | None = None  # the first problem found, per path
    compiled: tuple[str, str] | None = None
    for inputs, outputs in case.data_sets:  # type: ignore[attr-defined]
        values = {n: _as_data(v) for n, v in zip(graph_inputs, inputs)}
        expected = [_as_array(v) for v in _flat(outputs)]
        imported = _import(name, model, values)
        if isinstance(imported, CaseResult):
            if imported.status != "failed" or compiler is None:
                return imported
            return dataclasses.replace(imported, compiled="failed", compiled_reason=imported.reason)
        mod, params, feeds, frozen = imported
        if reference is None:
            reference = _check(functools.partial(interpret, mod, params), feeds, expected)
        if compiler is not None and compiled is None:
            try:
                run = compiler(mod, params)
            except Exception as err:  # noqa: BLE001 (reported as did-not-compile)
                compiled = ("did-not-compile", f"{type(err).__name__}: {err}")
            else:
                compiled = _check(run, feeds, expected)
    status, reason = reference or ("passed", "")
    result = CaseResult(name, status, reason, frozen=tuple(frozen))
    if compiler is None:
        return result
    status, reason = compiled or ("passed", "")
    return dataclasses.replace(result, compiled=status, compiled_reason=reason)


def run_cases(
    names: Iterable[str] | None = None, compiler: Compiler | None = None
) -> list[CaseResult]:
    """Run the named cases (all by default), in name order; compiled too given a ``compiler``."""
    cases = all_cases()
    return [run_case(cases[n], compiler) for n in sorted(cases if names is None else names)]
