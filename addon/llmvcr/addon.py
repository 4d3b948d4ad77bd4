"""The mitmproxy addon: thin glue between flows and the cassette modules.

Hooks follow one request through its steps:
`http_connect` (note the proxy user name) -> `requestheaders` (pick the cassette, note the URL the
client asked for) -> `request` (answer from the cassette, or send upstream to be recorded) ->
`responseheaders` (tee the stream) -> `response` (hand the interaction to the writer) -> `done`
(flush, one summary line per cassette).

Per-flow state lives in the addon (`VCR._flows`, weak by flow), never in `flow.metadata`, which
mitmproxy serializes into `-w` files. A second addon, `guard.ReplayGuard`, is appended to the end
of mitmproxy's chain in `running`: it keeps whatever runs after llm-vcr (map_remote,
modify_headers, upstream proxy mode, other scripts) from sending a replayed flow upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from mitmproxy import ctx, exceptions, http

from . import jsonpath, options
from .cassette import Cassette, CassetteError, Interaction, Request, Response
from .client_request import (
    basic_auth_user,
    decode_user,
    header_cassette_name,
    host_port,
    is_websocket_upgrade,
    url_of,
)
from .guard import OriginalRequest, ReplayGuard, point_at_stream_server, restore_request
from .hosts import DEFAULT_HOSTS, HostPatterns
from .matching import MatchOptions, RequestIndex
from .modes import Mode, needs_newness, plan_for
from .record import StreamTee, build_request, build_response, stream_finished
from .redact import Redactor, redact_url
from .replay import StreamPlan, StreamServer, parse_latency, reason_phrase, reply_headers
from .store import CassetteNameError, CassetteStore, validate_name
from .writer import CassetteWriter, write_summary

log = logging.getLogger("llmvcr")

Identity = tuple[str, str, int, int]

CASSETTE_HEADER = "X-VCR-Cassette"


@dataclass(slots=True)
class CassetteStats:
    replayed: int = 0
    recorded: int = 0
    missed: int = 0
    unused: int = 0


@dataclass(slots=True)
class FlowState:
    """What the addon knows about one flow to an LLM host."""

    cassette: str
    url: str  # the URL the client asked for (before map_remote), not yet redacted
    name_error: str | None = None  # why the cassette name the client gave is unusable (400)
    websocket: bool = False  # an `Upgrade: websocket` request: never recorded or replayed
    request: Request | None = None  # redacted, as it will be stored
    record: bool = False
    replace_old: bool = False
    replays: bool = False  # its mode looks requests up in this cassette
    started_ns: int = 0  # time.monotonic_ns() when sent upstream: origin of chunk times
    started_wall: float = 0.0  # time.time() at the same moment
    tee: StreamTee | None = None
    timed: bool = False  # answered by the stream server
    original: OriginalRequest | None = None  # the client's request, while `timed` replaces it


@dataclass(slots=True)
class LoadedCassette:
    """A cassette loaded for replay, with which of its interactions have answered."""

    cassette: Cassette
    index: RequestIndex


@dataclass(slots=True)
class CassetteSession:
    stats: CassetteStats = field(default_factory=CassetteStats)
    loaded: LoadedCassette | None = None
    broken: str | None = None  # the error text last logged, so it is logged once
    # What this proxy replayed or recorded, by content: carried into the index of a reloaded
    # file, whose positions may have moved (another proxy appended, a teammate pulled).
    consumed: Counter[Identity] = field(default_factory=Counter)


def error_response(status: int, kind: str, message: str, headers: dict[str, str]) -> http.Response:
    """An error the proxy makes itself: JSON shaped like an OpenAI error, and SDKs never retry."""
    body = json.dumps({"error": {"type": kind, "code": kind, "message": message, "param": None}})
    return http.Response.make(
        status,
        body.encode(),
        {"Content-Type": "application/json", "x-should-retry": "false", **headers},
    )


class VCR:
    """Record and replay LLM API traffic as go-vcr cassettes."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.mode = Mode.RECORD_ONCE
        self.store: CassetteStore | None = None
        self.writer: CassetteWriter | None = None
        self.hosts = HostPatterns(DEFAULT_HOSTS)
        self.redactor = Redactor()
        self.match_options = MatchOptions()
        self.latency: float | None = None
        self.stream_server = StreamServer()
        self.sessions: dict[str, CassetteSession] = {}
        # The proxy user name given at CONNECT, per client connection (or why it is unusable).
        self._connection_users: dict[str, str | CassetteNameError] = {}
        self._proxyauth: str | None = None  # mitmproxy's option, read per request
        # Per-flow state, here and not in flow.metadata (which `-w` serializes); weak, so a flow
        # that never reaches `response` or `error` does not stay.
        self._flows: WeakKeyDictionary[http.HTTPFlow, FlowState] = WeakKeyDictionary()
        self.guard = ReplayGuard(self._flows.__contains__)
        self._started = False  # `running` has begun: option errors raise instead of logging
        self._config_error: str | None = None  # set while the options are invalid: refuse all

    # -- options ----------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        options.declare(loader)

    def configure(self, updated: set[str]) -> None:
        """Apply and check the options. A bad value stops mitmdump at start-up with one log line
        (mitmproxy would print an OptionsError raised then with a traceback); later, e.g. a
        `:set` in the console, it raises OptionsError so mitmproxy keeps the old value. While the
        options are invalid, every request llm-vcr would see is refused (fail closed)."""
        if self._config_error is not None:
            updated = set(ctx.options.keys())  # check everything again before serving
        try:
            self._configure(updated)
        except exceptions.OptionsError as e:
            self._config_error = str(e)
            if self._started:
                raise
            log.error("llm-vcr: %s", e)
            return
        self._config_error = None

    def _configure(self, updated: set[str]) -> None:
        opts = ctx.options
        options.refuse_unknown(opts)
        if "vcr_mode" in updated:
            self.mode = options.parse_mode(opts.vcr_mode)
            self.guard.replay_only = self.mode == Mode.REPLAY
        if "proxyauth" in updated:
            self._proxyauth = opts.proxyauth
        if self.mode != Mode.PASSTHROUGH and opts.connection_strategy != "lazy":
            # Never connect (or resolve) at CONNECT time: a replayed host may not even exist.
            opts.update(connection_strategy="lazy")
        if "vcr_latency" in updated:
            try:
                self.latency = parse_latency(opts.vcr_latency)
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from None
        if "vcr_cassette" in updated:
            try:
                validate_name(opts.vcr_cassette)
            except CassetteNameError as e:
                raise exceptions.OptionsError(f"vcr_cassette: {e}") from None
        if "vcr_hosts" in updated:
            try:
                self.hosts = HostPatterns(opts.vcr_hosts)
            except ValueError as e:
                raise exceptions.OptionsError(f"vcr_hosts: {e}") from None
        for name in ("vcr_ignore_json", "vcr_redact_json"):
            for path in getattr(opts, name):
                try:
                    jsonpath.parse(path)
                except ValueError as e:
                    raise exceptions.OptionsError(f"{name}: {path!r}: {e}") from None
        if updated & {"vcr_keep_headers", "vcr_redact_json", "vcr_match_headers"}:
            # A header that must match has to be stored, or every request matches "absent".
            keep = (*opts.vcr_keep_headers, *opts.vcr_match_headers)
            self.redactor = Redactor(keep_headers=keep, json_paths=tuple(opts.vcr_redact_json))
        if updated & {"vcr_ignore_json", "vcr_match_headers"}:
            self.match_options = MatchOptions(
                ignore_json=tuple(opts.vcr_ignore_json),
                match_headers=tuple(opts.vcr_match_headers),
            )
            for session in self.sessions.values():
                session.loaded = None  # rebuild indexes with the new rules on next use
        if "vcr_dir" in updated or self.store is None:
            root = Path(opts.vcr_dir).expanduser().resolve()
            if root.exists() and not root.is_dir():
                raise exceptions.OptionsError(f"vcr_dir: {root} is not a folder")
            self.store = CassetteStore(root, started_at=self.started_at)
            self.writer = CassetteWriter(self.store)
            self.sessions.clear()

    async def running(self) -> None:
        self._started = True
        await self.stream_server.start()
        self.guard.stream_port = self.stream_server.port
        self.install_guard(ctx.master.addons)
        if self._config_error is not None:
            return  # logged by configure; mitmdump exits, other tools get refusals
        root = self.store.root if self.store else "?"
        log.info("llm-vcr: %s mode, cassettes in %s", self.mode.value, root)

    def install_guard(self, addons: Any) -> None:
        """Append the replay guard to the end of mitmproxy's chain, after every addon loaded so
        far (a reloaded script replaces its predecessor's guard)."""
        previous = addons.get(ReplayGuard.name)
        if previous is not None:
            addons.remove(previous)
        addons.add(self.guard)

    # -- choosing the cassette ----------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        try:
            user: str | CassetteNameError | None = self._proxy_user(flow)
        except CassetteNameError as e:
            user = e
        if user:
            self._connection_users[flow.client_conn.id] = user

    def client_disconnected(self, client: Any) -> None:
        self._connection_users.pop(client.id, None)

    def _proxy_user(self, flow: http.HTTPFlow) -> str | None:
        auth = self._proxyauth
        if auth and auth != "any":
            # mitmproxy's proxyauth owns the user name (a login); pick cassettes by header then.
            return None
        if "proxyauth" in flow.metadata:
            return decode_user(flow.metadata["proxyauth"][0])
        value = flow.request.headers.get("Proxy-Authorization")
        return basic_auth_user(value) if value else None

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.request.headers
        header_values = headers.get_all(CASSETTE_HEADER)
        if header_values:
            del headers[CASSETTE_HEADER]
        name_error: str | None = None
        try:
            header_name = header_cassette_name(header_values)
        except CassetteNameError as e:
            header_name, name_error = None, str(e)
        try:
            user = self._proxy_user(flow) or self._connection_users.get(flow.client_conn.id)
        except CassetteNameError as e:
            user = e
        headers.pop("Proxy-Authorization", None)
        if self.mode == Mode.PASSTHROUGH or flow.response is not None:
            return
        request = flow.request
        if not self.hosts.matches(request.host, request.port):
            return
        if isinstance(user, CassetteNameError):
            if header_name is None and name_error is None:
                name_error = str(user)
            user = None
        self._flows[flow] = FlowState(
            cassette=header_name or user or ctx.options.vcr_cassette,
            url=client_url(request),
            name_error=name_error,
            # (WebSocket upgrades are GETs: the POSTs of LLM APIs skip the header scan.)
            websocket=request.method == "GET"
            and is_websocket_upgrade(headers.get("Upgrade", "")),
        )

    # -- answering or sending upstream ----------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if self._config_error is not None:  # the mode may be replay: nothing goes anywhere
            if flow.response is None:
                flow.response = error_response(
                    500, "vcr_misconfigured", f"llm-vcr is misconfigured: {self._config_error}",
                    {"X-VCR-Error": "misconfigured"},
                )
            return
        state = self._flows.get(flow)
        if state is None:
            if self.mode is Mode.REPLAY and flow.response is None and flow.live:
                self._not_recorded_host(flow)
            return
        if flow.response is not None or self.store is None:
            return
        try:
            await self._request(flow, state)
        except CassetteNameError as e:  # from the store: a symlink out of vcr_dir, a long name
            state.record = False
            flow.response = _bad_name(str(e))
        except Exception as e:
            # Never let a bug send a flow upstream that was meant to be replayed.
            log.exception("llm-vcr: internal error for %s", redact_url(state.url))
            state.record = False
            flow.response = error_response(
                500, "vcr_internal_error", f"llm-vcr internal error: {type(e).__name__}: {e}",
                {"X-VCR-Error": "internal-error"},
            )

    def _not_recorded_host(self, flow: http.HTTPFlow) -> None:
        """Replay mode, a host outside vcr_hosts: answered here, never looked up or connected."""
        request = flow.request
        message = (
            f"llm-vcr: replay mode: host {host_port(request.host, request.port)} is not "
            f"recorded (vcr_hosts: "
            f"{', '.join(self.hosts.patterns) or 'none'}); replay mode sends nothing upstream"
        )
        log.warning("%s", message)
        flow.response = error_response(502, "host_not_recorded", message, {
            "X-VCR-Error": "host-not-recorded"})

    async def _request(self, flow: http.HTTPFlow, state: FlowState) -> None:
        assert self.store is not None
        if state.name_error is not None:
            flow.response = _bad_name(state.name_error)
            return
        try:
            state.cassette = validate_name(state.cassette)
        except CassetteNameError as e:
            flow.response = _bad_name(str(e))
            return
        if state.websocket:
            self._websocket(flow, state)
            return
        session = self.sessions.setdefault(state.cassette, CassetteSession())
        request = self.redactor.request(
            build_request(
                flow.request.method,
                state.url,
                _header_pairs(flow.request),
                flow.request.raw_content or b"",
            )
        )
        state.request = request
        plan = plan_for(self.mode, needs_newness(self.mode) and self.store.is_new(state.cassette))
        state.replays = plan.replay
        if plan.replay:
            found = self._current(state.cassette, session)
            if found is None:
                found = await asyncio.to_thread(self._open, state.cassette, session)
            if isinstance(found, CassetteError):
                flow.response = self._broken(session, found)
                return
            loaded = self._install(session, found)
            hit = loaded.index.take(request, reuse=ctx.options.vcr_reuse) if loaded else None
            if hit is not None:
                session.stats.replayed += 1
                session.consumed[_identity(hit)] += 1
                await self._answer(flow, state, hit)
                return
            if not plan.record:
                session.stats.missed += 1
                flow.response = await self._miss(state, request, loaded)
                return
        if plan.record:
            state.record = True
            state.replace_old = plan.replace_old
            # Ask for an identity body so the stored stream is readable; a server that compresses
            # anyway is decoded by the tee.
            flow.request.headers.pop("Accept-Encoding", None)
            state.started_ns = time.monotonic_ns()
            state.started_wall = time.time()

    def _websocket(self, flow: http.HTTPFlow, state: FlowState) -> None:
        """A WebSocket upgrade is never recorded or replayed: it passes through unrecorded where
        the mode sends this request upstream, and is refused (no connection) where it does not."""
        assert self.store is not None
        plan = plan_for(self.mode, needs_newness(self.mode) and self.store.is_new(state.cassette))
        if plan.record:
            del self._flows[flow]  # not ours: mitmproxy proxies the WebSocket as it is
            return
        message = (
            f"llm-vcr: {self.mode.value} mode: WebSocket connections are not recorded, so "
            f"cassette '{state.cassette}' cannot answer {redact_url(state.url)}"
        )
        log.warning("%s", message)
        flow.response = error_response(501, "websocket_not_recorded", message, {
            "X-VCR-Error": "websocket-not-recorded"})

    def _current(self, name: str, session: CassetteSession) -> LoadedCassette | None:
        """The session's cassette when its file is unchanged (a stat, no parse, no thread);
        None: `_open` must read it."""
        assert self.store is not None
        loaded = session.loaded
        if loaded is None or self.store.cached(name) is not loaded.cassette:
            return None
        return loaded

    def _open(self, name: str, session: CassetteSession) -> LoadedCassette | CassetteError | None:
        """In a worker thread (file system, parsing): the cassette with an index (a fresh one
        when the file changed), or its error; None: the file is missing."""
        assert self.store is not None
        try:
            cassette = self.store.load(name)
        except CassetteError as e:
            return e
        if cassette is None:
            return None
        loaded = session.loaded
        if loaded is not None and loaded.cassette is cassette:
            return loaded
        index = _index_without(cassette, self.match_options, Counter(session.consumed))
        return LoadedCassette(cassette, index)

    @staticmethod
    def _install(session: CassetteSession, found: LoadedCassette | None) -> LoadedCassette | None:
        """Make `found` the session's cassette, unless a concurrent request already installed an
        index of the same file (whose "used" marks must not be lost)."""
        if found is None:
            return None
        current = session.loaded
        if current is not None and current.cassette is found.cassette:
            return current
        session.loaded = found
        session.broken = None
        return found

    @staticmethod
    def _broken(session: CassetteSession, error: CassetteError) -> http.Response:
        text = str(error)
        if session.broken != text:
            log.error("llm-vcr: broken cassette: %s", text)
            session.broken = text
        return error_response(500, "cassette_broken", f"broken cassette: {text}", {
            "X-VCR-Error": "broken-cassette"})

    async def _answer(self, flow: http.HTTPFlow, state: FlowState, hit: Interaction) -> None:
        response = hit.response
        if self.latency is None:
            flow.response = _made_response(response)
            return
        origin = time.monotonic()
        if response.chunks:
            path = self.stream_server.register(StreamPlan(response, origin, self.latency))
            # Pointed at the stream server now, and again by the guard after every other addon.
            state.original = point_at_stream_server(flow, self.stream_server.port, path)
            self.guard.mark_timed(flow, path)
            state.timed = True
            return
        # No chunk timing (a go-vcr cassette): wait the recorded time to headers, then answer.
        await asyncio.sleep(response.duration / 1e9 * self.latency)
        flow.response = _made_response(response)

    async def _miss(
        self, state: FlowState, request: Request, loaded: LoadedCassette | None
    ) -> http.Response:
        assert self.store is not None
        path = self.store.path_for(state.cassette)
        if loaded is None:
            names = await asyncio.to_thread(self._cassette_names)  # a walk of the whole store
            nearest = difflib.get_close_matches(state.cassette, names, n=3)
            hint = f"; nearest names: {', '.join(nearest)}" if nearest else ""
            detail = f"cassette file {_shown(path)} does not exist{hint}"
        else:
            # A scan of the whole cassette: off the event loop, it can hold 100,000 interactions.
            detail = await asyncio.to_thread(loaded.index.explain_miss, request)
        message = (
            f"llm-vcr: no recorded answer in cassette '{state.cassette}' ({_shown(path)}): {detail}"
        )
        log.warning("%s", message)
        return error_response(404, "cassette_miss", message, {"X-VCR-Miss": state.cassette})

    def _cassette_names(self) -> list[str]:
        assert self.store is not None
        root = self.store.root
        return [
            p.relative_to(root).as_posix().removesuffix(".yaml")
            for p in root.rglob("*.yaml")
            if not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]

    # -- recording ---------------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self._flows.get(flow)
        if flow.response is None:
            return
        if state is None:
            # Not ours to record, but mitmproxy would buffer an event stream until its end,
            # which breaks live clients: let it through as it comes.
            if _is_event_stream(flow.response) and not flow.response.stream:
                flow.response.stream = True
            return
        if state.timed:
            if flow.server_conn.address != ("127.0.0.1", self.stream_server.port):
                # Something redirected it after the guard: the answer is not the cassette's.
                log.error(
                    "llm-vcr: a timed replay of %s was sent elsewhere; answer withheld",
                    redact_url(state.url),
                )
                flow.kill()
                return
            flow.response.stream = True
        elif state.record:
            state.tee = StreamTee(
                state.started_ns, flow.response.headers.get("Content-Encoding", "")
            )
            flow.response.stream = state.tee

    def response(self, flow: http.HTTPFlow) -> None:
        state = self._flows.pop(flow, None)
        if state is None:
            return
        shown_url = redact_url(state.url)
        if state.record and state.tee is not None and state.request is not None:
            self._save(flow, state, shown_url)
        self._show_client_request(flow, state, shown_url)

    def _show_client_request(self, flow: http.HTTPFlow, state: FlowState, shown_url: str) -> None:
        """The dumper prints flow lines after this hook: show the client's request and URL,
        without secrets in the URL. (Setting the URL re-parses it: skipped when it is already
        the one to show.)"""
        if state.original is not None:
            self.guard.unmark(flow)
            restore_request(flow, state.original)
            state.original = None
        if client_url(flow.request) != shown_url:
            flow.request.url = shown_url

    def _save(self, flow: http.HTTPFlow, state: FlowState, shown_url: str) -> None:
        assert self.writer is not None and flow.response is not None and state.tee is not None
        tee = state.tee
        if tee.failed:
            log.warning(
                "llm-vcr: %s %s: response body could not be decoded; not recorded in '%s'",
                flow.request.method, shown_url, state.cassette,
            )
            return
        response_headers = [(k, v) for k, v in flow.response.headers.items(multi=True)]
        # go-vcr's `duration`: request sent upstream -> response headers (mitmproxy's timestamps
        # are wall-clock, like started_wall).
        duration = int(max(0.0, (flow.response.timestamp_start or 0) - state.started_wall) * 1e9)
        response = build_response(
            flow.response.status_code,
            flow.response.reason,
            flow.response.http_version,
            response_headers,
            tee.body,
            duration,
            tee.chunks,
            tee.decoded,
        )
        interaction = Interaction(request=state.request, response=self.redactor.response(response))
        session = self.sessions.setdefault(state.cassette, CassetteSession())
        session.stats.recorded += 1
        if state.replays:  # only a replaying proxy needs to know; a recording one must not grow
            session.consumed[_identity(interaction)] += 1
        if session.loaded is not None:
            session.loaded.index.add_used(interaction)
        self.writer.submit(state.cassette, interaction, state.replace_old)
        log.info(
            "llm-vcr: recorded %s %s -> %s (%d bytes, %.0f ms) in '%s'",
            flow.request.method, shown_url, flow.response.status_code, len(tee.body),
            response.duration / 1e6, state.cassette,
        )

    def error(self, flow: http.HTTPFlow) -> None:
        state = self._flows.pop(flow, None)
        if state is None:
            return
        shown_url = redact_url(state.url)
        tee = state.tee
        if (
            state.record and tee is not None and flow.response is not None and not tee.failed
            and _is_event_stream(flow.response) and stream_finished(tee.body)
        ):
            # The client hung up after the final event (SDKs do): the stream is whole.
            self._save(flow, state, shown_url)
            self._show_client_request(flow, state, shown_url)
            return
        if state.record:
            log.warning(
                "llm-vcr: %s %s failed (%s); nothing saved in '%s'",
                flow.request.method, shown_url, flow.error.msg if flow.error else "?",
                state.cassette,
            )
        self._show_client_request(flow, state, shown_url)

    # -- shutdown -------------------------------------------------------------------------------

    async def done(self) -> None:
        if self.writer is not None:
            await self.writer.flush()
        await self.stream_server.stop()
        summary: dict[str, dict[str, int]] = {}
        for name, session in sorted(self.sessions.items()):
            stats = session.stats
            if session.loaded is not None:
                stats.unused = len(session.loaded.index.unused())
            summary[name] = {
                "replayed": stats.replayed, "recorded": stats.recorded,
                "missed": stats.missed, "unused": stats.unused,
            }
            log.info(
                "llm-vcr: cassette '%s': replayed %d, recorded %d, missed %d, unused %d",
                name, stats.replayed, stats.recorded, stats.missed, stats.unused,
            )
        if ctx.options.vcr_summary:
            write_summary(Path(ctx.options.vcr_summary), {"cassettes": summary})
        with contextlib.suppress(exceptions.AddonManagerError):
            if ctx.master.addons.get(ReplayGuard.name) is self.guard:
                ctx.master.addons.remove(self.guard)

