"""`llm-vcr diff OLD NEW` through the real command line: a cassette against a modified copy,
folders paired by name, `--json`, the exit codes, a broken file reported with file:line while
the others are still compared."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, SEED
from llmvcr.cassette import dumps, load

ANTHROPIC = CORPUS / "fantasy" / "TestAnthropicCommon" / "claude-sonnet-4" / "tool_streaming.yaml"


def llm_vcr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmvcr.cli", "diff", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def rerecorded(source: Path, target: Path, *edits: tuple[int, bytes, bytes]) -> Path:
    """A copy of `source` written by our writer, each (interaction, old, new) replaced in that
    interaction's response body."""
    cassette = load(source)
    for index, old, new in edits:
        response = cassette.interactions[index].response
        assert old in response.body, old
        response.body = response.body.replace(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(dumps(cassette))
    return target


def needs_corpus() -> None:
    if not ANTHROPIC.is_file():
        pytest.skip("the corpus is not there")


def test_a_cassette_against_itself_is_all_same(tmp_path: Path) -> None:
    result = llm_vcr(SEED, rerecorded(SEED, tmp_path / "seed.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "1 interactions in 1 cassettes: 1 same, 0 benign, 0 changed, 0 new, 0 removed\n")


def test_a_rerecording_with_new_ids_and_other_words(tmp_path: Path, govcr_check) -> None:
    needs_corpus()
    new = rerecorded(
        ANTHROPIC, tmp_path / "new.yaml",
        (0, b"msg_01Kgk6kMJLdJJC26r3uFwpRU", b"msg_01NEWNEWNEWNEWNEWNEWNEWN"),
        (1, b"quite hot!", b"very hot!"),
    )
    govcr_check([new])
    result = llm_vcr(ANTHROPIC, new)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"{new} #1: benign POST https://api.anthropic.com/v1/messages: answer text: "
        "…°F). That's quite hot! Make sure to stay hydrated and seek… -> "
        "…°F). That's very hot! Make sure to stay hydrated and seek … (wording)",
        "2 interactions in 1 cassettes: 1 same, 1 benign, 0 changed, 0 new, 0 removed",
    ]


def test_a_renamed_tool_is_changed_and_exits_3(tmp_path: Path, govcr_check) -> None:
    needs_corpus()
    new = rerecorded(ANTHROPIC, tmp_path / "new.yaml",
                     (0, b'"name":"weather"', b'"name":"get_weather"'))
    govcr_check([new])
    result = llm_vcr(ANTHROPIC, new)
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines()[0] == (
        f'{new} #0: changed POST https://api.anthropic.com/v1/messages: tool call 0: "weather" '
        '-> "get_weather" (name)')
    as_json = llm_vcr(ANTHROPIC, new, "--json")
    assert as_json.returncode == 3
    document = json.loads(as_json.stdout)
    assert document["totals"] == {"same": 1, "benign": 0, "changed": 1, "new": 0, "removed": 0}
    assert document["status"] == 3 and document["problems"] == []
    [cassette] = document["cassettes"]
    first = cassette["interactions"][0]
    assert (first["old_id"], first["new_id"], first["verdict"]) == (0, 0, "changed")
    assert {"where": "tool call 0", "old": '"weather"', "new": '"get_weather"',
            "verdict": "changed", "what": "name"} in first["differences"]


def test_a_missing_done_in_the_seed_is_changed(tmp_path: Path) -> None:
    new = rerecorded(SEED, tmp_path / "seed.yaml", (0, b"data: [DONE]\n\n", b""))
    result = llm_vcr(SEED, new)
    assert result.returncode == 3
    assert 'final event: "[DONE]" -> "chat.completion.chunk"' in result.stdout


def test_folders_pair_cassettes_by_name_new_and_removed_count(tmp_path: Path) -> None:
    needs_corpus()
    old, new = tmp_path / "old", tmp_path / "new"
    rerecorded(SEED, old / "seed.yaml")
    rerecorded(SEED, new / "seed.yaml")
    rerecorded(ANTHROPIC, old / "sub" / "gone.yaml")
    rerecorded(ANTHROPIC, new / "sub" / "added.yaml")
    result = llm_vcr(old, new)
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == ("5 interactions in 3 cassettes: 1 same, 0 benign, 0 changed, 2 new, "
                         "2 removed")
    assert "sub/added.yaml #0: new POST https://api.anthropic.com/v1/messages" in lines
    assert "sub/gone.yaml #1 (old): removed POST https://api.anthropic.com/v1/messages" in lines
    only_new = llm_vcr(old / "seed.yaml", new / "seed.yaml")
    assert only_new.returncode == 0


def test_pairing_takes_ignore_json_and_match_headers(tmp_path: Path) -> None:
    cassette = load(SEED)
    request = cassette.interactions[0].request
    request.body = request.body.replace(b'"max_completion_tokens":4000',
                                        b'"max_completion_tokens":4001')
    request.headers = {**request.headers, "X-Test": ["2"]}
    new = tmp_path / "new.yaml"
    new.write_bytes(dumps(cassette))
    assert llm_vcr(SEED, new).returncode == 3  # new + removed: the bodies differ
    ignoring = llm_vcr(SEED, new, "--ignore-json", "max_completion_tokens,seed")
    assert ignoring.returncode == 0, ignoring.stdout
    headers = llm_vcr(SEED, new, "--ignore-json", "max_completion_tokens",
                      "--match-headers", "X-Test")
    assert headers.returncode == 3
    bad = llm_vcr(SEED, new, "--ignore-json", "a..b")
    assert bad.returncode == 2 and bad.stderr.startswith("llm-vcr: --ignore-json: ")


def test_a_broken_cassette_is_reported_with_its_line_and_the_rest_compared(
        tmp_path: Path) -> None:
    needs_corpus()
    old, new = tmp_path / "old", tmp_path / "new"
    rerecorded(SEED, old / "a.yaml")
    rerecorded(SEED, new / "a.yaml", (0, b"data: [DONE]\n\n", b""))
    shutil.copy(SEED, old / "b.yaml")
    broken = new / "b.yaml"
    lines = SEED.read_text().splitlines(keepends=True)
    lines[6] = "    content_length: [unclosed\n"
    broken.write_text("".join(lines))
    result = llm_vcr(old, new)
    assert result.returncode == 1
    # the reader finds the unclosed list on the line after it
    assert result.stderr.startswith(f"llm-vcr: {broken}:8: not valid YAML"), result.stderr
    assert "a.yaml #0: changed" in result.stdout  # the other pair was still compared
    assert result.stdout.splitlines()[-1].endswith("; 1 not compared (see above)")
    document = json.loads(llm_vcr(old, new, "--json").stdout)
    assert document["status"] == 1
    assert document["problems"][0].startswith(f"{broken}:8: ")


def test_missing_paths_and_a_file_against_a_folder(tmp_path: Path) -> None:
    missing = llm_vcr(SEED, tmp_path / "nope.yaml")
    assert missing.returncode == 1
    assert missing.stderr == f"llm-vcr: {tmp_path / 'nope.yaml'}: no such file or directory\n"
    mixed = llm_vcr(SEED, tmp_path)
    assert mixed.returncode == 2
    assert mixed.stderr == (
        "llm-vcr: diff: OLD and NEW must both be cassette files or both folders\n")
