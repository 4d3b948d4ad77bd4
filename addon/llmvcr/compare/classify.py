"""The comparison of two responses (`compare_responses`), of a recorded interaction with a live
answer (`classify`, what `verify` calls per request), and the pairing of two cassettes'
interactions (`pair`, what `diff` calls).

`compare_responses(old, new)` decides in this order:

1. the status codes differ: `changed` (`status`), with the new body's error code or type when
   it has one; the bodies are not compared further (a 429's body is no answer);
2. the media types (`headers.media_type`: `text/event-stream; charset=utf-8` is
   `text/event-stream`) differ: `changed` (`content type`);
3. the bodies are equal bytes: done;
4. the framings differ (`SSE`, `event stream`, `JSON`, `bytes`, `empty`): `changed`
   (`framing`: a stream turned into a plain body, or back); not compared further;
5. streams: `streams.compare_streams`, then `answers.compare_answers` with wording; when all
   that finds nothing but the events are not the same once normalised, the first few benign
   event differences;
6. JSON: `tree.diff_json`, then `answers.compare_answers` (without wording: the JSON paths name
   it already);
7. other bytes: `changed` (`body`: the sizes and the first differing byte).

The verdict is `changed` when a difference is, else `benign` when anything differs or a key was
added, else `same`.

Only `Content-Type` of the headers is compared: the rest are dates, request ids, rate-limit
counters and whatever the recorder's allow-list kept. Neither side is redacted here: the caller
passes both after the recorder's own redaction (`redact.Redactor.response`: the header allow-list,
secret parameters, `vcr_redact_json`), so a redacted field is `"REDACTED"` on both sides and
never differs.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cassette import Interaction, Request, Response
from ..headers import AWS_EVENT_STREAM_TYPE, is_event_stream, media_type
from ..matching import MatchOptions, RequestIndex
from ..redact import redact_url
from ..show import reassemble_body
from ..show.answer import json_or_none
from ..sse import looks_like_sse
from .answers import compare_answers
from .result import BENIGN, CHANGED, NEW, REMOVED, SAME, Difference, Result, show
from .streams import (
    aws_events,
    compare_streams,
    same_events,
    sse_stream_events,
    wording_differences,
)
from .tree import Found, diff_json

__all__ = ["Pair", "classify", "classify_pair", "compare_responses", "framing", "pair"]

SSE = "SSE"
EVENT_STREAM = "event stream"
JSON = "JSON"
BYTES = "bytes"
EMPTY = "empty"
_STREAMS = (SSE, EVENT_STREAM)
# Benign event differences listed for a stream whose answer reads the same but whose events differ.
_EVENT_WORDING_SHOWN = 5


def framing(response: Response) -> str:
    """How a response body is framed: `event stream` (AWS, by its media type), `SSE` (by its
    media type or first line), `JSON`, `empty`, or `bytes`."""
    if media_type(response.headers) == AWS_EVENT_STREAM_TYPE:
        return EVENT_STREAM
    body = response.body
    if is_event_stream(response.headers) or looks_like_sse(body):
        return SSE
    if not body.strip():
        return EMPTY
    return JSON if json_or_none(body) is not None else BYTES


def label(request: Request | None) -> str:
    """`METHOD URL` of a request, its URL redacted ("" without a request)."""
    return f"{request.method} {redact_url(request.url)}" if request is not None else ""


def _events(response: Response, kind: str) -> list:
    return aws_events(response.body) if kind == EVENT_STREAM else sse_stream_events(response.body)


def _error_names(response: Response) -> str:
    answer = reassemble_body(response.body, response.headers)
    names = [block.name or "error" for block in answer.blocks
             if block.kind == "error"] if answer else []
    return ", ".join(names) or "(none)"


def _first_difference(old: bytes, new: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                min(len(old), len(new)))


def compare_responses(old: Response, new: Response, request: Request | None = None) -> Result:
    """The verdict on `new` against `old` (both already redacted), with every difference; see
    the module's steps. `request` only names the interaction (`Result.label`)."""
    found = Found()
    differences = found.differences
    if old.code != new.code:
        differences.append(Difference("status", str(old.code), str(new.code), True, "status"))
        old_errors, new_errors = _error_names(old), _error_names(new)
        if old_errors != new_errors:
            differences.append(Difference("error", show(old_errors), show(new_errors), True,
                                          "error"))
        return _result(found, request)
    old_type, new_type = media_type(old.headers), media_type(new.headers)
    if old_type != new_type:
        differences.append(Difference("content type", show(old_type or "(none)"),
                                      show(new_type or "(none)"), True, "content type"))
    if old.body == new.body:
        return _result(found, request)
    old_framing, new_framing = framing(old), framing(new)
    if old_framing != new_framing:
        what = ("a stream turned into a plain body" if old_framing in _STREAMS
                else "a plain body turned into a stream" if new_framing in _STREAMS
                else "framing")
        differences.append(Difference("framing", show(old_framing), show(new_framing), True,
                                      what))
        return _result(found, request)
    if old_framing in _STREAMS:
        old_events, new_events = _events(old, old_framing), _events(new, new_framing)
        compare_streams(old_events, new_events, found)
        compare_answers(reassemble_body(old.body, old.headers),
                        reassemble_body(new.body, new.headers), differences, wording=True)
        if not differences and not found.added_keys and not same_events(old_events, new_events):
            differences.extend(wording_differences(old_events, new_events, _EVENT_WORDING_SHOWN))
    elif old_framing == JSON:
        diff_json(json_or_none(old.body), json_or_none(new.body), found)
        compare_answers(reassemble_body(old.body, old.headers),
                        reassemble_body(new.body, new.headers), differences, wording=False)
    elif old_framing == BYTES:
        at = _first_difference(old.body, new.body)
        differences.append(Difference(
            "body", f"{len(old.body)} bytes", f"{len(new.body)} bytes", True,
            f"first difference at byte {at}"))
    return _result(found, request)


