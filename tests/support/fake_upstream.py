"""A fake LLM API server for end-to-end tests: TLS on 127.0.0.1, HTTP/1.1 and HTTP/2.

`FakeUpstream` runs a Hypercorn ASGI server in a background thread (its own asyncio loop) on an
ephemeral port, records every request it receives and answers with realistic payloads that the
real openai and anthropic SDKs parse. Streams are paced with real `asyncio.sleep`, one ASGI body
message per event, so they reach the wire event by event.

Fixtures (tests/conftest.py):
    upstream      function scope: the session's HTTP/2-capable server, reset before each test
    upstream_h1   the same for a server that offers only HTTP/1.1 in ALPN
    upstream_server / upstream_h1_server   the session objects themselves (for module-scoped
                  proxies, whose map_remote needs a port that does not change between tests)

Use:
    upstream.base_url                        "https://127.0.0.1:<port>"
    upstream.direct_client(http2=False)      httpx.Client to it without a proxy, trusting its CA
    upstream.requests                        list[RecordedRequest] received so far (a copy)
    upstream.wait_for_requests(2)            block until 2 requests arrived, return them
    rec.method, rec.path, rec.query, rec.headers, rec.body, rec.http_version ("1.1" or "2")
    rec.header("user-agent"), rec.json(), rec.completed, rec.disconnected, rec.chunk_times
    rec.wait_finished()                      block until the server is done answering it (the
                                             client may have the last byte a moment before)
    upstream.reply_text = "Olá!"             text of every canned answer (default: "Echo: <the
                                             last user message>")
    upstream.event_delay = 0.3               seconds between canned SSE events (default 0.02)
    upstream.encoding = "gzip"               compress every canned answer (gzip, deflate, br,
                                             zstd when available: see SUPPORTED_ENCODINGS)
    upstream.script(path, FakeResponse(status=200, headers=[...], chunks=[b"..."], delay=0.3))
                                             the next request to `path` gets exactly that
                                             (times=N or None = every time; method="POST";
                                             a callable RecordedRequest -> FakeResponse also works)
    upstream.reset()                         forget requests, scripts and settings

Routes (any scripted response for the path wins):
    POST /v1/chat/completions, /openai/v1/chat/completions,
         /openai/deployments/{d}/chat/completions?api-version=...
                                             chat.completion JSON, or chat.completion.chunk SSE
                                             ending in `data: [DONE]` when the body has
                                             "stream": true (usage chunk with stream_options)
    POST /openai/v1/chat/completions with the seed cassette's request body (JSON-equal)
                                             the seed's response body bytes, event by event
    POST /v1/responses, /openai/v1/responses JSON response object, or the typed SSE events
    POST /v1/messages                        Anthropic message JSON, or its SSE events
    ANY  /error/{401|429|500}[?provider=anthropic]   provider-shaped error (429: Retry-After)
    ANY  /sse?n=6&delay=0.3[&done=1][&pad=K] `data: {"index": i, "of": n}` events, D s apart
    ANY  /compressed/{encoding}[?stream=1]   a JSON (or SSE) body compressed with `encoding`,
                                             Content-Encoding set although nobody asked
    ANY  /echo                               JSON describing the request as received
    anything else                            404 with an OpenAI-shaped error body
Also `ConnectionCounter`: a bare TCP listener counting the connections it gets (an upstream
proxy that must never be reached). `FakeUpstream(tls, host="::1")` listens on IPv6 loopback
(the test certificate names ::1 too).
Request headers the LLM routes obey (handy for curl / SDK `extra_headers`):
    x-fake-status: 429      answer with that provider-shaped error instead
    x-fake-encoding: br     compress the answer
    x-fake-delay: 0.3       seconds between SSE events
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import itertools
import json
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import brotli
import yaml
from hypercorn.asyncio import serve
from hypercorn.config import Config

from .tls import UpstreamTLS

if TYPE_CHECKING:
    import httpx

try:  # zstd is optional: only the zstd variants of compression tests depend on it
    from backports import zstd as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from compression import zstd as _zstd  # type: ignore[no-redef]  # Python 3.14
    except ImportError:
        _zstd = None  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_CASSETTE = REPO_ROOT / "cassettes" / "simple_streaming.yaml"
SEED_PATH = "/openai/v1/chat/completions"
SEED_HOST = "fantasy-playground-resource.openai.azure.com"

SUPPORTED_ENCODINGS: tuple[str, ...] = ("gzip", "deflate", "br") + (
    ("zstd",) if _zstd is not None else ()
)
DEFAULT_EVENT_DELAY = 0.02

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger("fake_upstream")


# --------------------------------------------------------------------------------------------
# What the server saw


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake upstream received it (header names lower case, as on the wire
    for HTTP/2 and as Hypercorn reports them for HTTP/1.1)."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str
    received_at: float = field(default_factory=time.monotonic)
    chunk_times: list[float] = field(default_factory=list)  # monotonic time of each body send
    completed: bool = False  # the whole response was handed to the server
    # The client went away before the response was complete (seen when its connection closes
    # or, with HTTP/2, when it resets the stream; httpx closing a response does neither).
    disconnected: bool = False
    # Set once `completed` or `disconnected` is final (or the response was aborted): the client
    # can have the last byte before the server's task has noted it, so wait on this.
    finished: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), None when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    def json(self) -> Any:
        return json.loads(self.body)

    def wait_finished(self, timeout: float = 10.0) -> RecordedRequest:
        """Block until the server is done with this request's response; AssertionError if not."""
        if not self.finished.wait(timeout):
            raise AssertionError(f"fake upstream still answering {self.target} after {timeout} s")
        return self

    @property
    def target(self) -> str:
        """Path plus `?query` when there is one."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


# --------------------------------------------------------------------------------------------
# What the server sends


@dataclass(slots=True)
class FakeResponse:
    """An exact response: status, headers (sent as given, names lower-cased), body chunks.

    `delay` is slept before every chunk but the first, `delays` (one per chunk) replaces it,
    `header_delay` is slept before the headers. `encoding` compresses the chunks (each one
    flushed, so a compressed stream still streams) and adds Content-Encoding; a Content-Length
    header is then recomputed for the compressed body. `fail_after=N` aborts the response
    after N chunks (connection closed / stream reset), like an upstream dying mid-stream.
    Without a Content-Length header an HTTP/1.1 body goes out chunked.
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    chunks: Sequence[bytes] = ()
    delay: float = 0.0
    delays: Sequence[float] | None = None
    header_delay: float = 0.0
    encoding: str | None = None
    fail_after: int | None = None

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Sequence[tuple[str, str]] = (), **kw: Any
    ) -> FakeResponse:
        """A JSON body in one chunk with Content-Type and Content-Length."""
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(
            status=status,
            headers=[
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                *headers,
            ],
            chunks=[body],
            **kw,
        )

    @classmethod
    def sse(
        cls,
        events: Iterable[bytes | str],
        delay: float = 0.0,
        headers: Sequence[tuple[str, str]] = (),
        **kw: Any,
    ) -> FakeResponse:
        """An event stream: each item is sent as is (give the framing, e.g. `data: x\\n\\n`)."""
        chunks = [e.encode() if isinstance(e, str) else e for e in events]
        return cls(
            status=200,
            headers=[
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
                *headers,
            ],
            chunks=chunks,
            delay=delay,
            **kw,
        )

    @classmethod
    def error(
        cls, status: int, provider: str = "openai", retry_after: str | None = None
    ) -> FakeResponse:
        """A provider-shaped error (`openai` or `anthropic`); 429 carries Retry-After."""
        body = anthropic_error(status) if provider == "anthropic" else openai_error(status)
        headers: list[tuple[str, str]] = []
        if status == 429:
            headers.append(("retry-after", retry_after or "1"))
        return cls.json(body, status=status, headers=headers)

    def body(self) -> bytes:
        """All chunks joined (before any compression)."""
        return b"".join(self.chunks)


