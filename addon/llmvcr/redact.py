"""What never reaches a cassette: applied before saving AND before matching.

- Headers: only an allow-list is kept (requests and responses alike, trailers too), written with
  Go's canonical names the way a Go recorder writes them.
- Query parameters (and form fields) whose name is a known secret keep their name but get the value
  `REDACTED`; the rest of the URL stays byte for byte as it was.
- JSON bodies (requests and responses, plain or each `data:` line of a server-sent-events body):
  by default the string value of every key named like a secret (`secret_names.is_secret_field`:
  `api_key`, `client_secret`, `password`, `access_token` ..., never `max_tokens`) gets
  `"REDACTED"`, and every URL inside any other string has its secret query values replaced
  (`scrub_json`); configured JSON body paths get `"REDACTED"` too. A changed JSON document is
  saved compact (`{"a":1}`); an unchanged one keeps its bytes.
- `multipart/form-data` request parts named like a secret (`api_key`, `password`, `key` ...) get
  the content `REDACTED`, framing and other parts byte for byte; url-encoded form fields follow
  the query rule.

The names live in `secret_names`; `matching` applies the same scrubbing to both sides of a
comparison, so a recording made before a rule existed still replays.

Redacting is idempotent (twice gives the same as once) and never modifies its input.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from . import jsonpath, multipart
from .cassette import Chunk, Headers, Request, Response, canonical_header_name
from .headers import first_header, is_event_stream, is_form, is_multipart
from .secret_names import (
    REDACTED,
    SECRET_QUERY_PARAMS,
    is_secret_field,
    is_secret_query_param,
    may_name_secret_field,
)
from .sse import data_values, looks_like_sse

__all__ = [
    "DEFAULT_KEEP_HEADERS",
    "REDACTED",
    "SECRET_QUERY_PARAMS",
    "Redactor",
    "may_need_scrub",
    "redact_form_text",
    "redact_multipart",
    "redact_url",
    "scrub_json",
    "urls_in_text",
]

DEFAULT_KEEP_HEADERS: tuple[str, ...] = ("Accept", "Content-Type", "User-Agent")


def _redact_query(query: str) -> str:
    """A `&`-separated query (or form body) with the values of secret parameters replaced."""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value != REDACTED and is_secret_query_param(unquote_plus(name)):
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def redact_form_text(body: bytes) -> bytes:
    """An `application/x-www-form-urlencoded` body with the values of secret fields replaced."""
    return _redact_query(body.decode("latin-1")).encode("latin-1")


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
    if "?" not in url and "@" not in url:
        return url  # no query and no userinfo: nothing to redact (the common case, per request)
    url = _redact_userinfo(url)
    query_start = url.find("?")
    if query_start < 0:
        return url
    fragment_start = url.find("#", query_start)
    query_end = len(url) if fragment_start < 0 else fragment_start
    query = url[query_start + 1 : query_end]
    return f"{url[: query_start + 1]}{_redact_query(query)}{url[query_end:]}"


# A URL inside free text (a JSON string): a scheme, `://`, and everything up to white space or a
# quote or angle bracket (where prose or markup around a link ends).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def urls_in_text(text: str) -> list[str]:
    """The URLs in `text` (`scheme://...` up to white space, a quote or `<` `>`)."""
    if "://" not in text:
        return []
    return _URL_IN_TEXT.findall(text)


def _redact_text_urls(text: str) -> str:
    if "://" not in text or ("?" not in text and "@" not in text):
        return text
    return _URL_IN_TEXT.sub(lambda found: redact_url(found.group(0)), text)


def scrub_json(value: object) -> tuple[object, bool]:
    """`value` (decoded JSON) with every secret scrubbed, and whether anything changed.

    Scrubbed: the non-empty string value of an object key for which `is_secret_field` holds
    (nested at any depth, in lists too) becomes `"REDACTED"`; in every other string, each URL gets
    `redact_url` (secret query values and a userinfo password). Numbers, booleans, null, objects
    and lists under a secret key are left as they are. `value` is not modified: changed containers
    are copies, unchanged ones are shared.
    """
    if isinstance(value, str):
        new = _redact_text_urls(value)
        return new, new != value
    if isinstance(value, dict):
        result: dict[object, object] | None = None
        for key, item in value.items():
            if isinstance(item, str) and item and item != REDACTED and is_secret_field(key):
                new_item: object = REDACTED
            elif isinstance(item, (str, dict, list)):
                new_item, changed = scrub_json(item)
                if not changed:
                    continue
            else:
                continue
            if result is None:
                result = dict(value)
            result[key] = new_item
        return (value, False) if result is None else (result, True)
    if isinstance(value, list):
        items: list[object] | None = None
        for index, item in enumerate(value):
            if isinstance(item, (str, dict, list)):
                new_item, changed = scrub_json(item)
                if changed:
                    if items is None:
                        items = list(value)
                    items[index] = new_item
        return (value, False) if items is None else (items, True)
    return value, False


def may_need_scrub(text: bytes) -> bool:
    """False only when `scrub_json` certainly changes nothing in the JSON document `text`: no
    `://` (so no URL) and no key that can be a secret field (`may_name_secret_field`)."""
    return b"://" in text or may_name_secret_field(text)


def redact_multipart(body: bytes, content_type: str) -> bytes | None:
    """A multipart body whose parts named like secrets (`is_secret_field` or a secret query
    parameter name) have the content `REDACTED` (framing kept byte for byte); None if unchanged
    or not multipart."""
    boundary = multipart.boundary(body, content_type)
    found = None if boundary is None else multipart.parts(body, boundary)
    if not found:
        return None
    out: list[bytes] = []
    last = 0
    for part in found:
        name = multipart.part_name(part.head)
        content = body[part.start : part.end]
        if name is None or content in (b"", REDACTED.encode()):
            continue
        if is_secret_field(name) or is_secret_query_param(name):
            out += [body[last : part.start], REDACTED.encode()]
            last = part.end
    if not out:
        return None
    out.append(body[last:])
    return b"".join(out)


def _redact_form(form: Headers) -> Headers:
    return {
        name: [REDACTED] * len(values) if is_secret_query_param(name) else list(values)
        for name, values in form.items()
    }


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
        if is_form(req.headers):
            body = redact_form_text(body)
        elif _looks_like_json(body):
            new_body = self._json_value(body)
            if new_body is not None:
                body = new_body
        elif body.startswith(b"--") or is_multipart(req.headers):
            new_body = redact_multipart(body, first_header(req.headers, "Content-Type"))
            if new_body is not None:
                body = new_body
        if content_length == len(req.body):
            content_length = len(body)
        return self._copy(
            req,
            body,
            content_length,
            url=redact_url(req.url),
            request_uri=redact_url(req.request_uri),
            form=_redact_form(req.form),
        )

    def response(self, resp: Response) -> Response:
        """A redacted copy of `resp`."""
        body = resp.body
        edits: list[_Edit] = []
        if body:
            if is_event_stream(resp.headers):
                body, edits = self._event_stream_body(body)
            elif _looks_like_json(body):
                new_body = self._json_value(body)
                if new_body is not None:
                    edits = [(0, len(body), len(new_body))]
                    body = new_body
            elif looks_like_sse(body):
                body, edits = self._event_stream_body(body)

        content_length = resp.content_length
        chunks = None if resp.chunks is None else [Chunk(c.at, c.size) for c in resp.chunks]
        if edits:
            if content_length == len(resp.body):
                content_length = len(body)
            if chunks is not None:
                chunks = _remap_chunks(chunks, edits, len(resp.body))
        return self._copy(resp, body, content_length, chunks=chunks)

    def _copy[M: (Request, Response)](
        self, message: M, body: bytes, content_length: int, **changes: object
    ) -> M:
        """`message` with `body`, `content_length` and `changes`, its headers and trailer
        redacted, and its other lists and maps copied: the copy shares nothing mutable with it."""
        return dataclasses.replace(
            message,
            body=body,
            content_length=content_length,
            headers=self.headers(message.headers),
            trailer=self.headers(message.trailer),
            transfer_encoding=list(message.transfer_encoding),
            extra=dict(message.extra),
            **changes,
        )

    def _json_value(self, text: bytes) -> bytes | None:
        """`text` (one JSON document) re-serialized with the paths and the secret fields redacted
        (`scrub_json`); None if unchanged (then it keeps its own bytes)."""
        if not self.json_paths and not may_need_scrub(text):
            return None  # the common body: nothing to look for, so not even parsed
        try:
            value = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return None
        changed = False
        if self.json_paths:
            value, changed = jsonpath.replace(value, self.json_paths, REDACTED)
        scrubbed = False
        if may_need_scrub(text):
            value, scrubbed = scrub_json(value)
        return _compact_json(value) if changed or scrubbed else None

    def _event_stream_body(self, body: bytes) -> tuple[bytes, list[_Edit]]:
        """The SSE body with each JSON `data:` line redacted; framing kept byte for byte."""
        out: list[bytes] = []
        edits: list[_Edit] = []
        for start, payload in data_values(body):
            new_payload = self._json_value(payload) if _looks_like_json(payload) else None
            if new_payload is not None:
                out += [body[edits[-1][1] if edits else 0 : start], new_payload]
                edits.append((start, start + len(payload), len(new_payload)))
        if not edits:
            return body, []
        out.append(body[edits[-1][1] :])
        return b"".join(out), edits
