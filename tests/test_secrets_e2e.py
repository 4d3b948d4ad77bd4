"""Through a real mitmdump (issue 11, item 5): a request whose JSON body carries an `api_key` is
recorded scrubbed, the cassette passes `llm-vcr check`, and the same request replays."""

from __future__ import annotations

import io

import pytest

from llmvcr.commands.check import check_paths
from support.written import wait_for_cassette

pytestmark = pytest.mark.e2e

URL = "https://api.openai.com/v1/chat/completions"
BODY_KEY = "planted-body-key-7f3a9c"
SIG = "planted-sig-value-51b2"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Hello"},
        {"type": "image_url",
         "image_url": {"url": f"https://acct.blob.core.windows.net/c/x.png?sv=1&sig={SIG}"}},
    ]}],
    "api_key": BODY_KEY,
    "max_tokens": 20,
}


def test_json_api_key_is_recorded_scrubbed_checks_clean_and_replays(
    make_proxy, upstream, tmp_path, govcr_check
) -> None:
    store = tmp_path / "cassettes"
    recorder = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with recorder.httpx_client(cassette="keyed") as client:
        live = client.post(URL, json=BODY)
    assert live.status_code == 200
    (received,) = upstream.requests
    assert received.json()["api_key"] == BODY_KEY  # upstream got the request as the client sent it
    cassette = wait_for_cassette(store / "keyed.yaml", 1)
    recorder.stop()
    text = (store / "keyed.yaml").read_text(encoding="utf-8")
    assert BODY_KEY not in text and SIG not in text
    assert BODY_KEY not in recorder.output() and SIG not in recorder.output()
    assert b'"api_key":"REDACTED"' in cassette.interactions[0].request.body
    out = io.StringIO()
    assert check_paths([str(store)], out=out) == 0, out.getvalue()
    assert ": error: " not in out.getvalue()
    govcr_check([store])

    replayer = make_proxy(mode="replay", vcr_dir=store)
    with replayer.httpx_client(cassette="keyed") as client:
        replayed = client.post(URL, json=dict(BODY, api_key="another-key-entirely"))
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == live.json()
    replayer.stop()
    assert "replayed 1, recorded 0, missed 0" in replayer.output()