Responder = FakeResponse | Callable[[RecordedRequest], FakeResponse]


# --------------------------------------------------------------------------------------------
# Compression


class ContentEncoder:
    """Incremental compressor for one response body: every `compress` output is flushed so the
    receiver can decode each piece as it arrives; `finish` closes the stream."""

    def __init__(self, encoding: str) -> None:
        if encoding not in SUPPORTED_ENCODINGS:
            raise ValueError(f"unsupported encoding {encoding!r} (have {SUPPORTED_ENCODINGS})")
        self.encoding = encoding
        self._zlib: Any = None
        self._brotli: Any = None
        self._zstd: Any = None
        if encoding == "gzip":
            self._zlib = zlib.compressobj(wbits=31)
        elif encoding == "deflate":  # HTTP "deflate" is the zlib format (RFC 9110 8.4.1.2)
            self._zlib = zlib.compressobj(wbits=15)
        elif encoding == "br":
            self._brotli = brotli.Compressor()
        else:
            self._zstd = _zstd.ZstdCompressor()

    def compress(self, data: bytes) -> bytes:
        if self._zlib is not None:
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._brotli is not None:
            return self._brotli.process(data) + self._brotli.flush()
        return self._zstd.compress(data, mode=_zstd.ZstdCompressor.FLUSH_BLOCK)

    def finish(self) -> bytes:
        if self._zlib is not None:
            return self._zlib.flush(zlib.Z_FINISH)
        if self._brotli is not None:
            return self._brotli.finish()
        return self._zstd.flush(mode=_zstd.ZstdCompressor.FLUSH_FRAME)


