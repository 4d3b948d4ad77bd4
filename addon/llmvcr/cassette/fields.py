"""The fields of a request and of a response: the one table the writer, both readers and the
append path read, so that adding a field to the format is one row here (and its tests).

Each section lists its fields in go-vcr's key order (the order of its Go struct's fields, which
is how go-yaml writes a struct), with how each value is written and read (its `Kind`) and when
it is left out (its `Omit`). The dataclass the section builds (`Request`, `Response`) has one
attribute per field, of the same name.

The readers and the writer derive their tables from `REQUEST` and `RESPONSE` when they first
need them, keyed by the section objects themselves: read the sections through this module at
call time (`fields.REQUEST`), never copy them, so that a section replaced by another (as a test
does to add a field) is what everyone uses.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .model import Request, Response


class Kind(enum.Enum):
    """How a value is written and read."""

    TEXT = "text"  # a string: plain, quoted or a literal block; `!!binary` when not UTF-8
    LINE = "line"  # a string replayed on an HTTP header line: refused with CR, LF or NUL in it
    INT = "int"  # a plain integer (Go syntax when read: prefixes, `_` separators)
    BOOL = "bool"  # a plain true or false
    BODY = "body"  # bytes: UTF-8 text written as a string, other bytes as `!!binary`
    DURATION = "duration"  # nanoseconds, written as Go's time.Duration text (`1.5s`)
    STRING_LIST = "string_list"  # a list of strings
    STRING_LISTS = "string_lists"  # a map of names to lists of strings, names in go-yaml's order
    HEADERS = "headers"  # STRING_LISTS replayed as HTTP header lines: no CR, LF or NUL anywhere
    CHUNKS = "chunks"  # the `chunks` extension: one-line `{at: <duration>, size: <int>}` entries


# What a LINE or HEADERS value must not hold: each ends an HTTP/1.1 header line or is refused by
# HTTP libraries, so a replayed value holding one could inject a header into the client's answer.
LINE_BREAKING = re.compile("[\r\n\0]")
LINE_BREAKING_NAMES = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\0": "a NUL"}


class Omit(enum.Enum):
    """When a field is left out of a file."""

    NEVER = "never"  # always written; a file without it is refused
    # go-vcr's `omitempty`: left out when empty in the omit-empty style (Style.omit_empty), always
    # written in the every-key style; optional when read, and an empty value read marks the
    # every-key style
    EMPTY = "empty"
    NONE = "none"  # an extension: written only when not None, in every style; optional when read


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the YAML key, and the attribute of the section's dataclass
    kind: Kind
    omit: Omit = Omit.NEVER


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: a cache key
class Section:
    key: str  # the interaction's key that holds the section
    model: type[Request] | type[Response]
    fields: tuple[Field, ...]  # in the order they are written

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def required(self) -> frozenset[str]:
        """The keys a file must have."""
        return frozenset(f.name for f in self.fields if f.omit is Omit.NEVER)


# Fields both sections share, alike in name, kind and omission (go-vcr copies them from Go's
# http.Request and http.Response, which share them); each section places them in its own order.
_VERSION = (  # the HTTP version
    Field("proto", Kind.TEXT),
    Field("proto_major", Kind.INT),
    Field("proto_minor", Kind.INT),
)
_FRAMING = (  # how the body was carried
    Field("transfer_encoding", Kind.STRING_LIST, Omit.EMPTY),
    Field("trailer", Kind.HEADERS, Omit.EMPTY),
)

REQUEST = Section(
    "request",
    Request,
    (
        *_VERSION,
        Field("content_length", Kind.INT),
        *_FRAMING,
        Field("host", Kind.TEXT),
        Field("remote_addr", Kind.TEXT, Omit.EMPTY),
        Field("request_uri", Kind.TEXT, Omit.EMPTY),
        Field("body", Kind.BODY, Omit.EMPTY),
        Field("form", Kind.STRING_LISTS, Omit.EMPTY),
        Field("headers", Kind.HEADERS, Omit.EMPTY),
        Field("url", Kind.TEXT),
        Field("method", Kind.TEXT),
    ),
)

RESPONSE = Section(
    "response",
    Response,
    (
        *_VERSION,
        *_FRAMING,
        Field("content_length", Kind.INT),
        Field("uncompressed", Kind.BOOL, Omit.EMPTY),
        Field("body", Kind.BODY),
        Field("headers", Kind.HEADERS),
        Field("status", Kind.LINE),
        Field("code", Kind.INT),
        Field("duration", Kind.DURATION),
        # this project's extension: stream timing (docs/cassette-format.md)
        Field("chunks", Kind.CHUNKS, Omit.NONE),
    ),
)
