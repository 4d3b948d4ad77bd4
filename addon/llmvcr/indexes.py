"""The match index of every cassette the proxy replays from, shared by all sessions.

One `RequestIndex` per cassette, built when the cassette is first needed and kept while its file
does not change (one stat per request, no parse). A file that only grew (this proxy's appends,
another process's, a teammate's recorded episode) extends the index with the new interactions;
only a file rewritten in place (`git pull`, `llm-vcr fmt`) builds it anew. Each session's use of a
cassette (`sessions.CassetteUse`) is kept by content as well as by position, so it carries over
to a rebuilt index, and the interactions a session recorded count as used by it once the append
that holds them shows up in the index. Pure Python; the addon calls `refresh` from a worker thread
(it reads and parses files) and everything else on the event loop.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from .cassette import Cassette, CassetteError, Interaction
from .gil import yielding_gil
from .matching import MatchOptions, RequestIndex, Usage
from .redact import redact_url
from .sessions import CassetteUse, Identity
from .store import CassetteStore


def identity(interaction: Interaction) -> Identity:
    """What makes two interactions the same recording (bytes objects cache their hash)."""
    request = interaction.request
    return (request.method, request.url, hash(request.body), hash(interaction.response.body))


def request_line(interaction: Interaction, position: int | None = None) -> str:
    """`#id METHOD URL` (URL with secret parameters redacted) for reports."""
    request = interaction.request
    prefix = "" if position is None else f"#{position} "
    return f"{prefix}{request.method} {redact_url(request.url)}"


@dataclass(slots=True)
class Loaded:
    """A cassette as the proxy last read it, with its index."""

    cassette: Cassette
    index: RequestIndex


class CassetteIndexes:
    """The loaded cassettes of one store under one set of match options."""

    def __init__(self, store: CassetteStore, options: MatchOptions) -> None:
        self.store = store
        self.options = options
        self._loaded: dict[str, Loaded] = {}
        self._broken: dict[str, str] = {}  # the error text last logged per cassette (logged once)
        self._lock = threading.Lock()  # refresh runs in worker threads

    def current(self, name: str) -> Loaded | None:
        """The cassette's index when its file is unchanged since it was read (one stat, no
        parse, no thread); None: call `refresh`."""
        loaded = self._loaded.get(name)
        if loaded is None or self.store.cached(name) is not loaded.cassette:
            return None
        return loaded

    def refresh(self, name: str) -> Loaded | CassetteError | None:
        """In a worker thread: the cassette's index, extended or rebuilt to match its file, or
        the file's error; None when the file does not exist. The event loop gets the GIL back
        quickly while this runs (a big cassette takes seconds to read and index)."""
        with yielding_gil():
            return self._refresh(name)

    def _refresh(self, name: str) -> Loaded | CassetteError | None:
        try:
            cassette = self.store.load(name)
        except CassetteError as e:
            return e
        if cassette is None:
            with self._lock:
                self._loaded.pop(name, None)
            return None
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is not None and loaded.cassette is cassette:
                return loaded
            added = None if loaded is None else self.store.appended_since(
                loaded.cassette, cassette
            )
            if loaded is not None and added is not None:
                for interaction in added:  # the file only grew: extend, never rebuild
                    loaded.index.add(interaction)
                loaded.cassette = cassette
                return loaded
            fresh = Loaded(cassette, RequestIndex(cassette.interactions, self.options))
            self._loaded[name] = fresh
            return fresh

    def forget(self) -> None:
        """Drop every index (the match options changed): each is rebuilt on its next use."""
        with self._lock:
            self._loaded.clear()

    def broken(self, name: str, error: CassetteError) -> bool:
        """Note that the cassette is broken; True the first time this error is seen (log it)."""
        text = str(error)
        if self._broken.get(name) == text:
            return False
        self._broken[name] = text
        return True

    def unused_lines(self, name: str, use: CassetteUse) -> list[str] | None:
        """The request lines of the cassette's interactions that `use` has not answered, or None
        when the cassette is not loaded."""
        loaded = self._loaded.get(name)
        if loaded is None:
            return None
        usage = sync(use, loaded)
        index = loaded.index
        return [
            request_line(index[position], position)
            for position in range(len(index)) if position not in usage.answered
        ]


def sync(use: CassetteUse, loaded: Loaded) -> Usage:
    """The session's positional use of `loaded`'s index, brought up to date: built from the
    session's record by content when the index is new to it, extended over positions added since
    it last looked. Costs nothing when the index has not changed."""
    index = loaded.index
    if use.index is not index:
        use.index = index
        use.usage = Usage()
        use.known = 0
        use.pending = Counter(use.consumed)
    if use.known < len(index) and use.pending:
        usage, pending = use.usage, use.pending
        for position in range(use.known, len(index)):
            key = identity(index[position])
            if pending.get(key, 0) > 0:
                pending[key] -= 1
                usage.mark(position)
    use.known = len(index)
    return use.usage