def compress(encoding: str, data: bytes) -> bytes:
    """`data` compressed in one go."""
    encoder = ContentEncoder(encoding)
    return encoder.compress(data) + encoder.finish()


def decompress(encoding: str, data: bytes) -> bytes:
    """Inverse of `compress` (and of any stream `ContentEncoder` produced)."""
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "br":
        return brotli.decompress(data)
    if encoding == "zstd" and _zstd is not None:
        return _zstd.decompress(data)
    raise ValueError(f"unsupported encoding {encoding!r}")


# --------------------------------------------------------------------------------------------
# Canned payloads (realistic enough for the SDKs; module functions so tests can build the
# expected values too)

CREATED = 1773338554


def words(text: str) -> list[str]:
    """How canned streams split a text into deltas: word plus following whitespace."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One SSE event: optional `event:` line, a compact JSON `data:` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def openai_error(status: int) -> dict[str, Any]:
    kind = {
        400: ("invalid_request_error", None, "Bad request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-test."),
        404: ("invalid_request_error", "not_found", "The requested resource was not found."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again in 1s."),
        500: ("server_error", None, "The server had an error while processing your request."),
    }.get(status, ("server_error", None, f"Fake upstream error {status}."))
    return {"error": {"message": kind[2], "type": kind[0], "param": None, "code": kind[1]}}


def anthropic_error(status: int) -> dict[str, Any]:
    kind = {
        400: ("invalid_request_error", "Bad request."),
        401: ("authentication_error", "invalid x-api-key"),
        404: ("not_found_error", "Not found."),
        429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
        500: ("api_error", "Internal server error"),
        529: ("overloaded_error", "Overloaded"),
    }.get(status, ("api_error", f"Fake upstream error {status}."))
    return {"type": "error", "error": {"type": kind[0], "message": kind[1]}}


def chat_completion(text: str, model: str, ident: str, prompt_tokens: int = 19) -> dict[str, Any]:
    completion_tokens = len(words(text))
    return {
        "id": ident,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(prompt_tokens, completion_tokens),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion_events(
    text: str, model: str, ident: str, include_usage: bool = False, prompt_tokens: int = 19
) -> list[bytes]:
    """chat.completion.chunk events spelling `text`, then finish, optional usage, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return sse_event(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **extra,
            }
        )

    pieces = words(text)
    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(
            sse_event(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": _openai_usage(prompt_tokens, len(pieces)),
                }
            )
        )
    events.append(sse_event("[DONE]"))
    return events


