"""`llm-vcr show`: answers reassembled from real streams, checked against independent decoders.

Each provider's expected text is rebuilt here with a deliberately simple parser of its own (a
line split over the SSE `data:` lines, a few lines of event-stream framing for Bedrock), so the
test does not lean on the module's parsers.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmvcr.cassette import Cassette, Chunk, Interaction, Request, Response, dumps, load
from llmvcr.commands.show import show_paths
from llmvcr.show import EventStreamError, decode_event_stream, reassemble, summarize_request
from llmvcr.sse import sse_events

SEED = Path(__file__).resolve().parent.parent / "cassettes" / "simple_streaming.yaml"

# ---- independent decoders ---------------------------------------------------------------------


def data_lines(body: bytes) -> list[dict]:
    """The JSON of every `data:` line (no corpus stream spreads an event over several lines)."""
    events = []
    for line in re.split(rb"\r?\n", body):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload and payload != b"[DONE]":
                events.append(json.loads(payload))
    return events


def bedrock_events(body: bytes) -> list[dict]:
    """Anthropic events out of a Bedrock event stream: length-prefixed frames, base64 payloads."""
    events, offset = [], 0
    while offset < len(body):
        total, headers_length = struct.unpack(">II", body[offset : offset + 8])
        payload = body[offset + 12 + headers_length : offset + total - 4]
        events.append(json.loads(base64.b64decode(json.loads(payload)["bytes"])))
        offset += total
    return events


def grouped(pieces: list[tuple[object, str]]) -> list[str]:
    """Concatenate the pieces of each key, in the order the keys first appear."""
    result: dict[object, str] = {}
    for key, piece in pieces:
        result[key] = result.get(key, "") + piece
    return [text for text in result.values() if text]


def chat_texts(events: list[dict]) -> list[str]:
    pieces = []
    for event in events:
        for choice in event.get("choices", []):
            delta = choice.get("delta", {})
            pieces.append(("text", delta.get("content") or ""))
            for call in delta.get("tool_calls") or []:
                pieces.append((call["index"], call.get("function", {}).get("arguments") or ""))
    return grouped(pieces)


def responses_texts(events: list[dict]) -> list[str]:
    kinds = {
        "response.output_text.delta": "text",
        "response.function_call_arguments.delta": "args",
        "response.reasoning_summary_text.delta": "summary",
    }
    return grouped(
        [
            ((kinds[e["type"]], e["output_index"], e.get("summary_index")), e["delta"])
            for e in events
            if e.get("type") in kinds
        ]
    )


def anthropic_texts(events: list[dict]) -> list[str]:
    pieces = []
    for event in events:
        delta = event.get("delta", {})
        for name in ("text", "partial_json", "thinking"):
            if event.get("type") == "content_block_delta" and name in delta:
                pieces.append((event["index"], delta[name]))
    return grouped(pieces)


def gemini_texts(body: bytes) -> list[str]:
    assert b"\r\n\r\n" in body  # the framing this case is about
    text = ""
    for frame in body.split(b"\r\n\r\n"):
        if frame.startswith(b"data: "):
            chunk = json.loads(frame[6:])
            for part in chunk["candidates"][0]["content"]["parts"]:
                text += part.get("text", "")
    return [text] if text else []


Decoder = Callable[[bytes], list[str]]
CASES: list[tuple[str, Decoder]] = [
    ("TestOpenAICommon/openai-gpt-4o/simple_streaming.yaml", lambda b: chat_texts(data_lines(b))),
    ("TestOpenAICommon/openai-gpt-4o/tool_streaming.yaml", lambda b: chat_texts(data_lines(b))),
    ("TestOpenAIResponsesCommon/openai-gpt-5/tool_streaming.yaml",
     lambda b: responses_texts(data_lines(b))),
    ("TestOpenAIResponsesWithSummaryThinking/openai-gpt-5/thinking-streaming.yaml",
     lambda b: responses_texts(data_lines(b))),
    ("TestAzureCommon/azure-gpt-5-mini/tool_streaming.yaml",
     lambda b: chat_texts(data_lines(b))),
    ("TestAzureResponsesCommon/azure-gpt-5-mini/simple_streaming.yaml",
     lambda b: responses_texts(data_lines(b))),
    ("TestAnthropicCommon/claude-sonnet-4/tool_streaming.yaml",
     lambda b: anthropic_texts(data_lines(b))),
    ("TestAnthropicThinking/claude-sonnet-4/thinking-streaming.yaml",
     lambda b: anthropic_texts(data_lines(b))),
    ("TestGoogleCommon/gemini-2.5-flash/simple_streaming.yaml", gemini_texts),
    ("TestBedrockCommon/bedrock-anthropic-claude-haiku-4-5/tool_streaming.yaml",
     lambda b: anthropic_texts(bedrock_events(b))),
]

CASE_IDS = [name.removesuffix(".yaml") for name, _ in CASES]


def answer_sections(output: str) -> list[str]:
    """Per interaction, the output from its `answer` line on (the request part left out, since a
    later request repeats earlier answers)."""
    sections = []
    for part in output.split("── interaction ")[1:]:
        _, found, rest = part.partition("\nanswer")
        assert found, f"no answer section in:\n{part}"
        sections.append(rest)
    return sections


def show(*paths: Path | str, raw: bool = False, color: bool | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = show_paths([str(p) for p in paths], raw=raw, out=out, color=color, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("name", "decode"), CASES, ids=CASE_IDS)
def test_show_prints_the_answer_as_the_stream_spells_it(
    corpus_dir: Path, name: str, decode: Decoder
) -> None:
    path = corpus_dir / "fantasy" / name
    status, output, err = show(path)
    assert (status, err) == (0, "")
    interactions = load(path).interactions
    sections = answer_sections(output)
    assert len(sections) == len(interactions)
    checked = 0
    for interaction, section in zip(interactions, sections, strict=True):
        for text in decode(interaction.response.body):
            assert text in section
            checked += 1
    assert checked >= len(interactions)


def test_tool_call_arguments_and_name_are_shown(corpus_dir: Path) -> None:
    path = corpus_dir / "fantasy/TestOpenAICommon/openai-gpt-4o/tool_streaming.yaml"
    _, output, _ = show(path)
    first_answer = answer_sections(output)[0]
    arguments = chat_texts(data_lines(load(path).interactions[0].response.body))
    assert arguments and all(a.startswith("{") for a in arguments)
    assert "[tool call] weather (call_" in first_answer
    for argument in arguments:
        assert f"\n{argument}\n" in first_answer


def test_non_streamed_json_answers(corpus_dir: Path) -> None:
    cases = {
        "TestOpenAICommon/openai-gpt-4o/simple.yaml":
            lambda d: d["choices"][0]["message"]["content"],
        "TestOpenAIResponsesCommon/openai-gpt-5/simple.yaml":
            lambda d: next(o for o in d["output"] if o["type"] == "message")["content"][0]["text"],
        "TestAnthropicCommon/claude-sonnet-4/simple.yaml": lambda d: d["content"][0]["text"],
        "TestGoogleCommon/gemini-2.5-flash/simple.yaml":
            lambda d: d["candidates"][0]["content"]["parts"][0]["text"],
        "TestBedrockCommon/bedrock-anthropic-claude-haiku-4-5/simple.yaml":
            lambda d: d["content"][0]["text"],
    }
    for name, extract in cases.items():
        path = corpus_dir / "fantasy" / name
        _, output, _ = show(path)
        expected = extract(json.loads(load(path).interactions[0].response.body))
        assert expected and expected in answer_sections(output)[0], name


def test_request_messages_by_role() -> None:
    _, output, _ = show(SEED)
    assert "[system]\nYou are a helpful assistant\n[user]\nSay hi in Portuguese\n" in output
    assert "model gpt-5-mini" in output
    assert "[assistant]\nOlá!\n" in output
    assert "usage: completion_tokens 140" in output
    assert "prompt_tokens 19" in output


def test_usage_from_anthropic_start_and_delta(corpus_dir: Path) -> None:
    path = corpus_dir / "fantasy/TestAnthropicCommon/claude-sonnet-4/simple_streaming.yaml"
    events = data_lines(load(path).interactions[0].response.body)
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    delta = next(e for e in events if e["type"] == "message_delta")["usage"]
    answer = reassemble(load(path).interactions[0].response)
    assert answer is not None
    assert answer.usage["input_tokens"] == start["input_tokens"]
    assert answer.usage["output_tokens"] == delta["output_tokens"] != start["output_tokens"]


def _cassette_file(tmp_path: Path, response: Response, request: Request | None = None) -> Path:
    path = tmp_path / "made.yaml"
    request = request or Request(method="POST", url="https://example.com/x")
    path.write_bytes(dumps(Cassette([Interaction(request, response)])))
    return path


def test_stream_timing_from_chunks(tmp_path: Path) -> None:
    body = b"data: one\n\ndata: two\n\ndata: three\n\n"
    chunks = [Chunk(120_000_000, 11), Chunk(900_000_000, 11), Chunk(2_500_000_000, 13)]
    response = Response(body=body, duration=118_000_000, chunks=chunks,
                        headers={"Content-Type": ["text/event-stream"]})
    _, output, _ = show(_cassette_file(tmp_path, response))
    assert "headers after 118ms" in output
    assert "stream: first byte 120ms, total 2.500s, 3 chunks" in output


def test_chunks_that_do_not_fit_are_reported_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    text = SEED.read_text(encoding="utf-8")
    duration = "    duration: 2.195586958s\n"
    path.write_text(text.replace(duration, f"{duration}    chunks:\n    - {{at: 1s, size: 3}}\n"))
    status, output, err = show(path)
    assert status == 0
    assert err.startswith("llm-vcr: warning: ") and "chunks" in err
    assert "stream:" not in output


def test_colour_only_for_a_terminal_unless_asked() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert "\x1b[" not in show(SEED)[1]
    assert "\x1b[" in show(SEED, color=True)[1]
    terminal = Terminal()
    show_paths([str(SEED)], out=terminal)
    assert "\x1b[" in terminal.getvalue()
    terminal = Terminal()
    show_paths([str(SEED)], out=terminal, color=False)
    assert "\x1b[" not in terminal.getvalue()


def test_raw_shows_the_bodies() -> None:
    _, plain, _ = show(SEED)
    _, raw, _ = show(SEED, raw=True)
    body = load(SEED).interactions[0].response.body.decode()
    assert body not in plain
    assert body in raw
    assert "Content-Type: text/event-stream; charset=utf-8" in raw


def test_raw_decodes_the_bedrock_event_stream(corpus_dir: Path) -> None:
    path = corpus_dir / "fantasy/TestBedrockCommon/bedrock-anthropic-claude-haiku-4-5/simple.yaml"
    streaming = path.with_name("simple_streaming.yaml")
    _, raw, _ = show(streaming, raw=True)
    body = load(streaming).interactions[0].response.body
    total, headers_length = struct.unpack(">II", body[:8])
    first_payload = body[12 + headers_length : total - 4]
    assert ":event-type=chunk" in raw
    assert first_payload.decode() in raw


def test_unknown_bodies_as_text_or_size(tmp_path: Path) -> None:
    text = Response(body=b"<html>teapot</html>", headers={"Content-Type": ["text/html"]},
                    status="418 I'm a teapot", code=418)
    _, output, _ = show(_cassette_file(tmp_path, text))
    assert "<html>teapot</html>" in output
    assert "418 I'm a teapot" in output
    binary = Response(body=bytes(range(256)) * 4, headers={"Content-Type": ["image/png"]})
    _, output, _ = show(_cassette_file(tmp_path, binary))
    assert "binary, 1.0 KiB, image/png" in output


def test_missing_and_broken_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("---\nversion: 2\ninteractions:\n- id: 0\n  response:\n    code: \"200\"\n")
    status, _, err = show(tmp_path / "nope.yaml", broken)
    assert status == 1
    assert f"{tmp_path / 'nope.yaml'}: no such file or directory" in err
    assert f"{broken}:6: " in err


def test_folders_are_searched_for_yaml(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.yaml").write_bytes(SEED.read_bytes())
    (tmp_path / "a" / "notes.txt").write_text("not a cassette")
    status, output, _ = show(tmp_path)
    assert status == 0
    assert output.count("── interaction 0") == 1
    assert "deep.yaml" in output


# ---- the framings ----------------------------------------------------------------------------


def test_sse_framing_rules() -> None:
    body = b": comment\r\nevent: a\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\ndata:2\rdata: 3"
    events = sse_events(body)
    assert [(e.event, e.data) for e in events] == [("a", '{"x":\n1}'), ("", "2\n3")]


def _frame(headers: bytes, payload: bytes) -> bytes:
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def test_event_stream_headers_and_crc() -> None:
    header = b"\x0b:event-type\x07\x00\x05chunk" + b"\x04flag\x00" + b"\x03num\x04\x00\x00\x01\x00"
    body = _frame(header, b'{"a":1}') + _frame(b"", b"second")
    messages = list(decode_event_stream(body))
    assert messages[0].headers == {":event-type": "chunk", "flag": True, "num": 256}
    assert [m.payload for m in messages] == [b'{"a":1}', b"second"]
    broken = bytearray(body)
    broken[-3] ^= 0xFF
    with pytest.raises(EventStreamError, match="message CRC"):
        list(decode_event_stream(bytes(broken)))


def test_converse_stream_events(tmp_path: Path) -> None:
    def event(kind: str, payload: dict) -> bytes:
        name = b":event-type"
        header = bytes([len(name)]) + name + b"\x07" + struct.pack(">H", len(kind)) + kind.encode()
        return _frame(header, json.dumps(payload).encode())

    def tool_input(text: str) -> dict:
        return {"toolUse": {"input": text}}

    body = b"".join([
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Ol"}}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "á"}}),
        event("contentBlockStart", {"contentBlockIndex": 1,
                                    "start": {"toolUse": {"name": "weather", "toolUseId": "t1"}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": tool_input('{"a"')}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": tool_input(":1}")}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 5}}),
    ])
    response = Response(body=body, headers={"Content-Type": ["application/vnd.amazon.eventstream"]})
    answer = reassemble(response)
    assert answer is not None
    assert [(b.kind, b.name, b.text) for b in answer.blocks] == [
        ("text", "", "Olá"), ("tool_call", "weather", '{"a":1}')
    ]
    assert answer.stop_reason == "tool_use"
    assert answer.usage == {"inputTokens": 3, "outputTokens": 5}


def test_broken_event_stream_keeps_what_decoded(corpus_dir: Path) -> None:
    folder = corpus_dir / "fantasy/TestBedrockCommon/bedrock-anthropic-claude-haiku-4-5"
    path = folder / "simple_streaming.yaml"
    response = load(path).interactions[0].response
    response.body = response.body[:-10]
    answer = reassemble(response)
    assert answer is not None
    assert any("event stream broken" in problem for problem in answer.problems)
    assert answer.blocks and answer.blocks[0].text


def test_request_summary_of_each_dialect() -> None:
    gemini = Request(
        method="POST",
        url="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        body=json.dumps({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
            ],
        }).encode(),
    )
    prompt = summarize_request(gemini)
    assert prompt is not None
    assert prompt.model == "gemini-2.5-flash" and prompt.stream
    assert [m.role for m in prompt.messages] == ["system", "user", "assistant", "tool"]
    responses = Request(body=json.dumps({
        "model": "gpt-5", "instructions": "sys", "input": "hello", "stream": True,
        "tools": [{"type": "function", "name": "weather"}],
    }).encode())
    prompt = summarize_request(responses)
    assert prompt is not None
    assert [(m.role, m.blocks[0].text) for m in prompt.messages] == [
        ("system", "sys"), ("user", "hello")
    ]
    assert prompt.tools == ["weather"]
    assert summarize_request(Request(body=b"not json")) is None


# ---- robustness: any JSON shape, never a crash ---------------------------------------------

_KEYS = st.sampled_from([
    "type", "choices", "delta", "message", "content", "tool_calls", "function", "arguments",
    "index", "candidates", "parts", "text", "functionCall", "usage", "usageMetadata",
    "content_block", "output", "item", "response", "error", "messages", "input", "role",
    "system", "contents", "systemInstruction", "tools", "model", "stream", "object", "summary",
    "output_index", "thought", "toolUse", "reasoningContent", "stopReason", "name", "args",
])
_STRINGS = st.sampled_from([
    "response.output_text.delta", "response.output_item.added", "response.completed",
    "response.output_item.done", "content_block_start", "content_block_delta", "message_start",
    "message_delta", "text_delta", "input_json_delta", "function_call", "tool_use", "text",
    "message", "response", "chat.completion.chunk", "user", "tool", "", "x",
]) | st.text(max_size=5)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | _STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=st.lists(_JSON, min_size=1, max_size=4))
def test_any_json_shape_is_shown_without_a_crash(documents: list[object]) -> None:
    single = json.dumps(documents[0]).encode()
    sse = b"".join(b"data: " + json.dumps(d).encode() + b"\n\n" for d in documents)
    request = Request(method="POST", url="https://example.com/v1/models/m:generateContent",
                      body=single, content_length=len(single))
    for body, kind in ((single, "application/json"), (sse, "text/event-stream")):
        response = Response(body=body, headers={"Content-Type": [kind]})
        reassemble(response)
        summarize_request(request)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fuzz.yaml"
            path.write_bytes(dumps(Cassette([Interaction(request, response)])))
            status, _, err = show(path, raw=True)
        assert (status, err) == (0, "")
