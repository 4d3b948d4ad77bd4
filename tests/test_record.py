"""Recording through a real mitmdump with the addon, against fake TLS upstreams (issue #3)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmvcr.cassette import Cassette, dumps, load
from support.fake_upstream import SEED_CASSETTE, FakeResponse
from support.written import wait_for_cassette

pytestmark = pytest.mark.e2e

SEED_BASE_URL = "https://fantasy-playground-resource.openai.azure.com/openai/v1"
SEED_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Say hi in Portuguese"},
]


@pytest.fixture
def store(tmp_path: Path, written_cassettes) -> Iterator[Path]:
    """The test's cassette folder; every cassette left in it must save back to its own bytes
    and load and replay in go-vcr v4 itself."""
    folder = tmp_path / "cassettes"
    yield folder
    if folder.exists():
        written_cassettes(folder)


def test_openai_chat_streaming_is_recorded_byte_exact(
    make_proxy, upstream, store, written_cassettes
) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.openai_client(cassette="chat")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: Hello"
    cassette = wait_for_cassette(store / "chat.yaml", 1)
    (interaction,) = cassette.interactions
    request, response = interaction.request, interaction.response
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.method == "POST"
    assert (request.proto, request.proto_major, request.proto_minor) == ("HTTP/1.1", 1, 1)
    assert request.host == ""
    assert json.loads(request.body)["messages"][0]["content"] == "Hello"
    assert request.content_length == len(request.body)
    assert set(request.headers) <= {"Accept", "Content-Type", "User-Agent"}
    assert request.headers["Content-Type"] == ["application/json"]
    # The stored body is exactly what the upstream sent, SSE framing and all.
    (received,) = upstream.requests
    assert response.code == 200 and response.status == "200 OK"
    assert response.body.startswith(b"data: {") and response.body.endswith(b"data: [DONE]\n\n")
    assert response.chunks is not None and sum(c.size for c in response.chunks) == len(
        response.body
    )
    assert response.chunks == sorted(response.chunks, key=lambda c: c.at)
    assert 0 < response.duration <= response.chunks[0].at + 5_000_000
    assert received.header("accept-encoding") is None  # asked upstream for an identity body
    proxy.stop()
    written_cassettes(store)


@pytest.mark.parametrize("http2", [False, True], ids=["client-h1", "client-h2"])
def test_json_answer_records_the_upstream_proto(make_proxy, upstream, store, http2) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.openai_client(cassette="json", http2=http2)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.choices[0].message.content == "Echo: Hi"
    (interaction,) = wait_for_cassette(store / "json.yaml", 1).interactions
    response = interaction.response
    # mitmproxy offers the upstream what the client offered; the cassette says what was spoken.
    spoken = upstream.requests[0].http_version
    assert spoken == ("2" if http2 else "1.1")
    expected = ("HTTP/2.0", 2, 0) if http2 else ("HTTP/1.1", 1, 1)
    assert (response.proto, response.proto_major, response.proto_minor) == expected
    assert json.loads(response.body)["choices"][0]["message"]["content"] == "Echo: Hi"
    assert response.content_length == len(response.body)
    assert response.chunks is None or len(response.chunks) > 1
    assert set(response.headers) == {"Content-Type"}


def test_http1_upstream_records_http11(make_proxy, upstream_h1, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream_h1)
    with proxy.httpx_client(cassette="h1") as client:
        reply = client.get("https://api.openai.com/sse?n=3&delay=0.01")
    assert reply.status_code == 200
    (interaction,) = wait_for_cassette(store / "h1.yaml", 1).interactions
    response = interaction.response
    assert (response.proto, response.proto_major, response.proto_minor) == ("HTTP/1.1", 1, 1)
    assert response.body == reply.content
    assert response.transfer_encoding == ["chunked"] and response.content_length == -1


def test_stream_reaches_the_client_live(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    arrivals = []
    with proxy.httpx_client(cassette="live") as client, client.stream(
        "POST", "https://api.openai.com/sse?n=6&delay=0.3", json={"stream": True}
    ) as reply:
        for line in reply.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] > 1.0, "the stream was buffered by the proxy"
    (interaction,) = wait_for_cassette(store / "live.yaml", 1).interactions
    chunks = interaction.response.chunks
    assert chunks is not None and len(chunks) >= 6
    assert chunks[-1].at - chunks[0].at > 1_000_000_000  # 1 s: the recorded pace is real


def test_seed_conversation_records_as_the_seed(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.openai_client(base_url=SEED_BASE_URL, cassette="seed", http2=True)
    stream = client.chat.completions.create(
        model="gpt-5-mini",
        messages=SEED_MESSAGES,
        max_completion_tokens=4000,
        stream_options={"include_usage": True},
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Olá!"
    recorded = wait_for_cassette(store / "seed.yaml", 1)
    seed = load(SEED_CASSETTE)
    mine, theirs = recorded.interactions[0], seed.interactions[0]
    # Equal to the seed but for what cannot be: timing and the client's User-Agent.
    assert mine.response.chunks is not None
    mine.response.duration = theirs.response.duration
    mine.response.chunks = None
    assert mine.request.headers.pop("User-Agent")[0].startswith("OpenAI/Python")
    theirs.request.headers.pop("User-Agent")
    assert json.loads(mine.request.body) == json.loads(theirs.request.body)
    mine.request.body = theirs.request.body
    mine.request.content_length = theirs.request.content_length
    assert mine.request.headers == theirs.request.headers
    assert mine == theirs
    # Byte for byte too, once the timing lines are the seed's.
    assert dumps(Cassette([mine])) == dumps(Cassette([theirs]))


SECRETS = {
    "Authorization": "Bearer sk-live-SECRET0123456789abcdef",
    "api-key": "azure-SECRET-4242424242",
    "x-api-key": "sk-ant-SECRET-anthropic-9999",
    "x-goog-api-key": "AIzaSECRETgoogleKey0000000000000000",
    "Cookie": "session=SECRET-cookie-value",
}


def test_secrets_never_reach_the_store_or_the_log(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="secrets") as client:
        reply = client.post(
            "https://api.openai.com/v1/chat/completions?key=QUERYSECRET123&api-version=2024-10-21",
            headers=SECRETS,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert reply.status_code == 200
    # The upstream still got the credentials: redaction is for the cassette only.
    (received,) = upstream.requests
    assert received.header("api-key") == SECRETS["api-key"]
    assert received.query_params()["key"] == ["QUERYSECRET123"]
    (interaction,) = wait_for_cassette(store / "secrets.yaml", 1).interactions
    assert interaction.request.url == (
        "https://api.openai.com/v1/chat/completions?key=REDACTED&api-version=2024-10-21"
    )
    assert interaction.request.form == {"key": ["REDACTED"], "api-version": ["2024-10-21"]}
    proxy.stop()
    stored = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    output = proxy.output()
    for secret in [*SECRETS.values(), "QUERYSECRET123"]:
        needle = secret.split(" ")[-1]
        assert needle.encode() not in stored
        assert needle not in output
    assert "/v1/chat/completions" in output  # the flow line is printed, without the secret


def test_azure_openai_client_with_api_key_header(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.azure_openai_client(cassette="azure", api_key="azure-key-SECRET-777")
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi Azure"}]
    )
    assert answer.choices[0].message.content == "Echo: Hi Azure"
    (interaction,) = wait_for_cassette(store / "azure.yaml", 1).interactions
    assert "/openai/deployments/gpt-4o/chat/completions?api-version=" in interaction.request.url
    assert interaction.request.form["api-version"] == ["2024-10-21"]
    proxy.stop()
    assert b"azure-key-SECRET-777" not in (store / "azure.yaml").read_bytes()


def test_responses_api_and_async_clients(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.openai_client(cassette="responses")
    assert client.responses.create(model="gpt-5", input="One").output_text == "Echo: One"
    events = client.responses.create(model="gpt-5", input="Two", stream=True)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Echo: Two"

    async def use_async() -> str:
        aclient = proxy.async_openai_client(cassette="responses")
        try:
            stream = await aclient.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Three"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        finally:
            await aclient.close()

    assert asyncio.run(use_async()) == "Echo: Three"
    cassette = wait_for_cassette(store / "responses.yaml", 3)
    urls = [i.request.url for i in cassette.interactions]
    assert urls.count("https://api.openai.com/v1/responses") == 2
    assert [i.id for i in cassette.interactions] == [0, 1, 2]


def test_anthropic_streaming(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    client = proxy.anthropic_client(cassette="claude")
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "Yo"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "Echo: Yo"
    (interaction,) = wait_for_cassette(store / "claude.yaml", 1).interactions
    assert interaction.request.url == "https://api.anthropic.com/v1/messages"
    assert b"event: message_stop" in interaction.response.body
    proxy.stop()
    assert b"sk-ant" not in (store / "claude.yaml").read_bytes()


def test_curl_through_the_proxy(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    body = '{"model":"m","messages":[{"role":"user","content":"curl"}]}'
    result = subprocess.run(
        ["curl", "-sS", *proxy.curl_args(user="curl/case"), "-H", "Content-Type: application/json",
         "-d", body, "https://api.openai.com/v1/chat/completions"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["choices"][0]["message"]["content"] == "Echo: curl"
    (interaction,) = wait_for_cassette(store / "curl" / "case.yaml", 1).interactions
    assert interaction.request.body == body.encode()
    assert interaction.request.headers["User-Agent"][0].startswith("curl/")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_answers_are_stored_decoded(make_proxy, upstream, store, encoding) -> None:
    from support.fake_upstream import SUPPORTED_ENCODINGS, decompress

    if encoding not in SUPPORTED_ENCODINGS:
        pytest.fail(f"{encoding} is not available to the fake upstream")
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="zip") as client:
        reply = client.get(f"https://api.openai.com/compressed/{encoding}?stream=1")
    # The client got the compressed bytes as sent; decode them independently of the addon.
    assert reply.headers["content-encoding"] == encoding
    plain = decompress(encoding, reply.read()) if encoding == "zstd" else reply.content
    (interaction,) = wait_for_cassette(store / "zip.yaml", 1).interactions
    response = interaction.response
    assert response.body == plain  # decoded, byte-exact
    assert response.uncompressed is True and response.content_length == -1
    assert "Content-Encoding" not in response.headers
    if response.chunks is not None:
        assert sum(c.size for c in response.chunks) == len(response.body)


def test_upstream_errors_are_recorded_as_they_are(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="errors") as client:
        codes = [client.post(f"https://api.openai.com/error/{c}").status_code
                 for c in (401, 429, 500)]
    assert codes == [401, 429, 500]
    cassette = wait_for_cassette(store / "errors.yaml", 3)
    assert [i.response.status for i in cassette.interactions] == [
        "401 Unauthorized", "429 Too Many Requests", "500 Internal Server Error",
    ]


def test_cassette_selection(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream,
                       options={"vcr_cassette": "fallback"})
    with proxy.httpx_client() as plain:
        assert plain.get("https://api.openai.com/echo").status_code == 200
        header = plain.get("https://api.openai.com/echo", headers={"X-VCR-Cassette": "by/header"})
        assert header.status_code == 200
    with proxy.httpx_client(cassette="by/user") as named:
        assert named.get("https://api.openai.com/echo").status_code == 200
        both = named.get("https://api.openai.com/echo", headers={"X-VCR-Cassette": "winner.yaml"})
        assert both.status_code == 200
    for name in ("fallback", "by/header", "by/user", "winner"):
        wait_for_cassette(store / f"{name}.yaml", 1)
    # Neither the header nor the proxy credentials reach the upstream.
    for received in upstream.requests:
        assert received.header("x-vcr-cassette") is None
        assert received.header("proxy-authorization") is None


@pytest.mark.parametrize("name", ["../escape", "/abs", "a\\b", "a//b", "..", "a/../b"])
def test_bad_cassette_names_get_a_400(make_proxy, upstream, store, name) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client() as client:
        reply = client.get("https://api.openai.com/echo", headers={"X-VCR-Cassette": name})
    assert reply.status_code == 400
    assert reply.headers["x-should-retry"] == "false"
    assert "cassette" in reply.json()["error"]["message"]
    assert upstream.requests == []
    assert not any(store.parent.rglob("*.yaml"))


def test_other_hosts_pass_through_untouched(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream,
                       hosts=["api.openai.com", "example.test"])
    with proxy.httpx_client(cassette="other") as client:
        assert client.get("https://example.test/echo").status_code == 200
    proxy.stop()
    assert not store.exists() or not any(store.rglob("*.yaml"))


def test_upstream_unreachable_saves_nothing(make_proxy, store, tmp_path) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store,
                       options={"map_remote": ["|^https://api.openai.com/|https://127.0.0.1:9/"]})
    with proxy.httpx_client(cassette="down") as client:
        reply = client.get("https://api.openai.com/v1/models?key=DOWNSECRET")
    assert reply.status_code == 502
    proxy.stop()
    assert not store.exists() or not any(store.rglob("*.yaml"))
    assert "DOWNSECRET" not in proxy.output()


def test_client_gone_mid_stream_saves_nothing(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="gone") as client, client.stream(
        "GET", "https://api.openai.com/sse?n=10&delay=0.3"
    ) as reply:
        next(reply.iter_lines())
    proxy.wait_for_output(r"nothing saved in 'gone'", timeout=10)
    proxy.stop()
    assert not (store / "gone.yaml").exists()


def test_unwritable_store_logs_an_error_and_keeps_serving(make_proxy, upstream, tmp_path) -> None:
    if os.geteuid() == 0:
        # root ignores folder permissions: make the cassette path a folder instead.
        store = tmp_path / "cassettes"
        (store / "blocked.yaml").mkdir(parents=True)
    else:
        store = tmp_path / "cassettes"
        store.mkdir()
        store.chmod(0o500)
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="blocked") as client:
        first = client.get("https://api.openai.com/echo")
        proxy.wait_for_output(r"could not write 1 interaction\(s\) to .*blocked\.yaml", timeout=10)
        second = client.get("https://api.openai.com/echo")
    assert first.status_code == second.status_code == 200


def test_record_mode_starts_old_cassettes_afresh(make_proxy, upstream, store) -> None:
    first = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with first.httpx_client(cassette="again") as client:
        client.get("https://api.openai.com/echo?n=1")
        client.get("https://api.openai.com/echo?n=2")
    wait_for_cassette(store / "again.yaml", 2)
    first.stop()
    second = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with second.httpx_client(cassette="again") as client:
        client.get("https://api.openai.com/echo?n=3")
        wait_for_cassette(store / "again.yaml", 1)
        client.get("https://api.openai.com/echo?n=4")
    second.stop()
    urls = [i.request.url for i in load(store / "again.yaml").interactions]
    assert urls == ["https://api.openai.com/echo?n=3", "https://api.openai.com/echo?n=4"]


def test_record_once_replays_an_existing_cassette(make_proxy, upstream, store) -> None:
    first = make_proxy(mode="record_once", vcr_dir=store, upstream=upstream)
    with first.httpx_client(cassette="once") as client:
        recorded = client.post("https://api.openai.com/v1/chat/completions",
                               json={"messages": [{"role": "user", "content": "a"}]}).json()
    first.stop()
    upstream.reset()
    second = make_proxy(mode="record_once", vcr_dir=store, upstream=upstream)
    with second.httpx_client(cassette="once") as client:
        again = client.post("https://api.openai.com/v1/chat/completions",
                            json={"messages": [{"role": "user", "content": "a"}]})
        other = client.post("https://api.openai.com/v1/chat/completions",
                            json={"messages": [{"role": "user", "content": "b"}]})
    assert again.json() == recorded
    assert other.status_code == 404 and other.headers["X-VCR-Miss"] == "once"
    assert upstream.requests == []


def test_new_episodes_replays_matches_and_appends_the_rest(make_proxy, upstream, store) -> None:
    first = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with first.httpx_client(cassette="episodes") as client:
        client.get("https://api.openai.com/echo?n=1")
    wait_for_cassette(store / "episodes.yaml", 1)
    first.stop()
    upstream.reset()
    second = make_proxy(mode="new_episodes", vcr_dir=store, upstream=upstream)
    with second.httpx_client(cassette="episodes") as client:
        client.get("https://api.openai.com/echo?n=1")
        client.get("https://api.openai.com/echo?n=2")
    second.stop()
    assert [r.target for r in upstream.requests] == ["/echo?n=2"]
    urls = [i.request.url for i in load(store / "episodes.yaml").interactions]
    assert urls == ["https://api.openai.com/echo?n=1", "https://api.openai.com/echo?n=2"]


def test_passthrough_records_nothing_and_still_streams(make_proxy, upstream, store) -> None:
    proxy = make_proxy(mode="passthrough", vcr_dir=store, upstream=upstream)
    arrivals = []
    with proxy.httpx_client() as client, client.stream(
        "GET", "https://api.openai.com/sse?n=4&delay=0.4"
    ) as reply:
        arrivals = [time.monotonic() for line in reply.iter_lines() if line.startswith("data:")]
    assert len(arrivals) == 4 and arrivals[-1] - arrivals[0] > 0.8
    proxy.stop()
    assert not store.exists() or not any(store.rglob("*.yaml"))


def test_scripted_exact_bytes_are_kept(make_proxy, upstream, store, written_cassettes) -> None:
    body = [b"data: one\r\n\r\n", b"\n", b"data: tw", b"o  \r\n\r\n", b"\xff\xfe binary"]
    upstream.script("/exact", FakeResponse(headers=[("content-type", "text/event-stream")],
                                           chunks=body, delay=0.05))
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="exact") as client:
        assert client.get("https://api.openai.com/exact").content == b"".join(body)
    (interaction,) = wait_for_cassette(store / "exact.yaml", 1).interactions
    assert interaction.response.body == b"".join(body)
    proxy.stop()
    written_cassettes(store)


def test_new_episodes_keeps_serving_after_its_own_appends(make_proxy, upstream, store) -> None:
    first = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with first.httpx_client(cassette="grow") as client:
        client.get("https://api.openai.com/echo?n=1")
    first.stop()
    upstream.reset()
    proxy = make_proxy(mode="new_episodes", vcr_dir=store, upstream=upstream)
    with proxy.httpx_client(cassette="grow") as client:
        codes = [client.get("https://api.openai.com/echo?n=1").status_code,
                 client.get("https://api.openai.com/echo?n=2").status_code]
        wait_for_cassette(store / "grow.yaml", 2)  # the reloaded file holds our own recording
        codes += [client.get(f"https://api.openai.com/echo?n={n}").status_code for n in (3, 2)]
    proxy.stop()
    assert codes == [200, 200, 200, 200]
    # n=2 was recorded by this proxy, so it is used up: the second n=2 is a new episode.
    assert [r.target for r in upstream.requests] == ["/echo?n=2", "/echo?n=3", "/echo?n=2"]
    urls = [i.request.url.rsplit("=", 1)[1] for i in load(store / "grow.yaml").interactions]
    assert urls == ["1", "2", "3", "2"]
