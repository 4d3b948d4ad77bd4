"""The proxy a pytest session goes through, and one llm-vcr session per test on it.

No pytest here (the hooks are in `llmvcr.pytest_plugin`); no mitmproxy either (the proxy is a
`mitmdump` subprocess, `launcher.ProxyProcess`, or a running `llm-vcr serve`).

How a test's requests reach its own cassette although the proxy variables are process-wide and
connections outlive a test: the process's proxy URL is `http://-:client%3D<name>@127.0.0.1:PORT`,
whose password names a stable client (`pytest-<pid>-<worker>-<random>`). The proxy looks the client
up per request (control API, `client` field), so binding the client to another session moves
every later request, keep-alive connections included. The user name is empty: a user name would
name a cassette for every request and override the session's.

The client is always bound to a session, so no request ever gets `409 no open session`:
- an idle session between tests and during unmarked ones: `passthrough` (nothing recorded or
  replayed), or with `--vcr-block` (or on a proxy that only replays, which refuses passthrough)
  a `replay` session on the reserved cassette `BLOCK_CASSETTE`, which never exists, so every LLM
  request of an unmarked test is answered 404 without going out;
- a marked test's own session from its setup to the end of its call phase: `begin` opens it
  (which rebinds the client), `finish` opens a new idle session (rebinding again), then closes
  the test's session (waiting until what it recorded is on disk) and returns its final report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from llmvcr import launcher
from llmvcr.pytest_plugin.settings import Options, PluginError
from llmvcr.session_client import ControlError, Proxy, close_session, open_session, report

SERVER_VARIABLE = "LLM_VCR_PROXY"
START_TIMEOUT = 60.0
BLOCK_CASSETTE = "vcr-block_unmarked-tests-make-no-LLM-requests"
# mitmdump's lines that never say why it stopped; and its time stamps.
_ROUTINE = re.compile(r"proxy listening at|^Loading script|^Error logged during startup")
_TIME = re.compile(r"^\[[0-9:.]+\] ")


@dataclass
class TestSession:
    """One marked test's session."""

    id: str
    cassettes: tuple[str, ...]
    mode: str
    strict: bool
    folder: Path | None  # the proxy's cassette folder (None: a serve's, unknown here)
    proxy: Proxy
    final: dict[str, object] | None = None

    @property
    def paths(self) -> list[Path] | None:
        if self.folder is None:
            return None
        return [self.folder / f"{name}.yaml" for name in self.cassettes]

    def report(self) -> dict[str, object]:
        """The live report (the final one once the test's call phase is over)."""
        if self.final is not None:
            return self.final
        return report(self.proxy, self.id)


