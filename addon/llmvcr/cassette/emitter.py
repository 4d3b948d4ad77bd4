"""A port of go-yaml's emitter (emitterc.go) for what a cassette holds: block mappings and
sequences of scalars, empty flow collections, and one-line flow mappings of plain scalars.

The writer uses it for unknown keys and for map keys go-yaml would not write as simple keys;
the tests use it as the reference the writer's fast path is checked against.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from .model import SURROGATE, PlainText
from .scalars import (
    PLAIN_OK,
    double_quoted,
    inline_text,
    literal_allowed,
    surrogates_as_bytes,
)


class FlowMap(tuple[tuple[str, str], ...]):
    """A one-line flow mapping of plain scalars (one `chunks` entry)."""

    __slots__ = ()


def scalar_parts(value: object) -> tuple[str, str, str]:
    """(tag, style, text) go-yaml would use for a scalar value; style is one of plain, single,
    double, literal."""
    if isinstance(value, bool):
        return "", "plain", "true" if value else "false"
    if isinstance(value, int):
        return "", "plain", str(value)
    if value is None:
        return "", "plain", "null"
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return _binary_parts(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} in a cassette: {value!r}")
    if SURROGATE.search(value):
        return _binary_parts(surrogates_as_bytes(value))
    if isinstance(value, PlainText) and (not value or PLAIN_OK.match(value)):
        return "", "plain", str(value)
    if "\n" in value:
        if literal_allowed(value):
            return "", "literal", value
        return "", "double", value
    inline = inline_text(value)
    assert inline is not None
    # a plain scalar never starts with a quote, so the first character tells the style
    style = {"'": "single", '"': "double"}.get(inline[1], "plain")
    return "", style, value


def _binary_parts(data: bytes) -> tuple[str, str, str]:
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) < 70:
        return "!!binary", "plain", encoded
    lines = "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))
    return "!!binary", "literal", lines


class Emitter:
    """go-yaml's emitter state while writing one document: `best` is its indent width, `compact`
    charm's CompactSeqIndent (a block list's dash at its key's column); `text()` is the result."""

    __slots__ = ("best", "column", "compact", "indention", "out", "whitespace")

    def __init__(self, best: int, compact: bool) -> None:
        self.best = best
        self.compact = compact
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    def text(self) -> str:
        """What was written, ending with a line break (as the next write_indent would add)."""
        if self.column > 0:
            self.out.append("\n")
            self.column = 0
        return "".join(self.out)

    def next_indent(self, indent: int) -> int:
        return self.best * ((indent + self.best) // self.best)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_indent(self, indent: int) -> None:
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True

    def indicator(self, text: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(text)
        self.column += len(text)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def mapping(self, items: Iterable[tuple[object, object]], indent: int) -> None:
        """A block mapping whose keys sit at column `indent`."""
        for key, value in items:
            self.write_indent(indent)
            tag, style, text = scalar_parts(key)
            simple = (
                style != "literal"
                and "\n" not in text
                and len(tag) + len(text.encode("utf-8")) <= 128
                and not any(c in text for c in "\r\x85\u2028\u2029")
            )
            if simple:
                if style == "plain" and not text:
                    style = "single"
                self.scalar(tag, style, text, self.next_indent(indent), indent)
                self.indicator(":", False, False, False)
            else:
                self.indicator("?", True, False, True)
                self.scalar(tag, style, text, self.next_indent(indent), indent)
                self.write_indent(indent)
                self.indicator(":", True, False, True)
            self.node(value, indent, in_sequence=False)

    def node(self, value: object, parent: int, in_sequence: bool) -> None:
        """A value inside the collection whose entries sit at column `parent`."""
        indent = parent + 2 if in_sequence else self.next_indent(parent)
        if isinstance(value, FlowMap):
            self.indicator("{", True, True, False)
            for i, (k, v) in enumerate(value):
                if i:
                    self.indicator(",", False, False, False)
                self.plain(k)
                self.indicator(":", False, False, False)
                self.plain(v)
            self.indicator("}", False, False, False)
        elif isinstance(value, dict):
            if not value:
                self.indicator("{", True, True, False)
                self.indicator("}", False, False, False)
            else:
                self.mapping(value.items(), indent)
        elif isinstance(value, list | tuple):
            if not value:
                self.indicator("[", True, True, False)
                self.indicator("]", False, False, False)
                return
            compact = not in_sequence and (self.column == 0 or not self.indention) and self.compact
            if compact:
                indent -= 2
            for item in value:
                self.write_indent(indent)
                self.indicator("-", True, False, True)
                self.node(item, indent, in_sequence=True)
        else:
            self.scalar(*scalar_parts(value), indent, parent)

    def plain(self, text: str) -> None:
        if text and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(text)
        self.column += len(text)
        if text:
            self.whitespace = False
        self.indention = False

    def scalar(self, tag: str, style: str, text: str, indent: int, parent: int) -> None:
        """A scalar; block content at column `indent`, its key or dash at column `parent`."""
        if tag:
            if not self.whitespace:
                self.out.append(" ")
                self.column += 1
            self.out.append(tag)
            self.column += len(tag)
            self.whitespace = False
            self.indention = False
        if style == "plain":
            self.plain(text)
            return
        if style in ("single", "double"):
            quote = "'" if style == "single" else '"'
            inner = text.replace("'", "''") if style == "single" else double_quoted(text)
            self.indicator(quote, True, False, False)
            self.out.append(inner)
            self.column += len(inner)
            self.indicator(quote, False, False, False)
            return
        self.indicator("|", True, False, False)
        if text[0] in " \n\t":
            self.indicator(str(indent - parent), False, False, False)
        if text[-1] != "\n":
            self.indicator("-", False, False, False)
        elif len(text) == 1 or text[-2] == "\n":
            self.indicator("+", False, False, False)
        self.put_break()
        self.whitespace = True
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if line:
                self.write_indent(indent)
                self.out.append(line)
                self.column += len(line)
                self.indention = False
            if i < len(lines) - 1:
                self.put_break()
