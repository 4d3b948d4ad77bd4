"""`llm-vcr show`, `check` and `redact` through the real command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SEED


def llm_vcr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmvcr.cli", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_show_prints_the_streamed_answer() -> None:
    result = llm_vcr("show", str(SEED))
    assert result.returncode == 0, result.stderr
    assert "Olá!" in result.stdout and "Say hi in Portuguese" in result.stdout


def test_check_then_redact_then_check(tmp_path: Path) -> None:
    planted = tmp_path / "leaky.yaml"
    text = SEED.read_text().replace(
        "      Accept:\n      - application/json\n",
        "      Accept:\n      - application/json\n      Authorization:\n"
        "      - Bearer sk-planted-SECRET-0123456789abcdef\n", 1,
    )
    planted.write_text(text)
    before = llm_vcr("check", str(tmp_path))
    assert before.returncode == 1
    assert f"{planted}:" in before.stdout and "Authorization" in before.stdout
    assert "sk-planted-SECRET" not in before.stdout + before.stderr
    redacted = llm_vcr("redact", str(planted))
    assert redacted.returncode == 0, redacted.stderr
    assert "Authorization" in redacted.stdout and "sk-planted" not in redacted.stdout
    after = llm_vcr("check", str(tmp_path))
    assert after.returncode == 0, after.stdout
    assert planted.read_bytes() == SEED.read_bytes()


def test_fmt_check_accepts_the_seed(tmp_path: Path) -> None:
    shutil.copy(SEED, tmp_path / "seed.yaml")
    assert llm_vcr("fmt", "--check", str(tmp_path)).returncode == 0
