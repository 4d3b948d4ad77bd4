"""Shared fixtures: where the interop corpus and the seed live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
SEED = ROOT / "cassettes" / "simple_streaming.yaml"


def corpus_files() -> list[Path]:
    """Every corpus cassette, sorted; empty when the corpus is absent."""
    return sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The go-vcr corpus: skipped in a clone without it, a failure in CI (which always has it)."""
    if not CORPUS.is_dir():
        reason = f"interop corpus not found at {CORPUS}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the corpus is required)")
        pytest.skip(reason)
    return CORPUS
