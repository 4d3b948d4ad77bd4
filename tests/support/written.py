"""What a test's proxies wrote: every cassette in a folder, checked to save back to its bytes."""

from __future__ import annotations

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
