"""Appending interactions to a cassette file's bytes, so that a store needs no YAML of its own.

go-vcr writes `interactions` last, as a block list, so new entries can follow a file's bytes:
the file grows without being rewritten, and its existing bytes (whatever library wrote them)
stay as they are. What a store asks, under its lock:

- `tail_ending(read_tail, size)`: how to add entries to a file, learnt from its last bytes only
  (the last entry, checked to be exactly what the writer writes): its Style and the next id. None
  when the tail does not say (an empty list, a hand-edited last entry): then the store reads the
  whole file and asks `appendable(data, style, count)` and `ending(data, style, count)`.
- `open_list(data)` (only when `Ending.in_place` is False: `interactions: []` must be opened, a
  small rewrite), `dump_interactions(items, style, first_id)`: the bytes to write.
- `loads_appended(added)`: the new interactions, read from the added bytes alone (after the
  store's own append, or another process's).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
# Where an interaction entry starts, per indent: go-vcr's 4-space layout and charm's compact one.
_ENTRY_LINES = ((b"\n- id: ", 2), (b"\n    - id: ", 4))
TAIL_BYTES = 64 * 1024  # the first look at a file's end; grown while no entry starts in it


@dataclass(frozen=True, slots=True)
class Ending:
    """What adding entries to a file needs: the file's Style, the next id, and whether entries
    may follow its bytes as they are (False: `open_list` must rewrite its last line first)."""

    style: Style
    count: int
    in_place: bool = True


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


def read_extension(added: bytes, style: Style) -> list[Interaction] | None:
    """The interactions in bytes that appends added after a whole file laid out in `style`,
    when they are entries exactly as the writer writes them at that file's indent (what every
    append writes); None for anything else (the caller then reads the whole file, since bytes
    added to a file may mean something else there than alone: a continued scalar, a new key)."""
    if not added:
        return []
    first_id = _first_id(added)
    read = fast_entries(added, 0, first_id) if first_id is not None else None
    if read is None or read[1].indent != style.indent:
        return None
    check_chunks(read[0], None)
    return read[0]


def _first_id(added: bytes) -> int | None:
    first = _FIRST_ID.match(added)
    return int(first[1]) if first else None


def ending(data: bytes, style: Style, count: int) -> Ending:
    """The Ending of a whole file's bytes that loaded with `style` and `count` interactions and
    are `appendable`."""
    return Ending(style, count, in_place=not data.endswith(EMPTY_INTERACTIONS_LINE))


def tail_ending(read_tail: Callable[[int], bytes], size: int) -> Ending | None:
    """The Ending of a file of `size` bytes, from its last bytes only (`read_tail(n)` gives the
    last n): its last entry must be exactly what the writer writes for one interaction in one
    Style, with the id its line says, ending at the end of the file. Style and the next id (that
    id + 1, as go-vcr numbers interactions by position) come from it. None when the tail does
    not show that (no entry, a hand-edited one, an entry that reads the same in both key shapes):
    the caller then reads the whole file.

    Trusted without reading further: that an entry at the end of the file belongs to
    `interactions` (go-vcr writes that key last) and that ids count positions."""
    n = min(size, TAIL_BYTES)
    while n > 0:
        tail = read_tail(n)
        start = max(tail.rfind(line) for line, _ in _ENTRY_LINES)
        if start >= 0:
            return _entry_ending(tail, start + 1)
        if n == size:
            return None
        n = min(size, n * 4)
    return None


def _entry_ending(tail: bytes, pos: int) -> Ending | None:
    first = _FIRST_ID.match(tail, pos)
    if first is None:
        return None
    first_id = int(first[1])
    read = fast_entries(tail, pos, first_id)
    if read is None or len(read[0]) != 1:
        return None
    interactions, style = read
    other = Style(style.indent, not style.omit_empty)
    if dump_interactions(interactions, other, first_id) == tail[pos:]:
        return None  # written the same in both key shapes: the entry does not tell
    return Ending(style, first_id + 1)
