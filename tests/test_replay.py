"""Replay through a real mitmdump: no network, recorded pace, misses explained (issue #4)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from llmvcr.cassette import Cassette, Chunk, Interaction, Request, Response, dumps, load
from support.fake_upstream import SEED_CASSETTE
from support.proxy import SERVER_CONNECT_SPY

pytestmark = pytest.mark.e2e

SEED_BASE_URL = "https://fantasy-playground-resource.openai.azure.com/openai/v1"
SEED_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Say hi in Portuguese"},
]


def write_cassette(path: Path, interactions: list[Interaction]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(Cassette(interactions)))
    return path


def chat(content: str, answer: str, url: str = "https://api.openai.com/v1/chat/completions",
         **body: object) -> Interaction:
    request_body = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}],
                               **body}).encode()
    reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]})
    return Interaction(
        Request(method="POST", url=url, body=request_body, content_length=len(request_body),
                headers={"Content-Type": ["application/json"]}),
        Response(body=reply.encode(), headers={"Content-Type": ["application/json"]},
                 content_length=len(reply), duration=5_000_000),
    )


def sse_interaction(url: str, events: list[bytes], gap_ns: int) -> Interaction:
    body = b"".join(events)
    chunks = [Chunk(at=gap_ns * (i + 1), size=len(e)) for i, e in enumerate(events)]
    return Interaction(
        Request(method="GET", url=url),
        Response(body=body, headers={"Content-Type": ["text/event-stream"]},
                 duration=gap_ns, chunks=chunks),
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    return folder


def test_every_corpus_interaction_replays_byte_exact_offline(corpus_dir, mitm_confdir,
                                                              tmp_path) -> None:
    """The whole corpus, from a network namespace that has only loopback."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode().strip()}")
    script = Path(__file__).parent / "support" / "replay_corpus.py"
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), str(corpus_dir / "fantasy"),
         str(mitm_confdir), str(tmp_path / "mitmdump.log")],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["mismatches"] == [], report["mismatches"][:5]
    assert report["checked"] >= 299
    assert "SERVER_CONNECT" not in report["log"]


