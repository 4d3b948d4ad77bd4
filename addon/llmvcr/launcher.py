"""Starting mitmdump with the llm-vcr addon, and what a client needs to go through it.

Used by `llmvcr.cli` (`run`, `serve`, `env`, `ca`). Never imports mitmproxy at module level: the
proxy runs in its own `mitmdump` process; only `ensure_ca` imports `mitmproxy.certs`, when asked.

- `find_mitmdump()`, `addon_script()`: the programs to start.
- `ProxyProcess`: one mitmdump subprocess: its log read line by line (kept for error messages,
  forwarded once it is ready), its readiness, its graceful stop (SIGINT, so the addon's `done`
  hook writes cassettes and the summary).
- `confdir_path()`, `ensure_ca()`, `write_ca_bundle()`: mitmproxy's CA and the combined bundle.
- `proxy_environment()`, `export_lines()`: the variables that point a client at the proxy;
  `client_environment()` adds what Node and Java need (`llmvcr.runtimes`).
- `check_port_free()`, `is_loopback()`, the `serve` state file.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import llmvcr
from llmvcr.store import process_alive


class LaunchError(Exception):
    """A failure the user can act on: `llm-vcr: <message>` on stderr, exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# mitmproxy's own default for its `confdir` option (mitmproxy/options.py CONF_DIR).
DEFAULT_CONFDIR = "~/.mitmproxy"
CA_CERT_NAME = "mitmproxy-ca-cert.pem"
CA_BUNDLE_NAME = "llm-vcr-ca-bundle.pem"
SERVE_STATE_NAME = "llm-vcr-serve.json"

# Set for every client: the variables that decide trust for Python (ssl/httpx/openai/anthropic,
# requests), curl, Node, Go and the AWS SDKs.
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "AWS_CA_BUNDLE",
)
# Other tools' CA variables: overridden only when already set, because then they name a bundle
# without the proxy's CA (and that tool's traffic now goes through the proxy too).
INHERITED_CA_VARIABLES = (
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NIX_SSL_CERT_FILE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
NO_PROXY_HOSTS = "localhost,127.0.0.1,::1"

# Distribution CA bundles, most common first; then OpenSSL's compiled-in default and certifi.
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)

# mitmproxy logs this when its listening socket is up (mitmproxy/proxy/mode_servers.py) ...
_LISTENING = re.compile(r"proxy listening at (?P<address>.+):(?P<port>\d+)\.$")
# ... and the addon logs this from its `running` hook, after mitmproxy's last start-up check:
# from then on requests are answered.
_ADDON_RUNNING = re.compile(r"llm-vcr: \S+ mode, cassettes in ")

# mitmproxy's per-connection lines ("[time][client] client connect", "... server disconnect
# host:port"): noise next to a command's own output; `run` keeps them out of the terminal.
CONNECTION_LINES = re.compile(r"^\[[^\]]*\]\[[^\]]*\] (client|server) (connect|disconnect)\b")
# One of them per client connection: `run`'s hint needs to know whether any client came at all.
CLIENT_CONNECT_LINE = re.compile(r"^\[[^\]]*\]\[[^\]]*\] client connect\b")

LOG_LINES_KEPT = 40


def find_mitmdump() -> Path:
    """The mitmdump next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mitmdump"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mitmdump")
    if found is None:
        raise LaunchError(
            f"mitmdump not found (looked in {beside.parent} and on PATH): "
            "run scripts/bootstrap, or pip install the project (it depends on mitmproxy)"
        )
    return Path(found)


def addon_script() -> Path:
    """`addon/vcr.py`, the mitmdump entry script beside the package folder."""
    script = Path(llmvcr.__file__).resolve().parent.parent / "vcr.py"
    if not script.is_file():
        raise LaunchError(
            f"the mitmproxy addon script is missing: {script} "
            "(install the project from its repository, editable: scripts/bootstrap)"
        )
    return script


def confdir_path(value: str | None) -> Path:
    """mitmproxy's configuration folder for a `confdir` option value (None: its default)."""
    return Path(os.path.expanduser(value or DEFAULT_CONFDIR)).absolute()


