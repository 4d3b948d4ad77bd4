"""No secret in mitmdump's output, saved flows or logs; clients still get every byte (issue 11.4).

Unit tests for the masking rules (`masking`) and the guard addon in-process (`output_guard`,
mitmproxy's taddons/tflow); then one real mitmdump per mode (record, replay, passthrough) at
`flow_detail=4`, `termlog_verbosity=debug`, `proxy_debug=true` and `-w FILE`, carrying every
channel a secret can take: LLM and non-LLM hosts, JSON and server-sent-events answers, an
upstream that is down. The whole output and the flows file are searched for every planted value.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mitmproxy import http
from mitmproxy.addons.dumper import Dumper
from mitmproxy.addons.save import Save
from mitmproxy.test import taddons, tflow

from llmvcr.cassette import load
from llmvcr.masking import mask_body, mask_header_fields, mask_header_value, mask_text
from llmvcr.output_guard import MaskingLogFilter, OutputGuard, _Restorer
from support.fake_upstream import FakeResponse

# ---- the planted secrets (none is shaped like an `sk-` key, so each rule has to catch its own)

BEARER = "s3cr3t-bearer-0001"
API_KEY = "s3cr3t-apikey-0002"
X_API_KEY = "s3cr3t-xapikey-0003"
GOOG_KEY = "s3cr3t-goog-0004"
COOKIE = "s3cr3t-cookie-0005"
AWS_KEY_ID = "AKIDEXAMPLE0006"
AWS_SIGNATURE = "5ec12e7a0007"
AMZ_TOKEN = "s3cr3t-amztoken-0008"
QUERY_KEY = "s3cr3t-key-0009"
QUERY_SIG = "s3cr3t-sig-0010"
QUERY_AMZ_SIG = "s3cr3t-amzsig-0011"
JSON_KEY = "s3cr3t-jsonkey-0012"
SET_COOKIE = "s3cr3t-setcookie-0013"
RESPONSE_TOKEN = "s3cr3t-resptoken-0014"
SSE_KEY = "s3cr3t-ssekey-0015"

SECRETS = [v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str)]

BEARER_HEADERS = {
    "Authorization": f"Bearer {BEARER}",
    "api-key": API_KEY,
    "x-api-key": X_API_KEY,
    "x-goog-api-key": GOOG_KEY,
    "Cookie": f"session={COOKIE}; theme=dark",
}
SIGV4_HEADERS = {
    "Authorization": (
        f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/20240101/us-east-1/bedrock/aws4_request, "
        f"SignedHeaders=host;x-amz-date;x-amz-security-token, Signature={AWS_SIGNATURE}"
    ),
    "X-Amz-Date": "20240101T000000Z",
    "X-Amz-Security-Token": AMZ_TOKEN,
}
QUERY = f"?key={QUERY_KEY}&sig={QUERY_SIG}&X-Amz-Signature={QUERY_AMZ_SIG}&v=1"
BODY = {"model": "gpt-4o-mini", "api_key": JSON_KEY, "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]}


# ============================================================================================
# The rules, pure


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", f"Bearer {BEARER}", "Bearer REDACTED"),
        ("authorization", SIGV4_HEADERS["Authorization"], "AWS4-HMAC-SHA256 REDACTED"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz", "Basic REDACTED"),
        ("api-key", API_KEY, "REDACTED"),
        ("X-Api-Key", X_API_KEY, "REDACTED"),
        ("x-goog-api-key", GOOG_KEY, "REDACTED"),
        ("X-Amz-Security-Token", AMZ_TOKEN, "REDACTED"),
        ("Cookie", f"session={COOKIE}; theme=dark", "session=REDACTED; theme=REDACTED"),
        ("Set-Cookie", f"sid={SET_COOKIE}; Path=/; HttpOnly", "sid=REDACTED; Path=/; HttpOnly"),
        ("Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.abc123",
         "realtime, openai-insecure-api-key.REDACTED"),
        ("Content-Type", "application/json", "application/json"),
        ("X-Forwarded-Note", "Bearer abcdefghijklmnop1234", "Bearer REDACTED"),
    ],
)
def test_header_values(name: str, value: str, shown: str) -> None:
    assert mask_header_value(name, value) == shown
    assert mask_header_value(name, shown) == shown  # idempotent


def test_header_fields_keep_names_order_and_unchanged_values() -> None:
    fields = ((b"Host", b"x"), (b"authorization", b"Bearer abc"), (b"Accept", b"*/*"))
    assert mask_header_fields(fields) == (
        (b"Host", b"x"), (b"authorization", b"Bearer REDACTED"), (b"Accept", b"*/*"))
    assert mask_header_fields(((b"Accept", b"*/*"),)) is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # raw HTTP/1 bytes as proxy_debug logs them (repr: \r\n written out)
        (r"DataReceived(client, b'POST /v1?key=K1&a=1 HTTP/1.1\r\nAuthorization: Bearer T1\r\n"
         r"x-api-key: X1\r\nCookie: s=C1\r\nAccept: */*\r\n\r\n{\"api_key\": \"J1\"}')",
         r"DataReceived(client, b'POST /v1?key=REDACTED&a=1 HTTP/1.1\r\nAuthorization: Bearer "
         r"REDACTED\r\nx-api-key: REDACTED\r\nCookie: s=REDACTED\r\nAccept: */*\r\n\r\n"
         r"{\"api_key\": \"REDACTED\"}')"),
        # HTTP/2 header lists and mitmproxy's Headers repr
        ("headers=[(b':path', b'/v1'), (b'authorization', b'Bearer T2'), "
         "(b'x-goog-api-key', b'G')]",
         "headers=[(b':path', b'/v1'), (b'authorization', b'Bearer REDACTED'), "
         "(b'x-goog-api-key', b'REDACTED')]"),
        # JSON, and JSON escaped inside a JSON string (tool-call arguments)
        ('{"api_key": "J2", "max_tokens": 5, "token": "Hi"}',
         '{"api_key": "REDACTED", "max_tokens": 5, "token": "Hi"}'),
        # compact JSON: a secret-looking value next to a key is no (name, value) pair
        ('{"api_key":"s3cr3t-jsonkey","max_tokens":5,"ok":true,"x":"my-key","y":"z"}',
         '{"api_key":"REDACTED","max_tokens":5,"ok":true,"x":"my-key","y":"z"}'),
        ('{"arguments": "{\\"client_secret\\": \\"CS\\"}"}',
         '{"arguments": "{\\"client_secret\\": \\"REDACTED\\"}"}'),
        ("{'password': 'pw'}", "{'password': 'REDACTED'}"),
        # query parameters anywhere, form bodies
        ("Request(GET h:443/x?X-Amz-Signature=S1&sig=S2&ok=1)",
         "Request(GET h:443/x?X-Amz-Signature=REDACTED&sig=REDACTED&ok=1)"),
        ("api_key=F1&name=n", "api_key=REDACTED&name=n"),
        # credential-shaped values anywhere
        ("error near sk-abcdefghijklmnopqrstuvwx here", "error near REDACTED here"),
        # nothing to hide
        ("server connect api.openai.com:443 (127.0.0.1:5000)",
         "server connect api.openai.com:443 (127.0.0.1:5000)"),
        ('{"usage": {"prompt_tokens": 3}, "code": "invalid_api_key"}',
         '{"usage": {"prompt_tokens": 3}, "code": "invalid_api_key"}'),
    ],
)
def test_text(text: str, shown: str) -> None:
    assert mask_text(text) == shown
    assert mask_text(shown) == shown


def test_body_multipart_sse_and_unchanged() -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nM1\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b--\r\n")
    masked = mask_body(body, "multipart/form-data; boundary=b")
    assert masked is not None and b"M1" not in masked and b"batch" in masked
    sse = b'data: {"api_key": "E1"}\n\ndata: [DONE]\n\n'
    assert mask_body(sse) == b'data: {"api_key": "REDACTED"}\n\ndata: [DONE]\n\n'
    assert mask_body(b'{"a": 1}') is None
    assert mask_body(b"\xff\xfe binary \x00") is None


# ============================================================================================
# The guard, in-process


@pytest.fixture
def guard() -> Iterator[tuple[OutputGuard, taddons.context]]:
    """The guard, mitmproxy's Dumper (printing into `guard.printed`) and Save (for its options),
    and the restorer added last, as `running` adds it."""
    addon = OutputGuard()
    printed = io.StringIO()
    with taddons.context(addon, Dumper(printed), Save()) as tctx:
        tctx.master.addons.add(addon.restorer)
        addon._restorer_added = True  # what `running` records once the restorer is in the chain
        addon.printed = printed  # type: ignore[attr-defined]
        yield addon, tctx


def _secret_flow() -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.url = f"https://api.example.com/v1/x{QUERY}"
    for name, value in BEARER_HEADERS.items():
        flow.request.headers[name] = value
    flow.request.headers["content-type"] = "application/json"
    flow.request.content = b'{"api_key": "%s"}' % JSON_KEY.encode()
    assert flow.response is not None
    flow.response.headers.add("Set-Cookie", f"sid={SET_COOKIE}; Path=/")
    flow.response.headers["content-type"] = "application/json"
    flow.response.content = b'{"access_token": "%s"}' % RESPONSE_TOKEN.encode()
    return flow


def _shown(flow: http.HTTPFlow) -> str:
    assert flow.response is not None
    return repr(flow.get_state())


def test_guard_masks_for_printers_and_restores_the_response(guard) -> None:
    addon, tctx = guard
    tctx.options.update(flow_detail=4)
    flow = _secret_flow()
    assert flow.response is not None
    original_headers = flow.response.headers.fields
    original_body = flow.response.raw_content
    addon.response(flow)
    shown = _shown(flow)  # what Save sees
    assert not [s for s in SECRETS if s in shown]
    tctx.master.addons.get("dumper").response(flow)
    printed = addon.printed.getvalue()
    assert "REDACTED" in printed and not [s for s in SECRETS if s in printed]
    addon.restorer.response(flow)
    # the client gets the response unchanged; the request (sent already) stays masked
    assert flow.response.headers.fields == original_headers
    assert flow.response.raw_content == original_body
    assert QUERY_KEY not in flow.request.url and BEARER not in str(flow.request.headers)


def test_the_proxy_login_mitmproxy_keeps_in_metadata_is_masked(guard) -> None:
    addon, _ = guard
    for finish in (addon.response, addon.error):
        flow = _secret_flow()
        flow.metadata["proxyauth"] = ("team", "pr0xy-pa55word")  # as mitmproxy's proxyauth sets it
        finish(flow)
        assert flow.metadata["proxyauth"] == ("team", "REDACTED")
        assert "pr0xy-pa55word" not in repr(flow.get_state())  # what -w saves


def test_guard_without_restorer_leaves_the_response_alone(guard) -> None:
    addon, tctx = guard
    addon._restorer_added = False
    tctx.options.update(flow_detail=4)
    flow = _secret_flow()
    assert flow.response is not None
    before = flow.response.get_state()
    addon.response(flow)
    assert flow.response.get_state() == before
    assert BEARER not in str(flow.request.headers)


def test_restorer_keeps_a_later_addons_edits(guard) -> None:
    addon, _ = guard
    flow = _secret_flow()
    assert flow.response is not None
    addon.response(flow)
    flow.response.headers["X-Added-Later"] = "yes"  # modify_headers, a script ...
    addon.restorer.response(flow)
    assert flow.response.headers["X-Added-Later"] == "yes"
    assert SET_COOKIE in flow.response.headers["Set-Cookie"]


def test_guard_error_path_and_streamed_response_are_masked_for_good(guard) -> None:
    addon, tctx = guard
    tctx.options.update(flow_detail=4)
    failed = _secret_flow()
    failed.response = None
    failed.error = tflow.terr(f"connect failed for /x?key={QUERY_KEY}")
    addon.error(failed)
    assert not [s for s in SECRETS if s in repr(failed.get_state())]
    streamed = _secret_flow()
    assert streamed.response is not None
    streamed.response.stream = True
    addon.response(streamed)
    addon.restorer.response(streamed)  # nothing to put back: the client has it already
    assert not [s for s in SECRETS if s in repr(streamed.get_state())]


def test_bodies_are_left_alone_when_nobody_shows_them(guard) -> None:
    addon, tctx = guard
    tctx.options.update(flow_detail=2)
    flow = _secret_flow()
    addon.response(flow)
    assert JSON_KEY.encode() in (flow.request.raw_content or b"")


def test_websocket_messages_masked_for_the_dumper_restored_for_the_peer(guard) -> None:
    addon, tctx = guard
    tctx.options.update(flow_detail=3, save_stream_file=None)
    flow = tflow.twebsocketflow()
    assert flow.websocket is not None
    original = b'{"type": "session.update", "api_key": "%s"}' % API_KEY.encode()
    flow.websocket.messages[-1].content = original
    addon.websocket_message(flow)
    assert API_KEY.encode() not in flow.websocket.messages[-1].content
    addon.restorer.websocket_message(flow)
    assert flow.websocket.messages[-1].content == original


def test_log_filter_masks_messages_and_tracebacks() -> None:
    log_filter = MaskingLogFilter()
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1,
                               "sent %s", (f"b'Authorization: Bearer {BEARER}\\r\\n'",), None)
    try:
        raise ValueError(f"bad url https://h/x?sig={QUERY_SIG}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert log_filter.filter(record)
    text = logging.Formatter().format(record)
    assert BEARER not in text and QUERY_SIG not in text
    assert "ValueError" in text


def test_restorer_name_is_unique() -> None:
    assert _Restorer.name != OutputGuard.__name__.lower()


# ============================================================================================
# Through a real mitmdump


JSON_ANSWER = FakeResponse.json(
    {"id": "x", "access_token": RESPONSE_TOKEN, "ok": True},
    headers=[("set-cookie", f"upstream_sid={SET_COOKIE}; Path=/; HttpOnly"),
             ("x-request-id", "req-1")],
)
SSE_ANSWER = FakeResponse.sse(
    [b'data: {"index": 0, "api_key": "%s"}\n\n' % SSE_KEY.encode(), b"data: [DONE]\n\n"],
    headers=[("set-cookie", f"upstream_sid={SET_COOKIE}; Path=/")],
)
DEAD_ROUTES = [
    r"|^https?://api\.anthropic\.com(?::\d+)?/|https://127.0.0.1:1/",
    r"|^https?://down\.example\.com(?::\d+)?/|https://127.0.0.1:1/",
]
ROUTED = ("api.openai.com", "www.example.com")
LOUD = {"flow_detail": 4, "termlog_verbosity": "debug", "proxy_debug": True}


def _script_upstream(upstream: Any) -> None:
    for path in ("/v1/chat/completions", "/page"):
        upstream.script(path, JSON_ANSWER, times=None)
    for path in ("/v1/stream", "/events"):
        upstream.script(path, SSE_ANSWER, times=None)


# (what, method, url, headers, expected answer or None when the upstream is down)
Exchange = tuple[str, str, str, dict[str, str], FakeResponse | None]
EXCHANGES: list[Exchange] = [
    ("llm json", "POST", f"https://api.openai.com/v1/chat/completions{QUERY}", BEARER_HEADERS,
     JSON_ANSWER),
    ("llm json sigv4", "POST", f"https://api.openai.com/v1/chat/completions{QUERY}",
     SIGV4_HEADERS, JSON_ANSWER),
    ("llm sse", "POST", f"https://api.openai.com/v1/stream{QUERY}", BEARER_HEADERS, SSE_ANSWER),
    ("other json", "POST", f"https://www.example.com/page{QUERY}", BEARER_HEADERS, JSON_ANSWER),
    ("other sse", "POST", f"https://www.example.com/events{QUERY}", SIGV4_HEADERS, SSE_ANSWER),
    ("llm down", "POST", f"https://api.anthropic.com/v1/messages{QUERY}", BEARER_HEADERS, None),
    ("other down", "POST", f"https://down.example.com/x{QUERY}", SIGV4_HEADERS, None),
]


def _exchange(client: httpx.Client, exchange: Exchange) -> httpx.Response:
    _, method, url, headers, _ = exchange
    return client.request(method, url, headers=headers, json=BODY)


def _assert_unchanged(exchange: Exchange, response: httpx.Response) -> None:
    """The client got exactly what the upstream sent: every header value, every body byte."""
    what, _, _, _, answer = exchange
    if answer is None:
        assert response.status_code == 502, what
        return
    assert response.status_code == answer.status, what
    for name, value in answer.headers:
        assert value in response.headers.get_list(name), (what, name)
    assert response.content == answer.body(), what


def _assert_nothing_leaked(proxy: Any, flows: Path) -> None:
    output = proxy.output()
    saved = flows.read_bytes() if flows.exists() else b""
    leaked = [s for s in SECRETS if s in output]
    assert not leaked, f"in mitmdump's output: {leaked}\n{output[-4000:]}"
    leaked_saved = [s for s in SECRETS if s.encode() in saved]
    assert not leaked_saved, f"in the -w flows file: {leaked_saved}"
    assert "Authorization" in output or "authorization" in output  # headers were printed ...
    assert "REDACTED" in output  # ... masked
    assert "max_tokens" in output and '"REDACTED":' not in output  # and only the secrets


def _run(proxy: Any, exchanges: list[Exchange], http2: bool = True) -> None:
    with proxy.httpx_client(cassette="secrets") as h1, \
            proxy.httpx_client(cassette="secrets", http2=http2) as h2:
        for exchange in exchanges:
            for client in (h1, h2):
                _assert_unchanged(exchange, _exchange(client, exchange))


def _flows_saved(flows: Path) -> list[Any]:
    from mitmproxy import io

    with flows.open("rb") as f:
        return list(io.FlowReader(f).stream())


@pytest.mark.e2e
def test_record_then_replay_nothing_leaks(make_proxy, upstream, tmp_path: Path) -> None:
    _script_upstream(upstream)
    store = tmp_path / "cassettes"
    flows = tmp_path / "record.flows"
    recorder = make_proxy(mode="record", vcr_dir=store, upstream=upstream, hosts=ROUTED,
                          options={**LOUD, "map_remote": DEAD_ROUTES},
                          args=["-w", str(flows)])
    _run(recorder, EXCHANGES)
    assert recorder.stop() == 0
    _assert_nothing_leaked(recorder, flows)
    assert len(_flows_saved(flows)) == 2 * len(EXCHANGES)

    # Replay the LLM exchanges from that cassette: answers made from the cassette (not streamed),
    # then timed (streamed from the addon's stream server).
    cassette = load(store / "secrets.yaml")
    recorded_bodies = {i.response.body for i in cassette.interactions}
    for latency in ("none", "recorded"):
        flows = tmp_path / f"replay-{latency}.flows"
        replayer = make_proxy(mode="replay", vcr_dir=store,
                              options={**LOUD, "vcr_reuse": True, "vcr_latency": latency},
                              args=["-w", str(flows)])
        with replayer.httpx_client(cassette="secrets") as client:
            for exchange in EXCHANGES[:3]:
                response = _exchange(client, exchange)
                assert response.status_code == 200, response.text
                assert response.content in recorded_bodies
        assert replayer.stop() == 0
        _assert_nothing_leaked(replayer, flows)
        assert len(_flows_saved(flows)) == 3


@pytest.mark.e2e
def test_passthrough_nothing_leaks(make_proxy, upstream, tmp_path: Path) -> None:
    _script_upstream(upstream)
    flows = tmp_path / "passthrough.flows"
    proxy = make_proxy(mode="passthrough", upstream=upstream, hosts=ROUTED,
                       options={**LOUD, "map_remote": DEAD_ROUTES}, args=["-w", str(flows)])
    _run(proxy, EXCHANGES)
    assert proxy.stop() == 0
    _assert_nothing_leaked(proxy, flows)


def test_a_change_of_flow_detail_or_save_file_is_seen_on_the_next_flow(guard, tmp_path) -> None:
    """The guard reads its options once per change (`configure`), not per flow: a change made
    while it runs (mitmproxy's `set` command) still decides the next flow's body masking."""
    addon, tctx = guard
    tctx.options.update(flow_detail=1)
    flow = _secret_flow()
    addon.response(flow)
    assert JSON_KEY.encode() in (flow.request.raw_content or b"")  # nothing prints bodies
    tctx.options.update(flow_detail=3)
    flow = _secret_flow()
    addon.response(flow)
    assert JSON_KEY.encode() not in (flow.request.raw_content or b"")
    tctx.options.update(flow_detail=1, save_stream_file=str(tmp_path / "flows"))
    flow = _secret_flow()
    addon.response(flow)
    assert JSON_KEY.encode() not in (flow.request.raw_content or b"")


def test_a_url_without_a_query_is_left_as_it_is(guard) -> None:
    addon, _ = guard
    flow = _secret_flow()
    flow.request.url = "https://api.example.com/v1/chat/completions"
    addon.response(flow)
    assert flow.request.url == "https://api.example.com/v1/chat/completions"
    flow = _secret_flow()
    addon.response(flow)
    assert QUERY_KEY not in flow.request.url and "REDACTED" in flow.request.url