def _response_message(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def response_object(
    text: str | None, model: str, ident: str, input_tokens: int = 12
) -> dict[str, Any]:
    """A Responses API object; `text=None` gives the in-progress shape with no output."""
    done = text is not None
    output_tokens = len(words(text)) if done else 0
    return {
        "id": ident,
        "object": "response",
        "created_at": CREATED,
        "status": "completed" if done else "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [_response_message(f"msg_{ident[5:]}", text)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        if done
        else None,
        "user": None,
        "metadata": {},
    }


def response_events(text: str, model: str, ident: str) -> list[bytes]:
    """The typed Responses API stream, created → … → completed, with sequence numbers."""
    item_id = f"msg_{ident[5:]}"
    seq = itertools.count()
    part_done = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    loc = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def event(kind: str, **data: Any) -> bytes:
        return sse_event({"type": kind, "sequence_number": next(seq), **data}, event=kind)

    events = [
        event("response.created", response=response_object(None, model, ident)),
        event("response.in_progress", response=response_object(None, model, ident)),
        event(
            "response.output_item.added",
            output_index=0,
            item=_response_message(item_id, text, "in_progress"),
        ),
        event(
            "response.content_part.added",
            **loc,
            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        ),
    ]
    events += [
        event("response.output_text.delta", **loc, delta=piece, logprobs=[])
        for piece in words(text)
    ]
    events += [
        event("response.output_text.done", **loc, text=text, logprobs=[]),
        event("response.content_part.done", **loc, part=part_done),
        event("response.output_item.done", output_index=0, item=_response_message(item_id, text)),
        event("response.completed", response=response_object(text, model, ident)),
    ]
    return events


def anthropic_message(text: str, model: str, ident: str, input_tokens: int = 12) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": len(words(text)),
            "service_tier": "standard",
        },
    }


def anthropic_events(text: str, model: str, ident: str, input_tokens: int = 12) -> list[bytes]:
    """message_start, content_block_start, ping, text deltas, block stop, message_delta, stop."""
    start = anthropic_message(text, model, ident, input_tokens)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"]["output_tokens"] = 1
    events = [
        sse_event({"type": "message_start", "message": start}, "message_start"),
        sse_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse_event({"type": "ping"}, "ping"),
    ]
    events += [
        sse_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
            "content_block_delta",
        )
        for piece in words(text)
    ]
    events += [
        sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words(text))},
            },
            "message_delta",
        ),
        sse_event({"type": "message_stop"}, "message_stop"),
    ]
    return events


# --------------------------------------------------------------------------------------------
# The seed conversation


@dataclass(frozen=True, slots=True)
class SeedConversation:
    url: str
    request_body: bytes
    response_body: bytes

    def events(self) -> list[bytes]:
        """The response body split after each blank line (the SSE event boundaries)."""
        return [part for part in re.split(rb"(?<=\n\n)", self.response_body) if part]


@functools.cache
def seed_conversation() -> SeedConversation:
    """The request and response of the seed cassette's only interaction."""
    interaction = yaml.safe_load(SEED_CASSETTE.read_text(encoding="utf-8"))["interactions"][0]
    return SeedConversation(
        url=interaction["request"]["url"],
        request_body=interaction["request"]["body"].encode(),
        response_body=interaction["response"]["body"].encode(),
    )


# --------------------------------------------------------------------------------------------
# The server


def _last_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("text")]
        return " ".join(texts) if texts else None
    return None


