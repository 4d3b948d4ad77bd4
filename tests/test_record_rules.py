"""The pure rules of recording and replaying: no mitmproxy, no network."""

from __future__ import annotations

import gzip
import time
import zlib

import brotli
import pytest

from llmvcr.cassette import Chunk, Response
from llmvcr.modes import Mode, Plan, plan_for
from llmvcr.record import (
    StreamTee,
    build_request,
    build_response,
    form_fields,
    status_text,
    stream_finished,
)
from llmvcr.replay import StreamPlan, parse_latency, reply_headers


def test_request_fields_look_like_a_go_client_recording() -> None:
    request = build_request(
        "POST", "https://x.test/v1?alt=sse&b=1&b=2",
        [("content-type", "application/json"), ("x-custom-thing", "v")], b'{"a":1}',
    )
    assert request.headers == {"Content-Type": ["application/json"], "X-Custom-Thing": ["v"]}
    assert request.form == {"alt": ["sse"], "b": ["1", "2"]}
    assert request.content_length == 7
    assert (request.proto, request.host) == ("HTTP/1.1", "")


def test_form_includes_urlencoded_body_fields() -> None:
    form = form_fields("https://x.test/t?a=1", b"b=2&c=", "application/x-www-form-urlencoded")
    assert form == {"a": ["1"], "b": ["2"], "c": [""]}
    assert form_fields("https://x.test/t", b"b=2", "application/json") == {}


@pytest.mark.parametrize(("code", "reason", "expected"), [
    (200, "", "200 OK"), (429, "", "429 Too Many Requests"), (200, "Fine", "200 Fine"),
    (599, "", "599"),
])
def test_status_text(code: int, reason: str, expected: str) -> None:
    assert status_text(code, reason) == expected


def test_response_lengths_and_proto() -> None:
    h2 = build_response(200, "", "HTTP/2.0", [("content-type", "a/b")], b"xy", 5, None, False)
    assert (h2.proto, h2.proto_major, h2.content_length) == ("HTTP/2.0", 2, -1)
    sized = build_response(200, "OK", "HTTP/1.1", [("Content-Length", "2")], b"xy", 5, None, False)
    assert sized.content_length == 2 and sized.transfer_encoding == []
    chunked = build_response(200, "OK", "HTTP/1.1", [("Transfer-Encoding", "chunked")], b"xy", 5,
                             [Chunk(1, 1), Chunk(2, 1)], False)
    assert chunked.transfer_encoding == ["chunked"] and chunked.content_length == -1
    assert chunked.chunks == [Chunk(1, 1), Chunk(2, 1)]
    decoded = build_response(200, "OK", "HTTP/1.1",
                             [("Content-Encoding", "gzip"), ("Content-Length", "20")],
                             b"xy", 5, [Chunk(1, 2)], True)
    assert decoded.uncompressed and decoded.content_length == -1
    assert "Content-Encoding" not in decoded.headers
    assert decoded.chunks is None  # one chunk: no timing worth keeping


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
def test_tee_decodes_chunk_by_chunk(encoding: str) -> None:
    body = b"".join(b"data: {\"n\": %d}\n\n" % i for i in range(200))
    if encoding == "gzip":
        wire = gzip.compress(body)
    elif encoding == "deflate":
        wire = zlib.compress(body)
    elif encoding == "deflate-raw":
        obj = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        wire = obj.compress(body) + obj.flush()
    else:
        wire = brotli.compress(body)
    tee = StreamTee(time.monotonic_ns(), encoding.removesuffix("-raw"))
    passed = b"".join(tee(wire[i:i + 50]) for i in range(0, len(wire), 50)) + tee(b"")
    assert passed == wire  # the client gets the bytes as they came
    assert tee.decoded and tee.body == body
    assert sum(c.size for c in tee.chunks) == len(body)


def test_tee_never_raises_on_garbage() -> None:
    tee = StreamTee(time.monotonic_ns(), "gzip")
    assert tee(b"not gzip at all") == b"not gzip at all"
    assert tee.failed


def test_unknown_encoding_is_not_recorded() -> None:
    assert StreamTee(0, "compress").failed


@pytest.mark.parametrize(("body", "finished"), [
    (b"data: {}\n\ndata: [DONE]\n\n", True),
    (b"data: {}\r\n\r\ndata: [DONE]\r\n\r\n", True),
    (b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", True),
    (b"event: response.completed\ndata: {}\n\n", True),
    (b"data: {}\n\n", False),
    (b"data: [DONE]\n\ndata: more\n\n", False),
    (b"", False),
])
def test_stream_finished(body: bytes, finished: bool) -> None:
    assert stream_finished(body) is finished


@pytest.mark.parametrize(("text", "value"), [
    ("none", None), ("recorded", 1.0), ("0.25", 0.25), ("0", 0.0), (" Recorded ", 1.0),
])
def test_parse_latency(text: str, value: float | None) -> None:
    assert parse_latency(text) == value


@pytest.mark.parametrize("text", ["fast", "-1", "nan", "inf", ""])
def test_parse_latency_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="vcr_latency"):
        parse_latency(text)


def test_stream_plan_pieces_follow_the_chunks() -> None:
    response = Response(body=b"aaabbc", duration=100, chunks=[Chunk(200, 3), Chunk(400, 2)])
    plan = StreamPlan(response, origin=0.0, scale=0.5)
    assert plan.pieces() == [(1e-07, b"aaa"), (2e-07, b"bb"), (2e-07, b"c")]


def test_reply_headers_fix_the_length() -> None:
    response = Response(body=b"12345", headers={"Content-Type": ["a/b"], "Content-Length": ["9"],
                                                 "Transfer-Encoding": ["chunked"]})
    assert reply_headers(response) == [("Content-Type", "a/b"), ("Content-Length", "5")]


def test_mode_table() -> None:
    assert plan_for(Mode.RECORD_ONCE, True) == Plan(replay=False, record=True)
    assert plan_for(Mode.RECORD_ONCE, False) == Plan(replay=True, record=False)
    assert plan_for(Mode.REPLAY, True) == Plan(replay=True, record=False)
    assert plan_for(Mode.RECORD, False).replace_old
    assert plan_for(Mode.NEW_EPISODES, False) == Plan(replay=True, record=True)
    assert plan_for(Mode.PASSTHROUGH, True) == Plan(replay=False, record=False)
