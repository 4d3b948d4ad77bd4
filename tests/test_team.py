"""Team-wide recording (issue #6): several proxies on one cassette folder, crashes, a shared proxy
behind a password, stable bytes and the log lines a team reads."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from llmvcr.cassette import Cassette, Interaction, Request, Response, dumps, load
from support.fake_upstream import (
    FakeResponse,
    RecordedRequest,
    chat_completion,
    chat_completion_events,
)
from support.proxy import MitmProxy, ProxyFactory
from support.written import wait_for_cassette

pytestmark = pytest.mark.e2e

CHAT_URL = "https://api.openai.com/v1/chat/completions"
# Credentials a client sends to the LLM API: the upstream gets them, the store never does.
SECRETS = {
    "Authorization": "Bearer sk-team-SECRET-0123456789abcdef",
    "api-key": "azure-team-SECRET-987654321",
}
SECRET_NEEDLES = [value.split(" ")[-1] for value in SECRETS.values()]

RECORDED_LINE = re.compile(
    r"llm-vcr: recorded (?P<method>[A-Z]+) (?P<url>\S+) -> (?P<status>\d{3}) "
    r"\((?P<bytes>\d+) bytes, (?P<ms>\d+) ms\) in '(?P<cassette>[^']+)'"
)
SUMMARY_LINE = re.compile(
    r"llm-vcr: session \S+: cassette '(?P<cassette>[^']+)': replayed (?P<replayed>\d+), "
    r"recorded (?P<recorded>\d+), missed (?P<missed>\d+), unused (?P<unused>\d+)"
)


# ---- helpers


def start_together(make_proxy: ProxyFactory, count: int, **kw: object) -> list[MitmProxy]:
    """`count` proxies launched at once (startup is the slow part), each ready on return."""
    proxies = [make_proxy(start=False, **kw) for _ in range(count)]
    for proxy in proxies:
        proxy.launch()
    return [proxy.wait_ready() for proxy in proxies]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


def everything_stored(folder: Path) -> bytes:
    """Every byte under the cassette folder: cassettes, temp files, the store's private state."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def chat_body(prompt: str, stream: bool = True) -> bytes:
    return json.dumps({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
    }).encode()


# ---- 1 and 6: two proxies, 24 concurrent streaming clients, 120 requests, 6 shared cassettes

CLIENTS, PER_CLIENT, CASSETTES = 24, 5, 6


@dataclass(frozen=True, slots=True)
class Planned:
    number: int
    proxy: int  # 0 or 1
    cassette: str

    @property
    def url(self) -> str:
        return f"{CHAT_URL}?req={self.number}"

    @property
    def body(self) -> bytes:
        return chat_body(f"team request number {self.number}")


def team_plan() -> list[list[Planned]]:
    """Per client, its requests in order: client c goes through proxy c % 2; request n goes to
    cassette n % 6, so every cassette gets requests through both proxies."""
    plan = [
        [Planned(c * PER_CLIENT + r, c % 2, f"team/c{(c * PER_CLIENT + r) % CASSETTES}")
         for r in range(PER_CLIENT)]
        for c in range(CLIENTS)
    ]
    every = [p for client in plan for p in client]
    for name in {p.cassette for p in every}:
        assert {p.proxy for p in every if p.cassette == name} == {0, 1}
    return plan


async def run_team(proxies: list[MitmProxy], plan: list[list[Planned]]) -> dict[int, bytes]:
    """All clients at once, each sending its requests one after another (streams read to the
    end); the body each request got, by request number."""
    received: dict[int, bytes] = {}

    async def client(requests: list[Planned]) -> None:
        async with proxies[requests[0].proxy].async_httpx_client() as http:
            for planned in requests:
                headers = {**SECRETS, "X-VCR-Cassette": planned.cassette,
                           "Content-Type": "application/json"}
                async with http.stream("POST", planned.url, headers=headers,
                                       content=planned.body) as reply:
                    body = await reply.aread()
                assert reply.status_code == 200, body[:300]
                received[planned.number] = body

    await asyncio.gather(*(client(requests) for requests in plan))
    return received


