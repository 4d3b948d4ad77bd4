"""Comparing what two responses said, as `llm-vcr show` reassembles it (`show.reassemble_body`):
the part of the comparison that knows LLM answers, whichever API and framing carried them.

| what differs                                        | verdict                              |
| --------------------------------------------------- | ------------------------------------ |
| one answer is of a known API and the other is not   | `changed` (`answer`)                 |
| the API (`OpenAI chat completions` ...)              | `changed` (`answer`)                 |
| the kinds of blocks, consecutive repeats collapsed  | `changed` (`answer blocks`)          |
| the number of tool calls, a tool call's name        | `changed` (`tool calls`, `tool call N`) |
| the keys of a tool call's JSON arguments            | `changed` (`tool call N (name)`)     |
| the errors (by code or type)                        | `changed` (`error`)                  |
| the stop reason, when nothing else was `changed`    | `changed` (`stop reason`)            |
| with `wording`: text, reasoning, refusal, arguments | `benign` (`answer text` ...)         |

`wording` is for streams, whose JSON comparison does not read the text their deltas spell out; a
whole JSON body names its wording differences by path already.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from itertools import groupby

from ..show import Answer, Block
from ..show.answer import json_or_none
from .result import Difference, show, show_pair

__all__ = ["compare_answers"]

_WORDING_KINDS = ("text", "reasoning", "refusal")


def _collapsed(blocks: list[Block]) -> list[str]:
    return [kind for kind, _ in groupby(block.kind for block in blocks)]


def _argument_keys(text: str) -> list[str] | None:
    """The keys of a tool call's arguments when they are a JSON object, else None."""
    value = json_or_none(text) if text.strip() else {}
    return sorted(value) if isinstance(value, dict) else None


def compare_answers(old: Answer | None, new: Answer | None, out: list[Difference],
                    wording: bool) -> None:
    """What differs between two reassembled answers (see the module's table), into `out`."""
    if old is None and new is None:
        return
    if old is None or new is None or old.api != new.api:
        known = "(no known format)"
        out.append(Difference("answer", show(old.api if old else known),
                              show(new.api if new else known), True, "API"))
        return
    before = len(out)
    old_kinds, new_kinds = _collapsed(old.blocks), _collapsed(new.blocks)
    if old_kinds != new_kinds:
        out.append(Difference("answer blocks", show(", ".join(old_kinds)),
                              show(", ".join(new_kinds)), True, "kinds"))
    _compare_tool_calls(old, new, out, wording)
    old_errors = [block.name for block in old.blocks if block.kind == "error"]
    new_errors = [block.name for block in new.blocks if block.kind == "error"]
    if old_errors != new_errors:
        out.append(Difference("error", show(", ".join(old_errors) or "(none)"),
                              show(", ".join(new_errors) or "(none)"), True, "error"))
    if old.stop_reason != new.stop_reason and not any(d.changed for d in out):
        out.append(Difference("stop reason", show(old.stop_reason or "(none)"),
                              show(new.stop_reason or "(none)"), True, "stop reason"))
    if not wording or len(out) > before:
        return
    for kind in _WORDING_KINDS:
        old_text = "".join(block.text for block in old.blocks if block.kind == kind)
        new_text = "".join(block.text for block in new.blocks if block.kind == kind)
        if old_text != new_text:
            out.append(Difference(f"answer {kind}", *show_pair(old_text, new_text), False,
                                  "wording"))


def _compare_tool_calls(old: Answer, new: Answer, out: list[Difference], wording: bool) -> None:
    old_calls = [block for block in old.blocks if block.kind == "tool_call"]
    new_calls = [block for block in new.blocks if block.kind == "tool_call"]
    if len(old_calls) != len(new_calls):
        out.append(Difference("tool calls", show(", ".join(c.name for c in old_calls)),
                              show(", ".join(c.name for c in new_calls)), True, "count"))
    for number, (a, b) in enumerate(zip(old_calls, new_calls, strict=False)):
        if a.name != b.name:
            out.append(Difference(f"tool call {number}", show(a.name), show(b.name), True,
                                  "name"))
            continue
        old_keys, new_keys = _argument_keys(a.text), _argument_keys(b.text)
        if old_keys != new_keys:
            out.append(Difference(
                f"tool call {number} ({a.name})",
                show(", ".join(old_keys) if old_keys is not None else a.text),
                show(", ".join(new_keys) if new_keys is not None else b.text),
                True, "argument keys"))
        elif wording and json_or_none(a.text) != json_or_none(b.text):
            out.append(Difference(f"tool call {number} ({a.name})", *show_pair(a.text, b.text),
                                  False, "arguments"))
