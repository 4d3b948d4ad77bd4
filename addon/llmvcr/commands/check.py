"""`llm-vcr check`: is a cassette safe to commit and will go-vcr load it?

Each problem is one line `file:line: error: ...` or `file:line: warning: ...` (greppable; the line
is left out when unknown). Errors (exit 1): a file go-vcr would not load (the cassette reader's
own checks: types, durations, version) and secrets. Warnings (exit 0): a `content_length` that
does not fit its body, a status line that does not fit its code, headers outside the allow-list,
and a `chunks` key the reader had to ignore. Formatting is not a problem here: a file go-vcr
loads is valid whatever YAML library wrote it (quoting style, block or flow, indentation);
`llm-vcr fmt --check` is the tool that asks for the canonical layout.

Secrets are named, never shown: `cassettes/x.yaml:14: error: secret: Authorization header (Bearer
token, 51 chars)`. The names and patterns are `secret_names`'. Looked for:

- headers whose names carry credentials (`is_secret_header`) with a value other than `REDACTED`;
- credential-shaped values anywhere (`secret_kinds`: bearer tokens, `sk-...` keys, Google `AIza...`
  keys and OAuth `ya29.` tokens, AWS access key ids, JWTs);
- secret query parameters (`is_secret_query_param`) whose value is not empty or `REDACTED`, and a
  password, in the URL, in url-encoded form bodies and `form` fields;
- in JSON bodies, requests and responses alike, plain or each `data:` line of an event stream: the
  non-empty string value (not `REDACTED`) of a key for which `is_secret_field` holds (`api_key`,
  `client_secret`, `aws_secret_access_key` ...; never `max_tokens`, never a number), at any
  depth; and secret query parameters or a password in any URL inside a JSON string
  (`"url": "https://...?sig=..."`);
- `multipart/form-data` parts named like a secret (`is_secret_field` or a secret query parameter
  name) with content other than `REDACTED`.

These are what the recorder (`redact.Redactor`) scrubs by default (JSON in requests and
responses, forms and multipart parts in requests), so a fresh recording passes; credential-shaped
values inside other text are only reported.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote_plus, urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .. import multipart
from ..cassette import CassetteError, CassetteWarning, Headers, Interaction, loads
from ..headers import first_header, is_event_stream, is_form, is_multipart
from ..redact import DEFAULT_KEEP_HEADERS, redact_url, urls_in_text
from ..secret_names import (
    REDACTED,
    is_secret_field,
    is_secret_header,
    is_secret_query_param,
    secret_kinds,
)
from ..sse import data_values, looks_like_sse
from .files import Problem, cannot_read, for_each_cassette

try:
    from yaml import CBaseLoader as _YamlLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import BaseLoader as _YamlLoader  # type: ignore[assignment]

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One problem in one file."""

    path: str
    line: int  # 0 when unknown
    severity: str  # ERROR or WARNING
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


def _value_kind(value: str) -> str:
    """What a secret header value looks like, without showing it."""
    scheme = value.split(" ", 1)[0].lower()
    if scheme == "bearer":
        return "Bearer token"
    if scheme == "basic":
        return "Basic credentials"
    for kind, _, _ in secret_kinds(value):
        return kind
    return "value"


def _chars(n: int) -> str:
    return f"{n} char" + ("" if n == 1 else "s")


# ---- where things are in the file ------------------------------------------------------------


def _entries(node: Node | None) -> dict[str, tuple[Node, Node]]:
    """A mapping node's entries by key text (first one wins, as the reader refuses duplicates)."""
    result: dict[str, tuple[Node, Node]] = {}
    if type(node) is MappingNode:
        for key, value in node.value:
            if type(key) is ScalarNode:
                result.setdefault(key.value, (key, value))
    return result


