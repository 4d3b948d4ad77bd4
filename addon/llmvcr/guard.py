"""The replay guard: the last addon in mitmproxy's chain, so that nothing running after llm-vcr
can send a replayed request anywhere but the addon's own stream server.

Why a second addon: mitmproxy runs script addons (llm-vcr among them) before its own MapRemote,
ModifyHeaders and StreamBodies, and before scripts that other addons add later; upstream proxy
mode (`--mode upstream:...`) routes a flow through `flow.server_conn.via` after every hook. A
timed replay points the flow at the stream server in llm-vcr's `request` hook, where any of those
could still point it back at the real host, with the client's credentials. An addon added to the
chain in `running` runs after all of them, so `ReplayGuard` re-asserts the destination there:

- `requestheaders`: request streaming off for the flows llm-vcr owns (a streamed request is sent
  upstream before any `request` hook runs, and matching needs the body anyway) and, in `replay`
  mode, for every flow.
- `request`: a timed replay goes to the stream server with nothing of the client's request: a
  fresh `GET <unguessable path>` with only a Host header, no body, no upstream proxy (`via`).
- `server_connect`: in `replay` mode no connection opens to anything but the stream server (the
  last line of defence: it does not depend on any hook having run).

`point_at_stream_server` and `restore_request` are also used by the addon itself: the flow is
pointed at the stream server as soon as the cassette answers, and the client's request is put
back (for mitmproxy's printers and `-w` files) once the answer is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from mitmproxy import connection, http
from mitmproxy.proxy import server_hooks

log = logging.getLogger("llmvcr")

STREAM_HOST = "127.0.0.1"


@dataclass(slots=True)
class OriginalRequest:
    """What `point_at_stream_server` replaced, to put back once the answer is in."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    authority: str
    headers: http.Headers
    content: bytes | None
    trailers: http.Headers | None


def point_at_stream_server(flow: http.HTTPFlow, port: int, path: str) -> OriginalRequest:
    """Make `flow` a bare `GET path` to the stream server on 127.0.0.1:`port`; what it was.

    Only what the stream server needs is sent: the client's headers (Authorization, api-key,
    Cookie, X-Amz-*, Proxy-Authorization...) and body stay in the proxy.
    """
    request = flow.request
    original = OriginalRequest(
        method=request.method, scheme=request.scheme, host=request.host, port=request.port,
        path=request.path, authority=request.authority, headers=request.headers,
        content=request.raw_content, trailers=request.trailers,
    )
    reassert_stream_server(flow, port, path)
    return original


def reassert_stream_server(flow: http.HTTPFlow, port: int, path: str) -> None:
    """Point `flow` (again) at the stream server, whatever an addon did to it meanwhile."""
    request = flow.request
    # Headers first: setting host and port rewrites the Host header of the headers in place.
    request.headers = http.Headers(host=f"{STREAM_HOST}:{port}")
    request.method = "GET"
    request.scheme = "http"
    request.host = STREAM_HOST
    request.port = port
    request.path = path
    request.authority = ""  # origin-form request line, also in upstream and reverse modes
    request.raw_content = b""
    request.trailers = None
    request.stream = False
    if flow.server_conn.address != (STREAM_HOST, port) or flow.server_conn.via is not None:
        # A fresh server spec without `via`: upstream proxy mode would otherwise tunnel the
        # request through the upstream proxy, and reverse mode keeps its own address here.
        flow.server_conn = connection.Server(address=(STREAM_HOST, port))


def restore_request(flow: http.HTTPFlow, original: OriginalRequest) -> None:
    """Put back the client's request that `point_at_stream_server` replaced."""
    request = flow.request
    request.method = original.method
    request.scheme = original.scheme
    request.host = original.host  # (rewrites the stream request's Host header, not the client's)
    request.port = original.port
    request.path = original.path
    request.headers = original.headers
    request.authority = original.authority
    request.raw_content = original.content
    request.trailers = original.trailers


class ReplayGuard:
    """The addon llm-vcr appends to the end of mitmproxy's chain (see the module docstring)."""

    name = "llm-vcr-replay-guard"

    def __init__(self, owns: Callable[[http.HTTPFlow], bool]) -> None:
        self._owns = owns  # does llm-vcr record or replay this flow?
        self.replay_only = False  # vcr_mode=replay: nothing may connect but the stream server
        self.stream_port = 0
        # Timed replays in flight: flow -> stream server path (weak: a flow that never gets a
        # response or error hook does not stay here).
        self._timed: WeakKeyDictionary[http.HTTPFlow, str] = WeakKeyDictionary()

    def mark_timed(self, flow: http.HTTPFlow, path: str) -> None:
        self._timed[flow] = path

    def unmark(self, flow: http.HTTPFlow) -> None:
        self._timed.pop(flow, None)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.stream and (self.replay_only or self._owns(flow)):
            flow.request.stream = False

    def request(self, flow: http.HTTPFlow) -> None:
        if not self._timed:
            return
        path = self._timed.get(flow)
        if path is not None and flow.response is None:
            reassert_stream_server(flow, self.stream_port, path)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if not self.replay_only or data.server.address == (STREAM_HOST, self.stream_port):
            return
        host, port = data.server.address or ("?", 0)
        data.server.error = f"llm-vcr: replay mode connects to no server (refused {host}:{port})"
        log.warning("llm-vcr: replay mode: refused a connection to %s:%s", host, port)


def install_last(guard: ReplayGuard, addons: Any) -> None:
    """Append the replay guard to the end of mitmproxy's chain, after every addon loaded so far
    (a reloaded script replaces its predecessor's guard)."""
    previous = addons.get(ReplayGuard.name)
    if previous is not None:
        addons.remove(previous)
    addons.add(guard)
