"""Amazon Bedrock's answer formats, as the `AnswerBuilder` reads them.

- Converse JSON (`converse_message`): `output.message.content` blocks (text, `toolUse`,
  `reasoningContent`), `stopReason`, `usage`.
- The event stream (`feed_event_stream`, framing in `eventstream`): invoke-with-response-stream
  wraps each provider event (Anthropic's, ...) as base64 in a `bytes` field, handed to `feed`;
  Converse stream names its events in the `:event-type` header (`contentBlockStart`,
  `contentBlockDelta`, `messageStop`, `metadata`: `converse_event`). Exception messages become
  error blocks.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from .answer import AnswerBuilder, as_dict, as_int, as_list, as_str, json_or_none, json_text
from .eventstream import EventStreamError, decode_event_stream


def converse_message(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """A Converse answer (`output.message`, `stopReason`, `usage`)."""
    b.set_api("Bedrock Converse")
    message = as_dict(as_dict(obj.get("output")).get("message"))
    for index, raw_content in enumerate(as_list(message.get("content"))):
        _converse_block(b, ("block", index), as_dict(raw_content))
    b.stop(obj.get("stopReason"))
    b.usage(obj.get("usage"))


def _converse_block(b: AnswerBuilder, key: tuple[object, ...], content: dict) -> None:
    if "text" in content:
        b.append(key, "text", content.get("text"))
    elif "toolUse" in content:
        tool = as_dict(content.get("toolUse"))
        block = b.block(key, "tool_call")
        block.name = as_str(tool.get("name"))
        block.call_id = as_str(tool.get("toolUseId"))
        tool_input = tool.get("input")
        block.text = tool_input if isinstance(tool_input, str) else json_text(tool_input)
    elif "reasoningContent" in content:
        reasoning = as_dict(content.get("reasoningContent"))
        text = as_dict(reasoning.get("reasoningText")).get("text", reasoning.get("text"))
        b.append(key, "reasoning", text)


def converse_event(b: AnswerBuilder, event_type: str, obj: dict[str, object]) -> None:
    """One event of a Converse stream, named by its `:event-type` header."""
    b.set_api("Bedrock Converse")
    key = ("block", as_int(obj.get("contentBlockIndex")))
    if event_type == "contentBlockStart":
        tool = as_dict(as_dict(obj.get("start")).get("toolUse"))
        if tool:
            block = b.block(key, "tool_call")
            block.name = as_str(tool.get("name"))
            block.call_id = as_str(tool.get("toolUseId"))
    elif event_type == "contentBlockDelta":
        delta = as_dict(obj.get("delta"))
        if "text" in delta:
            b.append(key, "text", delta.get("text"))
        elif "toolUse" in delta:
            b.append(key, "tool_call", as_dict(delta.get("toolUse")).get("input"))
        elif "reasoningContent" in delta:
            b.append(key, "reasoning", as_dict(delta.get("reasoningContent")).get("text"))
    elif event_type == "messageStop":
        b.stop(obj.get("stopReason"))
    elif event_type == "metadata":
        b.usage(obj.get("usage"))


def feed_event_stream(b: AnswerBuilder, body: bytes, feed: Callable[[object], bool]) -> None:
    """Bedrock's stream: invoke-with-response-stream wraps each provider event in base64 `bytes`
    (handed to `feed`, which says whether it knew the shape); Converse names its events in the
    `:event-type` header. Counts the messages in `b.answer.events`; what cannot be read becomes
    a problem, a broken frame ends the stream."""
    try:
        for message in decode_event_stream(body):
            b.answer.events += 1
            event_type = as_str(message.headers.get(":event-type"))
            obj = json_or_none(message.payload)
            if message.headers.get(":message-type") in ("exception", "error"):
                error_type = message.headers.get(":exception-type") or message.headers.get(
                    ":error-code"
                )
                text = as_str(as_dict(obj).get("message")) or message.payload.decode(
                    "utf-8", "replace")
                b.new_block("error", text, as_str(error_type))
                b.set_api("Bedrock")
                continue
            payload = as_dict(obj)
            wrapped = payload.get("bytes")
            if isinstance(wrapped, str):
                try:
                    inner = json_or_none(base64.b64decode(wrapped, validate=True))
                except binascii.Error:
                    inner = None
                if inner is None or not feed(inner):
                    b.answer.problems.append(f"event {event_type}: unknown payload")
            elif event_type and payload is obj:
                converse_event(b, event_type, payload)
            else:
                b.answer.problems.append(f"event {event_type or '?'}: payload is not JSON")
    except EventStreamError as e:
        b.answer.problems.append(f"event stream broken at {e}")

