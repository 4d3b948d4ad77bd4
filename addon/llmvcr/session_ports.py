"""Proxy ports of sessions' own, for clients that can carry nothing in the proxy URL (Java reads
neither a proxy user name nor a password for HTTPS tunnels) and for proxies whose password is a
login: one more `regular@PORT` entry in mitmproxy's `mode` option while the session is open."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from mitmproxy import ctx

from .sessions import SessionError


async def open_port() -> int:
    """A free port on the proxy's own listen host, once mitmproxy accepts connections on it."""
    host = ctx.options.listen_host or "127.0.0.1"
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    ctx.options.update(mode=[*ctx.options.mode, f"regular@{port}"])
    for _ in range(250):  # mitmproxy starts the server in a task of its own
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return port
        await asyncio.sleep(0.02)
    close_port(port)
    raise SessionError(503, "port", f"could not listen on {host}:{port}")


def close_port(port: int) -> None:
    spec = f"regular@{port}"
    ctx.options.update(mode=[mode for mode in ctx.options.mode if mode != spec])
