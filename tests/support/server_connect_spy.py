"""A mitmproxy script for tests: prints one line for every upstream connection mitmproxy opens."""

from __future__ import annotations

import logging

from mitmproxy.proxy import server_hooks


def server_connect(data: server_hooks.ServerConnectionHookData) -> None:
    host, port = data.server.address or ("?", 0)
    logging.getLogger("spy").warning("SERVER_CONNECT %s:%s", host, port)
