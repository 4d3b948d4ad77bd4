"""A mitmproxy script (`mitmdump -s`) for tests of a plain mitmdump: stream every response.

mitmproxy 12 buffers a response it is not told to stream, SSE included (it only warns), so a
plain mitmdump delivers a stream all at once at its end. `stream_large_bodies` would stream
responses too, but it also streams request bodies, and a streamed request is sent upstream before
the `request` hook, where `map_remote` would have redirected it. Setting `stream` in
`responseheaders` touches only responses. (The vcr addon streams responses itself.)
"""

from __future__ import annotations

from mitmproxy import http


def responseheaders(flow: http.HTTPFlow) -> None:
    assert flow.response is not None
    flow.response.stream = True
