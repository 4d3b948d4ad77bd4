"""Which cassette files the PATH arguments of the `llm-vcr` cassette commands name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def cassette_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The cassette files named by `paths` (folders: every `*.yaml` below, sorted), and the paths
    that do not exist. The order of `paths` is kept; a file named twice is listed once."""
    files: list[Path] = []
    missing: list[str] = []
    seen: set[Path] = set()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.yaml") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            missing.append(name)
            continue
        for file in found:
            if file not in seen:
                seen.add(file)
                files.append(file)
    return files, missing
