"""Appending interactions to a cassette file's bytes, so that a store needs no YAML of its own.

go-vcr writes `interactions` last, as a block list, so new entries can follow a file's bytes:
the file grows without being rewritten, and its existing bytes (whatever library wrote them)
stay as they are. The store's sequence, under its lock:

    reason = appendable(data, loaded.style, len(loaded.interactions))   # None: safe
    head = open_list(data)                   # or open_list(None) for a new file
    added = dump_interactions(items, style, first_id=len(loaded.interactions))
    write head + added
    new = loads_appended(added)              # the new interactions, without re-reading the file
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .fastreader import fast_entries
from .model import EMPTY_INTERACTIONS_LINE, NEW_FILE_STYLE, Interaction, Style
from .reader import check_chunks, loads
from .writer import HEAD, dump_interactions

_INTERACTIONS_KEY = b"interactions:\n"
_NEW_FILE_HEAD = HEAD.encode() + _INTERACTIONS_KEY
# A line at column 0 that is not an entry of a compact (indent 2) `interactions:` sequence.
_NOT_COMPACT_ENTRY = re.compile(rb"^(?!- | |\n|\Z)", re.MULTILINE)
# A line at column 0 at all (entries of an indented sequence never start there).
_AT_COLUMN_ZERO = re.compile(rb"^(?! |\n|\Z)", re.MULTILINE)
_FIRST_ID = re.compile(rb" *- id: ([0-9]+)\n")


def appendable(data: bytes, style: Style, count: int) -> str | None:
    """Why adding entries after `data` (a file that loaded with `style` and `count`
    interactions) would not give the same cassette plus those entries, or None when it would:
    `interactions` must be the last key, its list a block list laid out as go-vcr writes it,
    and the file must end with a line break."""
    if not data.endswith(b"\n"):
        return "it does not end with a line break"
    if count == 0:
        if data.endswith(b"\n" + EMPTY_INTERACTIONS_LINE) or data == EMPTY_INTERACTIONS_LINE:
            return None
        if data.endswith(b"\n" + _INTERACTIONS_KEY):
            return None
        return "it does not end with its empty `interactions` list"
    start = data.rfind(b"\n" + _INTERACTIONS_KEY)
    if start < 0:
        return "`interactions:` is not followed by a block list at the end of the file"
    tail = memoryview(data)[start + 1 + len(_INTERACTIONS_KEY) :]
    if style.indent == 2:
        ok = tail[:2] == b"- " and not _NOT_COMPACT_ENTRY.search(tail)
    else:
        entry = b" " * style.indent + b"- "
        ok = tail[: len(entry)] == entry and not _AT_COLUMN_ZERO.search(tail)
    if ok:
        return None
    return (
        "`interactions` is not the last key, or its list is not laid out as go-vcr writes it "
        f"(indent {style.indent})"
    )


def open_list(data: bytes | None) -> bytes:
    """A cassette's bytes ready for entries to follow: a final `interactions: []` becomes the
    key of the block list the entries make. None: the head of a new file (NEW_FILE_STYLE)."""
    if data is None:
        return _NEW_FILE_HEAD
    if data.endswith(EMPTY_INTERACTIONS_LINE):
        return data[: -len(EMPTY_INTERACTIONS_LINE)] + _INTERACTIONS_KEY
    return data


def append_bytes(
    existing: bytes | None, items: Sequence[Interaction], style: Style, first_id: int
) -> bytes:
    """The file after adding `items` to `existing` (None: a new file, written in NEW_FILE_STYLE
    whatever `style` says), ids first_id..; `existing` must be appendable."""
    if existing is None:
        style = NEW_FILE_STYLE
    return open_list(existing) + dump_interactions(items, style, first_id)


def loads_appended(added: bytes) -> list[Interaction]:
    """The interactions in `added`, bytes that `dump_interactions` wrote, as a loaded file would
    give them (with their ids), without reading the rest of the file. CassetteError when they do
    not load (a value no reader accepts, such as a header value holding a line break)."""
    first_id = _first_id(added)
    read = fast_entries(added, 0, first_id) if first_id is not None else None
    if read is not None:
        check_chunks(read[0], None)
        return read[0]
    # bytes the fast reader declines: the full reader, on a file made of these entries
    return loads(_NEW_FILE_HEAD + added).interactions


def _first_id(added: bytes) -> int | None:
    first = _FIRST_ID.match(added)
    return int(first[1]) if first else None
