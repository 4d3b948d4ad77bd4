"""The control API: open, report and close sessions, through the proxy itself.

Clients reach it as an ordinary request through the proxy to the reserved host `llm-vcr.invalid`
(`.invalid` never resolves, so the request can only mean the proxy; plain HTTP or HTTPS), so no
second port is needed and the proxy's own `proxyauth` guards it:

    POST   /v1/sessions          open; JSON body, every field optional:
                                   {"cassette": "name", "cassettes": ["a", "b"], "mode": "replay",
                                    "reuse": false, "latency": "none", "strict": false,
                                    "client": "ci-worker-1", "port": false}
                                 -> 201 {"session": "<id>", "proxy_password": "session=<id>", ...}
    GET    /v1/sessions          the open sessions' reports
    GET    /v1/sessions/<id>     one session's live report
    DELETE /v1/sessions/<id>     close it -> its final report
    POST   /v1/sessions/<id>/close   the same, for clients that cannot send DELETE

`cassette` names the cassette for requests that name none; `cassettes` adds more named cassettes
(strict runs expect a request for each; the first one is the default when `cassette` is absent).
`mode`, `reuse`, `latency` and `strict` default to the proxy's options. `client` binds a stable
client name to this session (requests with the proxy password `client=<name>` then belong to it,
looked up per request); `port: true` opens a proxy port of this session's own (for clients that
can carry nothing in the proxy URL, such as Java).

Errors are JSON `{"error": {"type", "code", "field", "message"}}` with a 4xx status naming the
field at fault; nothing is changed. The API never returns cassette contents: only counts and
request lines, redacted as the store keeps them. Pure Python: `parse_open` and `route` take plain
values; the addon does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .modes import Mode
from .replay import parse_latency as _latency
from .sessions import Registry, Session, SessionError, Settings, UnusedLister, report
from .summary import Summary

CONTROL_HOST = "llm-vcr.invalid"
MAX_BODY_BYTES = 64 * 1024
_PREFIX = "/v1/sessions"
# A client name travels in the proxy password: keep it to characters that need no escaping.
_CLIENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_MAX_CLIENT_LENGTH = 128
_FIELDS = ("cassette", "cassettes", "mode", "reuse", "latency", "strict", "client", "port")


@dataclass(frozen=True, slots=True)
class OpenRequest:
    settings: Settings
    cassette: str | None
    named: tuple[str, ...]
    client: str | None
    port: bool


@dataclass(frozen=True, slots=True)
class Route:
    """What a control request asks for: `action` is one of list, open, report, close."""

    action: str
    session: str | None = None


def route(method: str, path: str) -> Route:
    """The action of a control request line; SessionError (404/405) when there is none."""
    bare = path.split("?", 1)[0].rstrip("/") or "/"
    if bare == _PREFIX:
        if method == "GET":
            return Route("list")
        if method == "POST":
            return Route("open")
        raise SessionError(405, "method", f"{method} {bare}: use GET or POST")
    if bare.startswith(_PREFIX + "/"):
        rest = bare[len(_PREFIX) + 1 :]
        session_id, _, tail = rest.partition("/")
        if session_id and not tail:
            if method == "GET":
                return Route("report", session_id)
            if method == "DELETE":
                return Route("close", session_id)
            raise SessionError(405, "method", f"{method} {bare}: use GET or DELETE")
        if session_id and tail == "close":
            if method == "POST":
                return Route("close", session_id)
            raise SessionError(405, "method", f"{method} {bare}: use POST")
    raise SessionError(404, "path", f"no such control endpoint: {bare} (see {_PREFIX})")


def parse_open(
    body: bytes,
    defaults: Settings,
    check_name: Callable[[str], str],
    parse_latency: Callable[[str], float | None],
) -> OpenRequest:
    """The session a POST /v1/sessions body asks for; SessionError (400, 413) naming the field.

    `check_name` validates a cassette name (the store's rules; raises ValueError with the reason)
    and returns it without `.yaml`; `parse_latency` reads a latency option value.
    """
    if len(body) > MAX_BODY_BYTES:
        raise SessionError(413, "body", f"the body is larger than {MAX_BODY_BYTES} bytes")
    data = _json_object(body)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise SessionError(
            400, unknown[0], f"unknown field; the fields are: {', '.join(_FIELDS)}"
        )
    named = tuple(_name(check_name, "cassettes", v) for v in _list(data, "cassettes"))
    cassette = data.get("cassette")
    if cassette is not None:
        cassette = _name(check_name, "cassette", cassette)
        named = (cassette, *[n for n in named if n != cassette])
    elif named:
        cassette = named[0]
    mode = defaults.mode
    if "mode" in data:
        value = data["mode"]
        modes = [m.value for m in Mode]
        if not isinstance(value, str) or value not in modes:
            raise SessionError(400, "mode", f"{value!r} is not a mode; use one of {modes}")
        mode = Mode(value)
    latency = defaults.latency
    if "latency" in data:
        value = data["latency"]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SessionError(400, "latency", "none, recorded, or a factor like 0.5")
        try:
            latency = parse_latency(str(value))
        except ValueError as e:
            raise SessionError(400, "latency", str(e)) from None
    client = data.get("client")
    if client is not None and (
        not isinstance(client, str) or not client or len(client) > _MAX_CLIENT_LENGTH
        or not set(client) <= _CLIENT_CHARS
    ):
        raise SessionError(
            400, "client",
            f"a client name is 1 to {_MAX_CLIENT_LENGTH} of the characters A-Z a-z 0-9 - _ .",
        )
    settings = Settings(
        mode=mode,
        reuse=_bool(data, "reuse", defaults.reuse),
        latency=latency,
        strict=_bool(data, "strict", defaults.strict),
    )
    return OpenRequest(settings, cassette, named, client, _bool(data, "port", False))


def error_body(error: SessionError) -> bytes:
    kind = "session_not_found" if error.status == 404 and error.field == "session" else (
        "invalid_control_request"
    )
    return json.dumps({"error": {
        "type": kind, "code": kind, "field": error.field, "message": error.message,
    }}).encode()


def _json_object(body: bytes) -> dict[str, object]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise SessionError(400, "body", f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise SessionError(400, "body", "a JSON object is expected")
    return data


def _list(data: dict[str, object], key: str) -> list[object]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise SessionError(400, key, "a list of cassette names is expected")
    return value


def _name(check_name: Callable[[str], str], key: str, value: object) -> str:
    if not isinstance(value, str):
        raise SessionError(400, key, "a cassette name is a string")
    try:
        return check_name(value)
    except ValueError as e:
        raise SessionError(400, key, str(e)) from None


def _bool(data: dict[str, object], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise SessionError(400, key, "true or false is expected")
    return value


PortOpener = Callable[[], Awaitable[int]]
PortCloser = Callable[[int], None]


class ControlAPI:
    """Answers control requests against the proxy's session registry.

    `check_name` validates cassette names (the store's rules), `unused` lists a cassette's unused
    interactions for a session's report, `summary` logs and keeps closed sessions' reports, and
    `open_port`/`close_port` (the addon's, through mitmproxy's `mode` option) give a session a
    proxy port of its own.
    """

    def __init__(
        self,
        sessions: Registry,
        check_name: Callable[[str], str],
        unused: UnusedLister,
        summary: Summary,
    ) -> None:
        self.sessions = sessions
        self.check_name = check_name
        self.unused = unused
        self.summary = summary
        self.default_cassette: Callable[[], str] = lambda: "default"  # the proxy's vcr_cassette
        self.open_port: PortOpener | None = None
        self.close_port: PortCloser | None = None
        # Loads the named cassettes a report lists (off the event loop), so that one never used
        # still reports its unused interactions.
        self.prepare: Callable[[Session], Awaitable[None]] | None = None
        # Waits for the session's flows in flight to finish and what they recorded to reach its
        # files: a run's session closes once its last answer is counted and on disk, so the
        # report is whole and the next run replays it.
        self.flush: Callable[[Session], Awaitable[None]] | None = None

    async def handle(self, method: str, path: str, body: bytes, now: float) -> tuple[int, bytes]:
        """(status, JSON body) for one control request; nothing changes on an error."""
        try:
            return await self._handle(method, path, body, now)
        except SessionError as e:
            return e.status, error_body(e)

    async def _handle(
        self, method: str, path: str, body: bytes, now: float
    ) -> tuple[int, bytes]:
        for session in self.sessions.expire(now):
            await self.closed(session, "expired after being idle")
        action = route(method, path)
        if action.action == "list":
            default = self.sessions.default
            reports = [report(s, self.unused) for s in self.sessions if s is not default]
            return 200, _json({"sessions": reports})
        if action.action == "open":
            asked = parse_open(body, self.sessions.default.settings, self.check_name, _latency)
            self.sessions.check_mode(asked.settings.mode)
            port = None
            if asked.port:
                if self.open_port is None:
                    raise SessionError(400, "port", "this proxy cannot open ports for sessions")
                port = await self.open_port()
            session = self.sessions.open(
                asked.settings, now, cassette=asked.cassette or self.default_cassette(),
                named=asked.named,
                client=asked.client, port=port,
            )
            data = report(session, self.unused)
            data["proxy_password"] = f"session={session.id}"
            return 201, _json(data)
        assert action.session is not None
        if action.action == "report":
            session = self.sessions.get(action.session)
            session.last_seen = now
            if self.prepare is not None:
                await self.prepare(session)
            return 200, _json(report(session, self.unused))
        session = self.sessions.close(action.session)
        return 200, _json(await self.closed(session))

    async def closed(self, session: Session, why: str = "closed") -> dict[str, object]:
        """Release what a closed (or expired) session held and log its final report."""
        if session.port is not None and self.close_port is not None:
            self.close_port(session.port)
        if self.flush is not None:
            await self.flush(session)
        if self.prepare is not None:
            await self.prepare(session)
        return self.summary.closed(session, self.unused, why)


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()
