"""Anthropic messages, as the `AnswerBuilder` reads them (also inside Bedrock's invoke and
Vertex AI's rawPredict, which carry the same JSON).

A finished `message` object (`message`) or its stream (`stream_event`): `message_start`,
`content_block_start` / `_delta` / `_stop` (text, thinking, tool input as `input_json_delta`
pieces), `message_delta` (stop reason, usage), `message_stop`, `ping`. Content blocks of other
types (server tool results, citations ...) show by their type.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from .answer import AnswerBuilder, as_dict, as_int, as_list, as_str, json_text

STREAM_EVENTS = frozenset(
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


def _anthropic_block(b: AnswerBuilder, key: tuple[object, ...], content: dict) -> None:
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
        block.name = as_str(content.get("name"))
        block.call_id = as_str(content.get("id"))
        tool_input = content.get("input")
        if tool_input:  # a stream starts with {} and sends the input as input_json_delta
            block.text = json_text(tool_input)
    elif isinstance(kind, str):
        block = b.block(key, "other")
        block.name = kind
        block.call_id = as_str(content.get("tool_use_id"))


def stream_event(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """One event of a messages stream (its `type` is one of `STREAM_EVENTS`)."""
    b.set_api("Anthropic messages")
    kind = obj.get("type")
    key = ("block", as_int(obj.get("index")))
    if kind == "message_start":
        message = as_dict(obj.get("message"))
        b.model(message.get("model"))
        b.usage(message.get("usage"))
    elif kind == "content_block_start":
        _anthropic_block(b, key, as_dict(obj.get("content_block")))
    elif kind == "content_block_delta":
        delta = as_dict(obj.get("delta"))
        found = _ANTHROPIC_DELTA_FIELDS.get(as_str(delta.get("type")))
        if found:
            b.append(key, found[1], delta.get(found[0]))
    elif kind == "message_delta":
        b.stop(as_dict(obj.get("delta")).get("stop_reason"))
        b.usage(obj.get("usage"))


def message(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """A finished `message` object."""
    b.set_api("Anthropic messages")
    b.model(obj.get("model"))
    for index, content in enumerate(as_list(obj.get("content"))):
        _anthropic_block(b, ("block", index), as_dict(content))
    b.stop(obj.get("stop_reason"))
    b.usage(obj.get("usage"))

