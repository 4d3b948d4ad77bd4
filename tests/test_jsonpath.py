from __future__ import annotations

import copy

import pytest

from llmvcr import jsonpath


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("user", ("user",)),
        ("metadata.request_id", ("metadata", "request_id")),
        ("messages.*.id", ("messages", "*", "id")),
        (r"headers.x\.y", ("headers", "x.y")),
        (r"a\.b\.c", ("a.b.c",)),
        (r"back\\slash.x", ("back\\slash", "x")),
        (r"trail\\.x", ("trail\\", "x")),
        (r"keep\n", ("keep\\n",)),
        ("messages.0.content", ("messages", "0", "content")),
    ],
)
def test_parse(text: str, segments: tuple[str, ...]) -> None:
    assert jsonpath.parse(text) == segments


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "."])
def test_parse_rejects_empty_paths_and_segments(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        jsonpath.parse(text)


@pytest.mark.parametrize(
    "segments", [("a.b", "c"), ("back\\", "x"), ("*",), ("messages", "3", "content")]
)
def test_format_path_is_the_inverse_of_parse(segments: tuple[str, ...]) -> None:
    assert jsonpath.parse(jsonpath.format_path(segments)) == segments


DOC = {
    "model": "gpt-5",
    "user": "alice",
    "metadata": {"request_id": "r-1", "trace": "t"},
    "messages": [
        {"id": "m1", "role": "system", "content": "be nice"},
        {"id": "m2", "role": "user", "content": "hi"},
    ],
    "x.y": 1,
}


def test_remove_top_level_and_nested_keys() -> None:
    result = jsonpath.remove(DOC, ["user", "metadata.request_id"])
    assert "user" not in result
    assert result["metadata"] == {"trace": "t"}
    assert result["messages"] == DOC["messages"]


def test_remove_with_wildcard_over_array_items() -> None:
    result = jsonpath.remove(DOC, ["messages.*.id"])
    assert result["messages"] == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi"},
    ]


def test_remove_wildcard_over_object_keys() -> None:
    assert jsonpath.remove({"a": {"x": 1, "y": 2}, "b": 3}, ["a.*"]) == {"a": {}, "b": 3}


def test_remove_literal_dot_key() -> None:
    result = jsonpath.remove(DOC, [r"x\.y"])
    assert "x.y" not in result
    assert jsonpath.remove(DOC, ["x.y"]) == DOC  # without the escape it means x -> y: not there


def test_numeric_segment_indexes_arrays_and_is_a_key_in_objects() -> None:
    assert jsonpath.remove(DOC, ["messages.1"])["messages"] == [DOC["messages"][0]]
    assert jsonpath.remove({"0": "zero", "1": "one"}, ["0"]) == {"1": "one"}
    assert jsonpath.remove({"a": [1, 2]}, ["a.x"]) == {"a": [1, 2]}


def test_removing_several_indexes_uses_the_original_positions() -> None:
    assert jsonpath.remove({"a": [0, 1, 2, 3]}, ["a.0", "a.1"]) == {"a": [2, 3]}


def test_missing_paths_and_scalars_are_ignored() -> None:
    assert jsonpath.remove(DOC, ["nope", "model.deeper", "messages.9.id"]) == DOC
    assert jsonpath.remove("text", ["a"]) == "text"


def test_remove_and_replace_never_modify_the_input() -> None:
    before = copy.deepcopy(DOC)
    jsonpath.remove(DOC, ["messages.*.id", "user", "metadata.*"])
    jsonpath.replace(DOC, ["messages.*.content", "metadata"], "X")
    assert before == DOC


def test_replace_reports_whether_anything_changed() -> None:
    result, changed = jsonpath.replace(DOC, ["messages.*.content", "user"], "R")
    assert changed
    assert [m["content"] for m in result["messages"]] == ["R", "R"]
    assert result["user"] == "R"
    assert result["model"] == DOC["model"]

    again, changed_again = jsonpath.replace(result, ["messages.*.content", "user"], "R")
    assert not changed_again
    assert again == result


def test_replace_creates_nothing_and_replaces_whole_subtrees() -> None:
    result, changed = jsonpath.replace({"a": 1}, ["b", "a.c"], "R")
    assert (result, changed) == ({"a": 1}, False)
    result, changed = jsonpath.replace(DOC, ["metadata"], "R")
    assert changed and result["metadata"] == "R"


def test_replace_treats_a_different_type_as_a_change() -> None:
    # 1 == True in Python, but a JSON number is not a JSON boolean
    result, changed = jsonpath.replace({"a": 1}, ["a"], True)
    assert changed and result == {"a": True} and result["a"] is True