@pytest.mark.parametrize("mode", ["record", "new_episodes"])
def test_two_proxies_share_one_store(
    make_proxy, upstream, tmp_path, mode, written_cassettes
) -> None:
    store = tmp_path / "cassettes"
    plan = team_plan()
    every = [p for client in plan for p in client]
    proxies = start_together(make_proxy, 2, mode=mode, vcr_dir=store, upstream=upstream)

    received = asyncio.run(run_team(proxies, plan))

    assert len(received) == len(every) == 120
    assert all(body.rstrip().endswith(b"data: [DONE]") for body in received.values())
    assert len(upstream.requests) == 120  # nothing was answered from a half-written cassette
    for proxy in proxies:
        assert proxy.stop() == 0
    assert temp_files(store) == []

    cassettes = written_cassettes(store)
    assert sorted(cassettes) == [f"team/c{i}" for i in range(CASSETTES)]
    for name, cassette in cassettes.items():
        planned = {p.url: p for p in every if p.cassette == name}
        urls = [i.request.url for i in cassette.interactions]
        assert Counter(urls) == Counter(list(planned)), f"{name}: not each request exactly once"
        for interaction in cassette.interactions:
            sent = planned[interaction.request.url]
            assert interaction.request.body == sent.body
            assert interaction.response.code == 200
            assert interaction.response.body == received[sent.number], f"{name}: body differs"
    stored = everything_stored(store)
    for needle in SECRET_NEEDLES:
        assert needle.encode() not in stored
        for proxy in proxies:
            assert needle not in proxy.output()

    # 6: one INFO line per recorded interaction, and a summary per cassette at stop.
    for index, proxy in enumerate(proxies):
        mine = [p for p in every if p.proxy == index]
        lines = [m.groupdict() for m in RECORDED_LINE.finditer(proxy.output())]
        assert len(lines) == len(mine) == 60
        by_url = {p.url: p for p in mine}
        for line in lines:
            planned = by_url.pop(line["url"])  # KeyError: a line for a request not sent here
            assert (line["method"], line["status"], line["cassette"]) == (
                "POST", "200", planned.cassette)
            assert int(line["bytes"]) == len(received[planned.number])
            assert int(line["ms"]) < 30_000
        summaries = {m["cassette"]: m.groupdict() for m in SUMMARY_LINE.finditer(proxy.output())}
        assert sorted(summaries) == sorted({p.cassette for p in mine})
        for name, summary in summaries.items():
            assert int(summary["recorded"]) == sum(p.cassette == name for p in mine)
            assert (summary["replayed"], summary["missed"]) == ("0", "0")
            if mode == "record":  # nothing is looked up, so nothing can be left unused
                assert summary["unused"] == "0"
            else:  # at most the other proxy's interactions (this one's are its own recordings)
                assert int(summary["unused"]) <= sum(
                    p.cassette == name and p.proxy != index for p in every)
    total = sum(len(RECORDED_LINE.findall(p.output())) for p in proxies)
    assert total == 120


# ---- 2: a proxy killed mid-stream


