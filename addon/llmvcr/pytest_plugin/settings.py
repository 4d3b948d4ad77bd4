"""The plugin's options and its own failure: pure, importable without the proxy machinery (every
pytest run of a project with llm-vcr installed imports the plugin)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PluginError(Exception):
    """One line for the user: what went wrong and how to fix it."""


@dataclass(frozen=True)
class Options:
    """The plugin's settings, from the command line or the ini file (see `llmvcr.pytest_plugin`)."""

    mode: str
    server: str | None
    vcr_dir: Path  # absolute
    latency: str | None
    settings: tuple[str, ...]  # --vcr-set NAME=VALUE, for a proxy the plugin starts
    strict: bool
    block: bool
