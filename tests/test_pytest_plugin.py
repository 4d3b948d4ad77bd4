"""The pytest plugin (issue 15): a cassette per test, through a real proxy, in a sample project.

The sample project (pytester, run in a subprocess as a user would) has three marked tests with the
openai SDK (plain, streaming, the same request twice) and one unmarked test. Its LLM host is
routed to the fake upstream with `--vcr-set map_remote=...`, whose CA the proxy trusts through
`--vcr-set ssl_verify_upstream_trusted_ca=...`. Replay runs use `--vcr-mode replay` and check that
the upstream saw nothing new.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr.pytest_plugin import naming
from llmvcr.pytest_plugin.runtime import problems, unwritable
from llmvcr.store import validate_name
from support.fake_upstream import FakeUpstream
from support.proxy import ProxyFactory, route_to
from support.tls import UpstreamTLS

pytest_plugins = ["pytester"]

CONFTEST = '''
import openai
import pytest


@pytest.fixture
def client():
    return openai.OpenAI(api_key="sk-test-llm-vcr-not-a-real-key", max_retries=0)
'''

SAMPLE = '''
import os

import pytest

MODEL = "gpt-4o-mini"


def ask(client, text):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    ).choices[0].message.content


@pytest.mark.vcr
def test_plain(client):
    prompt = os.environ.get("SAMPLE_PROMPT", "Hello")
    assert ask(client, prompt) == f"Echo: {prompt}"


@pytest.mark.vcr
def test_stream(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Echo: Count"


@pytest.mark.vcr
class TestTwice:
    def test_same_request(self, client, vcr_session):
        calls = int(os.environ.get("SAMPLE_CALLS", "2"))
        for _ in range(calls):
            assert ask(client, "Again") == "Echo: Again"
        report = vcr_session.report()
        assert report["totals"]["replayed"] + report["totals"]["recorded"] == calls
'''

UNMARKED = '''
import openai


def test_unmarked():
    client = openai.OpenAI(api_key="sk-test-llm-vcr-not-a-real-key", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.choices[0].message.content == "Echo: Hi"
'''

EXPECTED = {
    "tests/cassettes/test_chat/test_plain.yaml",
    "tests/cassettes/test_chat/test_stream.yaml",
    "tests/cassettes/test_chat/TestTwice.test_same_request.yaml",
}

Run = Callable[..., pytest.RunResult]


# -- names (pure) ----------------------------------------------------------------------------


def test_names_follow_the_test_file_class_and_id() -> None:
    name = naming.cassette_name_for("tests/chat/test_api.py", ["TestChat", "test_x[gpt-4o-1]"])
    assert name == "tests/chat/test_api/TestChat.test_x[gpt-4o-1]"


def test_sanitised_ids_stay_unique_and_valid() -> None:
    names = {naming.cassette_name_for("t/test_a.py", [f"test_x[{text}]"])
             for text in ("a/b", "a:b", "a\\b", "a b", "a_b", "..", "\x00", "é")}
    assert len(names) == 8
    for name in names:
        assert validate_name(name) == name
        assert "[" in name and name.endswith("]")
    assert naming.cassette_name_for("t/test_a.py", ["test_x[a_b]"]) == "t/test_a/test_x[a_b]"


def test_hidden_and_long_segments_are_made_valid() -> None:
    name = naming.cassette_name_for(".hidden/../test_a.py", ["test_" + "x" * 400 + "[id]"])
    assert validate_name(name) == name
    assert not any(part.startswith(".") for part in name.split("/"))
    assert all(len(part) <= naming.MAX_TEST_SEGMENT for part in name.split("/"))


def test_problems_lists_misses_and_with_strict_the_unused() -> None:
    report = {"cassettes": {"a": {
        "missed": [{"request": "POST https://x/v1", "reason": "no match"}], "missed_count": 3,
        "unused": [{"request": "#2 POST https://x/v1"}],
    }}}
    misses, unused = problems(report, strict=False)
    assert misses == ["no recorded answer in cassette 'a': POST https://x/v1: no match",
                      "cassette 'a': 2 more request(s) found no answer"]
    assert unused == []
    assert problems(report, strict=True)[1] == ["cassette 'a': #2 POST https://x/v1"]


def test_unwritable_names_the_folder(tmp_path: Path) -> None:
    assert unwritable(tmp_path / "new" / "deeper" / "x.yaml") is None
    (tmp_path / "file").write_text("")
    assert unwritable(tmp_path / "file" / "x.yaml") == f"{tmp_path / 'file'} is not a folder"


# -- the sample project ------------------------------------------------------------------------


@pytest.fixture
def sample(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_chat=SAMPLE, test_unmarked=UNMARKED)
    return pytester


@pytest.fixture(scope="session")
def runtime_cache() -> Path:
    """The user's llm-vcr cache (read before pytester moves HOME): what the Node runtime set-up
    installs once stays installed for the sample runs."""
    from llmvcr.runtimes.cache import cache_dir

    return cache_dir()


@pytest.fixture
def run(
    sample: pytest.Pytester, upstream: FakeUpstream, upstream_tls: UpstreamTLS, mitm_confdir: Path,
    monkeypatch: pytest.MonkeyPatch, runtime_cache: Path,
) -> Run:
    """`run(*args, env=None)`: the sample project's pytest in a subprocess, routed to the fake
    upstream through the proxy the plugin starts."""
    proxy_settings = [
        f"map_remote={route_to(upstream, ['api.openai.com'])[0]}",
        f"ssl_verify_upstream_trusted_ca={upstream_tls.ca_cert}",
        f"confdir={mitm_confdir}",
    ]

    def go(*args: str, env: dict[str, str] | None = None, proxy: bool = True,
           inprocess: bool = False) -> pytest.RunResult:
        for name in ("SAMPLE_PROMPT", "SAMPLE_CALLS", "LLM_VCR_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LLM_VCR_CACHE", str(runtime_cache))
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        settings = [part for s in proxy_settings for part in ("--vcr-set", s)] if proxy else []
        if inprocess:  # for runs that start no proxy: a second faster
            return sample.runpytest_inprocess("-p", "no:cacheprovider", *settings, *args)
        return sample.runpytest_subprocess("-p", "no:cacheprovider", *settings, *args,
                                           timeout=120)

    return go


def cassettes(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "tests").rglob("*.yaml")}


@pytest.mark.slow
def test_records_a_cassette_per_test_then_replays_offline(
    run: Run, sample: pytest.Pytester, upstream: FakeUpstream,
    govcr_check: Callable[[Iterable[Path]], None],
) -> None:
    recorded = run()
    recorded.assert_outcomes(passed=4)
    assert cassettes(sample.path) == EXPECTED
    govcr_check(sample.path / name for name in EXPECTED)
    # test_unmarked went upstream too (passthrough), into no cassette.
    assert len(upstream.requests) == 5
    assert "llm-vcr: 3 test session(s): replayed 0, recorded 4, missed 0" in recorded.stdout.str()

    replayed = run("--vcr-mode", "replay", "test_chat.py")
    replayed.assert_outcomes(passed=3)
    assert "replayed 4, recorded 0, missed 0" in replayed.stdout.str()
    assert len(upstream.requests) == 5

    # A changed prompt fails its test (call phase) with the proxy's miss text; with --vcr-strict
    # a test that made one of its two recorded calls fails too.
    changed = run("--vcr-mode", "replay", "--vcr-strict", "test_chat.py",
                  env={"SAMPLE_PROMPT": "Goodbye", "SAMPLE_CALLS": "1"})
    changed.assert_outcomes(passed=1, failed=2)
    out = changed.stdout.str()
    assert "_ test_plain _" in out and "ERROR at" not in out
    assert ("no recorded answer in cassette 'test_chat/test_plain' "
            "(tests/cassettes/test_chat/test_plain.yaml)") in out
    assert 'body messages.0.content: "Goodbye" != "Hello"' in out
    assert "re-record this test: pytest --vcr-mode record 'test_chat.py::test_plain'" in out
    assert "--vcr-strict: 1 recorded interaction(s) were not used" in out
    assert "cassette 'test_chat/TestTwice.test_same_request': #1 POST " in out
    assert len(upstream.requests) == 5


@pytest.mark.slow
def test_xdist_workers_record_then_share_a_running_proxy(
    run: Run, sample: pytest.Pytester, upstream: FakeUpstream, make_proxy: ProxyFactory,
    mitm_confdir: Path,
) -> None:
    # Each worker starts its own proxy.
    run("-n", "2", "test_chat.py").assert_outcomes(passed=3)
    assert cassettes(sample.path) == EXPECTED
    assert len(upstream.requests) == 4
    # Two workers share a running proxy (offline), each with its own client name. One call of
    # two is no failure without --vcr-strict.
    proxy = make_proxy(mode="replay", vcr_dir=sample.path / "tests" / "cassettes")
    server = ["--vcr-server", f"127.0.0.1:{proxy.port}", "--vcr-set", f"confdir={mitm_confdir}"]
    run(*server, "-n", "2", "--vcr-mode", "replay", "test_chat.py", proxy=False,
        env={"SAMPLE_CALLS": "1"}
        ).assert_outcomes(passed=3)
    assert len(upstream.requests) == 4
    assert proxy.wait_for_output(r"session \S+: cassette 'test_chat/test_plain': replayed 1")


def test_bad_markers_unwritable_folders_and_unmarked_requests_under_vcr_block(
    run: Run, sample: pytest.Pytester, upstream: FakeUpstream,
) -> None:
    sample.makepyfile(test_bad='''
        import pytest

        @pytest.mark.vcr("../outside")
        def test_bad_name():
            pass

        @pytest.mark.vcr("blocked/here")
        def test_unwritable():
            pass

        @pytest.mark.vcr(mode="sometimes")
        def test_bad_mode():
            pass
    ''')
    (sample.path / "tests" / "cassettes").mkdir(parents=True)
    (sample.path / "tests" / "cassettes" / "blocked").write_text("a file, not a folder")
    result = run("--vcr-block", "test_bad.py", "test_unmarked.py")
    result.assert_outcomes(errors=3, failed=1)
    out = result.stdout.str()
    assert "llm-vcr: @pytest.mark.vcr('../outside'): not a cassette name:" in out
    blocked = sample.path / "tests" / "cassettes" / "blocked"
    assert (f"llm-vcr: cannot record cassette {blocked}/here.yaml: {blocked} is not a folder; "
            "make it writable, give --vcr-dir a writable folder") in out
    assert "llm-vcr: @pytest.mark.vcr(mode='sometimes'): not a mode" in out
    assert "llm-vcr: --vcr-block: this test is not marked, so its LLM requests were refused" in out
    assert "  POST https://api.openai.com/v1/chat/completions" in out
    assert upstream.requests == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_serve_that_is_not_running_errors_the_marked_tests(run: Run) -> None:
    port = _free_port()
    result = run("--vcr-server", f"127.0.0.1:{port}", "test_chat.py", proxy=False,
                 inprocess=True)
    result.assert_outcomes(errors=3)
    assert result.stdout.str().count(
        f"llm-vcr: cannot open a session on the proxy at 127.0.0.1:{port}: cannot reach an "
        "llm-vcr proxy") >= 3


def test_a_proxy_that_cannot_start_errors_the_marked_tests(run: Run) -> None:
    result = run("--vcr-set", "vcr_latncy=1", "-k", "plain")
    result.assert_outcomes(errors=1, deselected=3)
    out = result.stdout.str()
    assert "llm-vcr: the proxy could not start: llm-vcr: unknown option(s) vcr_latncy;" in out


ENVIRONMENT_PROBE = '''
import os

import pytest

def test_environment_untouched():
    assert "client=" not in os.environ.get("HTTPS_PROXY", "")
    assert "llm-vcr" not in os.environ.get("SSL_CERT_FILE", "")

@pytest.mark.skipif(os.environ.get("PROBE_MARKED") != "1", reason="only with -p no:llmvcr")
@pytest.mark.vcr
def test_marked_but_plugin_off():
    assert "client=" not in os.environ.get("HTTPS_PROXY", "")
'''


def test_no_marked_test_means_no_proxy_and_no_variable(run: Run, sample: pytest.Pytester) -> None:
    sample.makepyfile(test_probe=ENVIRONMENT_PROBE)
    result = run("-k", "untouched", "test_probe.py", inprocess=True)
    result.assert_outcomes(passed=1, deselected=1)
    assert "llm-vcr:" not in result.stdout.str()


def test_p_no_llmvcr_turns_the_plugin_off(run: Run, sample: pytest.Pytester) -> None:
    sample.makepyfile(test_probe=ENVIRONMENT_PROBE)
    result = run("-p", "no:llmvcr", "test_probe.py", env={"PROBE_MARKED": "1"}, proxy=False,
                 inprocess=True)
    result.assert_outcomes(passed=2)


def test_pytest_recording_is_a_conflict_named_at_start_up(sample: pytest.Pytester) -> None:
    sample.makepyfile(recording="")  # stands for pytest-recording, whose plugin is "recording"
    sample.syspathinsert()
    result = sample.runpytest_inprocess("-p", "recording", "test_chat.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert re.search(
        r"llm-vcr: pytest-recording is active too and owns @pytest\.mark\.vcr; disable one: "
        r"-p no:recording or -p no:llmvcr", result.stderr.str())