class _Lines:
    """Line numbers (1-based) of an interaction's keys and values, from the composed YAML."""

    def __init__(self, node: Node | None) -> None:
        self.node = node
        self.start = node.start_mark.line + 1 if node is not None else 0

    def entry(self, *keys: str) -> tuple[Node, Node] | None:
        node: Node | None = self.node
        found = None
        for key in keys:
            found = _entries(node).get(key)
            if found is None:
                return None
            node = found[1]
        return found

    def key(self, *keys: str) -> int:
        """The line of the key at `keys` (e.g. request, headers, Authorization)."""
        found = self.entry(*keys)
        return found[0].start_mark.line + 1 if found else self.start

    def item(self, index: int, *keys: str) -> int:
        """The line of item `index` of the list at `keys` (one header value)."""
        found = self.entry(*keys)
        if found and type(found[1]) is SequenceNode and index < len(found[1].value):
            return found[1].value[index].start_mark.line + 1
        return self.key(*keys)

    def text_offset(self, offset: int, text: str, *keys: str) -> int:
        """The line holding character `offset` of the string value at `keys`: a literal block
        (`|`) has one line per line of text, starting below its key; other styles fit on one."""
        found = self.entry(*keys)
        if found is None:
            return self.start
        value = found[1]
        line = value.start_mark.line + 1
        if type(value) is ScalarNode and value.style == "|" and value.tag.endswith(":str"):
            return line + 1 + text.count("\n", 0, offset)
        return line


def _interaction_lines(data: bytes, count: int) -> list[_Lines]:
    """One `_Lines` per interaction, in file order (without line numbers if composing fails)."""
    try:
        root = yaml.compose(data, Loader=_YamlLoader)
    except yaml.YAMLError:
        root = None
    found = _entries(root).get("interactions")
    items = found[1].value if found and type(found[1]) is SequenceNode else []
    lines = [_Lines(node) for node in items[:count]]
    return lines + [_Lines(None) for _ in range(count - len(lines))]


# ---- the checks ------------------------------------------------------------------------------


class _Report:
    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: set[Finding] = set()

    def error(self, line: int, message: str) -> None:
        self.findings.add(Finding(self.path, line, ERROR, message))

    def warning(self, line: int, message: str) -> None:
        self.findings.add(Finding(self.path, line, WARNING, message))


def _text(body: bytes) -> tuple[str, bool]:
    """The body as text for searching, and whether it was UTF-8 (else latin-1, byte per char)."""
    try:
        return body.decode("utf-8"), True
    except UnicodeDecodeError:
        return body.decode("latin-1"), False


def _check_headers(report: _Report, lines: _Lines, n: int, section: str, field: str,
                   headers: Headers) -> None:
    keep = {name.lower() for name in DEFAULT_KEEP_HEADERS}
    what = "header" if field == "headers" else "trailer"
    for name, values in headers.items():
        if is_secret_header(name) and any(value not in ("", REDACTED) for value in values):
            value = next(value for value in values if value not in ("", REDACTED))
            report.error(
                lines.key(section, field, name),
                f"secret: {name} {what} ({_value_kind(value)}, {_chars(len(value))})",
            )
            continue
        if name.lower() not in keep:
            report.warning(
                lines.key(section, field, name),
                f"interaction {n}: {section} {what} {name} is outside the allow-list "
                "(llm-vcr redact removes it)",
            )
        for index, value in enumerate(values):
            for kind, _, length in secret_kinds(value):
                report.error(lines.item(index, section, field, name),
                             f"secret: {kind} in {section} {what} {name} ({_chars(length)})")


def _secret_params(query: str) -> Iterator[tuple[str, int]]:
    """Secret parameters of a query (or form body) whose value is not REDACTED: (name, length)."""
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and value not in ("", REDACTED) and is_secret_query_param(unquote_plus(name)):
            yield unquote_plus(name), len(value)


def _check_url(report: _Report, line: int, what: str, url: str) -> None:
    for secret, length in _url_secrets(url):
        report.error(line, f"secret: {secret} in {what} ({_chars(length)})")
    for kind, _, length in secret_kinds(redact_url(url)):
        report.error(line, f"secret: {kind} in {what} ({_chars(length)})")


