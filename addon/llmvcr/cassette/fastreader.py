"""The fast reader: a file in the writer's own form (what go-vcr and this project write), read
line by line without composing YAML nodes, and accepted only when the writer gives back its
exact bytes. Any other file is left to the full reader, which gives the same result.

Since dumps(c) == data implies loads(data) == c, checking the write-back is what makes this
reader exact: it can stay simple and give up (return None) on anything unexpected. The keys of
a request and a response, and how each is read, come from the table in `fields.py`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from . import collector, fields
from .fields import LINE_BREAKING, Kind, Omit, Section
from .govalues import parse_duration
from .model import (
    EMPTY_INTERACTIONS_LINE,
    NEW_FILE_STYLE,
    Cassette,
    Chunk,
    Headers,
    Interaction,
    Request,
    Response,
    Style,
)
from .scalars import ESCAPES
from .writer import HEAD, Layout, write_interactions

_T = TypeVar("_T")


class _NotCanonical(ValueError):
    """The fast reader met text the writer would not write: the full reader takes over."""


# what the fast reader may raise on text it does not expect (UnicodeError and binascii.Error
# are ValueErrors)
_GIVE_UP = (ValueError, IndexError, KeyError, TypeError, OverflowError)
_FAST_HEAD = HEAD.encode() + b"interactions:\n"
_FAST_EMPTY = HEAD.encode() + EMPTY_INTERACTIONS_LINE
_VERIFY_BATCH = 256  # interactions written at a time when checking the bytes
# Interactions read between two collections of the young generations (see `interactions`).
_COLLECT_EVERY = 1_000
_CACHED_LINE = 256  # longest scalar line whose value is shared between equal lines
_BLOCK_HEAD = re.compile(rb" \|[1-9]?([-+]?)\n")
_CHUNK_ENTRY = re.compile(rb" \{at: ([^,\n]+), size: ([0-9]+)\}\n")
# Exact decimal arithmetic here gives Go's float64 result for every text format_duration writes
# (at most 9 significant fraction digits against the unit), and the write-back check catches any
# other text.
_SIMPLE_DURATION = re.compile(rb" ([0-9]{1,12})(?:\.([0-9]{1,9}))?(ns|\xc2\xb5s|ms|s)")
_NS_PER_UNIT_BYTES = {b"ns": 1, "\u00b5s".encode(): 1_000, b"ms": 1_000_000, b"s": 1_000_000_000}
_UNESCAPE = re.compile(r"\\(?:x([0-9A-F]{2})|u([0-9A-F]{4})|U([0-9A-F]{8})|(.))", re.S)
_UNESCAPED = {escape[1]: c for c, escape in ESCAPES.items()}


def _unescape_match(m: re.Match[str]) -> str:
    digits = m[1] or m[2] or m[3]
    if digits:
        return chr(int(digits, 16))
    c = _UNESCAPED.get(m[4])
    if c is None:
        raise _NotCanonical(m[0])
    return c


def _holds_line_break(lists: Headers) -> bool:
    return any(
        LINE_BREAKING.search(name) or LINE_BREAKING.search("".join(values))
        for name, values in lists.items()
    )


def _quoted(line: bytes, quote: bytes) -> bytes:
    if len(line) < 3 or not line.endswith(quote):
        raise _NotCanonical(line)
    return line[2:-1]


def _scalar_body(line: bytes) -> bytes:
    """A one-line scalar after "key:" (`line` starts with its space) as bytes."""
    first = line[1:2]
    if first == b"'":
        return _quoted(line, b"'").replace(b"''", b"'")
    if first == b'"':
        inner = _quoted(line, b'"').decode("utf-8")
        return _UNESCAPE.sub(_unescape_match, inner).encode("utf-8")
    if line.startswith(b" !!binary "):
        return base64.b64decode(line[10:], validate=True)
    if first != b" " and line[:1] == b" ":
        return line[1:]
    raise _NotCanonical(line)


def _scalar_text(line: bytes) -> str:
    """A one-line scalar after "key:" or "-" (`line` starts with its space) as a string."""
    first = line[1:2]
    if first == b"'":
        return _quoted(line, b"'").decode("utf-8").replace("''", "'")
    if first == b'"':
        return _UNESCAPE.sub(_unescape_match, _quoted(line, b'"').decode("utf-8"))
    if line.startswith(b" !!binary "):
        return base64.b64decode(line[10:], validate=True).decode("utf-8", "surrogateescape")
    if first != b" " and line[:1] == b" ":
        return line[1:].decode("utf-8")
    raise _NotCanonical(line)


@lru_cache(maxsize=32)
def _block_end(indent: int) -> re.Pattern[bytes]:
    """The line break before the first line that is neither empty nor indented `indent`."""
    return re.compile(rb"\n(?!\n| {%d})" % indent)


class _FastReader:
    """Reads the interactions of a file in one layout; values with equal text come back as one
    shared object (strings of short lines, header/form/trailer maps)."""

    def __init__(self, data: bytes, layout: _FastLayout) -> None:
        self.data = data
        self.full_shape = False
        self.item = layout.item
        self.request = layout.request
        self.response = layout.response
        self.value = layout.value
        self.value_pad = layout.value_pad
        self.list_item = layout.list_item
        self.list_value = layout.list_value
        self.header_item = layout.header_item
        self.header_value = layout.header_value
        self.value_end = layout.value_end
        self.request_keys = layout.request_keys
        self.response_keys = layout.response_keys
        self.request_model = layout.request_model
        self.response_model = layout.response_model
        self.strings: dict[bytes, str] = {}
        self.maps: dict[bytes, Headers] = {}
        self.header_maps: dict[bytes, Headers] = {}  # checked for line breaks, unlike `maps`
        self.durations: dict[str, int] = {}

    def interactions(self, pos: int) -> list[Interaction]:
        data = self.data
        size = len(data)
        item, request_line, response_line = self.item, self.request, self.response
        request_keys, response_keys = self.request_keys, self.response_keys
        request_model, response_model = self.request_model, self.response_model
        section = self.section
        out = []
        while pos < size:
            if not data.startswith(item, pos):
                raise _NotCanonical(pos)
            end = data.index(b"\n", pos)
            ident = int(data[pos + len(item) : end])
            pos = end + 1
            if not data.startswith(request_line, pos):
                raise _NotCanonical(pos)
            request, pos = section(pos + len(request_line), request_keys)
            if not data.startswith(response_line, pos):
                raise _NotCanonical(pos)
            response, pos = section(pos + len(response_line), response_keys)
            out.append(Interaction(request_model(**request), response_model(**response), ident))
            if len(out) % _COLLECT_EVERY == 0:
                collector.step()
        return out

    def section(self, pos: int, keys: tuple[_KeyReader, ...]) -> tuple[dict[str, object], int]:
        """The known keys of a request or response, in the writer's order."""
        data = self.data
        values = {}
        for name, prefix, read, optional in keys:
            if data.startswith(prefix, pos):
                value, pos = read(self, pos + len(prefix))
                values[name] = value
                if optional and not value:
                    self.full_shape = True
        return values, pos

    def block(self, pos: int, indent: int) -> tuple[bytes, int]:
        """A literal block (`|`, or base64 after `!!binary |`) at `pos`, content at `indent`."""
        data = self.data
        binary = data.startswith(b" !!binary |\n", pos)
        if binary:
            start = pos + 12
            chomp = b""
        else:
            head = _BLOCK_HEAD.match(data, pos)
            if head is None:
                raise _NotCanonical(pos)
            start = head.end()
            chomp = head[1]
        found = _block_end(indent).search(data, start - 1)
        if found is None:
            raise _NotCanonical(pos)
        end = found.start() + 1
        # every line of the block is empty or starts with the indentation: drop the first line's
        # with the slice, the others' with one replace
        pad = b" " * indent
        if data.startswith(pad, start):
            start += indent
        content = data[start:end].replace(b"\n" + pad, b"\n")
        if binary:
            return base64.b64decode(content.replace(b"\n", b""), validate=True), end
        if chomp == b"-":
            content = content.rstrip(b"\n")
        elif not chomp:
            content = content.rstrip(b"\n") + b"\n" if content.strip(b"\n") else b""
        return content, end

    def text(self, pos: int, indent: int) -> tuple[str, int]:
        """A string value after "key:" or "-" at `pos`, block content at `indent`."""
        data = self.data
        end = data.index(b"\n", pos)
        line = data[pos:end]
        value = self.strings.get(line)
        if value is not None:
            return value, end + 1
        if line.startswith(b" |") or line == b" !!binary |":
            content, end = self.block(pos, indent)
            if line == b" !!binary |":
                return content.decode("utf-8", "surrogateescape"), end
            return content.decode("utf-8"), end
        value = _scalar_text(line)
        if len(line) <= _CACHED_LINE:
            self.strings[line] = value
        return value, end + 1

    def text_field(self, pos: int) -> tuple[str, int]:
        return self.text(pos, self.value)

    def line_field(self, pos: int) -> tuple[str, int]:
        """A status: declined when it holds CR, LF or NUL (the full reader refuses it)."""
        value, pos = self.text(pos, self.value)
        if "\n" in value or "\r" in value or "\0" in value:
            raise _NotCanonical(pos)
        return value, pos

    def int_field(self, pos: int) -> tuple[int, int]:
        end = self.data.index(b"\n", pos)
        return int(self.data[pos:end]), end + 1

    def bool_field(self, pos: int) -> tuple[bool, int]:
        if self.data.startswith(b" true\n", pos):
            return True, pos + 6
        if self.data.startswith(b" false\n", pos):
            return False, pos + 7
        raise _NotCanonical(pos)

    def body(self, pos: int) -> tuple[bytes, int]:
        data = self.data
        end = data.index(b"\n", pos)
        if data.startswith(b" |", pos) or data.startswith(b" !!binary |\n", pos):
            return self.block(pos, self.value)
        return _scalar_body(data[pos:end]), end + 1

    def duration(self, pos: int) -> tuple[int, int]:
        data = self.data
        end = data.index(b"\n", pos)
        simple = _SIMPLE_DURATION.fullmatch(data, pos, end)
        if simple is not None:  # the form format_duration writes below a minute
            whole, frac, unit = simple.groups()
            ns = int(whole) * _NS_PER_UNIT_BYTES[unit]
            if frac:
                ns += int(frac) * _NS_PER_UNIT_BYTES[unit] // 10 ** len(frac)
            return ns, end + 1
        text, pos = self.text(pos, self.value)
        return self.parsed_duration(text), pos

    def parsed_duration(self, text: str) -> int:
        ns = self.durations.get(text)
        if ns is None:
            ns = self.durations[text] = parse_duration(text)
        return ns

    def block_start(self, pos: int) -> int | None:
        """Where the entries of a block list start after its key (None: an empty ` []`)."""
        data = self.data
        if data.startswith(b" []\n", pos):
            return None
        if data[pos : pos + 1] != b"\n":
            raise _NotCanonical(pos)
        return pos + 1

    def block_list(
        self, pos: int, read_item: Callable[[int], tuple[_T, int]]
    ) -> tuple[list[_T], int]:
        """A block list after its key: ` []`, or one `- ` entry per line, each read by
        `read_item` from just after its `- `."""
        data = self.data
        start = self.block_start(pos)
        if start is None:
            return [], pos + 4
        pos, item, out = start, self.list_item, []
        while data.startswith(item, pos):
            value, pos = read_item(pos + len(item))
            out.append(value)
        return out, pos

    def string_list(self, pos: int) -> tuple[list[str], int]:
        indent = self.list_value
        return self.block_list(pos, lambda at: self.text(at, indent))

    def chunks(self, pos: int) -> tuple[list[Chunk], int]:
        return self.block_list(pos, self.chunk)

    def chunk(self, pos: int) -> tuple[Chunk, int]:
        entry = _CHUNK_ENTRY.match(self.data, pos)
        if entry is None:
            raise _NotCanonical(pos)
        return Chunk(self.parsed_duration(entry[1].decode("utf-8")), int(entry[2])), entry.end()

    def string_lists(self, pos: int) -> tuple[Headers, int]:
        return self.map_at(pos, self.maps, False)

    def headers(self, pos: int) -> tuple[Headers, int]:
        """A map of header lines: declined when a name or value holds CR, LF or NUL (the full
        reader refuses it, naming the line)."""
        return self.map_at(pos, self.header_maps, True)

    def map_at(self, pos: int, cache: dict[bytes, Headers], lines: bool) -> tuple[Headers, int]:
        """A map of string lists; one shared map for every block with the same text."""
        data = self.data
        if data.startswith(b" {}\n", pos):
            return {}, pos + 4
        if data[pos : pos + 1] != b"\n":
            raise _NotCanonical(pos)
        found = self.value_end.search(data, pos)
        if found is None:
            raise _NotCanonical(pos)
        end = found.start() + 1
        region = data[pos + 1 : end]
        lists = cache.get(region)
        if lists is None:
            lists = cache[region] = self.parse_string_lists(pos + 1, end)
            # the writer writes CR and NUL escaped (`\r`, `\0`), LF escaped or in a literal block
            # (`|`), any of them in `!!binary`; a raw one the write-back check refuses. So a
            # region with no backslash, `|` or `!!` holds none (three fast scans).
            if (
                lines
                and (b"\\" in region or b"|" in region or b"!!" in region)
                and _holds_line_break(lists)
            ):
                raise _NotCanonical(pos)
        return lists, end

    def parse_string_lists(self, pos: int, end: int) -> Headers:
        data = self.data
        pad, column = self.value_pad, self.value
        item, indent = self.header_item, self.header_value
        out: Headers = {}
        while pos < end:
            if not data.startswith(pad, pos) or data[pos + column] == 32:
                raise _NotCanonical(pos)
            line_end = data.index(b"\n", pos)
            line = data[pos + column : line_end]
            values: list[str] = []
            if line.endswith(b": []"):
                name = line[:-4]
                pos = line_end + 1
            elif line.endswith(b":"):
                name = line[:-1]
                pos = line_end + 1
                while data.startswith(item, pos):
                    value, pos = self.text(pos + len(item) - 1, indent)
                    values.append(value)
            else:
                raise _NotCanonical(pos)
            out[self.text_of_key(name)] = values
        if pos != end:
            raise _NotCanonical(pos)
        return out

    def text_of_key(self, name: bytes) -> str:
        line = b" " + name
        value = self.strings.get(line)
        if value is None:
            value = self.strings[line] = _scalar_text(line)
        return value


