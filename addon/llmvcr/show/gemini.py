"""Gemini `generateContent` and `streamGenerateContent` (also Vertex AI), as the `AnswerBuilder`
reads them.

Every chunk of a stream has the shape of a whole answer (`candidates[].content.parts`,
`usageMetadata`, `promptFeedback`), so `chunk` reads both. A part is text (or reasoning when
`thought` is true), a function call, or another kind shown by its key; a function call or another
part between two texts splits them into two text blocks, as the model sent them.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from .answer import AnswerBuilder, as_dict, as_int, as_list, as_str, json_text


class GeminiState:
    """Which text block a Gemini part continues: a function call between two texts splits them."""

    def __init__(self) -> None:
        self.segment: dict[int, int] = {}


def chunk(b: AnswerBuilder, obj: dict[str, object], state: GeminiState) -> None:
    """A whole answer or one chunk of a stream (one `GeminiState` for all chunks of a body)."""
    b.set_api("Gemini generateContent")
    b.model(obj.get("modelVersion"))
    for raw_candidate in as_list(obj.get("candidates")):
        candidate = as_dict(raw_candidate)
        index = as_int(candidate.get("index"))
        for raw_part in as_list(as_dict(candidate.get("content")).get("parts")):
            part = as_dict(raw_part)
            segment = state.segment.get(index, 0)
            if "text" in part:
                kind = "reasoning" if part.get("thought") is True else "text"
                b.append((kind, index, segment), kind, part.get("text"), index)
            elif "functionCall" in part:
                call = as_dict(part.get("functionCall"))
                block = b.new_block("tool_call", json_text(call.get("args", {})))
                block.name = as_str(call.get("name"))
                block.call_id = as_str(call.get("id"))
                block.choice = index
                state.segment[index] = segment + 1
            elif part:
                name = next((k for k in part if k not in ("thought", "thoughtSignature")), "")
                if name:
                    b.new_block("other", name=name).choice = index
                    state.segment[index] = segment + 1
        b.stop(candidate.get("finishReason"))
    b.usage(obj.get("usageMetadata"))
    feedback = as_dict(obj.get("promptFeedback"))
    if feedback.get("blockReason"):
        b.stop(feedback.get("blockReason"))

