"""The benchmark's load generator: `python bench/loadgen.py JOB.json` prints a JSON result.

It runs in its own process so that its CPU use never counts against the proxy's event loop (the
parent only waits). Every worker is a thread with its own `httpx.Client`: HTTP/1.1 over TLS
through the proxy (one CONNECT, then keep-alive for all its requests), or straight to a server
when the job has no proxy. Workers first send their warm-up requests (connection set-up, TLS
handshake, cassette load: not measured), meet at a barrier, then take request numbers from a
shared counter until the job's count is reached, so the work is spread evenly.

Job (JSON):
    kind          "requests" (whole responses, latency per request) or "streams" (arrival time
                  of each SSE event, read by its `"index":N`)
    proxy, ca     proxy URL (or null) and the CA file to trust; optional `proxies`: a list of
                  proxy URLs, worker w goes through proxies[w % len] (overrides `proxy`)
    concurrency   workers; warmup: requests per worker before the barrier; count: measured ones
    items         [{method, url, body, headers, expect}]; measured request k uses item
                  order[k % len(order)] (order: the items' indices, default in turn)
    headers_for   optional {"X-VCR-Cassette": ["a", "b", ...]}: request k gets value k % len
    stagger       optional seconds between the workers' first measured requests (worker w
                  starts w * stagger after the barrier), so they do not all start at once
    unique_header optional header name: every request gets a distinct value in it, reported back
                  as `tag` (to find the upstream's record of that request)
    stop_file     optional path: measured requests also end once this file exists (`count` is
                  then an upper bound)
    timestamps    optional bool: a "requests" record is [sent, latency_s] (sent: monotonic)
It prints MEASURING when the measured phase starts, MEASURED when it ended, then one line:
Result: {"elapsed": s, "cpu": s, "records": [...], "errors": n, "first_error": str | null};
a record is `latency_s` for requests, `{tag, item, sent, events: [[index, t], ...]}` for
streams (times are `time.monotonic()`, the same clock in every process of the machine).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import ssl
import sys
import threading
import time
from typing import Any

import httpx

# Lines on stdout around the measured phase (the parent samples the proxy's CPU time there);
# the result is the last line.
MEASURING = "measuring"
MEASURED = "measured"
_EVENT_INDEX = re.compile(rb'"index":\s*(\d+)')


class Job:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.items: list[dict[str, Any]] = spec["items"]
        for item in self.items:
            expect = item.get("expect")
            item["expect_bytes"] = None if expect is None else expect.encode()
        self.order: list[int] = spec.get("order") or list(range(len(self.items)))
        self.count: int = spec["count"]
        self.kind: str = spec["kind"]
        self.headers_for: dict[str, list[str]] = spec.get("headers_for") or {}
        self.unique_header: str | None = spec.get("unique_header")
        self.stop_file: str | None = spec.get("stop_file")
        self.timestamps: bool = bool(spec.get("timestamps"))
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.errors = 0
        self.first_error: str | None = None

    def next_number(self) -> int | None:
        with self._lock:
            n = next(self._numbers)
        if self.stop_file is not None and os.path.exists(self.stop_file):
            return None
        return n if n < self.count else None

    def error(self, text: str) -> None:
        with self._lock:
            self.errors += 1
            if self.first_error is None:
                self.first_error = text

    def client(self, worker: int) -> httpx.Client:
        context = ssl.create_default_context(cafile=self.spec["ca"])
        proxies = self.spec.get("proxies")
        return httpx.Client(
            proxy=proxies[worker % len(proxies)] if proxies else self.spec.get("proxy"),
            verify=context,
            http2=False,
            trust_env=False,
            timeout=httpx.Timeout(self.spec.get("timeout", 120.0)),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def request_parts(self, number: int, tag: str) -> tuple[dict[str, Any], str, dict[str, str]]:
        item = self.items[self.order[number % len(self.order)]]
        url = item["url"]
        headers = dict(item.get("headers") or {})
        for name, values in self.headers_for.items():
            headers[name] = values[number % len(values)]
        if self.unique_header:
            headers[self.unique_header] = tag
        return item, url, headers


def _one_request(job: Job, client: httpx.Client, number: int, tag: str) -> Any:
    item, url, headers = job.request_parts(number, tag)
    sent = time.monotonic()
    start = time.perf_counter()
    try:
        response = client.request(item["method"], url, content=item["body"], headers=headers)
    except httpx.HTTPError as e:
        job.error(f"{url}: {type(e).__name__}: {e}")
        return None
    latency = time.perf_counter() - start
    if response.status_code != 200:
        job.error(f"{url}: status {response.status_code}: {response.text[:300]}")
        return None
    expect = item["expect_bytes"]
    if expect is not None and response.content != expect:
        job.error(f"{url}: unexpected body {response.text[:200]!r}")
        return None
    return [sent, latency] if job.timestamps else latency


def _one_stream(job: Job, client: httpx.Client, number: int, tag: str) -> dict[str, Any] | None:
    """One streamed request: when it was called, when its last byte left (httpcore's trace:
    20 threads sharing one GIL can take milliseconds between the two), and each event's arrival."""
    item, url, headers = job.request_parts(number, tag)
    events: list[list[float]] = []
    written: list[float] = []

    def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith(".send_request_body.complete"):
            written.append(time.monotonic())

    called = time.monotonic()
    try:
        with client.stream(item["method"], url, content=item["body"], headers=headers,
                           extensions={"trace": trace}) as resp:
            if resp.status_code != 200:
                resp.read()
                job.error(f"{url}: status {resp.status_code}: {resp.text[:300]}")
                return None
            pending = b""
            for data in resp.iter_raw():
                now = time.monotonic()
                pending += data
                *complete, pending = pending.split(b"\n\n")
                for event in complete:
                    found = _EVENT_INDEX.search(event)
                    if found:
                        events.append([int(found[1]), now])
    except httpx.HTTPError as e:
        job.error(f"{url}: {type(e).__name__}: {e}")
        return None
    sent = written[0] if written else called
    return {"tag": tag, "item": number % len(job.order), "called": called, "sent": sent,
            "events": events}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    job = Job(spec)
    workers = spec["concurrency"]
    warmup = spec.get("warmup", 1)
    stagger = spec.get("stagger", 0.0)
    barrier = threading.Barrier(workers + 1)
    records: list[list[Any]] = [[] for _ in range(workers)]
    ends = [0.0] * workers
    one = _one_request if job.kind == "requests" else _one_stream

    def work(w: int) -> None:
        client = job.client(w)
        try:
            for k in range(warmup):
                one(job, client, w + k * workers, f"w{w}-warm{k}")
        finally:
            barrier.wait()
        time.sleep(w * stagger)
        try:
            while (number := job.next_number()) is not None:
                record = one(job, client, number, f"m{number}")
                if record is not None:
                    records[w].append(record)
        finally:
            ends[w] = time.perf_counter()
            client.close()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    cpu_start = time.process_time()
    print(MEASURING, flush=True)
    for thread in threads:
        thread.join()
    print(MEASURED, flush=True)
    return {
        "elapsed": max(ends) - start,
        "cpu": time.process_time() - cpu_start,
        "records": [r for per_worker in records for r in per_worker],
        "errors": job.errors,
        "first_error": job.first_error,
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    json.dump(run(spec), sys.stdout)


if __name__ == "__main__":
    main()
