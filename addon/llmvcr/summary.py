"""What the proxy reports about its sessions: a log line per session and cassette when a session
closes (or expires, or the proxy stops), and the `vcr_summary` JSON file.

The log line keeps the shape users grep for, with the session in front:
`llm-vcr: session <id>: cassette 'x': replayed N, recorded N, missed N, unused N`.

`vcr_summary` keeps its `cassettes` totals (per cassette, over all sessions: what tools parsed
before sessions existed) and adds `sessions`: every session's report (`sessions.report`). Closed
sessions' reports are kept for the file up to `MAX_CLOSED_KEPT` (the most recent ones; their
totals always count), so a proxy serving runs for weeks does not grow without bound.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from .sessions import Registry, Session, UnusedLister, report
from .writer import write_summary

log = logging.getLogger("llmvcr")

MAX_CLOSED_KEPT = 1000
_COUNTS = ("replayed", "recorded", "missed", "unused")


class Summary:
    def __init__(self) -> None:
        self._closed: deque[dict[str, object]] = deque(maxlen=MAX_CLOSED_KEPT)
        self._totals: dict[str, dict[str, int]] = {}

    def closed(
        self, session: Session, unused: UnusedLister, why: str = "closed"
    ) -> dict[str, object]:
        """Log and keep the final report of a session that has just been closed; the report."""
        data = report(session, unused, is_open=False)
        self._closed.append(data)
        self._add(data)
        _log_lines(data, why)
        return data

    def finish(self, sessions: Registry, unused: UnusedLister, path: str) -> None:
        """At shutdown: log every session still open (the default one included, when it saw a
        request) and write `path` (when set) with every report."""
        reports = list(self._closed)
        totals = {name: dict(counts) for name, counts in self._totals.items()}
        for session in sessions:
            data = report(session, unused, is_open=True)
            if session is sessions.default and not data["cassettes"]:
                continue
            _log_lines(data, "open at shutdown")
            reports.append(data)
            _add_totals(totals, data)
        if path:
            write_summary(Path(path), {
                "cassettes": dict(sorted(totals.items())),
                "sessions": {str(r["session"]): r for r in reports},
            })

    def _add(self, data: dict[str, object]) -> None:
        _add_totals(self._totals, data)


def _add_totals(totals: dict[str, dict[str, int]], data: dict[str, object]) -> None:
    cassettes: dict[str, dict] = data["cassettes"]  # type: ignore[assignment]
    for name, entry in cassettes.items():
        counts = totals.setdefault(name, dict.fromkeys(_COUNTS, 0))
        counts["replayed"] += entry["replayed"]
        counts["recorded"] += entry["recorded"]
        counts["missed"] += entry["missed_count"]
        counts["unused"] += len(entry["unused"])


def _log_lines(data: dict[str, object], why: str) -> None:
    cassettes: dict[str, dict] = data["cassettes"]  # type: ignore[assignment]
    if data["session"] != "default":
        log.info("llm-vcr: session %s %s (mode %s)", data["session"], why, data["mode"])
    for name, entry in sorted(cassettes.items()):
        log.info(
            "llm-vcr: session %s: cassette '%s': replayed %d, recorded %d, missed %d, unused %d",
            data["session"], name, entry["replayed"], entry["recorded"], entry["missed_count"],
            len(entry["unused"]),
        )
