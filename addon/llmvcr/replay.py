"""From a recorded `Interaction` to an answer: one-piece replies and the timed stream server.

mitmproxy sends a response made in the `request` hook in one piece, so a stream that must arrive
chunk by chunk at its recorded pace is served by `StreamServer`, a tiny HTTP/1.1 server on
127.0.0.1 inside mitmproxy's own event loop: the addon points the flow at it and streams the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass

from .cassette import Response

log = logging.getLogger("llmvcr")

# Hop-by-hop or length headers that must not be replayed as recorded: the body is sent whole
# and decoded, so the proxy sets its own Content-Length.
_NOT_REPLAYED = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})


def parse_latency(value: str) -> float | None:
    """`none` -> None (answer at once), `recorded` -> 1.0, a factor like `0.5` -> 0.5."""
    text = value.strip().lower()
    if text == "none":
        return None
    if text == "recorded":
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        raise ValueError(
            f"vcr_latency must be 'none', 'recorded' or a non-negative factor, not {value!r}"
        ) from None
    if not factor >= 0 or factor == float("inf"):
        raise ValueError(f"vcr_latency factor must be a finite number >= 0, not {value!r}")
    return factor


def reply_headers(response: Response) -> list[tuple[str, str]]:
    """The recorded headers to send back, with a Content-Length that fits the stored body."""
    pairs = [
        (name, value)
        for name, values in response.headers.items()
        if name.lower() not in _NOT_REPLAYED
        for value in values
    ]
    pairs.append(("Content-Length", str(len(response.body))))
    return pairs


def reason_phrase(response: Response) -> str:
    """`200 OK` -> `OK`."""
    _, _, reason = response.status.partition(" ")
    return reason


@dataclass(slots=True)
class StreamPlan:
    """What the stream server writes for one flow, and when (seconds after `origin`)."""

    response: Response
    origin: float  # time.monotonic() when the request was "sent upstream"
    scale: float  # latency factor: 1.0 = the recorded pace

    def pieces(self) -> list[tuple[float, bytes]]:
        """(offset in seconds, bytes) for each recorded chunk, in order."""
        body = self.response.body
        chunks = self.response.chunks or []
        out: list[tuple[float, bytes]] = []
        pos = 0
        for chunk in chunks:
            out.append((chunk.at / 1e9 * self.scale, body[pos : pos + chunk.size]))
            pos += chunk.size
        if pos < len(body):  # no chunk data (or too little): the rest comes after the last chunk
            last = max([self.response.duration, *(c.at for c in chunks)])
            out.append((last / 1e9 * self.scale, body[pos:]))
        return out


class StreamServer:
    """HTTP/1.1 server on 127.0.0.1 that plays registered `StreamPlan`s at their recorded pace.

    Each plan is reachable once, under an unguessable path. It accepts only what the proxy itself
    sends there (see `guard.reassert_stream_server`): `GET <path> HTTP/1.1` with a short head and
    no body. Anything else gets 400 (malformed) or 404 (an unknown path) and the connection is
    closed, with no log line: nobody but the proxy has a reason to talk to this port.
    Connections are kept alive, since mitmproxy reuses its upstream connections.
    """

    PATH_PREFIX = "/__llm_vcr_stream__/"
    MAX_HEAD = 8192  # the proxy's requests are a request line and a Host header

    def __init__(self) -> None:
        self._plans: dict[str, StreamPlan] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, limit=self.MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    def register(self, plan: StreamPlan) -> str:
        """The path under which the server will play `plan` (once)."""
        token = secrets.token_urlsafe(16)
        self._plans[token] = plan
        return self.PATH_PREFIX + token

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                token = parse_stream_request(head, self.PATH_PREFIX)
                if token is None:
                    await _refuse(writer, b"400 Bad Request")
                    return
                plan = self._plans.pop(token, None)
                if plan is None:
                    await _refuse(writer, b"404 Not Found")
                    return
                await self._play(plan, writer)
        except asyncio.LimitOverrunError:
            await _refuse(writer, b"400 Bad Request")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as e:  # never a traceback per request; one line says what broke
            log.warning("llm-vcr: timed replay stream failed: %s: %s", type(e).__name__, e)
        finally:
            writer.close()

    async def _play(self, plan: StreamPlan, writer: asyncio.StreamWriter) -> None:
        response = plan.response
        head = [f"HTTP/1.1 {response.code} {reason_phrase(response)}"]
        head += [f"{name}: {value}" for name, value in reply_headers(response)]
        pieces = plan.pieces()
        # Headers go when the first byte is due (go-vcr's `duration` = time to response headers).
        first_at = min([plan.response.duration / 1e9 * plan.scale] + [at for at, _ in pieces[:1]])
        await _sleep_until(plan.origin + first_at)
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for at, data in pieces:
            await _sleep_until(plan.origin + at)
            writer.write(data)
            await writer.drain()
        await writer.drain()


def parse_stream_request(head: bytes, prefix: str) -> str | None:
    """The plan token of a request head the proxy could have sent (`GET <prefix><token>
    HTTP/1.1`, or 1.0 for such a client, headers without a body); None for anything else."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    target = parts[1].decode("latin-1")
    if not target.startswith(prefix):
        return None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (
            lowered == b"content-length" and value.strip() != b"0"
        ):
            return None  # the proxy sends no body
    return target[len(prefix):]


async def _refuse(writer: asyncio.StreamWriter, status: bytes) -> None:
    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
