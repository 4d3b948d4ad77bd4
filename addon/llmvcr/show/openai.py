"""OpenAI's two answer formats, as the `AnswerBuilder` reads them.

- Chat completions (`/v1/chat/completions`; also Azure OpenAI, OpenRouter, xAI, Groq and every
  host that copies it): a whole `chat.completion` object, or `chat.completion.chunk` events whose
  `choices[].delta` carry text, reasoning (`reasoning_content` or `reasoning`), a refusal and tool
  calls (by `index`, the arguments streamed in pieces). `chat_completion` reads either.
- The responses API (`/v1/responses`; also Azure): `response.*` stream events
  (`responses_event`), or a finished `response` object with its `output` items
  (`responses_object`). Built-in tools (web search, file search ...) show as tool calls named by
  their type, with what they were asked.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from .answer import AnswerBuilder, as_dict, as_int, as_list, as_str, json_text


def chat_completion(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """A `chat.completion` object or one `chat.completion.chunk` event."""
    b.set_api("OpenAI chat completions")
    b.model(obj.get("model"))
    for raw_choice in as_list(obj.get("choices")):
        choice = as_dict(raw_choice)
        index = as_int(choice.get("index"))
        part = choice.get("delta")
        if not isinstance(part, dict):
            part = as_dict(choice.get("message"))
        reasoning = part.get("reasoning_content") or part.get("reasoning")
        b.append(("reasoning", index), "reasoning", reasoning, index)
        b.append(("text", index), "text", part.get("content"), index)
        b.append(("refusal", index), "refusal", part.get("refusal"), index)
        for position, raw_call in enumerate(as_list(part.get("tool_calls"))):
            call = as_dict(raw_call)
            function = as_dict(call.get("function"))
            key = ("tool", index, as_int(call.get("index"), position))
            block = b.block(key, "tool_call", index)
            block.call_id = block.call_id or as_str(call.get("id"))
            block.name = block.name or as_str(function.get("name"))
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                block.text += arguments
        b.stop(choice.get("finish_reason"))
    b.usage(obj.get("usage"))


# OpenAI responses API (also Azure).


_RESPONSES_ARGUMENT_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)


def responses_event(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """One `response.*` event of a responses-API stream (or its `error` event)."""
    b.set_api("OpenAI responses")
    kind = as_str(obj.get("type"))
    output = as_int(obj.get("output_index"))
    if kind == "response.output_text.delta":
        b.append(("text", output, as_int(obj.get("content_index"))), "text", obj.get("delta"))
    elif kind == "response.refusal.delta":
        b.append(("refusal", output), "refusal", obj.get("delta"))
    elif kind == "response.reasoning_summary_text.delta":
        key = ("reasoning", output, as_int(obj.get("summary_index")))
        b.append(key, "reasoning", obj.get("delta"))
    elif kind == "response.reasoning_text.delta":
        b.append(("reasoning_text", output), "reasoning", obj.get("delta"))
    elif kind == "response.output_item.added":
        item = as_dict(obj.get("item"))
        if item.get("type") in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            block.name = as_str(item.get("name"))
            block.call_id = as_str(item.get("call_id"))
    elif kind in _RESPONSES_ARGUMENT_DELTAS:
        b.append(("tool", output), "tool_call", obj.get("delta"))
    elif kind == "response.output_item.done":
        item = as_dict(obj.get("item"))
        if item.get("type") in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            if not block.text:  # no deltas came: the finished item has the whole text
                block.text = as_str(item.get("arguments") or item.get("input"))
        elif item.get("type") not in ("message", "reasoning", None):
            _responses_builtin_call(b, ("builtin", output), item)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = as_dict(obj.get("response"))
        if not b.answer.blocks:  # a stream without deltas: the final object has the output
            responses_object(b, response)
        b.model(response.get("model"))
        b.usage(response.get("usage"))
        details = as_dict(response.get("incomplete_details"))
        b.stop(details.get("reason") or response.get("status"))
        error = as_dict(response.get("error"))
        if error:
            b.new_block("error", as_str(error.get("message")), as_str(error.get("code")))
    elif kind == "response.created":
        b.model(as_dict(obj.get("response")).get("model"))
    elif kind == "error":
        b.new_block("error", as_str(obj.get("message")), as_str(obj.get("code")))


def _responses_builtin_call(b: AnswerBuilder, key: tuple[object, ...], item: dict) -> None:
    """A built-in tool's call (web search, file search ...): its type and what it was asked."""
    block = b.block(key, "tool_call")
    block.name = as_str(item.get("type"))
    block.call_id = as_str(item.get("id"))
    action = item.get("action") or item.get("queries")
    if action:
        block.text = json_text(action)


def responses_object(b: AnswerBuilder, obj: dict[str, object]) -> None:
    """The `output` items of a finished responses-API object."""
    b.set_api("OpenAI responses")
    b.model(obj.get("model"))
    for output, raw_item in enumerate(as_list(obj.get("output"))):
        item = as_dict(raw_item)
        kind = item.get("type")
        if kind == "message":
            for content_index, raw_part in enumerate(as_list(item.get("content"))):
                part = as_dict(raw_part)
                if part.get("type") == "refusal":
                    b.append(("refusal", output), "refusal", part.get("refusal"))
                else:
                    b.append(("text", output, content_index), "text", part.get("text"))
        elif kind == "reasoning":
            for summary_index, raw_part in enumerate(as_list(item.get("summary"))):
                key = ("reasoning", output, summary_index)
                b.append(key, "reasoning", as_dict(raw_part).get("text"))
            for raw_part in as_list(item.get("content")):
                b.append(("reasoning_text", output), "reasoning", as_dict(raw_part).get("text"))
        elif kind in ("function_call", "custom_tool_call"):
            block = b.block(("tool", output), "tool_call")
            block.name = as_str(item.get("name"))
            block.call_id = as_str(item.get("call_id"))
            block.text = as_str(item.get("arguments") or item.get("input"))
        elif kind is not None:
            _responses_builtin_call(b, ("builtin", output), item)
    b.usage(obj.get("usage"))
    b.stop(as_dict(obj.get("incomplete_details")).get("reason") or obj.get("status"))
    error = as_dict(obj.get("error"))
    if error:
        b.new_block("error", as_str(error.get("message")), as_str(error.get("code")))

