"""`llmvcr.sse`: the one reader of event-stream lines (WHATWG line breaks: CRLF, LF, CR, nothing
else), used by the recorder's scrubbing, `llm-vcr check` and `llm-vcr show`."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llmvcr.cassette import Cassette, Interaction, Request, Response, dumps
from llmvcr.commands.check import check_bytes
from llmvcr.redact import Redactor
from llmvcr.sse import data_values, looks_like_sse, sse_events, sse_lines

# Text made of the characters that matter: line breaks, U+2028/U+2029/U+0085 (line breaks to
# str.splitlines, not to an event stream), the `data:` prefix and a few letters.
STREAM_TEXT = st.lists(
    st.sampled_from(["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "data:", "data: ", " ", "a",
                     "{", "}", ":", "é"]),
    max_size=40,
).map("".join)


@given(STREAM_TEXT)
def test_lines_join_back_to_the_body(text: str) -> None:
    for body in (text, text.encode()):
        lines = list(sse_lines(body))
        assert body[:0].join(line.text + line.end for line in lines) == body
        for line in lines:
            assert body[line.start : line.start + len(line.text)] == line.text
            assert line.end in ("\r\n", "\n", "\r", "", b"\r\n", b"\n", b"\r", b"")


@given(STREAM_TEXT)
def test_data_values_point_into_the_body_alike_for_bytes_and_text(text: str) -> None:
    """The bytes fast path (the recorder's) finds the same values as the text path (check's)."""
    from_text = list(data_values(text))
    from_bytes = list(data_values(text.encode()))
    assert [value.encode() for _, value in from_text] == [value for _, value in from_bytes]
    body = text.encode()
    for start, value in from_bytes:
        assert body[start : start + len(value)] == value
    for start, value in from_text:
        assert text[start : start + len(value)] == value


def test_only_cr_lf_and_crlf_end_a_line() -> None:
    body = 'data: {"a":"x\u2028y\x85z"}\r\ndata:b\rdata:  c\n'
    assert [line.text for line in sse_lines(body)] == ['data: {"a":"x\u2028y\x85z"}', "data:b",
                                                       "data:  c"]
    assert [value for _, value in data_values(body)] == ['{"a":"x\u2028y\x85z"}', "b", " c"]
    assert [value for _, value in data_values(body.encode())] == [
        '{"a":"x\u2028y\x85z"}'.encode(), b"b", b" c"]


def test_an_event_left_open_at_the_end_still_counts() -> None:
    assert [(e.event, e.data) for e in sse_events(b"event: x\ndata: 1\n\ndata: 2")] == [
        ("x", "1"), ("", "2")]


def test_looks_like_sse() -> None:
    for body in (b"data: {}", b"event: a\n", b"id: 1\n", b": OPENROUTER PROCESSING\n\n",
                 b"\n\ndata: x", "data: x"):
        assert looks_like_sse(body), body
    for body in (b"", b"{}", b"<html>", b"metadata: x", "hello"):
        assert not looks_like_sse(body), body


def _stream_interaction(body: bytes) -> Interaction:
    return Interaction(
        Request(method="POST", url="https://api.example.com/v1/chat", body=b"{}",
                headers={"Content-Type": ["application/json"]}, content_length=2),
        Response(body=body, headers={"Content-Type": ["text/event-stream"]},
                 content_length=len(body)),
    )


SECRET = "plain-secret-value-0001"


def test_a_data_line_holding_u2028_is_one_line_to_the_recorder_and_to_check() -> None:
    """JSON may carry U+2028 unescaped. `check` once split lines with str.splitlines, which
    breaks there, so the secret in that line went unreported; the recorder scrubs it."""
    event = json.dumps({"text": "one\u2028two", "api_key": SECRET}, ensure_ascii=False)
    body = f"data: {event}\n\ndata: [DONE]\n\n".encode()
    findings = check_bytes(dumps(Cassette(interactions=[_stream_interaction(body)])), "x.yaml")
    assert [f.message for f in findings if f.severity == "error"] == [
        "secret: JSON field api_key in response body (23 chars)"]

    scrubbed = Redactor().response(_stream_interaction(body).response)
    assert SECRET.encode() not in scrubbed.body
    assert scrubbed.body.endswith(b"\n\ndata: [DONE]\n\n")
    assert "one\u2028two".encode() in scrubbed.body


def test_the_recorder_keeps_every_byte_of_unchanged_lines() -> None:
    body = (b": keep-alive\r\n\r\nevent: a\r\ndata: {\"x\": 1}\r\n\r\n"
            b"data:{\"api_key\": \"" + SECRET.encode() + b"\"}\rdata: [DONE]\r")
    scrubbed = Redactor().response(_stream_interaction(body).response).body
    assert scrubbed == (b": keep-alive\r\n\r\nevent: a\r\ndata: {\"x\": 1}\r\n\r\n"
                        b"data:{\"api_key\":\"REDACTED\"}\rdata: [DONE]\r")
