"""The mitmproxy addon: its options and hooks; the work is done by the modules each hook names.

Hooks follow one request through its steps:
`http_connect` (note the proxy user name and password) -> `requestheaders` (pick the session and
the cassette, note the URL the client asked for) -> `request` (answer from the cassette, or send
upstream to be recorded; or answer the control API) -> `responseheaders` (tee the stream) ->
`response` (hand the interaction to the writer) -> `done` (flush; one summary line per session and
cassette).

Per-flow state lives in the addon (`VCR._flows`, weak by flow), never in `flow.metadata`, which
mitmproxy serializes into `-w` files. A second addon, `guard.ReplayGuard`, is appended to the end
of mitmproxy's chain in `running`: it keeps whatever runs after llm-vcr (map_remote,
modify_headers, upstream proxy mode, other scripts) from sending a replayed flow upstream.
What a run has used and counted belongs to its session (`sessions`); the proxy's own options are
its default session.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import time
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from mitmproxy import ctx, exceptions, http

from . import answers, options, session_host, verifying
from .answers import bad_name, json_response, recorded_response
from .cassette import CassetteError, Interaction, Request
from .client_request import (
    header_cassette_name,
    host_port,
    is_websocket_upgrade,
    url_of,
)
from .control import CONTROL_HOST, ControlAPI
from .flowstate import FlowState
from .guard import ReplayGuard, install_last, point_at_stream_server, restore_request
from .hosts import DEFAULT_HOSTS, HostPatterns
from .indexes import CassetteIndexes, Loaded, identity, sync
from .logins import ProxyLogins
from .matching import MatchOptions
from .modes import Mode, Plan, needs_newness, plan_for
from .record import StreamTee, build_request, captured_response, stream_finished
from .redact import Redactor, redact_url
from .replay import StreamPlan, StreamServer
from .sessions import Miss, Registry, Session, SessionError, Settings
from .store import CassetteNameError, CassetteStore, validate_name
from .summary import Summary
from .writer import CassetteWriter, Start

log = logging.getLogger("llmvcr")

CASSETTE_HEADER = "X-VCR-Cassette"
SESSION_HEADER = "X-VCR-Session"


class VCR:
    """Record and replay LLM API traffic as go-vcr cassettes."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.store: CassetteStore | None = None
        self.writer: CassetteWriter | None = None
        self.indexes: CassetteIndexes | None = None
        self.hosts = HostPatterns(DEFAULT_HOSTS)
        self.redactor = Redactor()
        self.match_options = MatchOptions()
        self.stream_server = StreamServer()
        self.sessions = Registry(Settings(Mode.RECORD_ONCE), 3600.0, time.monotonic())
        self.summary = Summary()
        self.control = ControlAPI(self.sessions, self._check_name, self._unused, self.summary)
        self.control.open_port = session_host.open_port
        self.control.close_port = session_host.close_port
        self.control.prepare = lambda session: session_host.load_named(self.indexes, session)
        self.control.default_cassette = lambda: ctx.options.vcr_cassette
        self.control.flush = lambda session: session_host.settle(
            self._flows.values, session, self.writer)
        self.logins = ProxyLogins()
        # Per-flow state, here and not in flow.metadata (which `-w` serializes); weak, so a flow
        # that never reaches `response` or `error` does not stay.
        self._flows: WeakKeyDictionary[http.HTTPFlow, FlowState] = WeakKeyDictionary()
        self._control_flows: WeakKeyDictionary[http.HTTPFlow, bool] = WeakKeyDictionary()
        self.guard = ReplayGuard(self._flows.__contains__)
        self._started = False  # `running` has begun: option errors raise instead of logging
        self._config_error: str | None = None  # set while the options are invalid: refuse all
        self._expiry: asyncio.Task[None] | None = None

    @property
    def mode(self) -> Mode:
        return self.sessions.default.mode

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
        if updated & {"vcr_mode", "vcr_reuse", "vcr_latency"}:
            self.sessions.set_default(options.default_settings(opts))
            self.guard.replay_only = self.mode == Mode.REPLAY
        if "vcr_session_idle" in updated:
            self.sessions.idle_timeout = options.session_idle(opts)
        if "proxyauth" in updated:
            self.logins.proxyauth = opts.proxyauth
        if opts.connection_strategy != "lazy":
            # Never connect (or resolve) at CONNECT time: a replayed host may not even exist, and
            # any session, whatever the proxy's own mode, may replay.
            opts.update(connection_strategy="lazy")
        options.check_names(opts, updated)
        if "vcr_hosts" in updated:
            self.hosts = options.host_patterns(opts)
        if updated & {"vcr_keep_headers", "vcr_redact_json", "vcr_match_headers"}:
            # A header that must match has to be stored, or every request matches "absent".
            keep = (*opts.vcr_keep_headers, *opts.vcr_match_headers)
            self.redactor = Redactor(keep_headers=keep, json_paths=tuple(opts.vcr_redact_json))
        if updated & {"vcr_ignore_json", "vcr_match_headers"}:
            self.match_options = MatchOptions(
                ignore_json=tuple(opts.vcr_ignore_json),
                match_headers=tuple(opts.vcr_match_headers),
            )
            if self.indexes is not None:
                self.indexes = CassetteIndexes(self.indexes.store, self.match_options)
        if "vcr_dir" in updated or self.store is None:
            self.store = CassetteStore(options.store_root(opts), started_at=self.started_at)
            self.writer = CassetteWriter(self.store)
            self.indexes = CassetteIndexes(self.store, self.match_options)

    async def running(self) -> None:
        self._started = True
        await self.stream_server.start()
        self.guard.stream_port = self.stream_server.port
        install_last(self.guard, ctx.master.addons)
        if self._config_error is not None:
            return  # logged by configure; mitmdump exits, other tools get refusals
        self._expiry = asyncio.get_running_loop().create_task(self._expire_idle_sessions())
        root = self.store.root if self.store else "?"
        log.info("llm-vcr: %s mode, cassettes in %s", self.mode.value, root)

    async def _expire_idle_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.sessions.idle_timeout / 4))
            for session in self.sessions.expire(time.monotonic()):
                await self.control.closed(session, "expired after being idle")

    # -- choosing the session and the cassette ------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self.logins.connected(flow)

    def client_disconnected(self, client: Any) -> None:
        self.logins.disconnected(client)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.request.headers
        header_values = headers.get_all(CASSETTE_HEADER)
        if header_values:
            del headers[CASSETTE_HEADER]
        session_id = headers.pop(SESSION_HEADER, None)
        name_error: str | None = None
        try:
            header_name = header_cassette_name(header_values)
        except CassetteNameError as e:
            header_name, name_error = None, str(e)
        user, ref = self.logins.of(flow)
        headers.pop("Proxy-Authorization", None)
        if flow.response is not None:
            return
        request = flow.request
        if request.host == CONTROL_HOST:
            self._control_flows[flow] = True
            return
        sockname = flow.client_conn.sockname
        session = self.sessions.resolve(session_id, ref, sockname[1] if sockname else None)
        if not isinstance(session, SessionError):
            if session.mode == Mode.PASSTHROUGH:
                return
            session.last_seen = time.monotonic()
        if not self.hosts.matches(request.host, request.port):
            if session_id is not None or ref is not None or self.mode == Mode.REPLAY:
                # Only a session that replays cares: it answers this host without going out.
                self._flows[flow] = FlowState("", client_url(request), session, False)
            return
        if isinstance(user, CassetteNameError):
            if header_name is None and name_error is None:
                name_error = str(user)
            user = None
        default_name = (
            session.cassette if not isinstance(session, SessionError) and session.cassette
            else ctx.options.vcr_cassette
        )
        self._flows[flow] = FlowState(
            cassette=header_name or user or default_name,
            url=client_url(request),
            session=session,
            name_error=name_error,
            # (WebSocket upgrades are GETs: the POSTs of LLM APIs skip the header scan.)
            websocket=request.method == "GET"
            and is_websocket_upgrade(headers.get("Upgrade", "")),
        )

    # -- answering or sending upstream ----------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if self._config_error is not None:  # the mode may be replay: nothing goes anywhere
            if flow.response is None:
                flow.response = answers.misconfigured(self._config_error)
            return
        if flow in self._control_flows:
            status, body = await self.control.handle(
                flow.request.method, flow.request.path, flow.request.raw_content or b"",
                time.monotonic(),
            )
            flow.response = json_response(status, body)
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
            state.plan = None
            flow.response = bad_name(str(e))
        except Exception as e:
            # Never let a bug send a flow upstream that was meant to be replayed.
            log.exception("llm-vcr: internal error for %s", redact_url(state.url))
            state.plan = None
            flow.response = answers.internal_error(e)

    def _not_recorded_host(self, flow: http.HTTPFlow) -> None:
        """A replaying session, a host outside vcr_hosts: answered here, never looked up or
        connected."""
        where = host_port(flow.request.host, flow.request.port)
        flow.response = answers.host_not_recorded(where, tuple(self.hosts.patterns))

    async def _request(self, flow: http.HTTPFlow, state: FlowState) -> None:
        assert self.store is not None and self.indexes is not None
        session = state.session
        if isinstance(session, SessionError):
            flow.response = answers.session_refused(session.status, str(session))
            return
        if not state.recorded_host:
            del self._flows[flow]
            if session.mode == Mode.REPLAY:
                self._not_recorded_host(flow)
            return
        if state.name_error is not None:
            flow.response = bad_name(state.name_error)
            return
        try:
            state.cassette = validate_name(state.cassette)
        except CassetteNameError as e:
            flow.response = bad_name(str(e))
            return
        plan = plan_for(session.mode, needs_newness(session.mode) and self._is_new(
            session, state.cassette))
        if state.websocket:
            self._websocket(flow, state, session, plan)
            return
        request = self.redactor.request(
            build_request(
                flow.request.method,
                state.url,
                list(flow.request.headers.items(multi=True)),
                flow.request.raw_content or b"",
            )
        )
        state.request = request
        state.plan = plan
        if plan.replay or plan.verify:
            found = await self._take_in_order(state, session, request)
            if isinstance(found, CassetteError):
                if not plan.verify:
                    flow.response = self._broken(state.cassette, found)
                    return
                state.unverifiable = f"broken cassette: {found}"
            elif plan.verify:  # the live answer is compared with it when it comes
                state.counterpart = found[1]
            elif found[1] is not None:
                session.use(state.cassette).replayed += 1
                await self._answer(flow, state, found[1], session.settings.latency)
                return
            elif not plan.record:
                flow.response = await self._miss(state, request, found[0], session)
                return
        # Upstream, to be recorded or verified. Ask for an identity body so the stored stream is
        # readable; a server that compresses anyway is decoded by the tee.
        flow.request.headers.pop("Accept-Encoding", None)
        state.upstream = True
        state.started_ns = time.monotonic_ns()
        state.started_wall = time.time()

    async def _take_in_order(
        self, state: FlowState, session: Session, request: Request
    ) -> tuple[Loaded | None, Interaction | None] | CassetteError:
        """`_take` from the request's cassette; for a request that named none, when nothing is
        left for it there, from the session's other named cassettes in order (replay only: the
        first cassette is the one that records). `state.cassette` becomes the one that answered."""
        first = found = await self._take(state.cassette, session, request)
        if state.cassette != session.cassette or len(session.named) < 2:
            return found
        for name in session.named[1:]:
            if isinstance(found, CassetteError) or found[1] is not None:
                break
            state.cassette = name
            found = await self._take(name, session, request)
        if not isinstance(found, CassetteError) and found[1] is None:
            state.cassette = session.named[0]  # a miss, or a recording, is the first's
            return first
        return found

    async def _take(
        self, name: str, session: Session, request: Request
    ) -> tuple[Loaded | None, Interaction | None] | CassetteError:
        """The cassette's index and the interaction that answers `request` in this session, now
        used (None: none is left for it; the index None: no such file), or the file's error."""
        assert self.indexes is not None
        loaded = self.indexes.current(name)
        if loaded is None:
            found = await asyncio.to_thread(self.indexes.refresh, name)
            if found is None or isinstance(found, CassetteError):
                return found if found is not None else (None, None)
            loaded = found
        use = session.use(name)
        position = loaded.index.take_position(request, session.settings.reuse, sync(use, loaded))
        if position is None:
            return loaded, None
        hit = loaded.index[position]
        use.consumed[identity(hit)] += 1
        return loaded, hit

    def _is_new(self, session: Session, name: str) -> bool:
        """Whether the cassette counts as new for this session (see `sessions`)."""
        assert self.store is not None
        if session is self.sessions.default:
            return self.store.is_new(name)
        use = session.use(name)
        if use.is_new is None:
            use.is_new = not self.store.path_for(name).exists()
        return use.is_new

    def _websocket(
        self, flow: http.HTTPFlow, state: FlowState, session: Session, plan: Plan
    ) -> None:
        """A WebSocket upgrade is never recorded or replayed: it passes through unrecorded where
        the mode sends this request upstream, and is refused (no connection) where it does not."""
        if plan.record or plan.verify:
            del self._flows[flow]  # not ours: mitmproxy proxies the WebSocket as it is
            return
        flow.response = answers.websocket_refused(
            session.mode.value, state.cassette, redact_url(state.url))

    def _broken(self, name: str, error: CassetteError) -> http.Response:
        assert self.indexes is not None
        if self.indexes.broken(name, error):
            log.error("llm-vcr: broken cassette: %s", error)
        return answers.broken_cassette(str(error))

    async def _answer(
        self, flow: http.HTTPFlow, state: FlowState, hit: Interaction, latency: float | None
    ) -> None:
        response = hit.response
        if latency is None:
            flow.response = recorded_response(response)
            return
        # The stream's clock starts when the request reached the proxy, not after the proxy's
        # own queueing: a burst of streams keeps every stream's recorded pace.
        origin = time.monotonic() - max(0.0, time.time() - flow.request.timestamp_start)
        if response.chunks:
            path = self.stream_server.register(StreamPlan(response, origin, latency))
            # Pointed at the stream server now, and again by the guard after every other addon.
            state.original = point_at_stream_server(flow, self.stream_server.port, path)
            self.guard.mark_timed(flow, path)
            state.timed = True
            return
        # No chunk timing (a go-vcr cassette): wait the recorded time to headers, then answer.
        await asyncio.sleep(max(0.0, origin + response.duration / 1e9 * latency - time.monotonic()))
        flow.response = recorded_response(response)

    async def _miss(
        self, state: FlowState, request: Request, loaded: Loaded | None, session: Session
    ) -> http.Response:
        assert self.store is not None
        path = self.store.path_for(state.cassette)
        use = session.use(state.cassette)
        if loaded is None:
            names = await asyncio.to_thread(self.store.names)  # a walk of the whole store
            nearest = difflib.get_close_matches(state.cassette, names, n=3)
            hint = f"; nearest names: {', '.join(nearest)}" if nearest else ""
            detail = f"cassette file {_shown(path)} does not exist{hint}"
        else:
            # A scan of the whole cassette: off the event loop, it can hold 100,000 interactions.
            detail = await asyncio.to_thread(loaded.index.explain_miss, request, use.usage)
        use.add_miss(Miss(f"{request.method} {redact_url(request.url)}", detail))
        prefix = "" if session is self.sessions.default else f"session {session.id}: "
        message = (
            f"llm-vcr: {prefix}no recorded answer in cassette '{state.cassette}' "
            f"({_shown(path)}): {detail}"
        )
        return answers.miss(state.cassette, message)

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
        elif state.captured:
            state.tee = StreamTee(
                state.started_ns, flow.response.headers.get("Content-Encoding", "")
            )
            flow.response.stream = state.tee

    def response(self, flow: http.HTTPFlow) -> None:
        state = self._flows.pop(flow, None)
        if state is None:
            return
        shown_url = redact_url(state.url)
        if state.captured and state.tee is not None and state.request is not None:
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
        assert state.request is not None and state.plan is not None
        session = state.session
        assert not isinstance(session, SessionError)
        tee = state.tee
        if tee.failed and state.verify:
            verifying.not_verified(session.use(state.cassette), state.request,
                                   "the live answer could not be decoded")
            return
        if tee.failed:
            log.warning(
                "llm-vcr: %s %s: response body could not be decoded; not recorded in '%s'",
                flow.request.method, shown_url, state.cassette,
            )
            return
        response = captured_response(
            flow.response.status_code, flow.response.reason, flow.response.http_version,
            list(flow.response.headers.items(multi=True)), tee, state.started_wall,
            flow.response.timestamp_start or 0.0,
        )
        interaction = Interaction(request=state.request, response=self.redactor.response(response))
        use = session.use(state.cassette)
        if state.verify:
            if state.unverifiable is not None:
                verifying.not_verified(use, state.request, state.unverifiable)
            else:
                recorded = state.counterpart
                if recorded is not None:  # as the recorder would save it today: a field
                    # redacted since it was recorded must not count as a difference
                    recorded = Interaction(
                        recorded.request, self.redactor.response(recorded.response)
                    )
                verifying.judge(
                    use, state.cassette, recorded, interaction.response, state.request
                )
            return
        use.recorded += 1
        if state.plan.replay:
            # It counts as used by this session once its append shows up in the index; a session
            # that never replays must not grow with what it wrote.
            key = identity(interaction)
            use.consumed[key] += 1
            use.pending[key] += 1
        self.writer.submit(state.cassette, interaction, self._start(session, state))
        use.wrote_at = time.monotonic()

    def _start(self, session: Session, state: FlowState) -> Start:
        """How this recording joins the cassette's file (see `sessions` for `record`)."""
        assert state.plan is not None
        if not state.plan.replace_old:
            return Start.APPEND
        if session is self.sessions.default:
            return Start.AFRESH_IF_OLD  # the proxy's own rule: a file from before it started
        return Start.AFRESH if self.sessions.starts_afresh(session, state.cassette) else (
            Start.APPEND
        )

    def error(self, flow: http.HTTPFlow) -> None:
        state = self._flows.pop(flow, None)
        if state is None:
            return
        shown_url = redact_url(state.url)
        tee = state.tee
        if (
            state.captured and tee is not None and flow.response is not None and not tee.failed
            and _is_event_stream(flow.response) and stream_finished(tee.body)
        ):
            # The client hung up after the final event (SDKs do): the stream is whole.
            self._save(flow, state, shown_url)
            self._show_client_request(flow, state, shown_url)
            return
        if state.verify and state.request is not None and not isinstance(state.session,
                                                                          SessionError):
            reason = flow.error.msg if flow.error else "the request failed"
            verifying.not_verified(state.session.use(state.cassette), state.request, reason)
        elif state.record:
            log.warning(
                "llm-vcr: %s %s failed (%s); nothing saved in '%s'",
                flow.request.method, shown_url, flow.error.msg if flow.error else "?",
                state.cassette,
            )
        self._show_client_request(flow, state, shown_url)

    # -- the control API's needs ------------------------------------------------------------------

    def _check_name(self, name: str) -> str:
        assert self.store is not None
        bare = validate_name(name)
        self.store.path_for(bare)  # the store's own checks: links out of the root, lengths
        return bare

    def _unused(self, name: str, use: Any) -> list[str] | None:
        return self.indexes.unused_lines(name, use) if self.indexes is not None else None

    # -- shutdown -------------------------------------------------------------------------------

    async def done(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await session_host.settle(self._flows.values, None, self.writer)
        await self.stream_server.stop()
        self.summary.finish(self.sessions, self._unused, ctx.options.vcr_summary)
        with contextlib.suppress(exceptions.AddonManagerError):
            if ctx.master.addons.get(ReplayGuard.name) is self.guard:
                ctx.master.addons.remove(self.guard)


def client_url(request: http.Request) -> str:
    """The URL the client asked for, as Go writes it (see `client_request.url_of`)."""
    return url_of(request.scheme, request.host, request.port, request.path)


def _is_event_stream(response: http.Response) -> bool:
    return response.headers.get("Content-Type", "").lower().startswith("text/event-stream")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
