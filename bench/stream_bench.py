"""Streams: what recording adds to a live stream (3), how closely timed replay keeps the recorded
pace (4), and recording under sustained load: throughput, latency, memory (7).

Arrival times are taken by the load generator and send times by the fake upstream, both with
`time.monotonic()` (CLOCK_MONOTONIC: one clock for every process of the machine), so a chunk's
delay is its arrival at the client minus the moment the upstream handed it to its server.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .figures import Row, mb, median, ms, percentile
from .lab import BenchError, Lab, MitmProxy, rss_bytes, wait_for
from .workload import API_HOST, CLIENT_HEADERS, request_items, sse_interaction, write_cassette

STREAM_BODY = '{"model":"gpt-4o-mini","stream":true}'
# Each stream carries a distinct tag in this header (not in the URL, so recorded URLs stay as
# alike as real traffic's); the upstream's record of the request is found by it.
TAG_HEADER = "X-Bench-Id"


@dataclass(frozen=True, slots=True)
class OverheadPlan:
    rounds: int = 3
    streams: int = 10  # measured, per variant and round, one client
    events: int = 20
    gap: float = 0.02


@dataclass(frozen=True, slots=True)
class FidelityPlan:
    clients: int = 20
    rounds: int = 3  # streams per client after its warm-up one
    events: int = 20
    first_ms: int = 50
    gap_ms: int = 20
    stagger: float = 0.005  # seconds between the clients' starts: concurrent, not a burst


@dataclass(frozen=True, slots=True)
class SustainedPlan:
    clients: int = 64
    cassettes: int = 100
    checkpoints: tuple[int, ...] = (2000, 6000, 10_000)  # interactions recorded at RSS reads
    events: int = 5
    gap: float = 0.01
    pad: int = 150  # bytes of padding per event: about 1 KB per recorded body


def _sse_path(events: int, gap: float, pad: int = 0, done: bool = False) -> str:
    path = f"/sse?n={events}&delay={gap}"
    if pad:
        path += f"&pad={pad}"
    return path + ("&done=1" if done else "")


def _stream_item(url: str) -> dict[str, Any]:
    return {"method": "POST", "url": url, "body": STREAM_BODY, "headers": CLIENT_HEADERS}


def _send_times(lab: Lab) -> dict[str, list[float]]:
    """The upstream's send time of every chunk, by the request's bench tag; then forget them."""
    times = {}
    for record in lab.upstream.requests:
        tag = record.header(TAG_HEADER)
        if tag is not None:
            times[tag] = list(record.chunk_times)
    lab.upstream.reset()
    return times


def _delays(streams: list[dict[str, Any]], sent_at: dict[str, list[float]]) -> list[float]:
    """Arrival minus upstream send time, for every event of every stream."""
    out = []
    for stream in streams:
        sends = sent_at.get(stream["tag"])
        if sends is None:
            raise BenchError(f"the upstream never saw stream {stream['tag']}")
        for index, arrived in stream["events"]:
            out.append(arrived - sends[index])
    return out


def record_overhead(lab: Lab, plan: OverheadPlan) -> tuple[list[Row], dict[str, Any]]:
    """Section 3: one client, keep-alive, streams of `events` SSE events `gap` s apart: straight
    to the upstream, through plain mitmdump (streaming every response) and through the addon
    recording (`vcr_mode=record`)."""
    lab.say(
        f"3. record overhead: {plan.rounds} rounds of {plan.streams} streams of {plan.events} "
        f"events {plan.gap * 1000:.0f} ms apart"
    )
    upstream = lab.upstream
    path = _sse_path(plan.events, plan.gap)
    store = lab.folder / "record-overhead"
    plain = lab.proxy("overhead-plain", addon=False, routed=True, stream_responses=True,
                      start=False)
    recording = lab.proxy(
        "overhead-record",
        options={"vcr_mode": "record", "vcr_dir": str(store), "vcr_cassette": "overhead"},
        routed=True,
        start=False,
    )
    for proxy in (plain, recording):
        proxy.launch()
    for proxy in (plain, recording):
        proxy.wait_ready(60)
    targets = {
        "direct": (None, str(lab.tls.ca_cert), upstream.url(path)),
        "mitmdump": (plain.url(), str(plain.ca_cert_path), f"https://{API_HOST}{path}"),
        "llm-vcr record": (
            recording.url(), str(recording.ca_cert_path), f"https://{API_HOST}{path}"),
    }
    variants = list(targets)
    ttfb: dict[str, list[float]] = {v: [] for v in variants}
    delays: dict[str, list[float]] = {v: [] for v in variants}
    for round_number in range(plan.rounds):
        shift = round_number % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            proxy_url, ca, url = targets[variant]
            result = lab.loadgen(
                {
                    "kind": "streams",
                    "proxy": proxy_url,
                    "ca": ca,
                    "concurrency": 1,
                    "warmup": 1,
                    "count": plan.streams,
                    "items": [_stream_item(url)],
                    "unique_header": TAG_HEADER,
                }
            )
            streams = result["records"]
            ttfb[variant] += [s["events"][0][1] - s["sent"] for s in streams]
            delays[variant] += _delays(streams, _send_times(lab))
            lab.say(
                f"   round {round_number + 1} {variant:14s} first event "
                f"{ms(median(ttfb[variant][-plan.streams:]))}  chunk delay p50 "
                f"{ms(percentile(delays[variant], 50))}"
            )
    for proxy in (plain, recording):
        lab.stop(proxy)

    p50 = {v: percentile(ttfb[v], 50) for v in variants}
    chunk50 = {v: percentile(delays[v], 50) for v in variants}
    chunk99 = {v: percentile(delays[v], 99) for v in variants}
    added_first = p50["llm-vcr record"] - p50["mitmdump"]
    added_chunk = chunk50["llm-vcr record"] - chunk50["mitmdump"]
    added_chunk99 = chunk99["llm-vcr record"] - chunk99["mitmdump"]
    count = plan.rounds * plan.streams
    rows = [
        Row(
            "3",
            f"first event p50 (request → event 0), 1 client, {count} streams each",
            " · ".join(f"{v} {ms(p50[v])}" for v in variants),
        ),
        Row(
            "3",
            "chunk delay p50 / p99 (upstream send → client)",
            " · ".join(f"{v} {ms(chunk50[v])} / {ms(chunk99[v])}" for v in variants),
        ),
        Row("3", "recording adds to the first byte (p50, vs mitmdump)", ms(added_first),
            "<= 3 ms", added_first <= 0.003),
        Row(
            "3",
            "recording adds per chunk (p50; p99 in brackets)",
            f"{ms(added_chunk)} ({ms(added_chunk99)})",
            "<= 1 ms",
            added_chunk <= 0.001,
        ),
    ]
    return rows, {"first_event": ttfb, "chunk_delays_p50": chunk50, "chunk_delays_p99": chunk99}


def timed_fidelity(lab: Lab, plan: FidelityPlan) -> tuple[list[Row], dict[str, Any]]:
    """Section 4: `clients` concurrent streams replayed with `vcr_latency=recorded`; for every
    event, |arrival − request sent − recorded offset|."""
    lab.say(
        f"4. timed replay: {plan.clients} concurrent streams of {plan.events} events, "
        f"{plan.rounds} per client"
    )
    folder = lab.folder / "timed"
    interactions = [
        sse_interaction(n, plan.events, plan.first_ms, plan.gap_ms) for n in range(plan.clients)
    ]
    write_cassette(folder / "timed.yaml", interactions)
    proxy = lab.proxy(
        "timed",
        options={
            "vcr_mode": "replay",
            "vcr_dir": str(folder),
            "vcr_cassette": "timed",
            "vcr_latency": "recorded",
            "vcr_reuse": True,
        },
    )
    runs = {}
    for name, stagger in (("staggered", plan.stagger), ("burst", 0.0)):
        result = lab.loadgen(
            {
                "kind": "streams",
                "proxy": proxy.url(),
                "ca": str(proxy.ca_cert_path),
                "concurrency": plan.clients,
                "warmup": 1,
                "count": plan.clients * plan.rounds,
                "items": request_items(interactions, expect=False),
                "stagger": stagger,
            }
        )
        runs[name] = _timing_errors(result["records"], interactions)
        figures = runs[name]
        lab.say(
            f"   {name}: error p50 {ms(figures['p50'])} p99 {ms(figures['p99'])}; first event "
            f"late p50 {ms(figures['first_late_p50'])}; pace error p99 {ms(figures['pace_p99'])}; "
            f"the client's own time from call to request sent p99 "
            f"{ms(figures['client_queue_p99'])}"
        )
    lab.stop(proxy)
    staggered, burst = runs["staggered"], runs["burst"]
    rows = [
        Row(
            "4",
            f"timed replay error (arrival − recorded offset), {plan.clients} concurrent streams × "
            f"{plan.events} events (starts {plan.stagger * 1000:.0f} ms apart), p50 / p99",
            f"{ms(staggered['p50'])} / {ms(staggered['p99'])} (max {ms(staggered['max'])}, "
            f"{staggered['events']} events)",
            "p99 <= 10 ms",
            staggered["p99"] <= 0.010,
        ),
        Row(
            "4",
            "the same with all streams started in the same millisecond (issue 14): error p50 / "
            "p99 · of which first event late p50 · pace error from the first event p99",
            f"{ms(burst['p50'])} / {ms(burst['p99'])} · {ms(burst['first_late_p50'])} · "
            f"{ms(burst['pace_p99'])}",
            "p99 <= 10 ms",
            burst["p99"] <= 0.010,
        ),
    ]
    return rows, runs


def _timing_errors(streams: list[dict[str, Any]], interactions: list[Any]) -> dict[str, float]:
    """|arrival − request sent − recorded offset| over every event; how late the first events
    were; and the pace error alone (offsets counted from the first event on both sides)."""
    errors, pace, first_late, queued = [], [], [], []
    for stream in streams:
        queued.append(stream["sent"] - stream["called"])
        chunks = interactions[stream["item"]].response.chunks or []
        if len(stream["events"]) != len(chunks):
            raise BenchError(f"a timed stream had {len(stream['events'])} events")
        first_index, first_arrival = stream["events"][0]
        first_late.append(first_arrival - stream["sent"] - chunks[first_index].at / 1e9)
        for index, arrived in stream["events"]:
            errors.append(abs(arrived - stream["sent"] - chunks[index].at / 1e9))
            pace.append(
                abs((arrived - first_arrival) - (chunks[index].at - chunks[first_index].at) / 1e9)
            )
    return {
        "p50": percentile(errors, 50),
        "p99": percentile(errors, 99),
        "max": max(errors),
        "events": len(errors),
        "first_late_p50": percentile(first_late, 50),
        "pace_p99": percentile(pace, 99),
        "client_queue_p99": percentile(queued, 99),
    }


_ENTRY = re.compile(rb"^- id: ", re.MULTILINE)


def _recorded_on_disk(store: Path) -> int:
    """Interactions in the store's cassettes (entries of the compact layout new files get)."""
    return sum(len(_ENTRY.findall(p.read_bytes())) for p in store.rglob("*.yaml"))