def client_url(request: http.Request) -> str:
    """The URL the client asked for, as Go writes it (see `client_request.url_of`)."""
    return url_of(request.scheme, request.host, request.port, request.path)


def _bad_name(message: str) -> http.Response:
    return error_response(400, "cassette_name_invalid", message, {
        "X-VCR-Error": "bad-cassette-name"})


def _is_event_stream(response: http.Response) -> bool:
    return response.headers.get("Content-Type", "").lower().startswith("text/event-stream")


def _header_pairs(request: http.Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.headers.items(multi=True)]


def _made_response(response: Response) -> http.Response:
    """The recorded answer as a mitmproxy response.

    Built around `ResponseData` directly: its constructor type-checks every field at run time
    (an `if __debug__` check that costs more than the rest of a replay), and these values are
    typed by construction. The replay tests cover this path on every answer.
    """
    headers = http.Headers([(k.encode(), v.encode()) for k, v in reply_headers(response)])
    now = time.time()
    data = object.__new__(http.ResponseData)
    data.__dict__.update(
        http_version=b"HTTP/1.1",
        status_code=response.code,
        reason=reason_phrase(response).encode("latin-1", "replace"),
        headers=headers,
        content=response.body,
        trailers=None,
        timestamp_start=now,
        timestamp_end=now,
    )
    made = object.__new__(http.Response)
    made.data = data
    return made


def _identity(interaction: Interaction) -> Identity:
    """What makes two interactions the same recording (bytes objects cache their hash)."""
    request = interaction.request
    return (request.method, request.url, hash(request.body), hash(interaction.response.body))


def _index_without(
    cassette: Cassette, options: MatchOptions, consumed: Counter[Identity]
) -> RequestIndex:
    """An index of `cassette` in which what this proxy already consumed counts as used."""
    index = RequestIndex(cassette.interactions, options)
    if consumed:
        left = Counter(consumed)
        for position, interaction in enumerate(cassette.interactions):
            key = _identity(interaction)
            if left[key] > 0:
                left[key] -= 1
                index.mark_used(position)
    return index


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
