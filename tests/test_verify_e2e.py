"""`llm-vcr run --mode verify --strict` through a real proxy against a fake upstream told to
answer differently (issue 17): the recording is never touched, only what changed fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from support.fake_upstream import FakeResponse, seed_conversation
from support.proxy import route_to

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "llmvcr.cli"]
DEMO = [sys.executable, str(ROOT / "scripts" / "demo_client.py")]


def test_verify_run_fails_only_for_what_changed(mitm_confdir, upstream, upstream_tls,
                                                tmp_path: Path) -> None:
    store = tmp_path / "cassettes"
    routes = [arg for spec in route_to(upstream) for arg in ("--set", f"map_remote={spec}")]
    common = ["--dir", str(store), "--cassette", "seed", "--confdir", str(mitm_confdir), *routes,
              "--set", f"ssl_verify_upstream_trusted_ca={upstream_tls.ca_cert}"]

    def run(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "run", "--mode", mode, "--strict", *common, "--", *DEMO],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    recorded = run("record")
    assert recorded.returncode == 0, recorded.stderr
    cassette = store / "seed.yaml"
    before = cassette.read_bytes()

    unchanged = run("verify")  # new ids and timing only
    assert unchanged.returncode == 0, unchanged.stderr
    # The same stream reworded: the seed's events with other text.
    reworded_events = [event.replace("Olá".encode(), b"Oi, tudo bem?")
                       for event in seed_conversation().events()]
    assert reworded_events != seed_conversation().events()
    upstream.script("/openai/v1/chat/completions",
                    lambda record: FakeResponse.sse(reworded_events), times=2)
    reworded = run("verify")  # benign: wording
    assert reworded.returncode == 0, reworded.stderr
    assert len(upstream.requests) == 3  # verify goes upstream every time
    listed = [line for line in reworded.stderr.splitlines() if "llm-vcr: verify: " in line]
    assert len(listed) == 1, reworded.stderr
    assert "cassette 'seed': benign POST https://" in listed[0]

    # `diff` on the cassette and its re-recording gives the verdict verify gave.
    again = tmp_path / "again"
    rerecord = subprocess.run(
        [*CLI, "run", "--mode", "record", *common[:1], str(again), *common[2:], "--", *DEMO],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert rerecord.returncode == 0, rerecord.stderr
    compared = subprocess.run([*CLI, "diff", str(cassette), str(again / "seed.yaml")],
                              capture_output=True, text=True, timeout=120)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert ": benign POST https://" in compared.stdout.splitlines()[0], compared.stdout

    # The answer a client still reads, but whose finish_reason changed: `changed`, exit 3.
    chunk = (b'data: {"id":"c","object":"chat.completion.chunk","created":2,"model":"gpt-5-mini",'
             b'"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\n\n')
    cut_short = [chunk % (b'{"role":"assistant","content":"Ol\xc3\xa1!"}', b"null"),
                 chunk % (b"{}", b'"length"'), b"data: [DONE]\n\n"]
    upstream.script("/openai/v1/chat/completions", lambda record: FakeResponse(
        200, [("Content-Type", "text/event-stream")], cut_short))
    truncated = run("verify")
    assert truncated.returncode == 3, truncated.stderr
    assert "llm-vcr: --strict: changed: cassette 'seed': POST https://" in truncated.stderr
    assert "llm-vcr: verify: cassette 'seed': changed POST" in truncated.stderr

    # A 429 makes the command itself fail: its own exit code wins over --strict's.
    upstream.script("/openai/v1/chat/completions", lambda record: FakeResponse(
        429, [("Content-Type", "application/json")],
        [b'{"error": {"message": "rate limited", "type": "rate_limit"}}']))
    throttled = run("verify")
    assert throttled.returncode == 1, throttled.stderr
    assert "llm-vcr: verify: cassette 'seed': changed POST" in throttled.stderr
    assert cassette.read_bytes() == before  # verify writes nothing