def _result(found: Found, request: Request | None) -> Result:
    differences = sorted(found.differences, key=lambda d: not d.changed)  # stable: changed first
    if any(d.changed for d in differences):
        verdict = CHANGED
    elif differences or found.added_keys:
        verdict = BENIGN
    else:
        verdict = SAME
    return Result(verdict, differences, list(dict.fromkeys(found.added_keys)), label(request))


def classify(recorded: Interaction | None, live: Response, request: Request | None = None
             ) -> Result:
    """The verdict on a live answer against the interaction replay would have chosen for the
    same request (`None`: there is none, verdict `new`). Pass the live response and the
    recorded interaction after the recorder's redaction, and the (redacted) live request."""
    if recorded is None:
        return Result(NEW, label=label(request))
    return compare_responses(recorded.response, live, request)


@dataclass(frozen=True, slots=True)
class Pair:
    """An interaction of the OLD cassette and the one of NEW the matcher paired with it; either
    side is None when nothing paired (`new` or `removed`)."""

    old: Interaction | None
    new: Interaction | None


def pair(old: Sequence[Interaction], new: Sequence[Interaction],
         options: MatchOptions | None = None) -> list[Pair]:
    """Pairs the interactions of two cassettes as replay would answer NEW's requests from OLD:
    each NEW interaction in file order takes the first unused OLD one that matches
    (`matching.RequestIndex.take` with `options`). Then the OLD interactions nothing took, in
    file order, each paired with None."""
    index = RequestIndex(old, options or MatchOptions())
    pairs: list[Pair] = []
    for interaction in new:
        position = index.take_position(interaction.request)
        pairs.append(Pair(None if position is None else index[position], interaction))
    taken = index.used_ids()
    pairs.extend(Pair(interaction, None) for position, interaction in enumerate(old)
                 if position not in taken)
    return pairs


def classify_pair(found: Pair) -> Result:
    """The verdict on one pair: `removed` when only OLD has it, `new` when only NEW has it, else
    `compare_responses`."""
    if found.new is None:
        assert found.old is not None
        return Result(REMOVED, label=label(found.old.request))
    return classify(found.old, found.new.response, found.new.request)
