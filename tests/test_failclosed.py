"""Fail closed, through a real mitmdump (issue 11): replay reaches nothing but the addon's stream
server whatever runs after the addon, WebSockets and hosts outside vcr_hosts are refused in
replay, bad names are 400, `-w` files work, IPv6 hosts record and replay, a bad option stops
mitmdump with one line."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mitmproxy import io

from llmvcr.cassette import Cassette, Chunk, Interaction, Request, Response, dumps, load
from support.fake_upstream import ConnectionCounter, FakeUpstream
from support.proxy import SERVER_CONNECT_SPY, MitmProxy, ProxyFactory

pytestmark = pytest.mark.e2e

CHAT_URL = "https://api.openai.com/v1/chat/completions"
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
EVENTS = [b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]
CLIENT_SECRET = "sk-client-secret-must-stay-in-the-proxy"


def stream_interaction(url: str = CHAT_URL) -> Interaction:
    body = b"".join(EVENTS)
    return Interaction(
        Request(method="POST", url=url, body=BODY, content_length=len(BODY),
                headers={"Content-Type": ["application/json"]}),
        Response(body=body, headers={"Content-Type": ["text/event-stream"]},
                 duration=5_000_000,
                 chunks=[Chunk(at=5_000_000 * (i + 1), size=len(e))
                         for i, e in enumerate(EVENTS)]),
    )


def write_cassette(path: Path, interactions: list[Interaction]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(Cassette(interactions)))


def rewriters(folder: Path, upstream: FakeUpstream) -> tuple[dict[str, list[str]], Path]:
    """Options and a script that send the stream server's requests to `upstream`: a map_remote
    rule, a modify_headers rule, and a script loaded after the addon that rewrites the URL."""
    script = folder / "redirect_stream.py"
    script.write_text(
        "def request(flow):\n"
        "    if flow.request.path.startswith('/__llm_vcr_stream__/'):\n"
        f"        flow.request.url = '{upstream.url('/v1/chat/completions')}'\n"
    )
    options = {
        "map_remote": [rf"|^http://127\.0\.0\.1:\d+/__llm_vcr_stream__/|{upstream.base_url}/|"],
        "modify_headers": [f"/~q/Authorization/Bearer {CLIENT_SECRET}-added"],
    }
    return options, script


def post_stream(proxy: MitmProxy, cassette: str) -> httpx.Response:
    with proxy.httpx_client(cassette=cassette) as client:
        return client.post(CHAT_URL, content=BODY, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_SECRET}",
            "x-api-key": CLIENT_SECRET, "Cookie": f"session={CLIENT_SECRET}"})


def connections(proxy: MitmProxy) -> list[str]:
    return re.findall(r"SERVER_CONNECT (\S+)", proxy.output())


@pytest.fixture(scope="module")
def replay_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("failclosed") / "cassettes"
    write_cassette(store / "timed.yaml", [stream_interaction()])
    return store


@pytest.fixture(scope="module")
def replay_proxy(make_module_proxy: ProxyFactory, upstream_server: FakeUpstream,
                 replay_store: Path) -> Iterator[MitmProxy]:
    """Replay, timed, with every rewriter pointed at the fake upstream."""
    options, script = rewriters(replay_store.parent, upstream_server)
    yield make_module_proxy(
        mode="replay", vcr_dir=replay_store, upstream=upstream_server,
        options={**options, "vcr_latency": "recorded", "vcr_reuse": True},
        scripts=[SERVER_CONNECT_SPY, script],
    )


def test_timed_replay_reaches_only_the_stream_server(replay_proxy, upstream) -> None:
    reply = post_stream(replay_proxy, "timed")
    assert reply.status_code == 200, reply.text
    assert reply.content == b"".join(EVENTS)
    assert upstream.requests == []
    assert all(c.startswith("127.0.0.1:") for c in connections(replay_proxy))
    assert f"127.0.0.1:{upstream.port}" not in connections(replay_proxy)


def test_websocket_upgrade_is_refused_in_replay(replay_proxy, upstream) -> None:
    with replay_proxy.httpx_client(cassette="timed") as client:
        reply = client.get("https://api.openai.com/v1/realtime", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert reply.status_code == 501
    assert reply.headers["X-VCR-Error"] == "websocket-not-recorded"
    assert reply.json()["error"]["code"] == "websocket_not_recorded"
    assert upstream.requests == []


def test_host_outside_vcr_hosts_gets_a_json_error_in_replay(replay_proxy) -> None:
    with replay_proxy.httpx_client() as client:
        reply = client.get("https://not-an-llm.invalid/v1/x")
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "host_not_recorded" and "api.openai.com" in error["message"]
    assert not [c for c in connections(replay_proxy) if "not-an-llm" in c]


def test_two_cassette_headers_are_400(replay_proxy) -> None:
    with replay_proxy.httpx_client() as client:
        reply = client.post(CHAT_URL, content=BODY, headers=[
            ("X-VCR-Cassette", "timed"), ("X-VCR-Cassette", "other")])
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "cassette_name_invalid"


def test_symlink_out_of_vcr_dir_is_400(replay_proxy, replay_store, tmp_path) -> None:
    outside = tmp_path / "outside.yaml"
    write_cassette(outside, [stream_interaction()])
    (replay_store / "escape.yaml").symlink_to(outside)
    with replay_proxy.httpx_client(cassette="escape") as client:
        reply = client.post(CHAT_URL, content=BODY)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "cassette_name_invalid"
    assert "Traceback" not in replay_proxy.output()


def test_record_once_timed_replay_with_rewriters_never_reaches_upstream(
        make_proxy, upstream, tmp_path) -> None:
    """record_once on an existing cassette may connect upstream, so only the guard stops the
    rewritten flow (replay mode would also refuse the connection)."""
    store = tmp_path / "cassettes"
    write_cassette(store / "timed.yaml", [stream_interaction()])
    options, script = rewriters(tmp_path, upstream)
    proxy = make_proxy(mode="record_once", vcr_dir=store, upstream=upstream,
                       options={**options, "vcr_latency": "recorded"}, scripts=[script])
    reply = post_stream(proxy, "timed")
    assert reply.status_code == 200, reply.text
    assert reply.content == b"".join(EVENTS)
    assert upstream.requests == []


def test_timed_replay_in_upstream_proxy_mode_connects_to_no_proxy(make_proxy, tmp_path) -> None:
    store = tmp_path / "cassettes"
    write_cassette(store / "timed.yaml", [stream_interaction()])
    with ConnectionCounter() as upstream_proxy:
        proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_latency": "recorded"},
                           args=["--mode", f"upstream:http://127.0.0.1:{upstream_proxy.port}"])
        reply = post_stream(proxy, "timed")
        assert reply.status_code == 200, reply.text
        assert reply.content == b"".join(EVENTS)
        assert upstream_proxy.count == 0


def test_saved_flows_file_is_written_without_addon_errors(make_proxy, upstream, tmp_path) -> None:
    flows = tmp_path / "flows.mitm"
    proxy = make_proxy(mode="record", upstream=upstream, args=["-w", str(flows)])
    with proxy.httpx_client(cassette="saved") as client:
        reply = client.post(CHAT_URL + "?key=s3cret-in-query", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200
    proxy.stop()
    assert "Addon error" not in proxy.output()
    assert "FlowState" not in proxy.output()
    with flows.open("rb") as f:
        saved = list(io.FlowReader(f).stream())
    assert len(saved) == 1
    assert saved[0].request.host == "api.openai.com"


def curl_post(proxy: MitmProxy, url: str, cassette: str, body: bytes) -> bytes:
    """POST through the proxy with curl (httpx writes `CONNECT ::1:443` without brackets,
    which mitmproxy rightly refuses)."""
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", *proxy.curl_args(), "-H", f"X-VCR-Cassette: {cassette}",
         "-H", "Content-Type: application/json", "--data-binary", "@-", url],
        input=body, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def test_ipv6_literal_host_records_as_go_writes_it_and_replays(make_proxy, upstream_tls,
                                                              tmp_path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    store = tmp_path / "cassettes"
    body = b'{"model": "m", "messages": [{"role": "user", "content": "six"}]}'
    # HTTP/1.1 upstream: over HTTP/2 curl may hang up (it has every byte) before the upstream's
    # END_STREAM reaches the proxy, and the recorder then drops the flow (reported separately).
    with FakeUpstream(upstream_tls, host="::1", http2=False) as six:
        url = six.url("/v1/chat/completions")
        assert url.startswith("https://[::1]:")
        recorder = make_proxy(mode="record", vcr_dir=store, options={"vcr_hosts": ["::1"]})
        recorded = curl_post(recorder, url, "six", body)
        # The client may have the last byte before the proxy saw the stream end.
        recorder.wait_for_output(r"llm-vcr: recorded POST https://\[::1\]:\d+/v1/chat")
        recorder.stop()
    (interaction,) = load(store / "six.yaml").interactions
    assert interaction.request.url == url
    player = make_proxy(mode="replay", vcr_dir=store, options={"vcr_hosts": ["::1"]})
    assert curl_post(player, url, "six", body) == recorded
    player.stop()
    assert "No hostname given" not in player.output()
    assert "Traceback" not in player.output()


@pytest.mark.parametrize(("options", "line"), [
    ({"vcr_mode": "replay_only"}, "llm-vcr: vcr_mode: 'replay_only' is not a mode; valid modes: "
                                  "record_once, replay, record, new_episodes, passthrough"),
    ({"vcr_latncy": "recorded"}, "llm-vcr: unknown option(s) vcr_latncy; llm-vcr's options: "),
])
def test_bad_option_stops_mitmdump_with_one_line(make_proxy, tmp_path, options, line) -> None:
    proxy = make_proxy(mode=None, vcr_dir=tmp_path / "c", options=options, start=False)
    proxy.launch()
    deadline = time.monotonic() + 30
    while proxy.running and time.monotonic() < deadline:
        time.sleep(0.05)
    output = proxy.output()
    assert proxy.returncode not in (None, 0), output
    assert line in output
    assert "Traceback" not in output