def _prompt_text(body: Any) -> str | None:
    """The last user text of an OpenAI chat, Responses or Anthropic messages request body."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("input"), str):
        return body["input"]
    items = body.get("messages") or body.get("input")
    if isinstance(items, list):
        for item in reversed(items):
            if isinstance(item, dict) and item.get("role", "user") == "user":
                text = _last_text(item.get("content"))
                if text:
                    return text
    return None


_CHAT_PATH = re.compile(
    r"^(/v1|/openai/v1|/openai/deployments/(?P<deployment>[^/]+))"
    r"/chat/completions$"
)
_RESPONSES_PATH = re.compile(r"^(/v1|/openai/v1)/responses$")
_ERROR_PATH = re.compile(r"^/error/(?P<code>\d{3})$")
_COMPRESSED_PATH = re.compile(r"^/compressed/(?P<encoding>[a-z]+)$")


@dataclass(slots=True)
class _Script:
    path: str
    responder: Responder
    method: str | None
    times: int | None


class FakeUpstream:
    """The fake LLM API server. `start()` / `stop()` (or use it as a context manager).

    `tls=None` serves plain HTTP (HTTP/1.1 only); with TLS, `http2=False` offers only
    `http/1.1` in ALPN.
    """

    def __init__(
        self, tls: UpstreamTLS | None, *, http2: bool = True, host: str = "127.0.0.1"
    ) -> None:
        self.tls = tls
        self.http2 = http2 and tls is not None
        self.host = host
        self.port = 0
        self.reply_text: str | None = None
        self.event_delay = DEFAULT_EVENT_DELAY
        self.encoding: str | None = None
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._failure: BaseException | None = None

    # ---- lifecycle

    def start(self) -> FakeUpstream:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, 0))
        # Listening before the server task runs means a connect never races the startup.
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        if self.tls is not None:
            config.certfile = str(self.tls.server_cert)
            config.keyfile = str(self.tls.server_key)
            config.alpn_protocols = ["h2", "http/1.1"] if self.http2 else ["http/1.1"]
        config.include_server_header = False
        config.include_date_header = True
        config.accesslog = None
        config.errorlog = log
        config.graceful_timeout = 0.5
        config.keep_alive_timeout = 30
        started = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._shutdown = asyncio.Event()
            started.set()
            await serve(self, config, shutdown_trigger=self._shutdown.wait, mode="asgi")

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # reported by stop() and by the next request wait
                self._failure = exc
                started.set()

        self._thread = threading.Thread(target=run, name=f"fake-upstream-{self.port}", daemon=True)
        self._thread.start()
        started.wait(10)
        if self._failure is not None:
            raise RuntimeError(f"fake upstream failed to start: {self._failure!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._shutdown is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._shutdown.set)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.authority}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def direct_client(self, http2: bool = False, **kw: Any) -> httpx.Client:
        """An httpx.Client that talks to this server directly (no proxy), trusting its CA."""
        import httpx

        kw.setdefault("timeout", 30.0)
        verify = self.tls.client_context() if self.tls is not None else True
        return httpx.Client(verify=verify, http2=http2, trust_env=False, **kw)

    # ---- control API (called from test threads)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fake upstream got {len(self._requests)} requests, wanted {count}: "
                        f"{[r.target for r in self._requests]}"
                    )
                self._lock.wait(left)
            return list(self._requests)

    def script(
        self,
        path: str,
        response: Responder,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests to `path` (None: all of them) with `response`.

        `path` with a `?` must match path and query exactly, else the path alone. Scripts for
        the same path are used in the order they were added.
        """
        with self._lock:
            self._scripts.append(_Script(path, response, method and method.upper(), times))

    def reset(self) -> None:
        """Forget requests and scripts; settings back to defaults."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self.reply_text = None
            self.event_delay = DEFAULT_EVENT_DELAY
            self.encoding = None

    def next_id(self, prefix: str) -> str:
        return f"{prefix}fake{next(self._ids):06d}"

    # ---- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=[
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ],
            body=bytes(body),
            http_version=scope["http_version"],
        )
        with self._lock:
            self._requests.append(record)
            self._lock.notify_all()
        try:
            response = self._scripted(record) or self._route(record)
        except Exception as exc:  # a broken responder: make it visible to the test
            log.exception("fake upstream responder failed")
            response = FakeResponse.json(
                {"error": {"message": f"fake upstream responder failed: {exc!r}"}}, status=599
            )
        sending = asyncio.ensure_future(self._send(response, record, send))
        watching = asyncio.ensure_future(receive())
        try:
            done, _ = await asyncio.wait({sending, watching}, return_when=asyncio.FIRST_COMPLETED)
            if sending not in done:
                record.disconnected = True
                sending.cancel()
            else:
                watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending  # re-raises _UpstreamAbort so Hypercorn drops the connection
        finally:
            record.finished.set()

    def _scripted(self, record: RecordedRequest) -> FakeResponse | None:
        with self._lock:
            for script in self._scripts:
                wanted = record.target if "?" in script.path else record.path
                if script.path == wanted and script.method in (None, record.method):
                    if script.times is not None:
                        script.times -= 1
                        if script.times <= 0:
                            self._scripts.remove(script)
                    responder = script.responder
                    break
            else:
                return None
        return responder if isinstance(responder, FakeResponse) else responder(record)

    async def _send(self, response: FakeResponse, record: RecordedRequest, send: Send) -> None:
        if response.header_delay:
            await asyncio.sleep(response.header_delay)
        headers = [(k.lower(), v) for k, v in response.headers]
        chunks: list[bytes] = list(response.chunks)
        encoder = ContentEncoder(response.encoding) if response.encoding else None
        if encoder is not None:
            if not any(k == "content-encoding" for k, _ in headers):
                headers.append(("content-encoding", encoder.encoding))
            if any(k == "content-length" for k, _ in headers):
                # A known length means one compressed body; drop the per-chunk flushing.
                whole = compress(encoder.encoding, b"".join(chunks))
                headers = [(k, str(len(whole)) if k == "content-length" else v) for k, v in headers]
                chunks, encoder = [whole], None
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        if not chunks:
            chunks = [b""]
        for index, chunk in enumerate(chunks):
            if response.fail_after is not None and index >= response.fail_after:
                raise _UpstreamAbort(f"scripted abort after {index} chunks")
            pause = (
                response.delays[index]
                if response.delays is not None
                else (response.delay if index else 0.0)
            )
            if pause:
                await asyncio.sleep(pause)
            last = index == len(chunks) - 1
            data = chunk
            if encoder is not None:
                data = encoder.compress(chunk) + (encoder.finish() if last else b"")
            record.chunk_times.append(time.monotonic())
            await send({"type": "http.response.body", "body": data, "more_body": not last})
        record.completed = True

    # ---- canned routes

    def _route(self, record: RecordedRequest) -> FakeResponse:
        path = record.path
        if record.method == "POST" and (match := _CHAT_PATH.match(path)):
            return self._llm(record, self._chat, match["deployment"])
        if record.method == "POST" and _RESPONSES_PATH.match(path):
            return self._llm(record, self._responses, None)
        if record.method == "POST" and path == "/v1/messages":
            return self._llm(record, self._anthropic, None, provider="anthropic")
        if match := _ERROR_PATH.match(path):
            provider = record.query_params().get("provider", ["openai"])[0]
            return FakeResponse.error(int(match["code"]), provider)
        if path == "/sse":
            return self._pacing(record)
        if match := _COMPRESSED_PATH.match(path):
            return self._compressed(record, match["encoding"])
        if path == "/echo":
            return FakeResponse.json(
                {
                    "method": record.method,
                    "path": record.path,
                    "query": record.query,
                    "headers": record.headers,
                    "body": record.body.decode("utf-8", "replace"),
                    "http_version": record.http_version,
                }
            )
        return FakeResponse.error(404)

    def _llm(
        self,
        record: RecordedRequest,
        build: Callable[[RecordedRequest, Any, str | None, float], FakeResponse],
        deployment: str | None,
        provider: str = "openai",
    ) -> FakeResponse:
        if status := record.header("x-fake-status"):
            return FakeResponse.error(int(status), provider)
        try:
            body = record.json()
        except ValueError:
            return FakeResponse.error(400, provider)
        delay = float(record.header("x-fake-delay") or self.event_delay)
        response = build(record, body, deployment, delay)
        response.encoding = record.header("x-fake-encoding") or self.encoding
        return response

    def _text(self, body: Any) -> str:
        if self.reply_text is not None:
            return self.reply_text
        prompt = _prompt_text(body)
        return f"Echo: {prompt}" if prompt else "Hello from the fake upstream."

    def _chat(
        self, record: RecordedRequest, body: Any, deployment: str | None, delay: float
    ) -> FakeResponse:
        seed = seed_conversation()
        if record.path == SEED_PATH and body == json.loads(seed.request_body):
            return FakeResponse.sse(seed.events(), delay=delay, headers=_openai_headers())
        model = deployment or body.get("model") or "gpt-4o-mini"
        ident = self.next_id("chatcmpl-")
        text = self._text(body)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = chat_completion_events(text, model, ident, include_usage=usage)
            return FakeResponse.sse(events, delay=delay, headers=_openai_headers())
        return FakeResponse.json(chat_completion(text, model, ident), headers=_openai_headers())

    def _responses(
        self, record: RecordedRequest, body: Any, deployment: str | None, delay: float
    ) -> FakeResponse:
        model = body.get("model") or "gpt-4o-mini"
        ident = self.next_id("resp_")
        text = self._text(body)
        if body.get("stream"):
            events = response_events(text, model, ident)
            return FakeResponse.sse(events, delay=delay, headers=_openai_headers())
        return FakeResponse.json(response_object(text, model, ident), headers=_openai_headers())

    def _anthropic(
        self, record: RecordedRequest, body: Any, deployment: str | None, delay: float
    ) -> FakeResponse:
        model = body.get("model") or "claude-sonnet-4-5"
        ident = self.next_id("msg_")
        text = self._text(body)
        headers = [("request-id", self.next_id("req_")), ("anthropic-organization-id", "fake")]
        if body.get("stream"):
            return FakeResponse.sse(anthropic_events(text, model, ident), delay, headers)
        return FakeResponse.json(anthropic_message(text, model, ident), headers=headers)

    def _pacing(self, record: RecordedRequest) -> FakeResponse:
        params = record.query_params()
        count = int(params.get("n", ["6"])[0])
        delay = float(params.get("delay", [str(self.event_delay)])[0])
        pad = "x" * int(params.get("pad", ["0"])[0])
        events: list[bytes] = [
            sse_event({"index": i, "of": count, **({"pad": pad} if pad else {})})
            for i in range(count)
        ]
        if params.get("done", ["0"])[0] == "1":
            events.append(sse_event("[DONE]"))
        return FakeResponse.sse(events, delay=delay)

    def _compressed(self, record: RecordedRequest, encoding: str) -> FakeResponse:
        if encoding not in SUPPORTED_ENCODINGS:
            return FakeResponse.error(400)
        text = self._text(None)
        if record.query_params().get("stream", ["0"])[0] == "1":
            events = [sse_event({"index": i, "text": piece}) for i, piece in enumerate(words(text))]
            return FakeResponse.sse(events, delay=self.event_delay, encoding=encoding)
        return FakeResponse.json({"encoding": encoding, "text": text}, encoding=encoding)


class _UpstreamAbort(Exception):
    """Raised inside a response to make Hypercorn drop it half-way (see FakeResponse.fail_after)."""


def _openai_headers() -> list[tuple[str, str]]:
    return [
        ("openai-processing-ms", "42"),
        ("openai-version", "2020-10-01"),
        ("x-request-id", f"req_fake{time.monotonic_ns():x}"),
    ]


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts and closes each at
    once: a stand-in for an upstream proxy (`--mode upstream:http://127.0.0.1:<port>`) or any
    server that must never be reached. `with ConnectionCounter() as counter: ... counter.count`.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.count = 0
        self._thread = threading.Thread(target=self._accept, name="connection-counter",
                                         daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed by stop()
                return
            self.count += 1
            conn.close()

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        self._thread.join(5)
