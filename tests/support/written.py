"""What a test's proxies wrote: every cassette in a folder, checked to save back to its bytes, and
a cassette once the proxy's writer (which runs off its event loop) has put it on disk."""

from __future__ import annotations

import time
from pathlib import Path

from llmvcr.cassette import Cassette, dumps, load


def cassettes_in(folder: Path) -> dict[str, Cassette]:
    """Every cassette under `folder` by name (hidden folders such as `.llm-vcr/` skipped), each
    checked to save back to its own bytes."""
    found = {}
    for path in sorted(folder.rglob("*.yaml")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        cassette = load(path)
        assert dumps(cassette) == path.read_bytes(), f"{path} does not round-trip"
        found[relative.as_posix().removesuffix(".yaml")] = cassette
    return found


def wait_for_cassette(path: Path, interactions: int, timeout: float = 15.0) -> Cassette:
    """The cassette once it holds at least `interactions` interactions."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            cassette = load(path)
            if len(cassette.interactions) >= interactions:
                return cassette
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got {interactions} interactions")
        time.sleep(0.05)
