"""A plain local HTTPS server answering `GET /x` with `hello /x`, whose certificate only the
test CA vouches for: it stands in for a site the client must keep reaching directly (curl through
a passthrough proxy, a JVM that must keep trusting its own CAs).

    with hello_server(upstream_tls, line_end="\\n") as port: ...
"""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
from collections.abc import Iterator

from .tls import UpstreamTLS


@contextlib.contextmanager
def hello_server(tls: UpstreamTLS, line_end: str = "") -> Iterator[int]:
    """Serve on 127.0.0.1 (a thread) while the block runs; the port."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"hello {self.path}{line_end}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
