"""The cassette as Python data: what a go-vcr version-2 file holds, with no YAML in sight.

Field names are go-vcr's YAML keys; `fields.py` says in which order they are written and which
are left out when empty. Values are kept as stored: nothing here recomputes a length or checks
a header. `extra` maps keep keys the format does not know, so a file saves back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What the package re-exports (`from .model import *` in __init__): the model, all of it.
__all__ = [
    "EMPTY_INTERACTIONS_LINE",
    "NEW_FILE_STYLE",
    "Cassette",
    "CassetteError",
    "CassetteWarning",
    "Chunk",
    "Headers",
    "Interaction",
    "PlainText",
    "Request",
    "Response",
    "Style",
]

Headers = dict[str, list[str]]
# Strings hold bytes that were not UTF-8 as lone surrogates (Python's "surrogateescape"); the
# writer gives such a string back as those bytes (`!!binary`).
SURROGATE = re.compile("[\ud800-\udfff]")


class CassetteError(ValueError):
    """A cassette that cannot be read: names the file, the line (when known) and the problem."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class CassetteWarning(UserWarning):
    """A cassette that loads with a part ignored (a `chunks` key that does not fit its body)."""


class PlainText(str):
    """A string under an unknown key that was a plain scalar in the file (a number, a bool, a
    date...): written back plain so that it keeps its YAML type."""

    __slots__ = ()


@dataclass(slots=True)
class Chunk:
    """One streamed chunk (the `chunks` extension key)."""

    at: int  # nanoseconds since the request was sent upstream; written rounded to the millisecond
    size: int  # bytes of the stored body that this chunk carried


@dataclass(slots=True)
class Request:
    method: str = "GET"
    url: str = ""
    body: bytes = b""
    headers: Headers = field(default_factory=dict)
    form: Headers = field(default_factory=dict)
    proto: str = "HTTP/1.1"
    proto_major: int = 1
    proto_minor: int = 1
    content_length: int = 0
    transfer_encoding: list[str] = field(default_factory=list)
    trailer: Headers = field(default_factory=dict)
    host: str = ""
    remote_addr: str = ""
    request_uri: str = ""
    extra: dict[str, object] = field(default_factory=dict)  # unknown keys, kept for round trips


@dataclass(slots=True)
class Response:
    status: str = "200 OK"
    code: int = 200
    headers: Headers = field(default_factory=dict)
    body: bytes = b""
    proto: str = "HTTP/1.1"
    proto_major: int = 1
    proto_minor: int = 1
    transfer_encoding: list[str] = field(default_factory=list)
    trailer: Headers = field(default_factory=dict)
    content_length: int = -1
    uncompressed: bool = False
    duration: int = 0  # nanoseconds: request sent upstream -> response headers (go-vcr's meaning)
    chunks: list[Chunk] | None = None  # None: no `chunks` key
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Interaction:
    request: Request
    response: Response
    id: int = 0
    extra: dict[str, object] = field(default_factory=dict)  # unknown keys, written after response


@dataclass(frozen=True, slots=True)
class Style:
    """How a file is laid out; a loaded file remembers its own and saves back in it."""

    indent: int = 2  # 2: charm's compact layout (the seed, most of the corpus); 4: go-vcr default
    omit_empty: bool = True  # False: the older go-vcr shape that writes every key


NEW_FILE_STYLE = Style(2, True)


@dataclass(slots=True)
class Cassette:
    interactions: list[Interaction] = field(default_factory=list)
    style: Style = NEW_FILE_STYLE
    # unknown top-level keys; written between `version` and `interactions` so that appending
    # interactions at the end of the file stays possible
    extra: dict[str, object] = field(default_factory=dict)


EMPTY_INTERACTIONS_LINE = b"interactions: []\n"
