"""Server-sent events (`text/event-stream`), read by the WHATWG rules: the one place that splits
an event-stream body into lines and fields.

- Lines end in CRLF, LF or CR (Gemini sends CRLF; nothing else ends a line: a JSON string may hold
  U+2028 unescaped). `sse_lines` yields each line with where it starts and how it ends.
- A `data` field is a line `data:` followed by its value; one space after the colon is not part of
  the value. `data_values` yields each value with where it starts in the body, so a scrubber can
  rewrite it and keep every other byte (`redact`), and `check` can say on which line of the body
  a secret is.
- `sse_events` joins the lines into events: the `data:` lines of one event joined with `\\n`, the
  `event:` line naming it, a blank line ending it; comment lines (`:`) and other fields are
  skipped; an event left open at the end of the body still counts (a recording cut short keeps
  its last event).
- `looks_like_sse` tells an event stream by its first line, for a body whose `Content-Type` does
  not say (a foreign cassette, a recording without headers).

Works on `bytes` and on `str` alike (offsets count bytes or characters). Pure Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Line", "SseEvent", "data_values", "looks_like_sse", "sse_events", "sse_lines"]

_LINE_END_TEXT = re.compile(r"\r\n|\r|\n")
_LINE_END_BYTES = re.compile(rb"\r\n|\r|\n")
_FIELD_STARTS_TEXT = ("data:", "event:", "id:", ":")
_FIELD_STARTS_BYTES = tuple(start.encode() for start in _FIELD_STARTS_TEXT)


class Line[T: (str, bytes)](NamedTuple):
    """One line of an event-stream body: `body[start:start + len(text)] == text`, then `end`
    (the line break as sent: `\\r\\n`, `\\n`, `\\r`, or empty for a last line without one)."""

    start: int
    text: T
    end: T


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: its `event:` name ("" when none) and its joined `data:` lines."""

    event: str
    data: str


def sse_lines[T: (str, bytes)](body: T) -> Iterator[Line[T]]:
    """Every line of `body` in order; joined back (`text + end`) they are `body`, byte for byte."""
    pattern = _LINE_END_BYTES if isinstance(body, bytes) else _LINE_END_TEXT
    start = 0
    for found in pattern.finditer(body):  # type: ignore[call-overload]
        yield Line(start, body[start : found.start()], found.group())
        start = found.end()
    if start < len(body):
        yield Line(start, body[start:], body[:0])


def data_values[T: (str, bytes)](body: T) -> Iterator[tuple[int, T]]:
    """The value of every `data:` line of `body` (one space after the colon left out), with
    where it starts in `body`: `body[start:start + len(value)] == value`. A scrubber rewrites
    those spans and keeps every other byte."""
    if isinstance(body, bytes):
        # The recorder runs this on every streamed answer: bytes.splitlines breaks at exactly
        # CR, LF and CRLF (as `sse_lines`; str.splitlines would also break at U+2028 ...) and
        # runs in C; no Line objects.
        start = 0
        for piece in body.splitlines(keepends=True):
            if piece.startswith(b"data:"):
                text = piece.rstrip(b"\r\n")
                skip = 6 if text[5:6] == b" " else 5
                yield start + skip, text[skip:]  # type: ignore[misc]
            start += len(piece)
        return
    for line in sse_lines(body):
        text = line.text
        if text.startswith("data:"):
            skip = 6 if text[5:6] == " " else 5
            yield line.start + skip, text[skip:]


def looks_like_sse(body: str | bytes) -> bool:
    """The body starts (after white space) the way an event stream does: `data:`, `event:`,
    `id:` or a comment line (`:`)."""
    starts = _FIELD_STARTS_BYTES if isinstance(body, bytes) else _FIELD_STARTS_TEXT
    return body.lstrip()[:16].startswith(starts)  # type: ignore[arg-type]


def sse_events(body: bytes | str) -> list[SseEvent]:
    """The events of a `text/event-stream` body (bytes are read as UTF-8, bad bytes replaced)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    events: list[SseEvent] = []
    name = ""
    data: list[str] | None = None
    for line in sse_lines(text):
        if not line.text:
            if data is not None:
                events.append(SseEvent(name, "\n".join(data)))
            name, data = "", None
            continue
        field_name, colon, value = line.text.partition(":")
        if not colon or not field_name:
            continue  # a comment line (": keep-alive") or a field without a value
        if value.startswith(" "):
            value = value[1:]
        if field_name == "data":
            data = [*(data or []), value]
        elif field_name == "event":
            name = value
    if data is not None:
        events.append(SseEvent(name, "\n".join(data)))
    return events
