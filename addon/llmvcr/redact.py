"""What never reaches a cassette: applied before saving AND before matching.

- Headers: only an allow-list is kept (requests and responses alike, trailers too), written with
  Go's canonical names the way a Go recorder writes them.
- Query parameters (and form fields) whose name is a known secret keep their name but get the value
  `REDACTED`; the rest of the URL stays byte for byte as it was.
- Configured JSON body paths get the value `"REDACTED"`, in plain JSON bodies and in each
  `data:` line of a server-sent-events body.

Redacting is idempotent (twice gives the same as once) and never modifies its input.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from urllib.parse import unquote_plus

from . import jsonpath
from .cassette import Chunk, Headers, Request, Response, canonical_header_name

DEFAULT_KEEP_HEADERS: tuple[str, ...] = ("Accept", "Content-Type", "User-Agent")

REDACTED = "REDACTED"

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "key",
        "api-key",
        "api_key",
        "apikey",
        "x-api-key",
        "x-goog-api-key",
        "subscription-key",
        "ocp-apim-subscription-key",
        "access_token",
        "refresh_token",
        "id_token",
        "session_token",
        "token",
        "auth",
        "authorization",
        "bearer",
        "jwt",
        "sig",
        "signature",
        "secret",
        "client_secret",
        "private_key",
        "password",
        "passwd",
        "code",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)

_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_EVENT_STREAM_CONTENT_TYPE = "text/event-stream"



def _redact_query(query: str) -> str:
    """A `&`-separated query (or form body) with the values of secret parameters replaced."""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value != REDACTED and unquote_plus(name).lower() in SECRET_QUERY_PARAMS:
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def _redact_userinfo(url: str) -> str:
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if 0 <= found < end:
            end = found
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    user, colon, password = url[start:at].partition(":")
    if not colon or password == REDACTED:
        return url
    return f"{url[:start]}{user}:{REDACTED}{url[at:]}"


def redact_url(url: str) -> str:
    """`url` with secret query values and any userinfo password replaced; otherwise byte-exact.

    Also fine for a bare request target (`/v1/models?key=...`), for log lines and error messages.
    """
    url = _redact_userinfo(url)
    query_start = url.find("?")
    if query_start < 0:
        return url
    fragment_start = url.find("#", query_start)
    query_end = len(url) if fragment_start < 0 else fragment_start
    query = url[query_start + 1 : query_end]
    return f"{url[: query_start + 1]}{_redact_query(query)}{url[query_end:]}"


def _redact_form(form: Headers) -> Headers:
    return {
        name: [REDACTED] * len(values) if name.lower() in SECRET_QUERY_PARAMS else list(values)
        for name, values in form.items()
    }


def _header_value(headers: Headers, name: str) -> str:
    """The first value of header `name` (any case), or ""."""
    lowered = name.lower()
    for key, values in headers.items():
        if key.lower() == lowered and values:
            return values[0]
    return ""


def _compact_json(value: object) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (`"\ud800"`) has no UTF-8 form: keep it escaped
        return json.dumps(value, separators=(",", ":")).encode()


def _looks_like_json(text: bytes) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in (b"{", b"[")


# One body edit: (start, end) in the old body and the length of its replacement.
_Edit = tuple[int, int, int]


def _remap_chunks(chunks: list[Chunk], edits: list[_Edit], old_length: int) -> list[Chunk] | None:
    """Chunk sizes for the edited body, keeping the arrival times; None if they did not add up.

    Each chunk boundary moves with the edits before it; a boundary inside an edited region stays at
    the same distance into the replacement, clamped to its end.
    """
    if sum(c.size for c in chunks) != old_length:
        return None
    result: list[Chunk] = []
    edit_index = 0
    shift = 0
    boundary = 0
    new_previous = 0
    for chunk in chunks:
        boundary += chunk.size
        while edit_index < len(edits) and edits[edit_index][1] <= boundary:
            start, end, new_len = edits[edit_index]
            shift += new_len - (end - start)
            edit_index += 1
        new_boundary = boundary + shift
        if edit_index < len(edits):
            start, _, new_len = edits[edit_index]
            if start < boundary:  # inside the next edit
                new_boundary = start + shift + min(boundary - start, new_len)
        result.append(Chunk(chunk.at, new_boundary - new_previous))
        new_previous = new_boundary
    return result


class Redactor:
    """Removes secrets from requests and responses, as configured.

    `keep_headers`: the header names kept (compared case-insensitively, written canonically).
    `json_paths`: JSON body paths (see `jsonpath`) whose values become `"REDACTED"`.
    """

    __slots__ = ("_keep", "json_paths", "keep_headers")

    def __init__(
        self,
        keep_headers: Iterable[str] = DEFAULT_KEEP_HEADERS,
        json_paths: Iterable[str] = (),
    ) -> None:
        self.keep_headers: tuple[str, ...] = tuple(keep_headers)
        self.json_paths: tuple[str, ...] = tuple(json_paths)
        for path in self.json_paths:
            jsonpath.parse(path)  # a bad path fails here, when configured, not on some request
        self._keep = frozenset(name.lower() for name in self.keep_headers)

    def headers(self, headers: Headers) -> Headers:
        """Only the kept headers, under canonical names (values of names that merge are joined)."""
        result: Headers = {}
        for name, values in headers.items():
            if name.lower() in self._keep:
                result.setdefault(canonical_header_name(name), []).extend(values)
        return result

    def request(self, req: Request) -> Request:
        """A redacted copy of `req`."""
        body = req.body
        content_length = req.content_length
        content_type = _header_value(req.headers, "Content-Type").lower()
        if _FORM_CONTENT_TYPE in content_type:
            body = _redact_query(body.decode("latin-1")).encode("latin-1")
        elif self.json_paths and _looks_like_json(body):
            new_body = self._json_value(body)
            if new_body is not None:
                body = new_body
        if content_length == len(req.body):
            content_length = len(body)
        return dataclasses.replace(
            req,
            url=redact_url(req.url),
            request_uri=redact_url(req.request_uri),
            body=body,
            content_length=content_length,
            headers=self.headers(req.headers),
            trailer=self.headers(req.trailer),
            form=_redact_form(req.form),
            transfer_encoding=list(req.transfer_encoding),
            extra=dict(req.extra),
        )

    def response(self, resp: Response) -> Response:
        """A redacted copy of `resp`."""
        body = resp.body
        edits: list[_Edit] = []
        if self.json_paths and body:
            content_type = _header_value(resp.headers, "Content-Type").lower()
            if _EVENT_STREAM_CONTENT_TYPE in content_type:
                body, edits = self._event_stream_body(body)
            elif _looks_like_json(body):
                new_body = self._json_value(body)
                if new_body is not None:
                    edits = [(0, len(body), len(new_body))]
                    body = new_body
            elif body.startswith((b"data:", b"event:")):
                body, edits = self._event_stream_body(body)

        content_length = resp.content_length
        chunks = None if resp.chunks is None else [Chunk(c.at, c.size) for c in resp.chunks]
        if edits:
            if content_length == len(resp.body):
                content_length = len(body)
            if chunks is not None:
                chunks = _remap_chunks(chunks, edits, len(resp.body))
        return dataclasses.replace(
            resp,
            body=body,
            content_length=content_length,
            chunks=chunks,
            headers=self.headers(resp.headers),
            trailer=self.headers(resp.trailer),
            transfer_encoding=list(resp.transfer_encoding),
            extra=dict(resp.extra),
        )

    def _json_value(self, text: bytes) -> bytes | None:
        """`text` (one JSON document) re-serialized with the paths redacted; None if unchanged."""
        try:
            value = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return None
        new_value, changed = jsonpath.replace(value, self.json_paths, REDACTED)
        return _compact_json(new_value) if changed else None

    def _event_stream_body(self, body: bytes) -> tuple[bytes, list[_Edit]]:
        """The SSE body with each JSON `data:` line redacted; framing kept byte for byte."""
        out: list[bytes] = []
        edits: list[_Edit] = []
        offset = 0
        for line in body.splitlines(keepends=True):
            content = line.rstrip(b"\r\n")
            ending = line[len(content) :]
            if content.startswith(b"data:"):
                prefix_length = 6 if content.startswith(b"data: ") else 5
                payload = content[prefix_length:]
                if _looks_like_json(payload):
                    new_payload = self._json_value(payload)
                    if new_payload is not None:
                        start = offset + prefix_length
                        edits.append((start, start + len(payload), len(new_payload)))
                        line = content[:prefix_length] + new_payload + ending
            out.append(line)
            offset += len(content) + len(ending)
        return (b"".join(out), edits) if edits else (body, [])
