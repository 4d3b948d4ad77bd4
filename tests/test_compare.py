"""The drift classifier (`llmvcr.compare`, issue 17) on real recordings of each API: what is
`same`, `benign` and `changed`, and which path or event each result names."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CORPUS, SEED
from llmvcr.cassette import Interaction, Request, Response, load
from llmvcr.compare import (
    BENIGN,
    CHANGED,
    NEW,
    NORMALISED,
    REMOVED,
    SAME,
    classify,
    classify_pair,
    compare_responses,
    pair,
)
from llmvcr.compare.rules import normalised_scope
from llmvcr.matching import MatchOptions
from llmvcr.sse import data_values

FANTASY = CORPUS / "fantasy"

# name -> (cassette, interaction with a tool call, interaction with text); None: no tool call.
FORMATS: dict[str, tuple[Path, int | None, int]] = {
    "openai-chat-stream": (FANTASY / "TestOpenAICommon/openai-gpt-4o/tool_streaming.yaml", 0, 1),
    "openai-chat-json": (FANTASY / "TestOpenAICommon/openai-gpt-4o/tool.yaml", 0, 1),
    "openai-responses-stream": (
        FANTASY / "TestOpenAIResponsesCommon/openai-gpt-4o/tool_streaming.yaml", 0, 1),
    "anthropic-stream": (FANTASY / "TestAnthropicCommon/claude-sonnet-4/tool_streaming.yaml", 0, 1),
    "gemini-stream": (FANTASY / "TestGoogleCommon/gemini-2.5-flash/tool_streaming.yaml", 0, 1),
    "azure-chat-stream (seed)": (SEED, None, 0),
}
STREAMS = [name for name in FORMATS if "stream" in name]
WITH_TOOLS = [name for name, (_, tool, _) in FORMATS.items() if tool is not None]
# Whole-value keys and number subtrees of the table, for the mutations below.
VALUE_KEYS = {key for rule in NORMALISED if rule.scope == "value" for key in rule.keys}


def response(name: str, which: str) -> tuple[Response, Request]:
    path, tool, text = FORMATS[name]
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    index = tool if which == "tool" else text
    assert index is not None
    interaction = load(path).interactions[index]
    return interaction.response, interaction.request


def with_body(resp: Response, body: bytes, **changes: object) -> Response:
    return dataclasses.replace(resp, body=body, **changes)  # type: ignore[arg-type]


# -- editing bodies: every JSON document (a whole body or each data: line), or event blocks ----


def edit_json(resp: Response, edit: Callable[[object], object]) -> Response:
    """`resp` with each JSON document of its body replaced by `edit(document)`, compact."""
    body = resp.body
    if not body.lstrip().startswith((b"{", b"[")):
        out, last = [], 0
        for start, value in data_values(body):
            try:
                obj = json.loads(value)
            except ValueError:
                continue
            out += [body[last:start], json.dumps(edit(obj), ensure_ascii=False).encode()]
            last = start + len(value)
        out.append(body[last:])
        return with_body(resp, b"".join(out))
    return with_body(resp, json.dumps(edit(json.loads(body)), ensure_ascii=False).encode())


def walk(value: object, edit: Callable[[str, object], object]) -> object:
    """A copy of `value` with each object member's value replaced by `edit(key, value)` (after
    its own members were walked)."""
    if isinstance(value, dict):
        return {key: edit(key, walk(item, edit)) for key, item in value.items()}
    if isinstance(value, list):
        return [walk(item, edit) for item in value]
    return value


def event_blocks(body: bytes) -> tuple[list[bytes], bytes]:
    separator = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"
    return body.split(separator), separator


def drop_final_event(resp: Response) -> Response:
    blocks, separator = event_blocks(resp.body)
    last = max(i for i, block in enumerate(blocks) if block.strip())
    return with_body(resp, separator.join(blocks[:last] + blocks[last + 1:]))


def insert_event(resp: Response, event: bytes) -> Response:
    """`event` (one event's lines) before the last event."""
    blocks, separator = event_blocks(resp.body)
    last = max(i for i, block in enumerate(blocks) if block.strip())
    return with_body(resp, separator.join([*blocks[:last], event, *blocks[last:]]))


_TEXT_KEYS = ("text", "content", "delta")


def _text_path(obj: object, path: tuple[object, ...] = ()) -> tuple[object, ...] | None:
    """The path of the first text (a `text`, `content` or string `delta`) of 2+ characters."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _TEXT_KEYS and isinstance(value, str) and len(value) >= 2:
                return (*path, key)
            found = _text_path(value, (*path, key))
            if found:
                return found
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found = _text_path(value, (*path, index))
            if found:
                return found
    return None


def _set(obj: object, path: tuple[object, ...], value: object) -> object:
    copy = json.loads(json.dumps(obj))
    target = copy
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return copy


def split_a_delta(resp: Response) -> Response:
    """The first event carrying text sent as two events, each with half the text: the same
    answer in one more delta."""
    blocks, separator = event_blocks(resp.body)
    for number, block in enumerate(blocks):
        for start, value in data_values(block):
            try:
                obj = json.loads(value)
            except ValueError:
                continue
            if obj.get("type") in ("response.output_text.done", "content_block_start"):
                continue  # not a delta (the responses API's done event repeats the whole text)
            path = _text_path(obj)
            if path is None:
                continue
            text = _get(obj, path)
            halves = [text[: len(text) // 2], text[len(text) // 2:]]
            new = [block[:start] + json.dumps(_set(obj, path, half)).encode()
                   + block[start + len(value):] for half in halves]
            return with_body(resp, separator.join([*blocks[:number], *new, *blocks[number + 1:]]))
    raise AssertionError("no text delta found")


def _get(obj: object, path: tuple[object, ...]) -> str:
    for step in path:
        obj = obj[step]  # type: ignore[index]
    assert isinstance(obj, str)
    return obj


def reword(document: object) -> object:
    """Every text of the answer said otherwise (tool definitions echoed back left alone)."""
    def edit(key: str, value: object) -> object:
        if key in ("text", "content") and isinstance(value, str) and value:
            return "REWORDED " + value
        return value
    if isinstance(document, dict) and document.get("type") == "response.output_text.delta":
        return {**document, "delta": "REWORDED " + str(document["delta"])}
    return walk(document, edit)


def renew_normalised(document: object) -> object:
    """Every normalised field given another value, as a fresh call to the API would."""
    def renumber(value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value + 7
        return walk(value, lambda _key, item: renumber(item)) if isinstance(
            value, dict | list) else value

    def edit(key: str, value: object) -> object:
        if key in VALUE_KEYS:
            if isinstance(value, str):
                return value + "-other"
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value + 1000
            if value is None:
                return "fp_other"
            return value
        if normalised_scope((key,)) == "numbers":
            return renumber(value)
        return value
    return walk(document, edit)


def rename_tool(document: object) -> object:
    return walk(document, lambda key, value: "get_weather" if key == "name"
                and value == "weather" else value)


# -- same -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FORMATS))
def test_an_answer_is_the_same_as_itself(name: str) -> None:
    resp, request = response(name, "text")
    result = compare_responses(resp, resp, request)
    assert result.verdict == SAME and not result.differences
    assert result.summary() == f"same POST {request.url}"


@pytest.mark.parametrize("name", list(FORMATS))
def test_new_ids_timestamps_fingerprints_and_usage_numbers_are_the_same(name: str) -> None:
    for which in ("text", "tool") if name in WITH_TOOLS else ("text",):
        resp, _ = response(name, which)
        renewed = edit_json(resp, renew_normalised)
        assert renewed.body != resp.body
        result = compare_responses(resp, renewed)
        assert result.verdict == SAME, result.summary()


def test_the_seed_with_a_fresh_id_created_and_fingerprint_is_the_same() -> None:
    resp, _ = response("azure-chat-stream (seed)", "text")
    body = resp.body.replace(b"chatcmpl-DIeegIrNy9WWawejS4BxAWXvSfvYD", b"chatcmpl-NEW")
    body = body.replace(b'"created":1773338554', b'"created":1799999999')
    body = body.replace(b'"system_fingerprint":null', b'"system_fingerprint":"fp_1a2b3c"')
    assert compare_responses(resp, with_body(resp, body)).verdict == SAME


def test_json_key_order_and_spacing_do_not_count() -> None:
    resp, _ = response("openai-chat-json", "text")
    pretty = json.dumps(dict(reversed(json.loads(resp.body).items())), indent=4).encode()
    assert compare_responses(resp, with_body(resp, pretty)).verdict == SAME


# -- benign -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FORMATS))
def test_reworded_text_is_benign(name: str) -> None:
    resp, _ = response(name, "text")
    result = compare_responses(resp, edit_json(resp, reword))
    assert result.verdict == BENIGN, result.summary()
    wording = [d for d in result.differences if d.what == "wording"]
    assert wording and "REWORDED" in wording[0].new
    if name in STREAMS:
        assert wording[0].where == "answer text"
    else:
        assert wording[0].where == "choices.0.message.content"


@pytest.mark.parametrize("name", STREAMS)
def test_another_number_of_deltas_is_benign(name: str) -> None:
    resp, _ = response(name, "text")
    split = split_a_delta(resp)
    result = compare_responses(resp, split)
    assert result.verdict == BENIGN, result.summary()
    counts = [d for d in result.differences if d.what == "count"]
    assert counts and "events" in counts[0].where
    assert not any(d.where == "answer text" for d in result.differences)  # the same text


def test_a_key_the_provider_added_is_benign_and_listed() -> None:
    resp, _ = response("anthropic-stream", "text")

    def add(document: object) -> object:
        if isinstance(document, dict) and document.get("type") == "message_delta":
            return {**document, "context_management": {"applied_edits": []}}
        return document
    result = compare_responses(resp, edit_json(resp, add))
    assert result.verdict == BENIGN
    assert result.added_keys == ["event message_delta: context_management"]
    assert "keys added: event message_delta: context_management" in result.summary()


# -- changed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_TOOLS)
def test_a_renamed_tool_call_is_changed(name: str) -> None:
    resp, _ = response(name, "tool")
    result = compare_responses(resp, edit_json(resp, rename_tool))
    assert result.verdict == CHANGED
    first = result.differences[0]
    assert (first.where, first.old, first.new, first.what) == (
        "tool call 0", '"weather"', '"get_weather"', "name")


@pytest.mark.parametrize("name", WITH_TOOLS)
def test_other_argument_keys_are_changed(name: str) -> None:
    resp, _ = response(name, "tool")
    body = resp.body.replace(b'location', b'city')
    # Anthropic streams the arguments in pieces: {"locati + on":
    body = body.replace(b'{\\"locati"', b'{\\"ci"').replace(b'"on\\":"', b'"ty\\":"')
    result = compare_responses(resp, with_body(resp, body))
    assert result.verdict == CHANGED
    keys = [d for d in result.differences if d.what == "argument keys"]
    assert keys and keys[0].where == "tool call 0 (weather)"
    assert (keys[0].old, keys[0].new) == ('"location"', '"city"')


# name -> (event type or "" for a whole body, the key removed, the path the result names)
REMOVED_FIELDS = {
    "openai-chat-stream": ("chat.completion.chunk", ("choices", "*", "logprobs"),
                           "event chat.completion.chunk: choices.*.logprobs"),
    "openai-chat-json": ("", ("choices", 0, "message", "refusal"), "choices.0.message.refusal"),
    "openai-responses-stream": ("response.output_text.delta", ("output_index",),
                                "event response.output_text.delta: output_index"),
    "anthropic-stream": ("message_delta", ("delta", "stop_sequence"),
                         "event message_delta: delta.stop_sequence"),
    "gemini-stream": ("data", ("candidates", "*", "content", "role"),
                      "event data: candidates.*.content.role"),
}


def _remove(obj: object, path: tuple[object, ...]) -> None:
    if len(path) == 1:
        if isinstance(obj, dict):
            obj.pop(path[0], None)  # type: ignore[call-overload]
        return
    step, rest = path[0], path[1:]
    if step == "*" and isinstance(obj, list):
        for item in obj:
            _remove(item, rest)
    elif (isinstance(obj, dict) and step in obj) or (
            isinstance(obj, list) and isinstance(step, int) and step < len(obj)):
        _remove(obj[step], rest)


@pytest.mark.parametrize("name", list(REMOVED_FIELDS))
def test_a_removed_field_is_changed_at_its_path(name: str) -> None:
    resp, _ = response(name, "text")
    kind, path, where = REMOVED_FIELDS[name]

    def remove(document: object) -> object:
        copy = json.loads(json.dumps(document))
        of_kind = isinstance(copy, dict) and (copy.get("type") or copy.get("object") or "data")
        if not kind or of_kind == kind:
            _remove(copy, path)
        return copy
    result = compare_responses(resp, edit_json(resp, remove))
    assert result.verdict == CHANGED, result.summary()
    removed = [d for d in result.differences if d.what == "removed"]
    assert [d.where for d in removed] == [where]
    assert removed[0].new == "(absent)"


@pytest.mark.parametrize("name", STREAMS)
def test_a_new_stream_event_type_is_changed(name: str) -> None:
    resp, _ = response(name, "text")
    event = b'event: response.annotation.added\ndata: {"type":"response.annotation.added"}'
    if b"\r\n" in resp.body:
        event = event.replace(b"\n", b"\r\n")
    result = compare_responses(resp, insert_event(resp, event))
    assert result.verdict == CHANGED
    assert str(result.differences[0]) == (
        'event types: (absent) -> "response.annotation.added" (new event type)')


@pytest.mark.parametrize("name", ["openai-chat-stream", "azure-chat-stream (seed)"])
def test_a_missing_done_is_changed(name: str) -> None:
    resp, _ = response(name, "text")
    result = compare_responses(resp, drop_final_event(resp))
    assert result.verdict == CHANGED
    named = {str(d) for d in result.differences}
    assert 'final event: "[DONE]" -> "chat.completion.chunk" (final event)' in named
    assert 'event types: "[DONE]" -> (absent) (event type gone)' in named


@pytest.mark.parametrize(("name", "last"), [("anthropic-stream", "message_stop"),
                                            ("openai-responses-stream", "response.completed")])
def test_a_stream_cut_before_its_last_event_is_changed(name: str, last: str) -> None:
    resp, _ = response(name, "text")
    result = compare_responses(resp, drop_final_event(resp))
    assert result.verdict == CHANGED
    assert any(d.where == "final event" and d.old == f'"{last}"' for d in result.differences)


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_200_turned_429_is_changed(name: str) -> None:
    resp, _ = response(name, "text")
    limited = Response(status="429 Too Many Requests", code=429,
                       headers={"Content-Type": ["application/json"]},
                       body=b'{"error":{"message":"Rate limit reached","type":"requests",'
                            b'"code":"rate_limit_exceeded"}}')
    result = compare_responses(resp, limited)
    assert result.verdict == CHANGED
    assert [str(d) for d in result.differences] == [
        "status: 200 -> 429 (status)", 'error: "(none)" -> "requests" (error)']


def test_a_finish_reason_is_changed_in_a_body_and_in_a_stream() -> None:
    resp, _ = response("openai-chat-json", "text")
    result = compare_responses(resp, with_body(resp, resp.body.replace(
        b'"finish_reason": "stop"', b'"finish_reason": "length"')))
    assert result.verdict == CHANGED
    assert str(result.differences[0]) == (
        'choices.0.finish_reason: "stop" -> "length" (value)')
    stream, _ = response("anthropic-stream", "text")
    result = compare_responses(stream, with_body(stream, stream.body.replace(
        b'"stop_reason":"end_turn"', b'"stop_reason":"max_tokens"')))
    assert result.verdict == CHANGED
    assert result.differences[0].where == "event message_delta: delta.stop_reason"


@pytest.mark.parametrize("name", ["openai-chat-stream", "anthropic-stream", "gemini-stream"])
def test_a_stream_turned_into_a_plain_body_is_changed(name: str) -> None:
    resp, _ = response(name, "text")
    plain, _ = response("openai-chat-json", "text")
    result = compare_responses(resp, plain)
    assert result.verdict == CHANGED
    assert [str(d) for d in result.differences] == [
        'content type: "text/event-stream" -> "application/json" (content type)',
        'framing: "SSE" -> "JSON" (a stream turned into a plain body)']
    back = compare_responses(plain, resp)
    assert back.differences[-1].what == "a plain body turned into a stream"


def test_an_error_shape_that_changed_is_changed() -> None:
    old = Response(code=400, headers={"Content-Type": ["application/json"]},
                   body=b'{"error":{"message":"bad","type":"invalid_request_error","param":"x"}}')
    reworded = with_body(old, old.body.replace(b'"bad"', b'"not good"'))
    assert compare_responses(old, reworded).verdict == BENIGN
    reshaped = with_body(old, b'{"error":{"message":"bad","kind":"invalid_request_error"}}')
    result = compare_responses(old, reshaped)
    assert result.verdict == CHANGED
    assert {d.where for d in result.differences if d.what == "removed"} == {
        "error.type", "error.param"}
    assert result.added_keys == ["error.kind"]


# -- a plain JSON body of no LLM API, and other bytes --------------------------------------------


PLAIN = Response(headers={"Content-Type": ["application/json"]}, body=json.dumps({
    "id": "job-123", "created_at": 1700000000, "request_id": "req_1",
    "items": [{"name": "a", "size": 3, "tags": ["x"]}], "owner": {"name": "Ana", "admin": False},
}).encode())


def plain(edit: Callable[[dict], None]) -> Response:
    document = json.loads(PLAIN.body)
    edit(document)
    return with_body(PLAIN, json.dumps(document).encode())


def test_plain_json_bodies() -> None:
    assert compare_responses(PLAIN, plain(lambda d: d.update(
        id="job-999", created_at=1800000000, request_id="req_2"))).verdict == SAME
    reworded = compare_responses(PLAIN, plain(lambda d: d["owner"].update(name="Bea")))
    assert (reworded.verdict, str(reworded.differences[0])) == (
        BENIGN, 'owner.name: "Ana" -> "Bea" (wording)')
    value = compare_responses(PLAIN, plain(lambda d: d["items"][0].update(size=4)))
    assert (value.verdict, value.differences[0].what) == (BENIGN, "value")
    removed = compare_responses(PLAIN, plain(lambda d: d["items"][0].pop("tags")))
    assert (removed.verdict, str(removed.differences[0])) == (
        CHANGED, 'items.0.tags: ["x"] -> (absent) (removed)')
    retyped = compare_responses(PLAIN, plain(lambda d: d["items"][0].update(size="3")))
    assert (retyped.verdict, str(retyped.differences[0])) == (
        CHANGED, 'items.0.size: 3 -> "3" (type)')
    fewer = compare_responses(PLAIN, plain(lambda d: d.update(items=[])))
    assert (fewer.verdict, fewer.differences[0].what) == (CHANGED, "items removed")
    added = compare_responses(PLAIN, plain(lambda d: d.update(region="eu")))
    assert (added.verdict, added.added_keys) == (BENIGN, ["region"])


def test_other_bytes_that_differ_are_changed() -> None:
    old = Response(headers={"Content-Type": ["text/plain"]}, body=b"hello world")
    result = compare_responses(old, with_body(old, b"hello there"))
    assert result.verdict == CHANGED
    assert str(result.differences[0]) == (
        "body: 11 bytes -> 11 bytes (first difference at byte 6)")


def test_values_are_cut_short() -> None:
    long_text = "word " * 100
    old = Response(body=json.dumps({"text": long_text}).encode())
    new = Response(body=json.dumps({"text": "a " + long_text}).encode())
    difference = compare_responses(old, new).differences[0]
    assert len(difference.old) == 60 and difference.old.endswith("…")
    # a long common start is skipped, so that what differs shows
    later = Response(body=json.dumps({"text": long_text + "more"}).encode())
    difference = compare_responses(old, later).differences[0]
    assert difference.old == '…d word word "'
    assert difference.new == '…d word word more"'



# -- classify and pair (what verify and diff call) ----------------------------------------------


def test_classify_a_live_answer_without_a_recording_is_new() -> None:
    resp, request = response("azure-chat-stream (seed)", "text")
    result = classify(None, resp, request)
    assert (result.verdict, result.failing) == (NEW, False)
    assert result.to_json() == {"verdict": "new", "request": f"POST {request.url}",
                                "differences": [], "added_keys": []}
    recorded = Interaction(request, resp)
    assert classify(recorded, drop_final_event(resp), request).failing


def test_the_label_redacts_the_url() -> None:
    request = Request(method="POST", url="https://x.example/v1?key=AIzaSECRET&alt=sse")
    result = classify(None, Response(), request)
    assert "AIzaSECRET" not in result.summary() and "alt=sse" in result.summary()


def test_to_json_carries_every_difference() -> None:
    resp, _ = response("azure-chat-stream (seed)", "text")
    result = compare_responses(resp, drop_final_event(resp))
    document = result.to_json()
    assert document["verdict"] == "changed"
    assert {"where": "final event", "old": '"[DONE]"', "new": '"chat.completion.chunk"',
            "verdict": "changed", "what": "final event"} in document["differences"]
    json.dumps(document)


def test_pair_takes_in_file_order_and_names_new_and_removed() -> None:
    def interaction(body: str, answer: str) -> Interaction:
        return Interaction(Request("POST", "https://api.example/v1", body.encode(),
                                   {"Content-Type": ["application/json"]}),
                           Response(body=json.dumps({"text": answer}).encode()))
    old = [interaction('{"q":1}', "a"), interaction('{"q":1}', "b"), interaction('{"q":2}', "c")]
    new = [interaction('{"q": 1}', "a"), interaction('{"q":1}', "B"),
           interaction('{"q":3}', "d")]
    pairs = pair(old, new)
    assert [(p.old is not None and json.loads(p.old.response.body)["text"],
             p.new is not None and json.loads(p.new.response.body)["text"]) for p in pairs] == [
        ("a", "a"), ("b", "B"), (False, "d"), ("c", False)]
    assert [classify_pair(p).verdict for p in pairs] == [SAME, BENIGN, NEW, REMOVED]
    ignoring = pair(old, [interaction('{"q":2,"seed":5}', "c")],
                    MatchOptions(ignore_json=("seed",)))
    assert ignoring[0].old is old[2]


# -- properties ---------------------------------------------------------------------------------

_KEYS = st.sampled_from(["id", "created", "usage", "text", "type", "name", "items", "n",
                         "system_fingerprint", "obfuscation", "model", "a", "b"])
_SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=25)
_DOCUMENT = st.dictionaries(_KEYS, _JSON, min_size=1, max_size=6)


def _sse(documents: list[object], spacing: str = "") -> bytes:
    separators = (",", ":") if not spacing else (", ", ": ")
    return b"".join(b"data: " + json.dumps(d, separators=separators).encode() + b"\n\n"
                    for d in documents) + b"data: [DONE]\n\n"


@settings(max_examples=150, deadline=None)
@given(_DOCUMENT, st.binary(max_size=64))
def test_anything_compared_with_itself_is_same(document: object, raw: bytes) -> None:
    json_body = Response(headers={"Content-Type": ["application/json"]},
                         body=json.dumps(document).encode())
    respaced = with_body(json_body, json.dumps(document, indent=2).encode())
    assert compare_responses(json_body, json_body).verdict == SAME
    assert compare_responses(json_body, respaced).verdict == SAME
    stream = Response(headers={"Content-Type": ["text/event-stream"]},
                      body=_sse([document, document]))
    assert compare_responses(stream, stream).verdict == SAME
    assert compare_responses(stream, with_body(stream, _sse([document, document], " "))
                             ).verdict == SAME
    anything = Response(body=raw)
    assert compare_responses(anything, anything).verdict == SAME


@settings(max_examples=150, deadline=None)
@given(st.lists(_DOCUMENT, min_size=1, max_size=4), st.data())
def test_changing_only_normalised_fields_is_same(documents: list[object],
                                                 data: st.DataObject) -> None:
    other_value = _JSON

    def renew(document: object) -> object:
        def edit(key: str, value: object) -> object:
            if key in VALUE_KEYS:
                return data.draw(other_value)
            if normalised_scope((key,)) == "numbers":
                return _renumber(value, data)
            return value
        return walk(document, edit)
    for headers, body_of in (({"Content-Type": ["application/json"]},
                              lambda ds: json.dumps(ds[0]).encode()),
                             ({"Content-Type": ["text/event-stream"]}, _sse)):
        old = Response(headers=headers, body=body_of(documents))
        new = Response(headers=headers, body=body_of([renew(d) for d in documents]))
        result = compare_responses(old, new)
        assert result.verdict == SAME, result.summary()


def _renumber(value: object, data: st.DataObject) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return data.draw(st.integers(0, 10**9) | st.floats(0, 1e9))
    if isinstance(value, dict):
        return {key: _renumber(item, data) for key, item in value.items()}
    if isinstance(value, list):
        return [_renumber(item, data) for item in value]
    return value


def test_the_normalisation_table_documents_each_rule() -> None:
    for rule in NORMALISED:
        assert rule.name and rule.why and (rule.keys or rule.paths)
    assert normalised_scope(("choices", "0", "delta", "id")) == "value"
    assert normalised_scope(("usage",)) == "numbers"
    assert normalised_scope(("choices", "0", "text")) is None
    assert re.fullmatch(r"[a-z_ ]+", " ".join(rule.name for rule in NORMALISED))


def test_bedrock_event_streams() -> None:
    folder = FANTASY / "TestBedrockCommon"
    haiku = folder / "bedrock-anthropic-claude-haiku-4-5" / "tool_streaming.yaml"
    sonnet = folder / "bedrock-anthropic-claude-sonnet-4-5" / "tool_streaming.yaml"
    if not haiku.is_file() or not sonnet.is_file():
        pytest.skip("the corpus is not there")
    old = load(haiku).interactions[0].response
    assert compare_responses(old, old).verdict == SAME
    # another model's answer to the same request: other words, the same structure
    other = compare_responses(old, load(sonnet).interactions[0].response)
    assert other.verdict == BENIGN, other.summary()
    # a frame cut short: the stream ends in broken framing instead of its last event
    cut = compare_responses(old, with_body(old, old.body[:-10]))
    assert cut.verdict == CHANGED
    assert any(d.where == "final event" and d.new == '"(broken framing)"'
               for d in cut.differences)
