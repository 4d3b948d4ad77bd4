"""Comparing two streamed answers event by event: server-sent events (`llmvcr.sse`) and AWS
event streams (`llmvcr.show.decode_event_stream`, Bedrock).

Each event gets a type: the SSE `event:` name; else its JSON's `type`, else its `object`; else
`error` when it holds one; else `data`. `[DONE]` is the type of OpenAI's last line, `(not JSON)`
of a data line that is not JSON; events with empty data are left out. An AWS event stream's
message is typed by its `:event-type` header (`:exception-type` for an exception), and the
provider event Bedrock's invoke stream wraps in base64 (`bytes`) is unwrapped and typed as above;
a broken frame ends the list with an event of type `(broken framing)`.

The comparison (`compare_streams`):

1. the sequence of event types with consecutive repeats collapsed: a type that appears or
   disappears, or the same types in another order, is `changed` (`event types`, `events`);
2. the final event's type (a missing `data: [DONE]`, `message_stop` ...): `changed`;
3. per event type present on both sides, the `Shape` of all its events (`tree`): keys removed,
   types and structural values changed are `changed`, keys added `benign`;
4. when the collapsed sequences are equal: runs of the same type with the same length are
   compared event by event (`tree.diff_json`) if the shapes found nothing `changed`, only what
   is `changed` kept (a structural value moved from one event to another);
   runs of another length (another number of text deltas) are `benign` (`count`).

Wording (the text a stream spells out) is left to the answer comparison (`answers`), which reads
the reassembled text rather than each delta. `same_events` says whether two streams hold the same
events after normalisation.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from itertools import groupby

from ..show import EventStreamError, decode_event_stream
from ..show.answer import as_str, json_or_none
from ..sse import sse_events
from .result import Difference, show
from .tree import Found, Shape, diff_json

__all__ = ["Event", "aws_events", "compare_streams", "same_events", "sse_stream_events"]

DONE = "[DONE]"
NOT_JSON = "(not JSON)"
BROKEN = "(broken framing)"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a stream: its type and its JSON (None when there is none)."""

    type: str
    data: object


def _json_type(obj: object) -> str:
    if isinstance(obj, dict):
        kind = as_str(obj.get("type")) or as_str(obj.get("object"))
        if kind:
            return kind
        if "error" in obj:
            return "error"
    return "data"


def sse_stream_events(body: bytes) -> list[Event]:
    """The typed events of a `text/event-stream` body."""
    events: list[Event] = []
    for event in sse_events(body):
        data = event.data.strip()
        if not data:
            continue
        if data == DONE:
            events.append(Event(event.event or DONE, None))
            continue
        obj = json_or_none(data)
        if obj is None:
            events.append(Event(event.event or NOT_JSON, None))
        else:
            events.append(Event(event.event or _json_type(obj), obj))
    return events


def aws_events(body: bytes) -> list[Event]:
    """The typed events of an `application/vnd.amazon.eventstream` body (Bedrock)."""
    events: list[Event] = []
    try:
        for message in decode_event_stream(body):
            headers = message.headers
            kind = as_str(headers.get(":exception-type")) or as_str(headers.get(":event-type"))
            obj = json_or_none(message.payload)
            wrapped = obj.get("bytes") if isinstance(obj, dict) else None
            if isinstance(wrapped, str):
                try:
                    inner = json_or_none(base64.b64decode(wrapped, validate=True))
                except binascii.Error:
                    inner = None
                if inner is not None:
                    events.append(Event(_json_type(inner), inner))
                    continue
            events.append(Event(kind or (NOT_JSON if obj is None else _json_type(obj)), obj))
    except EventStreamError:
        events.append(Event(BROKEN, None))
    return events


def _runs(events: list[Event]) -> list[tuple[str, list[Event]]]:
    return [(kind, list(group)) for kind, group in groupby(events, key=lambda e: e.type)]


def _shapes(events: list[Event]) -> dict[str, Shape]:
    """The shape of each event type's events (types without JSON have none)."""
    shapes: dict[str, Shape] = {}
    for event in events:
        if event.data is not None:
            shapes.setdefault(event.type, Shape()).add(event.data)
    return shapes


def _sequence(types: list[str]) -> str:
    return ", ".join(types)


def compare_streams(old: list[Event], new: list[Event], found: Found) -> None:
    """What differs between two streams' events (see the module's steps), into `found`."""
    old_runs, new_runs = _runs(old), _runs(new)
    old_types = [kind for kind, _ in old_runs]
    new_types = [kind for kind, _ in new_runs]
    appeared = [kind for kind in dict.fromkeys(new_types) if kind not in old_types]
    vanished = [kind for kind in dict.fromkeys(old_types) if kind not in new_types]
    for kind in appeared:
        found.differences.append(Difference("event types", "(absent)", show(kind), True,
                                            "new event type"))
    for kind in vanished:
        found.differences.append(Difference("event types", show(kind), "(absent)", True,
                                            "event type gone"))
    if not appeared and not vanished and old_types != new_types:
        at = next((i for i, (a, b) in enumerate(zip(old_types, new_types, strict=False))
                   if a != b), min(len(old_types), len(new_types)))
        found.differences.append(Difference(
            f"events from #{at}", show(_sequence(old_types[at:at + 3])),
            show(_sequence(new_types[at:at + 3])), True, "order"))
    old_last = old[-1].type if old else "(none)"
    new_last = new[-1].type if new else "(none)"
    if old_last != new_last:
        found.differences.append(Difference("final event", show(old_last), show(new_last),
                                            True, "final event"))
    old_shapes, new_shapes = _shapes(old), _shapes(new)
    for kind, old_shape in old_shapes.items():
        new_shape = new_shapes.get(kind)
        if new_shape is not None:
            old_shape.compare(new_shape, Found(f"event {kind}: ", found.differences,
                                               found.added_keys))
    if old_types != new_types:
        return
    # Event by event only when the shapes found nothing: what they found is named once.
    check_events = not any(d.changed for d in found.differences)
    position = 0
    for (kind, old_run), (_, new_run) in zip(old_runs, new_runs, strict=True):
        if len(old_run) != len(new_run):
            found.differences.append(Difference(
                f"events #{position}.. {kind}", f"{len(old_run)} events", f"{len(new_run)} events",
                False, "count"))
        elif check_events:
            for offset, (a, b) in enumerate(zip(old_run, new_run, strict=True)):
                event_found = Found(f"event #{position + offset} {kind}: ")
                diff_json(a.data, b.data, event_found)
                found.differences.extend(d for d in event_found.differences if d.changed)
                # keys added are already named by the shape comparison
        position += len(old_run)


def same_events(old: list[Event], new: list[Event]) -> bool:
    """The streams hold the same events (types and JSON) once normalised."""
    if len(old) != len(new):
        return False
    for a, b in zip(old, new, strict=True):
        if a.type != b.type:
            return False
        found = Found()
        diff_json(a.data, b.data, found)
        if found.differences or found.added_keys:
            return False
    return True


def wording_differences(old: list[Event], new: list[Event], limit: int) -> list[Difference]:
    """The first `limit` benign differences of equal-length streams, event by event (for a
    stream whose reassembled answer reads the same but whose events differ)."""
    out: list[Difference] = []
    for position, (a, b) in enumerate(zip(old, new, strict=False)):
        found = Found(f"event #{position} {a.type}: ")
        diff_json(a.data, b.data, found)
        out.extend(d for d in found.differences if not d.changed)
        if len(out) >= limit:
            return out[:limit]
    return out
