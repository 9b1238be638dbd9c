"""Every code block in README.md and docs/ runs as written.

Each page's fenced blocks run in order, in a fresh temporary folder, in one process
per page (this file run as a script): ```python blocks share one namespace whose
``__name__`` is ``"__main__"`` (as a script's), ```sh blocks run with ``bash -e`` and
this checkout's ``ember`` and ``python`` first on PATH, ```json blocks must parse, and
```text blocks (diagrams, tables, printed loop nests) are not code. Any other fence is
an error, so a block is never left out by accident. A page makes the model files it
uses itself (its first blocks), so what runs here is what a reader can run.

A block that cannot run here says why in a comment on the line above it:

    <!-- docs-test: skip: REASON -->        never run here; the reason is required
    <!-- docs-test: requires: MODULE -->    skipped when MODULE cannot be imported

and a block that shows a file the reader saves (a module the page's later blocks import)
says where it goes:

    <!-- docs-test: file: NAME -->          written to NAME in the page's folder, not run

A failure names the page, the block's line and the error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LANGUAGES = ("python", "sh", "json", "text")
PAGE_TIMEOUT = 600  # seconds; every page together takes a few minutes

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)[^`]*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>[a-z-]+)\s*:\s*(?P<arg>.*?)\s*-->\s*$")
FAILED = "docs-test failed at "


class DocsError(Exception):
    """A page that breaks the conventions above (unknown fence, bad directive)."""


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, the line of its opening fence, its code."""

    page: str
    line: int
    language: str
    code: str
    skip: str | None = None  # the skip directive's reason
    requires: str | None = None  # a module the block needs
    file: str | None = None  # where the block is saved instead of run

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a markdown page, each with the directive above it."""
    page = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    lines = (path.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    directive: tuple[int, str, str] | None = None
    k = 0
    while k < len(lines):
        line = lines[k]
        found = DIRECTIVE.match(line)
        if found:
            kind, arg = found["kind"], found["arg"]
            if kind not in ("skip", "requires", "file") or not arg:
                raise DocsError(
                    f"{page}:{k + 1}: expected '<!-- docs-test: skip: REASON -->', "
                    f"'<!-- docs-test: requires: MODULE -->' or '<!-- docs-test: file: NAME -->', "
                    f"got {line.strip()!r}"
                )
            directive = (k + 1, kind, arg)
            k += 1
            continue
        opening = FENCE.match(line)
        if opening is None:
            if line.strip() and directive is not None:
                raise DocsError(
                    f"{page}:{directive[0]}: a docs-test directive must precede a block"
                )
            k += 1
            continue
        language, fence, indent = opening["info"], opening["fence"], len(opening["indent"])
        if language not in LANGUAGES:
            raise DocsError(
                f"{page}:{k + 1}: a block fenced {fence + language!r}; use one of "
                f"{', '.join('```' + lang for lang in LANGUAGES)} (```text for what is not code)"
            )
        end = k + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        if end == len(lines):
            raise DocsError(f"{page}:{k + 1}: the block is never closed")
        code = "\n".join(text_line[indent:] for text_line in lines[k + 1 : end])
        kind, arg = directive[1:] if directive else (None, None)
        blocks.append(
            Block(
                page,
                k + 1,
                language,
                code + "\n",
                skip=arg if kind == "skip" else None,
                requires=arg if kind == "requires" else None,
                file=arg if kind == "file" else None,
            )
        )
        directive = None
        k = end + 1
    if directive is not None:
        raise DocsError(f"{page}:{directive[0]}: a docs-test directive must precede a block")
    return blocks


def skip_reason(block: Block) -> str | None:
    """Why ``block`` does not run here, or None."""
    if block.skip is not None:
        return block.skip
    if block.requires is not None and importlib.util.find_spec(block.requires) is None:
        return f"needs {block.requires}, which is not installed"
    return None


def run_block(block: Block, namespace: dict[str, object]) -> None:
    """Run one block in the current folder (or save it, if it shows a file); raises on
    failure."""
    if block.file is not None:
        Path(block.file).write_text(block.code)
    elif block.language == "python":
        # Pad so that tracebacks give the page's own line numbers.
        code = compile("\n" * block.line + block.code, block.page, "exec")
        exec(code, namespace)
    elif block.language == "sh":
        # One header line, then padding: $LINENO is the page's line of the command.
        header = "set -e; trap 'echo $LINENO > .docs-test-line' ERR\n"
        script = header + "\n" * (block.line - 1) + block.code
        done = subprocess.run(["bash", "-c", script], check=False)
        if done.returncode != 0:
            failed = Path(".docs-test-line")
            line = failed.read_text().strip() if failed.exists() else "?"
            raise RuntimeError(f"line {line}: the command exited with status {done.returncode}")
    elif block.language == "json":
        json.loads(block.code)


def run_page(path: Path) -> int:
    """Run a page's blocks in order in the current folder (the script's entry point)."""
    namespace: dict[str, object] = {"__name__": "__main__", "__builtins__": __builtins__}
    sys.path[0] = os.getcwd()  # as for a script in this folder (not tests/)
    for block in blocks_of(path):
        if block.language == "text":
            continue
        reason = skip_reason(block)
        if reason is not None:
            print(f"docs-test skipped {block.where}: {reason}", flush=True)
            continue
        start = time.perf_counter()
        print(f"docs-test running {block.where} ({block.language})", flush=True)
        try:
            run_block(block, namespace)
        except BaseException as err:  # noqa: BLE001 (any failure of the page's code)
            sys.stdout.flush()
            detail = (
                str(err)
                if block.language == "sh"
                else "".join(traceback.format_exception(err)).rstrip()
            )
            print(f"\n{FAILED}{block.where} ({block.language} block): {detail}", flush=True)
            return 1
        sys.stdout.flush()
        seconds = time.perf_counter() - start
        print(f"docs-test ran {block.where} in {seconds:.1f} s", flush=True)
    return 0


def _environment(bin_dir: Path) -> dict[str, str]:
    """This checkout's ``ember`` and ``python`` first on PATH, the checkout on PYTHONPATH."""
    bin_dir.mkdir(exist_ok=True)
    # Wrappers, not links: a link to a virtual environment's python loses the environment.
    for name, command in (("ember", f'"{sys.executable}" -m ember'), ("python", sys.executable)):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