def _sustained_phases(
    lab: Lab,
    proxy: MitmProxy,
    plan: SustainedPlan,
    item: dict[str, Any],
    store: Path | None,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Run `plan.clients` streams at all times until each checkpoint's count is reached; RSS at
    each checkpoint (for a recording proxy, once its store holds them all); the chunk delays."""
    assert proxy.process is not None
    names = [f"load/c{n:03d}" for n in range(plan.cassettes)]
    phases: list[dict[str, Any]] = []
    delays: list[float] = []
    done = 0
    for checkpoint in plan.checkpoints:
        warmup = 1 if done == 0 else 0
        count = checkpoint - done - warmup * plan.clients
        result = lab.loadgen(
            {
                "kind": "streams",
                "proxy": proxy.url(),
                "ca": str(proxy.ca_cert_path),
                "concurrency": plan.clients,
                "warmup": warmup,
                "count": count,
                "items": [item],
                "headers_for": {"X-VCR-Cassette": names},
                "unique_header": TAG_HEADER,
            },
            watch=proxy,
        )
        done = checkpoint
        if store is not None:
            wait_for(lambda n=checkpoint: _recorded_on_disk(store) >= n, 120, "the recordings")
        else:
            time.sleep(1)  # the same settling time a recording proxy gets for its writes
        rss = rss_bytes(proxy.process.pid)
        phase_delays = _delays(result["records"], _send_times(lab))
        delays += phase_delays
        phase = {
            "streams": checkpoint,
            "rss": rss,
            "rate": count / result["elapsed"],
            "chunk_p50": percentile(phase_delays, 50),
            "chunk_p99": percentile(phase_delays, 99),
            "proxy_cpu_per_stream": result["proxy_cpu"] / count,
        }
        phases.append(phase)
        lab.say(
            f"   {checkpoint} streams: {phase['rate']:.0f} streams/s, chunk delay p50 "
            f"{ms(phase['chunk_p50'])} p99 {ms(phase['chunk_p99'])}, proxy CPU "
            f"{phase['proxy_cpu_per_stream'] * 1e6:.0f} us/stream, RSS {mb(rss)}"
        )
    return phases, delays


def sustained_recording(lab: Lab, plan: SustainedPlan) -> tuple[list[Row], dict[str, Any]]:
    """Section 7: `clients` streams at all times, recorded into `cassettes` cassettes, RSS when
    the store holds each checkpoint's count; then the same load through plain mitmdump (its
    latency and its own RSS growth are the baseline); and the time of one append."""
    lab.say(
        f"7. sustained recording: {plan.clients} concurrent streams into {plan.cassettes} "
        f"cassettes, checkpoints {plan.checkpoints}"
    )
    store = lab.folder / "sustained"
    item = _stream_item(f"https://{API_HOST}{_sse_path(plan.events, plan.gap, plan.pad, True)}")
    recording = lab.proxy(
        "sustained-record", options={"vcr_mode": "record", "vcr_dir": str(store)}, routed=True
    )
    lab.say("   llm-vcr recording:")
    phases, delays = _sustained_phases(lab, recording, plan, item, store)
    lab.stop(recording)
    plain = lab.proxy("sustained-plain", addon=False, routed=True, stream_responses=True)
    lab.say("   plain mitmdump:")
    plain_phases, plain_delays = _sustained_phases(lab, plain, plan, item, None)
    lab.stop(plain)

    def rate(runs: list[dict[str, Any]]) -> float:
        return median([p["rate"] for p in runs])

    p99, plain_p99 = percentile(delays, 99), percentile(plain_delays, 99)
    rss = [p["rss"] for p in phases]
    plain_rss = [p["rss"] for p in plain_phases]
    # The allocator and mitmproxy's own caches warm up over the first thousands of flows (plain
    # mitmdump too), so growth with the number recorded is judged on the later checkpoints.
    late = (rss[-1] - rss[-2]) - (plain_rss[-1] - plain_rss[-2])
    allowed = 0.02 * rss[-2]
    shown = " / ".join(f"{n:,}" for n in plan.checkpoints)
    rows = [
        Row(
            "7",
            f"sustained load, {plan.clients} concurrent streams of {plan.events} events into "
            f"{plan.cassettes} cassettes",
            f"llm-vcr recording {rate(phases):.0f} interactions/s · mitmdump "
            f"{rate(plain_phases):.0f} streams/s",
        ),
        Row(
            "7",
            "sustained recording throughput against plain mitmdump's (issue 14)",
            f"{rate(phases) / rate(plain_phases):.2f}x",
            ">= 0.95x",
            rate(phases) / rate(plain_phases) >= 0.95,
        ),
        Row(
            "7",
            "chunk delay p99 under that load (added: llm-vcr − mitmdump; issue 14)",
            f"llm-vcr {ms(p99)} · mitmdump {ms(plain_p99)} (added {ms(p99 - plain_p99)})",
            "added <= 20 ms",
            p99 - plain_p99 <= 0.020,
        ),
        Row(
            "7",
            f"RSS at {shown} streams (MB): llm-vcr recording · plain mitmdump",
            " / ".join(f"{r / 1e6:.1f}" for r in rss)
            + " · "
            + " / ".join(f"{r / 1e6:.1f}" for r in plain_rss),
        ),
        Row(
            "7",
            f"RSS growth from {plan.checkpoints[-2]:,} to {plan.checkpoints[-1]:,} recorded, "
            "beyond plain mitmdump's",
            f"{late / 1e6:+.1f} MB",
            "<= 2% of RSS",
            late <= allowed,
        ),
    ]
    return rows, {
        "phases": phases,
        "plain_phases": plain_phases,
        "p99": p99,
        "plain_p99": plain_p99,
    }
