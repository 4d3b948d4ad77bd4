"""What the addon knows about one flow to an LLM host, from its request headers to its end.

Kept by the addon (weakly, by flow), never in `flow.metadata`: mitmproxy serializes that into
`-w` files.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cassette import Interaction, Request
from .guard import OriginalRequest
from .modes import Plan
from .record import StreamTee
from .sessions import Session, SessionError


@dataclass(slots=True)
class FlowState:
    """What the addon knows about one flow to an LLM host."""

    cassette: str
    url: str  # the URL the client asked for (before map_remote), not yet redacted
    session: Session | SessionError
    recorded_host: bool = True  # False: a host outside vcr_hosts, kept for a replaying session
    name_error: str | None = None  # why the cassette name the client gave is unusable (400)
    websocket: bool = False  # an `Upgrade: websocket` request: never recorded or replayed
    request: Request | None = None  # redacted, as it will be stored
    plan: Plan | None = None
    started_ns: int = 0  # time.monotonic_ns() when sent upstream: origin of chunk times
    started_wall: float = 0.0  # time.time() at the same moment
    tee: StreamTee | None = None
    timed: bool = False  # answered by the stream server
    original: OriginalRequest | None = None  # the client's request, while `timed` replaces it

    upstream: bool = False  # sent upstream to be recorded (not answered from a cassette)
    # Mode verify: the interaction replay would have answered with (None: none was recorded),
    # or why the request cannot be verified.
    counterpart: Interaction | None = None
    unverifiable: str | None = None

    @property
    def record(self) -> bool:
        return self.upstream and self.plan is not None and self.plan.record

    @property
    def verify(self) -> bool:
        return self.upstream and self.plan is not None and self.plan.verify

    @property
    def captured(self) -> bool:
        """Its live answer is copied (to be recorded, or to be verified)."""
        return self.record or self.verify
