"""Darknet ``.cfg`` files: ``[section]`` headers, then ``key=value`` lines.

    [net]
    width=416
    height=416
    channels=3

    [convolutional]
    batch_normalize=1
    filters=16
    size=3
    stride=1
    pad=1
    activation=leaky

``#`` and ``;`` start comments; blank lines and spaces around ``=`` are ignored
(Darknet strips every space). Each :class:`Section` keeps its line number so
that errors can point into the file::

    >>> sections = parse_cfg("[net]\\nwidth=8\\n[maxpool]\\nsize=2\\n", "tiny.cfg")
    >>> sections[1].kind, sections[1].integer("size"), sections[1].line
    ('maxpool', 2, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.errors import FrontendError


@dataclass
class Section:
    """One ``[kind]`` section: its options (in file order) and where it starts."""

    kind: str
    line: int
    source: str = "cfg"
    options: dict[str, str] = field(default_factory=dict)
    option_lines: dict[str, int] = field(default_factory=dict)
    label: str = ""  # the layer it became: "layer 6 'maxpool_6'"

    def where(self, key: str | None = None) -> str:
        """'yolov3-tiny.cfg line 42 ([maxpool], layer 6 ...)', at ``key``'s line if given."""
        line = self.option_lines.get(key, self.line) if key else self.line
        label = f", {self.label}" if self.label else ""
        return f"{self.source} line {line} ([{self.kind}]{label})"

    def error(self, what: str, key: str | None = None, hint: str | None = None) -> FrontendError:
        return FrontendError(f"Darknet {self.where(key)}: {what}", hint=hint)

    def has(self, key: str) -> bool:
        return key in self.options

    def text(self, key: str, default: str | None = None) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise self.error(f"the option {key!r} is missing", hint=f"add a line '{key}=...'")
        return default

    def integer(self, key: str, default: int | None = None) -> int:
        text = self.options.get(key)
        if text is None:
            if default is None:
                raise self.error(f"the option {key!r} is missing", hint=f"add a line '{key}=...'")
            return default
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{key}={text!r} is not an integer", key) from None

    def number(self, key: str, default: float) -> float:
        text = self.options.get(key)
        if text is None:
            return default
        try:
            return float(text)
        except ValueError:
            raise self.error(f"{key}={text!r} is not a number", key) from None

    def integers(self, key: str, default: list[int] | None = None) -> list[int]:
        """A comma-separated list of integers (``layers = -1, 8``)."""
        text = self.options.get(key)
        if text is None:
            if default is None:
                raise self.error(f"the option {key!r} is missing", hint=f"add a line '{key}=...'")
            return list(default)
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise self.error(f"{key}={text!r} is not a list of integers", key) from None


def parse_cfg(text: str, source: str = "cfg") -> list[Section]:
    """The sections of a ``.cfg`` file's text, in order; ``source`` names it in errors."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace(" ", "").replace("\t", "").replace("\r", "")
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise FrontendError(
                    f"Darknet {source} line {number}: {raw.strip()!r} is not a section header",
                    hint="a section starts with a line like [convolutional]",
                )
            sections.append(Section(line[1:-1].lower(), number, source))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise FrontendError(
                f"Darknet {source} line {number}: {raw.strip()!r} is not key=value",
                hint="options are written as key=value under a [section] header",
            )
        if not sections:
            raise FrontendError(
                f"Darknet {source} line {number}: option {key!r} comes before any [section]",
                hint="a Darknet cfg starts with [net]",
            )
        sections[-1].options[key] = value
        sections[-1].option_lines[key] = number
    if not sections:
        raise FrontendError(f"Darknet {source} holds no sections", hint="a cfg starts with [net]")
    if sections[0].kind not in ("net", "network"):
        raise sections[0].error(
            "the first section must be [net], which gives the input size",
            hint="add [net] with width=, height= and channels= at the top",
        )
    return sections
