"""Where the proxy's CPU goes per recorded stream (issue 14): `python -m bench.profile_recording`.

The load of section 7 (64 clients streaming at all times, 5 SSE events 10 ms apart, about 1 KB
per body, spread over 100 cassettes) through llm-vcr recording and through plain mitmdump
(streaming), `STREAMS` streams each after a warm-up, with `py-spy` sampling the proxy (all
threads, idle ones left out) at 250 Hz. Prints, for each proxy, the CPU per stream (`/proc`) and
the share of the busy samples under each frame that matters, as JSON and as a short table on
stderr; docs/performance.md shows a run. py-spy counts a thread as busy when it is not waiting in
a known idle call, so a share is of the proxy's busy time, which CPU per stream scales to µs.
Needs `py-spy` in the venv (`.venv/bin/python -m pip install py-spy`) and ptrace rights.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .lab import Lab, thread_cpu_seconds
from .stream_bench import TAG_HEADER, SustainedPlan, _sse_path, _stream_item
from .workload import API_HOST

STREAMS = 4_000
RATE_HZ = 250

# Frames whose inclusive share is reported: (label, regular expression on "function (file)").
FRAMES = (
    ("event loop, all of it", r"BaseEventLoop\._run_once \(asyncio/base_events\.py\)"),
    ("addon hooks (llmvcr/addon.py)", r"^VCR\.\w+ \(llmvcr/addon\.py\)"),
    ("  requestheaders", r"^VCR\.requestheaders "),
    ("  request", r"^VCR\.request "),
    ("  responseheaders (starts the tee)", r"^VCR\.responseheaders "),
    ("  response (builds and queues the interaction)", r"^VCR\.response "),
    ("stream tee, per chunk (llmvcr/record.py)", r"\(llmvcr/record\.py\)"),
    ("output guard (llmvcr/output_guard.py)", r"\(llmvcr/output_guard\.py\)"),
    ("writer thread: appends (llmvcr/writer.py, store.py)", r"\(llmvcr/(writer|store)\.py\)"),
    ("logging (records through the root handlers)", r"^Logger\.(info|_log|handle) "),
    ("mitmproxy addon dispatch", r"^AddonManager\.trigger_event "),
    ("TLS (pyOpenSSL)", r"\(OpenSSL/SSL\.py\)"),
    ("socket writes", r"^_SelectorSocketTransport\.write "),
)


def _profile(lab: Lab, proxy_name: str, options: dict[str, object], addon: bool,
             out: Path) -> dict[str, object]:
    plan = SustainedPlan()
    item = _stream_item(f"https://{API_HOST}{_sse_path(plan.events, plan.gap, plan.pad, True)}")
    proxy = lab.proxy(proxy_name, addon=addon, options=options, routed=True,
                      stream_responses=not addon)
    assert proxy.process is not None
    spec = {
        "kind": "streams",
        "proxy": proxy.url(),
        "ca": str(proxy.ca_cert_path),
        "concurrency": plan.clients,
        "items": [item],
        "headers_for": {"X-VCR-Cassette": [f"load/c{n:03d}" for n in range(plan.cassettes)]},
        "unique_header": TAG_HEADER,
    }
    lab.loadgen({**spec, "warmup": 1, "count": 1_000}, watch=proxy)  # caches and cassettes warm
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "--format",
         "raw", "-r", str(RATE_HZ), "-p", str(proxy.process.pid), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        before = thread_cpu_seconds(proxy.process.pid)
        result = lab.loadgen({**spec, "warmup": 0, "count": STREAMS}, watch=proxy)
        after = thread_cpu_seconds(proxy.process.pid)
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes what it sampled
        spy.wait(60)
        lab.stop(proxy)
    busy, shares = _shares(out)
    main_thread = after.get(proxy.process.pid, 0.0) - before.get(proxy.process.pid, 0.0)
    others = sum(after.values()) - sum(before.values()) - main_thread
    return {
        "event_loop_thread_cpu_per_stream_us": main_thread / STREAMS * 1e6,
        "other_threads_cpu_per_stream_us": others / STREAMS * 1e6,
        "streams_per_s": STREAMS / result["elapsed"],
        "cpu_per_stream_us": result["proxy_cpu"] / STREAMS * 1e6,
        "busy_samples": busy,
        "shares": shares,
    }


def _shares(raw: Path) -> tuple[int, dict[str, float]]:
    """Busy samples, and the share of them under each of FRAMES (a sample counts once per label
    even when the frame recurs in its stack)."""
    patterns = [(label, re.compile(expr)) for label, expr in FRAMES]
    counts: Counter[str] = Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue  # (py-spy wraps a very deep stack's line; such samples are rare)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if not frames or frames[-1].startswith(("EpollSelector.select", "select (")):
            continue  # the event loop waiting
        samples = int(number)
        busy += samples
        for label, pattern in patterns:
            if any(pattern.search(frame) for frame in frames):
                counts[label] += samples
    return busy, {label: counts[label] / busy if busy else 0.0 for label, _ in FRAMES}


def markdown(runs: dict[str, dict[str, Any]]) -> str:
    """The runs as one Markdown table: each frame's share of the busy samples and, in brackets,
    that share of the CPU per stream in µs; then each run's throughput and CPU per stream."""
    names = list(runs)
    lines = [
        "| frame | " + " | ".join(f"{name}: share (~µs per stream)" for name in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, _ in FRAMES:
        cells = []
        for name in names:
            share = runs[name]["shares"][label]
            cpu = share * runs[name]["cpu_per_stream_us"]
            cells.append(f"{share * 100:.1f} % ({cpu:.0f})" if share else "–")
        shown = "· " + label.strip() if label.startswith("  ") else label  # a hook of the addon
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(" · ".join(
        f"{name}: {run['streams_per_s']:.0f} streams/s, {run['cpu_per_stream_us']:.0f} µs CPU "
        f"per stream ({run['event_loop_thread_cpu_per_stream_us']:.0f} µs in the event loop's "
        f"thread, {run['other_threads_cpu_per_stream_us']:.0f} µs in others)"
        for name, run in runs.items()))
    return "\n".join(lines)


def main() -> None:
    """`python -m bench.profile_recording [RAW_DIR]`: RAW_DIR keeps py-spy's raw stacks."""
    folder = Path(tempfile.mkdtemp(prefix="llm-vcr-profile-"))
    raw = Path(sys.argv[1]) if len(sys.argv) > 1 else folder
    raw.mkdir(parents=True, exist_ok=True)
    lab = Lab(folder, lambda text: print(text, file=sys.stderr, flush=True))
    try:
        runs = {
            "llm-vcr recording": _profile(
                lab, "profile-record", {"vcr_mode": "record", "vcr_dir": str(folder / "store")},
                True, raw / "record.txt"),
            "plain mitmdump": _profile(lab, "profile-plain", {}, False, raw / "plain.txt"),
        }
    finally:
        lab.close()
        shutil.rmtree(folder, ignore_errors=True)
    print(markdown(runs), file=sys.stderr)
    json.dump(runs, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
