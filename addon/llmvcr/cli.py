"""The `llm-vcr` command.

    llm-vcr run [options] -- CMD [ARGS...]   a proxy for the lifetime of one command
    llm-vcr serve --listen HOST:PORT [...]   a long-running proxy for a team or CI
    llm-vcr env [--port P]                   export lines for the running serve (or a port)
    llm-vcr session open|report|close        sessions on a running proxy (one run or test each)
    llm-vcr ca                               the CA certificate and the combined bundle
    llm-vcr fmt [--check] PATH...            rewrite cassettes in the canonical layout
    llm-vcr show FILE... [--raw]             a readable transcript of each interaction
    llm-vcr check PATH...                    problems and secrets, as file:line (a CI gate)
    llm-vcr redact PATH...                   apply the recording rules to existing cassettes
    llm-vcr diff OLD NEW [--json]            what changed in a re-recording (exit 3 if it broke)

Every failure the user can act on is one line `llm-vcr: ...` on stderr and a non-zero exit, no
traceback. This module must stay importable by old Pythons (3.8+) so that `main` can say which
Python is needed: the rest of the package is imported only after that check.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

MIN_PYTHON = (3, 12)
STRICT_EXIT = 3  # `run --strict`: CMD succeeded but a request missed or a recording went unused
COMMAND_NOT_FOUND_EXIT = 127  # the shell's codes
COMMAND_NOT_EXECUTABLE_EXIT = 126
START_TIMEOUT = 60.0
AUTH_VARIABLE = "LLM_VCR_AUTH"  # `serve --auth` from the environment: no password in `ps`


@dataclass(frozen=True)
class Subcommand:
    """One `llm-vcr NAME`: its arguments and what it does (returns the exit code)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def subcommands() -> list[Subcommand]:
    """Every subcommand, in `--help` order.

    Commands written in other modules (`show`, `check`, `redact`) are added here with their own
    `Subcommand` entries; import those modules inside this function, not at the top, so the
    Python version check in `main` runs first.
    """
    return [
        Subcommand("run", "record/replay for one command: llm-vcr run [options] -- CMD ARGS",
                   add_run_arguments, _run_command),
        Subcommand("serve", "a long-running proxy (team, CI): prints the client's export lines",
                   add_serve_arguments, serve_command),
        Subcommand("env", "print the export lines for the running serve (or --port)",
                   add_env_arguments, env_command),
        Subcommand("session", "open, report or close a session on a running proxy",
                   _session_arguments, _session_command),
        Subcommand("ca", "print the mitmproxy CA path and the combined CA bundle path",
                   add_confdir_argument, ca_command),
        Subcommand("fmt", "rewrite cassettes in the canonical layout (--check: only report)",
                   add_fmt_arguments, fmt_command),
        Subcommand("show", "a transcript per interaction: messages, the answer from the stream",
                   add_show_arguments, show_command),
        Subcommand("check", "report problems and secrets as file:line (exit 1 on errors)",
                   add_paths_argument, check_command),
        Subcommand("redact", "drop secrets from existing cassettes, as recording does",
                   add_paths_argument, redact_command),
        Subcommand("diff", "compare two cassettes (or folders): same, benign or changed",
                   _diff_arguments, _diff_command),
    ]


def _run_command(args: argparse.Namespace) -> int:
    from llmvcr.commands import run

    return run.run_command(args)


def _session_arguments(parser: argparse.ArgumentParser) -> None:
    from llmvcr.commands import session

    session.add_arguments(parser)


def _session_command(args: argparse.Namespace) -> int:
    from llmvcr.commands import session

    return session.run(args)


def _diff_arguments(parser: argparse.ArgumentParser) -> None:
    from llmvcr.commands import diff

    diff.add_arguments(parser)


def _diff_command(args: argparse.Namespace) -> int:
    from llmvcr.commands import diff

    return diff.run(args)


# -- arguments ---------------------------------------------------------------------------------


def _setting(text: str) -> str:
    name, sep, _ = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return text


def _cassette_name(text: str) -> str:
    from llmvcr.store import CassetteNameError, validate_name

    try:
        return validate_name(text)
    except CassetteNameError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _latency(text: str) -> str:
    from llmvcr.replay import parse_latency

    try:
        parse_latency(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _listen(text: str) -> tuple[str, int]:
    from llmvcr.launcher import parse_listen

    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _auth(text: str) -> str:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("expected USER:PASS")
    return text


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


# (flag, mitmproxy option, help): list options; each flag may repeat and takes comma lists.
LIST_FLAGS = (
    ("--hosts", "vcr_hosts", "host globs to record/replay (default: the LLM API hosts; * = all)"),
    ("--keep-headers", "vcr_keep_headers", "headers saved in cassettes (an allow-list)"),
    ("--ignore-json", "vcr_ignore_json", "JSON body paths left out of matching (a.b, x.*.id)"),
    ("--redact-json", "vcr_redact_json", "JSON body paths saved as REDACTED"),
    ("--match-headers", "vcr_match_headers", "header names that must also match"),
)


def add_confdir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--confdir", metavar="DIR",
        help="mitmproxy's configuration folder, where its CA lives (default ~/.mitmproxy; "
             "--set confdir=DIR works too)",
    )
    parser.add_argument(
        "--set", dest="settings", action="append", default=[], type=_setting, metavar="NAME=VALUE",
        help="any mitmproxy or addon option, passed on as is (repeat for list options)",
    )


def add_proxy_arguments(parser: argparse.ArgumentParser) -> None:
    from llmvcr.modes import Mode

    parser.add_argument("--mode", choices=[m.value for m in Mode],
                        help="cassette mode (default record_once)")
    parser.add_argument("--cassette", type=_cassette_name, metavar="NAME", action="append",
                        help="cassette for requests that pick none (default: default); `run` "
                             "takes several (strict runs expect a request for each)")
    parser.add_argument("--dir", metavar="DIR", help="cassette folder (default ./cassettes)")
    parser.add_argument("--latency", type=_latency, metavar="L",
                        help="replay pace: none (default), recorded, or a factor like 0.5")
    for flag, _, help_text in LIST_FLAGS:
        parser.add_argument(flag, action="append", default=[], metavar="LIST", help=help_text)
    parser.add_argument("--reuse", action="store_true",
                        help="let a recorded interaction answer more than once")
    parser.add_argument("--start-timeout", type=float, default=START_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for the proxy to start (default {START_TIMEOUT:g})")
    add_confdir_argument(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_proxy_arguments(parser)
    parser.add_argument("--port", type=_port, help="proxy port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--strict", action="store_true",
        help=f"exit {STRICT_EXIT} when a request missed its cassette, a recorded interaction "
             "went unused or a --cassette saw no request (if CMD itself succeeded)",
    )
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="run on this running llm-vcr serve (a session of its own) instead "
                             "of a proxy of the run's own")
    parser.add_argument("--auth", metavar="USER:PASS", default=os.environ.get(AUTH_VARIABLE),
                        help=f"the --server's login (default ${AUTH_VARIABLE}, or the serve's "
                             "state file)")
    parser.add_argument("--ca", metavar="FILE",
                        help="the --server's CA certificate (a serve on another machine)")
    parser.add_argument(
        "--proxy-localhost", action="store_true",
        help="send localhost traffic through the proxy too (no NO_PROXY): to record a local "
             "model server",
    )
    parser.add_argument(
        "--isolate", action="store_true",
        help="run CMD where the only way out is the proxy (Linux network namespace): what "
             "would bypass it fails at once and is named in one line",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_proxy_arguments(parser)
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 8080),
                        metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:8080)")
    access = parser.add_mutually_exclusive_group()
    access.add_argument(
        "--auth", type=_auth, metavar="USER:PASS", default=os.environ.get(AUTH_VARIABLE),
        help="require these proxy credentials (needed beyond loopback); clients then pick "
             f"cassettes with the X-VCR-Cassette header. Default: ${AUTH_VARIABLE}, which "
             "keeps the password off the command line (`ps` shows every command line)",
    )
    access.add_argument("--open", action="store_true",
                        help="listen beyond loopback without credentials (anyone can relay)")


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    from llmvcr.commands import session

    parser.add_argument("--port", type=_port,
                        help="a proxy on 127.0.0.1:PORT instead of the running serve")
    parser.add_argument("--proxy-localhost", action="store_true",
                        help="no NO_PROXY: localhost traffic goes through the proxy too")
    parser.add_argument("--no-session", action="store_true",
                        help="no session of its own: the proxy's default session")
    parser.add_argument("--auth", metavar="USER:PASS", default=os.environ.get(AUTH_VARIABLE),
                        help=f"the proxy's login (default ${AUTH_VARIABLE}, or the serve's)")
    session.add_open_arguments(parser)
    add_confdir_argument(parser)


def add_fmt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit non-zero if a file is not canonical")
    add_paths_argument(parser)


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="cassette files or folders")


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", action="store_true", help="show raw headers and bodies too")
    add_paths_argument(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-vcr",
        description="Record and replay LLM API traffic as go-vcr cassettes, through mitmproxy.",
    )
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    for command in subcommands():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """argparse, except that `run`'s command starts after the first `--` when there is one
    (argparse would otherwise read options meant for the command)."""
    command: list[str] | None = None
    if argv and argv[0] == "run" and "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    args = build_parser().parse_args(argv)
    if command is not None:
        args.command = command
    return args


# -- from arguments to mitmdump options ---------------------------------------------------------


def confdir_of(args: argparse.Namespace) -> Path:
    """The confdir: --confdir, else the last --set confdir=..., else mitmproxy's default."""
    from llmvcr.launcher import confdir_path

    value = args.confdir
    if value is None:
        for setting in args.settings:
            name, _, given = setting.partition("=")
            if name == "confdir":
                value = given
    return confdir_path(value)


def mitmdump_settings(args: argparse.Namespace, ours: dict[str, str]) -> list[str]:
    """`--set` arguments for mitmdump: `ours` (scalars), then the options from the flags, then the
    user's `--set` (which win over a scalar of ours or of a flag: mitmproxy refuses two values
    for a scalar). List flags add to the user's values."""
    from pathlib import Path

    scalars = dict(ours)
    if getattr(args, "mode", None):
        scalars["vcr_mode"] = args.mode
    if getattr(args, "cassette", None):
        scalars["vcr_cassette"] = args.cassette[0]
    if getattr(args, "dir", None):
        scalars["vcr_dir"] = str(Path(args.dir).expanduser().absolute())
    if getattr(args, "latency", None):
        scalars["vcr_latency"] = args.latency
    if getattr(args, "reuse", False):
        scalars["vcr_reuse"] = "true"
    # confdir is always ours: confdir_of() already took the user's value into account.
    user_names = {setting.partition("=")[0] for setting in args.settings} - {"confdir"}
    result = [f"{name}={value}" for name, value in scalars.items() if name not in user_names]
    for flag, option, _ in LIST_FLAGS:
        for given in getattr(args, flag[2:].replace("-", "_"), None) or ():
            result.extend(f"{option}={item.strip()}" for item in given.split(",") if item.strip())
    result.extend(s for s in args.settings if s.partition("=")[0] != "confdir")
    return [part for setting in result for part in ("--set", setting)]


def mitmdump_program() -> list[str]:
    """mitmdump with the addon script: LaunchError when either is missing."""
    from llmvcr.launcher import addon_script, find_mitmdump

    return [str(find_mitmdump()), "-s", str(addon_script())]


def listen_args(host: str, port: int) -> list[str]:
    return ["--listen-host", host, "--listen-port", str(port)]


# -- signals -------------------------------------------------------------------------------------


class SignalRelay:
    """While active, SIGINT, SIGTERM, SIGHUP and SIGQUIT do not stop llm-vcr: they are counted and
    handed to `target` (which forwards them), so llm-vcr can always stop the proxy cleanly."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def __init__(self) -> None:
        self.received: list[int] = []
        self.target: Callable[[int], None] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalRelay:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if self.target is not None:
            self.target(signum)


# -- serve, env, ca ------------------------------------------------------------------------------


def serve_command(args: argparse.Namespace) -> int:
    """Run the proxy until Ctrl-C/SIGTERM; print the client's export lines; keep a state file."""
    import time

    from llmvcr import launcher
    from llmvcr.launcher import LaunchError

    host, port = args.listen
    if not launcher.is_loopback(host) and not (args.auth or args.open):
        shown = host or "every interface"
        raise LaunchError(
            f"refusing to listen on {shown} without --auth USER:PASS (or --open): an open "
            "intercepting proxy relays traffic for anyone who can reach it", 2,
        )
    program = mitmdump_program()
    confdir = confdir_of(args)
    if port:
        launcher.check_port_free(host, port)
    launcher.ensure_ca(confdir)
    ours = {"confdir": str(confdir)}
    password_file = launcher.write_proxy_password(confdir, args.auth) if args.auth else None
    if password_file is not None:
        ours["proxyauth"] = f"@{password_file}"  # never the password itself: `ps` shows argv
    argv = [*program, *listen_args(host, port), *mitmdump_settings(args, ours)]
    proxy = launcher.ProxyProcess(argv, sys.stderr)
    try:
        with SignalRelay() as relay:
            proxy.start()
            port = proxy.wait_ready(args.start_timeout, cancelled=lambda: bool(relay.received))
            relay.target = lambda signum: proxy.signal(signal.SIGINT)
            if relay.received:
                proxy.signal(signal.SIGINT)
            bundle = launcher.write_ca_bundle(confdir)
            url = launcher.proxy_url(host, port, args.auth)
            launcher.write_serve_state(confdir, {
                "pid": os.getpid(),
                "proxy_pid": proxy.pid,
                "listen": f"{host}:{port}",
                "proxy_url": url,
                "ca_cert": str(confdir / launcher.CA_CERT_NAME),
                "ca_bundle": str(bundle),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })
            _print_serve_banner(host, url, bundle, confdir, args)
            code = proxy.wait()
        return code
    finally:
        proxy.stop()
        launcher.remove_serve_state(confdir, os.getpid())
        if password_file is not None:
            launcher.remove_proxy_password(password_file)


def _print_serve_banner(
    host: str, url: str, bundle: Path, confdir: Path, args: argparse.Namespace
) -> None:
    from llmvcr import launcher

    changes = launcher.client_environment(url, confdir, bundle, os.environ)
    lines = [f"# llm-vcr serve: proxy {url}; Ctrl-C stops it.",
             "# For a client shell (or: eval \"$(llm-vcr env)\"):",
             *launcher.export_lines(changes)]
    if args.auth:
        lines.append("# Pick a cassette per request with the header X-VCR-Cassette: NAME")
    else:
        lines.append("# Pick a cassette per request with the header X-VCR-Cassette: NAME, or per "
                     "client with the proxy user name: http://NAME@host:port")
    if not launcher.is_loopback(host):
        lines.append(f"# Other machines: use this machine's address in the proxy URL and trust "
                     f"the CA {confdir / launcher.CA_CERT_NAME}")
        if args.open:
            print("llm-vcr: warning: no --auth: anyone who can reach this port can use the proxy",
                  file=sys.stderr)
    print("\n".join(lines), flush=True)


def env_command(args: argparse.Namespace) -> int:
    """Print export lines for the running serve, or for a proxy on 127.0.0.1:PORT: by default
    for a new session of their own (each shell that evals them is one run), with --no-session
    for the proxy's default session."""
    from pathlib import Path

    from llmvcr import launcher
    from llmvcr.commands import session
    from llmvcr.session_client import ControlError, Proxy, open_session, session_url

    confdir = confdir_of(args)
    if args.port:
        launcher.ensure_ca(confdir)  # the bundle needs it (a proxy on that port may not be ours)
        url, bundle = launcher.proxy_url("127.0.0.1", args.port), launcher.write_ca_bundle(confdir)
        proxy = Proxy("127.0.0.1", args.port, args.auth)
    else:
        state = launcher.read_serve_state(confdir)
        url, bundle = str(state["proxy_url"]), Path(state["ca_bundle"])
        args.server, args.ca = None, None
        proxy, _ = session.proxy_of(args)
    opened_id = None
    if not args.no_session:
        fields = session.settings(args, strict=False)
        fields["port"] = True  # Java carries no proxy password: a session port reaches it too
        try:
            opened = open_session(proxy, fields)
        except ControlError as e:
            raise launcher.LaunchError(str(e)) from None
        url, opened_id = session_url(proxy, opened), str(opened["session"])
    changes = launcher.client_environment(url, confdir, bundle, os.environ, args.proxy_localhost)
    if opened_id is not None:
        changes[session.SESSION_VARIABLE] = opened_id
    print("\n".join(launcher.export_lines(changes)))
    return 0


def ca_command(args: argparse.Namespace) -> int:
    """Print the CA certificate path and the combined bundle path, creating them if needed
    (the CA the way mitmdump would on its first start, without starting a proxy)."""
    from llmvcr import launcher

    confdir = confdir_of(args)
    cert = launcher.ensure_ca(confdir)
    bundle = launcher.write_ca_bundle(confdir)
    print(f"CA certificate: {cert}")
    print(f"CA bundle (system CAs + this CA): {bundle}")
    return 0


def fmt_command(args: argparse.Namespace) -> int:
    from llmvcr.commands.fmt import fmt_paths

    return int(fmt_paths(args.paths, args.check) or 0)


def show_command(args: argparse.Namespace) -> int:
    from llmvcr.commands.show import show_paths

    return show_paths(args.paths, raw=args.raw)


def check_command(args: argparse.Namespace) -> int:
    from llmvcr.commands.check import check_paths

    return check_paths(args.paths)


def redact_command(args: argparse.Namespace) -> int:
    from llmvcr.commands.redact import redact_paths

    return redact_paths(args.paths)


# -- entry -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The console script: parse, run the subcommand, turn known failures into one line."""
    if sys.version_info < MIN_PYTHON:
        version = ".".join(str(part) for part in sys.version_info[:3])
        print(f"llm-vcr: needs Python >= 3.12, but this is Python {version} ({sys.executable}); "
              "run scripts/bootstrap, or install llm-vcr with a newer Python", file=sys.stderr)
        return 1
    from llmvcr.launcher import LaunchError

    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
        return args.handler(args)
    except LaunchError as e:
        print(f"llm-vcr: {e.message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Reader went away (`llm-vcr env | head -1`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
