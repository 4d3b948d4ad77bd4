from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from conftest import corpus_files
from llmvcr.hosts import DEFAULT_HOSTS, HostPatterns

DEFAULTS = HostPatterns(DEFAULT_HOSTS)


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com",
        "my-resource.openai.azure.com",
        "my-resource.cognitiveservices.azure.com",
        "proj.services.ai.azure.com",
        "models.inference.ai.azure.com",
        "x.models.ai.azure.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "aiplatform.googleapis.com",
        "us-east5-aiplatform.googleapis.com",
        "europe-west4-aiplatform.googleapis.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
        "bedrock.eu-west-1.amazonaws.com",
        "openrouter.ai",
        "api.x.ai",
        "api.groq.com",
        "api.mistral.ai",
        "codestral.mistral.ai",
        "api.deepseek.com",
        "api.together.xyz",
        "api.together.ai",
        "api.fireworks.ai",
        "router.huggingface.co",
        "api-inference.huggingface.co",
        "ai-gateway.vercel.sh",
        "api.cohere.com",
        "api.cohere.ai",
        "api.perplexity.ai",
        "api.cerebras.ai",
        "api.z.ai",
        "open.bigmodel.cn",
        "api.moonshot.ai",
    ],
)
def test_default_hosts_cover_the_llm_apis(host: str) -> None:
    assert DEFAULTS.matches(host, 443)
    assert DEFAULTS.matches(host.upper(), 443)


@pytest.mark.parametrize(
    "host",
    [
        "openai.azure.com",  # `*.x` does not match `x` itself
        "example.com",
        "api.openai.com.evil.example",
        "s3.us-east-1.amazonaws.com",
        "storage.googleapis.com",
        "localhost",
    ],
)
def test_default_hosts_leave_other_hosts_alone(host: str) -> None:
    assert not DEFAULTS.matches(host, 443)


def test_every_corpus_host_is_covered_except_localhost(corpus_dir) -> None:
    url_line = re.compile(r"^\s*url:\s*['\"]?(\S+?)['\"]?\s*$", re.MULTILINE)
    hosts: set[tuple[str, int]] = set()
    for path in corpus_files():
        for url in url_line.findall(path.read_text(encoding="utf-8")):
            parts = urlsplit(url)
            hosts.add((parts.hostname or "", parts.port or 443))
    assert len(hosts) > 5
    uncovered = sorted(h for h in hosts if not DEFAULTS.matches(*h) and h[0] != "localhost")
    assert uncovered == []


def test_star_dot_does_not_match_the_bare_domain() -> None:
    patterns = HostPatterns(["*.example.com"])
    assert patterns.matches("a.example.com", 443)
    assert patterns.matches("a.b.example.com", 443)
    assert not patterns.matches("example.com", 443)
    assert not patterns.matches("badexample.com", 443)


def test_glob_is_case_insensitive_both_ways() -> None:
    patterns = HostPatterns(["API.Example.COM"])
    assert patterns.matches("api.example.com", 443)
    assert patterns.matches("Api.EXAMPLE.com", 8443)


def test_port_patterns() -> None:
    patterns = HostPatterns(["localhost:8080", "api.example.com"])
    assert patterns.matches("localhost", 8080)
    assert not patterns.matches("localhost", 8081)
    assert patterns.matches("api.example.com", 443)
    assert patterns.matches("api.example.com", 9999)  # no port in the pattern: any port
    assert HostPatterns(["*:8443"]).matches("anything.test", 8443)
    assert not HostPatterns(["*:8443"]).matches("anything.test", 443)


def test_star_alone_matches_every_host() -> None:
    patterns = HostPatterns(["*"])
    for host, port in [("a", 1), ("api.openai.com", 443), ("127.0.0.1", 8080), ("::1", 80)]:
        assert patterns.matches(host, port)


def test_question_mark_and_literal_characters() -> None:
    patterns = HostPatterns(["api?.example.com"])
    assert patterns.matches("api1.example.com", 443)
    assert not patterns.matches("api12.example.com", 443)
    # dots are literal, not regex wildcards
    assert not HostPatterns(["a.b"]).matches("axb", 443)


def test_ipv6_with_and_without_brackets() -> None:
    assert HostPatterns(["::1"]).matches("::1", 80)
    assert HostPatterns(["[::1]:8080"]).matches("::1", 8080)
    assert HostPatterns(["[::1]:8080"]).matches("[::1]", 8080)
    assert not HostPatterns(["[::1]:8080"]).matches("::1", 8081)


def test_empty_and_blank_patterns_match_nothing() -> None:
    assert not HostPatterns([]).matches("api.openai.com", 443)
    assert not HostPatterns(["", "  "]).matches("", 443)
    assert HostPatterns([" api.openai.com "]).matches("api.openai.com", 443)


def test_trailing_dot_is_the_same_host() -> None:
    assert DEFAULTS.matches("api.openai.com.", 443)
