"""What llm-vcr reads from a client's request before anything else: which cassette it names,
the URL it asks for, and whether it is a WebSocket upgrade. Pure functions over plain values.

A cassette is named, most specific first, by the `X-VCR-Cassette` header, then by the proxy user
name (`HTTPS_PROXY=http://<name>@host:port`, percent-encoded), then by the `vcr_cassette` option.
The proxy password may name the session the request belongs to (`session=<id>` or
`client=<name>`, see `sessions`); so may the `X-VCR-Session` header.
A name the client gave that cannot be read exactly is refused (CassetteNameError, answered 400)
rather than silently replaced by another cassette: two `X-VCR-Cassette` headers (mitmproxy would
join them into `a, b`), a header value or user name that is not UTF-8.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote

from .store import CassetteNameError


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A session named by a client: `kind` "session" (an id the control API gave) or "client"
    (a stable client name the control API binds to its current session)."""

    kind: str
    value: str


def basic_auth(value: str) -> tuple[str | None, str | None]:
    """(user name, password) of a `Basic` Proxy-Authorization value, both percent-decoded; None
    for what is absent. CassetteNameError when the user name is not UTF-8."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        raw = base64.b64decode(token.strip())
    except ValueError:
        return None, None
    raw_user, colon, raw_password = raw.partition(b":")
    try:
        user = raw_user.decode("utf-8")
    except UnicodeDecodeError:
        raise CassetteNameError("<proxy user name>", "it is not valid UTF-8") from None
    try:
        password = unquote(raw_password.decode("utf-8"), errors="strict") if colon else None
    except UnicodeDecodeError:
        password = None  # not a session reference; never shown anywhere
    return decode_user(user), password or None


def session_ref(password: str | None) -> SessionRef | None:
    """The session a proxy password names: `session=<id>` or `client=<name>`; None for any other
    password (with `proxyauth=any` a password may be anything)."""
    if not password:
        return None
    kind, eq, value = password.partition("=")
    if eq and value and kind in ("session", "client"):
        return SessionRef(kind, value)
    return None


NO_CASSETTE_USER = "-"  # a user name that names no cassette (clients that drop an empty one)


def decode_user(user: str) -> str | None:
    """The cassette a percent-encoded proxy user name names: None if empty or `-` (the session's
    cassette then; `requests`, `urllib` and undici send no Proxy-Authorization at all for an
    empty user name, so a password alone needs a user name that names nothing).
    CassetteNameError when it decodes to bytes that are not UTF-8 (`%ff`)."""
    try:
        name = unquote(user, errors="strict")
    except UnicodeDecodeError:
        raise CassetteNameError("<proxy user name>", "it is not valid UTF-8") from None
    return None if name in ("", NO_CASSETTE_USER) else name


def header_cassette_name(values: list[str]) -> str | None:
    """The cassette named by a request's X-VCR-Cassette header values (None: no header).

    CassetteNameError for two of them, or for a value that is not UTF-8 (mitmproxy decodes
    header bytes with surrogate escapes, so such a value holds lone surrogates).
    """
    if not values:
        return None
    if len(values) > 1:
        raise CassetteNameError(
            "<two X-VCR-Cassette headers>", "send exactly one X-VCR-Cassette header"
        )
    value = values[0]
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CassetteNameError("<X-VCR-Cassette header>", "it is not valid UTF-8") from None
    return value


def url_of(scheme: str, host: str, port: int, path: str) -> str:
    """The URL as Go writes it: an IPv6 literal host in brackets (`https://[::1]:9999/v1`;
    mitmproxy's `Request.url` leaves them out, and that URL cannot be parsed back), the scheme's
    default port left out, `path` (with its query) as sent."""
    if ":" in host:
        host = f"[{host}]"
    if (port == 443 and scheme == "https") or (port == 80 and scheme == "http"):
        return f"{scheme}://{host}{path}"
    return f"{scheme}://{host}:{port}{path}"


def host_port(host: str, port: int) -> str:
    """`host:port` for messages, an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_websocket_upgrade(upgrade_header: str) -> bool:
    """Whether an `Upgrade` header value asks for a WebSocket."""
    return upgrade_header.strip().lower() == "websocket"
