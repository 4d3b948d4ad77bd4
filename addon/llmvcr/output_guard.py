"""Keeps secrets out of mitmproxy's own output while clients and upstreams get every byte.

mitmdump prints flows (`flow_detail`: the URL at 1, headers at 2, bodies at 3 and 4), saves them
(`-w` / `save_stream_file` at `response`, `error` and `websocket_end`; `hardump` at shutdown) and
logs (with `termlog_verbosity=debug` and `proxy_debug=true`, the raw bytes of every request and
response). `OutputGuard` applies the `masking` rules to what those see, for every flow, whatever
the host or mode:

- Log lines: a `logging.Filter` on every root log handler masks the message (and a traceback, which
  it folds into the message) before any handler formats it.
- The request, at `response`, `error` and `http_connect_error` (it has been sent by then, or was
  never going to be): URL (`redact.redact_url`), header values, trailers and body, for good.
- The response, at `response`: header values, trailers and body. A response mitmproxy has not sent
  yet (the usual case; a streamed one has had its headers and body sent already, not its
  trailers) gets its originals back from `_Restorer`, an addon the guard appends to the end of the
  chain in `running`: after the Dumper, Save and every other addon, before mitmproxy writes to the
  client. Only the values the guard replaced are put back, and only where they still hold the
  masked value, so a later addon's own edits (modify_headers, modify_body, a script) are kept.
- WebSocket messages: each one masked at `websocket_message` (the Dumper prints it at 3+) and
  restored before it is forwarded; all of them for good at `websocket_end` (Save writes the flow).
- At `done`, flows still open (Save writes them then) and flows kept for `hardump` are masked for
  good.

Bodies are masked only where someone can see them (`flow_detail` 3 or more, a flows file, a HAR
dump), so a plain proxy does no body work. Nothing the guard keeps goes into `flow.metadata`
(mitmproxy serializes that into saved flows).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http

from .masking import mask_body, mask_header_fields, mask_text
from .redact import redact_url
from .secret_names import REDACTED

RESTORER_NAME = "llmvcr-output-restorer"


class MaskingLogFilter(logging.Filter):
    """Masks a log record's message (and folds its traceback in, masked) in place."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_llmvcr_masked", False):
            return True
        record._llmvcr_masked = True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        if record.exc_info:
            message = f"{message}\n{self._formatter.formatException(record.exc_info)}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def install_log_filter(log_filter: logging.Filter) -> None:
    """Put `log_filter` on every handler of the root logger that does not have it yet (records of
    every logger propagate there; a logger's own filters would see only its own records)."""
    for handler in logging.getLogger().handlers:
        if log_filter not in handler.filters:
            handler.addFilter(log_filter)


def uninstall_log_filter(log_filter: logging.Filter) -> None:
    for handler in logging.getLogger().handlers:
        handler.removeFilter(log_filter)


@dataclass(slots=True)
class _Undo:
    """What to put back in one message: masked header fields and body, with their originals."""

    headers: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # name, shown, original
    trailers: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    body: tuple[bytes, bytes] | None = None  # shown raw_content, original raw_content


_FieldUndo = list[tuple[bytes, bytes, bytes]]  # name, shown value, original value


def _mask_fields(headers: http.Headers | None, undo: _FieldUndo | None) -> None:
    if headers is None:
        return
    masked = mask_header_fields(headers.fields)
    if masked is None:
        return
    if undo is not None:
        for (name, original), (_, shown) in zip(headers.fields, masked, strict=True):
            if shown != original:
                undo.append((name, shown, original))
    headers.fields = masked


def _restore_fields(headers: http.Headers | None, undo: _FieldUndo) -> None:
    if headers is None or not undo:
        return
    fields = list(headers.fields)
    pending = list(undo)
    for i, (name, value) in enumerate(fields):
        for j, (undo_name, shown, original) in enumerate(pending):
            if value == shown and name.lower() == undo_name.lower():
                fields[i] = (name, original)
                del pending[j]
                break
    headers.fields = tuple(fields)


def _mask_message_body(message: http.Message, undo: _Undo | None) -> None:
    raw = message.raw_content
    if not raw:
        return
    content = message.get_content(strict=False) or b""
    masked = mask_body(content, message.headers.get("content-type", ""))
    if masked is None:
        return
    if content is raw or content == raw:
        message.raw_content = masked
    else:  # compressed: show the masked text, encoded as the headers say
        try:
            message.content = masked
        except ValueError:
            message.raw_content = masked
    if undo is not None:
        undo.body = (message.raw_content or b"", raw)


