"""The end-to-end infrastructure itself: fake upstreams, TLS, a plain mitmdump (no vcr addon).

If these fail, the e2e tests of the addon cannot be trusted either. Two proxies are shared by the
module: `plain` is mitmdump with nothing but routing (it buffers streams, as mitmproxy 12 does),
`streaming` adds support/mitm_scripts/stream_responses.py so streams pass through as they come.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from mitmproxy.addons.mapremote import parse_map_remote_spec
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from support.fake_upstream import (
    SEED_HOST,
    SEED_PATH,
    SUPPORTED_ENCODINGS,
    FakeResponse,
    FakeUpstream,
    anthropic_events,
    anthropic_message,
    chat_completion,
    chat_completion_events,
    decompress,
    response_events,
    response_object,
    seed_conversation,
)
from support.proxy import (
    ADDON_SCRIPT,
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    MitmProxy,
    MitmProxyError,
    ProxyFactory,
    route_to,
    set_args,
)

pytestmark = pytest.mark.e2e

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
H1_ONLY_HOST = "h1-only.example"


@pytest.fixture(scope="module")
def plain(make_module_proxy: ProxyFactory, upstream_server: FakeUpstream) -> MitmProxy:
    return make_module_proxy(addon=False, upstream=upstream_server)


@pytest.fixture(scope="module")
def streaming(
    make_module_proxy: ProxyFactory,
    upstream_server: FakeUpstream,
    upstream_h1_server: FakeUpstream,
) -> MitmProxy:
    return make_module_proxy(
        addon=False,
        upstream=upstream_server,
        stream_responses=True,
        options={"map_remote": route_to(upstream_h1_server, [H1_ONLY_HOST])},
    )


def event_times(response: httpx.Response) -> list[float]:
    """Arrival time of every `data:` line of a streamed response."""
    return [time.monotonic() for line in response.iter_lines() if line.startswith("data:")]


# ---- canned payloads: strict validation against the SDKs' own models


def test_canned_payloads_validate_against_the_sdk_models() -> None:
    ChatCompletion.model_validate(
        chat_completion("Hi there", "gpt-4o-mini", "chatcmpl-1"), strict=True
    )
    for event in chat_completion_events("Hi there", "m", "chatcmpl-1", include_usage=True)[:-1]:
        ChatCompletionChunk.model_validate_json(event.removeprefix(b"data: "), strict=True)
    Response.model_validate(response_object("Hi there", "gpt-4o-mini", "resp_1"), strict=True)
    stream_event = TypeAdapter(ResponseStreamEvent)
    kinds = []
    for event in response_events("Hi there", "gpt-4o-mini", "resp_1"):
        head, data = event.decode().split("\n", 1)
        parsed = stream_event.validate_json(data.removeprefix("data: "), strict=True)
        assert head == f"event: {parsed.type}"
        kinds.append(parsed.type)
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    Message.model_validate(anthropic_message("Hi there", "claude-x", "msg_1"), strict=True)
    raw_event = TypeAdapter(RawMessageStreamEvent)
    anthropic_kinds = [
        raw_event.validate_json(event.decode().split("data: ", 1)[1], strict=True).type
        for event in anthropic_events("Hi there", "claude-x", "msg_1")
        if b"event: ping" not in event
    ]
    assert anthropic_kinds[0] == "message_start" and anthropic_kinds[-1] == "message_stop"


# ---- the fake upstream on its own


def test_upstream_records_requests_over_both_protocols(upstream: FakeUpstream) -> None:
    for http2 in (False, True):
        with upstream.direct_client(http2=http2) as client:
            reply = client.post(
                upstream.url("/v1/chat/completions?trace=1"),
                json=CHAT,
                headers={"X-Test": "yes"},
            )
        assert reply.json()["choices"][0]["message"]["content"] == "Echo: Say hi"
    first, second = upstream.wait_for_requests(2)
    assert (first.http_version, second.http_version) == ("1.1", "2")
    for rec in (first, second):
        assert (rec.method, rec.path, rec.query) == ("POST", "/v1/chat/completions", "trace=1")
        assert rec.header("x-test") == "yes" and rec.json() == CHAT
        assert rec.wait_finished().completed and not rec.disconnected


def test_h1_upstream_refuses_http2(upstream_h1: FakeUpstream) -> None:
    with upstream_h1.direct_client(http2=True) as client:
        assert client.get(upstream_h1.url("/echo")).http_version == "HTTP/1.1"


def test_script_sends_exact_bytes_in_order_then_falls_back(upstream: FakeUpstream) -> None:
    upstream.script(
        "/v1/chat/completions",
        FakeResponse(status=202, headers=[("X-Mine", "1")], chunks=[b"ab", b"cd"], delay=0.2),
        method="POST",
    )
    upstream.script(
        "/v1/chat/completions", lambda rec: FakeResponse(chunks=[rec.body[:5]]), method="post"
    )
    with upstream.direct_client() as client:
        url = upstream.url("/v1/chat/completions")
        assert client.get(url).status_code == 404  # the POST-only scripts wait
        started = time.monotonic()
        first = client.post(url, json=CHAT)
        elapsed = time.monotonic() - started
        second = client.post(url, json=CHAT)
        third = client.post(url, json=CHAT)
    assert (first.status_code, first.content, first.headers["x-mine"]) == (202, b"abcd", "1")
    assert elapsed >= 0.18
    assert second.content == b'{"mod'
    assert third.json()["object"] == "chat.completion"


def test_aborted_and_disconnected_responses_are_visible(upstream: FakeUpstream) -> None:
    upstream.script("/sse", FakeResponse.sse([b"data: 1\n\n", b"data: 2\n\n"], fail_after=1))
    with upstream.direct_client() as client:
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream("GET", upstream.url("/sse")) as r,
        ):
            r.read()
        with client.stream("GET", upstream.url("/sse?n=20&delay=0.1")) as r:
            next(r.iter_lines())
    aborted, left = upstream.wait_for_requests(2)
    assert not aborted.wait_finished().completed
    assert left.wait_finished().disconnected and not left.completed


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_bodies_and_streams(upstream: FakeUpstream, encoding: str) -> None:
    if encoding not in SUPPORTED_ENCODINGS:
        pytest.skip("no zstd module (zstandard / backports.zstd) installed")
    upstream.reply_text = "one two three"

    def raw(
        client: httpx.Client, method: str, path: str, **kw: Any
    ) -> tuple[httpx.Response, bytes]:
        with client.stream(method, upstream.url(path), **kw) as reply:
            return reply, b"".join(reply.iter_raw())  # as sent: httpx would decode gzip/br

    with upstream.direct_client() as client:
        # No Accept-Encoding at all: the upstream compresses anyway, as some real ones do.
        plain, body = raw(client, "GET", f"/compressed/{encoding}", headers={"Accept-Encoding": ""})
        _, streamed = raw(client, "GET", f"/compressed/{encoding}?stream=1")
        _, chat = raw(client, "POST", "/v1/chat/completions", json=CHAT,
                      headers={"x-fake-encoding": encoding})  # fmt: skip
    assert plain.headers["content-encoding"] == encoding
    assert plain.headers["content-length"] == str(len(body))
    assert json.loads(decompress(encoding, body))["text"] == "one two three"
    events = decompress(encoding, streamed).decode().split("\n\n")
    assert [json.loads(e.removeprefix("data: "))["text"] for e in events if e] == [
        "one ",
        "two ",
        "three",
    ]
    assert len(upstream.requests[1].chunk_times) == 3
    assert json.loads(decompress(encoding, chat))["object"] == "chat.completion"


def test_error_routes(upstream: FakeUpstream) -> None:
    with upstream.direct_client() as client:
        limited = client.post(upstream.url("/error/429"))
        broken = client.get(upstream.url("/error/500"))
        denied = client.get(upstream.url("/error/401?provider=anthropic"))
        header = client.post(
            upstream.url("/v1/messages"), json={}, headers={"x-fake-status": "429"}
        )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert broken.status_code == 500 and broken.json()["error"]["type"] == "server_error"
    assert denied.status_code == 401 and denied.json()["error"]["type"] == "authentication_error"
    assert header.status_code == 429 and header.json()["error"]["type"] == "rate_limit_error"


def test_seed_route_sends_the_seed_body(upstream: FakeUpstream) -> None:
    seed = seed_conversation()
    assert seed.url == f"https://{SEED_HOST}{SEED_PATH}"
    with (
        upstream.direct_client(http2=True) as client,
        client.stream("POST", upstream.url(SEED_PATH), content=seed.request_body) as reply,
    ):
        chunks = list(reply.iter_raw())
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert b"".join(chunks) == seed.response_body
    assert len(seed.events()) == 7 and len(upstream.requests[0].chunk_times) == 7


# ---- helpers of support.proxy that need no process


def test_route_to_builds_map_remote_specs_mitmproxy_accepts() -> None:
    specs = route_to("https://127.0.0.1:4443", ["api.openai.com", "*.openai.azure.com"])
    rules = [parse_map_remote_spec(spec) for spec in specs]

    def mapped(url: str) -> str:
        for rule in rules:
            url = re.sub(rule.subject, rule.replacement, url)
        return url

    assert mapped("https://api.openai.com/v1/x?a=1") == "https://127.0.0.1:4443/v1/x?a=1"
    assert mapped("https://r.openai.azure.com:443/openai/v1") == "https://127.0.0.1:4443/openai/v1"
    assert mapped("https://openai.azure.com/") == "https://openai.azure.com/"
    assert mapped("https://api.openai.com.evil/") == "https://api.openai.com.evil/"
    assert set_args({"a": ["x", "y"], "b": True, "c": Path("/p")}) == [
        "--set", "a=x", "--set", "a=y", "--set", "b=true", "--set", "c=/p",
    ]  # fmt: skip


# ---- through a real mitmdump


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_httpx_reaches_upstream_through_plain_mitmdump(
    plain: MitmProxy, upstream: FakeUpstream, http2: bool
) -> None:
    with plain.httpx_client(http2=http2, cassette="team/case") as client:
        reply = client.post("https://api.openai.com/v1/chat/completions?x=1", json=CHAT)
    assert reply.status_code == 200, reply.text
    assert reply.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert reply.json()["choices"][0]["message"]["content"] == "Echo: Say hi"
    (rec,) = upstream.requests
    assert (rec.path, rec.query, rec.json()) == ("/v1/chat/completions", "x=1", CHAT)
    assert rec.http_version == ("2" if http2 else "1.1")
    assert plain.url(user="team/case") == f"http://team%2Fcase@127.0.0.1:{plain.port}"


def test_http2_client_to_http1_only_upstream(
    streaming: MitmProxy, upstream_h1: FakeUpstream
) -> None:
    with streaming.httpx_client(http2=True) as client:
        reply = client.get(f"https://{H1_ONLY_HOST}/echo")
    assert reply.http_version == "HTTP/2" and reply.json()["http_version"] == "1.1"
    assert [r.path for r in upstream_h1.requests] == ["/echo"]


def test_upstream_certificate_is_verified(
    mitm_confdir: Path, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Without ssl_verify_upstream_trusted_ca the same proxy refuses the fake upstream: so the
    CA option, not a disabled check, is what lets the other tests through."""
    proxy = MitmProxy(
        confdir=mitm_confdir,
        log_path=tmp_path / "mitmdump.log",
        addon=None,
        options={"map_remote": route_to(upstream)},
    )
    with proxy.start(), proxy.httpx_client() as client:
        reply = client.get("https://api.openai.com/echo")
    assert reply.status_code == 502 and "verify failed" in reply.text.lower()
    assert upstream.requests == []


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_sse_arrives_unbuffered_with_streaming(
    streaming: MitmProxy, upstream: FakeUpstream, http2: bool
) -> None:
    with (
        streaming.httpx_client(http2=http2) as client,
        client.stream("GET", "https://api.openai.com/sse?n=6&delay=0.3") as reply,
    ):
        times = event_times(reply)
    assert len(times) == 6
    assert times[-1] - times[0] > 1.0


