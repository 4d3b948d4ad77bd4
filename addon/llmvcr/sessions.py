"""Sessions: one run or one test on a long-running proxy, each as if the proxy were new.

A session owns what used to live as long as the proxy: which interactions of each cassette it has
used (so identical requests are answered in order within it, and every new session starts from the
first), its counts (replayed, recorded, each miss with its explanation), and the settings it was
opened with (mode, reuse, latency, strict, its cassettes). Several sessions run at once on one
proxy, on the same or different cassettes, without seeing each other's state; what they record
goes to the one store. Pure Python: the addon finds a request's session and asks it; the matching
index (`matching.RequestIndex`) is shared by every session and keeps no use of its own.

Which session a request belongs to, most specific first (the addon reads these from the flow):
1. the `X-VCR-Session: <id>` header;
2. the proxy password `session=<id>` (`HTTPS_PROXY=http://<cassette>:session%3D<id>@host:port`);
3. the proxy password `client=<name>`: the session the control API last bound that client to,
   looked up per request (keep-alive and HTTP/2 connections outlive a test);
4. the proxy port the request came in on, when a session was opened with a port of its own;
5. else the proxy's default session, which lives as long as the proxy and behaves as the proxy
   always did.

"New", for `record_once` and `record`, is judged per session:
- `record_once` records into a cassette whose file did not exist when this session first used it
  (the default session keeps the store's older rule: not existing when the proxy first needed it,
  or first written after the proxy started);
- `record` starts a cassette afresh at a session's first write to it, unless another open session
  has written to it since this one opened: then it appends, so two sessions never erase each other.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .client_request import SessionRef
from .matching import RequestIndex, Usage
from .modes import Mode

Identity = tuple[str, str, int, int]  # see indexes.identity

DEFAULT_SESSION_ID = "default"
# One session keeps at most this many miss explanations (its count goes on): a client looping on
# a miss must not grow the proxy's memory without bound.
MAX_MISSES_KEPT = 200


class SessionError(ValueError):
    """A session that cannot be opened or found; `field` names the request field at fault,
    `status` is the HTTP status the control API answers with."""

    def __init__(self, status: int, field: str, message: str) -> None:
        self.status = status
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Settings:
    """What a session chooses; everything else (hosts, headers, JSON paths) is the proxy's."""

    mode: Mode
    reuse: bool = False
    latency: float | None = None  # None: answer at once; else a factor of the recorded pace
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Miss:
    request: str  # "METHOD URL", redacted
    reason: str


@dataclass(slots=True)
class CassetteUse:
    """One session's dealings with one cassette.

    What it replayed or recorded is kept by content (`consumed`), the authority that survives a
    rebuilt index, and by position in the index it last used (`usage`), which answers lookups;
    `indexes.sync` keeps the second in step with the first.
    """

    usage: Usage = field(default_factory=Usage)
    index: RequestIndex | None = None  # the index `usage` counts positions of
    known: int = 0  # positions of `index` already reconciled with `pending`
    consumed: Counter[Identity] = field(default_factory=Counter)
    pending: Counter[Identity] = field(default_factory=Counter)  # consumed, position not found yet
    replayed: int = 0
    recorded: int = 0
    missed: int = 0
    misses: list[Miss] = field(default_factory=list)
    is_new: bool | None = None  # the first newness answer, kept for the session's life
    verified: list[dict[str, object]] = field(default_factory=list)  # mode verify: the results
    verdicts: dict[str, int] = field(default_factory=dict)  # mode verify: results by verdict
    wrote_at: float | None = None  # when this session last wrote to the cassette

    def add_miss(self, miss: Miss) -> None:
        self.missed += 1
        if len(self.misses) < MAX_MISSES_KEPT:
            self.misses.append(miss)


@dataclass(slots=True)
class Session:
    id: str
    settings: Settings
    opened_at: float  # monotonic seconds
    last_seen: float
    cassette: str | None = None  # for requests that name none (None: the proxy's vcr_cassette)
    named: tuple[str, ...] = ()  # cassettes named when opened: strict wants a request for each
    client: str | None = None
    port: int | None = None
    uses: dict[str, CassetteUse] = field(default_factory=dict)

    @property
    def mode(self) -> Mode:
        return self.settings.mode

    def use(self, cassette: str) -> CassetteUse:
        found = self.uses.get(cassette)
        if found is None:
            found = self.uses[cassette] = CassetteUse()
        return found


