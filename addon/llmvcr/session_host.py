"""What the control API needs from the running proxy (`control.ControlAPI`'s hooks).

- Proxy ports of sessions' own, for clients that can carry nothing in the proxy URL (Java reads
  neither a proxy user name nor a password for HTTPS tunnels) and for proxies whose password is a
  login: one more `regular@PORT` entry in mitmproxy's `mode` option while the session is open.
- Settling a closing session: its flows still in flight finish, its recordings reach their files.
- Loading the cassettes a session named but never used, so its report lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterable

from mitmproxy import ctx

from .flowstate import FlowState
from .indexes import CassetteIndexes
from .sessions import Session, SessionError
from .writer import CassetteWriter

SETTLE_STEPS, SETTLE_STEP_S = 250, 0.02  # a closing session waits up to 5 s for its flows


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


async def settle(
    flows: Callable[[], Iterable[FlowState]], session: Session | None, writer: CassetteWriter | None
) -> None:
    """Wait for `session`'s flows still in flight (a client may close its session as soon as it
    has read the last byte, before mitmproxy finished the flow; bounded: a flow that hangs does
    not hold the close), then for every write to reach its file."""
    for _ in range(SETTLE_STEPS):
        if session is None or not any(
            state.session is session and state.upstream for state in flows()
        ):
            break
        await asyncio.sleep(SETTLE_STEP_S)
    if writer is not None:
        await writer.flush()


async def load_named(indexes: CassetteIndexes | None, session: Session) -> None:
    """Load (off the event loop) the cassettes a session named but never used."""
    if indexes is None:
        return
    for name in session.named:
        if name not in session.uses and indexes.current(name) is None:
            await asyncio.to_thread(indexes.refresh, name)
