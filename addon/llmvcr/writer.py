"""What the addon writes to disk: recorded interactions (off the event loop, batched per
cassette) and the shutdown summary (atomically)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any

from .cassette import CassetteError, Interaction
from .gil import yielding_gil
from .redact import redact_url
from .store import CassetteNameError, CassetteStore

log = logging.getLogger("llmvcr")


class Start(Enum):
    """How a recording joins its cassette's file."""

    APPEND = "append"
    AFRESH_IF_OLD = "afresh if old"  # mode record, the proxy's own rule: a file from before it
    AFRESH = "afresh"  # mode record, a session's first write (see `sessions`)


class CassetteWriter:
    """Saves recorded interactions off the event loop, one batch per cassette at a time.

    Interactions finished while a cassette's previous write is still running are written together
    in the next one, so a burst of concurrent streams costs few file writes. Batches that start a
    file afresh go before the appends that follow them. Each interaction's `recorded` line is
    logged by the worker thread once the append holding it is on disk: it says what is saved, and
    formatting and printing a log line (mitmproxy hands every record to three handlers) stays off
    the event loop.
    """

    def __init__(self, store: CassetteStore) -> None:
        self.store = store
        self._pending: dict[tuple[str, Start], list[Interaction]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, name: str, interaction: Interaction, start: Start = Start.APPEND) -> None:
        self._pending.setdefault((name, start), []).append(interaction)
        if name not in self._tasks:
            self._tasks[name] = asyncio.get_running_loop().create_task(self._drain(name))

    async def _drain(self, name: str) -> None:
        try:
            for start in (Start.AFRESH, Start.AFRESH_IF_OLD, Start.APPEND):
                while batch := self._pending.pop((name, start), None):
                    try:
                        await asyncio.to_thread(self._write, name, batch, start)
                    except (OSError, CassetteError, CassetteNameError) as e:
                        log.error(
                            "llm-vcr: could not write %d interaction(s) to cassette '%s': %s",
                            len(batch), name, e,
                        )
        finally:
            del self._tasks[name]
            if any(key[0] == name for key in self._pending):
                self._tasks[name] = asyncio.get_running_loop().create_task(self._drain(name))

    def _write(self, name: str, batch: list[Interaction], start: Start) -> None:
        with yielding_gil():
            self.store.append(
                name, batch, replace_old=start is Start.AFRESH_IF_OLD, afresh=start is Start.AFRESH
            )
            for interaction in batch:
                log_recorded(name, interaction)

    async def flush(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)


def log_recorded(name: str, interaction: Interaction) -> None:
    """`llm-vcr: recorded POST https://host/path -> 200 (1234 bytes, 52 ms) in 'name'` (bytes as
    saved, the time to the response headers)."""
    request, response = interaction.request, interaction.response
    log.info(
        "llm-vcr: recorded %s %s -> %s (%d bytes, %.0f ms) in '%s'",
        request.method, redact_url(request.url), response.code, len(response.body),
        response.duration / 1e6, name,
    )


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Through a temp file in the same folder and a rename: a full or read-only disk leaves
    the previous file (or none), never a truncated one, and logs one line."""
    data = (json.dumps(summary, indent=2) + "\n").encode()
    path = path.expanduser()
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 is for the temp file only
            f.write(data)
        os.replace(temp, path)
    except OSError as e:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        log.error("llm-vcr: could not write the summary %s: %s", path, e.strerror or e)
