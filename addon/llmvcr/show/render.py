"""`show`'s output: a cassette as a reviewer wants to read it.

Per interaction: method, URL, status, protocol, timing (go-vcr's `duration` and the stream's first
and last chunk from the `chunks` key), the body size, the request's messages by role
(`request.summarize_request`), and the answer reassembled from the stored body
(`reassemble.reassemble`): text, reasoning, tool calls with their arguments, token usage, and the
problems met reading the stream. A body of no known format is shown as text (its first 2,000
characters), or by its size when it is binary.

Text, reasoning and tool arguments are printed exactly as the stream spells them (no indentation,
no re-wrapping), so what a reviewer copies out of the output is what the model sent.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from typing import TextIO

from ..cassette import Cassette, Headers, Interaction, Request, Response
from ..headers import AWS_EVENT_STREAM_TYPE, media_type
from .answer import Answer, Block
from .eventstream import EventStreamError, decode_event_stream
from .reassemble import reassemble
from .request import Prompt, summarize_request

__all__ = ["Paint", "Renderer", "format_seconds", "format_size", "timing_line"]


class Paint:
    """ANSI colours, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def heading(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def label(self, text: str) -> str:
        return self._wrap("36", text)

    def tool(self, text: str) -> str:
        return self._wrap("33", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def format_seconds(ns: int) -> str:
    """A duration for people: `2.196s`, `853ms`, `42µs`."""
    if abs(ns) >= 1_000_000_000:
        return f"{ns / 1e9:.3f}s"
    if abs(ns) >= 1_000_000:
        return f"{ns / 1e6:.0f}ms"
    return f"{ns / 1e3:.0f}µs"


def format_size(size: int) -> str:
    """A byte count for people: `512 bytes`, `12.3 KiB`."""
    if size < 1024:
        return _count(size, "byte")
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def timing_line(response: Response) -> str:
    """`duration` (go-vcr's: request sent to response headers) and the stream's chunk timing."""
    parts = [f"headers after {format_seconds(response.duration)}"]
    chunks = response.chunks
    if chunks:
        first, last = chunks[0].at, chunks[-1].at
        parts.append(
            f"stream: first byte {format_seconds(first)}, total {format_seconds(last)}, "
            f"{_count(len(chunks), 'chunk')}"
        )
    return " · ".join(parts)


_TEXT_PREVIEW = 2000  # characters of an unknown text body shown without --raw


def _decoded(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Renderer:
    """Writes cassettes for a reviewer to `out`, coloured by `paint`; with `raw`, each
    interaction's headers and bodies as stored follow it (an AWS event stream one message a
    line), and a body of no known format is shown whole instead of its first 2,000 characters."""

    def __init__(self, out: TextIO, paint: Paint, raw: bool) -> None:
        self.out = out
        self.paint = paint
        self.raw = raw

    def cassette(self, path: str, cassette: Cassette) -> None:
        """A heading naming the file and its interaction count, then each interaction."""
        count = _count(len(cassette.interactions), "interaction")
        self.line(self.paint.heading(path) + self.paint.dim(f" · {count}"))
        for interaction in cassette.interactions:
            self.interaction(interaction)

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def verbatim(self, text: str) -> None:
        """Text exactly as sent, ending with a line break."""
        self.out.write(text if text.endswith("\n") else text + "\n")

    def interaction(self, interaction: Interaction) -> None:
        req, resp = interaction.request, interaction.response
        p = self.paint
        self.line(p.heading(f"── interaction {interaction.id} " + "─" * 40))
        self.line(f"{p.heading(req.method)} {req.url}")
        status = resp.status if resp.code < 400 else p.bad(resp.status)
        self.line(f"{status} · {resp.proto} · {timing_line(resp)} · {format_size(len(resp.body))}")
        prompt = summarize_request(req)
        if prompt is None:
            self.unknown_body("request", req.body, req.headers)
        else:
            self.prompt(prompt)
        answer = reassemble(resp)
        if answer is None:
            self.unknown_body("response", resp.body, resp.headers)
        else:
            self.answer(answer)
        if self.raw:
            self.raw_bodies(req, resp)
        self.line()

    def prompt(self, prompt: Prompt) -> None:
        """What a request asked: model, streaming, tools, then each message by role."""
        p = self.paint
        facts = [f"model {prompt.model}" if prompt.model else "", "stream" if prompt.stream else ""]
        if prompt.tools:
            facts.append("tools: " + ", ".join(prompt.tools))
        self.line(p.heading("request") + p.dim(" · " + " · ".join(f for f in facts if f)))
        for message in prompt.messages:
            self.line(p.label(f"[{message.role}]"))
            for block in message.blocks:
                self.block(block)

    def answer(self, answer: Answer) -> None:
        """What a response said: API, framing, model, stop reason, the blocks (consecutive text
        of one choice as one), usage, and the problems met reading it."""
        p = self.paint
        events = f", {_count(answer.events, 'event')}" if answer.events else ""
        facts = [answer.api, answer.framing + events]
        if answer.model:
            facts.append(f"model {answer.model}")
        if answer.stop_reason:
            facts.append(f"stop: {answer.stop_reason}")
        self.line(p.heading("answer") + p.dim(" · " + " · ".join(facts)))
        several = any(block.choice for block in answer.blocks)
        for block in _merged_text(answer.blocks):
            self.block(block, "assistant", f", choice {block.choice}" if several else "")
        if answer.usage:
            usage = " · ".join(f"{name} {count}" for name, count in answer.usage.items())
            self.line(p.dim(f"usage: {usage}"))
        for problem in answer.problems:
            self.line(p.bad(f"! {problem}"))

    def block(self, block: Block, text_label: str = "", suffix: str = "") -> None:
        """One block; a text block gets a `[text_label]` line only when given one (in a request
        the message's role line already says whose text it is)."""
        p = self.paint
        if block.kind == "text":
            if text_label:
                self.line(p.label(f"[{text_label}{suffix}]"))
            self.verbatim(block.text)
        elif block.kind in ("reasoning", "refusal"):
            self.line(p.label(f"[{block.kind}{suffix}]"))
            self.verbatim(block.text)
        elif block.kind == "tool_call":
            call_id = f" ({block.call_id})" if block.call_id else ""
            self.line(p.tool(f"[tool call{suffix}] {block.name}{call_id}"))
            if block.text:
                self.verbatim(block.text)
        elif block.kind == "tool_result":
            about = " ".join(filter(None, (block.name, block.call_id and f"({block.call_id})")))
            self.line(p.tool(f"[tool result{suffix}] {about}".rstrip()))
            if block.text:
                self.verbatim(block.text)
        elif block.kind == "error":
            code = f" {block.name}" if block.name else ""
            self.line(p.bad(f"[error{suffix}]{code}"))
            self.verbatim(block.text)
        else:
            self.line(p.dim(f"[{block.name}{suffix}]"))
            if block.text:
                self.verbatim(block.text)

    def unknown_body(self, title: str, body: bytes, headers: Headers) -> None:
        """A body of no known format: what it is, then its text (not with --raw, which shows
        every body whole anyway)."""
        self.line(self.paint.dim(f"{title} body: {_describe_body(body, headers)}"))
        if body and not self.raw:
            self.body_preview(body)

    def body_preview(self, body: bytes) -> None:
        text = _decoded(body)
        if text is None:
            return
        if len(text) > _TEXT_PREVIEW:
            self.verbatim(text[:_TEXT_PREVIEW])
            self.line(self.paint.dim(f"… {len(text) - _TEXT_PREVIEW} more characters (--raw)"))
        else:
            self.verbatim(text)

    def raw_bodies(self, req: Request, resp: Response) -> None:
        for title, headers, body in (
            ("request", req.headers, req.body),
            ("response", resp.headers, resp.body),
        ):
            self.line(self.paint.heading(f"{title} headers (raw)"))
            for name, values in headers.items():
                for value in values:
                    self.line(f"{name}: {value}")
            self.line(self.paint.heading(f"{title} body (raw, {format_size(len(body))})"))
            if media_type(headers) == AWS_EVENT_STREAM_TYPE:
                self.event_stream(body)
                continue
            text = _decoded(body)
            if text is None:
                self.line(self.paint.dim(f"<binary, {format_size(len(body))}>"))
            elif text:
                self.verbatim(text)

    def event_stream(self, body: bytes) -> None:
        try:
            for message in decode_event_stream(body):
                names = " ".join(f"{k}={v}" for k, v in message.headers.items())
                payload = _decoded(message.payload)
                shown = payload if payload is not None else f"<{len(message.payload)} bytes>"
                self.line(f"{self.paint.dim(names)} {shown}")
        except EventStreamError as e:
            self.line(self.paint.bad(f"! event stream broken at {e}"))


def _merged_text(blocks: list[Block]) -> list[Block]:
    """Consecutive text blocks of one choice as one: Anthropic splits an answer with citations
    into many text blocks that read as one text."""
    merged: list[Block] = []
    for block in blocks:
        last = merged[-1] if merged else None
        if last and block.kind == last.kind == "text" and block.choice == last.choice:
            merged[-1] = Block("text", last.text + block.text, choice=block.choice)
        else:
            merged.append(block)
    return merged


def _describe_body(body: bytes, headers: Headers) -> str:
    if not body:
        return "empty"
    kind = media_type(headers) or "no content type"
    binary = "" if _decoded(body) is not None else "binary, "
    return f"{binary}{format_size(len(body))}, {kind}"

