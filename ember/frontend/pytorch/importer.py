"""Import PyTorch models into ember's graph IR: torch.export programs, nn.Modules, TorchScript.

    mod, params = from_pytorch(model, shape={"x": (1, 3, 224, 224)})     # nn.Module
    mod, params = from_pytorch(torch.export.export(model, (x,)))          # ExportedProgram
    mod, params = from_pytorch("model.pt2")                               # torch.export.save
    mod, params = from_pytorch("traced.pt", shape={"x": (1, 3, 224, 224)})  # TorchScript

An ``nn.Module`` is exported with ``torch.export.export`` on example inputs
(given, or random ones built from ``shape``). The graph of an ExportedProgram
(ATen ops on FX nodes) or of a TorchScript module (its inlined graph, weights
read through ``prim::GetAttr``) is walked in :mod:`~ember.frontend.pytorch.graphs`
and converted op by op with the converters of ``ops_*.py``. Calls whose inputs
are all constants (``arange``, masks, ``weight.t()``) are run by torch at import
time. Weights become Vars after the inputs in ``main``'s params. Every
unsupported op is reported at once, with its node names. torch is imported only
when a function here is called (:func:`~ember.frontend.pytorch.context.import_torch`),
so ``import ember.frontend.pytorch`` never needs it.
"""

from __future__ import annotations

import inspect
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import input_dtype
from ember.frontend.pytorch.context import CONVERTERS, import_torch
from ember.frontend.pytorch.graphs import ExportImporter, ScriptImporter, input_shapes
from ember.graph.ir import Module


def supported_ops() -> list[str]:
    """ATen op base names :func:`from_pytorch` converts, sorted.

    >>> "conv2d" in supported_ops()
    True
    """
    return CONVERTERS.ops()


def from_pytorch(
    model_or_program: Any,
    example_inputs: Sequence[Any] | None = None,
    shape: Mapping[str, Sequence[int]] | Sequence[Sequence[int]] | str | None = None,
    dtype: str | Mapping[str, str] = "float32",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert a PyTorch model to an ember :class:`Module` and its weights.

    ``model_or_program`` is a ``torch.export.ExportedProgram``, a ``.pt2`` path
    (``torch.export.save``), an ``nn.Module``, or TorchScript (a ScriptModule or a
    ``.pt``/``.pth`` path from ``torch.jit.save``). ``shape`` maps input names to
    static shapes (or lists shapes in argument order); an nn.Module needs it or
    ``example_inputs``, TorchScript needs it when the file does not record shapes.
    ``dtype`` is the dtype of inputs built from ``shape``.

        mod, params = from_pytorch(net.eval(), shape={"x": (1, 3, 32, 32)})
        out = ember.graph.interpret(mod, params, {"x": x.numpy()})[0]
    """
    torch = import_torch()
    obj = model_or_program
    if isinstance(obj, str | Path):
        obj = _load_path(Path(obj))
    if isinstance(obj, torch.export.ExportedProgram):
        return ExportImporter(obj, shape).convert()
    if isinstance(obj, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        return ScriptImporter(obj, shape, dtype).convert()
    if isinstance(obj, torch.nn.Module):
        return ExportImporter(_export_module(obj, example_inputs, shape, dtype), None).convert()
    raise FrontendError(
        f"from_pytorch expects an nn.Module, an ExportedProgram, a ScriptModule or a path, "
        f"got {type(obj).__name__}"
    )


# ----------------------------------------------------------------------------- loading


def _load_path(path: Path) -> Any:
    torch = import_torch()
    if not path.is_file():
        raise FrontendError(f"PyTorch model file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise FrontendError(
            f"{str(path)!r} is not a saved PyTorch program: it is not a zip archive",
            hint="save with torch.export.save (.pt2) or torch.jit.save (.pt); a plain "
            "torch.save state dict holds no graph",
        )
    if is_exported_program(path):
        try:
            return torch.export.load(str(path))
        except Exception as err:  # torch raises many types for a bad archive
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FrontendError(
                f"{str(path)!r} could not be loaded by torch.export.load: {first}"
            ) from None
    if is_torchscript(path):
        try:
            return _load_torchscript(torch, path)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FrontendError(
                f"{str(path)!r} could not be loaded by torch.jit.load: {first}"
            ) from None
    raise FrontendError(
        f"{str(path)!r} is a zip archive but neither a torch.export program nor TorchScript",
        hint="a torch.save'd state dict or pickled module holds no graph; export the model "
        "with torch.export.save or torch.jit.save",
    )


def _load_torchscript(torch: Any, path: Path) -> Any:
    """The TorchScript module at ``path``, with the dtypes and shapes its trace recorded.

    ``torch.jit.trace`` saves its example inputs' metadata (``traced_inputs.pkl``),
    but a plain ``torch.jit.load`` drops it: every input reads as a bare
    ``Tensor``, and integer token ids would be imported as float32.
    ``_restore_shapes=True`` puts the traced types back on the graph's inputs; a
    scripted (untraced) module has none to restore, and loads as before.
    """
    try:
        return torch.jit.load(str(path), map_location="cpu", _restore_shapes=True)
    except TypeError:  # a torch without _restore_shapes
        return torch.jit.load(str(path), map_location="cpu")


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def is_exported_program(path: str | Path) -> bool:
    """True if ``path`` is a zip written by ``torch.export.save`` (has a serialized program)."""
    return any(re.search(r"(^|/)models/[^/]*\.json$", n) for n in _zip_names(Path(path)))


def is_torchscript(path: str | Path) -> bool:
    """True if ``path`` is a zip written by ``torch.jit.save`` (has TorchScript code)."""
    return any(re.search(r"(^|/)code/", n) for n in _zip_names(Path(path)))


def _export_module(module: Any, example_inputs: Any, shape: Any, dtype: Any) -> Any:
    torch = import_torch()
    module = module.eval()
    made_up = example_inputs is None  # from shape= and dtype=
    if made_up:
        try:
            names = [
                p.name
                for p in inspect.signature(module.forward).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            names = []
        shapes = input_shapes(shape, names, f"{type(module).__name__}.forward")
        missing = [n for n in names if n not in shapes]
        if not shapes or missing:
            raise FrontendError(
                f"converting the nn.Module {type(module).__name__} needs example inputs or the "
                f"shape of every forward() argument; missing: {', '.join(missing) or names}",
                hint='pass shape={"x": (1, 3, 224, 224)} or example_inputs=(tensor,)',
            )
        generator = torch.Generator().manual_seed(0)
        example_inputs = []
        for name in names:
            torch_dtype = getattr(torch, input_dtype(dtype, name))
            if torch_dtype.is_floating_point:
                example_inputs.append(torch.rand(shapes[name], generator=generator).to(torch_dtype))
            else:
                example_inputs.append(torch.zeros(shapes[name], dtype=torch_dtype))
    try:
        with torch.no_grad():
            return torch.export.export(module, tuple(example_inputs))
    except Exception as err:  # torch.export raises many error types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = "fix the model for torch.export, or trace it (torch.jit.trace) and pass the "
        hint += "ScriptModule"
        if made_up and re.search(r"scalar type|dtype|Long|Int\b", first):
            # the made-up inputs are float32 unless dtype= says otherwise: token ids fail here
            hint = "an input may need another dtype than float32: give it, e.g. "
            hint += "dtype={'ids': 'int64'}, or pass example_inputs=(tensor, ...)"
        raise FrontendError(
            f"torch.export.export failed on {type(module).__name__}: {first}", hint=hint
        ) from None


__all__ = ["from_pytorch", "is_exported_program", "is_torchscript", "supported_ops"]
