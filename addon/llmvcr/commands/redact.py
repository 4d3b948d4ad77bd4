"""`llm-vcr redact`: apply the recording rules to cassettes that already exist.

The rules are `redact.Redactor`'s defaults, the ones every recording gets: only the allow-listed
headers stay (`DEFAULT_KEEP_HEADERS`, in Go's canonical spelling), secret query parameters and
form fields keep their name but get the value `REDACTED`, a password in a URL likewise; in JSON
bodies (plain or an event stream's `data:` lines) the values of secret fields and the secrets of
URLs get `REDACTED`, and so do multipart parts named like secrets (no configured JSON paths here:
`llm-vcr check` reports what else is left).

A file with nothing to redact is not touched (not even rewritten: a second run changes nothing and
leaves the mtime as it was). A changed file is written in its own layout (indent, key shape)
through a temp file in its folder, fsynced, then renamed over it, so a reader sees the old file or
the new one. The read, the redaction and the rename happen under the file's lock
(`locking.rewrite_cassette`): beside a recording proxy, `redact` waits its turn, and the proxy's
interactions land before the redaction (and get redacted) or after it, never lost.
What was removed is printed by name, never by value (one line per interaction): header and
parameter names, the names of url-encoded form fields; a JSON or multipart body is only said to
have changed ("redacted secret fields in the request body"), as no text of it is printed.

    cassettes/x.yaml: interaction 0: removed request header Authorization; redacted query
    parameter key

Missing paths and files that do not load or cannot be rewritten are reported the
`commands.files` way; the other files are still redacted.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote_plus, urlsplit

from ..cassette import (
    Cassette,
    Headers,
    Interaction,
    Request,
    Response,
    canonical_header_name,
    dumps,
    loads,
)
from ..headers import is_form
from ..locking import rewrite_cassette
from ..redact import Redactor
from .files import for_each_cassette, print_problems


def _changed_params(before: str, after: str) -> list[str]:
    """Names of the query (or form body) parameters whose text differs; the redactor keeps the
    parameters where they were, so position `i` before is position `i` after."""
    names: list[str] = []
    for old, new in zip(before.split("&"), after.split("&"), strict=False):
        if old != new:
            names.append(unquote_plus(old.partition("=")[0]))
    return names


def _query(url: str) -> str:
    return url.partition("?")[2].partition("#")[0]


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _header_changes(section: str, what: str, before: Headers, after: Headers) -> list[str]:
    changes: list[str] = []
    for name in before:
        canonical = canonical_header_name(name)
        if canonical not in after:
            changes.append(f"removed {section} {what} {name}")
        elif canonical != name:
            changes.append(f"renamed {section} {what} {name} to {canonical}")
    return changes


def _request_changes(before: Request, after: Request) -> list[str]:
    changes = _header_changes("request", "header", before.headers, after.headers)
    changes += _header_changes("request", "trailer", before.trailer, after.trailer)
    params = _changed_params(_query(before.url), _query(after.url))
    params += _changed_params(_query(before.request_uri), _query(after.request_uri))
    params += [name for name, values in before.form.items() if after.form.get(name) != values]
    if params:
        unique = list(dict.fromkeys(params))
        noun = "parameter" if len(unique) == 1 else "parameters"
        changes.append(f"redacted query {noun} {', '.join(unique)}")
    if before.body != after.body:
        # Only a url-encoded form is split into fields (and its field names printed): any other
        # body (JSON, multipart) may hold anything where a form's `=` and `&` would be.
        fields = _changed_params(before.body.decode("latin-1"), after.body.decode("latin-1")
                                 ) if is_form(before.headers) else []
        changes.append(f"redacted form fields {', '.join(fields)} in the body" if fields
                       else "redacted secret fields in the request body")
    if _password(before.url) != _password(after.url) or (
        _password(before.request_uri) != _password(after.request_uri)
    ):
        changes.append("redacted the password in the url")
    if not changes and before != after:
        changes.append("redacted the request")
    return changes


def _response_changes(before: Response, after: Response) -> list[str]:
    changes = _header_changes("response", "header", before.headers, after.headers)
    changes += _header_changes("response", "trailer", before.trailer, after.trailer)
    if before.body != after.body:
        changes.append("redacted secret fields in the response body")
    if not changes and before != after:
        changes.append("redacted the response")
    return changes


def redact_cassette(cassette: Cassette, redactor: Redactor | None = None
                    ) -> tuple[Cassette, list[tuple[int, list[str]]]]:
    """The cassette with the recording rules applied, and for each interaction that changed, its
    position and what was removed (names only). Does not modify `cassette`."""
    redactor = redactor or Redactor()
    interactions: list[Interaction] = []
    report: list[tuple[int, list[str]]] = []
    for position, interaction in enumerate(cassette.interactions):
        request = redactor.request(interaction.request)
        response = redactor.response(interaction.response)
        changes = _request_changes(interaction.request, request)
        changes += _response_changes(interaction.response, response)
        if changes:
            report.append((position, changes))
            interactions.append(Interaction(request, response, interaction.id))
        else:
            interactions.append(interaction)
    return dataclasses.replace(cassette, interactions=interactions), report


def redact_file(path: Path, redactor: Redactor | None = None) -> list[tuple[int, list[str]]]:
    """Redact one cassette file in place (only written when something changed); what changed.

    Holds the file's lock from the read to the rename, so a proxy appending meanwhile waits and
    loses nothing. Raises CassetteError for a file that does not load (or that a writer ignoring
    the lock keeps changing), and OSError when it cannot be read or written.
    """
    name = str(path)
    report: list[tuple[int, list[str]]] = []

    def change(data: bytes) -> bytes | None:
        nonlocal report
        cassette, report = redact_cassette(loads(data, name), redactor)
        return dumps(cassette) if report else None

    rewrite_cassette(path, change)
    return report


def redact_paths(paths: Sequence[str], out: TextIO = sys.stdout, err: TextIO | None = None) -> int:
    """Redact every cassette under `paths` (files, or folders searched for `*.yaml`).

    Prints one line per changed interaction and a summary on `out`; problems on `err` (default
    stderr) as `llm-vcr: path:line: problem`. 1 when a path is missing or a file could not be
    handled, else 0.
    """
    err = err if err is not None else sys.stderr
    changed = 0

    def redact(path: Path) -> None:
        nonlocal changed
        report = redact_file(path)
        if report:
            changed += 1
        for position, changes in report:
            out.write(f"{path}: interaction {position}: {'; '.join(changes)}\n")

    outcome = for_each_cassette(paths, redact, print_problems(err), writes=True)
    failed = outcome.failed
    unchanged = outcome.files - changed - failed
    summary = f"redacted {changed} cassette{'' if changed == 1 else 's'}, {unchanged} unchanged"
    out.write(summary + (f", {failed} failed\n" if failed else "\n"))
    return outcome.status
