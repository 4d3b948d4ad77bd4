"""The addon in-process, with mitmproxy's own test helpers (taddons, tflow): no mitmdump, no
sockets except the stream server's. Option checks, mode decisions, the answers the proxy makes
itself (bad names, WebSockets, hosts outside vcr_hosts), the replay guard, IPv6 URLs, the
stream server's refusals, the summary file (issue 11)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest
from mitmproxy import connection, exceptions, io
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow

from llmvcr.addon import VCR
from llmvcr.cassette import Chunk
from llmvcr.client_request import (
    basic_auth,
    decode_user,
    header_cassette_name,
    url_of,
)
from llmvcr.guard import ReplayGuard, install_last
from llmvcr.replay import StreamServer, parse_stream_request
from llmvcr.store import CassetteNameError
from support.inprocess import (
    BODY,
    CHAT_URL,
    ask,
    chat_flow,
    chat_interaction,
    error_of,
    run,
    vcr_context,
    write_cassette,
)

# ---- options


def test_unknown_mode_at_startup_is_one_error_line_and_requests_are_refused(
        tmp_path, caplog) -> None:
    async def test() -> None:
        with caplog.at_level(logging.ERROR, "llmvcr"):
            _, addon = vcr_context(tmp_path, ("vcr_mode=replay_only",))
        (record,) = [r for r in caplog.records if r.name == "llmvcr"]
        message = record.getMessage()
        assert "'replay_only' is not a mode" in message and "\n" not in message
        assert "record_once, replay, record, new_episodes, passthrough" in message
        assert record.exc_info is None
        flow = await ask(addon, chat_flow())
        assert flow.response is not None and flow.response.status_code == 500
        assert error_of(flow)["code"] == "vcr_misconfigured"
    run(test)


def test_misspelt_vcr_option_is_refused_with_the_valid_names(tmp_path, caplog) -> None:
    async def test() -> None:
        with caplog.at_level(logging.ERROR, "llmvcr"):
            _, addon = vcr_context(tmp_path, ("vcr_latncy=recorded",))
        message = caplog.records[-1].getMessage()
        assert "unknown option(s) vcr_latncy" in message
        assert "vcr_latency" in message and "vcr_mode" in message
        assert addon._config_error is not None
    run(test)


def test_bad_option_while_running_raises_options_error_and_keeps_the_old_value(
        tmp_path) -> None:
    async def test() -> None:
        tctx, addon = vcr_context(tmp_path, vcr_mode="replay")
        addon._started = True  # as after `running`: a `:set` in the console
        with pytest.raises(exceptions.OptionsError, match="valid modes: record_once"):
            tctx.configure(addon, vcr_mode="replay_only")
        assert tctx.options.vcr_mode == "replay"
        assert addon._config_error is None  # the rollback's configure succeeded
        flow = await ask(addon, chat_flow())
        assert flow.response is not None and error_of(flow)["code"] == "cassette_miss"
    run(test)


# ---- names


@pytest.mark.parametrize("headers", [
    [(b"X-VCR-Cassette", b"a"), (b"X-VCR-Cassette", b"b")],
    [(b"X-VCR-Cassette", b"caf\xe9")],
    [(b"Proxy-Authorization", b"Basic " + base64.b64encode(b"\xff\xfe:x"))],
    [(b"Proxy-Authorization", b"Basic " + base64.b64encode(b"team%ff:x"))],
], ids=["two-headers", "header-latin1", "user-bytes", "user-percent"])
def test_unreadable_cassette_names_are_400(tmp_path, headers) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="record")
        flow = chat_flow()
        for name, value in headers:
            flow.request.headers.fields += ((name, value),)
        await ask(addon, flow)
        assert flow.response is not None and flow.response.status_code == 400
        assert error_of(flow)["code"] == "cassette_name_invalid"
        assert flow.response.headers["X-VCR-Error"] == "bad-cassette-name"
    run(test)


def test_store_name_errors_are_400_not_500(tmp_path, monkeypatch) -> None:
    async def test() -> None:
        for mode, method in (("record_once", "is_new"), ("replay", "load")):
            _, addon = vcr_context(tmp_path, vcr_mode=mode)

            def refuse(name: str, *args: object) -> None:
                raise CassetteNameError(name, "it resolves outside the cassette folder")
            monkeypatch.setattr(addon.store, method, refuse)
            flow = await ask(addon, chat_flow(headers={"X-VCR-Cassette": "linked"}))
            assert flow.response is not None and flow.response.status_code == 400, mode
            assert error_of(flow)["code"] == "cassette_name_invalid"
            assert "outside the cassette folder" in error_of(flow)["message"]
    run(test)


def test_client_request_name_helpers() -> None:
    assert header_cassette_name([]) is None
    assert header_cassette_name(["café/x"]) == "café/x"
    assert header_cassette_name(["a, b"]) == "a, b"  # one header with a comma is one name
    with pytest.raises(CassetteNameError):
        header_cassette_name(["a", "b"])
    assert decode_user("team%2Fcase") == "team/case"
    assert decode_user("") is None
    assert basic_auth("Basic " + base64.b64encode(b"t%C3%A9:pw").decode()) == ("té", "pw")
    assert basic_auth("Bearer x") == (None, None)


# ---- the answers the proxy makes itself


def test_websocket_upgrade_is_refused_where_the_mode_does_not_go_upstream(tmp_path) -> None:
    async def test() -> None:
        store = tmp_path / "cassettes"
        write_cassette(store, "old", [chat_interaction()])
        ws = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "X-VCR-Cassette": "old"}
        for mode in ("replay", "record_once"):
            _, addon = vcr_context(tmp_path, vcr_mode=mode)
            flow = await ask(addon, chat_flow("https://api.openai.com/v1/realtime", ws, "GET",
                                              b""))
            assert flow.response is not None and flow.response.status_code == 501, mode
            assert flow.response.headers["X-VCR-Error"] == "websocket-not-recorded"
            assert error_of(flow)["code"] == "websocket_not_recorded"
        # Where the request goes upstream, the WebSocket passes through, not recorded.
        for mode, cassette in (("record_once", "fresh"), ("record", "old"),
                               ("new_episodes", "old")):
            _, addon = vcr_context(tmp_path, vcr_mode=mode)
            flow = await ask(addon, chat_flow("https://api.openai.com/v1/realtime",
                                              {**ws, "X-VCR-Cassette": cassette}, "GET", b""))
            assert flow.response is None, mode
            assert flow not in addon._flows  # not ours: never recorded
    run(test)


def test_replay_answers_a_host_outside_vcr_hosts_without_going_upstream(tmp_path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="replay",
                               vcr_hosts=["api.openai.com", "*.example.org"])
        flow = await ask(addon, chat_flow("https://not-an-llm.invalid/x", method="GET"))
        assert flow.response is not None and flow.response.status_code == 502
        assert flow.response.headers["X-VCR-Error"] == "host-not-recorded"
        error = error_of(flow)
        assert error["code"] == "host_not_recorded"
        assert "not-an-llm.invalid:443" in error["message"]
        assert "api.openai.com, *.example.org" in error["message"]
        # Other modes leave such a host alone.
        _, recorder = vcr_context(tmp_path, vcr_mode="record_once")
        other = await ask(recorder, chat_flow("https://not-an-llm.invalid/x", method="GET"))
        assert other.response is None
    run(test)


# ---- per-flow state and saved flows


def test_flow_state_is_not_in_metadata_and_the_flow_serializes(tmp_path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="record")
        flow = await ask(addon, chat_flow(CHAT_URL + "?key=s3cret"))
        assert flow.response is None and flow in addon._flows
        assert flow.metadata == {}
        with (tmp_path / "flows").open("wb") as f:
            io.FlowWriter(f).add(flow)  # raised "unserializable object: FlowState" before
        flow.response = tflow.tresp()
        addon.response(flow)
        assert flow not in addon._flows
        assert flow.request.url == "https://api.openai.com/v1/chat/completions?key=REDACTED"
    run(test)


# ---- IPv6 literal hosts


def test_ipv6_url_is_written_as_go_writes_it() -> None:
    assert url_of("https", "::1", 9999, "/v1?a=1") == "https://[::1]:9999/v1?a=1"
    assert url_of("https", "::1", 443, "/v1") == "https://[::1]/v1"
    assert url_of("http", "api.openai.com", 80, "/") == "http://api.openai.com/"
    assert url_of("http", "127.0.0.1", 8080, "/x") == "http://127.0.0.1:8080/x"


def test_ipv6_host_replays_and_shows_its_url(tmp_path) -> None:
    async def test() -> None:
        url = "https://[::1]:9999/v1/chat/completions"
        write_cassette(tmp_path / "cassettes", "six", [chat_interaction(url, b'{"six": 6}')])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_hosts=["::1"])
        flow = await ask(addon, chat_flow(url, {"X-VCR-Cassette": "six"}))
        assert flow.response is not None and flow.response.content == b'{"six": 6}'
        addon.response(flow)  # raised "No hostname given" before
        assert flow.request.host == "::1" and flow.request.port == 9999
    run(test)


# ---- the replay guard


def test_guard_points_a_timed_replay_back_at_the_stream_server(tmp_path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "timed",
                       [chat_interaction(chunks=[Chunk(at=1_000, size=12)])])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_latency="recorded")
        addon.stream_server.port = 4321  # registered paths need no running server here
        addon.guard.stream_port = 4321
        secrets = {"Authorization": "Bearer sk-live", "api-key": "k1", "x-api-key": "k2",
                   "x-goog-api-key": "k3", "Cookie": "sid=1", "X-Amz-Security-Token": "t",
                   "X-VCR-Cassette": "timed"}
        flow = await ask(addon, chat_flow(headers=secrets))
        assert flow.response is None and flow.request.host == "127.0.0.1"
        # What MapRemote, ModifyHeaders, upstream mode or a later script could do next:
        flow.request.url = "https://real-upstream.example:8443/v1/chat/completions"
        flow.request.headers["Authorization"] = "Bearer sk-live"
        flow.server_conn.via = ("http", ("upstream-proxy.example", 3128))
        addon.guard.request(flow)
        request = flow.request
        assert (request.scheme, request.host, request.port) == ("http", "127.0.0.1", 4321)
        assert request.method == "GET" and request.path.startswith(StreamServer.PATH_PREFIX)
        assert list(request.headers.items()) == [("host", "127.0.0.1:4321")]
        assert request.raw_content == b"" and request.authority == ""
        assert flow.server_conn.via is None
        # Once answered, the printers and `-w` see the client's request again.
        flow.server_conn = connection.Server(address=("127.0.0.1", 4321))
        flow.response = tflow.tresp()
        addon.responseheaders(flow)
        addon.response(flow)
        assert flow.request.method == "POST" and flow.request.host == "api.openai.com"
        assert flow.request.headers["x-api-key"] == "k2" and flow.request.content == BODY
        assert not addon.guard._timed
    run(test)


def test_timed_replay_answer_from_elsewhere_is_withheld(tmp_path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "timed",
                       [chat_interaction(chunks=[Chunk(at=1_000, size=12)])])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_latency="recorded")
        addon.stream_server.port = 4321
        flow = await ask(addon, chat_flow(headers={"X-VCR-Cassette": "timed"}))
        flow.server_conn = connection.Server(address=("real-upstream.example", 443))
        flow.response = tflow.tresp()
        addon.responseheaders(flow)
        assert flow.error is not None and flow.error.msg == flow.error.KILLED_MESSAGE
    run(test)


def test_guard_refuses_every_connection_but_the_stream_server_in_replay_mode() -> None:
    guard = ReplayGuard(lambda flow: False)
    guard.stream_port = 4321

    def connect(address: tuple[str, int]) -> str | None:
        server = connection.Server(address=address)
        guard.server_connect(server_hooks.ServerConnectionHookData(server, tflow.tclient_conn()))
        return server.error

    guard.replay_only = True
    assert connect(("127.0.0.1", 4321)) is None
    assert "replay mode" in (connect(("api.openai.com", 443)) or "")
    assert connect(("upstream-proxy.example", 3128)) is not None
    guard.replay_only = False
    assert connect(("api.openai.com", 443)) is None


def test_guard_turns_request_streaming_off_for_owned_flows() -> None:
    owned = chat_flow()
    other = chat_flow("https://example.org/")
    guard = ReplayGuard(lambda flow: flow is owned)
    for flow in (owned, other):
        flow.request.stream = True
        guard.requestheaders(flow)
    assert owned.request.stream is False and other.request.stream is True
    guard.replay_only = True
    guard.requestheaders(other)
    assert other.request.stream is False


def test_guard_is_installed_last_and_replaced_on_reload(tmp_path) -> None:
    async def test() -> None:
        tctx, addon = vcr_context(tmp_path)
        install_last(addon.guard, tctx.master.addons)
        assert tctx.master.addons.chain[-1] is addon.guard
        second = VCR()
        install_last(second.guard, tctx.master.addons)
        assert tctx.master.addons.get(ReplayGuard.name) is second.guard
        assert addon.guard not in tctx.master.addons.chain
    run(test)


# ---- the stream server


@pytest.mark.parametrize(("head", "token"), [
    (b"GET /__llm_vcr_stream__/abc HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", "abc"),
    (b"GET /__llm_vcr_stream__/abc HTTP/1.1\r\ncontent-length: 0\r\n\r\n", "abc"),
    (b"POST /__llm_vcr_stream__/abc HTTP/1.1\r\n\r\n", None),
    (b"GET /elsewhere HTTP/1.1\r\n\r\n", None),
    (b"GET http://127.0.0.1:1/__llm_vcr_stream__/abc HTTP/1.1\r\n\r\n", None),
    (b"GET /__llm_vcr_stream__/abc\r\n\r\n", None),
    (b"\x00\xff garbage\r\n\r\n", None),
    (b"GET /__llm_vcr_stream__/abc HTTP/1.1\r\nContent-Length: x\r\n\r\n", None),
    (b"GET /__llm_vcr_stream__/abc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", None),
    (b"GET /__llm_vcr_stream__/abc HTTP/1.1\r\nno colon here\r\n\r\n", None),
])
def test_stream_server_accepts_only_what_the_proxy_sends(head, token) -> None:
    assert parse_stream_request(head, StreamServer.PATH_PREFIX) == token


def test_stream_server_answers_malformed_requests_400_and_closes(caplog) -> None:
    async def exchange(port: int, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 10)  # read() ends when the server closes
        writer.close()
        return reply

    async def test() -> None:
        server = StreamServer()
        await server.start()
        try:
            for data, status in [
                (b"BREW /coffee HTCPCP/1.0\r\n\r\n", b"400"),
                (b"GET /__llm_vcr_stream__/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n", b"400"),
                (b"GET /__llm_vcr_stream__/x HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
                 b"400"),
                (b"GET /__llm_vcr_stream__/unknown HTTP/1.1\r\n\r\n", b"404"),
            ]:
                reply = await exchange(server.port, data)
                assert reply.startswith(b"HTTP/1.1 " + status), (data[:40], reply)
        finally:
            await server.stop()

    with caplog.at_level(logging.DEBUG):
        run(test)
    assert not [r for r in caplog.records if r.exc_info], "no traceback per bad request"


# ---- the summary


def test_summary_is_written_atomically_and_a_failure_is_one_line(tmp_path, caplog) -> None:
    async def test() -> None:
        summary = tmp_path / "summary.json"
        _, addon = vcr_context(tmp_path, vcr_summary=str(summary))
        await addon.done()
        assert json.loads(summary.read_text()) == {"cassettes": {}, "sessions": {}}
        # Unwritable targets: a missing folder, and a name taken by a folder (the rename fails
        # after the temp file was written, as on a full disk).
        taken = tmp_path / "taken.json"
        taken.mkdir()
        for target in (tmp_path / "missing" / "summary.json", taken):
            caplog.clear()
            _, addon = vcr_context(tmp_path, vcr_summary=str(target))
            with caplog.at_level(logging.ERROR, "llmvcr"):
                await addon.done()
            (record,) = caplog.records
            assert "could not write the summary" in record.getMessage()
            assert record.exc_info is None
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert list(taken.iterdir()) == []
    run(test)
