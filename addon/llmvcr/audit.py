"""`llm-vcr check`: is a cassette safe to commit and will go-vcr load it?

Each problem is one line `file:line: error: ...` or `file:line: warning: ...` (greppable; the line
is left out when unknown). Errors (exit 1): a file go-vcr would not load (the cassette reader's
own checks: types, durations, version) and secrets. Warnings (exit 0): a `content_length` that
does not fit its body, a status line that does not fit its code, headers outside the allow-list,
a `chunks` key the reader had to ignore, and a file not in the canonical layout (what
`llm-vcr fmt --check` flags).

Secrets are named, never shown: `cassettes/x.yaml:14: error: secret: Authorization header (Bearer
token, 51 chars)`. Looked for: headers whose names carry credentials, bearer tokens anywhere,
`sk-...` keys, Google `AIza...` keys and OAuth `ya29.` tokens, AWS access key ids, JWTs, secret
query parameters and form fields (the names in `redact.SECRET_QUERY_PARAMS`) whose value is not
`REDACTED`, and a password in a URL.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

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

from .cassette import CassetteError, CassetteWarning, Headers, Interaction, dumps, loads
from .paths import cassette_files
from .redact import DEFAULT_KEEP_HEADERS, REDACTED, SECRET_QUERY_PARAMS, redact_url
from .transcript import content_type

try:
    from yaml import CBaseLoader as _YamlLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import BaseLoader as _YamlLoader  # type: ignore[assignment]

ERROR = "error"
WARNING = "warning"

# Header names that carry credentials (lower case); any name containing one of
# _SECRET_NAME_PARTS counts too (`X-Custom-Api-Key`, `X-Session-Token` ...).
SECRET_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "x-amz-credential",
        "x-amz-signature",
        "ocp-apim-subscription-key",
        "x-functions-key",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)
_SECRET_NAME_PARTS = ("auth", "key", "token", "secret", "cookie", "session", "password",
                      "signature", "credential")

# Credential-shaped values, wherever they appear. The look-behinds keep `sk-` and `AIza` from
# matching inside ordinary words (`risk-...`, `task-...`); a bearer token must hold a digit, so
# prose ("Bearer authentication") is not flagged.
SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Bearer token", re.compile(r"\bBearer\s+(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*")),
    ("sk- key", re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}")),
    ("Google API key", re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}")),
    ("Google OAuth token", re.compile(r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}")),
    ("AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    ("JWT", re.compile(r"(?<![A-Za-z0-9_-])eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}", re.ASCII)),
)
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


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


def is_secret_header(name: str) -> bool:
    """Does a header of this name carry credentials?"""
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(part in lowered for part in _SECRET_NAME_PARTS)


def secret_kinds(text: str) -> Iterator[tuple[str, int, int]]:
    """The credential-shaped values in `text`: (kind, start offset, length)."""
    for kind, pattern in SECRET_VALUES:
        for match in pattern.finditer(text):
            yield kind, match.start(), match.end() - match.start()


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
        if eq and value not in ("", REDACTED) and unquote_plus(name).lower() in SECRET_QUERY_PARAMS:
            yield unquote_plus(name), len(value)


def _check_url(report: _Report, line: int, what: str, url: str) -> None:
    query = urlsplit(url).query if "://" in url else url.partition("?")[2]
    for name, length in _secret_params(query.partition("#")[0]):
        report.error(line, f"secret: query parameter {name} in {what} ({_chars(length)})")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password not in (None, "", REDACTED):
        report.error(line, f"secret: password in {what} ({_chars(len(password or ''))})")
    for kind, _, length in secret_kinds(redact_url(url)):
        report.error(line, f"secret: {kind} in {what} ({_chars(length)})")


def _check_body(report: _Report, lines: _Lines, section: str, body: bytes,
                headers: Headers) -> None:
    text, utf8 = _text(body)
    if section == "request" and content_type(headers) == _FORM_CONTENT_TYPE:
        for name, length in _secret_params(text):
            report.error(lines.key(section, "body"),
                         f"secret: form field {name} in request body ({_chars(length)})")
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
        if name.lower() in SECRET_QUERY_PARAMS:
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


def _first_difference(a: bytes, b: bytes) -> int:
    """The 1-based line where two texts first differ."""
    for number, (left, right) in enumerate(zip(a.split(b"\n"), b.split(b"\n"), strict=False), 1):
        if left != right:
            return number
    return min(a.count(b"\n"), b.count(b"\n")) + 1


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
    canonical = dumps(cassette)
    if canonical != data:
        report.warning(
            _first_difference(data, canonical),
            "not in the canonical layout (llm-vcr fmt would rewrite it from this line on)",
        )
    return sorted(report.findings)


def check_file(path: str | Path) -> list[Finding]:
    """Every problem of the cassette file at `path`."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return [Finding(name, 0, ERROR, f"cannot read the cassette: {e.strerror or e}")]
    return check_bytes(data, name)


def check_paths(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Check every cassette under `paths` (files, or folders searched for `*.yaml`); print one line
    per problem and a summary. 1 when there is an error (or a path does not exist), else 0."""
    files, missing = cassette_files(paths)
    findings = [Finding(name, 0, ERROR, "no such file or directory") for name in missing]
    for path in files:
        findings.extend(check_file(path))
    for finding in findings:
        out.write(f"{finding}\n")
    errors = sum(finding.severity == ERROR for finding in findings)
    warned = len(findings) - errors
    out.write(f"checked {len(files)} cassette{'' if len(files) == 1 else 's'}: "
              f"{errors} error{'' if errors == 1 else 's'}, "
              f"{warned} warning{'' if warned == 1 else 's'}\n")
    return 1 if errors else 0