def test_killed_proxy_leaves_loadable_cassettes_and_a_new_one_appends(
    make_proxy, upstream, tmp_path, written_cassettes
) -> None:
    store = tmp_path / "cassettes"
    first = make_proxy(mode="record", vcr_dir=store, upstream=upstream)
    finished: dict[str, dict[str, bytes]] = {"crash/a": {}, "crash/b": {}}
    with first.httpx_client() as client:
        for name in finished:
            for n in range(2):
                url = f"https://api.openai.com/sse?n=3&delay=0.01&case={name}-{n}"
                reply = client.get(url, headers={**SECRETS, "X-VCR-Cassette": name})
                assert reply.status_code == 200
                finished[name][url] = reply.content
    for name, replies in finished.items():
        wait_for_cassette(store / f"{name}.yaml", len(replies))

    # Streams in flight at the kill: two into the cassettes above, one into a cassette that
    # does not exist yet. A busy client keeps writes going into a fourth one until the kill.
    first_events = threading.Semaphore(0)
    stop_busy = threading.Event()
    busy: dict[str, bytes] = {}

    def slow(name: str, tag: int) -> str:
        url = f"https://api.openai.com/sse?n=60&delay=0.1&slow={tag}"
        try:
            with first.httpx_client() as client, client.stream(
                "GET", url, headers={"X-VCR-Cassette": name}
            ) as reply:
                for line in reply.iter_lines():
                    if line.startswith("data:"):
                        first_events.release()
                return "finished"  # would mean the kill came too late for this test
        except httpx.HTTPError:
            return "cut"

    def busy_client() -> None:
        with first.httpx_client() as client:
            n = 0
            while not stop_busy.is_set():
                url = f"https://api.openai.com/sse?n=2&delay=0.005&busy={n}"
                try:
                    reply = client.get(url, headers={"X-VCR-Cassette": "crash/busy"})
                except httpx.HTTPError:
                    return
                busy[url] = reply.content
                n += 1

    with ThreadPoolExecutor(4) as pool:
        streams = [pool.submit(slow, name, tag)
                   for tag, name in enumerate(["crash/a", "crash/b", "crash/new"])]
        busy_done = pool.submit(busy_client)
        for _ in streams:
            assert first_events.acquire(timeout=15)
        written_before_kill = wait_for_cassette(store / "crash/busy.yaml", 5)
        first.kill()
        stop_busy.set()
        assert [s.result(timeout=15) for s in streams] == ["cut"] * 3
        busy_done.result(timeout=15)

    # Every cassette loads, with each interaction that finished before the kill, whole.
    cassettes = written_cassettes(store)
    assert sorted(cassettes) == ["crash/a", "crash/b", "crash/busy"]
    for name, replies in finished.items():
        assert {i.request.url: i.response.body for i in cassettes[name].interactions} == replies
    busy_stored = cassettes["crash/busy"].interactions
    assert len(busy_stored) >= len(written_before_kill.interactions)
    assert len({i.request.url for i in busy_stored}) == len(busy_stored)
    # The last one may have been saved (the upstream had finished) while the kill cut the
    # client's copy short: every busy answer has the same bytes, so compare with any whole one.
    whole = next(iter(busy.values()))
    assert all(body == whole for body in busy.values())
    for interaction in busy_stored:
        assert interaction.response.body == busy.get(interaction.request.url, whole)
    # What a write cut by the kill would leave (the kill can land between two writes, so make
    # one): a temp file named after the dead process, next to its cassette.
    cut = store / "crash" / f".a.yaml.{first.process.pid}.tmp"
    cut.write_bytes((store / "crash/a.yaml").read_bytes()[:100])
    assert temp_files(store)
    before = {name: (store / f"{name}.yaml").read_bytes() for name in cassettes}

    upstream.reset()
    second = make_proxy(mode="new_episodes", vcr_dir=store, upstream=upstream)
    assert temp_files(store) == []  # the new proxy cleared what no write will finish
    with second.httpx_client() as client:
        old_url, old_body = next(iter(finished["crash/a"].items()))
        replayed = client.get(old_url, headers={"X-VCR-Cassette": "crash/a"})
        assert replayed.content == old_body
        appended = client.get("https://api.openai.com/sse?n=3&delay=0.01&after=1",
                              headers={"X-VCR-Cassette": "crash/a"})
        created = client.get("https://api.openai.com/sse?n=3&delay=0.01&after=2",
                             headers={"X-VCR-Cassette": "crash/new"})
        # One more into crash/a once the append is on disk: the proxy reloads the file then.
        wait_for_cassette(store / "crash/a.yaml", 3)
        again = client.get("https://api.openai.com/sse?n=3&delay=0.01&after=3",
                           headers={"X-VCR-Cassette": "crash/a"})
    assert [r.status_code for r in (appended, created, again)] == [200] * 3, again.text
    assert [r.target for r in upstream.requests] == [
        f"/sse?n=3&delay=0.01&after={n}" for n in (1, 2, 3)]
    assert second.stop() == 0

    after = written_cassettes(store)
    a_bytes = (store / "crash/a.yaml").read_bytes()
    assert a_bytes.startswith(before["crash/a"])  # appended, old bytes untouched
    assert [i.response.body for i in after["crash/a"].interactions] == [
        *finished["crash/a"].values(), appended.content, again.content]
    assert [i.response.body for i in after["crash/new"].interactions] == [created.content]
    for name in ("crash/b", "crash/busy"):
        assert (store / f"{name}.yaml").read_bytes() == before[name]
    assert temp_files(store) == []