_NOT_JSON = object()


def _json_or_none(text: str) -> object:
    """The JSON object or array `text` holds, or _NOT_JSON."""
    if text.lstrip()[:1] not in ("{", "["):
        return _NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _json_documents(text: str, headers: Headers) -> Iterator[tuple[object, int]]:
    """The JSON documents of a body and where each starts in `text`: the whole body when it is
    JSON, else each JSON `data:` line of a server-sent-events body."""
    whole = _json_or_none(text)
    if whole is not _NOT_JSON:
        yield whole, 0
        return
    if not is_event_stream(headers) and not looks_like_sse(text):
        return
    for start, data in data_values(text):
        value = _json_or_none(data)
        if value is not _NOT_JSON:
            yield value, start


def _url_secrets(url: str) -> Iterator[tuple[str, int]]:
    """What is secret in one URL: ("query parameter NAME" or "password", length of the value)."""
    query = urlsplit(url).query if "://" in url else url.partition("?")[2]
    for name, length in _secret_params(query.partition("#")[0]):
        yield f"query parameter {name}", length
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password not in (None, "", REDACTED):
        yield "password", len(password or "")


def _json_secrets(value: object) -> Iterator[tuple[str, str, int]]:
    """The secrets left in a decoded JSON document: (what, field name to find it by, length).

    A string under a key for which `is_secret_field` holds (non-empty, not `REDACTED`), and
    secret query values or a password in a URL inside any string (`redact.scrub_json`'s rule).
    """
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, key = stack.pop()
        if isinstance(item, dict):
            for name, child in item.items():
                if isinstance(child, str) and child not in ("", REDACTED) and is_secret_field(name):
                    yield f"JSON field {name}", name, len(child)
                else:
                    stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, key) for child in item)
        elif isinstance(item, str) and "://" in item:
            for url in urls_in_text(item):
                for what, length in _url_secrets(url):
                    yield f"{what} in a URL", key, length


def _multipart_secrets(body: bytes, headers: Headers) -> Iterator[tuple[str, int, int]]:
    """Multipart parts named like secrets with content: (name, offset of the content, length)."""
    if not body.startswith(b"--") and not is_multipart(headers):
        return
    boundary = multipart.boundary(body, first_header(headers, "Content-Type"))
    for part in (multipart.parts(body, boundary) or []) if boundary is not None else []:
        name = multipart.part_name(part.head)
        content = body[part.start : part.end]
        if name is None or content in (b"", REDACTED.encode()):
            continue
        if is_secret_field(name) or is_secret_query_param(name):
            yield name, part.start, part.end - part.start


def _check_body(report: _Report, lines: _Lines, section: str, body: bytes,
                headers: Headers) -> None:
    text, utf8 = _text(body)

    def line_at(offset: int) -> int:
        if utf8 and offset >= 0:
            return lines.text_offset(offset, text, section, "body")
        return lines.key(section, "body")

    if is_form(headers):
        for name, length in _secret_params(text):
            report.error(lines.key(section, "body"),
                         f"secret: form field {name} in {section} body ({_chars(length)})")
    for document, start in _json_documents(text, headers):
        for what, name, length in _json_secrets(document):
            where = text.find(f'"{name}"', start) if name else start
            report.error(line_at(where if where >= 0 else start),
                         f"secret: {what} in {section} body ({_chars(length)})")
    for name, start, length in _multipart_secrets(body, headers):
        offset = len(body[:start].decode("utf-8", "replace")) if utf8 else -1
        report.error(line_at(offset),
                     f"secret: multipart field {name} in {section} body ({_chars(length)})")
    for kind, offset, length in secret_kinds(text):
        line = lines.text_offset(offset, text, section, "body") if utf8 else lines.key(
            section, "body")
        report.error(line, f"secret: {kind} in {section} body ({_chars(length)})")


