"""CPU per request of the answering hooks alone, in-process (no sockets, no TLS): the llm-vcr
addon's `requestheaders` + `request` + `response`, mitmproxy's `server_replay` `request`, and
the canned addon's `request`, each on the same 1,000 flows.

Run in a fresh process: `python -m bench.hook_cost FOLDER [REQUESTS]` prints JSON (microseconds
of CPU per request, worker threads included, best of 5). Far less sensitive to other load on the
machine than throughput through a real proxy, so it shows where the addon's own time goes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from mitmproxy import connection, http
from mitmproxy.addons import proxyauth, proxyserver, serverplayback
from mitmproxy.test import taddons

from .workload import chat_interactions, write_cassette, write_flow_file

ROUNDS = 5


def _flows(interactions: list[Any], count: int) -> list[http.HTTPFlow]:
    """Fresh flows as mitmproxy hands them to `request`: the client's request, no response."""
    client = connection.Client(peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080))
    out = []
    for n in range(count):
        request = interactions[n % len(interactions)].request
        flow = http.HTTPFlow(client, connection.Server(address=("api.openai.com", 443)))
        flow.request = http.Request.make(
            "POST",
            request.url,
            request.body,
            {"Content-Type": "application/json", "User-Agent": "llm-vcr-bench/1"},
        )
        out.append(flow)
    return out


def _best(per_round: list[float]) -> float:
    return min(per_round) * 1e6


async def _vcr(folder: Path, interactions: list[Any], count: int) -> float:
    from llmvcr.addon import VCR

    addon = VCR()
    with taddons.context(addon, proxyauth.ProxyAuth(), proxyserver.Proxyserver()) as tctx:
        tctx.configure(
            addon,
            vcr_mode="replay",
            vcr_dir=str(folder / "store"),
            vcr_cassette="bench",
            vcr_reuse=True,
        )
        await addon.running()
        rounds = []
        for flows in [_flows(interactions, 50)] + [
            _flows(interactions, count) for _ in range(ROUNDS)
        ]:
            start = time.process_time()
            for flow in flows:
                addon.requestheaders(flow)
                await addon.request(flow)
                addon.response(flow)
            rounds.append((time.process_time() - start) / len(flows))
            if flows[-1].response is None or flows[-1].response.status_code != 200:
                raise RuntimeError("llm-vcr did not answer in the hook benchmark")
        await addon.stream_server.stop()
    return _best(rounds[1:])


async def _server_replay(folder: Path, interactions: list[Any], count: int) -> float:
    addon = serverplayback.ServerPlayback()
    with taddons.context(addon) as tctx:
        tctx.configure(
            addon,
            server_replay=[str(folder / "bench.flows")],
            server_replay_reuse=True,
            server_replay_extra="kill",
        )
        rounds = []
        for _ in range(ROUNDS):
            flows = _flows(interactions, count)
            start = time.process_time()
            for flow in flows:
                addon.request(flow)
            rounds.append((time.process_time() - start) / len(flows))
            if flows[-1].response is None:
                raise RuntimeError("server_replay did not answer in the hook benchmark")
    return _best(rounds)


async def _canned(folder: Path, interactions: list[Any], count: int) -> float:
    spec = importlib.util.spec_from_file_location(
        "canned_addon", Path(__file__).with_name("canned_addon.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    addon = module.Canned()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, canned_body=str(folder / "canned.json"))
        rounds = []
        for _ in range(ROUNDS):
            flows = _flows(interactions, count)
            start = time.process_time()
            for flow in flows:
                addon.request(flow)
            rounds.append((time.process_time() - start) / len(flows))
    return _best(rounds)


async def measure(folder: Path, count: int) -> dict[str, float]:
    interactions = chat_interactions(1000)
    write_cassette(folder / "store" / "bench.yaml", interactions)
    write_flow_file(folder / "bench.flows", interactions)
    (folder / "canned.json").write_bytes(interactions[0].response.body)
    return {
        "llm-vcr": await _vcr(folder, interactions, count),
        "server_replay": await _server_replay(folder, interactions, count),
        "canned": await _canned(folder, interactions, count),
    }


def main() -> None:
    folder = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    folder.mkdir(parents=True, exist_ok=True)
    json.dump(asyncio.run(measure(folder, count)), sys.stdout)


if __name__ == "__main__":
    main()
