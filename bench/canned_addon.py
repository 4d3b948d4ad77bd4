"""A mitmproxy script (`mitmdump -s bench/canned_addon.py`) that answers every request with one
fixed response made once at start-up: the least work an answering addon can do, so its
throughput is mitmproxy's own floor for replay.

Option `canned_body`: a file whose bytes are the JSON body of every answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mitmproxy import ctx, http


class Canned:
    def __init__(self) -> None:
        self.body = b"{}"

    def load(self, loader: Any) -> None:
        loader.add_option("canned_body", str, "", "File holding the body of every answer.")

    def configure(self, updated: set[str]) -> None:
        if "canned_body" in updated and ctx.options.canned_body:
            self.body = Path(ctx.options.canned_body).read_bytes()

    def request(self, flow: http.HTTPFlow) -> None:
        flow.response = http.Response.make(
            200, self.body, {"Content-Type": "application/json"}
        )


addons = [Canned()]
