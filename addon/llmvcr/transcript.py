"""`llm-vcr show`: a cassette as a reviewer wants to read it.

Per interaction: method, URL, status, timing (go-vcr's `duration` and the stream's first and last
chunk from the `chunks` key), the request's messages by role, and the answer reassembled from the
stored body: text, reasoning, tool calls with their arguments, token usage.

The body formats known (recognised by their shape, so Azure, OpenRouter and the OpenAI-compatible
hosts need no entry of their own): OpenAI chat completions and the OpenAI responses API (JSON and
SSE), Anthropic messages (JSON and SSE, also inside Bedrock and Vertex), Gemini `generateContent`
(JSON, a JSON array, or SSE with `\\r\\n` framing), Bedrock's binary event stream
(`application/vnd.amazon.eventstream`: invoke-with-response-stream and Converse stream) and
Bedrock Converse JSON. Any other body is shown as text, or by its size when it is binary.

Text, reasoning and tool arguments are printed exactly as the stream spells them (no indentation,
no re-wrapping), so what a reviewer copies out of the output is what the model sent.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import unquote

from .cassette import CassetteError, CassetteWarning, Interaction, Request, Response, load
from .paths import cassette_files

# ---- framing: server-sent events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: its `event:` name ("" when none) and its joined `data:` lines."""

    event: str
    data: str


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_sse(body: bytes | str) -> list[SseEvent]:
    """The events of a `text/event-stream` body, by the WHATWG rules.

    Lines end in CRLF, LF or CR (Gemini sends CRLF); the `data:` lines of one event are joined with
    `\\n`; a blank line ends an event; comment lines (`:`) and other fields are skipped. An event
    left open at the end of the body still counts (a recording cut short keeps its last event).
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    events: list[SseEvent] = []
    name = ""
    data: list[str] | None = None
    for line in _LINE_BREAK.split(text):
        if not line:
            if data is not None:
                events.append(SseEvent(name, "\n".join(data)))
            name, data = "", None
            continue
        field_name, colon, value = line.partition(":")
        if not colon or not field_name:
            continue  # a comment line (": keep-alive") or a field without a value
        if value.startswith(" "):
            value = value[1:]
        if field_name == "data":
            data = [*(data or []), value]
        elif field_name == "event":
            name = value
    if data is not None:
        events.append(SseEvent(name, "\n".join(data)))
    return events


# ---- framing: the AWS event stream -----------------------------------------------------------


class EventStreamError(ValueError):
    """An `application/vnd.amazon.eventstream` body whose framing is broken at `offset`."""

    def __init__(self, message: str, offset: int) -> None:
        self.offset = offset
        super().__init__(f"byte {offset}: {message}")


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One message of an AWS event stream: its headers (`:event-type` ...) and its payload."""

    headers: dict[str, object]
    payload: bytes


_PRELUDE = struct.Struct(">III")  # total length, headers length, prelude CRC
_MESSAGE_OVERHEAD = _PRELUDE.size + 4  # the prelude and the message CRC
# Header value types: fixed-size ones (struct format) and length-prefixed ones (bytes, string).
_FIXED_HEADER_VALUES: dict[int, str] = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
_UUID_HEADER = 9


def iter_event_stream(body: bytes) -> Iterator[EventStreamMessage]:
    """The messages of an AWS event stream, checking both CRCs of each.

    Framing: total length (4 bytes), headers length (4), CRC32 of those 8 bytes (4), the headers,
    the payload, CRC32 of everything before it (4). Raises EventStreamError at the first broken
    message, after yielding the good ones before it.
    """
    offset = 0
    while offset < len(body):
        if len(body) - offset < _MESSAGE_OVERHEAD:
            raise EventStreamError("truncated prelude", offset)
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(body, offset)
        if zlib.crc32(body[offset : offset + 8]) != prelude_crc:
            raise EventStreamError("prelude CRC does not match", offset)
        if total < _MESSAGE_OVERHEAD + headers_length or offset + total > len(body):
            raise EventStreamError(f"bad message length {total}", offset)
        end = offset + total
        (message_crc,) = struct.unpack_from(">I", body, end - 4)
        if zlib.crc32(body[offset : end - 4]) != message_crc:
            raise EventStreamError("message CRC does not match", offset)
        headers_start = offset + _PRELUDE.size
        payload_start = headers_start + headers_length
        headers = _event_stream_headers(body[headers_start:payload_start], headers_start)
        yield EventStreamMessage(headers, body[payload_start : end - 4])
        offset = end


def _event_stream_headers(data: bytes, base: int) -> dict[str, object]:
    headers: dict[str, object] = {}
    i = 0
    try:
        while i < len(data):
            name_length = data[i]
            name = data[i + 1 : i + 1 + name_length].decode("utf-8", errors="replace")
            i += 1 + name_length
            kind = data[i]
            i += 1
            value: object
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED_HEADER_VALUES:
                fmt = _FIXED_HEADER_VALUES[kind]
                (value,) = struct.unpack_from(fmt, data, i)
                i += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, i)
                raw = data[i + 2 : i + 2 + length]
                value = raw.decode("utf-8", errors="replace") if kind == 7 else raw
                i += 2 + length
            elif kind == _UUID_HEADER:
                value = data[i : i + 16].hex()
                i += 16
            else:
                raise EventStreamError(f"unknown header value type {kind}", base + i - 1)
            headers[name] = value
    except (IndexError, struct.error):
        raise EventStreamError("truncated header", base + i) from None
    return headers


