"""Section 10: a shared proxy under a CI fleet's load (issue 14).

- `new_episodes` into a big cassette: 8 clients each send requests the cassette does not hold
  (each one recorded, its interaction appended), into a cassette of 15,000 interactions, into the
  same cassette after a hand edit the fast reader declines (one body double-quoted), and through
  two proxies sharing that cassette (4 clients on each); against the same recording into an
  empty cassette. The cost of a recorded request is its latency at the client (median over the
  measured requests, after each client's warm-up request has loaded the cassette); CPU per request
  of the proxy is shown for the one-proxy runs.
- A big load does not stall the other clients: while a proxy loads a cassette of about 100 MB
  (the request that needs it is sent by this process), 4 clients keep replaying from a small
  cassette; the latency of every small request that was in flight during the load, p99 and max.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .figures import Row, mb, ms, percentile
from .lab import BenchError, Lab
from .workload import (
    CHAT_URL,
    CLIENT_HEADERS,
    chat_interactions,
    chat_request_body,
    request_items,
    write_cassette,
)


@dataclass(frozen=True, slots=True)
class EpisodesPlan:
    existing: int = 15_000
    clients: int = 8
    requests: int = 400  # measured recordings per variant
    big: int = 100_000  # small interactions in the big cassette (about 1 KB of YAML each)
    small_clients: int = 4


def _new_items(first: int, count: int) -> list[dict[str, Any]]:
    """Requests no cassette here holds (numbers from `first` on): each one is recorded."""
    return [
        {"method": "POST", "url": CHAT_URL, "body": chat_request_body(n).decode(),
         "headers": CLIENT_HEADERS, "expect": None}
        for n in range(first, first + count)
    ]


def hand_edited(data: bytes) -> bytes:
    """The cassette with its first response body written double-quoted, as a hand edit or
    another YAML writer would leave it: the same cassette, in a form the fast reader declines."""
    start = data.index(b"\n    body: '", data.index(b"  response:\n")) + len(b"\n    body: ")
    end = data.index(b"\n", start)
    quoted = data[start:end].decode()
    assert quoted.startswith("'") and quoted.endswith("'")
    text = quoted[1:-1].replace("''", "'")
    return data[:start] + json.dumps(text, ensure_ascii=False).encode() + data[end:]


def _check_hand_edit(original: bytes, edited: bytes) -> None:
    from llmvcr.cassette import loads

    try:
        from llmvcr.cassette.fastreader import fast_loads
    except ImportError:  # an addon from before the fast reader (an A/B's baseline): one reader
        fast_loads = None
    if fast_loads is not None and fast_loads(edited) is not None:
        raise BenchError("the hand-edited cassette is still read by the fast reader")
    if loads(edited).interactions[0] != loads(original).interactions[0]:
        raise BenchError("the hand edit changed the cassette")


def _recording_run(
    lab: Lab, plan: EpisodesPlan, name: str, folder: Path, proxies: int, first: int
) -> dict[str, Any]:
    options = {"vcr_mode": "new_episodes", "vcr_dir": str(folder), "vcr_cassette": "shared"}
    started = [lab.proxy(f"episodes-{name}-{k}", options=options, routed=True, start=False)
               for k in range(proxies)]
    for proxy in started:
        proxy.launch()
    for proxy in started:
        proxy.wait_ready(60)
    try:
        result = lab.loadgen(
            {
                "kind": "requests",
                "proxies": [p.url() for p in started],
                "ca": str(started[0].ca_cert_path),
                "concurrency": plan.clients,
                "warmup": 1,
                "count": plan.requests,
                "items": _new_items(first, plan.clients + plan.requests),
            },
            watch=started[0] if proxies == 1 else None,
        )
    finally:
        for proxy in started:
            lab.stop(proxy)
    lab.upstream.reset()
    latencies = result["records"]
    figures = {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "rate": len(latencies) / result["elapsed"],
        "cpu": result["proxy_cpu"] / len(latencies) if "proxy_cpu" in result else None,
    }
    lab.say(
        f"   {name}: {figures['rate']:.0f} recordings/s, latency p50 {ms(figures['p50'])} "
        f"p99 {ms(figures['p99'])}"
        + (f", proxy CPU {figures['cpu'] * 1e6:.0f} us/request" if figures["cpu"] else "")
    )
    return figures


def _load_stall(lab: Lab, plan: EpisodesPlan) -> dict[str, Any]:
    """Small requests' latency while the proxy loads the big cassette."""
    folder = lab.folder / "stall"
    big = chat_interactions(plan.big, small=True)
    size = write_cassette(folder / "big.yaml", big)
    small = chat_interactions(50, small=True, first=plan.big)
    write_cassette(folder / "small.yaml", small)
    proxy = lab.proxy(
        "stall",
        options={"vcr_mode": "replay", "vcr_dir": str(folder), "vcr_reuse": True},
    )
    stop_file = folder / "stop"
    box: dict[str, Any] = {}

    def small_load() -> None:
        try:
            box["result"] = lab.loadgen(
                {
                    "kind": "requests",
                    "proxy": proxy.url(),
                    "ca": str(proxy.ca_cert_path),
                    "concurrency": plan.small_clients,
                    "warmup": 2,
                    "count": 1_000_000,
                    "items": request_items(small),
                    "headers_for": {"X-VCR-Cassette": ["small"]},
                    "stop_file": str(stop_file),
                    "timestamps": True,
                }
            )
        except BaseException as e:  # reported by the main thread
            box["error"] = e

    try:
        runner = threading.Thread(target=small_load, daemon=True)
        runner.start()
        time.sleep(3)  # the small clients warmed up and running
        item = request_items(big[plan.big // 2 : plan.big // 2 + 1])[0]
        with httpx.Client(proxy=proxy.url(), verify=str(proxy.ca_cert_path), trust_env=False,
                          timeout=300) as client:
            load_start = time.monotonic()
            response = client.post(item["url"], content=item["body"], headers={
                **CLIENT_HEADERS, "X-VCR-Cassette": "big"})
            load_end = time.monotonic()
        if response.status_code != 200 or response.text != item["expect"]:
            raise BenchError(f"the big cassette's answer: {response.status_code}")
        time.sleep(1)
        stop_file.write_text("")
        runner.join(120)
        if "error" in box:
            raise box["error"]
    finally:
        stop_file.write_text("")
        lab.stop(proxy)
    records = box["result"]["records"]
    during = [latency for sent, latency in records
              if sent < load_end and sent + latency > load_start]
    outside = [latency for sent, latency in records
               if sent + latency < load_start or sent > load_end]
    if not during:
        raise BenchError("no small request was in flight during the load")
    figures = {
        "size": size,
        "load_s": load_end - load_start,
        "during": len(during),
        "p50": percentile(during, 50),
        "p99": percentile(during, 99),
        "max": max(during),
        "outside_p99": percentile(outside, 99),
    }
    lab.say(
        f"   load of {mb(size)}: {figures['load_s']:.1f} s; {len(during)} small requests during "
        f"it: p50 {ms(figures['p50'])} p99 {ms(figures['p99'])} max {ms(figures['max'])} "
        f"(outside it: p99 {ms(figures['outside_p99'])})"
    )
    return figures


def shared_proxy(lab: Lab, plan: EpisodesPlan) -> tuple[list[Row], dict[str, Any]]:
    """Section 10 (see the module's docstring)."""
    lab.say(
        f"10. new_episodes: {plan.clients} clients recording into a {plan.existing:,}-interaction "
        f"cassette; a {plan.big:,}-interaction load beside {plan.small_clients} clients"
    )
    base = lab.folder / "episodes"
    write_cassette(base / "seed.yaml", chat_interactions(plan.existing))
    data = (base / "seed.yaml").read_bytes()
    edited = hand_edited(data)
    _check_hand_edit(data, edited)
    variants: list[tuple[str, bytes | None, int]] = [
        ("empty", None, 1),
        ("15,000", data, 1),
        ("15,000 hand-edited", edited, 1),
        ("15,000, two proxies", data, 2),
    ]
    runs: dict[str, dict[str, Any]] = {}
    for k, (name, content, proxies) in enumerate(variants):
        folder = base / f"v{k}"
        folder.mkdir(parents=True)
        if content is not None:
            (folder / "shared.yaml").write_bytes(content)
        first = 1_000_000 * (k + 1)
        runs[name] = _recording_run(lab, plan, name, folder, proxies, first)
    stall = _load_stall(lab, plan)

    empty = runs["empty"]["p50"]
    one = runs["15,000"]["p50"]

    def cpu(name: str) -> str:
        value = runs[name]["cpu"]
        return "" if value is None else f", CPU {value * 1e6:.0f} µs"

    rows = [
        Row(
            "10",
            f"new_episodes, {plan.clients} clients, every request recorded: latency p50 / p99 "
            "(proxy CPU per request)",
            " · ".join(
                f"{name} {ms(r['p50'])} / {ms(r['p99'])}{cpu(name)}"
                for name, r in runs.items()
            ),
        ),
        Row("10", f"recording into {plan.existing:,} interactions vs into an empty cassette (p50)",
            f"{one / empty:.2f}x", "<= 2x", one / empty <= 2),
        Row("10", "the same, the cassette hand-edited (fast reader declines it)",
            f"{runs['15,000 hand-edited']['p50'] / empty:.2f}x", "<= 2x",
            runs["15,000 hand-edited"]["p50"] / empty <= 2),
        Row("10", "two proxies sharing the 15,000 cassette vs one proxy (p50)",
            f"{runs['15,000, two proxies']['p50'] / one:.2f}x", "<= 2x",
            runs["15,000, two proxies"]["p50"] / one <= 2),
        Row(
            "10",
            f"while a {mb(stall['size'])} cassette loads ({stall['load_s']:.1f} s): latency of "
            f"the {stall['during']} requests for another cassette in flight, p50 / p99 (max)",
            f"{ms(stall['p50'])} / {ms(stall['p99'])} ({ms(stall['max'])})",
            "p99 < 100 ms",
            stall["p99"] < 0.100,
        ),
    ]
    return rows, {"recording": runs, "stall": stall}