_KeyReader = tuple[str, bytes, Callable[[_FastReader, int], tuple[object, int]], bool]
_READERS: dict[Kind, Callable[[_FastReader, int], tuple[object, int]]] = {
    Kind.TEXT: _FastReader.text_field,
    Kind.LINE: _FastReader.line_field,
    Kind.INT: _FastReader.int_field,
    Kind.BOOL: _FastReader.bool_field,
    Kind.BODY: _FastReader.body,
    Kind.DURATION: _FastReader.duration,
    Kind.STRING_LIST: _FastReader.string_list,
    Kind.STRING_LISTS: _FastReader.string_lists,
    Kind.HEADERS: _FastReader.headers,
    Kind.CHUNKS: _FastReader.chunks,
}


@dataclass(frozen=True, slots=True)
class _FastLayout:
    """The prefixes of one layout as bytes, and the readers of the request and response keys in
    the writer's order (each with whether an empty value means the every-key shape)."""

    item: bytes
    request: bytes
    response: bytes
    value: int
    value_pad: bytes
    list_item: bytes
    list_value: int
    header_item: bytes
    header_value: int
    value_end: re.Pattern[bytes]
    request_keys: tuple[_KeyReader, ...]
    response_keys: tuple[_KeyReader, ...]
    request_model: type[Request] | type[Response]
    response_model: type[Request] | type[Response]

    @staticmethod
    def of(indent: int) -> _FastLayout:
        return _fast_layout(indent, fields.REQUEST, fields.RESPONSE)