@dataclass
class Connection:
    """The proxy of one pytest process (or xdist worker), its client name and idle session."""

    proxy: Proxy
    client: str
    folder: Path | None  # cassette folder when the plugin started the proxy
    process: launcher.ProxyProcess | None = None
    idle: str | None = None
    idle_blocks: bool = False
    idle_missed: int = 0  # misses of the idle (blocking) session already blamed on a test
    saved: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # lines to show once, at the end

    # -- starting and stopping

    @classmethod
    def start(cls, options: Options, worker: str) -> Connection:
        """Start a proxy (or reach `--vcr-server` / `$LLM_VCR_PROXY`), bind this process's
        client to an idle session, and point the process's proxy and CA variables at it."""
        client = f"pytest-{os.getpid()}-{worker}-{secrets.token_hex(3)}"
        confdir = launcher.confdir_path(_setting(options.settings, "confdir"))
        server = options.server or os.environ.get(SERVER_VARIABLE) or None
        try:
            launcher.ensure_ca(confdir)
        except OSError as e:
            raise PluginError(f"cannot create mitmproxy's CA in {confdir}: {e}") from None
        if server:
            connection = cls(_server(server), client, None)
        else:
            connection = cls._started(options, confdir, client)
        try:
            connection.bind_idle(options.block)
            bundle = launcher.write_ca_bundle(confdir)
        except BaseException:
            connection.stop()
            raise
        url = connection.proxy.url(user="-", password=f"client={client}")  # "-": no cassette
        changes = launcher.client_environment(
            url, confdir, bundle, os.environ, say=connection.notes.append
        )
        connection.saved = {name: os.environ.get(name) for name in changes}
        _apply(changes)
        return connection

    @classmethod
    def _started(cls, options: Options, confdir: Path, client: str) -> Connection:
        from llmvcr.cli import listen_args, mitmdump_program, mitmdump_settings

        try:
            program = mitmdump_program()
        except launcher.LaunchError as e:
            raise PluginError(e.message) from None
        args = argparse.Namespace(
            confdir=None, settings=list(options.settings), mode=options.mode, cassette=None,
            dir=str(options.vcr_dir), latency=None, reuse=False,
        )
        ours = {"flow_detail": "0", "confdir": str(confdir)}
        argv = [*program, *listen_args("127.0.0.1", 0), *mitmdump_settings(args, ours)]
        process = launcher.ProxyProcess(argv, None, hide=launcher.CONNECTION_LINES)
        try:
            process.start()
            port = process.wait_ready(START_TIMEOUT)
        except launcher.LaunchError as e:
            process.stop()
            lines = [_TIME.sub("", line).strip() for line in process.last_lines()]
            said = [line for line in lines if line and not _ROUTINE.search(line)]
            why = said[-1] if said else e.message.splitlines()[0]
            raise PluginError(
                f"the proxy could not start: {why} (check --vcr-set and the ini's vcr_set)"
            ) from None
        return cls(Proxy("127.0.0.1", port), client, options.vcr_dir, process)

    def stop(self) -> None:
        """Restore the variables, close the idle session, stop a proxy the plugin started."""
        _apply(self.saved)
        self.saved = {}
        if self.idle is not None:
            with contextlib.suppress(ControlError):
                close_session(self.proxy, self.idle)
            self.idle = None
        if self.process is not None:
            self.process.stop()
            self.process = None

    # -- sessions

    def bind_idle(self, block: bool) -> None:
        """Bind the client to a new idle session, then close the one it replaces."""
        previous = self.idle
        fields: dict[str, object] = {"client": self.client}
        if block or self.idle_blocks:
            fields.update(mode="replay", cassette=BLOCK_CASSETTE)
            self.idle_blocks = True
        else:
            fields["mode"] = "passthrough"
        try:
            opened = self._open(fields)
        except ControlError:
            if self.idle_blocks:
                raise
            # A proxy that only replays refuses passthrough: block instead (nothing goes out).
            fields.update(mode="replay", cassette=BLOCK_CASSETTE)
            self.idle_blocks = True
            opened = self._open(fields)
        self.idle = str(opened["session"])
        self.idle_missed = 0
        if previous is not None:
            with contextlib.suppress(ControlError):
                close_session(self.proxy, previous)

    def begin(self, cassettes: Sequence[str], mode: str, strict: bool,
              latency: str | None, reuse: bool | None) -> TestSession:
        """Open a test's session on `cassettes` (the first records) and bind the client to it."""
        fields: dict[str, object] = {
            "client": self.client, "cassettes": list(cassettes), "mode": mode, "strict": strict,
        }
        if latency is not None:
            fields["latency"] = latency
        if reuse is not None:
            fields["reuse"] = reuse
        opened = self._open(fields)
        return TestSession(str(opened["session"]), tuple(cassettes), mode, strict, self.folder,
                           self.proxy)

    def finish(self, session: TestSession, block: bool) -> dict[str, object]:
        """Close the test's session: its final report. Closing it binds the client back to the
        idle session it had before (the proxy keeps each client's bindings in order); a new
        idle session is opened only when the blocking choice changed."""
        try:
            if self.idle is None or (block and not self.idle_blocks):
                self.bind_idle(block)
        finally:
            session.final = close_session(self.proxy, session.id)
        return session.final

    def blocked_requests(self) -> list[str]:
        """The requests the blocking idle session refused since the last call (one line each)."""
        if not self.idle_blocks or self.idle is None:
            return []
        data = report(self.proxy, self.idle)
        entry = _entries(data).get(BLOCK_CASSETTE, {})
        total = int(entry.get("missed_count", 0))
        listed = entry.get("missed", [])
        new = listed[self.idle_missed:] if isinstance(listed, list) else []
        lines = [str(miss["request"]) for miss in new]
        if total - self.idle_missed > len(lines):
            lines.append(f"{total - self.idle_missed - len(lines)} more")
        self.idle_missed = total
        return lines

    def _open(self, fields: dict[str, object]) -> dict[str, object]:
        try:
            return open_session(self.proxy, fields)
        except ControlError as e:
            raise ControlError(f"cannot open a session on the proxy at {self.proxy.shown}: {e}"
                               ) from None


# -- reports --------------------------------------------------------------------------------


def problems(data: Mapping[str, object], strict: bool) -> tuple[list[str], list[str]]:
    """(misses, unused) of a final report, one line each: every request that found no recorded
    answer (with the proxy's reason); with `strict`, every recorded interaction not used."""
    misses: list[str] = []
    unused: list[str] = []
    for name, entry in _entries(data).items():
        for miss in entry.get("missed", []):
            # The proxy's reason usually starts with the request line already.
            reason = str(miss["reason"]).removeprefix(f"{miss['request']}: ")
            misses.append(f"no recorded answer in cassette '{name}': {miss['request']}: {reason}")
        hidden = int(entry.get("missed_count", 0)) - len(entry.get("missed", []))
        if hidden > 0:
            misses.append(f"cassette '{name}': {hidden} more request(s) found no answer")
        if strict:
            unused += [f"cassette '{name}': {u['request']}" for u in entry.get("unused", [])]
    return misses, unused


def _entries(data: Mapping[str, object]) -> dict[str, dict]:
    cassettes = data.get("cassettes")
    return cassettes if isinstance(cassettes, dict) else {}


# -- checks a test's setup makes --------------------------------------------------------------


def unwritable(path: Path) -> str | None:
    """Why a cassette file at `path` cannot be written (None: it can): the nearest folder that
    exists must be a writable folder."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            return f"{folder} does not exist"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return None


# -- helpers ------------------------------------------------------------------------------------


def _server(value: str) -> Proxy:
    """The proxy `--vcr-server` / `$LLM_VCR_PROXY` names: `HOST:PORT` or `http://HOST:PORT`."""
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.username or parts.password:
            raise PluginError(
                f"--vcr-server {_hidden(text)}: a serve with a login (--auth) cannot carry each "
                "test's session in the proxy password; use a loopback serve without --auth"
            )
        text = parts.netloc
    try:
        host, port = launcher.parse_listen(text)
    except ValueError as e:
        raise PluginError(f"--vcr-server / ${SERVER_VARIABLE}: {e}") from None
    return Proxy(host, port)


def _hidden(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://***@{parts.hostname}:{parts.port}"


def _setting(settings: Sequence[str], name: str) -> str | None:
    value = None
    for setting in settings:
        key, _, given = setting.partition("=")
        if key == name:
            value = given
    return value


def _apply(changes: Mapping[str, str | None]) -> None:
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

