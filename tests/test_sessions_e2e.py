"""Sessions through a real proxy and the real `llm-vcr session` command (issue 13): run after
run on one long-running proxy, each run its own session, clients configured by the
environment alone (curl and the openai SDK)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from llmvcr.cassette import Cassette, Interaction, Request, Response, dumps, load
from support.fake_upstream import FakeResponse

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "llmvcr.cli"]
TIMEOUT = 120
MODELS_URL = "https://api.openai.com/v1/models"
MODELS = (
    b'{"object": "list", "data": [{"id": "gpt-test", "object": "model", "created": 1, '
    b'"owned_by": "t"}]}'
)
OPENAI_CHILD = """
import openai
client = openai.OpenAI(api_key="sk-test-not-real", max_retries=0)
print(",".join(model.id for model in client.models.list()))
"""


def llm_vcr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


def open_run(proxy, confdir: Path, *flags: str) -> dict[str, str]:
    """`llm-vcr session open`: the environment a run's shell gets from its export lines (on top
    of a clean environment: no proxy variable of the test process leaks in)."""
    opened = llm_vcr("session", "open", "--server", f"127.0.0.1:{proxy.port}",
                     "--confdir", str(confdir), *flags)
    assert opened.returncode == 0, opened.stderr
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for line in opened.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
    assert env["HTTPS_PROXY"].endswith(f"@127.0.0.1:{proxy.port}")
    assert env["LLM_VCR_SESSION"] in env["HTTPS_PROXY"]
    return env


def close_run(proxy, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return llm_vcr("session", "close", "--server", f"127.0.0.1:{proxy.port}", *flags, env=env)


def curl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["curl", "-sS", "--fail-with-body", *args], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_ten_runs_in_a_row_each_replay_from_the_first(make_proxy, mitm_confdir, tmp_path) -> None:
    store = tmp_path / "cassettes"
    store.mkdir()
    models = Interaction(
        Request(method="GET", url=MODELS_URL),
        Response(body=MODELS, headers={"Content-Type": ["application/json"]},
                 content_length=len(MODELS)),
    )
    (store / "models.yaml").write_bytes(dumps(Cassette([models, models])))
    proxy = make_proxy(mode="replay", vcr_dir=store)
    for run in range(10):
        env = open_run(proxy, mitm_confdir, "--cassette", "models", "--strict")
        # Only environment variables: curl, then (in the first and the last run; curl again in
        # the others, which keeps the suite fast) the openai SDK in a process of its own.
        assert json.loads(curl(env, MODELS_URL))["data"][0]["id"] == "gpt-test"
        if run in (0, 9):
            child = subprocess.run([sys.executable, "-c", OPENAI_CHILD], env=env,
                                   capture_output=True, text=True, timeout=TIMEOUT)
            assert child.returncode == 0 and child.stdout.strip() == "gpt-test", child.stderr
        else:
            assert json.loads(curl(env, MODELS_URL))["data"][0]["id"] == "gpt-test"
        closed = close_run(proxy, env, "--strict")
        assert closed.returncode == 0, (run, closed.stderr)
        report = json.loads(closed.stdout)
        assert report["totals"] == {"replayed": 2, "recorded": 0, "missed": 0, "unused": 0}
    # A run that reached nothing fails its strict close, naming what went unused.
    idle = open_run(proxy, mitm_confdir, "--cassette", "models", "--strict")
    closed = close_run(proxy, idle, "--strict")
    assert closed.returncode == 3
    assert "unused: cassette 'models': #0 GET https://api.openai.com/v1/models" in closed.stderr
    assert "no request reached cassette 'models'" in closed.stderr


def test_new_episodes_records_in_the_first_run_only(make_proxy, mitm_confdir, upstream,
                                                    tmp_path, written_cassettes) -> None:
    upstream.script("/v1/models", lambda record: FakeResponse(
        200, [("Content-Type", "application/json")], [MODELS]), times=None)
    store = tmp_path / "cassettes"
    proxy = make_proxy(mode="new_episodes", vcr_dir=store, upstream=upstream)
    cassette = store / "team" / "alice.yaml"
    recorded = b""
    for run in range(10):
        env = open_run(proxy, mitm_confdir, "--cassette", "team/alice")
        for _ in range(2):  # the same request twice in one run: two interactions
            assert json.loads(curl(env, MODELS_URL))["object"] == "list"
        closed = close_run(proxy, env)
        report = json.loads(closed.stdout)
        if run == 0:
            assert report["totals"]["recorded"] == 2
            recorded = cassette.read_bytes()
            assert len(load(cassette).interactions) == 2
        else:
            assert report["totals"] == {"replayed": 2, "recorded": 0, "missed": 0, "unused": 0}
            assert cassette.read_bytes() == recorded
    assert len(upstream.requests) == 2  # paid for once
    written_cassettes(store)


def test_bad_session_requests_are_one_line_errors(make_proxy, mitm_confdir, tmp_path) -> None:
    proxy = make_proxy(mode="replay", vcr_dir=tmp_path / "cassettes")
    server = ["--server", f"127.0.0.1:{proxy.port}", "--confdir", str(mitm_confdir)]
    refused = llm_vcr("session", "open", *server, "--mode", "record")
    assert refused.returncode == 1
    assert refused.stderr.startswith("llm-vcr: this proxy replays only")
    assert "HTTP 403" in refused.stderr
    unknown = llm_vcr("session", "close", "nope", *server[:2])
    assert unknown.returncode == 1 and "no open session 'nope' (HTTP 404)" in unknown.stderr
    bad_name = llm_vcr("session", "open", *server, "--cassette", "../up")
    assert bad_name.returncode == 1 and "'..' is not allowed" in bad_name.stderr
    nobody = llm_vcr("session", "open", "--server", "127.0.0.1:9", "--confdir", str(mitm_confdir))
    assert nobody.returncode == 1
    assert "cannot reach an llm-vcr proxy at 127.0.0.1:9" in nobody.stderr


def models_store(tmp_path: Path) -> Path:
    store = tmp_path / "cassettes"
    store.mkdir(exist_ok=True)
    models = Interaction(
        Request(method="GET", url=MODELS_URL),
        Response(body=MODELS, headers={"Content-Type": ["application/json"]},
                 content_length=len(MODELS)),
    )
    (store / "models.yaml").write_bytes(dumps(Cassette([models])))
    return store


CURL_MODELS = ["curl", "-sS", "--fail-with-body", "-o", "/dev/null", MODELS_URL]


def test_run_strict_judges_exactly_its_own_session(mitm_confdir, tmp_path) -> None:
    store = models_store(tmp_path)
    base = ["run", "--mode", "replay", "--dir", str(store), "--confdir", str(mitm_confdir),
            "--strict"]
    untouched = llm_vcr(*base, "--cassette", "models", "--", "true")
    assert untouched.returncode == 3
    assert "llm-vcr: --strict: no request reached cassette 'models'" in untouched.stderr
    assert "llm-vcr: --strict: unused: cassette 'models': #0 GET " + MODELS_URL in untouched.stderr
    exact = llm_vcr(*base, "--cassette", "models", "--", *CURL_MODELS)
    assert exact.returncode == 0, exact.stderr
    lenient = "curl -sS -o /dev/null " + MODELS_URL  # a 404 does not fail the command
    twice = llm_vcr(*base, "--cassette", "models", "--", "sh", "-c", f"{lenient}; {lenient}")
    assert twice.returncode == 3 and "--strict: missed: cassette 'models': GET" in twice.stderr
    # The command's own failure wins over strict's verdict.
    failing = llm_vcr(*base, "--cassette", "models", "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7


def test_run_on_a_running_proxy(make_proxy, mitm_confdir, tmp_path) -> None:
    store = models_store(tmp_path)
    proxy = make_proxy(mode="replay", vcr_dir=store)
    server = ["--server", f"127.0.0.1:{proxy.port}", "--confdir", str(mitm_confdir)]
    for _ in range(3):  # run after run on one proxy, each judged on its own
        done = llm_vcr("run", *server, "--cassette", "models", "--strict", "--", *CURL_MODELS)
        assert done.returncode == 0, done.stderr
    wide = llm_vcr("run", *server, "--dir", str(tmp_path), "--", "true")
    assert wide.returncode == 2
    assert wide.stderr.strip().splitlines()[-1].startswith(
        "llm-vcr: --dir is the serve's own setting: it cannot be given with --server")
    recording = llm_vcr("run", *server, "--mode", "record", "--", "true")
    assert recording.returncode == 1 and "replays only" in recording.stderr


def test_two_sessions_at_once_each_get_the_whole_ordered_sequence(make_proxy, mitm_confdir,
                                                                  tmp_path) -> None:
    store = tmp_path / "cassettes"
    store.mkdir()
    answers = [b'{"n": %d}' % n for n in range(3)]
    recorded = [Interaction(Request(method="GET", url=MODELS_URL),
                            Response(body=body, headers={"Content-Type": ["application/json"]},
                                     content_length=len(body))) for body in answers]
    (store / "seq.yaml").write_bytes(dumps(Cassette(recorded)))
    proxy = make_proxy(mode="replay", vcr_dir=store)
    first = open_run(proxy, mitm_confdir, "--cassette", "seq", "--strict")
    second = open_run(proxy, mitm_confdir, "--cassette", "seq", "--strict")
    got: dict[str, list[str]] = {"first": [], "second": []}
    for _ in answers:  # interleaved, each shell with its own environment only
        for name, env in (("first", first), ("second", second)):
            got[name].append(curl(env, MODELS_URL))
    expected = [body.decode() for body in answers]
    assert got == {"first": expected, "second": expected}
    for env in (first, second):
        assert close_run(proxy, env, "--strict").returncode == 0