def _check_interaction(report: _Report, lines: _Lines, n: int, interaction: Interaction) -> None:
    req, resp = interaction.request, interaction.response
    for section, message in (("request", req), ("response", resp)):
        _check_headers(report, lines, n, section, "headers", message.headers)
        _check_headers(report, lines, n, section, "trailer", message.trailer)
    _check_url(report, lines.key("request", "url"), "url", req.url)
    if req.request_uri:
        _check_url(report, lines.key("request", "request_uri"), "request_uri", req.request_uri)
    for kind, _, length in secret_kinds(req.host):
        report.error(lines.key("request", "host"), f"secret: {kind} in host ({_chars(length)})")
    for name, values in req.form.items():
        line = lines.key("request", "form", name)
        if is_secret_query_param(name):
            for value in values:
                if value not in ("", REDACTED):
                    report.error(line, f"secret: form field {name} ({_chars(len(value))})")
            continue
        for index, value in enumerate(values):
            for kind, _, length in secret_kinds(value):
                report.error(lines.item(index, "request", "form", name),
                             f"secret: {kind} in form field {name} ({_chars(length)})")
    _check_body(report, lines, "request", req.body, req.headers)
    _check_body(report, lines, "response", resp.body, resp.headers)

    if req.content_length != len(req.body):
        report.warning(
            lines.key("request", "content_length"),
            f"interaction {n}: request content_length {req.content_length} does not match the "
            f"body ({len(req.body)} bytes)",
        )
    if resp.content_length not in (-1, len(resp.body)) and not resp.uncompressed:
        report.warning(
            lines.key("response", "content_length"),
            f"interaction {n}: response content_length {resp.content_length} does not match the "
            f"body ({len(resp.body)} bytes)",
        )
    if resp.status.split(" ", 1)[0] != str(resp.code):
        report.warning(lines.key("response", "status"),
                       f"interaction {n}: status {resp.status!r} does not match code {resp.code}")


_WARNING_INTERACTION = re.compile(r"interactions\[(\d+)\]\.(request|response)\.(\w+)")


def check_bytes(data: bytes, path: str) -> list[Finding]:
    """Every problem of the cassette `data` (read from `path`), sorted by line."""
    report = _Report(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CassetteWarning)
        try:
            cassette = loads(data, path)
        except CassetteError as e:
            report.error(e.line or 0, e.message)
            return sorted(report.findings)
    all_lines = _interaction_lines(data, len(cassette.interactions))
    for warning in caught:
        if not issubclass(warning.category, CassetteWarning):
            continue
        message = str(warning.message).removeprefix(f"{path}: ")
        found = _WARNING_INTERACTION.search(message)
        line = 0
        if found and int(found.group(1)) < len(all_lines):
            line = all_lines[int(found.group(1))].key(found.group(2), found.group(3))
        report.warning(line, message)
    for n, (interaction, lines) in enumerate(zip(cassette.interactions, all_lines, strict=True)):
        _check_interaction(report, lines, n, interaction)
    return sorted(report.findings)


def check_file(path: str | Path) -> list[Finding]:
    """Every problem of the cassette file at `path`."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return [Finding(name, 0, ERROR, cannot_read(e))]
    return check_bytes(data, name)


def check_paths(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Check every cassette under `paths` (files, or folders searched for `*.yaml`); print one line
    per problem and a summary. 1 when there is an error (or a path does not exist), else 0."""
    findings: list[Finding] = []

    def check(path: Path) -> None:
        findings.extend(check_bytes(path.read_bytes(), str(path)))

    def problem(problem: Problem) -> None:
        findings.append(Finding(problem.path, problem.line, ERROR, problem.message))

    files = for_each_cassette(paths, check, problem, writes=False).files
    for finding in findings:
        out.write(f"{finding}\n")
    errors = sum(finding.severity == ERROR for finding in findings)
    warned = len(findings) - errors
    out.write(f"checked {files} cassette{'' if files == 1 else 's'}: "
              f"{errors} error{'' if errors == 1 else 's'}, "
              f"{warned} warning{'' if warned == 1 else 's'}\n")
    return 1 if errors else 0
