"""A real `mitmdump` subprocess for end-to-end tests, and clients that go through it.

Fixtures (tests/conftest.py):
    mitm_confdir       session: a confdir whose mitmproxy CA exists before any proxy starts
    make_proxy         function scope factory; every proxy it made is stopped at teardown and
                       its log printed (pytest shows it when the test failed)
    make_module_proxy  the same factory with module scope, to share one proxy in a module

    proxy = make_proxy(
        mode="record",                      # --set vcr_mode=record (None: leave the default)
        vcr_dir=tmp_path / "cassettes",     # --set vcr_dir=... (default: <tmp>/cassettes)
        options={"vcr_latency": "recorded", "vcr_hosts": ["api.openai.com", "127.0.0.1*"]},
        addon=True,                         # False: plain mitmdump, no -s addon/vcr.py; or a
                                            # path: that script instead of addon/vcr.py
        upstream=upstream,                  # map_remote the LLM API hosts to this fake upstream
        hosts=DEFAULT_ROUTED_HOSTS,         # ... which hosts (globs: "*.openai.azure.com")
        cwd=tmp_path,                       # mitmdump's working folder
        stream_responses=False,             # True: add mitm_scripts/stream_responses.py, which
                                            # streams every response (plain mitmdump buffers
                                            # them all, SSE included, in mitmproxy 12)
        scripts=[SERVER_CONNECT_SPY],       # more `-s` scripts, after the addon
        start=True,                         # False: call proxy.start() (or launch/wait_ready)
    )
    proxy.port, proxy.url(), proxy.url(user="team/case")   # http://team%2Fcase@127.0.0.1:PORT
    proxy.ca_cert_path                      # <confdir>/mitmproxy-ca-cert.pem
    proxy.client_env(user=...)              # os.environ + HTTPS_PROXY & co + CA variables
    proxy.curl_args(user=...)               # ["--proxy", url, "--cacert", ca, "--noproxy", ""]
    proxy.httpx_client(http2=False, cassette=None) / async_httpx_client(...)
                                            # http2=True offers h2 first (like Go, curl), so the
                                            # client really speaks HTTP/2 to mitmproxy
    proxy.openai_client(base_url="https://api.openai.com/v1", cassette=None) / async_openai_client
    proxy.azure_openai_client(endpoint=SEED_ENDPOINT, api_version=...)
    proxy.anthropic_client(base_url="https://api.anthropic.com") / async_anthropic_client
                                            # the SDK clients get an httpx2 client (the httpx
                                            # fork these SDK versions require), max_retries=0,
                                            # fake keys FAKE_OPENAI_KEY / FAKE_ANTHROPIC_KEY
    proxy.output()                          # everything mitmdump printed (stdout + stderr)
    proxy.wait_for_output(r"regex", timeout=10)
    proxy.stop()                            # SIGINT, wait: the addon's `done` hook runs; returns
                                            # the exit code
    proxy.kill()                            # SIGKILL

Every option value is passed as `--set name=value`; a list gives one `--set` per item (how
mitmproxy takes Sequence[str] options), a bool becomes true/false, a Path its string. Beware:
mitmdump accepts an unknown option name silently (an addon might define it later), so a typo in
an option name is no error. Defaults set for every proxy: `confdir`, `connection_strategy=lazy`,
`ssl_verify_upstream_trusted_ca` (the fixtures' throwaway CA); `options` override them.
Every proxy also loads mitm_scripts/startup_marker.py last (it only prints one line when startup
is over), so `start()` returns once every addon's `running` hook has run, and raises
MitmProxyError with the log when mitmdump fails to start, including errors logged in `running`.
The SSE caveat: mitmproxy 12 buffers any response nobody set `stream` on, SSE included.

Routing: clients ask for the real host (`https://api.openai.com/v1/...`); mitmproxy's own
`map_remote` rewrites the URL to the fake upstream (`route_to`), and `connection_strategy=lazy`
keeps mitmproxy from resolving or connecting to the real host at CONNECT time (no internet here).
mitmproxy then connects to 127.0.0.1:<port> and checks the upstream certificate against the
throwaway CA (`ssl_verify_upstream_trusted_ca`), so upstream verification stays on.
Note: `map_remote` runs in the `request` hook, so the fake upstream sees `Host: 127.0.0.1:<port>`,
while an addon's `requestheaders` hook still sees the URL the client asked for.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from .mitm_scripts.startup_marker import FAILED, READY

if TYPE_CHECKING:
    import anthropic
    import openai

REPO_ROOT = Path(__file__).resolve().parents[2]
MITMDUMP = Path(sys.executable).parent / "mitmdump"
ADDON_SCRIPT = REPO_ROOT / "addon" / "vcr.py"
MITM_SCRIPTS = Path(__file__).resolve().parent / "mitm_scripts"
STREAM_SCRIPT = MITM_SCRIPTS / "stream_responses.py"
STARTUP_MARKER_SCRIPT = MITM_SCRIPTS / "startup_marker.py"
# Logs `SERVER_CONNECT host:port` for every upstream connection (proof that replay needs none).
SERVER_CONNECT_SPY = Path(__file__).resolve().parent / "server_connect_spy.py"

FAKE_OPENAI_KEY = "sk-test-llm-vcr-not-a-real-key"
FAKE_ANTHROPIC_KEY = "sk-ant-test-llm-vcr-not-a-real-key"
SEED_ENDPOINT = "https://fantasy-playground-resource.openai.azure.com"

# Hosts `route_to` sends to a fake upstream by default: the ones the e2e tests talk to.
DEFAULT_ROUTED_HOSTS: tuple[str, ...] = (
    "api.openai.com",
    "api.anthropic.com",
    "*.openai.azure.com",
    "*.services.ai.azure.com",
    "generativelanguage.googleapis.com",
    "openrouter.ai",
)

# What the clients in mitmproxy-notes.md read their CA bundle from.
CA_BUNDLE_VARIABLES = (
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)

OptionValue = str | int | bool | Path | Sequence[str]
_ClientT = TypeVar("_ClientT")

# "HTTP(S) proxy listening at ..." or, with --mode, "HTTP(S) proxy (upstream mode) listening at".
_LISTENING = re.compile(r"proxy (?:\([^)]*\) )?listening at \[?([0-9a-fA-F.:]+?)\]?:(\d+)")


class Upstream(Protocol):
    """What `route_to` needs of an upstream (FakeUpstream has it)."""

    @property
    def base_url(self) -> str: ...


def _host_regex(pattern: str) -> str:
    # `*` stands for one or more host characters, so `*.x` never matches `x` itself.
    return "[^/:]+".join(re.escape(part) for part in pattern.split("*"))


def route_to(upstream: Upstream | str, hosts: Sequence[str] = DEFAULT_ROUTED_HOSTS) -> list[str]:
    """`map_remote` values sending http(s) requests for `hosts` (globs) to `upstream`.

    `upstream` is a FakeUpstream or a base URL like `https://127.0.0.1:8443`. The spec is
    `|url-regex|replacement` with no trailing separator: a third part would make the first one a
    flow filter. Without a filter every flow is tried and the regex decides. Any port on the
    original URL is replaced; path and query are kept.
    """
    base = upstream if isinstance(upstream, str) else upstream.base_url
    return [f"|^https?://{_host_regex(h)}(?::\\d+)?/|{base.rstrip('/')}/" for h in hosts]


def ensure_mitmproxy_ca(confdir: Path) -> Path:
    """Create mitmproxy's CA in `confdir` the way mitmdump would on first start (so several
    proxies started at once never race to create it); return the client-facing cert path."""
    from mitmproxy import certs  # only the test process needs mitmproxy here

    confdir.mkdir(parents=True, exist_ok=True)
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


def set_args(options: Mapping[str, OptionValue]) -> list[str]:
    """`--set name=value` arguments for `options` (lists repeat the option)."""
    args: list[str] = []
    for name, value in options.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            args += ["--set", f"{name}={text}"]
    return args


class PreferH2Context(ssl.SSLContext):
    """Offers h2 before http/1.1, as Go and curl do.

    httpcore offers `http/1.1, h2` in that order; under `connection_strategy=lazy` mitmproxy has
    no upstream connection when it answers the client's TLS handshake, so it takes the client's
    first choice and an httpx client would never speak HTTP/2 to the proxy.
    """

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        super().set_alpn_protocols(sorted(alpn_protocols, key=lambda p: p != "h2"))


class MitmProxyError(RuntimeError):
    """mitmdump did not start, or did not stop, as expected (the message carries its log)."""


class MitmProxy:
    """One mitmdump process listening on 127.0.0.1 (an ephemeral port: mitmdump reports the
    real one, which `start` reads from its output)."""

    def __init__(
        self,
        *,
        confdir: Path,
        log_path: Path,
        addon: Path | None = ADDON_SCRIPT,
        scripts: Sequence[Path] = (),
        options: Mapping[str, OptionValue] | None = None,
        upstream_ca: Path | None = None,
        cwd: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.confdir = confdir
        self.log_path = log_path
        self.addon = addon
        self.scripts = list(scripts)
        self.cwd = cwd
        self.env = env
        merged: dict[str, OptionValue] = {"confdir": str(confdir), "connection_strategy": "lazy"}
        if upstream_ca is not None:
            merged["ssl_verify_upstream_trusted_ca"] = str(upstream_ca)
        merged.update(options or {})
        self.options = merged
        self.extra_args = list(extra_args)
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._clients: list[Any] = []  # sync httpx / httpx2 clients to close at stop

    # ---- lifecycle

    @property
    def command(self) -> list[str]:
        args = [str(MITMDUMP), "--listen-host", self.host, "-p", "0"]
        for script in [self.addon, *self.scripts, STARTUP_MARKER_SCRIPT]:
            if script is not None:
                args += ["-s", str(script)]
        return args + set_args(self.options) + self.extra_args

    def launch(self) -> MitmProxy:
        """Start the process without waiting for it (see `wait_ready`)."""
        if self.process is not None:
            raise MitmProxyError("this MitmProxy was already launched")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONUNBUFFERED"] = "1"  # the "listening at" line must reach the log at once
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout: float = 30.0) -> MitmProxy:
        """Wait until mitmdump listens and its startup is over (every addon's `running` hook
        ran: see mitm_scripts/startup_marker.py). MitmProxyError with the log if it exits, logs
        an error during startup (it then exits by itself) or takes longer than `timeout`."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            exited = self.process.poll() is not None
            if FAILED in output or exited:
                if not exited:  # mitmdump is on its way out: let it finish its log
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(5)
                    self.kill()
                raise MitmProxyError(
                    f"mitmdump failed during startup (exit code {self.process.returncode})\n"
                    f"command: {self.command}\n--- log ---\n{self.output()}"
                )
            match = _LISTENING.search(output)
            if match and READY in output:
                self.port = int(match[2])
                return self
            time.sleep(0.02)
        self.kill()
        raise MitmProxyError(
            f"mitmdump did not finish starting within {timeout} s\n"
            f"command: {self.command}\n--- log ---\n{self.output()}"
        )

    def start(self, timeout: float = 30.0) -> MitmProxy:
        return self.launch().wait_ready(timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (mitmdump shuts down cleanly, addons get `done`), wait; SIGKILL and raise
        MitmProxyError if it does not exit in time. Returns the exit code."""
        self._close_clients()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise MitmProxyError(
                    f"mitmdump ignored SIGINT for {timeout} s (killed)\n--- log ---\n"
                    f"{self.output()}"
                ) from None
        return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL: no `done` hook, like a crash."""
        self._close_clients()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        return self.process.returncode

    def __enter__(self) -> MitmProxy:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what it printed

    def output(self) -> str:
        """Everything mitmdump wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the output matches regex `pattern`; AssertionError with the log if not."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            gone = not self.running  # checked first: after exit the output is complete
            match = regex.search(self.output())
            if match:
                return match
            if gone or time.monotonic() > deadline:
                raise AssertionError(
                    f"mitmdump output never matched {pattern!r}\n--- log ---\n{self.output()}"
                )
            time.sleep(0.05)

    # ---- how clients reach it

    @property
    def ca_cert_path(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def url(self, user: str | None = None) -> str:
        """The proxy URL; `user` (e.g. a cassette name) goes in percent-encoded."""
        auth = f"{quote(user, safe='')}@" if user else ""
        return f"http://{auth}{self.host}:{self.port}"

    def ssl_context(self, prefer_h2: bool = False) -> ssl.SSLContext:
        """A fresh context trusting only mitmproxy's CA (fresh: httpcore sets ALPN on it).
        `prefer_h2` offers h2 before http/1.1 in ALPN (see PreferH2Context)."""
        context = (
            PreferH2Context(ssl.PROTOCOL_TLS_CLIENT)
            if prefer_h2
            else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        )
        context.load_verify_locations(cafile=str(self.ca_cert_path))
        return context

    def client_env(self, user: str | None = None, inherit: bool = True) -> dict[str, str]:
        """Environment for a subprocess client: proxy variables (both cases, NO_PROXY empty)
        and every CA-bundle variable pointing at mitmproxy's CA; on top of os.environ unless
        `inherit` is False."""
        url = self.url(user)
        ca = str(self.ca_cert_path)
        env = dict(os.environ) if inherit else {}
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = url
        env["NO_PROXY"] = env["no_proxy"] = ""
        for name in CA_BUNDLE_VARIABLES:
            env[name] = ca
        return env

    def curl_args(self, user: str | None = None) -> list[str]:
        """curl options for going through this proxy (`--noproxy ""` beats a NO_PROXY env)."""
        return ["--proxy", self.url(user), "--cacert", str(self.ca_cert_path), "--noproxy", ""]

    def httpx_client(
        self, http2: bool = False, cassette: str | None = None, **kw: Any
    ) -> httpx.Client:
        """An httpx.Client through this proxy, trusting its CA, ignoring proxy env variables.
        Closed by `stop()`/`kill()` if the test did not close it."""
        client = self._client(httpx.Client, http2, cassette, kw)
        self._clients.append(client)
        return client

    def async_httpx_client(
        self, http2: bool = False, cassette: str | None = None, **kw: Any
    ) -> httpx.AsyncClient:
        return self._client(httpx.AsyncClient, http2, cassette, kw)

    def _client(
        self, client_class: type[_ClientT], http2: bool, cassette: str | None, kw: dict[str, Any]
    ) -> _ClientT:
        # httpx and httpx2 (the fork the openai and anthropic SDKs now use) share this API.
        kw.setdefault("timeout", 30.0)
        return client_class(
            proxy=self.url(cassette),
            verify=self.ssl_context(prefer_h2=http2),
            http2=http2,
            trust_env=False,
            **kw,
        )

    def _sdk_client(self, http2: bool, cassette: str | None) -> Any:
        import httpx2

        client = self._client(httpx2.Client, http2, cassette, {})
        self._clients.append(client)
        return client

    def _async_sdk_client(self, http2: bool, cassette: str | None) -> Any:
        import httpx2

        return self._client(httpx2.AsyncClient, http2, cassette, {})

    def openai_client(
        self,
        base_url: str = "https://api.openai.com/v1",
        *,
        cassette: str | None = None,
        http2: bool = False,
        **kw: Any,
    ) -> openai.OpenAI:
        import openai

        kw.setdefault("api_key", FAKE_OPENAI_KEY)
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=base_url, http_client=self._sdk_client(http2, cassette), **kw)

    def async_openai_client(
        self,
        base_url: str = "https://api.openai.com/v1",
        *,
        cassette: str | None = None,
        http2: bool = False,
        **kw: Any,
    ) -> openai.AsyncOpenAI:
        import openai

        kw.setdefault("api_key", FAKE_OPENAI_KEY)
        kw.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(
            base_url=base_url, http_client=self._async_sdk_client(http2, cassette), **kw
        )

    def azure_openai_client(
        self,
        endpoint: str = SEED_ENDPOINT,
        *,
        api_version: str = "2024-10-21",
        cassette: str | None = None,
        http2: bool = False,
        **kw: Any,
    ) -> openai.AzureOpenAI:
        """Azure deployments-style client: `/openai/deployments/{model}/chat/completions`."""
        import openai

        kw.setdefault("api_key", FAKE_OPENAI_KEY)
        kw.setdefault("max_retries", 0)
        return openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_version=api_version,
            http_client=self._sdk_client(http2, cassette),
            **kw,
        )

    def anthropic_client(
        self,
        base_url: str = "https://api.anthropic.com",
        *,
        cassette: str | None = None,
        http2: bool = False,
        **kw: Any,
    ) -> anthropic.Anthropic:
        import anthropic

        kw.setdefault("api_key", FAKE_ANTHROPIC_KEY)
        kw.setdefault("max_retries", 0)
        return anthropic.Anthropic(
            base_url=base_url, http_client=self._sdk_client(http2, cassette), **kw
        )

    def async_anthropic_client(
        self,
        base_url: str = "https://api.anthropic.com",
        *,
        cassette: str | None = None,
        http2: bool = False,
        **kw: Any,
    ) -> anthropic.AsyncAnthropic:
        import anthropic

        kw.setdefault("api_key", FAKE_ANTHROPIC_KEY)
        kw.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(
            base_url=base_url, http_client=self._async_sdk_client(http2, cassette), **kw
        )

    def _close_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()


class ProxyFactory:
    """Makes `MitmProxy`s sharing one confdir and upstream CA, logs under `folder`; `close()`
    stops them all. This is what the `make_proxy` fixtures hand out."""

    def __init__(self, *, confdir: Path, upstream_ca: Path | None, folder: Path) -> None:
        self.confdir = confdir
        self.upstream_ca = upstream_ca
        self.folder = folder
        self.proxies: list[MitmProxy] = []

    def __call__(
        self,
        mode: str | None = "record",
        vcr_dir: Path | None = None,
        options: Mapping[str, OptionValue] | None = None,
        addon: bool | Path = True,
        upstream: Upstream | str | None = None,
        hosts: Sequence[str] = DEFAULT_ROUTED_HOSTS,
        cwd: Path | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stream_responses: bool = False,
        scripts: Sequence[Path] = (),
        start: bool = True,
    ) -> MitmProxy:
        """A new proxy (started unless `start=False`). `addon` may be a script path; with
        `addon=False`, `mode` and `vcr_dir` are ignored (plain mitmdump has no vcr_ options).
        `stream_responses` adds STREAM_SCRIPT (for plain proxies: mitmproxy buffers otherwise);
        `scripts` are more mitmproxy scripts, loaded after the addon."""
        merged: dict[str, OptionValue] = {}
        script: Path | None = None
        if addon is not False:
            script = ADDON_SCRIPT if addon is True else Path(addon)
            if mode is not None:
                merged["vcr_mode"] = mode
            merged["vcr_dir"] = str(vcr_dir or self.folder / "cassettes")
        extra = dict(options or {})
        if upstream is not None:
            user_maps = extra.pop("map_remote", [])
            user_maps = [user_maps] if isinstance(user_maps, str | Path) else list(user_maps)
            merged["map_remote"] = [*route_to(upstream, hosts), *map(str, user_maps)]
        merged.update(extra)
        proxy = MitmProxy(
            confdir=self.confdir,
            log_path=self.folder / f"mitmdump-{len(self.proxies)}.log",
            addon=script,
            scripts=[*scripts, *([STREAM_SCRIPT] if stream_responses else [])],
            options=merged,
            upstream_ca=self.upstream_ca,
            cwd=cwd,
            extra_args=args,
            env=env,
        )
        self.proxies.append(proxy)
        return proxy.start() if start else proxy

    def close(self) -> Iterator[str]:
        """Stop every proxy (SIGINT; SIGKILL as a last resort); yields one log report each."""
        for index, proxy in enumerate(self.proxies):
            try:
                code = proxy.stop()
            except MitmProxyError as exc:
                code = f"killed ({exc.args[0].splitlines()[0]})"
            yield f"--- mitmdump #{index} (exit {code}) {proxy.command}\n{proxy.output()}"
        self.proxies.clear()
