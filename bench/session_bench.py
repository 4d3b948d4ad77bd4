"""Section 8: what sessions cost (issue 13), in-process and in a fresh process of its own.

- CPU per replayed request through the answering hooks, in the proxy's default session and in
  an explicit session (`X-VCR-Session`), interleaved rounds, best of each: sessions must add no
  measurable cost (target: within 10 %, the noise of this measure).
- Memory of 1,000 open sessions on one proxy, each having replayed 5 requests from one shared
  100-interaction cassette: RSS after, minus RSS with the cassette loaded and no session open
  (target: under 50 MB).

Run alone: `python -m bench.session_bench FOLDER` prints JSON.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.addons import proxyauth, proxyserver
from mitmproxy.test import taddons, tflow

from .figures import Row
from .hook_cost import _flows
from .workload import chat_interactions, write_cassette

SESSIONS = 1000
REQUESTS_PER_SESSION = 5
ROUNDS = 7
FLOWS_PER_ROUND = 1000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _open(addon: Any) -> str:
    """A session opened through the control API, as a client would."""
    request = http.Request.make("POST", "http://llm-vcr.invalid/v1/sessions", b'{"reuse": true}')
    control = tflow.tflow(req=request)
    addon.requestheaders(control)
    await addon.request(control)
    assert control.response is not None and control.response.status_code == 201
    return json.loads(control.response.content)["session"]


async def _answer(addon: Any, flows: list[http.HTTPFlow], session: str | None) -> float:
    start = time.process_time()
    for flow in flows:
        if session is not None:
            flow.request.headers["X-VCR-Session"] = session
        addon.requestheaders(flow)
        await addon.request(flow)
        addon.response(flow)
    if flows[-1].response is None or flows[-1].response.status_code != 200:
        raise RuntimeError("llm-vcr did not answer in the session benchmark")
    return (time.process_time() - start) / len(flows) * 1e6


async def measure(folder: Path) -> dict[str, float]:
    from llmvcr.addon import VCR

    interactions = chat_interactions(100)
    write_cassette(folder / "store" / "bench.yaml", interactions)
    addon = VCR()
    with taddons.context(addon, proxyauth.ProxyAuth(), proxyserver.Proxyserver()) as tctx:
        tctx.configure(addon, vcr_mode="replay", vcr_dir=str(folder / "store"),
                       vcr_cassette="bench", vcr_reuse=True)
        await addon.running()
        session = await _open(addon)
        await _answer(addon, _flows(interactions, 100), None)  # load the cassette, warm up
        await _answer(addon, _flows(interactions, 100), session)
        default_us, session_us = [], []
        for _ in range(ROUNDS):
            default_us.append(await _answer(addon, _flows(interactions, FLOWS_PER_ROUND), None))
            session_us.append(await _answer(addon, _flows(interactions, FLOWS_PER_ROUND), session))
        gc.collect()
        before = _rss_mb()
        for _ in range(SESSIONS):
            opened = await _open(addon)
            await _answer(addon, _flows(interactions, REQUESTS_PER_SESSION), opened)
        gc.collect()
        after = _rss_mb()
        open_sessions = len(addon.sessions)
        await addon.stream_server.stop()
    return {
        "default_us": min(default_us),
        "session_us": min(session_us),
        "sessions": open_sessions,
        "sessions_mb": after - before,
    }


def sessions_cost(lab: Any) -> tuple[list[Row], dict[str, Any]]:
    lab.say("8. sessions: hook cost and memory of 1,000 open sessions")
    data: dict[str, float] = lab.run_module("session_bench", str(lab.folder / "sessions"))
    ratio = data["session_us"] / data["default_us"]
    rows = [
        Row("8", "answering hooks per replayed request (in-process, best of "
            f"{ROUNDS} interleaved rounds): default session · explicit session",
            f"{data['default_us']:.0f} µs · {data['session_us']:.0f} µs = {ratio:.2f}x",
            "<= 1.1x", ratio <= 1.1),
        Row("8", f"memory of {SESSIONS:,} open sessions, {REQUESTS_PER_SESSION} replays each "
            "(RSS beyond the loaded cassette)",
            f"{data['sessions_mb']:.1f} MB ({int(data['sessions'])} open)",
            "< 50 MB", data["sessions_mb"] < 50 and data["sessions"] >= SESSIONS),
    ]
    return rows, data


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    json.dump(asyncio.run(measure(folder)), sys.stdout)


if __name__ == "__main__":
    main()
