"""Looking things up in a cassette's headers (`{name: [values]}`), the one place that knows how.

- Header names compare case-insensitively (a foreign cassette may spell `content-type`; the
  recorder writes Go's canonical `Content-Type`): `header_values`, `first_header`.
- A media type is the part of a `Content-Type` value before its parameters, trimmed and lower
  case (`Text/Event-Stream; charset=utf-8` is `text/event-stream`): `media_type_of`,
  `media_type` (of the first `Content-Type` value; what `show` prints).
- The body kinds the scrubbers and `show` treat specially are asked of every `Content-Type` value
  (`is_form`, `is_event_stream`, `is_multipart`): a request sent with two `Content-Type` headers,
  one of them form-encoded, gets its form fields scrubbed whichever came first.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "AWS_EVENT_STREAM_TYPE",
    "EVENT_STREAM_TYPE",
    "FORM_TYPE",
    "first_header",
    "header_values",
    "is_event_stream",
    "is_form",
    "is_multipart",
    "media_type",
    "media_type_of",
]

FORM_TYPE = "application/x-www-form-urlencoded"
EVENT_STREAM_TYPE = "text/event-stream"  # server-sent events
AWS_EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"  # Bedrock's binary stream

# Read-only: the cassette's `Headers` (dict[str, list[str]]) and any mapping like it.
HeaderMap = Mapping[str, Sequence[str]]


def header_values(headers: HeaderMap, name: str) -> list[str]:
    """Every value of header `name` (any case of the name), in order: the values of each
    spelling in the order the spellings appear."""
    lowered = name.lower()
    return [value for key, values in headers.items() if key.lower() == lowered
            for value in values]


def first_header(headers: HeaderMap, name: str) -> str:
    """The first value of header `name` (any case of the name), or "" when there is none."""
    lowered = name.lower()
    for key, values in headers.items():
        if key.lower() == lowered and values:
            return values[0]
    return ""


def media_type_of(content_type: str) -> str:
    """The media type of one `Content-Type` value: before any `;`, trimmed, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def media_type(headers: HeaderMap) -> str:
    """The media type of the first `Content-Type` value, or "" when there is none."""
    return media_type_of(first_header(headers, "Content-Type"))


def _media_types(headers: HeaderMap) -> list[str]:
    return [media_type_of(value) for value in header_values(headers, "Content-Type")]


def is_form(headers: HeaderMap) -> bool:
    """A `Content-Type` value says `application/x-www-form-urlencoded`."""
    return FORM_TYPE in _media_types(headers)


def is_event_stream(headers: HeaderMap) -> bool:
    """A `Content-Type` value says `text/event-stream` (server-sent events)."""
    return EVENT_STREAM_TYPE in _media_types(headers)


def is_multipart(headers: HeaderMap) -> bool:
    """A `Content-Type` value says `multipart/...` (`form-data`, `mixed` ...)."""
    return any(kind.startswith("multipart/") for kind in _media_types(headers))