@lru_cache(maxsize=4)
def _fast_layout(indent: int, request: Section, response: Section) -> _FastLayout:
    layout = Layout.of(Style(indent, True))
    keys = {name: prefix.encode() for name, prefix in layout.keys.items()}

    def key_readers(section: Section) -> tuple[_KeyReader, ...]:
        return tuple(
            (f.name, keys[f.name], _READERS[f.kind], f.omit is Omit.EMPTY) for f in section.fields
        )

    return _FastLayout(
        item=layout.item.encode() + b" ",
        request=layout.request.encode() + b"\n",
        response=layout.response.encode() + b"\n",
        value=layout.value,
        value_pad=b" " * layout.value,
        list_item=layout.list_item.encode(),
        list_value=len(layout.list_item) + 1,
        header_item=layout.header_item.encode() + b" ",
        header_value=layout.header_value,
        value_end=_block_end(layout.value),
        request_keys=key_readers(request),
        response_keys=key_readers(response),
        request_model=request.model,
        response_model=response.model,
    )


def fast_loads(data: bytes) -> Cassette | None:
    """The cassette in `data` when the file is exactly what `dumps` writes (which go-vcr and this
    project write), read without composing YAML nodes; None for any other file. The result is the
    full reader's, before its chunks check: it is accepted only when `dumps` gives `data` back,
    and dumps(c) == data implies loads(data) == c. Equal header, form and trailer maps, and equal
    short strings, are shared objects."""
    if data == _FAST_EMPTY:
        return Cassette([], NEW_FILE_STYLE, {})
    if not data.startswith(_FAST_HEAD):
        return None
    read = fast_entries(data, len(_FAST_HEAD), 0)
    if read is None:
        return None
    interactions, style = read
    return Cassette(interactions, style, {})


