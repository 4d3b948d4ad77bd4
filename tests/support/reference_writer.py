"""`reference_dumps`: dumps() through the port of go-yaml's emitter only, the reference the
writer's fast path is tested against (tests only; the addon never needs it).

Which keys a request and a response have, and in which order, comes from the format's field
table (`llmvcr.cassette.fields`), read at call time: the values are converted here by their
Kind, and the emitter writes them as go-yaml would write go-vcr's structs.
"""

from __future__ import annotations

from llmvcr.cassette import fields
from llmvcr.cassette.emitter import Emitter, FlowMap
from llmvcr.cassette.fields import Kind, Omit, Section
from llmvcr.cassette.govalues import format_duration, round_to_ms
from llmvcr.cassette.keyorder import sorted_keys
from llmvcr.cassette.model import Cassette, Chunk, Headers, Request, Response


def _string_lists(lists: Headers) -> dict[str, list[str]]:
    return {name: list(lists[name]) for name in sorted_keys(lists)}


def _chunks(chunks: list[Chunk]) -> list[FlowMap]:
    return [
        FlowMap((("at", format_duration(round_to_ms(c.at))), ("size", str(c.size))))
        for c in chunks
    ]


_VALUE = {
    Kind.TEXT: str,
    Kind.LINE: str,
    Kind.INT: int,
    Kind.BOOL: bool,
    Kind.BODY: bytes,
    Kind.DURATION: format_duration,
    Kind.STRING_LIST: list,
    Kind.STRING_LISTS: _string_lists,
    Kind.HEADERS: _string_lists,
    Kind.CHUNKS: _chunks,
}


def _section(section: Section, r: Request | Response, omit_empty: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in section.fields:
        value = getattr(r, f.name)
        if f.omit is Omit.NONE and value is None:
            continue
        if f.omit is Omit.EMPTY and omit_empty and not value:
            continue
        out[f.name] = _VALUE[f.kind](value)
    out.update(r.extra)
    return out


def reference_dumps(cassette: Cassette) -> bytes:
    """dumps(cassette), written by the emitter port from the field table."""
    style = cassette.style
    items = [
        {
            "id": n,
            fields.REQUEST.key: _section(fields.REQUEST, it.request, style.omit_empty),
            fields.RESPONSE.key: _section(fields.RESPONSE, it.response, style.omit_empty),
            **it.extra,
        }
        for n, it in enumerate(cassette.interactions)
    ]
    root: dict[str, object] = {"version": 2, **cassette.extra, "interactions": items}
    emitter = Emitter(style.indent, style.indent == 2)
    emitter.mapping(root.items(), 0)
    return ("---\n" + emitter.text()).encode("utf-8")
