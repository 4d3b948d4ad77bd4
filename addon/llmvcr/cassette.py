"""The go-vcr version-2 cassette: data model, reader and writer.

Pure Python (no mitmproxy). The writer reproduces go-yaml's bytes exactly, so a cassette written by
go-vcr loads and saves back unchanged; `../shared/docs/cassette-format.md` has every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = dict[str, list[str]]


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
