"""`llmvcr.headers`: case-insensitive lookup and the media-type predicates every module asks."""

from __future__ import annotations

from llmvcr.headers import (
    first_header,
    header_values,
    is_event_stream,
    is_form,
    is_multipart,
    media_type,
    media_type_of,
)


def test_names_compare_case_insensitively_values_keep_their_order() -> None:
    headers = {"content-type": ["a"], "Accept": ["x"], "Content-Type": ["b", "c"]}
    assert header_values(headers, "CONTENT-TYPE") == ["a", "b", "c"]
    assert first_header(headers, "Content-Type") == "a"
    assert header_values(headers, "Missing") == [] and first_header(headers, "Missing") == ""
    assert first_header({"Content-Type": [], "content-type": ["z"]}, "content-type") == "z"


def test_media_type_drops_parameters_case_and_space() -> None:
    assert media_type_of(" Text/Event-Stream ; charset=utf-8") == "text/event-stream"
    assert media_type({"content-type": ["Application/JSON"]}) == "application/json"
    assert media_type({}) == ""


def test_predicates() -> None:
    form = {"Content-Type": ["application/x-www-form-urlencoded; charset=UTF-8"]}
    assert is_form(form) and not is_event_stream(form) and not is_multipart(form)
    assert is_event_stream({"content-type": ["text/event-stream;charset=utf-8"]})
    assert is_multipart({"Content-Type": ["multipart/form-data; boundary=xyz"]})
    # a second Content-Type value counts: a form sent with two is still scrubbed as a form
    assert is_form({"Content-Type": ["text/plain", "application/x-www-form-urlencoded"]})
    for other in ({}, {"Content-Type": ["application/json"]},
                  {"Content-Type": ["application/x-www-form-urlencoded-not"]},
                  {"X-Content-Type": ["application/x-www-form-urlencoded"]}):
        assert not is_form(other) and not is_event_stream(other) and not is_multipart(other)
