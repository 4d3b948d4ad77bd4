"""Which recorded interaction answers a request, and why none did.

Two requests match when:
- the methods are equal (case-sensitive, as sent);
- the URLs are equal with the query order free: scheme and host compared case-insensitively, the
  port with its scheme's default filled in, the path exactly, the query as a multiset of decoded
  name/value pairs (the fragment is never sent, so it is left out);
- the bodies are equal: as JSON when both are JSON objects or arrays (key order, whitespace and line
  endings free; numbers by value, so `1.0` = `1`), after removing the `ignore_json` paths;
  `multipart/form-data` part by part (headers and content), whatever the random boundary; any other
  body byte for byte;
- the headers named in `match_headers` (names case-insensitive) have equal values. No other header
  counts.

Both sides are compared after the recorder's scrubbing (`redact`: secret query values, a URL's
password, JSON fields named like secrets and URLs inside JSON strings, secret multipart parts and
url-encoded form fields), so a recorded secret compares equal to the `REDACTED` an incoming
request gets, whoever recorded the cassette and whichever rules its recorder had.
Every request reduces to one hashable key, so a lookup costs the same for ten interactions or a
hundred thousand; only `explain_miss` compares field by field, and only after a miss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from . import jsonpath, multipart
from .cassette import Headers, Interaction, Request
from .headers import first_header, header_values, is_form, is_multipart
from .redact import may_need_scrub, redact_form_text, redact_multipart, redact_url, scrub_json
from .secret_names import is_secret_query_param

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Shown values are cut to this many characters (with "…") and at most this many body paths listed.
_VALUE_WIDTH = 60
_MAX_PATHS_SHOWN = 5



@dataclass(frozen=True, slots=True)
class MatchOptions:
    """`ignore_json`: JSON body paths left out of matching (see `jsonpath`).
    `match_headers`: header names whose values must also be equal."""

    ignore_json: tuple[str, ...] = ()
    match_headers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore_json", tuple(self.ignore_json))
        object.__setattr__(self, "match_headers", tuple(self.match_headers))
        for path in self.ignore_json:
            jsonpath.parse(path)  # a bad path fails when configured, not on some later request


# ---------------------------------------------------------------------------------------------
# The normalized parts of a request


class _Url(NamedTuple):
    scheme: str
    host: str
    port: int | None
    path: str
    query: tuple[tuple[str, str], ...]  # sorted decoded pairs


@lru_cache(maxsize=4096)
def _normal_url(url: str) -> _Url | str:
    """The comparable parts of `url` after `redact_url` (so a recorded `sig=REAL` and an incoming
    `sig=REDACTED` are equal), or the redacted text itself when it does not parse as a URL."""
    url = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    return _Url(
        scheme=scheme,
        host=(parts.hostname or "").rstrip("."),
        port=port if port is not None else _DEFAULT_PORTS.get(scheme),
        # an empty path and `/` are the same request target
        path=parts.path or "/",
        query=tuple(sorted(parse_qsl(parts.query, keep_blank_values=True))),
    )


def _number(text: str) -> int | float:
    # JSON has one number type: 1.0 and 1 are the same value (as a Go matcher decoding into
    # float64 sees them), so integral values become ints for hashing and comparing.
    value = float(text)
    return int(value) if value.is_integer() else value


_JSON_DECODER = json.JSONDecoder(parse_float=_number)


class _Json(NamedTuple):
    value: object


class _Multipart(NamedTuple):
    parts: tuple[tuple[bytes, bytes], ...]  # (header block, content) per part


class _Raw(NamedTuple):
    data: bytes


_Body = _Json | _Multipart | _Raw


def _parse_body(body: bytes, headers: Headers, ignore_json: tuple[str, ...]) -> _Body:
    """The comparable form of a body, after the recorder's scrubbing (`redact.scrub_json`,
    `redact_multipart`, `redact_form_text`): a recorded body that still holds a secret compares
    equal to the scrubbed incoming one."""
    # JSON first: it is nearly every LLM request, and needs no header lookup (a multipart body
    # starts with its `--` delimiter line, or at least never with `{` or `[`).
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            value = _JSON_DECODER.decode(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
        else:
            if may_need_scrub(body):
                value, _ = scrub_json(value)
            return _Json(jsonpath.remove(value, ignore_json) if ignore_json else value)
    if body:
        content_type = first_header(headers, "Content-Type")
        if body.startswith(b"--") or is_multipart(headers):
            body = redact_multipart(body, content_type) or body
            boundary = multipart.boundary(body, content_type)
            parts = None if boundary is None else multipart.parts(body, boundary)
            if parts is not None:
                return _Multipart(tuple((part.head, body[part.start : part.end])
                                        for part in parts))
        elif is_form(headers):
            return _Raw(redact_form_text(body))
    return _Raw(body)


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)


def _body_key(parsed: _Body) -> Hashable:
    if isinstance(parsed, _Json):
        return ("json", _CANONICAL_JSON.encode(parsed.value))
    if isinstance(parsed, _Multipart):
        return ("multipart", parsed.parts)
    return ("raw", parsed.data)


def _header_key(headers: Headers, names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    if not names:
        return ()
    return tuple(tuple(header_values(headers, name)) for name in names)


class _KeyMaker:
    """Turns a request into its hashable match key under one set of options."""

    __slots__ = ("header_names", "ignore_json")

    def __init__(self, options: MatchOptions) -> None:
        self.ignore_json = options.ignore_json
        self.header_names = tuple(sorted({name.lower() for name in options.match_headers}))

    def parse_body(self, request: Request) -> _Body:
        return _parse_body(request.body, request.headers, self.ignore_json)

    def key(self, request: Request) -> bytes:
        """A 128-bit digest of the match key: the index of a large cassette keeps digests, not
        a canonical copy of every body (a collision is as likely as guessing a random UUID)."""
        parts = (
            request.method,
            _normal_url(request.url),
            _body_key(self.parse_body(request)),
            _header_key(request.headers, self.header_names),
        )
        return hashlib.blake2b(
            repr(parts).encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()


# ---------------------------------------------------------------------------------------------
# The index


class Usage:
    """One session's use of one cassette: which interactions it has taken.

    The index is shared by every session of the proxy; each session brings its own `Usage`, so
    identical requests are answered in order within a session and a new session starts from the
    first. Positions are 0-based in file order (the ids as saved).
    """

    __slots__ = ("answered", "consumed", "cursor")

    def __init__(self) -> None:
        # consumed: no longer answers a non-reusing take; answered: has answered (or was recorded
        # by this session), which is what `unused` reports.
        self.consumed: set[int] = set()
        self.answered: set[int] = set()
        self.cursor: dict[Hashable, int] = {}  # per match key: how many positions are used up

    def mark(self, position: int) -> None:
        """Count the interaction at `position` as used, as a take would."""
        self.consumed.add(position)
        self.answered.add(position)


class RequestIndex:
    """The interactions of one cassette, looked up by match key, shared by every session.

    Each key maps to its interactions' positions in file order; a session's `Usage` keeps a cursor
    past its used ones, so `take` costs O(1) amortized whatever the cassette's size. Interactions
    appended to the file are added at the end (`add`): the index is extended, never rebuilt.
    """

    __slots__ = ("_interactions", "_keys", "_positions", "options", "shared")

    def __init__(
        self, interactions: Sequence[Interaction], options: MatchOptions = MatchOptions()
    ) -> None:
        self.options = options
        self._keys = _KeyMaker(options)
        self._interactions: list[Interaction] = []
        self._positions: dict[Hashable, list[int]] = {}
        self.shared = Usage()  # the use of callers that bring none
        for interaction in interactions:
            self.add(interaction)

    def add(self, interaction: Interaction) -> int:
        """Add an interaction at the end (one appended to the file); its position."""
        position = len(self._interactions)
        self._interactions.append(interaction)
        self._positions.setdefault(self._keys.key(interaction.request), []).append(position)
        return position

    def take(
        self, request: Request, reuse: bool = False, usage: Usage | None = None
    ) -> Interaction | None:
        """The first interaction matching `request` that `usage` has not used, in file order,
        now marked used; None if none.

        With `reuse`, the first matching interaction in file order whether used or not: it is never
        used up (it still counts as answered for `unused`).
        """
        found = self.take_position(request, reuse, usage)
        return None if found is None else self._interactions[found]

    def take_position(
        self, request: Request, reuse: bool = False, usage: Usage | None = None
    ) -> int | None:
        """`take`, giving the interaction's position."""
        usage = self.shared if usage is None else usage
        key = self._keys.key(request)
        positions = self._positions.get(key)
        if not positions:
            return None
        if reuse:
            position = positions[0]
        else:
            consumed = usage.consumed
            cursor = usage.cursor.get(key, 0)
            while cursor < len(positions) and positions[cursor] in consumed:
                cursor += 1
            if cursor == len(positions):
                usage.cursor[key] = cursor
                return None
            position = positions[cursor]
            usage.cursor[key] = cursor + 1
            consumed.add(position)
        usage.answered.add(position)
        return position

    def add_used(self, interaction: Interaction, usage: Usage | None = None) -> int:
        """Add a newly recorded interaction; it counts as used by `usage` (a later `reuse` take
        may get it; other sessions may take it)."""
        position = self.add(interaction)
        (self.shared if usage is None else usage).mark(position)
        return position

    def unused(self, usage: Usage | None = None) -> list[Interaction]:
        """The interactions that have answered nothing yet for `usage`, in file order."""
        answered = (self.shared if usage is None else usage).answered
        return [i for position, i in enumerate(self._interactions) if position not in answered]

    def mark_used(self, position: int, usage: Usage | None = None) -> None:
        """Mark the interaction at `position` (0-based, file order) used, as a take would."""
        (self.shared if usage is None else usage).mark(position)

    def used_ids(self, usage: Usage | None = None) -> set[int]:
        """Positions (0-based, file order: the ids as saved) of the interactions that have
        answered, were marked used or were added, for `usage`."""
        return set((self.shared if usage is None else usage).answered)

    def explain_miss(self, request: Request, usage: Usage | None = None) -> str:
        """`explain_miss` for `request` against this index's interactions and their use."""
        return explain_miss(request, self._interactions, self.options, self.used_ids(usage))

    def __getitem__(self, position: int) -> Interaction:
        return self._interactions[position]

    def __len__(self) -> int:
        return len(self._interactions)