def test_replay_opens_no_upstream_connection(make_proxy, store) -> None:
    write_cassette(store / "offline.yaml", [
        chat("hi", "hello", url="https://api.does-not-exist.invalid/v1/chat/completions"),
    ])
    proxy = make_proxy(mode="replay", vcr_dir=store, args=["-s", str(SERVER_CONNECT_SPY)],
                       options={"vcr_hosts": ["*.invalid"]})
    with proxy.httpx_client(cassette="offline") as client:
        reply = client.post("https://api.does-not-exist.invalid/v1/chat/completions",
                            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "hello"
    proxy.stop()
    assert "SERVER_CONNECT" not in proxy.output()


def test_server_connect_spy_sees_connections(make_proxy, store) -> None:
    """The control for the test above: a flow that is not replayed does connect (in a mode that
    goes upstream at all: in `replay` a host outside vcr_hosts is refused without a connection)."""
    proxy = make_proxy(mode="record_once", vcr_dir=store, args=["-s", str(SERVER_CONNECT_SPY)],
                       options={"vcr_hosts": ["api.openai.com"]})
    with proxy.httpx_client() as client:
        assert client.get("https://not-an-llm.invalid/").status_code == 502
    proxy.wait_for_output(r"SERVER_CONNECT not-an-llm\.invalid:443")


def test_seed_replays_to_the_openai_sdk(make_proxy, tmp_path) -> None:
    store = tmp_path / "cassettes"
    store.mkdir()
    shutil.copy(SEED_CASSETTE, store / "seed.yaml")
    proxy = make_proxy(mode="replay", vcr_dir=store)
    client = proxy.openai_client(base_url=SEED_BASE_URL, cassette="seed")
    stream = client.chat.completions.create(
        model="gpt-5-mini", messages=SEED_MESSAGES, max_completion_tokens=4000,
        stream_options={"include_usage": True}, stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Olá!"
    proxy.stop()
    assert "cassette 'seed': replayed 1, recorded 0, missed 0, unused 0" in proxy.output()


def gaps_of(proxy, url: str, cassette: str) -> list[float]:
    arrivals = []
    with proxy.httpx_client(cassette=cassette) as client, client.stream("GET", url) as reply:
        for piece in reply.iter_raw():
            if piece:
                arrivals.append(time.monotonic())
    return [b - a for a, b in itertools.pairwise(arrivals)]


def test_recorded_pace_is_reproduced(make_proxy, upstream, store) -> None:
    recorder = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    with recorder.httpx_client(cassette="paced") as client:
        assert client.get("https://api.openai.com/sse?n=5&delay=0.15").status_code == 200
    recorder.stop()
    (interaction,) = load(store / "paced.yaml").interactions
    assert interaction.response.chunks is not None and len(interaction.response.chunks) == 5

    timed = make_proxy(mode="replay", vcr_dir=store, options={"vcr_latency": "recorded"})
    gaps = gaps_of(timed, "https://api.openai.com/sse?n=5&delay=0.15", "paced")
    assert len(gaps) == 4, gaps
    assert all(0.10 <= gap <= 0.20 for gap in gaps), gaps  # 150 ms +- 50 ms

    instant = make_proxy(mode="replay", vcr_dir=store, options={"vcr_reuse": True})
    with instant.httpx_client(cassette="paced") as client:
        client.get("https://api.openai.com/sse?n=5&delay=0.15")  # connect, load the cassette
        started = time.monotonic()
        body = client.get("https://api.openai.com/sse?n=5&delay=0.15").content
        elapsed = time.monotonic() - started
    assert elapsed < 0.15, elapsed  # the recorded stream spans 600 ms
    assert body == interaction.response.body


def test_latency_factor_scales_the_recorded_times(make_proxy, store) -> None:
    events = [f"data: {i}\n\n".encode() for i in range(4)]
    write_cassette(store / "scaled.yaml",
                   [sse_interaction("https://api.openai.com/s", events, 200_000_000)])
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_latency": "0.5"})
    gaps = gaps_of(proxy, "https://api.openai.com/s", "scaled")
    assert len(gaps) == 3 and all(0.05 <= gap <= 0.15 for gap in gaps), gaps


def test_cassette_without_chunks_waits_its_duration(make_proxy, store) -> None:
    interaction = chat("slow", "done")
    interaction.response.duration = 400_000_000
    write_cassette(store / "slow.yaml", [interaction])
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_latency": "recorded"})
    started = time.monotonic()
    with proxy.httpx_client(cassette="slow") as client:
        reply = client.post("https://api.openai.com/v1/chat/completions",
                            json={"model": "m", "messages": [{"role": "user", "content": "slow"}]})
    assert reply.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_timed_streams_do_not_block_each_other(make_proxy, store) -> None:
    events = [f"data: {i}\n\n".encode() for i in range(5)]
    write_cassette(store / "many.yaml",
                   [sse_interaction("https://api.openai.com/many", events, 400_000_000)])
    proxy = make_proxy(mode="replay", vcr_dir=store,
                       options={"vcr_latency": "recorded", "vcr_reuse": True})
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

    def one(client: httpx.Client) -> bytes:
        return client.get("https://api.openai.com/many").content

    started = time.monotonic()
    with proxy.httpx_client(cassette="many", limits=limits) as client, \
            ThreadPoolExecutor(100) as pool:
        bodies = list(pool.map(lambda _: one(client), range(100)))
    elapsed = time.monotonic() - started
    assert bodies == [b"".join(events)] * 100
    # Each stream takes 2 s; one after the other would take 200 s.
    assert elapsed < 20, elapsed


def test_identical_requests_answer_in_recorded_order_then_miss(make_proxy, store) -> None:
    write_cassette(store / "twice.yaml", [chat("same", "first"), chat("same", "second")])
    proxy = make_proxy(mode="replay", vcr_dir=store)
    client = proxy.openai_client(cassette="twice")
    answers = [
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "same"}])
        .choices[0].message.content
        for _ in range(2)
    ]
    assert answers == ["first", "second"]
    import openai

    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "same"}])
    message = str(raised.value)
    assert "cassette_miss" in message or "no recorded answer" in message
    assert "0 of 2 interactions still unused" in message or "already" in message


def test_reuse_lets_an_interaction_answer_again(make_proxy, store) -> None:
    write_cassette(store / "reuse.yaml", [chat("again", "yes")])
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_reuse": True})
    with proxy.httpx_client(cassette="reuse") as client:
        codes = [client.post("https://api.openai.com/v1/chat/completions",
                             json={"model": "m", "messages": [{"role": "user", "content": "again"}]}
                             ).status_code for _ in range(3)]
    assert codes == [200, 200, 200]


def test_matching_ignores_key_order_and_listed_paths(make_proxy, store) -> None:
    write_cassette(store / "loose.yaml", [chat("hi", "matched", user="alice")])
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_ignore_json": ["user"]})
    body = '{\r\n  "user": "bob",\n  "messages": [{"content": "hi", "role": "user"}], "model": "m"}'
    with proxy.httpx_client(cassette="loose") as client:
        reply = client.post("https://api.openai.com/v1/chat/completions", content=body,
                            headers={"Content-Type": "application/json"})
    assert reply.json()["choices"][0]["message"]["content"] == "matched"


