"""What an LLM said, as `show` prints it and a comparison of answers reads it: the `Answer`
model, the `AnswerBuilder` the per-API readers feed, and the JSON accessors they share.

An `Answer` is a list of `Block`s in the order they first appeared in the body (streamed deltas
are appended to the block they continue, so a stream and the same answer sent whole give equal
blocks), plus the API, the framing, the model, the stop reason and the token usage (flattened:
`prompt_tokens_details.cached_tokens`; later values win, as streams send running totals).

The accessors (`as_dict`, `as_list`, `as_str`, `as_int`) read a field of the wrong type as absent:
a body of an unexpected shape shows what it can instead of failing.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = [
    "Answer",
    "AnswerBuilder",
    "Block",
    "as_dict",
    "as_int",
    "as_list",
    "as_str",
    "json_or_none",
    "json_text",
]


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


class AnswerBuilder:
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


def json_text(value: object) -> str:
    """A tool's input object as compact JSON (for blocks that carry a parsed object, not text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def as_int(value: object, default: int = 0) -> int:
    """`value` when it is an integer (not a bool), else `default`."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def as_dict(value: object) -> dict[str, object]:
    """`value` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[object]:
    """`value` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def as_str(value: object) -> str:
    """`value` when it is a string, else ""."""
    return value if isinstance(value, str) else ""


def json_or_none(text: str | bytes) -> object | None:
    """The JSON document `text` holds, or None when it is not JSON (or nested too deep)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None

