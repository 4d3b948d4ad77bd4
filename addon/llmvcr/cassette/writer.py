"""The writer: a cassette as the exact bytes go-yaml writes for go-vcr's structs.

The known fields take a fast path: for each Style and each section of `fields.py`, a function
that writes a request or a response with its key prefixes as constants (generated from the
table, so its code has one line per field and no lookups); strings go through `scalars.py`.
Unknown keys, and map keys go-yaml would not write as simple keys, go through the emitter port.
Both paths give the same bytes (the tests compare them with a writer made of the emitter only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass
from functools import lru_cache

from . import fields
from .emitter import Emitter
from .fields import Kind, Omit, Section
from .govalues import format_duration, round_to_ms
from .keyorder import sorted_keys
from .model import EMPTY_INTERACTIONS_LINE, Cassette, Chunk, Headers, Interaction, Style
from .scalars import bytes_text, simple_key_text, str_text

HEAD = "---\nversion: 2\n"

SectionWriter = Callable[[list[str], "Layout", object], None]


@dataclass(frozen=True, slots=True)
class Layout:
    """Columns and constant prefixes of one Style, and its section writers."""

    style: Style
    best: int  # go-yaml's indent width
    compact: bool  # charm's CompactSeqIndent: a list's dash at its key's column
    item: str  # "- id:" of an interaction, at its column
    entry: int  # column of id/request/response
    request: str
    response: str
    field: int  # column of the request/response keys
    keys: dict[str, str]  # "<pad>key:" for every request/response key
    value: int  # block content of a request/response scalar; column of header names
    list_item: str  # "<pad>-" of a transfer_encoding or chunks entry
    header_item: str  # "<pad>-" of a header value
    header_value: int  # block content of a header value
    write_request: SectionWriter
    write_response: SectionWriter

    @staticmethod
    def of(style: Style) -> Layout:
        return _layout(style, fields.REQUEST, fields.RESPONSE)


@lru_cache(maxsize=16)
def _layout(style: Style, request: Section, response: Section) -> Layout:
    best = style.indent
    if not 2 <= best <= 9:
        raise ValueError(f"unsupported cassette indent {best} (2 or 4)")
    compact = best == 2  # charm's marshaller: SetIndent(2) + CompactSeqIndent
    dash = 2 if compact else 0

    def nxt(i: int) -> int:
        return best * ((i + best) // best)

    seq = nxt(0) - dash
    entry = seq + 2
    column = nxt(entry)
    value = nxt(column)
    header_seq = nxt(value) - dash
    keys = {f.name: " " * column + f.name + ":" for f in request.fields + response.fields}
    return Layout(
        style=style,
        best=best,
        compact=compact,
        item=" " * seq + "- id:",
        entry=entry,
        request=" " * entry + request.key + ":",
        response=" " * entry + response.key + ":",
        field=column,
        keys=keys,
        value=value,
        list_item=" " * (nxt(column) - dash) + "-",
        header_item=" " * header_seq + "-",
        header_value=header_seq + 2,
        write_request=_section_writer(request, keys, style.omit_empty, column, value),
        write_response=_section_writer(response, keys, style.omit_empty, column, value),
    )


# One statement per Kind, writing the value `v` after the constant prefix {key} ("<pad>name:");
# {value} is the column of block content, {hint} the indentation indicator of a block value.
_STATEMENTS = {
    Kind.TEXT: "append({key} + str_text(v, {value}, {hint}))",
    Kind.LINE: "append({key} + str_text(v, {value}, {hint}))",
    Kind.INT: 'append({key_space} + str(int(v)) + "\\n")',
    Kind.BOOL: 'append({key} + (" true\\n" if v else " false\\n"))',
    Kind.BODY: "append({key} + bytes_text(v, {value}, {hint}))",
    Kind.DURATION: "append({key} + str_text(format_duration(v), {value}, {hint}))",
    Kind.STRING_LIST: "write_string_list(out, layout, {key}, v)",
    Kind.STRING_LISTS: "write_string_lists(out, layout, {key}, v)",
    Kind.HEADERS: "write_string_lists(out, layout, {key}, v)",
    Kind.CHUNKS: "write_chunks(out, layout, {key}, v)",
}


def section_source(
    section: Section, keys: dict[str, str], omit_empty: bool, column: int, value: int
) -> str:
    """The Python source of the function that writes one section in one layout: for each field
    of the table in order, its statement, under `if v:` when the field is left out when empty
    (in the omit-empty style) and under `if v is not None:` for an extension."""
    hint = value - column
    lines = ["def write(out, layout, r):", "    append = out.append"]
    for f in section.fields:
        prefix = keys[f.name]
        statement = _STATEMENTS[f.kind].format(
            key=repr(prefix), key_space=repr(prefix + " "), value=value, hint=hint
        )
        lines.append(f"    v = r.{f.name}")
        if f.omit is Omit.NONE:
            lines += ["    if v is not None:", "        " + statement]
        elif f.omit is Omit.EMPTY and omit_empty:
            lines += ["    if v:", "        " + statement]
        else:
            lines.append("    " + statement)
    lines.append("    if r.extra:")
    lines.append(f"        append(general_entries(layout, r.extra.items(), {column}))")
    return "\n".join(lines) + "\n"


def _section_writer(
    section: Section, keys: dict[str, str], omit_empty: bool, column: int, value: int
) -> SectionWriter:
    namespace = {
        "str_text": str_text,
        "bytes_text": bytes_text,
        "format_duration": format_duration,
        "write_string_list": write_string_list,
        "write_string_lists": write_string_lists,
        "write_chunks": write_chunks,
        "general_entries": general_entries,
    }
    source = section_source(section, keys, omit_empty, column, value)
    exec(compile(source, f"<{section.key} writer>", "exec"), namespace)
    writer: SectionWriter = namespace["write"]  # type: ignore[assignment]
    return writer


def general_entries(layout: Layout, items: Iterable[tuple[object, object]], indent: int) -> str:
    """Map entries at column `indent` through the emitter port (unknown keys and their values)."""
    emitter = Emitter(layout.best, layout.compact)
    emitter.mapping(items, indent)
    return emitter.text()


def opens_block(out: list[str], key: str, value: Sized, empty: str) -> bool:
    """Writes `key` ("<pad>name:") for a collection: alone on its line, True (the caller writes
    the entries below it, in block style); or, when `value` is empty, followed by `empty` (the
    flow form go-yaml gives an empty one: " []\\n" or " {}\\n"), False."""
    if not value:
        out.append(key + empty)
        return False
    out.append(key + "\n")
    return True


def write_string_lists(out: list[str], layout: Layout, key: str, lists: Headers) -> None:
    """`key` ("<pad>name:") and a map of string lists (headers, form, trailer) with go-yaml's
    key order."""
    if not opens_block(out, key, lists, " {}\n"):
        return
    pad = " " * layout.value
    item = layout.header_item
    value_indent = layout.header_value
    for name in sorted_keys(lists):
        values = lists[name]
        name_text = simple_key_text(name)
        if name_text is None:
            out.append(general_entries(layout, [(name, list(values))], layout.value))
        elif not values:
            out.append(pad + name_text + ": []\n")
        else:
            out.append(pad + name_text + ":\n")
            for v in values:
                out.append(item)
                out.append(str_text(v, value_indent, 2))


def write_string_list(out: list[str], layout: Layout, key: str, values: list[str]) -> None:
    if not opens_block(out, key, values, " []\n"):
        return
    indent = len(layout.list_item) + 1
    for v in values:
        out.append(layout.list_item)
        out.append(str_text(v, indent, 2))


def write_chunks(out: list[str], layout: Layout, key: str, chunks: list[Chunk]) -> None:
    """Chunk times rounded to the millisecond, as one-line flow mappings."""
    if not opens_block(out, key, chunks, " []\n"):
        return
    item = layout.list_item
    for chunk in chunks:
        at = format_duration(round_to_ms(chunk.at))
        out.append(f"{item} {{at: {at}, size: {int(chunk.size)}}}\n")


def write_interactions(
    out: list[str], layout: Layout, items: Sequence[Interaction], first: int
) -> None:
    """`items` as entries of `interactions:`, ids first, first + 1, ..."""
    write_request, write_response = layout.write_request, layout.write_response
    request_line, response_line = layout.request + "\n", layout.response + "\n"
    for n, interaction in enumerate(items, first):
        out.append(f"{layout.item} {n}\n")
        out.append(request_line)
        write_request(out, layout, interaction.request)
        out.append(response_line)
        write_response(out, layout, interaction.response)
        if interaction.extra:
            out.append(general_entries(layout, interaction.extra.items(), layout.entry))


def dumps(cassette: Cassette) -> bytes:
    """The cassette as go-vcr's YAML in the cassette's Style; ids renumbered 0..n-1."""
    layout = Layout.of(cassette.style)
    out = [HEAD]
    if cassette.extra:
        out.append(general_entries(layout, cassette.extra.items(), 0))
    if cassette.interactions:
        out.append("interactions:\n")
        write_interactions(out, layout, cassette.interactions, 0)
    else:
        out.append(EMPTY_INTERACTIONS_LINE.decode("ascii"))
    return "".join(out).encode("utf-8")


def dump_interactions(items: Sequence[Interaction], style: Style, first_id: int) -> bytes:
    """The YAML of `items` as entries of `interactions:`, ids first_id.., exactly the bytes dumps()
    writes for them, so they can be appended to a cassette file's bytes (after turning a final
    `interactions: []` line into `interactions:`; see append.py)."""
    out: list[str] = []
    write_interactions(out, Layout.of(style), items, first_id)
    return "".join(out).encode("utf-8")
