"""`llm-vcr session open|report|close`: sessions on a running proxy, from the command line.

    eval "$(llm-vcr session open --cassette checkout --mode replay --strict)"
    pytest tests/                     # every request of this shell is in the session
    llm-vcr session close "$LLM_VCR_SESSION" --strict    # its report; exit 3 on a miss/unused

`open` prints the export lines a client shell needs (the proxy variables carrying the session,
the CA bundle, `LLM_VCR_SESSION`); `report` and `close` print the session's JSON report. The
proxy is the running `llm-vcr serve` (its state file), or `--server HOST:PORT` with `--auth`
(default `$LLM_VCR_AUTH`) and `--ca FILE` (the proxy's CA, for a serve on another machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..session_client import ControlError, Proxy, close_session, open_session, report, session_url
from ..sessions import strict_failures

STRICT_EXIT = 3
SESSION_VARIABLE = "LLM_VCR_SESSION"


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="a running proxy (default: the running llm-vcr serve)")
    parser.add_argument("--auth", metavar="USER:PASS", default=os.environ.get("LLM_VCR_AUTH"),
                        help="the proxy's login (default $LLM_VCR_AUTH, or the serve's)")
    parser.add_argument("--ca", metavar="FILE",
                        help="the proxy's CA certificate (a serve on another machine)")


def add_open_arguments(parser: argparse.ArgumentParser) -> None:
    """The session settings `open` and `run --server` take."""
    parser.add_argument("--cassette", action="append", metavar="NAME",
                        help="cassette for requests that name none; repeat to name more (strict "
                             "runs expect a request for each)")
    parser.add_argument("--mode", help="the session's mode (default: the proxy's)")
    parser.add_argument("--reuse", action="store_true", default=None,
                        help="let an interaction answer more than once")
    parser.add_argument("--latency", help="replay pace: none, recorded, or a factor")
    parser.add_argument("--client", metavar="NAME",
                        help="bind this stable client name to the session")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import add_confdir_argument

    actions = parser.add_subparsers(dest="action", required=True, metavar="open|report|close")
    opening = actions.add_parser("open", help="open a session; print its export lines")
    add_open_arguments(opening)
    opening.add_argument("--strict", action="store_true", help="mark the session strict")
    opening.add_argument("--port", action="store_true",
                         help="a proxy port of the session's own (clients that carry nothing "
                              "in the proxy URL, such as Java)")
    for name, help_text in (("report", "print a session's live report"),
                            ("close", "close a session and print its final report")):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("session", nargs="?", default=os.environ.get(SESSION_VARIABLE),
                         help=f"the session id (default ${SESSION_VARIABLE})")
        if name == "close":
            sub.add_argument("--strict", action="store_true",
                             help="exit 3 when a request missed, an interaction went unused or "
                                  "a named cassette saw no request")
    for sub in actions.choices.values():
        add_server_arguments(sub)
        add_confdir_argument(sub)


def proxy_of(args: argparse.Namespace) -> tuple[Proxy, Path | None]:
    """The proxy the arguments name, and its CA bundle when known."""
    from ..cli import confdir_of
    from ..launcher import parse_listen, read_serve_state

    bundle = Path(args.ca) if args.ca else None
    if args.server:
        host, port = parse_listen(args.server)
        if bundle is None:
            from ..launcher import ensure_ca, write_ca_bundle

            confdir = confdir_of(args)
            ensure_ca(confdir)
            bundle = write_ca_bundle(confdir)
        return Proxy(host, port, args.auth), bundle
    state = read_serve_state(confdir_of(args))
    url = urlsplit(state["proxy_url"])
    auth = args.auth
    if auth is None and url.username is not None:
        auth = f"{unquote(url.username)}:{unquote(url.password or '')}"
    return Proxy(url.hostname or "127.0.0.1", url.port or 8080, auth), bundle or Path(
        state["ca_bundle"])


def settings(args: argparse.Namespace, strict: bool) -> dict[str, object]:
    """The control API's `open` fields from `add_open_arguments`' flags (unset: the proxy's)."""
    fields: dict[str, object] = {}
    if args.cassette:
        fields["cassettes"] = list(args.cassette)
    for name in ("mode", "latency", "client"):
        if getattr(args, name, None):
            fields[name] = getattr(args, name)
    if getattr(args, "reuse", None):
        fields["reuse"] = True
    if strict:
        fields["strict"] = True
    if getattr(args, "port", False):
        fields["port"] = True
    return fields


def run(args: argparse.Namespace) -> int:
    from ..cli import confdir_of
    from ..launcher import client_environment, export_lines

    try:
        proxy, bundle = proxy_of(args)
        if args.action == "open":
            opened = open_session(proxy, settings(args, args.strict))
            url = session_url(proxy, opened)
            changes: dict[str, str | None] = {}
            if bundle is not None:  # the lines `llm-vcr env` prints (Node and Java included)
                changes.update(client_environment(url, confdir_of(args), bundle, os.environ))
            changes[SESSION_VARIABLE] = str(opened["session"])
            print("\n".join(export_lines(changes)))
            return 0
        if not args.session:
            print(f"llm-vcr: give a session id (or set {SESSION_VARIABLE})", file=sys.stderr)
            return 2
        if args.action == "report":
            print(json.dumps(report(proxy, args.session), indent=2))
            return 0
        closed = close_session(proxy, args.session)
    except ControlError as e:
        print(f"llm-vcr: {e}", file=sys.stderr)
        return 1
    print(json.dumps(closed, indent=2))
    if args.strict:
        failures = strict_failures(closed)
        for line in failures:
            print(f"llm-vcr: strict: {line}", file=sys.stderr)
        if failures:
            return STRICT_EXIT
    return 0
