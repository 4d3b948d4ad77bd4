"""From a live exchange to an `Interaction`: the stream tee and the go-vcr field rules.

No mitmproxy import: the addon hands over plain values (method, URL, header pairs, bytes), so the
rules for what a recorded request and response look like are testable on their own.
"""

from __future__ import annotations

import http
import logging
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .cassette import Chunk, Headers, Request, Response, canonical_header_name
from .headers import FORM_TYPE, first_header, media_type_of

log = logging.getLogger("llmvcr")

HeaderPairs = Iterable[tuple[str, str]]


def _brotli_decoder() -> Callable[[bytes], bytes] | None:
    try:
        import brotli  # installed with mitmproxy
    except ImportError:  # pragma: no cover - mitmproxy depends on it
        return None
    decoder = brotli.Decompressor()
    return decoder.process


def _zstd_decoder() -> Callable[[bytes], bytes] | None:
    try:
        from compression import zstd  # Python 3.14
    except ImportError:
        try:
            from backports import zstd  # installed with mitmproxy on older Pythons
        except ImportError:  # pragma: no cover
            return None
    return _FramesDecoder(zstd.ZstdDecompressor).decompress


class _FramesDecoder:
    """A stream of several compressed frames (a server may flush each event as its own)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._obj = factory()

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._obj.eof:
                self._obj = self._factory()
            out.append(self._obj.decompress(data))
            data = self._obj.unused_data if self._obj.eof else b""
        return b"".join(out)


def incremental_decoder(content_encoding: str) -> Callable[[bytes], bytes] | None:
    """A function decoding one chunk after another, or None for an unknown encoding."""
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        # Servers disagree on zlib-wrapped vs raw deflate; 32 + MAX_WBITS detects a zlib/gzip
        # header, and the raw case is handled by DeflateDecoder below.
        return _DeflateDecoder().decompress
    if encoding == "br":
        return _brotli_decoder()
    if encoding == "zstd":
        return _zstd_decoder()
    return None


class _DeflateDecoder:
    """`deflate` as sent in practice: zlib-wrapped, or raw when the zlib header is missing."""

    def __init__(self) -> None:
        self._obj: zlib._Decompress | None = None
        self._head = b""

    def decompress(self, data: bytes) -> bytes:
        if self._obj is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            wrapped = (self._head[0] & 0x0F) == 8 and (self._head[0] << 8 | self._head[1]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        return self._obj.decompress(data)


class StreamTee:
    """Observes a streamed response body for `flow.response.stream`.

    Every chunk is passed on unchanged (so the client gets it as it arrives) while a copy is kept
    with its arrival time. A compressed body is decoded chunk by chunk, so the stored body and the
    chunk sizes are in decoded bytes. It never raises: mitmproxy silently drops a chunk whose
    callable raised, which would corrupt what the client receives.
    """

    def __init__(self, started_ns: int, content_encoding: str = "") -> None:
        self.started_ns = started_ns
        self.parts: list[bytes] = []
        self.chunks: list[Chunk] = []
        self.decoded = False
        self.failed = False
        self._decode: Callable[[bytes], bytes] | None = None
        if content_encoding and content_encoding.lower() != "identity":
            self._decode = incremental_decoder(content_encoding)
            self.decoded = self._decode is not None
            self.failed = self._decode is None  # unknown encoding: store nothing readable

    def __call__(self, data: bytes) -> bytes:
        try:
            if data:
                self._keep(data)
        except Exception:  # never raise: see the class docstring
            log.exception("llm-vcr: could not copy a streamed chunk; it will not be recorded")
            self.failed = True
        return data

    def _keep(self, data: bytes) -> None:
        at = time.monotonic_ns() - self.started_ns
        if self._decode is not None:
            data = self._decode(data)
            if not data:
                return
        self.parts.append(data)
        self.chunks.append(Chunk(at=at, size=len(data)))

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


# The last event of a complete stream, per API. SDKs close the connection as soon as they see it,
# often before the upstream's own end of stream reaches the proxy; such a stream is whole.
_FINAL_SSE_MARKERS = (
    b"data: [DONE]",  # OpenAI chat completions and the many APIs copying it
    b"event: message_stop",  # Anthropic messages
    b"event: response.completed",  # OpenAI responses
    b"event: response.incomplete",
    b"event: response.failed",
)


def stream_finished(body: bytes) -> bool:
    """Whether an event stream's body ends with its API's final event."""
    events = body.rstrip(b"\r\n").replace(b"\r\n", b"\n").split(b"\n\n")
    last = events[-1].lstrip(b"\n") if events else b""
    return any(last.startswith(marker) for marker in _FINAL_SSE_MARKERS)


def form_fields(url: str, body: bytes, content_type: str) -> Headers:
    """go-vcr's `form`: URL query parameters plus form-encoded body fields."""
    form: Headers = {}
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    if media_type_of(content_type) == FORM_TYPE:
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def header_map(pairs: HeaderPairs) -> Headers:
    """Header pairs as go-vcr stores them: Go-canonical names, values in order."""
    headers: Headers = {}
    for name, value in pairs:
        headers.setdefault(canonical_header_name(name), []).append(value)
    return headers


