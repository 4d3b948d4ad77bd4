"""The answers the proxy makes itself, as mitmproxy responses: recorded answers and JSON errors.

Errors are shaped like an OpenAI error (`{"error": {"type", "code", "message", "param"}}`) with
`x-should-retry: false`, so the openai and anthropic SDKs raise them at once instead of retrying,
and an `X-VCR-...` header that names what happened for scripts and curl users.
"""

from __future__ import annotations

import json
import logging
import time

from mitmproxy import http

from .cassette import Response
from .replay import reason_phrase, reply_headers

log = logging.getLogger("llmvcr")

JSON_HEADERS = {"Content-Type": "application/json", "x-should-retry": "false"}


def error_body(kind: str, message: str, **extra: object) -> bytes:
    """The JSON of an error the proxy makes (pure; `extra` adds fields such as `field`)."""
    return json.dumps(
        {"error": {"type": kind, "code": kind, "message": message, "param": None, **extra}}
    ).encode()


def error_response(status: int, kind: str, message: str, headers: dict[str, str]) -> http.Response:
    """An error the proxy makes itself: JSON shaped like an OpenAI error, and SDKs never retry."""
    return http.Response.make(status, error_body(kind, message), {**JSON_HEADERS, **headers})


def json_response(status: int, body: bytes) -> http.Response:
    return http.Response.make(status, body, JSON_HEADERS)


def bad_name(message: str) -> http.Response:
    return error_response(400, "cassette_name_invalid", message, {
        "X-VCR-Error": "bad-cassette-name"})


def recorded_response(response: Response) -> http.Response:
    """The recorded answer as a mitmproxy response.

    Built around `ResponseData` directly: its constructor type-checks every field at run time
    (an `if __debug__` check that costs more than the rest of a replay), and these values are
    typed by construction. The replay tests cover this path on every answer.
    """
    headers = http.Headers([(k.encode(), v.encode()) for k, v in reply_headers(response)])
    now = time.time()
    data = object.__new__(http.ResponseData)
    data.__dict__.update(
        http_version=b"HTTP/1.1",
        status_code=response.code,
        reason=reason_phrase(response).encode("latin-1", "replace"),
        headers=headers,
        content=response.body,
        trailers=None,
        timestamp_start=now,
        timestamp_end=now,
    )
    made = object.__new__(http.Response)
    made.data = data
    return made


def _refused(status: int, kind: str, message: str, error: str) -> http.Response:
    log.warning("%s", message)
    return error_response(status, kind, message, {"X-VCR-Error": error})


def host_not_recorded(host_port: str, patterns: tuple[str, ...]) -> http.Response:
    """A replaying session asked for a host outside vcr_hosts: nothing is looked up or sent."""
    return _refused(502, "host_not_recorded", (
        f"llm-vcr: replay mode: host {host_port} is not recorded (vcr_hosts: "
        f"{', '.join(patterns) or 'none'}); replay mode sends nothing upstream"
    ), "host-not-recorded")


def websocket_refused(mode: str, cassette: str, shown_url: str) -> http.Response:
    return _refused(501, "websocket_not_recorded", (
        f"llm-vcr: {mode} mode: WebSocket connections are not recorded, so cassette "
        f"'{cassette}' cannot answer {shown_url}"
    ), "websocket-not-recorded")


def session_refused(status: int, message: str) -> http.Response:
    return error_response(status, "session_not_found", message, {
        "X-VCR-Error": "session-not-found"})


def broken_cassette(message: str) -> http.Response:
    return error_response(500, "cassette_broken", f"broken cassette: {message}", {
        "X-VCR-Error": "broken-cassette"})


def misconfigured(message: str) -> http.Response:
    return error_response(500, "vcr_misconfigured", f"llm-vcr is misconfigured: {message}", {
        "X-VCR-Error": "misconfigured"})


def internal_error(error: Exception) -> http.Response:
    return error_response(
        500, "vcr_internal_error", f"llm-vcr internal error: {type(error).__name__}: {error}",
        {"X-VCR-Error": "internal-error"},
    )


def miss(cassette: str, message: str) -> http.Response:
    log.warning("%s", message)
    return error_response(404, "cassette_miss", message, {"X-VCR-Miss": cassette})
