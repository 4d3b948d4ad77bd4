"""Shared fixtures: where the interop corpus and the seed live."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.fake_upstream import FakeUpstream
    from support.proxy import ProxyFactory
    from support.tls import UpstreamTLS

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


# ---- End-to-end infrastructure (tests/support; usage in the docstrings of its modules).
# Imports are inside the fixtures so unit-test-only runs never load hypercorn, httpx or the SDKs.


@pytest.fixture(scope="session")
def upstream_tls(tmp_path_factory: pytest.TempPathFactory) -> UpstreamTLS:
    """The throwaway CA and the 127.0.0.1/localhost certificate of the fake upstreams."""
    from support.tls import make_upstream_tls

    return make_upstream_tls(tmp_path_factory.mktemp("upstream-tls"))


@pytest.fixture(scope="session")
def upstream_server(upstream_tls: UpstreamTLS) -> Iterator[FakeUpstream]:
    """The session's fake LLM upstream (HTTP/2 and HTTP/1.1); tests use `upstream`."""
    from support.fake_upstream import FakeUpstream

    with FakeUpstream(upstream_tls) as server:
        yield server


@pytest.fixture(scope="session")
def upstream_h1_server(upstream_tls: UpstreamTLS) -> Iterator[FakeUpstream]:
    """The session's fake upstream that offers only http/1.1 in ALPN; tests use `upstream_h1`."""
    from support.fake_upstream import FakeUpstream

    with FakeUpstream(upstream_tls, http2=False) as server:
        yield server


@pytest.fixture
def upstream(upstream_server: FakeUpstream) -> FakeUpstream:
    """The fake upstream, with no requests, scripts or settings left from earlier tests."""
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def upstream_h1(upstream_h1_server: FakeUpstream) -> FakeUpstream:
    """Like `upstream`, but the server speaks only HTTP/1.1."""
    upstream_h1_server.reset()
    return upstream_h1_server


@pytest.fixture(scope="session")
def mitm_confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mitmproxy confdir whose CA exists (made once, shared by every proxy of the session)."""
    from support.proxy import ensure_mitmproxy_ca

    confdir = tmp_path_factory.mktemp("mitmproxy-conf")
    ensure_mitmproxy_ca(confdir)
    return confdir


def _proxy_factory(confdir: Path, tls: UpstreamTLS, folder: Path) -> ProxyFactory:
    from support.proxy import ProxyFactory

    return ProxyFactory(confdir=confdir, upstream_ca=tls.ca_cert, folder=folder)


@pytest.fixture
def make_proxy(
    mitm_confdir: Path, upstream_tls: UpstreamTLS, tmp_path: Path
) -> Iterator[ProxyFactory]:
    """Factory of started mitmdump proxies, stopped (SIGINT) at teardown; their logs are
    printed then, so pytest shows them for a failed test.
    `make_proxy(mode="record", vcr_dir=None, options=None, addon=True, upstream=None, ...)`:
    see support.proxy.ProxyFactory."""
    factory = _proxy_factory(mitm_confdir, upstream_tls, tmp_path)
    yield factory
    for report in factory.close():
        print(report)


@pytest.fixture(scope="module")
def make_module_proxy(
    mitm_confdir: Path, upstream_tls: UpstreamTLS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyFactory]:
    """`make_proxy` with module scope: for one proxy shared by a module's tests (route it to
    `upstream_server`, whose port stays the same; the tests still take `upstream` to reset it)."""
    factory = _proxy_factory(mitm_confdir, upstream_tls, tmp_path_factory.mktemp("proxies"))
    yield factory
    for report in factory.close():
        print(report)
