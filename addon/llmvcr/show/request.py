"""What a request asked, as `show` prints it: `summarize_request(request) -> Prompt | None`.

The conversation of any of the dialects the answers come in (OpenAI chat completions and the
responses API's `input`, Anthropic `messages` with `system`, Gemini `contents` with
`systemInstruction`, Bedrock Converse `messages`), as messages by role ("system", "user",
"assistant", "tool") holding `answer.Block`s: text, reasoning, tool calls with their arguments,
tool results (which Anthropic, Gemini and Converse send inside user messages: shown as the "tool"
messages they are). Plus the model (from the body, or from the URL path as Gemini and Bedrock
name it), whether an answer is streamed (`stream: true` or a streaming path), and the tools'
names.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from ..cassette import Request
from .answer import Block, as_dict, as_list, as_str, json_or_none, json_text

__all__ = ["Message", "Prompt", "summarize_request"]


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
    for raw_part in as_list(content):
        if isinstance(raw_part, str):
            blocks.append(Block("text", raw_part))
            continue
        part = as_dict(raw_part)
        kind = as_str(part.get("type"))
        if kind in ("text", "input_text", "output_text") or (not kind and "text" in part):
            kind_of_text = "reasoning" if part.get("thought") is True else "text"
            blocks.append(Block(kind_of_text, as_str(part.get("text"))))
        elif kind == "thinking":
            blocks.append(Block("reasoning", as_str(part.get("thinking"))))
        elif kind in ("tool_use", "server_tool_use"):
            blocks.append(_tool_call(part, "input", "id"))
        elif kind == "tool_result":
            inner = part.get("content")
            text = inner if isinstance(inner, str) else _joined_text(_content_blocks(inner))
            blocks.append(Block("tool_result", text, call_id=as_str(part.get("tool_use_id"))))
        elif "functionCall" in part:
            blocks.append(_tool_call(as_dict(part["functionCall"]), "args", "id"))
        elif "functionResponse" in part:
            result = as_dict(part["functionResponse"])
            blocks.append(
                Block("tool_result", json_text(result.get("response", {})),
                      as_str(result.get("name")), as_str(result.get("id")))
            )
        elif "toolUse" in part:
            blocks.append(_tool_call(as_dict(part["toolUse"]), "input", "toolUseId"))
        elif "toolResult" in part:
            result = as_dict(part["toolResult"])
            text = _joined_text(_content_blocks(result.get("content")))
            blocks.append(Block("tool_result", text, call_id=as_str(result.get("toolUseId"))))
        elif not kind and "json" in part:
            blocks.append(Block("text", json_text(part["json"])))
        else:
            blocks.append(Block("other", name=kind or next(iter(part), "part")))
    return blocks


def _tool_call(call: dict[str, object], input_key: str, id_key: str) -> Block:
    """A tool call of a request's history: Anthropic `tool_use` (`input`, `id`), Gemini
    `functionCall` (`args`, `id`), Converse `toolUse` (`input`, `toolUseId`)."""
    return Block("tool_call", json_text(call.get(input_key, {})), as_str(call.get("name")),
                 as_str(call.get(id_key)))


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
    tools = as_list(obj.get("tools")) or as_list(as_dict(obj.get("toolConfig")).get("tools"))
    names: list[str] = []
    for raw_tool in tools:
        tool = as_dict(raw_tool)
        declarations = as_list(tool.get("functionDeclarations"))
        if declarations:
            names.extend(as_str(as_dict(d).get("name")) for d in declarations)
            continue
        name = (
            tool.get("name")
            or as_dict(tool.get("function")).get("name")
            or as_dict(tool.get("toolSpec")).get("name")
            or tool.get("type")
            or next(iter(tool), "")
        )
        names.append(as_str(name))
    return [name for name in names if name]


def summarize_request(request: Request) -> Prompt | None:
    """The conversation a request sends, or None when its body is no known LLM request."""
    obj = json_or_none(request.body) if request.body else None
    if not isinstance(obj, dict):
        return None
    prompt = Prompt()
    found = _MODEL_IN_PATH.search(request.url.split("?")[0])
    prompt.model = as_str(obj.get("model")) or (unquote(found.group(1)) if found else "")
    prompt.stream = obj.get("stream") is True or any(p in request.url for p in _STREAMING_PATHS)
    prompt.tools = _tool_names(obj)

    system = obj.get("system") or obj.get("instructions")
    if isinstance(system, str | list):
        _add_message(prompt, "system", _content_blocks(system))
    instruction = as_dict(obj.get("systemInstruction") or obj.get("system_instruction"))
    if instruction:
        _add_message(prompt, "system", _content_blocks(instruction.get("parts")))

    for raw_message in as_list(obj.get("messages")) or as_list(obj.get("contents")):
        message = as_dict(raw_message)
        role = as_str(message.get("role")) or "user"
        blocks = _content_blocks(message.get("content", message.get("parts")))
        for raw_call in as_list(message.get("tool_calls")):
            call = as_dict(raw_call)
            function = as_dict(call.get("function"))
            blocks.append(Block("tool_call", as_str(function.get("arguments")),
                                as_str(function.get("name")), as_str(call.get("id"))))
        if role == "tool":
            for block in blocks:
                block.kind = "tool_result"
                block.call_id = as_str(message.get("tool_call_id"))
        _add_message(prompt, role, blocks)

    items = obj.get("input")
    if isinstance(items, str):
        _add_message(prompt, "user", [Block("text", items)])
    for raw_item in as_list(items):
        item = as_dict(raw_item)
        kind = item.get("type")
        if "role" in item and kind in (None, "message"):
            _add_message(prompt, as_str(item["role"]), _content_blocks(item.get("content")))
        elif kind == "function_call":
            block = Block("tool_call", as_str(item.get("arguments")), as_str(item.get("name")),
                          as_str(item.get("call_id")))
            _add_message(prompt, "assistant", [block])
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _joined_text(_content_blocks(output))
            _add_message(prompt, "tool", [Block("tool_result", text,
                                                call_id=as_str(item.get("call_id")))])
        elif kind == "reasoning":
            parts = as_list(item.get("summary"))
            summary = "\n".join(as_str(as_dict(part).get("text")) for part in parts)
            _add_message(prompt, "assistant", [Block("reasoning", summary)])
        elif isinstance(kind, str):
            _add_message(prompt, "assistant", [Block("other", name=kind)])
    if not prompt.messages and not prompt.model:
        return None
    return prompt