# ---- the answer ------------------------------------------------------------------------------


@dataclass(slots=True)
class Block:
    """One piece of a message or an answer.

    kind: "text", "reasoning", "refusal", "tool_call" (`name`, `call_id`, `text` = the arguments
    as sent), "tool_result" (`call_id`, `name`, `text`), "error", or "other" (`name` says what:
    an image, a built-in tool's result ...).
    """

    kind: str
    text: str = ""
    name: str = ""
    call_id: str = ""
    choice: int = 0  # the choice/candidate index when an answer has several


@dataclass(slots=True)
class Answer:
    """What the response said, reassembled."""

    api: str = ""  # "OpenAI chat completions", "Anthropic messages", ...
    framing: str = "JSON"  # "JSON", "SSE", "event stream"
    events: int = 0  # events or messages in a stream
    model: str = ""
    stop_reason: str = ""
    blocks: list[Block] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # e.g. a data line that is not JSON


class _AnswerBuilder:
    """Collects blocks by key, in the order they first appear, so deltas append in place."""

    def __init__(self) -> None:
        self.answer = Answer()
        self._blocks: dict[tuple[object, ...], Block] = {}

    def set_api(self, api: str) -> None:
        if not self.answer.api:
            self.answer.api = api

    def block(self, key: tuple[object, ...], kind: str, choice: int = 0) -> Block:
        found = self._blocks.get(key)
        if found is None:
            found = Block(kind, choice=choice)
            self._blocks[key] = found
            self.answer.blocks.append(found)
        return found

    def append(self, key: tuple[object, ...], kind: str, text: object, choice: int = 0) -> None:
        """Add streamed text to a block; empty and non-string deltas make no block."""
        if isinstance(text, str) and text:
            self.block(key, kind, choice).text += text

    def new_block(self, kind: str, text: str = "", name: str = "", call_id: str = "") -> Block:
        block = Block(kind, text, name, call_id)
        self.answer.blocks.append(block)
        return block

    def usage(self, value: object, prefix: str = "") -> None:
        """Merge a usage object: later values win (streams send running totals)."""
        if isinstance(value, dict):
            self.answer.usage.update(_flat_counts(value, prefix))

    def stop(self, reason: object) -> None:
        if isinstance(reason, str) and reason:
            self.answer.stop_reason = reason

    def model(self, model: object) -> None:
        if isinstance(model, str) and model:
            self.answer.model = model


def _flat_counts(value: dict[str, object], prefix: str = "") -> dict[str, int]:
    """The integer fields of a usage object, nested ones as `a.b` (zero nested details left out)."""
    result: dict[str, int] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if item or not prefix:
                result[name] = item
        elif isinstance(item, dict):
            result.update(_flat_counts(item, f"{name}."))
    return result


