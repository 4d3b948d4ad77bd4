"""`multipart/form-data` framing: a body's boundary, and where each part's headers and content are.

Read by `matching` (parts compared whatever the random boundary) and `redact` (a part named like a
secret gets the content `REDACTED`, the framing kept byte for byte). Pure Python (no mitmproxy).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_BOUNDARY_PARAM = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^\s;,]+))""", re.IGNORECASE)
# RFC 2046: a boundary is 1 to 70 characters; the first body line of a multipart body is `--` + it.
_FIRST_DELIMITER_LINE = re.compile(rb"--([\x21-\x7e][\x20-\x7e]{0,69}?)\r?\n")
_LEADING_LINE_BREAK = re.compile(rb"\A\r?\n")
_TRAILING_LINE_BREAK = re.compile(rb"\r?\n\Z")
# `name="..."` in a part's Content-Disposition, not the `filename="..."` parameter.
_PART_NAME = re.compile(rb'(?:^|[;\s])name="([^"]*)"', re.IGNORECASE)


class Part(NamedTuple):
    """One part: its header block (line breaks as `\\n`) and where its content is in the body."""

    head: bytes
    start: int
    end: int


def boundary(body: bytes, content_type: str) -> bytes | None:
    """The boundary of a multipart body: from the Content-Type when it says multipart, else from
    the body's first line when the body is closed by the same boundary; None otherwise."""
    if "multipart/" in content_type.lower():
        found = _BOUNDARY_PARAM.search(content_type)
        if found:
            return (found.group(1) or found.group(2)).encode("latin-1", "replace")
    first_line = _FIRST_DELIMITER_LINE.match(body)
    if first_line and b"--" + first_line.group(1) + b"--" in body:
        return first_line.group(1)
    return None


def parts(body: bytes, boundary: bytes) -> list[Part] | None:
    """Each part of `body`; None when the body is not framed by `boundary` (never closed).

    The line break after a delimiter and the one before the next belong to the framing; a part
    without a header block is all content; the epilogue after the close delimiter does not count.
    """
    delimiter = b"--" + boundary
    pieces = body.split(delimiter)
    if len(pieces) < 2:
        return None
    found: list[Part] = []
    offset = len(pieces[0]) + len(delimiter)
    for piece in pieces[1:]:
        piece_start = offset
        offset += len(piece) + len(delimiter)
        if piece.startswith(b"--"):  # the close delimiter
            return found
        lead = _LEADING_LINE_BREAK.match(piece)
        start = piece_start + (lead.end() if lead else 0)
        trail = _TRAILING_LINE_BREAK.search(piece)
        end = piece_start + (trail.start() if trail else len(piece))
        inner = body[start:end]
        head, sep, _ = inner.partition(b"\r\n\r\n")
        if not sep:
            head, sep, _ = inner.partition(b"\n\n")
        if not sep:  # no header block at all: the whole piece is content
            head = b""
        found.append(Part(head.replace(b"\r\n", b"\n"), start + len(head) + len(sep), end))
    return None


def part_name(head: bytes) -> str | None:
    """The form field name of a part (`Content-Disposition: form-data; name="..."`), or None."""
    found = _PART_NAME.search(head)
    return found.group(1).decode("utf-8", "replace") if found else None