# ---- the tests ---------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = _environment(tmp_path / "bin")
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), str(page)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"{page.relative_to(ROOT)} ran longer than {PAGE_TIMEOUT} s: {err.stdout}")
    output = done.stdout + done.stderr
    if done.returncode != 0:
        failure = output[output.find(FAILED) :] if FAILED in output else output[-4000:]
        pytest.fail(f"{failure}\n\n--- the page's output (end) ---\n{output[-6000:]}")


def test_blocks_follow_the_conventions() -> None:
    blocks = [b for page in PAGES for b in blocks_of(page)]
    assert {b.language for b in blocks} <= set(LANGUAGES)
    # Few, named skips: each one is a block a reader cannot run as it stands here.
    skipped = [(b.where, b.skip) for b in blocks if b.skip is not None]
    assert all(reason and len(reason) > 10 for _, reason in skipped), skipped
    assert len(skipped) <= 3, skipped


REPO_PATH = re.compile(r"`((?:\.\./|ember/|docs/|benchmarks/|tests/)[^`\s<>*{}]*)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_files_the_docs_name_exist_in_the_repository() -> None:
    wrong = []
    for page in PAGES:
        text = page.read_text()
        # `ember/...` paths are the repository's; links are relative to their page.
        named = [
            (ROOT if not m[1].startswith("../") else page.parent, m[1])
            for m in REPO_PATH.finditer(text)
        ]
        named += [
            (page.parent, m[1].split("#")[0]) for m in LINK.finditer(text) if "://" not in m[1]
        ]
        for base, name in named:
            target = (base / name).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                wrong.append(f"{page.relative_to(ROOT)}: {name}")
    assert not wrong, "paths outside the repository or missing:\n" + "\n".join(wrong)


def test_parser_reports_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    text = "# t\n\n<!-- docs-test: skip: needs TensorFlow -->\n```python\nimport tf\n```\n"
    (block,) = blocks_of(page, text)
    assert (block.line, block.language, block.code, block.skip) == (
        4,
        "python",
        "import tf\n",
        "needs TensorFlow",
    )
    with pytest.raises(DocsError, match=r"page.md:2: a block fenced '```'; use one of"):
        blocks_of(page, "text\n```\nnot tagged\n```\n")
    with pytest.raises(DocsError, match=r"page.md:1: expected '<!-- docs-test: skip: REASON -->'"):
        blocks_of(page, "<!-- docs-test: skip: -->\n```sh\nls\n```\n")
    with pytest.raises(DocsError, match=r"page.md:1: a docs-test directive must precede a block"):
        blocks_of(page, "<!-- docs-test: requires: tensorflow -->\nprose\n```sh\nls\n```\n")
    (needs,) = blocks_of(page, "<!-- docs-test: requires: no_such_module_x -->\n```sh\nls\n```\n")
    assert skip_reason(needs) == "needs no_such_module_x, which is not installed"
    (saved,) = blocks_of(page, "<!-- docs-test: file: my_ops.py -->\n```python\nX = 1\n```\n")
    assert (saved.file, saved.code, skip_reason(saved)) == ("my_ops.py", "X = 1\n", None)


def test_a_failing_block_names_page_line_and_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text(
        "# broken\n\n```python\nx = 1\n```\n\n```sh\ntest -f made.txt || true\n```\n\n"
        "```python\nassert x == 1\nraise ValueError('the example is wrong')\n```\n"
    )
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(page)],
        cwd=tmp_path,
        env=_environment(tmp_path / "bin"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert f"{FAILED}{page}:11 (python block): Traceback" in done.stdout
    assert f'File "{page}", line 13' in done.stdout  # the page's own line
    assert "ValueError: the example is wrong" in done.stdout
    page.write_text("```sh\necho start\nfalse\necho never\n```\n")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(page)],
        cwd=tmp_path,
        env=_environment(tmp_path / "bin"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "never" not in done.stdout
    assert f"{FAILED}{page}:1 (sh block): line 3: the command exited with status 1" in done.stdout


if __name__ == "__main__":
    sys.exit(run_page(Path(sys.argv[1]).resolve()))
