"""The answer a response body holds, whichever API sent it: `reassemble(response)`.

The API is recognised by the shape of each JSON document, not by the host, so Azure, OpenRouter,
Vertex AI and the OpenAI-compatible hosts need no entry of their own. The first row that fits:

| shape of the document                               | read by                              |
| --------------------------------------------------- | ------------------------------------ |
| `type` starting with `response.`                    | `openai.responses_event`             |
| `type` an Anthropic stream event                    | `anthropic.stream_event`             |
| `type: message` with `content`                      | `anthropic.message`                  |
| `object: response`                                  | `openai.responses_object`            |
| `choices`                                           | `openai.chat_completion`             |
| `candidates`, `usageMetadata` or `promptFeedback`   | `gemini.chunk`                       |
| `output` and `stopReason`                           | `bedrock.converse_message`           |
| `error`, or `type: error`                           | an error block                       |
| a JSON array                                        | each item, by these rules (Gemini)   |

Framings: one JSON document; server-sent events (`sse.sse_events`, each `data:` a document,
`[DONE]` skipped); Bedrock's AWS event stream (`eventstream`, via `bedrock.feed_event_stream`).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from ..cassette import Headers, Response
from ..headers import AWS_EVENT_STREAM_TYPE, is_event_stream, media_type
from ..sse import looks_like_sse, sse_events
from . import anthropic, bedrock, gemini, openai
from .answer import Answer, AnswerBuilder, as_str, json_or_none, json_text

__all__ = ["reassemble", "reassemble_body"]


def _error_block(b: AnswerBuilder, error: object) -> None:
    """An API's error object (or a bare error value) as an error block."""
    if isinstance(error, dict):
        message = as_str(error.get("message")) or json_text(error)
        code = error.get("type") or error.get("code") or error.get("status") or ""
        b.new_block("error", message, str(code))
    else:
        b.new_block("error", str(error))


def _feed(b: AnswerBuilder, obj: object, state: gemini.GeminiState) -> bool:
    """Route one JSON document (a whole body or one event) by its shape; False if unknown."""
    if isinstance(obj, list):  # Gemini's non-SSE stream: a JSON array of chunks
        results = [_feed(b, item, state) for item in obj]
        return any(results)
    if not isinstance(obj, dict):
        return False
    kind = as_str(obj.get("type"))
    if kind.startswith("response."):
        openai.responses_event(b, obj)
    elif kind in anthropic.STREAM_EVENTS:
        anthropic.stream_event(b, obj)
    elif kind == "message" and "content" in obj:
        anthropic.message(b, obj)
    elif obj.get("object") == "response":
        openai.responses_object(b, obj)
    elif "choices" in obj:
        openai.chat_completion(b, obj)
    elif "candidates" in obj or "usageMetadata" in obj or "promptFeedback" in obj:
        gemini.chunk(b, obj, state)
    elif "output" in obj and "stopReason" in obj:
        bedrock.converse_message(b, obj)
    elif "error" in obj:
        _error_block(b, obj["error"])
    elif kind == "error":  # the responses API's stream error event
        _error_block(b, obj)
    else:
        return False
    return True


def reassemble(response: Response) -> Answer | None:
    """The answer the response body holds, or None when the body is no known LLM format."""
    return reassemble_body(response.body, response.headers)


def reassemble_body(body: bytes, headers: Headers) -> Answer | None:
    """The answer a response `body` with these `headers` holds, or None when it is no known LLM
    format: an AWS event stream by its `Content-Type`, server-sent events by theirs or by their
    first line (`sse.looks_like_sse`), else one JSON document (a Gemini JSON array included).

    A stream whose events are all of unknown shapes is None; one with some known events is an
    Answer whose `problems` name the others.
    """
    b = AnswerBuilder()
    state = gemini.GeminiState()
    if media_type(headers) == AWS_EVENT_STREAM_TYPE:
        b.answer.framing = "event stream"
        bedrock.feed_event_stream(b, body, lambda obj: _feed(b, obj, state))
        return b.answer if b.answer.api or b.answer.problems else None
    if is_event_stream(headers) or looks_like_sse(body):
        b.answer.framing = "SSE"
        events = sse_events(body)
        b.answer.events = len(events)
        for event in events:
            if event.data.strip() in ("", "[DONE]"):
                continue
            obj = json_or_none(event.data)
            if obj is None:
                b.answer.problems.append(f"event {event.event or 'data'} is not JSON")
            elif not _feed(b, obj, state):
                b.answer.problems.append(f"event {event.event or 'data'} of an unknown shape")
        return b.answer if b.answer.api else None
    obj = json_or_none(body)
    if obj is None or not _feed(b, obj, state):
        return None
    return b.answer