def _json_text(value: object) -> str:
    """A tool's input object as compact JSON (for blocks that carry a parsed object, not text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


# OpenAI chat completions (also Azure, OpenRouter, xAI, Groq ... all speak it).


def _openai_chat(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    b.set_api("OpenAI chat completions")
    b.model(obj.get("model"))
    for raw_choice in _list(obj.get("choices")):
        choice = _dict(raw_choice)
        index = _int(choice.get("index"))
        part = choice.get("delta")
        if not isinstance(part, dict):
            part = _dict(choice.get("message"))
        reasoning = part.get("reasoning_content") or part.get("reasoning")
        b.append(("reasoning", index), "reasoning", reasoning, index)
        b.append(("text", index), "text", part.get("content"), index)
        b.append(("refusal", index), "refusal", part.get("refusal"), index)
        for position, raw_call in enumerate(_list(part.get("tool_calls"))):
            call = _dict(raw_call)
            function = _dict(call.get("function"))
            block = b.block(("tool", index, _int(call.get("index"), position)), "tool_call", index)
            block.call_id = block.call_id or _str(call.get("id"))
            block.name = block.name or _str(function.get("name"))
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                block.text += arguments
        b.stop(choice.get("finish_reason"))
    b.usage(obj.get("usage"))


# OpenAI responses API (also Azure).


_RESPONSES_ARGUMENT_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)


def _responses_event(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    b.set_api("OpenAI responses")
    kind = _str(obj.get("type"))
    output = _int(obj.get("output_index"))
    if kind == "response.output_text.delta":
        b.append(("text", output, _int(obj.get("content_index"))), "text", obj.get("delta"))
    elif kind == "response.refusal.delta":
        b.append(("refusal", output), "refusal", obj.get("delta"))
    elif kind == "response.reasoning_summary_text.delta":
        key = ("reasoning", output, _int(obj.get("summary_index")))
        b.append(key, "reasoning", obj.get("delta"))
    elif kind == "response.reasoning_text.delta":
        b.append(("reasoning_text", output), "reasoning", obj.get("delta"))
    elif kind == "response.output_item.added":
        item = _dict(obj.get("item"))
        if item.get("type") in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            block.name = _str(item.get("name"))
            block.call_id = _str(item.get("call_id"))
    elif kind in _RESPONSES_ARGUMENT_DELTAS:
        b.append(("tool", output), "tool_call", obj.get("delta"))
    elif kind == "response.output_item.done":
        item = _dict(obj.get("item"))
        if item.get("type") in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            if not block.text:  # no deltas came: the finished item has the whole text
                block.text = _str(item.get("arguments") or item.get("input"))
        elif item.get("type") not in ("message", "reasoning", None):
            _responses_builtin_call(b, ("builtin", output), item)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = _dict(obj.get("response"))
        if not b.answer.blocks:  # a stream without deltas: the final object has the output
            _responses_output(b, response)
        b.model(response.get("model"))
        b.usage(response.get("usage"))
        details = _dict(response.get("incomplete_details"))
        b.stop(details.get("reason") or response.get("status"))
        error = _dict(response.get("error"))
        if error:
            b.new_block("error", _str(error.get("message")), _str(error.get("code")))
    elif kind == "response.created":
        b.model(_dict(obj.get("response")).get("model"))
    elif kind == "error":
        b.new_block("error", _str(obj.get("message")), _str(obj.get("code")))


def _responses_builtin_call(b: _AnswerBuilder, key: tuple[object, ...], item: dict) -> None:
    """A built-in tool's call (web search, file search ...): its type and what it was asked."""
    block = b.block(key, "tool_call")
    block.name = _str(item.get("type"))
    block.call_id = _str(item.get("id"))
    action = item.get("action") or item.get("queries")
    if action:
        block.text = _json_text(action)


def _responses_output(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    """The `output` items of a finished responses-API object."""
    b.set_api("OpenAI responses")
    b.model(obj.get("model"))
    for output, raw_item in enumerate(_list(obj.get("output"))):
        item = _dict(raw_item)
        kind = item.get("type")
        if kind == "message":
            for content_index, raw_part in enumerate(_list(item.get("content"))):
                part = _dict(raw_part)
                if part.get("type") == "refusal":
                    b.append(("refusal", output), "refusal", part.get("refusal"))
                else:
                    b.append(("text", output, content_index), "text", part.get("text"))
        elif kind == "reasoning":
            for summary_index, raw_part in enumerate(_list(item.get("summary"))):
                key = ("reasoning", output, summary_index)
                b.append(key, "reasoning", _dict(raw_part).get("text"))
            for raw_part in _list(item.get("content")):
                b.append(("reasoning_text", output), "reasoning", _dict(raw_part).get("text"))
        elif kind in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            block.name = _str(item.get("name"))
            block.call_id = _str(item.get("call_id"))
            block.text = _str(item.get("arguments") or item.get("input"))
        elif kind is not None:
            _responses_builtin_call(b, ("builtin", output), item)
    b.usage(obj.get("usage"))
    b.stop(_dict(obj.get("incomplete_details")).get("reason") or obj.get("status"))
    error = _dict(obj.get("error"))
    if error:
        b.new_block("error", _str(error.get("message")), _str(error.get("code")))


# Anthropic messages (also inside Bedrock invoke and Vertex rawPredict).

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)
_ANTHROPIC_DELTA_FIELDS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "reasoning"),
    "input_json_delta": ("partial_json", "tool_call"),
}


def _anthropic_block(b: _AnswerBuilder, key: tuple[object, ...], content: dict) -> None:
    """A content block (streamed start or a finished message's entry)."""
    kind = content.get("type")
    if kind == "text":
        b.append(key, "text", content.get("text"))
    elif kind == "thinking":
        b.append(key, "reasoning", content.get("thinking"))
    elif kind == "redacted_thinking":
        b.block(key, "other").name = "redacted thinking"
    elif kind in ("tool_use", "server_tool_use"):
        block = b.block(key, "tool_call")
        block.name = _str(content.get("name"))
        block.call_id = _str(content.get("id"))
        tool_input = content.get("input")
        if tool_input:  # a stream starts with {} and sends the input as input_json_delta
            block.text = _json_text(tool_input)
    elif isinstance(kind, str):
        block = b.block(key, "other")
        block.name = kind
        block.call_id = _str(content.get("tool_use_id"))


