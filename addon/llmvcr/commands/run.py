"""`llm-vcr run [options] -- CMD`: one command through llm-vcr, in a session of its own.

The run's proxy is one it starts for the command (and stops after it), or a running `llm-vcr
serve` given with `--server HOST:PORT`. Either way the run opens one session (`sessions`) with its
cassettes and settings on a proxy port of the session's own, gives CMD the variables that put
every request it makes in that session (`launcher.client_environment`: proxy, CA bundle, Node and
Java settings), and closes the session when CMD ends: its report is exactly this run's.

`--strict`, when CMD itself succeeded (CMD's own non-zero exit always wins), exits 3 when a request
missed, a recorded interaction went unused, or a cassette named with `--cassette` saw no request
(the implicit default cassette is not expected to see one); each such finding is one line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import launcher
from ..cli import (
    COMMAND_NOT_EXECUTABLE_EXIT,
    COMMAND_NOT_FOUND_EXIT,
    LIST_FLAGS,
    STRICT_EXIT,
    SignalRelay,
    confdir_of,
    listen_args,
    mitmdump_program,
    mitmdump_settings,
)
from ..launcher import LaunchError
from ..session_client import ControlError, Proxy, close_session, open_session, session_url
from ..sessions import strict_failures
from . import session as session_command

# The serve's own settings: a run on it cannot change them (they would change every client's).
_PROXY_WIDE = (
    "dir", "port", "settings", *(flag[2:].replace("-", "_") for flag, _, _ in LIST_FLAGS)
)


def run_command(args: argparse.Namespace) -> int:
    """Run CMD in a session of its own; CMD's exit code (see `--strict`)."""
    command: list[str] = args.command
    if not command:
        raise LaunchError("run needs a command: llm-vcr run [options] -- CMD [ARGS...]", 2)
    check_command(command[0], os.environ.get("PATH", os.defpath))
    if args.isolate:
        from .. import isolate

        isolate.check_available()
    confdir = confdir_of(args)
    if args.server:
        _refuse_proxy_wide(args)
        proxy, bundle = session_command.proxy_of(args)
        assert bundle is not None
        with SignalRelay() as relay:
            return _run(args, command, confdir, proxy, bundle, None, relay)
    if args.port:
        launcher.check_port_free("127.0.0.1", args.port)
    launcher.ensure_ca(confdir)
    # flow_detail=0: the command's terminal gets the proxy's log lines, not a line per request.
    ours = {"flow_detail": "0", "confdir": str(confdir)}
    argv = [*mitmdump_program(), *listen_args("127.0.0.1", args.port or 0),
            *mitmdump_settings(args, ours)]
    process = launcher.ProxyProcess(argv, sys.stderr, hide=launcher.CONNECTION_LINES)
    try:
        with SignalRelay() as relay:
            process.start()
            port = process.wait_ready(args.start_timeout, cancelled=lambda: bool(relay.received))
            bundle = launcher.write_ca_bundle(confdir)
            return _run(args, command, confdir, Proxy("127.0.0.1", port), bundle, process, relay)
    finally:
        process.stop()


def _run(
    args: argparse.Namespace,
    command: list[str],
    confdir: Path,
    proxy: Proxy,
    bundle: Path,
    process: launcher.ProxyProcess | None,
    relay: SignalRelay,
) -> int:
    """Open the run's session, run CMD in it, close it and judge the run."""
    fields = session_command.settings(args, strict=args.strict)
    fields["port"] = True  # every client in the session, Java included (it carries no password)
    try:
        opened = open_session(proxy, fields)
    except ControlError as e:
        raise LaunchError(str(e)) from None
    url = session_url(proxy, opened)
    env = launcher.applied(
        os.environ,
        launcher.client_environment(url, confdir, bundle, os.environ, args.proxy_localhost),
    )
    session_port = opened["port"] if isinstance(opened.get("port"), int) else proxy.port
    workdir = Path(tempfile.mkdtemp(prefix="llm-vcr-"))
    try:
        if args.isolate:
            code = _run_isolated(command, env, relay, session_port, workdir, proxy.host)
        else:
            code = run_child(command, env, relay)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    early = process.exited() if process is not None else None
    if early is not None:
        print(f"llm-vcr: the proxy stopped while the command ran (exit code {early})",
              file=sys.stderr)
        return code or (STRICT_EXIT if args.strict else 0)
    try:
        report = close_session(proxy, str(opened["session"]))
    except ControlError as e:
        print(f"llm-vcr: could not close the run's session: {e}", file=sys.stderr)
        return code or (STRICT_EXIT if args.strict else 0)
    totals = report.get("totals") or {}
    reached = sum(int(v.get("requests", 0)) for v in (report.get("cassettes") or {}).values())
    if code != 0 and not reached and not (totals.get("replayed") or totals.get("recorded")):
        from ..runtimes import hint

        print(f"llm-vcr: {hint(command)}", file=sys.stderr)
    for line in verify_lines(report):
        print(f"llm-vcr: verify: {line}", file=sys.stderr)
    if args.strict:
        failures = strict_failures(report)
        for line in failures:
            print(f"llm-vcr: --strict: {line}", file=sys.stderr)
        if failures:
            return code or STRICT_EXIT
    return code