# ---------------------------------------------------------------------------------------------
# Explaining a miss


def _shorten(text: str) -> str:
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


_ABSENT = object()


def _show(value: object) -> str:
    if value is _ABSENT:
        return "(absent)"
    return _shorten(json.dumps(value, ensure_ascii=False))


def _show_values(values: list[str]) -> str:
    if not values:
        return "(absent)"
    return _show(values[0] if len(values) == 1 else values)


_Difference = tuple[tuple[str, ...], object, object]  # path, request value, recorded value


def _json_differences(
    request: object, recorded: object, path: tuple[str, ...], out: list[_Difference]
) -> None:
    """Appends (path, request value, recorded value) for every leaf where the values differ."""
    if isinstance(request, dict) and isinstance(recorded, dict):
        for key, value in request.items():
            _json_differences(value, recorded.get(key, _ABSENT), (*path, key), out)
        for key, value in recorded.items():
            if key not in request:
                out.append(((*path, key), _ABSENT, value))
    elif isinstance(request, list) and isinstance(recorded, list):
        for index in range(max(len(request), len(recorded))):
            _json_differences(
                request[index] if index < len(request) else _ABSENT,
                recorded[index] if index < len(recorded) else _ABSENT,
                (*path, str(index)),
                out,
            )
    elif not (type(request) is type(recorded) and request == recorded):
        out.append((path, request, recorded))


def _describe_body(body: _Body) -> str:
    if isinstance(body, _Json):
        return "JSON"
    if isinstance(body, _Multipart):
        return f"multipart ({len(body.parts)} parts)"
    return f"{len(body.data)} bytes" if body.data else "empty"


def _part_name(head: bytes) -> str:
    name = multipart.part_name(head)
    return f' (name="{name}")' if name is not None else ""


def _body_differences(request: _Body, recorded: _Body) -> list[str]:
    """One line per difference, body paths capped at a few plus a count of the rest."""
    if isinstance(request, _Json) and isinstance(recorded, _Json):
        found: list[_Difference] = []
        _json_differences(request.value, recorded.value, (), found)
        return [
            f"body{' ' + jsonpath.format_path(path) if path else ''}: "
            f"{_show(mine)} != {_show(theirs)}"
            for path, mine, theirs in found
        ]
    if isinstance(request, _Multipart) and isinstance(recorded, _Multipart):
        lines = []
        if len(request.parts) != len(recorded.parts):
            lines.append(f"body: {len(request.parts)} parts != {len(recorded.parts)} parts")
        pairs = zip(request.parts, recorded.parts, strict=False)
        for number, ((my_head, my_content), (their_head, their_content)) in enumerate(pairs):
            what = []
            if my_head != their_head:
                what.append("headers")
            if my_content != their_content:
                what.append(f"content ({len(my_content)} bytes != {len(their_content)} bytes)")
            if what:
                lines.append(f"body part {number}{_part_name(my_head)}: {' and '.join(what)}")
        return lines
    if isinstance(request, _Raw) and isinstance(recorded, _Raw):
        if request.data == recorded.data:
            return []
        mine, theirs = request.data, recorded.data
        first = next(
            (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
            min(len(mine), len(theirs)),
        )
        return [
            f"body: {len(mine)} bytes != {len(theirs)} bytes (first difference at byte {first})"
        ]
    return [f"body: {_describe_body(request)} != {_describe_body(recorded)}"]


def _url_differences(request: _Url | str, recorded: _Url | str) -> tuple[list[str], list[str]]:
    """(differences in scheme/host/port/path, differences in the query): one line each."""
    if isinstance(request, str) or isinstance(recorded, str):
        if request == recorded:
            return [], []
        return [f"url: {_show(str(request))} != {_show(str(recorded))}"], []
    place = [
        f"{field}: {_show(a)} != {_show(b)}"
        for field, a, b in zip(request._fields[:4], request[:4], recorded[:4], strict=True)
        if a != b
    ]
    query: list[str] = []
    if request.query != recorded.query:
        names = dict.fromkeys(name for name, _ in (*request.query, *recorded.query))
        for name in names:
            mine = [v for n, v in request.query if n == name]
            theirs = [v for n, v in recorded.query if n == name]
            if mine == theirs:
                continue
            if is_secret_query_param(name):  # redacted on both sides; never show one anyway
                query.append(f"query {name}: the (secret) values differ")
            else:
                query.append(f"query {name}: {_show_values(mine)} != {_show_values(theirs)}")
    return place, query


class _Comparison(NamedTuple):
    place: list[str]  # method and URL without query: a different endpoint
    detail: list[str]  # query, body, headers: the same endpoint asked differently

    def rank(self) -> tuple[int, int]:
        return len(self.place), len(self.detail)


def _compare(
    request: Request, recorded: Request, keys: _KeyMaker, mine: _Body, max_place: int
) -> _Comparison | None:
    """The differences, or None when more than `max_place` are in method and URL (then the body,
    the costly part, is not compared at all)."""
    place, query = _url_differences(_normal_url(request.url), _normal_url(recorded.url))
    if request.method != recorded.method:
        place.insert(0, f"method: {request.method} != {recorded.method}")
    if len(place) > max_place:
        return None
    detail = query + _body_differences(mine, keys.parse_body(recorded))
    for name in keys.header_names:
        a, b = header_values(request.headers, name), header_values(recorded.headers, name)
        if a != b:
            detail.append(f"header {name}: {_show_values(a)} != {_show_values(b)}")
    return _Comparison(place, detail)


def explain_miss(
    request: Request,
    interactions: Sequence[Interaction],
    options: MatchOptions,
    used: set[int] | None = None,
) -> str:
    """Why no interaction answered `request`: a few lines naming the request (method and redacted
    URL), the closest recorded request and what differs (JSON bodies: the differing paths in
    `vcr_ignore_json` syntax with both values, shortened), and how many interactions are unused.

    `used` holds positions in `interactions` already used. Closest = the fewest differences in
    method, scheme, host, port and path, then the fewest in query, body paths and selected headers,
    then unused before used, then file order. Only headers named in `match_headers` are shown.
    """
    used = used or set()
    head = f"{request.method} {redact_url(request.url)}"
    if not interactions:
        return f"{head}: no recorded interaction matches; the cassette has no interactions"

    keys = _KeyMaker(options)
    mine = keys.parse_body(request)
    best: tuple[tuple[int, int, bool, int], _Comparison] | None = None
    exact: list[int] = []
    for position, interaction in enumerate(interactions):
        max_place = best[0][0] if best is not None else len(_Url._fields) + 1
        comparison = _compare(request, interaction.request, keys, mine, max_place)
        if comparison is None:
            continue
        rank = (*comparison.rank(), position in used, position)
        if rank[:2] == (0, 0):
            exact.append(position)
        if best is None or rank < best[0]:
            best = (rank, comparison)
    assert best is not None
    unused_count = sum(1 for position in range(len(interactions)) if position not in used)
    footer = f"{unused_count} of {len(interactions)} interactions still unused"

    if exact:
        numbers = ", ".join(f"#{p}" for p in exact)
        if all(p in used for p in exact):
            return (
                f"{head}: every recorded interaction that matches it was used: {numbers} "
                "(to answer again: set vcr_reuse=true, or start a new session, which starts "
                f"from the first interaction)\n{footer}"
            )
        return f"{head}: matches recorded interaction {numbers}\n{footer}"

    (_, _, closest_used, position), comparison = best
    closest = interactions[position].request
    body_lines = [line for line in comparison.detail if line.startswith("body")]
    other_lines = [line for line in comparison.detail if not line.startswith("body")]
    shown_body = body_lines[:_MAX_PATHS_SHOWN]
    if len(body_lines) > len(shown_body):
        shown_body.append(f"and {len(body_lines) - len(shown_body)} more body differences")
    differences = [*comparison.place, *other_lines, *shown_body]
    lines = [
        f"{head}: no recorded interaction matches",
        f"closest recorded request: #{position} {closest.method} {redact_url(closest.url)}"
        f"{' (already used)' if closest_used else ''}, differs in (request != recorded):",
        *(f"  {line}" for line in differences),
        footer,
    ]
    return "\n".join(lines)