UnusedLister = Callable[[str, "CassetteUse"], list[str] | None]
"""`(cassette, use) -> the request lines of its interactions that the use has not answered`,
or None when the cassette is not loaded (missing, broken, or never replayed from)."""


def report(session: Session, unused: UnusedLister, is_open: bool = True) -> dict[str, object]:
    """The session's report as JSON-ready data: per cassette the counts, each miss (request line
    and reason) and each unused interaction (request line). Only counts and request lines, never
    bodies: request lines are redacted as the store keeps them."""
    cassettes: dict[str, object] = {}
    totals = {"replayed": 0, "recorded": 0, "missed": 0, "unused": 0}
    names = list(session.uses)
    names += [name for name in session.named if name not in session.uses]
    for name in names:
        use = session.uses.get(name) or CassetteUse()
        lines = unused(name, use) if replays(session.mode) else None
        entry = {
            "replayed": use.replayed,
            "recorded": use.recorded,
            "missed": [{"request": m.request, "reason": m.reason} for m in use.misses],
            "missed_count": use.missed,
            "unused": [{"request": line} for line in lines or ()],
            "requests": use.replayed + use.recorded + use.missed + sum(use.verdicts.values()),
        }
        if session.mode == Mode.VERIFY:
            entry["verified"] = list(use.verified)
            entry["verdicts"] = dict(use.verdicts)
        cassettes[name] = entry
        totals["replayed"] += use.replayed
        totals["recorded"] += use.recorded
        totals["missed"] += use.missed
        totals["unused"] += len(lines or ())
    return {
        "session": session.id,
        "open": is_open,
        "mode": session.mode.value,
        "reuse": session.settings.reuse,
        "strict": session.settings.strict,
        "client": session.client,
        "port": session.port,
        "cassette": session.cassette,
        "named": list(session.named),
        "cassettes": cassettes,
        "totals": totals,
    }


def strict_failures(data: dict[str, object]) -> list[str]:
    """What fails a strict run in a report made by `report`, one line each: a request that
    missed, an interaction that went unused, a named cassette that saw no request."""
    lines: list[str] = []
    named = set(data.get("named") or ())  # type: ignore[arg-type]
    cassettes: dict[str, dict] = data.get("cassettes") or {}  # type: ignore[assignment]
    if data.get("mode") == Mode.VERIFY.value:
        # Only what breaks clients fails a verify run: benign, new, unused and not verified
        # results are reported, not failed.
        for name, entry in cassettes.items():
            for result in entry.get("verified", ()):
                if result["verdict"] in ("changed", "removed"):
                    lines.append(f"{result['verdict']}: cassette '{name}': {result['request']}")
            hidden = entry.get("verdicts", {}).get("changed", 0) - sum(
                r["verdict"] == "changed" for r in entry.get("verified", ()))
            if hidden > 0:
                lines.append(f"changed: cassette '{name}': {hidden} more not listed")
        return lines
    for name, entry in cassettes.items():
        for miss in entry["missed"]:
            lines.append(f"missed: cassette '{name}': {miss['request']}: {miss['reason']}")
        hidden = entry.get("missed_count", len(entry["missed"])) - len(entry["missed"])
        if hidden > 0:
            lines.append(f"missed: cassette '{name}': {hidden} more request(s) not listed")
        for unused in entry["unused"]:
            lines.append(f"unused: cassette '{name}': {unused['request']}")
        if name in named and not entry.get("requests"):
            lines.append(f"no request reached cassette '{name}'")
    return lines


def replays(mode: Mode) -> bool:
    """Whether a mode looks requests up in cassettes (so 'unused' means something for it)."""
    return mode in (Mode.REPLAY, Mode.RECORD_ONCE, Mode.NEW_EPISODES, Mode.VERIFY)