def test_miss_explains_the_closest_request(make_proxy, store) -> None:
    write_cassette(store / "team" / "miss.yaml",
                   [chat("What is the capital of France?", "Paris"), chat("other", "x")])
    proxy = make_proxy(mode="replay", vcr_dir=store, cwd=store.parent)
    with proxy.httpx_client(cassette="team/miss") as client:
        reply = client.post(
            "https://api.openai.com/v1/chat/completions?key=MISSSECRET",
            json={"model": "m",
                  "messages": [{"role": "user", "content": "What is the capital of Spain?"}]},
            headers={"Authorization": "Bearer sk-MISS-SECRET-abcdefghijkl"},
        )
    assert reply.status_code == 404
    assert reply.headers["X-VCR-Miss"] == "team/miss"
    assert reply.headers["x-should-retry"] == "false"
    error = reply.json()["error"]
    assert error["type"] == "cassette_miss"
    message = error["message"]
    assert "cassettes/team/miss.yaml" in message
    assert "POST https://api.openai.com/v1/chat/completions" in message
    assert "messages.0.content" in message
    assert "capital of Spain" in message and "capital of France" in message
    assert "2 of 2 interactions still unused" in message
    proxy.stop()
    output = proxy.output()
    assert "no recorded answer in cassette 'team/miss'" in output
    for secret in ("MISSSECRET", "sk-MISS-SECRET"):
        assert secret not in message and secret not in output


def test_missing_cassette_in_replay_mode(make_proxy, store) -> None:
    write_cassette(store / "checkout_flow.yaml", [chat("a", "b")])
    proxy = make_proxy(mode="replay", vcr_dir=store)
    with proxy.httpx_client(cassette="checkout_flwo") as client:
        reply = client.post("https://api.openai.com/v1/chat/completions", json={"a": 1})
    assert reply.status_code == 404
    message = reply.json()["error"]["message"]
    assert "checkout_flwo.yaml does not exist" in message
    assert "nearest names: checkout_flow" in message


def test_broken_cassette_is_a_500_and_others_keep_working(make_proxy, store) -> None:
    (store / "broken.yaml").write_text("---\nversion: 1\ninteractions: []\n")
    write_cassette(store / "fine.yaml", [chat("ok", "fine")])
    proxy = make_proxy(mode="replay", vcr_dir=store)
    with proxy.httpx_client() as client:
        for _ in range(2):
            broken = client.post("https://api.openai.com/v1/chat/completions", json={},
                                 headers={"X-VCR-Cassette": "broken"})
            assert broken.status_code == 500
            assert broken.headers["x-should-retry"] == "false"
            assert "broken.yaml:2: unsupported cassette version 1" in broken.json()["error"][
                "message"]
        fine = client.post("https://api.openai.com/v1/chat/completions",
                           json={"model": "m", "messages": [{"role": "user", "content": "ok"}]},
                           headers={"X-VCR-Cassette": "fine"})
    assert fine.status_code == 200
    proxy.stop()
    assert proxy.output().count("unsupported cassette version 1") == 1  # logged once


def test_cassette_changed_on_disk_is_picked_up(make_proxy, store) -> None:
    path = write_cassette(store / "pulled.yaml", [chat("q", "old answer")])
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_reuse": True})
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    with proxy.httpx_client(cassette="pulled") as client:
        first = client.post("https://api.openai.com/v1/chat/completions", json=body).json()
        write_cassette(path, [chat("q", "new answer from a teammate")])
        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        second = client.post("https://api.openai.com/v1/chat/completions", json=body).json()
    assert first["choices"][0]["message"]["content"] == "old answer"
    assert second["choices"][0]["message"]["content"] == "new answer from a teammate"


def test_binary_bodies_and_headers_replay_exactly(make_proxy, store) -> None:
    body = bytes(range(256)) * 4
    interaction = Interaction(
        Request(method="POST", url="https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke"),
        Response(body=body, headers={"Content-Type": ["application/vnd.amazon.eventstream"]},
                 status="201 Created", code=201),
    )
    write_cassette(store / "binary.yaml", [interaction])
    proxy = make_proxy(mode="replay", vcr_dir=store)
    with proxy.httpx_client(cassette="binary", http2=True) as client:
        reply = client.post("https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke")
    assert reply.status_code == 201
    assert reply.content == body
    assert reply.headers["content-length"] == str(len(body))
    assert reply.headers["content-type"] == "application/vnd.amazon.eventstream"


def test_summary_at_shutdown(make_proxy, store, tmp_path) -> None:
    write_cassette(store / "sum.yaml", [chat("a", "1"), chat("b", "2")])
    summary = tmp_path / "summary.json"
    proxy = make_proxy(mode="replay", vcr_dir=store, options={"vcr_summary": str(summary)})
    with proxy.httpx_client(cassette="sum") as client:
        client.post("https://api.openai.com/v1/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": "a"}]})
        client.post("https://api.openai.com/v1/chat/completions", json={"nope": True})
    proxy.stop()
    assert "cassette 'sum': replayed 1, recorded 0, missed 1, unused 1" in proxy.output()
    written = json.loads(summary.read_text())
    assert written["cassettes"] == {
        "sum": {"replayed": 1, "recorded": 0, "missed": 1, "unused": 1}
    }
    default = written["sessions"]["default"]["cassettes"]["sum"]
    assert (default["replayed"], default["missed_count"]) == (1, 1)
    assert [m["request"] for m in default["missed"]] == [
        "POST https://api.openai.com/v1/chat/completions"
    ]
    assert default["unused"] == [{"request": "#1 POST https://api.openai.com/v1/chat/completions"}]