class _Restorer:
    """The trailing addon: gives the client back what the guard masked for the printers."""

    name = RESTORER_NAME

    def __init__(self, guard: OutputGuard) -> None:
        self.guard = guard

    def response(self, flow: http.HTTPFlow) -> None:
        undo = self.guard._responses.pop(flow.id, None)
        if undo is None or flow.response is None:
            return
        response = flow.response
        _restore_fields(response.headers, undo.headers)
        _restore_fields(response.trailers, undo.trailers)
        if undo.body is not None and response.raw_content == undo.body[0]:
            response.raw_content = undo.body[1]
        if self.guard._keep_for_done():
            self.guard._lingering.add(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        undo = self.guard._messages.pop(flow.id, None)
        if undo is None or flow.websocket is None or not flow.websocket.messages:
            return
        message = flow.websocket.messages[-1]
        shown, original = undo
        if message.content == shown:
            message.content = original


class OutputGuard:
    """The mitmproxy addon (see the module docstring)."""

    def __init__(self) -> None:
        self.log_filter = MaskingLogFilter()
        self.restorer = _Restorer(self)
        self._restorer_added = False
        self._responses: dict[str, _Undo] = {}  # flow id -> what the restorer puts back
        self._messages: dict[str, tuple[bytes, bytes]] = {}  # flow id -> (shown, original)
        self._open: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()  # not finished yet
        self._lingering: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()  # kept for hardump
        self._shown: tuple[bool, bool] | None = None  # (_bodies_shown, _keep_for_done), cached

    # -- lifecycle

    def load(self, loader: Any) -> None:
        install_log_filter(self.log_filter)

    def running(self) -> None:
        install_log_filter(self.log_filter)  # handlers added since `load`
        addons = ctx.master.addons
        old = addons.get(RESTORER_NAME)
        if old is not None and old is not self.restorer:
            addons.remove(old)  # a reloaded script's guard: its restorer serves nobody now
        if addons.get(RESTORER_NAME) is None:
            addons.add(self.restorer)  # added now, it goes to the end of the chain
        self._restorer_added = True

    def done(self) -> None:
        # Save writes the flows still open, and SaveHar every flow it kept, after this hook.
        for flow in [*self._open, *self._lingering]:
            self._mask_request(flow)
            if flow.response is not None:
                self._mask_response(flow, restore=False)
        self._open.clear()
        self._lingering.clear()

    # -- options

    def configure(self, updated: set[str]) -> None:
        self._shown = None  # read again from the options on next use

    @staticmethod
    def _option(name: str, default: Any) -> Any:
        try:
            return getattr(ctx.options, name)
        except (AttributeError, KeyError):
            return default

    def _output(self) -> tuple[bool, bool]:
        """(bodies shown: printed at flow_detail 3+, or saved; flows kept for a HAR dump), read
        from the options once per change: two flags asked twice per flow."""
        if self._shown is None:
            keep = bool(self._option("hardump", ""))
            bodies = (
                self._option("flow_detail", 0) >= 3
                or bool(self._option("save_stream_file", None))
                or keep
            )
            self._shown = (bodies, keep)
        return self._shown

    def _bodies_shown(self) -> bool:
        return self._output()[0]

    def _keep_for_done(self) -> bool:
        return self._output()[1]

    # -- HTTP

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._open.add(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._open.discard(flow)
        self._mask_request(flow)
        if flow.response is None:
            return
        # A streamed response is on its way already: only its trailers are still to be sent.
        already_sent = bool(flow.response.stream)
        self._mask_response(flow, restore=True, streamed=already_sent)

    def error(self, flow: http.HTTPFlow) -> None:
        self._open.discard(flow)
        self._responses.pop(flow.id, None)
        self._mask_request(flow)
        if flow.response is not None:
            self._mask_response(flow, restore=False)
        if flow.error is not None:
            flow.error.msg = mask_text(flow.error.msg)

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._mask_request(flow)
        if flow.error is not None:
            flow.error.msg = mask_text(flow.error.msg)

    def _mask_request(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        # mitmproxy's URL has no userinfo (its parser drops it): only a query can hold a secret,
        # and building the URL is the costly part.
        if "?" in request.path:
            shown_url = redact_url(request.url)
            if shown_url != request.url:
                request.url = shown_url
        _mask_fields(request.headers, None)
        _mask_fields(request.trailers, None)
        # mitmproxy's proxyauth keeps the proxy login as (user, password) in the flow's metadata,
        # which `-w` saves; it has done its work by now (it remembers logins per connection).
        login = flow.metadata.get("proxyauth")
        if isinstance(login, tuple) and len(login) == 2 and login[1] != REDACTED:
            flow.metadata["proxyauth"] = (login[0], REDACTED)
        if self._bodies_shown():
            _mask_message_body(request, None)

    def _mask_response(self, flow: http.HTTPFlow, restore: bool, streamed: bool = False) -> None:
        """Mask the response: for good where it was sent already (`streamed`: headers and body)
        or will never be (`restore` False after an error or at shutdown); the rest with an undo
        for the restorer, or not at all when there is no restorer to give the client its bytes."""
        response = flow.response
        assert response is not None
        final = not restore
        if restore and not self._restorer_added:
            if not streamed:
                return
            undo = None
        else:
            undo = None if final else _Undo()
        bodies = self._bodies_shown()
        if final or streamed:
            _mask_fields(response.headers, None)
            if bodies:
                _mask_message_body(response, None)
        elif undo is not None:
            _mask_fields(response.headers, undo.headers)
            if bodies:
                _mask_message_body(response, undo)
        if final:
            _mask_fields(response.trailers, None)
        elif undo is not None:
            _mask_fields(response.trailers, undo.trailers)
        if undo is not None and (undo.headers or undo.trailers or undo.body):
            self._responses[flow.id] = undo

    # -- WebSocket

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not flow.websocket.messages:
            return
        if not self._restorer_added or self._option("flow_detail", 0) < 3:
            return
        message = flow.websocket.messages[-1]
        masked = mask_body(message.content)
        if masked is not None:
            self._messages[flow.id] = (masked, message.content)
            message.content = masked

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._messages.pop(flow.id, None)
        if flow.websocket is None or not self._bodies_shown():
            return
        for message in flow.websocket.messages:
            masked = mask_body(message.content)
            if masked is not None:
                message.content = masked