def test_plain_mitmdump_buffers_sse(plain: MitmProxy, upstream: FakeUpstream) -> None:
    """The control for the test above: mitmproxy 12 holds an unstreamed SSE body to its end."""
    with (
        plain.httpx_client() as client,
        client.stream("GET", "https://api.openai.com/sse?n=6&delay=0.3") as reply,
    ):
        times = event_times(reply)
    assert len(times) == 6
    assert times[-1] - times[0] < 0.5


def test_openai_sdk_sync(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    with streaming.openai_client(http2=True) as client:
        chat = client.chat.completions.create(**CHAT)
        chunks = list(
            client.chat.completions.create(
                **CHAT, stream=True, stream_options={"include_usage": True}
            )
        )
        response = client.responses.create(model="gpt-4o-mini", input="Hola")
        with client.responses.stream(model="gpt-4o-mini", input="Tchau") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
    assert chat.choices[0].message.content == "Echo: Say hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Say hi"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert response.output_text == "Echo: Hola"
    assert "".join(deltas) == final.output_text == "Echo: Tchau"
    paths = [r.path for r in upstream.requests]
    assert paths == ["/v1/chat/completions"] * 2 + ["/v1/responses"] * 2
    assert upstream.requests[0].header("authorization") == f"Bearer {FAKE_OPENAI_KEY}"


def test_openai_sdk_async(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    async def run() -> tuple[str, list[str]]:
        async with streaming.async_openai_client() as client:
            stream = await client.chat.completions.create(**CHAT, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            events = await client.responses.create(model="gpt-4o-mini", input="Oi", stream=True)
            kinds = [event.type async for event in events]
            return text, kinds

    text, kinds = asyncio.run(run())
    assert text == "Echo: Say hi"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"


def test_openai_sdk_errors(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    upstream.script("/v1/chat/completions", FakeResponse.error(429))
    upstream.script("/v1/chat/completions", FakeResponse.error(401))
    with streaming.openai_client() as client:
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(**CHAT)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(**CHAT)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**CHAT, extra_headers={"x-fake-status": "500"})
    assert limited.value.response.headers["retry-after"] == "1"
    assert len(upstream.requests) == 3  # max_retries=0


def test_azure_paths_and_the_seed(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    seed = seed_conversation()
    with streaming.azure_openai_client() as azure:
        chat = azure.chat.completions.create(**{**CHAT, "model": "my-deployment"})
    base = f"https://{SEED_HOST}/openai/v1"
    with streaming.openai_client(base) as client:
        chunks = list(client.chat.completions.create(**json.loads(seed.request_body)))
    assert chat.model == "my-deployment"
    azure_rec, seed_rec = upstream.requests
    assert azure_rec.path == "/openai/deployments/my-deployment/chat/completions"
    assert azure_rec.query == "api-version=2024-10-21"
    assert seed_rec.path == SEED_PATH
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Olá!"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 159


def test_anthropic_sdk(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Bonjour"}],
    }
    with streaming.anthropic_client() as client:
        message = client.messages.create(**request)
        with client.messages.stream(**request) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()

    async def run() -> list[str]:
        async with streaming.async_anthropic_client(http2=True) as client:
            events = await client.messages.create(**request, stream=True)
            return [event.type async for event in events]

    kinds = asyncio.run(run())
    assert message.content[0].text == "Echo: Bonjour"  # type: ignore[union-attr]
    assert "".join(pieces) == "Echo: Bonjour" and final.stop_reason == "end_turn"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [r.path for r in upstream.requests] == ["/v1/messages"] * 3
    first = upstream.requests[0]  # the key travels as x-api-key or (newer SDKs) a bearer token
    assert FAKE_ANTHROPIC_KEY in f"{first.header('x-api-key')} {first.header('authorization')}"


@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_curl_through_the_proxy(streaming: MitmProxy, upstream: FakeUpstream, version: str) -> None:
    body = json.dumps({**CHAT, "stream": True})
    result = subprocess.run(
        ["curl", "-sS", "-N", version, *streaming.curl_args(),
         "-H", "Content-Type: application/json", "-d", body,
         "https://api.openai.com/v1/chat/completions"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = [line[6:] for line in result.stdout.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    text = "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-1])
    assert text == "Echo: Say hi"
    assert upstream.requests[0].http_version == ("2" if version == "--http2" else "1.1")


def test_client_env_is_enough_for_curl(streaming: MitmProxy, upstream: FakeUpstream) -> None:
    env = streaming.client_env()
    assert env["HTTPS_PROXY"] == env["https_proxy"] == streaming.url()
    assert env["SSL_CERT_FILE"] == env["CURL_CA_BUNDLE"] == str(streaming.ca_cert_path)
    result = subprocess.run(
        ["curl", "-sS", "https://api.anthropic.com/echo"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == "/echo"


# ---- the MitmProxy process itself


def test_stop_kill_and_failed_starts(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"  # fails only after the port is open: mitmdump then exits
    broken.write_text("def running():\n    raise RuntimeError('broken addon')\n")
    proxies = [
        make_proxy(addon=False, start=False),
        make_proxy(addon=False, start=False),
        make_proxy(addon=False, options={"map_remote": "|no-replacement"}, start=False),
        make_proxy(addon=tmp_path / "missing.py", start=False),
        make_proxy(addon=broken, mode=None, start=False),
    ]
    for proxy in proxies:  # all at once: each mitmdump needs most of a second to start
        proxy.launch()
    first, second, bad_option, missing, failing = proxies
    first.wait_ready(), second.wait_ready()
    assert first.port != second.port and first.running
    assert first.wait_for_output(r"listening at 127\.0\.0\.1:(\d+)")[1] == str(first.port)
    assert first.stop() == 0 and not first.running
    with pytest.raises(AssertionError, match="never matched"):
        first.wait_for_output("not printed", timeout=30)  # returns at once: mitmdump is gone
    assert second.kill() == -9
    for proxy, error in [
        (bad_option, "Cannot parse map_remote"),
        (missing, "No such script"),
        (failing, "broken addon"),
    ]:
        with pytest.raises(MitmProxyError, match=error):
            proxy.wait_ready()
    assert ADDON_SCRIPT.name == "vcr.py" and ADDON_SCRIPT.parent.name == "addon"