def _anthropic_event(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    b.set_api("Anthropic messages")
    kind = obj.get("type")
    key = ("block", _int(obj.get("index")))
    if kind == "message_start":
        message = _dict(obj.get("message"))
        b.model(message.get("model"))
        b.usage(message.get("usage"))
    elif kind == "content_block_start":
        _anthropic_block(b, key, _dict(obj.get("content_block")))
    elif kind == "content_block_delta":
        delta = _dict(obj.get("delta"))
        found = _ANTHROPIC_DELTA_FIELDS.get(_str(delta.get("type")))
        if found:
            b.append(key, found[1], delta.get(found[0]))
    elif kind == "message_delta":
        b.stop(_dict(obj.get("delta")).get("stop_reason"))
        b.usage(obj.get("usage"))


def _anthropic_message(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    b.set_api("Anthropic messages")
    b.model(obj.get("model"))
    for index, content in enumerate(_list(obj.get("content"))):
        _anthropic_block(b, ("block", index), _dict(content))
    b.stop(obj.get("stop_reason"))
    b.usage(obj.get("usage"))


# Gemini generateContent / streamGenerateContent (also Vertex AI).


class _GeminiState:
    """Which text block a Gemini part continues: a function call between two texts splits them."""

    def __init__(self) -> None:
        self.segment: dict[int, int] = {}


def _gemini(b: _AnswerBuilder, obj: dict[str, object], state: _GeminiState) -> None:
    b.set_api("Gemini generateContent")
    b.model(obj.get("modelVersion"))
    for raw_candidate in _list(obj.get("candidates")):
        candidate = _dict(raw_candidate)
        index = _int(candidate.get("index"))
        for raw_part in _list(_dict(candidate.get("content")).get("parts")):
            part = _dict(raw_part)
            segment = state.segment.get(index, 0)
            if "text" in part:
                kind = "reasoning" if part.get("thought") is True else "text"
                b.append((kind, index, segment), kind, part.get("text"), index)
            elif "functionCall" in part:
                call = _dict(part.get("functionCall"))
                block = b.new_block("tool_call", _json_text(call.get("args", {})))
                block.name = _str(call.get("name"))
                block.call_id = _str(call.get("id"))
                block.choice = index
                state.segment[index] = segment + 1
            elif part:
                name = next((k for k in part if k not in ("thought", "thoughtSignature")), "")
                if name:
                    b.new_block("other", name=name).choice = index
                    state.segment[index] = segment + 1
        b.stop(candidate.get("finishReason"))
    b.usage(obj.get("usageMetadata"))
    feedback = _dict(obj.get("promptFeedback"))
    if feedback.get("blockReason"):
        b.stop(feedback.get("blockReason"))


# Bedrock Converse (JSON and the event stream's events).


def _converse_message(b: _AnswerBuilder, obj: dict[str, object]) -> None:
    b.set_api("Bedrock Converse")
    message = _dict(_dict(obj.get("output")).get("message"))
    for index, raw_content in enumerate(_list(message.get("content"))):
        _converse_block(b, ("block", index), _dict(raw_content))
    b.stop(obj.get("stopReason"))
    b.usage(obj.get("usage"))


def _converse_block(b: _AnswerBuilder, key: tuple[object, ...], content: dict) -> None:
    if "text" in content:
        b.append(key, "text", content.get("text"))
    elif "toolUse" in content:
        tool = _dict(content.get("toolUse"))
        block = b.block(key, "tool_call")
        block.name = _str(tool.get("name"))
        block.call_id = _str(tool.get("toolUseId"))
        tool_input = tool.get("input")
        block.text = tool_input if isinstance(tool_input, str) else _json_text(tool_input)
    elif "reasoningContent" in content:
        reasoning = _dict(content.get("reasoningContent"))
        text = _dict(reasoning.get("reasoningText")).get("text", reasoning.get("text"))
        b.append(key, "reasoning", text)


def _converse_event(b: _AnswerBuilder, event_type: str, obj: dict[str, object]) -> None:
    b.set_api("Bedrock Converse")
    key = ("block", _int(obj.get("contentBlockIndex")))
    if event_type == "contentBlockStart":
        tool = _dict(_dict(obj.get("start")).get("toolUse"))
        if tool:
            block = b.block(key, "tool_call")
            block.name = _str(tool.get("name"))
            block.call_id = _str(tool.get("toolUseId"))
    elif event_type == "contentBlockDelta":
        delta = _dict(obj.get("delta"))
        if "text" in delta:
            b.append(key, "text", delta.get("text"))
        elif "toolUse" in delta:
            b.append(key, "tool_call", _dict(delta.get("toolUse")).get("input"))
        elif "reasoningContent" in delta:
            b.append(key, "reasoning", _dict(delta.get("reasoningContent")).get("text"))
    elif event_type == "messageStop":
        b.stop(obj.get("stopReason"))
    elif event_type == "metadata":
        b.usage(obj.get("usage"))


# Dispatch by shape.


def _error_block(b: _AnswerBuilder, error: object) -> None:
    if isinstance(error, dict):
        message = _str(error.get("message")) or _json_text(error)
        code = error.get("type") or error.get("code") or error.get("status") or ""
        b.new_block("error", message, str(code))
    else:
        b.new_block("error", str(error))


def _feed(b: _AnswerBuilder, obj: object, gemini: _GeminiState) -> bool:
    """Route one JSON document (a whole body or one event) by its shape; False if unknown."""
    if isinstance(obj, list):  # Gemini's non-SSE stream: a JSON array of chunks
        results = [_feed(b, item, gemini) for item in obj]
        return any(results)
    if not isinstance(obj, dict):
        return False
    kind = _str(obj.get("type"))
    if kind.startswith("response."):
        _responses_event(b, obj)
    elif kind in _ANTHROPIC_EVENTS:
        _anthropic_event(b, obj)
    elif kind == "message" and "content" in obj:
        _anthropic_message(b, obj)
    elif obj.get("object") == "response":
        _responses_output(b, obj)
    elif "choices" in obj:
        _openai_chat(b, obj)
    elif "candidates" in obj or "usageMetadata" in obj or "promptFeedback" in obj:
        _gemini(b, obj, gemini)
    elif "output" in obj and "stopReason" in obj:
        _converse_message(b, obj)
    elif "error" in obj:
        _error_block(b, obj["error"])
    elif kind == "error":  # the responses API's stream error event
        _error_block(b, obj)
    else:
        return False
    return True


def _json_or_none(text: str | bytes) -> object | None:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _header(headers: dict[str, list[str]], name: str) -> str:
    lowered = name.lower()
    for key, values in headers.items():
        if key.lower() == lowered and values:
            return values[0]
    return ""


def content_type(headers: dict[str, list[str]]) -> str:
    """The media type of a `Content-Type` header, lower case, without parameters."""
    return _header(headers, "Content-Type").split(";")[0].strip().lower()


_EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


def _looks_like_sse(body: bytes) -> bool:
    head = body.lstrip()[:16]
    return head.startswith((b"data:", b"event:", b"id:", b":"))


def reassemble(response: Response) -> Answer | None:
    """The answer the response body holds, or None when the body is no known LLM format."""
    b = _AnswerBuilder()
    gemini = _GeminiState()
    body = response.body
    media_type = content_type(response.headers)
    if media_type == _EVENT_STREAM_TYPE:
        b.answer.framing = "event stream"
        _feed_event_stream(b, body, gemini)
        return b.answer if b.answer.api or b.answer.problems else None
    if media_type == "text/event-stream" or _looks_like_sse(body):
        b.answer.framing = "SSE"
        events = parse_sse(body)
        b.answer.events = len(events)
        for event in events:
            if event.data.strip() in ("", "[DONE]"):
                continue
            obj = _json_or_none(event.data)
            if obj is None:
                b.answer.problems.append(f"event {event.event or 'data'} is not JSON")
            elif not _feed(b, obj, gemini):
                b.answer.problems.append(f"event {event.event or 'data'} of an unknown shape")
        return b.answer if b.answer.api else None
    obj = _json_or_none(body)
    if obj is None or not _feed(b, obj, gemini):
        return None
    return b.answer


def _feed_event_stream(b: _AnswerBuilder, body: bytes, gemini: _GeminiState) -> None:
    """Bedrock's stream: invoke-with-response-stream wraps each provider event in base64 `bytes`;
    Converse names its events in the `:event-type` header."""
    try:
        for message in iter_event_stream(body):
            b.answer.events += 1
            event_type = _str(message.headers.get(":event-type"))
            obj = _json_or_none(message.payload)
            if message.headers.get(":message-type") in ("exception", "error"):
                error_type = message.headers.get(":exception-type") or message.headers.get(
                    ":error-code"
                )
                text = _str(_dict(obj).get("message")) or message.payload.decode("utf-8", "replace")
                b.new_block("error", text, _str(error_type))
                b.set_api("Bedrock")
                continue
            payload = _dict(obj)
            wrapped = payload.get("bytes")
            if isinstance(wrapped, str):
                try:
                    inner = _json_or_none(base64.b64decode(wrapped, validate=True))
                except binascii.Error:
                    inner = None
                if inner is None or not _feed(b, inner, gemini):
                    b.answer.problems.append(f"event {event_type}: unknown payload")
            elif event_type and payload is obj:
                _converse_event(b, event_type, payload)
            else:
                b.answer.problems.append(f"event {event_type or '?'}: payload is not JSON")
    except EventStreamError as e:
        b.answer.problems.append(f"event stream broken at {e}")


# ---- the request -----------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """One message of the request's conversation: "system", "user", "assistant", "tool" ..."""

    role: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(slots=True)
class Prompt:
    """What the request asked."""

    model: str = ""
    stream: bool = False
    tools: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


_MODEL_IN_PATH = re.compile(r"/models?/([^/:?]+)")
_STREAMING_PATHS = (
    ":streamGenerateContent",
    ":streamRawPredict",
    "/invoke-with-response-stream",
    "/converse-stream",
)
_ROLE_NAMES = {"model": "assistant", "function": "tool"}


def _content_blocks(content: object) -> list[Block]:
    """The blocks of one message's content in any of the dialects."""
    if isinstance(content, str):
        return [Block("text", content)] if content else []
    blocks: list[Block] = []
    for raw_part in _list(content):
        if isinstance(raw_part, str):
            blocks.append(Block("text", raw_part))
            continue
        part = _dict(raw_part)
        kind = _str(part.get("type"))
        if kind in ("text", "input_text", "output_text") or (not kind and "text" in part):
            kind_of_text = "reasoning" if part.get("thought") is True else "text"
            blocks.append(Block(kind_of_text, _str(part.get("text"))))
        elif kind == "thinking":
            blocks.append(Block("reasoning", _str(part.get("thinking"))))
        elif kind in ("tool_use", "server_tool_use"):
            blocks.append(
                Block("tool_call", _json_text(part.get("input", {})), _str(part.get("name")),
                      _str(part.get("id")))
            )
        elif kind == "tool_result":
            inner = part.get("content")
            text = inner if isinstance(inner, str) else _joined_text(_content_blocks(inner))
            blocks.append(Block("tool_result", text, call_id=_str(part.get("tool_use_id"))))
        elif "functionCall" in part:
            call = _dict(part["functionCall"])
            blocks.append(
                Block("tool_call", _json_text(call.get("args", {})), _str(call.get("name")),
                      _str(call.get("id")))
            )
        elif "functionResponse" in part:
            result = _dict(part["functionResponse"])
            blocks.append(
                Block("tool_result", _json_text(result.get("response", {})),
                      _str(result.get("name")), _str(result.get("id")))
            )
        elif "toolUse" in part:
            tool = _dict(part["toolUse"])
            blocks.append(
                Block("tool_call", _json_text(tool.get("input", {})), _str(tool.get("name")),
                      _str(tool.get("toolUseId")))
            )
        elif "toolResult" in part:
            result = _dict(part["toolResult"])
            text = _joined_text(_content_blocks(result.get("content")))
            blocks.append(Block("tool_result", text, call_id=_str(result.get("toolUseId"))))
        elif not kind and "json" in part:
            blocks.append(Block("text", _json_text(part["json"])))
        else:
            blocks.append(Block("other", name=kind or next(iter(part), "part")))
    return blocks


def _joined_text(blocks: list[Block]) -> str:
    return "\n".join(block.text or f"[{block.name}]" for block in blocks)


def _add_message(prompt: Prompt, role: str, blocks: list[Block]) -> None:
    """Tool results travel inside user messages (Anthropic, Gemini, Converse): show them as the
    "tool" messages they are."""
    role = _ROLE_NAMES.get(role, role)
    for block in blocks:
        block_role = "tool" if block.kind == "tool_result" else role
        if prompt.messages and prompt.messages[-1].role == block_role and block_role != "tool":
            prompt.messages[-1].blocks.append(block)
        else:
            prompt.messages.append(Message(block_role, [block]))


def _tool_names(obj: dict[str, object]) -> list[str]:
    tools = _list(obj.get("tools")) or _list(_dict(obj.get("toolConfig")).get("tools"))
    names: list[str] = []
    for raw_tool in tools:
        tool = _dict(raw_tool)
        declarations = _list(tool.get("functionDeclarations"))
        if declarations:
            names.extend(_str(_dict(d).get("name")) for d in declarations)
            continue
        name = (
            tool.get("name")
            or _dict(tool.get("function")).get("name")
            or _dict(tool.get("toolSpec")).get("name")
            or tool.get("type")
            or next(iter(tool), "")
        )
        names.append(_str(name))
    return [name for name in names if name]


def summarize_request(request: Request) -> Prompt | None:
    """The conversation a request sends, or None when its body is no known LLM request."""
    obj = _json_or_none(request.body) if request.body else None
    if not isinstance(obj, dict):
        return None
    prompt = Prompt()
    found = _MODEL_IN_PATH.search(request.url.split("?")[0])
    prompt.model = _str(obj.get("model")) or (unquote(found.group(1)) if found else "")
    prompt.stream = obj.get("stream") is True or any(p in request.url for p in _STREAMING_PATHS)
    prompt.tools = _tool_names(obj)

    system = obj.get("system") or obj.get("instructions")
    if isinstance(system, str | list):
        _add_message(prompt, "system", _content_blocks(system))
    instruction = _dict(obj.get("systemInstruction") or obj.get("system_instruction"))
    if instruction:
        _add_message(prompt, "system", _content_blocks(instruction.get("parts")))

    for raw_message in _list(obj.get("messages")) or _list(obj.get("contents")):
        message = _dict(raw_message)
        role = _str(message.get("role")) or "user"
        blocks = _content_blocks(message.get("content", message.get("parts")))
        for raw_call in _list(message.get("tool_calls")):
            call = _dict(raw_call)
            function = _dict(call.get("function"))
            blocks.append(Block("tool_call", _str(function.get("arguments")),
                                _str(function.get("name")), _str(call.get("id"))))
        if role == "tool":
            for block in blocks:
                block.kind = "tool_result"
                block.call_id = _str(message.get("tool_call_id"))
        _add_message(prompt, role, blocks)

    items = obj.get("input")
    if isinstance(items, str):
        _add_message(prompt, "user", [Block("text", items)])
    for raw_item in _list(items):
        item = _dict(raw_item)
        kind = item.get("type")
        if "role" in item and kind in (None, "message"):
            _add_message(prompt, _str(item["role"]), _content_blocks(item.get("content")))
        elif kind == "function_call":
            block = Block("tool_call", _str(item.get("arguments")), _str(item.get("name")),
                          _str(item.get("call_id")))
            _add_message(prompt, "assistant", [block])
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _joined_text(_content_blocks(output))
            _add_message(prompt, "tool", [Block("tool_result", text,
                                                call_id=_str(item.get("call_id")))])
        elif kind == "reasoning":
            summary = "\n".join(_str(_dict(s).get("text")) for s in _list(item.get("summary")))
            _add_message(prompt, "assistant", [Block("reasoning", summary)])
        elif isinstance(kind, str):
            _add_message(prompt, "assistant", [Block("other", name=kind)])
    if not prompt.messages and not prompt.model:
        return None
    return prompt


# ---- rendering -------------------------------------------------------------------------------


class _Paint:
    """ANSI colours, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def heading(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def label(self, text: str) -> str:
        return self._wrap("36", text)

    def tool(self, text: str) -> str:
        return self._wrap("33", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def format_seconds(ns: int) -> str:
    """A duration for people: `2.196s`, `853ms`, `42µs`."""
    if abs(ns) >= 1_000_000_000:
        return f"{ns / 1e9:.3f}s"
    if abs(ns) >= 1_000_000:
        return f"{ns / 1e6:.0f}ms"
    return f"{ns / 1e3:.0f}µs"


def format_size(size: int) -> str:
    """A byte count for people: `512 bytes`, `12.3 KiB`."""
    if size < 1024:
        return _count(size, "byte")
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def timing_line(response: Response) -> str:
    """`duration` (go-vcr's: request sent to response headers) and the stream's chunk timing."""
    parts = [f"headers after {format_seconds(response.duration)}"]
    chunks = response.chunks
    if chunks:
        first, last = chunks[0].at, chunks[-1].at
        parts.append(
            f"stream: first byte {format_seconds(first)}, total {format_seconds(last)}, "
            f"{_count(len(chunks), 'chunk')}"
        )
    return " · ".join(parts)


_TEXT_PREVIEW = 2000  # characters of an unknown text body shown without --raw


def _decoded(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _Writer:
    def __init__(self, out: TextIO, paint: _Paint, raw: bool) -> None:
        self.out = out
        self.paint = paint
        self.raw = raw

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def verbatim(self, text: str) -> None:
        """Text exactly as sent, ending with a line break."""
        self.out.write(text if text.endswith("\n") else text + "\n")

    def interaction(self, interaction: Interaction) -> None:
        req, resp = interaction.request, interaction.response
        p = self.paint
        self.line(p.heading(f"── interaction {interaction.id} " + "─" * 40))
        self.line(f"{p.heading(req.method)} {req.url}")
        status = resp.status if resp.code < 400 else p.bad(resp.status)
        self.line(f"{status} · {resp.proto} · {timing_line(resp)} · {format_size(len(resp.body))}")
        self.request(req)
        self.response(resp)
        if self.raw:
            self.raw_bodies(req, resp)
        self.line()

    def request(self, req: Request) -> None:
        p = self.paint
        prompt = summarize_request(req)
        if prompt is None:
            self.line(p.dim(f"request body: {_describe_body(req.body, req.headers)}"))
            if req.body and not self.raw:
                self.body_preview(req.body)
            return
        facts = [f"model {prompt.model}" if prompt.model else "", "stream" if prompt.stream else ""]
        if prompt.tools:
            facts.append("tools: " + ", ".join(prompt.tools))
        self.line(p.heading("request") + p.dim(" · " + " · ".join(f for f in facts if f)))
        for message in prompt.messages:
            self.line(p.label(f"[{message.role}]"))
            for block in message.blocks:
                self.block(block)

    def response(self, resp: Response) -> None:
        p = self.paint
        answer = reassemble(resp)
        if answer is None:
            self.line(p.dim(f"response body: {_describe_body(resp.body, resp.headers)}"))
            if resp.body and not self.raw:
                self.body_preview(resp.body)
            return
        events = f", {_count(answer.events, 'event')}" if answer.events else ""
        facts = [answer.api, answer.framing + events]
        if answer.model:
            facts.append(f"model {answer.model}")
        if answer.stop_reason:
            facts.append(f"stop: {answer.stop_reason}")
        self.line(p.heading("answer") + p.dim(" · " + " · ".join(facts)))
        several = any(block.choice for block in answer.blocks)
        for block in _merged_text(answer.blocks):
            self.block(block, "assistant", f", choice {block.choice}" if several else "")
        if answer.usage:
            usage = " · ".join(f"{name} {count}" for name, count in answer.usage.items())
            self.line(p.dim(f"usage: {usage}"))
        for problem in answer.problems:
            self.line(p.bad(f"! {problem}"))

    def block(self, block: Block, text_label: str = "", suffix: str = "") -> None:
        """One block; a text block gets a `[text_label]` line only when given one (in a request
        the message's role line already says whose text it is)."""
        p = self.paint
        if block.kind == "text":
            if text_label:
                self.line(p.label(f"[{text_label}{suffix}]"))
            self.verbatim(block.text)
        elif block.kind in ("reasoning", "refusal"):
            self.line(p.label(f"[{block.kind}{suffix}]"))
            self.verbatim(block.text)
        elif block.kind == "tool_call":
            call_id = f" ({block.call_id})" if block.call_id else ""
            self.line(p.tool(f"[tool call{suffix}] {block.name}{call_id}"))
            if block.text:
                self.verbatim(block.text)
        elif block.kind == "tool_result":
            about = " ".join(filter(None, (block.name, block.call_id and f"({block.call_id})")))
            self.line(p.tool(f"[tool result{suffix}] {about}".rstrip()))
            if block.text:
                self.verbatim(block.text)
        elif block.kind == "error":
            code = f" {block.name}" if block.name else ""
            self.line(p.bad(f"[error{suffix}]{code}"))
            self.verbatim(block.text)
        else:
            self.line(p.dim(f"[{block.name}{suffix}]"))
            if block.text:
                self.verbatim(block.text)

    def body_preview(self, body: bytes) -> None:
        text = _decoded(body)
        if text is None:
            return
        if len(text) > _TEXT_PREVIEW:
            self.verbatim(text[:_TEXT_PREVIEW])
            self.line(self.paint.dim(f"… {len(text) - _TEXT_PREVIEW} more characters (--raw)"))
        else:
            self.verbatim(text)

    def raw_bodies(self, req: Request, resp: Response) -> None:
        for title, headers, body in (
            ("request", req.headers, req.body),
            ("response", resp.headers, resp.body),
        ):
            self.line(self.paint.heading(f"{title} headers (raw)"))
            for name, values in headers.items():
                for value in values:
                    self.line(f"{name}: {value}")
            self.line(self.paint.heading(f"{title} body (raw, {format_size(len(body))})"))
            if content_type(headers) == _EVENT_STREAM_TYPE:
                self.event_stream(body)
                continue
            text = _decoded(body)
            if text is None:
                self.line(self.paint.dim(f"<binary, {format_size(len(body))}>"))
            elif text:
                self.verbatim(text)

    def event_stream(self, body: bytes) -> None:
        try:
            for message in iter_event_stream(body):
                names = " ".join(f"{k}={v}" for k, v in message.headers.items())
                payload = _decoded(message.payload)
                shown = payload if payload is not None else f"<{len(message.payload)} bytes>"
                self.line(f"{self.paint.dim(names)} {shown}")
        except EventStreamError as e:
            self.line(self.paint.bad(f"! event stream broken at {e}"))


def _merged_text(blocks: list[Block]) -> list[Block]:
    """Consecutive text blocks of one choice as one: Anthropic splits an answer with citations
    into many text blocks that read as one text."""
    merged: list[Block] = []
    for block in blocks:
        last = merged[-1] if merged else None
        if last and block.kind == last.kind == "text" and block.choice == last.choice:
            merged[-1] = Block("text", last.text + block.text, choice=block.choice)
        else:
            merged.append(block)
    return merged


def _describe_body(body: bytes, headers: dict[str, list[str]]) -> str:
    if not body:
        return "empty"
    kind = content_type(headers) or "no content type"
    binary = "" if _decoded(body) is not None else "binary, "
    return f"{binary}{format_size(len(body))}, {kind}"


# ---- the command -----------------------------------------------------------------------------


def show_paths(
    paths: Sequence[str],
    raw: bool = False,
    out: TextIO = sys.stdout,
    color: bool | None = None,
    err: TextIO | None = None,
) -> int:
    """Print each cassette's interactions for a reviewer; 0, or 1 when a path is missing or a
    cassette does not load (those go to `err`, default stderr, as `llm-vcr: path:line: problem`).

    `color`: ANSI colours; None = only when `out` is a terminal.
    """
    err = err if err is not None else sys.stderr
    if color is None:
        isatty = getattr(out, "isatty", None)
        color = bool(isatty and isatty())
    writer = _Writer(out, _Paint(color), raw)
    files, missing = cassette_files(paths)
    status = 0
    for name in missing:
        err.write(f"llm-vcr: {name}: no such file or directory\n")
        status = 1
    for path in files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CassetteWarning)
            try:
                cassette = load(path)
            except CassetteError as e:
                err.write(f"llm-vcr: {e}\n")
                status = 1
                continue
        for warning in caught:
            err.write(f"llm-vcr: warning: {warning.message}\n")
        count = _count(len(cassette.interactions), "interaction")
        writer.line(writer.paint.heading(str(path)) + writer.paint.dim(f" · {count}"))
        for interaction in cassette.interactions:
            writer.interaction(interaction)
    return status