def fast_entries(data: bytes, pos: int, first_id: int) -> tuple[list[Interaction], Style] | None:
    """The interactions from `pos` to the end of `data`, and their Style, when those bytes are
    exactly what the writer writes for them as entries of `interactions:` with ids first_id..;
    None otherwise."""
    if data.startswith(b"- id: ", pos):
        indent = 2
    elif data.startswith(b"    - id: ", pos):
        indent = 4
    else:
        return None
    # Many small acyclic objects: collections during the read would only cost time.
    with collector.paused_collector(len(data) - pos >= collector.BIG_READ):
        try:
            reader = _FastReader(data, _FastLayout.of(indent))
            interactions = reader.interactions(pos)
            style = Style(indent, omit_empty=not reader.full_shape)
        except _GIVE_UP:
            return None
    if not _writes_back(data, pos, interactions, style, first_id):
        return None
    return interactions, style


def _writes_back(
    data: bytes, pos: int, interactions: list[Interaction], style: Style, first_id: int
) -> bool:
    """Whether the writer gives back data[pos:] for `interactions` (ids first_id..), written and
    compared a batch of interactions at a time (never the whole file's text at once)."""
    layout = Layout.of(style)
    try:
        for first in range(0, len(interactions), _VERIFY_BATCH):
            out: list[str] = []
            batch = interactions[first : first + _VERIFY_BATCH]
            write_interactions(out, layout, batch, first_id + first)
            written = "".join(out).encode("utf-8")
            if not data.startswith(written, pos):
                return False
            pos += len(written)
    except (ValueError, TypeError):  # a string dumps cannot write (a lone surrogate)
        return False
    return pos == len(data)