# ---- 3: `record` with several processes: afresh only when the file predates the proxy


def old_cassette(path: Path, url: str, age_s: float = 3600) -> bytes:
    """A cassette with one interaction, its file last written `age_s` seconds ago."""
    interaction = Interaction(Request(method="GET", url=url), Response(body=b"old answer"))
    data = dumps(Cassette([interaction]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return data


def test_record_mode_appends_to_a_cassette_written_after_start(
    make_proxy, upstream, tmp_path, written_cassettes
) -> None:
    store = tmp_path / "cassettes"
    old_cassette(store / "shared.yaml", "https://api.openai.com/echo?from=last-week")
    untouched = old_cassette(store / "untouched.yaml", "https://api.openai.com/echo?from=old")
    a, b = start_together(make_proxy, 2, mode="record", vcr_dir=store, upstream=upstream)

    path = store / "shared.yaml"

    def tags() -> list[str]:
        return [i.request.url.rsplit("=", 1)[1] for i in load(path).interactions]

    def record(proxy: MitmProxy, tag: str) -> list[str]:
        with proxy.httpx_client() as client:
            reply = client.get(f"https://api.openai.com/echo?from={tag}",
                               headers={"X-VCR-Cassette": "shared"})
        assert reply.status_code == 200
        wait_for(lambda: tag in tags(), f"{tag}'s interaction in {path}")
        return tags()

    # A finds a file older than itself: it starts the cassette afresh.
    assert record(a, "A") == ["A"]
    # B finds a file written after it started (by A): it appends.
    assert record(b, "B") == ["A", "B"]
    # And A keeps appending: the file is newer than A too.
    assert record(a, "A2") == ["A", "B", "A2"]
    for proxy in (a, b):
        assert proxy.stop() == 0
    assert (store / "untouched.yaml").read_bytes() == untouched
    assert sorted(written_cassettes(store)) == ["shared", "untouched"]


# ---- 4: stable bytes and completion order


def scripted_chat(record: RecordedRequest) -> FakeResponse:
    """A chat answer that depends only on the request (the canned route numbers its ids)."""
    body = record.json()
    prompt = body["messages"][-1]["content"]
    ident = f"chatcmpl-{sum(prompt.encode()):08d}"
    text = f"Answer to: {prompt}"
    if body.get("stream"):
        return FakeResponse.sse(chat_completion_events(text, body["model"], ident), delay=0.02)
    return FakeResponse.json(chat_completion(text, body["model"], ident))


def record_conversation(proxy: MitmProxy) -> None:
    """The same client traffic every time: SDK calls, then a slow and a fast stream at once."""
    client = proxy.openai_client(cassette="talk")
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello there"}])
    assert first.choices[0].message.content == "Answer to: Hello there"
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "Hello there"},
                  {"role": "assistant", "content": "Answer to: Hello there"},
                  {"role": "user", "content": "Tell me more"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Answer to: Tell me more"

    slow_started = threading.Event()

    def slow() -> bytes:
        with proxy.httpx_client(cassette="order") as http, http.stream(
            "GET", "https://api.openai.com/sse?n=5&delay=0.3&which=slow"
        ) as reply:
            parts = []
            for part in reply.iter_bytes():
                parts.append(part)
                slow_started.set()
            return b"".join(parts)

    with ThreadPoolExecutor(1) as pool:
        slow_body = pool.submit(slow)
        assert slow_started.wait(15)
        with proxy.httpx_client(cassette="order") as http:
            fast = http.get("https://api.openai.com/sse?n=2&delay=0.01&which=fast")
        assert fast.status_code == 200
        assert slow_body.result(timeout=30).count(b"data:") == 5


def masked_lines(path: Path) -> list[str]:
    """The file's lines with the timing masked: `duration` values, and the `chunks` key with its
    entries left out (how many there are, if any, follows the network's reads)."""
    lines = []
    for line in path.read_text().splitlines():
        if re.fullmatch(r" +duration: \S+", line):
            line = re.sub(r"duration: \S+", "duration: <masked>", line)
        elif re.fullmatch(r" +chunks:| +- \{at: [^,]+, size: \d+\}", line):
            continue
        lines.append(line)
    return lines


def test_same_conversation_records_the_same_bytes(
    make_proxy, upstream, tmp_path, written_cassettes
) -> None:
    folders = [tmp_path / "run1", tmp_path / "run2"]
    for folder in folders:
        upstream.reset()
        upstream.script("/v1/chat/completions", scripted_chat, times=None)
        proxy = make_proxy(mode="record", vcr_dir=folder, upstream=upstream)
        record_conversation(proxy)
        assert proxy.stop() == 0

    runs = [written_cassettes(folder) for folder in folders]
    assert sorted(runs[0]) == sorted(runs[1]) == ["order", "talk"]
    for name in runs[0]:
        assert masked_lines(folders[0] / f"{name}.yaml") == masked_lines(
            folders[1] / f"{name}.yaml"), f"{name}.yaml differs beyond timing"
    for run in runs:
        # In completion order: the fast stream was started second and finished first.
        order = [i.request.url.rsplit("=", 1)[1] for i in run["order"].interactions]
        assert order == ["fast", "slow"]
        assert len(run["order"].interactions[1].response.chunks or []) >= 5
        assert len(run["talk"].interactions) == 2


# ---- 5: one shared proxy behind a password


def test_shared_proxy_with_a_password(make_proxy, upstream, tmp_path, written_cassettes) -> None:
    store = tmp_path / "cassettes"
    proxy = make_proxy(mode="record", vcr_dir=store, upstream=upstream,
                       options={"proxyauth": "team:s3cret", "vcr_cassette": "fallback"})

    def client(credentials: str | None) -> httpx.Client:
        auth = f"{credentials}@" if credentials else ""
        return httpx.Client(proxy=f"http://{auth}{proxy.host}:{proxy.port}",
                            verify=proxy.ssl_context(), trust_env=False, timeout=30)

    with client("team:s3cret") as team:
        for name in ("alice/chat", "bob/chat", None):
            headers = {**SECRETS, **({"X-VCR-Cassette": name} if name else {})}
            reply = team.post(CHAT_URL, headers=headers,
                              content=chat_body(f"from {name}"))
            assert reply.status_code == 200
    for credentials in ("team:wrong", "intruder:s3cret", None):
        with client(credentials) as other:
            with pytest.raises(httpx.ProxyError, match="407"):
                other.post(CHAT_URL, content=chat_body("let me in"))
            # Plain HTTP through the proxy gets the 407 as a response.
            assert other.get("http://api.openai.com/echo").status_code == 407
    assert len(upstream.requests) == 3
    for received in upstream.requests:
        assert received.header("proxy-authorization") is None
        assert received.header("x-vcr-cassette") is None
    assert proxy.stop() == 0

    # The header picked the cassette; the login named none ("team" is not a cassette).
    cassettes = written_cassettes(store)
    assert sorted(cassettes) == ["alice/chat", "bob/chat", "fallback"]
    for name, cassette in cassettes.items():
        (interaction,) = cassette.interactions
        assert json.loads(interaction.request.body)["messages"][0]["content"] == (
            f"from {None if name == 'fallback' else name}")
    stored = everything_stored(store)
    token = base64.b64encode(b"team:s3cret")
    for needle in [b"s3cret", token, b"Proxy-Authorization", *(s.encode() for s in
                                                               SECRET_NEEDLES)]:
        assert needle not in stored, needle
    assert "s3cret" not in proxy.output()
