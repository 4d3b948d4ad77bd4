"""What mitmproxy's own output may show of a secret: nothing. The rules, as pure functions.

These rules decide what `output_guard` puts in front of mitmdump's printers (`flow_detail`), its
saved flows (`-w`, `save_stream_file`, `hardump`) and every log line. They never decide what a
client or an upstream receives: the guard restores the originals before anything is sent.

- Header values (`mask_header_value`): a header named like a credential (`secret_names.
  is_secret_header`: `Authorization`, `Proxy-Authorization`, `api-key`, `x-api-key`,
  `x-goog-api-key`, `Cookie`, `Set-Cookie`, `X-Amz-Security-Token` ..., any case) keeps its name
  and loses its value, keeping what tells a reader what it was: the scheme of an authorization
  (`Bearer REDACTED`, `AWS4-HMAC-SHA256 REDACTED`), the cookie names (`a=REDACTED; b=REDACTED`),
  a Set-Cookie's attributes (`sid=REDACTED; Path=/; HttpOnly`). A WebSocket subprotocol that
  carries a key (`openai-insecure-api-key.sk-...`) keeps its prefix. In any other header a
  credential-shaped value (`secret_names.SECRET_VALUES`: `sk-...`, `Bearer ...`, JWT ...) is
  replaced where it stands.
- Text (`mask_text`: log lines, bodies, WebSocket messages), in this order:
  1. a header line whose name is a credential header (`Authorization: ...` up to the end of the
     line, or up to a written `\\r`/`\\n` in the repr of raw bytes);
  2. a `(name, value)` pair of quoted strings whose name is a credential header (the repr of
     HTTP/2 header lists and of mitmproxy's `Headers`), in parentheses;
  3. a JSON (or Python repr) string value under a key named like a secret
     (`secret_names.is_secret_field`, or a credential header name), also one level escaped inside
     another JSON string (`"arguments": "{\\"api_key\\": \\"...\\"}"`);
  4. `name=value` where name is a secret query parameter or form field
     (`secret_names.is_secret_query_param`: `key`, `sig`, `X-Amz-Signature`, `code` ...), in URLs,
     form bodies and free text alike;
  5. credential-shaped values anywhere (`secret_names.SECRET_VALUES`).
- Bodies (`mask_body`): secret multipart parts (`redact.redact_multipart`), then `mask_text` on
  the body read as UTF-8 (undecodable bytes kept as they are).

Each masked value becomes `REDACTED`. Masking is idempotent and never changes anything but the
values it replaces. Known limit: a header line split across two raw reads in a `proxy_debug` dump
is masked only where a piece still shows its name or a credential-shaped value.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import unquote_plus

from .redact import redact_multipart
from .secret_names import (
    CREDENTIAL_HEADERS,
    REDACTED,
    SECRET_HEADER_NAME_PARTS,
    SECRET_VALUES,
    is_secret_field,
    is_secret_header,
    is_secret_query_param,
)

__all__ = [
    "REDACTED",
    "mask_body",
    "mask_header_fields",
    "mask_header_value",
    "mask_text",
]

HeaderFields = tuple[tuple[bytes, bytes], ...]

_AUTH_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9._~+/-]*)[ \t]+\S")
_WEBSOCKET_PROTOCOL = "sec-websocket-protocol"


# All of SECRET_VALUES as one pattern (one pass over a value instead of one per kind); each kind
# is a named group, with its own flags.
_SHAPE_GROUPS = {f"shape{i}": kind for i, (kind, _) in enumerate(SECRET_VALUES)}
_SHAPES = re.compile(
    "|".join(
        f"(?P<shape{i}>{'(?a:' if pattern.flags & re.ASCII else '(?:'}{pattern.pattern}))"
        for i, (_, pattern) in enumerate(SECRET_VALUES)
    )
)


def _shape(found: re.Match[str]) -> str:
    kind = _SHAPE_GROUPS[found.lastgroup or ""]
    return f"Bearer {REDACTED}" if kind == "Bearer token" else REDACTED


def _mask_credential_shapes(value: str) -> str:
    return _SHAPES.sub(_shape, value)


def _mask_cookie(value: str) -> str:
    """`a=1; b=2` -> `a=REDACTED; b=REDACTED` (a bare value with no `=` becomes REDACTED)."""
    parts = []
    for part in value.split(";"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq else (part and REDACTED))
    return ";".join(parts)


def _mask_set_cookie(value: str) -> str:
    """`sid=abc; Path=/; HttpOnly` -> `sid=REDACTED; Path=/; HttpOnly` (attributes say nothing)."""
    first, semicolon, attributes = value.partition(";")
    name, eq, _ = first.partition("=")
    shown = f"{name}={REDACTED}" if eq else REDACTED
    return f"{shown}{semicolon}{attributes}"


def _mask_websocket_protocols(value: str) -> str:
    """`realtime, openai-insecure-api-key.sk-x` -> `realtime, openai-insecure-api-key.REDACTED`."""
    tokens = value.split(",")
    for i, token in enumerate(tokens):
        prefix, dot, rest = token.partition(".")
        if dot and rest and is_secret_header(prefix.strip()):
            tokens[i] = f"{prefix}.{REDACTED}"
    return _mask_credential_shapes(",".join(tokens))


@functools.lru_cache(maxsize=1024)
def _secret_header(lowered: str) -> bool:
    return is_secret_header(lowered)  # the same few names on every flow: remember the answer


def mask_header_value(name: str, value: str) -> str:
    """The value to show for header `name` (module docstring); `value` if nothing to hide."""
    lowered = name.lower()
    if lowered == _WEBSOCKET_PROTOCOL:
        return _mask_websocket_protocols(value)
    if not _secret_header(lowered):
        return _mask_credential_shapes(value)
    if lowered == "cookie":
        return _mask_cookie(value)
    if lowered == "set-cookie":
        return _mask_set_cookie(value)
    if "auth" in lowered:
        scheme = _AUTH_SCHEME.match(value)
        if scheme:
            return f"{scheme.group(1)} {REDACTED}"
    return REDACTED if value else value


def mask_header_fields(fields: Sequence[tuple[bytes, bytes]]) -> HeaderFields | None:
    """mitmproxy's raw header fields with every value masked; None when none changes.

    Names and order are kept; values are read as UTF-8 (undecodable bytes kept as they are).
    """
    result: list[tuple[bytes, bytes]] | None = None
    for i, (name, value) in enumerate(fields):
        text = value.decode("utf-8", "surrogateescape")
        masked = mask_header_value(name.decode("latin-1"), text)
        if masked != text:
            if result is None:
                result = list(fields)
            result[i] = (name, masked.encode("utf-8", "surrogateescape"))
    return None if result is None else tuple(result)


# ---- text

_HEADER_NAME_PART = "|".join(
    re.escape(part) for part in sorted({*SECRET_HEADER_NAME_PARTS, *CREDENTIAL_HEADERS}, key=len)
)
# 1. `Authorization: Bearer x` up to the end of the line, or up to `\r` / `\n` written out (the
# repr of raw bytes in proxy_debug dumps). Only names holding a credential part are tried, so a
# match never swallows a line whose later part holds a header that is one.
_HEADER_LINE = re.compile(
    r"(?:(?<=\\[rnt])|(?<![A-Za-z0-9_\\-]))"
    rf"([A-Za-z0-9-]*(?:{_HEADER_NAME_PART})[A-Za-z0-9-]*)([ \t]*:[ \t]*)"
    r"((?:(?!\\[rn])[^\r\n])*)",
    re.IGNORECASE,
)
# 2. `(b'authorization', b'Bearer x')`: HTTP/2 header lists, mitmproxy's Headers repr (in
# parentheses: two adjacent JSON strings `"a","b"` are no pair).
_QUOTED_PAIR = re.compile(
    r"""\([ \t]*b?(['"])([A-Za-z0-9_:-]{1,100})\1,[ \t]*b?(['"])((?:\\.|(?!\3)[^\\])*)\3[ \t]*\)"""
)
# 3. `"api_key": "x"` (or `'api_key': 'x'`), and the same one level escaped: `\"api_key\": \"x\"`.
_JSON_FIELD = re.compile(
    r"""(['"])([^'"\\\r\n]{1,100})\1(\s*:\s*)(['"])((?:\\.|(?!\4)[^\\])*)\4"""
)
_ESCAPED_JSON_FIELD = re.compile(r'\\"([^"\\\r\n]{1,100})\\"(\s*:\s*)\\"((?:(?!\\")[^"])*)\\"')
# 4. `key=value` in a URL, a form body or free text: the value ends at `&`, white space, a quote,
# `#`, `;`, `,`, a backslash (an escape in a repr) or a bracket.
_QUERY_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.%-])([A-Za-z0-9_.%-]{1,100})=([^&\s'\"#;,\\<>()\[\]{}]*)"
)


def _header_line(found: re.Match[str]) -> str:
    name, separator, value = found.group(1), found.group(2), found.group(3)
    if not value or not is_secret_header(name):
        return found.group(0)
    return f"{name}{separator}{mask_header_value(name, value)}"


def _quoted_pair(found: re.Match[str]) -> str:
    name, value = found.group(2), found.group(4)
    if not value or not is_secret_header(name):
        return found.group(0)
    start = found.start(4) - found.start(0)
    end = found.end(4) - found.start(0)
    whole = found.group(0)
    return f"{whole[:start]}{mask_header_value(name, value)}{whole[end:]}"


def _secret_key(name: str) -> bool:
    return is_secret_field(name) or name.lower() in CREDENTIAL_HEADERS


def _json_field(found: re.Match[str]) -> str:
    name, value = found.group(2), found.group(5)
    if not value or value == REDACTED or not _secret_key(name):
        return found.group(0)
    quote = found.group(4)
    return f"{found.group(1)}{name}{found.group(1)}{found.group(3)}{quote}{REDACTED}{quote}"


def _escaped_json_field(found: re.Match[str]) -> str:
    name, value = found.group(1), found.group(3)
    if not value or value == REDACTED or not _secret_key(name):
        return found.group(0)
    return f'\\"{name}\\"{found.group(2)}\\"{REDACTED}\\"'


def _query_pair(found: re.Match[str]) -> str:
    name, value = found.group(1), found.group(2)
    if not value or value == REDACTED or not is_secret_query_param(unquote_plus(name)):
        return found.group(0)
    return f"{name}={REDACTED}"


def mask_text(text: str) -> str:
    """`text` with every secret the module docstring lists replaced by `REDACTED`."""
    if ":" in text:
        text = _HEADER_LINE.sub(_header_line, text)
    if "," in text:
        text = _QUOTED_PAIR.sub(_quoted_pair, text)
    if ":" in text:
        text = _JSON_FIELD.sub(_json_field, text)
        if '\\"' in text:
            text = _ESCAPED_JSON_FIELD.sub(_escaped_json_field, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_query_pair, text)
    return _mask_credential_shapes(text)


def mask_body(body: bytes, content_type: str = "") -> bytes | None:
    """`body` with its secrets masked (see the module docstring); None when nothing changes."""
    if not body:
        return None
    masked = redact_multipart(body, content_type) or body
    text = masked.decode("utf-8", "surrogateescape")
    new_text = mask_text(text)
    if new_text != text:
        masked = new_text.encode("utf-8", "surrogateescape")
    return None if masked == body else masked