class Registry:
    """The proxy's open sessions, by id, client name and port; the default session always open.

    `ceiling`: a proxy started in `replay` mode accepts only replaying sessions, so a client can
    never turn an offline proxy into one that goes upstream.
    """

    def __init__(self, default: Settings, idle_timeout: float, now: float) -> None:
        self.default = Session(DEFAULT_SESSION_ID, default, opened_at=now, last_seen=now)
        self.idle_timeout = idle_timeout
        self._sessions: dict[str, Session] = {}
        # client name -> the sessions it was bound to, most recent last: closing a client's
        # session binds it back to the one before (a test's session, then the runner's idle one).
        self._clients: dict[str, list[str]] = {}
        self._ports: dict[int, str] = {}  # proxy port -> session id

    # -- the default session follows the proxy's own options

    def set_default(self, settings: Settings) -> None:
        self.default.settings = settings

    def check_mode(self, mode: Mode) -> None:
        if self.default.mode == Mode.REPLAY and mode != Mode.REPLAY:
            raise SessionError(
                403, "mode",
                f"this proxy replays only (started with mode replay): a session cannot use "
                f"mode {mode.value}",
            )

    # -- opening, finding, closing

    def open(
        self,
        settings: Settings,
        now: float,
        cassette: str | None = None,
        named: tuple[str, ...] = (),
        client: str | None = None,
        port: int | None = None,
    ) -> Session:
        self.check_mode(settings.mode)
        session_id = secrets.token_urlsafe(12)
        session = Session(
            session_id, settings, opened_at=now, last_seen=now, cassette=cassette, named=named,
            client=client, port=port,
        )
        self._sessions[session_id] = session
        if client is not None:
            self._clients.setdefault(client, []).append(session_id)
        if port is not None:
            self._ports[port] = session_id
        return session

    def get(self, session_id: str) -> Session:
        if session_id == DEFAULT_SESSION_ID:
            return self.default
        found = self._sessions.get(session_id)
        if found is None:
            raise SessionError(404, "session", f"no open session {session_id!r}")
        return found

    def for_client(self, client: str) -> Session:
        """The session the client was most recently bound to that is still open."""
        bound = self._clients.get(client)
        if not bound:
            raise SessionError(409, "client", f"client {client!r} has no open session")
        return self._sessions[bound[-1]]

    def for_port(self, port: int) -> Session | None:
        session_id = self._ports.get(port)
        return self._sessions.get(session_id) if session_id is not None else None

    def resolve(
        self, session_id: str | None, ref: SessionRef | None, port: int | None
    ) -> Session | SessionError:
        """A request's session, most specific first (see the module docstring): the
        `X-VCR-Session` id, the proxy password's reference, the port it came in on, else the
        default session. A SessionError when the session it names is not open: the request is
        refused, never silently put in another session."""
        try:
            if session_id is not None:
                return self.get(session_id)
            if ref is not None:
                return self.get(ref.value) if ref.kind == "session" else (
                    self.for_client(ref.value)
                )
        except SessionError as e:
            return e
        if self._ports and port is not None:
            by_port = self.for_port(port)
            if by_port is not None:
                return by_port
        return self.default

    def close(self, session_id: str) -> Session:
        if session_id == DEFAULT_SESSION_ID:
            raise SessionError(400, "session", "the default session cannot be closed")
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionError(404, "session", f"no open session {session_id!r}")
        bound = self._clients.get(session.client) if session.client is not None else None
        if bound is not None:
            bound.remove(session_id)
            if not bound:
                del self._clients[session.client]
        if session.port is not None and self._ports.get(session.port) == session_id:
            del self._ports[session.port]
        return session

    def expire(self, now: float) -> list[Session]:
        """Close and return the sessions idle for longer than `idle_timeout`."""
        idle = [
            s.id for s in self._sessions.values() if now - s.last_seen > self.idle_timeout
        ]
        return [self.close(session_id) for session_id in idle]

    def __iter__(self) -> Iterator[Session]:
        """The default session, then the open ones in the order they were opened."""
        yield self.default
        yield from list(self._sessions.values())

    def __len__(self) -> int:
        return len(self._sessions)

    # -- what "new" means per session (see the module docstring)

    def starts_afresh(self, session: Session, cassette: str) -> bool:
        """For mode `record`: whether this write starts the cassette afresh (the session's first
        write to it, and no other open session wrote to it since this one opened)."""
        if session.use(cassette).wrote_at is not None:
            return False
        return not any(
            other is not session
            and (use := other.uses.get(cassette)) is not None
            and use.wrote_at is not None
            and use.wrote_at >= session.opened_at
            for other in self
        )
