"""The package's layers (pyproject.toml's import-linter contracts) hold, and they catch
what they are for: an upward import, and an import cycle between modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=project,
        env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copytree(ROOT / "ember", project / "ember", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_the_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    # The loop IR reaching up into the compiler driver: two layers the wrong way.
    (project / "ember" / "tir" / "upward.py").write_text("import ember.driver\n")
    result = _lint(project)
    assert result.returncode != 0
    assert "ember's layers BROKEN" in result.stdout
    assert "ember.tir.upward -> ember.driver" in result.stdout


def test_an_import_cycle_is_caught(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    # Inside a function, as lazy imports used to hide cycles.
    (project / "ember" / "te" / "loop_back.py").write_text("def f():\n    import ember.te.lower\n")
    lower = project / "ember" / "te" / "lower.py"
    lower.write_text(lower.read_text() + "\n\ndef _g():\n    import ember.te.loop_back\n")
    result = _lint(project)
    assert result.returncode != 0
    assert "No cycles are allowed in ember.te" in result.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components (more than one module) of the import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm with an explicit stack (the graph has hundreds of modules).
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                imported = graph.find_modules_directly_imported_by(child) & modules
                work.append((child, iter(sorted(imported))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back() -> None:
    """Stricter than the sibling contract: no cycle between any two modules, through
    imports inside functions too (a package's ``__init__`` re-exporting its modules is
    not an import back)."""
    graph = grimp.build_graph("ember", cache_dir=None, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if not graph.is_module_squashed(m)}
    packages = {m for m in modules if graph.find_children(m)}
    assert _cycles(graph, modules - packages) == []