# -- ports and addresses -----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` (a listen address) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (resolves who knows where) or "" (every interface)


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `PORT` (loopback) -> (host, port). ValueError if malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", value
    host = host.strip("[]")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port_text)


def check_port_free(host: str, port: int) -> None:
    """LaunchError (exit 2) when something already listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # mitmproxy's listener sets SO_REUSEADDR too: a port in TIME_WAIT is not busy for it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise LaunchError(f"port {port} is already in use", exit_code=2) from None
            raise LaunchError(f"cannot listen on {host}:{port}: {e.strerror}", 2) from None


def url_host(host: str) -> str:
    """`host` as written in a URL: loopback for a wildcard address, brackets for IPv6."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def proxy_url(host: str, port: int, auth: str | None = None) -> str:
    """`http://[user:pass@]host:port`, the credentials percent-encoded."""
    credentials = ""
    if auth:
        user, _, password = auth.partition(":")
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    return f"http://{credentials}{url_host(host)}:{port}"


# -- the CA and the combined bundle --------------------------------------------------------------


def ensure_ca(confdir: Path) -> Path:
    """The mitmproxy CA certificate in `confdir`, created the way mitmdump would if missing.

    Called before starting a proxy too: two mitmdumps started at once on a fresh confdir would
    each make a CA and overwrite each other's files, leaving one proxy with a CA nobody trusts.
    A lock file makes concurrent llm-vcr processes create it once.
    """
    cert = confdir / CA_CERT_NAME
    if cert.is_file():
        return cert
    confdir.mkdir(parents=True, exist_ok=True)
    with open(confdir / ".llm-vcr-ca.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cert.is_file():
            from mitmproxy import certs  # only here: creating a CA without starting a proxy

            # Same basename and key size as mitmproxy's defaults (tlsconfig addon).
            certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return cert


def system_ca_file(exclude: Path | None = None) -> Path | None:
    """The system's CA bundle: a distribution file, OpenSSL's default, or certifi's."""
    candidates: list[str] = [*SYSTEM_CA_FILES, ssl.get_default_verify_paths().openssl_cafile]
    with contextlib.suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and path.stat().st_size > 0 and path != exclude:
            return path
    return None


def write_ca_bundle(confdir: Path) -> Path:
    """Write `<confdir>/llm-vcr-ca-bundle.pem`: the system CAs plus the mitmproxy CA, so a client
    trusting it reaches both the proxy and every other HTTPS site. Rewritten only if different."""
    bundle = confdir / CA_BUNDLE_NAME
    ca_pem = (confdir / CA_CERT_NAME).read_text()
    parts: list[str] = []
    system = system_ca_file(exclude=bundle)
    if system is not None:
        parts.append(system.read_text(errors="replace").rstrip("\n") + "\n\n")
    parts.append(f"# mitmproxy CA ({confdir / CA_CERT_NAME}), added by llm-vcr\n{ca_pem}")
    text = "".join(parts)
    if bundle.is_file() and bundle.read_text(errors="replace") == text:
        return bundle
    temp = confdir / f".{CA_BUNDLE_NAME}.{os.getpid()}.tmp"
    temp.write_text(text)
    os.chmod(temp, 0o644)
    os.replace(temp, bundle)  # atomic: concurrent runs never see half a bundle
    return bundle


# -- the client's environment ------------------------------------------------------------------


def proxy_environment(
    url: str, ca_bundle: Path, base: Mapping[str, str], proxy_localhost: bool = False
) -> dict[str, str | None]:
    """The variables to set (str) or remove (None) so a client started from `base` goes through
    the proxy at `url` and trusts it.

    Proxy variables in both cases (lower case wins in Python; curl reads only `http_proxy` for
    http). `NO_PROXY` keeps loopback direct, unless `proxy_localhost` (to record a local model
    server), which removes it.
    """
    changes: dict[str, str | None] = {name: url for name in PROXY_VARIABLES}
    for name in NO_PROXY_VARIABLES:
        changes[name] = None if proxy_localhost else NO_PROXY_HOSTS
    for name in CA_VARIABLES:
        changes[name] = str(ca_bundle)
    for name in INHERITED_CA_VARIABLES:
        if name in base:
            changes[name] = str(ca_bundle)
    changes["NODE_USE_ENV_PROXY"] = "1"  # Node's built-in fetch reads the proxy variables only then
    return changes


def client_environment(
    url: str, confdir: Path, ca_bundle: Path, base: Mapping[str, str],
    proxy_localhost: bool = False, say: Callable[[str], None] | None = None,
) -> dict[str, str | None]:
    """`proxy_environment`, plus what runtimes that ignore those variables need (Node before 24,
    Java: `llmvcr.runtimes`). What could not be done for a runtime is one line through `say`
    (default: `llm-vcr: ...` on stderr); the user's own NODE_OPTIONS/JAVA_TOOL_OPTIONS are kept."""
    from llmvcr import runtimes

    def to_stderr(text: str) -> None:
        print(f"llm-vcr: {text}", file=sys.stderr, flush=True)

    changes = proxy_environment(url, ca_bundle, base, proxy_localhost)
    changes.update(runtimes.client_environment(
        url, confdir, confdir / CA_CERT_NAME, base, proxy_localhost, say or to_stderr
    ))
    return changes


def applied(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """`base` with `changes` applied (None removes)."""
    result = dict(base)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def export_lines(changes: Mapping[str, str | None]) -> list[str]:
    """POSIX shell lines that apply `changes`: `export NAME=value` and `unset NAME`."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in changes.items() if value]
    removed = [name for name, value in changes.items() if value is None]
    if removed:
        lines.append("unset " + " ".join(removed))
    return lines


# -- the serve state file ----------------------------------------------------------------------


def write_serve_state(confdir: Path, state: Mapping[str, Any]) -> Path:
    """Record a running `serve` in `<confdir>/llm-vcr-serve.json` (mode 0600: it may hold the
    proxy password; the CA key beside it is as secret)."""
    path = confdir / SERVE_STATE_NAME
    temp = confdir / f".{SERVE_STATE_NAME}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
        out.write("\n")
    os.replace(temp, path)
    return path


def write_proxy_password(confdir: Path, auth: str) -> Path:
    """`USER:PASS` as a private (0600) htpasswd file for mitmproxy's `proxyauth=@FILE`, so the
    password never appears on mitmdump's command line (which every user of the machine can read
    with `ps`). Remove it with `remove_proxy_password` when the proxy ends.

    The password is stored as a bcrypt hash at bcrypt's lowest cost: mitmproxy checks it once per
    client connection, on its event loop, and the file is as private as the CA key beside it.
    """
    import bcrypt  # a dependency of mitmproxy's own htpasswd reader

    user, _, password = auth.partition(":")
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = confdir / f".llm-vcr-serve-{os.getpid()}.htpasswd"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file of a reused pid may have other bits
        out.write(f"{user}:{digest}\n")
    return path


def remove_proxy_password(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_serve_state(confdir: Path, pid: int) -> None:
    """Remove the state file if it still describes the `serve` with process id `pid`."""
    path = confdir / SERVE_STATE_NAME
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def read_serve_state(confdir: Path) -> dict[str, Any]:
    """The running `serve`'s state; LaunchError when there is none (or its process is gone)."""
    path = confdir / SERVE_STATE_NAME
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise LaunchError(
            f"no llm-vcr serve is running (no {path}); start one, or give --port"
        ) from None
    except (OSError, ValueError) as e:
        raise LaunchError(f"cannot read {path}: {e}") from None
    if not isinstance(state, dict) or not {"pid", "proxy_url", "ca_bundle"} <= state.keys():
        raise LaunchError(f"{path} is not an llm-vcr serve state file")
    if not process_alive(int(state["pid"])):
        raise LaunchError(
            f"the llm-vcr serve recorded in {path} (pid {state['pid']}) is no longer running"
        )
    return state


# -- the mitmdump process ------------------------------------------------------------------------


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that has the kernel send SIGTERM to the proxy when llm-vcr dies
    (even by SIGKILL), so no orphaned proxy keeps its port. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: no dlopen after fork
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class ProxyProcess:
    """One mitmdump subprocess, in its own session so a terminal's Ctrl-C reaches only the client
    (llm-vcr stops the proxy itself, after the client, so late requests are still answered).

    Its output (stdout and stderr, unbuffered) is read by a thread: the last lines are kept for
    error messages; once the proxy is ready they are written to `log_to` (held back until then),
    except those matching `hide`.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_to: IO[str] | None = None,
        hide: re.Pattern[str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_to = log_to
        self.hide = hide
        self.port: int | None = None
        self.client_connections = 0  # "client connect" lines seen (mitmproxy logs one each)
        self._lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self._held: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._forwarding = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # log lines arrive as they are written
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
        except OSError as e:
            raise LaunchError(f"cannot start {self.argv[0]}: {e.strerror}") from None
        self._reader = threading.Thread(target=self._read, name="mitmdump-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with self._lock:
                self._lines.append(line)
                if self.port is None and (found := _LISTENING.search(line)):
                    self.port = int(found["port"])
                if CLIENT_CONNECT_LINE.search(line):
                    self.client_connections += 1
                if self._forwarding:
                    self._write(line)
                else:
                    self._held.append(line)
                    if self.port is not None and _ADDON_RUNNING.search(line):
                        self._ready.set()

    def _write(self, line: str) -> None:
        if self.hide is not None and self.hide.search(line):
            return
        if self.log_to is not None:
            with contextlib.suppress(OSError, ValueError):
                print(line, file=self.log_to, flush=True)

    def wait_ready(self, timeout: float, cancelled: Callable[[], bool] = lambda: False) -> int:
        """Block until the proxy answers requests; return its port. LaunchError when it exits,
        does not get ready within `timeout` seconds, or `cancelled()` turns true (the proxy is
        stopped then)."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._process.poll() is not None:
                self._join_reader()
                raise LaunchError(
                    f"the proxy exited during start-up (exit code {self._process.returncode})"
                    + self._last_lines_text()
                )
            if cancelled():
                self.stop()
                raise LaunchError("interrupted while the proxy was starting", exit_code=130)
            if time.monotonic() > deadline:
                self.stop()
                raise LaunchError(
                    f"the proxy did not start within {timeout:g} s" + self._last_lines_text()
                )
        with self._lock:
            self._forwarding = True
            for line in self._held:
                self._write(line)
            self._held.clear()
        assert self.port is not None
        return self.port

    def exited(self) -> int | None:
        """The exit code if the proxy has stopped, else None."""
        return self._process.poll() if self._process else None

    def stop(self, grace: float = 30.0) -> int | None:
        """Stop the proxy with SIGINT (mitmproxy then runs the addons' `done` hooks), SIGKILL
        after `grace` seconds; wait for its last log lines. Returns its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._join_reader()
        return process.returncode

    def signal(self, signum: int) -> None:
        """Send `signum` to the proxy if it is running."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def wait(self) -> int:
        """Wait for the proxy to exit by itself (retried across signal handlers)."""
        assert self._process is not None
        code = self._process.wait()
        self._join_reader()
        return code

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def last_lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def _last_lines_text(self) -> str:
        lines = self.last_lines()
        if not lines:
            return "; it printed nothing"
        return "; its last lines:\n" + "\n".join(f"    {line}" for line in lines)
