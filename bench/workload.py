"""The benchmark's synthetic traffic: chat-completion interactions, SSE interactions with chunk
times, cassettes written with `cassette.dumps`, and the same interactions as a mitmproxy flow
file for the built-in `server_replay`.

Every interaction is distinct (its number is in the request body), so a lookup has to find the
right one among all of them, as with a real recorded test suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llmvcr.cassette import Cassette, Chunk, Interaction, Request, Response, dumps

API_HOST = "api.openai.com"
CHAT_URL = f"https://{API_HOST}/v1/chat/completions"
SSE_URL = f"https://{API_HOST}/v1/chat/completions?stream=1"
USER_AGENT = "llm-vcr-bench/1"
REQUEST_HEADERS: dict[str, list[str]] = {
    "Accept": ["application/json"],
    "Content-Type": ["application/json"],
    "User-Agent": [USER_AGENT],
}
# What the load generator sends on top of httpx's own headers (matching ignores headers).
CLIENT_HEADERS: dict[str, str] = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
JSON_RESPONSE_HEADERS: dict[str, list[str]] = {"Content-Type": ["application/json"]}
SSE_RESPONSE_HEADERS: dict[str, list[str]] = {
    "Content-Type": ["text/event-stream; charset=utf-8"],
    "Cache-Control": ["no-cache"],
}
MS = 1_000_000  # nanoseconds


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def chat_request_body(number: int, small: bool = False) -> bytes:
    """A chat-completions request; `small` leaves out the system prompt (about 120 bytes)."""
    messages: list[dict[str, str]] = []
    if not small:
        messages.append({"role": "system", "content": "You are a concise assistant for a test."})
    messages.append({"role": "user", "content": f"Question number {number}: what comes next?"})
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": messages}
    if not small:
        body["temperature"] = 0
    return _compact(body)


def chat_response_body(number: int, small: bool = False) -> bytes:
    """A chat.completion object answering `number` (about 330 bytes small, 800 otherwise)."""
    text = f"The answer to question {number} is {number + 1}."
    if not small:
        text += " " + " ".join(["It follows from counting one step further."] * 3)
    usage: dict[str, Any] = {"prompt_tokens": 19, "completion_tokens": 12, "total_tokens": 31}
    if not small:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
    return _compact(
        {
            "id": f"chatcmpl-bench{number:08d}",
            "object": "chat.completion",
            "created": 1773338554,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "system_fingerprint": None,
        }
    )


def chat_interaction(number: int, small: bool = False) -> Interaction:
    """A recorded non-streaming chat completion, shaped as the addon records one."""
    body = chat_request_body(number, small)
    answer = chat_response_body(number, small)
    return Interaction(
        request=Request(
            method="POST",
            url=CHAT_URL,
            body=body,
            headers={k: list(v) for k, v in REQUEST_HEADERS.items()},
            content_length=len(body),
        ),
        response=Response(
            status="200 OK",
            code=200,
            headers={k: list(v) for k, v in JSON_RESPONSE_HEADERS.items()},
            body=answer,
            proto="HTTP/2.0",
            proto_major=2,
            proto_minor=0,
            content_length=len(answer),
            duration=412 * MS,
        ),
    )


def chat_interactions(count: int, small: bool = False, first: int = 0) -> list[Interaction]:
    return [chat_interaction(n, small) for n in range(first, first + count)]


def sse_event(index: int, of: int) -> bytes:
    """One SSE event in the fake upstream's `/sse` shape (the load generator reads `index`)."""
    return b"data: " + _compact({"index": index, "of": of}) + b"\n\n"


def sse_interaction(number: int, events: int, first_ms: int, gap_ms: int) -> Interaction:
    """A recorded stream: `events` SSE events, the first `first_ms` after the request was sent
    upstream, then one every `gap_ms`; headers arrived at `first_ms` too."""
    body_parts = [sse_event(i, events) for i in range(events)]
    body = _compact({"model": "gpt-4o-mini", "stream": True, "messages": [
        {"role": "user", "content": f"Stream number {number}"}]})
    return Interaction(
        request=Request(
            method="POST",
            url=SSE_URL,
            body=body,
            headers={k: list(v) for k, v in REQUEST_HEADERS.items()},
            content_length=len(body),
        ),
        response=Response(
            headers={k: list(v) for k, v in SSE_RESPONSE_HEADERS.items()},
            body=b"".join(body_parts),
            proto="HTTP/2.0",
            proto_major=2,
            proto_minor=0,
            duration=first_ms * MS,
            chunks=[
                Chunk(at=(first_ms + i * gap_ms) * MS, size=len(part))
                for i, part in enumerate(body_parts)
            ],
        ),
    )


def write_cassette(path: Path, interactions: Sequence[Interaction]) -> int:
    """Write the interactions as a cassette file; its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dumps(Cassette(list(interactions)))
    path.write_bytes(data)
    return len(data)


def write_flow_file(path: Path, interactions: Iterable[Interaction]) -> int:
    """The same interactions as mitmproxy flows (`server_replay=<path>`); how many were written.

    Each flow carries the request as the client sends it through the proxy (host, port, path and
    body are what `server_replay` matches) and the recorded response with its headers.
    """
    from mitmproxy import connection, http, io

    count = 0
    with path.open("wb") as f:
        writer = io.FlowWriter(f)
        for interaction in interactions:
            req, resp = interaction.request, interaction.response
            flow = http.HTTPFlow(
                connection.Client(peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080)),
                connection.Server(address=(API_HOST, 443)),
            )
            flow.request = http.Request.make(
                req.method,
                req.url,
                req.body,
                [(k.encode(), v.encode()) for k, vs in req.headers.items() for v in vs],
            )
            flow.response = http.Response.make(
                resp.code,
                resp.body,
                [(k.encode(), v.encode()) for k, vs in resp.headers.items() for v in vs],
            )
            writer.add(flow)
            count += 1
    return count


def request_items(interactions: Sequence[Interaction], expect: bool = True) -> list[dict[str, Any]]:
    """What the load generator sends for each interaction (and the body it must get back)."""
    return [
        {
            "method": i.request.method,
            "url": i.request.url,
            "body": i.request.body.decode(),
            "headers": CLIENT_HEADERS,
            "expect": i.response.body.decode() if expect else None,
        }
        for i in interactions
    ]