def verify_lines(report: dict[str, object]) -> list[str]:
    """A verify run's results worth reading, one line each: every one that is not `same` (benign,
    changed, new, not verified) and every recorded interaction the run did not reach."""
    lines: list[str] = []
    if report.get("mode") != "verify":
        return lines
    cassettes: dict[str, dict] = report.get("cassettes") or {}  # type: ignore[assignment]
    for name, entry in cassettes.items():
        for result in entry.get("verified", ()):
            if result["verdict"] != "same":
                reason = f": {result['reason']}" if result.get("reason") else ""
                lines.append(f"cassette '{name}': {result['verdict']} {result['request']}{reason}")
        lines += [f"cassette '{name}': unused {u['request']}" for u in entry.get("unused", ())]
    return lines


def _refuse_proxy_wide(args: argparse.Namespace) -> None:
    for name in _PROXY_WIDE:
        given = getattr(args, name, None)
        if name == "settings":  # the CA's confdir is the client side's own
            given = [s for s in given or () if s.partition("=")[0] != "confdir"]
        if given:
            flag = "--set" if name == "settings" else f"--{name.replace('_', '-')}"
            raise LaunchError(
                f"{flag} is the serve's own setting: it cannot be given with --server (start the "
                "serve with it, or run without --server)", 2,
            )


def check_command(name: str, path: str | None) -> None:
    if os.sep in name:
        if not os.path.exists(name):
            raise LaunchError(f"command not found: {name}", COMMAND_NOT_FOUND_EXIT)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise LaunchError(f"permission denied: {name}", COMMAND_NOT_EXECUTABLE_EXIT)
    elif shutil.which(name, path=path) is None:
        raise LaunchError(f"command not found: {name}", COMMAND_NOT_FOUND_EXIT)


def _run_isolated(command: list[str], env: dict[str, str], relay: SignalRelay, port: int,
                  workdir: Path, host: str) -> int:
    """`run --isolate`: CMD in a network namespace whose only way out is the proxy; then one
    line naming what it tried around the proxy."""
    from .. import isolate

    if not launcher.is_loopback(host):
        raise LaunchError("--isolate needs the proxy on this machine (--server on loopback)", 2)
    with isolate.Isolation(port, workdir) as isolation:
        code = run_child(isolation.command(command), env, relay)
    print(f"llm-vcr: {isolate.report_line(isolation.report())}", file=sys.stderr)
    return code


def run_child(command: list[str], env: dict[str, str], relay: SignalRelay) -> int:
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        raise LaunchError(f"command not found: {command[0]}", COMMAND_NOT_FOUND_EXIT) from None
    except PermissionError:
        raise LaunchError(f"permission denied: {command[0]}", COMMAND_NOT_EXECUTABLE_EXIT) from None
    relay.target = _forwarder(child.pid)
    # Signals that came in while the proxy was starting: the child never saw them.
    for signum in relay.received:
        relay.target(signum)
    code = child.wait()
    relay.target = None
    return _exit_code(code)


def _terminal_signalled_our_group() -> bool:
    """Whether llm-vcr's process group is its terminal's foreground group: then a Ctrl-C (or
    Ctrl-\\) went to every process of the group, the child included, and must not be repeated."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def _forwarder(pid: int) -> Callable[[int], None]:
    def forward(signum: int) -> None:
        if signum in (signal.SIGINT, signal.SIGQUIT) and _terminal_signalled_our_group():
            try:
                if os.getpgid(pid) == os.getpgrp():
                    return
            except OSError:
                return  # already gone
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    return forward


def _exit_code(returncode: int) -> int:
    """A child's status as a shell reports it: 128+N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode
