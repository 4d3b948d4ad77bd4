"""Shared fixtures: where the interop corpus and the seed live, and go-vcr itself as an oracle."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmvcr.cassette import Cassette
    from support.fake_upstream import FakeUpstream
    from support.proxy import ProxyFactory
    from support.tls import UpstreamTLS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
GOVCR_BUILD = ROOT.parent / "shared" / "govcr" / "build"
SEED = ROOT / "cassettes" / "simple_streaming.yaml"


def corpus_files() -> list[Path]:
    """Every corpus cassette, sorted; empty when the corpus is absent."""
    return sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The go-vcr corpus: skipped in a clone without it, a failure in CI (which always has it)."""
    if not CORPUS.is_dir():
        required(f"interop corpus not found at {CORPUS}")
    return CORPUS


def required(reason: str) -> None:
    """Skip outside CI; in CI (CI=true) what the suite needs is there, so its absence fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: it is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def govcr_binary() -> Path:
    """go-vcr v4's own loader and recorder as a checker (../shared/govcr), built once."""
    if not GOVCR_BUILD.is_file():
        required(f"go-vcr checker not found at {GOVCR_BUILD}")
    built = subprocess.run(
        ["bash", str(GOVCR_BUILD)], capture_output=True, text=True, timeout=900, check=False
    )
    if built.returncode != 0:
        required(f"could not build the go-vcr checker: {built.stderr.strip()[-2000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def govcr_check(govcr_binary: Path) -> Callable[[Iterable[Path | str]], None]:
    """`govcr_check(paths)`: assert that go-vcr v4 loads each cassette (files, or folders searched
    for *.yaml outside hidden folders) and replays every interaction with the recorded status and
    body. Asserts that there is at least one file, so a test cannot pass by checking nothing."""

    def check(paths: Iterable[Path | str]) -> None:
        files: list[str] = []
        for item in paths:
            path = Path(item)
            if path.is_dir():
                files += sorted(
                    str(p) for p in path.rglob("*.yaml")
                    if not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            else:
                files.append(str(path))
        assert files, "govcr_check: no cassette to check"
        result = subprocess.run(
            [str(govcr_binary), *files], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"go-vcr v4 rejects:\n{result.stdout}{result.stderr}"
        assert f"go-vcr v4: {len(files)} files" in result.stdout, result.stdout

    return check


@pytest.fixture(scope="session")
def written_cassettes(
    govcr_check: Callable[[Iterable[Path | str]], None],
) -> Callable[[Path], dict[str, Cassette]]:
    """`written_cassettes(folder)`: every cassette a test's proxies wrote under `folder`, by name,
    each checked to save back to its own bytes and to load and replay in go-vcr v4 itself."""
    from support.written import cassettes_in

    def check(folder: Path) -> dict[str, Cassette]:
        found = cassettes_in(folder)
        if found:
            govcr_check([folder])
        return found

    return check


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