def build_request(method: str, url: str, headers: HeaderPairs, body: bytes) -> Request:
    """A request as a Go client's recording has it (format doc), before redaction."""
    headers = header_map(headers)
    content_type = first_header(headers, "Content-Type")
    return Request(
        method=method,
        url=url,
        body=body,
        headers=headers,
        form=form_fields(url, body, content_type),
        content_length=len(body),
    )


def status_text(code: int, reason: str) -> str:
    """Go's `Status`: `200 OK`; HTTP/2 carries no reason phrase, so use the standard one."""
    if not reason:
        try:
            reason = http.HTTPStatus(code).phrase
        except ValueError:
            reason = ""
    return f"{code} {reason}".rstrip()


def build_response(
    code: int,
    reason: str,
    http_version: str,
    headers: HeaderPairs,
    body: bytes,
    duration_ns: int,
    chunks: list[Chunk] | None,
    decoded: bool,
) -> Response:
    """A response as Go's client sees it: proto as spoken, `content_length` -1 when unknown."""
    header_pairs = list(headers)
    lowered = {name.lower(): value for name, value in header_pairs}
    if decoded:
        # As go-vcr does for a transparently decompressed body: the length on the wire is gone.
        dropped = ("content-encoding", "content-length")
        header_pairs = [(n, v) for n, v in header_pairs if n.lower() not in dropped]
    major, minor = (2, 0) if http_version.upper().startswith("HTTP/2") else (1, 1)
    chunked = major == 1 and "chunked" in lowered.get("transfer-encoding", "").lower()
    content_length = -1
    if not decoded and not chunked and "content-length" in lowered:
        try:
            content_length = int(lowered["content-length"])
        except ValueError:
            content_length = -1
    return Response(
        status=status_text(code, reason),
        code=code,
        headers=header_map(header_pairs),
        body=body,
        proto=f"HTTP/{major}.{minor}",
        proto_major=major,
        proto_minor=minor,
        transfer_encoding=["chunked"] if chunked else [],
        content_length=content_length,
        uncompressed=decoded,
        duration=duration_ns,
        chunks=chunks if chunks is not None and len(chunks) > 1 else None,
    )


def captured_response(
    code: int,
    reason: str,
    http_version: str,
    headers: HeaderPairs,
    tee: StreamTee,
    sent_at: float,
    headers_at: float,
) -> Response:
    """The response a tee copied, as go-vcr stores it: `duration` is the time from sending the
    request upstream (`sent_at`) to the response headers (`headers_at`), both wall-clock
    seconds as mitmproxy's timestamps are."""
    duration = int(max(0.0, headers_at - sent_at) * 1e9)
    return build_response(
        code, reason, http_version, headers, tee.body, duration, tee.chunks, tee.decoded
    )
