"""In-process harness for the addon: a configured VCR in mitmproxy's own test context
(`taddons`), flows made with `tflow`, and cassettes written straight to the store folder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional

from mitmproxy import hooks, http, options
from mitmproxy.test import taddons, tflow

from llmvcr.addon import VCR
from llmvcr.cassette import Cassette, Chunk, Interaction, Request, Response, dumps

CHAT_URL = "https://api.openai.com/v1/chat/completions"
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def vcr_context(tmp_path: Path, deferred: tuple[str, ...] = (), **opts: Any) -> tuple[Any, VCR]:
    """A taddons context holding a configured VCR (call inside a running loop)."""
    addon = VCR()
    base = options.Options()
    # Declared by mitmproxy's proxy addons, which taddons does not load; the addon reads them.
    base.add_option("connection_strategy", str, "eager", "")
    base.add_option("proxyauth", Optional[str], None, "")  # noqa: UP045 (mitmproxy typespec)
    base.set(f"vcr_dir={tmp_path / 'cassettes'}", *deferred, defer=True)
    tctx = taddons.context(addon, options=base)
    # What mitmproxy's script loader does after loading the script: configure every option.
    tctx.master.addons.invoke_addon_sync(addon, hooks.ConfigureHook(set(base.keys())))
    if opts:
        tctx.configure(addon, **opts)
    return tctx, addon


def chat_flow(url: str = CHAT_URL, headers: dict[str, str] | None = None,
              method: str = "POST", body: bytes = BODY) -> http.HTTPFlow:
    request = http.Request.make(method, url, body, headers or {})
    return tflow.tflow(req=request)


async def ask(addon: VCR, flow: http.HTTPFlow) -> http.HTTPFlow:
    addon.requestheaders(flow)
    await addon.request(flow)
    return flow


def error_of(flow: http.HTTPFlow) -> dict[str, Any]:
    assert flow.response is not None
    return json.loads(flow.response.content)["error"]


def write_cassette(folder: Path, name: str, interactions: list[Interaction]) -> Path:
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(Cassette(interactions)))
    return path


def chat_interaction(url: str = CHAT_URL, answer: bytes = b'{"ok": true}',
                     chunks: list[Chunk] | None = None) -> Interaction:
    return Interaction(
        Request(method="POST", url=url, body=BODY, content_length=len(BODY),
                headers={"Content-Type": ["application/json"]}),
        Response(body=answer, headers={"Content-Type": ["application/json"]},
                 content_length=len(answer), duration=1_000_000, chunks=chunks),
    )


async def upstream_answers(addon: VCR, flow: http.HTTPFlow, body: bytes, status: int = 200) -> None:
    """What mitmproxy does once the upstream answered a flow the addon sent upstream: the
    response hooks, with the addon's stream tee fed the body, then every write on disk."""
    assert flow.response is None, "the request should have gone upstream"
    flow.response = http.Response.make(status, b"", {"Content-Type": "application/json"})
    addon.responseheaders(flow)
    tee = flow.response.stream
    assert callable(tee)
    tee(body)
    tee(b"")
    flow.response.content = body
    addon.response(flow)
    assert addon.writer is not None
    await addon.writer.flush()
